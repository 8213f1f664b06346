//! Test support: a fresh schema per test on the database named by
//! `TASKGATE_TEST_DATABASE_URL`, dropped afterwards.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use taskgate_core::ids::new_id;
use taskgate_store::{StoreError, StoreResult};

use crate::PostgresStore;

/// The environment variable naming the test database.
pub const TEST_DATABASE_URL: &str = "TASKGATE_TEST_DATABASE_URL";

/// A store in a new, migrated schema of the test database, and that schema's name; `None`
/// when `TASKGATE_TEST_DATABASE_URL` is unset.
pub async fn fresh_schema_store() -> StoreResult<Option<(PostgresStore, String, String)>> {
    let Ok(url) = std::env::var(TEST_DATABASE_URL) else {
        return Ok(None);
    };
    let schema = format!("tg_test_{}", new_id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .map_err(crate::error::map_err)?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .map_err(crate::error::map_err)?;
    admin.close().await;
    let opts = PgConnectOptions::from_str(&url)
        .map_err(|e| StoreError::Other(e.to_string()))?
        .options([("search_path", schema.as_str())]);
    let store =
        PostgresStore::connect_with(opts, None, true, format!("taskgate_changes_{schema}")).await?;
    Ok(Some((store, schema, url)))
}

/// Options for `url` with `search_path` set to a new, migrated schema; returns the schema name.
pub async fn fresh_schema(url: &str) -> StoreResult<(PgConnectOptions, String)> {
    let schema = format!("tg_test_{}", new_id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(crate::error::map_err)?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .map_err(crate::error::map_err)?;
    admin.close().await;
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(e.to_string()))?
        .options([("search_path", schema.as_str())]);
    Ok((opts, schema))
}

/// Drops a schema made by [`fresh_schema_store`].
pub async fn drop_schema(url: &str, schema: &str) {
    if let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}
