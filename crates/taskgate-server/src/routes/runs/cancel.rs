//! Cancel and replay.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;
use taskgate_api::runs::RunIdResponse;
use taskgate_api::ErrorBody;
use taskgate_core::ids::RunFriendlyId;
use taskgate_core::scope::Resource;
use taskgate_engine::runs::ReplayOverrides;

use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Cancels a run. A queued, delayed or dequeued run ends at once; an executing one is
/// `CANCELED` at once and its worker is told to stop (it confirms, or the run finishes
/// without it after a minute). A run that already finished is answered unchanged.
#[utoipa::path(post, path = "/api/v2/runs/{runId}/cancel", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path)),
    responses((status = 200, body = RunIdResponse, description = "the canceled run"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn cancel_run(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<RunFriendlyId>,
) -> ApiResult<Json<RunIdResponse>> {
    let env_id = principal.env.environment.id.clone();
    let run = state.store.get_run(&env_id, &run_id).await?;
    // Authorization before the not-found check, so an under-scoped token learns nothing.
    let resources = match &run {
        Some(r) => vec![
            Resource::with_id("runs", &r.friendly_id),
            Resource::with_id("tasks", &r.task_identifier),
        ],
        None => vec![Resource::with_id("runs", &run_id)],
    };
    principal.authorize("write", &resources)?;
    if run.is_none() {
        return Err(ApiError::not_found("Resource not found"));
    }
    state.engine.cancel(&env_id, &run_id).await?;
    Ok(Json(RunIdResponse {
        id: run_id.to_string(),
    }))
}

/// Triggers a new run of the same task with the same payload (or the given overrides).
///
/// A public token may replay too (upstream refuses them; the CLI's MCP server sends one): it
/// needs `write:runs:{runId}`, since it acts on the run, and `trigger:tasks:{taskId}`, since
/// it starts a run of the task (or the broader `write:runs`, `trigger:tasks`, `write:all`,
/// `admin`).
#[utoipa::path(post, path = "/api/v1/runs/{runId}/replay", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path)),
    request_body(content = Object, description = "optional ReplayRunRequestBody overrides"),
    responses((status = 200, body = RunIdResponse, description = "the new run"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replay_run(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<RunFriendlyId>,
    body: Bytes,
) -> ApiResult<Json<RunIdResponse>> {
    let overrides: ReplayOverrides = match crate::json::parse_lenient(&body)? {
        Value::Null => ReplayOverrides::default(),
        v => serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("Validation error: {e}")))?,
    };
    let env_id = principal.env.environment.id.clone();
    let old = state.store.get_run(&env_id, &run_id).await?;
    // Authorization before the not-found check, so an under-scoped token learns nothing.
    match &old {
        Some(r) => {
            principal.authorize("write", &[Resource::with_id("runs", &r.friendly_id)])?;
            principal.authorize("trigger", &[Resource::with_id("tasks", &r.task_identifier)])?;
        }
        None => principal.authorize("write", &[Resource::with_id("runs", &run_id)])?,
    }
    let old = old.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Run not found"))?;
    let run = state
        .engine
        .replay(&principal.env.environment, &old, overrides)
        .await?;
    Ok(Json(RunIdResponse {
        id: run.friendly_id.to_string(),
    }))
}
