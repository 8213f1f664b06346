//! ElectricSQL's shape protocol as the realtime run feeds speak it: the run row's columns
//! and their text encoding, the schema header, change messages and the response headers, and
//! the skipped columns a request and its token ask for.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use taskgate_api::realtime::{ChangeHeaders, ShapeMessage};
use taskgate_store::Run;

use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};

/// Columns a client may never skip.
const REQUIRED_COLUMNS: &[&str] = &["id", "taskIdentifier", "friendlyId", "status", "createdAt"];

/// Every live answer carries a fresh cursor.
static CURSOR: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedParams {
    pub offset: Option<String>,
    pub handle: Option<String>,
    pub shape_id: Option<String>,
    pub live: Option<String>,
    pub skip_columns: Option<String>,
    /// The tags feed: the tags (comma-separated) and how far back (`1h`, 24 h by default).
    pub tags: Option<String>,
    pub created_at: Option<String>,
}

impl FeedParams {
    /// The handle the client echoes, under either name.
    pub fn handle(&self) -> Option<&str> {
        self.handle.as_deref().or(self.shape_id.as_deref())
    }

    /// The client's offset; `-1` asks for a snapshot.
    pub fn offset(&self) -> &str {
        self.offset.as_deref().unwrap_or("-1")
    }

    /// Whether this is a live long-poll: it needs a handle and an offset past the snapshot.
    pub fn is_live(&self) -> bool {
        self.live.as_deref() == Some("true") && self.handle().is_some() && self.offset() != "-1"
    }
}

/// The columns left out: the request's `skipColumns` and the token's `realtime.skipColumns`,
/// never the required ones.
pub fn skipped_columns(params: &FeedParams, principal: &EnvPrincipal) -> HashSet<String> {
    let mut skip: HashSet<String> = params
        .skip_columns
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(cols) = principal
        .jwt()
        .and_then(|g| g.realtime.as_ref())
        .and_then(|r| r.get("skipColumns"))
        .and_then(Value::as_array)
    {
        skip.extend(cols.iter().filter_map(Value::as_str).map(str::to_string));
    }
    skip.retain(|c| !REQUIRED_COLUMNS.contains(&c.as_str()));
    skip
}

/// The schema header's columns, without the skipped ones.
pub fn schema_without(skip: &HashSet<String>) -> Map<String, Value> {
    let mut s = schema();
    s.retain(|k, _| !skip.contains(k));
    s
}

fn schema() -> Map<String, Value> {
    let cols: &[(&str, Value)] = &[
        ("id", json!({"type": "text"})),
        ("taskIdentifier", json!({"type": "text"})),
        ("createdAt", json!({"type": "timestamp"})),
        ("updatedAt", json!({"type": "timestamp"})),
        ("startedAt", json!({"type": "timestamp"})),
        ("delayUntil", json!({"type": "timestamp"})),
        ("queuedAt", json!({"type": "timestamp"})),
        ("expiredAt", json!({"type": "timestamp"})),
        ("completedAt", json!({"type": "timestamp"})),
        ("friendlyId", json!({"type": "text"})),
        ("number", json!({"type": "int4"})),
        ("isTest", json!({"type": "bool"})),
        ("status", json!({"type": "text"})),
        ("usageDurationMs", json!({"type": "int4"})),
        ("costInCents", json!({"type": "float8"})),
        ("baseCostInCents", json!({"type": "float8"})),
        ("ttl", json!({"type": "text"})),
        ("payload", json!({"type": "text"})),
        ("payloadType", json!({"type": "text"})),
        ("metadata", json!({"type": "text"})),
        ("metadataType", json!({"type": "text"})),
        ("output", json!({"type": "text"})),
        ("outputType", json!({"type": "text"})),
        ("runTags", json!({"type": "text", "dims": 1})),
        ("error", json!({"type": "jsonb"})),
        ("realtimeStreams", json!({"type": "text", "dims": 1})),
    ];
    cols.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Timestamps as Postgres text without a zone: the SDK appends `Z` itself.
fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string())
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

/// A Postgres array literal: `{"a","b"}` with `\` and `"` escaped.
fn pg_array(items: &[String]) -> Value {
    if items.is_empty() {
        return Value::Null;
    }
    let inner: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    Value::String(format!("{{{}}}", inner.join(",")))
}

fn text(s: &Option<String>) -> Value {
    s.clone().map(Value::String).unwrap_or(Value::Null)
}

/// The run as a row of strings and nulls.
fn row(run: &Run, skip: &HashSet<String>) -> Map<String, Value> {
    let duration = match (run.started_at, run.completed_at) {
        (Some(s), Some(c)) => (c - s).num_milliseconds().max(0),
        _ => 0,
    };
    let all = [
        ("id", json!(run.id)),
        ("friendlyId", json!(run.friendly_id)),
        ("taskIdentifier", json!(run.task_identifier)),
        ("status", json!(run.status.as_str())),
        ("createdAt", ts(run.created_at)),
        ("updatedAt", ts(run.updated_at)),
        ("startedAt", opt_ts(run.started_at)),
        ("delayUntil", opt_ts(run.delay_until)),
        ("queuedAt", ts(run.created_at)),
        ("expiredAt", opt_ts(run.expired_at)),
        ("completedAt", opt_ts(run.completed_at)),
        ("number", json!("1")),
        ("isTest", json!(if run.is_test { "t" } else { "f" })),
        ("usageDurationMs", json!(duration.to_string())),
        ("costInCents", json!("0")),
        ("baseCostInCents", json!("0")),
        ("ttl", text(&run.ttl)),
        ("payload", text(&run.payload)),
        ("payloadType", json!(run.payload_type)),
        ("metadata", text(&run.metadata)),
        ("metadataType", text(&run.metadata_type)),
        ("output", text(&run.output)),
        ("outputType", text(&run.output_type)),
        ("runTags", pg_array(&run.tags)),
        ("error", text(&run.error)),
        ("realtimeStreams", Value::Null),
    ];
    all.into_iter()
        .filter(|(k, _)| !skip.contains(*k))
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

pub fn change(run: &Run, operation: &str, skip: &HashSet<String>) -> ShapeMessage {
    ShapeMessage::Change {
        key: format!("\"public\".\"TaskRun\"/\"{}\"", run.id),
        value: row(run, skip),
        headers: ChangeHeaders {
            operation: operation.to_string(),
        },
    }
}

pub fn offset(run: &Run) -> String {
    format!("{}_0", run.version)
}

fn header(v: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(v).map_err(ApiError::internal)
}

pub fn respond(
    messages: Vec<ShapeMessage>,
    handle: &str,
    offset: &str,
    schema: Option<&Map<String, Value>>,
    live: bool,
) -> ApiResult<Response> {
    let mut h = HeaderMap::new();
    h.insert("electric-handle", header(handle)?);
    h.insert("electric-offset", header(offset)?);
    h.insert("electric-up-to-date", HeaderValue::from_static("true"));
    if let Some(s) = schema {
        h.insert(
            "electric-schema",
            header(&Value::Object(s.clone()).to_string())?,
        );
    }
    if live {
        h.insert(
            "electric-cursor",
            header(&CURSOR.fetch_add(1, Ordering::Relaxed).to_string())?,
        );
    }
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("*"),
    );
    Ok((h, Json(messages)).into_response())
}

/// ±15 % so that many clients do not reconnect in lockstep.
pub fn jittered(base: std::time::Duration) -> std::time::Duration {
    let factor = rand::thread_rng().gen_range(0.85..1.15);
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_timestamps_use_postgres_text() {
        assert_eq!(
            pg_array(&["a".into(), "b\"c".into()]),
            json!("{\"a\",\"b\\\"c\"}")
        );
        assert_eq!(pg_array(&[]), Value::Null);
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.5Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(ts(t), json!("2026-01-01T00:00:00.500"));
    }
}
