//! Environment variables: what a worker's task processes get (read with the environment's
//! key), and the routes the CLI's `env` commands and taskgate's CLI use to list, read, set,
//! import and delete them (with a personal access token, or the environment's own key).
//!
//! Values are secrets: sealed at rest under the master key (bound to their environment and
//! name), never logged. A variable set as secret is shown as `<redacted>` in listings. A
//! branch's variables override its parent's. Who may see or change them follows who may see
//! or change that environment's keys: they are the same kind of secret.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use taskgate_api::engine::EnvVarsResponse;
use taskgate_api::envvars::*;
use taskgate_api::ErrorBody;
use taskgate_core::bearer::{self, TokenKind};
use taskgate_store::{EnvironmentAuth, NewEnvVar};

use super::engine::required_body;
use super::workers::require_project;
use crate::auth::extract::{bearer_token, SecretKeyAuth, UserAuth};
use crate::auth::{EnvPrincipal, UserPrincipal};
use crate::error::{ApiError, ApiResult};
use crate::public_url::PublicUrl;
use crate::state::AppState;
use taskgate_usecases::access::{environment_for_user, require_key_access, url_env};

/// Longest variable name.
const MAX_NAME_LEN: usize = 256;
/// Largest value.
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most variables one import may set.
const MAX_IMPORT: usize = 1000;
/// What a secret variable's value reads as in a listing.
const REDACTED: &str = "<redacted>";

/// A caller of the variable routes: a user, or an environment's own secret key.
pub enum EnvVarCaller {
    User(UserPrincipal),
    Key(EnvPrincipal),
}

impl FromRequestParts<AppState> for EnvVarCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).unwrap_or_default();
        let user_token = matches!(
            bearer::classify(token),
            TokenKind::PersonalAccessToken | TokenKind::UserActorToken
        );
        if user_token {
            UserAuth::from_request_parts(parts, state)
                .await
                .map(|UserAuth(u)| Self::User(u))
        } else {
            SecretKeyAuth::from_request_parts(parts, state)
                .await
                .map(|SecretKeyAuth(k)| Self::Key(k))
        }
    }
}

/// The environment `{projectRef}/{env}` names, if the caller may `action` its variables.
async fn environment(
    state: &AppState,
    caller: &EnvVarCaller,
    project_ref: &str,
    env: &str,
    headers: &HeaderMap,
    action: &str,
) -> ApiResult<EnvironmentAuth> {
    match caller {
        EnvVarCaller::User(user) => {
            let branch = headers
                .get("x-trigger-branch")
                .and_then(|v| v.to_str().ok());
            let (access, env) =
                environment_for_user(&state.usecases, user, project_ref, env, branch).await?;
            require_key_access(
                &state.usecases,
                user,
                access.role,
                action,
                env.environment.env_type,
            )?;
            Ok(env)
        }
        // A key reaches its own environment only.
        EnvVarCaller::Key(key) => {
            require_project(key, project_ref)?;
            if url_env(env)? != key.env.environment.env_type {
                return Err(ApiError::forbidden(
                    "This key cannot access another environment's variables",
                ));
            }
            Ok((*key.env).clone())
        }
    }
}

/// A variable name: 1 to 256 characters, no `=`, no whitespace or control characters.
fn valid_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_LEN
        && !name
            .chars()
            .any(|c| c == '=' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_body(format!(
            "variable names must be 1 to {MAX_NAME_LEN} characters, without '=', spaces or control characters"
        )))
    }
}

fn valid_value(name: &str, value: &str) -> ApiResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::invalid_body(format!(
            "the value of {name} must be at most {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(())
}

fn sealed(state: &AppState, env_id: &str, name: &str, value: &str, secret: bool) -> NewEnvVar {
    NewEnvVar {
        key: name.to_string(),
        value_sealed: state.vault.seal_env_var(env_id, name, value),
        is_secret: secret,
    }
}

/// An environment's variables merged over its parent's, opened: `name → (value, secret)`.
async fn resolved(
    state: &AppState,
    env: &EnvironmentAuth,
) -> ApiResult<BTreeMap<String, (String, bool)>> {
    Ok(state.engine.resolved_env_vars(env).await?)
}

/// The environment's variables and the platform's, as the CLIs read them with the environment's
/// key: the dev CLI before it indexes its tasks, the official `env get`, `env list` and
/// `env pull`. A secret variable reads `<redacted>` here, as everywhere a person or a key reads
/// it: only the task process of a run receives its value, in the attempt's start.
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/envvars", tag = "envvars", security(("secretKey" = [])),
    params(("projectRef" = String, Path)),
    responses((status = 200, body = EnvVarsResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn worker_env_vars(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    PublicUrl(base): PublicUrl,
    Path(project_ref): Path<String>,
) -> ApiResult<Json<EnvVarsResponse>> {
    require_project(&principal, &project_ref)?;
    let mut variables: BTreeMap<String, String> = resolved(&state, &principal.env)
        .await?
        .into_iter()
        .map(|(k, (v, secret))| (k, if secret { REDACTED.into() } else { v }))
        .collect();
    // The platform's variables win: they say where this server is.
    variables.extend(
        state
            .engine
            .platform_env_vars(&base, &principal.env.environment.id),
    );
    Ok(Json(EnvVarsResponse { variables }))
}

/// An environment's variables; secret ones redacted.
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/envvars/{env}", tag = "envvars", security(("personalAccessToken" = []), ("userActorToken" = []), ("secretKey" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path, description = "dev, staging, prod or preview")),
    responses((status = 200, body = Vec<EnvVarItem>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_env_vars(
    State(state): State<AppState>,
    caller: EnvVarCaller,
    Path((project_ref, env)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<EnvVarItem>>> {
    let env = environment(&state, &caller, &project_ref, &env, &headers, "read").await?;
    let items = resolved(&state, &env)
        .await?
        .into_iter()
        .map(|(name, (value, is_secret))| EnvVarItem {
            name,
            value: if is_secret { REDACTED.into() } else { value },
            is_secret,
        })
        .collect();
    Ok(Json(items))
}

/// Sets one variable (replacing its value).
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/envvars/{env}", tag = "envvars", security(("personalAccessToken" = []), ("userActorToken" = []), ("secretKey" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path)),
    request_body = CreateEnvVarRequest,
    responses((status = 200, body = EnvVarSuccess), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_env_var(
    State(state): State<AppState>,
    caller: EnvVarCaller,
    Path((project_ref, env)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EnvVarSuccess>> {
    let env = environment(&state, &caller, &project_ref, &env, &headers, "write").await?;
    let body: CreateEnvVarRequest = required_body(&body)?;
    valid_name(&body.name)?;
    valid_value(&body.name, &body.value)?;
    let env_id = &env.environment.id;
    let var = sealed(
        &state,
        env_id,
        &body.name,
        &body.value,
        body.is_secret.unwrap_or(false),
    );
    state
        .store
        .set_env_vars(env_id, &[var], true, state.now())
        .await?;
    tracing::info!(env.id = %env_id, variable = %body.name, "environment variable set");
    Ok(Json(EnvVarSuccess { success: true }))
}

/// One variable, its value redacted when it is secret: a secret is write-only for people and
/// keys alike, and only the environment's task processes receive it.
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/envvars/{env}/{name}", tag = "envvars", security(("personalAccessToken" = []), ("userActorToken" = []), ("secretKey" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = EnvVarValue), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_env_var(
    State(state): State<AppState>,
    caller: EnvVarCaller,
    Path((project_ref, env, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<EnvVarValue>> {
    let env = environment(&state, &caller, &project_ref, &env, &headers, "read").await?;
    let (value, is_secret) = resolved(&state, &env)
        .await?
        .remove(&name)
        .ok_or_else(|| ApiError::not_found("Environment variable not found"))?;
    Ok(Json(EnvVarValue {
        name,
        value: if is_secret { REDACTED.into() } else { value },
        is_secret,
    }))
}

/// Changes an existing variable's value.
#[utoipa::path(put, path = "/api/v1/projects/{projectRef}/envvars/{env}/{name}", tag = "envvars", security(("personalAccessToken" = []), ("userActorToken" = []), ("secretKey" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path), ("name" = String, Path)),
    request_body = UpdateEnvVarRequest,
    responses((status = 200, body = EnvVarSuccess), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_env_var(
    State(state): State<AppState>,
    caller: EnvVarCaller,
    Path((project_ref, env, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EnvVarSuccess>> {
    let env = environment(&state, &caller, &project_ref, &env, &headers, "write").await?;
    let body: UpdateEnvVarRequest = required_body(&body)?;
    valid_value(&name, &body.value)?;
    let env_id = &env.environment.id;
    let existing = state.store.list_env_vars(env_id).await?;
    let Some(current) = existing.iter().find(|v| v.key == name) else {
        return Err(ApiError::not_found("Environment variable not found"));
    };
    let var = sealed(&state, env_id, &name, &body.value, current.is_secret);
    state
        .store
        .set_env_vars(env_id, &[var], true, state.now())
        .await?;
    tracing::info!(env.id = %env_id, variable = %name, "environment variable changed");
    Ok(Json(EnvVarSuccess { success: true }))
}

/// Deletes a variable.
#[utoipa::path(delete, path = "/api/v1/projects/{projectRef}/envvars/{env}/{name}", tag = "envvars", security(("personalAccessToken" = []), ("userActorToken" = []), ("secretKey" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = EnvVarSuccess), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_env_var(
    State(state): State<AppState>,
    caller: EnvVarCaller,
    Path((project_ref, env, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<EnvVarSuccess>> {
    let env = environment(&state, &caller, &project_ref, &env, &headers, "write").await?;
    let env_id = &env.environment.id;
    if !state.store.delete_env_var(env_id, &name).await? {
        return Err(ApiError::not_found("Environment variable not found"));
    }
    tracing::info!(env.id = %env_id, variable = %name, "environment variable deleted");
    Ok(Json(EnvVarSuccess { success: true }))
}

/// Sets many variables at once; existing ones keep their values unless `override` is set.
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/envvars/{env}/import", tag = "envvars", security(("personalAccessToken" = []), ("userActorToken" = []), ("secretKey" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path)),
    request_body = ImportEnvVarsRequest,
    responses((status = 200, body = EnvVarSuccess), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn import_env_vars(
    State(state): State<AppState>,
    caller: EnvVarCaller,
    Path((project_ref, env)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<EnvVarSuccess>)> {
    let env = environment(&state, &caller, &project_ref, &env, &headers, "write").await?;
    let body: ImportEnvVarsRequest = required_body(&body)?;
    let parent = body.parent_variables.unwrap_or_default();
    if body.variables.len() + parent.len() > MAX_IMPORT {
        return Err(ApiError::invalid_body(format!(
            "an import may set at most {MAX_IMPORT} variables"
        )));
    }
    let secret = body.is_secret.unwrap_or(false);
    let overwrite = body.r#override.unwrap_or(false);
    let mut targets = vec![(env.environment.id.clone(), body.variables)];
    if !parent.is_empty() {
        let parent_id = env
            .environment
            .parent_environment_id
            .clone()
            .ok_or_else(|| {
                ApiError::invalid_body("parentVariables are only for a branch environment")
            })?;
        targets.push((parent_id, parent));
    }
    for (env_id, vars) in targets {
        let mut sealed_vars = Vec::new();
        for (name, value) in &vars {
            valid_name(name)?;
            valid_value(name, value)?;
            sealed_vars.push(sealed(&state, &env_id, name, value, secret));
        }
        let written = state
            .store
            .set_env_vars(&env_id, &sealed_vars, overwrite, state.now())
            .await?;
        tracing::info!(env.id = %env_id, variables = vars.len(), written, "environment variables imported");
    }
    Ok((StatusCode::OK, Json(EnvVarSuccess { success: true })))
}
