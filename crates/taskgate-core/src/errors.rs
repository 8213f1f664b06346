//! Error groups: the fingerprint that puts failed runs with the same problem into one group,
//! the fields derived from a run's error, how worker versions compare, and the lifecycle of a
//! group (resolved, ignored, reopened). No IO: the stores record what these functions decide.
//!
//! The fingerprint is upstream's (`calculateErrorFingerprint`), byte for byte: the same error
//! gets the same group id on taskgate as on trigger.dev. [`FINGERPRINT_VERSION`] is stored
//! with every group, so that a later algorithm can map old fingerprints onto new ones.

use std::cmp::Ordering;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use regex::Regex;
use serde_json::Value;

use crate::hash::{digest_hex, sha256};

/// The fingerprint algorithm of [`fingerprint`]; stored with every group.
pub const FINGERPRINT_VERSION: i32 = 1;
/// Prefix of an error group's id (`error_<fingerprint>`).
pub const ID_PREFIX: &str = "error_";
/// Characters of a group's sample message (upstream's 500).
const MAX_MESSAGE: usize = 500;
/// Characters of a group's sample stack (upstream's 2000).
const MAX_STACK: usize = 2000;

/// JavaScript's `\s`: ASCII whitespace and the Unicode spaces JS counts.
const JS_SPACE: &str = r"\t\n\x0B\x0C\r \u{A0}\u{1680}\u{2000}-\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}\u{FEFF}";

/// The message normalisations, in upstream's order, with JS's ASCII `\d` and `\b`.
fn message_rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let b = r"(?-u:\b)";
        let rules: Vec<(String, &'static str)> = vec![
            (
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                    .into(),
                "<uuid>",
            ),
            ("run_[a-zA-Z0-9]+".into(), "<run-id>"),
            (format!("{b}[a-z]+_[a-zA-Z0-9]{{8,}}{b}"), "<id>"),
            (
                r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z?".into(),
                "<timestamp>",
            ),
            (format!("{b}[0-9]{{10,13}}{b}"), "<timestamp>"),
            (format!("https?://[^{JS_SPACE}]+"), "<url>"),
            (format!("{b}[0-9]{{4,}}{b}"), "<id>"),
            (format!("(?:/[^/{JS_SPACE}]+){{2,}}"), "<path>"),
            (r"[A-Z]:\\(?:[^\\]+\\)+[^\\]+".into(), "<path>"),
            (
                format!("{b}[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Z|a-z]{{2,}}{b}"),
                "<email>",
            ),
            ("0x[0-9a-fA-F]{8,}".into(), "<addr>"),
            (r#""[^"]{20,}""#.into(), "\"<string>\""),
            ("'[^']{20,}'".into(), "'<string>'"),
        ];
        rules
            .into_iter()
            .filter_map(|(p, r)| Regex::new(&p).ok().map(|re| (re, r)))
            .collect()
    })
}

/// The stack normalisations, applied to each of the first five lines.
fn stack_rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            (":[0-9]+:[0-9]+".to_string(), ":_:_"),
            (r"(?-u:\b)[0-9]+(?-u:\b)".to_string(), "_"),
            (format!("(?:/[^/{JS_SPACE}]+)+/([^/{JS_SPACE}]+)"), "$1"),
        ]
        .into_iter()
        .filter_map(|(p, r)| Regex::new(&p).ok().map(|re| (re, r)))
        .collect()
    })
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript's `String(v)` for a JSON value.
fn js_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Null => String::new(),
                other => js_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}

/// The first truthy of `keys` in `error`, as JS would stringify it.
fn first_truthy(error: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| error.get(*k))
        .find(|v| truthy(v))
        .map(js_string)
}

/// A message with ids, times, URLs, paths, emails, addresses and long quoted strings
/// replaced by placeholders, so that one problem met with different data is one group.
pub fn normalize_message(message: &str) -> String {
    let mut out = message.to_string();
    for (re, replacement) in message_rules() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *replacement).into_owned();
        }
    }
    out
}

/// A stack's first five lines with line numbers, numbers and directories removed, joined
/// with `|`.
pub fn normalize_stack(stack: &str) -> String {
    stack
        .split('\n')
        .take(5)
        .map(|line| {
            let mut l = line.to_string();
            for (re, replacement) in stack_rules() {
                l = re.replace_all(&l, *replacement).into_owned();
            }
            l.trim().to_string()
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("|")
}

/// The fingerprint of a run's error: 16 lowercase hex characters, or `""` when the error is
/// not a JSON object (such a run is not grouped).
pub fn fingerprint(error: &Value) -> String {
    let Value::Object(e) = error else {
        return String::new();
    };
    let kind = first_truthy(e, &["type", "name"]).unwrap_or_else(|| "Error".into());
    let message = first_truthy(e, &["message", "name", "raw"]).unwrap_or_default();
    let stack = first_truthy(e, &["stack", "stacktrace"]).unwrap_or_default();
    let normalized_stack = if stack.is_empty() {
        String::new()
    } else {
        normalize_stack(&stack)
    };
    let input = format!("{kind}:{}:{normalized_stack}", normalize_message(&message));
    digest_hex(&sha256(input.as_bytes()))[..16].to_string()
}

/// `error_<fingerprint>`.
pub fn group_id(fingerprint: &str) -> String {
    format!("{ID_PREFIX}{fingerprint}")
}

/// The fingerprint an error id names: `error_<fp>` or a bare fingerprint. `None` for
/// anything else (more than one `_`, an empty part, or not 16 lowercase hex characters).
pub fn parse_group_id(id: &str) -> Option<String> {
    let fp = match id.strip_prefix(ID_PREFIX) {
        Some(rest) => rest,
        None if id.contains('_') => return None,
        None => id,
    };
    let valid = fp.len() == 16 && fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| fp.to_string())
}

/// The string at `key` when it is a non-empty string.
fn non_empty<'a>(e: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    e.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What a group shows of an error: its type, message and stack, as upstream derives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorSample {
    /// `name`, else `code`, else `Error`.
    pub error_type: String,
    /// `message` (500 bytes), else `name`, else `raw` (500 bytes), else `Unknown error`.
    pub error_message: String,
    /// The first 2000 bytes of `stackTrace`.
    pub stack: String,
}

/// The sample fields of a run's error (any JSON; a non-object gives the defaults).
pub fn sample(error: &Value) -> ErrorSample {
    let empty = serde_json::Map::new();
    let e = error.as_object().unwrap_or(&empty);
    let error_type = non_empty(e, "name")
        .or_else(|| non_empty(e, "code"))
        .unwrap_or("Error")
        .to_string();
    let error_message = non_empty(e, "message")
        .map(|m| cut(m, MAX_MESSAGE))
        .or_else(|| non_empty(e, "name"))
        .or_else(|| non_empty(e, "raw").map(|r| cut(r, MAX_MESSAGE)))
        .unwrap_or("Unknown error")
        .to_string();
    let stack = non_empty(e, "stackTrace")
        .map(|s| cut(s, MAX_STACK))
        .unwrap_or("")
        .to_string();
    ErrorSample {
        error_type,
        error_message,
        stack,
    }
}

/// The numeric parts of a worker version (`v1.2.3-beta` → `[1, 2, 3]`; a part that is not a
/// number counts as 0).
fn version_parts(v: &str) -> Vec<u64> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next().unwrap_or("");
    core.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Orders two worker versions as the releases they are: `20261127.3` before `20261127.10`,
/// a missing part counting as 0; equal numbers fall back to the text, so the order is total.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (pa, pb) = (version_parts(a), version_parts(b));
    let n = pa.len().max(pb.len());
    for i in 0..n {
        let (x, y) = (
            pa.get(i).copied().unwrap_or(0),
            pb.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.cmp(b)
}

/// Whether `version` is `at_least` or later, counting numbers only (`v1.2` equals `1.2`).
fn version_at_least(version: &str, at_least: &str) -> bool {
    let (pa, pb) = (version_parts(version), version_parts(at_least));
    let n = pa.len().max(pb.len());
    for i in 0..n {
        let (x, y) = (
            pa.get(i).copied().unwrap_or(0),
            pb.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => {}
            other => return other == Ordering::Greater,
        }
    }
    true
}

/// The newest `limit` of `versions`, newest first (upstream's `affectedVersions`).
pub fn newest_versions(mut versions: Vec<String>, limit: usize) -> Vec<String> {
    versions.retain(|v| !v.is_empty());
    versions.sort_by(|a, b| compare_versions(b, a));
    versions.dedup();
    versions.truncate(limit);
    versions
}

/// Bucket sizes of occurrence counts, as stored (`granularity`).
///
/// Besides minutes, an occurrence counts in spans of 2^k hours for every k up to
/// [`SPAN_LEVELS`](granularity::SPAN_LEVELS) − 1, each aligned to the epoch: a window then
/// reads a handful of buckets per group whatever its length (see [`window_buckets`]).
pub mod granularity {
    pub const MINUTE: i32 = 0;
    /// One bucket (start 0) per group and version, never purged.
    pub const ALL_TIME: i32 = 3;
    /// The granularity of spans of 2^k hours is `SPAN + k`.
    pub const SPAN: i32 = 10;
    /// Spans of 1, 2, 4, … 1,024 hours (42 days and a bit).
    pub const SPAN_LEVELS: i32 = 11;

    /// The granularity of spans of 2^`level` hours.
    pub const fn span(level: i32) -> i32 {
        SPAN + level
    }

    /// Every granularity of bounded buckets (all but all time), with its bucket length (ms),
    /// shortest first.
    pub fn with_lengths() -> impl Iterator<Item = (i32, i64)> {
        std::iter::once((MINUTE, super::MINUTE_MS))
            .chain((0..SPAN_LEVELS).map(|level| (span(level), super::HOUR_MS << level)))
    }
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Buckets per occurrence and version: its minute, every span, all time.
pub const BUCKETS_PER_OCCURRENCE: usize = granularity::SPAN_LEVELS as usize + 2;

/// The buckets an occurrence at `at_ms` counts in: its minute, the span of every level that
/// holds it, and all time. Each is `(granularity, bucket start)`.
pub fn buckets_of(at_ms: i64) -> [(i32, i64); BUCKETS_PER_OCCURRENCE] {
    let mut out = [(granularity::ALL_TIME, 0); BUCKETS_PER_OCCURRENCE];
    out[0] = (granularity::MINUTE, at_ms - at_ms.rem_euclid(MINUTE_MS));
    for level in 0..granularity::SPAN_LEVELS {
        let size = HOUR_MS << level;
        out[1 + level as usize] = (granularity::span(level), at_ms - at_ms.rem_euclid(size));
    }
    out
}

/// How an activity chart of a window draws its bars from stored buckets: one bar per bucket
/// of one granularity, so a chart reads one index range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    pub granularity: i32,
    /// The first bar's bucket start (ms), aligned to the bar size.
    pub first: i64,
    /// A bar's length (ms).
    pub size: i64,
    pub bars: usize,
}

impl Series {
    /// The smallest stored bucket size (a minute, or a span of 2^k hours) that draws the
    /// window from `from_ms` to `to_ms` in at most `max_bars` bars; the first bar holds
    /// `from_ms` and the last `to_ms`. `None` for an empty window.
    pub fn of(from_ms: i64, to_ms: i64, max_bars: usize) -> Option<Series> {
        if to_ms < from_ms || max_bars == 0 {
            return None;
        }
        let mut chosen = None;
        for (granularity, size) in granularity::with_lengths() {
            let first = from_ms - from_ms.rem_euclid(size);
            let bars = usize::try_from((to_ms - first) / size + 1).unwrap_or(usize::MAX);
            chosen = Some(Series {
                granularity,
                first,
                size,
                bars,
            });
            if bars <= max_bars {
                break;
            }
        }
        // Beyond the longest span, the latest `max_bars` spans.
        chosen.map(|s| {
            if s.bars <= max_bars {
                s
            } else {
                let skip = (s.bars - max_bars) as i64;
                Series {
                    first: s.first + skip * s.size,
                    bars: max_bars,
                    ..s
                }
            }
        })
    }

    /// The end (exclusive) of the last bar.
    pub fn end(&self) -> i64 {
        self.first + self.size * self.bars as i64
    }

    /// The bar a bucket start falls in, if any.
    pub fn bar_of(&self, bucket: i64) -> Option<usize> {
        (bucket >= self.first && bucket < self.end())
            .then(|| ((bucket - self.first) / self.size) as usize)
    }
}

/// The fewest buckets whose counts add up to the occurrences of the minutes from `from_ms`'s
/// to `to_ms`'s, both included (upstream counts whole minutes). Each is `(granularity, first
/// bucket start, end, sign)`, the end exclusive: the window's count is the sum of the counts
/// in every range times its sign.
///
/// Single minutes up to the first whole hour, then, from each hour on, the longest span that
/// starts there (a span of 2^k hours starts at multiples of 2^k hours) and fits, so the spans
/// double in length towards the middle of the window and halve towards its end, and single
/// minutes after the last whole hour. A long window thus reads at most about twenty buckets
/// per group, a day typically two or three.
///
/// With `open_end` (for a window that ends now), the last span may reach past the end, which
/// spares the halving spans and the trailing minutes, and the minutes from the end to the
/// span's end are subtracted: nothing is normally stored there, so that costs a read of an
/// empty range, and the count stays exact if something is.
pub fn window_buckets(from_ms: i64, to_ms: i64, open_end: bool) -> Vec<(i32, i64, i64, i64)> {
    let floor = |t: i64, unit: i64| t - t.rem_euclid(unit);
    let start = floor(from_ms, MINUTE_MS);
    let end = floor(to_ms, MINUTE_MS).saturating_add(MINUTE_MS);
    let mut out = Vec::new();
    if start >= end {
        return out;
    }
    let first_hour = match floor(start, HOUR_MS) {
        h if h == start => start,
        h => h.saturating_add(HOUR_MS),
    };
    let last_hour = if open_end { end } else { floor(end, HOUR_MS) };
    if first_hour >= last_hour {
        out.push((granularity::MINUTE, start, end, 1));
        return out;
    }
    out.push((granularity::MINUTE, start, first_hour, 1));
    let mut at = first_hour;
    while at < last_hour {
        // The longest span that starts at `at` (and, unless the end is open, fits).
        let mut level = granularity::SPAN_LEVELS - 1;
        loop {
            let size = HOUR_MS << level;
            let aligned = at.rem_euclid(size) == 0;
            if level == 0 || (aligned && (open_end || at.saturating_add(size) <= last_hour)) {
                break;
            }
            level -= 1;
        }
        out.push((granularity::span(level), at, at + 1, 1));
        at = at.saturating_add(HOUR_MS << level);
    }
    if open_end {
        out.push((granularity::MINUTE, end, at, -1));
    } else {
        out.push((granularity::MINUTE, last_hour, end, 1));
    }
    out.retain(|(_, a, b, _)| a < b);
    out
}

/// A group's triage status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    Unresolved,
    Resolved,
    Ignored,
}

impl GroupStatus {
    /// As stored (`UNRESOLVED`, …).
    pub fn as_db(self) -> &'static str {
        match self {
            GroupStatus::Unresolved => "UNRESOLVED",
            GroupStatus::Resolved => "RESOLVED",
            GroupStatus::Ignored => "IGNORED",
        }
    }

    /// As the API spells it (`unresolved`, …).
    pub fn as_api(self) -> &'static str {
        match self {
            GroupStatus::Unresolved => "unresolved",
            GroupStatus::Resolved => "resolved",
            GroupStatus::Ignored => "ignored",
        }
    }

    pub fn from_db(s: &str) -> Option<GroupStatus> {
        match s {
            "UNRESOLVED" => Some(GroupStatus::Unresolved),
            "RESOLVED" => Some(GroupStatus::Resolved),
            "IGNORED" => Some(GroupStatus::Ignored),
            _ => None,
        }
    }

    pub fn from_api(s: &str) -> Option<GroupStatus> {
        match s {
            "unresolved" => Some(GroupStatus::Unresolved),
            "resolved" => Some(GroupStatus::Resolved),
            "ignored" => Some(GroupStatus::Ignored),
            _ => None,
        }
    }
}

/// A group's triage state: what resolve and ignore set, and what an occurrence or the clock
/// may undo.
#[derive(Debug, Clone, PartialEq)]
pub struct TriageState {
    pub status: GroupStatus,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_in_version: Option<String>,
    pub resolved_by: Option<String>,
    pub ignored_at: Option<DateTime<Utc>>,
    pub ignored_until: Option<DateTime<Utc>>,
    pub ignored_until_occurrence_rate: Option<f64>,
    pub ignored_until_total_occurrences: Option<i64>,
    /// The group's total when it was ignored (for `ignored_until_total_occurrences`).
    pub ignored_at_occurrence_count: Option<i64>,
    pub ignored_reason: Option<String>,
    pub ignored_by_user_id: Option<String>,
}

impl TriageState {
    /// Unresolved, with nothing set: a new group, or one reopened or unresolved.
    pub fn unresolved() -> TriageState {
        TriageState {
            status: GroupStatus::Unresolved,
            resolved_at: None,
            resolved_in_version: None,
            resolved_by: None,
            ignored_at: None,
            ignored_until: None,
            ignored_until_occurrence_rate: None,
            ignored_until_total_occurrences: None,
            ignored_at_occurrence_count: None,
            ignored_reason: None,
            ignored_by_user_id: None,
        }
    }

    /// Resolved now by `actor` (optionally "in" a version: only that version or a later one
    /// reopens it).
    pub fn resolved(now: DateTime<Utc>, version: Option<String>, actor: Option<String>) -> Self {
        TriageState {
            status: GroupStatus::Resolved,
            resolved_at: Some(now),
            resolved_in_version: version,
            resolved_by: actor,
            ..TriageState::unresolved()
        }
    }

    /// Ignored now by `actor` until the conditions of `ignore` (none: indefinitely).
    pub fn ignored(
        now: DateTime<Utc>,
        ignore: &Ignore,
        total_now: i64,
        actor: Option<String>,
    ) -> Self {
        TriageState {
            status: GroupStatus::Ignored,
            ignored_at: Some(now),
            ignored_until: ignore
                .duration_ms
                .and_then(|ms| now.checked_add_signed(Duration::milliseconds(ms))),
            ignored_until_occurrence_rate: ignore.occurrence_rate,
            ignored_until_total_occurrences: ignore.total_occurrences,
            ignored_at_occurrence_count: ignore.total_occurrences.map(|_| total_now),
            ignored_reason: ignore.reason.clone(),
            ignored_by_user_id: actor,
            ..TriageState::unresolved()
        }
    }

    /// The state a read reports at `now`: an ignore whose time has passed is already over,
    /// even before the periodic task records it.
    pub fn as_of(&self, now: DateTime<Utc>) -> TriageState {
        match self.expired_ignore(now) {
            true => TriageState::unresolved(),
            false => self.clone(),
        }
    }

    fn expired_ignore(&self, now: DateTime<Utc>) -> bool {
        self.status == GroupStatus::Ignored && self.ignored_until.is_some_and(|until| until <= now)
    }
}

/// An ignore request's conditions (all optional; none ignores indefinitely).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ignore {
    /// For this long, in milliseconds.
    pub duration_ms: Option<i64>,
    /// Until more than this many occurrences arrive within one minute.
    pub occurrence_rate: Option<f64>,
    /// Until this many new occurrences have arrived.
    pub total_occurrences: Option<i64>,
    pub reason: Option<String>,
}

/// Why a group left its resolved or ignored state on its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Reopening {
    /// A resolved group failed again (in `version`, when the run had one).
    Regressed { version: Option<String> },
    /// An ignored group's duration passed.
    IgnoreExpired,
    /// More occurrences than allowed arrived within a minute.
    RateExceeded { per_minute: i64 },
    /// The allowed number of new occurrences arrived.
    TotalReached { since_ignored: i64 },
}

impl Reopening {
    /// The activity entry's action.
    pub fn action(&self) -> &'static str {
        match self {
            Reopening::Regressed { .. } => "regressed",
            _ => "unignored",
        }
    }

    /// What the activity entry says about why.
    pub fn detail(&self) -> String {
        match self {
            Reopening::Regressed { version: Some(v) } => format!("failed again in version {v}"),
            Reopening::Regressed { version: None } => "failed again".into(),
            Reopening::IgnoreExpired => "the ignore's duration passed".into(),
            Reopening::RateExceeded { per_minute } => {
                format!("{per_minute} occurrences within a minute")
            }
            Reopening::TotalReached { since_ignored } => {
                format!("{since_ignored} occurrences since it was ignored")
            }
        }
    }
}

/// A new occurrence of a group, as the store counted it.
#[derive(Debug, Clone)]
pub struct Occurrence<'a> {
    /// The failed run's worker version, if it had one.
    pub version: Option<&'a str>,
    /// The group's total, this occurrence included.
    pub total: i64,
    /// Occurrences in the current minute, this one included.
    pub this_minute: i64,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

/// Whether an occurrence reopens the group:
/// - a resolved group reopens at once, unless it was resolved in a version and the run is of
///   an earlier one (a run without a version reopens it);
/// - an ignored group reopens when its duration has passed, when more than its rate arrived
///   within a minute, or when its allowed number of new occurrences has arrived.
pub fn on_occurrence(state: &TriageState, o: &Occurrence<'_>) -> Option<Reopening> {
    match state.status {
        GroupStatus::Unresolved => None,
        GroupStatus::Resolved => {
            let earlier = match (&state.resolved_in_version, o.version) {
                (Some(fixed), Some(v)) => !version_at_least(v, fixed),
                _ => false,
            };
            (!earlier).then(|| Reopening::Regressed {
                version: o.version.map(str::to_string),
            })
        }
        GroupStatus::Ignored => {
            if state.expired_ignore(o.at) {
                return Some(Reopening::IgnoreExpired);
            }
            if let Some(rate) = state.ignored_until_occurrence_rate {
                if o.this_minute as f64 > rate {
                    return Some(Reopening::RateExceeded {
                        per_minute: o.this_minute,
                    });
                }
            }
            if let (Some(allowed), Some(at_ignore)) = (
                state.ignored_until_total_occurrences,
                state.ignored_at_occurrence_count,
            ) {
                let since = o.total - at_ignore;
                if since >= allowed {
                    return Some(Reopening::TotalReached {
                        since_ignored: since,
                    });
                }
            }
            None
        }
    }
}

/// Whether the clock alone reopens the group (an ignore whose duration has passed).
pub fn on_tick(state: &TriageState, now: DateTime<Utc>) -> Option<Reopening> {
    state
        .expired_ignore(now)
        .then_some(Reopening::IgnoreExpired)
}

#[cfg(test)]
mod tests;
