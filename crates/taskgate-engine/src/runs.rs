//! Cancelling and replaying a run.

use serde::Deserialize;
use serde_json::{json, Value};
use taskgate_core::engine::{EngineError, Event};
use taskgate_core::ids::{EnvironmentId, RunFriendlyId};
use taskgate_store::{Environment, EventData, Refusal, Run, RunEvent};

use crate::trigger::{TriggerBody, TriggerOptions};
use crate::{Engine, Error, Result};

/// Children cancelled per query of a cascade.
const CASCADE_PAGE: u32 = 500;
/// Most runs one cancellation cascades to.
const MAX_CASCADE: usize = 10_000;

/// Overrides a replay may carry (4.8.3's `ReplayRunRequestBody`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayOverrides {
    payload: Option<Value>,
    payload_type: Option<String>,
    metadata: Option<Value>,
    tags: Option<Value>,
    queue: Option<Value>,
    concurrency_key: Option<Value>,
    machine: Option<String>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    version: Option<String>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    region: Option<String>,
    delay: Option<Value>,
    ttl: Option<Value>,
    idempotency_key: Option<String>,
    #[serde(rename = "idempotencyKeyTTL")]
    idempotency_key_ttl: Option<String>,
    max_attempts: Option<i64>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    max_duration: Option<i64>,
    #[expect(
        dead_code,
        reason = "accepted for compatibility: taskgate has no deployments, regions or priorities"
    )]
    priority: Option<i64>,
}

impl Engine {
    /// Cancels a run of `env_id` the caller may write (the caller checks), then the runs it
    /// triggered that have not finished, and theirs (as upstream: a cancelled parent's
    /// children are not waited for by anyone any more). A run that already finished, or whose
    /// cancellation already waits for its worker, is left as it is, and so are its children.
    /// The dashboard's "Cancel" goes through here too.
    pub async fn cancel(&self, env_id: &EnvironmentId, run_id: &RunFriendlyId) -> Result<()> {
        let Some(run) = self.cancel_one(env_id, run_id).await? else {
            return Ok(());
        };
        let mut parents = vec![run.id];
        let mut cancelled = 0usize;
        while let Some(parent) = parents.pop() {
            loop {
                let children = self
                    .store
                    .child_runs(env_id, &parent, true, CASCADE_PAGE)
                    .await?;
                if children.is_empty() {
                    break;
                }
                for child in children {
                    if let Some(c) = self.cancel_one(env_id, &child.friendly_id).await? {
                        cancelled += 1;
                        parents.push(c.id);
                    }
                }
                if cancelled >= MAX_CASCADE {
                    tracing::warn!(run.id = %run_id, cancelled, "cancel cascade stopped at its limit; cancel the remaining children one by one");
                    return Ok(());
                }
            }
        }
        if cancelled > 0 {
            tracing::info!(run.id = %run_id, children = cancelled, "cancelled the runs it triggered");
        }
        Ok(())
    }

    /// Cancels one run; the run afterwards, or `None` when it had already finished.
    async fn cancel_one(
        &self,
        env_id: &EnvironmentId,
        run_id: &RunFriendlyId,
    ) -> Result<Option<Run>> {
        let cancel = RunEvent {
            event: Event::Cancel { finalize: false },
            expected_snapshot: None,
            data: EventData::default(),
        };
        match self
            .store
            .apply_run_event(env_id, run_id, cancel, self.now())
            .await?
        {
            Ok(applied) => {
                tracing::info!(run.id = %applied.run.friendly_id, execution = %applied.run.execution_status, "run canceled");
                Ok(Some(applied.run))
            }
            Err(Refusal::Engine(EngineError::AlreadyFinished | EngineError::NoChange)) => Ok(None),
            Err(other) => Err(Error::Internal(format!("cancel refused: {other:?}"))),
        }
    }

    /// Triggers a new run of `old`'s task in `env` with `old`'s payload and options, or the
    /// given overrides (the caller has authorized). The dashboard's "Replay" goes through here.
    pub async fn replay(
        &self,
        env: &Environment,
        old: &Run,
        overrides: ReplayOverrides,
    ) -> Result<Run> {
        let body = TriggerBody {
            payload: overrides
                .payload
                .or_else(|| old.payload.clone().map(Value::String)),
            options: TriggerOptions {
                payload_type: overrides
                    .payload_type
                    .or_else(|| Some(old.payload_type.clone())),
                idempotency_key: overrides.idempotency_key,
                idempotency_key_ttl: overrides.idempotency_key_ttl,
                tags: overrides.tags.or_else(|| Some(json!(old.tags))),
                delay: overrides.delay,
                ttl: overrides.ttl.or_else(|| old.ttl.clone().map(Value::String)),
                queue: None,
                concurrency_key: overrides
                    .concurrency_key
                    .or_else(|| old.concurrency_key.clone().map(Value::String)),
                max_attempts: overrides.max_attempts.or(old.max_attempts),
                metadata: overrides
                    .metadata
                    .or_else(|| old.metadata.clone().map(Value::String)),
                metadata_type: old.metadata_type.clone(),
                machine: overrides.machine.or_else(|| old.machine.clone()),
                test: Some(old.is_test),
                idempotency_key_options: None,
                parent_run_id: None,
                resume_parent_on_completion: None,
                lock_to_version: None,
                debounce: None,
            },
        };
        let (mut run, idempotency) = self.build_run(env, &old.task_identifier, body, None)?;
        run.is_replay = true;
        run.queue = match overrides.queue {
            Some(Value::String(q)) => Some(q),
            Some(q) => q.get("name").and_then(Value::as_str).map(str::to_string),
            None => old.queue.clone(),
        };
        let triggered = self
            .store
            .trigger_run(run, idempotency, None, None, self.now())
            .await?;
        tracing::info!(run.id = %triggered.run.friendly_id, replay_of = %old.friendly_id, "run replayed");
        Ok(triggered.run)
    }
}
