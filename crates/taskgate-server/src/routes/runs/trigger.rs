//! `POST /api/v1/tasks/{taskId}/trigger`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use taskgate_api::runs::TriggerTaskResponse;
use taskgate_api::ErrorBody;
use taskgate_core::engine::{RunState, DEFAULT_DEV_TTL, MAX_TASK_RUN_ATTEMPTS};
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::run::{parse_delay, parse_idempotency_ttl, parse_ttl, DEFAULT_IDEMPOTENCY_TTL};
use taskgate_core::scope::Resource;
use taskgate_store::{Environment, Idempotency, RequestKey, Run, StoreError};

use crate::auth::extract::ApiAuth;
use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::routes::auth_tokens::sign_env_jwt;
use crate::state::AppState;

/// Most tags a run may carry, and their longest length (upstream's limits).
const MAX_TAGS: usize = 10;
const MAX_TAG_LEN: usize = 128;
/// Lifetime of the `x-trigger-jwt` a trigger answers with.
const RUN_TOKEN_SECONDS: i64 = 3600;

/// The trigger body the SDK sends; unknown options are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
pub struct TriggerBody {
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub options: TriggerOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerOptions {
    pub payload_type: Option<String>,
    pub idempotency_key: Option<String>,
    #[serde(rename = "idempotencyKeyTTL")]
    pub idempotency_key_ttl: Option<String>,
    pub idempotency_key_options: Option<IdempotencyKeyOptions>,
    pub tags: Option<Value>,
    pub delay: Option<Value>,
    pub ttl: Option<Value>,
    pub queue: Option<QueueOption>,
    pub concurrency_key: Option<Value>,
    pub max_attempts: Option<i64>,
    pub metadata: Option<Value>,
    pub metadata_type: Option<String>,
    pub machine: Option<String>,
    pub test: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct IdempotencyKeyOptions {
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct QueueOption {
    pub name: Option<String>,
}

fn validation(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Validation error: {msg}"))
}

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
    serde_json::from_value(value).map_err(validation)
}

fn tags(v: Option<&Value>) -> ApiResult<Vec<String>> {
    let list: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| validation("tags must be strings"))
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => return Err(validation("tags must be a string or an array of strings")),
    };
    if list.len() > MAX_TAGS {
        return Err(validation(format!(
            "a run can have at most {MAX_TAGS} tags"
        )));
    }
    if let Some(t) = list
        .iter()
        .find(|t| t.is_empty() || t.chars().count() > MAX_TAG_LEN)
    {
        return Err(validation(format!(
            "tag {t:?} must be 1 to {MAX_TAG_LEN} characters"
        )));
    }
    let mut unique = Vec::new();
    for t in list {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    Ok(unique)
}

/// The run a trigger body describes, and its idempotency, before it is stored. Every
/// duration is range-checked (400 naming the field); a development run without a TTL gets
/// [`DEFAULT_DEV_TTL`].
pub fn build_run(
    state: &AppState,
    env: &Environment,
    task_id: &str,
    body: TriggerBody,
    idempotency_header: Option<(&str, Option<&str>)>,
) -> ApiResult<(Run, Option<Idempotency>)> {
    let now = state.now();
    let o = body.options;
    let (payload, payload_type) = match body.payload {
        None | Some(Value::Null) => (
            None,
            o.payload_type.unwrap_or_else(|| "application/json".into()),
        ),
        Some(Value::String(s)) => (
            Some(s),
            o.payload_type.unwrap_or_else(|| "application/json".into()),
        ),
        Some(other) => (Some(other.to_string()), "application/json".to_string()),
    };
    if payload_type == "application/store" {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Offloaded payloads (application/store) need object storage, which this server does not have"));
    }
    let limit = state.config.engine.max_payload_bytes;
    if payload.as_ref().is_some_and(|p| p.len() > limit) {
        return Err(payload_too_large(limit));
    }
    let (key, key_ttl) = match idempotency_header {
        Some((k, ttl)) => (Some(k.to_string()), ttl.map(str::to_string)),
        None => (o.idempotency_key.clone(), o.idempotency_key_ttl.clone()),
    };
    let key_ttl = match key_ttl.as_deref() {
        Some(t) => parse_idempotency_ttl(t).map_err(validation)?,
        None => None,
    };
    let idempotency = key.filter(|k| !k.is_empty()).map(|k| Idempotency {
        key: k,
        user_key: o.idempotency_key_options.and_then(|x| x.key),
        expires_at: now + key_ttl.unwrap_or(DEFAULT_IDEMPOTENCY_TTL),
    });
    let delay_until = match &o.delay {
        Some(d) => parse_delay(d, now).map_err(validation)?,
        None => None,
    };
    let development = env.env_type == EnvType::Development;
    let (ttl_text, ttl) = match &o.ttl {
        Some(t) => (
            Some(
                t.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| t.to_string()),
            ),
            parse_ttl(t).map_err(validation)?,
        ),
        None if development => (Some("10m".to_string()), Some(DEFAULT_DEV_TTL)),
        None => (None, None),
    };
    let metadata = match o.metadata {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    let concurrency_key = match o.concurrency_key {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let max_attempts = match o.max_attempts {
        None => None,
        Some(n) if (1..=i64::from(MAX_TASK_RUN_ATTEMPTS)).contains(&n) => Some(n),
        Some(_) => {
            return Err(validation(format!(
                "maxAttempts must be from 1 to {MAX_TASK_RUN_ATTEMPTS}"
            )))
        }
    };
    let run_state = RunState::triggered(now, delay_until, ttl.map(|d| now + d), development);
    let run = Run {
        payload,
        payload_type,
        tags: tags(o.tags.as_ref())?,
        metadata_type: metadata
            .as_ref()
            .map(|_| o.metadata_type.unwrap_or_else(|| "application/json".into())),
        metadata,
        queue: o.queue.and_then(|q| q.name),
        concurrency_key,
        max_attempts,
        machine: o.machine,
        ttl: ttl_text,
        delay_until,
        is_test: o.test.unwrap_or(false),
        ..Run::triggered(&env.id, task_id, &run_state, now)
    };
    Ok((run, idempotency))
}

pub fn payload_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload too large: the limit is {limit} bytes, and payloads are stored inline (no object storage)"),
    )
}

/// `x-trigger-jwt` and `x-trigger-jwt-claims` for a run or batch the caller just created.
pub fn run_token_headers(
    principal: &EnvPrincipal,
    scopes: Vec<String>,
    now_secs: i64,
) -> ApiResult<HeaderMap> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(principal.env.environment.id));
    claims.insert("pub".into(), json!(true));
    claims.insert("scopes".into(), json!(scopes));
    if let Some(rt) = principal.jwt().and_then(|g| g.realtime.clone()) {
        claims.insert("realtime".into(), rt);
    }
    let token = sign_env_jwt(
        principal,
        claims.clone(),
        now_secs,
        now_secs + RUN_TOKEN_SECONDS,
    );
    let mut headers = HeaderMap::new();
    let value = |s: String| HeaderValue::from_str(&s).map_err(ApiError::internal);
    headers.insert("x-trigger-jwt", value(token)?);
    headers.insert(
        "x-trigger-jwt-claims",
        value(Value::Object(claims).to_string())?,
    );
    Ok(headers)
}

/// Says in the log when a development run has no `trigger.dev dev` to run it, since the run
/// will only wait (and expire after its TTL). Best effort: a failed check is not an error.
async fn warn_if_no_dev_worker(state: &AppState, run: &Run) {
    let connected = state
        .workers
        .dev_connected(state, &run.environment_id)
        .await
        .unwrap_or(true);
    if !connected {
        tracing::info!(
            run.id = %run.friendly_id,
            env.id = %run.environment_id,
            ttl = ?run.ttl,
            "run queued in a development environment with no trigger.dev dev connected: it runs when one connects, and expires after its TTL otherwise"
        );
    }
}

/// Refuses `adding` more runs when the environment's queue is at the configured limit (422,
/// upstream's words; the SDK does not retry it).
pub async fn check_queue_size(
    state: &AppState,
    environment_id: &str,
    task_id: &str,
    adding: u64,
) -> ApiResult<()> {
    let Some(max) = state.config.engine.max_queue_size else {
        return Ok(());
    };
    let queued = state.store.queue_length(environment_id, max).await?;
    if queued.saturating_add(adding) > max {
        let what = if adding == 1 {
            task_id.to_string()
        } else {
            format!("{adding} tasks")
        };
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Cannot trigger {what} as the queue size limit for this environment has been reached. The maximum size is {max}"),
        )
        .should_retry(false));
    }
    Ok(())
}

/// The header SDK clients send with a fresh value per logical call, reused across its retries.
const REQUEST_KEY_HEADER: &str = "x-trigger-request-idempotency-key";
/// Longest request key accepted (the SDK sends a 36-character UUID).
const MAX_REQUEST_KEY_LEN: usize = 256;
/// How long a retry gets the run its first attempt created. The SDK's retries of one call
/// span about 10 s.
const REQUEST_KEY_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// The request key of a trigger, scoped to its environment and task
/// (SHA-256 over the JSON `[key, envId, taskId]`, as upstream). An empty header is no key.
fn request_key(
    header: Option<&str>,
    environment_id: &str,
    task_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<Option<RequestKey>> {
    let Some(key) = header.filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    if key.len() > MAX_REQUEST_KEY_LEN {
        return Err(ApiError::bad_request(format!(
            "{REQUEST_KEY_HEADER} must be at most {MAX_REQUEST_KEY_LEN} characters"
        )));
    }
    Ok(Some(RequestKey {
        hash: sha256_hex(&json!([key, environment_id, task_id]).to_string()),
        expires_at: now + REQUEST_KEY_WINDOW,
    }))
}

/// Triggers a run of `taskId`; answers `{id, isCached}` with a JWT for the run in
/// `x-trigger-jwt`.
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/trigger", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("taskId" = String, Path), ("idempotency-key" = Option<String>, Header), ("idempotency-key-ttl" = Option<String>, Header),
           ("x-trigger-request-idempotency-key" = Option<String>, Header, description = "Reused across the retries of one call: a retry within 1 h answers with the run the first attempt created")),
    request_body(content = Object, description = "{payload?, options?: {payloadType, idempotencyKey, idempotencyKeyTTL, tags, delay, ttl, queue, concurrencyKey, maxAttempts, metadata, metadataType, machine, test}}"),
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
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let idem_header = header("idempotency-key").map(|k| (k, header("idempotency-key-ttl")));
    let (run, idempotency) = build_run(
        &state,
        &principal.env.environment,
        &task_id,
        parsed,
        idem_header,
    )?;
    check_queue_size(&state, &principal.env.environment.id, &task_id, 1).await?;
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
    let triggered = match state
        .store
        .trigger_run(run, idempotency, one_time, request_key, state.now())
        .await
    {
        Ok(t) => t,
        Err(StoreError::Conflict { constraint }) if constraint == "one_time_use_tokens" => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Cannot trigger {task_id} with a one-time use token as it has already been used."),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let id = triggered.run.friendly_id.clone();
    tracing::info!(run.id = %id, task = ?task_id, env.id = %principal.env.environment.id, cached = triggered.cached, "run triggered");
    if triggered.run.is_development && !triggered.cached {
        warn_if_no_dev_worker(&state, &triggered.run).await;
    }
    let scopes = vec![
        format!("read:runs:{id}"),
        format!("write:inputStreams:{id}"),
    ];
    let jwt = run_token_headers(&principal, scopes, state.now().timestamp())?;
    let answer = TriggerTaskResponse {
        id,
        is_cached: triggered.cached,
    };
    Ok((jwt, Json(answer)).into_response())
}
