//! The run sweeper: every run with something due moves on (a delay ending, a TTL passing, a
//! worker that stopped sending heartbeats, a maximum duration exceeded, a cancellation the
//! worker never confirmed).

use std::time::Duration;

use crate::state::AppState;

/// How often the sweeper runs.
const RUN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

pub fn start(state: &AppState) {
    let (store, clock) = (state.store.clone(), state.clock.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RUN_SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = store.advance_due_runs(clock.now()).await {
                tracing::debug!(error = %e, "could not advance due runs; will retry");
            }
        }
    });
}
