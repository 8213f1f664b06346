//! Queues: the SDK's `queues.list()`, `retrieve()`, `pause()`, `resume()`,
//! `overrideConcurrencyLimit()` and `resetConcurrencyLimit()` (`/api/v1/queues…`): adapters
//! over [`taskgate_usecases::queues`]. Listing and changes take the environment's secret key;
//! a retrieve also takes a public token with `read:queues`, as upstream.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use taskgate_api::queues::*;
use taskgate_api::ErrorBody;
use taskgate_core::scope::Resource;
use taskgate_store::QueueInfo;
use taskgate_usecases::queues::{self as uc, QueueName, MAX_PER_PAGE};

use super::runs::trigger::parse_json_body;
use crate::auth::extract::{ApiAuth, SecretKeyAuth};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Default page size of a listing (upstream's).
const DEFAULT_PER_PAGE: u32 = 25;
/// Largest body of a change.
const MAX_BODY_BYTES: usize = 4 * 1024;

/// A queue as the SDK's `QueueItem` reads it.
pub fn queue_item(q: &QueueInfo) -> QueueItem {
    let task = q.is_task_queue();
    QueueItem {
        id: q.friendly_id.to_string(),
        name: q.name.strip_prefix("task/").unwrap_or(&q.name).to_string(),
        kind: if task { "task" } else { "custom" }.to_string(),
        running: q.running,
        queued: q.queued,
        paused: q.paused,
        concurrency_limit: q.concurrency_limit,
        concurrency: QueueConcurrency {
            current: q.concurrency_limit,
            base: q.declared_limit,
            override_: q.overridden_at.and(q.concurrency_limit),
            overridden_at: q.overridden_at,
            overridden_by: q.overridden_by.clone(),
        },
        version: "V1".to_string(),
    }
}

/// The queue a path and `type` name: the SDK writes `/` in a name as `%2F` before encoding
/// the segment, so it arrives here as `%2F`.
fn queue_name(kind: Option<&str>, param: &str) -> ApiResult<QueueName> {
    Ok(QueueName::parse(
        kind.unwrap_or("id"),
        &param.replace("%2F", "/"),
    )?)
}

fn small_body(body: &[u8]) -> ApiResult<()> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("A queue request body may be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A positive integer query parameter, at most `max`.
fn positive(params: &HashMap<String, String>, name: &str, max: u64) -> ApiResult<Option<u64>> {
    params
        .get(name)
        .map(|p| {
            p.parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .map(|n| n.min(max))
                .ok_or_else(|| ApiError::bad_request(format!("{name} must be a positive integer")))
        })
        .transpose()
}

/// The environment's queues by name, a page at a time, each with its runs counted now.
#[utoipa::path(get, path = "/api/v1/queues", operation_id = "listQueues", tag = "queues", security(("secretKey" = [])),
    params(("page" = Option<u64>, Query, description = "from 1"), ("perPage" = Option<u32>, Query, description = "25 by default; more than 100 is 100")),
    responses((status = 200, body = ListQueuesResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_queues(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<ListQueuesResponse>> {
    let Query(params) =
        query.map_err(|e| ApiError::bad_request("Query Error").with("details", e.body_text()))?;
    let page = positive(&params, "page", 1_000_000)?.unwrap_or(1);
    let per_page = positive(&params, "perPage", u64::from(MAX_PER_PAGE))?
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(DEFAULT_PER_PAGE);
    let env = &principal.env.environment;
    let (list, count) = uc::list(&state.usecases, env, page, per_page).await?;
    Ok(Json(ListQueuesResponse {
        data: list.iter().map(queue_item).collect(),
        pagination: QueuePagination {
            current_page: page,
            total_pages: count.div_ceil(u64::from(per_page)),
            count,
        },
    }))
}

/// A queue by id (`queue_…`), or by `type` (`task` or `custom`) and name.
#[utoipa::path(get, path = "/api/v1/queues/{queueParam}", operation_id = "retrieveQueue", tag = "queues", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("queueParam" = String, Path, description = "`queue_…`, a task id, or a shared queue's name"),
           ("type" = Option<String>, Query, description = "`id` (default), `task` or `custom`")),
    responses((status = 200, body = QueueItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_queue(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(param): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<QueueItem>> {
    principal.authorize("read", &[Resource::new("queues")])?;
    let Query(params) =
        query.map_err(|e| ApiError::bad_request("Query Error").with("details", e.body_text()))?;
    let name = queue_name(params.get("type").map(String::as_str), &param)?;
    let q = uc::get(&state.usecases, &principal.env.environment, &name).await?;
    Ok(Json(queue_item(&q)))
}

/// Pauses a queue (no run of it starts; executing ones finish) or resumes it.
#[utoipa::path(post, path = "/api/v1/queues/{queueParam}/pause", operation_id = "pauseQueue", tag = "queues", security(("secretKey" = [])),
    params(("queueParam" = String, Path)),
    request_body = PauseQueueRequest,
    responses((status = 200, body = QueueItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn pause_queue(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(param): Path<String>,
    body: Bytes,
) -> ApiResult<Json<QueueItem>> {
    small_body(&body)?;
    let r: PauseQueueRequest = parse_json_body(&body)?;
    let paused = match r.action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            return Err(ApiError::bad_request(
                "Validation error: action must be pause or resume",
            ))
        }
    };
    let name = queue_name(r.kind.as_deref(), &param)?;
    let q = uc::set_paused(&state.usecases, &principal.env.environment, &name, paused).await?;
    Ok(Json(queue_item(&q)))
}

/// Overrides a queue's concurrency limit until reset; later deploys change only its base.
#[utoipa::path(post, path = "/api/v1/queues/{queueParam}/concurrency/override", operation_id = "overrideQueueConcurrencyLimit", tag = "queues", security(("secretKey" = [])),
    params(("queueParam" = String, Path)),
    request_body = OverrideQueueRequest,
    responses((status = 200, body = QueueItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn override_queue_limit(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(param): Path<String>,
    body: Bytes,
) -> ApiResult<Json<QueueItem>> {
    small_body(&body)?;
    let r: OverrideQueueRequest = parse_json_body(&body)?;
    let limit = u32::try_from(r.concurrency_limit)
        .ok()
        .filter(|n| *n <= uc::MAX_OVERRIDE)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Validation error: concurrencyLimit must be an integer from 0 to {}",
                uc::MAX_OVERRIDE
            ))
        })?;
    let name = queue_name(r.kind.as_deref(), &param)?;
    let q = uc::override_limit(
        &state.usecases,
        &principal.env.environment,
        &name,
        limit,
        None,
    )
    .await?;
    Ok(Json(queue_item(&q)))
}

/// Ends a queue's override: the limit its task code declares holds again.
#[utoipa::path(post, path = "/api/v1/queues/{queueParam}/concurrency/reset", operation_id = "resetQueueConcurrencyLimit", tag = "queues", security(("secretKey" = [])),
    params(("queueParam" = String, Path)),
    request_body = ResetQueueRequest,
    responses((status = 200, body = QueueItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn reset_queue_limit(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(param): Path<String>,
    body: Bytes,
) -> ApiResult<Json<QueueItem>> {
    small_body(&body)?;
    let r: ResetQueueRequest = parse_json_body(&body)?;
    let name = queue_name(r.kind.as_deref(), &param)?;
    let q = uc::reset_limit(&state.usecases, &principal.env.environment, &name).await?;
    Ok(Json(queue_item(&q)))
}
