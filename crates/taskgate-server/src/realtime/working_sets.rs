//! [`WorkingSets`]: what each many-run feed handle of this node has been sent (run →
//! version), so a live poll answers only what is new or changed. Kept a few minutes after its
//! last use, bounded in size; a node without a handle's set falls back to the offset's time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a working set is kept after its last use, and how many runs all of them may
/// hold together (about 100 bytes each); past that they are dropped and polls fall back to
/// the offset's time.
const SET_TTL: Duration = Duration::from_secs(300);
const MAX_TRACKED_RUNS: usize = 200_000;

/// What a handle has been sent: each run's version.
pub type Seen = HashMap<String, i64>;

/// The working sets of this node's handles, keyed by environment and handle (a handle from
/// another environment never reads this one's).
#[derive(Default)]
pub struct WorkingSets {
    inner: Mutex<Sets>,
}

#[derive(Default)]
struct Sets {
    map: HashMap<String, (Instant, Seen)>,
    runs: usize,
}

impl WorkingSets {
    pub fn get(&self, key: &str) -> Option<Seen> {
        let mut sets = self.inner.lock();
        let entry = sets.map.get_mut(key)?;
        if entry.0.elapsed() > SET_TTL {
            return None;
        }
        entry.0 = Instant::now();
        Some(entry.1.clone())
    }

    pub fn put(&self, key: &str, seen: Seen) {
        let mut sets = self.inner.lock();
        if let Some((_, old)) = sets.map.remove(key) {
            sets.runs -= old.len();
        }
        if sets.runs + seen.len() > MAX_TRACKED_RUNS {
            sets.map.retain(|_, (at, _)| at.elapsed() <= SET_TTL);
            sets.runs = sets.map.values().map(|(_, s)| s.len()).sum();
            if sets.runs + seen.len() > MAX_TRACKED_RUNS {
                sets.map.clear();
                sets.runs = 0;
            }
        }
        sets.runs += seen.len();
        sets.map.insert(key.to_string(), (Instant::now(), seen));
    }

    /// Handles with a working set (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_sets_are_bounded() {
        let sets = WorkingSets::default();
        let big: Seen = (0..MAX_TRACKED_RUNS / 2)
            .map(|i| (i.to_string(), 1))
            .collect();
        sets.put("e:1", big.clone());
        sets.put("e:2", big.clone());
        assert_eq!(sets.len(), 2);
        sets.put("e:3", big);
        assert!(sets.inner.lock().runs <= MAX_TRACKED_RUNS);
        assert!(sets.get("e:3").is_some(), "the newest set is kept");
    }
}
