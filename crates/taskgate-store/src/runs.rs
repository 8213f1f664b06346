//! Runs, batches and their streams.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::engine::{
    AttemptOutcome, Event, ExecutionStatus, RetrySettings, RunState, RunStatus, Transition,
};
use taskgate_core::ids::{
    BatchFriendlyId, BatchId, EnvironmentId, RunFriendlyId, RunId, SnapshotId, WorkerId,
};
use taskgate_core::task_error::TaskRunError;

use crate::error::StoreResult;

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Internal id (realtime row key, list cursor tiebreak).
    pub id: RunId,
    /// `run_…`, what clients see as the run's id.
    pub friendly_id: RunFriendlyId,
    pub environment_id: EnvironmentId,
    pub task_identifier: String,
    /// The status clients see (through `RunStatus::api_status`).
    pub status: RunStatus,
    /// The latest execution snapshot: its status, id (`snapshot_…`, new at every change),
    /// description and start.
    pub execution_status: ExecutionStatus,
    pub snapshot_id: SnapshotId,
    pub snapshot_description: String,
    pub snapshot_at: DateTime<Utc>,
    /// Attempts started so far, and when the latest began.
    pub attempt_number: i64,
    pub attempt_started_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Not dequeued before this; the queue's order.
    pub available_at: Option<DateTime<Utc>>,
    /// The worker (internal id) the run is locked to since its first dequeue, and its version.
    pub worker_id: Option<WorkerId>,
    pub task_version: Option<String>,
    /// The task's `maxDuration` and retry settings (JSON), locked at the first dequeue.
    pub max_duration_seconds: Option<i64>,
    pub retry_config: Option<String>,
    /// In a DEVELOPMENT environment.
    pub is_development: bool,
    /// Created by a replay.
    pub is_replay: bool,
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
    /// The batch's friendly id.
    pub batch_id: Option<BatchFriendlyId>,
    /// The run whose task triggered this one (`parentRunId`), and whether it waits for it
    /// (`triggerAndWait`, `batchTriggerAndWait`).
    pub parent_run_id: Option<RunId>,
    pub resume_parent_on_completion: bool,
    /// The waitpoints the latest snapshot hands the waiting process, as the wire's JSON
    /// array; set only on the snapshot that continues a wait.
    pub completed_waitpoints: Option<String>,
    /// The batch the latest snapshot waits for, or continues from.
    pub snapshot_batch_id: Option<BatchFriendlyId>,
    pub is_test: bool,
    /// The schedule (`sched_…`) whose fire triggered it.
    pub schedule_id: Option<String>,
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
    pub statuses: Vec<RunStatus>,
    pub task_identifiers: Vec<String>,
    /// Worker versions (`20261127.1`) the runs were locked to.
    pub versions: Vec<String>,
    pub tags: Vec<String>,
    pub batch_id: Option<BatchFriendlyId>,
    pub is_test: Option<bool>,
    pub queues: Vec<String>,
    pub machines: Vec<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Only runs counted under this error fingerprint.
    pub error_fingerprint: Option<String>,
}

/// One page request: `limit` rows strictly after (or before) a `(created_at, id)` position.
#[derive(Debug, Clone)]
pub struct RunPage {
    pub limit: u32,
    /// `(created_at, id)` the page starts after, in newest-first order.
    pub after: Option<(DateTime<Utc>, RunId)>,
    /// `(created_at, id)` the page ends before (paging backwards).
    pub before: Option<(DateTime<Utc>, RunId)>,
}

impl Run {
    /// A run just triggered in `environment_id`, in `state` (from `RunState::triggered`), with a
    /// fresh id, friendly id and first snapshot; payload, options and tags are the caller's to
    /// set.
    pub fn triggered(
        environment_id: &EnvironmentId,
        task_identifier: &str,
        state: &RunState,
        now: DateTime<Utc>,
    ) -> Run {
        use taskgate_core::ids;
        Run {
            id: ids::new_id().into(),
            friendly_id: ids::new_run_friendly_id().into(),
            environment_id: environment_id.clone(),
            task_identifier: task_identifier.to_string(),
            status: state.status,
            execution_status: state.execution,
            snapshot_id: ids::new_snapshot_friendly_id().into(),
            snapshot_description: "Run was triggered".into(),
            snapshot_at: now,
            attempt_number: 0,
            attempt_started_at: None,
            heartbeat_at: None,
            available_at: state.available_at,
            worker_id: None,
            task_version: None,
            max_duration_seconds: None,
            retry_config: None,
            is_development: state.is_development,
            is_replay: false,
            payload: None,
            payload_type: "application/json".into(),
            output: None,
            output_type: None,
            error: None,
            tags: Vec::new(),
            metadata: None,
            metadata_type: None,
            idempotency_key: None,
            idempotency_key_user: None,
            idempotency_key_expires_at: None,
            queue: None,
            concurrency_key: None,
            max_attempts: state.max_attempts.map(i64::from),
            machine: None,
            ttl: None,
            ttl_expires_at: state.ttl_expires_at,
            delay_until: None,
            batch_id: None,
            parent_run_id: None,
            resume_parent_on_completion: false,
            completed_waitpoints: None,
            snapshot_batch_id: None,
            is_test: false,
            schedule_id: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            completed_at: None,
            expired_at: None,
            version: 1,
        }
    }

    /// The state the engine's state machine reads.
    pub fn state(&self) -> RunState {
        RunState {
            status: self.status,
            execution: self.execution_status,
            attempt_number: u32::try_from(self.attempt_number.max(0)).unwrap_or(u32::MAX),
            max_attempts: self
                .max_attempts
                .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX)),
            retry: self
                .retry_config
                .as_deref()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
                .and_then(|v| RetrySettings::from_json(&v)),
            max_duration_seconds: self
                .max_duration_seconds
                .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX)),
            is_development: self.is_development,
            snapshot_at: self.snapshot_at,
            heartbeat_at: self.heartbeat_at,
            available_at: self.available_at,
            ttl_expires_at: self.ttl_expires_at,
            started_at: self.started_at,
            completed_at: self.completed_at,
            expired_at: self.expired_at,
        }
    }

    /// Takes the state a transition produced. A new snapshot gets `snapshot_id`; the error of
    /// a failed run is stored as JSON.
    pub fn apply(&mut self, t: &Transition, snapshot_id: SnapshotId, now: DateTime<Utc>) {
        let s = &t.state;
        self.status = s.status;
        self.execution_status = s.execution;
        self.attempt_number = i64::from(s.attempt_number);
        self.max_attempts = s.max_attempts.map(i64::from);
        self.retry_config = s
            .retry
            .and_then(|r| serde_json::to_string(&r).ok())
            .or(self.retry_config.take());
        self.max_duration_seconds = s.max_duration_seconds.map(i64::from);
        self.heartbeat_at = s.heartbeat_at;
        self.available_at = s.available_at;
        self.started_at = s.started_at;
        self.completed_at = s.completed_at;
        self.expired_at = s.expired_at;
        if let Some(description) = t.snapshot {
            // What a snapshot carries belongs to it alone; the caller sets it again when the
            // new one carries something.
            self.completed_waitpoints = None;
            self.snapshot_batch_id = None;
            self.snapshot_id = snapshot_id;
            self.snapshot_description = description.to_string();
            self.snapshot_at = s.snapshot_at;
            self.updated_at = now;
            self.version += 1;
        }
        if let Some(e) = &t.error {
            self.error = serde_json::to_string(e).ok();
        }
    }

    /// When the sweeper must next look at this run.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        self.state().next_due()
    }
}

/// An attempt of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub number: i64,
    pub status: AttemptOutcome,
    pub worker_id: Option<WorkerId>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<TaskRunError>,
}

/// Why an event was not applied to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller named a snapshot that is no longer the latest.
    StaleSnapshot { latest: String },
    /// The state machine refused the event.
    Engine(taskgate_core::engine::EngineError),
}

/// An event applied to a run.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The run afterwards.
    pub run: Run,
    pub transition: Transition,
}

/// What a run event carries besides the state machine's event: the completed attempt's
/// output, which is data rather than state.
#[derive(Debug, Clone, Default)]
pub struct EventData {
    /// `(data, type)` of a successful attempt's output.
    pub output: Option<(String, String)>,
    /// `(data, type)` of the run's metadata as the attempt flushed it.
    pub metadata: Option<(String, String)>,
}

/// An event for [`RunStore::apply_run_event`].
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub event: Event,
    /// The snapshot the caller acted on; when given and not the latest, the event is refused.
    pub expected_snapshot: Option<SnapshotId>,
    pub data: EventData,
}

/// A batch created by the two-phase batch API.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: BatchId,
    pub friendly_id: BatchFriendlyId,
    pub environment_id: EnvironmentId,
    pub run_count: i64,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sealed: bool,
    /// The run that created the batch (`parentRunId`), and whether it waits for every item
    /// (`batchTriggerAndWait`); items inherit both.
    pub parent_run_id: Option<RunId>,
    pub resume_parent_on_completion: bool,
}

/// What adding tags to a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagsAdded {
    /// The tags that were new, now on the run (empty: it had them all).
    Added(Vec<String>),
    /// The run (with `existing` tags) would have more than allowed: none was added.
    TooMany { existing: usize, new: Vec<String> },
}

/// One chunk of a run's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChunk {
    pub seq: i64,
    pub data: String,
    pub created_at: DateTime<Utc>,
}

/// A trigger whose parent waits for the run it makes (or finds).
#[derive(Debug, Clone)]
pub struct ParentWait {
    /// The waiting run (internal id), of the same environment.
    pub parent_run_id: RunId,
    /// The batch and index of an item of `batchTriggerAndWait`.
    pub batch: Option<(BatchFriendlyId, i64)>,
}

/// A trigger's debounce (`debounce: {key, delay, mode, maxDelay}`): triggers of the task with
/// the same key collapse into one delayed run, each pushing it back to `delay` from then,
/// while that stays within `max_delay` of the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    pub key: String,
    pub delay: chrono::Duration,
    pub max_delay: Option<chrono::Duration>,
    /// `mode: "trailing"`: each trigger's payload, metadata, tags, `maxAttempts` and machine
    /// replace the run's; otherwise the first trigger's stay.
    pub trailing: bool,
}

/// Everything a trigger asks of the store: see [`RunStore::trigger`].
#[derive(Debug, Clone)]
pub struct NewTrigger {
    pub run: Run,
    pub idempotency: Option<Idempotency>,
    /// A one-time-use token's marker, spent by this trigger.
    pub one_time_use: Option<String>,
    pub request_key: Option<RequestKey>,
    pub wait: Option<ParentWait>,
    /// With a debounce, `run` (delayed by `delay`) is made only when the key has no delayed
    /// run that can still be pushed back; otherwise that run is pushed back and returned.
    pub debounce: Option<Debounce>,
}

/// Runs and what hangs off them.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Creates a run, honouring a request key (a retry of a request that already created a
    /// run gets that run, `cached: false`, before anything else is checked), an idempotency
    /// key (an existing run with a live key that has not failed is returned instead) and a
    /// one-time-use token hash (a second use is `Conflict{"one_time_use_tokens"}`), in one
    /// transaction. With `wait`, the parent is blocked on the run (made or found) in the same
    /// transaction, and continues at once when that run has already finished;
    /// `Conflict{ParentRun}` when the parent is not an executing run of the environment.
    async fn trigger(&self, trigger: NewTrigger, now: DateTime<Utc>) -> StoreResult<Triggered>;
    /// [`RunStore::trigger`] without a waiting parent.
    async fn trigger_run(
        &self,
        run: Run,
        idempotency: Option<Idempotency>,
        one_time_use: Option<String>,
        request_key: Option<RequestKey>,
        now: DateTime<Utc>,
    ) -> StoreResult<Triggered> {
        let trigger = NewTrigger {
            run,
            idempotency,
            one_time_use,
            request_key,
            wait: None,
            debounce: None,
        };
        self.trigger(trigger, now).await
    }
    /// A run of an environment by friendly id.
    async fn get_run(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &RunFriendlyId,
    ) -> StoreResult<Option<Run>>;
    /// The same from the read replica when there is one (else the primary): for frequent reads
    /// that can tell a stale row by its `version` and then ask [`RunStore::get_run`].
    async fn get_run_from_replica(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &RunFriendlyId,
    ) -> StoreResult<Option<Run>>;
    /// A page of an environment's runs, newest first; fetches `limit` rows.
    async fn list_runs(
        &self,
        environment_id: &EnvironmentId,
        filter: &RunFilter,
        page: &RunPage,
    ) -> StoreResult<Vec<Run>>;
    /// Adds `tags` to a run of the environment (those it lacks), leaving it with at most
    /// `max`, in one transaction; feeds see the change. `None` when the run is not the
    /// environment's.
    async fn add_run_tags(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        tags: &[String],
        max: usize,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TagsAdded>>;
    /// Applies an event to a run through the engine's state machine, in one transaction:
    /// refused when the run is another environment's (`NotFound`), when `expected_snapshot`
    /// is stale, or when the state machine refuses it. Records attempts as they start and end.
    async fn apply_run_event(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &RunFriendlyId,
        event: RunEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Applied, Refusal>>;
    /// Applies [`Event::Tick`] to every run due at `now` (delays ending, TTLs, stalls,
    /// exceeded durations, unconfirmed cancellations); returns the runs that changed.
    async fn advance_due_runs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Run>>;
    /// A run's attempts, oldest first, the one in progress (if any) last.
    async fn list_attempts(&self, run: &Run) -> StoreResult<Vec<Attempt>>;
    /// Creates a batch, or returns the one with the same idempotency key. A one-time-use token
    /// marker is spent first, as for [`RunStore::trigger_run`]: a second use is
    /// `Conflict{"one_time_use_tokens"}`, whether or not the batch would be a cached one.
    /// When the batch's parent waits for it (`resume_parent_on_completion`), the parent is
    /// blocked on the batch (made or found) in the same transaction: on a cached batch, on
    /// each of its items too; `Conflict{ParentRun}` when the parent is not executing.
    async fn create_batch(
        &self,
        batch: Batch,
        one_time_use: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Batch, bool)>;
    async fn get_batch(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &BatchFriendlyId,
    ) -> StoreResult<Option<Batch>>;
    /// Records that item `index` of a batch produced `run_friendly_id`; false when the index
    /// was already recorded (the item is a duplicate).
    async fn add_batch_item(
        &self,
        batch_id: &BatchId,
        index: i64,
        run_friendly_id: &RunFriendlyId,
    ) -> StoreResult<bool>;
    /// Marks a batch sealed when all its items are in; returns the count of items. A sealed
    /// batch whose runs have all finished completes its waitpoint.
    async fn seal_batch(&self, batch_id: &BatchId, now: DateTime<Utc>) -> StoreResult<(i64, bool)>;
    /// Appends the lines a streaming writer sent (`client`, the first of them numbered
    /// `first_index`) to a run's stream as one chunk, leaving out those at or below the
    /// writer's last index, which it sent before it resumed. Returns the writer's last index
    /// after the append (-1 when it has sent nothing).
    async fn append_stream_lines(
        &self,
        run_id: &RunId,
        stream_id: &str,
        client: &str,
        first_index: i64,
        lines: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// The last line index a streaming writer of the stream reached; `None` before its first.
    async fn stream_writer_index(
        &self,
        run_id: &RunId,
        stream_id: &str,
        client: &str,
    ) -> StoreResult<Option<i64>>;
    /// Appends a chunk to a run's stream; returns its sequence number (1, 2, …).
    async fn append_stream_chunk(
        &self,
        run_id: &RunId,
        stream_id: &str,
        data: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// Chunks with `seq > after`, oldest first, at most `limit`.
    async fn read_stream(
        &self,
        run_id: &RunId,
        stream_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<StreamChunk>>;
}
