//! `/admin` and `/admin/audit`: for administrators, every user (create one, set or clear the
//! administrator flag), every organization and its API rate limit, and the audit log with
//! filters. The pages use the admin API's own functions (`taskgate_usecases::admin::{new_user,
//! set_admin}`, `taskgate_usecases::rate_limits`) and store reads.

use std::collections::HashMap;

use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use maud::html;
use serde::Deserialize;
use taskgate_api::ratelimit::{RateLimitConfig, RateLimitSource};
use taskgate_api::CreateUserRequest;
use taskgate_core::ratelimit::LimitConfig;
use taskgate_server::state::AppState;
use taskgate_store::{audit_action, AuditQuery};
use taskgate_usecases::admin::{new_user, set_admin};
use taskgate_usecases::rate_limits;

use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, redirect_with_flash, take_flash, SignedIn};

/// Audit entries per page.
const AUDIT_PAGE: u32 = 50;
/// The actions the audit filter offers.
const ACTIONS: [&str; 10] = [
    audit_action::API_KEY_ROTATED,
    audit_action::GRACE_CHANGED,
    audit_action::PAT_CREATED,
    audit_action::PAT_REVOKED,
    audit_action::USER_CREATED,
    audit_action::USER_ADMIN_CHANGED,
    audit_action::MEMBER_ADDED,
    audit_action::MEMBER_ROLE_CHANGED,
    audit_action::MEMBER_REMOVED,
    audit_action::ORG_RATE_LIMIT_CHANGED,
];

fn require_admin(who: &SignedIn) -> PageResult<()> {
    if who.session.user.admin {
        Ok(())
    } else {
        Err(PageError::forbidden(
            "Only an administrator can see this page.",
        ))
    }
}

/// A form an administrator posted from one of these pages: signed in, with the session's
/// CSRF token, and an administrator (checked in that order). The last extractor of a handler,
/// as it reads the body.
pub struct AdminForm {
    pub who: SignedIn,
    pub form: HashMap<String, String>,
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, state).await?;
        let Form(form) =
            Form::<HashMap<String, String>>::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        who.check_csrf(state, form.get("_csrf").map(String::as_str))
            .map_err(IntoResponse::into_response)?;
        require_admin(&who).map_err(IntoResponse::into_response)?;
        Ok(AdminForm { who, form })
    }
}

/// `GET /admin`.
pub async fn admin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
) -> PageResult {
    require_admin(&who)?;
    let users = state.store.list_users().await?;
    let orgs = state.store.list_organizations().await?;
    let (message, clear) = take_flash(&state, &headers);
    let body = html! {
        h1 { "Administration" }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        p { a href="/admin/audit" { "Audit log" } }
        h2 { "Users" }
        table {
            thead { tr {
                th scope="col" { "Email" }
                th scope="col" { "Name" }
                th scope="col" { "Created" }
                th scope="col" { "Administrator" }
            } }
            tbody {
                @for u in &users {
                    tr {
                        th scope="row" { (u.email) }
                        td { (u.name.as_deref().unwrap_or("")) }
                        td { (time(u.created_at)) }
                        td.row-actions {
                            (if u.admin { "yes" } else { "no" })
                            @if u.id != who.session.user.id {
                                form method="post" action=(format!("/admin/users/{}/admin", u.id)) {
                                    input type="hidden" name="_csrf" value=(who.csrf());
                                    input type="hidden" name="admin" value=(if u.admin { "false" } else { "true" });
                                    button type="submit" {
                                        (if u.admin { "Remove administrator" } else { "Make administrator" })
                                        span.muted { " (" (u.email) ")" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.panel aria-labelledby="new-user" {
            h2 #new-user { "Create a user" }
            form method="post" action="/admin/users" {
                input type="hidden" name="_csrf" value=(who.csrf());
                label for="email" { "Email" }
                input #email name="email" type="email" required size="32";
                label for="name" { "Name (optional)" }
                input #name name="name" size="32" maxlength="100";
                label { input type="checkbox" name="admin" value="true"; " Administrator" }
                button.primary type="submit" { "Create user" }
            }
            p.muted { "They sign in with a link from " code { "taskgate login-link --email …" } "." }
        }
        h2 { "Organizations" }
        @if orgs.is_empty() {
            p.muted { "None yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Organization" }
                    th scope="col" { "Slug" }
                    th scope="col" { "Created" }
                    th scope="col" { "API rate limit" }
                } }
                tbody {
                    @for o in &orgs {
                        tr {
                            th scope="row" { (o.title) }
                            td { code { (o.slug) } }
                            td { (time(o.created_at)) }
                            td { a href=(format!("/admin/orgs/{}/rate-limit", o.id)) { "View or change" span.muted { " (" (o.title) ")" } } }
                        }
                    }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page("Administration", Some(&who.viewer()), body)),
        clear,
    ))
}

fn back(state: &AppState, headers: &HeaderMap, message: &str) -> axum::response::Response {
    redirect_with_flash(state, headers, "/admin", message)
}

/// `POST /admin/users`.
pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    AdminForm { who, form }: AdminForm,
) -> PageResult {
    let body = CreateUserRequest {
        email: form.get("email").cloned().unwrap_or_default(),
        name: form.get("name").filter(|n| !n.trim().is_empty()).cloned(),
        admin: Some(form.get("admin").map(String::as_str) == Some("true")),
    };
    let user = new_user(&state.usecases, &who.principal(), body).await?;
    Ok(back(
        &state,
        &headers,
        &format!("Created the user {}.", user.email),
    ))
}

/// `POST /admin/users/{id}/admin`.
pub async fn set_user_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    AdminForm { who, form }: AdminForm,
) -> PageResult {
    let flag = match form.get("admin").map(String::as_str) {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(PageError::bad_request(
                "Choose to make or remove an administrator.",
            ))
        }
    };
    let user = set_admin(&state.usecases, &who.principal(), &user_id, flag).await?;
    let message = if flag {
        format!("{} is now an administrator.", user.email)
    } else {
        format!(
            "{} is no longer an administrator; their administrator sessions have ended.",
            user.email
        )
    };
    Ok(back(&state, &headers, &message))
}

/// A rate-limit change in words: "default → sustains 5 requests per minute, bursts to 5".
fn limit_change(detail: Option<&str>) -> Option<String> {
    let detail: serde_json::Value = serde_json::from_str(detail?).ok()?;
    let side = |v: &serde_json::Value| match serde_json::from_value::<LimitConfig>(v.clone()) {
        Ok(limit) => limit.preview(),
        Err(_) => "default".to_string(),
    };
    Some(format!(
        "{} → {}",
        side(&detail["old"]),
        side(&detail["new"])
    ))
}

/// `GET /admin/orgs/{id}/rate-limit`: the limit an organization's secret keys are held to,
/// and a form to change it.
pub async fn org_rate_limit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path(org_id): Path<String>,
) -> PageResult {
    require_admin(&who)?;
    let limit = rate_limits::org_rate_limit(&state.usecases, &org_id).await?;
    let org = state
        .store
        .list_organizations()
        .await?
        .into_iter()
        .find(|o| o.id == org_id);
    let title = org.map_or_else(|| org_id.clone(), |o| o.title);
    let (message, clear) = take_flash(&state, &headers);
    let custom = limit.source == RateLimitSource::Organization;
    let action = format!("/admin/orgs/{org_id}/rate-limit");
    let body = html! {
        p { a href="/admin" { "← Administration" } }
        h1 { "API rate limit: " (title) }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        div.panel {
            p {
                strong { (if custom { "This organization's own limit" } else { "The server's default" }) }
                ": " (limit.preview) "."
            }
            p.muted {
                "Each environment's secret keys share one bucket of " (limit.config.max_tokens)
                " requests that regains " (limit.config.refill_rate) " every " (limit.config.interval)
                ". An empty bucket answers 429 until it refills; the SDK waits and retries."
            }
        }
        section.panel aria-labelledby="change-limit" {
            h2 #change-limit { "Change the limit" }
            form method="post" action=(action) {
                input type="hidden" name="_csrf" value=(who.csrf());
                label for="refillRate" { "Requests regained per interval" }
                input #refillRate name="refillRate" type="number" min="1" max="1000000" required value=(limit.config.refill_rate);
                label for="interval" { "Interval (1s to 1h, e.g. 10s, 1m)" }
                input #interval name="interval" required pattern="[0-9]+ ?(ms|s|m|h)" value=(limit.config.interval);
                label for="maxTokens" { "Burst: the most requests at once" }
                input #maxTokens name="maxTokens" type="number" min="1" max="1000000" required value=(limit.config.max_tokens);
                button.primary type="submit" { "Save limit" }
            }
            @if custom {
                form method="post" action=(format!("{action}/reset")) {
                    input type="hidden" name="_csrf" value=(who.csrf());
                    button type="submit" { "Use the server's default" }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page("API rate limit", Some(&who.viewer()), body)),
        clear,
    ))
}

/// `POST /admin/orgs/{id}/rate-limit`.
pub async fn set_org_rate_limit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(org_id): Path<String>,
    AdminForm { who, form }: AdminForm,
) -> PageResult {
    let number = |field: &str, label: &str| {
        form.get(field)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| PageError::bad_request(format!("{label} must be a whole number.")))
    };
    let body = RateLimitConfig {
        kind: "tokenBucket".into(),
        refill_rate: number("refillRate", "Requests regained per interval")?,
        interval: form
            .get("interval")
            .map(|v| v.trim().to_string())
            .unwrap_or_default(),
        max_tokens: number("maxTokens", "The burst")?,
    };
    let limit = rate_limits::parse_limit(&body)?;
    let preview = limit.preview();
    rate_limits::change(&state.usecases, &who.principal(), &org_id, Some(limit)).await?;
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("/admin/orgs/{org_id}/rate-limit"),
        &format!("Saved: the organization now {preview}."),
    ))
}

/// `POST /admin/orgs/{id}/rate-limit/reset`.
pub async fn reset_org_rate_limit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(org_id): Path<String>,
    AdminForm { who, .. }: AdminForm,
) -> PageResult {
    rate_limits::change(&state.usecases, &who.principal(), &org_id, None).await?;
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("/admin/orgs/{org_id}/rate-limit"),
        "The organization is back on the server's default limit.",
    ))
}

/// The audit log's filters, as they stand in the URL.
#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    action: Option<String>,
    environment: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
}

fn day(label: &str, v: &Option<String>, end_of_day: bool) -> PageResult<Option<DateTime<Utc>>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| {
                if end_of_day {
                    d.and_hms_opt(23, 59, 59)
                } else {
                    d.and_hms_opt(0, 0, 0)
                }
            })
            .map(|d| Some(d.and_utc()))
            .ok_or_else(|| {
                PageError::bad_request(format!("{label} must be a date such as 2026-11-28."))
            }),
    }
}

/// `GET /admin/audit`.
pub async fn audit_page(
    State(state): State<AppState>,
    who: SignedIn,
    Query(p): Query<AuditParams>,
) -> PageResult {
    require_admin(&who)?;
    let action = p.action.as_deref().filter(|a| !a.is_empty());
    if let Some(a) = action {
        if !ACTIONS.contains(&a) {
            return Err(PageError::bad_request(format!(
                "There is no audit action {a:?}."
            )));
        }
    }
    let environment = p
        .environment
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    if environment.is_some_and(|e| e.len() > 64) {
        return Err(PageError::bad_request("That is not an environment id."));
    }
    let query = AuditQuery {
        environment_id: environment.map(str::to_string),
        action: action.map(str::to_string),
        from: day("From", &p.from, false)?,
        to: day("To", &p.to, true)?,
        before_seq: p.before.filter(|n| *n > 0),
        limit: AUDIT_PAGE + 1,
    };
    let mut events = state.store.list_audit_events(&query).await?;
    let more = events.len() > AUDIT_PAGE as usize;
    events.truncate(AUDIT_PAGE as usize);
    let mut emails = HashMap::new();
    for uid in events.iter().filter_map(|e| e.actor.user_id.clone()) {
        if let std::collections::hash_map::Entry::Vacant(slot) = emails.entry(uid.clone()) {
            if let Ok(u) = state.store.get_user(&uid).await {
                slot.insert(u.email);
            }
        }
    }
    let keep = |k: &str, v: Option<&str>| {
        v.filter(|v| !v.is_empty())
            .map(|v| format!("{k}={}", crate::session::encode(v)))
    };
    let filters: Vec<String> = [
        keep("action", action),
        keep("environment", environment),
        keep("from", p.from.as_deref()),
        keep("to", p.to.as_deref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let body = html! {
        p.muted { a href="/admin" { "Administration" } }
        h1 { "Audit log" }
        form.panel.row-actions method="get" aria-label="Filter the audit log" {
            div {
                label for="action" { "Action" }
                select #action name="action" {
                    option value="" { "Any" }
                    @for a in ACTIONS { option value=(a) selected[action == Some(a)] { (a) } }
                }
            }
            div { label for="environment" { "Environment id" } input #environment name="environment" size="24" value=(environment.unwrap_or("")); }
            div { label for="from" { "From" } input #from name="from" type="date" value=(p.from.as_deref().unwrap_or("")); }
            div { label for="to" { "To" } input #to name="to" type="date" value=(p.to.as_deref().unwrap_or("")); }
            div { label { "\u{a0}" } button type="submit" { "Apply" } }
        }
        @if events.is_empty() {
            p.panel { "No audit events match these filters." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "When" }
                    th scope="col" { "Action" }
                    th scope="col" { "Who" }
                    th scope="col" { "Credential" }
                    th scope="col" { "Target" }
                    th scope="col" { "Change" }
                } }
                tbody {
                    @for e in &events {
                        tr {
                            td { (time(e.occurred_at)) }
                            td { (e.action) }
                            td { (e.actor.user_id.as_ref().and_then(|u| emails.get(u)).map(String::as_str).unwrap_or("taskgate")) }
                            td { (e.actor.credential_kind) }
                            td { code { (e.target_id.as_deref().unwrap_or("")) } }
                            td {
                                @if let Some(old) = e.old_expires_at { (time(old)) " → " }
                                @if let Some(new) = e.new_expires_at { (time(new)) }
                                @if let Some(change) = limit_change(e.detail.as_deref()) { (change) }
                            }
                        }
                    }
                }
            }
        }
        @if more {
            @if let Some(last) = events.last() {
                p { a href=(format!("?{}{}before={}", filters.join("&"), if filters.is_empty() { "" } else { "&" }, last.seq)) { "Older events →" } }
            }
        }
    };
    Ok(send(page("Audit log", Some(&who.viewer()), body)))
}
