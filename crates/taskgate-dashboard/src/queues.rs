//! `…/env/{env}/queues`: an environment's queues with their limit (declared, or an override),
//! running and queued runs, and whether they are paused; and `…/queues/{id}/{action}`, what
//! an administrator does to one (pause, resume, override the limit, reset it), through the
//! use cases `queues.pause()` and `queues.overrideConcurrencyLimit()` share.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use maud::html;
use serde::Deserialize;
use taskgate_core::scope::Resource;
use taskgate_server::state::AppState;
use taskgate_store::QueueInfo;
use taskgate_usecases::queues::{self as uc, QueueName};

use crate::envs::{self, PageEnv};
use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, redirect_with_flash, take_flash, SignedIn};

/// Queues per page.
const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct QueuesQuery {
    page: Option<u64>,
}

/// How the page names a queue's kind and name.
fn shown_name(q: &QueueInfo) -> (&str, &'static str) {
    match q.name.strip_prefix("task/") {
        Some(task) => (task, "task"),
        None => (q.name.as_str(), "shared"),
    }
}

/// `GET …/queues`.
pub async fn queues_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Query(q): Query<QueuesQuery>,
) -> PageResult {
    let pe: PageEnv = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "read", &[Resource::new("queues")])?;
    let page_no = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let (list, total) = uc::list(&state.usecases, &pe.auth.environment, page_no, PAGE_SIZE).await?;
    let may_change = pe.can(&state, &who, "write", &[Resource::new("queues")]);
    let base = pe.base();
    let pages = total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    let (message, clear) = take_flash(&state, &headers);
    let body = html! {
        (pe.nav("queues"))
        h1 { "Queues" }
        p.muted {
            "Each task has its own queue unless it names a shared one (" code { "queue()" } "). A queue's limit is how many of its runs execute at once (per "
            code { "concurrencyKey" } " when runs pass one); without one, only the environment's limit applies. Runs that wait (for a child, a token or a time) hold no slot. "
            "A paused queue starts none of its runs until resumed; runs already executing finish. An override holds over later deploys until it is reset."
        }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        @if list.is_empty() {
            p.panel { "No queues here yet: they appear when a worker registers its tasks (" code { "trigger.dev dev" } " or a deploy)." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Queue" }
                    th scope="col" { "Limit" }
                    th scope="col" { "Running" }
                    th scope="col" { "Queued" }
                    th scope="col" { "State" }
                    @if may_change { th scope="col" { "Change" } }
                } }
                tbody {
                    @for q in &list {
                        @let (name, kind) = shown_name(q);
                        @let action = |a: &str| format!("{base}/queues/{}/{a}", q.friendly_id);
                        tr id=(q.friendly_id) {
                            th scope="row" { (name) br; span.muted { (kind) " · " code { (q.friendly_id) } } }
                            td {
                                @match q.concurrency_limit { Some(l) => { (l) }, None => { span.muted { "environment's" } } }
                                @if let Some(at) = q.overridden_at {
                                    br;
                                    span.muted {
                                        "overridden "
                                        @if let Some(by) = &q.overridden_by { "by " (by) " " }
                                        (time(at)) "; declared "
                                        @match q.declared_limit { Some(l) => { (l) }, None => { "none" } }
                                    }
                                }
                            }
                            td { (q.running) }
                            td { (q.queued) }
                            td { @if q.paused { strong { "paused" } } @else { "running" } }
                            @if may_change {
                                td {
                                    form method="post" action=(action(if q.paused { "resume" } else { "pause" })) {
                                        input type="hidden" name="_csrf" value=(who.csrf());
                                        button type="submit" { @if q.paused { "Resume" } @else { "Pause" } }
                                    }
                                    form method="post" action=(action("override")) {
                                        input type="hidden" name="_csrf" value=(who.csrf());
                                        label { "Limit " input type="number" name="limit" min="0" max=(uc::MAX_OVERRIDE) required value=[q.concurrency_limit]; }
                                        " " button type="submit" { "Override" }
                                    }
                                    @if q.overridden_at.is_some() {
                                        form method="post" action=(action("reset")) {
                                            input type="hidden" name="_csrf" value=(who.csrf());
                                            button type="submit" { "Reset to declared" }
                                        }
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
                    @if page_no > 1 { a href=(format!("{base}/queues?page={}", page_no - 1)) { "← Previous" } " " }
                    @if page_no < pages { a href=(format!("{base}/queues?page={}", page_no + 1)) { "Next →" } }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page("Queues", Some(&who.viewer()), body)),
        clear,
    ))
}

/// `POST …/queues/{id}/{pause|resume|override|reset}`.
pub async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, id, action)): Path<(String, String, String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "write", &[Resource::new("queues")])?;
    let name = QueueName::Id(id);
    let environment = &pe.auth.environment;
    let uc = &state.usecases;
    let q = match action.as_str() {
        "pause" => uc::set_paused(uc, environment, &name, true).await?,
        "resume" => uc::set_paused(uc, environment, &name, false).await?,
        "override" => {
            let limit = form
                .get("limit")
                .and_then(|l| l.trim().parse::<u32>().ok())
                .filter(|l| *l <= uc::MAX_OVERRIDE)
                .ok_or_else(|| {
                    PageError::bad_request(format!(
                        "The limit must be a whole number from 0 to {}.",
                        uc::MAX_OVERRIDE
                    ))
                })?;
            uc::override_limit(
                uc,
                environment,
                &name,
                limit,
                Some(who.session.user.id.clone().into()),
            )
            .await?
        }
        "reset" => uc::reset_limit(uc, environment, &name).await?,
        _ => return Err(PageError::not_found()),
    };
    let (shown, _) = shown_name(&q);
    let message = match action.as_str() {
        "pause" => format!("Queue {shown} is paused: none of its runs starts until it is resumed."),
        "resume" => format!("Queue {shown} is running again."),
        "override" => format!(
            "Queue {shown} now runs at most {} at once, until reset.",
            q.concurrency_limit.unwrap_or_default()
        ),
        _ => format!("Queue {shown} is back to the limit its code declares."),
    };
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("{}/queues#{}", pe.base(), q.friendly_id),
        &message,
    ))
}
