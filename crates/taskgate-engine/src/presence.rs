//! Whether a development CLI is connected to its environment, and what its watchdog's
//! disconnect does to the runs it left behind.

use taskgate_core::engine::Event;
use taskgate_core::ids::{EnvironmentId, RunFriendlyId};
use taskgate_store::{EventData, RunEvent, StoreError};

use crate::workers::PRESENCE_TTL;
use crate::{Engine, Result};

/// Most runs one disconnect may name.
pub const MAX_DISCONNECT_RUNS: usize = 1000;

impl Engine {
    /// Records that the environment's CLI is alive (written at most once per interval from
    /// this node; a failed write is logged, never an error).
    pub async fn touch_presence(&self, environment_id: &EnvironmentId) {
        self.workers
            .touch_presence(&*self.store, environment_id, self.now())
            .await;
    }

    /// Whether a development CLI is connected to the environment now, read from the store.
    pub async fn dev_connected(&self, environment_id: &EnvironmentId) -> Result<bool> {
        let seen = self.store.dev_presence(environment_id).await?;
        Ok(seen.is_some_and(|at| at + PRESENCE_TTL > self.now()))
    }

    /// Cancels the runs a CLI left running when it died (its watchdog's last call). They end
    /// at once: no worker is left to confirm. Runs that are not the environment's, or already
    /// finished, are skipped. Returns how many were cancelled.
    pub async fn disconnect(
        &self,
        environment_id: &EnvironmentId,
        run_ids: &[RunFriendlyId],
    ) -> Result<u64> {
        let mut cancelled = 0;
        for run_id in run_ids {
            let event = RunEvent {
                event: Event::Cancel { finalize: true },
                expected_snapshot: None,
                data: EventData::default(),
            };
            match self
                .store
                .apply_run_event(environment_id, run_id, event, self.now())
                .await
            {
                Ok(Ok(_)) => cancelled += 1,
                Ok(Err(_)) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(env.id = %environment_id, runs = run_ids.len(), cancelled, "dev CLI disconnected with runs in flight");
        Ok(cancelled)
    }
}
