//! taskgate storage on PostgreSQL: the backend for several stateless nodes.
//!
//! Change events are sent with `pg_notify` inside the writing transaction (delivered to every
//! node on commit) and also broadcast locally right after the commit, so the writing node's
//! own caches never wait for the round trip. A listener task forwards other nodes' events;
//! when its connection drops it reconnects and emits [`ChangeEvent::Resync`], since
//! notifications sent meanwhile are lost.
//!
//! An optional read replica serves the hot lookups (keys, tokens, environments); a row the
//! replica does not have yet is read from the primary, so replica lag never makes a row look
//! missing.

mod error;
pub mod testing;

/// The types and SQL dialect that the implementation shared by both backends
/// (`crates/taskgate-store/sql/`, compiled into each backend as `#[path]` modules) is written against.
pub(crate) mod backend {
    pub type Backend = super::PostgresStore;
    pub type Db = sqlx::Postgres;
    pub type DbRow = sqlx::postgres::PgRow;
    pub type DbConn = sqlx::PgConnection;
    pub type Pool = sqlx::PgPool;
    /// Row lock of a read that precedes a write in the same transaction (PostgreSQL locks the
    /// rows). `NO KEY UPDATE`: it excludes every other such lock, but not the key-share lock a
    /// foreign key check takes, so inserting a run, a waitpoint or an edge never waits for a
    /// dequeue that holds its environment (nothing here changes a key).
    pub const FOR_UPDATE: &str = " FOR NO KEY UPDATE";
    pub const FOR_UPDATE_OF_R: &str = " FOR NO KEY UPDATE OF r";
    pub const FOR_UPDATE_SKIP_LOCKED: &str = " FOR NO KEY UPDATE SKIP LOCKED";
    /// Makes a text comparison byte-wise (PostgreSQL's default collation is not; SQLite's is).
    pub const BYTEWISE: &str = " COLLATE \"C\"";
}

#[path = "../../taskgate-store/sql/alerts.rs"]
mod alerts;
#[path = "../../taskgate-store/sql/audit.rs"]
mod audit;
#[path = "../../taskgate-store/sql/deploys.rs"]
mod deploys;
#[path = "../../taskgate-store/sql/engine.rs"]
mod engine;
#[path = "../../taskgate-store/sql/errors.rs"]
mod errors;
#[path = "../../taskgate-store/sql/keys.rs"]
mod keys;
#[path = "../../taskgate-store/sql/orgs.rs"]
mod orgs;
#[path = "../../taskgate-store/sql/packets.rs"]
mod packets;
#[path = "../../taskgate-store/sql/projects.rs"]
mod projects;
#[path = "../../taskgate-store/sql/queues.rs"]
mod queues;
#[path = "../../taskgate-store/sql/rows.rs"]
mod rows;
#[path = "../../taskgate-store/sql/runs.rs"]
mod runs;
#[path = "../../taskgate-store/sql/schedules.rs"]
mod schedules;
#[path = "../../taskgate-store/sql/sessions.rs"]
mod sessions;
#[path = "../../taskgate-store/sql/tokens.rs"]
mod tokens;
#[path = "../../taskgate-store/sql/users.rs"]
mod users;
#[path = "../../taskgate-store/sql/waits.rs"]
mod waits;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::PgConnection;
use taskgate_store::{ChangeEvent, ChangeFanout, ChangeHook, Store, StoreError, StoreResult};
use tokio::sync::broadcast;

use crate::error::map_err;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connections per pool. Two cores serve a few dozen concurrent queries comfortably.
const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
const EVENT_BUFFER: usize = 1024;

/// The PostgreSQL store.
pub struct PostgresStore {
    writer: PgPool,
    /// The primary, for reads that must see the latest commit.
    reader: PgPool,
    replica: Option<PgPool>,
    channel: String,
    /// Tags this store's notifications so its own listener skips them (they were delivered
    /// locally, synchronously, when the change committed).
    origin: String,
    events: Arc<ChangeFanout>,
    listener: tokio::task::JoinHandle<()>,
}

/// A change notification on the wire.
#[derive(serde::Serialize, serde::Deserialize)]
struct Notification {
    origin: String,
    event: ChangeEvent,
}

impl PostgresStore {
    /// Connects to the primary (and the replica, if given), migrating when `migrate`. Every
    /// statement is cancelled by the database after `statement_timeout` (migrations aside).
    pub async fn connect(
        url: &str,
        replica_url: Option<&str>,
        migrate: bool,
        statement_timeout: Option<Duration>,
    ) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database url: {e}")))?;
        let replica = match replica_url {
            Some(r) => Some(
                PgConnectOptions::from_str(r)
                    .map_err(|e| StoreError::Other(format!("invalid replica url: {e}")))?,
            ),
            None => None,
        };
        let limit = |o: PgConnectOptions| match statement_timeout {
            Some(t) => o.options([("statement_timeout", format!("{}ms", t.as_millis()))]),
            None => o,
        };
        if migrate {
            Self::run_migrations(opts.clone()).await?;
        }
        Self::connect_with(
            limit(opts),
            replica.map(limit),
            false,
            ChangeEvent::CHANNEL.to_string(),
        )
        .await
    }

    /// Connects with explicit options; tests use this with a per-test `search_path` schema and
    /// notification channel.
    pub async fn connect_with(
        opts: PgConnectOptions,
        replica: Option<PgConnectOptions>,
        migrate: bool,
        channel: String,
    ) -> StoreResult<Self> {
        let pool = |o: PgConnectOptions| {
            PgPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(o)
        };
        if migrate {
            Self::run_migrations(opts.clone()).await?;
        }
        let writer = pool(opts.clone()).await.map_err(map_err)?;
        let replica = match replica {
            Some(r) => Some(pool(r).await.map_err(map_err)?),
            None => None,
        };
        let events = Arc::new(ChangeFanout::new(EVENT_BUFFER));
        let origin = taskgate_core::ids::new_id();
        // The store is returned once the listener listens (or has kept failing for a while),
        // so that no change another node makes after start-up is missed, and no start-up
        // resync lands on caches the node has begun to fill.
        let (listening, first) = tokio::sync::oneshot::channel();
        let listener = tokio::spawn(listen(
            writer.clone(),
            channel.clone(),
            origin.clone(),
            events.clone(),
            listening,
        ));
        if tokio::time::timeout(LISTEN_AT_START, first).await.is_err() {
            tracing::warn!("change listener not listening yet; caches start over once it is");
        }
        Ok(Self {
            reader: writer.clone(),
            writer,
            replica,
            channel,
            origin,
            events,
            listener,
        })
    }

    /// Applies pending migrations on a connection of their own, free of the statement
    /// timeout (an index on a large table may take minutes).
    async fn run_migrations(opts: PgConnectOptions) -> StoreResult<()> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        let result = MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("postgres migration failed: {e}")));
        pool.close().await;
        result
    }

    /// Applies pending migrations (`taskgate migrate`).
    pub async fn migrate(url: &str) -> StoreResult<()> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(map_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("postgres migration failed: {e}")))?;
        pool.close().await;
        Ok(())
    }

    /// The read replica, when there is one.
    fn replica(&self) -> Option<&PgPool> {
        self.replica.as_ref()
    }

    /// The channel and payload that tell every other node of `event`: what a write sends
    /// with `pg_notify` in the same statement, when it can ([`Self::notify_in`] otherwise).
    fn notification(&self, event: &ChangeEvent) -> StoreResult<Option<(String, String)>> {
        let note = Notification {
            origin: self.origin.clone(),
            event: event.clone(),
        };
        let payload = serde_json::to_string(&note).map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Some((self.channel.clone(), payload)))
    }

    /// Sends `event` to every node when the surrounding transaction commits.
    async fn notify_in(&self, conn: &mut PgConnection, event: &ChangeEvent) -> StoreResult<()> {
        count("notify");
        let Some((channel, payload)) = self.notification(event)? else {
            return Ok(());
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    fn publish_local(&self, event: ChangeEvent) {
        self.events.deliver(event);
    }

    /// For writes outside a transaction: notify every node, and this one at once.
    async fn publish(&self, event: ChangeEvent) {
        match self.writer.acquire().await {
            Ok(mut conn) => {
                if let Err(e) = self.notify_in(&mut conn, &event).await {
                    tracing::warn!(error = %e, "could not notify other nodes of a change");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not notify other nodes of a change"),
        }
        self.publish_local(event);
    }
}

/// How long opening the store waits for the change listener.
const LISTEN_AT_START: Duration = Duration::from_secs(10);

async fn listen(
    pool: PgPool,
    channel: String,
    origin: String,
    events: Arc<ChangeFanout>,
    listening: tokio::sync::oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "change listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "change listener cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Anything sent while no listener was connected is lost: every cache starts over, once
        // the listener is back (dropping caches when it goes would throw away, at the start of
        // a database outage, the cached credentials that are to ride it out). The first time,
        // the store is still opening and nothing is cached: it is told instead.
        match listening.take() {
            Some(first) if !first.is_closed() => {
                let _ = first.send(());
            }
            _ => events.deliver(ChangeEvent::Resync),
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match serde_json::from_str::<Notification>(n.payload()) {
                    Ok(note) if note.origin == origin => {}
                    Ok(note) => events.deliver(note.event),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring a malformed change notification")
                    }
                },
                Ok(None) => {
                    tracing::warn!("change listener lost its connection; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change listener failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

/// Counts one statement sent to the database, labelled by the use case that sent it.
pub(crate) fn count(operation: &'static str) {
    metrics::counter!("taskgate_db_queries_total", "backend" => "postgres", "operation" => operation).increment(1);
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        count("ping");
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.events.subscribe()
    }

    fn on_change(&self, hook: ChangeHook) {
        self.events.add_hook(hook);
    }

    fn report_pool_metrics(&self) {
        let pools = [
            ("primary", Some(&self.writer)),
            ("replica", self.replica.as_ref()),
        ];
        for (name, pool) in pools {
            if let Some(pool) = pool {
                let idle = pool.num_idle() as f64;
                let size = f64::from(pool.size());
                metrics::gauge!("taskgate_db_pool_connections", "backend" => "postgres", "pool" => name, "state" => "idle").set(idle);
                metrics::gauge!("taskgate_db_pool_connections", "backend" => "postgres", "pool" => name, "state" => "in_use").set(size - idle);
            }
        }
    }

    async fn close(&self) {
        self.listener.abort();
        self.writer.close().await;
        if let Some(r) = &self.replica {
            r.close().await;
        }
    }
}

/// Every column of the applied schema, for the cross-backend schema test.
pub async fn schema_columns(
    store: &PostgresStore,
) -> StoreResult<Vec<taskgate_store::SchemaColumn>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text,
                CASE data_type WHEN 'double precision' THEN 'real'
                               WHEN 'timestamp with time zone' THEN 'timestamptz'
                               WHEN 'bytea' THEN 'blob'
                               ELSE data_type::text END,
                is_nullable = 'YES'
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'
         ORDER BY 1, 2",
    )
    .fetch_all(&store.reader)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok(taskgate_store::SchemaColumn {
                table: r.try_get(0).map_err(map_err)?,
                column: r.try_get(1).map_err(map_err)?,
                sql_type: r.try_get(2).map_err(map_err)?,
                nullable: r.try_get(3).map_err(map_err)?,
            })
        })
        .collect()
}
