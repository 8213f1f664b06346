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
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use secrecy::SecretString;
use taskgate_store::{ChangeEvent, EnvironmentAuth, PersonalAccessToken, RevokedKeyUsage, User};
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

/// The SHA-256 digest of a secret key: what key answers are cached by. The lowercase hex form
/// the database stores is only computed on a cache miss.
pub type KeyDigest = [u8; 32];

/// The uses of one revoked key since the last flush, counted with two atomics: a request
/// authenticated through a grace window takes no lock to be counted. One per revoked key,
/// shared by every cache entry that matched through it (see [`AuthCache::grace_use`]).
#[derive(Debug)]
pub struct GraceUse {
    pub revoked_key_id: String,
    uses: AtomicU64,
    last_used_ms: AtomicI64,
}

impl GraceUse {
    fn new(revoked_key_id: String) -> Self {
        Self {
            revoked_key_id,
            uses: AtomicU64::new(0),
            last_used_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// Counts one use at `now`.
    pub fn record(&self, now: DateTime<Utc>) {
        self.record_many(1, now.timestamp_millis());
    }

    fn record_many(&self, uses: u64, at_ms: i64) {
        // The time first: whoever takes the count (Acquire) also sees a time at least as late.
        self.last_used_ms.fetch_max(at_ms, Ordering::Relaxed);
        self.uses.fetch_add(uses, Ordering::Release);
    }
}

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
    keys: RwLock<HashMap<KeyDigest, Timed<KeyEntry>>>,
    negative: Mutex<HashMap<KeyDigest, Instant>>,
    envs: RwLock<HashMap<String, Timed<Arc<SigningEnv>>>>,
    branches: RwLock<HashMap<BranchKey, Timed<Option<Arc<EnvironmentAuth>>>>>,
    pats: RwLock<HashMap<String, Timed<PatEntry>>>,
    users: RwLock<HashMap<String, Timed<User>>>,
    revoked_pats: RwLock<HashSet<String>>,
    grace_uses: Mutex<HashMap<String, Arc<GraceUse>>>,
    touched: Mutex<HashMap<String, DateTime<Utc>>>,
    inflight: Mutex<HashMap<KeyDigest, Arc<Notify>>>,
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
            grace_uses: Mutex::new(HashMap::new()),
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

    /// Looks a key digest up. A grace-window entry past its expiry is a miss, never a hit.
    pub fn key(&self, digest: &KeyDigest, now: DateTime<Utc>) -> Cached<KeyEntry> {
        if let Some(t) = self.keys.read().get(digest) {
            let live = match &t.value.grace {
                None => true,
                Some(grace) => grace.expires_at > now,
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
        let mut map = self.keys.write();
        if self.generation() != generation {
            return;
        }
        if map.len() >= POSITIVE_CAPACITY {
            map.clear();
        }
        map.insert(
            digest,
            Timed {
                value: entry,
                loaded: Instant::now(),
            },
        );
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

    /// The use counter of a revoked key, made on first use. Cache entries that match through
    /// the key hold it, so counting a use takes no lock; [`Self::take_usage`] collects it.
    pub fn grace_use(&self, revoked_key_id: &str) -> Arc<GraceUse> {
        let mut uses = self.grace_uses.lock();
        if let Some(u) = uses.get(revoked_key_id) {
            return u.clone();
        }
        let u = Arc::new(GraceUse::new(revoked_key_id.to_string()));
        uses.insert(revoked_key_id.to_string(), u.clone());
        u
    }

    /// Usage counted since the last call. Counters no entry holds any more are forgotten once
    /// they are empty.
    pub fn take_usage(&self) -> Vec<RevokedKeyUsage> {
        let mut uses = self.grace_uses.lock();
        let mut taken = Vec::new();
        for u in uses.values() {
            let n = u.uses.swap(0, Ordering::Acquire);
            if n == 0 {
                continue;
            }
            let ms = u.last_used_ms.load(Ordering::Relaxed);
            if let Some(last_used_at) = DateTime::<Utc>::from_timestamp_millis(ms) {
                taken.push(RevokedKeyUsage {
                    revoked_key_id: u.revoked_key_id.clone(),
                    uses: i64::try_from(n).unwrap_or(i64::MAX),
                    last_used_at,
                });
            }
        }
        // Only the map holds a counter with a strong count of one, and the map is locked, so
        // no use can be counted on it any more: drop it unless a use landed after the swap.
        uses.retain(|_, u| Arc::strong_count(u) > 1 || u.uses.load(Ordering::Acquire) > 0);
        taken
    }

    /// Puts back usage that could not be written, so none is lost.
    pub fn restore_usage(&self, usage: Vec<RevokedKeyUsage>) {
        for u in usage {
            self.grace_use(&u.revoked_key_id).record_many(
                u64::try_from(u.uses).unwrap_or(0),
                u.last_used_at.timestamp_millis(),
            );
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
            ChangeEvent::Run { .. }
            | ChangeEvent::Stream { .. }
            | ChangeEvent::Queue { .. }
            | ChangeEvent::EnvVars { .. } => {}
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
            matches!(cache.key(&H, Utc::now()), Cached::Absent),
            "the follower finds the leader's answer"
        );
        assert!(cache.begin_lookup(&H).is_ok(), "the lookup is over");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod grace_use_tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn uses_from_many_threads_are_all_counted_once() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let counter = cache.grace_use("rk1");
        assert!(
            Arc::ptr_eq(&counter, &cache.grace_use("rk1")),
            "one counter per revoked key"
        );
        std::thread::scope(|s| {
            for t in 0..4 {
                let counter = counter.clone();
                s.spawn(move || {
                    for i in 0..1000 {
                        counter.record(at(1_000 * t + i));
                    }
                });
            }
        });
        let taken = cache.take_usage();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].revoked_key_id, "rk1");
        assert_eq!(taken[0].uses, 4000);
        assert_eq!(taken[0].last_used_at, at(3_999), "the latest use wins");
        assert!(
            cache.take_usage().is_empty(),
            "taken uses are not taken twice"
        );
    }

    #[test]
    fn counters_are_forgotten_only_when_unused_and_unheld() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let held = cache.grace_use("held");
        cache.grace_use("dropped").record(at(5));
        held.record(at(7));
        // "dropped" is held by no entry, but its use is still taken.
        let mut taken = cache.take_usage();
        taken.sort_by(|a, b| a.revoked_key_id.cmp(&b.revoked_key_id));
        assert_eq!(
            taken
                .iter()
                .map(|u| (u.revoked_key_id.as_str(), u.uses))
                .collect::<Vec<_>>(),
            [("dropped", 1), ("held", 1)]
        );
        assert_eq!(
            cache.grace_uses.lock().len(),
            1,
            "the unheld counter is gone"
        );
        held.record(at(9));
        assert_eq!(
            cache.take_usage()[0].uses,
            1,
            "a held counter keeps counting"
        );
    }

    #[test]
    fn restored_usage_is_added_to_new_uses() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let counter = cache.grace_use("rk");
        counter.record(at(10));
        let failed_write = cache.take_usage();
        counter.record(at(4));
        cache.restore_usage(failed_write);
        let taken = cache.take_usage();
        assert_eq!(taken[0].uses, 2);
        assert_eq!(taken[0].last_used_at, at(10));
    }
}
