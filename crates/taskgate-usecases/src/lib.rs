//! The use cases the API, the dashboard and the CLI share: what a user may do where
//! ([`access`]), rotating a key ([`keys`]), administering users and grace windows
//! ([`admin`]), members ([`orgs`]), tokens ([`tokens`]), error triage ([`errors`]),
//! organizations' rate limits ([`rate_limits`]), promoting deployments ([`deployments`]), schedules ([`schedules`]), queues
//! ([`queues`]) and alert channels ([`alerts`]). How a run moves is the engine's
//! ([`taskgate_engine`]), which these call where they need it.
//!
//! Each takes the [`UseCases`] context and the acting principal, authorizes with the same
//! policy the API uses, makes one store call (one transaction), and refuses with a
//! [`Problem`] in upstream's words that each adapter maps to its own answer: a status and
//! body for the API, a page for the dashboard.

pub mod access;
pub mod admin;
pub mod alerts;
pub mod deployments;
pub mod errors;
pub mod keys;
pub mod orgs;
pub mod queues;
pub mod rate_limits;
pub mod schedules;
pub mod text;
pub mod tokens;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use taskgate_auth::Auth;
use taskgate_core::ratelimit::LimitConfig;
use taskgate_core::Problem;
use taskgate_engine::Engine;
use taskgate_store::Store;

/// A use case's result: its answer, or upstream's refusal.
pub type Result<T, E = Problem> = std::result::Result<T, E>;

/// What the use cases are configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The grace window a rotated key gets unless the caller chooses one.
    pub grace: chrono::Duration,
    /// The default limit of organizations without their own.
    pub default_rate_limit: LimitConfig,
    /// Whether alert webhooks may point at private, loopback and link-local addresses.
    pub webhook_allow_private: bool,
}

/// What the use cases work with: the store, authentication (for the policy, the clock and
/// the secrets), the engine and their settings.
pub struct UseCases {
    pub store: Arc<dyn Store>,
    pub auth: Auth,
    pub engine: Arc<Engine>,
    pub settings: Settings,
}

impl UseCases {
    pub fn now(&self) -> DateTime<Utc> {
        self.auth.now()
    }

    /// The same, with another authorization policy (an operator's own).
    pub fn with_policy(&self, policy: Arc<dyn taskgate_auth::policy::AccessPolicy>) -> UseCases {
        UseCases {
            store: self.store.clone(),
            auth: self.auth.with_policy(policy),
            engine: self.engine.clone(),
            settings: self.settings.clone(),
        }
    }
}
