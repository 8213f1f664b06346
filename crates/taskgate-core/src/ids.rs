//! Identifiers: row ids, project refs and run and batch ids, drawn from the operating system's
//! CSPRNG so none can be guessed from another; and their types, so that an environment's id
//! cannot be passed where a run's is expected. Each is a string on the wire and in the
//! database (with the `sqlx` feature, it binds and reads as one), and reads as a `&str`.

use rand::rngs::OsRng;
use rand::seq::SliceRandom;

/// Declares an identifier type: a `String` underneath, serialised as one, that reads as a
/// `&str` (`Deref`, `AsRef`, `Borrow`), compares with strings and, with the `sqlx` feature,
/// is bound and decoded as a text column.
macro_rules! typed_id {
    ($($(#[$m:meta])* $name:ident;)*) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0, buf)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(Self(<String as sqlx::Decode<'r, DB>>::decode(value)?))
            }
        }
    )*};
}

typed_id! {
    /// An organization's row id.
    OrgId;
    /// A project's row id.
    ProjectId;
    /// A project's external ref (`proj_…`), what clients name it by.
    ProjectRef;
    /// An environment's row id (a branch is an environment of its own).
    EnvironmentId;
    /// A user's row id.
    UserId;
    /// A run's row id (realtime row key, list tiebreak).
    RunId;
    /// A run's friendly id (`run_…`), what clients name it by.
    RunFriendlyId;
    /// An execution snapshot's id (`snapshot_…`).
    SnapshotId;
    /// A registered worker's row id.
    WorkerId;
    /// A registered worker's friendly id (`worker_…`), what dequeued messages name.
    WorkerFriendlyId;
    /// A batch's row id.
    BatchId;
    /// A batch's friendly id (`batch_…`).
    BatchFriendlyId;
    /// A waitpoint's row id.
    WaitpointId;
    /// A waitpoint's friendly id (`waitpoint_…`), what clients and task code name it by.
    WaitpointFriendlyId;
    /// A deployment's row id.
    DeploymentId;
    /// A deployment's friendly id (`deployment_…`).
    DeploymentFriendlyId;
    /// A schedule's row id.
    ScheduleId;
    /// A schedule's friendly id (`sched_…`), what clients name it by.
    ScheduleFriendlyId;
    /// A queue's friendly id (`queue_…`), what `queues.retrieve("queue_…")` names it by.
    QueueFriendlyId;
}

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

/// A waitpoint's friendly id: `waitpoint_` + 24 lowercase alphanumerics.
pub fn new_waitpoint_friendly_id() -> String {
    format!("waitpoint_{}", random_string(LOWER_ALNUM, 24))
}

/// A deployment's friendly id: `deployment_` + 24 lowercase alphanumerics.
pub fn new_deployment_friendly_id() -> String {
    format!("deployment_{}", random_string(LOWER_ALNUM, 24))
}

/// A schedule's friendly id: `sched_` + 24 lowercase alphanumerics.
pub fn new_schedule_friendly_id() -> String {
    format!("sched_{}", random_string(LOWER_ALNUM, 24))
}

/// A queue's friendly id: `queue_` + 24 lowercase alphanumerics.
pub fn new_queue_friendly_id() -> String {
    format!("queue_{}", random_string(LOWER_ALNUM, 24))
}

/// A deployment's short code, what its dashboard link names: 8 lowercase alphanumerics.
pub fn new_short_code() -> String {
    random_string(LOWER_ALNUM, 8)
}

/// An execution snapshot's friendly id: `snapshot_` + 24 lowercase alphanumerics that sort
/// in the order they were made: 11 of microseconds since the epoch, 4 of this process's
/// sequence (two in one microsecond still sort), then 9 random ones. The deployed run
/// controller compares snapshot ids as strings and drops one that sorts before the one it
/// holds.
pub fn new_snapshot_friendly_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let micros = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed) % 36u64.pow(4);
    format!(
        "snapshot_{}{}{}",
        base36(micros, 11),
        base36(seq, 4),
        random_string(LOWER_ALNUM, 9)
    )
}

/// `n` in lowercase base 36, zero-padded to `width` digits (the highest digits dropped if it
/// does not fit).
fn base36(mut n: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for d in digits.iter_mut().rev() {
        *d = LOWER_ALNUM[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(digits).unwrap_or_default()
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
    fn snapshot_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..2000).map(|_| new_snapshot_friendly_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(base36(35, 2), "0z");
        assert_eq!(base36(36, 2), "10");
    }

    #[test]
    fn typed_ids_read_as_strings_and_travel_as_them() {
        let run = RunFriendlyId::new("run_abc");
        assert_eq!(run, "run_abc");
        assert_eq!(run.as_str(), "run_abc");
        assert_eq!(&*run, "run_abc", "reads as a &str");
        assert_eq!(format!("{run}"), "run_abc");
        assert_eq!(serde_json::to_string(&run).unwrap(), "\"run_abc\"");
        let back: RunFriendlyId = serde_json::from_str("\"run_abc\"").unwrap();
        assert_eq!(back, run);
        let mut map: HashMap<String, u8> = HashMap::new();
        map.insert(run.to_string(), 1);
        assert_eq!(map.get(run.as_str()), Some(&1));
        assert_eq!(String::from(run.clone()), "run_abc");
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
