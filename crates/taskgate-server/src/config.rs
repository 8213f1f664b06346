//! Configuration: built-in defaults, an optional TOML file, `TASKGATE_*` environment variables
//! (and `DATABASE_URL`), then command-line flags, each layer overriding the one before.
//! `taskgate serve --help` documents every option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use secrecy::SecretString;
use serde::Deserialize;

/// Default listen address: loopback, so a first start exposes nothing to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3030";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./taskgate-data";
/// Default grace window of a rotated key: clients roll their environment variables in a day.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 60 * 60;
/// Largest JSON body any management route accepts (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Runs an environment executes at once unless configured: enough for a developer's machine
/// (the CLI runs each in its own process) and a batch to make progress in parallel.
pub const DEFAULT_CONCURRENCY_LIMIT: u32 = 10;
/// How long a worker's dequeue waits for a run: upstream's long poll, which the CLI expects.
pub const DEFAULT_DEQUEUE_WAIT_SECONDS: u64 = 10;
/// How long a worker waits after a dequeue that found a run: the CLI takes one run per
/// dequeue, so this paces how fast a backlog starts (upstream's 250 ms caps a worker at four
/// runs a second; waiting is the long poll's job, not this pause's).
pub const DEFAULT_DEQUEUE_INTERVAL_MS: u64 = 25;
/// Largest trigger payload stored inline (3 MiB, upstream's limit).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 3 * 1024 * 1024;

/// Options of `taskgate serve`. Every field is optional here so that the TOML file can fill in
/// what neither a flag nor the environment set.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// TOML file with any of these options (kebab-case keys); flags and env override it.
    #[arg(long, env = "TASKGATE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "TASKGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Directory for the embedded database, generated secrets and the admin token.
    #[arg(long, env = "TASKGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL URL (postgres://…). Without it taskgate uses embedded SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Optional PostgreSQL read replica for read-only lookups (misses fall back to the primary).
    #[arg(long, env = "TASKGATE_DATABASE_REPLICA_URL", value_name = "URL")]
    pub database_replica_url: Option<String>,

    /// Apply PostgreSQL migrations on start (SQLite always migrates on start).
    #[arg(long, env = "TASKGATE_MIGRATE_ON_START")]
    pub migrate_on_start: Option<bool>,

    /// Email of the administrator created on first start.
    #[arg(long, env = "TASKGATE_ADMIN_EMAIL", value_name = "EMAIL")]
    pub admin_email: Option<String>,

    /// Master key sealing environment keys at rest (32 bytes, hex or base64). Generated into
    /// the data dir on first start when unset.
    #[arg(
        long,
        env = "TASKGATE_ENCRYPTION_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    #[serde(skip)]
    pub encryption_key: Option<String>,

    /// Secret signing user-actor tokens. Generated into the data dir on first start when unset.
    #[arg(
        long,
        env = "TASKGATE_SESSION_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    #[serde(skip)]
    pub session_secret: Option<String>,

    /// Grace window of a rotated secret key, in seconds.
    #[arg(long, env = "TASKGATE_GRACE_SECONDS", value_name = "SECONDS")]
    pub grace_seconds: Option<i64>,

    /// Longest lifetime a user-actor token may be minted with, in seconds.
    #[arg(long, env = "TASKGATE_MAX_UAT_TTL_SECONDS", value_name = "SECONDS")]
    pub max_uat_ttl_seconds: Option<i64>,

    /// Public URL of this server, returned as `apiUrl` (defaults to http://<listen>).
    #[arg(long, env = "TASKGATE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Largest request body of the JSON routes, in bytes.
    #[arg(long, env = "TASKGATE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Largest trigger payload, in bytes.
    #[arg(long, env = "TASKGATE_MAX_PAYLOAD_BYTES", value_name = "BYTES")]
    pub max_payload_bytes: Option<usize>,

    /// Seconds a cached key, token or environment is trusted without a change notification.
    #[arg(long, env = "TASKGATE_CACHE_TTL_SECONDS", value_name = "SECONDS")]
    pub cache_ttl_seconds: Option<u64>,

    /// Seconds a live realtime request waits for a change (1 to 60; Electric clients expect about 20).
    #[arg(long, env = "TASKGATE_REALTIME_POLL_SECONDS", value_name = "SECONDS")]
    pub realtime_poll_seconds: Option<u64>,

    /// Runs an environment may execute at once (1 to 1000) [default: 10].
    #[arg(long, env = "TASKGATE_CONCURRENCY_LIMIT", value_name = "RUNS")]
    pub concurrency_limit: Option<u32>,

    /// Most runs an environment may have waiting in its queue; triggers beyond it are refused
    /// (422). Unlimited when unset.
    #[arg(long, env = "TASKGATE_MAX_QUEUE_SIZE", value_name = "RUNS")]
    pub max_queue_size: Option<u64>,

    /// Seconds a worker's dequeue waits for a run before answering empty (0 to 30) [default: 10].
    #[arg(long, env = "TASKGATE_DEQUEUE_WAIT_SECONDS", value_name = "SECONDS")]
    pub dequeue_wait_seconds: Option<u64>,

    /// Milliseconds a worker waits after a dequeue that found a run before the next one (0 to
    /// 5000) [default: 25].
    #[arg(long, env = "TASKGATE_DEQUEUE_INTERVAL_MS", value_name = "MS")]
    pub dequeue_interval_ms: Option<u64>,
}

impl ServeArgs {
    fn or(self, base: ServeArgs) -> ServeArgs {
        ServeArgs {
            config: self.config.or(base.config),
            listen: self.listen.or(base.listen),
            data_dir: self.data_dir.or(base.data_dir),
            database_url: self.database_url.or(base.database_url),
            database_replica_url: self.database_replica_url.or(base.database_replica_url),
            migrate_on_start: self.migrate_on_start.or(base.migrate_on_start),
            admin_email: self.admin_email.or(base.admin_email),
            encryption_key: self.encryption_key.or(base.encryption_key),
            session_secret: self.session_secret.or(base.session_secret),
            grace_seconds: self.grace_seconds.or(base.grace_seconds),
            max_uat_ttl_seconds: self.max_uat_ttl_seconds.or(base.max_uat_ttl_seconds),
            public_url: self.public_url.or(base.public_url),
            max_body_bytes: self.max_body_bytes.or(base.max_body_bytes),
            max_payload_bytes: self.max_payload_bytes.or(base.max_payload_bytes),
            cache_ttl_seconds: self.cache_ttl_seconds.or(base.cache_ttl_seconds),
            realtime_poll_seconds: self.realtime_poll_seconds.or(base.realtime_poll_seconds),
            concurrency_limit: self.concurrency_limit.or(base.concurrency_limit),
            max_queue_size: self.max_queue_size.or(base.max_queue_size),
            dequeue_wait_seconds: self.dequeue_wait_seconds.or(base.dequeue_wait_seconds),
            dequeue_interval_ms: self.dequeue_interval_ms.or(base.dequeue_interval_ms),
        }
    }
}

/// Validated configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub database_replica_url: Option<String>,
    pub migrate_on_start: bool,
    pub admin_email: String,
    pub encryption_key: Option<SecretString>,
    pub session_secret: Option<SecretString>,
    pub grace: chrono::Duration,
    pub max_uat_ttl_seconds: i64,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub max_payload_bytes: usize,
    pub cache_ttl: std::time::Duration,
    /// How long a live realtime request waits for a change before answering "up to date".
    pub realtime_poll: std::time::Duration,
    /// Runs an environment may execute at once.
    pub concurrency_limit: u32,
    /// Most runs an environment may have waiting; `None` is unlimited.
    pub max_queue_size: Option<u64>,
    /// How long a dequeue waits for a run (the long poll).
    pub dequeue_wait: std::time::Duration,
    /// What workers wait between a dequeue that found a run and the next.
    pub dequeue_interval: std::time::Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field(
                "database_replica_url",
                &self.database_replica_url.as_deref().map(redact_url),
            )
            .field("migrate_on_start", &self.migrate_on_start)
            .field("admin_email", &"[redacted]")
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("grace", &self.grace)
            .field("max_uat_ttl_seconds", &self.max_uat_ttl_seconds)
            .field("public_url", &self.public_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("cache_ttl", &self.cache_ttl)
            .field("realtime_poll", &self.realtime_poll)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("max_queue_size", &self.max_queue_size)
            .field("dequeue_wait", &self.dequeue_wait)
            .field("dequeue_interval", &self.dequeue_interval)
            .finish()
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

impl Config {
    /// Layers the TOML file (if any) under `args` and validates the result, naming the field
    /// that is wrong.
    pub fn load(args: ServeArgs) -> anyhow::Result<Config> {
        let merged = match &args.config {
            Some(path) => args.clone().or(read_file(path)?),
            None => args,
        };
        Self::validate(merged)
    }

    fn validate(a: ServeArgs) -> anyhow::Result<Config> {
        let listen_raw = a.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_raw.parse().with_context(|| {
            format!("listen: {listen_raw:?} is not an address like 127.0.0.1:3030")
        })?;
        if let Some(url) = &a.database_url {
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
            {
                bail!(
                    "database-url: expected postgres://… or sqlite:…, got {}",
                    redact_url(url)
                );
            }
        }
        if a.database_replica_url.is_some()
            && !a
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
        {
            bail!("database-replica-url: a read replica needs a PostgreSQL database-url");
        }
        let grace_seconds = a.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        if grace_seconds < 0 {
            bail!("grace-seconds: must not be negative, got {grace_seconds}");
        }
        let max_uat = a
            .max_uat_ttl_seconds
            .unwrap_or(taskgate_core::uat::DEFAULT_MAX_UAT_TTL_SECONDS);
        if max_uat <= 0 {
            bail!("max-uat-ttl-seconds: must be positive, got {max_uat}");
        }
        let admin_email = a
            .admin_email
            .unwrap_or_else(|| "admin@taskgate.local".to_string());
        if !admin_email.contains('@') {
            bail!("admin-email: {admin_email:?} is not an email address");
        }
        let concurrency_limit = a.concurrency_limit.unwrap_or(DEFAULT_CONCURRENCY_LIMIT);
        if !(1..=1000).contains(&concurrency_limit) {
            bail!("concurrency-limit: must be from 1 to 1000, got {concurrency_limit}");
        }
        if a.max_queue_size == Some(0) {
            bail!("max-queue-size: must be at least 1 (leave it unset for no limit)");
        }
        let dequeue_wait_seconds = a
            .dequeue_wait_seconds
            .unwrap_or(DEFAULT_DEQUEUE_WAIT_SECONDS);
        if dequeue_wait_seconds > 30 {
            bail!("dequeue-wait-seconds: must be from 0 to 30, got {dequeue_wait_seconds}");
        }
        let dequeue_interval_ms = a.dequeue_interval_ms.unwrap_or(DEFAULT_DEQUEUE_INTERVAL_MS);
        if dequeue_interval_ms > 5000 {
            bail!("dequeue-interval-ms: must be from 0 to 5000, got {dequeue_interval_ms}");
        }
        let public_url = a
            .public_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        Ok(Config {
            listen,
            data_dir: a
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database_url: a.database_url,
            database_replica_url: a.database_replica_url,
            migrate_on_start: a.migrate_on_start.unwrap_or(true),
            admin_email,
            encryption_key: a.encryption_key.map(SecretString::from),
            session_secret: a.session_secret.map(SecretString::from),
            grace: chrono::Duration::seconds(grace_seconds),
            max_uat_ttl_seconds: max_uat,
            public_url,
            max_body_bytes: a.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_payload_bytes: a.max_payload_bytes.unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES),
            cache_ttl: std::time::Duration::from_secs(a.cache_ttl_seconds.unwrap_or(300)),
            realtime_poll: std::time::Duration::from_secs(
                a.realtime_poll_seconds.unwrap_or(20).clamp(1, 60),
            ),
            concurrency_limit,
            max_queue_size: a.max_queue_size,
            dequeue_wait: std::time::Duration::from_secs(dequeue_wait_seconds),
            dequeue_interval: std::time::Duration::from_millis(dequeue_interval_ms),
        })
    }

    /// A configuration for tests: SQLite in `data_dir`, an ephemeral port.
    pub fn for_tests(data_dir: &Path) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            database_url: None,
            database_replica_url: None,
            migrate_on_start: true,
            admin_email: "admin@taskgate.local".into(),
            encryption_key: None,
            session_secret: None,
            grace: chrono::Duration::seconds(DEFAULT_GRACE_SECONDS),
            max_uat_ttl_seconds: taskgate_core::uat::DEFAULT_MAX_UAT_TTL_SECONDS,
            public_url: "http://127.0.0.1:3030".into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            cache_ttl: std::time::Duration::from_secs(300),
            realtime_poll: std::time::Duration::from_secs(20),
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            max_queue_size: None,
            dequeue_wait: std::time::Duration::from_secs(DEFAULT_DEQUEUE_WAIT_SECONDS),
            dequeue_interval: std::time::Duration::from_millis(DEFAULT_DEQUEUE_INTERVAL_MS),
        }
    }
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("config: cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "config: {} is not a valid taskgate config file",
            path.display()
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taskgate.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:4000\"\ngrace-seconds = 60\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            grace_seconds: Some(120),
            ..Default::default()
        };
        let cfg = Config::load(args).unwrap();
        assert_eq!(cfg.listen.port(), 4000);
        assert_eq!(cfg.grace.num_seconds(), 120);
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = Config::load(ServeArgs {
            listen: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("listen:"), "{err}");
        let err = Config::load(ServeArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("database-url:"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "no-such-option = 1\n").unwrap();
        assert!(Config::load(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        let cfg = Config::load(ServeArgs {
            database_url: Some("postgres://app:hunter2@db/x".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
