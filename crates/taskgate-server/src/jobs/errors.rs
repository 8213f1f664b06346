//! Error groups over time: ignores whose time has passed are reopened (reads already report
//! them so), and count buckets past the retention are deleted.

use std::time::{Duration, Instant};

use crate::state::AppState;

/// How often ignores past their time are reopened.
const ERROR_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How often error count buckets past the retention are deleted.
const ERROR_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

pub fn start(state: &AppState) {
    let (store, clock) = (state.store.clone(), state.clock.clone());
    let retention = state.config.engine.error_retention;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ERROR_SWEEP_INTERVAL);
        let mut last_purge: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = clock.now();
            match store.reopen_expired_ignores(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(groups = n, "reopened error groups whose ignore expired"),
                Err(e) => {
                    tracing::debug!(error = %e, "could not reopen expired ignores; will retry")
                }
            }
            if last_purge.is_none_or(|at| at.elapsed() >= ERROR_PURGE_INTERVAL) {
                last_purge = Some(Instant::now());
                // A window reads only buckets that start inside it, and no window starts
                // before the retention; the day of margin keeps a purge clear of a window
                // being read at the retention's edge.
                let cutoff = now - retention - chrono::Duration::days(1);
                let started = Instant::now();
                match store.purge_error_buckets(cutoff).await {
                    Ok(0) => tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "no error count buckets past the retention"
                    ),
                    Ok(n) => tracing::info!(
                        rows = n,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "deleted error count buckets past the retention"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not delete old error count buckets; will retry")
                    }
                }
            }
        }
    });
}
