//! Change events to caches: every event reaches the auth cache, the realtime watchers and the
//! connected workers through the store's synchronous hook; this job handles what the hook
//! cannot: a resync after lost notifications and the second pass a read replica needs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use taskgate_store::{ChangeEvent, Store};
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;
use taskgate_auth::cache::AuthCache;

/// How long after a change a read replica is assumed to have caught up.
const REPLICA_LAG_ALLOWANCE: Duration = Duration::from_secs(2);

/// Subscribes the caches to change events (before loading the revoked-token set, so nothing
/// revoked in between is missed) and starts the resync loop.
pub async fn start(state: &AppState) -> anyhow::Result<()> {
    let (cache, engine) = (state.auth.cache.clone(), state.engine.clone());
    let (filter, store) = (state.auth.key_filter.clone(), state.store.clone());
    state.store.on_change(Arc::new(move |event| {
        cache.apply(event);
        filter.on_change(event, &store);
        engine.on_change(event);
    }));
    let mut events = state.store.subscribe();
    let revoked = state
        .store
        .revoked_pat_ids()
        .await
        .context("cannot load revoked tokens")?;
    state.auth.cache.set_revoked_pats(revoked);
    state
        .auth
        .key_filter
        .load(&*state.store, state.now())
        .await
        .context("cannot load the live keys")?;

    let (cache, store) = (state.auth.cache.clone(), state.store.clone());
    let replica = state.config.database.replica_url.is_some();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                // The hook has already applied every event; what is left is the slow part of a
                // resync and the replica's second pass.
                Ok(ChangeEvent::Resync) => reload_revoked(&cache, &*store).await,
                Ok(event) => {
                    if replica {
                        // A lookup served by a lagging replica may re-cache what this event
                        // just dropped; dropping it once more after the lag allowance ends that.
                        let cache = cache.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(REPLICA_LAG_ALLOWANCE).await;
                            cache.apply(&event);
                        });
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        missed,
                        "replica re-invalidation skipped events; dropping the auth cache"
                    );
                    cache.clear();
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    Ok(())
}

/// Reloads the revoked-token set (after a resync, when notifications may have been lost).
async fn reload_revoked(cache: &AuthCache, store: &dyn Store) {
    match store.revoked_pat_ids().await {
        Ok(ids) => cache.set_revoked_pats(ids),
        Err(e) => tracing::warn!(error = %e, "cannot reload revoked tokens"),
    }
}
