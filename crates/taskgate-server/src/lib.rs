//! The taskgate HTTP server: configuration, start-up, the router and everything behind it.

pub mod auth;
pub mod bootstrap;
pub mod client_ip;
pub mod cors;
pub mod deadline;
pub mod error;
pub mod jobs;
pub mod json;
pub mod openapi;
pub mod public_url;
pub mod ratelimit;
pub mod realtime;
pub mod router;
pub mod routes;
pub mod serve;
pub mod socketio;
pub mod state;
pub mod telemetry;
pub mod workload;

pub use jobs::usage::flush_usage;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use taskgate_core::time::{Clock, SystemClock};
use taskgate_store::Store;

use crate::state::AppState;
use taskgate_auth::cache::AuthCache;
use taskgate_auth::filter::KeyFilter;
use taskgate_auth::policy::RolePolicy;
use taskgate_auth::ratelimit::local::LocalBuckets;
use taskgate_auth::ratelimit::shared::SharedBuckets;
use taskgate_auth::ratelimit::RateLimiter;
use taskgate_auth::Auth;
use taskgate_config::Config;
use taskgate_core::vault::KeyVault;

/// Opens the store named by the configuration: PostgreSQL for a `postgres://` URL, SQLite for
/// a `sqlite:` URL, else SQLite in the data directory.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match config.database.url.as_deref() {
        Some(url) if url.starts_with("postgres") => {
            let store = taskgate_store_postgres::PostgresStore::connect(
                url,
                config.database.replica_url.as_deref(),
                config.database.migrate_on_start,
                Some(config.database.statement_timeout),
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
            let path = config.server.data_dir.join("taskgate.db");
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
    bootstrap::ensure_data_dir(&config.server.data_dir)?;
    let store = open_store(&config).await?;
    build_state_with_store(config, clock, store).await
}

/// [`build_state`] on an already opened store (tests use per-test databases).
pub async fn build_state_with_store(
    config: Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
) -> anyhow::Result<AppState> {
    bootstrap::ensure_data_dir(&config.server.data_dir)?;
    let master = bootstrap::master_key(&config)?;
    let session_secret = bootstrap::session_secret(&config)?;
    bootstrap::bootstrap_admin(&*store, &config).await?;
    let limiter = match &config.rate_limits.limits {
        Some(limits) => {
            let shared = match &config.rate_limits.redis_url {
                Some(url) => Some(SharedBuckets::new(url).map_err(anyhow::Error::msg)?),
                None => None,
            };
            let now = taskgate_core::time::to_millis(clock.now());
            Some(Arc::new(RateLimiter::new(limits.clone(), shared, now)))
        }
        None => None,
    };
    let started_ms = taskgate_core::time::to_millis(clock.now());
    let vault = Arc::new(KeyVault::new(master));
    let session_secret = Arc::new(session_secret);
    let engine = Arc::new(taskgate_engine::Engine::new(
        store.clone(),
        clock.clone(),
        vault.clone(),
        session_secret.clone(),
        taskgate_engine::EngineSettings {
            concurrency_limit: config.engine.concurrency_limit,
            max_queue_size: config.engine.max_queue_size,
            dequeue_wait: config.engine.dequeue_wait,
            max_payload_bytes: config.engine.max_payload_bytes,
            max_packet_bytes: config.engine.max_packet_bytes,
        },
    ));
    let auth = Auth {
        store: store.clone(),
        clock: clock.clone(),
        vault: vault.clone(),
        session_secret: session_secret.clone(),
        cache: Arc::new(AuthCache::new(config.tokens.cache_ttl)),
        key_filter: Arc::new(KeyFilter::new(clock.clone())),
        policy: Arc::new(RolePolicy),
        max_jwt_ttl_seconds: config.tokens.max_jwt_ttl_seconds,
    };
    let usecases = Arc::new(taskgate_usecases::UseCases {
        store: store.clone(),
        auth: auth.clone(),
        engine: engine.clone(),
        settings: taskgate_usecases::Settings {
            grace: config.tokens.grace,
            default_rate_limit: config
                .rate_limits
                .limits
                .clone()
                .unwrap_or_default()
                .default,
            webhook_allow_private: config.alerts.webhook_allow_private,
        },
    });
    let runner = Arc::new(taskgate_runner::Runner::new(
        engine.clone(),
        taskgate_runner::RunnerSettings {
            work_dir: runner_dir(&config),
            capacity: config.runner.capacity,
            node: config.runner.node.clone(),
            npm: config.runner.npm.clone(),
            instance_name: std::env::var("HOSTNAME").unwrap_or_else(|_| "taskgate".into()),
        },
    ));
    let state = AppState::new(state::Shared {
        store,
        clock,
        vault,
        session_secret,
        auth,
        limiter,
        engine,
        usecases,
        runner,
        run_sets: Arc::default(),
        sign_in_requests: Arc::new(LocalBuckets::new(started_ms)),
        config: Arc::new(config),
        metrics: telemetry::init_metrics(),
    });
    jobs::start(&state).await?;
    Ok(state)
}

/// Where deployed bundles are unpacked: `--runner-dir`, else next to the data directory
/// (outside it: task processes must not read it).
pub fn runner_dir(config: &Config) -> std::path::PathBuf {
    config.runner.dir.clone().unwrap_or_else(|| {
        let data = &config.server.data_dir;
        let name = data
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "taskgate".into());
        data.with_file_name(format!("{name}.runner"))
    })
}

/// Starts this node's runner: its loopback workload listener, the sandbox its processes run
/// in (this binary is the launcher), and its execution loop. `api` is where the API listens.
async fn start_runner(state: &AppState, api: std::net::SocketAddr) -> anyhow::Result<()> {
    let runner = state.runner.clone();
    let workload = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot bind the runner's loopback workload listener")?;
    let port = workload.local_addr()?.port();
    let host = if api.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        api.ip()
    };
    runner.set_addresses(
        format!("http://{}", std::net::SocketAddr::new(host, api.port())),
        port,
    );
    let data_dir = std::fs::canonicalize(&state.config.server.data_dir)?;
    let work_dir = runner_dir(&state.config);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create the runner directory {}", work_dir.display()))?;
    let work_dir = std::fs::canonicalize(&work_dir)?;
    if work_dir.starts_with(&data_dir) {
        anyhow::bail!(
            "runner-dir: {} is inside the data directory, which task processes must not read",
            work_dir.display()
        );
    }
    match std::env::current_exe() {
        Ok(launcher) => {
            let sandboxed = std::process::Command::new(&launcher)
                .args(["sandbox", "--check"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if sandboxed {
                tracing::info!(runner.dir = %work_dir.display(), capacity = state.config.runner.capacity, "runner: deployed runs execute here, sandboxed away from the data directory");
            } else {
                tracing::warn!(runner.dir = %work_dir.display(), "runner: this kernel has no Landlock, so task processes could read the data directory: run taskgate as a user of its own, or deployed runs on another machine");
            }
            runner.set_sandbox(taskgate_runner::Sandbox {
                launcher,
                deny: vec![data_dir, work_dir],
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "runner: cannot find this executable to sandbox task processes with");
        }
    }
    let app = workload::router(runner.clone(), state.config.engine.max_payload_bytes);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(workload, app).await {
            tracing::error!(error = %e, "the runner's workload listener stopped");
        }
    });
    runner.start();
    Ok(())
}

/// Runs the server until SIGINT or SIGTERM, then ends streams and drains other requests
/// within the shutdown deadline (a second signal ends the wait at once). `pages` are served
/// beside the API (the binary passes the dashboard's).
pub async fn serve(config: Config, pages: Router<AppState>) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let state = build_state(config, Arc::new(SystemClock)).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen: cannot bind {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backend = state.store.backend(), "taskgate listening");
    start_runner(&state, local).await?;
    let login = format!("{}/login", public_url::configured_url(&state.config));
    if state.config.sign_in.smtp.is_some() {
        tracing::info!(url = %login, "dashboard: sign-in links are emailed; `taskgate login-link --email <your email>` on this host prints one too");
    } else {
        tracing::info!(url = %login, "dashboard: sign in with a one-time link printed by `taskgate login-link --email <your email>` on this host (no email is configured; links are never logged)");
    }
    telemetry::log_panics();
    let (store, cache) = (state.store.clone(), state.auth.cache.clone());
    let app = router::router_with(state.clone(), pages);
    serve::serve(listener, app, state, signal(), async {
        signal().await;
    })
    .await;
    jobs::usage::flush_usage(&cache, &*store).await;
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
