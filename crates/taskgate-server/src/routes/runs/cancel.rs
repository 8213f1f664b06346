//! Cancel and replay.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use taskgate_api::runs::RunIdResponse;
use taskgate_api::ErrorBody;
use taskgate_core::engine::{EngineError, Event};
use taskgate_core::scope::Resource;
use taskgate_store::{Environment, EventData, Refusal, Run, RunEvent};

use super::trigger::{build_run, TriggerBody, TriggerOptions};
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Cancels a run. A queued, delayed or dequeued run ends at once; an executing one is
/// `CANCELED` at once and its worker is told to stop (it confirms, or the run finishes
/// without it after a minute). A run that already finished is answered unchanged.
#[utoipa::path(post, path = "/api/v2/runs/{runId}/cancel", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path)),
    responses((status = 200, body = RunIdResponse, description = "the canceled run"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn cancel_run(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<String>,
) -> ApiResult<Json<RunIdResponse>> {
    let env_id = principal.env.environment.id.clone();
    let run = state.store.get_run(&env_id, &run_id).await?;
    // Authorization before the not-found check, so an under-scoped token learns nothing.
    let resources = match &run {
        Some(r) => vec![
            Resource::with_id("runs", &r.friendly_id),
            Resource::with_id("tasks", &r.task_identifier),
        ],
        None => vec![Resource::with_id("runs", &run_id)],
    };
    principal.authorize("write", &resources)?;
    if run.is_none() {
        return Err(ApiError::not_found("Resource not found"));
    }
    cancel(&state, &env_id, &run_id).await?;
    Ok(Json(RunIdResponse { id: run_id }))
}

/// Cancels a run of `env_id` the caller may write (the caller checks). A run that already
/// finished, or whose cancellation already waits for its worker, is left as it is. The
/// dashboard's "Cancel" goes through here too.
pub async fn cancel(state: &AppState, env_id: &str, run_id: &str) -> ApiResult<()> {
    let cancel = RunEvent {
        event: Event::Cancel { finalize: false },
        expected_snapshot: None,
        data: EventData::default(),
    };
    match state
        .store
        .apply_run_event(env_id, run_id, cancel, state.now())
        .await?
    {
        Ok(applied) => {
            tracing::info!(run.id = %applied.run.friendly_id, execution = %applied.run.execution_status, "run canceled");
        }
        Err(Refusal::Engine(EngineError::AlreadyFinished | EngineError::NoChange)) => {}
        Err(other) => return Err(ApiError::internal(format!("cancel refused: {other:?}"))),
    }
    Ok(())
}

/// Overrides a replay may carry (4.8.3's `ReplayRunRequestBody`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayOverrides {
    payload: Option<Value>,
    payload_type: Option<String>,
    metadata: Option<Value>,
    tags: Option<Value>,
    queue: Option<Value>,
    concurrency_key: Option<Value>,
    machine: Option<String>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    version: Option<String>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    region: Option<String>,
    delay: Option<Value>,
    ttl: Option<Value>,
    idempotency_key: Option<String>,
    #[serde(rename = "idempotencyKeyTTL")]
    idempotency_key_ttl: Option<String>,
    max_attempts: Option<i64>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    max_duration: Option<i64>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    priority: Option<i64>,
}

/// Triggers a new run of the same task with the same payload (or the given overrides).
///
/// A public token may replay too (upstream refuses them; the CLI's MCP server sends one): it
/// needs `write:runs:{runId}`, since it acts on the run, and `trigger:tasks:{taskId}`, since
/// it starts a run of the task (or the broader `write:runs`, `trigger:tasks`, `write:all`,
/// `admin`).
#[utoipa::path(post, path = "/api/v1/runs/{runId}/replay", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path)),
    request_body(content = Object, description = "optional ReplayRunRequestBody overrides"),
    responses((status = 200, body = RunIdResponse, description = "the new run"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replay_run(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RunIdResponse>> {
    let overrides: ReplayOverrides = match crate::json::parse_lenient(&body)? {
        Value::Null => ReplayOverrides::default(),
        v => serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("Validation error: {e}")))?,
    };
    let env_id = principal.env.environment.id.clone();
    let old = state.store.get_run(&env_id, &run_id).await?;
    // Authorization before the not-found check, so an under-scoped token learns nothing.
    match &old {
        Some(r) => {
            principal.authorize("write", &[Resource::with_id("runs", &r.friendly_id)])?;
            principal.authorize("trigger", &[Resource::with_id("tasks", &r.task_identifier)])?;
        }
        None => principal.authorize("write", &[Resource::with_id("runs", &run_id)])?,
    }
    let old = old.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Run not found"))?;
    let run = replay(&state, &principal.env.environment, &old, overrides).await?;
    Ok(Json(RunIdResponse {
        id: run.friendly_id,
    }))
}

/// Triggers a new run of `old`'s task in `env` with `old`'s payload and options, or the
/// given overrides (the caller has authorized). The dashboard's "Replay" goes through here.
pub async fn replay(
    state: &AppState,
    env: &Environment,
    old: &Run,
    overrides: ReplayOverrides,
) -> ApiResult<Run> {
    let body = TriggerBody {
        payload: overrides
            .payload
            .or_else(|| old.payload.clone().map(Value::String)),
        options: TriggerOptions {
            payload_type: overrides
                .payload_type
                .or_else(|| Some(old.payload_type.clone())),
            idempotency_key: overrides.idempotency_key,
            idempotency_key_ttl: overrides.idempotency_key_ttl,
            tags: overrides.tags.or_else(|| Some(json!(old.tags))),
            delay: overrides.delay,
            ttl: overrides.ttl.or_else(|| old.ttl.clone().map(Value::String)),
            queue: None,
            concurrency_key: overrides
                .concurrency_key
                .or_else(|| old.concurrency_key.clone().map(Value::String)),
            max_attempts: overrides.max_attempts.or(old.max_attempts),
            metadata: overrides
                .metadata
                .or_else(|| old.metadata.clone().map(Value::String)),
            metadata_type: old.metadata_type.clone(),
            machine: overrides.machine.or_else(|| old.machine.clone()),
            test: Some(old.is_test),
            idempotency_key_options: None,
        },
    };
    let (mut run, idempotency) = build_run(state, env, &old.task_identifier, body, None)?;
    run.is_replay = true;
    run.queue = match overrides.queue {
        Some(Value::String(q)) => Some(q),
        Some(q) => q.get("name").and_then(Value::as_str).map(str::to_string),
        None => old.queue.clone(),
    };
    let triggered = state
        .store
        .trigger_run(run, idempotency, None, None, state.now())
        .await?;
    tracing::info!(run.id = %triggered.run.friendly_id, replay_of = %old.friendly_id, "run replayed");
    Ok(triggered.run)
}
