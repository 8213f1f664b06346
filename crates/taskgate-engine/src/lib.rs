//! The run engine's server side: how a run moves, around the pure state machine
//! [`taskgate_core::engine::transition`].
//!
//! - [`trigger`]: what a trigger or a batch item becomes (options, limits, idempotency);
//! - [`dequeue`]: the queue's long-poll dequeue for a worker;
//! - [`attempts`]: an attempt's start, heartbeat and completion, and the latest snapshot;
//! - [`runs`]: cancelling and replaying a run;
//! - [`registration`]: a worker's manifest, validated and registered;
//! - [`presence`]: whether a development CLI is connected, and its disconnect;
//! - [`execution`]: what a task process is told (its execution, machine and environment);
//! - [`otlp`]: the logs and spans task processes export, decoded;
//! - [`packets`]: payloads and outputs as stored, read back;
//! - [`watchers`] and [`workers`]: the wake-ups and the in-memory registry behind them;
//! - [`waits`]: runs waiting for a time or a token, and wait tokens themselves;
//! - [`timers`]: the loop that completes waitpoints when their time comes;
//! - [`schedules`]: the loop that triggers the runs of schedules whose time has come;
//! - [`sweeper`]: time-driven changes (delays, TTLs, stalls).
//!
//! Nothing here knows HTTP: the routes, the socket.io channel and any other transport are
//! adapters that authenticate a caller, call an [`Engine`] method and present its answer.

pub mod attempts;
pub mod batch;
pub mod dequeue;
pub mod error;
pub mod execution;
pub mod otlp;
pub mod packets;
pub mod presence;
pub mod registration;
pub mod runs;
pub mod schedules;
pub mod shutdown;
pub mod sweeper;
pub mod timers;
pub mod trigger;
pub mod waits;
pub mod watchers;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretBox;
use taskgate_core::time::Clock;
use taskgate_core::vault::KeyVault;
use taskgate_store::{ChangeEvent, Store};

pub use error::{Error, Result};
pub use shutdown::Shutdown;
pub use timers::Timers;
pub use watchers::Watchers;
pub use workers::Workers;

/// What the engine is configured with.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Runs an environment may execute at once.
    pub concurrency_limit: u32,
    /// Most runs an environment may have waiting; `None` is unlimited.
    pub max_queue_size: Option<u64>,
    /// How long a dequeue waits for a run (the long poll).
    pub dequeue_wait: Duration,
    /// Largest payload or output, in bytes.
    pub max_payload_bytes: usize,
    /// Largest offloaded packet, in bytes.
    pub max_packet_bytes: usize,
}

/// The engine: the store, the clock and what it keeps in memory.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    vault: Arc<KeyVault>,
    /// Signs what the engine hands out: the OTLP endpoints task processes are given, wait
    /// tokens' callback URLs (each with its own domain-separated message).
    signing_secret: Arc<SecretBox<Vec<u8>>>,
    watchers: Arc<Watchers>,
    timers: Timers,
    /// The schedule loop's deadline and bell.
    schedule_timers: Timers,
    workers: Workers,
    settings: EngineSettings,
    shutdown: Shutdown,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        vault: Arc<KeyVault>,
        signing_secret: Arc<SecretBox<Vec<u8>>>,
        settings: EngineSettings,
    ) -> Engine {
        Engine {
            store,
            clock,
            vault,
            signing_secret,
            watchers: Arc::new(Watchers::default()),
            timers: Timers::default(),
            schedule_timers: Timers::default(),
            workers: Workers::default(),
            settings,
            shutdown: Shutdown::default(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Who waits for which run, queue or stream.
    pub fn watchers(&self) -> &Arc<Watchers> {
        &self.watchers
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Begun when the server starts to stop: the engine's long waits end at once.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Applies a store change (this node's or another's) to what the engine keeps in memory:
    /// waiters are woken, stale variables dropped.
    pub fn on_change(&self, event: &ChangeEvent) {
        self.watchers.on_change(event);
        self.workers.on_change(event);
        if let ChangeEvent::Timer { due_at_ms } = event {
            self.timers
                .wake_by(Some(taskgate_core::time::from_millis(*due_at_ms)));
        }
    }
}
