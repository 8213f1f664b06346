//! The storage conformance suite on SQLite: a fresh database file per test.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

use std::future::Future;
use std::sync::Arc;

use taskgate_store::Store;
use taskgate_store_sqlite::SqliteStore;

async fn fresh() -> (Arc<dyn Store>, impl Future<Output = ()>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("taskgate.db"))
        .await
        .unwrap();
    (Arc::new(store), async move { drop(dir) })
}

taskgate_store::conformance_suite!(fresh);
