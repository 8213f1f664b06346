//! What the run engine stores besides runs: registered workers and their tasks, the queue's
//! dequeue, environment variables (sealed), run log records and development presence.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use taskgate_core::ids::{
    DeploymentId, EnvironmentId, RunFriendlyId, RunId, WorkerFriendlyId, WorkerId,
};

use crate::error::StoreResult;
use crate::runs::Run;

/// A task as a worker registered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTask {
    /// The task id (`slug`), what runs name as their task identifier.
    pub slug: String,
    pub file_path: String,
    pub export_name: Option<String>,
    /// The task's retry settings, as JSON.
    pub retry_config: Option<String>,
    pub queue_name: Option<String>,
    /// A machine preset name.
    pub machine: Option<String>,
    pub max_duration_seconds: Option<i64>,
    /// The task's default TTL (`"10m"`, or seconds as text).
    pub ttl: Option<String>,
    /// The payload's JSON schema, as JSON text.
    pub payload_schema: Option<String>,
    pub description: Option<String>,
    /// `STANDARD`, `SCHEDULED`, … as the manifest says.
    pub trigger_source: Option<String>,
    /// Its `cron`, for a scheduled task that declares one.
    pub schedule: Option<crate::schedules::DeclaredSchedule>,
}

/// A registered worker: one build of an environment's tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub id: WorkerId,
    /// What the worker's CLI knows it by; dequeued messages carry it.
    pub friendly_id: WorkerFriendlyId,
    pub environment_id: EnvironmentId,
    /// `YYYYMMDD.N`, in registration order within the environment and day.
    pub version: String,
    pub content_hash: String,
    pub sdk_version: Option<String>,
    pub cli_version: Option<String>,
    pub runtime: Option<String>,
    pub runtime_version: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The deployment it was indexed from; `None` for a development CLI's build.
    pub deployment_id: Option<DeploymentId>,
}

/// A worker to register; the store assigns its version.
#[derive(Debug, Clone)]
pub struct NewWorker {
    pub id: WorkerId,
    pub friendly_id: WorkerFriendlyId,
    pub environment_id: EnvironmentId,
    pub content_hash: String,
    pub sdk_version: Option<String>,
    pub cli_version: Option<String>,
    pub runtime: Option<String>,
    pub runtime_version: Option<String>,
    pub tasks: Vec<WorkerTask>,
    /// The queues its tasks run on, each once, with their concurrency limits.
    pub queues: Vec<QueueLimit>,
    /// The deployment being indexed: the worker takes its version and the deployment becomes
    /// `DEPLOYED` in the same transaction (`Conflict{DeploymentIndexed}` when it is not
    /// building any more).
    pub deployment_id: Option<DeploymentId>,
}

/// A queue a worker declares (a task's own, `task/<id>` unless named, or a shared `queue()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLimit {
    pub name: String,
    /// Runs of the queue (of each concurrency key of it) that may run at once; `None` leaves
    /// only the environment's limit.
    pub concurrency_limit: Option<u32>,
}

/// A run handed to a worker by a dequeue, with what starting it needs.
#[derive(Debug, Clone)]
pub struct Dequeued {
    pub run: Run,
    pub worker: Worker,
    pub task: WorkerTask,
}

/// What a dequeue found.
#[derive(Debug, Clone)]
pub enum DequeueOutcome {
    /// A run, now the worker's.
    Taken(Box<Dequeued>),
    /// Nothing to take now; `next_available_at` is when a queued run of the worker's tasks
    /// becomes available (a queued retry), if one is waiting for its time.
    Empty {
        next_available_at: Option<DateTime<Utc>>,
    },
    /// The environment holds as many runs as its concurrency limit allows.
    AtCapacity,
}

/// An environment variable, its value still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value_sealed: String,
    /// Listings redact it.
    pub is_secret: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A variable to set, its value already sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvVar {
    pub key: String,
    pub value_sealed: String,
    pub is_secret: bool,
}

/// One log record of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLog {
    /// Order of arrival (set by the store); with `time`, the position for paging.
    pub seq: i64,
    pub attempt_number: Option<i64>,
    pub time: DateTime<Utc>,
    /// `info`, `warn`, `error`, `debug`, `log`… as the SDK names it.
    pub severity: String,
    pub message: String,
    /// The record's attributes, as JSON text.
    pub attributes: Option<String>,
}

/// A log record to store, for a run named by its friendly id.
#[derive(Debug, Clone)]
pub struct NewRunLog {
    pub run_friendly_id: RunFriendlyId,
    pub attempt_number: Option<i64>,
    pub time: DateTime<Utc>,
    pub severity: String,
    pub message: String,
    pub attributes: Option<String>,
}

/// A span a task process exported for one of its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpan {
    /// 16 hex digits, as the process named it.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub attempt_number: Option<i64>,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_error: bool,
    /// The span's attributes, as JSON text.
    pub attributes: Option<String>,
}

/// A span to store, for a run named by its friendly id.
#[derive(Debug, Clone)]
pub struct NewRunSpan {
    pub run_friendly_id: RunFriendlyId,
    pub span: RunSpan,
}

/// Limits a dequeue honours.
#[derive(Debug, Clone, Copy)]
pub struct DequeueLimits {
    /// Runs of the environment a worker may hold at once.
    pub concurrency: u32,
}

/// Workers, the queue, variables, logs and presence.
#[async_trait]
pub trait EngineStore: Send + Sync {
    /// Registers a worker and its tasks, assigning the environment's next version of the
    /// day (`20261127.1`, `.2`, …) or its deployment's, in one transaction. A development
    /// build becomes the current worker at once; a deployment's when it is promoted.
    async fn register_worker(&self, worker: NewWorker, now: DateTime<Utc>) -> StoreResult<Worker>;
    /// A worker of the environment by friendly id or id, with its tasks.
    async fn get_worker(
        &self,
        environment_id: &EnvironmentId,
        id_or_friendly_id: &str,
    ) -> StoreResult<Option<(Worker, Vec<WorkerTask>)>>;
    /// The environment's worker of `version` (`20261127.1`), with its tasks.
    async fn worker_by_version(
        &self,
        environment_id: &EnvironmentId,
        version: &str,
    ) -> StoreResult<Option<(Worker, Vec<WorkerTask>)>>;
    /// Whether a worker of the environment has declared the queue `name`.
    async fn queue_declared(&self, environment_id: &EnvironmentId, name: &str)
        -> StoreResult<bool>;
    /// The environment's newest worker, with its tasks.
    async fn current_worker(
        &self,
        environment_id: &EnvironmentId,
    ) -> StoreResult<Option<(Worker, Vec<WorkerTask>)>>;
    /// Hands the environment's next dequeueable run of one of `worker`'s `tasks` to that
    /// worker, in one transaction that also writes its new snapshot, unless the queue has none
    /// or the environment already holds `limits.concurrency` runs. Dequeues of one environment
    /// are serialised, so the limit is exact across nodes. `NotFound` for another
    /// environment's worker, or an environment that does not exist.
    async fn dequeue_run(
        &self,
        environment_id: &EnvironmentId,
        worker: &Worker,
        tasks: &[WorkerTask],
        limits: DequeueLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<DequeueOutcome>;
    /// Runs of the environment waiting in its queue (queued or delayed), counting at most
    /// `up_to` of them.
    async fn queue_length(&self, environment_id: &EnvironmentId, up_to: u64) -> StoreResult<u64>;

    /// Sets variables (inserting or replacing each), in one transaction. With `overwrite`
    /// false, existing variables keep their values and only new ones are added. Returns how
    /// many were written.
    async fn set_env_vars(
        &self,
        environment_id: &EnvironmentId,
        vars: &[NewEnvVar],
        overwrite: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// An environment's variables, by key.
    async fn list_env_vars(&self, environment_id: &EnvironmentId) -> StoreResult<Vec<EnvVar>>;
    /// Deletes a variable; false when it did not exist.
    async fn delete_env_var(&self, environment_id: &EnvironmentId, key: &str) -> StoreResult<bool>;

    /// Stores log records of the environment's runs; records naming a run of another
    /// environment, or no run, are dropped. Returns how many were stored.
    async fn append_run_logs(
        &self,
        environment_id: &EnvironmentId,
        logs: &[NewRunLog],
    ) -> StoreResult<u64>;
    /// A run's log records in time order (ties in arrival order), after the record at
    /// `after` (its time and seq), at most `limit`.
    async fn list_run_logs(
        &self,
        run_id: &RunId,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> StoreResult<Vec<RunLog>>;

    /// Stores spans of the environment's runs, replacing a stored span with the same id (a
    /// span is sent again when it ends); spans naming a run of another environment, or no
    /// run, are dropped. Returns how many were stored.
    async fn append_run_spans(
        &self,
        environment_id: &EnvironmentId,
        spans: &[NewRunSpan],
    ) -> StoreResult<u64>;
    /// A run's spans in start order, at most `limit`.
    async fn list_run_spans(&self, run_id: &RunId, limit: u32) -> StoreResult<Vec<RunSpan>>;

    /// Records that the environment's development CLI was seen at `now`.
    async fn touch_dev_presence(
        &self,
        environment_id: &EnvironmentId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// When the environment's development CLI was last seen.
    async fn dev_presence(
        &self,
        environment_id: &EnvironmentId,
    ) -> StoreResult<Option<DateTime<Utc>>>;
}
