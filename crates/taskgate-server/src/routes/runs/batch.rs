//! Two-phase batch trigger, as the 4.8.3 SDK uses it:
//! `POST /api/v3/batches`, then the items as NDJSON to `POST /api/v3/batches/{id}/items`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use taskgate_api::runs::{
    BatchProcessing, CreateBatchResponse, RetrieveBatchResponse, StreamBatchItemsResponse,
};
use taskgate_api::ErrorBody;
use taskgate_core::ids::BatchFriendlyId;
use taskgate_core::scope::Resource;
use taskgate_core::time::iso_millis;
use taskgate_engine::batch::{check_run_count, BatchItem};
use taskgate_engine::trigger::ParentRequest;
use taskgate_store::{RunFilter, RunPage};

use super::trigger::{parse_json_body, run_token_headers};
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBatchBody {
    run_count: i64,
    #[serde(default)]
    task_identifiers: Option<Vec<String>>,
    #[serde(default)]
    idempotency_key: Option<String>,
    /// Set by `batchTriggerAndWait` and batches triggered from inside a run.
    #[serde(default)]
    parent_run_id: Option<String>,
    #[serde(default)]
    resume_parent_on_completion: Option<bool>,
}

/// Phase one: a batch expecting `runCount` items. A one-time-use token is spent here, by the
/// batch's creation; phase two accepts the same token for the batch's items.
#[utoipa::path(post, path = "/api/v3/batches", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    request_body(content = Object, description = "{runCount, taskIdentifiers?, idempotencyKey?, parentRunId?, resumeParentOnCompletion?}"),
    responses((status = 202, body = CreateBatchResponse), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_batch(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    body: Bytes,
) -> ApiResult<Response> {
    let body: CreateBatchBody = parse_json_body(&body)?;
    // Before authorization, as upstream's schema check comes first.
    check_run_count(body.run_count)?;
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
    let one_time = principal
        .jwt()
        .filter(|g| g.one_time_use)
        .and_then(|g| g.one_time_marker.clone());
    let (batch, cached) = state
        .engine
        .create_batch(
            &principal.env.environment.id,
            body.run_count,
            body.idempotency_key.clone(),
            one_time,
            body.parent_run_id
                .filter(|p| !p.is_empty())
                .map(|p| ParentRequest {
                    run: p.as_str().into(),
                    wait: body.resume_parent_on_completion.unwrap_or(false),
                }),
        )
        .await?;
    let headers = run_token_headers(
        &principal,
        vec![format!("read:batch:{}", batch.friendly_id)],
        state.now().timestamp(),
    )?;
    let created = CreateBatchResponse {
        id: batch.friendly_id.to_string(),
        run_count: batch.run_count,
        is_cached: cached,
        idempotency_key: batch.idempotency_key,
    };
    Ok((StatusCode::ACCEPTED, headers, Json(created)).into_response())
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
    Path(batch_id): Path<BatchFriendlyId>,
    body: Bytes,
) -> ApiResult<Json<StreamBatchItemsResponse>> {
    let env_id = principal.env.environment.id.clone();
    let batch = state.engine.batch(&env_id, &batch_id).await?;
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
    let added = state
        .engine
        .add_batch_items(&principal.env.environment, &batch, items)
        .await?;
    Ok(Json(StreamBatchItemsResponse {
        id: batch.friendly_id.to_string(),
        items_accepted: added.accepted,
        items_deduplicated: added.deduplicated,
        sealed: added.sealed,
        enqueued_count: added.count,
        expected_count: batch.run_count,
    }))
}

/// Runs of a batch read per store call.
const BATCH_RUNS_PAGE: u32 = 500;

/// A batch: its status and its runs (`batch.retrieve`).
#[utoipa::path(get, path = "/api/v2/batches/{batchId}", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("batchId" = String, Path)),
    responses((status = 200, body = RetrieveBatchResponse), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_batch(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(batch_id): Path<BatchFriendlyId>,
) -> ApiResult<Json<RetrieveBatchResponse>> {
    let env = &principal.env.environment.id;
    let batch = state
        .store
        .get_batch(env, &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Batch not found").should_retry(false))?;
    principal.authorize(
        "read",
        &[
            Resource::with_id("batch", &batch.friendly_id),
            Resource::new("runs"),
        ],
    )?;
    let filter = RunFilter {
        batch_id: Some(batch.friendly_id.clone()),
        ..RunFilter::default()
    };
    // Newest first, a page at a time; a batch has at most MAX_BATCH_RUNS runs.
    let mut runs = Vec::new();
    let mut after = None;
    loop {
        let page = RunPage {
            limit: BATCH_RUNS_PAGE,
            after: after.clone(),
            before: None,
        };
        let got = state.store.list_runs(env, &filter, &page).await?;
        let full = got.len() == BATCH_RUNS_PAGE as usize;
        after = got.last().map(|r| (r.created_at, r.id.clone()));
        runs.extend(got);
        if !full || runs.len() as i64 >= batch.run_count {
            break;
        }
    }
    runs.reverse();
    let finished = runs.iter().filter(|r| r.state().is_finished()).count() as i64;
    let status = if !batch.sealed {
        "PROCESSING"
    } else if finished >= batch.run_count {
        "COMPLETED"
    } else {
        "PENDING"
    };
    let updated = runs
        .iter()
        .filter_map(|r| r.completed_at)
        .chain(std::iter::once(batch.created_at))
        .max()
        .unwrap_or(batch.created_at);
    Ok(Json(RetrieveBatchResponse {
        id: batch.friendly_id.to_string(),
        status: status.into(),
        idempotency_key: batch.idempotency_key.clone(),
        created_at: iso_millis(batch.created_at),
        updated_at: iso_millis(updated),
        run_count: batch.run_count,
        runs: runs.iter().map(|r| r.friendly_id.to_string()).collect(),
        processing: BatchProcessing {
            completed_at: batch
                .sealed
                .then(|| runs.last().map(|r| iso_millis(r.created_at)))
                .flatten(),
            errors: Vec::new(),
        },
    }))
}

/// `GET /api/v1/batches/{batchId}`: the same answer (older SDKs' path).
#[utoipa::path(get, path = "/api/v1/batches/{batchId}", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("batchId" = String, Path)),
    responses((status = 200, body = RetrieveBatchResponse), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_batch_v1(
    state: State<AppState>,
    auth: ApiAuth,
    id: Path<BatchFriendlyId>,
) -> ApiResult<Json<RetrieveBatchResponse>> {
    retrieve_batch(state, auth, id).await
}
