//! What the server keeps in memory about the workers it serves: registered workers and their
//! tasks (immutable once registered, so cached without expiry), environments' sealed
//! variables (dropped on a change event from any node), and development presence (written
//! at most once per interval per environment, read at most once per interval), so that a run
//! costs the database no lookups a cache can answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use taskgate_core::ids::EnvironmentId;
use taskgate_store::{ChangeEvent, EnvVar, Store, StoreResult, Worker, WorkerTask};

/// How often a connected CLI's presence is written. Presence lasts [`PRESENCE_TTL`], three
/// writes, so one slow write never makes a connected CLI look gone.
pub const PRESENCE_WRITE_INTERVAL: Duration = Duration::from_secs(5);
/// How long after its last sign of life a development CLI counts as connected.
pub const PRESENCE_TTL: chrono::Duration = chrono::Duration::seconds(15);
/// Workers kept in memory; registrations beyond this evict the oldest entries first.
const MAX_CACHED_WORKERS: usize = 4096;
/// How long an environment's variables are trusted without a change event (the events make
/// this a backstop, for a notification lost while a listener reconnects).
const ENV_VARS_TTL: Duration = Duration::from_secs(60);
/// How long a presence read answers "is a CLI connected" for a trigger's log line.
const PRESENCE_READ_TTL: Duration = Duration::from_secs(5);
/// How long "does this environment run a deployment" is answered from memory for a
/// trigger's log line.
const DEPLOYED_READ_TTL: Duration = Duration::from_secs(30);
/// How often at most the log says, per environment, that its runs wait for a deployment.
const UNDEPLOYED_WARN_INTERVAL: Duration = Duration::from_secs(600);

/// A worker and its tasks.
pub type WorkerWithTasks = Arc<(Worker, Vec<WorkerTask>)>;

/// The in-memory part of the engine.
#[derive(Default)]
pub struct Workers {
    cache: Mutex<HashMap<String, (Instant, WorkerWithTasks)>>,
    presence_written: Mutex<HashMap<String, Instant>>,
    presence_read: Mutex<HashMap<String, (Instant, bool)>>,
    env_vars: Mutex<HashMap<String, (Instant, EnvVars)>>,
    deployed_read: Mutex<HashMap<String, (Instant, bool)>>,
    undeployed_warned: Mutex<HashMap<String, Instant>>,
}

/// An environment's variables as loaded, shared by the dequeues that read them.
type EnvVars = Arc<Vec<EnvVar>>;

impl Workers {
    /// A worker of `environment_id` by id or friendly id, from the cache or loaded once.
    pub async fn get(
        &self,
        store: &dyn Store,
        environment_id: &EnvironmentId,
        id: &str,
    ) -> StoreResult<Option<WorkerWithTasks>> {
        if let Some((_, w)) = self.cache.lock().get(id) {
            if w.0.environment_id == *environment_id {
                return Ok(Some(w.clone()));
            }
        }
        let Some(found) = store.get_worker(environment_id, id).await? else {
            return Ok(None);
        };
        let w = Arc::new(found);
        self.remember(w.clone());
        Ok(Some(w))
    }

    /// Whether `environment_id` runs a promoted deployment, read at most once per
    /// [`DEPLOYED_READ_TTL`].
    pub async fn deployed(
        &self,
        store: &dyn Store,
        environment_id: &EnvironmentId,
    ) -> StoreResult<bool> {
        let key = environment_id.to_string();
        if let Some((at, deployed)) = self.deployed_read.lock().get(&key) {
            if at.elapsed() < DEPLOYED_READ_TTL {
                return Ok(*deployed);
            }
        }
        let deployed = store.current_deployment(environment_id).await?.is_some();
        let mut read = self.deployed_read.lock();
        if read.len() >= MAX_CACHED_WORKERS {
            read.clear();
        }
        read.insert(key, (Instant::now(), deployed));
        Ok(deployed)
    }

    /// Whether the log should say now that `environment_id`'s runs wait for a deployment (at
    /// most once per [`UNDEPLOYED_WARN_INTERVAL`]).
    pub fn warn_undeployed(&self, environment_id: &EnvironmentId) -> bool {
        let mut warned = self.undeployed_warned.lock();
        let key = environment_id.to_string();
        if warned
            .get(&key)
            .is_some_and(|at| at.elapsed() < UNDEPLOYED_WARN_INTERVAL)
        {
            return false;
        }
        if warned.len() >= MAX_CACHED_WORKERS {
            warned.clear();
        }
        warned.insert(key, Instant::now());
        true
    }

    /// Caches a worker under its id and its friendly id.
    pub fn remember(&self, w: WorkerWithTasks) {
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED_WORKERS {
            let mut oldest: Vec<(Instant, String)> =
                cache.iter().map(|(k, (at, _))| (*at, k.clone())).collect();
            oldest.sort();
            for (_, k) in oldest.into_iter().take(MAX_CACHED_WORKERS / 4) {
                cache.remove(&k);
            }
        }
        let now = Instant::now();
        cache.insert(w.0.id.to_string(), (now, w.clone()));
        cache.insert(w.0.friendly_id.to_string(), (now, w));
    }

    /// An environment's variables, sealed, from the cache or loaded once.
    pub async fn env_vars(
        &self,
        store: &dyn Store,
        environment_id: &EnvironmentId,
    ) -> StoreResult<Arc<Vec<EnvVar>>> {
        if let Some((at, vars)) = self.env_vars.lock().get(environment_id.as_str()) {
            if at.elapsed() < ENV_VARS_TTL {
                return Ok(vars.clone());
            }
        }
        let vars = Arc::new(store.list_env_vars(environment_id).await?);
        let mut cache = self.env_vars.lock();
        if cache.len() >= MAX_CACHED_WORKERS {
            cache.clear();
        }
        cache.insert(environment_id.to_string(), (Instant::now(), vars.clone()));
        Ok(vars)
    }

    /// Drops what a change made stale (registered as a store hook, so this node's changes and
    /// other nodes' notifications both reach it).
    pub fn on_change(&self, event: &ChangeEvent) {
        match event {
            ChangeEvent::EnvVars { environment_id } => {
                self.env_vars.lock().remove(environment_id.as_str());
            }
            ChangeEvent::Resync => self.env_vars.lock().clear(),
            _ => {}
        }
    }

    /// Whether a development CLI is connected to the environment, read at most once per
    /// [`PRESENCE_READ_TTL`].
    pub async fn dev_connected(
        &self,
        store: &dyn Store,
        environment_id: &EnvironmentId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if let Some((at, connected)) = self.presence_read.lock().get(environment_id.as_str()) {
            if at.elapsed() < PRESENCE_READ_TTL {
                return Ok(*connected);
            }
        }
        let seen = store.dev_presence(environment_id).await?;
        let connected = seen.is_some_and(|at| at + PRESENCE_TTL > now);
        let mut cache = self.presence_read.lock();
        if cache.len() >= MAX_CACHED_WORKERS {
            cache.clear();
        }
        cache.insert(environment_id.to_string(), (Instant::now(), connected));
        Ok(connected)
    }

    /// Records that the environment's CLI is alive, writing it at most once per
    /// [`PRESENCE_WRITE_INTERVAL`] from this node. A failed write is logged and retried at
    /// the next sign of life: presence must never fail the request that carries it.
    pub async fn touch_presence(
        &self,
        store: &dyn Store,
        environment_id: &EnvironmentId,
        now: DateTime<Utc>,
    ) {
        {
            let mut written = self.presence_written.lock();
            let now = Instant::now();
            if written.len() > MAX_CACHED_WORKERS {
                written.retain(|_, at| now.duration_since(*at) < PRESENCE_WRITE_INTERVAL);
            }
            match written.get(environment_id.as_str()) {
                Some(at) if now.duration_since(*at) < PRESENCE_WRITE_INTERVAL => return,
                _ => {
                    written.insert(environment_id.to_string(), now);
                }
            }
        }
        if let Err(e) = store.touch_dev_presence(environment_id, now).await {
            self.presence_written.lock().remove(environment_id.as_str());
            tracing::warn!(env.id = %environment_id, error = %e, "could not record dev presence");
        }
    }
}
