//! Mapping sqlx errors to [`StoreError`].

use taskgate_store::StoreError;

/// Maps a sqlx error: unique violations become `Conflict` naming the constraint, connection
/// and pool failures become `Unavailable`, a missing row `NotFound`, the rest `Other`.
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                // SQLite words it "UNIQUE constraint failed: users.email".
                let constraint = db
                    .message()
                    .split_once(": ")
                    .map(|(_, c)| c.to_string())
                    .unwrap_or_else(|| "unique".to_string());
                StoreError::conflict(taskgate_store::ConflictKind::Unique(constraint))
            } else if db.is_foreign_key_violation() {
                StoreError::NotFound
            } else if matches!(db.code().as_deref(), Some("5") | Some("6") | Some("517")) {
                // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT: the database is held.
                StoreError::Unavailable(db.message().to_string())
            } else {
                StoreError::Other(db.message().to_string())
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}
