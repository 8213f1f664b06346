//! The fingerprint's vectors (checked against upstream's function), its normalisations, the
//! derived fields, version order and the lifecycle rules.

use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::minutes(minute)
}

#[test]
fn upstreams_test_vectors() {
    let cases = [
        (
            json!({"type":"BUILT_IN_ERROR","name":"TypeError","message":"Cannot read properties of undefined (reading 'x')","stackTrace":"TypeError: x\n    at f (a.ts:1:2)"}),
            "131c37334a407e47",
        ),
        (
            json!({"type":"BUILT_IN_ERROR","name":"RangeError","message":"Cannot read properties of undefined (reading 'x')","stackTrace":"…"}),
            "131c37334a407e47",
        ),
        (
            json!({"type":"BUILT_IN_ERROR","name":"ListMessagesError","message":"","stackTrace":"…"}),
            "e1fc1074d0b44274",
        ),
        (
            json!({"type":"STRING_ERROR","raw":"boom for user 12345"}),
            "120ca518cbb995ad",
        ),
        (
            json!({"type":"STRING_ERROR","raw":"boom for user 67890"}),
            "120ca518cbb995ad",
        ),
        (
            json!({"type":"CUSTOM_ERROR","raw":"{\"code\":42}"}),
            "e27056c40508deee",
        ),
        (
            json!({"type":"INTERNAL_ERROR","code":"TASK_PROCESS_OOM_KILLED"}),
            "e8020520f548344d",
        ),
        (
            json!({"type":"INTERNAL_ERROR","code":"MAX_DURATION_EXCEEDED","message":"Run exceeded maximum compute time (maxDuration) of 5 seconds"}),
            "44c63c483133a819",
        ),
        (
            json!({"type":"DatabaseError","message":"Connection timeout","stack":"at db.connect (db.ts:123:45)"}),
            "351907ded50118fb",
        ),
    ];
    for (error, want) in cases {
        assert_eq!(fingerprint(&error), want, "{error}");
    }
}

#[test]
fn upstreams_normalisation_example() {
    assert_eq!(
        normalize_message(
            "Failed run_abc123 for 550e8400-e29b-41d4-a716-446655440000 at 2024-03-01T15:30:45Z see https://x.io/a/b email a@b.com id 123456 path /var/log/app.log addr 0xdeadbeef00"
        ),
        "Failed <run-id> for <uuid> at <timestamp> see <url> email <email> id <id> path <path> addr <addr>"
    );
}

#[test]
fn each_normalisation() {
    let cases = [
        ("user_abcdefgh1 left", "<id> left"),
        ("at 1772366400000 ms", "at <timestamp> ms"),
        ("code 1234", "code <id>"),
        ("code 123", "code 123"),
        // As in JS, the last segment runs to the next backslash or the end.
        (r"C:\Users\me\file.txt broke", "<path>"),
        (
            "said \"a very long quoted string here\"",
            "said \"<string>\"",
        ),
        ("said 'a very long quoted string here'", "said '<string>'"),
        ("said \"short\"", "said \"short\""),
        ("ts 2024-03-01T15:30:45.123Z.", "ts <timestamp>."),
        // JS's \b and \d are ASCII: a digit run after a letter is not a word of its own.
        ("abc12345", "abc12345"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_message(input), want, "{input}");
    }
}

#[test]
fn stacks_keep_five_lines_without_numbers_or_directories() {
    let stack = "Error: x\n    at f (/app/src/a.ts:10:5)\n    at g (/app/src/b.ts:20:7)\n\n    at h (c.ts:1:1)\n    at i (d.ts:2:2)\n    at j (e.ts:3:3)";
    assert_eq!(
        normalize_stack(stack),
        "Error: x|at f (a.ts:_:_)|at g (b.ts:_:_)|at h (c.ts:_:_)"
    );
}

#[test]
fn non_objects_are_not_grouped() {
    for v in [json!(null), json!("boom"), json!(42), json!([1, 2])] {
        assert_eq!(fingerprint(&v), "");
    }
}

#[test]
fn javascript_string_conversion() {
    // `type` is read as JS's String() would: a number, an array, an object.
    let a = fingerprint(&json!({"type": 7, "message": "m"}));
    let b = fingerprint(&json!({"type": "7", "message": "m"}));
    assert_eq!(a, b);
    let c = fingerprint(&json!({"type": {"x": 1}, "message": "m"}));
    let d = fingerprint(&json!({"type": "[object Object]", "message": "m"}));
    assert_eq!(c, d);
    // Falsy values are skipped: an empty type falls back to the name.
    let e = fingerprint(&json!({"type": "", "name": "N", "message": "m"}));
    let f = fingerprint(&json!({"name": "N", "message": "m"}));
    assert_eq!(e, f);
}

#[test]
fn derived_fields_follow_upstream() {
    let s = sample(
        &json!({"type":"BUILT_IN_ERROR","name":"TypeError","message":"bad","stackTrace":"TypeError: bad\n at x"}),
    );
    assert_eq!(
        (s.error_type.as_str(), s.error_message.as_str()),
        ("TypeError", "bad")
    );
    assert_eq!(s.stack, "TypeError: bad\n at x");
    let s = sample(&json!({"type":"INTERNAL_ERROR","code":"TASK_PROCESS_OOM_KILLED"}));
    assert_eq!(
        (s.error_type.as_str(), s.error_message.as_str()),
        ("TASK_PROCESS_OOM_KILLED", "Unknown error")
    );
    let s = sample(&json!({"type":"STRING_ERROR","raw":"é".repeat(400)}));
    assert_eq!(s.error_type, "Error");
    assert_eq!(s.error_message.len(), 500, "cut at a character boundary");
    let s = sample(&json!({"type":"BUILT_IN_ERROR","name":"ListMessagesError","message":""}));
    assert_eq!(s.error_message, "ListMessagesError");
}

#[test]
fn group_ids() {
    assert_eq!(group_id("131c37334a407e47"), "error_131c37334a407e47");
    assert_eq!(
        parse_group_id("error_131c37334a407e47").as_deref(),
        Some("131c37334a407e47")
    );
    assert_eq!(
        parse_group_id("131c37334a407e47").as_deref(),
        Some("131c37334a407e47")
    );
    for bad in [
        "",
        "error_",
        "error_x_y",
        "error_131C37334A407E47",
        "run_131c37334a407e47",
        "131c37334a407e4",
        "error_131c37334a407e47ff",
    ] {
        assert_eq!(parse_group_id(bad), None, "{bad}");
    }
}

#[test]
fn versions_order_as_releases() {
    assert_eq!(
        compare_versions("20261127.3", "20261127.10"),
        Ordering::Less
    );
    assert_eq!(compare_versions("v1.2.0", "1.10"), Ordering::Less);
    assert_eq!(compare_versions("1.2.3-beta", "1.2.3"), Ordering::Greater);
    assert_eq!(
        newest_versions(
            vec![
                "20261127.3".into(),
                "20261127.10".into(),
                "".into(),
                "20261126.9".into(),
                "20261127.3".into()
            ],
            5
        ),
        vec!["20261127.10", "20261127.3", "20261126.9"]
    );
}

fn occurrence(version: Option<&str>, total: i64, this_minute: i64, minute: i64) -> Occurrence<'_> {
    Occurrence {
        version,
        total,
        this_minute,
        at: at(minute),
    }
}

#[test]
fn a_resolved_group_reopens_on_a_new_occurrence() {
    let resolved = TriageState::resolved(at(0), None, Some("u1".into()));
    assert_eq!(
        on_occurrence(&resolved, &occurrence(Some("20261127.1"), 5, 1, 1)),
        Some(Reopening::Regressed {
            version: Some("20261127.1".into())
        })
    );
}

#[test]
fn resolved_in_a_version_reopens_only_from_that_version_on() {
    let resolved = TriageState::resolved(at(0), Some("20261127.3".into()), None);
    let reopens = |v: Option<&str>| on_occurrence(&resolved, &occurrence(v, 5, 1, 1)).is_some();
    assert!(
        !reopens(Some("20261127.2")),
        "an earlier version is counted only"
    );
    assert!(reopens(Some("20261127.3")));
    assert!(reopens(Some("20261127.10")), "10 is after 3");
    assert!(reopens(None), "a run without a version reopens it");
}

#[test]
fn an_ignore_ends_on_each_of_its_conditions() {
    let ignore = |i: Ignore| TriageState::ignored(at(0), &i, 100, None);
    let timed = ignore(Ignore {
        duration_ms: Some(60_000),
        ..Ignore::default()
    });
    assert_eq!(on_occurrence(&timed, &occurrence(None, 101, 1, 0)), None);
    assert_eq!(
        on_occurrence(&timed, &occurrence(None, 101, 1, 1)),
        Some(Reopening::IgnoreExpired)
    );
    assert_eq!(on_tick(&timed, at(1)), Some(Reopening::IgnoreExpired));
    assert_eq!(timed.as_of(at(1)).status, GroupStatus::Unresolved);
    assert_eq!(timed.as_of(at(0)).status, GroupStatus::Ignored);

    let rate = ignore(Ignore {
        occurrence_rate: Some(3.0),
        ..Ignore::default()
    });
    assert_eq!(on_occurrence(&rate, &occurrence(None, 103, 3, 1)), None);
    assert_eq!(
        on_occurrence(&rate, &occurrence(None, 104, 4, 1)),
        Some(Reopening::RateExceeded { per_minute: 4 })
    );

    let total = ignore(Ignore {
        total_occurrences: Some(10),
        ..Ignore::default()
    });
    assert_eq!(on_occurrence(&total, &occurrence(None, 109, 1, 1)), None);
    assert_eq!(
        on_occurrence(&total, &occurrence(None, 110, 1, 1)),
        Some(Reopening::TotalReached { since_ignored: 10 })
    );

    let forever = ignore(Ignore::default());
    assert_eq!(
        on_occurrence(&forever, &occurrence(None, 10_000, 500, 10_000)),
        None
    );
    assert_eq!(on_tick(&forever, at(1_000_000)), None);
}

#[test]
fn an_ignore_duration_that_overflows_never_ends() {
    let s = TriageState::ignored(
        at(0),
        &Ignore {
            duration_ms: Some(i64::MAX),
            ..Ignore::default()
        },
        0,
        None,
    );
    assert_eq!(s.ignored_until, None);
}

#[test]
fn windows_decompose_into_minutes_and_spans() {
    let t = |d: i64, h: i64, m: i64| ((d * 24 + h) * 60 + m) * 60_000;
    let span = |level: i32, at: i64| (granularity::span(level), at, at + 1, 1);
    // Within one hour: minutes only, the last minute included.
    assert_eq!(
        window_buckets(t(0, 1, 5) + 30_000, t(0, 1, 9), false),
        vec![(granularity::MINUTE, t(0, 1, 5), t(0, 1, 10), 1)]
    );
    // Hours 23 to 74: spans double while they start on their own multiple, then halve.
    assert_eq!(
        window_buckets(t(0, 22, 30), t(3, 2, 15), false),
        vec![
            (granularity::MINUTE, t(0, 22, 30), t(0, 23, 0), 1),
            span(0, t(0, 23, 0)),
            span(3, t(1, 0, 0)),
            span(5, t(1, 8, 0)),
            span(3, t(2, 16, 0)),
            span(1, t(3, 0, 0)),
            (granularity::MINUTE, t(3, 2, 0), t(3, 2, 16), 1),
        ]
    );
    // Open at the end: the last span runs past it, less the minutes after the end.
    assert_eq!(
        window_buckets(t(0, 22, 30), t(3, 2, 15), true),
        vec![
            (granularity::MINUTE, t(0, 22, 30), t(0, 23, 0), 1),
            span(0, t(0, 23, 0)),
            span(3, t(1, 0, 0)),
            span(5, t(1, 8, 0)),
            span(6, t(2, 16, 0)),
            (granularity::MINUTE, t(3, 2, 16), t(5, 8, 0), -1),
        ]
    );
    assert!(window_buckets(t(1, 0, 0), t(0, 0, 0), false).is_empty());
    // A year reads few buckets: at most two spans a level and the longest ones in between.
    let year = window_buckets(t(0, 0, 7), t(365, 13, 59), false);
    assert!(
        year.len() <= 2 * granularity::SPAN_LEVELS as usize + 10,
        "{}",
        year.len()
    );
}

#[test]
fn an_occurrence_counts_in_its_minute_every_span_and_all_time() {
    let at = 1_700_000_123_456;
    let buckets = buckets_of(at);
    assert_eq!(buckets[0], (granularity::MINUTE, 1_700_000_100_000));
    assert_eq!(buckets[1], (granularity::span(0), 1_699_999_200_000));
    assert_eq!(
        buckets[BUCKETS_PER_OCCURRENCE - 1],
        (granularity::ALL_TIME, 0)
    );
    for (level, (g, start)) in (0..).zip(&buckets[1..BUCKETS_PER_OCCURRENCE - 1]) {
        let size = 3_600_000i64 << level;
        assert_eq!(*g, granularity::span(level));
        assert!(*start <= at && at < start + size && start % size == 0);
    }
}

proptest! {
    /// Every minute of the window is counted once, and no minute outside it is, whether or
    /// not the window is open at its end.
    #[test]
    fn window_buckets_count_each_minute_once(from in 0i64..20_000_000_000, len in 0i64..400_000_000, probe in 0i64..20_400_000_000, open_end: bool) {
        let to = from + len;
        let ranges = window_buckets(from, to, open_end);
        let minute = probe - probe.rem_euclid(60_000);
        let inside = minute >= from - from.rem_euclid(60_000) && minute <= to - to.rem_euclid(60_000);
        let counted: i64 = ranges.iter().filter(|(g, a, b, _)| {
            let start = buckets_of(minute).iter().find(|(bg, _)| bg == g).map(|(_, s)| *s).unwrap_or(-1);
            start >= *a && start < *b
        }).map(|(_, _, _, sign)| sign).sum();
        prop_assert_eq!(counted, i64::from(inside));
    }

    /// The fingerprint is stable under every normalisation it claims: the same message with
    /// other ids, times, URLs, numbers, emails or addresses is the same group.
    #[test]
    fn the_fingerprint_ignores_what_it_normalises(
        uuid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        run in "run_[a-zA-Z0-9]{1,24}",
        number in "[1-9][0-9]{3,8}",
        millis in "1[0-9]{12}",
        host in "[a-z]{1,10}\\.(com|io|dev)",
        user in "[a-z]{1,10}",
        addr in "0x[0-9a-f]{8,16}",
        time in "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z",
    ) {
        let message = |u: &str, r: &str, n: &str, m: &str, h: &str, e: &str, a: &str, t: &str| {
            json!({"type":"BUILT_IN_ERROR","name":"Error","message":
                format!("failed {u} {r} user {n} at {m} see https://{h}/x mail {e}@{h} ptr {a} when {t}")})
        };
        let one = fingerprint(&message(&uuid, &run, &number, &millis, &host, &user, &addr, &time));
        let other = fingerprint(&message(
            "00000000-0000-0000-0000-000000000000", "run_zzz", "9999", "1000000000000",
            "example.org", "someone", "0xffffffff", "2000-01-01T00:00:00Z",
        ));
        prop_assert_eq!(one, other);
    }

    #[test]
    fn fingerprints_are_16_hex_characters_and_never_panic(message in ".{0,200}", kind in ".{0,20}", stack in ".{0,300}") {
        let fp = fingerprint(&json!({"type": kind, "message": message, "stack": stack}));
        prop_assert_eq!(fp.len(), 16);
        prop_assert!(fp.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let _ = sample(&json!({"name": kind, "message": message, "stackTrace": stack}));
    }

    #[test]
    fn version_order_is_total(a in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[a-z]{1,4})?", b in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}") {
        prop_assert_eq!(compare_versions(&a, &b), compare_versions(&b, &a).reverse());
        prop_assert_eq!(compare_versions(&a, &a), Ordering::Equal);
    }
}

mod series {
    use super::super::{granularity, Series};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    #[test]
    fn an_hour_is_drawn_in_minutes_and_a_day_in_hours() {
        let s = Series::of(10 * HOUR, 11 * HOUR, 61).unwrap();
        assert_eq!(
            (s.granularity, s.size, s.bars),
            (granularity::MINUTE, MIN, 61)
        );
        let s = Series::of(10 * HOUR + 5 * MIN, 34 * HOUR + 5 * MIN, 48).unwrap();
        assert_eq!((s.granularity, s.size), (granularity::span(0), HOUR));
        assert_eq!((s.first, s.bars), (10 * HOUR, 25));
        assert_eq!(s.bar_of(10 * HOUR), Some(0));
        assert_eq!(s.bar_of(34 * HOUR), Some(24));
        assert_eq!(s.bar_of(35 * HOUR), None);
        assert_eq!(s.bar_of(9 * HOUR), None);
    }

    #[test]
    fn a_week_is_drawn_in_spans_of_four_hours() {
        let s = Series::of(0, 7 * 24 * HOUR, 48).unwrap();
        assert_eq!((s.granularity, s.size), (granularity::span(2), 4 * HOUR));
        assert!(s.bars <= 48);
        assert!(s.first <= 0 && s.end() > 7 * 24 * HOUR);
    }

    #[test]
    fn windows_past_the_longest_span_keep_the_latest_bars() {
        let end = 100_000 * HOUR;
        let s = Series::of(0, end, 10).unwrap();
        assert_eq!(s.size, 1024 * HOUR);
        assert_eq!(s.bars, 10);
        assert!(s.bar_of(end - end.rem_euclid(1024 * HOUR)).is_some());
        assert_eq!(Series::of(5, 4, 10), None);
    }
}
