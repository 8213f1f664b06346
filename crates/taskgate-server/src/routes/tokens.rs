//! A signed-in user's own personal access tokens. Only a personal access token may manage
//! them: a user-actor token, being narrower, must not mint itself a wider credential.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use taskgate_api::*;
use taskgate_store::{PersonalAccessToken, StoreError};

use taskgate_usecases::text::required_name;
use taskgate_usecases::tokens::issue_pat;

use crate::auth::extract::PatAuth;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;

fn token_response(t: PersonalAccessToken) -> TokenResponse {
    TokenResponse {
        id: t.id,
        name: t.name,
        obfuscated_token: t.obfuscated_token,
        created_at: t.created_at,
        last_accessed_at: t.last_accessed_at,
        revoked_at: t.revoked_at,
    }
}

/// Creates a personal access token for the caller; the plaintext is in this response only.
#[utoipa::path(post, path = "/api/v1/personal-access-tokens", tag = "tokens", security(("personalAccessToken" = [])), request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedTokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    PatAuth(user): PatAuth,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedTokenResponse>)> {
    let name = required_name("name", &body.name, 50)?;
    let created = issue_pat(&state.usecases, &user.user.id, &name, &user.actor()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The caller's tokens, revoked ones included, never their plaintext.
#[utoipa::path(get, path = "/api/v1/personal-access-tokens", tag = "tokens", security(("personalAccessToken" = [])),
    responses((status = 200, body = TokenListResponse), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    PatAuth(user): PatAuth,
) -> ApiResult<Json<TokenListResponse>> {
    let tokens = state.store.list_pats(&user.user.id).await?;
    Ok(Json(TokenListResponse {
        tokens: tokens.into_iter().map(token_response).collect(),
    }))
}

/// Revokes one of the caller's tokens, and with it every user-actor token minted from it and
/// every environment JWT exchanged from either, at once.
#[utoipa::path(delete, path = "/api/v1/personal-access-tokens/{id}", tag = "tokens", security(("personalAccessToken" = [])), params(("id" = String, Path)),
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    PatAuth(user): PatAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenResponse>> {
    match state
        .store
        .revoke_pat(&user.user.id, &id, &user.actor(), state.now())
        .await
    {
        Ok(t) => Ok(Json(token_response(t))),
        Err(StoreError::NotFound) => Err(ApiError::not_found("Personal access token not found")),
        Err(e) => Err(e.into()),
    }
}
