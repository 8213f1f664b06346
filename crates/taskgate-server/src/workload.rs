//! The workload protocol a deployed bundle's run controller speaks (what upstream's supervisor
//! serves): `/api/v1/workload-actions/runs/{run}/…` and socket.io `/workload`. It is served on
//! a loopback listener of this node's own, for the processes this node's runner started; each
//! authenticates with the runner id it was started with, which names the one run it may act
//! on. Every action goes through the engine, as a development CLI's do.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use taskgate_api::engine::*;
use taskgate_core::ids::{RunFriendlyId, SnapshotId};
use taskgate_runner::{ActiveRun, Runner};
use taskgate_store::EnvironmentAuth;

use crate::error::{ApiError, ApiResult};
use crate::routes::engine::{lenient_body, required_body};

/// The header that carries a process's runner id.
const RUNNER_ID: &str = "x-trigger-workload-runner-id";

/// The workload routes, for the loopback listener.
pub fn router(runner: Arc<Runner>, max_payload_bytes: usize) -> Router {
    const RUN: &str = "/api/v1/workload-actions/runs/{run}";
    Router::new()
        .route(
            &format!("{RUN}/snapshots/{{snapshot}}/attempts/start"),
            post(start),
        )
        .route(
            &format!("{RUN}/snapshots/{{snapshot}}/attempts/complete"),
            post(complete),
        )
        .route(
            &format!("{RUN}/snapshots/{{snapshot}}/heartbeat"),
            post(heartbeat),
        )
        .route(
            &format!("{RUN}/snapshots/{{snapshot}}/suspend"),
            get(suspend),
        )
        .route(
            &format!("{RUN}/snapshots/{{snapshot}}/continue"),
            get(continue_run),
        )
        .route(&format!("{RUN}/snapshots/since/{{snapshot}}"), get(since))
        .route(&format!("{RUN}/logs/debug"), post(debug_log))
        .route("/socket.io/", get(crate::socketio::workload_socket_io))
        .fallback(|| async { ApiError::not_found("Not found") })
        // A completion carries the run's output.
        .layer(axum::extract::DefaultBodyLimit::max(
            max_payload_bytes.saturating_add(1024 * 1024),
        ))
        .with_state(runner)
}

/// The process's run, when the path names it.
async fn authorized(
    runner: &Runner,
    headers: &HeaderMap,
    run: &RunFriendlyId,
) -> ApiResult<(ActiveRun, EnvironmentAuth)> {
    let id = headers
        .get(RUNNER_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let active = runner
        .active(id)
        .filter(|a| a.run == *run)
        .ok_or_else(|| ApiError::unauthorized("Unknown runner, or not this run's"))?;
    let env = runner
        .engine()
        .store()
        .get_environment_auth(&active.environment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Environment not found"))?;
    Ok((active, env))
}

async fn start(
    State(runner): State<Arc<Runner>>,
    headers: HeaderMap,
    Path((run, snapshot)): Path<(RunFriendlyId, SnapshotId)>,
    body: Bytes,
) -> ApiResult<Json<StartAttemptResponse>> {
    let (_, env) = authorized(&runner, &headers, &run).await?;
    let _: Option<serde_json::Value> = lenient_body(&body)?;
    let started = runner
        .engine()
        .start_attempt(
            &env,
            &run,
            &snapshot,
            runner.api_url().map_err(ApiError::internal)?,
        )
        .await?;
    Ok(Json(started))
}

async fn complete(
    State(runner): State<Arc<Runner>>,
    headers: HeaderMap,
    Path((run, snapshot)): Path<(RunFriendlyId, SnapshotId)>,
    body: Bytes,
) -> ApiResult<Json<CompleteAttemptResponse>> {
    let (_, env) = authorized(&runner, &headers, &run).await?;
    let CompleteAttemptRequest { completion } = required_body(&body)?;
    let done = runner
        .engine()
        .complete_attempt(&env.environment.id, &run, &snapshot, completion)
        .await?;
    Ok(Json(done))
}

async fn heartbeat(
    State(runner): State<Arc<Runner>>,
    headers: HeaderMap,
    Path((run, snapshot)): Path<(RunFriendlyId, SnapshotId)>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let (_, env) = authorized(&runner, &headers, &run).await?;
    runner
        .engine()
        .heartbeat(&env.environment.id, &run, &snapshot)
        .await?;
    Ok(Json(HeartbeatResponse { ok: true }))
}

/// Without checkpoints a waiting process stays alive: the controller keeps it running and
/// resumes it from the continuation snapshot.
async fn suspend(
    State(runner): State<Arc<Runner>>,
    headers: HeaderMap,
    Path((run, _snapshot)): Path<(RunFriendlyId, SnapshotId)>,
) -> ApiResult<Response> {
    authorized(&runner, &headers, &run).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "ok": false, "error": "Checkpoints disabled" })),
    )
        .into_response())
}

async fn continue_run(
    State(runner): State<Arc<Runner>>,
    headers: HeaderMap,
    Path((run, _snapshot)): Path<(RunFriendlyId, SnapshotId)>,
) -> ApiResult<Response> {
    let (_, env) = authorized(&runner, &headers, &run).await?;
    let latest = runner
        .engine()
        .latest_snapshot(&env.environment.id, &run)
        .await?;
    Ok(Json(json!({ "snapshot": latest.snapshot, "run": latest.run })).into_response())
}

/// The run's snapshots after the one the process holds: the latest, when it is another.
async fn since(
    State(runner): State<Arc<Runner>>,
    headers: HeaderMap,
    Path((run, snapshot)): Path<(RunFriendlyId, SnapshotId)>,
) -> ApiResult<Response> {
    let (_, env) = authorized(&runner, &headers, &run).await?;
    let latest = runner
        .engine()
        .latest_snapshot(&env.environment.id, &run)
        .await?;
    let snapshots = if latest.snapshot.friendly_id == *snapshot {
        Vec::new()
    } else {
        vec![latest]
    };
    Ok(Json(json!({ "snapshots": snapshots })).into_response())
}

async fn debug_log(
    State(runner): State<Arc<Runner>>,
    headers: HeaderMap,
    Path(run): Path<RunFriendlyId>,
) -> ApiResult<StatusCode> {
    authorized(&runner, &headers, &run).await?;
    Ok(StatusCode::NO_CONTENT)
}
