//! Data that an older taskgate stored, and what each backend's migrations must make of it.
//! The backends' migration tests write the "before" rows with the older migrations applied,
//! run the rest, and check the result here; the SQL is the same on both.

use std::path::Path;

/// Copies the migrations in `source` numbered up to `last` (`0006_….sql` is 6) into `dir`, so
/// that a test can build the database an older taskgate left behind.
pub fn migrations_up_to(source: &Path, last: u32, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: u32 = name[..4].parse().unwrap();
        if version <= last {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
}

/// One hour in milliseconds.
const HOUR: i64 = 3_600_000;

/// An error group for the counts below (its environment is not stored: the migration tests
/// write it with foreign keys off).
pub const SPANS_GROUP_SQL: &str = "INSERT INTO error_groups (id, environment_id, task_identifier,
        fingerprint, fingerprint_version, error_type, error_message, sample_stack, first_seen,
        last_seen, occurrence_count, rate_minute, rate_count, status, updated_at)
    VALUES ('grp', 'env', 'task', 'fp', 1, 'Error', 'boom', '', 0, 0, 6, 0, 0, 'UNRESOLVED', 0)";

/// One count of group `grp`: binds granularity, bucket, count.
pub const SPANS_COUNT_SQL: &str =
    "INSERT INTO error_counts (environment_id, version, granularity, bucket, group_id, count)
     VALUES ('env', '*', $1, $2, 'grp', $3)";

/// Up to migration 6, counts were kept per minute (0), hour (1), day (2) and all time (3):
/// `(granularity, bucket, count)` of six occurrences in three hours of two days.
pub const SPANS_BEFORE: [(i32, i64, i64); 7] = [
    (0, 5 * HOUR + 180_000, 1),
    (1, 5 * HOUR, 2),
    (1, 6 * HOUR, 3),
    (1, 1030 * HOUR, 1),
    (2, 0, 5),
    (2, 1008 * HOUR, 1),
    (3, 0, 6),
];

/// Reads every count back as `(granularity, bucket, count)`.
pub const SPANS_READ_SQL: &str =
    "SELECT granularity, bucket, count FROM error_counts ORDER BY granularity, bucket";

/// Migration 7 turns hours and days into spans of 2^k hours (granularity 10 + k): every
/// length counts all six occurrences, each in the span that holds its hour; minutes and all
/// time are kept.
pub fn check_spans_after(rows: &[(i32, i64, i64)]) {
    let count = |granularity: i32, bucket: i64| {
        rows.iter()
            .find(|r| r.0 == granularity && r.1 == bucket)
            .map(|r| r.2)
    };
    assert!(rows.iter().all(|r| r.0 != 1 && r.0 != 2), "{rows:?}");
    assert_eq!(count(0, 5 * HOUR + 180_000), Some(1));
    assert_eq!(count(3, 0), Some(6));
    for level in 0..11 {
        let total: i64 = rows.iter().filter(|r| r.0 == 10 + level).map(|r| r.2).sum();
        assert_eq!(total, 6, "spans of 2^{level} hours: {rows:?}");
    }
    assert_eq!(count(10, 6 * HOUR), Some(3));
    assert_eq!(count(11, 4 * HOUR), Some(2));
    assert_eq!(count(12, 4 * HOUR), Some(5));
    assert_eq!(count(13, 0), Some(5));
    assert_eq!(count(20, 0), Some(5));
    assert_eq!(count(20, 1024 * HOUR), Some(1));
}
