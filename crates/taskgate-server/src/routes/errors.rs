//! The errors API: failed runs grouped by the fingerprint of their error (the grouping and
//! the lifecycle are `taskgate_core::errors`'), listed by how often they failed in a window,
//! and triaged (resolve, ignore, unresolve) with the acting user recorded. Wire-compatible
//! with upstream's `/api/v1/errors` routes; the history at `…/activity` is taskgate's.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use taskgate_api::errors::*;
use taskgate_api::ErrorBody;
use taskgate_core::errors::group_id;
use taskgate_core::scope::Resource;
use taskgate_store::{
    ErrorGroupDetail as StoredDetail, ListedErrorGroup, PageDirection, TriageAction, TriageActor,
};

use taskgate_usecases::errors::{
    apply_triage, cursor_of, fingerprint_of, ignore_action, list_query, query_error,
    resolve_action, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};

use super::runs::trigger::parse_json_body;
use crate::auth::extract::ApiAuth;
use crate::auth::{EnvCredential, EnvPrincipal};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

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

/// Who is triaging: the user a JWT acts for (`act.sub`) and the credential, for the history.
fn actor(p: &EnvPrincipal) -> TriageActor {
    let env = Some(p.env.environment.id.clone());
    match &p.credential {
        EnvCredential::SecretKey { grace: None } => TriageActor {
            user_id: None,
            credential_kind: "secret_key".into(),
            credential_id: env.map(String::from),
        },
        EnvCredential::SecretKey { grace: Some(g) } => TriageActor {
            user_id: None,
            credential_kind: "grace_key".into(),
            credential_id: Some(g.revoked_key_id().to_string()),
        },
        EnvCredential::PublicJwt(grant) => TriageActor {
            user_id: grant.actor.as_ref().map(|a| a.user_id.clone()),
            credential_kind: "public_jwt".into(),
            credential_id: env.map(String::from),
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
        &state.usecases,
        &principal.env.environment.id,
        &fp,
        action,
        &actor(principal),
    )
    .await?;
    Ok(Json(detail(updated, now)))
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
