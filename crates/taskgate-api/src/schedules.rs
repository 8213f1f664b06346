//! Schedules on the wire: the SDK's `schedules.*` (`/api/v1/schedules…`) and
//! `GET /api/v1/timezones`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/schedules` (`deduplicationKey` required) and `PUT /api/v1/schedules/{id}`
/// (without it). Unknown fields are ignored, as upstream's schema does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRequest {
    /// The task it triggers: a scheduled task (`schedules.task`) of the environment.
    pub task: String,
    /// Five fields: minute, hour, day of month, month, day of week (`L`, `W`, `#` allowed).
    pub cron: String,
    #[serde(default)]
    pub deduplication_key: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    /// An IANA time zone; `UTC` when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `"30m"`, `"2h"` (up to 24 hours) or `"30%"` of the interval.
    #[serde(default)]
    pub window: Option<String>,
}

/// How a schedule's times are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleGenerator {
    /// Always `CRON`.
    #[serde(rename = "type")]
    pub kind: String,
    pub expression: String,
    /// The expression in words.
    pub description: String,
}

/// An environment a schedule fires in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleEnvironment {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// A schedule (upstream's `ScheduleObject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleObject {
    /// `sched_…`
    pub id: String,
    /// `DECLARATIVE` or `IMPERATIVE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub task: String,
    pub active: bool,
    pub deduplication_key: Option<String>,
    pub external_id: Option<String>,
    pub generator: ScheduleGenerator,
    pub timezone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The nominal time of the next fire.
    pub next_run: Option<DateTime<Utc>>,
    /// When that fire runs (the nominal time spread by the window).
    pub next_run_effective_at: Option<DateTime<Utc>>,
    pub environments: Vec<ScheduleEnvironment>,
    /// taskgate: the nominal time of the last fire, and its run (absent when it was skipped
    /// because no development CLI was connected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run_id: Option<String>,
}

/// Paging of a schedule listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePagination {
    pub current_page: u64,
    pub total_pages: u64,
    pub count: u64,
}

/// `GET /api/v1/schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListSchedulesResponse {
    pub data: Vec<ScheduleObject>,
    pub pagination: SchedulePagination,
}

/// `DELETE /api/v1/schedules/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeletedSchedule {
    pub id: String,
}

/// `GET /api/v1/timezones`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimezonesResponse {
    pub timezones: Vec<String>,
}
