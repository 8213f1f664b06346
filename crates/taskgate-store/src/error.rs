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
    /// A uniqueness or state constraint refused the write; `kind` says which.
    #[error("conflict on {}", kind.name())]
    Conflict { kind: ConflictKind },
    /// The database could not be reached, timed out, or the pool is exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corrupt data. Logged once, answered with an opaque 500.
    #[error("storage error: {0}")]
    Other(String),
}

/// Which rule a conflicting write broke. The use cases that answer a conflict in their own
/// words match on it; any other uniqueness constraint is [`ConflictKind::Unique`], named as
/// the database names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictKind {
    /// A one-time-use token was already spent.
    OneTimeUseToken,
    /// Another live run holds the idempotency key.
    RunIdempotencyKey,
    /// Another batch holds the idempotency key.
    BatchIdempotencyKey,
    /// A concurrent attempt of the same request created its run first.
    RequestKey,
    /// The user is already a member of the organization.
    AlreadyMember,
    /// The change would leave an organization without an owner.
    LastOwner,
    /// The environment cannot have branches.
    NotBranchable,
    /// The authorization code was approved already.
    AuthorizationCodeApproved,
    /// The authorization code was redeemed already.
    AuthorizationCodeRedeemed,
    /// A trigger or batch names a parent that is not an executing run of its environment, so
    /// it cannot wait.
    ParentRun,
    /// A deployment's worker was registered already, or the deployment failed.
    DeploymentIndexed,
    /// Another uniqueness constraint, as the database names it (`users.email`, …).
    Unique(String),
}

impl ConflictKind {
    /// The name the API's generic conflict answer gives (`constraint`).
    pub fn name(&self) -> &str {
        match self {
            ConflictKind::OneTimeUseToken => "one_time_use_tokens",
            ConflictKind::RunIdempotencyKey => "task_runs_idempotency_uniq",
            ConflictKind::BatchIdempotencyKey => "batches_idempotency_uniq",
            ConflictKind::RequestKey => "request_idempotency_keys",
            ConflictKind::AlreadyMember => "org_members.user",
            ConflictKind::LastOwner => "last_owner",
            ConflictKind::NotBranchable => "runtime_environments.branchable",
            ConflictKind::AuthorizationCodeApproved => "authorization_code_approved",
            ConflictKind::AuthorizationCodeRedeemed => "authorization_code_redeemed",
            ConflictKind::ParentRun => "parent_run",
            ConflictKind::DeploymentIndexed => "deployment_indexed",
            ConflictKind::Unique(name) => name,
        }
    }
}

impl StoreError {
    /// Shorthand for a conflict of `kind`.
    pub fn conflict(kind: ConflictKind) -> Self {
        Self::Conflict { kind }
    }
}

impl From<StoreError> for taskgate_core::Problem {
    /// A store failure as a use case's refusal: a database that cannot be reached is
    /// `Unavailable` (logged here, with its cause), never a refusal of the request.
    fn from(err: StoreError) -> Self {
        use taskgate_core::Problem;
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Problem::unavailable()
            }
            StoreError::NotFound => Problem::not_found("Not found"),
            StoreError::Conflict { kind } => Problem::conflict("Conflict")
                .with("code", "conflict")
                .with("constraint", kind.name()),
            other => Problem::internal(other),
        }
    }
}

/// Result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;
