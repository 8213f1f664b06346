//! `POST /api/v1/runs/{runId}/tags` (`tags.add`, from task code or with a key): adds tags to
//! a run, at most 10 in all, with upstream's answers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use taskgate_api::ErrorBody;
use taskgate_core::ids::RunFriendlyId;
use taskgate_core::scope::Resource;
use taskgate_engine::trigger::{tags, MAX_TAGS};
use taskgate_store::TagsAdded;

use super::trigger::parse_json_body;
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Adds the body's `tags` (a string or an array) that the run lacks.
#[utoipa::path(post, path = "/api/v1/runs/{runId}/tags", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("runId" = String, Path)),
    request_body(content = Object, description = "{tags: string | string[]}"),
    responses((status = 200, body = Object, description = "{message}"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_tags(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<RunFriendlyId>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    principal.authorize("write", &[Resource::with_id("runs", &run_id)])?;
    let body: Value = parse_json_body(&body)?;
    let wanted = tags(body.get("tags"))?;
    let added = state
        .store
        .add_run_tags(
            &principal.env.environment.id,
            &run_id,
            &wanted,
            MAX_TAGS,
            state.now(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("Run not found").should_retry(false))?;
    match added {
        TagsAdded::Added(new) if new.is_empty() => {
            Ok(Json(json!({ "message": "No new tags to add" })))
        }
        TagsAdded::Added(new) => Ok(Json(
            json!({ "message": format!("Successfully set {} new tags.", new.len()) }),
        )),
        TagsAdded::TooMany { existing, new } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Runs can only have {MAX_TAGS} tags, you're trying to set {}. These tags have not been set: {}.",
                existing + new.len(),
                new.iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
