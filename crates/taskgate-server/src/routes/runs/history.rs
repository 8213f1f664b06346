//! What happened inside a run (taskgate's additions to the runs API): its attempts, and the
//! log records its worker exported.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use taskgate_api::engine::*;
use taskgate_api::ErrorBody;
use taskgate_core::ids::RunFriendlyId;

use super::readable_run;
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::state::AppState;

/// Log records per page unless asked otherwise, and at most.
const DEFAULT_LOG_PAGE: u32 = 100;
const MAX_LOG_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsParams {
    /// Records after this position (a previous page's `next`).
    pub after: Option<String>,
    /// 1 to 1000, 100 by default.
    pub limit: Option<u32>,
}

/// A log page position: `<time in ns>-<seq>`.
fn parse_cursor(s: &str) -> Option<(chrono::DateTime<chrono::Utc>, i64)> {
    let (ns, seq) = s.split_once('-')?;
    let time = chrono::DateTime::from_timestamp_nanos(ns.parse().ok()?);
    Some((time, seq.parse().ok()?))
}

/// A run's attempts, oldest first.
#[utoipa::path(get, path = "/api/v1/runs/{runId}/attempts", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path)),
    responses((status = 200, body = RunAttemptsResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_run_attempts(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<RunFriendlyId>,
) -> ApiResult<Json<RunAttemptsResponse>> {
    let run = readable_run(&state, &principal, &run_id).await?;
    let data = state
        .store
        .list_attempts(&run)
        .await?
        .into_iter()
        .map(|a| RunAttemptResponse {
            number: a.number,
            status: a.status.as_str().into(),
            started_at: a.started_at,
            completed_at: a.completed_at,
            error: a.error.and_then(|e| serde_json::to_value(e).ok()),
        })
        .collect();
    Ok(Json(RunAttemptsResponse { data }))
}

/// A run's log records in time order.
#[utoipa::path(get, path = "/api/v1/runs/{runId}/logs", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path), LogsParams),
    responses((status = 200, body = RunLogsResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_run_logs(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<RunFriendlyId>,
    ApiQuery(params): ApiQuery<LogsParams>,
) -> ApiResult<Json<RunLogsResponse>> {
    let limit = params.limit.unwrap_or(DEFAULT_LOG_PAGE);
    if !(1..=MAX_LOG_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be from 1 to {MAX_LOG_PAGE}"
        )));
    }
    let after = match params.after.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(parse_cursor(cursor).ok_or_else(|| {
            ApiError::bad_request("after must be a cursor from a previous page's next")
        })?),
    };
    let run = readable_run(&state, &principal, &run_id).await?;
    let logs = state.store.list_run_logs(&run.id, after, limit).await?;
    let next = (logs.len() == limit as usize)
        .then(|| {
            logs.last().map(|l| {
                format!(
                    "{}-{}",
                    l.time.timestamp_nanos_opt().unwrap_or(i64::MAX),
                    l.seq
                )
            })
        })
        .flatten();
    let data = logs
        .into_iter()
        .map(|l| RunLogEntry {
            seq: l.seq,
            time: l.time,
            severity: l.severity,
            message: l.message,
            attempt_number: l.attempt_number,
            attributes: l.attributes.and_then(|a| serde_json::from_str(&a).ok()),
        })
        .collect();
    Ok(Json(RunLogsResponse { data, next }))
}
