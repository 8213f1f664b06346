//! The timer loop: completes the waitpoints whose time has come (a `wait.for` ending, a
//! token timing out) and so continues the runs waiting for them.
//!
//! Timers live in the database, indexed by when they are due, so a restart loses none. Each
//! node sleeps until the earliest one (or until a new, earlier one is set, on this node or,
//! through the store's change events, on another) rather than polling; with nothing due it
//! looks again every [`IDLE_CHECK`]. Several nodes may wake for the same timer: the store
//! hands each due waitpoint to one of them, and completing one twice changes nothing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use taskgate_core::time::to_millis;
use taskgate_store::Fired;
use tokio::sync::Notify;

use crate::{Engine, Result};

/// Waitpoints completed in one transaction; more due than this are taken in the next pass at
/// once.
const BATCH: u32 = 500;
/// Longest sleep with nothing due: a timer set on a node that stopped before it fired is
/// found within this.
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// Shortest sleep when the next timer is already due but another node holds it.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
/// Pause after a failed pass.
const FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// When this node's timer loop next wakes, and the bell that wakes it sooner.
pub struct Timers {
    wake: Notify,
    /// Epoch milliseconds of the loop's current deadline.
    deadline_ms: AtomicI64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            wake: Notify::new(),
            deadline_ms: AtomicI64::new(0),
        }
    }
}

impl Timers {
    /// Wakes the loop when `due` comes before the time it sleeps until.
    pub fn wake_by(&self, due: Option<DateTime<Utc>>) {
        if let Some(due) = due {
            if to_millis(due) < self.deadline_ms.load(Ordering::Relaxed) {
                self.wake.notify_one();
            }
        }
    }

    /// Records that the loop sleeps for `sleep` from `now`.
    pub(crate) fn sleeping_until(&self, now: DateTime<Utc>, sleep: Duration) {
        let deadline = now + chrono::Duration::from_std(sleep).unwrap_or(chrono::Duration::zero());
        self.deadline_ms
            .store(to_millis(deadline), Ordering::Relaxed);
    }

    /// Resolves when the loop is woken sooner.
    pub(crate) async fn notified(&self) {
        self.wake.notified().await
    }
}

impl Engine {
    /// One pass: completes what is due now and says when the next timer is.
    pub async fn fire_timers(&self) -> Result<Fired> {
        let started = std::time::Instant::now();
        let fired = self.store.fire_due_waitpoints(self.now(), BATCH).await?;
        if fired.completed > 0 {
            // Counted once committed: summed over nodes, it is how many timers fired.
            metrics::counter!("taskgate_waitpoint_timers_fired_total").increment(fired.completed);
            tracing::debug!(
                completed = fired.completed,
                continued = fired.continued,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "waitpoint timers fired"
            );
        }
        Ok(fired)
    }
}

/// Starts the timer loop; it ends when the server shuts down.
pub fn start(engine: Arc<Engine>) {
    tokio::spawn(async move {
        loop {
            let sleep = match engine.fire_timers().await {
                Ok(f) if u64::from(BATCH) <= f.completed => Duration::ZERO,
                Ok(f) => match f.next_due.map(|next| (next - engine.now()).to_std()) {
                    // Due later: sleep until then.
                    Some(Ok(wait)) => wait.min(IDLE_CHECK),
                    // Due already: more came due while this pass ran, or another node holds
                    // it (then pause rather than spin).
                    Some(Err(_)) if f.completed > 0 => Duration::ZERO,
                    Some(Err(_)) => BUSY_PAUSE,
                    None => IDLE_CHECK,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "could not fire waitpoint timers; will retry");
                    FAILURE_PAUSE
                }
            };
            if sleep.is_zero() {
                continue;
            }
            engine.timers.sleeping_until(engine.now(), sleep);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = engine.timers.notified() => {}
                _ = engine.shutdown.wait() => return,
            }
        }
    });
}
