//! Waits and wait tokens on the wire: what task code (the 4.8.3 SDK) sends to wait for a time
//! or a token, and the token API it and other clients use (`wait.createToken`,
//! `wait.listTokens`, `wait.retrieveToken`, `wait.completeToken`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::runs::RunPagination;

/// `{id}` of the waitpoint a wait made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitpointRef {
    /// The waitpoint's friendly id (`waitpoint_…`).
    pub id: String,
}

/// `POST /engine/v1/runs/{runFriendlyId}/wait/duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitForDurationResponse {
    /// When the run continues: the time asked for, or the first call's with an idempotency
    /// key.
    pub wait_until: DateTime<Utc>,
    pub waitpoint: WaitpointRef,
}

/// `POST /engine/v1/runs/{runFriendlyId}/waitpoints/tokens/{waitpointFriendlyId}/wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitForTokenResponse {
    pub success: bool,
}

/// `POST /api/v1/waitpoints/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenResponse {
    pub id: String,
    /// A token with the same live idempotency key existed: it is the answer.
    pub is_cached: bool,
    /// The callback URL: a POST of JSON to it completes the token, without credentials.
    pub url: String,
}

/// `POST /api/v1/runs/{runId}/input-streams/wait`: the waitpoint the run then waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputStreamWaitResponse {
    pub waitpoint_id: String,
    pub is_cached: bool,
}

/// A token as listed (`WaitpointListTokenItem`) and retrieved (`WaitpointRetrieveTokenResponse`,
/// with the output fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenItem {
    pub id: String,
    pub url: String,
    /// `WAITING`, `COMPLETED` or `TIMED_OUT`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key_expires_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Retrieve only: the packet it was completed with, and its type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_is_error: Option<bool>,
}

/// `GET /api/v1/waitpoints/tokens`: a cursor page, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListTokensResponse {
    pub data: Vec<TokenItem>,
    pub pagination: RunPagination,
}

/// `POST /api/v1/waitpoints/tokens/{waitpointFriendlyId}/complete` and its callback URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompleteTokenResponse {
    /// Always `true`, also for a token completed before.
    pub success: bool,
}
