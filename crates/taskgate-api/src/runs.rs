//! Runs and batches as the 4.8.3 SDK reads them. The SDK parses every response with zod, so an
//! optional field is omitted rather than `null`, and enums carry exactly the SDK's values;
//! field names and meanings follow trigger.dev's `CommonRunFields`, `ListRunResponseItem` and
//! `RetrieveRunResponse`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The fields every run shape has (`CommonRunFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunFields {
    /// `run_…`.
    pub id: String,
    /// `DELAYED`, `PENDING_VERSION`, `QUEUED`, `DEQUEUED`, `EXECUTING`, `WAITING`,
    /// `COMPLETED`, `CANCELED`, `FAILED`, `CRASHED`, `SYSTEM_FAILURE`, `EXPIRED` or
    /// `TIMED_OUT`.
    pub status: String,
    pub task_identifier: String,
    pub is_queued: bool,
    pub is_executing: bool,
    pub is_waiting: bool,
    pub is_completed: bool,
    pub is_success: bool,
    pub is_failed: bool,
    pub is_cancelled: bool,
    pub is_test: bool,
    /// ISO-8601 with milliseconds.
    pub created_at: String,
    pub updated_at: String,
    pub tags: Vec<String>,
    /// Always 0: taskgate does not bill.
    pub cost_in_cents: i64,
    pub base_cost_in_cents: i64,
    /// From start to finish; 0 until both are known.
    pub duration_ms: i64,
    /// Always 0: subtasks are not tracked.
    pub depth: i64,
    /// Always `STANDARD`.
    pub task_kind: String,
    /// The user's idempotency key when they gave one, else the stored (hashed) key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The worker version that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    /// The TTL as given at trigger (`"1h"`, `"30"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// The run's metadata object, without the stream bookkeeping keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// The environment a listed run belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEnvironment {
    pub id: String,
    /// The environment's slug (`prod`, `dev`, a branch's slug).
    pub name: String,
}

/// One item of `GET /api/v1/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunListItem {
    #[serde(flatten)]
    pub run: RunFields,
    pub env: RunEnvironment,
}

/// Cursors of a run page: `next` when more runs follow, `previous` when some came before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunPagination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// `GET /api/v1/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListRunsResponse {
    pub data: Vec<RunListItem>,
    pub pagination: RunPagination,
}

/// A run's error as the SDK's `SerializedError`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SerializedError {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

/// Runs related to a run. Always empty: parent, root and child runs are not tracked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RelatedRuns {}

/// `GET /api/v3/runs/{runId}` (`RetrieveRunResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrieveRunResponse {
    #[serde(flatten)]
    pub run: RunFields,
    /// Always `trigger`.
    pub trigger_function: String,
    pub related_runs: RelatedRuns,
    pub attempt_count: i64,
    /// The payload, decoded from its packet type (JSON, SuperJSON's `json` part, text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// The output, for a completed run only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Instead of `payload`, for an offloaded one (128 KiB or more): a URL it can be read
    /// from for an hour, without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_presigned_url: Option<String>,
    /// Instead of `output`, for an offloaded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_presigned_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SerializedError>,
    /// `batch_…`, for a run of a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

/// `POST /api/v1/tasks/{taskId}/trigger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerTaskResponse {
    /// `run_…`.
    pub id: String,
    /// An existing run was returned for the idempotency key.
    pub is_cached: bool,
}

/// The run a cancel or replay acted on (`{"id": "run_…"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunIdResponse {
    pub id: String,
}

/// `POST /api/v3/batches`: a batch created, its items to follow as a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBatchResponse {
    /// `batch_…`.
    pub id: String,
    pub run_count: i64,
    /// An existing batch was returned for the idempotency key.
    pub is_cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// `GET /api/v2/batches/{batchId}` (`batch.retrieve`; `/api/v1/…` answers the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrieveBatchResponse {
    /// `batch_…`.
    pub id: String,
    /// `PROCESSING` while its items arrive, `PENDING` while its runs go on, `COMPLETED` once
    /// every run has finished (whatever its outcome).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub created_at: String,
    /// The latest of its creation and its runs' ends.
    pub updated_at: String,
    pub run_count: i64,
    /// Its runs' ids, in the order they were made.
    pub runs: Vec<String>,
    pub processing: BatchProcessing,
}

/// How a batch's items became runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchProcessing {
    /// When its last item became a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Items that made no run (taskgate refuses a batch's bad items before making any, so
    /// this is empty).
    pub errors: Vec<Value>,
}

/// `POST /api/v3/batches/{batchId}/items`: what the stream of items did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamBatchItemsResponse {
    pub id: String,
    pub items_accepted: i64,
    /// Items whose index had already been accepted (a retried upload).
    pub items_deduplicated: i64,
    /// Every expected item has arrived; the batch's runs are queued.
    pub sealed: bool,
    pub enqueued_count: i64,
    pub expected_count: i64,
}

/// The answer of a stream write: `{"ok": true}`, or `ok: false` with the reason, in `error`
/// for input streams and in `message` for output-stream appends (as upstream words them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamWriteResponse {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StreamWriteResponse {
    /// The write was stored.
    pub fn stored() -> Self {
        Self {
            ok: true,
            error: None,
            message: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_answers_pin_their_shape() {
        insta::assert_json_snapshot!(TriggerTaskResponse {
            id: "run_1".into(),
            is_cached: true,
        });
        insta::assert_json_snapshot!(RunIdResponse { id: "run_1".into() });
    }

    #[test]
    fn batch_answers_pin_their_shape() {
        insta::assert_json_snapshot!(CreateBatchResponse {
            id: "batch_1".into(),
            run_count: 3,
            is_cached: false,
            idempotency_key: None,
        });
        insta::assert_json_snapshot!(StreamBatchItemsResponse {
            id: "batch_1".into(),
            items_accepted: 2,
            items_deduplicated: 1,
            sealed: true,
            enqueued_count: 3,
            expected_count: 3,
        });
    }

    #[test]
    fn a_run_page_names_only_the_cursors_it_has() {
        insta::assert_json_snapshot!(ListRunsResponse {
            data: vec![],
            pagination: RunPagination {
                next: Some("cursor".into()),
                previous: None,
            },
        });
    }
}
