//! What the server keeps in memory about the workers it serves: registered workers and their
//! tasks (immutable once registered, so cached without expiry), and when each development
//! environment's presence was last written (so a CLI polling every second costs one write
//! per interval, not one per request).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use taskgate_store::{Worker, WorkerTask};

use crate::error::ApiResult;
use crate::state::AppState;

/// How often a connected CLI's presence is written. Presence lasts [`PRESENCE_TTL`], three
/// writes, so one slow write never makes a connected CLI look gone.
pub const PRESENCE_WRITE_INTERVAL: Duration = Duration::from_secs(5);
/// How long after its last sign of life a development CLI counts as connected.
pub const PRESENCE_TTL: chrono::Duration = chrono::Duration::seconds(15);
/// Workers kept in memory; registrations beyond this evict the oldest entries first.
const MAX_CACHED_WORKERS: usize = 4096;

/// A worker and its tasks.
pub type WorkerWithTasks = Arc<(Worker, Vec<WorkerTask>)>;

/// The in-memory part of the engine.
#[derive(Default)]
pub struct Workers {
    cache: Mutex<HashMap<String, (Instant, WorkerWithTasks)>>,
    presence_written: Mutex<HashMap<String, Instant>>,
}

impl Workers {
    /// A worker of `environment_id` by id or friendly id, from the cache or loaded once.
    pub async fn get(
        &self,
        state: &AppState,
        environment_id: &str,
        id: &str,
    ) -> ApiResult<Option<WorkerWithTasks>> {
        if let Some((_, w)) = self.cache.lock().get(id) {
            if w.0.environment_id == environment_id {
                return Ok(Some(w.clone()));
            }
        }
        let Some(found) = state.store.get_worker(environment_id, id).await? else {
            return Ok(None);
        };
        let w = Arc::new(found);
        self.remember(w.clone());
        Ok(Some(w))
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
        cache.insert(w.0.id.clone(), (now, w.clone()));
        cache.insert(w.0.friendly_id.clone(), (now, w));
    }

    /// Records that the environment's CLI is alive, writing it at most once per
    /// [`PRESENCE_WRITE_INTERVAL`] from this node. A failed write is logged and retried at
    /// the next sign of life: presence must never fail the request that carries it.
    pub async fn touch_presence(&self, state: &AppState, environment_id: &str) {
        {
            let mut written = self.presence_written.lock();
            let now = Instant::now();
            if written.len() > MAX_CACHED_WORKERS {
                written.retain(|_, at| now.duration_since(*at) < PRESENCE_WRITE_INTERVAL);
            }
            match written.get(environment_id) {
                Some(at) if now.duration_since(*at) < PRESENCE_WRITE_INTERVAL => return,
                _ => {
                    written.insert(environment_id.to_string(), now);
                }
            }
        }
        if let Err(e) = state
            .store
            .touch_dev_presence(environment_id, state.now())
            .await
        {
            self.presence_written.lock().remove(environment_id);
            tracing::warn!(env.id = %environment_id, error = %e, "could not record dev presence");
        }
    }
}
