//! The authentication cache: key → environment answers, environments by id for JWT
//! verification, branch children, personal access tokens and the revoked-token set.
//!
//! A steady stream of requests with a valid credential does no database work. Entries are
//! dropped the moment a [`ChangeEvent`] says they changed (rotation, grace change, project
//! deletion, token revocation: from this node or, on PostgreSQL, any node) and are in any case
//! re-read after `ttl`, a safety net for a notification lost while a listener reconnected.
//! An entry matched through a revoked key carries that key's `expires_at` and is never served
//! past it. Unknown keys are remembered in a bounded negative cache, cleared whenever any key
//! changes, so a flood of garbage keys reaches the database once per distinct key at most.
//!
//! A generation counter closes the race between a lookup that read the database before an
//! invalidation and its insert after it: such an insert is discarded.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use secrecy::SecretString;
use taskgate_store::{
    ChangeEvent, EnvironmentAuth, KeyMatchVia, PersonalAccessToken, RevokedKeyUsage, User,
};
use tokio::sync::Notify;

/// Unknown key hashes remembered at most. Past this the negative cache starts over: memory
/// stays bounded and the cost is one more query per distinct garbage key.
pub const NEGATIVE_CAPACITY: usize = 100_000;
/// Positive entries kept at most per map, for the same reason.
pub const POSITIVE_CAPACITY: usize = 100_000;
/// How long an unknown key is remembered without any key change.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// An environment with its current secret key opened.
#[derive(Debug)]
pub struct RootEnv {
    pub auth: Arc<EnvironmentAuth>,
    pub current_key: Arc<SecretString>,
}

/// What a secret key resolved to.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub root: Arc<RootEnv>,
    pub via: KeyMatchVia,
}

/// A revoked key an environment's JWTs may still be signed with.
#[derive(Debug)]
pub struct GraceKey {
    pub id: String,
    pub key: SecretString,
    pub expires_at: DateTime<Utc>,
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

/// A live personal access token and its user.
#[derive(Debug, Clone)]
pub struct PatEntry {
    pub token: PersonalAccessToken,
    pub user: User,
}

/// (parent environment id, branch name).
type BranchKey = (String, String);

struct Timed<T> {
    value: T,
    loaded: Instant,
}

/// The cache. Cheap to share: every map sits behind its own lock.
pub struct AuthCache {
    ttl: Duration,
    generation: AtomicU64,
    keys: RwLock<HashMap<String, Timed<KeyEntry>>>,
    negative: Mutex<HashMap<String, Instant>>,
    envs: RwLock<HashMap<String, Timed<Arc<SigningEnv>>>>,
    branches: RwLock<HashMap<BranchKey, Timed<Option<Arc<EnvironmentAuth>>>>>,
    pats: RwLock<HashMap<String, Timed<PatEntry>>>,
    users: RwLock<HashMap<String, Timed<User>>>,
    revoked_pats: RwLock<HashSet<String>>,
    usage: Mutex<HashMap<String, RevokedKeyUsage>>,
    touched: Mutex<HashMap<String, DateTime<Utc>>>,
    inflight: Mutex<HashMap<String, Arc<Notify>>>,
}

/// The leader of a key lookup; see [`AuthCache::begin_lookup`].
pub struct LookupGuard {
    cache: Option<Arc<AuthCache>>,
    hash: String,
    notify: Arc<Notify>,
}

impl LookupGuard {
    /// A guard that coalesces nothing (for a lookup that must go ahead regardless).
    pub fn detached() -> LookupGuard {
        LookupGuard {
            cache: None,
            hash: String::new(),
            notify: Arc::new(Notify::new()),
        }
    }
}

impl Drop for LookupGuard {
    fn drop(&mut self) {
        if let Some(cache) = &self.cache {
            cache.inflight.lock().remove(&self.hash);
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
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            keys: RwLock::new(HashMap::new()),
            negative: Mutex::new(HashMap::new()),
            envs: RwLock::new(HashMap::new()),
            branches: RwLock::new(HashMap::new()),
            pats: RwLock::new(HashMap::new()),
            users: RwLock::new(HashMap::new()),
            revoked_pats: RwLock::new(HashSet::new()),
            usage: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The current generation; pass it back to an insert so a stale read is discarded.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn fresh<T>(&self, t: &Timed<T>) -> bool {
        t.loaded.elapsed() < self.ttl
    }

    /// Looks a key hash up. A grace-window entry past its expiry is a miss, never a hit.
    pub fn key(&self, hash: &str, now: DateTime<Utc>) -> Cached<KeyEntry> {
        if let Some(t) = self.keys.read().get(hash) {
            let live = match &t.value.via {
                KeyMatchVia::Current => true,
                KeyMatchVia::Revoked { expires_at, .. } => *expires_at > now,
            };
            if live && self.fresh(t) {
                return Cached::Hit(t.value.clone());
            }
        }
        if let Some(at) = self.negative.lock().get(hash) {
            if at.elapsed() < NEGATIVE_TTL {
                return Cached::Absent;
            }
        }
        Cached::Miss
    }

    pub fn insert_key(&self, generation: u64, hash: String, entry: KeyEntry) {
        let mut map = self.keys.write();
        if self.generation() != generation {
            return;
        }
        if map.len() >= POSITIVE_CAPACITY {
            map.clear();
        }
        map.insert(
            hash,
            Timed {
                value: entry,
                loaded: Instant::now(),
            },
        );
    }

    pub fn insert_absent_key(&self, generation: u64, hash: String) {
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
        neg.insert(hash, Instant::now());
    }

    /// Joins the lookup of `hash` already under way, or starts one: `Err(notify)` for a
    /// follower (await `notify`, then look in the cache again), `Ok(guard)` for the leader,
    /// whose guard wakes the followers when dropped, after the answer is cached. So a burst of
    /// requests with one unknown key sends one lookup, not one per connection.
    pub fn begin_lookup(self: &Arc<Self>, hash: &str) -> Result<LookupGuard, Arc<Notify>> {
        let mut inflight = self.inflight.lock();
        if let Some(n) = inflight.get(hash) {
            return Err(n.clone());
        }
        if inflight.len() >= NEGATIVE_CAPACITY {
            // Distinct keys never coalesce; don't let their bookkeeping grow without bound.
            return Ok(LookupGuard {
                cache: None,
                hash: String::new(),
                notify: Arc::new(Notify::new()),
            });
        }
        let notify = Arc::new(Notify::new());
        inflight.insert(hash.to_string(), notify.clone());
        Ok(LookupGuard {
            cache: Some(self.clone()),
            hash: hash.to_string(),
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
        let mut map = self.envs.write();
        if self.generation() != generation {
            return;
        }
        if map.len() >= POSITIVE_CAPACITY {
            map.clear();
        }
        map.insert(
            env.auth.environment.id.clone(),
            Timed {
                value: env,
                loaded: Instant::now(),
            },
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
        let mut map = self.branches.write();
        if self.generation() != generation {
            return;
        }
        if map.len() >= POSITIVE_CAPACITY {
            map.clear();
        }
        map.insert(
            (parent_id.to_string(), branch.to_string()),
            Timed {
                value: env,
                loaded: Instant::now(),
            },
        );
    }

    pub fn pat(&self, hash: &str) -> Option<PatEntry> {
        self.pats
            .read()
            .get(hash)
            .filter(|t| self.fresh(t))
            .map(|t| t.value.clone())
    }

    pub fn insert_pat(&self, generation: u64, hash: String, entry: PatEntry) {
        let mut map = self.pats.write();
        if self.generation() != generation || self.revoked_pats.read().contains(&entry.token.id) {
            return;
        }
        if map.len() >= POSITIVE_CAPACITY {
            map.clear();
        }
        map.insert(
            hash,
            Timed {
                value: entry,
                loaded: Instant::now(),
            },
        );
    }

    /// A user by id (user-actor tokens name their user; no query per use).
    pub fn user(&self, id: &str) -> Option<User> {
        self.users
            .read()
            .get(id)
            .filter(|t| self.fresh(t))
            .map(|t| t.value.clone())
    }

    pub fn insert_user(&self, generation: u64, user: User) {
        let mut map = self.users.write();
        if self.generation() != generation {
            return;
        }
        if map.len() >= POSITIVE_CAPACITY {
            map.clear();
        }
        map.insert(
            user.id.clone(),
            Timed {
                value: user,
                loaded: Instant::now(),
            },
        );
    }

    /// Whether a token id is known to be revoked (for UATs and exchanged JWTs bound to it).
    pub fn pat_revoked(&self, pat_id: &str) -> bool {
        self.revoked_pats.read().contains(pat_id)
    }

    /// Loads the revoked-token set (at start-up).
    pub fn set_revoked_pats(&self, ids: impl IntoIterator<Item = String>) {
        self.revoked_pats.write().extend(ids);
    }

    /// Claims the right to record a token's use now: true at most once per `throttle` per
    /// token on this node, so a busy token does not send a write per request.
    pub fn claim_touch(
        &self,
        pat_id: &str,
        now: DateTime<Utc>,
        throttle: chrono::Duration,
    ) -> bool {
        let mut touched = self.touched.lock();
        match touched.get(pat_id) {
            Some(at) if now - *at < throttle => false,
            _ => {
                if touched.len() >= POSITIVE_CAPACITY {
                    touched.clear();
                }
                touched.insert(pat_id.to_string(), now);
                true
            }
        }
    }

    /// Counts a request authenticated with a revoked key; flushed by [`Self::take_usage`].
    pub fn count_grace_use(&self, revoked_key_id: &str, now: DateTime<Utc>) {
        let mut usage = self.usage.lock();
        // The common case, a key already counted since the last flush, allocates nothing.
        if let Some(entry) = usage.get_mut(revoked_key_id) {
            entry.uses += 1;
            entry.last_used_at = entry.last_used_at.max(now);
            return;
        }
        usage.insert(
            revoked_key_id.to_string(),
            RevokedKeyUsage {
                revoked_key_id: revoked_key_id.to_string(),
                uses: 1,
                last_used_at: now,
            },
        );
    }

    /// Usage counted since the last call.
    pub fn take_usage(&self) -> Vec<RevokedKeyUsage> {
        self.usage.lock().drain().map(|(_, u)| u).collect()
    }

    /// Puts back usage that could not be written, so none is lost.
    pub fn restore_usage(&self, usage: Vec<RevokedKeyUsage>) {
        for u in usage {
            let mut map = self.usage.lock();
            let entry = map
                .entry(u.revoked_key_id.clone())
                .or_insert_with(|| RevokedKeyUsage {
                    uses: 0,
                    ..u.clone()
                });
            entry.uses += u.uses;
            entry.last_used_at = entry.last_used_at.max(u.last_used_at);
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Applies a change event. Registered as the store's synchronous change hook, so a change
    /// made on this node is applied before the store call that made it returns.
    pub fn apply(&self, event: &ChangeEvent) {
        match event {
            ChangeEvent::EnvKeys { environment_id } => {
                self.bump();
                let id = environment_id.as_str();
                let touches = |a: &EnvironmentAuth| {
                    a.environment.id == id
                        || a.environment.parent_environment_id.as_deref() == Some(id)
                };
                self.keys
                    .write()
                    .retain(|_, t| !touches(&t.value.root.auth));
                self.envs.write().retain(|k, t| {
                    k != id && t.value.signing_environment_id != id && !touches(&t.value.auth)
                });
                self.branches.write().clear();
                self.negative.lock().clear();
            }
            ChangeEvent::ProjectDeleted { project_id } => {
                self.bump();
                let p = project_id.as_str();
                self.keys
                    .write()
                    .retain(|_, t| t.value.root.auth.environment.project_id != p);
                self.envs
                    .write()
                    .retain(|_, t| t.value.auth.environment.project_id != p);
                self.branches.write().clear();
            }
            ChangeEvent::OrgDeleted { organization_id } => {
                self.bump();
                let o = organization_id.as_str();
                self.keys
                    .write()
                    .retain(|_, t| t.value.root.auth.environment.organization_id != o);
                self.envs
                    .write()
                    .retain(|_, t| t.value.auth.environment.organization_id != o);
                self.branches.write().clear();
            }
            ChangeEvent::PatRevoked { pat_id } => {
                self.bump();
                self.revoked_pats.write().insert(pat_id.clone());
                self.pats.write().retain(|_, t| &t.value.token.id != pat_id);
            }
            ChangeEvent::Resync => self.clear(),
            ChangeEvent::Run { .. } | ChangeEvent::Stream { .. } => {}
        }
    }

    /// Drops everything (after missed events).
    pub fn clear(&self) {
        self.bump();
        self.keys.write().clear();
        self.negative.lock().clear();
        self.envs.write().clear();
        self.branches.write().clear();
        self.pats.write().clear();
        self.users.write().clear();
    }

    /// Entries held, for metrics.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.keys.read().len(),
            self.negative.lock().len(),
            self.envs.read().len(),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod lookup_tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_lookups_of_one_key_coalesce() {
        let cache = Arc::new(AuthCache::new(Duration::from_secs(60)));
        let leader = cache.begin_lookup("h").ok().unwrap();
        let notify = match cache.begin_lookup("h") {
            Err(n) => n,
            Ok(_) => panic!("a second lookup of the same key must follow the first"),
        };
        assert!(
            cache.begin_lookup("other").is_ok(),
            "other keys are independent"
        );
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        cache.insert_absent_key(cache.generation(), "h".into());
        drop(leader);
        tokio::time::timeout(Duration::from_secs(1), woken)
            .await
            .unwrap();
        assert!(
            matches!(cache.key("h", Utc::now()), Cached::Absent),
            "the follower finds the leader's answer"
        );
        assert!(cache.begin_lookup("h").is_ok(), "the lookup is over");
    }
}
