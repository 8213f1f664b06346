//! Grace-window key usage: counted in memory on the hot path, written to the store in batches.

use std::time::Duration;

use taskgate_store::Store;

use crate::state::AppState;
use taskgate_auth::cache::AuthCache;

/// How often usage of grace-window keys is written to the database.
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

pub fn start(state: &AppState) {
    let (cache, store) = (state.auth.cache.clone(), state.store.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(USAGE_FLUSH_INTERVAL);
        loop {
            tick.tick().await;
            flush_usage(&cache, &*store).await;
        }
    });
}

/// Writes grace-key usage counted in memory; on failure it is kept for the next flush.
pub async fn flush_usage(cache: &AuthCache, store: &dyn Store) {
    let usage = cache.take_usage();
    if usage.is_empty() {
        return;
    }
    if let Err(e) = store.record_revoked_key_usage(&usage).await {
        tracing::warn!(error = %e, "cannot record grace-key usage; will retry");
        cache.restore_usage(usage);
    }
}
