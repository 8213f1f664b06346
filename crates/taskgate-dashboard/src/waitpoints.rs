//! `…/env/{env}/waitpoints`: an environment's wait tokens, newest first, filtered by status,
//! and `…/waitpoints/{id}/complete`, which completes a waiting token with a JSON value typed
//! into the page (the runs waiting for it continue at once). Both go through the engine, as the
//! API's token routes do.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use taskgate_core::engine::waitpoint::{token_status, TokenStatus, WaitpointStatus};
use taskgate_core::run::RunCursor;
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_server::state::AppState;
use taskgate_store::{TokenFilter, TokenPage};

use crate::envs::{self, PageEnv};
use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, encode, redirect_with_flash, take_flash, SignedIn};

/// Tokens per page.
const PAGE_SIZE: u32 = 25;
/// Largest value typed into the completion form.
const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The list's filters, as they stand in the URL.
#[derive(Debug, Default, Deserialize)]
pub struct TokensQuery {
    status: Option<String>,
    after: Option<String>,
}

fn readable(state: &AppState, who: &SignedIn, pe: &PageEnv) -> PageResult<()> {
    pe.require(state, who, "read", &[Resource::new("waitpoints")])
}

/// `GET …/waitpoints`.
pub async fn tokens_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Query(q): Query<TokensQuery>,
) -> PageResult {
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    readable(&state, &who, &pe)?;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let mut filter = TokenFilter::default();
    if let Some(s) = status {
        filter.statuses.push(
            TokenStatus::parse(s).ok_or_else(|| {
                PageError::bad_request(format!("There is no token status {s:?}."))
            })?,
        );
    }
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        Some(c) => Some(
            RunCursor::decode(c)
                .map(|c| (from_millis(c.created_at_ms), c.run_id.into()))
                .ok_or_else(|| PageError::bad_request("That page position is not valid."))?,
        ),
        None => None,
    };
    let page_req = TokenPage {
        limit: PAGE_SIZE + 1,
        after,
        before: None,
    };
    let mut tokens = state
        .engine
        .list_tokens(&pe.auth.environment.id, &filter, &page_req)
        .await?;
    let more = tokens.len() > PAGE_SIZE as usize;
    tokens.truncate(PAGE_SIZE as usize);
    let base = pe.base();
    let next = tokens.last().filter(|_| more).map(|t| {
        let cursor = RunCursor {
            created_at_ms: t.created_at.timestamp_millis(),
            run_id: t.id.to_string(),
        }
        .encode();
        let status = status.map(|s| format!("status={s}&")).unwrap_or_default();
        format!("{base}/waitpoints?{status}after={}", encode(&cursor))
    });
    let may_complete = pe.can(&state, &who, "write", &[Resource::new("waitpoints")]);
    let (message, clear) = take_flash(&state, &headers);
    let body = html! {
        (pe.nav("waitpoints"))
        h1 { "Wait tokens" }
        p.muted { "Task code waits for a token with " code { "wait.forToken" } "; completing it here, through the API or with a POST to its URL continues every run waiting for it." }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        form.panel.row-actions method="get" aria-label="Filter tokens" {
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "Any" }
                    @for s in ["WAITING", "COMPLETED", "TIMED_OUT"] { option value=(s) selected[status == Some(s)] { (s) } }
                }
            }
            div { label { "\u{a0}" } button type="submit" { "Apply" } }
        }
        @if tokens.is_empty() {
            p.panel { "No tokens match." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Token" }
                    th scope="col" { "Status" }
                    th scope="col" { "Tags" }
                    th scope="col" { "Created" }
                    th scope="col" { "Times out" }
                    th scope="col" { "Completed" }
                } }
                tbody {
                    @for t in &tokens {
                        tr id=(t.friendly_id) {
                            th scope="row" { code { (t.friendly_id) } }
                            td { (token_status(t.status, t.output_is_error)) }
                            td { (t.tags.join(", ")) }
                            td { (time(t.created_at)) }
                            td { @if let Some(at) = t.timeout_at { (time(at)) } @else { "never" } }
                            td { @if let Some(at) = t.completed_at { (time(at)) } @else { "–" } }
                        }
                        @if may_complete && t.status == WaitpointStatus::Pending {
                            tr {
                                td colspan="6" {
                                    form method="post" action=(format!("{base}/waitpoints/{}/complete", t.friendly_id)) {
                                        input type="hidden" name="_csrf" value=(who.csrf());
                                        label for=(format!("value-{}", t.friendly_id)) { "Complete " code { (t.friendly_id) } " with this JSON value (empty for none)" }
                                        textarea id=(format!("value-{}", t.friendly_id)) name="value" rows="2" cols="60" maxlength=(MAX_VALUE_BYTES) {}
                                        button type="submit" { "Complete token" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(href) = &next {
            p { a href=(href) { "Older tokens →" } }
        }
    };
    Ok(clearing_flash(
        send(page("Wait tokens", Some(&who.viewer()), body)),
        clear,
    ))
}

/// `POST …/waitpoints/{id}/complete`: completes a token with the form's JSON value.
pub async fn complete_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, id)): Path<(String, String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(
        &state,
        &who,
        "write",
        &[Resource::with_id("waitpoints", &id)],
    )?;
    let here = format!("{}/waitpoints", pe.base());
    let text = form.get("value").map(|v| v.trim()).unwrap_or("");
    if text.len() > MAX_VALUE_BYTES {
        return Err(PageError::bad_request(format!(
            "The value may be at most {MAX_VALUE_BYTES} bytes."
        )));
    }
    let value: Option<Value> = if text.is_empty() {
        None
    } else {
        match serde_json::from_str(text) {
            Ok(v) => Some(v),
            Err(e) => {
                let message = format!(
                    "Not completed: that value is not JSON ({e}). A text needs quotes: \"yes\"."
                );
                return Ok(redirect_with_flash(&state, &headers, &here, &message));
            }
        }
    };
    state
        .engine
        .complete_token(&pe.auth.environment.id, &id.as_str().into(), value.as_ref())
        .await?;
    let message = format!("Token {id} completed; the runs waiting for it continue.");
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("{here}#{id}"),
        &message,
    ))
}
