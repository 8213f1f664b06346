//! Per-organization API rate limits (`/admin/api/v1/orgs/{orgId}/rate-limit`): what limit an
//! organization's secret keys are held to, set and cleared by administrators, every change in
//! the audit log and in force on every node at once.

use axum::extract::{Path, State};
use axum::Json;
use taskgate_api::ratelimit::{OrgRateLimitResponse, RateLimitConfig, RateLimitSource};
use taskgate_api::ErrorBody;
use taskgate_core::ratelimit::{Interval, LimitConfig};
use taskgate_store::StoreError;

use crate::auth::extract::AdminAuth;
use crate::auth::UserPrincipal;
use crate::error::{ApiError, ApiResult};
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
    Ok(Json(org_rate_limit(&state, &org_id).await?))
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
    change(&state, &admin, &org_id, Some(limit)).await?;
    Ok(Json(org_rate_limit(&state, &org_id).await?))
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
    change(&state, &admin, &org_id, None).await?;
    Ok(Json(org_rate_limit(&state, &org_id).await?))
}

/// A request body as a limit, or a 400 naming the field that breaks the rules.
pub fn parse_limit(body: &RateLimitConfig) -> ApiResult<LimitConfig> {
    let bad = |field: &str, message: &str| {
        ApiError::bad_request(format!("{field} {message}")).with("field", field)
    };
    if body.kind != "tokenBucket" {
        return Err(bad("type", "must be \"tokenBucket\""));
    }
    let interval = Interval::parse(&body.interval).ok_or_else(|| {
        bad(
            "interval",
            "must be a duration such as \"10s\", \"1m\" or \"1h\"",
        )
    })?;
    LimitConfig::token_bucket(body.refill_rate, interval, body.max_tokens)
        .map_err(|e| bad(e.field, e.message))
}

/// Sets (`Some`) or clears an organization's limit as `admin` (an administrator: the caller
/// checks).
pub async fn change(
    state: &AppState,
    admin: &UserPrincipal,
    org_id: &str,
    limit: Option<LimitConfig>,
) -> ApiResult<()> {
    match state
        .store
        .set_org_rate_limit(org_id, limit.as_ref(), &admin.actor(), state.now())
        .await
    {
        Ok(()) => {
            match &limit {
                Some(l) => {
                    tracing::info!(org.id = %org_id, limit = %l.preview(), "organization rate limit set")
                }
                None => {
                    tracing::info!(org.id = %org_id, "organization rate limit reset to the default")
                }
            }
            Ok(())
        }
        Err(StoreError::NotFound) => Err(ApiError::not_found("Organization not found")),
        Err(e) => Err(e.into()),
    }
}

/// The limit in force for an organization.
pub async fn org_rate_limit(state: &AppState, org_id: &str) -> ApiResult<OrgRateLimitResponse> {
    let own = match state.store.org_rate_limit(org_id).await {
        Ok(own) => own,
        Err(StoreError::NotFound) => return Err(ApiError::not_found("Organization not found")),
        Err(e) => return Err(e.into()),
    };
    let default = state
        .config
        .rate_limits
        .limits
        .clone()
        .unwrap_or_default()
        .default;
    let (source, limit) = match own {
        Some(limit) => (RateLimitSource::Organization, limit),
        None => (RateLimitSource::Default, default),
    };
    Ok(OrgRateLimitResponse {
        organization_id: org_id.to_string(),
        source,
        preview: limit.preview(),
        config: wire(&limit),
    })
}

fn wire(limit: &LimitConfig) -> RateLimitConfig {
    match limit {
        LimitConfig::TokenBucket {
            refill_rate,
            interval,
            max_tokens,
        } => RateLimitConfig {
            kind: "tokenBucket".into(),
            refill_rate: *refill_rate,
            interval: interval.as_str().to_string(),
            max_tokens: *max_tokens,
        },
        // Organizations and the server's default are token buckets; a window reads as one
        // that refills completely every window.
        LimitConfig::FixedWindow { window, tokens } => RateLimitConfig {
            kind: "fixedWindow".into(),
            refill_rate: *tokens,
            interval: window.as_str().to_string(),
            max_tokens: *tokens,
        },
    }
}
