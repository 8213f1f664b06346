//! The storage conformance suite on PostgreSQL: a fresh schema per test, dropped afterwards
//! (also when the test panics).
//! Needs `TASKGATE_TEST_DATABASE_URL` (the README's test command sets it up); without it each
//! test fails saying so, so that a run without PostgreSQL can never pass silently.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

use std::future::Future;
use std::sync::Arc;

use taskgate_store::Store;
use taskgate_store_postgres::testing::fresh_schema_store;

async fn fresh() -> (Arc<dyn Store>, impl Future<Output = ()>) {
    let (store, schema) = fresh_schema_store().await.unwrap().expect(
        "TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database for the PostgreSQL suite",
    );
    // The schema goes when the guard does: at the end of the test, or while a panic unwinds
    // through the unpolled cleanup future.
    (Arc::new(store), async move { drop(schema) })
}

taskgate_store::conformance_suite!(fresh);

/// The harness itself: a test that panics half-way still drops its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_leaves_no_schema_behind() {
    let url = std::env::var(taskgate_store_postgres::testing::TEST_DATABASE_URL)
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let exists = |name: String| {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
                .bind(name)
                .fetch_one(&admin)
                .await
                .unwrap()
                == 1
        }
    };
    let (name_tx, name_rx) = tokio::sync::oneshot::channel();
    let test = tokio::spawn(async move {
        let (store, schema) = fresh_schema_store().await.unwrap().unwrap();
        // The store is in use (a pool with open connections) when the test fails.
        taskgate_store::conformance::fixture(&store).await;
        name_tx.send(schema.name().to_string()).unwrap();
        tokio::task::yield_now().await;
        panic!("deliberate: the harness must drop this test's schema");
    });
    let name = name_rx.await.unwrap();
    assert!(
        test.await.unwrap_err().is_panic(),
        "the test under test panicked"
    );
    assert!(
        !exists(name.clone()).await,
        "schema {name} outlived its panicking test"
    );
    admin.close().await;
}
