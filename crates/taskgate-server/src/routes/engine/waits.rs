//! What task code calls to wait: `POST /engine/v1/runs/{run}/wait/duration` (`wait.for` and
//! `wait.until` past the SDK's local 5 s) and `POST …/waitpoints/tokens/{id}/wait`
//! (`wait.forToken`): adapters over [`taskgate_engine::waits`]. The task process calls them
//! with its environment's secret key; the run then waits in `EXECUTING_WITH_WAITPOINTS` and
//! continues through a new snapshot, which its worker fetches.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use taskgate_api::waitpoints::*;
use taskgate_api::ErrorBody;
use taskgate_core::ids::{RunFriendlyId, WaitpointFriendlyId};
use taskgate_engine::waits::DurationWait;
use taskgate_engine::Engine;

use super::required_body;
use crate::auth::extract::SecretKeyAuth;
use crate::error::ApiResult;

/// Blocks an executing run until a point in time. With an idempotency key, a repeated call
/// gets the first call's waitpoint, and continues at once if its time has passed.
#[utoipa::path(post, path = "/engine/v1/runs/{runFriendlyId}/wait/duration", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path)),
    request_body(content = Object, description = "{date, idempotencyKey?, idempotencyKeyTTL?}"),
    responses((status = 200, body = WaitForDurationResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn wait_for_duration(
    State(engine): State<Arc<Engine>>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(run_id): Path<RunFriendlyId>,
    body: Bytes,
) -> ApiResult<Json<WaitForDurationResponse>> {
    let wait: DurationWait = required_body(&body)?;
    let blocked = engine
        .wait_for_duration(&principal.env.environment.id, &run_id, wait)
        .await?;
    let w = blocked.waitpoint;
    Ok(Json(WaitForDurationResponse {
        wait_until: w.completed_after.unwrap_or(w.created_at),
        waitpoint: WaitpointRef {
            id: w.friendly_id.to_string(),
        },
    }))
}

/// Blocks an executing run until a token of its environment is completed or times out; a
/// completed token continues it at once.
#[utoipa::path(post, path = "/engine/v1/runs/{runFriendlyId}/waitpoints/tokens/{waitpointFriendlyId}/wait", tag = "engine", security(("secretKey" = [])),
    params(("runFriendlyId" = String, Path), ("waitpointFriendlyId" = String, Path)),
    responses((status = 200, body = WaitForTokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn wait_for_token(
    State(engine): State<Arc<Engine>>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, token)): Path<(RunFriendlyId, WaitpointFriendlyId)>,
) -> ApiResult<Json<WaitForTokenResponse>> {
    engine
        .wait_for_token(&principal.env.environment.id, &run_id, &token)
        .await?;
    Ok(Json(WaitForTokenResponse { success: true }))
}
