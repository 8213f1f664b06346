//! Waitpoints and the runs that wait for them.
//!
//! Everything that blocks or continues a run happens inside the transaction that causes it:
//! the trigger of a waited-for child, the completion of a run, a batch or a token, a timer
//! firing. A waiting run therefore never misses its continuation, whichever node, restart or
//! order of commits comes in between. Locks are always taken in the same order (a run before
//! its own waitpoint, a waitpoint before the runs waiting for it), so two such transactions
//! never deadlock on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::engine::waitpoint::{
    TokenStatus, WaitpointKind, WaitpointOutput, WaitpointStatus,
};
use taskgate_core::ids::{
    new_id, new_waitpoint_friendly_id, BatchFriendlyId, BatchId, EnvironmentId, RunFriendlyId,
    RunId, WaitpointFriendlyId, WaitpointId,
};

use crate::error::StoreResult;
use crate::runs::{Refusal, Run};

/// A waitpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Waitpoint {
    pub id: WaitpointId,
    /// `waitpoint_…`, what clients and task code name it by.
    pub friendly_id: WaitpointFriendlyId,
    pub environment_id: EnvironmentId,
    pub kind: WaitpointKind,
    pub status: WaitpointStatus,
    pub completed_at: Option<DateTime<Utc>>,
    /// A point in time's: when it completes.
    pub completed_after: Option<DateTime<Utc>>,
    /// A token's: when it times out unless completed first.
    pub timeout_at: Option<DateTime<Utc>>,
    pub output: Option<String>,
    pub output_type: Option<String>,
    pub output_is_error: bool,
    /// The key as the client sent it (the SDK hashes the user's), and when it stops
    /// deduplicating.
    pub idempotency_key: Option<String>,
    pub idempotency_key_expires_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    /// A run's waitpoint: the run (internal id and friendly id).
    pub completed_by_run_id: Option<RunId>,
    pub completed_by_run: Option<RunFriendlyId>,
    /// A batch's waitpoint: the batch (internal id and friendly id).
    pub completed_by_batch_id: Option<BatchId>,
    pub completed_by_batch: Option<BatchFriendlyId>,
    pub created_at: DateTime<Utc>,
}

impl Waitpoint {
    /// A new pending waitpoint of `kind`, with fresh ids.
    pub fn new(environment_id: &EnvironmentId, kind: WaitpointKind, now: DateTime<Utc>) -> Self {
        Waitpoint {
            id: new_id().into(),
            friendly_id: new_waitpoint_friendly_id().into(),
            environment_id: environment_id.clone(),
            kind,
            status: WaitpointStatus::Pending,
            completed_at: None,
            completed_after: None,
            timeout_at: None,
            output: None,
            output_type: None,
            output_is_error: false,
            idempotency_key: None,
            idempotency_key_expires_at: None,
            tags: Vec::new(),
            completed_by_run_id: None,
            completed_by_run: None,
            completed_by_batch_id: None,
            completed_by_batch: None,
            created_at: now,
        }
    }

    /// When its timer fires while it is pending: a point in time's moment, a token's timeout.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        if self.status != WaitpointStatus::Pending {
            return None;
        }
        match self.kind {
            WaitpointKind::DateTime => self.completed_after,
            WaitpointKind::Manual => self.timeout_at,
            WaitpointKind::Run | WaitpointKind::Batch => None,
        }
    }

    /// Its packet, once complete.
    pub fn output(&self) -> WaitpointOutput {
        WaitpointOutput {
            data: self.output.clone(),
            data_type: self
                .output_type
                .clone()
                .unwrap_or_else(|| "application/json".into()),
            is_error: self.output_is_error,
        }
    }
}

/// How a waitpoint deduplicates: a second creation with a live key returns the first.
#[derive(Debug, Clone)]
pub struct WaitpointIdempotency {
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// What a run is to wait for.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// A new point in time (`waitpoint.kind` is `DATETIME`), or the one with the same live
    /// idempotency key.
    DateTime {
        waitpoint: Box<Waitpoint>,
        idempotency: Option<WaitpointIdempotency>,
    },
    /// An existing token of the run's environment.
    Token(WaitpointFriendlyId),
}

/// A run blocked on a waitpoint.
#[derive(Debug, Clone)]
pub struct Blocked {
    /// The run afterwards: waiting, or already continued when the waitpoint was complete.
    pub run: Run,
    pub waitpoint: Waitpoint,
}

/// Why a run could not wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitRefusal {
    /// The run is not executing an attempt.
    Run(Refusal),
    /// No such token in the environment.
    NoToken,
}

/// Filters of a token listing.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub statuses: Vec<TokenStatus>,
    pub idempotency_key: Option<String>,
    /// Tokens with any of these tags.
    pub tags: Vec<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// One page request: `limit` rows strictly after (or before) a `(created_at, id)` position,
/// newest first.
#[derive(Debug, Clone)]
pub struct TokenPage {
    pub limit: u32,
    pub after: Option<(DateTime<Utc>, WaitpointId)>,
    pub before: Option<(DateTime<Utc>, WaitpointId)>,
}

/// What a pass over due timers did.
#[derive(Debug, Clone, Default)]
pub struct Fired {
    /// Waitpoints completed (points in time reached, tokens timed out).
    pub completed: u64,
    /// Runs that continued because of them.
    pub continued: u64,
    /// When the next pending timer is due, if any.
    pub next_due: Option<DateTime<Utc>>,
}

/// One waitpoint a run waits for (or waited for, until it continued).
#[derive(Debug, Clone)]
pub struct RunWait {
    pub waitpoint: Waitpoint,
    /// The batch and index, for an item of a batch the run waits for.
    pub batch: Option<BatchFriendlyId>,
    pub batch_index: Option<i64>,
    /// When the run began to wait for it.
    pub since: DateTime<Utc>,
}

/// Waitpoints, their timers, and the runs that wait for them.
#[async_trait]
pub trait WaitStore: Send + Sync {
    /// Blocks an executing run of the environment on `wait`, in one transaction: the run moves
    /// to `EXECUTING_WITH_WAITPOINTS`, or continues at once when the waitpoint is already
    /// complete (a past time, a completed token).
    async fn block_run(
        &self,
        environment_id: &EnvironmentId,
        run: &RunFriendlyId,
        wait: WaitFor,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Blocked, WaitRefusal>>;
    /// Creates a token, or returns the one with the same live idempotency key (`true`).
    async fn create_token(
        &self,
        token: Waitpoint,
        idempotency: Option<WaitpointIdempotency>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Waitpoint, bool)>;
    /// Makes `token` a run's wait for the next record of its input stream `stream` after
    /// chunk `after_seq`: completed at once with the first such record already sent (its
    /// `data`), else pending until one is sent ([`WaitStore::complete_input_stream_waits`]) or
    /// it times out. With a live idempotency key, the waitpoint made with it (`true`).
    async fn create_input_stream_wait(
        &self,
        token: Waitpoint,
        run_id: &RunId,
        stream: &str,
        after_seq: i64,
        idempotency: Option<WaitpointIdempotency>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Waitpoint, bool)>;
    /// Completes the run's pending waits for its input stream `stream` with a record's data,
    /// continuing the runs they unblock; how many were completed.
    async fn complete_input_stream_waits(
        &self,
        run_id: &RunId,
        stream: &str,
        output: WaitpointOutput,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// A waitpoint of the environment by friendly id.
    async fn get_waitpoint(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &WaitpointFriendlyId,
    ) -> StoreResult<Option<Waitpoint>>;
    /// A waitpoint by friendly id, whichever environment it is in: for its callback URL, which
    /// carries no credential but the URL's own mac.
    async fn find_waitpoint(
        &self,
        friendly_id: &WaitpointFriendlyId,
    ) -> StoreResult<Option<Waitpoint>>;
    /// A page of the environment's tokens, newest first; fetches `limit` rows.
    async fn list_tokens(
        &self,
        environment_id: &EnvironmentId,
        filter: &TokenFilter,
        page: &TokenPage,
    ) -> StoreResult<Vec<Waitpoint>>;
    /// Completes a pending token with `output` and continues every run it unblocks, in one
    /// transaction. A completed token is returned as it is. `None` when the environment has
    /// no such token.
    async fn complete_token(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &WaitpointFriendlyId,
        output: WaitpointOutput,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Waitpoint>>;
    /// Completes up to `limit` waitpoints whose timer is due at `now` (points in time, token
    /// timeouts) and continues the runs they unblock. Several nodes may call it at once:
    /// each timer fires once.
    async fn fire_due_waitpoints(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Fired>;
    /// When the next pending timer is due, if any.
    async fn next_waitpoint_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// What a run waits for now, in the order it will be handed them.
    async fn run_waits(&self, run_id: &RunId) -> StoreResult<Vec<RunWait>>;
    /// A run of the environment by internal id (a parent, from its child).
    async fn run_by_id(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunId,
    ) -> StoreResult<Option<Run>>;
    /// Runs that `parent` triggered, oldest first, at most `limit`; with `unfinished`, only
    /// those not yet finished.
    async fn child_runs(
        &self,
        environment_id: &EnvironmentId,
        parent: &RunId,
        unfinished: bool,
        limit: u32,
    ) -> StoreResult<Vec<Run>>;
}
