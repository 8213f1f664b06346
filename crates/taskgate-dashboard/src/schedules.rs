//! `…/env/{env}/schedules`: an environment's schedules (declarative ones from task code,
//! imperative ones from the API), each with its cron in words, its time zone, its next times
//! and its last run, and `…/schedules/{id}/activate|deactivate`, the switch (through the use
//! case `schedules.activate()` and `schedules.deactivate()` share).

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use maud::html;
use serde::Deserialize;
use taskgate_core::env::EnvType;
use taskgate_core::ids::ScheduleFriendlyId;
use taskgate_core::schedule::CronSchedule;
use taskgate_core::scope::Resource;
use taskgate_server::state::AppState;
use taskgate_store::Schedule;
use taskgate_usecases::schedules as uc;

use crate::envs::{self, PageEnv};
use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, redirect_with_flash, take_flash, SignedIn};

/// Schedules per page.
const PAGE_SIZE: u32 = 50;
/// Upcoming times shown per schedule.
const SHOWN_TIMES: usize = 3;

#[derive(Debug, Default, Deserialize)]
pub struct SchedulesQuery {
    page: Option<u64>,
}

/// The schedule's cron in words, and its next times from its next fire.
fn times(s: &Schedule) -> (String, Vec<chrono::DateTime<chrono::Utc>>) {
    match CronSchedule::parse(&s.expression, &s.timezone) {
        Ok(cron) => {
            let mut next: Vec<_> = s.next_at.into_iter().collect();
            if let Some(first) = s.next_at {
                next.extend(cron.upcoming(first, SHOWN_TIMES - 1));
            }
            (cron.describe(), next)
        }
        Err(_) => (String::new(), Vec::new()),
    }
}

/// `GET …/schedules`.
pub async fn schedules_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Query(q): Query<SchedulesQuery>,
) -> PageResult {
    let pe: PageEnv = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "read", &[Resource::new("tasks")])?;
    let page_no = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let (list, total) =
        uc::list(&state.usecases, &pe.auth.environment.id, page_no, PAGE_SIZE).await?;
    let may_switch = pe.can(&state, &who, "write", &[Resource::new("tasks")]);
    let development = pe.auth.environment.env_type == EnvType::Development;
    let base = pe.base();
    let pages = total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    let (message, clear) = take_flash(&state, &headers);
    let body = html! {
        (pe.nav("schedules"))
        h1 { "Schedules" }
        p.muted {
            "Declarative schedules come from a task's " code { "cron" } " (" code { "schedules.task" } ") in the version this environment runs; imperative ones from "
            code { "schedules.create()" } ". Times are nominal: a window spreads a fire after its time. A schedule that missed times while no server ran fires once, for the first time it missed."
        }
        @if development {
            p.panel { "Development schedules fire only while " code { "trigger.dev dev" } " is connected; a fire with no CLI connected is skipped." }
        }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        @if list.is_empty() {
            p.panel { "No schedules here yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Task" }
                    th scope="col" { "Cron" }
                    th scope="col" { "Time zone" }
                    th scope="col" { "Next times" }
                    th scope="col" { "Last run" }
                    th scope="col" { "Type" }
                    th scope="col" { "Active" }
                } }
                tbody {
                    @for s in &list {
                        @let (description, next) = times(s);
                        tr id=(s.friendly_id) {
                            th scope="row" {
                                (s.task)
                                @if let Some(e) = &s.external_id { br; span.muted { "external id " code { (e) } } }
                            }
                            td { code { (s.expression) } br; span.muted { (description) } }
                            td { (s.timezone) @if let Some(w) = &s.window { br; span.muted { "window " (w) } } }
                            td {
                                @if !s.active { span.muted { "inactive" } }
                                @for t in &next { (time(*t)) br; }
                            }
                            td {
                                @match (&s.last_run, s.last_at) {
                                    (Some(run), Some(at)) => { a href=(format!("{base}/runs/{run}")) { (run) } br; span.muted { "for " (time(at)) } }
                                    (None, Some(at)) => { span.muted { "skipped at " (time(at)) } }
                                    _ => { "–" }
                                }
                            }
                            td { (s.kind.as_str()) br; code.muted { (s.friendly_id) } }
                            td {
                                @if s.active { "yes" } @else { "no" }
                                @if may_switch {
                                    @let action = if s.active { "deactivate" } else { "activate" };
                                    form method="post" action=(format!("{base}/schedules/{}/{action}", s.friendly_id)) {
                                        input type="hidden" name="_csrf" value=(who.csrf());
                                        button type="submit" { @if s.active { "Deactivate" } @else { "Activate" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                p {
                    "Page " (page_no) " of " (pages) " "
                    @if page_no > 1 { a href=(format!("{base}/schedules?page={}", page_no - 1)) { "← Previous" } " " }
                    @if page_no < pages { a href=(format!("{base}/schedules?page={}", page_no + 1)) { "Next →" } }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page("Schedules", Some(&who.viewer()), body)),
        clear,
    ))
}

/// `POST …/schedules/{id}/{activate|deactivate}`.
pub async fn switch(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, id, action)): Path<(String, String, String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let active = match action.as_str() {
        "activate" => true,
        "deactivate" => false,
        _ => return Err(PageError::not_found()),
    };
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "write", &[Resource::new("tasks")])?;
    let s = uc::set_active(
        &state.usecases,
        &pe.auth.environment.id,
        &ScheduleFriendlyId::from(id),
        active,
    )
    .await?;
    let message = if s.active {
        format!(
            "The schedule of {} is active: it fires at its next time.",
            s.task
        )
    } else {
        format!(
            "The schedule of {} is inactive: it does not fire until activated.",
            s.task
        )
    };
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("{}/schedules#{}", pe.base(), s.friendly_id),
        &message,
    ))
}
