//! `GET /api/v1/runs`: filters, a 7-day default window and
//! cursors the SDK's iterator follows.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use taskgate_api::runs::{ListRunsResponse, RunPagination};
use taskgate_api::ErrorBody;
use taskgate_core::duration::parse_jose_relative;
use taskgate_core::ids::RunId;
use taskgate_core::run::{stored_statuses_for_filter, RunCursor};
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_store::{RunFilter, RunPage};

use super::present;
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u32 = 25;
const MAX_PAGE_SIZE: u32 = 100;
/// Without a time filter a listing covers the last 7 days (upstream).
const DEFAULT_WINDOW: Duration = Duration::days(7);
const MACHINES: &[&str] = &[
    "micro",
    "small-1x",
    "small-2x",
    "medium-1x",
    "medium-2x",
    "large-1x",
    "large-2x",
];

pub(crate) fn query_error(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("Query Error").with(
        "details",
        json!([{ "code": "custom", "message": message.into(), "path": [param] }]),
    )
}

pub(crate) fn list(params: &HashMap<String, String>, key: &str) -> Vec<String> {
    params
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn millis(
    params: &HashMap<String, String>,
    key: &str,
) -> ApiResult<Option<DateTime<Utc>>> {
    params
        .get(key)
        .map(|v| {
            v.parse::<i64>()
                .map(from_millis)
                .map_err(|_| query_error(key, "must be epoch milliseconds"))
        })
        .transpose()
}

fn cursor(
    params: &HashMap<String, String>,
    key: &str,
) -> ApiResult<Option<(DateTime<Utc>, RunId)>> {
    match params.get(key) {
        None => Ok(None),
        Some(c) => RunCursor::decode(c)
            .map(|c| Some((from_millis(c.created_at_ms), c.run_id.into())))
            .ok_or_else(|| ApiError::bad_request("Invalid cursor").with("code", "invalid_cursor")),
    }
}

/// The filter a query asks for, validated.
fn filter(params: &HashMap<String, String>, now: DateTime<Utc>) -> ApiResult<RunFilter> {
    let mut statuses = Vec::new();
    let mut bad = Vec::new();
    for s in list(params, "filter[status]") {
        match stored_statuses_for_filter(&s) {
            Some(stored) => statuses.extend(stored.iter().copied()),
            None => bad.push(s),
        }
    }
    if !bad.is_empty() {
        return Err(query_error(
            "filter[status]",
            format!("Invalid status values: {}", bad.join(", ")),
        ));
    }
    let is_test = match params.get("filter[isTest]").map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(query_error("filter[isTest]", "must be true or false")),
    };
    let machines = list(params, "filter[machine]");
    if let Some(m) = machines.iter().find(|m| !MACHINES.contains(&m.as_str())) {
        return Err(query_error(
            "filter[machine]",
            format!("Invalid machine preset: {m}"),
        ));
    }
    let from = millis(params, "filter[createdAt][from]")?;
    let to = millis(params, "filter[createdAt][to]")?.map(|t| t.min(now));
    let period = match params.get("filter[createdAt][period]") {
        Some(p) => Some(
            parse_jose_relative(p)
                .filter(|s| *s > 0)
                .map(Duration::seconds)
                .ok_or_else(|| {
                    query_error("filter[createdAt][period]", "must be a duration like 7d")
                })?,
        ),
        None => None,
    };
    // A period wins over from/to; with neither, the default window.
    let created_from = match (period, from, to) {
        (Some(p), _, _) => Some(now - p),
        (None, Some(f), _) => Some(f),
        (None, None, Some(_)) => None,
        (None, None, None) => Some(now - DEFAULT_WINDOW),
    };
    Ok(RunFilter {
        statuses,
        task_identifiers: list(params, "filter[taskIdentifier]"),
        versions: list(params, "filter[version]"),
        tags: list(params, "filter[tag]"),
        batch_id: params.get("filter[batch]").cloned().map(Into::into),
        is_test,
        queues: list(params, "filter[queue]")
            .into_iter()
            .map(|q| q.strip_prefix("task/").map(str::to_string).unwrap_or(q))
            .collect(),
        machines,
        created_from,
        created_to: if period.is_some() { None } else { to },
        error_fingerprint: match params.get("filter[error]") {
            None => None,
            Some(id) => Some(taskgate_core::errors::parse_group_id(id).ok_or_else(|| {
                query_error(
                    "filter[error]",
                    "must be an error id: error_ followed by 16 lowercase hex characters",
                )
            })?),
        },
    })
}

/// Runs of the caller's environment, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("filter[status]" = Option<String>, Query), ("filter[taskIdentifier]" = Option<String>, Query), ("filter[version]" = Option<String>, Query, description = "worker versions, comma-separated"), ("filter[tag]" = Option<String>, Query),
           ("filter[batch]" = Option<String>, Query), ("filter[isTest]" = Option<bool>, Query), ("filter[createdAt][from]" = Option<i64>, Query),
           ("filter[createdAt][to]" = Option<i64>, Query), ("filter[createdAt][period]" = Option<String>, Query), ("filter[queue]" = Option<String>, Query),
           ("filter[machine]" = Option<String>, Query), ("filter[error]" = Option<String>, Query, description = "runs counted under this error group (error_<fingerprint>)"), ("page[size]" = Option<u32>, Query), ("page[after]" = Option<String>, Query), ("page[before]" = Option<String>, Query)),
    responses((status = 200, body = ListRunsResponse),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_runs(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ListRunsResponse>> {
    let Query(params) =
        query.map_err(|e| ApiError::bad_request("Query Error").with("details", e.body_text()))?;
    let now = state.now();
    let filter = filter(&params, now)?;
    // Without a task filter: read on runs or tasks; with one: every listed task, or broadly.
    let broad = principal.can("read", &[Resource::new("runs"), Resource::new("tasks")]);
    let tasks_ok = !filter.task_identifiers.is_empty()
        && filter
            .task_identifiers
            .iter()
            .all(|t| principal.can("read", &[Resource::with_id("tasks", t)]));
    if !(broad || tasks_ok) {
        return Err(ApiError::scope_denied());
    }
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
    let page = RunPage {
        limit: size + 1,
        after,
        before,
    };
    let mut runs = state
        .store
        .list_runs(&principal.env.environment.id, &filter, &page)
        .await?;
    let more = runs.len() > size as usize;
    if more {
        if backwards {
            runs.remove(0);
        } else {
            runs.truncate(size as usize);
        }
    }
    let at = |r: &taskgate_store::Run| {
        RunCursor {
            created_at_ms: r.created_at.timestamp_millis(),
            run_id: r.id.to_string(),
        }
        .encode()
    };
    let (next, previous) = if backwards {
        (true, more)
    } else {
        (more, had_position)
    };
    let pagination = RunPagination {
        next: runs.last().filter(|_| next).map(at),
        previous: runs.first().filter(|_| previous).map(at),
    };
    let env = &principal.env.environment;
    let data = runs
        .iter()
        .map(|r| present::list_item(r, &env.id, &env.slug))
        .collect();
    Ok(Json(ListRunsResponse { data, pagination }))
}
