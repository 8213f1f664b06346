//! `GET /api/v3/runs/{runId}`.

use axum::extract::{Path, State};
use axum::Json;
use taskgate_api::runs::RetrieveRunResponse;
use taskgate_api::ErrorBody;
use taskgate_core::ids::RunFriendlyId;

use super::{present, readable_run};
use crate::auth::extract::ApiAuth;
use crate::error::ApiResult;
use crate::public_url::PublicUrl;
use crate::state::AppState;
use taskgate_engine::packets::PacketAccess;

/// A run with exactly the fields the SDK's `RetrieveRunResponse` requires.
#[utoipa::path(get, path = "/api/v3/runs/{runId}", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path)),
    responses((status = 200, body = RetrieveRunResponse), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_run(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    PublicUrl(base): PublicUrl,
    Path(run_id): Path<RunFriendlyId>,
) -> ApiResult<Json<RetrieveRunResponse>> {
    let run = readable_run(&state, &principal, &run_id).await?;
    let env = &principal.env.environment.id;
    Ok(Json(present::retrieved(&run, |path| {
        state
            .engine
            .packet_url(&base, PacketAccess::Read, env, path)
    })))
}
