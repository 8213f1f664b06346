//! Offloaded payloads and outputs, kept per environment and path.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::ids::EnvironmentId;
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::error::map_err;
use crate::rows::{s, ts};

#[async_trait]
impl PacketStore for Backend {
    async fn put_packet(
        &self,
        environment_id: &EnvironmentId,
        path: &str,
        content_type: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        count("put_packet");
        sqlx::query(
            "INSERT INTO packets (runtime_environment_id, path, content_type, size_bytes, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (runtime_environment_id, path) DO UPDATE SET content_type = excluded.content_type, \
             size_bytes = excluded.size_bytes, data = excluded.data, created_at = excluded.created_at",
        )
        .bind(environment_id)
        .bind(path)
        .bind(content_type)
        .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
        .bind(data)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_packet(
        &self,
        environment_id: &EnvironmentId,
        path: &str,
    ) -> StoreResult<Option<StoredPacket>> {
        count("get_packet");
        let row = sqlx::query(
            "SELECT content_type, data, created_at FROM packets WHERE runtime_environment_id = $1 AND path = $2",
        )
        .bind(environment_id)
        .bind(path)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        use sqlx::Row;
        Ok(Some(StoredPacket {
            content_type: s(&row, "content_type")?,
            data: row.try_get("data").map_err(map_err)?,
            created_at: ts(&row, "created_at")?,
        }))
    }
}
