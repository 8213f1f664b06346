//! [`Watchers`]: the wake-ups behind every wait on a run, a queue or a stream (the realtime
//! feeds, stream readers, dequeues, the worker channel), fed by the store's change events.
//!
//! A waiting request holds one `watch` receiver keyed by what it waits on; a change notifies
//! only that key's watchers (O(1) per change, whatever the number of subscribers). A watch
//! channel keeps only the latest value, so a slow subscriber never queues anything and never
//! stalls others; when a client disconnects its request future is dropped, and with it the
//! receiver and, if it was the last, the registry entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use taskgate_store::ChangeEvent;
use tokio::sync::watch;

/// What a watch channel carries: how many changes there have been, and when the last one was
/// signalled (so a waiter can tell how long it took to act on it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Signal {
    pub count: u64,
    pub at: Option<Instant>,
}

/// Who is waiting for what, and the latest version of each recently changed run.
#[derive(Default)]
pub struct Watchers {
    map: Mutex<HashMap<String, watch::Sender<Signal>>>,
    versions: Mutex<HashMap<String, (i64, Instant)>>,
}

/// How long a run's latest version is remembered: far longer than any replica lags, so a
/// read from the replica is known stale while it could be.
const VERSION_MEMORY: Duration = Duration::from_secs(60);
/// Versions remembered before old ones are dropped.
const MAX_VERSIONS: usize = 100_000;

/// A registration; dropping it unregisters.
pub struct Watch {
    pub rx: watch::Receiver<Signal>,
    key: String,
    watchers: Arc<Watchers>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut map = self.watchers.map.lock();
        // This receiver is still alive here: it is the last one when the count is 1.
        if map
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.key);
        }
    }
}

impl Watchers {
    /// Starts waiting on `key`.
    pub fn watch(self: &Arc<Self>, key: String) -> Watch {
        let mut map = self.map.lock();
        let rx = map
            .entry(key.clone())
            .or_insert_with(|| watch::channel(Signal::default()).0)
            .subscribe();
        Watch {
            rx,
            key,
            watchers: self.clone(),
        }
    }

    /// Wakes everyone waiting on `key` (nothing to do when nobody is).
    pub fn notify(&self, key: &str) {
        if let Some(tx) = self.map.lock().get(key) {
            tx.send_modify(|s| {
                s.count = s.count.wrapping_add(1);
                s.at = Some(Instant::now());
            });
        }
    }

    /// The latest version of run `run_id` this node has heard of in the last minute, from
    /// this node's changes or another's notifications; 0 when none.
    pub fn known_version(&self, run_id: &str) -> i64 {
        self.versions.lock().get(run_id).map_or(0, |(v, _)| *v)
    }

    fn remember_version(&self, run_id: &str, version: i64) {
        let mut versions = self.versions.lock();
        let now = Instant::now();
        if versions.len() >= MAX_VERSIONS {
            versions.retain(|_, (_, at)| now.duration_since(*at) < VERSION_MEMORY);
            if versions.len() >= MAX_VERSIONS {
                versions.clear();
            }
        }
        let entry = versions.entry(run_id.to_string()).or_insert((version, now));
        if version >= entry.0 {
            *entry = (version, now);
        }
    }

    /// Keys being watched right now (for metrics and tests).
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Routes a store change to its watchers.
    pub fn on_change(&self, event: &ChangeEvent) {
        match event {
            ChangeEvent::Run {
                run_id,
                friendly_id,
                environment_id,
                execution_status,
                version,
                notify_worker,
            } => {
                self.remember_version(run_id, *version);
                self.notify(&run_key(run_id));
                self.notify(&env_runs_key(environment_id));
                // Dequeues wait for a run to become available (queued), or when the environment
                // is at its concurrency limit, for a slot to free (a run finished, or went
                // back to the queue); other changes cannot help them. An unknown status
                // (another node's notification without one) wakes both.
                match execution_status.as_str() {
                    "QUEUED" | "" => {
                        self.notify(&queue_key(environment_id));
                        self.notify(&slots_key(environment_id));
                    }
                    // A slot freed (a run finished, or waits and gives its slot up): the
                    // environment's and its queue's, so both kinds of waiting dequeue wake.
                    "FINISHED" | "EXECUTING_WITH_WAITPOINTS" => {
                        self.notify(&queue_key(environment_id));
                        self.notify(&slots_key(environment_id));
                    }
                    _ => {}
                }
                // What the worker running it must act on at once: a cancellation, the run
                // ending without it, a wait beginning or ending.
                if *notify_worker {
                    self.notify(&worker_key(environment_id, friendly_id));
                }
            }
            ChangeEvent::Queue { environment_id } => {
                self.notify(&queue_key(environment_id));
                self.notify(&slots_key(environment_id));
            }
            ChangeEvent::Stream { run_id, stream_id } => {
                self.notify(&stream_key(run_id, stream_id))
            }
            ChangeEvent::Resync => {
                let keys: Vec<String> = self.map.lock().keys().cloned().collect();
                for k in keys {
                    self.notify(&k);
                }
            }
            _ => {}
        }
    }
}

pub fn run_key(run_id: &str) -> String {
    format!("run:{run_id}")
}

/// What the many-run feeds of an environment wait on: any of its runs changing.
pub fn env_runs_key(environment_id: &str) -> String {
    format!("runs:{environment_id}")
}

/// What a worker's channel waits on for one run it executes, named as the worker names it
/// (by friendly id) within its environment, so subscribing needs no lookup and reaches
/// nothing of another environment.
pub fn worker_key(environment_id: &str, friendly_id: &str) -> String {
    format!("worker:{environment_id}:{friendly_id}")
}

/// What a dequeue of an environment waits on.
pub fn queue_key(environment_id: &str) -> String {
    format!("queue:{environment_id}")
}

/// What a dequeue of an environment at its concurrency limit waits on: a run leaving its
/// slot. New runs are not worth waking it for.
pub fn slots_key(environment_id: &str) -> String {
    format!("slots:{environment_id}")
}

pub fn stream_key(run_id: &str, stream_id: &str) -> String {
    format!("stream:{run_id}:{stream_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_wake_their_key_and_clean_up() {
        let w = Arc::new(Watchers::default());
        let mut a = w.watch(run_key("r1"));
        let b = w.watch(run_key("r1"));
        let c = w.watch(run_key("r2"));
        assert_eq!(w.len(), 2);
        w.on_change(&ChangeEvent::Run {
            run_id: "r1".into(),
            friendly_id: "run_1".into(),
            environment_id: "e".into(),
            version: 2,
            execution_status: "EXECUTING".into(),
            notify_worker: false,
        });
        assert!(a.rx.has_changed().unwrap_or(false));
        assert!(!c.rx.has_changed().unwrap_or(true));
        a.rx.changed().await.ok();
        drop(a);
        assert_eq!(w.len(), 2, "r1 still has a watcher");
        drop(b);
        drop(c);
        assert!(w.is_empty(), "a disconnected client frees its entry");
    }
}
