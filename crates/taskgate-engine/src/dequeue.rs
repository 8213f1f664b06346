//! The queue's dequeue for a worker: a long poll. It answers at once with a run when the
//! environment's queue has one for the worker, else waits (up to the dequeue wait, 10 s by
//! default, as upstream) and answers the moment one is queued: any change to a run of the
//! environment, on this node or another (PostgreSQL notifications), wakes it, as does a
//! queued retry's time coming.

use chrono::{DateTime, Utc};
use serde_json::Map;
use taskgate_api::engine::*;
use taskgate_store::{DequeueLimits, DequeueOutcome, Dequeued, EnvironmentAuth};

use crate::execution::{env_type_name, machine, snapshot};
use crate::watchers::{queue_key, slots_key};
use crate::{Engine, Result};

impl Engine {
    /// Takes the next run for the worker a CLI names (`current_worker`, else the environment's
    /// newest), waiting for one; `None` when none came within the wait, or the server is
    /// stopping. Records the CLI as present.
    pub async fn dequeue(
        &self,
        env: &EnvironmentAuth,
        current_worker: Option<&str>,
    ) -> Result<Option<DequeuedMessage>> {
        let env_id = &env.environment.id;
        self.workers
            .touch_presence(&*self.store, env_id, self.now())
            .await;
        let worker = match current_worker {
            Some(id) => self.workers.get(&*self.store, env_id, id).await?,
            None => None,
        };
        let worker = match worker {
            Some(w) => w,
            None => match self.store.current_worker(env_id).await? {
                Some(w) => {
                    let w = std::sync::Arc::new(w);
                    self.workers.remember(w.clone());
                    w
                }
                None => return Ok(None),
            },
        };
        let limits = DequeueLimits {
            concurrency: self.settings.concurrency_limit,
        };
        let deadline = tokio::time::Instant::now() + self.settings.dequeue_wait;
        // When the signal that woke this wait was sent: a run's commit on this node, or its
        // notification's arrival from another.
        let mut woken_by: Option<std::time::Instant> = None;
        loop {
            // Watch before looking, so a run queued (or a slot freed) while we look wakes the
            // wait below.
            let mut queued = self.watchers.watch(queue_key(env_id));
            queued.rx.borrow_and_update();
            let mut freed = self.watchers.watch(slots_key(env_id));
            freed.rx.borrow_and_update();
            let now = self.now();
            let (wake_at, watch) = match self
                .store
                .dequeue_run(env_id, &worker.0, &worker.1, limits, now)
                .await?
            {
                DequeueOutcome::Taken(d) => {
                    tracing::info!(run.id = %d.run.friendly_id, task = ?d.run.task_identifier, env.id = %env_id, worker.version = %d.worker.version, "run dequeued");
                    let answer = message(env, &d, now);
                    if let Some(at) = woken_by {
                        metrics::histogram!("taskgate_dequeue_wake_seconds")
                            .record(at.elapsed().as_secs_f64());
                    }
                    return Ok(Some(answer));
                }
                DequeueOutcome::Empty { next_available_at } => (next_available_at, &mut queued),
                DequeueOutcome::AtCapacity => (None, &mut freed),
            };
            let wake = wake_at.map(|at| tokio::time::Instant::now() + until(at, now));
            let until_deadline = tokio::time::sleep_until(match wake {
                Some(w) if w < deadline => w,
                _ => deadline,
            });
            tokio::select! {
                _ = watch.rx.changed() => woken_by = watch.rx.borrow().at,
                _ = until_deadline => woken_by = None,
                // The server is stopping: answer empty now; the worker asks again elsewhere.
                _ = self.shutdown.wait() => return Ok(None),
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
}

/// How long from `now` until `at` (zero when past).
fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> std::time::Duration {
    (at - now).to_std().unwrap_or_default()
}

/// A dequeued run in the CLI's shape.
fn message(env: &EnvironmentAuth, d: &Dequeued, now: DateTime<Utc>) -> DequeuedMessage {
    let e = &env.environment;
    DequeuedMessage {
        version: "1".into(),
        snapshot: snapshot(&d.run),
        dequeued_at: now,
        completed_waitpoints: Vec::new(),
        background_worker: DequeuedWorker {
            id: d.worker.id.to_string(),
            friendly_id: d.worker.friendly_id.to_string(),
            version: d.worker.version.clone(),
        },
        deployment: NoDeployment {},
        run: DequeuedRun {
            id: d.run.friendly_id.to_string(),
            friendly_id: d.run.friendly_id.to_string(),
            is_test: d.run.is_test,
            is_replay: d.run.is_replay,
            machine: machine(&d.run, Some(&d.task)),
            attempt_number: d.run.attempt_number + 1,
            master_queue: e.id.to_string(),
            trace_context: Map::new(),
        },
        environment: DequeuedEnvironment {
            id: e.id.to_string(),
            env_type: env_type_name(e.env_type).into(),
        },
        organization: IdRef {
            id: e.organization_id.to_string(),
        },
        project: IdRef {
            id: e.project_id.to_string(),
        },
    }
}
