//! The errors API: failed runs grouped by the fingerprint of their error (the grouping and
//! the lifecycle are `taskgate_core::errors`'), listed by how often they failed in a window,
//! and triaged (resolve, ignore, unresolve) with the acting user recorded. Wire-compatible
//! with upstream's `/api/v1/errors` routes; the history at `…/activity` is taskgate's.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;
use taskgate_api::errors::*;
use taskgate_api::ErrorBody;
use taskgate_core::duration::parse_duration_ms;
use taskgate_core::errors::{group_id, parse_group_id, GroupStatus, Ignore};
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_store::{
    ErrorCursor, ErrorGroupDetail as StoredDetail, ErrorListQuery, ListedErrorGroup, PageDirection,
    TriageAction, TriageActor,
};

use super::runs::trigger::parse_json_body;
use crate::auth::extract::ApiAuth;
use crate::auth::{EnvCredential, EnvPrincipal};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u32 = 25;
const MAX_PAGE_SIZE: u32 = 100;
/// A list without a period or dates covers the last day (upstream).
const DEFAULT_WINDOW: Duration = Duration::days(1);
const MAX_SEARCH: usize = 1000;
const MAX_REASON: usize = 1000;
const MAX_VERSION: usize = 255;
/// Longest ignore: ten years, in milliseconds.
const MAX_IGNORE_MS: f64 = 10.0 * 365.0 * 86_400_000.0;
const MAX_RATE: f64 = 1_000_000_000.0;
const MAX_TOTAL: f64 = 1e12;

/// Upstream's query failure: `{"error":"Query Error","details":[…]}`.
fn query_error(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("Query Error").with(
        "details",
        json!([{ "code": "custom", "message": message.into(), "path": [param] }]),
    )
}

fn validation(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Validation error: {message}"))
}

fn comma_list(params: &HashMap<String, String>, key: &str) -> Vec<String> {
    params
        .get(key)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A date as upstream's `CoercedDate` takes it: epoch milliseconds, or a date string (RFC
/// 3339, or a bare `YYYY-MM-DD` at midnight UTC).
fn date(params: &HashMap<String, String>, key: &str) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(raw) = params.get(key) else {
        return Ok(None);
    };
    let v = raw.trim();
    let parsed = v
        .parse::<i64>()
        .ok()
        .filter(|ms| ms.unsigned_abs() < 8_640_000_000_000_000)
        .map(from_millis)
        .or_else(|| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        });
    parsed
        .map(Some)
        .ok_or_else(|| query_error(key, "Invalid date"))
}

/// `base64(JSON)` of a list position. Upstream writes standard base64; both alphabets are
/// read back.
fn encode_cursor(c: &ErrorCursor) -> String {
    let json = serde_json::to_vec(c).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// An undecodable cursor is no cursor (upstream).
fn decode_cursor(s: &str) -> Option<ErrorCursor> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    if s.len() > 2048 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(s))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The list position just past `r`.
pub fn cursor_of(r: &ListedErrorGroup) -> String {
    encode_cursor(&ErrorCursor {
        occurrence_count: r.count,
        fingerprint: r.group.fingerprint.clone(),
        task_identifier: r.group.task_identifier.clone(),
    })
}

/// The list query, validated as upstream does, from the API's query parameters
/// (`filter[status]`, `page[after]`, …). The dashboard's list goes through here too.
pub fn list_query(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
    retention: Duration,
) -> ApiResult<ErrorListQuery> {
    let size = match params.get("page[size]") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| query_error("page[size]", "must be an integer from 1 to 100"))?,
    };
    let mut statuses = Vec::new();
    let mut bad = Vec::new();
    for s in comma_list(params, "filter[status]") {
        match GroupStatus::from_api(&s) {
            Some(st) if !statuses.contains(&st) => statuses.push(st),
            Some(_) => {}
            None => bad.push(s),
        }
    }
    if !bad.is_empty() {
        return Err(query_error(
            "filter[status]",
            format!(
                "Invalid status values: {}. Allowed: unresolved, resolved, ignored.",
                bad.join(", ")
            ),
        ));
    }
    let search = match params.get("filter[search]") {
        Some(s) if s.chars().count() > MAX_SEARCH => {
            return Err(query_error(
                "filter[search]",
                format!("must be at most {MAX_SEARCH} characters"),
            ))
        }
        Some(s) => Some(s.trim().to_lowercase()).filter(|s| !s.is_empty()),
        None => None,
    };
    // A period wins (an unparseable one is the default day, and still ignores the dates).
    let (from, to) = match params.get("filter[period]") {
        Some(p) => {
            let period = parse_duration_ms(p)
                .filter(|ms| *ms > 0)
                .map(Duration::milliseconds)
                .unwrap_or(DEFAULT_WINDOW);
            (now - period.min(retention), now)
        }
        None => {
            let from = date(params, "filter[from]")?;
            let to = date(params, "filter[to]")?;
            match (from, to) {
                (Some(f), Some(t)) => (f, t),
                (Some(f), None) => (f, now),
                (None, Some(t)) => (now - DEFAULT_WINDOW, t),
                (None, None) => (now - DEFAULT_WINDOW, now),
            }
        }
    };
    // Nothing older than the buckets' retention can be counted.
    let from = from.max(now - retention);
    let cursor = match (params.get("page[before]"), params.get("page[after]")) {
        (Some(b), _) => decode_cursor(b).map(|c| (c, PageDirection::Before)),
        (None, Some(a)) => decode_cursor(a).map(|c| (c, PageDirection::After)),
        (None, None) => None,
    };
    Ok(ErrorListQuery {
        task_identifiers: comma_list(params, "filter[taskIdentifier]"),
        versions: comma_list(params, "filter[version]"),
        statuses,
        search,
        from,
        to,
        size,
        cursor,
        now,
    })
}

fn list_item(r: &ListedErrorGroup, now: DateTime<Utc>) -> ErrorGroupListItem {
    let triage = r.group.triage.as_of(now);
    ErrorGroupListItem {
        id: group_id(&r.group.fingerprint),
        fingerprint: r.group.fingerprint.clone(),
        task_identifier: r.group.task_identifier.clone(),
        error_type: r.group.error_type.clone(),
        error_message: r.group.error_message.clone(),
        status: triage.status.as_api().into(),
        count: r.count,
        first_seen: r.fingerprint_first_seen,
        last_seen: r.fingerprint_last_seen,
        resolved_at: triage.resolved_at,
        ignored_until: triage.ignored_until,
    }
}

fn detail(d: StoredDetail, now: DateTime<Utc>) -> ErrorGroupDetail {
    let t = d.group.triage.as_of(now);
    ErrorGroupDetail {
        id: group_id(&d.group.fingerprint),
        fingerprint: d.group.fingerprint,
        task_identifier: d.group.task_identifier,
        error_type: d.group.error_type,
        error_message: d.group.error_message,
        count: d.group.occurrence_count,
        first_seen: d.fingerprint_first_seen,
        last_seen: d.fingerprint_last_seen,
        affected_versions: d.affected_versions,
        status: t.status.as_api().into(),
        resolved_at: t.resolved_at,
        resolved_in_version: t.resolved_in_version,
        resolved_by: t.resolved_by,
        ignored_at: t.ignored_at,
        ignored_until: t.ignored_until,
        ignored_reason: t.ignored_reason,
        ignored_by_user_id: t.ignored_by_user_id,
        ignored_until_occurrence_rate: t.ignored_until_occurrence_rate,
        ignored_until_total_occurrences: t.ignored_until_total_occurrences,
    }
}

/// The fingerprint a path's error id names; malformed ids are 400 (upstream: 500).
pub fn fingerprint_of(error_id: &str) -> ApiResult<String> {
    parse_group_id(error_id).ok_or_else(|| {
        ApiError::bad_request("Params Error").with(
            "details",
            json!([{ "code": "custom", "path": ["errorId"],
                     "message": "must be error_ followed by 16 lowercase hex characters, or the bare fingerprint" }]),
        )
    })
}

/// Who is triaging: the user a JWT acts for (`act.sub`) and the credential, for the history.
fn actor(p: &EnvPrincipal) -> TriageActor {
    let env = Some(p.env.environment.id.clone());
    match &p.credential {
        EnvCredential::SecretKey { grace: None } => TriageActor {
            user_id: None,
            credential_kind: "secret_key".into(),
            credential_id: env,
        },
        EnvCredential::SecretKey { grace: Some(g) } => TriageActor {
            user_id: None,
            credential_kind: "grace_key".into(),
            credential_id: Some(g.revoked_key_id().to_string()),
        },
        EnvCredential::PublicJwt(grant) => TriageActor {
            user_id: grant.actor.as_ref().map(|a| a.user_id.clone()),
            credential_kind: "public_jwt".into(),
            credential_id: env,
        },
    }
}

/// Error groups of the caller's environment with occurrences in the window, most frequent
/// first.
#[utoipa::path(get, path = "/api/v1/errors", tag = "errors", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("page[size]" = Option<u32>, Query, description = "1 to 100, default 25"),
           ("page[after]" = Option<String>, Query, description = "pagination.next of the previous page"),
           ("page[before]" = Option<String>, Query, description = "pagination.previous; wins over page[after]"),
           ("filter[taskIdentifier]" = Option<String>, Query, description = "comma-separated"),
           ("filter[version]" = Option<String>, Query, description = "comma-separated; counts only these versions' occurrences"),
           ("filter[status]" = Option<String>, Query, description = "comma-separated: unresolved, resolved, ignored"),
           ("filter[search]" = Option<String>, Query, description = "substring of the type or message, case-insensitive"),
           ("filter[period]" = Option<String>, Query, description = "e.g. 7d; wins over from/to"),
           ("filter[from]" = Option<String>, Query, description = "epoch ms or ISO date"),
           ("filter[to]" = Option<String>, Query, description = "epoch ms or ISO date")),
    responses((status = 200, body = ListErrorsResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_errors(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ListErrorsResponse>> {
    let Query(params) =
        query.map_err(|e| ApiError::bad_request("Query Error").with("details", e.body_text()))?;
    let now = state.now();
    let q = list_query(&params, now, state.config.engine.error_retention)?;
    principal.authorize("read", &[Resource::new("errors")])?;
    let page = state
        .store
        .list_error_groups(&principal.env.environment.id, &q)
        .await?;
    let backward = matches!(q.cursor, Some((_, PageDirection::Before)));
    let (first, last) = (page.rows.first(), page.rows.last());
    let pagination = if backward {
        ErrorPagination {
            previous: first.filter(|_| page.has_more).map(cursor_of),
            next: last.map(cursor_of),
        }
    } else {
        ErrorPagination {
            next: last.filter(|_| page.has_more).map(cursor_of),
            previous: first.filter(|_| q.cursor.is_some()).map(cursor_of),
        }
    };
    Ok(Json(ListErrorsResponse {
        data: page.rows.iter().map(|r| list_item(r, now)).collect(),
        pagination,
    }))
}

/// One error group, with its affected versions and triage state.
#[utoipa::path(get, path = "/api/v1/errors/{errorId}", tag = "errors", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("errorId" = String, Path, description = "error_<fingerprint>, or the bare fingerprint")),
    responses((status = 200, body = ErrorGroupDetail), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_error(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(error_id): Path<String>,
) -> ApiResult<Json<ErrorGroupDetail>> {
    let fp = fingerprint_of(&error_id)?;
    // Looked up before the scope check, as upstream's loaders do.
    let found = state
        .store
        .get_error_group(&principal.env.environment.id, &fp)
        .await?
        .ok_or_else(|| ApiError::not_found("Not found").should_retry(false))?;
    principal.authorize("read", &[Resource::with_id("errors", &error_id)])?;
    Ok(Json(detail(found, state.now())))
}

/// The group's history, newest first: every resolve, ignore and unresolve with who did it,
/// and every reopening with why (taskgate's addition).
#[utoipa::path(get, path = "/api/v1/errors/{errorId}/activity", tag = "errors", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("errorId" = String, Path), ("page[size]" = Option<u32>, Query, description = "1 to 100, default 25"),
           ("page[after]" = Option<String>, Query, description = "pagination.next of the previous page")),
    responses((status = 200, body = ErrorActivityResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn error_activity(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(error_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ErrorActivityResponse>> {
    let Query(params) =
        query.map_err(|e| ApiError::bad_request("Query Error").with("details", e.body_text()))?;
    let fp = fingerprint_of(&error_id)?;
    let size = match params.get("page[size]") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| query_error("page[size]", "must be an integer from 1 to 100"))?,
    };
    let before =
        match params.get("page[after]") {
            None => None,
            Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                query_error("page[after]", "must be a cursor from pagination.next")
            })?),
        };
    let env = &principal.env.environment.id;
    if state.store.get_error_group(env, &fp).await?.is_none() {
        return Err(ApiError::not_found("Not found").should_retry(false));
    }
    principal.authorize("read", &[Resource::with_id("errors", &error_id)])?;
    let mut entries = state
        .store
        .list_error_activity(env, &fp, before, size + 1)
        .await?;
    let more = entries.len() > size as usize;
    entries.truncate(size as usize);
    let next = entries.last().filter(|_| more).map(|e| e.seq.to_string());
    Ok(Json(ErrorActivityResponse {
        data: entries
            .into_iter()
            .map(|e| ErrorActivityItem {
                action: e.action,
                task_identifier: e.task_identifier,
                occurred_at: e.occurred_at,
                actor_user_id: e.actor_user_id,
                credential_kind: e.credential_kind,
                credential_id: e.credential_id,
                reason: e.reason,
                detail: e.detail,
            })
            .collect(),
        pagination: ErrorPagination {
            next,
            previous: None,
        },
    }))
}

/// Applies a triage action after upstream's checks: the scope (`write` on this error), then
/// the group's existence.
async fn triage(
    state: &AppState,
    principal: &EnvPrincipal,
    error_id: &str,
    action: TriageAction,
) -> ApiResult<Json<ErrorGroupDetail>> {
    let fp = fingerprint_of(error_id)?;
    principal.authorize("write", &[Resource::with_id("errors", error_id)])?;
    let now = state.now();
    let updated = apply_triage(
        state,
        &principal.env.environment.id,
        &fp,
        action,
        &actor(principal),
    )
    .await?;
    Ok(Json(detail(updated, now)))
}

/// Applies a triage action to `fingerprint`'s groups in `env_id` as `actor` (the caller has
/// authorized); 404 when there is no such group. The dashboard triages through here.
pub async fn apply_triage(
    state: &AppState,
    env_id: &str,
    fingerprint: &str,
    action: TriageAction,
    actor: &TriageActor,
) -> ApiResult<StoredDetail> {
    let name = action.action();
    let updated = state
        .store
        .triage_error_group(env_id, fingerprint, action, actor, state.now())
        .await?
        .ok_or_else(|| ApiError::not_found("Resource not found"))?;
    tracing::info!(env.id = %env_id, error.fingerprint = %fingerprint, action = name, "error group triaged");
    Ok(updated)
}

/// Marks the group resolved; a later occurrence (from `resolvedInVersion` on, when given)
/// reopens it at once.
#[utoipa::path(post, path = "/api/v1/errors/{errorId}/resolve", tag = "errors", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("errorId" = String, Path)), request_body = ResolveErrorRequest,
    responses((status = 200, body = ErrorGroupDetail), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn resolve_error(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(error_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ErrorGroupDetail>> {
    let body: ResolveErrorRequest = parse_json_body(&body)?;
    let action = resolve_action(body.resolved_in_version)?;
    triage(&state, &principal, &error_id, action).await
}

/// A resolve, optionally in a version (1 to 255 characters, no control characters).
pub fn resolve_action(in_version: Option<String>) -> ApiResult<TriageAction> {
    if let Some(v) = &in_version {
        if v.is_empty() || v.chars().count() > MAX_VERSION || v.chars().any(char::is_control) {
            return Err(validation(format!(
                "resolvedInVersion must be 1 to {MAX_VERSION} characters at \"resolvedInVersion\""
            )));
        }
    }
    Ok(TriageAction::Resolve { in_version })
}

/// A positive whole number no larger than `max`, or the validation error naming `field`.
fn positive_int(field: &str, v: Option<f64>, max: f64) -> ApiResult<Option<i64>> {
    match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n.fract() == 0.0 && n > 0.0 && n <= max => Ok(Some(n as i64)),
        Some(_) => Err(validation(format!(
            "{field} must be a positive integer no larger than {max} at \"{field}\""
        ))),
    }
}

/// Ignores the group, indefinitely or until a duration passes, an occurrence rate is
/// exceeded, or a number of new occurrences arrives.
#[utoipa::path(post, path = "/api/v1/errors/{errorId}/ignore", tag = "errors", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("errorId" = String, Path)), request_body = IgnoreErrorRequest,
    responses((status = 200, body = ErrorGroupDetail), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ignore_error(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(error_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ErrorGroupDetail>> {
    let body: IgnoreErrorRequest = parse_json_body(&body)?;
    let ignore = ignore_action(body)?;
    triage(&state, &principal, &error_id, ignore).await
}

/// An ignore, validated: a duration (ms, at most ten years), an occurrence rate (per minute),
/// a total of new occurrences, each positive, and a reason of at most 1,000 characters.
pub fn ignore_action(body: IgnoreErrorRequest) -> ApiResult<TriageAction> {
    let occurrence_rate = match body.occurrence_rate {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => Some(r),
        Some(_) => {
            return Err(validation(format!(
                "occurrenceRate must be a positive number no larger than {MAX_RATE} at \"occurrenceRate\""
            )))
        }
    };
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(validation(format!(
            "reason must be at most {MAX_REASON} characters at \"reason\""
        )));
    }
    Ok(TriageAction::Ignore(Ignore {
        duration_ms: positive_int("duration", body.duration, MAX_IGNORE_MS)?,
        occurrence_rate,
        total_occurrences: positive_int("totalOccurrences", body.total_occurrences, MAX_TOTAL)?,
        reason: body.reason,
    }))
}

/// Marks the group unresolved, clearing its resolve or ignore. Any body is ignored.
#[utoipa::path(post, path = "/api/v1/errors/{errorId}/unresolve", tag = "errors", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("errorId" = String, Path)),
    responses((status = 200, body = ErrorGroupDetail), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unresolve_error(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(error_id): Path<String>,
) -> ApiResult<Json<ErrorGroupDetail>> {
    triage(&state, &principal, &error_id, TriageAction::Unresolve).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_in_either_alphabet() {
        let c = ErrorCursor {
            occurrence_count: 7,
            fingerprint: "131c37334a407e47".into(),
            task_identifier: "my/task+x".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c.clone()));
        let standard = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&c).unwrap_or_default());
        assert_eq!(decode_cursor(&standard), Some(c));
        assert_eq!(decode_cursor("not a cursor"), None);
    }

    #[test]
    fn a_period_wins_and_a_bad_one_is_a_day() {
        let now = from_millis(1_800_000_000_000);
        let retention = Duration::days(30);
        let params = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let q = list_query(
            &params(&[("filter[period]", "7d"), ("filter[from]", "0")]),
            now,
            retention,
        )
        .unwrap_or_else(|_| unreachable!());
        assert_eq!((q.from, q.to), (now - Duration::days(7), now));
        let q = list_query(&params(&[("filter[period]", "soon")]), now, retention)
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(q.from, now - Duration::days(1));
        // Older than the retention is clamped.
        let q = list_query(&params(&[("filter[period]", "90d")]), now, retention)
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(q.from, now - retention);
        let q = list_query(
            &params(&[
                ("filter[from]", "2026-11-01"),
                ("filter[to]", "1800000000000"),
            ]),
            now,
            retention,
        )
        .unwrap_or_else(|_| unreachable!());
        assert_eq!(q.to, now);
        assert!(list_query(&params(&[("filter[from]", "yesterday")]), now, retention).is_err());
        assert!(list_query(&params(&[("page[size]", "0")]), now, retention).is_err());
        assert!(list_query(&params(&[("filter[status]", "open")]), now, retention).is_err());
    }
}
