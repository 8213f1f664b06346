//! Buckets kept in this process. A bucket's whole state is one `AtomicU64` updated by
//! compare-and-swap with the pure transitions of [`taskgate_core::ratelimit`], so requests
//! sharing a bucket never wait on a lock; the map from identifier to bucket is sharded and
//! read-locked (a write lock is taken only to add a bucket). A caller that counts many
//! requests in one bucket (a cached key's environment, a cached JWT) can hold it and skip the
//! map. Keys are hashed with foldhash, seeded per process: the keys are environment ids and
//! SHA-256 digests of headers, which a client cannot steer into collisions without the seed,
//! and SipHash cost more than the bucket itself.
//!
//! Memory stays bounded: past [`CAPACITY`] buckets, those that are full again (the same as
//! never used) are dropped; if a flood of distinct credentials keeps them all busy, the map
//! starts over, which forgets some spent tokens rather than growing without bound. A dropped
//! bucket is marked retired, so that whoever holds it counts in the map's bucket instead.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::RwLock;
use taskgate_core::ratelimit::{
    bucket_full_at, count_in_window, take_token, BucketState, Decision, LimitConfig, WindowState,
};

/// Buckets held at most before idle ones are dropped.
pub const CAPACITY: usize = 100_000;
const SHARDS: usize = 16;
/// A bucket's state: never used.
const UNUSED: u64 = u64::MAX;
/// A bucket's state: dropped from the map, not to be counted in.
const RETIRED: u64 = u64::MAX - 1;
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// The largest time (or window number) the upper 40 bits hold, short of the all-ones that
/// the two sentinel states above use.
const TIME_MAX: i64 = (1 << 40) - 2;

/// One bucket. Held outside the map ([`LocalBuckets::hold`]), it is counted in with
/// [`LocalBuckets::take_held`].
#[derive(Debug)]
pub struct Slot {
    state: AtomicU64,
    /// When the bucket is full again (milliseconds since the epoch): droppable after that.
    idle_at: AtomicI64,
}

type Shard = HashMap<Box<str>, Arc<Slot>, RandomState>;

/// The buckets of one node.
pub struct LocalBuckets {
    shards: Vec<RwLock<Shard>>,
    /// Chooses a key's shard; each shard's map has its own seed, so the keys of one shard
    /// still spread over its map.
    hasher: RandomState,
    len: AtomicUsize,
    /// Times are stored relative to this (milliseconds since the epoch), in 40 bits.
    base_ms: i64,
}

impl Slot {
    /// Retires the bucket if it is full again at `now_ms` and nobody counts in it meanwhile.
    fn retire_if_idle(&self, now_ms: i64) -> bool {
        let state = self.state.load(Ordering::Acquire);
        self.idle_at.load(Ordering::Relaxed) <= now_ms
            && self
                .state
                .compare_exchange(state, RETIRED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}

impl LocalBuckets {
    pub fn new(now_ms: i64) -> Self {
        LocalBuckets {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            hasher: RandomState::default(),
            len: AtomicUsize::new(0),
            // A day back, so a clock stepped back a little still fits.
            base_ms: now_ms.saturating_sub(86_400_000),
        }
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one request against the bucket `key` under `config`.
    pub fn take(&self, key: &str, config: &LimitConfig, now_ms: i64) -> Decision {
        let shard = self.shard(key);
        // The common case: the bucket exists; use it under the shared read lock (which keeps
        // it from being retired meanwhile).
        if let Some(decision) = shard
            .read()
            .get(key)
            .and_then(|slot| self.take_from(slot, config, now_ms))
        {
            return decision;
        }
        loop {
            let slot = self.slot(shard, key, now_ms);
            if let Some(decision) = self.take_from(&slot, config, now_ms) {
                return decision;
            }
        }
    }

    /// The bucket `key`, to count requests in with [`LocalBuckets::take_held`].
    pub fn hold(&self, key: &str, now_ms: i64) -> Arc<Slot> {
        let shard = self.shard(key);
        if let Some(slot) = shard.read().get(key) {
            return slot.clone();
        }
        self.slot(shard, key, now_ms)
    }

    /// [`LocalBuckets::take`] in `slot`, the bucket `key` as [`LocalBuckets::hold`] gave it;
    /// in the map's bucket if that one has since been dropped.
    pub fn take_held(&self, slot: &Slot, key: &str, config: &LimitConfig, now_ms: i64) -> Decision {
        self.take_from(slot, config, now_ms)
            .unwrap_or_else(|| self.take(key, config, now_ms))
    }

    /// `None` if the bucket was retired.
    fn take_from(&self, slot: &Slot, config: &LimitConfig, now_ms: i64) -> Option<Decision> {
        let mut current = slot.state.load(Ordering::Acquire);
        loop {
            if current == RETIRED {
                return None;
            }
            let (decision, next, idle_at) = self.step(current, config, now_ms);
            match slot.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    slot.idle_at.store(idle_at, Ordering::Relaxed);
                    return Some(decision);
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// One transition on a packed state: the decision, the next state and when it is idle.
    fn step(&self, packed: u64, config: &LimitConfig, now_ms: i64) -> (Decision, u64, i64) {
        match config {
            LimitConfig::TokenBucket {
                refill_rate,
                interval,
                max_tokens,
            } => {
                let state = (packed != UNUSED).then(|| BucketState {
                    tokens: (packed & COUNT_MASK) as u32,
                    refilled_at_ms: self.base_ms.saturating_add((packed >> COUNT_BITS) as i64),
                });
                let (decision, next) =
                    take_token(state, *refill_rate, interval.millis(), *max_tokens, now_ms);
                let offset = next
                    .refilled_at_ms
                    .saturating_sub(self.base_ms)
                    .clamp(0, TIME_MAX);
                let packed =
                    ((offset as u64) << COUNT_BITS) | u64::from(next.tokens).min(COUNT_MASK);
                let idle_at = bucket_full_at(next, *refill_rate, interval.millis(), *max_tokens);
                (decision, packed, idle_at)
            }
            LimitConfig::FixedWindow { window, tokens } => {
                let state = (packed != UNUSED).then_some(WindowState {
                    window: (packed >> COUNT_BITS) as i64,
                    used: (packed & COUNT_MASK) as u32,
                });
                let (decision, next) = count_in_window(state, *tokens, window.millis(), now_ms);
                let packed = ((next.window.clamp(0, TIME_MAX) as u64) << COUNT_BITS)
                    | u64::from(next.used).min(COUNT_MASK);
                (decision, packed, decision.reset_ms)
            }
        }
    }

    fn shard(&self, key: &str) -> &RwLock<Shard> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn slot(&self, shard: &RwLock<Shard>, key: &str, now_ms: i64) -> Arc<Slot> {
        if self.len() >= CAPACITY {
            self.sweep(now_ms);
        }
        let mut map = shard.write();
        map.entry(key.into())
            .or_insert_with(|| {
                self.len.fetch_add(1, Ordering::Relaxed);
                Arc::new(Slot {
                    state: AtomicU64::new(UNUSED),
                    idle_at: AtomicI64::new(i64::MAX),
                })
            })
            .clone()
    }

    /// Drops buckets that are full again; if that is not enough, every bucket.
    fn sweep(&self, now_ms: i64) {
        for shard in &self.shards {
            let mut map = shard.write();
            let before = map.len();
            map.retain(|_, slot| !slot.retire_if_idle(now_ms));
            self.len.fetch_sub(before - map.len(), Ordering::Relaxed);
        }
        if self.len() >= CAPACITY * 9 / 10 {
            tracing::warn!(
                buckets = self.len(),
                "more busy rate-limit buckets than the node keeps; starting over (a flood of distinct credentials?)"
            );
            for shard in &self.shards {
                let mut map = shard.write();
                self.len.fetch_sub(map.len(), Ordering::Relaxed);
                for (_, slot) in map.drain() {
                    slot.state.store(RETIRED, Ordering::Release);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskgate_core::ratelimit::Interval;

    const NOW: i64 = 1_800_000_000_000;

    fn bucket(refill: u32, interval: &str, max: u32) -> LimitConfig {
        LimitConfig::TokenBucket {
            refill_rate: refill,
            interval: Interval::parse(interval).unwrap(),
            max_tokens: max,
        }
    }

    #[test]
    fn a_bucket_admits_its_burst_then_refills() {
        let buckets = LocalBuckets::new(NOW);
        let config = bucket(2, "1s", 3);
        let allowed = (0..5)
            .filter(|_| buckets.take("env", &config, NOW).allowed)
            .count();
        assert_eq!(allowed, 3);
        let d = buckets.take("env", &config, NOW + 999);
        assert!(!d.allowed);
        assert_eq!(d.reset_ms, NOW + 1_000);
        let d = buckets.take("env", &config, NOW + 1_000);
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        assert!(
            buckets.take("other", &config, NOW).allowed,
            "buckets are independent"
        );
    }

    #[test]
    fn a_fixed_window_counts_per_window() {
        let buckets = LocalBuckets::new(NOW);
        let config = LimitConfig::FixedWindow {
            window: Interval::parse("1m").unwrap(),
            tokens: 2,
        };
        let start = NOW - NOW % 60_000;
        let decisions: Vec<bool> = (0..3)
            .map(|_| buckets.take("jwt", &config, start).allowed)
            .collect();
        assert_eq!(decisions, [true, true, false]);
        assert!(buckets.take("jwt", &config, start + 60_000).allowed);
    }

    #[test]
    fn concurrent_requests_never_overspend_a_bucket() {
        let buckets = Arc::new(LocalBuckets::new(NOW));
        let config = Arc::new(bucket(1, "1h", 1_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (buckets, config) = (buckets.clone(), config.clone());
                std::thread::spawn(move || {
                    (0..500)
                        .filter(|_| buckets.take("env", &config, NOW).allowed)
                        .count()
                })
            })
            .collect();
        let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(allowed, 1_000);
    }

    #[test]
    fn a_held_bucket_is_the_maps_bucket() {
        let buckets = LocalBuckets::new(NOW);
        let config = bucket(1, "1h", 2);
        let held = buckets.hold("env", NOW);
        assert!(buckets.take_held(&held, "env", &config, NOW).allowed);
        assert!(buckets.take("env", &config, NOW).allowed);
        assert!(!buckets.take_held(&held, "env", &config, NOW).allowed);
    }

    #[test]
    fn a_held_bucket_dropped_from_the_map_counts_in_the_maps_new_one() {
        let buckets = LocalBuckets::new(NOW);
        let config = bucket(1, "1s", 2);
        let held = buckets.hold("env", NOW);
        assert_eq!(buckets.take_held(&held, "env", &config, NOW).remaining, 1);
        for i in 1..CAPACITY {
            buckets.take(&format!("k{i}"), &config, NOW);
        }
        // A second later every bucket is full again: the next new one drops them all.
        buckets.take("late", &config, NOW + 1_000);
        assert_eq!(buckets.len(), 1);
        let later = NOW + 1_000;
        assert_eq!(buckets.take_held(&held, "env", &config, later).remaining, 1);
        assert_eq!(buckets.take("env", &config, later).remaining, 0);
        assert!(
            !buckets.take_held(&held, "env", &config, later).allowed,
            "the holder and the map count in one bucket"
        );
    }

    #[test]
    fn idle_buckets_are_dropped_when_the_map_is_full() {
        let buckets = LocalBuckets::new(NOW);
        let config = bucket(1, "1s", 1);
        for i in 0..CAPACITY {
            buckets.take(&format!("k{i}"), &config, NOW);
        }
        assert_eq!(buckets.len(), CAPACITY);
        // A second later every bucket is full again: the next new one makes room.
        buckets.take("late", &config, NOW + 1_000);
        assert_eq!(buckets.len(), 1);
    }
}
