//! Alert channels: made through upstream's `POST /api/v1/projects/{ref}/alertChannels` (a
//! personal access token) or the dashboard, listed, switched and deleted. Changing a
//! project's channels takes `write` on `alerts` (owners and admins).

use taskgate_auth::UserPrincipal;
use taskgate_core::env::EnvType;
use taskgate_core::ids::random_string;
use taskgate_core::scope::Resource;
use taskgate_core::webhook::check_url;
use taskgate_core::Problem;
use taskgate_store::*;

use crate::{access, Result, UseCases};

/// Longest channel name, deduplication key and email address.
const MAX_NAME_LEN: usize = 256;
/// Length of a generated webhook secret.
const SECRET_LEN: usize = 32;

/// Upstream's API alert types and how they are stored.
const ALERT_TYPES: &[(&str, &str)] = &[
    ("run_failure", ALERT_TASK_RUN),
    ("attempt_failure", ALERT_TASK_RUN_ATTEMPT),
    ("deployment_failure", ALERT_DEPLOYMENT_FAILURE),
    ("deployment_success", ALERT_DEPLOYMENT_SUCCESS),
    ("error_group", ALERT_ERROR_GROUP),
];

/// A stored alert type's API name.
pub fn api_alert_type(stored: &str) -> &str {
    ALERT_TYPES
        .iter()
        .find(|(_, s)| *s == stored)
        .map_or(stored, |(api, _)| api)
}

/// A channel as a client asks for it (upstream's body, plus taskgate's `slack` kind).
#[derive(Debug, Clone, Default)]
pub struct ChannelRequest {
    pub name: String,
    /// `webhook`, `email` or `slack`.
    pub channel: String,
    /// API names: `run_failure`, `error_group`, …
    pub alert_types: Vec<String>,
    /// `STAGING`, `PRODUCTION` (the default pair), and also `DEVELOPMENT` and `PREVIEW`.
    pub environment_types: Vec<String>,
    pub url: Option<String>,
    pub email: Option<String>,
    pub secret: Option<String>,
    pub deduplication_key: Option<String>,
}

/// A saved channel and its webhook secret in the clear (what the creator is answered).
pub struct SavedChannel {
    pub channel: AlertChannel,
    pub secret: Option<String>,
    pub created: bool,
}

fn length(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(Problem::invalid_body(format!(
            "{what} must be 1 to {MAX_NAME_LEN} characters without control characters"
        )));
    }
    Ok(())
}

async fn project_to_change(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
) -> Result<ProjectAccess> {
    let project = access::project_for_user(uc, principal, project_ref).await?;
    access::require(
        uc,
        principal,
        project.role,
        "write",
        Resource::new("alerts"),
    )?;
    Ok(project)
}

/// Creates a channel of the project, or updates (and enables) the one with the same
/// deduplication key.
pub async fn upsert_channel(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
    req: ChannelRequest,
) -> Result<SavedChannel> {
    let project = project_to_change(uc, principal, project_ref).await?;
    length("name", &req.name)?;
    if let Some(key) = &req.deduplication_key {
        length("deduplicationKey", key)?;
    }
    if req.alert_types.is_empty() {
        return Err(Problem::invalid_body(
            "alertTypes must name at least one type",
        ));
    }
    let mut alert_types = Vec::new();
    for t in &req.alert_types {
        let stored = ALERT_TYPES
            .iter()
            .find(|(api, _)| api == t)
            .map(|(_, s)| s.to_string())
            .ok_or_else(|| {
                Problem::invalid_body(format!(
                    "alertTypes: {t:?} is not one of run_failure, attempt_failure, deployment_failure, deployment_success, error_group"
                ))
            })?;
        if !alert_types.contains(&stored) {
            alert_types.push(stored);
        }
    }
    let mut environment_types = Vec::new();
    for e in &req.environment_types {
        let t = EnvType::parse_db(e).ok_or_else(|| {
            Problem::invalid_body(format!(
                "environmentTypes: {e:?} is not one of DEVELOPMENT, STAGING, PRODUCTION, PREVIEW"
            ))
        })?;
        if !environment_types.contains(&t) {
            environment_types.push(t);
        }
    }
    if environment_types.is_empty() {
        environment_types = vec![EnvType::Staging, EnvType::Production];
    }
    let allow_private = uc.settings.webhook_allow_private;
    let (kind, destination, secret) = match req.channel.as_str() {
        "webhook" => {
            let url = req
                .url
                .ok_or_else(|| Problem::unprocessable("A webhook channel needs channelData.url"))?;
            check_url(&url, allow_private).map_err(|e| Problem::unprocessable(e.to_string()))?;
            let secret = match req.secret {
                Some(s) => {
                    length("channelData.secret", &s)?;
                    s
                }
                None => random_string(
                    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    SECRET_LEN,
                ),
            };
            (AlertChannelKind::Webhook, url, Some(secret))
        }
        "slack" => {
            let url = req.url.ok_or_else(|| {
                Problem::unprocessable("A Slack channel needs channelData.url: its incoming-webhook URL")
            })?;
            check_url(&url, allow_private).map_err(|e| Problem::unprocessable(e.to_string()))?;
            (AlertChannelKind::Slack, url, None)
        }
        "email" => {
            return Err(Problem::unprocessable(
                "taskgate does not deliver email alerts yet: use a webhook or a Slack incoming-webhook channel",
            ))
        }
        other => {
            return Err(Problem::unprocessable(format!(
                "Invalid channel type {other:?}: use webhook or slack"
            )))
        }
    };
    let sealed = secret
        .as_deref()
        .map(|s| uc.auth.vault.seal_alert_secret(&project.project.id, s));
    let (channel, created) = uc
        .store
        .upsert_alert_channel(
            NewAlertChannel {
                project_id: project.project.id.clone(),
                deduplication_key: req.deduplication_key,
                kind,
                name: req.name,
                alert_types,
                environment_types,
                destination,
                secret_sealed: sealed,
            },
            uc.now(),
        )
        .await?;
    tracing::info!(project.id = %project.project.id, channel.id = %channel.friendly_id, kind = channel.kind.as_str(), created, "alert channel saved");
    Ok(SavedChannel {
        channel,
        secret,
        created,
    })
}

/// The project's channels (reading them takes `read` on `alerts`).
pub async fn list_channels(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
) -> Result<(ProjectAccess, Vec<AlertChannel>)> {
    let project = access::project_for_user(uc, principal, project_ref).await?;
    access::require(uc, principal, project.role, "read", Resource::new("alerts"))?;
    let channels = uc.store.list_alert_channels(&project.project.id).await?;
    Ok((project, channels))
}

/// Enables or disables a channel of the project.
pub async fn set_enabled(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
    friendly_id: &str,
    enabled: bool,
) -> Result<AlertChannel> {
    let project = project_to_change(uc, principal, project_ref).await?;
    uc.store
        .set_alert_channel_enabled(&project.project.id, friendly_id, enabled, uc.now())
        .await?
        .ok_or_else(|| Problem::not_found("Alert channel not found"))
}

/// Deletes a channel of the project, and its deliveries.
pub async fn delete(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
    friendly_id: &str,
) -> Result<()> {
    let project = project_to_change(uc, principal, project_ref).await?;
    if !uc
        .store
        .delete_alert_channel(&project.project.id, friendly_id)
        .await?
    {
        return Err(Problem::not_found("Alert channel not found"));
    }
    tracing::info!(project.id = %project.project.id, channel.id = %friendly_id, "alert channel deleted");
    Ok(())
}

/// The newest deliveries of the project's channels (reading them takes `read` on `alerts`).
pub async fn list_deliveries(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
    limit: u32,
) -> Result<Vec<DeliveryRecord>> {
    let project = access::project_for_user(uc, principal, project_ref).await?;
    access::require(uc, principal, project.role, "read", Resource::new("alerts"))?;
    Ok(uc
        .store
        .list_alert_deliveries(&project.project.id, limit.clamp(1, 500))
        .await?)
}

/// Sends a dead delivery again, from its first try.
pub async fn resend(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
    delivery_id: &str,
) -> Result<()> {
    let project = project_to_change(uc, principal, project_ref).await?;
    if !uc
        .store
        .resend_alert_delivery(&project.project.id, delivery_id, uc.now())
        .await?
    {
        return Err(Problem::not_found(
            "No dead delivery with this id in the project",
        ));
    }
    tracing::info!(project.id = %project.project.id, delivery.id = %delivery_id, "alert delivery queued again");
    Ok(())
}
