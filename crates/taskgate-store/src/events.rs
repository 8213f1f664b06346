//! Change events a store publishes so every node can drop what it cached.
//!
//! PostgreSQL sends them with `pg_notify` inside the writing transaction (delivered to every
//! listening node, this one included, only on commit); SQLite, which serves one process,
//! sends them in-process after the commit.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// A synchronous observer of change events (see `Store::on_change`).
pub type ChangeHook = Arc<dyn Fn(&ChangeEvent) + Send + Sync>;

/// The hooks of a store and its broadcast channel: what every backend delivers events to.
pub struct ChangeFanout {
    hooks: RwLock<Vec<ChangeHook>>,
    sender: tokio::sync::broadcast::Sender<ChangeEvent>,
}

impl ChangeFanout {
    /// `buffer` events are kept per subscriber before a slow one starts missing them.
    pub fn new(buffer: usize) -> Self {
        Self {
            hooks: RwLock::new(Vec::new()),
            sender: tokio::sync::broadcast::channel(buffer).0,
        }
    }

    pub fn add_hook(&self, hook: ChangeHook) {
        if let Ok(mut hooks) = self.hooks.write() {
            hooks.push(hook);
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ChangeEvent> {
        self.sender.subscribe()
    }

    /// Calls every hook, then broadcasts. No subscriber is not an error.
    pub fn deliver(&self, event: ChangeEvent) {
        if let Ok(hooks) = self.hooks.read() {
            for hook in hooks.iter() {
                hook(&event);
            }
        }
        let _ = self.sender.send(event);
    }
}

/// Something changed that caches or subscribers may hold a stale copy of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeEvent {
    /// An environment's current key changed, or one of its revoked keys' grace changed.
    EnvKeys { environment_id: String },
    /// A project (and so every environment in it) was soft-deleted.
    ProjectDeleted { project_id: String },
    /// An organization (and so everything in it) was soft-deleted.
    OrgDeleted { organization_id: String },
    /// New environments, with new keys, were made in an organization (a project was created,
    /// a member added).
    KeysIssued { organization_id: String },
    /// An organization's API rate limit changed.
    OrgRateLimit { organization_id: String },
    /// A personal access token was revoked.
    PatRevoked { pat_id: String },
    /// A run changed state; `version` orders changes of one run. `execution_status` is its
    /// execution snapshot's status afterwards, so a worker's channel can tell what concerns it.
    Run {
        run_id: String,
        #[serde(default)]
        friendly_id: String,
        environment_id: String,
        version: i64,
        #[serde(default)]
        execution_status: String,
        /// The worker running it must fetch its snapshot now: a cancellation, an end without
        /// it, a wait beginning or ending.
        #[serde(default)]
        notify_worker: bool,
    },
    /// A waitpoint's timer was set for `due_at_ms` (epoch milliseconds): every node's timer
    /// loop wakes for it if it would otherwise sleep past it.
    Timer { due_at_ms: i64 },
    /// An environment's variables changed.
    EnvVars { environment_id: String },
    /// An environment's queue may have runs a worker can now take (a new worker knows more
    /// tasks). Run changes wake the queue too; this is for what is not a run change.
    Queue { environment_id: String },
    /// A chunk was appended to a run's stream.
    Stream { run_id: String, stream_id: String },
    /// Events may have been lost (a listener reconnected): drop everything cached.
    Resync,
}

impl ChangeEvent {
    /// The channel name used on PostgreSQL.
    pub const CHANNEL: &'static str = "taskgate_changes";
}
