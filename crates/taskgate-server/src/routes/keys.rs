//! Secret-key rotation with a grace window, and the grace keys an operator can watch.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use secrecy::ExposeSecret;
use taskgate_api::*;
use taskgate_core::rotation::grace_active;

use taskgate_usecases::access::{environment_for_user, require_key_access};
use taskgate_usecases::keys::rotate;

use crate::auth::extract::AccessTokenPat;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Generates a new secret key. The old key keeps working until `revokedApiKey.expiresAt`
/// (now + the configured grace, 24 h by default); an administrator can end or extend that.
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/{env}/regenerate-api-key", tag = "keys", security(("personalAccessToken" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path, description = "dev, staging, prod or preview")),
    responses((status = 200, body = RegenerateApiKeyResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn regenerate_api_key(
    State(state): State<AppState>,
    Path((project_ref, env)): Path<(String, String)>,
    headers: HeaderMap,
    AccessTokenPat(user): AccessTokenPat,
) -> ApiResult<Json<RegenerateApiKeyResponse>> {
    taskgate_usecases::access::url_env(&env)?;
    if headers.contains_key("x-trigger-branch") {
        // Branch children authenticate with their parent's key: rotating a child's own key
        // would change nothing clients use (an upstream quirk taskgate does not keep).
        return Err(ApiError::bad_request(
            "Branch environments use their parent's key: rotate the parent environment (omit x-trigger-branch)",
        ));
    }
    let (_, plaintext, rotation) = rotate(&state.usecases, &user, &project_ref, &env, None).await?;
    Ok(Json(RegenerateApiKeyResponse {
        api_key: plaintext.expose_secret().to_string(),
        revoked_api_key: RevokedKeyRef {
            id: rotation.revoked.id,
            expires_at: rotation.revoked.expires_at,
        },
    }))
}

/// The revoked keys of an environment with their grace windows and how much each is still
/// used, so an operator can see when clients have moved over.
#[utoipa::path(get, path = "/api/v1/projects/{projectRef}/{env}/revoked-api-keys", tag = "keys", security(("personalAccessToken" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path, description = "dev, staging, prod or preview")),
    responses((status = 200, body = RevokedKeyListResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_revoked_api_keys(
    State(state): State<AppState>,
    Path((project_ref, env)): Path<(String, String)>,
    AccessTokenPat(user): AccessTokenPat,
) -> ApiResult<Json<RevokedKeyListResponse>> {
    let (access, env) =
        environment_for_user(&state.usecases, &user, &project_ref, &env, None).await?;
    require_key_access(
        &state.usecases,
        &user,
        access.role,
        "read",
        env.environment.env_type,
    )?;
    let now = state.now();
    let keys = state.store.list_revoked_keys(&env.environment.id).await?;
    Ok(Json(RevokedKeyListResponse {
        revoked_api_keys: keys
            .into_iter()
            .map(|k| RevokedKeyResponse {
                active: grace_active(k.expires_at, now),
                id: k.id,
                last_four: k.last_four,
                created_at: k.created_at,
                expires_at: k.expires_at,
                use_count: k.use_count,
                last_used_at: k.last_used_at,
            })
            .collect(),
    }))
}
