//! The one error type of the storage layer.

/// What went wrong in a store call, in terms the HTTP layer can act on.
///
/// `Unavailable` is kept apart from everything else all the way up: a database that cannot be
/// reached must become a 503, never a 401 or 404, or clients would conclude that their key was
/// revoked because the database blinked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the use case needs does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A uniqueness or state constraint refused the write; `constraint` names it.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// The database could not be reached, timed out, or the pool is exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corrupt data. Logged once, answered with an opaque 500.
    #[error("storage error: {0}")]
    Other(String),
}

impl StoreError {
    /// Shorthand for a conflict on a named constraint.
    pub fn conflict(constraint: impl Into<String>) -> Self {
        Self::Conflict {
            constraint: constraint.into(),
        }
    }
}

/// Result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;
