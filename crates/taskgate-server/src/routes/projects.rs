//! Projects, their environments' keys, and branches.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use secrecy::ExposeSecret;
use taskgate_api::*;
use taskgate_core::env::EnvType;
use taskgate_core::ids::new_project_ref;
use taskgate_core::scope::Resource;
use taskgate_store::{Organization, Project, StoreError};

use taskgate_usecases::orgs::membership;
use taskgate_usecases::text::{required_name, slugify};

use super::project_response;
use crate::auth::extract::{UserAuth, UserOrKey};
use crate::auth::{EnvPrincipal, UserPrincipal};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use taskgate_auth::env_key::open_key;
use taskgate_usecases::access::{
    client_key_sealed, environment_for_user, project_for_user, require, require_key_access,
};

/// Live projects of an organization.
#[utoipa::path(get, path = "/api/v1/orgs/{orgParam}/projects", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("orgParam" = String, Path, description = "organization id or slug")),
    responses((status = 200, body = Vec<ProjectResponse>), (status = 403, body = ErrorBody)))]
pub async fn list_projects(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(org_param): Path<String>,
) -> ApiResult<Json<Vec<ProjectResponse>>> {
    let m = membership(&state.usecases, &user.user.id, &org_param).await?;
    require(
        &state.usecases,
        &user,
        m.role,
        "read",
        Resource::new("project"),
    )?;
    let projects = state.store.list_projects(&m.organization.id).await?;
    Ok(Json(
        projects
            .iter()
            .map(|p| project_response(p, &m.organization))
            .collect(),
    ))
}

/// Live projects of every organization the caller belongs to (upstream's shape; what the
/// CLI's `projects list` and the MCP server's `list_projects` read).
#[utoipa::path(get, path = "/api/v1/projects", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    responses((status = 200, body = Vec<ProjectResponse>), (status = 401, body = ErrorBody)))]
pub async fn list_all_projects(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
) -> ApiResult<Json<Vec<ProjectResponse>>> {
    let projects = readable_projects(&state, &user).await?;
    Ok(Json(
        projects
            .iter()
            .map(|(p, org)| project_response(p, org))
            .collect(),
    ))
}

/// The runtime of each project's current production deployment (upstream's shape): `null`
/// for a project with no promoted production version.
#[utoipa::path(get, path = "/api/v1/projects/runtimes", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    responses((status = 200, body = Vec<ProjectRuntimeResponse>), (status = 401, body = ErrorBody)))]
pub async fn list_project_runtimes(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
) -> ApiResult<Json<Vec<ProjectRuntimeResponse>>> {
    let projects = readable_projects(&state, &user).await?;
    let mut out = Vec::with_capacity(projects.len());
    for (p, org) in projects {
        let deployment = match state
            .store
            .find_root_environment(&p.id, EnvType::Production, None)
            .await?
        {
            Some(env) => state.store.current_deployment(&env.id).await?,
            None => None,
        };
        out.push(ProjectRuntimeResponse {
            organization: RuntimeOrganization {
                title: org.title,
                slug: org.slug,
            },
            project: RuntimeProject {
                name: p.name,
                slug: p.slug,
                external_ref: p.external_ref,
            },
            environment: RuntimeEnvironment {
                slug: EnvType::Production.slug().to_string(),
            },
            deployment: deployment.map(|(d, worker, _)| RuntimeDeployment {
                node_major: worker
                    .runtime_version
                    .as_deref()
                    .and_then(|v| v.split('.').next())
                    .and_then(|major| major.trim_start_matches('v').parse().ok())
                    .filter(|major: &u32| *major > 0),
                runtime: worker.runtime.or(d.runtime),
                runtime_version: worker.runtime_version,
                deployed_at: d.deployed_at,
                short_code: d.short_code,
            }),
        });
    }
    Ok(Json(out))
}

/// Live projects of the caller's organizations, in each of which the caller may read projects
/// (a token capped below that sees none of that organization's).
async fn readable_projects(
    state: &AppState,
    user: &UserPrincipal,
) -> ApiResult<Vec<(Project, Organization)>> {
    let mut out = Vec::new();
    for m in state.store.list_orgs_for_user(&user.user.id).await? {
        if require(
            &state.usecases,
            user,
            m.role,
            "read",
            Resource::new("project"),
        )
        .is_err()
        {
            continue;
        }
        for p in state.store.list_projects(&m.organization.id).await? {
            out.push((p, m.organization.clone()));
        }
    }
    Ok(out)
}

/// One project the caller's organization holds, by its ref (upstream's shape).
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("projectRef" = String, Path)),
    responses((status = 200, body = ProjectResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_project(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(project_ref): Path<String>,
) -> ApiResult<Json<ProjectResponse>> {
    let access = project_for_user(&state.usecases, &user, &project_ref).await?;
    require(
        &state.usecases,
        &user,
        access.role,
        "read",
        Resource::new("project"),
    )?;
    Ok(Json(project_response(
        &access.project,
        &access.organization,
    )))
}

/// Creates a project with staging, production and preview environments and a development
/// environment for every member.
#[utoipa::path(post, path = "/api/v1/orgs/{orgParam}/projects", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])), request_body = CreateProjectRequest,
    params(("orgParam" = String, Path, description = "organization id or slug")),
    responses((status = 201, body = ProjectResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_project(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(org_param): Path<String>,
    ApiJson(body): ApiJson<CreateProjectRequest>,
) -> ApiResult<(StatusCode, Json<ProjectResponse>)> {
    let m = membership(&state.usecases, &user.user.id, &org_param).await?;
    require(
        &state.usecases,
        &user,
        m.role,
        "write",
        Resource::new("project"),
    )?;
    let name = required_name("name", &body.name, 100)?;
    let base = slugify(&name);
    let mut slug = base.clone();
    for _ in 0..5 {
        let created = state
            .store
            .create_project(
                &m.organization.id,
                &name,
                &slug,
                &new_project_ref(),
                &*state.vault,
                state.now(),
            )
            .await;
        match created {
            Ok(p) => {
                return Ok((
                    StatusCode::CREATED,
                    Json(project_response(&p, &m.organization)),
                ))
            }
            Err(StoreError::Conflict { .. }) => {
                slug = format!("{base}-{}", &taskgate_core::ids::new_id()[1..7])
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "Could not choose a unique slug for this project",
    ))
}

/// An environment's secret key (upstream shape); `dev` is the caller's own dev environment.
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/{env}", tag = "keys", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path, description = "dev, staging, prod or preview"),
           ("x-trigger-branch" = Option<String>, Header)),
    responses((status = 200, body = EnvironmentKeyResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_environment_key(
    State(state): State<AppState>,
    caller: UserOrKey,
    Path((project_ref, env)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<EnvironmentKeyResponse>> {
    let user = match caller {
        UserOrKey::User(user) => user,
        // `trigger.dev deploy` with a key as its access token asks for the key's own
        // environment, and gets the key back.
        UserOrKey::Key(principal) => {
            return key_environment(&state, &principal, &project_ref, &env, &headers)
        }
    };
    let branch = headers
        .get("x-trigger-branch")
        .and_then(|v| v.to_str().ok());
    let (access, env) =
        environment_for_user(&state.usecases, &user, &project_ref, &env, branch).await?;
    require_key_access(
        &state.usecases,
        &user,
        access.role,
        "read",
        env.environment.env_type,
    )?;
    let key = open_key(
        &state.auth,
        &client_key_sealed(&state.usecases, &env.environment).await?,
    )?;
    Ok(Json(EnvironmentKeyResponse {
        api_key: key.expose_secret().to_string(),
        name: access.project.name,
        api_url: crate::public_url::public_url(&state, &headers),
        project_id: access.project.id,
    }))
}

/// `GET /api/v1/projects/{ref}/{env}` for an environment's own secret key: that environment
/// (404 for any other), with the key as it was presented.
fn key_environment(
    state: &AppState,
    principal: &EnvPrincipal,
    project_ref: &str,
    env: &str,
    headers: &HeaderMap,
) -> ApiResult<Json<EnvironmentKeyResponse>> {
    let e = &principal.env;
    let same_env = EnvType::from_url_env(env) == Some(e.environment.env_type);
    if e.project_ref != project_ref || !same_env {
        return Err(ApiError::not_found(
            "This key is not the environment's: use the key of the environment you name",
        ));
    }
    let key = crate::auth::extract::bearer_of(headers)
        .ok_or_else(|| ApiError::unauthorized("Invalid or Missing API key"))?;
    Ok(Json(EnvironmentKeyResponse {
        api_key: key,
        name: e.project_name.clone(),
        api_url: crate::public_url::public_url(state, headers),
        project_id: e.environment.project_id.to_string(),
    }))
}

/// Creates (or re-opens) a branch child of the project's preview environment or the caller's
/// dev environment. Clients then use the parent's key with `x-trigger-branch`.
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/branches", tag = "keys", security(("personalAccessToken" = []), ("userActorToken" = [])), request_body = UpsertBranchRequest,
    params(("projectRef" = String, Path)),
    responses((status = 200, body = BranchResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn upsert_branch(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(project_ref): Path<String>,
    ApiJson(body): ApiJson<UpsertBranchRequest>,
) -> ApiResult<Json<BranchResponse>> {
    let env_type = branchable(&body.env)?;
    let branch = taskgate_core::branch::sanitize_branch(Some(&body.branch))
        .filter(|b| !(env_type == EnvType::Development && b == "default"))
        .ok_or_else(|| ApiError::invalid_body("branch is not a usable branch name"))?;
    taskgate_core::text::check_branch_name(&branch).map_err(ApiError::invalid_body)?;
    let access = project_for_user(&state.usecases, &user, &project_ref).await?;
    require(
        &state.usecases,
        &user,
        access.role,
        "write",
        Resource::new("branches"),
    )?;
    let member = (env_type == EnvType::Development).then_some(access.member_id.as_str());
    let root = state
        .store
        .find_root_environment(&access.project.id, env_type, member)
        .await?
        .ok_or_else(|| ApiError::not_found("Environment not found"))?;
    let child = state
        .store
        .upsert_branch(&root.id, &branch, &*state.vault, state.now())
        .await?;
    Ok(Json(BranchResponse {
        id: child.id.to_string(),
        slug: child.slug,
        branch_name: branch,
        parent_environment_id: root.id.to_string(),
    }))
}

/// The branchable environment type a request names.
fn branchable(env: &str) -> ApiResult<EnvType> {
    match env {
        "preview" => Ok(EnvType::Preview),
        "development" | "dev" => Ok(EnvType::Development),
        _ => Err(ApiError::invalid_body("env must be preview or development")),
    }
}

/// The preview environment's branches that are not archived (what `list_preview_branches`
/// and the CLI's `preview` commands read).
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/branches", tag = "keys", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("projectRef" = String, Path)),
    responses((status = 200, body = BranchListResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_branches(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(project_ref): Path<String>,
) -> ApiResult<Json<BranchListResponse>> {
    let access = project_for_user(&state.usecases, &user, &project_ref).await?;
    require(
        &state.usecases,
        &user,
        access.role,
        "read",
        Resource::new("branches"),
    )?;
    let Some(preview) = state
        .store
        .find_root_environment(&access.project.id, EnvType::Preview, None)
        .await?
    else {
        return Ok(Json(BranchListResponse { branches: vec![] }));
    };
    let branches = state
        .store
        .list_branches(&preview.id)
        .await?
        .into_iter()
        .map(|e| BranchListItem {
            id: e.id.to_string(),
            name: e.branch_name.unwrap_or_else(|| "main".into()),
            created_at: e.created_at,
            updated_at: e.created_at,
            is_paused: false,
        })
        .collect();
    Ok(Json(BranchListResponse { branches }))
}

/// Archives a branch: its key and the branch header stop working at once on every node. A
/// later upsert of the same name brings it back with its key.
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/branches/archive", tag = "keys", security(("personalAccessToken" = []), ("userActorToken" = [])),
    request_body = ArchiveBranchRequest, params(("projectRef" = String, Path)),
    responses((status = 200, body = ArchiveBranchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn archive_branch(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(project_ref): Path<String>,
    ApiJson(body): ApiJson<ArchiveBranchRequest>,
) -> ApiResult<Json<ArchiveBranchResponse>> {
    let env_type = branchable(body.env.as_deref().unwrap_or("preview"))?;
    let access = project_for_user(&state.usecases, &user, &project_ref).await?;
    require(
        &state.usecases,
        &user,
        access.role,
        "write",
        Resource::new("branches"),
    )?;
    // Development branches are their member's own, as the environment is.
    let member = (env_type == EnvType::Development).then_some(access.member_id.as_str());
    let not_found = || ApiError::not_found("Branch not found");
    let root = state
        .store
        .find_root_environment(&access.project.id, env_type, member)
        .await?
        .ok_or_else(not_found)?;
    // Named as on creation: `refs/heads/feat/x` is the branch `feat/x`.
    let branch =
        taskgate_core::branch::sanitize_branch(Some(&body.branch)).ok_or_else(not_found)?;
    let child = state
        .store
        .find_branch_child(&root.id, &branch)
        .await?
        .ok_or_else(not_found)?;
    state.store.archive_branch(&child.id, state.now()).await?;
    tracing::info!(environment.id = %child.id, "branch archived");
    Ok(Json(ArchiveBranchResponse {
        success: true,
        branch: ArchivedBranch {
            id: child.id.to_string(),
            branch_name: branch,
        },
    }))
}

/// Soft-deletes a project: its keys and tokens stop working at once; its rows are kept.
#[utoipa::path(delete, path = "/api/v1/projects/{projectRef}", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])), params(("projectRef" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_project(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(project_ref): Path<String>,
) -> ApiResult<StatusCode> {
    let access = project_for_user(&state.usecases, &user, &project_ref).await?;
    require(
        &state.usecases,
        &user,
        access.role,
        "delete",
        Resource::new("project"),
    )?;
    state
        .store
        .soft_delete_project(&access.project.id, state.now())
        .await?;
    tracing::info!(project.id = %access.project.id, "project deleted");
    Ok(StatusCode::NO_CONTENT)
}
