//! Configuration: built-in defaults, an optional TOML file, `TASKGATE_*` environment variables
//! (and `DATABASE_URL`), then command-line flags, each layer overriding the one before.
//! `taskgate serve --help` documents every option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use secrecy::SecretString;
use serde::Deserialize;
use taskgate_core::ratelimit::{Interval, LimitConfig};

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
/// A request's head arrives in one packet or a few; ten seconds is generous to slow links and
/// short for a client trickling headers to hold a connection.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// Longer than clients keep idle connections (Node's fetch: 4 s; browsers: up to a minute),
/// so the client, not the server, closes them and no request races a closing connection.
pub const DEFAULT_KEEPALIVE_TIMEOUT_SECONDS: u64 = 60;
/// Enough for the largest payload (3 MiB) over a slow link.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 30;
/// A request that has not answered in a minute is stuck; answering 503 frees the client.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 60;
/// Orchestrators send SIGKILL some 30 s after SIGTERM; ten seconds leaves room.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: u64 = 10;
/// taskgate's statements take milliseconds; ten seconds means the database is in trouble.
pub const DEFAULT_STATEMENT_TIMEOUT_SECONDS: u64 = 10;
/// How long error count buckets are kept unless configured (upstream's default retention).
pub const DEFAULT_ERROR_RETENTION_DAYS: i64 = 30;
/// Longest JWT lifetime unless configured: a year, as for user-actor tokens.
pub const DEFAULT_MAX_JWT_TTL_SECONDS: i64 = 365 * 24 * 60 * 60;

/// Options of `taskgate serve`. Every field is optional here so that the TOML file can fill in
/// what neither a flag nor the environment set.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// TOML file with any of these options (kebab-case keys); flags and env override it
    /// [default: none].
    #[arg(long, env = "TASKGATE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on: IP:port or host:port [default: 127.0.0.1:3030].
    #[arg(long, env = "TASKGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Directory for the embedded database, generated secrets and the admin token
    /// [default: ./taskgate-data].
    #[arg(long, env = "TASKGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL URL (postgres://…) [default: none, embedded SQLite in the data dir].
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// PostgreSQL read replica for read-only lookups; misses fall back to the primary
    /// [default: none].
    #[arg(long, env = "TASKGATE_DATABASE_REPLICA_URL", value_name = "URL")]
    pub database_replica_url: Option<String>,

    /// Apply PostgreSQL migrations on start; SQLite always migrates on start [default: true].
    #[arg(long, env = "TASKGATE_MIGRATE_ON_START")]
    pub migrate_on_start: Option<bool>,

    /// Email of the administrator created on first start [default: admin@taskgate.local].
    #[arg(long, env = "TASKGATE_ADMIN_EMAIL", value_name = "EMAIL")]
    pub admin_email: Option<String>,

    /// Who may sign in to the dashboard without being created first: comma-separated emails
    /// and `@domain` entries. A signed-in newcomer becomes a user [default: existing users only].
    #[arg(long, env = "TASKGATE_SIGN_IN_ALLOW", value_name = "LIST")]
    pub sign_in_allow: Option<String>,

    /// Emails made administrators when they sign in to the dashboard, comma-separated (they
    /// may sign in even when the allow-list does not name them) [default: none].
    #[arg(long, env = "TASKGATE_ADMIN_EMAILS", value_name = "LIST")]
    pub admin_emails: Option<String>,

    /// SMTP server that sends dashboard sign-in links: `smtps://user:pass@host[:465]`,
    /// `smtp://user:pass@host[:587]?tls=required` (STARTTLS), or `smtp://host:port` without
    /// TLS (a relay on this host only) [default: none; links come from `taskgate login-link`].
    #[arg(
        long,
        env = "TASKGATE_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    #[serde(skip)]
    pub smtp_url: Option<String>,

    /// Sender of sign-in emails, `Name <address>` or an address; required with --smtp-url.
    #[arg(long, env = "TASKGATE_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,

    /// The header a reverse proxy in front of taskgate puts the client's address in
    /// (`x-forwarded-for`, `x-real-ip`); its last address is taken, the one the proxy added.
    /// Set it only behind such a proxy: a client can send the header too [default: none; the
    /// connection's peer address].
    #[arg(long, env = "TASKGATE_CLIENT_IP_HEADER", value_name = "HEADER")]
    pub client_ip_header: Option<String>,

    /// Master key sealing environment keys at rest (32 bytes, hex or base64) [default:
    /// generated into the data dir on first start].
    #[arg(
        long,
        env = "TASKGATE_ENCRYPTION_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    #[serde(skip)]
    pub encryption_key: Option<String>,

    /// Secret signing user-actor tokens, at least 32 characters [default: generated into the
    /// data dir on first start].
    #[arg(
        long,
        env = "TASKGATE_SESSION_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    #[serde(skip)]
    pub session_secret: Option<String>,

    /// Grace window of a rotated secret key, in seconds (0 to 315360000) [default: 86400].
    #[arg(long, env = "TASKGATE_GRACE_SECONDS", value_name = "SECONDS")]
    pub grace_seconds: Option<i64>,

    /// Longest lifetime a user-actor token may be minted with, in seconds (1 to 315360000)
    /// [default: 31536000].
    #[arg(long, env = "TASKGATE_MAX_UAT_TTL_SECONDS", value_name = "SECONDS")]
    pub max_uat_ttl_seconds: Option<i64>,

    /// Public URL of this server, returned as `apiUrl` and given to workers [default: the URL
    /// each request was made to, from its Host header].
    #[arg(long, env = "TASKGATE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Largest request body of the JSON routes, in bytes (1024 to 1073741824)
    /// [default: 1048576].
    #[arg(long, env = "TASKGATE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Largest trigger payload, in bytes (1024 to 1073741824) [default: 3145728].
    #[arg(long, env = "TASKGATE_MAX_PAYLOAD_BYTES", value_name = "BYTES")]
    pub max_payload_bytes: Option<usize>,

    /// Seconds a cached key, token or environment is trusted without a change notification
    /// (1 to 86400) [default: 300].
    #[arg(long, env = "TASKGATE_CACHE_TTL_SECONDS", value_name = "SECONDS")]
    pub cache_ttl_seconds: Option<u64>,

    /// Seconds a live realtime request waits for a change (1 to 60; Electric clients expect
    /// about 20) [default: 20].
    #[arg(long, env = "TASKGATE_REALTIME_POLL_SECONDS", value_name = "SECONDS")]
    pub realtime_poll_seconds: Option<u64>,

    /// Runs an environment may execute at once (1 to 1000) [default: 10].
    #[arg(long, env = "TASKGATE_CONCURRENCY_LIMIT", value_name = "RUNS")]
    pub concurrency_limit: Option<u32>,

    /// Most runs an environment may have waiting in its queue; triggers beyond it are refused
    /// (422) [default: unlimited].
    #[arg(long, env = "TASKGATE_MAX_QUEUE_SIZE", value_name = "RUNS")]
    pub max_queue_size: Option<u64>,

    /// Seconds a worker's dequeue waits for a run before answering empty (0 to 30) [default: 10].
    #[arg(long, env = "TASKGATE_DEQUEUE_WAIT_SECONDS", value_name = "SECONDS")]
    pub dequeue_wait_seconds: Option<u64>,

    /// Milliseconds a worker waits after a dequeue that found a run before the next one (0 to
    /// 5000) [default: 25].
    #[arg(long, env = "TASKGATE_DEQUEUE_INTERVAL_MS", value_name = "MS")]
    pub dequeue_interval_ms: Option<u64>,

    /// Seconds a client has to send a request's head (request line and headers) once it has
    /// sent its first byte (1 to 300) [default: 10].
    #[arg(
        long,
        env = "TASKGATE_HEADER_READ_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub header_read_timeout_seconds: Option<u64>,

    /// Seconds an open connection may sit with no request before it is closed (1 to 3600)
    /// [default: 60].
    #[arg(
        long,
        env = "TASKGATE_KEEPALIVE_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub keepalive_timeout_seconds: Option<u64>,

    /// Seconds a client has to send a request's whole body (1 to 3600; streams a task writes
    /// to are exempt) [default: 30].
    #[arg(long, env = "TASKGATE_BODY_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub body_timeout_seconds: Option<u64>,

    /// Seconds a request may take from its head to its answer, body included (1 to 3600; long
    /// polls, event streams and the worker channel keep their own limits) [default: 60].
    #[arg(long, env = "TASKGATE_REQUEST_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub request_timeout_seconds: Option<u64>,

    /// Seconds a shutdown waits for requests in flight before it cuts them off (0 to 3600);
    /// a second SIGINT or SIGTERM ends the wait at once [default: 10].
    #[arg(
        long,
        env = "TASKGATE_SHUTDOWN_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub shutdown_timeout_seconds: Option<u64>,

    /// Seconds a PostgreSQL statement may run before the database cancels it and the request
    /// answers 503 (1 to 3600) [default: 10].
    #[arg(
        long,
        env = "TASKGATE_DATABASE_STATEMENT_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub database_statement_timeout_seconds: Option<u64>,

    /// Days an error group's per-minute, per-hour and per-day counts are kept: the oldest
    /// window the errors list can count (1 to 365; all-time counts are kept regardless)
    /// [default: 30].
    #[arg(long, env = "TASKGATE_ERROR_RETENTION_DAYS", value_name = "DAYS")]
    pub error_retention_days: Option<i64>,

    /// Longest lifetime of a JWT taskgate signs (`/api/v1/auth/jwt` and the user-actor
    /// exchange), and of any JWT it accepts, counted from its `iat` (60 to 31536000)
    /// [default: 31536000, 365 days].
    #[arg(long, env = "TASKGATE_MAX_JWT_TTL_SECONDS", value_name = "SECONDS")]
    pub max_jwt_ttl_seconds: Option<i64>,

    /// Rate-limit `/api/*` requests per credential, as upstream does [default: true].
    #[arg(long, env = "TASKGATE_API_RATE_LIMIT", value_name = "BOOL")]
    pub api_rate_limit: Option<bool>,

    /// Tokens the default bucket regains every --api-rate-limit-interval (1 to 1000000)
    /// [default: 250].
    #[arg(long, env = "TASKGATE_API_RATE_LIMIT_REFILL_RATE", value_name = "N")]
    pub api_rate_limit_refill_rate: Option<u32>,

    /// How often the default bucket refills, e.g. `10s`, `1m` (1s to 1h) [default: 10s].
    #[arg(
        long,
        env = "TASKGATE_API_RATE_LIMIT_INTERVAL",
        value_name = "DURATION"
    )]
    pub api_rate_limit_interval: Option<String>,

    /// Most tokens the default bucket holds: the burst (at least the refill rate, at most
    /// 1000000) [default: 750].
    #[arg(long, env = "TASKGATE_API_RATE_LIMIT_MAX", value_name = "N")]
    pub api_rate_limit_max: Option<u32>,

    /// Window of the public-JWT limit (1s to 1h) [default: 1m].
    #[arg(
        long,
        env = "TASKGATE_API_RATE_LIMIT_JWT_WINDOW",
        value_name = "DURATION"
    )]
    pub api_rate_limit_jwt_window: Option<String>,

    /// Requests a public JWT (or the user acting through JWTs) may make per window
    /// (1 to 1000000) [default: 60].
    #[arg(long, env = "TASKGATE_API_RATE_LIMIT_JWT_TOKENS", value_name = "N")]
    pub api_rate_limit_jwt_tokens: Option<u32>,

    /// Redis shared by every node for rate-limit buckets: `redis://[user:pass@]host[:port][/db]`
    /// or `rediss://…`. Without it each node limits on its own; while it is unreachable each
    /// node falls back to its own buckets [default: none].
    #[arg(
        long,
        env = "TASKGATE_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    #[serde(skip)]
    pub redis_url: Option<String>,
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
            sign_in_allow: self.sign_in_allow.or(base.sign_in_allow),
            admin_emails: self.admin_emails.or(base.admin_emails),
            smtp_url: self.smtp_url.or(base.smtp_url),
            smtp_from: self.smtp_from.or(base.smtp_from),
            client_ip_header: self.client_ip_header.or(base.client_ip_header),
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
            header_read_timeout_seconds: self
                .header_read_timeout_seconds
                .or(base.header_read_timeout_seconds),
            keepalive_timeout_seconds: self
                .keepalive_timeout_seconds
                .or(base.keepalive_timeout_seconds),
            body_timeout_seconds: self.body_timeout_seconds.or(base.body_timeout_seconds),
            request_timeout_seconds: self
                .request_timeout_seconds
                .or(base.request_timeout_seconds),
            shutdown_timeout_seconds: self
                .shutdown_timeout_seconds
                .or(base.shutdown_timeout_seconds),
            database_statement_timeout_seconds: self
                .database_statement_timeout_seconds
                .or(base.database_statement_timeout_seconds),
            max_jwt_ttl_seconds: self.max_jwt_ttl_seconds.or(base.max_jwt_ttl_seconds),
            error_retention_days: self.error_retention_days.or(base.error_retention_days),
            api_rate_limit: self.api_rate_limit.or(base.api_rate_limit),
            api_rate_limit_refill_rate: self
                .api_rate_limit_refill_rate
                .or(base.api_rate_limit_refill_rate),
            api_rate_limit_interval: self
                .api_rate_limit_interval
                .or(base.api_rate_limit_interval),
            api_rate_limit_max: self.api_rate_limit_max.or(base.api_rate_limit_max),
            api_rate_limit_jwt_window: self
                .api_rate_limit_jwt_window
                .or(base.api_rate_limit_jwt_window),
            api_rate_limit_jwt_tokens: self
                .api_rate_limit_jwt_tokens
                .or(base.api_rate_limit_jwt_tokens),
            redis_url: self.redis_url.or(base.redis_url),
        }
    }
}

/// The SMTP server and sender of sign-in emails.
#[derive(Clone)]
pub struct Smtp {
    /// May hold a password.
    pub url: SecretString,
    pub from: String,
}

/// A comma-separated list of emails (and, when `domains`, `@domain` entries), lower case.
fn email_list(name: String, list: Option<&str>, domains: bool) -> anyhow::Result<Vec<String>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let at = entry.find('@');
            let shaped = match at {
                Some(0) => domains && entry.len() > 1,
                Some(i) => i + 1 < entry.len() && entry[i + 1..].find('@').is_none(),
                None => false,
            };
            if !shaped || entry.len() > 254 || entry.chars().any(char::is_whitespace) {
                bail!(
                    "{name}: {entry:?} is not an email address{}",
                    if domains { " or an @domain" } else { "" }
                );
            }
            Ok(entry.to_ascii_lowercase())
        })
        .collect()
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
    /// Emails (`ada@example.com`) and domains (`@example.com`) that may sign in to the
    /// dashboard as new users, lower case.
    pub sign_in_allow: Vec<String>,
    /// Emails made administrators when they sign in, lower case.
    pub admin_emails: Vec<String>,
    /// Where sign-in links are emailed from, when they are.
    pub smtp: Option<Smtp>,
    /// The header a trusted proxy names the client's address in.
    pub client_ip_header: Option<axum::http::HeaderName>,
    pub encryption_key: Option<SecretString>,
    pub session_secret: Option<SecretString>,
    pub grace: chrono::Duration,
    pub max_uat_ttl_seconds: i64,
    /// What clients are told to call this server by (`apiUrl`); without it, the URL each
    /// request was made to (its `Host`).
    pub public_url: Option<String>,
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
    /// How long connections, requests and the shutdown may take.
    pub timeouts: Timeouts,
    /// Longest lifetime of a JWT taskgate signs or accepts, in seconds.
    pub max_jwt_ttl_seconds: i64,
    /// How long error count buckets are kept (the errors list's oldest window).
    pub error_retention: chrono::Duration,
    /// The API's rate limits; `None` when turned off.
    pub rate_limits: Option<RateLimits>,
    /// Redis for rate-limit buckets shared by every node. May hold a password.
    pub redis_url: Option<SecretString>,
}

/// The API's default limits: the bucket of a secret key's organization without an override
/// (and of an unknown credential), and the window of a public JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub default: LimitConfig,
    pub jwt: LimitConfig,
}

impl Default for RateLimits {
    /// Upstream's: 250 tokens every 10 s up to 750; 60 JWT requests a minute.
    fn default() -> Self {
        let interval = |s| Interval::parse(s).unwrap_or_else(|| unreachable!("{s} is valid"));
        RateLimits {
            default: LimitConfig::TokenBucket {
                refill_rate: 250,
                interval: interval("10s"),
                max_tokens: 750,
            },
            jwt: LimitConfig::FixedWindow {
                window: interval("1m"),
                tokens: 60,
            },
        }
    }
}

/// How long each stage of serving may take; see the `*_timeout_seconds` options.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a request's first byte to its last header.
    pub header_read: Duration,
    /// A connection with no request in flight and no byte of the next one.
    pub keepalive: Duration,
    /// From a request's head to its body's last byte.
    pub body: Duration,
    /// From a request's head to its answer (routes that stream or long-poll excepted).
    pub request: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown: Duration,
    /// How long a PostgreSQL statement may run.
    pub database_statement: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECONDS),
            keepalive: Duration::from_secs(DEFAULT_KEEPALIVE_TIMEOUT_SECONDS),
            body: Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECONDS),
            request: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS),
            shutdown: Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECONDS),
            database_statement: Duration::from_secs(DEFAULT_STATEMENT_TIMEOUT_SECONDS),
        }
    }
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
            .field("sign_in_allow", &self.sign_in_allow.len())
            .field("admin_emails", &self.admin_emails.len())
            .field("smtp", &self.smtp.as_ref().map(|s| &s.from))
            .field("client_ip_header", &self.client_ip_header)
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
            .field("timeouts", &self.timeouts)
            .field("max_jwt_ttl_seconds", &self.max_jwt_ttl_seconds)
            .field("error_retention", &self.error_retention)
            .field("rate_limits", &self.rate_limits)
            .field(
                "redis_url",
                &self
                    .redis_url
                    .as_ref()
                    .map(|u| redact_url(secrecy::ExposeSecret::expose_secret(u))),
            )
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

/// Where each option was set, so that an error names it as the user wrote it: `--flag`,
/// `TASKGATE_…` or `key (in file.toml)`. Options not listed are named by their key.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    names: std::collections::HashMap<String, String>,
}

impl Sources {
    /// The sources clap saw: flags on the command line and environment variables.
    pub fn from_matches(matches: &clap::ArgMatches) -> Sources {
        use clap::parser::ValueSource;
        let cmd = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
        let mut names = std::collections::HashMap::new();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let name = match matches.value_source(arg.get_id().as_str()) {
                Some(ValueSource::CommandLine) => format!("--{long}"),
                Some(ValueSource::EnvVariable) => match arg.get_env() {
                    Some(env) => env.to_string_lossy().into_owned(),
                    None => continue,
                },
                _ => continue,
            };
            names.insert(long.to_string(), name);
        }
        Sources { names }
    }

    /// How the user wrote `option` (its kebab-case key).
    pub fn name(&self, option: &str) -> String {
        self.names
            .get(option)
            .cloned()
            .unwrap_or_else(|| option.to_string())
    }
}

impl Config {
    /// Layers the TOML file (if any) under `args` and validates the result, naming the option
    /// that is wrong as the user wrote it.
    pub fn load(args: ServeArgs, sources: &Sources) -> anyhow::Result<Config> {
        let mut sources = sources.clone();
        let merged = match &args.config {
            Some(path) => {
                let (file, keys) = read_file(path)?;
                for key in keys {
                    sources
                        .names
                        .entry(key.clone())
                        .or_insert_with(|| format!("{key} (in {})", path.display()));
                }
                args.clone().or(file)
            }
            None => args,
        };
        Self::validate(merged, &sources)
    }

    fn validate(a: ServeArgs, sources: &Sources) -> anyhow::Result<Config> {
        let n = |option: &str| sources.name(option);
        let rate_limits = Self::rate_limits(&a, &n)?;
        let listen_raw = a.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = resolve_listen(&listen_raw).with_context(|| n("listen"))?;
        if let Some(url) = &a.database_url {
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
        if a.database_replica_url.is_some()
            && !a
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
        {
            bail!(
                "{}: a read replica needs a PostgreSQL database-url",
                n("database-replica-url")
            );
        }
        let grace_seconds = a.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        in_range(
            n("grace-seconds"),
            grace_seconds,
            0,
            10 * 365 * 24 * 60 * 60,
        )?;
        let max_uat = a
            .max_uat_ttl_seconds
            .unwrap_or(taskgate_core::uat::DEFAULT_MAX_UAT_TTL_SECONDS);
        in_range(
            n("max-uat-ttl-seconds"),
            max_uat,
            1,
            10 * 365 * 24 * 60 * 60,
        )?;
        let error_retention_days = a
            .error_retention_days
            .unwrap_or(DEFAULT_ERROR_RETENTION_DAYS);
        in_range(n("error-retention-days"), error_retention_days, 1, 365)?;
        let max_jwt = a.max_jwt_ttl_seconds.unwrap_or(DEFAULT_MAX_JWT_TTL_SECONDS);
        in_range(
            n("max-jwt-ttl-seconds"),
            max_jwt,
            60,
            DEFAULT_MAX_JWT_TTL_SECONDS,
        )?;
        let redis_url = match a.redis_url {
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Some(SecretString::from(url))
            }
            Some(url) => bail!(
                "{}: expected redis://… or rediss://…, got {}",
                n("redis-url"),
                redact_url(&url)
            ),
            None => None,
        };
        let admin_email = a
            .admin_email
            .unwrap_or_else(|| "admin@taskgate.local".to_string());
        if !admin_email.contains('@') {
            bail!(
                "{}: {admin_email:?} is not an email address",
                n("admin-email")
            );
        }
        let client_ip_header = match a.client_ip_header.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => Some(
                axum::http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(
                    |_| anyhow::anyhow!("{}: {name:?} is not a header name", n("client-ip-header")),
                )?,
            ),
        };
        let sign_in_allow = email_list(n("sign-in-allow"), a.sign_in_allow.as_deref(), true)?;
        let admin_emails = email_list(n("admin-emails"), a.admin_emails.as_deref(), false)?;
        let smtp = match (a.smtp_url, a.smtp_from) {
            (None, None) => None,
            (None, Some(_)) => bail!("{}: needs --smtp-url as well", n("smtp-from")),
            (Some(_), None) => bail!(
                "{}: needs --smtp-from, the sender of sign-in emails",
                n("smtp-url")
            ),
            (Some(url), Some(from)) => {
                if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                    bail!("{}: must start with smtp:// or smtps://", n("smtp-url"));
                }
                if !from.contains('@') || from.len() > 320 || from.chars().any(char::is_control) {
                    bail!("{}: {from:?} is not a sender address", n("smtp-from"));
                }
                Some(Smtp {
                    url: SecretString::from(url),
                    from,
                })
            }
        };
        let concurrency_limit = a.concurrency_limit.unwrap_or(DEFAULT_CONCURRENCY_LIMIT);
        in_range(n("concurrency-limit"), concurrency_limit, 1, 1000)?;
        if a.max_queue_size == Some(0) {
            bail!(
                "{}: must be at least 1 (leave it unset for no limit)",
                n("max-queue-size")
            );
        }
        let dequeue_wait_seconds = a
            .dequeue_wait_seconds
            .unwrap_or(DEFAULT_DEQUEUE_WAIT_SECONDS);
        in_range(n("dequeue-wait-seconds"), dequeue_wait_seconds, 0, 30)?;
        let dequeue_interval_ms = a.dequeue_interval_ms.unwrap_or(DEFAULT_DEQUEUE_INTERVAL_MS);
        in_range(n("dequeue-interval-ms"), dequeue_interval_ms, 0, 5000)?;
        let realtime_poll_seconds = a.realtime_poll_seconds.unwrap_or(20);
        in_range(n("realtime-poll-seconds"), realtime_poll_seconds, 1, 60)?;
        let cache_ttl_seconds = a.cache_ttl_seconds.unwrap_or(300);
        in_range(n("cache-ttl-seconds"), cache_ttl_seconds, 1, 24 * 60 * 60)?;
        let max_body_bytes = a.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        in_range(n("max-body-bytes"), max_body_bytes, 1024, 1 << 30)?;
        let max_payload_bytes = a.max_payload_bytes.unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES);
        in_range(n("max-payload-bytes"), max_payload_bytes, 1024, 1 << 30)?;
        let seconds = |option: &str, value: Option<u64>, default: u64, min: u64, max: u64| {
            let v = value.unwrap_or(default);
            in_range(n(option), v, min, max).map(|()| Duration::from_secs(v))
        };
        let timeouts = Timeouts {
            header_read: seconds(
                "header-read-timeout-seconds",
                a.header_read_timeout_seconds,
                DEFAULT_HEADER_READ_TIMEOUT_SECONDS,
                1,
                300,
            )?,
            keepalive: seconds(
                "keepalive-timeout-seconds",
                a.keepalive_timeout_seconds,
                DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
                1,
                3600,
            )?,
            body: seconds(
                "body-timeout-seconds",
                a.body_timeout_seconds,
                DEFAULT_BODY_TIMEOUT_SECONDS,
                1,
                3600,
            )?,
            request: seconds(
                "request-timeout-seconds",
                a.request_timeout_seconds,
                DEFAULT_REQUEST_TIMEOUT_SECONDS,
                1,
                3600,
            )?,
            shutdown: seconds(
                "shutdown-timeout-seconds",
                a.shutdown_timeout_seconds,
                DEFAULT_SHUTDOWN_TIMEOUT_SECONDS,
                0,
                3600,
            )?,
            database_statement: seconds(
                "database-statement-timeout-seconds",
                a.database_statement_timeout_seconds,
                DEFAULT_STATEMENT_TIMEOUT_SECONDS,
                1,
                3600,
            )?,
        };
        let public_url = match a.public_url {
            Some(url) => {
                let trimmed = url.trim_end_matches('/').to_string();
                if !(trimmed.starts_with("http://") || trimmed.starts_with("https://"))
                    || trimmed.len() < "http://x".len()
                {
                    bail!(
                        "{}: expected an http:// or https:// URL, got {url:?}",
                        n("public-url")
                    );
                }
                Some(trimmed)
            }
            None => None,
        };
        Ok(Config {
            listen,
            data_dir: a
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database_url: a.database_url,
            database_replica_url: a.database_replica_url,
            migrate_on_start: a.migrate_on_start.unwrap_or(true),
            admin_email,
            sign_in_allow,
            admin_emails,
            smtp,
            client_ip_header,
            encryption_key: a.encryption_key.map(SecretString::from),
            session_secret: a.session_secret.map(SecretString::from),
            grace: chrono::Duration::seconds(grace_seconds),
            max_uat_ttl_seconds: max_uat,
            public_url,
            max_body_bytes,
            max_payload_bytes,
            cache_ttl: Duration::from_secs(cache_ttl_seconds),
            realtime_poll: Duration::from_secs(realtime_poll_seconds),
            concurrency_limit,
            max_queue_size: a.max_queue_size,
            dequeue_wait: Duration::from_secs(dequeue_wait_seconds),
            dequeue_interval: Duration::from_millis(dequeue_interval_ms),
            timeouts,
            max_jwt_ttl_seconds: max_jwt,
            error_retention: chrono::Duration::days(error_retention_days),
            rate_limits,
            redis_url,
        })
    }

    fn rate_limits(
        a: &ServeArgs,
        n: &impl Fn(&str) -> String,
    ) -> anyhow::Result<Option<RateLimits>> {
        if a.api_rate_limit == Some(false) {
            return Ok(None);
        }
        let duration = |option: &str, value: &Option<String>, default: &str| match value {
            None => Ok(Interval::parse(default).unwrap_or_else(|| unreachable!())),
            Some(v) => Interval::parse(v).with_context(|| {
                format!("{}: {v:?} is not a duration such as 10s or 1m", n(option))
            }),
        };
        let default = LimitConfig::TokenBucket {
            refill_rate: a.api_rate_limit_refill_rate.unwrap_or(250),
            interval: duration("api-rate-limit-interval", &a.api_rate_limit_interval, "10s")?,
            max_tokens: a.api_rate_limit_max.unwrap_or(750),
        };
        if let Err(e) = default.validate_default() {
            let option = match e.field {
                "refillRate" => "api-rate-limit-refill-rate",
                "interval" => "api-rate-limit-interval",
                _ => "api-rate-limit-max",
            };
            bail!("{}: {}", n(option), e.message);
        }
        let jwt = LimitConfig::FixedWindow {
            window: duration(
                "api-rate-limit-jwt-window",
                &a.api_rate_limit_jwt_window,
                "1m",
            )?,
            tokens: a.api_rate_limit_jwt_tokens.unwrap_or(60),
        };
        if let Err(e) = jwt.validate_default() {
            let option = match e.field {
                "window" => "api-rate-limit-jwt-window",
                _ => "api-rate-limit-jwt-tokens",
            };
            bail!("{}: {}", n(option), e.message);
        }
        Ok(Some(RateLimits { default, jwt }))
    }

    /// Whether `email` may sign in to the dashboard as a new user: named by the allow-list
    /// (itself or its domain) or by the admin emails.
    pub fn may_sign_up(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        let domain = email.rfind('@').map(|i| &email[i..]);
        self.admin_emails.contains(&email)
            || self
                .sign_in_allow
                .iter()
                .any(|entry| *entry == email || Some(entry.as_str()) == domain)
    }

    /// Whether `email` is one of the admin emails.
    pub fn is_admin_email(&self, email: &str) -> bool {
        self.admin_emails.contains(&email.to_ascii_lowercase())
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
            sign_in_allow: Vec::new(),
            admin_emails: Vec::new(),
            smtp: None,
            client_ip_header: None,
            encryption_key: None,
            session_secret: None,
            grace: chrono::Duration::seconds(DEFAULT_GRACE_SECONDS),
            max_uat_ttl_seconds: taskgate_core::uat::DEFAULT_MAX_UAT_TTL_SECONDS,
            public_url: Some("http://127.0.0.1:3030".into()),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            cache_ttl: std::time::Duration::from_secs(300),
            realtime_poll: std::time::Duration::from_secs(20),
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            max_queue_size: None,
            dequeue_wait: std::time::Duration::from_secs(DEFAULT_DEQUEUE_WAIT_SECONDS),
            dequeue_interval: std::time::Duration::from_millis(DEFAULT_DEQUEUE_INTERVAL_MS),
            timeouts: Timeouts::default(),
            max_jwt_ttl_seconds: DEFAULT_MAX_JWT_TTL_SECONDS,
            error_retention: chrono::Duration::days(DEFAULT_ERROR_RETENTION_DAYS),
            rate_limits: Some(RateLimits::default()),
            redis_url: None,
        }
    }
}

/// The file's options, and the keys it set.
fn read_file(path: &Path) -> anyhow::Result<(ServeArgs, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("config: cannot read {}", path.display()))?;
    let invalid = || {
        format!(
            "config: {} is not a valid taskgate config file",
            path.display()
        )
    };
    let table: toml::Table = toml::from_str(&text).with_context(invalid)?;
    let keys = table.keys().cloned().collect();
    let args = ServeArgs::deserialize(table).with_context(invalid)?;
    Ok((args, keys))
}

/// An error naming `option` unless `min <= value <= max`.
fn in_range<T: PartialOrd + std::fmt::Display>(
    option: String,
    value: T,
    min: T,
    max: T,
) -> anyhow::Result<()> {
    if value < min || value > max {
        bail!("{option}: must be from {min} to {max}, got {value}");
    }
    Ok(())
}

/// The address to bind: an IP address and port, or a host name (`localhost:3030`) resolved to
/// its first address.
fn resolve_listen(raw: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    let hint = || format!("{raw:?} is not an address like 127.0.0.1:3030 or localhost:3030");
    let (host, port) = raw.rsplit_once(':').with_context(hint)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        bail!("{}", hint());
    }
    let mut addrs = raw.to_socket_addrs().with_context(hint)?;
    // Prefer IPv4, which every client of `localhost` can reach.
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or_else(|| all.first())
        .copied()
        .with_context(hint)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn load(args: ServeArgs) -> anyhow::Result<Config> {
        Config::load(args, &Sources::default())
    }

    /// Parses `argv` as the binary does, with `env` set for the parse only.
    fn load_cli(argv: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let _guard = ENV_LOCK.lock();
        for (k, v) in env {
            std::env::set_var(k, v);
        }
        let matches = Cli::command().try_get_matches_from(argv);
        for (k, _) in env {
            std::env::remove_var(k);
        }
        let matches = matches?;
        let cli = Cli::from_arg_matches(&matches)?;
        Config::load(cli.serve, &Sources::from_matches(&matches))
    }

    static ENV_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    #[test]
    fn flags_override_file_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taskgate.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:4000\"\ngrace-seconds = 60\n").unwrap();
        let cfg = load(ServeArgs {
            config: Some(path),
            grace_seconds: Some(120),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.listen.port(), 4000);
        assert_eq!(cfg.grace.num_seconds(), 120);
    }

    #[test]
    fn bad_values_name_their_option() {
        let err = load(ServeArgs {
            listen: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").starts_with("listen:"), "{err:#}");
        let err = load(ServeArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("database-url:"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "no-such-option = 1\n").unwrap();
        assert!(load(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn out_of_range_values_are_refused_not_clamped() {
        for poll in [0, 61, 999] {
            let err = load(ServeArgs {
                realtime_poll_seconds: Some(poll),
                ..Default::default()
            })
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("realtime-poll-seconds: must be from 1 to 60, got {poll}")
            );
        }
        let err = load(ServeArgs {
            request_timeout_seconds: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().starts_with("request-timeout-seconds:"),
            "{err}"
        );
        let err = load(ServeArgs {
            max_jwt_ttl_seconds: Some(i64::MAX),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("max-jwt-ttl-seconds:"), "{err}");
    }

    #[test]
    fn errors_name_the_option_as_the_user_wrote_it() {
        let err = load_cli(&["serve", "--realtime-poll-seconds", "0"], &[]).unwrap_err();
        assert!(
            err.to_string().starts_with("--realtime-poll-seconds:"),
            "{err}"
        );
        let err = load_cli(&["serve"], &[("TASKGATE_CONCURRENCY_LIMIT", "5000")]).unwrap_err();
        assert!(
            err.to_string().starts_with("TASKGATE_CONCURRENCY_LIMIT:"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taskgate.toml");
        std::fs::write(&path, "dequeue-wait-seconds = 99\n").unwrap();
        let err = load_cli(&["serve", "--config", path.to_str().unwrap()], &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("dequeue-wait-seconds (in {}):", path.display())),
            "{err}"
        );
    }

    #[test]
    fn host_names_are_resolved_for_listen() {
        let cfg = load(ServeArgs {
            listen: Some("localhost:3141".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.listen.port(), 3141);
        assert!(cfg.listen.ip().is_loopback());
        for bad in ["localhost", ":3000", "localhost:99999"] {
            assert!(
                load(ServeArgs {
                    listen: Some(bad.into()),
                    ..Default::default()
                })
                .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn public_url_must_be_http() {
        let err = load(ServeArgs {
            public_url: Some("ftp://x".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("public-url:"), "{err}");
        let cfg = load(ServeArgs::default()).unwrap();
        assert_eq!(cfg.public_url, None, "the request's Host is used");
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        let cfg = load(ServeArgs {
            database_url: Some("postgres://app:hunter2@db/x".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
