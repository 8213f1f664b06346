//! Secret keys and what they resolve to: environments with their current key, the grace
//! window a revoked key matched through, the signing keys of a JWT's environment, branch
//! children, the negative cache of unknown keys and the coalescing of concurrent lookups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use taskgate_store::EnvironmentAuth;
use tokio::sync::Notify;

use super::{AuthCache, GraceUse, NEGATIVE_CAPACITY};

/// How long an unknown key is remembered without any key change.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// An environment with its current secret key opened.
#[derive(Debug)]
pub struct RootEnv {
    pub auth: Arc<EnvironmentAuth>,
    pub current_key: Arc<SecretString>,
    /// Its environment's API rate-limit bucket under its organization's limit, once the rate
    /// limiter has read that limit; the entry is dropped when the limit changes.
    pub bucket: tokio::sync::OnceCell<crate::ratelimit::EnvBucket>,
}

/// The SHA-256 digest of a secret key: what key answers are cached by. The lowercase hex form
/// the database stores is only computed on a cache miss.
pub type KeyDigest = [u8; 32];

/// A secret key matched through a revoked key inside its grace window.
#[derive(Debug, Clone)]
pub struct GraceMatch {
    pub expires_at: DateTime<Utc>,
    pub usage: Arc<GraceUse>,
}

impl GraceMatch {
    pub fn revoked_key_id(&self) -> &str {
        &self.usage.revoked_key_id
    }
}

/// What a secret key resolved to: its environment, and the grace window it matched through
/// (`None` for the current key). Cloning it copies two pointers.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub root: Arc<RootEnv>,
    pub grace: Option<GraceMatch>,
}

/// A revoked key an environment's JWTs may still be signed with.
#[derive(Debug)]
pub struct GraceKey {
    pub key: SecretString,
    pub expires_at: DateTime<Utc>,
    pub usage: Arc<GraceUse>,
}

/// An environment as the subject of a JWT: what the token acts in, and the keys that may
/// have signed it (the parent's, for a branch child).
#[derive(Debug)]
pub struct SigningEnv {
    pub auth: Arc<EnvironmentAuth>,
    pub signing_environment_id: String,
    pub signing_key: Arc<SecretString>,
    pub grace_keys: Vec<GraceKey>,
}

/// The leader of a key lookup; see [`AuthCache::begin_lookup`].
pub struct LookupGuard {
    cache: Option<Arc<AuthCache>>,
    digest: KeyDigest,
    notify: Arc<Notify>,
}

impl LookupGuard {
    /// A guard that coalesces nothing (for a lookup that must go ahead regardless).
    pub fn detached() -> LookupGuard {
        LookupGuard {
            cache: None,
            digest: [0; 32],
            notify: Arc::new(Notify::new()),
        }
    }
}

impl Drop for LookupGuard {
    fn drop(&mut self) {
        if let Some(cache) = &self.cache {
            cache.inflight.lock().remove(&self.digest);
        }
        self.notify.notify_waiters();
    }
}

/// The answer of a key lookup in the cache.
pub enum Cached<T> {
    Hit(T),
    /// Known not to exist.
    Absent,
    Miss,
}

impl AuthCache {
    /// Looks a key digest up. A grace-window entry past its expiry is a miss, never a hit.
    /// `now_ms` is milliseconds since the Unix epoch (no date is built on this hot path).
    pub fn key(&self, digest: &KeyDigest, now_ms: i64) -> Cached<KeyEntry> {
        if let Some(t) = self.keys.read().get(digest) {
            let live = match &t.value.grace {
                None => true,
                Some(grace) => grace.expires_at.timestamp_millis() > now_ms,
            };
            if live && self.fresh(t) {
                return Cached::Hit(t.value.clone());
            }
        }
        if let Some(at) = self.negative.lock().get(digest) {
            if at.elapsed() < NEGATIVE_TTL {
                return Cached::Absent;
            }
        }
        Cached::Miss
    }

    pub fn insert_key(&self, generation: u64, digest: KeyDigest, entry: KeyEntry) {
        self.put(&self.keys, generation, digest, entry);
    }

    pub fn insert_absent_key(&self, generation: u64, digest: KeyDigest) {
        let mut neg = self.negative.lock();
        if self.generation() != generation {
            return;
        }
        if neg.len() >= NEGATIVE_CAPACITY {
            // Drop what has expired first; start over only if the flood is still fresh.
            neg.retain(|_, at| at.elapsed() < NEGATIVE_TTL);
            if neg.len() >= NEGATIVE_CAPACITY {
                neg.clear();
            }
        }
        neg.insert(digest, Instant::now());
    }

    /// Joins the lookup of `hash` already under way, or starts one: `Err(notify)` for a
    /// follower (await `notify`, then look in the cache again), `Ok(guard)` for the leader,
    /// whose guard wakes the followers when dropped, after the answer is cached. So a burst of
    /// requests with one unknown key sends one lookup, not one per connection.
    pub fn begin_lookup(self: &Arc<Self>, digest: &KeyDigest) -> Result<LookupGuard, Arc<Notify>> {
        let mut inflight = self.inflight.lock();
        if let Some(n) = inflight.get(digest) {
            return Err(n.clone());
        }
        if inflight.len() >= NEGATIVE_CAPACITY {
            // Distinct keys never coalesce; don't let their bookkeeping grow without bound.
            return Ok(LookupGuard::detached());
        }
        let notify = Arc::new(Notify::new());
        inflight.insert(*digest, notify.clone());
        Ok(LookupGuard {
            cache: Some(self.clone()),
            digest: *digest,
            notify,
        })
    }

    pub fn signing_env(&self, env_id: &str) -> Option<Arc<SigningEnv>> {
        self.envs
            .read()
            .get(env_id)
            .filter(|t| self.fresh(t))
            .map(|t| t.value.clone())
    }

    pub fn insert_signing_env(&self, generation: u64, env: Arc<SigningEnv>) {
        self.put(
            &self.envs,
            generation,
            env.auth.environment.id.to_string(),
            env,
        );
    }

    pub fn branch(&self, parent_id: &str, branch: &str) -> Cached<Arc<EnvironmentAuth>> {
        match self
            .branches
            .read()
            .get(&(parent_id.to_string(), branch.to_string()))
        {
            Some(t) if self.fresh(t) => match &t.value {
                Some(env) => Cached::Hit(env.clone()),
                None => Cached::Absent,
            },
            _ => Cached::Miss,
        }
    }

    pub fn insert_branch(
        &self,
        generation: u64,
        parent_id: &str,
        branch: &str,
        env: Option<Arc<EnvironmentAuth>>,
    ) {
        self.put(
            &self.branches,
            generation,
            (parent_id.to_string(), branch.to_string()),
            env,
        );
    }
}

#[cfg(test)]
mod lookup_tests {
    use super::*;

    const H: KeyDigest = [1; 32];

    #[tokio::test]
    async fn concurrent_lookups_of_one_key_coalesce() {
        let cache = Arc::new(AuthCache::new(Duration::from_secs(60)));
        let leader = cache.begin_lookup(&H).ok().unwrap();
        let notify = match cache.begin_lookup(&H) {
            Err(n) => n,
            Ok(_) => panic!("a second lookup of the same key must follow the first"),
        };
        assert!(
            cache.begin_lookup(&[2; 32]).is_ok(),
            "other keys are independent"
        );
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        cache.insert_absent_key(cache.generation(), H);
        drop(leader);
        tokio::time::timeout(Duration::from_secs(1), woken)
            .await
            .unwrap();
        assert!(
            matches!(cache.key(&H, Utc::now().timestamp_millis()), Cached::Absent),
            "the follower finds the leader's answer"
        );
        assert!(cache.begin_lookup(&H).is_ok(), "the lookup is over");
    }
}
