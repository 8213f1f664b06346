//! Batches of the two-phase batch API: a batch expecting a number of runs, then its items,
//! each a run of the batch. Items are deduplicated by index, so a client may resend them all.

use serde_json::Value;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::{new_batch_friendly_id, new_id};
use taskgate_core::ids::{BatchFriendlyId, EnvironmentId};
use taskgate_store::{
    Batch, ConflictKind, Environment, Idempotency, NewTrigger, ParentWait, StoreError,
};

use crate::trigger::{parent_not_waiting, ParentRequest, TriggerBody, TriggerOptions};
use crate::{Engine, Error, Result};

/// Most runs one batch may create (upstream).
pub const MAX_BATCH_RUNS: i64 = 1000;

/// One item of a batch, as parsed from its line.
#[derive(Debug, serde::Deserialize)]
pub struct BatchItem {
    pub index: i64,
    pub task: String,
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub options: Option<Value>,
}

/// What adding items did.
#[derive(Debug, Clone, Copy)]
pub struct ItemsAdded {
    pub accepted: i64,
    pub deduplicated: i64,
    /// Items the batch holds now.
    pub count: i64,
    /// Every expected item is in.
    pub sealed: bool,
}

/// Refuses a batch of fewer than 1 or more than [`MAX_BATCH_RUNS`] runs.
pub fn check_run_count(run_count: i64) -> Result<()> {
    if (1..=MAX_BATCH_RUNS).contains(&run_count) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "Validation error: runCount must be from 1 to {MAX_BATCH_RUNS}"
        )))
    }
}

impl Engine {
    /// Creates a batch expecting `run_count` runs (1 to [`MAX_BATCH_RUNS`]), or returns the
    /// one with the same idempotency key (`true`). A one-time token's marker is spent here.
    /// A batch made from inside a run names it as `parent`; when the parent waits
    /// (`batchTriggerAndWait`) it is blocked on the batch before this returns, and continues
    /// once every item's run has finished, with every result.
    pub async fn create_batch(
        &self,
        environment_id: &EnvironmentId,
        run_count: i64,
        idempotency_key: Option<String>,
        one_time_use: Option<String>,
        parent: Option<ParentRequest>,
    ) -> Result<(Batch, bool)> {
        check_run_count(run_count)?;
        let parent_run = match &parent {
            Some(p) => Some(self.parent_run(environment_id, "batch", p).await?),
            None => None,
        };
        let batch = Batch {
            id: new_id().into(),
            friendly_id: new_batch_friendly_id().into(),
            environment_id: environment_id.clone(),
            run_count,
            idempotency_key,
            created_at: self.now(),
            sealed: false,
            parent_run_id: parent_run.map(|r| r.id),
            resume_parent_on_completion: parent.as_ref().is_some_and(|p| p.wait),
        };
        match self
            .store
            .create_batch(batch, one_time_use, self.now())
            .await
        {
            Ok(created) => Ok(created),
            Err(StoreError::Conflict {
                kind: ConflictKind::OneTimeUseToken,
            }) => Err(Error::Unprocessable(
                "Cannot batch trigger with a one-time use token as it has already been used."
                    .into(),
            )),
            Err(StoreError::Conflict {
                kind: ConflictKind::ParentRun,
            }) => Err(parent_not_waiting("batch", parent.as_ref())),
            Err(e) => Err(e.into()),
        }
    }

    /// A batch of the environment by friendly id.
    pub async fn batch(
        &self,
        environment_id: &EnvironmentId,
        batch_id: &BatchFriendlyId,
    ) -> Result<Batch> {
        self.store
            .get_batch(environment_id, batch_id)
            .await?
            .ok_or(Error::NotFound("Batch not found"))
    }

    /// Adds `items` (already checked against the batch) to `batch`, a run each. Items over
    /// the queue's limit fail fast, all of them, before any run is made: retrying cannot
    /// help, and half a batch of pre-failed runs would only fill the database.
    pub async fn add_batch_items(
        &self,
        env: &Environment,
        batch: &Batch,
        items: Vec<BatchItem>,
    ) -> Result<ItemsAdded> {
        self.check_queue_size(&env.id, "", items.len() as u64)
            .await?;
        let (mut accepted, mut deduplicated) = (0, 0);
        for item in items {
            let mut options: TriggerOptions = match item.options {
                Some(o) => serde_json::from_value(o).map_err(|e| {
                    Error::Invalid(format!("Validation error: item {}: {e}", item.index))
                })?,
                None => TriggerOptions::default(),
            };
            self.check_locked_version(&env.id, &item.task, &options)
                .await?;
            // Each item is a run of the batch: items are not debounced into other runs.
            options.debounce = None;
            let (mut run, idempotency) = self.build_run(
                env,
                &item.task,
                TriggerBody {
                    payload: item.payload,
                    options,
                },
                None,
            )?;
            run.batch_id = Some(batch.friendly_id.clone());
            // Items carry no parent of their own: they are the batch's parent's children.
            run.parent_run_id = batch.parent_run_id.clone();
            run.resume_parent_on_completion = batch.resume_parent_on_completion;
            let wait = batch
                .parent_run_id
                .clone()
                .filter(|_| batch.resume_parent_on_completion)
                .map(|parent_run_id| ParentWait {
                    parent_run_id,
                    batch: Some((batch.friendly_id.clone(), item.index)),
                });
            // Resending an item returns the run it already made: its key is the batch and
            // index.
            let idempotency = idempotency.or_else(|| {
                Some(Idempotency {
                    key: sha256_hex(&format!("{}:{}", batch.id, item.index)),
                    user_key: None,
                    expires_at: self.now() + taskgate_core::run::DEFAULT_IDEMPOTENCY_TTL,
                })
            });
            let trigger = NewTrigger {
                run,
                idempotency,
                one_time_use: None,
                request_key: None,
                wait,
                debounce: None,
            };
            let triggered = match self.store.trigger(trigger, self.now()).await {
                Ok(t) => t,
                Err(StoreError::Conflict {
                    kind: ConflictKind::ParentRun,
                }) => {
                    return Err(Error::Invalid(format!(
                    "Cannot add item {} to {}: the run that waits for the batch is not executing",
                    item.index, batch.friendly_id
                )))
                }
                Err(e) => return Err(e.into()),
            };
            if self
                .store
                .add_batch_item(&batch.id, item.index, &triggered.run.friendly_id)
                .await?
            {
                accepted += 1;
            } else {
                deduplicated += 1;
            }
        }
        let (count, sealed) = self.store.seal_batch(&batch.id, self.now()).await?;
        Ok(ItemsAdded {
            accepted,
            deduplicated,
            count,
            sealed,
        })
    }
}
