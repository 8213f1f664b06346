//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretBox;
use taskgate_config::Config;
use taskgate_core::time::Clock;
use taskgate_core::vault::KeyVault;
use taskgate_engine::Engine;
use taskgate_store::Store;
use taskgate_usecases::UseCases;

use taskgate_auth::policy::AccessPolicy;
use taskgate_auth::ratelimit::RateLimiter;
use taskgate_auth::Auth;

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
    /// Credentials to principals: the caches, the key filter and the access policy.
    pub auth: Auth,
    /// The run engine: triggers, the queue, attempts, wake-ups and the worker registry.
    pub engine: Arc<Engine>,
    /// What the API, the dashboard and the CLI share: access, keys, members, triage…
    pub usecases: Arc<UseCases>,
    /// Deployed runs: deployments, bundles and the processes that execute them.
    pub runner: Arc<taskgate_runner::Runner>,
    /// Sign-in link requests per client address (this node's count).
    pub sign_in_requests: Arc<taskgate_auth::ratelimit::local::LocalBuckets>,
    /// What each many-run feed handle has been sent.
    pub run_sets: Arc<crate::realtime::working_sets::WorkingSets>,
    /// The API rate limiter; `None` when rate limits are off.
    pub limiter: Option<Arc<RateLimiter>>,
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
            auth: self.auth.with_policy(policy.clone()),
            usecases: Arc::new(self.usecases.with_policy(policy)),
            ..(*self.0).clone()
        })
    }
}

// State slices: a handler that needs only the engine, the use cases or the store takes that
// (`State<Arc<Engine>>`), not the whole state.
impl FromRef<AppState> for Arc<Engine> {
    fn from_ref(state: &AppState) -> Self {
        state.engine.clone()
    }
}

impl FromRef<AppState> for Arc<UseCases> {
    fn from_ref(state: &AppState) -> Self {
        state.usecases.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Store> {
    fn from_ref(state: &AppState) -> Self {
        state.store.clone()
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
