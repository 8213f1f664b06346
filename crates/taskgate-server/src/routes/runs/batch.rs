//! Two-phase batch trigger, as the 4.8.3 SDK uses it:
//! `POST /api/v3/batches`, then the items as NDJSON to `POST /api/v3/batches/{id}/items`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use taskgate_api::runs::{CreateBatchResponse, StreamBatchItemsResponse};
use taskgate_api::ErrorBody;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::{new_batch_friendly_id, new_id};
use taskgate_core::scope::Resource;
use taskgate_store::{Batch, Idempotency, StoreError};

use super::trigger::{
    build_run, check_queue_size, parse_json_body, run_token_headers, TriggerBody, TriggerOptions,
};
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Most runs one batch may create (upstream).
const MAX_BATCH_RUNS: i64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBatchBody {
    run_count: i64,
    #[serde(default)]
    task_identifiers: Option<Vec<String>>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Phase one: a batch expecting `runCount` items. A one-time-use token is spent here, by the
/// batch's creation; phase two accepts the same token for the batch's items.
#[utoipa::path(post, path = "/api/v3/batches", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    request_body(content = Object, description = "{runCount, taskIdentifiers?, idempotencyKey?}"),
    responses((status = 202, body = CreateBatchResponse), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_batch(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    body: Bytes,
) -> ApiResult<Response> {
    let body: CreateBatchBody = parse_json_body(&body)?;
    if !(1..=MAX_BATCH_RUNS).contains(&body.run_count) {
        return Err(ApiError::bad_request(format!(
            "Validation error: runCount must be from 1 to {MAX_BATCH_RUNS}"
        )));
    }
    let tasks = body.task_identifiers.unwrap_or_default();
    let broad = principal.can(
        "batchTrigger",
        &[Resource::new("batch"), Resource::new("tasks")],
    );
    let each = !tasks.is_empty()
        && tasks
            .iter()
            .all(|t| principal.can("batchTrigger", &[Resource::with_id("tasks", t)]));
    if !(broad || each) {
        return Err(ApiError::scope_denied());
    }
    let batch = Batch {
        id: new_id(),
        friendly_id: new_batch_friendly_id(),
        environment_id: principal.env.environment.id.clone(),
        run_count: body.run_count,
        idempotency_key: body.idempotency_key.clone(),
        created_at: state.now(),
        sealed: false,
    };
    let one_time = principal
        .jwt()
        .filter(|g| g.one_time_use)
        .and_then(|g| g.one_time_marker.clone());
    let (batch, cached) = match state.store.create_batch(batch, one_time, state.now()).await {
        Ok(created) => created,
        Err(StoreError::Conflict { constraint }) if constraint == "one_time_use_tokens" => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot batch trigger with a one-time use token as it has already been used.",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let headers = run_token_headers(
        &principal,
        vec![format!("read:batch:{}", batch.friendly_id)],
        state.now().timestamp(),
    )?;
    let created = CreateBatchResponse {
        id: batch.friendly_id,
        run_count: batch.run_count,
        is_cached: cached,
        idempotency_key: batch.idempotency_key,
    };
    Ok((StatusCode::ACCEPTED, headers, Json(created)).into_response())
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    index: i64,
    task: String,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    options: Option<Value>,
}

/// Phase two: the items, one JSON object per line. Items are deduplicated by index, so the
/// SDK may resend the whole stream.
#[utoipa::path(post, path = "/api/v3/batches/{batchId}/items", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("batchId" = String, Path)),
    request_body(content = String, content_type = "application/x-ndjson", description = "{index, task, payload?, options?} per line"),
    responses((status = 200, body = StreamBatchItemsResponse),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stream_batch_items(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(batch_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<StreamBatchItemsResponse>> {
    let env_id = principal.env.environment.id.clone();
    let batch = state
        .store
        .get_batch(&env_id, &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Batch not found"))?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("Items must be UTF-8 NDJSON"))?;
    let mut items = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let item: BatchItem = serde_json::from_str(line)
            .map_err(|e| ApiError::bad_request(format!("Validation error: line {}: {e}", n + 1)))?;
        if item.index < 0 || item.index >= batch.run_count {
            return Err(ApiError::bad_request(format!(
                "Validation error: index {} is outside this batch of {}",
                item.index, batch.run_count
            )));
        }
        taskgate_core::text::check_task_id(&item.task)
            .map_err(|e| ApiError::bad_request(format!("Validation error: line {}: {e}", n + 1)))?;
        principal.authorize("batchTrigger", &[Resource::with_id("tasks", &item.task)])?;
        items.push(item);
    }
    // Items over the queue's limit fail fast, all of them, before any run is made: retrying
    // cannot help, and half a batch of pre-failed runs would only fill the database.
    check_queue_size(&state, &env_id, "", items.len() as u64).await?;
    let (mut accepted, mut deduplicated) = (0, 0);
    for item in items {
        let options: TriggerOptions = match item.options {
            Some(o) => serde_json::from_value(o).map_err(|e| {
                ApiError::bad_request(format!("Validation error: item {}: {e}", item.index))
            })?,
            None => TriggerOptions::default(),
        };
        let (mut run, idempotency) = build_run(
            &state,
            &principal.env.environment,
            &item.task,
            TriggerBody {
                payload: item.payload,
                options,
            },
            None,
        )?;
        run.batch_id = Some(batch.friendly_id.clone());
        // Resending an item returns the run it already made: its key is the batch and index.
        let idempotency = idempotency.or_else(|| {
            Some(Idempotency {
                key: sha256_hex(&format!("{}:{}", batch.id, item.index)),
                user_key: None,
                expires_at: state.now() + taskgate_core::run::DEFAULT_IDEMPOTENCY_TTL,
            })
        });
        let triggered = state
            .store
            .trigger_run(run, idempotency, None, None, state.now())
            .await?;
        if state
            .store
            .add_batch_item(&batch.id, item.index, &triggered.run.friendly_id)
            .await?
        {
            accepted += 1;
        } else {
            deduplicated += 1;
        }
    }
    let (count, sealed) = state.store.seal_batch(&batch.id).await?;
    Ok(Json(StreamBatchItemsResponse {
        id: batch.friendly_id,
        items_accepted: accepted,
        items_deduplicated: deduplicated,
        sealed,
        enqueued_count: count,
        expected_count: batch.run_count,
    }))
}
