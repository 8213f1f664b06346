//! Platform administration (`/admin/api/v1/*`): users, their first tokens, grace windows and
//! the audit log. Every route needs an administrator's personal access token.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use taskgate_api::*;
use taskgate_core::rotation::parse_admin_expires_at;
use taskgate_core::time::iso_millis;
use taskgate_store::{AuditQuery, StoreError};

use taskgate_usecases::admin::{change_grace, new_user, set_admin};
use taskgate_usecases::text::required_name;
use taskgate_usecases::tokens::issue_pat;

use super::user_response;
use crate::auth::extract::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::json::{parse_lenient, ApiJson};
use crate::state::AppState;

/// Creates a user.
#[utoipa::path(post, path = "/admin/api/v1/users", tag = "admin", security(("personalAccessToken" = [])), request_body = CreateUserRequest,
    responses((status = 201, body = UserResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserResponse>)> {
    let user = new_user(&state.usecases, &admin, body).await?;
    Ok((StatusCode::CREATED, Json(user_response(&user))))
}

/// Every user, oldest first.
#[utoipa::path(get, path = "/admin/api/v1/users", tag = "admin", security(("personalAccessToken" = [])),
    responses((status = 200, body = Vec<UserResponse>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    AdminAuth(_admin): AdminAuth,
) -> ApiResult<Json<Vec<UserResponse>>> {
    let users = state.store.list_users().await?;
    Ok(Json(users.iter().map(user_response).collect()))
}

/// Sets or clears a user's administrator flag. Clearing it ends the dashboard sessions they
/// began as an administrator, at once.
#[utoipa::path(patch, path = "/admin/api/v1/users/{userId}", tag = "admin", security(("personalAccessToken" = [])), request_body = SetUserAdminRequest,
    params(("userId" = String, Path)),
    responses((status = 200, body = UserResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_user_admin(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<SetUserAdminRequest>,
) -> ApiResult<Json<UserResponse>> {
    let user = set_admin(&state.usecases, &admin, &user_id, body.admin).await?;
    Ok(Json(user_response(&user)))
}

/// Every live organization.
#[utoipa::path(get, path = "/admin/api/v1/orgs", tag = "admin", security(("personalAccessToken" = [])),
    responses((status = 200, body = Vec<OrgResponse>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_organizations(
    State(state): State<AppState>,
    AdminAuth(_admin): AdminAuth,
) -> ApiResult<Json<Vec<OrgResponse>>> {
    let orgs = state.store.list_organizations().await?;
    Ok(Json(orgs.iter().map(super::org_response).collect()))
}

/// Creates a personal access token for a user; the plaintext is in this response only.
#[utoipa::path(post, path = "/admin/api/v1/users/{userId}/personal-access-tokens", tag = "admin", security(("personalAccessToken" = [])), request_body = CreateTokenRequest,
    params(("userId" = String, Path)),
    responses((status = 201, body = CreatedTokenResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_user_token(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedTokenResponse>)> {
    let name = required_name("name", &body.name, 50)?;
    match state.store.get_user(&user_id).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(ApiError::not_found("User not found")),
        Err(e) => return Err(e.into()),
    }
    let created = issue_pat(&state.usecases, &user_id, &name, &admin.actor()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Ends, extends or re-opens a revoked key's grace window. `expiresAt` is
/// an ISO-8601 string or epoch milliseconds; `null` or a past time ends the grace at once, and
/// is recorded as ending at that moment.
#[utoipa::path(post, path = "/admin/api/v1/revoked-api-keys/{revokedApiKeyId}", tag = "admin", security(("personalAccessToken" = [])),
    params(("revokedApiKeyId" = String, Path)),
    request_body(content = Object, description = "{\"expiresAt\": ISO-8601 string | epoch ms | null}"),
    responses((status = 200, body = UpdateRevokedKeyResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_revoked_api_key(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<UpdateRevokedKeyResponse>> {
    let value = parse_lenient(&body)?;
    let expires_at = match value.as_object().map(|o| o.get("expiresAt")) {
        Some(Some(v)) => parse_admin_expires_at(v).map_err(ApiError::invalid_body)?,
        _ => return Err(ApiError::invalid_body("expiresAt is required")),
    };
    let change = match change_grace(&state.usecases, &admin, &id, expires_at).await {
        Ok(change) => change,
        Err(StoreError::NotFound) => return Err(ApiError::not_found("Revoked API key not found")),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(UpdateRevokedKeyResponse {
        success: true,
        revoked_api_key: UpdatedRevokedKey {
            id: change.revoked.id,
            runtime_environment_id: change.revoked.runtime_environment_id,
            expires_at: iso_millis(change.revoked.expires_at),
        },
    }))
}

/// Filters of the audit listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditParams {
    pub environment_id: Option<String>,
    pub action: Option<String>,
    /// ISO-8601; events at or after.
    pub from: Option<DateTime<Utc>>,
    /// ISO-8601; events at or before.
    pub to: Option<DateTime<Utc>>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

/// Pages through the append-only audit log, newest first.
#[utoipa::path(get, path = "/admin/api/v1/audit-events", tag = "admin", security(("personalAccessToken" = [])), params(AuditParams),
    responses((status = 200, body = AuditEventListResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    AdminAuth(_admin): AdminAuth,
    query: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditEventListResponse>> {
    let Query(p) = query.map_err(|e| {
        ApiError::bad_request("Query Error").with("details", Value::String(e.body_text()))
    })?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(
            ApiError::bad_request("Query Error").with("details", "limit must be between 1 and 200")
        );
    }
    let before_seq = match p.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_request("Invalid cursor"))?,
        ),
    };
    let q = AuditQuery {
        environment_id: p.environment_id,
        action: p.action,
        from: p.from,
        to: p.to,
        before_seq,
        limit: limit + 1,
    };
    let mut events = state.store.list_audit_events(&q).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next_cursor = if more {
        events.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(AuditEventListResponse {
        data: events
            .into_iter()
            .map(|e| AuditEventResponse {
                id: e.id,
                seq: e.seq,
                occurred_at: e.occurred_at,
                action: e.action,
                actor_user_id: e.actor.user_id,
                credential_id: e.actor.credential_id,
                credential_kind: e.actor.credential_kind,
                organization_id: e.organization_id,
                environment_id: e.environment_id,
                target_id: e.target_id,
                old_expires_at: e.old_expires_at,
                new_expires_at: e.new_expires_at,
                detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
            .collect(),
        next_cursor,
    }))
}
