//! The API's rate limits, and the Redis that lets every node share their buckets.

use anyhow::{bail, Context};
use secrecy::SecretString;
use taskgate_core::ratelimit::{Interval, LimitConfig};

use crate::database::redact_url;
use crate::Names;

options! {
    /// Upstream's limits per credential, and where their buckets live.
    pub struct RateLimitArgs {
        /// Rate-limit `/api/*` requests per credential, as upstream does [default: true].
        #[arg(long, env = "TASKGATE_API_RATE_LIMIT", value_name = "BOOL")]
        pub api_rate_limit: Option<bool>,

        /// Tokens the default bucket regains every --api-rate-limit-interval (1 to 1000000)
        /// [default: 250].
        #[arg(long, env = "TASKGATE_API_RATE_LIMIT_REFILL_RATE", value_name = "N")]
        pub api_rate_limit_refill_rate: Option<u32>,

        /// How often the default bucket refills, e.g. `10s`, `1m` (1s to 1h) [default: 10s].
        #[arg(long, env = "TASKGATE_API_RATE_LIMIT_INTERVAL", value_name = "DURATION")]
        pub api_rate_limit_interval: Option<String>,

        /// Most tokens the default bucket holds: the burst (at least the refill rate, at most
        /// 1000000) [default: 750].
        #[arg(long, env = "TASKGATE_API_RATE_LIMIT_MAX", value_name = "N")]
        pub api_rate_limit_max: Option<u32>,

        /// Window of the public-JWT limit (1s to 1h) [default: 1m].
        #[arg(long, env = "TASKGATE_API_RATE_LIMIT_JWT_WINDOW", value_name = "DURATION")]
        pub api_rate_limit_jwt_window: Option<String>,

        /// Requests a public JWT (or the user acting through JWTs) may make per window
        /// (1 to 1000000) [default: 60].
        #[arg(long, env = "TASKGATE_API_RATE_LIMIT_JWT_TOKENS", value_name = "N")]
        pub api_rate_limit_jwt_tokens: Option<u32>,

        /// Redis shared by every node for rate-limit buckets:
        /// `redis://[user:pass@]host[:port][/db]` or `rediss://…`. Without it each node limits
        /// on its own; while it is unreachable each node falls back to its own buckets
        /// [default: none].
        #[arg(long, env = "TASKGATE_REDIS_URL", value_name = "URL", hide_env_values = true)]
        #[serde(skip)]
        pub redis_url: Option<String>,
    }
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

/// The rate-limit section, validated.
#[derive(Clone)]
pub struct RateLimitConfig {
    /// The API's rate limits; `None` when turned off.
    pub limits: Option<RateLimits>,
    /// Redis for rate-limit buckets shared by every node. May hold a password.
    pub redis_url: Option<SecretString>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            limits: Some(RateLimits::default()),
            redis_url: None,
        }
    }
}

impl std::fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitConfig")
            .field("limits", &self.limits)
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

impl RateLimitArgs {
    pub(crate) fn validate(self, n: &impl Names) -> anyhow::Result<RateLimitConfig> {
        let redis_url = match self.redis_url {
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
        if self.api_rate_limit == Some(false) {
            return Ok(RateLimitConfig {
                limits: None,
                redis_url,
            });
        }
        let duration = |option: &str, value: &Option<String>, default: &str| match value {
            None => Ok(Interval::parse(default).unwrap_or_else(|| unreachable!())),
            Some(v) => Interval::parse(v).with_context(|| {
                format!("{}: {v:?} is not a duration such as 10s or 1m", n(option))
            }),
        };
        let default = LimitConfig::TokenBucket {
            refill_rate: self.api_rate_limit_refill_rate.unwrap_or(250),
            interval: duration(
                "api-rate-limit-interval",
                &self.api_rate_limit_interval,
                "10s",
            )?,
            max_tokens: self.api_rate_limit_max.unwrap_or(750),
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
                &self.api_rate_limit_jwt_window,
                "1m",
            )?,
            tokens: self.api_rate_limit_jwt_tokens.unwrap_or(60),
        };
        if let Err(e) = jwt.validate_default() {
            let option = match e.field {
                "window" => "api-rate-limit-jwt-window",
                _ => "api-rate-limit-jwt-tokens",
            };
            bail!("{}: {}", n(option), e.message);
        }
        Ok(RateLimitConfig {
            limits: Some(RateLimits { default, jwt }),
            redis_url,
        })
    }
}
