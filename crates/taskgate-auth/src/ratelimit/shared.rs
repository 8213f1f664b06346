//! Buckets shared by every node through Redis: one script call per request, which applies the
//! same arithmetic as [`taskgate_core::ratelimit`] atomically in Redis, so N nodes together
//! admit what one would.
//!
//! Redis is an optimisation of accuracy, never a dependency of serving: while it cannot be
//! reached (or answers slowly) each node limits with its own buckets, logs a warning at most
//! once a minute, and reconnects in the background.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use redis::aio::MultiplexedConnection;
use secrecy::{ExposeSecret, SecretString};
use taskgate_core::ratelimit::{window_of, Decision, LimitConfig};

/// How long a request waits for Redis before its node decides alone.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Between connection attempts while Redis is unreachable.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// At most one warning per this while Redis is unreachable.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Every key this server writes starts with this.
const KEY_PREFIX: &str = "taskgate:ratelimit:";

/// ARGV: kind (`tb`/`fw`), then for a token bucket refill rate, interval ms, maximum; for a
/// fixed window tokens, window ms, 0; then now (ms). Returns {allowed, remaining, reset}.
const SCRIPT: &str = r#"
local key = KEYS[1]
local now = tonumber(ARGV[5])
if ARGV[1] == "tb" then
  local refill = tonumber(ARGV[2])
  local interval = tonumber(ARGV[3])
  local max = tonumber(ARGV[4])
  local bucket = redis.call("HMGET", key, "refilledAt", "tokens")
  local refilledAt = now
  local tokens = max
  if bucket[1] then
    refilledAt = tonumber(bucket[1])
    tokens = tonumber(bucket[2])
  end
  if now >= refilledAt + interval then
    local refills = math.floor((now - refilledAt) / interval)
    tokens = math.min(max, tokens + refills * refill)
    refilledAt = refilledAt + refills * interval
  end
  tokens = math.min(tokens, max)
  if tokens <= 0 then
    return {0, -1, refilledAt + interval}
  end
  local remaining = tokens - 1
  redis.call("HSET", key, "refilledAt", refilledAt, "tokens", remaining)
  redis.call("PEXPIRE", key, (math.ceil((max - remaining) / refill) + 1) * interval)
  return {1, remaining, refilledAt + interval}
else
  local tokens = tonumber(ARGV[2])
  local window = tonumber(ARGV[3])
  local used = redis.call("INCR", key)
  if used == 1 then
    redis.call("PEXPIRE", key, window)
  end
  local allowed = 0
  if used <= tokens then
    allowed = 1
  end
  return {allowed, math.max(0, tokens - used), 0}
end
"#;

/// The Redis side of the limiter.
pub struct SharedBuckets {
    client: redis::Client,
    script: redis::Script,
    conn: RwLock<Option<MultiplexedConnection>>,
    connecting: AtomicBool,
    last_warning: Mutex<Option<Instant>>,
}

impl SharedBuckets {
    /// A client for `url`; connects in the background.
    /// The error names the option and the kind of problem, never the URL (it may hold a
    /// password).
    pub fn new(url: &SecretString) -> Result<Arc<SharedBuckets>, String> {
        let client = redis::Client::open(url.expose_secret())
            .map_err(|e| format!("redis-url: {}", e.category()))?;
        let shared = Arc::new(SharedBuckets {
            client,
            script: redis::Script::new(SCRIPT),
            conn: RwLock::new(None),
            connecting: AtomicBool::new(false),
            last_warning: Mutex::new(None),
        });
        shared.reconnect();
        Ok(shared)
    }

    /// Whether a connection is up (for the readiness report and tests).
    pub fn connected(&self) -> bool {
        self.conn.read().is_some()
    }

    /// Counts one request in Redis; `None` when Redis cannot answer now (decide locally).
    pub async fn take(
        self: &Arc<Self>,
        key: &str,
        config: &LimitConfig,
        now_ms: i64,
    ) -> Option<Decision> {
        let mut conn = self.conn.read().clone()?;
        let mut call = self.script.prepare_invoke();
        match config {
            LimitConfig::TokenBucket {
                refill_rate,
                interval,
                max_tokens,
            } => {
                call.key(format!("{KEY_PREFIX}{key}"))
                    .arg("tb")
                    .arg(*refill_rate)
                    .arg(interval.millis())
                    .arg(*max_tokens);
            }
            LimitConfig::FixedWindow { window, tokens } => {
                let (number, _) = window_of(window.millis(), now_ms);
                call.key(format!("{KEY_PREFIX}w:{key}:{number}"))
                    .arg("fw")
                    .arg(*tokens)
                    .arg(window.millis())
                    .arg(0);
            }
        }
        call.arg(now_ms);
        let answer = tokio::time::timeout(
            CALL_TIMEOUT,
            call.invoke_async::<(i64, i64, i64)>(&mut conn),
        )
        .await;
        match answer {
            Ok(Ok((allowed, remaining, reset_ms))) => {
                let reset_ms = match config {
                    LimitConfig::FixedWindow { window, .. } => window_of(window.millis(), now_ms).1,
                    LimitConfig::TokenBucket { .. } => reset_ms,
                };
                Some(Decision {
                    allowed: allowed == 1,
                    limit: config.limit(),
                    remaining,
                    reset_ms,
                })
            }
            Ok(Err(e)) => {
                self.failed(&format!("redis answered an error ({})", e.category()));
                None
            }
            Err(_) => {
                self.failed("redis did not answer in time");
                None
            }
        }
    }

    /// Drops the connection and reconnects in the background.
    fn failed(self: &Arc<Self>, why: &str) {
        metrics::counter!("taskgate_rate_limit_redis_failures_total").increment(1);
        self.warn(why);
        *self.conn.write() = None;
        self.reconnect();
    }

    fn warn(&self, why: &str) {
        let mut last = self.last_warning.lock();
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                reason = why,
                "rate limits: Redis is unavailable; each node limits with its own buckets until it is back"
            );
        }
    }

    fn reconnect(self: &Arc<Self>) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let attempt = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    this.client.get_multiplexed_async_connection(),
                )
                .await;
                match attempt {
                    Ok(Ok(conn)) => {
                        *this.conn.write() = Some(conn);
                        tracing::info!("rate limits: buckets are shared through Redis");
                        break;
                    }
                    Ok(Err(e)) => this.warn(&format!("cannot connect ({})", e.category())),
                    Err(_) => this.warn("connecting timed out"),
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
            this.connecting.store(false, Ordering::Release);
        });
    }
}
