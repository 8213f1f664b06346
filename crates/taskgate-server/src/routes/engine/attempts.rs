//! An attempt's life on the worker's side: start (with the execution payload and the task
//! process's environment), heartbeat, completion (with the retry decision), the latest
//! snapshot the CLI polls, and its debug log: adapters over [`taskgate_engine::attempts`].
//!
//! Refusals answer as upstream does, so the CLI reacts as it would there: a snapshot that is
//! no longer the latest is 409 on start and 400 on completion, a finished run is 400. Neither
//! is worth retrying, so they carry `x-should-retry: false`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use taskgate_api::engine::*;
use taskgate_api::ErrorBody;
use taskgate_core::ids::{RunFriendlyId, SnapshotId};
use taskgate_engine::Engine;

use super::{lenient_body, required_body};
use crate::auth::extract::SecretKeyAuth;
use crate::error::ApiResult;
use crate::public_url::PublicUrl;

/// Starts an attempt of a dequeued run (or the next attempt of one retrying at once).
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/snapshots/{snapshotFriendlyId}/attempts/start", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path), ("snapshotFriendlyId" = String, Path)),
    request_body(content = Object, content_type = "text/plain", description = "{isWarmStart?}"),
    responses((status = 200, body = StartAttemptResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start_run_attempt(
    State(engine): State<Arc<Engine>>,
    SecretKeyAuth(principal): SecretKeyAuth,
    PublicUrl(base): PublicUrl,
    Path((run_id, snapshot_id)): Path<(RunFriendlyId, SnapshotId)>,
    body: Bytes,
) -> ApiResult<Json<StartAttemptResponse>> {
    // `{isWarmStart}`: read so that a malformed body is a clear 400; nothing in it matters here.
    let _: Option<serde_json::Value> = lenient_body(&body)?;
    let started = engine
        .start_attempt(&principal.env, &run_id, &snapshot_id, &base)
        .await?;
    Ok(Json(started))
}

/// Records how an attempt ended and answers what happens next (finished, retry now, retry
/// from the queue).
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/snapshots/{snapshotFriendlyId}/attempts/complete", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path), ("snapshotFriendlyId" = String, Path)),
    request_body(content = CompleteAttemptRequest, content_type = "text/plain"),
    responses((status = 200, body = CompleteAttemptResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn complete_run_attempt(
    State(engine): State<Arc<Engine>>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, snapshot_id)): Path<(RunFriendlyId, SnapshotId)>,
    body: Bytes,
) -> ApiResult<Json<CompleteAttemptResponse>> {
    let CompleteAttemptRequest { completion } = required_body(&body)?;
    let completed = engine
        .complete_attempt(
            &principal.env.environment.id,
            &run_id,
            &snapshot_id,
            completion,
        )
        .await?;
    Ok(Json(completed))
}

/// Keeps an executing attempt alive (workers call it every 30 s).
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/snapshots/{snapshotFriendlyId}/heartbeat", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path), ("snapshotFriendlyId" = String, Path)),
    request_body(content = Object, content_type = "text/plain", description = "{cpu?, memory?}"),
    responses((status = 200, body = HeartbeatResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn heartbeat_run(
    State(engine): State<Arc<Engine>>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, snapshot_id)): Path<(RunFriendlyId, SnapshotId)>,
) -> ApiResult<Json<HeartbeatResponse>> {
    engine
        .heartbeat(&principal.env.environment.id, &run_id, &snapshot_id)
        .await?;
    Ok(Json(HeartbeatResponse { ok: true }))
}

/// A run's latest execution snapshot (the CLI polls it every 5 s while executing). Served by
/// the read replica when there is one, unless the replica's row is older than a change this
/// node has heard of, in which case the primary answers: a worker shown an older snapshot
/// would drop its run.
#[utoipa::path(get, path = "/engine/v1/dev/runs/{runFriendlyId}/snapshots/latest", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path)),
    responses((status = 200, body = LatestSnapshotResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn latest_snapshot(
    State(engine): State<Arc<Engine>>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(run_id): Path<RunFriendlyId>,
) -> ApiResult<Json<LatestSnapshotResponse>> {
    let execution = engine
        .latest_snapshot(&principal.env.environment.id, &run_id)
        .await?;
    Ok(Json(LatestSnapshotResponse { execution }))
}

/// The CLI's debug log of a run. Its lines describe the CLI's own bookkeeping (which snapshot
/// it holds, what it did on a change), not the task, so they are kept out of the run's logs and
/// written to taskgate's own log at `debug` level, where an operator chasing a stuck run can
/// turn them on (`RUST_LOG=taskgate::dev_cli=debug`).
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/logs/debug", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path)),
    request_body(content = Object, content_type = "text/plain", description = "{time, message, properties?}"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn debug_log(
    SecretKeyAuth(_principal): SecretKeyAuth,
    Path(run_id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let line: serde_json::Value = required_body(&body)?;
    metrics::counter!("taskgate_dev_debug_logs_total").increment(1);
    if tracing::enabled!(target: "taskgate::dev_cli", tracing::Level::DEBUG) {
        let text = |v: Option<&serde_json::Value>| {
            let mut s = v.map(|v| v.to_string()).unwrap_or_default();
            if s.len() > 1024 {
                let mut end = 1024;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
            s
        };
        let run: String = run_id.chars().take(64).collect();
        let (said, properties) = (text(line.get("message")), text(line.get("properties")));
        tracing::debug!(target: "taskgate::dev_cli", run = %run, said = %said, properties = %properties, "dev CLI");
    }
    Ok(StatusCode::NO_CONTENT)
}
