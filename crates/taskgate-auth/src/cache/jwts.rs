//! Public JWTs already verified: a request with a token seen before skips the signature check
//! and the claims' parsing. Entries are keyed by the token's exact bytes (two different
//! strings never share one), are never served past the token's expiry or the grace window of
//! the key that signed it, and are all dropped by any change to keys, projects, organizations
//! or personal access tokens, so a revocation takes effect at once, as without the cache.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{AuthCache, GraceUse, SigningEnv};
use crate::JwtGrant;

/// Verified tokens kept at most; past this, expired ones go, then all.
pub const JWT_CAPACITY: usize = 10_000;

/// A verified public JWT: what it grants, in which environment, until when.
#[derive(Debug)]
pub struct VerifiedJwt {
    pub env: Arc<SigningEnv>,
    pub grant: JwtGrant,
    /// The token's expiry, or its signing key's grace end if sooner.
    pub valid_until: DateTime<Utc>,
    /// The grace-window key that signed it, whose use is recorded on every request.
    pub grace_usage: Option<Arc<GraceUse>>,
    /// Its rate-limit bucket: `jwt-actor:<envId>:<act.sub>`, else the token's SHA-256.
    pub rate_limit_key: String,
    /// That bucket on this node, once the rate limiter has counted the token in it.
    pub bucket: std::sync::OnceLock<Arc<crate::ratelimit::local::Slot>>,
}

impl AuthCache {
    /// A verified token still valid at `now_ms` (milliseconds since the Unix epoch).
    pub fn verified_jwt(&self, token: &[u8], now_ms: i64) -> Option<Arc<VerifiedJwt>> {
        self.jwts
            .read()
            .get(token)
            .filter(|t| t.value.valid_until.timestamp_millis() > now_ms && self.fresh(t))
            .map(|t| t.value.clone())
    }

    pub fn insert_verified_jwt(
        &self,
        generation: u64,
        token: &str,
        verified: Arc<VerifiedJwt>,
        now: DateTime<Utc>,
    ) {
        {
            let mut map = self.jwts.write();
            if map.len() >= JWT_CAPACITY {
                map.retain(|_, t| t.value.valid_until > now);
                if map.len() >= JWT_CAPACITY {
                    map.clear();
                }
            }
        }
        self.put(&self.jwts, generation, token.as_bytes().into(), verified);
    }

    /// Verified tokens held, for tests and metrics.
    pub fn verified_jwts(&self) -> usize {
        self.jwts.read().len()
    }
}
