//! taskgate storage on embedded SQLite, the default backend.
//!
//! One file in the data directory, WAL journal, foreign keys on. Writes go through a pool of
//! exactly one connection, so write transactions queue in-process instead of failing with
//! `SQLITE_BUSY` when two of them try to upgrade a read lock; reads use a separate read-only
//! pool and never wait for writers (WAL). Change events are broadcast in-process: SQLite serves
//! one taskgate process.

mod error;

/// The types and SQL dialect that the implementation shared by both backends
/// (`crates/taskgate-store/sql/`, compiled into each backend as `#[path]` modules) is written against.
pub(crate) mod backend {
    pub type Backend = super::SqliteStore;
    pub type Db = sqlx::Sqlite;
    pub type DbRow = sqlx::sqlite::SqliteRow;
    pub type DbConn = sqlx::SqliteConnection;
    pub type Pool = sqlx::SqlitePool;
    /// Row lock of a read that precedes a write in the same transaction (none on SQLite: its single writer connection already serializes writes).
    pub const FOR_UPDATE: &str = "";
    pub const FOR_UPDATE_OF_R: &str = "";
    pub const FOR_UPDATE_SKIP_LOCKED: &str = "";
    /// Makes a text comparison byte-wise (PostgreSQL's default collation is not; SQLite's is).
    pub const BYTEWISE: &str = "";
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

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use taskgate_store::{ChangeEvent, ChangeFanout, ChangeHook, Store, StoreError, StoreResult};
use tokio::sync::broadcast;

use crate::error::map_err;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Readers kept open. SQLite reads are cheap; a handful covers a 2-core machine.
const READ_CONNECTIONS: u32 = 4;
/// How long a statement waits on a lock held by another process (e.g. a backup) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Change events buffered per subscriber before a slow one starts missing events (it then
/// drops its whole cache, see the server's cache listener).
const EVENT_BUFFER: usize = 1024;

/// Creates the database file with mode 0600 when it does not exist (SQLite then creates its
/// `-wal` and `-shm` files with the database's mode), and takes group and other access away
/// from an existing database and those files (one made before this rule, or by hand).
fn restrict_database_files(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let cannot = |e: std::io::Error| {
            StoreError::Other(format!("cannot restrict {}: {e}", path.display()))
        };
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Ok(());
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cannot(e)),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = Path::new(&name);
            match std::fs::metadata(file) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                        .map_err(cannot)?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(cannot(e)),
            }
        }
    }
    Ok(())
}

/// The SQLite store.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    events: ChangeFanout,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies pending migrations.
    /// The file and its WAL and shared-memory files are readable by their owner only: they
    /// hold sealed keys and every run's payload.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        restrict_database_files(path)?;
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(map_err)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Other(format!("sqlite migration failed: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(base.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self {
            writer,
            reader,
            events: ChangeFanout::new(EVENT_BUFFER),
        })
    }

    /// Opens a database named by a `sqlite:` URL (`sqlite:///path/to/file.db`).
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid sqlite url: {e}")))?;
        Self::open(opts.get_filename()).await
    }

    /// No other node to tell: SQLite serves one process.
    fn notification(&self, _event: &ChangeEvent) -> StoreResult<Option<(String, String)>> {
        Ok(None)
    }

    /// Change events need no in-transaction step on SQLite: it serves one process.
    async fn notify_in(
        &self,
        _conn: &mut sqlx::SqliteConnection,
        _event: &ChangeEvent,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// Delivers a committed change to this process's hooks and subscribers.
    fn publish_local(&self, event: ChangeEvent) {
        self.events.deliver(event);
    }

    /// For writes outside a transaction.
    async fn publish(&self, event: ChangeEvent) {
        self.publish_local(event);
    }

    /// SQLite has no read replica.
    fn replica(&self) -> Option<&SqlitePool> {
        None
    }
}

/// Counts one statement sent to the database, labelled by the use case that sent it.
pub(crate) fn count(operation: &'static str) {
    metrics::counter!("taskgate_db_queries_total", "backend" => "sqlite", "operation" => operation)
        .increment(1);
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        count("ping");
        sqlx::query("SELECT 1")
            .execute(&self.reader)
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
        for (name, pool) in [("writer", &self.writer), ("reader", &self.reader)] {
            let idle = pool.num_idle() as f64;
            let size = f64::from(pool.size());
            metrics::gauge!("taskgate_db_pool_connections", "backend" => "sqlite", "pool" => name, "state" => "idle").set(idle);
            metrics::gauge!("taskgate_db_pool_connections", "backend" => "sqlite", "pool" => name, "state" => "in_use").set(size - idle);
        }
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Every column of the applied schema, for the cross-backend schema test.
pub async fn schema_columns(store: &SqliteStore) -> StoreResult<Vec<taskgate_store::SchemaColumn>> {
    use sqlx::Row;
    let rows = sqlx::query(
        // An INTEGER PRIMARY KEY is the table's 64-bit rowid: PostgreSQL's BIGINT identity.
        "SELECT m.name AS table_name, p.name AS column_name,
                CASE WHEN p.pk = 1 AND lower(p.type) = 'integer'
                          AND (SELECT count(*) FROM pragma_table_info(m.name) k WHERE k.pk > 0) = 1
                     THEN 'bigint' ELSE lower(p.type) END,
                p.\"notnull\" = 0 AND p.pk = 0
         FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx_%'
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
