//! Test support: a fresh schema per test on the database named by
//! `TASKGATE_TEST_DATABASE_URL`, dropped when its [`TestSchema`] guard is dropped, also when
//! the test panics. Schemas left behind by a killed test run are swept when the next run
//! makes its first schema.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use taskgate_core::ids::new_id;
use taskgate_store::{StoreError, StoreResult};
use tokio::sync::OnceCell;

use crate::error::map_err;
use crate::PostgresStore;

/// The environment variable naming the test database.
pub const TEST_DATABASE_URL: &str = "TASKGATE_TEST_DATABASE_URL";

/// Every test schema's name starts with this, then its creation time in Unix seconds.
const PREFIX: &str = "tg_test_";

/// A test schema older than this belongs to a run that died before it could drop it.
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);

/// A migrated-or-empty schema of the test database, dropped with `DROP SCHEMA … CASCADE` when
/// this guard goes out of scope, whether the test returned or panicked.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// The schema's name (a valid unquoted identifier).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for TestSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop runs outside any async context it could borrow (possibly while unwinding), so
        // the schema is dropped on a thread of its own with a runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(drop_schemas(&url, &[name]))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test schema {} was not dropped: {e}", self.name),
            Err(_) => eprintln!(
                "test schema {} was not dropped: the dropper panicked",
                self.name
            ),
        }
    }
}

/// A store in a new, migrated schema of the test database, and the schema's guard; `None`
/// when `TASKGATE_TEST_DATABASE_URL` is unset.
pub async fn fresh_schema_store() -> StoreResult<Option<(PostgresStore, TestSchema)>> {
    let Ok(url) = std::env::var(TEST_DATABASE_URL) else {
        return Ok(None);
    };
    let (opts, schema) = fresh_schema(&url).await?;
    let store =
        PostgresStore::connect_with(opts, None, true, format!("taskgate_changes_{schema}")).await?;
    Ok(Some((store, schema)))
}

/// Options for `url` with `search_path` set to a new, empty schema, and the schema's guard.
pub async fn fresh_schema(url: &str) -> StoreResult<(PgConnectOptions, TestSchema)> {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    SWEPT.get_or_init(|| sweep_abandoned(url)).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let schema = TestSchema {
        url: url.to_string(),
        name: format!("{PREFIX}{now}_{}", new_id()),
    };
    let mut conn = connect(url).await?;
    sqlx::query(&format!("CREATE SCHEMA {}", schema.name))
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
    let _ = conn.close().await;
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(e.to_string()))?
        .options([("search_path", schema.name.as_str())]);
    Ok((opts, schema))
}

/// Drops the test schemas whose creation time is more than [`ABANDONED_AFTER`] ago, and those
/// named before the creation time was part of the name. Best effort: a failure is printed.
async fn sweep_abandoned(url: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let listed = async {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(map_err)?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tg\\_test\\_%'",
        )
        .fetch_all(&pool)
        .await
        .map_err(map_err)?;
        pool.close().await;
        StoreResult::Ok(names)
    };
    let names = match listed.await {
        Ok(names) => names,
        Err(e) => return eprintln!("could not list abandoned test schemas: {e}"),
    };
    let abandoned: Vec<String> = names
        .into_iter()
        .filter(|name| is_abandoned(name, now))
        .collect();
    if let Err(e) = drop_schemas(url, &abandoned).await {
        eprintln!("could not drop abandoned test schemas: {e}");
    }
}

/// Whether the test schema `name` was made more than [`ABANDONED_AFTER`] before `now`.
fn is_abandoned(name: &str, now: u64) -> bool {
    let created = name
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(secs, _)| secs.parse::<u64>().ok());
    match created {
        Some(created) => now.saturating_sub(created) > ABANDONED_AFTER.as_secs(),
        None => true,
    }
}

async fn connect(url: &str) -> StoreResult<sqlx::PgConnection> {
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(e.to_string()))?
        .connect()
        .await
        .map_err(map_err)
}

/// Drops `names`, waiting briefly for locks held by connections that are still closing.
async fn drop_schemas(url: &str, names: &[String]) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let mut conn = connect(url).await.map_err(|e| e.to_string())?;
    sqlx::query("SET lock_timeout = '10s'")
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    for name in names {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    let _ = conn.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_or_unstamped_schemas_count_as_abandoned() {
        let now = 1_800_000_000;
        assert!(!is_abandoned(&format!("{PREFIX}{now}_abc"), now));
        assert!(!is_abandoned(&format!("{PREFIX}{}_abc", now - 3600), now));
        assert!(is_abandoned(&format!("{PREFIX}{}_abc", now - 3601), now));
        assert!(is_abandoned(&format!("{PREFIX}01hxyzabc"), now));
    }
}
