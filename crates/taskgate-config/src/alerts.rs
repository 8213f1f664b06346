//! Alerts: where their webhooks may go.

use crate::Names;

options! {
    /// Alert delivery.
    pub struct AlertArgs {
        /// Let alert webhooks reach private, loopback and link-local addresses (a receiver on
        /// the same network); by default such a URL is refused when the channel is made and
        /// when each delivery connects [default: false].
        #[arg(long, env = "TASKGATE_WEBHOOK_ALLOW_PRIVATE", value_name = "BOOL")]
        pub webhook_allow_private: Option<bool>,
    }
}

/// The alerts section, validated.
#[derive(Clone, Debug, Default)]
pub struct AlertConfig {
    /// Whether webhooks may reach private, loopback and link-local addresses.
    pub webhook_allow_private: bool,
}

impl AlertArgs {
    pub(crate) fn validate(self, _n: &impl Names) -> anyhow::Result<AlertConfig> {
        Ok(AlertConfig {
            webhook_allow_private: self.webhook_allow_private.unwrap_or(false),
        })
    }
}
