//! Background jobs: the work a node does on its own rather than for a request.
//!
//! - [`changes`]: applies every change event (from this node or, through the store's
//!   notifications, from the others) to the auth cache, realtime watchers and connected
//!   workers, and re-applies it once a read replica has caught up;
//! - the engine's sweeper ([`taskgate_engine::sweeper`]): starts delayed runs, expires queued
//!   runs past their TTL and recovers stalled ones;
//! - the engine's timers ([`taskgate_engine::timers`]): complete waitpoints when their time
//!   comes (a `wait.for` ending, a token timing out);
//! - the engine's schedules ([`taskgate_engine::schedules`]): trigger the runs of schedules
//!   whose time has come;
//! - [`errors`]: reopens error groups whose ignore has ended and deletes count buckets past the
//!   retention;
//! - [`alerts`]: delivers what the alert outbox holds (signed webhooks, Slack messages);
//! - [`usage`]: writes the use of grace-window keys, counted in memory, to the store.
//!
//! Each job logs a failure and tries again on its next tick; none of them ends the server.

pub mod alerts;
pub mod changes;
pub mod errors;
pub mod usage;

use crate::state::AppState;

/// Starts every job. The change subscription is in place before this returns, so nothing
/// changed after start-up is missed.
pub async fn start(state: &AppState) -> anyhow::Result<()> {
    changes::start(state).await?;
    taskgate_engine::sweeper::start(state.engine.clone());
    taskgate_engine::timers::start(state.engine.clone());
    taskgate_engine::schedules::start(state.engine.clone());
    errors::start(state);
    usage::start(state);
    alerts::start(state);
    Ok(())
}
