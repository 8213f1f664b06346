//! Migrations carry stored data forward: a database written by an older taskgate reads the
//! same after the upgrade.

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use taskgate_store::conformance::upgrades::*;
use taskgate_store::Store;
use taskgate_store_postgres::testing::{fresh_schema, TEST_DATABASE_URL};
use taskgate_store_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hour_and_day_counts_become_spans_of_every_length() {
    let url = std::env::var(TEST_DATABASE_URL)
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let (opts, schema) = fresh_schema(&url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("taskgate-migrations-{schema}"));
    migrations_up_to(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"),
        6,
        &dir,
    );
    let conn = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts.clone())
        .await
        .unwrap();
    let older = Migrator::new(dir.as_path()).await.unwrap();
    older.run(&conn).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // Foreign keys off on this connection: the group belongs to no stored environment.
    sqlx::query("SET session_replication_role = replica")
        .execute(&conn)
        .await
        .unwrap();
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

    let store = PostgresStore::connect_with(opts.clone(), None, true, format!("tg_{schema}"))
        .await
        .unwrap();
    store.close().await;

    let conn = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(SPANS_READ_SQL)
        .fetch_all(&conn)
        .await
        .unwrap();
    conn.close().await;
    check_spans_after(&rows);
}
