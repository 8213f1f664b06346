//! Batches of the two-phase batch API: a batch expecting a number of runs, then its items,
//! each a run of the batch. Items are deduplicated by index, so a client may resend them all.

use serde_json::Value;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::{new_batch_friendly_id, new_id};
use taskgate_core::ids::{BatchFriendlyId, EnvironmentId};
use taskgate_store::{Batch, ConflictKind, Environment, Idempotency, StoreError};

use crate::trigger::{TriggerBody, TriggerOptions};
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
    pub async fn create_batch(
        &self,
        environment_id: &EnvironmentId,
        run_count: i64,
        idempotency_key: Option<String>,
        one_time_use: Option<String>,
    ) -> Result<(Batch, bool)> {
        check_run_count(run_count)?;
        let batch = Batch {
            id: new_id().into(),
            friendly_id: new_batch_friendly_id().into(),
            environment_id: environment_id.clone(),
            run_count,
            idempotency_key,
            created_at: self.now(),
            sealed: false,
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
            let options: TriggerOptions = match item.options {
                Some(o) => serde_json::from_value(o).map_err(|e| {
                    Error::Invalid(format!("Validation error: item {}: {e}", item.index))
                })?,
                None => TriggerOptions::default(),
            };
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
            // Resending an item returns the run it already made: its key is the batch and
            // index.
            let idempotency = idempotency.or_else(|| {
                Some(Idempotency {
                    key: sha256_hex(&format!("{}:{}", batch.id, item.index)),
                    user_key: None,
                    expires_at: self.now() + taskgate_core::run::DEFAULT_IDEMPOTENCY_TTL,
                })
            });
            let triggered = self
                .store
                .trigger_run(run, idempotency, None, None, self.now())
                .await?;
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
        let (count, sealed) = self.store.seal_batch(&batch.id).await?;
        Ok(ItemsAdded {
            accepted,
            deduplicated,
            count,
            sealed,
        })
    }
}
