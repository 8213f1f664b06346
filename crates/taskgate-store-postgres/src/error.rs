//! Mapping sqlx errors to [`StoreError`].

use taskgate_store::StoreError;

/// Maps a sqlx error: unique violations become `Conflict` naming the constraint, connection
/// and pool failures and server shutdowns become `Unavailable`, a missing row `NotFound`.
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if db.is_unique_violation() {
                StoreError::conflict(taskgate_store::ConflictKind::Unique(
                    db.constraint().unwrap_or("unique").to_string(),
                ))
            } else if db.is_foreign_key_violation() {
                StoreError::NotFound
            } else if code.starts_with("08")
                || code.starts_with("57P")
                || code == "57014"
                || code == "55P03"
                || code == "53300"
                || code == "40001"
            {
                // Connection exceptions, operator intervention (shutdown), a statement over
                // its timeout, a lock not granted in time, too many connections,
                // serialization failure under load: all "try again later".
                StoreError::Unavailable(db.message().to_string())
            } else {
                StoreError::Other(db.message().to_string())
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
        sqlx::Error::Protocol(ref m) if m.contains("closed") => {
            StoreError::Unavailable(err.to_string())
        }
        other => StoreError::Other(other.to_string()),
    }
}
