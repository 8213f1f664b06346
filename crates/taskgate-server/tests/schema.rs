//! The two backends' schemas have the same tables and columns, so neither can drift.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = taskgate_store_sqlite::SqliteStore::open(&dir.path().join("s.db"))
        .await
        .unwrap();
    let (pg, schema, url) = taskgate_store_postgres::testing::fresh_schema_store()
        .await
        .unwrap()
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let lite = taskgate_store_sqlite::schema_columns(&sqlite)
        .await
        .unwrap();
    let post = taskgate_store_postgres::schema_columns(&pg).await.unwrap();
    taskgate_store_postgres::testing::drop_schema(&url, &schema).await;
    assert!(lite
        .iter()
        .any(|(t, c)| t == "revoked_api_keys" && c == "expires_at"));
    assert_eq!(lite, post);
}
