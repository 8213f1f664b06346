//! Wait tokens: `POST|GET /api/v1/waitpoints/tokens`, `GET …/{id}`, `POST …/{id}/complete`
//! and the callback URL (`POST …/{id}/callback/{mac}`, no credential but the URL's own mac):
//! adapters over [`taskgate_engine::waits`].

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use taskgate_api::waitpoints::*;
use taskgate_api::ErrorBody;
use taskgate_core::duration::parse_jose_relative;
use taskgate_core::engine::waitpoint::{token_status, TokenStatus};
use taskgate_core::ids::WaitpointFriendlyId;
use taskgate_core::run::RunCursor;
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_engine::waits::TokenRequest;
use taskgate_store::{TokenFilter, TokenPage, Waitpoint};

use super::runs::list::{list, millis, query_error};
use super::runs::trigger::{access_token_headers, parse_json_body};
use crate::auth::extract::{ApiAuth, SecretKeyAuth};
use crate::error::{ApiError, ApiResult};
use crate::public_url::PublicUrl;
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u32 = 25;
const MAX_PAGE_SIZE: u32 = 100;
/// Largest body of a token's creation (upstream's limit).
pub const MAX_CREATE_BODY_BYTES: usize = 10 * 1024;
/// How long the token's own access token (its `x-trigger-jwt`) lasts (upstream: 24 h).
const TOKEN_JWT_SECONDS: i64 = 24 * 3600;

/// A token as the API shows it; `full` adds its packet (retrieve).
pub fn token_item(engine_url: &str, state: &AppState, w: &Waitpoint, full: bool) -> TokenItem {
    TokenItem {
        id: w.friendly_id.to_string(),
        url: state.engine.token_url(engine_url, w),
        status: token_status(w.status, w.output_is_error).into(),
        completed_at: w.completed_at,
        timeout_at: w.timeout_at,
        idempotency_key: w.idempotency_key.clone(),
        idempotency_key_expires_at: w.idempotency_key_expires_at,
        tags: w.tags.clone(),
        created_at: w.created_at,
        output: if full { w.output.clone() } else { None },
        output_type: if full { w.output_type.clone() } else { None },
        output_is_error: full.then_some(w.output_is_error),
    }
}

/// `inputStream.wait()` inside a task: a waitpoint that completes with the next record of the
/// run's input stream `streamId` after `lastSeqNum` (at once when one is already there) or
/// times out; the task then waits for it as for any token.
#[utoipa::path(post, path = "/api/v1/runs/{runId}/input-streams/wait", tag = "waitpoints", security(("secretKey" = [])),
    params(("runId" = String, Path)),
    request_body(content = Object, description = "{streamId, lastSeqNum?, timeout?, idempotencyKey?, idempotencyKeyTTL?, tags?}"),
    responses((status = 200, body = InputStreamWaitResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn wait_for_input_stream(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(run_id): Path<taskgate_core::ids::RunFriendlyId>,
    body: Bytes,
) -> ApiResult<Json<InputStreamWaitResponse>> {
    if body.len() > MAX_CREATE_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("A wait's request body may be at most {MAX_CREATE_BODY_BYTES} bytes"),
        ));
    }
    let request: taskgate_engine::waits::InputStreamWaitRequest = parse_json_body(&body)?;
    let (token, cached) = state
        .engine
        .wait_for_input_stream(&principal.env.environment.id, &run_id, request)
        .await
        .map_err(|e| match e {
            taskgate_engine::Error::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m)
            }
            other => other.into(),
        })?;
    Ok(Json(InputStreamWaitResponse {
        waitpoint_id: token.friendly_id.to_string(),
        is_cached: cached,
    }))
}

/// Makes a wait token (or returns the one with the same live idempotency key). Its
/// `x-trigger-jwt` may complete it, and nothing else.
#[utoipa::path(post, path = "/api/v1/waitpoints/tokens", operation_id = "createWaitpointToken", tag = "waitpoints", security(("secretKey" = [])),
    request_body(content = Object, description = "{idempotencyKey?, idempotencyKeyTTL?, timeout? (\"30s\", \"2h\" or an ISO date), tags?}"),
    responses((status = 200, body = CreateTokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    PublicUrl(base): PublicUrl,
    body: Bytes,
) -> ApiResult<Response> {
    if body.len() > MAX_CREATE_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("A token's request body may be at most {MAX_CREATE_BODY_BYTES} bytes"),
        ));
    }
    let request: TokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TokenRequest::default()
    } else {
        parse_json_body(&body)?
    };
    let (token, cached) = state
        .engine
        .create_token(&principal.env.environment.id, request)
        .await
        .map_err(|e| match e {
            // Upstream answers a bad option with 422.
            taskgate_engine::Error::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m)
            }
            other => other.into(),
        })?;
    let headers = access_token_headers(
        &principal,
        vec![format!("write:waitpoints:{}", token.friendly_id)],
        state.now().timestamp(),
        TOKEN_JWT_SECONDS,
    )?;
    let answer = CreateTokenResponse {
        id: token.friendly_id.to_string(),
        is_cached: cached,
        url: state.engine.token_url(&base, &token),
    };
    Ok((headers, Json(answer)).into_response())
}

/// The filter a listing asks for, validated.
fn filter(
    params: &HashMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<TokenFilter> {
    let mut statuses = Vec::new();
    for s in list(params, "filter[status]") {
        statuses.push(TokenStatus::parse(&s).ok_or_else(|| {
            query_error(
                "filter[status]",
                format!("Invalid status {s:?}: use WAITING, COMPLETED or TIMED_OUT"),
            )
        })?);
    }
    let period = match params.get("filter[createdAt][period]") {
        Some(p) => Some(
            parse_jose_relative(p)
                .filter(|s| *s > 0)
                .and_then(chrono::Duration::try_seconds)
                .ok_or_else(|| {
                    query_error("filter[createdAt][period]", "must be a duration like 7d")
                })?,
        ),
        None => None,
    };
    let from = millis(params, "filter[createdAt][from]")?;
    let to = millis(params, "filter[createdAt][to]")?;
    Ok(TokenFilter {
        statuses,
        idempotency_key: params.get("filter[idempotencyKey]").cloned(),
        tags: list(params, "filter[tags]"),
        created_from: period.map(|p| now - p).or(from),
        created_to: if period.is_some() { None } else { to },
    })
}

fn cursor(
    params: &HashMap<String, String>,
    key: &str,
) -> ApiResult<
    Option<(
        chrono::DateTime<chrono::Utc>,
        taskgate_core::ids::WaitpointId,
    )>,
> {
    match params.get(key) {
        None => Ok(None),
        Some(c) => RunCursor::decode(c)
            .map(|c| Some((from_millis(c.created_at_ms), c.run_id.into())))
            .ok_or_else(|| ApiError::bad_request("Invalid cursor").with("code", "invalid_cursor")),
    }
}

/// The environment's tokens, newest first, with every filter of `wait.listTokens`.
#[utoipa::path(get, path = "/api/v1/waitpoints/tokens", operation_id = "listWaitpointTokens", tag = "waitpoints", security(("secretKey" = [])),
    params(("filter[status]" = Option<String>, Query, description = "WAITING, COMPLETED, TIMED_OUT (comma-separated)"),
           ("filter[idempotencyKey]" = Option<String>, Query), ("filter[tags]" = Option<String>, Query, description = "any of these tags (comma-separated)"),
           ("filter[createdAt][period]" = Option<String>, Query), ("filter[createdAt][from]" = Option<i64>, Query), ("filter[createdAt][to]" = Option<i64>, Query),
           ("page[size]" = Option<u32>, Query), ("page[after]" = Option<String>, Query), ("page[before]" = Option<String>, Query)),
    responses((status = 200, body = ListTokensResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    PublicUrl(base): PublicUrl,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ListTokensResponse>> {
    principal.authorize("read", &[Resource::new("waitpoints")])?;
    let Query(params) =
        query.map_err(|e| ApiError::bad_request("Query Error").with("details", e.body_text()))?;
    let filter = filter(&params, state.now())?;
    let size = match params.get("page[size]") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| query_error("page[size]", "must be an integer from 1 to 100"))?,
    };
    let after = cursor(&params, "page[after]")?;
    let before = cursor(&params, "page[before]")?;
    if after.is_some() && before.is_some() {
        return Err(query_error(
            "page[after]",
            "page[after] and page[before] cannot be combined",
        ));
    }
    let backwards = before.is_some();
    let had_position = after.is_some() || before.is_some();
    let page = TokenPage {
        limit: size + 1,
        after,
        before,
    };
    let mut tokens = state
        .engine
        .list_tokens(&principal.env.environment.id, &filter, &page)
        .await?;
    let more = tokens.len() > size as usize;
    if more {
        if backwards {
            tokens.remove(0);
        } else {
            tokens.truncate(size as usize);
        }
    }
    let at = |w: &Waitpoint| {
        RunCursor {
            created_at_ms: w.created_at.timestamp_millis(),
            run_id: w.id.to_string(),
        }
        .encode()
    };
    let (next, previous) = if backwards {
        (true, more)
    } else {
        (more, had_position)
    };
    let pagination = taskgate_api::runs::RunPagination {
        next: tokens.last().filter(|_| next).map(at),
        previous: tokens.first().filter(|_| previous).map(at),
    };
    let data = tokens
        .iter()
        .map(|w| token_item(&base, &state, w, false))
        .collect();
    Ok(Json(ListTokensResponse { data, pagination }))
}

/// A token, with the packet it was completed with.
#[utoipa::path(get, path = "/api/v1/waitpoints/tokens/{waitpointFriendlyId}", operation_id = "retrieveWaitpointToken", tag = "waitpoints", security(("secretKey" = [])),
    params(("waitpointFriendlyId" = String, Path)),
    responses((status = 200, body = TokenItem), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_token(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    PublicUrl(base): PublicUrl,
    Path(id): Path<WaitpointFriendlyId>,
) -> ApiResult<Json<TokenItem>> {
    principal.authorize("read", &[Resource::with_id("waitpoints", &id)])?;
    let token = state
        .engine
        .token(&principal.env.environment.id, &id)
        .await?;
    Ok(Json(token_item(&base, &state, &token, true)))
}

#[derive(Debug, Deserialize)]
struct CompleteBody {
    #[serde(default)]
    data: Option<Value>,
}

/// Completes a token with `data`, continuing every run waiting for it. A completed token
/// answers `success` unchanged. The secret key, or a JWT with `write:waitpoints:<id>` (the
/// one its creation answered with), may complete it.
#[utoipa::path(post, path = "/api/v1/waitpoints/tokens/{waitpointFriendlyId}/complete", operation_id = "completeWaitpointToken", tag = "waitpoints", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("waitpointFriendlyId" = String, Path)),
    request_body(content = Object, description = "{data?}: a string is kept as text, anything else as JSON"),
    responses((status = 200, body = CompleteTokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn complete_token(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(id): Path<WaitpointFriendlyId>,
    body: Bytes,
) -> ApiResult<Json<CompleteTokenResponse>> {
    principal.authorize("write", &[Resource::with_id("waitpoints", &id)])?;
    let body: CompleteBody = if body.iter().all(u8::is_ascii_whitespace) {
        CompleteBody { data: None }
    } else {
        parse_json_body(&body)?
    };
    state
        .engine
        .complete_token(&principal.env.environment.id, &id, body.data.as_ref())
        .await?;
    Ok(Json(CompleteTokenResponse { success: true }))
}

/// A token's callback URL: an unauthenticated POST whose JSON body completes the token (a
/// body that is not JSON counts as `{}`). The URL's mac is the credential: 401 when it is
/// wrong. `Content-Length` is required (411), and bodies over the payload limit are refused
/// (413).
#[utoipa::path(post, path = "/api/v1/waitpoints/tokens/{waitpointFriendlyId}/callback/{hash}", operation_id = "completeWaitpointTokenByCallback", tag = "waitpoints", security(()),
    params(("waitpointFriendlyId" = String, Path), ("hash" = String, Path)),
    request_body(content = Object, description = "any JSON: the token's output"),
    responses((status = 200, body = CompleteTokenResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 411, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn token_callback(
    State(state): State<AppState>,
    Path((id, mac)): Path<(WaitpointFriendlyId, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(length) = headers.get(header::CONTENT_LENGTH) else {
        return Ok((
            StatusCode::LENGTH_REQUIRED,
            Json(serde_json::json!({"error": "Content-Length header is required"})),
        )
            .into_response());
    };
    let limit = state.config.engine.max_payload_bytes;
    let declared = length
        .to_str()
        .ok()
        .and_then(|l| l.parse::<usize>().ok())
        .ok_or_else(|| ApiError::bad_request("Content-Length must be a number of bytes"))?;
    if declared > limit || body.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body too large: the limit is {limit} bytes"),
        ));
    }
    state
        .engine
        .complete_token_by_callback(&id, &mac, &body)
        .await?;
    Ok(Json(CompleteTokenResponse { success: true }).into_response())
}
