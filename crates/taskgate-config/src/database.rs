//! The database: embedded SQLite by default, or PostgreSQL with an optional read replica.

use std::time::Duration;

use anyhow::bail;

use crate::{in_range, Names};

/// taskgate's statements take milliseconds; ten seconds means the database is in trouble.
pub const DEFAULT_STATEMENT_TIMEOUT_SECONDS: u64 = 10;

options! {
    /// Which database, and how it is migrated and bounded.
    pub struct DatabaseArgs {
        /// PostgreSQL URL (postgres://…) [default: none, embedded SQLite in the data dir].
        #[arg(long, env = "DATABASE_URL", value_name = "URL")]
        pub database_url: Option<String>,

        /// PostgreSQL read replica for read-only lookups; misses fall back to the primary
        /// [default: none].
        #[arg(long, env = "TASKGATE_DATABASE_REPLICA_URL", value_name = "URL")]
        pub database_replica_url: Option<String>,

        /// Apply PostgreSQL migrations on start; SQLite always migrates on start
        /// [default: true].
        #[arg(long, env = "TASKGATE_MIGRATE_ON_START")]
        pub migrate_on_start: Option<bool>,

        /// Seconds a PostgreSQL statement may run before the database cancels it and the
        /// request answers 503 (1 to 3600) [default: 10].
        #[arg(long, env = "TASKGATE_DATABASE_STATEMENT_TIMEOUT_SECONDS", value_name = "SECONDS")]
        pub database_statement_timeout_seconds: Option<u64>,
    }
}

/// The database section, validated.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite:…`; `None` is SQLite in the data directory.
    pub url: Option<String>,
    pub replica_url: Option<String>,
    pub migrate_on_start: bool,
    /// How long a PostgreSQL statement may run.
    pub statement_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            replica_url: None,
            migrate_on_start: true,
            statement_timeout: Duration::from_secs(DEFAULT_STATEMENT_TIMEOUT_SECONDS),
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("replica_url", &self.replica_url.as_deref().map(redact_url))
            .field("migrate_on_start", &self.migrate_on_start)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

impl DatabaseArgs {
    pub(crate) fn validate(self, n: &impl Names) -> anyhow::Result<DatabaseConfig> {
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
            {
                bail!(
                    "{}: expected postgres://… or sqlite:…, got {}",
                    n("database-url"),
                    redact_url(url)
                );
            }
        }
        if self.database_replica_url.is_some()
            && !self
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
        {
            bail!(
                "{}: a read replica needs a PostgreSQL database-url",
                n("database-replica-url")
            );
        }
        let statement = self
            .database_statement_timeout_seconds
            .unwrap_or(DEFAULT_STATEMENT_TIMEOUT_SECONDS);
        in_range(n("database-statement-timeout-seconds"), statement, 1, 3600)?;
        Ok(DatabaseConfig {
            url: self.database_url,
            replica_url: self.database_replica_url,
            migrate_on_start: self.migrate_on_start.unwrap_or(true),
            statement_timeout: Duration::from_secs(statement),
        })
    }
}

/// Hides the password of a database URL: `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
