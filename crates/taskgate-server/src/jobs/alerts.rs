//! Alert delivery: every second, claims due rows of the outbox (each node its own, leased
//! for a minute), builds each alert from the store as it is now, and sends it: a webhook in
//! upstream's envelope signed with the channel's secret (`x-trigger-signature-hmacsha256`),
//! or a Slack incoming-webhook message. A try has 5 s; a failed one is retried after 1, 2, 4
//! and 8 s (with jitter), and after the fifth the row is dead (kept, listed on the alerts
//! page, and resendable). Private, loopback and link-local addresses are refused when a
//! name resolves to one (and at every redirect) unless `--webhook-allow-private`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use taskgate_core::ids::{EnvironmentId, RunFriendlyId};
use taskgate_core::webhook::{check_url, is_private, signature};
use taskgate_store::*;

use crate::state::AppState;

/// How often the outbox is read.
const TICK: Duration = Duration::from_secs(1);
/// Deliveries claimed at a time.
const BATCH: u32 = 20;
/// How long a claim holds a delivery before another node may take it over.
const LEASE_SECONDS: i64 = 60;
/// Tries of one delivery.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long one try may take, redirects included.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed (each one checked as the first URL was).
const MAX_REDIRECTS: usize = 5;
/// Characters of an error message or stack a Slack message shows.
const SLACK_TEXT_LIMIT: usize = 3000;

/// Resolves names as the system does, refusing any that resolves to a private address.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, a private address: refused (see --webhook-allow-private)",
                    bad.ip()
                )
                .into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client deliveries use.
pub fn client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if let Err(e) = check_url(attempt.url().as_str(), allow_private) {
            attempt.error(e.to_string())
        } else {
            attempt.follow()
        }
    });
    // No proxy from the environment: a proxy would resolve the receiver's name itself, past
    // the check of its addresses.
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .redirect(redirects)
        .user_agent(concat!("taskgate/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        b = b.dns_resolver(Arc::new(PublicOnly));
    }
    b.build()
}

pub fn start(state: &AppState) {
    let state = state.clone();
    let allow_private = state.config.alerts.webhook_allow_private;
    let http = match client(allow_private) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "alert delivery cannot start: no HTTP client; alerts stay queued");
            return;
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = state.clock.now();
            let claimed = match state
                .store
                .claim_alert_deliveries(now, BATCH, chrono::Duration::seconds(LEASE_SECONDS))
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the alert outbox; will retry");
                    continue;
                }
            };
            for d in claimed {
                let outcome = deliver(&state, &http, allow_private, &d).await;
                let now = state.clock.now();
                let outcome = match outcome {
                    Ok(()) => {
                        tracing::info!(delivery.id = %d.id, channel.id = %d.channel.friendly_id, event = %d.event, attempt = d.attempts, "alert delivered");
                        DeliveryOutcome::Sent
                    }
                    Err(error) if d.attempts >= MAX_ATTEMPTS => {
                        tracing::warn!(delivery.id = %d.id, channel.id = %d.channel.friendly_id, event = %d.event, attempts = d.attempts, error = %error, "alert delivery failed for good; resend it from the project's alerts page");
                        DeliveryOutcome::Dead { error }
                    }
                    Err(error) => {
                        let at = now + backoff(d.attempts);
                        tracing::info!(delivery.id = %d.id, channel.id = %d.channel.friendly_id, event = %d.event, attempt = d.attempts, error = %error, retry_at = %at, "alert delivery failed; will retry");
                        DeliveryOutcome::Retry { at, error }
                    }
                };
                if let Err(e) = state.store.finish_alert_delivery(&d.id, outcome, now).await {
                    tracing::warn!(delivery.id = %d.id, error = %e, "could not record an alert delivery; it is tried again after its lease");
                }
            }
        }
    });
}

/// The wait after failed try `attempt` (1-based): 1 s, 2 s, 4 s, 8 s, each up to twice that.
fn backoff(attempt: u32) -> chrono::Duration {
    let base = 1000i64 << attempt.saturating_sub(1).min(10);
    let jitter = rand::thread_rng().gen_range(0..=base);
    chrono::Duration::milliseconds(base + jitter)
}

/// The environment's segment of a dashboard URL.
fn url_env(t: taskgate_core::env::EnvType) -> &'static str {
    use taskgate_core::env::EnvType;
    match t {
        EnvType::Development => "dev",
        EnvType::Staging => "staging",
        EnvType::Production => "prod",
        EnvType::Preview => "preview",
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What an alert says, built from the store as it is now.
struct Alert {
    /// Upstream's webhook payload.
    webhook: Value,
    /// One line for a chat message, and the text under it.
    headline: String,
    detail: String,
    link: String,
}

async fn deliver(
    state: &AppState,
    http: &reqwest::Client,
    allow_private: bool,
    d: &AlertDelivery,
) -> Result<(), String> {
    let Some(alert) = build(state, d).await? else {
        // What it was about is gone (an environment or run deleted): nothing to say.
        return Ok(());
    };
    let url = check_url(&d.channel.destination, allow_private).map_err(|e| e.to_string())?;
    let (body, secret) = match d.channel.kind {
        AlertChannelKind::Webhook => {
            let sealed = d
                .channel
                .secret_sealed
                .as_deref()
                .ok_or("the channel has no signing secret")?;
            let secret = state
                .auth
                .vault
                .open_alert_secret(&d.channel.project_id, sealed)
                .map_err(|e| e.to_string())?;
            (alert.webhook.to_string(), Some(secret))
        }
        AlertChannelKind::Slack => (slack_message(&alert).to_string(), None),
        AlertChannelKind::Email => return Err("email alerts are not delivered yet".into()),
    };
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-taskgate-delivery-id", &d.id)
        .header(
            "x-taskgate-delivery-timestamp",
            state.clock.now().timestamp().to_string(),
        );
    if let Some(secret) = &secret {
        req = req.header(
            "x-trigger-signature-hmacsha256",
            signature(secret.expose_secret(), body.as_bytes()),
        );
    }
    let res = req.body(body).send().await.map_err(|e| {
        // The URL stays out of the message (logged, and shown on the alerts page): a
        // webhook's path is often its credential. The chain names the cause (a refused
        // address, a timeout).
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg = format!("{msg}: {s}");
            source = s.source();
        }
        msg
    })?;
    let status = res.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered HTTP {}", status.as_u16()))
    }
}

/// The alert `d` describes; `None` when its subject no longer exists.
async fn build(state: &AppState, d: &AlertDelivery) -> Result<Option<Alert>, String> {
    let env_id = EnvironmentId::from(d.environment_id.clone());
    let Some(env) = state
        .store
        .get_environment_auth(&env_id)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let e = &env.environment;
    let base = state.config.server.public_url.clone().unwrap_or_default();
    let env_url = format!(
        "{}/orgs/{}/projects/{}/env/{}",
        base.trim_end_matches('/'),
        env.organization_slug,
        env.project_ref,
        url_env(e.env_type)
    );
    let organization = json!({ "id": e.organization_id, "slug": env.organization_slug, "name": env.organization_title });
    let project = json!({ "id": e.project_id, "ref": env.project_ref, "slug": env.project_slug, "name": env.project_name });
    let created = iso(d.created_at);
    if d.event == alert_event::RUN_FAILED {
        let run_id = RunFriendlyId::from(d.subject.clone());
        let Some(run) = state
            .store
            .get_run(&env_id, &run_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let worker = match &run.worker_id {
            Some(w) => state
                .store
                .get_worker(&env_id, w)
                .await
                .map_err(|e| e.to_string())?,
            None => None,
        };
        let task = worker
            .as_ref()
            .and_then(|(_, tasks)| tasks.iter().find(|t| t.slug == run.task_identifier));
        let unknown = || "Unknown".to_string();
        let error: Value = run
            .error
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_else(|| json!({ "type": "STRING_ERROR", "raw": "Unknown error" }));
        let dashboard_url = format!("{env_url}/runs/{}", run.friendly_id);
        let webhook = json!({
            "id": d.id,
            "created": created,
            "webhookVersion": "v1",
            "type": "alert.run.failed",
            "object": {
                "task": {
                    "id": run.task_identifier,
                    "filePath": task.map_or_else(unknown, |t| t.file_path.clone()),
                    "exportName": task.and_then(|t| t.export_name.clone()).unwrap_or_else(unknown),
                    "version": run.task_version.clone().unwrap_or_else(unknown),
                    "sdkVersion": worker.as_ref().and_then(|(w, _)| w.sdk_version.clone()).unwrap_or_else(unknown),
                    "cliVersion": worker.as_ref().and_then(|(w, _)| w.cli_version.clone()).unwrap_or_else(unknown),
                },
                "run": {
                    "id": run.friendly_id,
                    "number": 0,
                    "status": run.status.api_status(),
                    "createdAt": iso(run.created_at),
                    "startedAt": run.started_at.map(iso),
                    "completedAt": run.completed_at.map(iso),
                    "isTest": run.is_test,
                    "idempotencyKey": run.idempotency_key_user,
                    "tags": run.tags,
                    "error": error,
                    "isOutOfMemoryError": false,
                    "machine": run.machine.clone().unwrap_or_else(|| "small-1x".into()),
                    "dashboardUrl": dashboard_url,
                },
                "environment": { "id": e.id, "type": e.env_type.as_str(), "slug": e.slug, "branchName": e.branch_name },
                "organization": organization,
                "project": project,
            }
        });
        let detail = error_text(&error);
        return Ok(Some(Alert {
            webhook: pruned(webhook),
            headline: format!(
                "Run {} of {} failed ({}) [{} {}]",
                run.friendly_id,
                run.task_identifier,
                run.status.api_status(),
                env.project_name,
                e.env_type.as_str()
            ),
            detail,
            link: dashboard_url,
        }));
    }
    if d.event == alert_event::DEPLOYMENT_SUCCEEDED || d.event == alert_event::DEPLOYMENT_FAILED {
        let Some(dep) = state
            .store
            .get_deployment(&env_id, &d.subject)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let environment = json!({ "id": e.id, "type": e.env_type.as_str(), "slug": e.slug, "branchName": e.branch_name });
        let link = format!("{env_url}/deployments");
        let ok = d.event == alert_event::DEPLOYMENT_SUCCEEDED;
        let mut deployment = json!({
            "id": dep.friendly_id,
            "status": dep.status.as_str(),
            "version": dep.version,
            "shortCode": dep.short_code,
        });
        let (webhook, headline, detail) = if ok {
            deployment["deployedAt"] = json!(iso(dep.deployed_at.unwrap_or(d.created_at)));
            let tasks = match &dep.worker_id {
                Some(w) => state
                    .store
                    .get_worker(&env_id, w)
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|(_, tasks)| tasks)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let tasks: Vec<Value> = tasks
                .iter()
                .map(|t| json!({ "id": t.slug, "filePath": t.file_path, "exportName": t.export_name, "triggerSource": t.trigger_source.clone().unwrap_or_else(|| "STANDARD".into()) }))
                .collect();
            let n = tasks.len();
            (
                json!({ "id": d.id, "created": created, "webhookVersion": "v1", "type": "alert.deployment.success",
                        "object": { "deployment": deployment, "environment": environment, "organization": organization, "project": project, "tasks": tasks } }),
                format!(
                    "Deployed {} of {} [{}] with {n} tasks",
                    dep.version,
                    env.project_name,
                    e.env_type.as_str()
                ),
                String::new(),
            )
        } else {
            deployment["failedAt"] = json!(iso(dep.failed_at.unwrap_or(d.created_at)));
            let stored: Value = dep
                .error
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            let text = |k: &str| stored.get(k).and_then(Value::as_str).map(str::to_string);
            let error = json!({
                "name": text("name").unwrap_or_else(|| "Error".into()),
                "message": text("message").unwrap_or_else(|| "The deployment failed".into()),
                "stack": text("stack"),
                "stderr": text("stderr"),
            });
            let detail = text("stderr")
                .or_else(|| text("message"))
                .unwrap_or_default();
            (
                json!({ "id": d.id, "created": created, "webhookVersion": "v1", "type": "alert.deployment.failed",
                        "object": { "deployment": deployment, "environment": environment, "organization": organization, "project": project, "error": error } }),
                format!(
                    "Deployment {} of {} [{}] failed: {}",
                    dep.version,
                    env.project_name,
                    e.env_type.as_str(),
                    error["name"].as_str().unwrap_or("Error")
                ),
                detail,
            )
        };
        return Ok(Some(Alert {
            webhook: pruned(webhook),
            headline,
            detail,
            link,
        }));
    }
    let Some(group) = state
        .store
        .get_error_group(&env_id, &d.subject)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let g = &group.group;
    let classification = d.event.trim_start_matches("error.");
    let label = match classification {
        "new_issue" => "New error",
        "regression" => "Regression",
        _ => "Error resurfaced",
    };
    let dashboard_url = format!("{env_url}/errors/{}", g.fingerprint);
    let webhook = json!({
        "id": d.id,
        "created": created,
        "webhookVersion": "2025-01-01",
        "type": "alert.error",
        "object": {
            "classification": classification,
            "error": {
                "fingerprint": g.fingerprint,
                "type": g.error_type,
                "message": g.error_message,
                "stackTrace": (!g.sample_stack.is_empty()).then(|| g.sample_stack.clone()),
                "firstSeen": iso(g.first_seen),
                "lastSeen": iso(g.last_seen),
                "occurrenceCount": g.occurrence_count,
                "taskIdentifier": d.task_identifier.clone().unwrap_or_else(|| g.task_identifier.clone()),
            },
            "environment": { "id": e.id, "name": e.env_type.as_str() },
            "organization": organization,
            "project": project,
            "dashboardUrl": dashboard_url,
        }
    });
    let detail = if g.sample_stack.is_empty() {
        g.error_message.clone()
    } else {
        g.sample_stack.clone()
    };
    Ok(Some(Alert {
        webhook: pruned(webhook),
        headline: format!(
            "{label}: {} in {} [{} {}] ({} occurrences)",
            if g.error_type.is_empty() {
                "Error"
            } else {
                &g.error_type
            },
            g.task_identifier,
            env.project_name,
            e.env_type.as_str(),
            g.occurrence_count
        ),
        detail,
        link: dashboard_url,
    }))
}

/// `v` without its null members: the SDK's schemas read an absent optional field, and refuse
/// a null one.
fn pruned(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, pruned(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(pruned).collect()),
        other => other,
    }
}

/// A task error's message and stack, as text.
fn error_text(error: &Value) -> String {
    let field = |k: &str| error.get(k).and_then(Value::as_str).unwrap_or_default();
    match field("type") {
        "BUILT_IN_ERROR" => {
            let stack = field("stackTrace");
            if stack.is_empty() {
                format!("{}: {}", field("name"), field("message"))
            } else {
                stack.to_string()
            }
        }
        "INTERNAL_ERROR" => format!("{} {}", field("code"), field("message")),
        _ => field("raw").to_string(),
    }
}

/// A Slack incoming-webhook message: a headline, the error in a code block (cut at 3,000
/// characters), and a link to the dashboard.
fn slack_message(a: &Alert) -> Value {
    let mut detail: String = a.detail.chars().take(SLACK_TEXT_LIMIT).collect();
    if a.detail.chars().count() > SLACK_TEXT_LIMIT {
        detail.push_str("\n…truncated — check the dashboard for the full error");
    }
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    json!({
        "text": a.headline,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": format!("*{}*", escape(&a.headline)) } },
            { "type": "section", "text": { "type": "mrkdwn", "text": format!("```{}```", escape(&detail)) } },
            { "type": "actions", "elements": [
                { "type": "button", "text": { "type": "plain_text", "text": "Investigate" }, "url": a.link, "style": "primary" }
            ] }
        ],
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_slack_text_is_cut_and_escaped() {
        for (attempt, base) in [(1, 1000), (2, 2000), (3, 4000), (4, 8000)] {
            let d = backoff(attempt).num_milliseconds();
            assert!((base..=2 * base).contains(&d), "{attempt}: {d}");
        }
        let alert = Alert {
            webhook: json!({}),
            headline: "New error: <b> in t".into(),
            detail: "x".repeat(SLACK_TEXT_LIMIT + 10),
            link: "https://taskgate.example/e".into(),
        };
        let m = slack_message(&alert);
        assert_eq!(m["text"], "New error: <b> in t");
        assert!(m["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("&lt;b&gt;"));
        let code = m["blocks"][1]["text"]["text"].as_str().unwrap_or_default();
        assert!(code.contains("truncated") && code.len() < SLACK_TEXT_LIMIT + 100);
    }

    #[test]
    fn null_members_are_left_out_for_the_sdk_schemas() {
        let v = pruned(
            json!({ "a": null, "b": { "c": null, "d": 1 }, "e": [{ "f": null }], "g": "x" }),
        );
        assert_eq!(v, json!({ "b": { "d": 1 }, "e": [{}], "g": "x" }));
    }
}
