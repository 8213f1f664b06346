//! The many-run feeds, in the same shape protocol as the one-run feed:
//! `GET /realtime/v1/runs?tags=` (`runs.subscribeToRunsWithTag`) and
//! `GET /realtime/v1/batches/{batchId}` (`runs.subscribeToBatch`).
//!
//! A snapshot answers every matching run as an `insert` (at most [`MAX_RUNS`], newest first)
//! and mints a handle of its own; the tags feed pins its `createdAt` window in the handle, so
//! the set never drifts. A live poll answers only the runs that are new to the handle or
//! changed since it last saw them: each handle's working set (run → version) is kept on the
//! node for a few minutes. A node that does not have it (another node answered the last poll,
//! or it was evicted) answers every run updated since the offset's time instead, which the
//! client merges as the same rows again.
//!
//! A waiting poll holds one watch on its environment's run changes: any run of the
//! environment changing wakes it to read its set once (after a short pause that gathers a
//! burst of changes into one read); nothing reads the database on a timer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use taskgate_api::realtime::ShapeMessage;
use taskgate_api::ErrorBody;
use taskgate_core::ids::{BatchFriendlyId, EnvironmentId};
use taskgate_core::scope::Resource;
use taskgate_store::{Run, RunFilter, RunPage};

use super::shape::{change, jittered, respond, schema_without, skipped_columns, FeedParams};
use super::working_sets::Seen;
use crate::auth::extract::ApiAuth;
use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::state::AppState;
use taskgate_engine::watchers::env_runs_key;

/// Runs a feed holds at most (the newest).
pub const MAX_RUNS: u32 = 1000;
/// The tags feed's window when the client names none, and the longest it may name.
const DEFAULT_WINDOW: chrono::Duration = chrono::Duration::hours(24);
const MAX_WINDOW: chrono::Duration = chrono::Duration::days(7);
/// Tags one feed may name, and their longest.
const MAX_TAGS: usize = 10;
const MAX_TAG_LEN: usize = 128;
/// How long a woken poll waits for more changes before reading its set.
const GATHER: Duration = Duration::from_millis(50);
/// Every answer's offset carries a fresh sequence number after the time.
static SEQ: AtomicU64 = AtomicU64::new(1);

/// Which runs a feed follows.
#[derive(Debug, Clone, PartialEq)]
enum SetFilter {
    /// Runs with any of `tags` (all runs when none) created at or after `since`.
    Tags {
        tags: Vec<String>,
        since: DateTime<Utc>,
    },
    Batch(String),
}

impl SetFilter {
    fn run_filter(&self) -> RunFilter {
        match self {
            SetFilter::Tags { tags, since } => RunFilter {
                tags: tags.clone(),
                created_from: Some(*since),
                ..RunFilter::default()
            },
            SetFilter::Batch(id) => RunFilter {
                batch_id: Some(id.clone().into()),
                ..RunFilter::default()
            },
        }
    }
}

fn unique_suffix() -> String {
    let id = taskgate_core::ids::new_id();
    format!("{}_{}", SEQ.fetch_add(1, Ordering::Relaxed), &id[..8])
}

/// The time (ms) a tags feed's handle pins, when it is one of ours.
fn pinned_since(handle: &str) -> Option<i64> {
    let mut parts = handle.split('_');
    (parts.next() == Some("runs"))
        .then(|| parts.next()?.parse().ok())
        .flatten()
}

/// The start of a tags feed's window: the handle's when it has one (never older than the
/// longest window), else `createdAt` ago (a duration such as `1h` or `7d`; 24 h when absent
/// or unreadable, as upstream), floored to the minute.
fn window_start(params: &FeedParams, now: DateTime<Utc>) -> DateTime<Utc> {
    let floor = now - MAX_WINDOW;
    let start = match params.handle().and_then(pinned_since) {
        Some(ms) => DateTime::from_timestamp_millis(ms).unwrap_or(floor),
        None => {
            let window = params
                .created_at
                .as_deref()
                .and_then(taskgate_core::duration::parse_duration_ms)
                .filter(|ms| *ms > 0)
                .map_or(DEFAULT_WINDOW, chrono::Duration::milliseconds);
            now.checked_sub_signed(window).unwrap_or(floor)
        }
    };
    let start = start.max(floor);
    let ms = start.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(60_000)).unwrap_or(start)
}

/// The tags a request names, checked.
fn requested_tags(params: &FeedParams) -> ApiResult<Vec<String>> {
    let tags: Vec<String> = params
        .tags
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "tags may name at most {MAX_TAGS} tags"
        )));
    }
    if tags.iter().any(|t| t.len() > MAX_TAG_LEN) {
        return Err(ApiError::bad_request(format!(
            "each tag may be at most {MAX_TAG_LEN} characters"
        )));
    }
    Ok(tags)
}

/// What a set answers next: the runs to send, what the handle has then seen, and the
/// latest update among them.
struct Diff<'a> {
    changes: Vec<(&'a Run, &'static str)>,
    seen: Seen,
    latest_ms: i64,
}

/// The runs of `runs` new to `seen` (inserts) or changed since (updates); without a working
/// set, every run updated at or after `floor_ms` (updates).
fn diff<'a>(runs: &'a [Run], seen: Option<&Seen>, floor_ms: i64) -> Diff<'a> {
    let mut out = Diff {
        changes: Vec::new(),
        seen: Seen::with_capacity(runs.len()),
        latest_ms: floor_ms,
    };
    // Oldest first, so a client sees runs arrive in the order they were created.
    for run in runs.iter().rev() {
        let updated = run.updated_at.timestamp_millis();
        out.latest_ms = out.latest_ms.max(updated);
        out.seen.insert(run.id.to_string(), run.version);
        let op = match seen {
            Some(seen) => match seen.get(run.id.as_str()) {
                None => Some("insert"),
                Some(v) if run.version > *v => Some("update"),
                Some(_) => None,
            },
            None => (updated >= floor_ms).then_some("update"),
        };
        if let Some(op) = op {
            out.changes.push((run, op));
        }
    }
    out
}

impl Diff<'_> {
    /// The answer's messages: each change, then up-to-date (the client applies a batch only
    /// when it ends so).
    fn body(&self, skip: &HashSet<String>) -> Vec<ShapeMessage> {
        let mut body: Vec<ShapeMessage> = self
            .changes
            .iter()
            .map(|(r, op)| change(r, op, skip))
            .collect();
        body.push(ShapeMessage::up_to_date());
        body
    }
}

fn offset_at(ms: i64) -> String {
    format!("{ms}_{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

async fn read_set(
    state: &AppState,
    env_id: &EnvironmentId,
    filter: &SetFilter,
) -> ApiResult<Vec<Run>> {
    let page = RunPage {
        limit: MAX_RUNS,
        after: None,
        before: None,
    };
    let runs = state
        .store
        .list_runs(env_id, &filter.run_filter(), &page)
        .await?;
    if runs.len() == MAX_RUNS as usize {
        tracing::debug!(
            environment.id = %env_id,
            "a many-run feed holds its most runs ({MAX_RUNS}); older runs are left out"
        );
    }
    Ok(runs)
}

/// Answers one request of a feed over `filter`, under `handle`.
async fn answer(
    state: &AppState,
    principal: &EnvPrincipal,
    params: &FeedParams,
    filter: SetFilter,
    handle: &str,
) -> ApiResult<Response> {
    let skip = skipped_columns(params, principal);
    let env_id = &principal.env.environment.id;
    let key = format!("{env_id}:{handle}");
    if !params.is_live() {
        let runs = read_set(state, env_id, &filter).await?;
        let d = diff(&runs, Some(&Seen::new()), 0);
        let body = d.body(&skip);
        state.run_sets.put(&key, d.seen);
        let schema = schema_without(&skip);
        return respond(body, handle, &offset_at(d.latest_ms), Some(&schema), false);
    }
    let client_offset = params.offset();
    let floor_ms: i64 = client_offset
        .split('_')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Watch before reading, so a change between the read and the wait is not missed.
    let mut watch = state.engine.watchers().watch(env_runs_key(env_id));
    let deadline = tokio::time::Instant::now() + jittered(state.config.engine.realtime_poll);
    let shutdown = state.engine.shutdown().wait();
    tokio::pin!(shutdown);
    let mut seen = state.run_sets.get(&key);
    loop {
        let runs = read_set(state, env_id, &filter).await?;
        let d = diff(&runs, seen.as_ref(), floor_ms);
        if !d.changes.is_empty() {
            let body = d.body(&skip);
            state.run_sets.put(&key, d.seen);
            return respond(body, handle, &offset_at(d.latest_ms), None, true);
        }
        if seen.is_none() {
            state.run_sets.put(&key, d.seen.clone());
            seen = Some(d.seen);
        }
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, watch.rx.changed()) => match changed {
                Ok(Ok(())) => {
                    tokio::time::sleep(GATHER).await;
                    watch.rx.borrow_and_update();
                }
                _ => break,
            },
            // The server is stopping: answer "up to date" now; the client polls again.
            _ = &mut shutdown => break,
        }
    }
    respond(
        vec![ShapeMessage::up_to_date()],
        handle,
        client_offset,
        None,
        true,
    )
}

/// Subscribes to the environment's runs with any of some tags (all runs without `tags`),
/// created within a window (`createdAt`, 24 hours by default, 7 days at most).
#[utoipa::path(get, path = "/realtime/v1/runs", tag = "realtime", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("tags" = Option<String>, Query, description = "Comma-separated; runs with any of them"),
           ("createdAt" = Option<String>, Query, description = "How far back, e.g. 1h or 7d"),
           ("offset" = Option<String>, Query), ("handle" = Option<String>, Query),
           ("live" = Option<bool>, Query), ("cursor" = Option<String>, Query), ("skipColumns" = Option<String>, Query)),
    responses((status = 200, body = Vec<ShapeMessage>, description = "Electric shape messages"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn subscribe_to_runs(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    ApiQuery(params): ApiQuery<FeedParams>,
) -> ApiResult<Response> {
    let tags = requested_tags(&params)?;
    // Every tag named must be readable: a token for one tag does not open another's runs.
    if tags.is_empty() {
        principal.authorize("read", &[Resource::new("runs"), Resource::new("tags")])?;
    }
    for tag in &tags {
        principal.authorize(
            "read",
            &[
                Resource::new("runs"),
                Resource::new("tags"),
                Resource::with_id("tags", tag),
            ],
        )?;
    }
    let since = window_start(&params, state.now());
    let handle = match params.handle() {
        Some(h) if params.is_live() || pinned_since(h).is_some() => h.to_string(),
        _ => format!("runs_{}_{}", since.timestamp_millis(), unique_suffix()),
    };
    answer(
        &state,
        &principal,
        &params,
        SetFilter::Tags { tags, since },
        &handle,
    )
    .await
}

/// Subscribes to a batch's runs.
#[utoipa::path(get, path = "/realtime/v1/batches/{batchId}", tag = "realtime", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("batchId" = String, Path), ("offset" = Option<String>, Query), ("handle" = Option<String>, Query),
           ("live" = Option<bool>, Query), ("cursor" = Option<String>, Query), ("skipColumns" = Option<String>, Query)),
    responses((status = 200, body = Vec<ShapeMessage>, description = "Electric shape messages"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn subscribe_to_batch(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(batch_id): Path<BatchFriendlyId>,
    ApiQuery(params): ApiQuery<FeedParams>,
) -> ApiResult<Response> {
    let batch = state
        .store
        .get_batch(&principal.env.environment.id, &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Batch not found").should_retry(false))?;
    principal.authorize(
        "read",
        &[
            Resource::with_id("batch", &batch.friendly_id),
            Resource::new("runs"),
        ],
    )?;
    // Per connection, never the batch's own id: working sets are kept by handle.
    let handle = match params.handle() {
        Some(h) => h.to_string(),
        None => format!("batch_{}", unique_suffix()),
    };
    answer(
        &state,
        &principal,
        &params,
        SetFilter::Batch(batch.friendly_id.to_string()),
        &handle,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use taskgate_core::engine::RunState;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn run(id: &str, version: i64, updated: &str) -> Run {
        let t = at(updated);
        let mut r = Run::triggered(
            &"env".into(),
            "t",
            &RunState::triggered(t, None, None, false),
            t,
        );
        r.id = id.into();
        r.version = version;
        r
    }

    fn params(query: &[(&str, &str)]) -> FeedParams {
        let q: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        serde_json::from_value(serde_json::to_value(q).unwrap_or_default())
            .unwrap_or_else(|_| FeedParams::default())
    }

    #[test]
    fn a_working_set_sends_new_runs_as_inserts_and_changed_ones_as_updates() {
        // Newest first, as the store lists them.
        let runs = [
            run("c", 1, "2026-11-28T10:00:03Z"),
            run("b", 3, "2026-11-28T10:00:02Z"),
            run("a", 1, "2026-11-28T10:00:01Z"),
        ];
        let seen: Seen = [("a".to_string(), 1), ("b".to_string(), 2)].into();
        let d = diff(&runs, Some(&seen), 0);
        let ops: Vec<(&str, &str)> = d
            .changes
            .iter()
            .map(|(r, op)| (r.id.as_str(), *op))
            .collect();
        assert_eq!(
            ops,
            [("b", "update"), ("c", "insert")],
            "oldest first; a unchanged"
        );
        assert_eq!(d.seen.len(), 3);
        assert_eq!(d.latest_ms, at("2026-11-28T10:00:03Z").timestamp_millis());
    }

    #[test]
    fn without_a_working_set_runs_updated_since_the_offset_are_sent() {
        let runs = [
            run("b", 2, "2026-11-28T10:00:02Z"),
            run("a", 1, "2026-11-28T10:00:01Z"),
        ];
        let floor = at("2026-11-28T10:00:02Z").timestamp_millis();
        let d = diff(&runs, None, floor);
        let ops: Vec<(&str, &str)> = d
            .changes
            .iter()
            .map(|(r, op)| (r.id.as_str(), *op))
            .collect();
        assert_eq!(
            ops,
            [("b", "update")],
            "the run at the offset's instant is sent again"
        );
    }

    #[test]
    fn the_window_is_pinned_by_the_handle_and_never_wider_than_seven_days() {
        let now = at("2026-11-28T10:00:30Z");
        assert_eq!(window_start(&params(&[]), now), at("2026-11-27T10:00:00Z"));
        assert_eq!(
            window_start(&params(&[("createdAt", "1h")]), now),
            at("2026-11-28T09:00:00Z"),
            "floored to the minute"
        );
        assert_eq!(
            window_start(&params(&[("createdAt", "90d")]), now),
            at("2026-11-21T10:00:00Z")
        );
        assert_eq!(
            window_start(&params(&[("createdAt", "soon")]), now),
            at("2026-11-27T10:00:00Z"),
            "unreadable: the default"
        );
        let pinned = at("2026-11-28T08:00:00Z").timestamp_millis();
        let handle = format!("runs_{pinned}_1_abcdefgh");
        assert_eq!(
            window_start(&params(&[("handle", &handle), ("createdAt", "1m")]), now),
            at("2026-11-28T08:00:00Z")
        );
        let forged = format!("runs_{}_1_x", at("2020-01-01T00:00:00Z").timestamp_millis());
        assert_eq!(
            window_start(&params(&[("handle", &forged)]), now),
            at("2026-11-21T10:00:00Z"),
            "a forged handle cannot widen the window"
        );
    }
}
