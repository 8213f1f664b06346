//! `…/env/{env}/deployments`: an environment's deployed versions, newest first, which one it
//! runs, the error of one that failed, and `…/deployments/{version}/promote`, which makes a
//! deployed version the current one (as `trigger.dev promote` does, through the same use
//! case).

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use taskgate_core::env::EnvType;
use taskgate_core::run::RunCursor;
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_server::state::AppState;
use taskgate_store::{Deployment, DeploymentStatus};

use crate::envs::{self, PageEnv};
use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, encode, redirect_with_flash, take_flash, SignedIn};

/// Deployments per page.
const PAGE_SIZE: u32 = 25;

#[derive(Debug, Default, Deserialize)]
pub struct DeploymentsQuery {
    after: Option<String>,
}

/// What a failed deployment's error says, in one line.
fn error_message(d: &Deployment) -> Option<String> {
    let e: Value = serde_json::from_str(d.error.as_deref()?).ok()?;
    let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
    Some(format!("{}: {}", text("name"), text("message")))
}

/// The commit message the CLI sent with a deployment, if any.
fn commit_message(d: &Deployment) -> Option<String> {
    let git: Value = serde_json::from_str(d.git_meta.as_deref()?).ok()?;
    git.get("commitMessage")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(120).collect())
}

/// `GET …/deployments`.
pub async fn deployments_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Query(q): Query<DeploymentsQuery>,
) -> PageResult {
    let pe: PageEnv = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "read", &[Resource::new("deployments")])?;
    let env_id = &pe.auth.environment.id;
    let before = match q.after.as_deref().filter(|a| !a.is_empty()) {
        Some(c) => Some(
            RunCursor::decode(c)
                .map(|c| (from_millis(c.created_at_ms), c.run_id.into()))
                .ok_or_else(|| PageError::bad_request("That page position is not valid."))?,
        ),
        None => None,
    };
    let mut list = state
        .store
        .list_deployments(env_id, PAGE_SIZE + 1, before)
        .await?;
    let more = list.len() > PAGE_SIZE as usize;
    list.truncate(PAGE_SIZE as usize);
    let current = state
        .store
        .current_deployment(env_id)
        .await?
        .map(|(d, _, _)| d.id);
    let base = pe.base();
    let next = list.last().filter(|_| more).map(|d| {
        let cursor = RunCursor {
            created_at_ms: d.created_at.timestamp_millis(),
            run_id: d.id.to_string(),
        }
        .encode();
        format!("{base}/deployments?after={}", encode(&cursor))
    });
    let may_promote = pe.can(&state, &who, "write", &[Resource::new("deployments")]);
    let development = pe.auth.environment.env_type == EnvType::Development;
    let (message, clear) = take_flash(&state, &headers);
    let body = html! {
        (pe.nav("deployments"))
        h1 { "Deployments" }
        @if development {
            p.panel { "Development runs execute on " code { "trigger.dev dev" } "; nothing is deployed to a development environment." }
        } @else {
            p.muted { code { "trigger.dev deploy" } " with this environment's secret key uploads a version; taskgate indexes it and, unless " code { "--skip-promotion" } " was given, makes it current. Runs execute on the current version; a run that started keeps its version." }
            @if current.is_none() {
                p.panel.flash role="status" { "No version is deployed and promoted here: runs of this environment wait in the queue until one is." }
            }
        }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        @if list.is_empty() {
            @if !development { p.panel { "Nothing has been deployed here yet." } }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Version" }
                    th scope="col" { "Status" }
                    th scope="col" { "Deployment" }
                    th scope="col" { "Created" }
                    th scope="col" { "Deployed" }
                    th scope="col" { "Commit" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for d in &list {
                        @let is_current = current.as_ref() == Some(&d.id);
                        tr id=(d.version) {
                            th scope="row" { (d.version) }
                            td {
                                (d.status.as_str())
                                @if is_current { " " strong { "current" } }
                            }
                            td { code { (d.friendly_id) } }
                            td { (time(d.created_at)) }
                            td { @if let Some(at) = d.deployed_at { (time(at)) } @else { "–" } }
                            td { (commit_message(d).unwrap_or_default()) }
                            td {
                                @if may_promote && d.status == DeploymentStatus::Deployed && !is_current {
                                    form method="post" action=(format!("{base}/deployments/{}/promote", d.version)) {
                                        input type="hidden" name="_csrf" value=(who.csrf());
                                        button type="submit" { "Promote" }
                                    }
                                }
                            }
                        }
                        @if let Some(error) = error_message(d) {
                            tr { td colspan="7" { strong { "Failed: " } (error) } }
                        }
                    }
                }
            }
        }
        @if let Some(href) = &next {
            p { a href=(href) { "Older deployments →" } }
        }
    };
    Ok(clearing_flash(
        send(page("Deployments", Some(&who.viewer()), body)),
        clear,
    ))
}

/// `POST …/deployments/{version}/promote`.
pub async fn promote(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, version)): Path<(String, String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "write", &[Resource::new("deployments")])?;
    let d =
        taskgate_usecases::deployments::promote(&state.usecases, &pe.auth.environment.id, &version)
            .await?;
    let message = format!(
        "Version {} is current: new runs of this environment execute on it.",
        d.version
    );
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("{}/deployments#{}", pe.base(), d.version),
        &message,
    ))
}
