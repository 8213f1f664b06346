//! Schedules: a cron expression (five fields, with `L`, `W` and `#`) read in an IANA time
//! zone, the times it names, the optional `window` that spreads a schedule's fires, and what a
//! fire carries to the task.
//!
//! Everything here is a pure function of its inputs. Expressions are parsed by `croner` and
//! time zones come from the IANA database in `chrono-tz`, so daylight-saving changes follow
//! the zone: a time skipped by a spring-forward change fires at the first instant after the
//! gap, and a time repeated by a fall-back change fires once.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How many upcoming times a fire's payload lists (upstream's `upcoming`).
pub const UPCOMING: usize = 10;
/// Longest expression accepted.
const MAX_EXPRESSION_LEN: usize = 256;
/// Longest `window` as a duration: a day.
const MAX_WINDOW_MINUTES: u32 = 24 * 60;
/// The default time zone.
pub const UTC: &str = "UTC";

/// Why a schedule's definition was refused; the text is the API's answer.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("Invalid cron expression: {0}")]
    Cron(String),
    #[error("Invalid IANA timezone: {0:?}")]
    Timezone(String),
    #[error("Invalid window {0:?}: use minutes or hours up to 24h (\"30m\", \"2h\") or a percentage of the interval (\"30%\")")]
    Window(String),
}

/// A parsed, valid cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    timezone: Tz,
    cron: Cron,
}

/// A time zone by IANA name (`UTC`, `Europe/London`).
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::Timezone(name.to_string()))
}

/// Every IANA time zone name, sorted, optionally without `UTC` (`GET /api/v1/timezones`).
pub fn timezones(exclude_utc: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|n| !(exclude_utc && (*n == "UTC" || *n == "Etc/UTC")))
        .collect();
    names.sort_unstable();
    names
}

impl CronSchedule {
    /// Parses `expression` (five fields: minute, hour, day of month, month, day of week;
    /// names such as `MON` and `JAN`, `L`, `W` and `#` allowed) in `timezone`. An expression
    /// that never matches (`0 0 31 2 *`) is refused.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let expression = expression.trim();
        if expression.is_empty() || expression.len() > MAX_EXPRESSION_LEN {
            return Err(ScheduleError::Cron(format!(
                "it must be 1 to {MAX_EXPRESSION_LEN} characters"
            )));
        }
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(ScheduleError::Cron(format!(
                "{expression:?} has {fields} fields; use five (minute hour day-of-month month day-of-week)"
            )));
        }
        let tz = parse_timezone(timezone)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .sloppy_ranges(true)
            .build()
            .parse(expression)
            .map_err(|e| ScheduleError::Cron(format!("{expression:?}: {e}")))?;
        let schedule = CronSchedule {
            expression: expression.to_string(),
            timezone: tz,
            cron,
        };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(ScheduleError::Cron(format!(
                "{expression:?} never matches a date"
            )));
        }
        Ok(schedule)
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's IANA name.
    pub fn timezone(&self) -> &'static str {
        self.timezone.name()
    }

    /// The expression in words ("At 03:00, on the last day of the month.").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The first time strictly after `after` that the expression names, in its time zone.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next `n` times strictly after `after`, in order.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            match self.next_after(at) {
                Some(t) => {
                    out.push(t);
                    at = t;
                }
                None => break,
            }
        }
        out
    }
}

/// A schedule's `window`: its fires spread over up to this much time after each nominal time,
/// each schedule at its own fixed phase, so many schedules on one expression do not all start
/// in the same second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Up to this many minutes (at most a day).
    Minutes(u32),
    /// Up to this percentage (1 to 100) of the interval to the next nominal time.
    Percent(u32),
}

impl Window {
    /// Parses `"30m"`, `"2h"` (up to 24 hours) or `"30%"`.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let bad = || ScheduleError::Window(text.to_string());
        let t = text.trim();
        let (digits, unit) = t.split_at(t.len().saturating_sub(1));
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 5 {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        let w = match unit {
            "m" => Window::Minutes(n),
            "h" => Window::Minutes(n.saturating_mul(60)),
            "%" => Window::Percent(n),
            _ => return Err(bad()),
        };
        match w {
            Window::Minutes(m) if (1..=MAX_WINDOW_MINUTES).contains(&m) => Ok(w),
            Window::Percent(p) if (1..=100).contains(&p) => Ok(w),
            _ => Err(bad()),
        }
    }

    /// When a fire nominally at `nominal` (followed by `next`) runs, at `phase` (0 ≤ phase < 1)
    /// of the window; never before `nominal`, and always before `next`.
    pub fn effective(
        &self,
        nominal: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        phase: f64,
    ) -> DateTime<Utc> {
        let span_ms = match (self, next) {
            (Window::Minutes(m), _) => i64::from(*m) * 60_000,
            (Window::Percent(p), Some(next)) => {
                (next - nominal).num_milliseconds() * i64::from(*p) / 100
            }
            (Window::Percent(_), None) => 0,
        };
        // Never reach the next nominal time.
        let interval = next.map_or(i64::MAX, |n| (n - nominal).num_milliseconds());
        let span = span_ms.min(interval.saturating_sub(1)).max(0);
        let offset = (span as f64 * phase.clamp(0.0, 1.0)) as i64;
        nominal + chrono::Duration::milliseconds(offset.min(span.saturating_sub(1)).max(0))
    }
}

/// A schedule's fixed phase within its window, from 0 (inclusive) to 1 (exclusive): an HMAC
/// of its environment and key, so it stays put across restarts and nodes.
pub fn window_phase(environment_id: &str, key: &str) -> f64 {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(b"taskgate schedule window") else {
        return 0.0;
    };
    mac.update(environment_id.as_bytes());
    mac.update(b"\0");
    mac.update(key.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// What a scheduled run receives, before it is encoded for the SDK.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledPayload {
    pub schedule_id: String,
    /// `DECLARATIVE` or `IMPERATIVE`.
    pub schedule_type: String,
    /// The nominal time of this fire.
    pub timestamp: DateTime<Utc>,
    /// The nominal time of the fire before it, if there was one.
    pub last_timestamp: Option<DateTime<Utc>>,
    pub external_id: Option<String>,
    pub timezone: String,
    /// The next [`UPCOMING`] nominal times.
    pub upcoming: Vec<DateTime<Utc>>,
}

/// An ISO time as JavaScript's `Date.prototype.toISOString` writes it.
fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ScheduledPayload {
    /// The payload as `application/super+json`, which the SDK decodes back into `Date`s
    /// (and an absent `lastTimestamp` into `undefined`).
    pub fn to_superjson(&self) -> String {
        let mut values = serde_json::Map::new();
        values.insert("timestamp".into(), serde_json::json!(["Date"]));
        let mut json = serde_json::json!({
            "scheduleId": self.schedule_id,
            "type": self.schedule_type,
            "timestamp": iso(self.timestamp),
            "timezone": self.timezone,
            "upcoming": self.upcoming.iter().map(|t| iso(*t)).collect::<Vec<_>>(),
        });
        match self.last_timestamp {
            Some(t) => {
                json["lastTimestamp"] = serde_json::json!(iso(t));
                values.insert("lastTimestamp".into(), serde_json::json!(["Date"]));
            }
            None => {
                json["lastTimestamp"] = serde_json::Value::Null;
                values.insert("lastTimestamp".into(), serde_json::json!(["undefined"]));
            }
        }
        if let Some(e) = &self.external_id {
            json["externalId"] = serde_json::json!(e);
        }
        for i in 0..self.upcoming.len() {
            values.insert(format!("upcoming.{i}"), serde_json::json!(["Date"]));
        }
        serde_json::json!({ "json": json, "meta": { "values": values } }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Offset, TimeZone};
    use proptest::prelude::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("a valid time")
    }

    fn next(expr: &str, tz: &str, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        CronSchedule::parse(expr, tz)
            .expect("valid")
            .upcoming(after, n)
    }

    #[test]
    fn every_minute_is_strictly_after() {
        assert_eq!(
            next("* * * * *", UTC, utc(2026, 1, 1, 10, 0), 2),
            vec![utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10, 2)]
        );
    }

    #[test]
    fn last_day_of_month_follows_the_calendar() {
        assert_eq!(
            next("0 3 L * *", UTC, utc(2028, 1, 15, 0, 0), 3),
            vec![
                utc(2028, 1, 31, 3, 0),
                utc(2028, 2, 29, 3, 0),
                utc(2028, 3, 31, 3, 0)
            ]
        );
        // The last Friday of the month.
        assert_eq!(
            next("0 0 * * 5L", UTC, utc(2026, 4, 1, 0, 0), 1),
            vec![utc(2026, 4, 24, 0, 0)]
        );
    }

    #[test]
    fn steps_ranges_and_names() {
        assert_eq!(
            next("*/15 9-10 * * MON-FRI", UTC, utc(2026, 3, 6, 10, 40), 3),
            // Friday 10:45, then Monday 09:00 and 09:15.
            vec![
                utc(2026, 3, 6, 10, 45),
                utc(2026, 3, 9, 9, 0),
                utc(2026, 3, 9, 9, 15)
            ]
        );
        assert_eq!(
            next("5/20 * * * *", UTC, utc(2026, 1, 1, 0, 0), 3),
            vec![
                utc(2026, 1, 1, 0, 5),
                utc(2026, 1, 1, 0, 25),
                utc(2026, 1, 1, 0, 45)
            ]
        );
    }

    #[test]
    fn london_across_both_daylight_saving_changes() {
        // 29 March 2026: 01:00 GMT becomes 02:00 BST.
        assert_eq!(
            next("0 9 * * *", "Europe/London", utc(2026, 3, 28, 12, 0), 2),
            vec![utc(2026, 3, 29, 8, 0), utc(2026, 3, 30, 8, 0)]
        );
        // 01:30 does not exist that night: it fires at the first instant after the gap.
        assert_eq!(
            next("30 1 * * *", "Europe/London", utc(2026, 3, 28, 12, 0), 2),
            vec![utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
        );
        // 25 October 2026: 02:00 BST becomes 01:00 GMT; 01:30 happens twice, fires once.
        assert_eq!(
            next("30 1 * * *", "Europe/London", utc(2026, 10, 24, 12, 0), 2),
            vec![utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
        );
    }

    #[test]
    fn new_york_across_both_daylight_saving_changes() {
        // 8 March 2026: 02:00 EST becomes 03:00 EDT.
        assert_eq!(
            next("0 8 * * *", "America/New_York", utc(2026, 3, 7, 0, 0), 2),
            vec![utc(2026, 3, 7, 13, 0), utc(2026, 3, 8, 12, 0)]
        );
        // 1 November 2026: 02:00 EDT becomes 01:00 EST.
        assert_eq!(
            next("0 8 * * *", "America/New_York", utc(2026, 10, 31, 0, 0), 2),
            vec![utc(2026, 10, 31, 12, 0), utc(2026, 11, 1, 13, 0)]
        );
        let hourly = next("0 * * * *", "America/New_York", utc(2026, 11, 1, 4, 30), 3);
        assert_eq!(
            hourly,
            vec![
                utc(2026, 11, 1, 5, 0),
                utc(2026, 11, 1, 6, 0),
                utc(2026, 11, 1, 7, 0)
            ],
            "an hourly schedule fires every real hour, the repeated local hour included"
        );
    }

    #[test]
    fn refuses_what_is_not_a_five_field_cron_or_a_zone() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "61 * * * *",
            "* * * * MONDAY",
            "0 0 31 2 *",
            "bogus",
        ] {
            assert!(
                matches!(CronSchedule::parse(bad, UTC), Err(ScheduleError::Cron(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(matches!(
            CronSchedule::parse("* * * * *", "Mars/Olympus"),
            Err(ScheduleError::Timezone(_))
        ));
        assert!(CronSchedule::parse("  0 0 * * SUN ", "Asia/Tokyo").is_ok());
    }

    #[test]
    fn describes_in_words() {
        let s = CronSchedule::parse("0 3 L * *", UTC).expect("valid");
        assert_eq!(s.describe(), "At 03:00, on the last day of the month.");
    }

    #[test]
    fn windows() {
        assert_eq!(Window::parse("30m"), Ok(Window::Minutes(30)));
        assert_eq!(Window::parse("2h"), Ok(Window::Minutes(120)));
        assert_eq!(Window::parse("24h"), Ok(Window::Minutes(1440)));
        assert_eq!(Window::parse("30%"), Ok(Window::Percent(30)));
        for bad in [
            "",
            "0m",
            "25h",
            "101%",
            "1d",
            "-5m",
            "m",
            "1.5h",
            "99999999m",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let nominal = utc(2026, 1, 1, 0, 0);
        let next = Some(utc(2026, 1, 1, 1, 0));
        let w = Window::Minutes(30);
        assert_eq!(w.effective(nominal, next, 0.0), nominal);
        assert_eq!(w.effective(nominal, next, 0.5), utc(2026, 1, 1, 0, 15));
        // A percentage of the interval; never reaching the next fire.
        assert_eq!(
            Window::Percent(50).effective(nominal, next, 0.5),
            utc(2026, 1, 1, 0, 15)
        );
        assert!(Window::Minutes(120).effective(nominal, next, 0.999) < utc(2026, 1, 1, 1, 0));
        let a = window_phase("env1", "daily-report");
        assert!((0.0..1.0).contains(&a));
        assert_eq!(a, window_phase("env1", "daily-report"));
        assert_ne!(a, window_phase("env2", "daily-report"));
    }

    #[test]
    fn the_payload_decodes_to_dates() {
        let p = ScheduledPayload {
            schedule_id: "sched_1".into(),
            schedule_type: "IMPERATIVE".into(),
            timestamp: utc(2026, 1, 1, 0, 0),
            last_timestamp: None,
            external_id: Some("user_1".into()),
            timezone: "Europe/London".into(),
            upcoming: vec![utc(2026, 1, 1, 0, 1)],
        };
        let v: serde_json::Value = serde_json::from_str(&p.to_superjson()).expect("json");
        assert_eq!(v["json"]["timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["json"]["externalId"], "user_1");
        assert_eq!(
            v["meta"]["values"]["timestamp"],
            serde_json::json!(["Date"])
        );
        assert_eq!(
            v["meta"]["values"]["lastTimestamp"],
            serde_json::json!(["undefined"])
        );
        assert_eq!(
            v["meta"]["values"]["upcoming.0"],
            serde_json::json!(["Date"])
        );
    }

    fn expression() -> impl Strategy<Value = String> {
        let minute = prop_oneof![
            Just("*".to_string()),
            (0u32..60).prop_map(|m| m.to_string()),
            (1u32..30).prop_map(|s| format!("*/{s}"))
        ];
        let hour = prop_oneof![
            Just("*".to_string()),
            (0u32..24).prop_map(|h| h.to_string()),
            (0u32..12).prop_map(|h| format!("{h}-{}", h + 6))
        ];
        let dom = prop_oneof![
            Just("*".to_string()),
            (1u32..29).prop_map(|d| d.to_string()),
            Just("L".to_string())
        ];
        let dow = prop_oneof![
            Just("*".to_string()),
            (0u32..7).prop_map(|d| d.to_string()),
            Just("1-5".to_string())
        ];
        (minute, hour, dom, dow).prop_map(|(m, h, d, w)| format!("{m} {h} {d} * {w}"))
    }

    fn zone() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just(UTC),
            Just("Europe/London"),
            Just("America/New_York"),
            Just("Australia/Lord_Howe"),
            Just("Asia/Kolkata")
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Upcoming times rise strictly, each on a whole minute, each matching the expression
        /// in its zone, and none is skipped between two of them.
        #[test]
        fn upcoming_times_rise_and_match(expr in expression(), tz in zone(), start in 1_700_000_000i64..1_900_000_000) {
            let s = CronSchedule::parse(&expr, tz).expect("generated expressions are valid");
            let after = DateTime::from_timestamp(start, 0).expect("in range");
            let times = s.upcoming(after, 5);
            prop_assert_eq!(times.len(), 5);
            let mut prev = after;
            for t in &times {
                prop_assert!(*t > prev, "{} is not after {}", t, prev);
                prop_assert_eq!(t.timestamp() % 60, 0);
                let local = t.with_timezone(&s.timezone);
                // A time the expression names, or the first instant after a spring-forward gap
                // that swallowed one.
                let matching = s.cron.is_time_matching(&local).unwrap_or(false);
                let minute_before = (*t - chrono::Duration::minutes(1)).with_timezone(&s.timezone);
                let after_gap = minute_before.offset().fix() != local.offset().fix();
                prop_assert!(matching || after_gap, "{} does not match {}", local, expr);
                prop_assert_eq!(s.next_after(prev), Some(*t));
                prev = *t;
            }
        }
    }
}
