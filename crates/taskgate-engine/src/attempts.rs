//! An attempt's life on the worker's side: start (with the execution payload and the task
//! process's environment), heartbeat, completion (with the retry decision), and the latest
//! snapshot a worker polls.
//!
//! Refusals carry what upstream answers, so a worker reacts as it would there: a snapshot that
//! is no longer the latest ([`Error::StaleSnapshot`]), a finished run ([`Error::Finished`]);
//! neither is worth retrying.

use rand::Rng;
use taskgate_api::engine::*;
use taskgate_core::engine::{AttemptStatus, Completion, EngineError, Event, RunStatus};
use taskgate_core::ids::{EnvironmentId, RunFriendlyId, SnapshotId};
use taskgate_core::task_error::TaskRunError;
use taskgate_store::{Applied, EnvironmentAuth, EventData, Refusal, Run, RunEvent, StoreError};

use crate::execution::{execution, execution_data, run_ref, snapshot};
use crate::{Engine, Error, Result};

/// What a refused event answers; `at_start` when a start was refused.
fn refused(r: Refusal, at_start: bool) -> Error {
    match r {
        Refusal::StaleSnapshot { .. } => Error::StaleSnapshot { at_start },
        Refusal::Engine(EngineError::AlreadyFinished) => Error::Finished,
        Refusal::Engine(e) => Error::Refused(e.to_string()),
    }
}

impl Engine {
    /// Applies a worker's event to one of its environment's runs.
    async fn apply(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        event: RunEvent,
    ) -> Result<std::result::Result<Applied, Refusal>> {
        match self
            .store
            .apply_run_event(environment_id, run_id, event, self.now())
            .await
        {
            Err(StoreError::NotFound) => Err(Error::RunNotFound),
            other => Ok(other?),
        }
    }

    /// Starts an attempt of a dequeued run (or the next attempt of one retrying at once) on
    /// the snapshot the worker holds; answers what the task process needs, its environment
    /// variables under `base` (the public URL).
    pub async fn start_attempt(
        &self,
        env: &EnvironmentAuth,
        run_id: &RunFriendlyId,
        snapshot_id: &SnapshotId,
        base: &str,
    ) -> Result<StartAttemptResponse> {
        let event = RunEvent {
            event: Event::StartAttempt,
            expected_snapshot: Some(snapshot_id.clone()),
            data: EventData::default(),
        };
        let applied = self
            .apply(&env.environment.id, run_id, event)
            .await?
            .map_err(|r| refused(r, true))?;
        let run = applied.run;
        if run.status == RunStatus::Crashed {
            return Err(Error::MaxAttempts);
        }
        let worker_id = run.worker_id.clone().unwrap_or_default();
        let worker = self
            .workers
            .get(&*self.store, &env.environment.id, &worker_id)
            .await?
            .ok_or_else(|| Error::Internal(format!("run {} names no worker", run.friendly_id)))?;
        let (worker, tasks) = &*worker;
        let task = tasks
            .iter()
            .find(|t| t.slug == run.task_identifier)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "worker {} has no task {}",
                    worker.id, run.task_identifier
                ))
            })?;
        let execution = execution(env, &run, worker, task);
        let mut vars = self.task_env_vars(base, env).await?;
        vars.insert("TRIGGER_RUN_ID".into(), run.friendly_id.to_string());
        // A deployed run's process has no CLI to give it a key: it gets its environment's.
        if env.environment.env_type != taskgate_core::env::EnvType::Development {
            let key = self.environment_secret_key(env)?;
            vars.insert(
                "TRIGGER_SECRET_KEY".into(),
                secrecy::ExposeSecret::expose_secret(&key).to_string(),
            );
        }
        vars.insert(
            "TRIGGER_MACHINE_PRESET".into(),
            execution.machine.name.clone(),
        );
        tracing::info!(run.id = %run.friendly_id, attempt = run.attempt_number, task = %run.task_identifier, "attempt started");
        Ok(StartAttemptResponse {
            run: run_ref(&run),
            snapshot: snapshot(&run),
            execution,
            env_vars: vars,
        })
    }

    /// Records how an attempt ended and answers what happens next (finished, retry now,
    /// retry from the queue).
    pub async fn complete_attempt(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        snapshot_id: &SnapshotId,
        c: AttemptCompletion,
    ) -> Result<CompleteAttemptResponse> {
        let limit = self.settings.max_payload_bytes;
        if c.output.as_ref().is_some_and(|o| o.len() > limit) {
            return Err(Error::OutputTooLarge(limit));
        }
        let outcome = if c.ok {
            Completion::Success
        } else {
            let error: TaskRunError = match c.error {
                Some(e) => serde_json::from_value(e)
                    .map_err(|e| Error::InvalidBody(format!("completion.error: {e}")))?,
                None => {
                    return Err(Error::InvalidBody(
                        "completion.error is required when ok is false".into(),
                    ))
                }
            };
            Completion::Failure {
                error: error.sanitized(),
                retry_delay_ms: c
                    .retry
                    .as_ref()
                    .map(|r| r.delay)
                    .filter(|d| d.is_finite())
                    .map(|d| d.clamp(0.0, 365.0 * 86_400_000.0) as u64),
                jitter: rand::thread_rng().gen_range(0.0..1.0),
            }
        };
        let data = EventData {
            output: c.output.map(|o| {
                (
                    o,
                    c.output_type.unwrap_or_else(|| "application/json".into()),
                )
            }),
            metadata: c
                .flushed_metadata
                .and_then(|m| m.data.map(|d| (d, m.data_type))),
        };
        let event = RunEvent {
            event: Event::Complete(outcome),
            expected_snapshot: Some(snapshot_id.clone()),
            data,
        };
        let applied = self
            .apply(environment_id, run_id, event)
            .await?
            .map_err(|r| refused(r, false))?;
        let run = &applied.run;
        let attempt_status = applied
            .transition
            .attempt_status
            .unwrap_or(AttemptStatus::RunFinished);
        tracing::info!(run.id = %run.friendly_id, attempt = run.attempt_number, status = %run.status, next = %attempt_status, "attempt completed");
        Ok(CompleteAttemptResponse {
            result: CompleteAttemptResult {
                attempt_status: attempt_status.as_str().into(),
                snapshot: snapshot(run),
                run: run_ref(run),
            },
        })
    }

    /// Fails the run's attempt because its process ended without completing it (a deployed
    /// run's process exited or died), so the run is retried now per the task's settings
    /// rather than after the stall timeout. `false` when the run is not in an attempt any more
    /// (it completed, or another node moved it on).
    pub async fn attempt_lost(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        why: &str,
    ) -> Result<bool> {
        let error = TaskRunError::internal("TASK_PROCESS_EXITED_WITH_NON_ZERO_CODE", why);
        let event = RunEvent {
            event: Event::Complete(Completion::Failure {
                error,
                retry_delay_ms: None,
                jitter: rand::thread_rng().gen_range(0.0..1.0),
            }),
            expected_snapshot: None,
            data: EventData::default(),
        };
        match self.apply(environment_id, run_id, event).await? {
            Ok(applied) => {
                tracing::info!(run.id = %run_id, status = %applied.run.status, "lost attempt recorded");
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Keeps an executing attempt alive (workers call it every 30 s, also while it waits).
    /// A heartbeat naming an older snapshot of the run still counts, as upstream: a worker
    /// learns of a wait's snapshots by polling, and keeps sending the one it holds until then.
    pub async fn heartbeat(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        _snapshot_id: &SnapshotId,
    ) -> Result<()> {
        let event = RunEvent {
            event: Event::Heartbeat,
            expected_snapshot: None,
            data: EventData::default(),
        };
        self.apply(environment_id, run_id, event)
            .await?
            .map_err(|r| refused(r, false))?;
        Ok(())
    }

    /// A run's latest execution snapshot. Served by the read replica when there is one,
    /// unless the replica's row is older than a change this node has heard of, in which case
    /// the primary answers: a worker shown an older snapshot would drop its run.
    pub async fn latest_snapshot(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
    ) -> Result<RunExecutionData> {
        let run: Run = match self
            .store
            .get_run_from_replica(environment_id, run_id)
            .await?
        {
            Some(r) if r.version >= self.watchers.known_version(&r.id) => r,
            _ => self
                .store
                .get_run(environment_id, run_id)
                .await?
                .ok_or(Error::RunNotFound)?,
        };
        Ok(execution_data(&run))
    }
}
