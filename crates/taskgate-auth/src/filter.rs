//! A compact filter of every live secret key (current, and revoked inside its grace window),
//! so that a key that was never issued is refused without a query: a flood of random keys is
//! not a flood on the database.
//!
//! It is a Bloom filter over the keys' SHA-256 digests, 20 bits a key (2.5 MB for a million
//! keys), with a false-positive rate under one in ten thousand at its design size: a random
//! key it lets through costs the two lookups it always cost. It never refuses a live key:
//!
//! - it is loaded whole before the server answers, and again after notifications may have
//!   been lost (a resync);
//! - every change that issues keys (a project, a member, a rotation, a branch, a grace change)
//!   reaches it as a change event, from this node synchronously and from other nodes by
//!   notification; the event marks it *unsettled* at once, and until the keys of what changed
//!   are read back into it, every key goes to the database as before;
//! - a key it refuses is still checked against the database at most once a second, which
//!   heals what no event told (a notification a node has not received yet); a key found so
//!   is added. Requests with the key being checked, and for a second after, wait for that
//!   check's answer instead of being refused: a burst with a key just issued on another node
//!   is answered as the database says, with one query.
//!
//! Keys that stop working (rotated out, grace ended) stay in it as false positives until it
//! is rebuilt, which happens when it outgrows its design size.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use taskgate_core::ratelimit::{take_token, BucketState};
use taskgate_core::time::Clock;
use taskgate_store::{ChangeEvent, KeyHashScope, Store};

use crate::cache::KeyDigest;

/// Bits per key at the design size.
const BITS_PER_KEY: usize = 20;
/// Probes per key: the optimum for 20 bits a key.
const PROBES: u64 = 14;
/// The smallest design size.
const MIN_KEYS: usize = 4_096;

/// The Bloom filter proper: fixed size, lock-free inserts and lookups.
pub struct Bloom {
    bits: Vec<AtomicU64>,
    /// Keys it was sized for; past this it is rebuilt larger.
    capacity: usize,
    inserted: AtomicUsize,
    seed: u64,
}

impl Bloom {
    /// A filter for `keys` keys (at least [`MIN_KEYS`]).
    pub fn with_capacity(keys: usize) -> Bloom {
        let capacity = keys.max(MIN_KEYS);
        let words = (capacity * BITS_PER_KEY).div_ceil(64);
        Bloom {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            capacity,
            inserted: AtomicUsize::new(0),
            seed: rand::random(),
        }
    }

    /// Bytes of bits held.
    pub fn bytes(&self) -> usize {
        self.bits.len() * 8
    }

    fn probes(&self, digest: &KeyDigest) -> impl Iterator<Item = (usize, u64)> + '_ {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&digest[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        // The digest is uniform already; the seed keeps the bit positions private to this
        // process, so no one can search for keys that land on set bits.
        let h1 = word(0) ^ self.seed;
        let h2 = word(1) | 1;
        let m = (self.bits.len() * 64) as u64;
        (0..PROBES).map(move |i| {
            let h = h1.wrapping_add(i.wrapping_mul(h2));
            // Lemire's reduction: uniform over 0..m without a division.
            let bit = ((u128::from(h) * u128::from(m)) >> 64) as u64;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    pub fn insert(&self, digest: &KeyDigest) {
        for (word, mask) in self.probes(digest) {
            self.bits[word].fetch_or(mask, Ordering::Relaxed);
        }
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }

    /// False only for a digest never inserted.
    pub fn may_contain(&self, digest: &KeyDigest) -> bool {
        self.probes(digest)
            .all(|(word, mask)| self.bits[word].load(Ordering::Relaxed) & mask != 0)
    }

    fn full(&self) -> bool {
        self.inserted.load(Ordering::Relaxed) > self.capacity
    }
}

/// What the filter says of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Possibly live: look it up.
    Lookup,
    /// Not in the filter, but this is the second's one check against the database: look it
    /// up, and [`KeyFilter::add`] it if it is live.
    Confirm,
    /// Never issued, or not live: refuse without a query.
    Refuse,
}

/// The filter of live keys, with the bookkeeping that keeps it exact.
pub struct KeyFilter {
    clock: Arc<dyn Clock>,
    bloom: RwLock<Arc<Bloom>>,
    /// Loaded whole at least once and not since invalidated by a resync.
    loaded: AtomicBool,
    /// Changes whose keys are not read back yet; the filter is trusted only at zero.
    unsettled: AtomicUsize,
    /// Bumped by every resync and rebuild: a reload started before one is discarded.
    epoch: AtomicU64,
    /// Digests added while a rebuild reads the store, added again to what it builds.
    added_during_rebuild: Mutex<Option<Vec<KeyDigest>>>,
    /// One database check a second of a key the filter refused.
    confirmations: Mutex<Confirmations>,
}

/// The budget of checks of refused keys, and the key checked last and when (ms).
#[derive(Default)]
struct Confirmations {
    budget: Option<BucketState>,
    last: Option<(KeyDigest, i64)>,
}

impl KeyFilter {
    /// An empty filter, unloaded: it refuses nothing until [`KeyFilter::load`].
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        KeyFilter {
            clock,
            bloom: RwLock::new(Arc::new(Bloom::with_capacity(0))),
            loaded: AtomicBool::new(false),
            unsettled: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            added_during_rebuild: Mutex::new(None),
            confirmations: Mutex::new(Confirmations::default()),
        }
    }
}

fn digest_of(hex_hash: &str) -> Option<KeyDigest> {
    let mut d = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut d).ok()?;
    Some(d)
}

impl KeyFilter {
    /// Whether the filter answers now (loaded, with no change in flight).
    pub fn settled(&self) -> bool {
        self.loaded.load(Ordering::Acquire) && self.unsettled.load(Ordering::Acquire) == 0
    }

    /// Bytes the filter holds, for metrics and tests.
    pub fn bytes(&self) -> usize {
        self.bloom.read().bytes()
    }

    /// What to do with a key not in the auth cache.
    pub fn check(&self, digest: &KeyDigest, now: DateTime<Utc>) -> Verdict {
        if !self.settled() || self.bloom.read().may_contain(digest) {
            return Verdict::Lookup;
        }
        // A key refused by the filter is still looked up, at most once a second per node.
        let now_ms = now.timestamp_millis();
        let mut c = self.confirmations.lock();
        let (decision, next) = take_token(c.budget, 1, 1_000, 1, now_ms);
        c.budget = Some(next);
        if decision.allowed {
            c.last = Some((*digest, now_ms));
            Verdict::Confirm
        } else if c
            .last
            .is_some_and(|(d, at)| d == *digest && now_ms.saturating_sub(at) < 1_000)
        {
            // The key being checked: wait for that answer with the others (one query).
            Verdict::Lookup
        } else {
            metrics::counter!("taskgate_key_filter_refusals_total").increment(1);
            Verdict::Refuse
        }
    }

    /// Adds a key the database said is live (one the filter had refused). Under the lock a
    /// load swaps the filter with, so the key lands in whichever filter is kept.
    pub fn add(&self, digest: &KeyDigest) {
        let mut added = self.added_during_rebuild.lock();
        if let Some(added) = added.as_mut() {
            added.push(*digest);
        }
        self.bloom.read().insert(digest);
    }

    /// Loads every live key (before the server answers, and after a resync). On failure the
    /// filter stays unloaded: keys go to the database, as without it.
    pub async fn load(&self, store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<()> {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        *self.added_during_rebuild.lock() = Some(Vec::new());
        let hashes = store.live_key_hashes(KeyHashScope::All, now).await;
        let mut added = self.added_during_rebuild.lock();
        let hashes = match hashes {
            Ok(h) => h,
            Err(e) => {
                *added = None;
                return Err(e.into());
            }
        };
        if self.epoch.load(Ordering::Acquire) != epoch {
            // A newer load started; it will finish the job.
            return Ok(());
        }
        let bloom = Bloom::with_capacity(hashes.len() * 2);
        for d in hashes.iter().filter_map(|h| digest_of(h)) {
            bloom.insert(&d);
        }
        for d in added.take().unwrap_or_default() {
            bloom.insert(&d);
        }
        tracing::debug!(
            keys = hashes.len(),
            bytes = bloom.bytes(),
            "key filter loaded"
        );
        *self.bloom.write() = Arc::new(bloom);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Applies a change event: called from the store's synchronous hook, so the filter is
    /// unsettled before the call that made the change returns; the keys are read back in a
    /// task.
    pub fn on_change(self: &Arc<Self>, event: &ChangeEvent, store: &Arc<dyn Store>) {
        let scope = match event {
            ChangeEvent::EnvKeys { environment_id } => Scope::Environment(environment_id.clone()),
            ChangeEvent::KeysIssued { organization_id } => {
                Scope::Organization(organization_id.clone())
            }
            ChangeEvent::Resync => {
                self.loaded.store(false, Ordering::Release);
                Scope::All
            }
            _ => return,
        };
        self.unsettled.fetch_add(1, Ordering::AcqRel);
        let (this, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            this.read_back(scope, &*store).await;
            this.unsettled.fetch_sub(1, Ordering::AcqRel);
        });
    }

    async fn read_back(&self, scope: Scope, store: &dyn Store) {
        let now = self.clock.now();
        let result = match &scope {
            Scope::All => self.load(store, now).await,
            Scope::Organization(id) => {
                self.add_hashes(store, KeyHashScope::Organization(id), now)
                    .await
            }
            Scope::Environment(id) => {
                self.add_hashes(store, KeyHashScope::Environment(id), now)
                    .await
            }
        };
        if let Err(e) = result {
            // Unloaded, keys go to the database until a reload succeeds.
            self.loaded.store(false, Ordering::Release);
            tracing::warn!(error = %e, "key filter: cannot read keys back; looking every key up until it reloads");
            self.retry_load(store).await;
        }
        if self.bloom.read().full() {
            if let Err(e) = self.load(store, self.clock.now()).await {
                tracing::warn!(error = %e, "key filter: cannot rebuild");
            }
        }
    }

    async fn add_hashes(
        &self,
        store: &dyn Store,
        scope: KeyHashScope<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        for d in store
            .live_key_hashes(scope, now)
            .await?
            .iter()
            .filter_map(|h| digest_of(h))
        {
            self.add(&d);
        }
        Ok(())
    }

    async fn retry_load(&self, store: &dyn Store) {
        for wait in [1u64, 2, 5, 10, 30, 60] {
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            if self.load(store, self.clock.now()).await.is_ok() {
                return;
            }
        }
    }
}

enum Scope {
    All,
    Organization(String),
    Environment(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: u64) -> KeyDigest {
        use sha2::Digest;
        sha2::Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn an_inserted_key_is_always_found() {
        let bloom = Bloom::with_capacity(10_000);
        for i in 0..10_000 {
            bloom.insert(&digest(i));
        }
        assert!((0..10_000).all(|i| bloom.may_contain(&digest(i))));
    }

    #[test]
    fn a_million_keys_fit_in_under_4_mb_with_few_false_positives() {
        let bloom = Bloom::with_capacity(1_000_000);
        assert!(bloom.bytes() < 4_000_000, "{} bytes", bloom.bytes());
        for i in 0..1_000_000 {
            bloom.insert(&digest(i));
        }
        let false_positives = (1_000_000..1_200_000)
            .filter(|i| bloom.may_contain(&digest(*i)))
            .count();
        // Expected about 0.007 %: 13 in 200,000. Under 1 in 2,000 keeps a flood of random keys
        // under one query per thousand requests.
        assert!(false_positives < 100, "{false_positives} false positives");
    }

    #[test]
    fn a_refused_key_is_confirmed_at_most_once_a_second() {
        let filter = KeyFilter::new(Arc::new(taskgate_core::time::SystemClock));
        filter.loaded.store(true, Ordering::Release);
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(filter.check(&digest(1), t), Verdict::Confirm);
        assert_eq!(filter.check(&digest(2), t), Verdict::Refuse);
        assert_eq!(
            filter.check(&digest(3), t + chrono::Duration::milliseconds(999)),
            Verdict::Refuse
        );
        assert_eq!(
            filter.check(&digest(4), t + chrono::Duration::seconds(1)),
            Verdict::Confirm
        );
        filter.add(&digest(2));
        assert_eq!(filter.check(&digest(2), t), Verdict::Lookup);
    }

    #[test]
    fn requests_with_the_key_being_checked_wait_for_its_answer() {
        let filter = KeyFilter::new(Arc::new(taskgate_core::time::SystemClock));
        filter.loaded.store(true, Ordering::Release);
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ms = chrono::Duration::milliseconds;
        assert_eq!(filter.check(&digest(7), t), Verdict::Confirm);
        // A burst with the same key (one just issued on another node): looked up, so that
        // they join the check in flight rather than being refused.
        assert_eq!(filter.check(&digest(7), t + ms(5)), Verdict::Lookup);
        assert_eq!(
            filter.check(&digest(8), t + ms(5)),
            Verdict::Refuse,
            "other keys still are"
        );
        assert_eq!(filter.check(&digest(7), t + ms(999)), Verdict::Lookup);
        assert_eq!(
            filter.check(&digest(7), t + ms(1_000)),
            Verdict::Confirm,
            "a new check"
        );
    }

    #[test]
    fn an_unsettled_filter_refuses_nothing() {
        let filter = KeyFilter::new(Arc::new(taskgate_core::time::SystemClock));
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        // Not loaded yet.
        assert!((0..10).all(|i| filter.check(&digest(i), t) == Verdict::Lookup));
        filter.loaded.store(true, Ordering::Release);
        filter.unsettled.fetch_add(1, Ordering::AcqRel);
        assert!((0..10).all(|i| filter.check(&digest(i), t) == Verdict::Lookup));
    }
}
