//! The errors API's wire types: error groups as `@trigger.dev/core`'s `ErrorGroupListItem`,
//! `ListErrorsResponse` and `ErrorGroupDetail` read them, the triage request bodies, and
//! taskgate's activity history (an addition).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A group on a list page. `count` is within the requested window; `firstSeen` and
/// `lastSeen` are the fingerprint's, all time, under any task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroupListItem {
    /// `error_<fingerprint>`.
    pub id: String,
    pub fingerprint: String,
    pub task_identifier: String,
    pub error_type: String,
    pub error_message: String,
    /// `unresolved`, `resolved` or `ignored`.
    pub status: String,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub ignored_until: Option<DateTime<Utc>>,
}

/// Cursors of the neighbouring pages, when there are any: echo them back as `page[after]`
/// (`next`) or `page[before]` (`previous`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ErrorPagination {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// `GET /api/v1/errors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListErrorsResponse {
    pub data: Vec<ErrorGroupListItem>,
    pub pagination: ErrorPagination,
}

/// `GET /api/v1/errors/{errorId}` and the triage actions' answer. Every key is present;
/// unset ones are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroupDetail {
    pub id: String,
    pub fingerprint: String,
    pub task_identifier: String,
    pub error_type: String,
    pub error_message: String,
    /// Every occurrence of this (task, fingerprint) group, all time.
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The newest five worker versions that failed with this fingerprint.
    pub affected_versions: Vec<String>,
    pub status: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_in_version: Option<String>,
    /// The user a resolving JWT acted for (`act.sub`); `null` for an environment key.
    pub resolved_by: Option<String>,
    pub ignored_at: Option<DateTime<Utc>>,
    pub ignored_until: Option<DateTime<Utc>>,
    pub ignored_reason: Option<String>,
    pub ignored_by_user_id: Option<String>,
    pub ignored_until_occurrence_rate: Option<f64>,
    pub ignored_until_total_occurrences: Option<i64>,
}

/// `POST /api/v1/errors/{errorId}/resolve`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolveErrorRequest {
    /// Only an occurrence from this worker version or a later one reopens the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_in_version: Option<String>,
}

/// `POST /api/v1/errors/{errorId}/ignore`; every condition optional (none: indefinitely).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreErrorRequest {
    /// Milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Reopen when more than this many occurrences arrive within a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence_rate: Option<f64>,
    /// Reopen once this many new occurrences have arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_occurrences: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One entry of a group's history (taskgate's addition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorActivityItem {
    /// `resolved`, `ignored`, `unresolved`, `regressed` or `unignored`.
    pub action: String,
    pub task_identifier: String,
    pub occurred_at: DateTime<Utc>,
    /// The user a JWT acted for; `null` for an environment key and for the server's own
    /// changes.
    pub actor_user_id: Option<String>,
    /// `secret_key`, `grace_key`, `public_jwt`, or `system`.
    pub credential_kind: String,
    /// The environment (for a key or JWT), or the revoked key in its grace.
    pub credential_id: Option<String>,
    pub reason: Option<String>,
    /// A resolve's version, an ignore's conditions, or why the group reopened.
    pub detail: Option<String>,
}

/// `GET /api/v1/errors/{errorId}/activity`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorActivityResponse {
    pub data: Vec<ErrorActivityItem>,
    pub pagination: ErrorPagination,
}
