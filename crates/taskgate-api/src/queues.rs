//! Queues on the wire: the SDK's `queues.*` (`/api/v1/queues…`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A queue as the SDK's `QueueItem` reads it (the `V1` shape: the queue carries its own limit,
/// per concurrency key when runs pass one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    /// `queue_…`.
    pub id: String,
    /// The task id for a task's own queue (without `task/`), else the shared queue's name.
    pub name: String,
    /// `task` or `custom`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Runs holding a slot now.
    pub running: u64,
    /// Runs waiting to be dequeued.
    pub queued: u64,
    /// A paused queue starts no run until resumed.
    pub paused: bool,
    /// The limit in force; `null` when only the environment's limit bounds the queue.
    pub concurrency_limit: Option<u32>,
    pub concurrency: QueueConcurrency,
    /// `V1`.
    pub version: String,
}

/// A queue's limit: the one in force, the declared one, and an override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueConcurrency {
    pub current: Option<u32>,
    /// What the task code declares.
    pub base: Option<u32>,
    /// The overriding limit while an override holds.
    #[serde(rename = "override")]
    pub override_: Option<u32>,
    pub overridden_at: Option<DateTime<Utc>>,
    /// The name of the person who overrode it; `null` through the API.
    pub overridden_by: Option<String>,
}

/// The page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuePagination {
    pub current_page: u64,
    pub total_pages: u64,
    pub count: u64,
}

/// `GET /api/v1/queues`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListQueuesResponse {
    pub data: Vec<QueueItem>,
    pub pagination: QueuePagination,
}

/// `POST /api/v1/queues/{queue}/pause`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PauseQueueRequest {
    /// How the path names the queue: `id` (the default), `task` or `custom`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `pause` or `resume`.
    pub action: String,
}

/// `POST /api/v1/queues/{queue}/concurrency/override`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideQueueRequest {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// 0 to 100,000; 0 lets no run of the queue start.
    pub concurrency_limit: i64,
}

/// `POST /api/v1/queues/{queue}/concurrency/reset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResetQueueRequest {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}
