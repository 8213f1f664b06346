//! `…/env/{env}/runs` and `…/runs/{run}`: an environment's runs with their filters in the URL,
//! one run with what it waits for, the runs it triggered and the one that triggered it, its
//! attempts, payload, output or error and log records, and the cancel and replay actions
//! (through the engine, as the API's).

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use taskgate_core::duration::parse_jose_relative;
use taskgate_core::engine::waitpoint::{token_status, WaitpointKind};
use taskgate_core::engine::ExecutionStatus;
use taskgate_core::env::EnvType;
use taskgate_core::errors::sample;
use taskgate_core::run::{status_flags, stored_statuses_for_filter, RunCursor};
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_engine::packets::decode_packet;
use taskgate_engine::runs::ReplayOverrides;
use taskgate_server::state::AppState;
use taskgate_store::{Run, RunFilter, RunPage, RunWait};

use crate::envs::{self, PageEnv};
use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, encode, redirect_with_flash, take_flash, SignedIn};

/// Runs per page.
const PAGE_SIZE: u32 = 25;
/// The statuses the filter offers, as the API names them.
const STATUSES: [&str; 13] = [
    "QUEUED",
    "DELAYED",
    "DEQUEUED",
    "EXECUTING",
    "WAITING",
    "PENDING_VERSION",
    "COMPLETED",
    "FAILED",
    "CANCELED",
    "CRASHED",
    "SYSTEM_FAILURE",
    "EXPIRED",
    "TIMED_OUT",
];
/// Periods the filter offers; the default is the first.
const PERIODS: [(&str, &str); 5] = [
    ("7d", "7 days"),
    ("1h", "1 hour"),
    ("1d", "1 day"),
    ("30d", "30 days"),
    ("365d", "1 year"),
];

/// The filters of the list, as they stand in the URL.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    status: Option<String>,
    task: Option<String>,
    tag: Option<String>,
    version: Option<String>,
    period: Option<String>,
    batch: Option<String>,
    after: Option<String>,
}

impl RunsQuery {
    /// The query string of these filters, without the page position.
    fn filters(&self) -> String {
        [
            ("status", &self.status),
            ("task", &self.task),
            ("tag", &self.tag),
            ("version", &self.version),
            ("period", &self.period),
            ("batch", &self.batch),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The store's filter for the URL's, or a message naming the bad one.
fn run_filter(q: &RunsQuery, now: DateTime<Utc>) -> PageResult<RunFilter> {
    let mut filter = RunFilter::default();
    if let Some(s) = nonempty(&q.status) {
        let stored = stored_statuses_for_filter(s)
            .ok_or_else(|| PageError::bad_request(format!("There is no run status {s:?}.")))?;
        filter.statuses.extend(stored.iter().copied());
    }
    if let Some(t) = nonempty(&q.task) {
        filter.task_identifiers.push(t.to_string());
    }
    if let Some(t) = nonempty(&q.tag) {
        filter.tags.push(t.to_string());
    }
    if let Some(v) = nonempty(&q.version) {
        filter.versions.push(v.to_string());
    }
    if let Some(b) = nonempty(&q.batch) {
        filter.batch_id = Some(b.into());
    }
    let period = nonempty(&q.period).unwrap_or(PERIODS[0].0);
    let secs = parse_jose_relative(period)
        .filter(|s| *s > 0 && *s <= 400 * 86_400)
        .ok_or_else(|| {
            PageError::bad_request(
                "The period must be a duration such as 1h, 7d or 30d, at most a year.",
            )
        })?;
    filter.created_from = Some(now - Duration::seconds(secs));
    Ok(filter)
}

/// A panel saying that nothing executes this environment's runs right now: no promoted
/// version in a deployed environment, no `trigger.dev dev` connected to a development one
/// (its runs wait in the queue).
async fn idle_notice(state: &AppState, pe: &PageEnv) -> PageResult<Markup> {
    let env_id = &pe.auth.environment.id;
    if pe.auth.environment.env_type == EnvType::Development {
        if state.engine.dev_connected(env_id).await? {
            return Ok(html! {});
        }
        return Ok(html! {
            p.panel.flash role="status" {
                "No " code { "trigger.dev dev" } " is connected to this environment: its runs wait in the queue until one is (in your task project: "
                code { "TRIGGER_API_URL=" (taskgate_server::public_url::configured_url(&state.config)) " npx trigger.dev@4.8.3 dev" } ")."
            }
        });
    }
    if state.store.current_deployment(env_id).await?.is_some() {
        return Ok(html! {});
    }
    Ok(html! {
        p.panel.flash role="status" {
            "No version is deployed here: this environment's runs wait in the queue until "
            code { "trigger.dev deploy" } " deploys one and it is promoted ("
            a href=(format!("{}/deployments", pe.base())) { "Deployments" } ")."
        }
    })
}

/// `GET …/runs`.
pub async fn runs_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Query(q): Query<RunsQuery>,
) -> PageResult {
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "read", &[Resource::new("runs")])?;
    let filter = run_filter(&q, state.now())?;
    let after = match nonempty(&q.after) {
        None => None,
        Some(c) => Some(
            RunCursor::decode(c)
                .map(|c| (from_millis(c.created_at_ms), c.run_id.into()))
                .ok_or_else(|| {
                    PageError::bad_request(
                        "That page position is not valid: start again from the first page.",
                    )
                })?,
        ),
    };
    let env_id = &pe.auth.environment.id;
    let runs = state
        .store
        .list_runs(
            env_id,
            &filter,
            &RunPage {
                limit: PAGE_SIZE + 1,
                after,
                before: None,
            },
        )
        .await?;
    let more = runs.len() > PAGE_SIZE as usize;
    let runs = &runs[..runs.len().min(PAGE_SIZE as usize)];
    // The task filter offers the tasks the environment's worker registered.
    let tasks: Vec<String> = match state.store.current_worker(env_id).await? {
        Some((_, tasks)) => tasks.into_iter().map(|t| t.slug).collect(),
        None => Vec::new(),
    };
    let filters = q.filters();
    let next = more.then(|| {
        let last = &runs[runs.len() - 1];
        let cursor = RunCursor {
            created_at_ms: last.created_at.timestamp_millis(),
            run_id: last.id.to_string(),
        };
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("?{filters}{sep}after={}", cursor.encode())
    });
    let (message, clear) = take_flash(&state, &headers);
    let base = pe.base();
    let undeployed = idle_notice(&state, &pe).await?;
    let body = html! {
        (pe.nav("runs"))
        h1 { "Runs" }
        (undeployed)
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        form.panel.row-actions method="get" aria-label="Filter runs" {
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "Any" }
                    @for s in STATUSES { option value=(s) selected[nonempty(&q.status) == Some(s)] { (s) } }
                }
            }
            div {
                label for="task" { "Task" }
                select #task name="task" {
                    option value="" { "Any" }
                    @for t in &tasks { option value=(t) selected[nonempty(&q.task) == Some(t.as_str())] { (t) } }
                    @if let Some(t) = nonempty(&q.task) {
                        @if !tasks.iter().any(|x| x == t) { option value=(t) selected { (t) } }
                    }
                }
            }
            div {
                label for="tag" { "Tag" }
                input #tag name="tag" value=(q.tag.as_deref().unwrap_or("")) size="12";
            }
            div {
                label for="version" { "Version" }
                input #version name="version" value=(q.version.as_deref().unwrap_or("")) size="12" placeholder="20261127.1";
            }
            div {
                label for="batch" { "Batch" }
                input #batch name="batch" value=(q.batch.as_deref().unwrap_or("")) size="14" placeholder="batch_…";
            }
            div {
                label for="period" { "Created in the last" }
                select #period name="period" {
                    @for (p, label) in PERIODS { option value=(p) selected[nonempty(&q.period).unwrap_or(PERIODS[0].0) == p] { (label) } }
                }
            }
            div { label { "\u{a0}" } button type="submit" { "Apply" } }
        }
        @if runs.is_empty() {
            p.panel { "No runs match these filters." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Run" }
                    th scope="col" { "Task" }
                    th scope="col" { "Status" }
                    th scope="col" { "Version" }
                    th scope="col" { "Created" }
                    th scope="col" { "Duration" }
                    th scope="col" { "Tags" }
                } }
                tbody {
                    @for r in runs {
                        tr {
                            th scope="row" { a href=(format!("{base}/runs/{}", r.friendly_id)) { code { (r.friendly_id) } } }
                            td { (r.task_identifier) }
                            td { (status_badge(r)) }
                            td { (r.task_version.as_deref().unwrap_or("–")) }
                            td { (time(r.created_at)) }
                            td { (duration(r)) }
                            td { (r.tags.join(", ")) }
                        }
                    }
                }
            }
        }
        @if let Some(href) = &next {
            p { a href=(href) { "Older runs →" } }
        }
    };
    Ok(clearing_flash(
        send(page("Runs", Some(&who.viewer()), body)),
        clear,
    ))
}

fn status_badge(r: &Run) -> Markup {
    let api = r.status.api_status();
    let flags = status_flags(api);
    let class = if flags.is_success {
        "badge ok"
    } else if flags.is_failed {
        "badge danger"
    } else {
        "badge warn"
    };
    html! {
        span class=(class) { (api) }
        // Clients see an attempt that waits as executing; say what it does.
        @if r.state().is_waiting() { " " span.muted { "waiting" } }
    }
}

fn duration(r: &Run) -> String {
    match (r.started_at, r.completed_at) {
        (Some(s), Some(c)) => {
            let ms = (c - s).num_milliseconds().max(0);
            if ms < 1000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", ms as f64 / 1000.0)
            }
        }
        (Some(_), None) => "running".into(),
        _ => "–".into(),
    }
}

/// `TypeError: message`, as the errors list derives them.
fn error_line(error: &Value) -> Markup {
    let s = sample(error);
    html! { strong { (s.error_type) } ": " (s.error_message) }
}

/// A packet shown as pretty JSON (or text), or a dash. An offloaded one (128 KiB or more) is
/// named by its path rather than loaded into the page.
fn packet(data: Option<&str>, kind: Option<&str>) -> Markup {
    if let (Some(path), Some(taskgate_engine::packets::STORE_TYPE)) = (data, kind) {
        return html! { p.muted { "Offloaded packet (128 KiB or more), stored at " code { (path) } } };
    }
    match decode_packet(data, kind) {
        Some(Value::String(s)) => html! { pre tabindex="0" { code { (s) } } },
        Some(v) => {
            html! { pre tabindex="0" { code { (serde_json::to_string_pretty(&v).unwrap_or_default()) } } }
        }
        None => html! { p.muted { "None" } },
    }
}

/// A run of this environment the user may read.
async fn readable(state: &AppState, who: &SignedIn, pe: &PageEnv, run_id: &str) -> PageResult<Run> {
    let run = state
        .store
        .get_run(&pe.auth.environment.id, &run_id.into())
        .await?
        .ok_or_else(PageError::not_found)?;
    pe.require(
        state,
        who,
        "read",
        &[Resource::with_id("runs", &run.friendly_id)],
    )?;
    Ok(run)
}

/// Children listed on a run's page.
const MAX_CHILDREN_SHOWN: u32 = 50;

/// What a run waits for: each waitpoint, what completes it, and since when.
fn waits_table(pe: &PageEnv, waits: &[RunWait]) -> Markup {
    if waits.is_empty() {
        return html! { p.muted { "Nothing: it is about to continue." } };
    }
    html! {
        table {
            thead { tr {
                th scope="col" { "Waiting for" }
                th scope="col" { "Status" }
                th scope="col" { "Since" }
            } }
            tbody {
                @for w in waits {
                    tr {
                        td { (wait_subject(pe, w)) }
                        td { (token_status(w.waitpoint.status, w.waitpoint.output_is_error)) }
                        td { (time(w.since)) }
                    }
                }
            }
        }
    }
}

/// What completes one waitpoint, linked where it is a page of its own.
fn wait_subject(pe: &PageEnv, w: &RunWait) -> Markup {
    let wp = &w.waitpoint;
    match wp.kind {
        WaitpointKind::Run => html! {
            "Run "
            @if let Some(r) = &wp.completed_by_run {
                a href=(format!("{}/runs/{}", pe.base(), r)) { code { (r) } }
            }
            @if let (Some(b), Some(i)) = (&w.batch, w.batch_index) { " (item " (i) " of " code { (b) } ")" }
        },
        WaitpointKind::Batch => html! {
            "Every run of batch "
            @if let Some(b) = &wp.completed_by_batch {
                a href=(format!("{}/runs?batch={}", pe.base(), encode(b))) { code { (b) } }
            }
        },
        WaitpointKind::DateTime => html! {
            "A time: "
            @if let Some(at) = wp.completed_after { (time(at)) }
        },
        WaitpointKind::Manual => html! {
            "Token "
            a href=(format!("{}/waitpoints#{}", pe.base(), wp.friendly_id)) { code { (wp.friendly_id) } }
            @if let Some(at) = wp.timeout_at { ", times out " (time(at)) }
        },
    }
}

/// `GET …/runs/{run}`.
pub async fn run_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, run_id)): Path<(String, String, String, String)>,
) -> PageResult {
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let run = readable(&state, &who, &pe, &run_id).await?;
    let attempts = state.store.list_attempts(&run).await?;
    let waits = state.store.run_waits(&run.id).await?;
    let env_id = &pe.auth.environment.id;
    let parent = match &run.parent_run_id {
        Some(id) => state.store.run_by_id(env_id, id).await?,
        None => None,
    };
    let children = state
        .store
        .child_runs(env_id, &run.id, false, MAX_CHILDREN_SHOWN + 1)
        .await?;
    let logs = state.store.list_run_logs(&run.id, None, 500).await?;
    // Finished in any way (timed out and expired included): nothing left to cancel.
    let may_cancel = !run.state().is_finished()
        && pe.can(
            &state,
            &who,
            "write",
            &[Resource::with_id("runs", &run.friendly_id)],
        );
    let may_replay = pe.can(
        &state,
        &who,
        "write",
        &[Resource::with_id("runs", &run.friendly_id)],
    ) && pe.can(
        &state,
        &who,
        "trigger",
        &[Resource::with_id("tasks", &run.task_identifier)],
    );
    let error: Option<Value> = run
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok());
    let (message, clear) = take_flash(&state, &headers);
    let here = format!("{}/runs/{}", pe.base(), run.friendly_id);
    let undeployed = if run.execution_status == ExecutionStatus::Queued {
        idle_notice(&state, &pe).await?
    } else {
        html! {}
    };
    let body = html! {
        (pe.nav("runs"))
        h1 { "Run " code { (run.friendly_id) } }
        (undeployed)
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        div.panel {
            dl {
                dt { "Task" } dd { (run.task_identifier) }
                dt { "Status" } dd { (status_badge(&run)) }
                dt { "Version" } dd { (run.task_version.as_deref().unwrap_or("not yet dequeued")) }
                dt { "Created" } dd { (time(run.created_at)) }
                @if let Some(at) = run.started_at { dt { "Started" } dd { (time(at)) } }
                @if let Some(at) = run.completed_at { dt { "Finished" } dd { (time(at)) } }
                dt { "Duration" } dd { (duration(&run)) }
                @if !run.tags.is_empty() { dt { "Tags" } dd { (run.tags.join(", ")) } }
                @if run.is_replay { dt { "Replay" } dd { "yes" } }
                @if let Some(p) = &parent {
                    dt { "Triggered by" }
                    dd {
                        a href=(format!("{}/runs/{}", pe.base(), p.friendly_id)) { code { (p.friendly_id) } }
                        " (" (p.task_identifier) ")"
                        @if run.resume_parent_on_completion { ", which waits for it" }
                    }
                }
                @if let Some(b) = &run.batch_id {
                    dt { "Batch" }
                    dd { a href=(format!("{}/runs?batch={}", pe.base(), encode(b))) { code { (b) } } }
                }
            }
            div.row-actions {
                @if may_cancel {
                    form method="post" action=(format!("{here}/cancel")) {
                        input type="hidden" name="_csrf" value=(who.csrf());
                        button.danger type="submit" { "Cancel run" }
                    }
                }
                @if may_replay {
                    form method="post" action=(format!("{here}/replay")) {
                        input type="hidden" name="_csrf" value=(who.csrf());
                        button type="submit" { "Replay run" }
                    }
                }
            }
        }
        @if run.state().is_waiting() || !waits.is_empty() {
            h2 { "Waiting for" }
            (waits_table(&pe, &waits))
        }
        @if !children.is_empty() {
            h2 { "Runs it triggered" }
            table {
                thead { tr {
                    th scope="col" { "Run" }
                    th scope="col" { "Task" }
                    th scope="col" { "Status" }
                    th scope="col" { "Created" }
                } }
                tbody {
                    @for c in children.iter().take(MAX_CHILDREN_SHOWN as usize) {
                        tr {
                            th scope="row" { a href=(format!("{}/runs/{}", pe.base(), c.friendly_id)) { code { (c.friendly_id) } } }
                            td { (c.task_identifier) }
                            td { (status_badge(c)) }
                            td { (time(c.created_at)) }
                        }
                    }
                }
            }
            @if children.len() > MAX_CHILDREN_SHOWN as usize {
                p.muted { "Showing the first " (MAX_CHILDREN_SHOWN) "." }
            }
        }
        h2 { "Attempts" }
        @if attempts.is_empty() {
            p.muted { "No attempt has started." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Attempt" }
                    th scope="col" { "Outcome" }
                    th scope="col" { "Started" }
                    th scope="col" { "Finished" }
                    th scope="col" { "Error" }
                } }
                tbody {
                    @for a in &attempts {
                        tr {
                            th scope="row" { (a.number) }
                            td { (a.status.as_str()) }
                            td { (time(a.started_at)) }
                            td { @if let Some(at) = a.completed_at { (time(at)) } @else { "–" } }
                            td { @if let Some(e) = &a.error { (error_line(&serde_json::to_value(e).unwrap_or_default())) } }
                        }
                    }
                }
            }
        }
        h2 { "Payload" }
        (packet(run.payload.as_deref(), Some(run.payload_type.as_str())))
        @if let Some(e) = &error {
            h2 { "Error" }
            div.panel role="note" {
                p { (error_line(e)) }
                @let stack = sample(e).stack;
                @if !stack.is_empty() { pre tabindex="0" { code { (stack) } } }
            }
        } @else {
            h2 { "Output" }
            (packet(run.output.as_deref(), run.output_type.as_deref()))
        }
        h2 { "Logs" }
        @if logs.is_empty() {
            p.muted { "No log records." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Time" }
                    th scope="col" { "Level" }
                    th scope="col" { "Attempt" }
                    th scope="col" { "Message" }
                } }
                tbody {
                    @for l in &logs {
                        tr {
                            td { (time(l.time)) }
                            td { (l.severity) }
                            td { (l.attempt_number.map(|n| n.to_string()).unwrap_or_default()) }
                            td { code { (l.message) } }
                        }
                    }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page(
            &format!("Run {}", run.friendly_id),
            Some(&who.viewer()),
            body,
        )),
        clear,
    ))
}

/// `POST …/runs/{run}/cancel`.
pub async fn cancel_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, run_id)): Path<(String, String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let run = readable(&state, &who, &pe, &run_id).await?;
    pe.require(
        &state,
        &who,
        "write",
        &[Resource::with_id("runs", &run.friendly_id)],
    )?;
    let here = format!("{}/runs/{}", pe.base(), run.friendly_id);
    if run.state().is_finished() {
        let message = format!(
            "This run had already ended ({}): there was nothing to cancel.",
            run.status.api_status()
        );
        return Ok(redirect_with_flash(&state, &headers, &here, &message));
    }
    state
        .engine
        .cancel(&pe.auth.environment.id, &run.friendly_id)
        .await?;
    Ok(redirect_with_flash(
        &state,
        &headers,
        &here,
        "Run canceled.",
    ))
}

/// `POST …/runs/{run}/replay`: a new run with the same payload; goes to it.
pub async fn replay_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, run_id)): Path<(String, String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let old = readable(&state, &who, &pe, &run_id).await?;
    pe.require(
        &state,
        &who,
        "write",
        &[Resource::with_id("runs", &old.friendly_id)],
    )?;
    pe.require(
        &state,
        &who,
        "trigger",
        &[Resource::with_id("tasks", &old.task_identifier)],
    )?;
    let new = state
        .engine
        .replay(&pe.auth.environment, &old, ReplayOverrides::default())
        .await?;
    let message = format!("Replayed {} as this run.", old.friendly_id);
    let location = format!("{}/runs/{}", pe.base(), new.friendly_id);
    Ok(redirect_with_flash(&state, &headers, &location, &message))
}
