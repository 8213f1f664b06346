//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretBox;
use taskgate_config::Config;
use taskgate_core::time::Clock;
use taskgate_core::vault::KeyVault;
use taskgate_engine::Engine;
use taskgate_store::Store;

use crate::auth::cache::AuthCache;
use crate::auth::policy::AccessPolicy;

/// Shared state. The router clones it into every request, so it is one `Arc`: a clone is a
/// single reference count, whatever the state holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub vault: Arc<KeyVault>,
    /// Signs user-actor tokens.
    pub session_secret: Arc<SecretBox<Vec<u8>>>,
    pub cache: Arc<AuthCache>,
    /// Every live secret key, so that one never issued is refused without a query.
    pub key_filter: Arc<crate::auth::filter::KeyFilter>,
    /// Decides what users may do; [`crate::auth::policy::RolePolicy`] unless replaced.
    pub policy: Arc<dyn AccessPolicy>,
    /// The run engine: triggers, the queue, attempts, wake-ups and the worker registry.
    pub engine: Arc<Engine>,
    /// Sign-in link requests per client address (this node's count).
    pub sign_in_requests: Arc<crate::ratelimit::local::LocalBuckets>,
    /// What each many-run feed handle has been sent.
    pub run_sets: Arc<crate::realtime::run_sets::WorkingSets>,
    /// The API rate limiter; `None` when rate limits are off.
    pub limiter: Option<Arc<crate::ratelimit::RateLimiter>>,
    pub config: Arc<Config>,
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// The same state with another authorization policy (an operator's own).
    pub fn with_policy(&self, policy: Arc<dyn AccessPolicy>) -> Self {
        Self::new(Shared {
            policy,
            ..(*self.0).clone()
        })
    }
}

impl Shared {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// [`Self::now`] in milliseconds since the Unix epoch, without building a date.
    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }
}
