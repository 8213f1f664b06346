//! Background workers: registering a build of a project's tasks (what `trigger.dev dev` does
//! after each build), the current worker with its tasks and payload schemas (what the CLI's
//! MCP tools read), and whether a development CLI is connected.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use taskgate_api::engine::*;
use taskgate_api::ErrorBody;
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::{new_id, new_worker_friendly_id};
use taskgate_store::{NewWorker, WorkerTask};

use super::engine::required_body;
use crate::auth::access::environment_for_user;
use crate::auth::extract::{SecretKeyAuth, UserAuth};
use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::workers::PRESENCE_TTL;

/// Most tasks one worker may register.
const MAX_TASKS: usize = 5000;
/// Longest task id and file path accepted.
const MAX_TASK_ID_LEN: usize = 128;
const MAX_PATH_LEN: usize = 1024;
/// Largest JSON value (retry settings, payload schema…) kept per task.
const MAX_TASK_JSON_BYTES: usize = 64 * 1024;
/// Largest registration body: the manifest carries the project's source files.
pub const MAX_REGISTRATION_BYTES: usize = 32 * 1024 * 1024;

/// 404 unless the key's environment belongs to the project named in the path.
pub fn require_project(principal: &EnvPrincipal, project_ref: &str) -> ApiResult<()> {
    if principal.env.project_ref == project_ref {
        Ok(())
    } else {
        Err(ApiError::not_found("Project not found"))
    }
}

/// A JSON value kept as text, if it is not absurdly large.
fn json_text(field: &str, v: Option<&serde_json::Value>) -> ApiResult<Option<String>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = v.to_string();
    if text.len() > MAX_TASK_JSON_BYTES {
        return Err(ApiError::invalid_body(format!(
            "{field} must be at most {MAX_TASK_JSON_BYTES} bytes of JSON"
        )));
    }
    Ok(Some(text))
}

/// A task of a manifest as stored, validated.
fn worker_task(t: &TaskManifest) -> ApiResult<WorkerTask> {
    if t.id.is_empty() || t.id.len() > MAX_TASK_ID_LEN || t.id.chars().any(char::is_control) {
        return Err(ApiError::invalid_body(format!(
            "task ids must be 1 to {MAX_TASK_ID_LEN} characters without control characters"
        )));
    }
    if t.file_path.len() > MAX_PATH_LEN {
        return Err(ApiError::invalid_body(format!(
            "task {}: filePath must be at most {MAX_PATH_LEN} characters",
            t.id
        )));
    }
    let queue_name = t
        .queue
        .as_ref()
        .and_then(|q| q.get("name"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    let max_duration = t
        .max_duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(|d| d.min(f64::from(u32::MAX)) as i64);
    Ok(WorkerTask {
        slug: t.id.clone(),
        file_path: t.file_path.clone(),
        export_name: t.export_name.clone(),
        retry_config: json_text("retry", t.retry.as_ref())?,
        queue_name,
        machine: json_text("machine", t.machine.as_ref())?,
        max_duration_seconds: max_duration,
        ttl: t.ttl.as_ref().and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        payload_schema: json_text("payloadSchema", t.payload_schema.as_ref())?,
        description: t.description.clone(),
        trigger_source: t.trigger_source.clone(),
    })
}

/// Refuses a manifest that defines a task id twice, naming where (upstream's words).
fn no_duplicate_ids(tasks: &[TaskManifest]) -> ApiResult<()> {
    for t in tasks {
        taskgate_core::text::check_task_id(&t.id)
            .map_err(|e| ApiError::invalid_body(format!("task {:?}: {e}", t.id)))?;
    }
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for t in tasks {
        if !seen.insert(t.id.as_str()) && !duplicates.contains(&t.id.as_str()) {
            duplicates.push(t.id.as_str());
        }
    }
    if duplicates.is_empty() {
        return Ok(());
    }
    let details: Vec<String> = duplicates
        .iter()
        .map(|id| {
            let files: Vec<&str> = tasks
                .iter()
                .filter(|t| t.id == *id)
                .map(|t| t.file_path.as_str())
                .collect();
            format!("\"{id}\" (defined in {})", files.join(", "))
        })
        .collect();
    Err(ApiError::bad_request(format!(
        "Duplicate task ids detected: {}. Each task must have a unique id across all task types (including scheduled tasks). Please rename one of them.",
        details.join("; ")
    )))
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
    let m = body.metadata;
    if m.tasks.len() > MAX_TASKS {
        return Err(ApiError::invalid_body(format!(
            "a worker may register at most {MAX_TASKS} tasks"
        )));
    }
    no_duplicate_ids(&m.tasks)?;
    let tasks = m
        .tasks
        .iter()
        .map(worker_task)
        .collect::<ApiResult<Vec<_>>>()?;
    let env_id = principal.env.environment.id.clone();
    let worker = state
        .store
        .register_worker(
            NewWorker {
                id: new_id(),
                friendly_id: new_worker_friendly_id(),
                environment_id: env_id.clone(),
                content_hash: m.content_hash.clone(),
                sdk_version: m.package_version,
                cli_version: m.cli_package_version,
                runtime: m.runtime,
                runtime_version: m.runtime_version,
                tasks: tasks.clone(),
            },
            state.now(),
        )
        .await?;
    tracing::info!(env.id = %env_id, worker.id = %worker.friendly_id, worker.version = %worker.version, tasks = tasks.len(), "worker registered");
    let response = CreateBackgroundWorkerResponse {
        id: worker.friendly_id.clone(),
        version: worker.version.clone(),
        content_hash: worker.content_hash.clone(),
    };
    state.workers.remember(Arc::new((worker, tasks)));
    Ok(Json(response))
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
    let (_, env) = environment_for_user(&state, &user, &project_ref, "dev", None).await?;
    let seen = state.store.dev_presence(&env.environment.id).await?;
    let is_connected = seen.is_some_and(|at| at + PRESENCE_TTL > state.now());
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
    let (access, env) = environment_for_user(&state, &user, &project_ref, &env, branch).await?;
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
            id: worker.friendly_id,
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
