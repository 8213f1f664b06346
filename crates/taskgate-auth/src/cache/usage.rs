//! Use counters of revoked keys in their grace window: counted without a lock on the hot path,
//! taken in batches by the usage job, and put back when a write fails.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use taskgate_store::RevokedKeyUsage;

use super::AuthCache;

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

impl AuthCache {
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
}

#[cfg(test)]
mod grace_use_tests {
    use std::time::Duration;

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
