//! Alerts: a project's channels, and the outbox of deliveries that events fill in the
//! transaction that makes them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::env::EnvType;

use crate::error::StoreResult;

/// Where a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChannelKind {
    /// A signed JSON `POST` to a URL.
    Webhook,
    /// Mail over the server's SMTP.
    Email,
    /// A message to a Slack incoming-webhook URL.
    Slack,
}

impl AlertChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertChannelKind::Webhook => "WEBHOOK",
            AlertChannelKind::Email => "EMAIL",
            AlertChannelKind::Slack => "SLACK",
        }
    }

    pub fn parse(s: &str) -> Option<AlertChannelKind> {
        [
            AlertChannelKind::Webhook,
            AlertChannelKind::Email,
            AlertChannelKind::Slack,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What a channel is told about, as stored (upstream's names).
pub const ALERT_TASK_RUN: &str = "TASK_RUN";
pub const ALERT_TASK_RUN_ATTEMPT: &str = "TASK_RUN_ATTEMPT";
pub const ALERT_DEPLOYMENT_FAILURE: &str = "DEPLOYMENT_FAILURE";
pub const ALERT_DEPLOYMENT_SUCCESS: &str = "DEPLOYMENT_SUCCESS";
pub const ALERT_ERROR_GROUP: &str = "ERROR_GROUP";

/// A project's alert channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertChannel {
    pub id: String,
    /// `alert_channel_…`.
    pub friendly_id: String,
    pub project_id: String,
    pub deduplication_key: String,
    /// Whether the creator chose the key (it is answered back only then).
    pub user_deduplication_key: bool,
    pub enabled: bool,
    pub kind: AlertChannelKind,
    pub name: String,
    /// Stored alert types (`TASK_RUN`, `ERROR_GROUP`, …).
    pub alert_types: Vec<String>,
    pub environment_types: Vec<EnvType>,
    /// The URL, or the email address.
    pub destination: String,
    /// A webhook's signing secret, sealed.
    pub secret_sealed: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A channel to create, or to update in place when the project has one with the same key.
#[derive(Debug, Clone)]
pub struct NewAlertChannel {
    pub project_id: String,
    /// `None`: a new channel with a generated key.
    pub deduplication_key: Option<String>,
    pub kind: AlertChannelKind,
    pub name: String,
    pub alert_types: Vec<String>,
    pub environment_types: Vec<EnvType>,
    pub destination: String,
    pub secret_sealed: Option<String>,
}

/// An alert event, as the outbox names it.
pub mod alert_event {
    /// A run failed for good (not cancelled or expired).
    pub const RUN_FAILED: &str = "run.failed";
    /// An error group's first occurrence.
    pub const ERROR_NEW_ISSUE: &str = "error.new_issue";
    /// A resolved group failed again.
    pub const ERROR_REGRESSION: &str = "error.regression";
    /// An ignored group came back (its time passed, or its rate or total was exceeded).
    pub const ERROR_UNIGNORED: &str = "error.unignored";
    /// A deployment indexed and is ready to promote (or was promoted).
    pub const DEPLOYMENT_SUCCEEDED: &str = "deployment.success";
    /// A deployment failed (its bundle did not index, an upload or install failed).
    pub const DEPLOYMENT_FAILED: &str = "deployment.failed";
}

/// A delivery a node has claimed: the channel, the event and what it is about.
#[derive(Debug, Clone)]
pub struct AlertDelivery {
    /// Stable across retries: receivers drop a repeat by it.
    pub id: String,
    pub channel: AlertChannel,
    pub environment_id: String,
    /// One of [`alert_event`].
    pub event: String,
    /// The run's friendly id, the error group's fingerprint, or the deployment's id.
    pub subject: String,
    pub task_identifier: Option<String>,
    /// Tries so far, this one included.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// How a try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent,
    /// Try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// No more tries: kept, visible, and resendable.
    Dead {
        error: String,
    },
}

/// A delivery as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: String,
    pub channel_friendly_id: String,
    pub event: String,
    pub subject: String,
    /// `PENDING`, `SENT` or `DEAD`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Channels and their outbox.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Creates a channel, or updates (and enables) the project's one with the same key
    /// (`false`).
    async fn upsert_alert_channel(
        &self,
        channel: NewAlertChannel,
        now: DateTime<Utc>,
    ) -> StoreResult<(AlertChannel, bool)>;
    /// The project's channels, oldest first.
    async fn list_alert_channels(&self, project_id: &str) -> StoreResult<Vec<AlertChannel>>;
    /// Enables or disables a channel of the project (`None`: no such channel).
    async fn set_alert_channel_enabled(
        &self,
        project_id: &str,
        friendly_id: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AlertChannel>>;
    /// Deletes a channel of the project and its deliveries; false when it has none such.
    async fn delete_alert_channel(&self, project_id: &str, friendly_id: &str) -> StoreResult<bool>;
    /// Claims up to `limit` deliveries of enabled channels due at `now`, each leased for
    /// `lease`; several nodes may call it at once and each delivery goes to one. A disabled
    /// channel's deliveries wait until it is enabled again.
    async fn claim_alert_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<AlertDelivery>>;
    /// Records how a claimed try ended.
    async fn finish_alert_delivery(
        &self,
        id: &str,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The newest deliveries of the project's channels.
    async fn list_alert_deliveries(
        &self,
        project_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Sends a dead delivery of the project again (false when it has none such).
    async fn resend_alert_delivery(
        &self,
        project_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}
