//! Alert channels on the wire: upstream's `POST /api/v1/projects/{ref}/alertChannels`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a channel delivers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertChannelData {
    /// The webhook's (or Slack incoming webhook's) URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The webhook's signing secret: given, or generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `POST /api/v1/projects/{projectRef}/alertChannels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAlertChannelRequest {
    /// `run_failure`, `attempt_failure` (stored; never delivered, as upstream),
    /// `deployment_failure`, `deployment_success`, `error_group`.
    pub alert_types: Vec<String>,
    pub name: String,
    /// `webhook`, or `slack` (an incoming-webhook URL; beyond upstream). `email` is refused
    /// (422) until taskgate delivers email alerts.
    pub channel: String,
    pub channel_data: AlertChannelData,
    /// A channel with the same key in the project is updated (and enabled) instead.
    #[serde(default)]
    pub deduplication_key: Option<String>,
    /// `STAGING` and `PRODUCTION` by default; `DEVELOPMENT` and `PREVIEW` too (beyond upstream).
    #[serde(default)]
    pub environment_types: Option<Vec<String>>,
}

/// A saved channel, with a webhook's secret in the clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertChannelObject {
    /// `alert_channel_…`.
    pub id: String,
    pub name: String,
    pub alert_types: Vec<String>,
    /// `webhook`, `email` or `slack`.
    pub channel: String,
    pub channel_data: AlertChannelData,
    /// Answered only when the creator gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication_key: Option<String>,
}
