//! `POST /api/v1/tasks/{taskId}/trigger`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use taskgate_api::runs::TriggerTaskResponse;
use taskgate_api::ErrorBody;
use taskgate_core::jwt::PublicJwtClaims;
use taskgate_core::scope::Resource;
use taskgate_engine::trigger::{request_key, TriggerBody, REQUEST_KEY_HEADER};

use crate::auth::extract::ApiAuth;
use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::routes::auth_tokens::sign_env_jwt;
use crate::state::AppState;

/// Lifetime of the `x-trigger-jwt` a trigger answers with.
const RUN_TOKEN_SECONDS: i64 = 3600;

/// Parses a JSON request body as upstream's route builder does: empty → 400 `Request body is
/// empty`, not JSON → 400 `Invalid JSON`, wrong shape → 400 `Validation error: …`.
pub fn parse_json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Request body is empty"));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::bad_request("Invalid JSON"))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("Invalid JSON"));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("Validation error: {e}")))
}

/// `x-trigger-jwt` and `x-trigger-jwt-claims` for a run or batch the caller just created.
pub fn run_token_headers(
    principal: &EnvPrincipal,
    scopes: Vec<String>,
    now_secs: i64,
) -> ApiResult<HeaderMap> {
    access_token_headers(principal, scopes, now_secs, RUN_TOKEN_SECONDS)
}

/// `x-trigger-jwt` (valid `lifetime_secs`) and `x-trigger-jwt-claims` for something the
/// caller just created, with `scopes`.
pub fn access_token_headers(
    principal: &EnvPrincipal,
    scopes: Vec<String>,
    now_secs: i64,
    lifetime_secs: i64,
) -> ApiResult<HeaderMap> {
    let claims = PublicJwtClaims {
        realtime: principal.jwt().and_then(|g| g.realtime.clone()),
        ..PublicJwtClaims::new(principal.env.environment.id.clone()).scopes(scopes)
    };
    let token = sign_env_jwt(principal, &claims, now_secs, now_secs + lifetime_secs);
    let mut headers = HeaderMap::new();
    let value = |s: String| HeaderValue::from_str(&s).map_err(ApiError::internal);
    headers.insert("x-trigger-jwt", value(token)?);
    headers.insert(
        "x-trigger-jwt-claims",
        value(Value::Object(claims.to_map()).to_string())?,
    );
    Ok(headers)
}

/// Triggers a run of `taskId`; answers `{id, isCached}` with a JWT for the run in
/// `x-trigger-jwt`.
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/trigger", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("taskId" = String, Path), ("idempotency-key" = Option<String>, Header), ("idempotency-key-ttl" = Option<String>, Header),
           ("x-trigger-request-idempotency-key" = Option<String>, Header, description = "Reused across the retries of one call: a retry within 1 h answers with the run the first attempt created")),
    request_body(content = Object, description = "{payload?, options?: {payloadType, idempotencyKey, idempotencyKeyTTL, tags, delay, ttl, queue, concurrencyKey, maxAttempts, metadata, metadataType, machine, test, parentRunId, resumeParentOnCompletion}}"),
    responses((status = 200, body = TriggerTaskResponse), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn trigger_task(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(task_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    taskgate_core::text::check_task_id(&task_id).map_err(ApiError::bad_request)?;
    let parsed: TriggerBody = parse_json_body(&body)?;
    principal.authorize("trigger", &[Resource::with_id("tasks", &task_id)])?;
    let parent = parsed.options.parent();
    state
        .engine
        .check_locked_version(&principal.env.environment.id, &task_id, &parsed.options)
        .await?;
    let debounce = parsed
        .options
        .debounce
        .as_ref()
        .map(|d| d.checked())
        .transpose()?;
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let idem_header = header("idempotency-key").map(|k| (k, header("idempotency-key-ttl")));
    let (run, idempotency) =
        state
            .engine
            .build_run(&principal.env.environment, &task_id, parsed, idem_header)?;
    let one_time = principal
        .jwt()
        .filter(|g| g.one_time_use)
        .and_then(|g| g.one_time_marker.clone());
    let request_key = request_key(
        header(REQUEST_KEY_HEADER),
        &principal.env.environment.id,
        &task_id,
        state.now(),
    )?;
    let triggered = state
        .engine
        .trigger(run, idempotency, one_time, request_key, parent, debounce)
        .await?;
    let id = triggered.run.friendly_id.clone();
    let scopes = vec![
        format!("read:runs:{id}"),
        format!("write:inputStreams:{id}"),
    ];
    let jwt = run_token_headers(&principal, scopes, state.now().timestamp())?;
    let answer = TriggerTaskResponse {
        id: id.to_string(),
        is_cached: triggered.cached,
    };
    Ok((jwt, Json(answer)).into_response())
}
