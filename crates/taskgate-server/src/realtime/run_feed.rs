//! `GET /realtime/v1/runs/{runId}` (`runs.subscribeToRun`): ElectricSQL's shape protocol,
//! served natively. A snapshot answers `[insert, up-to-date]`;
//! a live request waits (about 20 s) for the run's version to pass the client's offset and
//! answers `[update, up-to-date]`, or `[up-to-date]` on timeout.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use taskgate_api::realtime::{ChangeHeaders, ShapeMessage};
use taskgate_api::ErrorBody;
use taskgate_store::Run;

use super::run_key;
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::routes::runs::readable_run;
use crate::state::AppState;

/// Columns a client may never skip.
const REQUIRED_COLUMNS: &[&str] = &["id", "taskIdentifier", "friendlyId", "status", "createdAt"];

/// Every live answer carries a fresh cursor.
static CURSOR: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedParams {
    offset: Option<String>,
    handle: Option<String>,
    shape_id: Option<String>,
    live: Option<String>,
    skip_columns: Option<String>,
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

fn change(run: &Run, operation: &str, skip: &HashSet<String>) -> ShapeMessage {
    ShapeMessage::Change {
        key: format!("\"public\".\"TaskRun\"/\"{}\"", run.id),
        value: row(run, skip),
        headers: ChangeHeaders {
            operation: operation.to_string(),
        },
    }
}

fn offset(run: &Run) -> String {
    format!("{}_0", run.version)
}

fn header(v: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(v).map_err(ApiError::internal)
}

fn respond(
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

/// Subscribes to one run.
#[utoipa::path(get, path = "/realtime/v1/runs/{runId}", tag = "realtime", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("runId" = String, Path), ("offset" = Option<String>, Query), ("handle" = Option<String>, Query),
           ("live" = Option<bool>, Query), ("cursor" = Option<String>, Query), ("skipColumns" = Option<String>, Query)),
    responses((status = 200, body = Vec<ShapeMessage>, description = "Electric shape messages"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn subscribe_to_run(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<String>,
    ApiQuery(params): ApiQuery<FeedParams>,
) -> ApiResult<Response> {
    let run = readable_run(&state, &principal, &run_id).await?;
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
    let mut schema = schema();
    schema.retain(|k, _| !skip.contains(k));
    let handle = format!("run-{}", run.id);
    let has_handle = params.handle.is_some() || params.shape_id.is_some();
    let client_offset = params.offset.as_deref().unwrap_or("-1");
    let live = params.live.as_deref() == Some("true") && has_handle && client_offset != "-1";
    if !live {
        let body = vec![change(&run, "insert", &skip), ShapeMessage::up_to_date()];
        return respond(body, &handle, &offset(&run), Some(&schema), false);
    }
    let seen: i64 = client_offset
        .split('_')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let env_id = principal.env.environment.id.clone();
    // Register before re-reading, so a change between the read and the wait is not missed.
    let mut watch = state.watchers.watch(run_key(&run.id));
    let mut current = state.store.get_run(&env_id, &run_id).await?.unwrap_or(run);
    if current.version <= seen {
        let wait = jittered(state.config.realtime_poll);
        let deadline = tokio::time::Instant::now() + wait;
        let shutdown = state.shutdown.wait();
        tokio::pin!(shutdown);
        while current.version <= seen {
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, watch.rx.changed()) => match changed {
                    Ok(Ok(())) => {
                        if let Some(r) = state.store.get_run(&env_id, &run_id).await? {
                            current = r;
                        }
                    }
                    _ => break,
                },
                // The server is stopping: answer "up to date" now; the client polls again.
                _ = &mut shutdown => break,
            }
        }
    }
    drop(watch);
    if current.version > seen {
        respond(
            vec![
                change(&current, "update", &skip),
                ShapeMessage::up_to_date(),
            ],
            &handle,
            &offset(&current),
            None,
            true,
        )
    } else {
        respond(
            vec![ShapeMessage::up_to_date()],
            &handle,
            client_offset,
            None,
            true,
        )
    }
}

/// ±15 % so that many clients do not reconnect in lockstep.
fn jittered(base: std::time::Duration) -> std::time::Duration {
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
