//! Background workers: registering a build of a project's tasks (what `trigger.dev dev` does
//! after each build), the current worker with its tasks and payload schemas (what the CLI's
//! MCP tools read), and whether a development CLI is connected.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use taskgate_api::engine::*;
use taskgate_api::ErrorBody;
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;

use super::engine::required_body;
use crate::auth::extract::{SecretKeyAuth, UserAuth};
use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use taskgate_usecases::access::environment_for_user;

/// 404 unless the key's environment belongs to the project named in the path.
pub fn require_project(principal: &EnvPrincipal, project_ref: &str) -> ApiResult<()> {
    if principal.env.project_ref == project_ref {
        Ok(())
    } else {
        Err(ApiError::not_found("Project not found"))
    }
}

/// Registers a build of the project's tasks as the environment's current worker.
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/background-workers", tag = "engine", security(("secretKey" = [])),
    params(("projectRef" = String, Path)),
    request_body = CreateBackgroundWorkerRequest,
    responses((status = 200, body = CreateBackgroundWorkerResponse), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_background_worker(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(project_ref): Path<String>,
    body: Bytes,
) -> ApiResult<Json<CreateBackgroundWorkerResponse>> {
    require_project(&principal, &project_ref)?;
    let body: CreateBackgroundWorkerRequest = required_body(&body)?;
    let worker = state
        .engine
        .register_worker(&principal.env.environment.id, body.metadata, None)
        .await?;
    Ok(Json(CreateBackgroundWorkerResponse {
        id: worker.friendly_id.to_string(),
        version: worker.version,
        content_hash: worker.content_hash,
    }))
}

/// Whether a `trigger.dev dev` is connected to the caller's development environment.
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/dev-status", tag = "engine", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("projectRef" = String, Path)),
    responses((status = 200, body = DevStatusResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn dev_status(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(project_ref): Path<String>,
) -> ApiResult<Json<DevStatusResponse>> {
    let (_, env) = environment_for_user(&state.usecases, &user, &project_ref, "dev", None).await?;
    let is_connected = state.engine.dev_connected(&env.environment.id).await?;
    Ok(Json(DevStatusResponse { is_connected }))
}

/// The environment's current worker and its tasks (`current` is the only tag served).
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/{env}/workers/{tagName}", tag = "engine", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path, description = "dev, staging, prod or preview"),
           ("tagName" = String, Path, description = "current"), ("x-trigger-branch" = Option<String>, Header)),
    responses((status = 200, body = CurrentWorkerResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn current_worker(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path((project_ref, env, tag)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<CurrentWorkerResponse>> {
    let branch = headers
        .get("x-trigger-branch")
        .and_then(|v| v.to_str().ok());
    let (access, env) =
        environment_for_user(&state.usecases, &user, &project_ref, &env, branch).await?;
    if tag != "current" {
        return Err(ApiError::not_found("Worker not found"));
    }
    let (worker, tasks) = state
        .store
        .current_worker(&env.environment.id)
        .await?
        .ok_or_else(|| ApiError::not_found("Worker not found"))?;
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    let tasks = tasks
        .iter()
        .map(|t| WorkerTaskResponse {
            id: format!(
                "task_{}",
                &sha256_hex(&format!("{}:{}", worker.id, t.slug))[..24]
            ),
            slug: t.slug.clone(),
            file_path: t.file_path.clone(),
            trigger_source: t
                .trigger_source
                .clone()
                .unwrap_or_else(|| "STANDARD".into()),
            created_at: worker.created_at,
            payload_schema: parse(&t.payload_schema),
            queue_config: t
                .queue_name
                .as_ref()
                .map(|name| serde_json::json!({ "name": name })),
        })
        .collect();
    let env_slug = match env.environment.env_type {
        EnvType::Development => "dev",
        _ => env.environment.slug.as_str(),
    };
    Ok(Json(CurrentWorkerResponse {
        worker: WorkerDescription {
            id: worker.friendly_id.to_string(),
            version: worker.version.clone(),
            engine: Some("V2".into()),
            sdk_version: worker.sdk_version,
            cli_version: worker.cli_version,
            tasks,
        },
        urls: WorkerUrls {
            runs: format!(
                "{}/orgs/{}/projects/{}/env/{env_slug}/runs?versions={}",
                crate::public_url::public_url(&state, &headers),
                access.organization.slug,
                access.project.slug,
                worker.version
            ),
        },
    }))
}
