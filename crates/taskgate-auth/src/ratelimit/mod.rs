//! The API rate limiter's buckets and how a request's bucket is chosen, as upstream's
//! limiter does (the layer that applies it to requests is the server's):
//!
//! - a secret key (current or in its grace window): its environment's bucket (the root's for
//!   a branch), under its organization's limit or the default;
//! - a public JWT acting for a user (`act.sub`): `jwt-actor:<envId>:<sub>`, so an agent whose
//!   token changes every turn still has one bucket; a JWT without `act`: its own bucket;
//!   both under the JWT window;
//! - anything else (an unknown key, a personal access token): a bucket of its own, keyed by
//!   the SHA-256 of the header, under the default limit.
//!
//! A cached credential keeps its bucket (its cache entry holds it), so counting a request of
//! a known credential is one compare-and-swap on this node's buckets.

pub mod local;
pub mod shared;

use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use taskgate_config::RateLimits;
use taskgate_core::bearer::{self, TokenKind, MAX_BEARER_LEN};
use taskgate_core::hash::{digest_hex, sha256};
use taskgate_core::ratelimit::{Decision, LimitConfig};
use taskgate_store::{StoreError, StoreResult};

use self::local::{LocalBuckets, Slot};
use self::shared::SharedBuckets;
use crate::cache::VerifiedJwt;
use crate::env_key::{cached_key, resolve_key, ResolvedKey};
use crate::jwt::{verified_public_jwt, ResolvedJwt};
use crate::Auth;

/// A limit, with its `x-ratelimit-limit` header made once (every limited answer carries it).
#[derive(Debug)]
pub struct Limit {
    pub config: LimitConfig,
    /// `x-ratelimit-limit`, made once.
    pub header: HeaderValue,
}

impl Limit {
    pub fn new(config: LimitConfig) -> Self {
        Limit {
            header: HeaderValue::from(config.limit()),
            config,
        }
    }
}

/// A secret key's environment's bucket, as the key's cache entry keeps it: the organization's
/// limit (or the default) and, once a request is counted in it, this node's bucket, held so
/// that counting the next skips the map of buckets.
#[derive(Debug)]
pub struct EnvBucket {
    limit: Arc<Limit>,
    slot: OnceLock<Arc<Slot>>,
}

/// The limiter of one node: its own buckets, and Redis's when configured.
pub struct RateLimiter {
    /// The default limit and the JWT window, shared with every bucket that uses them.
    default: Arc<Limit>,
    jwt: Arc<Limit>,
    local: LocalBuckets,
    shared: Option<Arc<SharedBuckets>>,
}

/// The bucket a request counts against.
pub struct Bucket {
    key: BucketKey,
    limit: Arc<Limit>,
}

/// A bucket's identifier. A secret key's is its environment's id and a JWT's is kept with
/// its verification, both borrowed from the lookup the route then reuses.
enum BucketKey {
    Environment(ResolvedKey),
    Jwt(ResolvedJwt),
    Other(String),
}

impl BucketKey {
    fn as_str(&self) -> &str {
        match self {
            BucketKey::Environment(r) => &r.entry.root.auth.environment.id,
            BucketKey::Jwt(r) => &r.verified.rate_limit_key,
            BucketKey::Other(key) => key,
        }
    }
}

/// One request counted: the answer, under which limit, and the credential the limiter
/// resolved, which the route finds in the request's extensions.
pub struct Checked {
    pub decision: Decision,
    pub limit: Arc<Limit>,
    pub resolved: Option<Resolved>,
}

/// The credential the limiter looked up, for the route to reuse.
pub enum Resolved {
    Key(ResolvedKey),
    Jwt(ResolvedJwt),
}

impl Checked {
    fn new(decision: Decision, bucket: Bucket) -> Self {
        let resolved = match bucket.key {
            BucketKey::Environment(resolved) => Some(Resolved::Key(resolved)),
            BucketKey::Jwt(resolved) => Some(Resolved::Jwt(resolved)),
            BucketKey::Other(_) => None,
        };
        Checked {
            decision,
            limit: bucket.limit,
            resolved,
        }
    }
}

impl RateLimiter {
    pub fn new(limits: RateLimits, shared: Option<Arc<SharedBuckets>>, now_ms: i64) -> Self {
        RateLimiter {
            default: Arc::new(Limit::new(limits.default)),
            jwt: Arc::new(Limit::new(limits.jwt)),
            local: LocalBuckets::new(now_ms),
            shared,
        }
    }

    pub fn shared(&self) -> Option<&Arc<SharedBuckets>> {
        self.shared.as_ref()
    }

    /// Counts one request with `authorization` in its bucket, if that needs no waiting: its
    /// credential is in the caches (or needs no lookup) and the buckets are this node's.
    /// Otherwise, for [`RateLimiter::check`]: the bucket if the caches told it (Redis counts
    /// it), `None` if the credential must be looked up first.
    pub fn check_now(
        &self,
        auth: &Auth,
        authorization: &HeaderValue,
    ) -> Result<Checked, Option<Bucket>> {
        let now = auth.now_millis();
        let bucket = self.bucket_now(auth, authorization, now);
        match bucket {
            Some(bucket) if self.shared.is_none() => {
                let decision = self.take_local(&bucket, now);
                Ok(Checked::new(decision, bucket))
            }
            bucket => Err(bucket),
        }
    }

    /// Counts one request with `authorization` in `bucket`, or in the bucket its credential's
    /// lookup chooses; with the credential it looked up, if any, for the route to reuse.
    pub async fn check(
        &self,
        auth: &Auth,
        authorization: &HeaderValue,
        bucket: Option<Bucket>,
    ) -> Checked {
        let bucket = match bucket {
            Some(bucket) => bucket,
            None => self.look_up_bucket(auth, authorization).await,
        };
        let now = auth.now_millis();
        let shared = match &self.shared {
            Some(shared) => {
                shared
                    .take(bucket.key.as_str(), &bucket.limit.config, now)
                    .await
            }
            None => None,
        };
        let decision = shared.unwrap_or_else(|| self.take_local(&bucket, now));
        Checked::new(decision, bucket)
    }

    /// Counts one request in this node's `bucket`, as the credential's cache entry holds it
    /// (a key's environment's or a verified JWT's).
    fn take_local(&self, bucket: &Bucket, now_ms: i64) -> Decision {
        let key = bucket.key.as_str();
        let config = &bucket.limit.config;
        let held = match &bucket.key {
            BucketKey::Environment(r) => r.entry.root.bucket.get().map(|env| &env.slot),
            BucketKey::Jwt(r) => Some(&r.verified.bucket),
            BucketKey::Other(_) => None,
        };
        match held {
            Some(held) => {
                let slot = held.get_or_init(|| self.local.hold(key, now_ms));
                self.local.take_held(slot, key, config, now_ms)
            }
            None => self.local.take(key, config, now_ms),
        }
    }

    /// Chooses the bucket, as upstream's `resolveApiRateLimitOverride`, if the caches can
    /// tell: `None` when the credential must be looked up or verified first
    /// ([`RateLimiter::look_up_bucket`]). `now_ms`: milliseconds since the epoch.
    fn bucket_now(&self, auth: &Auth, authorization: &HeaderValue, now_ms: i64) -> Option<Bucket> {
        match credential(authorization) {
            Credential::SecretKey(token) => match cached_key(auth, authorization, token, now_ms)? {
                Some(resolved) => {
                    let limit = resolved.entry.root.bucket.get()?.limit.clone();
                    Some(Bucket {
                        key: BucketKey::Environment(resolved),
                        limit,
                    })
                }
                None => Some(self.by_header(authorization)),
            },
            // It has a dot: the cache is asked at the clock reading the limiter already has.
            Credential::MaybeJwt(token) => match auth.cache.verified_jwt(token, now_ms) {
                Some(verified) => Some(self.jwt_bucket(authorization, verified)),
                None if std::str::from_utf8(token)
                    .is_ok_and(|t| bearer::classify(t) == TokenKind::PublicJwt) =>
                {
                    None
                }
                None => Some(self.by_header(authorization)),
            },
            Credential::Other => Some(self.by_header(authorization)),
        }
    }

    /// Chooses the bucket of a credential the caches do not hold. Authentication here goes
    /// through the same caches as the route's, so the route looks nothing up again; a lookup
    /// that fails (the database is down) counts against the header's own bucket.
    async fn look_up_bucket(&self, auth: &Auth, authorization: &HeaderValue) -> Bucket {
        match credential(authorization) {
            Credential::SecretKey(token) => match resolve_key(auth, authorization, token).await {
                Some(resolved) => {
                    let limit = self.env_bucket(auth, &resolved).await;
                    Bucket {
                        key: BucketKey::Environment(resolved),
                        limit,
                    }
                }
                None => self.by_header(authorization),
            },
            Credential::MaybeJwt(token) => {
                let verified = match std::str::from_utf8(token) {
                    Ok(token) => verified_public_jwt(auth, token).await.ok(),
                    Err(_) => None,
                };
                match verified {
                    Some(verified) => self.jwt_bucket(authorization, verified),
                    None => self.by_header(authorization),
                }
            }
            Credential::Other => self.by_header(authorization),
        }
    }

    fn jwt_bucket(&self, authorization: &HeaderValue, verified: Arc<VerifiedJwt>) -> Bucket {
        Bucket {
            key: BucketKey::Jwt(ResolvedJwt {
                header: authorization.clone(),
                verified,
            }),
            limit: self.jwt.clone(),
        }
    }

    /// The bucket of anything that is neither a live key nor a verified JWT: the header's own,
    /// under the default limit.
    fn by_header(&self, authorization: &HeaderValue) -> Bucket {
        Bucket {
            key: BucketKey::Other(digest_hex(&sha256(authorization.as_bytes()))),
            limit: self.default.clone(),
        }
    }

    /// The limit of a secret key's organization, or the default: read once per cached key
    /// entry (concurrent first requests share the read) and kept with the environment's bucket
    /// in it; the entry is dropped when the limit changes. A failed read counts against the
    /// default and is tried again.
    async fn env_bucket(&self, auth: &Auth, resolved: &ResolvedKey) -> Arc<Limit> {
        let root = &resolved.entry.root;
        let read = root
            .bucket
            .get_or_try_init(|| async {
                let limit = org_limit(auth, &root.auth.environment.organization_id).await?;
                StoreResult::Ok(EnvBucket {
                    limit: limit.map_or_else(|| self.default.clone(), |c| Arc::new(Limit::new(c))),
                    slot: OnceLock::new(),
                })
            })
            .await;
        match read {
            Ok(bucket) => bucket.limit.clone(),
            Err(_) => self.default.clone(),
        }
    }
}

/// What a request's credential is, as far as choosing its bucket goes, before any lookup.
enum Credential<'a> {
    /// An environment's secret key (`tr_…`, but not a user's token), as bytes: a cached key
    /// is found by its digest, and only a lookup needs it as text.
    SecretKey(&'a [u8]),
    /// Perhaps a public JWT (it has a dot): the verified-token cache (which finds it by its
    /// bytes) or a parse tells.
    MaybeJwt(&'a [u8]),
    /// Anything else: a personal access token, garbage.
    Other,
}

fn credential(authorization: &HeaderValue) -> Credential<'_> {
    let raw = authorization.as_bytes();
    if raw.len() > MAX_BEARER_LEN {
        return Credential::Other;
    }
    let token = raw.strip_prefix(b"Bearer ").unwrap_or(raw);
    let user_token = [
        taskgate_core::pat::PAT_PREFIX,
        taskgate_core::uat::UAT_PREFIX,
        "tr_oat_",
    ]
    .iter()
    .any(|p| token.starts_with(p.as_bytes()));
    if token.starts_with(b"tr_") && !user_token {
        Credential::SecretKey(token)
    } else if token.contains(&b'.') {
        Credential::MaybeJwt(token)
    } else {
        Credential::Other
    }
}

async fn org_limit(auth: &Auth, organization_id: &str) -> StoreResult<Option<LimitConfig>> {
    match auth.store.org_rate_limit(organization_id).await {
        Ok(limit) => Ok(limit),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}
