//! The run sweeper: every run with something due moves on (a delay ending, a TTL passing, a
//! worker that stopped sending heartbeats, a maximum duration exceeded, a cancellation the
//! worker never confirmed). Due runs are read by their indexed due time, so a tick reads only
//! what is due; on PostgreSQL several nodes sweep without taking the same run.

use std::sync::Arc;
use std::time::Duration;

use crate::Engine;

/// How often the sweeper runs.
const RUN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the sweeper; it retries on its next tick after a failure.
pub fn start(engine: Arc<Engine>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RUN_SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = engine.store.advance_due_runs(engine.now()).await {
                tracing::debug!(error = %e, "could not advance due runs; will retry");
            }
        }
    });
}
