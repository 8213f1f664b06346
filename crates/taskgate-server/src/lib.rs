//! The taskgate HTTP server: configuration, start-up, the router and everything behind it.

pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod cors;
pub mod deadline;
pub mod error;
pub mod json;
pub mod openapi;
pub mod public_url;
pub mod realtime;
pub mod router;
pub mod routes;
pub mod serve;
pub mod socketio;
pub mod state;
pub mod telemetry;
pub mod vault;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use taskgate_core::time::{Clock, SystemClock};
use taskgate_store::{ChangeEvent, Store};
use tokio::sync::broadcast::error::RecvError;

use crate::auth::cache::AuthCache;
use crate::config::Config;
use crate::state::AppState;
use crate::vault::KeyVault;

/// How long after a change a read replica is assumed to have caught up.
const REPLICA_LAG_ALLOWANCE: Duration = Duration::from_secs(2);
/// How often delayed runs are started and queued runs past their TTL expired.
const RUN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How often usage of grace-window keys is written to the database.
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// How often ignores past their time are reopened.
const ERROR_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How often error count buckets past the retention are deleted.
const ERROR_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Opens the store named by the configuration: PostgreSQL for a `postgres://` URL, SQLite for
/// a `sqlite:` URL, else SQLite in the data directory.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres") => {
            let store = taskgate_store_postgres::PostgresStore::connect(
                url,
                config.database_replica_url.as_deref(),
                config.migrate_on_start,
                Some(config.timeouts.database_statement),
            )
            .await
            .context("database-url: cannot open the PostgreSQL database")?;
            Ok(Arc::new(store))
        }
        Some(url) => Ok(Arc::new(
            taskgate_store_sqlite::SqliteStore::open_url(url)
                .await
                .context("database-url: cannot open the SQLite database")?,
        )),
        None => {
            let path = config.data_dir.join("taskgate.db");
            Ok(Arc::new(
                taskgate_store_sqlite::SqliteStore::open(&path)
                    .await
                    .with_context(|| {
                        format!("cannot open the SQLite database {}", path.display())
                    })?,
            ))
        }
    }
}

/// Everything a server needs, ready to route: store, secrets, first-run bootstrap, caches and
/// their background tasks.
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    bootstrap::ensure_data_dir(&config.data_dir)?;
    let store = open_store(&config).await?;
    build_state_with_store(config, clock, store).await
}

/// [`build_state`] on an already opened store (tests use per-test databases).
pub async fn build_state_with_store(
    config: Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
) -> anyhow::Result<AppState> {
    bootstrap::ensure_data_dir(&config.data_dir)?;
    let master = bootstrap::master_key(&config)?;
    let session_secret = bootstrap::session_secret(&config)?;
    bootstrap::bootstrap_admin(&*store, &config).await?;
    let cache = Arc::new(AuthCache::new(config.cache_ttl));
    let state = AppState::new(state::Shared {
        store,
        clock,
        vault: Arc::new(KeyVault::new(master)),
        session_secret: Arc::new(session_secret),
        cache,
        watchers: Arc::new(realtime::Watchers::default()),
        workers: Arc::new(workers::Workers::default()),
        policy: Arc::new(auth::policy::RolePolicy),
        config: Arc::new(config),
        metrics: telemetry::init_metrics(),
        shutdown: serve::Shutdown::default(),
    });
    start_background(&state).await?;
    Ok(state)
}

/// Subscribes the cache to change events (before loading the revoked-token set, so nothing
/// revoked in between is missed) and starts the usage flusher.
async fn start_background(state: &AppState) -> anyhow::Result<()> {
    let (cache, watchers, workers) = (
        state.cache.clone(),
        state.watchers.clone(),
        state.workers.clone(),
    );
    state.store.on_change(Arc::new(move |event| {
        cache.apply(event);
        watchers.on_change(event);
        workers.on_change(event);
    }));
    let mut events = state.store.subscribe();
    let revoked = state
        .store
        .revoked_pat_ids()
        .await
        .context("cannot load revoked tokens")?;
    state.cache.set_revoked_pats(revoked);

    let (cache, store) = (state.cache.clone(), state.store.clone());
    let replica = state.config.database_replica_url.is_some();
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

    // Error groups: ignores whose time has passed are reopened (reads already see them so),
    // and count buckets past the retention are deleted.
    let (store, clock) = (state.store.clone(), state.clock.clone());
    let retention = state.config.error_retention;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ERROR_SWEEP_INTERVAL);
        let mut last_purge: Option<std::time::Instant> = None;
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
                last_purge = Some(std::time::Instant::now());
                // A day of margin: a window starting at the retention's edge reads the day
                // bucket it starts in.
                let cutoff = now - retention - chrono::Duration::days(1);
                match store.purge_error_buckets(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(rows = n, "deleted error count buckets past the retention")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not delete old error count buckets; will retry")
                    }
                }
            }
        }
    });

    let (cache, store) = (state.cache.clone(), state.store.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(USAGE_FLUSH_INTERVAL);
        loop {
            tick.tick().await;
            flush_usage(&cache, &*store).await;
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

/// Runs the server until SIGINT or SIGTERM, then ends streams and drains other requests
/// within the shutdown deadline (a second signal ends the wait at once).
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = build_state(config, Arc::new(SystemClock)).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen: cannot bind {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backend = state.store.backend(), "taskgate listening");
    telemetry::log_panics();
    let (store, cache) = (state.store.clone(), state.cache.clone());
    let app = router::router(state.clone());
    serve::serve(listener, app, state, signal(), async {
        signal().await;
    })
    .await;
    flush_usage(&cache, &*store).await;
    store.close().await;
    tracing::info!("taskgate stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. Each call waits for a new signal: the first begins the
/// shutdown, the second (awaited only after it) ends its wait.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
