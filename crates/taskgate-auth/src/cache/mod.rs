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
//!
//! One struct, [`AuthCache`], with its maps grouped by what they hold: [`keys`] (secret keys,
//! signing environments, branch children, in-flight lookups), [`tokens`] (personal access
//! tokens, users, the revoked-token set, last-use throttling) and [`usage`] (grace-window key
//! use counters).

mod jwts;
mod keys;
mod tokens;
mod usage;

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use taskgate_store::{ChangeEvent, EnvironmentAuth, User};
use tokio::sync::Notify;

pub use jwts::*;
pub use keys::*;
pub use tokens::*;
pub use usage::*;

/// Unknown key hashes remembered at most. Past this the negative cache starts over: memory
/// stays bounded and the cost is one more query per distinct garbage key.
pub const NEGATIVE_CAPACITY: usize = 100_000;
/// Positive entries kept at most per map, for the same reason.
pub const POSITIVE_CAPACITY: usize = 100_000;

/// The cache's maps hash with foldhash, seeded per map: every request looks its credential up
/// here, and SipHash cost more than the lookup. The keys are SHA-256 digests, verified tokens
/// and ids, which a client cannot steer into collisions without the seed.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

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
    /// Public JWTs already verified, by their exact bytes.
    jwts: RwLock<HashMap<JwtBytes, Timed<Arc<VerifiedJwt>>>>,
}

/// A public JWT as the `Authorization` header carries it, the key of the verified-token cache.
type JwtBytes = Box<[u8]>;

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            keys: RwLock::new(HashMap::default()),
            negative: Mutex::new(HashMap::default()),
            envs: RwLock::new(HashMap::default()),
            branches: RwLock::new(HashMap::default()),
            pats: RwLock::new(HashMap::default()),
            users: RwLock::new(HashMap::default()),
            revoked_pats: RwLock::new(HashSet::default()),
            grace_uses: Mutex::new(HashMap::default()),
            touched: Mutex::new(HashMap::default()),
            inflight: Mutex::new(HashMap::default()),
            jwts: RwLock::new(HashMap::default()),
        }
    }

    /// The current generation; pass it back to an insert so a stale read is discarded.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn fresh<T>(&self, t: &Timed<T>) -> bool {
        t.loaded.elapsed() < self.ttl
    }

    /// Caches `value` under `key` in `map`, unless an invalidation happened since `generation`
    /// was read (the value may predate it). A full map starts over.
    fn put<K: Eq + Hash, V>(
        &self,
        map: &RwLock<HashMap<K, Timed<V>>>,
        generation: u64,
        key: K,
        value: V,
    ) {
        let mut map = map.write();
        if self.generation() != generation {
            return;
        }
        if map.len() >= POSITIVE_CAPACITY {
            map.clear();
        }
        map.insert(
            key,
            Timed {
                value,
                loaded: Instant::now(),
            },
        );
    }

    /// Starts a new generation. Every change that bumps it may concern a verified JWT (its
    /// keys, project, organization or personal access token), so those are all dropped.
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.jwts.write().clear();
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
            ChangeEvent::OrgRateLimit { organization_id } => {
                self.bump();
                // Keys carry their organization's limit once read.
                self.keys.write().retain(|_, t| {
                    &t.value.root.auth.environment.organization_id != organization_id
                });
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
            | ChangeEvent::Timer { .. }
            | ChangeEvent::EnvVars { .. }
            | ChangeEvent::KeysIssued { .. } => {}
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
