//! The database files on disk: readable by their owner only.
#![cfg(unix)]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use taskgate_store::{Store, UserStore};
use taskgate_store_sqlite::SqliteStore;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn sibling(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[tokio::test]
async fn a_new_database_and_its_wal_and_shm_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("taskgate.db");
    let store = SqliteStore::open(&db).await.unwrap();
    // A write makes sure the WAL and its index exist.
    let actor = taskgate_store::Actor {
        user_id: None,
        credential_id: None,
        credential_kind: "test".into(),
    };
    let user = taskgate_store::NewUser {
        email: "a@example.com".into(),
        name: None,
        admin: false,
    };
    store
        .create_user(user, &actor, chrono::Utc::now())
        .await
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let f = sibling(&db, suffix);
        assert!(f.exists(), "{} exists", f.display());
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    store.close().await;
}

#[tokio::test]
async fn an_existing_world_readable_database_is_restricted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("taskgate.db");
    SqliteStore::open(&db).await.unwrap().close().await;
    for suffix in ["", "-wal", "-shm"] {
        let f = sibling(&db, suffix);
        if f.exists() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let store = SqliteStore::open(&db).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let f = sibling(&db, suffix);
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    store.close().await;
}
