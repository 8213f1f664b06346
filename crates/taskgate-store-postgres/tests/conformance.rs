//! The storage conformance suite on PostgreSQL: a fresh schema per test, dropped afterwards.
//! Needs `TASKGATE_TEST_DATABASE_URL` (the README's test command sets it up); without it each
//! test fails saying so, so that a run without PostgreSQL can never pass silently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;

use taskgate_store::Store;
use taskgate_store_postgres::testing::{drop_schema, fresh_schema_store};

async fn fresh() -> (Arc<dyn Store>, impl Future<Output = ()>) {
    let (store, schema, url) = fresh_schema_store().await.unwrap().expect(
        "TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database for the PostgreSQL suite",
    );
    (
        Arc::new(store),
        async move { drop_schema(&url, &schema).await },
    )
}

taskgate_store::conformance_suite!(fresh);
