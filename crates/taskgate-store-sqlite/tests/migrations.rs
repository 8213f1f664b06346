//! Migrations carry stored data forward: a database written by an older taskgate reads the
//! same after the upgrade.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::SqlitePool;
use taskgate_store::conformance::upgrades::*;
use taskgate_store_sqlite::SqliteStore;

/// A copy of this crate's migrations up to `last` in `dir`.
fn migrations_up_to(last: u32, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: u32 = name[..4].parse().unwrap();
        if version <= last {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
}

async fn pool(db: &Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true)
        .foreign_keys(false);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

#[tokio::test]
async fn hour_and_day_counts_become_spans_of_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("taskgate.db");
    let old = dir.path().join("migrations");
    migrations_up_to(6, &old);
    let conn = pool(&db).await;
    let older = Migrator::new(old.as_path()).await.unwrap();
    older.run(&conn).await.unwrap();
    sqlx::query(SPANS_GROUP_SQL).execute(&conn).await.unwrap();
    for (granularity, bucket, count) in SPANS_BEFORE {
        sqlx::query(SPANS_COUNT_SQL)
            .bind(granularity)
            .bind(bucket)
            .bind(count)
            .execute(&conn)
            .await
            .unwrap();
    }
    conn.close().await;

    SqliteStore::open(&db).await.unwrap();

    let conn = pool(&db).await;
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(SPANS_READ_SQL)
        .fetch_all(&conn)
        .await
        .unwrap();
    check_spans_after(&rows);
}
