//! A run's trace (`GET /api/v1/runs/{runId}/trace`) and one span of it
//! (`GET /api/v1/runs/{runId}/spans/{spanId}`), in the shapes the official CLI's MCP server
//! parses for `get_run_details` and `get_span_details`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `GET /api/v1/runs/{runId}/trace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunTraceResponse {
    pub trace: RunTrace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunTrace {
    /// 32 hex digits, the same for every read of the run.
    pub trace_id: String,
    pub root_span: TraceSpan,
}

/// A span and the spans under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceSpan {
    /// 16 hex digits, the same for every read of the run.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The run's `run_…` id.
    pub run_id: String,
    pub data: TraceSpanData,
    #[schema(no_recursion)]
    pub children: Vec<TraceSpan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceSpanData {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_slug: Option<String>,
    /// The file the task is defined in, as its worker registered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    pub start_time: DateTime<Utc>,
    /// Nanoseconds; up to now for a span still open.
    pub duration: i64,
    pub is_error: bool,
    /// Still open: the run or attempt has not ended.
    pub is_partial: bool,
    pub is_cancelled: bool,
    /// `TRACE`, `DEBUG`, `LOG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_preset: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty", default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// The run's output (decoded when it is JSON), on the run's span.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
}

/// `GET /api/v1/runs/{runId}/spans/{spanId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpanDetailResponse {
    pub span_id: String,
    /// `null` for the run's own span.
    pub parent_id: Option<String>,
    pub run_id: String,
    pub message: String,
    pub is_error: bool,
    pub is_partial: bool,
    pub is_cancelled: bool,
    pub level: String,
    pub start_time: DateTime<Utc>,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Map::is_empty", default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// `run`, `attempt` or `log`: what taskgate built the span from.
    pub entity_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn trace_answers_pin_their_shape() {
        let data = TraceSpanData {
            message: "email/send".into(),
            task_slug: Some("email/send".into()),
            task_path: Some("src/trigger/email.ts".into()),
            events: vec![],
            start_time: at("2026-11-28T10:00:00Z"),
            duration: 1_500_000_000,
            is_error: false,
            is_partial: false,
            is_cancelled: false,
            level: "TRACE".into(),
            worker_version: Some("20261128.1".into()),
            queue_name: Some("task/email/send".into()),
            machine_preset: None,
            properties: Map::new(),
            output: Some(serde_json::json!({"sent": true})),
        };
        insta::assert_json_snapshot!(RunTraceResponse {
            trace: RunTrace {
                trace_id: "0123456789abcdef0123456789abcdef".into(),
                root_span: TraceSpan {
                    id: "0123456789abcdef".into(),
                    parent_id: None,
                    run_id: "run_1".into(),
                    data,
                    children: vec![],
                },
            },
        });
        insta::assert_json_snapshot!(SpanDetailResponse {
            span_id: "fedcba9876543210".into(),
            parent_id: Some("0123456789abcdef".into()),
            run_id: "run_1".into(),
            message: "Attempt 1".into(),
            is_error: true,
            is_partial: false,
            is_cancelled: false,
            level: "ERROR".into(),
            start_time: at("2026-11-28T10:00:00Z"),
            duration_ms: 250.0,
            properties: Map::new(),
            events: vec![],
            entity_type: "attempt".into(),
        });
    }
}
