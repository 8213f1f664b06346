//! Keys and tokens: the grace window of a rotated key, token lifetimes, and how long a cached
//! credential is trusted.

use std::time::Duration;

use crate::{in_range, Names};

/// Default grace window of a rotated key: clients roll their environment variables in a day.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 60 * 60;
/// Longest JWT lifetime unless configured: a year, as for user-actor tokens.
pub const DEFAULT_MAX_JWT_TTL_SECONDS: i64 = 365 * 24 * 60 * 60;
/// How long a cached credential is trusted without a change notification unless configured.
pub const DEFAULT_CACHE_TTL_SECONDS: u64 = 300;

options! {
    /// Rotation, token lifetimes and the credential cache.
    pub struct TokenArgs {
        /// Grace window of a rotated secret key, in seconds (0 to 315360000) [default: 86400].
        #[arg(long, env = "TASKGATE_GRACE_SECONDS", value_name = "SECONDS")]
        pub grace_seconds: Option<i64>,

        /// Longest lifetime a user-actor token may be minted with, in seconds (1 to
        /// 315360000) [default: 31536000].
        #[arg(long, env = "TASKGATE_MAX_UAT_TTL_SECONDS", value_name = "SECONDS")]
        pub max_uat_ttl_seconds: Option<i64>,

        /// Longest lifetime of a JWT taskgate signs (`/api/v1/auth/jwt` and the user-actor
        /// exchange), and of any JWT it accepts, counted from its `iat` (60 to 31536000)
        /// [default: 31536000, 365 days].
        #[arg(long, env = "TASKGATE_MAX_JWT_TTL_SECONDS", value_name = "SECONDS")]
        pub max_jwt_ttl_seconds: Option<i64>,

        /// Seconds a cached key, token or environment is trusted without a change
        /// notification (1 to 86400) [default: 300].
        #[arg(long, env = "TASKGATE_CACHE_TTL_SECONDS", value_name = "SECONDS")]
        pub cache_ttl_seconds: Option<u64>,
    }
}

/// The keys-and-tokens section, validated.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub grace: chrono::Duration,
    pub max_uat_ttl_seconds: i64,
    /// Longest lifetime of a JWT taskgate signs or accepts, in seconds.
    pub max_jwt_ttl_seconds: i64,
    pub cache_ttl: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            grace: chrono::Duration::seconds(DEFAULT_GRACE_SECONDS),
            max_uat_ttl_seconds: taskgate_core::uat::DEFAULT_MAX_UAT_TTL_SECONDS,
            max_jwt_ttl_seconds: DEFAULT_MAX_JWT_TTL_SECONDS,
            cache_ttl: Duration::from_secs(DEFAULT_CACHE_TTL_SECONDS),
        }
    }
}

impl TokenArgs {
    pub(crate) fn validate(self, n: &impl Names) -> anyhow::Result<TokenConfig> {
        let grace_seconds = self.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        in_range(
            n("grace-seconds"),
            grace_seconds,
            0,
            10 * 365 * 24 * 60 * 60,
        )?;
        let max_uat = self
            .max_uat_ttl_seconds
            .unwrap_or(taskgate_core::uat::DEFAULT_MAX_UAT_TTL_SECONDS);
        in_range(
            n("max-uat-ttl-seconds"),
            max_uat,
            1,
            10 * 365 * 24 * 60 * 60,
        )?;
        let max_jwt = self
            .max_jwt_ttl_seconds
            .unwrap_or(DEFAULT_MAX_JWT_TTL_SECONDS);
        in_range(
            n("max-jwt-ttl-seconds"),
            max_jwt,
            60,
            DEFAULT_MAX_JWT_TTL_SECONDS,
        )?;
        let cache_ttl_seconds = self.cache_ttl_seconds.unwrap_or(DEFAULT_CACHE_TTL_SECONDS);
        in_range(n("cache-ttl-seconds"), cache_ttl_seconds, 1, 24 * 60 * 60)?;
        Ok(TokenConfig {
            grace: chrono::Duration::seconds(grace_seconds),
            max_uat_ttl_seconds: max_uat,
            max_jwt_ttl_seconds: max_jwt,
            cache_ttl: Duration::from_secs(cache_ttl_seconds),
        })
    }
}
