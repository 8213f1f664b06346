//! The append-only audit log: inserts made inside use-case transactions, and paging.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::ids::new_id;
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::error::map_err;
use crate::{count, rows};

/// One audit record to write.
pub(crate) struct AuditRecord<'a> {
    pub action: &'a str,
    pub actor: &'a Actor,
    pub organization_id: Option<&'a str>,
    pub environment_id: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub old_expires_at: Option<DateTime<Utc>>,
    pub new_expires_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

impl<'a> AuditRecord<'a> {
    pub(crate) fn new(action: &'a str, actor: &'a Actor) -> Self {
        Self {
            action,
            actor,
            organization_id: None,
            environment_id: None,
            target_id: None,
            old_expires_at: None,
            new_expires_at: None,
            detail: None,
        }
    }
}

pub(crate) async fn insert(
    conn: &mut DbConn,
    rec: AuditRecord<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    count("audit_insert");
    sqlx::query(
        "INSERT INTO audit_events (id, occurred_at, action, actor_user_id, credential_id, credential_kind,
                                   organization_id, environment_id, target_id, old_expires_at, new_expires_at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(new_id())
    .bind(to_millis(now))
    .bind(rec.action)
    .bind(rec.actor.user_id.as_deref())
    .bind(rec.actor.credential_id.as_deref())
    .bind(&rec.actor.credential_kind)
    .bind(rec.organization_id)
    .bind(rec.environment_id)
    .bind(rec.target_id)
    .bind(rec.old_expires_at.map(to_millis))
    .bind(rec.new_expires_at.map(to_millis))
    .bind(rec.detail.as_deref())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl AuditStore for Backend {
    async fn list_audit_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        count("list_audit_events");
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE ($1 IS NULL OR environment_id = $1)
               AND ($2 IS NULL OR action = $2)
               AND ($3 IS NULL OR occurred_at >= $3)
               AND ($4 IS NULL OR occurred_at <= $4)
               AND ($5 IS NULL OR seq < $5)
             ORDER BY seq DESC
             LIMIT $6",
        )
        .bind(q.environment_id.as_deref())
        .bind(q.action.as_deref())
        .bind(q.from.map(to_millis))
        .bind(q.to.map(to_millis))
        .bind(q.before_seq)
        .bind(i64::from(q.limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::audit_event).collect()
    }
}
