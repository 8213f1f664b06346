//! Identifiers: row ids, project refs and run and batch ids, drawn from the operating system's
//! CSPRNG so none can be guessed from another.

use rand::rngs::OsRng;
use rand::seq::SliceRandom;

/// Lowercase letters and digits: upstream's cuids and friendly ids use this alphabet, and
/// ids stay case-insensitive in URLs and logs.
const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly and independently from `alphabet` (`choose` samples by
/// rejection, so no character is favoured). An empty alphabet yields an empty string.
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    (0..len)
        .filter_map(|_| alphabet.choose(&mut OsRng).copied().map(char::from))
        .collect()
}

/// A row id shaped like upstream's cuids: `c` + 24 lowercase alphanumerics (124 bits).
pub fn new_id() -> String {
    format!("c{}", random_string(LOWER_ALNUM, 24))
}

/// A project's external ref: `proj_` + 20 lowercase alphanumerics.
pub fn new_project_ref() -> String {
    format!("proj_{}", random_string(LOWER_ALNUM, 20))
}

/// A run's friendly id: `run_` + 24 lowercase alphanumerics.
pub fn new_run_friendly_id() -> String {
    format!("run_{}", random_string(LOWER_ALNUM, 24))
}

/// A batch's friendly id: `batch_` + 24 lowercase alphanumerics.
pub fn new_batch_friendly_id() -> String {
    format!("batch_{}", random_string(LOWER_ALNUM, 24))
}

/// An execution snapshot's friendly id: `snapshot_` + 24 lowercase alphanumerics.
pub fn new_snapshot_friendly_id() -> String {
    format!("snapshot_{}", random_string(LOWER_ALNUM, 24))
}

/// A registered worker's friendly id: `worker_` + 24 lowercase alphanumerics.
pub fn new_worker_friendly_id() -> String {
    format!("worker_{}", random_string(LOWER_ALNUM, 24))
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn shaped(id: &str, prefix: &str, body_len: usize) -> bool {
        id.strip_prefix(prefix)
            .is_some_and(|b| b.len() == body_len && b.bytes().all(|c| LOWER_ALNUM.contains(&c)))
    }

    #[test]
    fn ids_have_their_shapes() {
        assert!(shaped(&new_id(), "c", 24));
        assert!(shaped(&new_project_ref(), "proj_", 20));
        assert!(shaped(&new_run_friendly_id(), "run_", 24));
        assert!(shaped(&new_batch_friendly_id(), "batch_", 24));
        assert!(shaped(&new_snapshot_friendly_id(), "snapshot_", 24));
        assert!(shaped(&new_worker_friendly_id(), "worker_", 24));
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids: HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn random_strings_use_only_and_all_of_the_alphabet() {
        assert_eq!(random_string(b"", 10), "");
        assert_eq!(random_string(b"ab", 0), "");
        assert_eq!(random_string(b"x", 5), "xxxxx");
        let s = random_string(b"abc", 30_000);
        let mut counts: HashMap<char, usize> = HashMap::new();
        for c in s.chars() {
            *counts.entry(c).or_default() += 1;
        }
        assert_eq!(counts.len(), 3);
        // Each symbol expects 10 000 draws (σ ≈ 82); ±1 000 fails only on a broken sampler.
        for (c, n) in counts {
            assert!((9_000..=11_000).contains(&n), "{c}: {n}");
        }
    }
}
