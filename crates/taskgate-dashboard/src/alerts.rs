//! `…/env/{env}/alerts`: the project's alert channels (a signed webhook or a Slack incoming
//! webhook, for failed runs, error groups and deployments, per environment type), made,
//! switched and deleted here by owners and admins; and the newest deliveries, with a resend
//! for those that failed for good. A new webhook's signing secret is shown once, on the page
//! that answers its creation.

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use maud::{html, Markup};
use taskgate_core::scope::Resource;
use taskgate_server::state::AppState;
use taskgate_store::{AlertChannel, AlertChannelKind};
use taskgate_usecases::alerts::{self as uc, api_alert_type, ChannelRequest};

use crate::envs::{self, PageEnv};
use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, redirect_with_flash, take_flash, SignedIn};

/// Deliveries shown.
const SHOWN_DELIVERIES: u32 = 50;

/// What the page offers to be told about, with its label.
const TYPES: &[(&str, &str)] = &[
    ("run_failure", "a run fails for good"),
    (
        "error_group",
        "an error is new, regresses or comes back from an ignore",
    ),
    ("deployment_failure", "a deployment fails"),
    ("deployment_success", "a deployment succeeds"),
];
const ENVS: &[(&str, &str, bool)] = &[
    ("PRODUCTION", "Production", true),
    ("STAGING", "Staging", true),
    ("PREVIEW", "Preview", false),
    ("DEVELOPMENT", "Development", false),
];

/// A destination as the page shows it: the origin only, since a webhook's path often holds
/// its credential (a Slack incoming-webhook URL does).
fn shown_destination(c: &AlertChannel) -> String {
    match url::Url::parse(&c.destination) {
        Ok(u) => format!("{}/…", u.origin().ascii_serialization()),
        Err(_) => "…".into(),
    }
}

fn kind_label(k: AlertChannelKind) -> &'static str {
    match k {
        AlertChannelKind::Webhook => "Webhook",
        AlertChannelKind::Slack => "Slack",
        AlertChannelKind::Email => "Email",
    }
}

async fn render(
    state: &AppState,
    who: &SignedIn,
    pe: &PageEnv,
    message: Option<String>,
    secret: Option<(String, String)>,
) -> PageResult<Markup> {
    let principal = who.principal();
    let (_, channels) = uc::list_channels(&state.usecases, &principal, &pe.project).await?;
    let deliveries =
        uc::list_deliveries(&state.usecases, &principal, &pe.project, SHOWN_DELIVERIES).await?;
    let may_change = pe.can(state, who, "write", &[Resource::new("alerts")]);
    let base = pe.base();
    Ok(html! {
        (pe.nav("alerts"))
        h1 { "Alerts" }
        p.muted {
            "Channels belong to the project and hear about the environment types they name. A webhook receives upstream's JSON, signed with "
            code { "x-trigger-signature-hmacsha256" } " (verify it with " code { "webhooks.constructEvent" } "), with "
            code { "x-taskgate-delivery-id" } " to drop repeats. Deliveries leave within about a second; a failed one is tried five times over about half a minute, then kept here to resend."
        }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        @if let Some((name, s)) = &secret {
            div.panel role="status" {
                "The signing secret of " strong { (name) } " (shown once; keep it with the receiver): "
                code { (s) }
            }
        }
        h2 { "Channels" }
        @if channels.is_empty() {
            p.panel { "No alert channels yet: nobody is told when runs fail." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Destination" }
                    th scope="col" { "About" } th scope="col" { "Environments" } th scope="col" { "State" }
                    @if may_change { th scope="col" { "Change" } }
                } }
                tbody {
                    @for c in &channels {
                        tr id=(c.friendly_id) {
                            th scope="row" { (c.name) br; code.muted { (c.friendly_id) } }
                            td { (kind_label(c.kind)) }
                            td { code { (shown_destination(c)) } }
                            td { @for t in &c.alert_types { (api_alert_type(t)) br; } }
                            td { @for e in &c.environment_types { (e.as_str()) br; } }
                            td { @if c.enabled { "enabled" } @else { strong { "disabled" } } }
                            @if may_change {
                                td {
                                    @for action in [if c.enabled { "disable" } else { "enable" }, "delete"] {
                                        form method="post" action=(format!("{base}/alerts/channels/{}/{action}", c.friendly_id)) {
                                            input type="hidden" name="_csrf" value=(who.csrf());
                                            button type="submit" { (match action { "disable" => "Disable", "enable" => "Enable", _ => "Delete" }) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if may_change {
            h2 { "New channel" }
            form method="post" action=(format!("{base}/alerts/channels")) {
                input type="hidden" name="_csrf" value=(who.csrf());
                p { label { "Name " input type="text" name="name" required maxlength="256"; } }
                p {
                    label { "Kind " select name="channel" {
                        option value="webhook" { "Webhook (signed JSON)" }
                        option value="slack" { "Slack incoming webhook" }
                    } }
                }
                p { label { "URL " input type="url" name="url" required maxlength="2048" size="60"; } }
                fieldset {
                    legend { "Tell it when" }
                    @for (t, label) in TYPES {
                        label { input type="checkbox" name="type" value=(t) checked[*t == "run_failure" || *t == "error_group"]; " " (label) } br;
                    }
                }
                fieldset {
                    legend { "In" }
                    @for (e, label, on) in ENVS {
                        label { input type="checkbox" name="env" value=(e) checked[*on]; " " (label) } " "
                    }
                }
                p { button type="submit" { "Create channel" } }
            }
        }
        h2 { "Deliveries" }
        @if deliveries.is_empty() {
            p.muted { "None yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Queued" } th scope="col" { "Channel" } th scope="col" { "Event" }
                    th scope="col" { "About" } th scope="col" { "Status" } th scope="col" { "Tries" } th scope="col" { "Last error" }
                } }
                tbody {
                    @for d in &deliveries {
                        tr {
                            td { (time(d.created_at)) }
                            td { code { (d.channel_friendly_id) } }
                            td { (d.event) }
                            td { code { (d.subject) } }
                            td {
                                @match d.status.as_str() { "DEAD" => { strong { "failed" } }, "SENT" => { "sent" }, _ => { "pending" } }
                                @if let Some(at) = d.sent_at { br; span.muted { (time(at)) } }
                                @if may_change && d.status == "DEAD" {
                                    form method="post" action=(format!("{base}/alerts/deliveries/{}/resend", d.id)) {
                                        input type="hidden" name="_csrf" value=(who.csrf());
                                        button type="submit" { "Resend" }
                                    }
                                }
                            }
                            td { (d.attempts) }
                            td { @if let Some(e) = &d.last_error { span.muted { (e) } } }
                        }
                    }
                }
            }
        }
    })
}

/// `GET …/alerts`.
pub async fn alerts_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
) -> PageResult {
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let (message, clear) = take_flash(&state, &headers);
    let body = render(&state, &who, &pe, message, None).await?;
    Ok(clearing_flash(
        send(page("Alerts", Some(&who.viewer()), body)),
        clear,
    ))
}

/// `POST …/alerts/channels`: a new channel; the answer shows a webhook's secret once.
pub async fn create(
    State(state): State<AppState>,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let field = |k: &str| {
        form.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let all = |k: &str| {
        form.iter()
            .filter(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    who.check_csrf(&state, field("_csrf").as_deref())?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let saved = uc::upsert_channel(
        &state.usecases,
        &who.principal(),
        &pe.project,
        ChannelRequest {
            name: field("name").unwrap_or_default(),
            channel: field("channel").unwrap_or_default(),
            alert_types: all("type"),
            environment_types: all("env"),
            url: field("url"),
            email: None,
            secret: None,
            deduplication_key: None,
        },
    )
    .await?;
    let message = format!("Channel {} created.", saved.channel.name);
    let secret = saved.secret.map(|s| (saved.channel.name.clone(), s));
    let body = render(&state, &who, &pe, Some(message), secret).await?;
    // Not cached: the page holds a secret.
    let mut res = send(page("Alerts", Some(&who.viewer()), body));
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// `POST …/alerts/channels/{id}/{enable|disable|delete}`.
pub async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, id, action)): Path<(String, String, String, String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.as_str());
    who.check_csrf(&state, csrf)?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let principal = who.principal();
    let message = match action.as_str() {
        "enable" | "disable" => {
            let c = uc::set_enabled(
                &state.usecases,
                &principal,
                &pe.project,
                &id,
                action == "enable",
            )
            .await?;
            format!("Channel {} is {}d.", c.name, action)
        }
        "delete" => {
            uc::delete(&state.usecases, &principal, &pe.project, &id).await?;
            "Channel deleted, with its deliveries.".to_string()
        }
        _ => return Err(PageError::not_found()),
    };
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("{}/alerts", pe.base()),
        &message,
    ))
}

/// `POST …/alerts/deliveries/{id}/resend`.
pub async fn resend(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, id)): Path<(String, String, String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.as_str());
    who.check_csrf(&state, csrf)?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    uc::resend(&state.usecases, &who.principal(), &pe.project, &id).await?;
    Ok(redirect_with_flash(
        &state,
        &headers,
        &format!("{}/alerts", pe.base()),
        "The delivery is queued again: it leaves within a second.",
    ))
}
