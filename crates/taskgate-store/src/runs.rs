//! Runs, batches and their streams.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Internal id (realtime row key, list cursor tiebreak).
    pub id: String,
    /// `run_…`, what clients see as the run's id.
    pub friendly_id: String,
    pub environment_id: String,
    pub task_identifier: String,
    /// The stored status (`PENDING`, `CANCELED`, …); see `taskgate_core::run::api_status`.
    pub status: String,
    pub payload: Option<String>,
    pub payload_type: String,
    pub output: Option<String>,
    pub output_type: Option<String>,
    /// A `TaskRunError` as JSON text.
    pub error: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Option<String>,
    pub metadata_type: Option<String>,
    /// The hashed idempotency key the SDK sends, and the user's own key.
    pub idempotency_key: Option<String>,
    pub idempotency_key_user: Option<String>,
    pub idempotency_key_expires_at: Option<DateTime<Utc>>,
    pub queue: Option<String>,
    pub concurrency_key: Option<String>,
    pub max_attempts: Option<i64>,
    pub machine: Option<String>,
    /// The TTL as the client gave it (`"1h"`, `"30"`), and when it expires the run if queued.
    pub ttl: Option<String>,
    pub ttl_expires_at: Option<DateTime<Utc>>,
    pub delay_until: Option<DateTime<Utc>>,
    pub batch_id: Option<String>,
    pub is_test: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    /// Increases with every change; the realtime offset.
    pub version: i64,
}

/// How a trigger deduplicates.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub user_key: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A trigger request's own idempotency key (`x-trigger-request-idempotency-key`), which SDK
/// clients reuse across the retries of one call: a retry inside the window gets the run the
/// first attempt created.
#[derive(Debug, Clone)]
pub struct RequestKey {
    /// Lowercase hex SHA-256 of the JSON `[key, environment id, task id]`.
    pub hash: String,
    pub expires_at: DateTime<Utc>,
}

/// The result of a trigger.
#[derive(Debug, Clone)]
pub struct Triggered {
    pub run: Run,
    /// An existing run with the same idempotency key was returned.
    pub cached: bool,
}

/// Filters of a run listing (already validated and mapped to stored values).
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub statuses: Vec<String>,
    pub task_identifiers: Vec<String>,
    pub tags: Vec<String>,
    pub batch_id: Option<String>,
    pub is_test: Option<bool>,
    pub queues: Vec<String>,
    pub machines: Vec<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// One page request: `limit` rows strictly after (or before) a `(created_at, id)` position.
#[derive(Debug, Clone)]
pub struct RunPage {
    pub limit: u32,
    /// `(created_at, id)` the page starts after, in newest-first order.
    pub after: Option<(DateTime<Utc>, String)>,
    /// `(created_at, id)` the page ends before (paging backwards).
    pub before: Option<(DateTime<Utc>, String)>,
}

/// A status change.
#[derive(Debug, Clone)]
pub struct RunUpdate {
    pub status: String,
    pub at: DateTime<Utc>,
    pub output: Option<(String, String)>,
    pub error: Option<String>,
}

/// A batch created by the two-phase batch API.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: String,
    pub friendly_id: String,
    pub environment_id: String,
    pub run_count: i64,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sealed: bool,
}

/// One chunk of a run's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChunk {
    pub seq: i64,
    pub data: String,
    pub created_at: DateTime<Utc>,
}

/// Runs and what hangs off them.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Creates a run, honouring a request key (a retry of a request that already created a
    /// run gets that run, `cached: false`, before anything else is checked), an idempotency
    /// key (an existing run with a live key that has not failed is returned instead) and a
    /// one-time-use token hash (a second use is `Conflict{"one_time_use_tokens"}`), in one
    /// transaction.
    async fn trigger_run(
        &self,
        run: Run,
        idempotency: Option<Idempotency>,
        one_time_use: Option<String>,
        request_key: Option<RequestKey>,
        now: DateTime<Utc>,
    ) -> StoreResult<Triggered>;
    /// A run of an environment by friendly id.
    async fn get_run(&self, environment_id: &str, friendly_id: &str) -> StoreResult<Option<Run>>;
    /// A page of an environment's runs, newest first; fetches `limit` rows.
    async fn list_runs(
        &self,
        environment_id: &str,
        filter: &RunFilter,
        page: &RunPage,
    ) -> StoreResult<Vec<Run>>;
    /// Changes a run's status (unless it is already final), bumping its version. Returns the
    /// run as it is afterwards and whether it changed.
    async fn update_run(
        &self,
        environment_id: &str,
        friendly_id: &str,
        update: RunUpdate,
    ) -> StoreResult<(Run, bool)>;
    /// Moves due DELAYED runs to PENDING and expires queued runs past their TTL.
    async fn advance_due_runs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Run>>;
    /// Creates a batch, or returns the one with the same idempotency key. A one-time-use token
    /// marker is spent first, as for [`RunStore::trigger_run`]: a second use is
    /// `Conflict{"one_time_use_tokens"}`, whether or not the batch would be a cached one.
    async fn create_batch(
        &self,
        batch: Batch,
        one_time_use: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Batch, bool)>;
    async fn get_batch(
        &self,
        environment_id: &str,
        friendly_id: &str,
    ) -> StoreResult<Option<Batch>>;
    /// Records that item `index` of a batch produced `run_friendly_id`; false when the index
    /// was already recorded (the item is a duplicate).
    async fn add_batch_item(
        &self,
        batch_id: &str,
        index: i64,
        run_friendly_id: &str,
    ) -> StoreResult<bool>;
    /// Marks a batch sealed when all its items are in; returns the count of items.
    async fn seal_batch(&self, batch_id: &str) -> StoreResult<(i64, bool)>;
    /// Appends a chunk to a run's stream; returns its sequence number (1, 2, …).
    async fn append_stream_chunk(
        &self,
        run_id: &str,
        stream_id: &str,
        data: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// Chunks with `seq > after`, oldest first, at most `limit`.
    async fn read_stream(
        &self,
        run_id: &str,
        stream_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<StreamChunk>>;
}

/// Applies a status change to a run in memory: timestamps and version. Shared by backends.
pub fn apply_update(r: &mut Run, update: RunUpdate) {
    use taskgate_core::run::{is_final, stored};
    r.status = update.status;
    r.updated_at = update.at;
    r.version += 1;
    if r.status == stored::EXECUTING && r.started_at.is_none() {
        r.started_at = Some(update.at);
    }
    if r.status == stored::EXPIRED {
        r.expired_at = Some(update.at);
    }
    if is_final(&r.status) && r.completed_at.is_none() {
        r.completed_at = Some(update.at);
    }
    if let Some((data, kind)) = update.output {
        r.output = Some(data);
        r.output_type = Some(kind);
    }
    if update.error.is_some() {
        r.error = update.error;
    }
}
