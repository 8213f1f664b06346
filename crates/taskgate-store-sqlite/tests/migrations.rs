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
    migrations_up_to(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"),
        6,
        &old,
    );
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
