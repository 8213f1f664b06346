//! The two backends' schemas have the same tables and columns, with the same types and
//! nullability, so neither can drift.

use taskgate_store::{SchemaColumn, Store};

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = taskgate_store_sqlite::SqliteStore::open(&dir.path().join("s.db"))
        .await
        .unwrap();
    let (pg, _schema) = taskgate_store_postgres::testing::fresh_schema_store()
        .await
        .unwrap()
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let mut lite = taskgate_store_sqlite::schema_columns(&sqlite)
        .await
        .unwrap();
    let mut post = taskgate_store_postgres::schema_columns(&pg).await.unwrap();
    pg.close().await;
    lite.sort();
    post.sort();
    assert!(lite.contains(&SchemaColumn {
        table: "revoked_api_keys".into(),
        column: "expires_at".into(),
        sql_type: "bigint".into(),
        nullable: false,
    }));
    let only = |a: &[SchemaColumn], b: &[SchemaColumn]| -> Vec<SchemaColumn> {
        a.iter().filter(|c| !b.contains(c)).cloned().collect()
    };
    assert_eq!(
        (only(&lite, &post), only(&post, &lite)),
        (vec![], vec![]),
        "columns only in SQLite, only in PostgreSQL"
    );
}
