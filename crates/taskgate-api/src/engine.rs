//! The run engine's wire types: what `trigger.dev dev` (CLI 4.8.3) sends and expects on the
//! `/engine/v1/dev/*` routes, worker registration, environment variables, dev presence and
//! the current worker. The CLI validates every answer with zod, so required fields are never
//! omitted, optional ones are omitted rather than null, and enum values are exactly the SDK's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `GET /engine/v1/dev/config`: how the CLI paces its dequeues (milliseconds) and where the
/// engine routes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevConfigResponse {
    pub environment_id: String,
    pub dequeue_interval_with_run: u64,
    pub dequeue_interval_without_run: u64,
    pub max_concurrent_runs: u32,
    pub engine_url: String,
}

/// `POST /engine/v1/dev/dequeue`: the worker the CLI runs (the one its dequeued runs are
/// bound to). Older workers are listed but not used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevDequeueRequest {
    #[serde(default)]
    pub current_worker: Option<String>,
    #[serde(default)]
    pub old_workers: Vec<String>,
}

/// A run's execution snapshot: a new `friendlyId` at every change, which is how the CLI
/// notices one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSnapshot {
    pub id: String,
    pub friendly_id: String,
    /// `TaskRunExecutionStatus`: `QUEUED`, `PENDING_EXECUTING`, `EXECUTING`,
    /// `PENDING_CANCEL`, `FINISHED`, …
    pub execution_status: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// A machine preset (`small-1x` by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachinePreset {
    pub name: String,
    /// vCPUs.
    pub cpu: f64,
    /// GB.
    pub memory: f64,
    pub cents_per_ms: f64,
}

/// The background worker a dequeued run is bound to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DequeuedWorker {
    pub id: String,
    /// The id its registration answered, which the CLI keys its workers by.
    pub friendly_id: String,
    pub version: String,
}

/// The run part of a dequeued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DequeuedRun {
    pub id: String,
    pub friendly_id: String,
    pub is_test: bool,
    pub is_replay: bool,
    pub machine: MachinePreset,
    /// The attempt about to start.
    pub attempt_number: i64,
    pub master_queue: String,
    #[schema(value_type = Object)]
    pub trace_context: Map<String, Value>,
}

/// A reference by id and friendly id (`{ "id": …, "friendlyId": … }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FriendlyRef {
    pub id: String,
    pub friendly_id: String,
}

/// An id-only reference (`{ "id": … }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IdRef {
    pub id: String,
}

/// The environment of a dequeued run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DequeuedEnvironment {
    pub id: String,
    /// `DEVELOPMENT`, `STAGING`, `PRODUCTION` or `PREVIEW`.
    #[serde(rename = "type")]
    pub env_type: String,
}

/// No deployment: development workers run on the developer's machine. Always `{}`, which the
/// CLI requires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoDeployment {}

/// One run handed to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DequeuedMessage {
    /// Always `"1"`.
    pub version: String,
    pub snapshot: ExecutionSnapshot,
    pub dequeued_at: DateTime<Utc>,
    /// Waitpoints are not served: always empty.
    #[schema(value_type = Vec<Object>)]
    pub completed_waitpoints: Vec<Value>,
    pub background_worker: DequeuedWorker,
    pub deployment: NoDeployment,
    pub run: DequeuedRun,
    pub environment: DequeuedEnvironment,
    pub organization: IdRef,
    pub project: IdRef,
}

/// `POST /engine/v1/dev/dequeue`: at most one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevDequeueResponse {
    pub dequeued_messages: Vec<DequeuedMessage>,
}

/// A run as the engine routes name it (`BaseRunMetadata`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    pub id: String,
    pub friendly_id: String,
    /// The stored `TaskRunStatus`.
    pub status: String,
    pub attempt_number: Option<i64>,
}

/// `execution.attempt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionAttempt {
    pub number: i64,
    pub started_at: DateTime<Utc>,
}

/// `execution.run`: what the task sees as `ctx.run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRun {
    /// The friendly id (`run_…`).
    pub id: String,
    /// The payload as the trigger stored it (a string; empty when there was none).
    pub payload: String,
    pub payload_type: String,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub is_test: bool,
    pub is_replay: bool,
    pub started_at: DateTime<Utc>,
    /// Attempts allowed: the runtime retries within this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[schema(value_type = Object)]
    pub trace_context: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Always `v2`: taskgate serves every run's input streams (`.on`, `.once`, `.wait`),
    /// which the SDK allows only on a v2 run.
    pub realtime_streams_version: String,
}

/// `execution.task`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTask {
    pub id: String,
    pub file_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_name: Option<String>,
}

/// `execution.queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionQueue {
    pub id: String,
    pub name: String,
}

/// `execution.environment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEnvironment {
    pub id: String,
    pub slug: String,
    #[serde(rename = "type")]
    pub env_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_name: Option<String>,
}

/// `execution.organization`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionOrganization {
    pub id: String,
    pub slug: String,
    pub name: String,
}

/// `execution.project`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionProject {
    pub id: String,
    #[serde(rename = "ref")]
    pub external_ref: String,
    pub slug: String,
    pub name: String,
}

/// The execution of one attempt (`TaskRunExecution`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskRunExecution {
    pub attempt: ExecutionAttempt,
    pub run: ExecutionRun,
    pub task: ExecutionTask,
    pub queue: ExecutionQueue,
    pub environment: ExecutionEnvironment,
    pub organization: ExecutionOrganization,
    pub project: ExecutionProject,
    pub machine: MachinePreset,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<IdRef>,
}

/// `POST …/attempts/start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartAttemptResponse {
    pub run: RunRef,
    pub snapshot: ExecutionSnapshot,
    pub execution: TaskRunExecution,
    /// Merged into the task process's environment.
    pub env_vars: BTreeMap<String, String>,
}

/// `completion.retry`: the worker's retry decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompletionRetry {
    /// When, in epoch milliseconds.
    pub timestamp: f64,
    /// After how many milliseconds.
    pub delay: f64,
}

/// `completion.flushedMetadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlushedMetadata {
    #[serde(default)]
    pub data: Option<String>,
    pub data_type: String,
}

/// How an attempt ended (`TaskRunExecutionResult`), as the worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptCompletion {
    pub ok: bool,
    /// The run's friendly id.
    pub id: String,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub output_type: Option<String>,
    /// A `TaskRunError` when `ok` is false.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    #[serde(default)]
    pub retry: Option<CompletionRetry>,
    #[serde(default)]
    pub skipped_retrying: Option<bool>,
    #[serde(default)]
    pub flushed_metadata: Option<FlushedMetadata>,
}

/// `POST …/attempts/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompleteAttemptRequest {
    pub completion: AttemptCompletion,
}

/// What an attempt's completion led to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteAttemptResult {
    /// `RUN_FINISHED`, `RUN_PENDING_CANCEL`, `RETRY_QUEUED` or `RETRY_IMMEDIATELY`.
    pub attempt_status: String,
    pub snapshot: ExecutionSnapshot,
    pub run: RunRef,
}

/// `POST …/attempts/complete` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompleteAttemptResponse {
    pub result: CompleteAttemptResult,
}

/// The latest state of a run's execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunExecutionData {
    /// Always `"1"`.
    pub version: String,
    pub snapshot: ExecutionSnapshot,
    pub run: RunRef,
    /// The batch the snapshot waits for, or continues from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<FriendlyRef>,
    /// On the snapshot that continues a wait: every waitpoint it waited for
    /// (`CompletedWaitpoint`), which the SDK resolves its waits by.
    #[schema(value_type = Vec<Object>)]
    pub completed_waitpoints: Vec<Value>,
}

/// `GET …/snapshots/latest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatestSnapshotResponse {
    pub execution: RunExecutionData,
}

/// `POST …/heartbeat`: `{"ok": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatResponse {
    pub ok: bool,
}

/// `POST /engine/v1/dev/disconnect`: the runs a dead CLI left behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevDisconnectRequest {
    pub run_friendly_ids: Vec<String>,
}

/// How many of them were canceled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DevDisconnectResponse {
    pub cancelled: u64,
}

/// One task of a worker manifest. Read leniently: the CLI sends more than taskgate uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManifest {
    pub id: String,
    pub file_path: String,
    #[serde(default)]
    pub export_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub retry: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub queue: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub machine: Option<Value>,
    #[serde(default)]
    pub max_duration: Option<f64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub ttl: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload_schema: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub trigger_source: Option<String>,
    /// A scheduled task's `{cron, timezone, environments?, window?}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<Value>,
}

/// A build's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundWorkerMetadata {
    pub content_hash: String,
    #[serde(default)]
    pub package_version: Option<String>,
    #[serde(default)]
    pub cli_package_version: Option<String>,
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub runtime_version: Option<String>,
    pub tasks: Vec<TaskManifest>,
    /// Shared queues (`queue({name, concurrencyLimit})`), read leniently.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub queues: Option<Vec<Value>>,
}

/// `POST /api/v1/projects/{projectRef}/background-workers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBackgroundWorkerRequest {
    pub metadata: BackgroundWorkerMetadata,
    #[serde(default)]
    pub local_only: Option<bool>,
    #[serde(default)]
    pub engine: Option<String>,
}

/// The registered worker: `id` is what dequeued messages name it by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBackgroundWorkerResponse {
    pub id: String,
    pub version: String,
    pub content_hash: String,
}

/// `GET /api/v1/projects/{projectRef}/envvars`: what the CLI's workers get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvVarsResponse {
    pub variables: BTreeMap<String, String>,
}

/// `GET /api/v1/projects/{projectRef}/dev-status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevStatusResponse {
    pub is_connected: bool,
}

/// `GET /api/v1/platform-notifications`: taskgate has none to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlatformNotificationsResponse {
    #[schema(value_type = Option<Object>)]
    pub notification: Option<Value>,
}

/// A task of the current worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerTaskResponse {
    pub id: String,
    pub slug: String,
    pub file_path: String,
    pub trigger_source: String,
    pub created_at: DateTime<Utc>,
    /// The payload's JSON schema, when the task declares one.
    #[schema(value_type = Option<Object>)]
    pub payload_schema: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub queue_config: Option<Value>,
}

/// The worker part of [`CurrentWorkerResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerDescription {
    pub id: String,
    pub version: String,
    pub engine: Option<String>,
    pub sdk_version: Option<String>,
    pub cli_version: Option<String>,
    pub tasks: Vec<WorkerTaskResponse>,
}

/// Links about a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerUrls {
    pub runs: String,
}

/// `GET /api/v1/projects/{projectRef}/{env}/workers/current`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CurrentWorkerResponse {
    pub worker: WorkerDescription,
    pub urls: WorkerUrls,
}

/// One log record of a run (taskgate's addition: the run's log view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunLogEntry {
    /// Order of arrival (ties between equal times).
    pub seq: i64,
    pub time: DateTime<Utc>,
    /// `info`, `warn`, `error`, `debug`, `log` (console output)…
    pub severity: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_number: Option<i64>,
    /// What the task attached to the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
}

/// `GET /api/v1/runs/{runId}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunLogsResponse {
    pub data: Vec<RunLogEntry>,
    /// The `after` of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One attempt of a run (taskgate's addition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunAttemptResponse {
    pub number: i64,
    /// `EXECUTING`, `COMPLETED`, `FAILED` or `CANCELED`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The attempt's `TaskRunError`, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// `GET /api/v1/runs/{runId}/attempts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunAttemptsResponse {
    pub data: Vec<RunAttemptResponse>,
}
