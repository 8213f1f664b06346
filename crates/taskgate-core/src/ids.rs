//! Identifiers: row ids, project refs and run ids, from the operating system's CSPRNG.

use rand::rngs::OsRng;
use rand::Rng;

const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from `alphabet` (`gen_range` rejects biased draws).
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    if alphabet.is_empty() {
        return String::new();
    }
    (0..len)
        .map(|_| char::from(alphabet[OsRng.gen_range(0..alphabet.len())]))
        .collect()
}

/// A row id shaped like upstream's cuids: `c` + 24 lowercase alphanumerics.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shapes() {
        let id = new_id();
        assert_eq!(id.len(), 25);
        assert!(id.starts_with('c'));
        let p = new_project_ref();
        assert!(p.starts_with("proj_") && p.len() == 25);
        assert!(p[5..].bytes().all(|b| LOWER_ALNUM.contains(&b)));
        assert!(new_run_friendly_id().starts_with("run_"));
        assert_ne!(new_id(), new_id());
    }
}
