//! Schedules: the SDK's `schedules.*` (`/api/v1/schedules…`, the environment's secret key)
//! and `GET /api/v1/timezones` (no credential): adapters over
//! [`taskgate_usecases::schedules`].

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use taskgate_api::schedules::*;
use taskgate_api::ErrorBody;
use taskgate_core::ids::ScheduleFriendlyId;
use taskgate_core::schedule::{timezones, CronSchedule};
use taskgate_store::{Environment, Schedule};
use taskgate_usecases::schedules::{self as uc, Definition, MAX_PER_PAGE};

use super::runs::trigger::parse_json_body;
use crate::auth::extract::SecretKeyAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Default page size of a listing.
const DEFAULT_PER_PAGE: u32 = 10;
/// Largest body of a create or update.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// A schedule as the SDK's `ScheduleObject` reads it.
pub fn schedule_object(s: &Schedule, env: &Environment) -> ScheduleObject {
    let description = CronSchedule::parse(&s.expression, &s.timezone)
        .map(|c| c.describe())
        .unwrap_or_default();
    ScheduleObject {
        id: s.friendly_id.to_string(),
        kind: s.kind.as_str().to_string(),
        task: s.task.clone(),
        active: s.active,
        deduplication_key: Some(s.deduplication_key.clone()),
        external_id: s.external_id.clone(),
        generator: ScheduleGenerator {
            kind: "CRON".into(),
            expression: s.expression.clone(),
            description,
        },
        timezone: s.timezone.clone(),
        window: s.window.clone(),
        next_run: s.next_at,
        next_run_effective_at: s.due_at.or(s.next_at),
        environments: vec![ScheduleEnvironment {
            id: env.id.to_string(),
            kind: env.env_type.as_str().to_string(),
            user_name: None,
        }],
        last_run: s.last_at,
        last_run_id: s.last_run.as_ref().map(ToString::to_string),
    }
}

fn request(body: &[u8], create: bool) -> ApiResult<(Option<String>, Definition)> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("A schedule's request body may be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    let r: ScheduleRequest = parse_json_body(body)?;
    if create && r.deduplication_key.is_none() {
        return Err(ApiError::bad_request(
            "Validation error: deduplicationKey is required",
        ));
    }
    Ok((
        r.deduplication_key,
        Definition {
            task: r.task,
            cron: r.cron,
            timezone: r.timezone,
            window: r.window,
            external_id: r.external_id,
        },
    ))
}

/// Creates an imperative schedule, or updates the environment's one with the same
/// `deduplicationKey`.
#[utoipa::path(post, path = "/api/v1/schedules", operation_id = "createSchedule", tag = "schedules", security(("secretKey" = [])),
    request_body = ScheduleRequest,
    responses((status = 200, body = ScheduleObject), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_schedule(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    body: Bytes,
) -> ApiResult<Json<ScheduleObject>> {
    let (key, def) = request(&body, true)?;
    let env = &principal.env.environment;
    let (s, _) = uc::upsert(
        &state.usecases,
        env,
        key.as_deref().unwrap_or_default(),
        def,
    )
    .await?;
    Ok(Json(schedule_object(&s, env)))
}

/// The environment's schedules, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/schedules", operation_id = "listSchedules", tag = "schedules", security(("secretKey" = [])),
    params(("page" = Option<u64>, Query, description = "from 1"), ("perPage" = Option<u32>, Query, description = "1 to 100; 10 by default")),
    responses((status = 200, body = ListSchedulesResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_schedules(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<ListSchedulesResponse>> {
    let Query(params) = query_params(query)?;
    let page = match params.get("page") {
        None => 1,
        Some(p) => p
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| ApiError::bad_request("page must be an integer from 1"))?,
    };
    let per_page = match params.get("perPage") {
        None => DEFAULT_PER_PAGE,
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=MAX_PER_PAGE).contains(p))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "perPage must be an integer from 1 to {MAX_PER_PAGE}"
                ))
            })?,
    };
    let env = &principal.env.environment;
    let (list, count) = uc::list(&state.usecases, &env.id, page, per_page).await?;
    Ok(Json(ListSchedulesResponse {
        data: list.iter().map(|s| schedule_object(s, env)).collect(),
        pagination: SchedulePagination {
            current_page: page,
            total_pages: count.div_ceil(u64::from(per_page)),
            count,
        },
    }))
}

/// A schedule of the environment.
#[utoipa::path(get, path = "/api/v1/schedules/{scheduleId}", operation_id = "retrieveSchedule", tag = "schedules", security(("secretKey" = [])),
    params(("scheduleId" = String, Path, description = "`sched_…`")),
    responses((status = 200, body = ScheduleObject), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_schedule(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleObject>> {
    let env = &principal.env.environment;
    let s = uc::get(&state.usecases, &env.id, &ScheduleFriendlyId::from(id)).await?;
    Ok(Json(schedule_object(&s, env)))
}

/// Updates an imperative schedule (a declarative one changes with its task's code: 422).
#[utoipa::path(put, path = "/api/v1/schedules/{scheduleId}", operation_id = "updateSchedule", tag = "schedules", security(("secretKey" = [])),
    params(("scheduleId" = String, Path)),
    request_body = ScheduleRequest,
    responses((status = 200, body = ScheduleObject), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_schedule(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ScheduleObject>> {
    let (_, def) = request(&body, false)?;
    let env = &principal.env.environment;
    let s = uc::update(&state.usecases, env, &ScheduleFriendlyId::from(id), def).await?;
    Ok(Json(schedule_object(&s, env)))
}

/// Deletes an imperative schedule (a declarative one goes with its task's `cron`: 422).
#[utoipa::path(delete, path = "/api/v1/schedules/{scheduleId}", operation_id = "deleteSchedule", tag = "schedules", security(("secretKey" = [])),
    params(("scheduleId" = String, Path)),
    responses((status = 200, body = DeletedSchedule), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<DeletedSchedule>> {
    let id = ScheduleFriendlyId::from(id);
    uc::delete(&state.usecases, &principal.env.environment.id, &id).await?;
    Ok(Json(DeletedSchedule { id: id.to_string() }))
}

async fn switch(
    state: &AppState,
    env: &Environment,
    id: String,
    active: bool,
) -> ApiResult<Json<ScheduleObject>> {
    let s = uc::set_active(
        &state.usecases,
        &env.id,
        &ScheduleFriendlyId::from(id),
        active,
    )
    .await?;
    Ok(Json(schedule_object(&s, env)))
}

/// Activates a schedule: its next fire is its first time from now.
#[utoipa::path(post, path = "/api/v1/schedules/{scheduleId}/activate", operation_id = "activateSchedule", tag = "schedules", security(("secretKey" = [])),
    params(("scheduleId" = String, Path)),
    responses((status = 200, body = ScheduleObject), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn activate_schedule(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleObject>> {
    switch(&state, &principal.env.environment, id, true).await
}

/// Deactivates a schedule: it fires no more until activated.
#[utoipa::path(post, path = "/api/v1/schedules/{scheduleId}/deactivate", operation_id = "deactivateSchedule", tag = "schedules", security(("secretKey" = [])),
    params(("scheduleId" = String, Path)),
    responses((status = 200, body = ScheduleObject), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deactivate_schedule(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleObject>> {
    switch(&state, &principal.env.environment, id, false).await
}

/// Every IANA time zone a schedule may use; no credential needed (the SDK sends none).
#[utoipa::path(get, path = "/api/v1/timezones", operation_id = "listTimezones", tag = "schedules", security(()),
    params(("excludeUtc" = Option<bool>, Query, description = "leave out UTC")),
    responses((status = 200, body = TimezonesResponse)))]
pub async fn list_timezones(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<TimezonesResponse>> {
    let Query(params) = query_params(query)?;
    let exclude_utc = params.get("excludeUtc").is_some_and(|v| v == "true");
    Ok(Json(TimezonesResponse {
        timezones: timezones(exclude_utc)
            .into_iter()
            .map(str::to_string)
            .collect(),
    }))
}

fn query_params(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Query<HashMap<String, String>>> {
    query.map_err(|e| ApiError::bad_request("Query Error").with("details", e.body_text()))
}
