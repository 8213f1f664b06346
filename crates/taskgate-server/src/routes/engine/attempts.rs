//! An attempt's life on the worker's side: start (with the execution payload and the task
//! process's environment), heartbeat, completion (with the retry decision), the latest
//! snapshot the CLI polls, and its debug log.
//!
//! Refusals answer as upstream does, so the CLI reacts as it would there: a snapshot that is
//! no longer the latest is 409 on start and 400 on completion, a finished run is 400. Neither
//! is worth retrying, so they carry `x-should-retry: false`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use taskgate_api::engine::*;
use taskgate_api::ErrorBody;
use taskgate_core::engine::{AttemptStatus, Completion, EngineError, Event, RunStatus};
use taskgate_core::task_error::TaskRunError;
use taskgate_store::{Applied, EventData, Refusal, RunEvent};

use crate::public_url::PublicUrl;

use super::{env_vars, execution, lenient_body, required_body, run_not_found, run_ref, snapshot};
use crate::auth::extract::SecretKeyAuth;
use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What a refused event answers, in the words of the route that refused it.
fn refused(r: Refusal, stale_status: StatusCode, stale_message: &str) -> ApiError {
    let error = match r {
        Refusal::StaleSnapshot { .. } => ApiError::new(stale_status, stale_message),
        Refusal::Engine(EngineError::AlreadyFinished) => {
            ApiError::bad_request("Task run is already finished")
        }
        Refusal::Engine(e) => ApiError::bad_request(e.to_string()),
    };
    error.should_retry(false)
}

/// Applies a worker's event to one of its environment's runs.
async fn apply(
    state: &AppState,
    principal: &EnvPrincipal,
    run_id: &str,
    event: RunEvent,
) -> ApiResult<Result<Applied, Refusal>> {
    match state
        .store
        .apply_run_event(&principal.env.environment.id, run_id, event, state.now())
        .await
    {
        Err(taskgate_store::StoreError::NotFound) => Err(run_not_found()),
        other => Ok(other?),
    }
}

/// Starts an attempt of a dequeued run (or the next attempt of one retrying at once).
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/snapshots/{snapshotFriendlyId}/attempts/start", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path), ("snapshotFriendlyId" = String, Path)),
    request_body(content = Object, content_type = "text/plain", description = "{isWarmStart?}"),
    responses((status = 200, body = StartAttemptResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start_run_attempt(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    PublicUrl(base): PublicUrl,
    Path((run_id, snapshot_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<StartAttemptResponse>> {
    // `{isWarmStart}`: read so that a malformed body is a clear 400; nothing in it matters here.
    let _: Option<serde_json::Value> = lenient_body(&body)?;
    let event = RunEvent {
        event: Event::StartAttempt,
        expected_snapshot: Some(snapshot_id),
        data: EventData::default(),
    };
    let applied = apply(&state, &principal, &run_id, event)
        .await?
        .map_err(|r| {
            refused(
                r,
                StatusCode::CONFLICT,
                "Snapshot changed inside startRunAttempt",
            )
        })?;
    let run = applied.run;
    if run.status == RunStatus::Crashed {
        return Err(ApiError::bad_request("Max attempts reached").should_retry(false));
    }
    let env = &principal.env;
    let worker_id = run.worker_id.clone().unwrap_or_default();
    let worker = state
        .workers
        .get(&state, &env.environment.id, &worker_id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("run {} names no worker", run.friendly_id)))?;
    let (worker, tasks) = &*worker;
    let task = tasks
        .iter()
        .find(|t| t.slug == run.task_identifier)
        .ok_or_else(|| {
            ApiError::internal(format!(
                "worker {} has no task {}",
                worker.id, run.task_identifier
            ))
        })?;
    let execution = execution(env, &run, worker, task);
    let mut vars = env_vars(&state, &base, env).await?;
    vars.insert("TRIGGER_RUN_ID".into(), run.friendly_id.clone());
    vars.insert(
        "TRIGGER_MACHINE_PRESET".into(),
        execution.machine.name.clone(),
    );
    tracing::info!(run.id = %run.friendly_id, attempt = run.attempt_number, task = %run.task_identifier, "attempt started");
    Ok(Json(StartAttemptResponse {
        run: run_ref(&run),
        snapshot: snapshot(&run),
        execution,
        env_vars: vars,
    }))
}

/// Records how an attempt ended and answers what happens next (finished, retry now, retry
/// from the queue).
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/snapshots/{snapshotFriendlyId}/attempts/complete", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path), ("snapshotFriendlyId" = String, Path)),
    request_body(content = CompleteAttemptRequest, content_type = "text/plain"),
    responses((status = 200, body = CompleteAttemptResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn complete_run_attempt(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, snapshot_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<CompleteAttemptResponse>> {
    let CompleteAttemptRequest { completion: c } = required_body(&body)?;
    let limit = state.config.engine.max_payload_bytes;
    if c.output.as_ref().is_some_and(|o| o.len() > limit) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Output too large: the limit is {limit} bytes"),
        )
        .should_retry(false));
    }
    let outcome = if c.ok {
        Completion::Success
    } else {
        let error: TaskRunError = match c.error {
            Some(e) => serde_json::from_value(e)
                .map_err(|e| ApiError::invalid_body(format!("completion.error: {e}")))?,
            None => {
                return Err(ApiError::invalid_body(
                    "completion.error is required when ok is false",
                ))
            }
        };
        Completion::Failure {
            error: error.sanitized(),
            retry_delay_ms: c
                .retry
                .as_ref()
                .map(|r| r.delay)
                .filter(|d| d.is_finite())
                .map(|d| d.clamp(0.0, 365.0 * 86_400_000.0) as u64),
            jitter: rand::thread_rng().gen_range(0.0..1.0),
        }
    };
    let data = EventData {
        output: c.output.map(|o| {
            (
                o,
                c.output_type.unwrap_or_else(|| "application/json".into()),
            )
        }),
        metadata: c
            .flushed_metadata
            .and_then(|m| m.data.map(|d| (d, m.data_type))),
    };
    let event = RunEvent {
        event: Event::Complete(outcome),
        expected_snapshot: Some(snapshot_id),
        data,
    };
    let applied = apply(&state, &principal, &run_id, event)
        .await?
        .map_err(|r| {
            refused(
                r,
                StatusCode::BAD_REQUEST,
                "Snapshot ID doesn't match the latest snapshot",
            )
        })?;
    let run = &applied.run;
    let attempt_status = applied
        .transition
        .attempt_status
        .unwrap_or(AttemptStatus::RunFinished);
    tracing::info!(run.id = %run.friendly_id, attempt = run.attempt_number, status = %run.status, next = %attempt_status, "attempt completed");
    Ok(Json(CompleteAttemptResponse {
        result: CompleteAttemptResult {
            attempt_status: attempt_status.as_str().into(),
            snapshot: snapshot(run),
            run: run_ref(run),
        },
    }))
}

/// Keeps an executing attempt alive (workers call it every 30 s).
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/snapshots/{snapshotFriendlyId}/heartbeat", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path), ("snapshotFriendlyId" = String, Path)),
    request_body(content = Object, content_type = "text/plain", description = "{cpu?, memory?}"),
    responses((status = 200, body = HeartbeatResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn heartbeat_run(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, snapshot_id)): Path<(String, String)>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let event = RunEvent {
        event: Event::Heartbeat,
        expected_snapshot: Some(snapshot_id),
        data: EventData::default(),
    };
    apply(&state, &principal, &run_id, event)
        .await?
        .map_err(|r| {
            refused(
                r,
                StatusCode::BAD_REQUEST,
                "Snapshot ID doesn't match the latest snapshot",
            )
        })?;
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
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(run_id): Path<String>,
) -> ApiResult<Json<LatestSnapshotResponse>> {
    let env_id = &principal.env.environment.id;
    let run = match state.store.get_run_from_replica(env_id, &run_id).await? {
        Some(r) if r.version >= state.watchers.known_version(&r.id) => r,
        _ => state
            .store
            .get_run(env_id, &run_id)
            .await?
            .ok_or_else(run_not_found)?,
    };
    Ok(Json(LatestSnapshotResponse {
        execution: RunExecutionData {
            version: "1".into(),
            snapshot: snapshot(&run),
            run: run_ref(&run),
            completed_waitpoints: Vec::new(),
        },
    }))
}

/// The CLI's debug log of a run. Its lines describe the CLI's own bookkeeping, not the task,
/// so they are read (for a clear error on a bad body) and dropped.
#[utoipa::path(post, path = "/engine/v1/dev/runs/{runFriendlyId}/logs/debug", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path)),
    request_body(content = Object, content_type = "text/plain", description = "{time, message, properties?}"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn debug_log(
    SecretKeyAuth(_principal): SecretKeyAuth,
    Path(_run_id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let _: serde_json::Value = required_body(&body)?;
    metrics::counter!("taskgate_dev_debug_logs_total").increment(1);
    Ok(StatusCode::NO_CONTENT)
}
