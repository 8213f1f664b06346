//! Deployments: what `trigger.dev deploy` 4.8.3 calls on the local-bundle path taskgate's
//! deploy settings choose (an artifact slot, its upload, the deployment), what a bundle's
//! index controller calls (its worker, or its failure), `trigger.dev promote`, and the
//! deployments API. Adapters over [`taskgate_runner::deploy`] and the store.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Duration;
use serde_json::Value;
use taskgate_api::deployments::*;
use taskgate_api::engine::{CreateBackgroundWorkerRequest, CreateBackgroundWorkerResponse};
use taskgate_api::runs::RunPagination;
use taskgate_api::ErrorBody;
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::random_string;
use taskgate_core::run::RunCursor;
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_runner::deploy::{DeployError, InitializeDeployment};
use taskgate_store::{Deployment, NewArtifact, UploadRefusal};

use super::engine::required_body;
use super::runs::trigger::parse_json_body;
use crate::auth::extract::{ApiAuth, SecretKeyAuth};
use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::public_url::PublicUrl;
use crate::state::AppState;

/// How long an upload URL lives.
const UPLOAD_WINDOW: Duration = Duration::minutes(30);
const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;

/// The caller's environment must be the one the path names.
fn same_environment(principal: &EnvPrincipal, project_ref: &str, env: &str) -> ApiResult<()> {
    let e = &principal.env;
    if e.project_ref != project_ref || EnvType::from_url_env(env) != Some(e.environment.env_type) {
        return Err(ApiError::not_found(
            "This key is not the environment's: use the key of the environment you name",
        ));
    }
    Ok(())
}

/// Development environments run on `trigger.dev dev`, not on deployments.
fn deployable(principal: &EnvPrincipal) -> ApiResult<()> {
    if principal.env.environment.env_type == EnvType::Development {
        return Err(ApiError::bad_request(
            "Development environments run on `trigger.dev dev`: deploy to staging, prod or preview",
        ));
    }
    Ok(())
}

/// How `trigger.dev deploy` should build: on the developer's machine, uploading the output.
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/{env}/deploy-settings", tag = "deployments", security(("secretKey" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = DeploySettingsResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deploy_settings(
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((project_ref, env)): Path<(String, String)>,
) -> ApiResult<Json<DeploySettingsResponse>> {
    same_environment(&principal, &project_ref, &env)?;
    Ok(Json(DeploySettingsResponse {
        build_path: "native_local_bundle".into(),
    }))
}

/// A slot for a deployment's bundle: the CLI uploads it to `uploadUrl` next.
#[utoipa::path(post, path = "/api/v1/artifacts", tag = "deployments", security(("secretKey" = [])),
    request_body = CreateArtifactRequest,
    responses((status = 200, body = CreateArtifactResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn create_artifact(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    PublicUrl(base): PublicUrl,
    body: Bytes,
) -> ApiResult<Json<CreateArtifactResponse>> {
    deployable(&principal)?;
    let request: CreateArtifactRequest = parse_json_body(&body)?;
    if request.kind != "deployment_bundle" {
        return Err(ApiError::bad_request(format!(
            "{} artifacts are not supported: taskgate deploys bundles built on your machine (run `trigger.dev deploy` without --native-build)",
            request.kind.chars().take(64).collect::<String>()
        )));
    }
    let limit = state.config.runner.max_bundle_bytes;
    if request.content_length <= 0 || request.content_length > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("A bundle must be from 1 to {limit} bytes (--max-bundle-bytes)"),
        ));
    }
    let now = state.now();
    let id = format!(
        "{}-{}",
        now.timestamp_millis(),
        random_string(LOWER_ALNUM, 12)
    );
    let secret = random_string(LOWER_ALNUM, 40);
    let project_ref = &principal.env.project_ref;
    let key = format!("bundles/{project_ref}/{id}.tar.gz");
    let expires_at = now + UPLOAD_WINDOW;
    state
        .store
        .create_artifact(
            NewArtifact {
                key: key.clone(),
                environment_id: principal.env.environment.id.clone(),
                upload_secret_hash: sha256_hex(&secret),
                content_length: request.content_length,
                expires_at,
            },
            now,
        )
        .await?;
    Ok(Json(CreateArtifactResponse {
        artifact_key: key,
        upload_url: format!("{base}/api/v1/artifacts/uploads/{project_ref}/{id}/{secret}"),
        upload_fields: Default::default(),
        expires_at,
    }))
}

/// A bundle's upload: a multipart form whose `file` is the tar.gz. The URL is the credential.
#[utoipa::path(post, path = "/api/v1/artifacts/uploads/{projectRef}/{id}/{secret}", tag = "deployments", security(()),
    params(("projectRef" = String, Path), ("id" = String, Path), ("secret" = String, Path)),
    request_body(content = String, content_type = "multipart/form-data", description = "the upload fields, then `file`"),
    responses((status = 204, description = "stored"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn upload_artifact(
    State(state): State<AppState>,
    Path((project_ref, id, secret)): Path<(String, String, String)>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<StatusCode> {
    let mut form = form
        .map_err(|e| ApiError::bad_request(format!("Invalid multipart form: {}", e.body_text())))?;
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !plain(&project_ref) || !plain(&id) {
        return Err(ApiError::forbidden("Unknown upload"));
    }
    let key = format!("bundles/{project_ref}/{id}.tar.gz");
    let mut data: Option<Bytes> = None;
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("Invalid multipart form: {e}")))?;
        let Some(field) = field else { break };
        if field.name() == Some("file") {
            data = Some(field.bytes().await.map_err(|e| {
                ApiError::bad_request(format!("Cannot read the uploaded file: {e}"))
            })?);
        }
    }
    let data = data.ok_or_else(|| ApiError::bad_request("The form has no `file`"))?;
    match state
        .store
        .upload_artifact(&key, &sha256_hex(&secret), &data, state.now())
        .await?
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(UploadRefusal::TooLarge) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The file is larger than the slot was made for",
        )),
        Err(UploadRefusal::Expired) => Err(ApiError::forbidden("This upload URL has expired")),
        Err(UploadRefusal::AlreadyUploaded) => Err(ApiError::forbidden(
            "A bundle was uploaded to this URL already",
        )),
        Err(UploadRefusal::Unknown) => Err(ApiError::forbidden("Unknown upload")),
    }
}

fn error_data(d: &Deployment) -> Option<DeploymentErrorData> {
    let e: Value = serde_json::from_str(d.error.as_deref()?).ok()?;
    let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    Some(DeploymentErrorData {
        name: text("name").unwrap_or_else(|| "Error".into()),
        message: text("message").unwrap_or_default(),
        stack: text("stack"),
        stderr: text("stderr"),
    })
}

/// Makes a deployment from an uploaded bundle, indexes it and (unless `skipPromotion`)
/// promotes it, all before answering: an index that fails is this answer's 400.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", security(("secretKey" = [])),
    request_body(content = Object, description = "{contentHash, artifactKey, fromBundle: true, isNativeBuild, skipPromotion?, externalId?, force?, runtime?, triggeredVia?, gitMeta?}"),
    responses((status = 200, body = InitializeDeploymentResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn initialize_deployment(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    body: Bytes,
) -> ApiResult<Json<InitializeDeploymentResponse>> {
    deployable(&principal)?;
    let request: InitializeDeployment = parse_json_body(&body)?;
    let deployed = state
        .runner
        .deploy(&principal.env, request)
        .await
        .map_err(|e| match e {
            DeployError::Invalid(m) => ApiError::bad_request(m),
            e @ DeployError::Failed { .. } => {
                ApiError::bad_request(e.to_string()).should_retry(false)
            }
            DeployError::Runner(taskgate_runner::Error::Engine(e)) => e.into(),
            DeployError::Runner(taskgate_runner::Error::Store(e)) => e.into(),
            DeployError::Runner(other) => ApiError::internal(other),
        })?;
    let d = deployed.deployment;
    Ok(Json(InitializeDeploymentResponse {
        id: d.friendly_id.to_string(),
        content_hash: d.content_hash,
        short_code: d.short_code,
        version: d.version,
        image_tag: String::new(),
        image_platform: "linux/amd64".into(),
        external_id: d.external_id,
        outcome: if deployed.existing {
            "existing"
        } else {
            "created"
        }
        .into(),
        is_promoted: deployed.promoted,
    }))
}

/// The caller's environment's deployment by id, friendly id or version (the use case the
/// dashboard shares).
async fn deployment_of(
    state: &AppState,
    principal: &EnvPrincipal,
    id: &str,
) -> ApiResult<Deployment> {
    Ok(
        taskgate_usecases::deployments::find(&state.usecases, &principal.env.environment.id, id)
            .await?,
    )
}

/// A deployment, with its worker's tasks once indexed and its error if it failed.
#[utoipa::path(get, path = "/api/v1/deployments/{deploymentId}", tag = "deployments", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("deploymentId" = String, Path, description = "deployment_…, or a version")),
    responses((status = 200, body = DeploymentResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_deployment(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<DeploymentResponse>> {
    principal.authorize("read", &[Resource::new("deployments")])?;
    let d = deployment_of(&state, &principal, &id).await?;
    let env = &principal.env.environment.id;
    let worker = match &d.worker_id {
        Some(w) => state
            .store
            .get_worker(env, w)
            .await?
            .map(|(w, tasks)| DeploymentWorker {
                id: w.friendly_id.to_string(),
                version: w.version,
                tasks: tasks
                    .into_iter()
                    .map(|t| DeploymentTask {
                        id: t.slug.clone(),
                        slug: t.slug,
                        file_path: t.file_path,
                        export_name: t.export_name,
                    })
                    .collect(),
            }),
        None => None,
    };
    let is_current = state
        .store
        .current_deployment(env)
        .await?
        .is_some_and(|(c, _, _)| c.id == d.id);
    Ok(Json(DeploymentResponse {
        id: d.friendly_id.to_string(),
        status: d.status.as_str().into(),
        content_hash: d.content_hash.clone(),
        short_code: d.short_code.clone(),
        version: d.version.clone(),
        image_platform: "linux/amd64".into(),
        external_id: d.external_id.clone(),
        error_data: error_data(&d),
        worker,
        is_current,
    }))
}

/// The environment's deployments, newest first.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("page[size]" = Option<u32>, Query), ("page[after]" = Option<String>, Query)),
    responses((status = 200, body = ListDeploymentsResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_deployments(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<ListDeploymentsResponse>> {
    principal.authorize("read", &[Resource::new("deployments")])?;
    let size = match params.get("page[size]") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| ApiError::bad_request("page[size] must be an integer from 1 to 100"))?,
    };
    let before = match params.get("page[after]") {
        None => None,
        Some(c) => Some(
            RunCursor::decode(c)
                .map(|c| (from_millis(c.created_at_ms), c.run_id.into()))
                .ok_or_else(|| ApiError::bad_request("Invalid cursor"))?,
        ),
    };
    let mut list = state
        .store
        .list_deployments(&principal.env.environment.id, size + 1, before)
        .await?;
    let more = list.len() > size as usize;
    list.truncate(size as usize);
    let next = list.last().filter(|_| more).map(|d| {
        RunCursor {
            created_at_ms: d.created_at.timestamp_millis(),
            run_id: d.id.to_string(),
        }
        .encode()
    });
    let data = list
        .iter()
        .map(|d| DeploymentListItem {
            id: d.friendly_id.to_string(),
            created_at: d.created_at,
            short_code: d.short_code.clone(),
            version: d.version.clone(),
            runtime: d.runtime.clone(),
            runtime_version: None,
            status: d.status.as_str().into(),
            deployed_at: d.deployed_at,
            git: d
                .git_meta
                .as_deref()
                .and_then(|g| serde_json::from_str(g).ok()),
            error: error_data(d),
            external_id: d.external_id.clone(),
        })
        .collect();
    Ok(Json(ListDeploymentsResponse {
        data,
        pagination: RunPagination {
            next,
            previous: None,
        },
    }))
}

/// Makes a deployed version the one its environment runs (`trigger.dev promote`, and so a
/// rollback): its queued runs go to it from now on; runs started on another keep theirs.
#[utoipa::path(post, path = "/api/v1/deployments/{version}/promote", tag = "deployments", security(("secretKey" = [])),
    params(("version" = String, Path, description = "a version, or a deployment's id")),
    responses((status = 200, body = PromoteDeploymentResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn promote_deployment(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(version): Path<String>,
) -> ApiResult<Json<PromoteDeploymentResponse>> {
    let d = taskgate_usecases::deployments::promote(
        &state.usecases,
        &principal.env.environment.id,
        &version,
    )
    .await?;
    Ok(Json(PromoteDeploymentResponse {
        id: d.friendly_id.to_string(),
        version: d.version,
        short_code: d.short_code,
    }))
}

/// A bundle's index controller registers the deployment's worker. Registering it again
/// (another node indexing the same bundle to run it) answers the worker registered first.
#[utoipa::path(post, path = "/api/v1/deployments/{deploymentId}/background-workers", tag = "deployments", security(("secretKey" = [])),
    params(("deploymentId" = String, Path)),
    request_body = CreateBackgroundWorkerRequest,
    responses((status = 200, body = CreateBackgroundWorkerResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_deployment_worker(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<CreateBackgroundWorkerResponse>> {
    let d = deployment_of(&state, &principal, &id).await?;
    let env = &principal.env.environment.id;
    if let Some(worker_id) = &d.worker_id {
        if let Some((w, _)) = state.store.get_worker(env, worker_id).await? {
            return Ok(Json(CreateBackgroundWorkerResponse {
                id: w.friendly_id.to_string(),
                version: w.version,
                content_hash: w.content_hash,
            }));
        }
    }
    let body: CreateBackgroundWorkerRequest = required_body(&body)?;
    let worker = state
        .engine
        .register_worker(env, body.metadata, Some(d.id.clone()))
        .await?;
    Ok(Json(CreateBackgroundWorkerResponse {
        id: worker.friendly_id.to_string(),
        version: worker.version,
        content_hash: worker.content_hash,
    }))
}

/// A bundle's index controller reports that indexing failed.
#[utoipa::path(post, path = "/api/v1/deployments/{deploymentId}/fail", tag = "deployments", security(("secretKey" = [])),
    params(("deploymentId" = String, Path)),
    request_body = FailDeploymentRequest,
    responses((status = 200, body = Object, description = "{id}"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn fail_deployment(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let d = deployment_of(&state, &principal, &id).await?;
    let request: FailDeploymentRequest = required_body(&body)?;
    let clip = |s: String| s.chars().take(8000).collect::<String>();
    let error = serde_json::json!({
        "name": clip(request.error.name),
        "message": clip(request.error.message),
        "stack": request.error.stack.map(clip),
        "stderr": request.error.stderr.map(clip),
    });
    state
        .store
        .fail_deployment(&d.id, &error.to_string(), state.now())
        .await?;
    Ok(Json(serde_json::json!({ "id": d.friendly_id })).into_response())
}
