//! Per-organization API rate limits (`/admin/api/v1/orgs/{orgId}/rate-limit`): what limit an
//! organization's secret keys are held to, set and cleared by administrators, every change in
//! the audit log and in force on every node at once.

use axum::extract::{Path, State};
use axum::Json;
use taskgate_api::ratelimit::{OrgRateLimitResponse, RateLimitConfig};
use taskgate_api::ErrorBody;

use taskgate_usecases::rate_limits::{change, org_rate_limit, parse_limit};

use crate::auth::extract::AdminAuth;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::state::AppState;

/// The limit an organization's secret keys are held to.
#[utoipa::path(get, path = "/admin/api/v1/orgs/{orgId}/rate-limit", tag = "admin", security(("personalAccessToken" = [])),
    params(("orgId" = String, Path)),
    responses((status = 200, body = OrgRateLimitResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_org_rate_limit(
    State(state): State<AppState>,
    AdminAuth(_admin): AdminAuth,
    Path(org_id): Path<String>,
) -> ApiResult<Json<OrgRateLimitResponse>> {
    Ok(Json(org_rate_limit(&state.usecases, &org_id).await?))
}

/// Gives an organization its own limit, a token bucket in upstream's `apiRateLimiterConfig`
/// shape.
#[utoipa::path(put, path = "/admin/api/v1/orgs/{orgId}/rate-limit", tag = "admin", security(("personalAccessToken" = [])),
    params(("orgId" = String, Path)), request_body = RateLimitConfig,
    responses((status = 200, body = OrgRateLimitResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_org_rate_limit(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<RateLimitConfig>,
) -> ApiResult<Json<OrgRateLimitResponse>> {
    let limit = parse_limit(&body)?;
    change(&state.usecases, &admin, &org_id, Some(limit)).await?;
    Ok(Json(org_rate_limit(&state.usecases, &org_id).await?))
}

/// Returns an organization to the server's default limit.
#[utoipa::path(delete, path = "/admin/api/v1/orgs/{orgId}/rate-limit", tag = "admin", security(("personalAccessToken" = [])),
    params(("orgId" = String, Path)),
    responses((status = 200, body = OrgRateLimitResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn clear_org_rate_limit(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(org_id): Path<String>,
) -> ApiResult<Json<OrgRateLimitResponse>> {
    change(&state.usecases, &admin, &org_id, None).await?;
    Ok(Json(org_rate_limit(&state.usecases, &org_id).await?))
}
