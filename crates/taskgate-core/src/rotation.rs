//! Key rotation's grace window as pure functions of `now`:
//! when a rotated key stops working, whether it still works, and the admin route's
//! `expiresAt` coercion.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use crate::time::{add_clamped, from_millis};

/// How long a rotated key keeps working: 24 h, as upstream, because clients roll their
/// environment variables within a day. Admins can extend or end a window per key.
pub const DEFAULT_GRACE: Duration = Duration::hours(24);

/// The largest |milliseconds| JavaScript's `Date` represents (±100 000 000 days, ECMA-262
/// TimeClip); beyond it `new Date(n)` is an Invalid Date.
const JS_DATE_LIMIT_MS: f64 = 8.64e15;

/// When a key rotated at `now` stops working (clamped to chrono's range, never panics).
pub fn grace_expiry(now: DateTime<Utc>, grace: Duration) -> DateTime<Utc> {
    add_clamped(now, grace)
}

/// Whether a revoked key is still accepted at `now`: `expires_at` strictly after `now`, as
/// upstream's lookup (`expiresAt > now`).
pub fn grace_active(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at > now
}

/// The admin route's `expiresAt`, coerced as JavaScript's `new Date(value)` (§1.11):
///
/// * a string: ISO-8601 / RFC 3339 (`2031-01-01T00:00:00.000Z`, with an offset, without
///   seconds, date-only `2031-01-01`, `2031-01`, `2031`) or an RFC 2822 date
///   (`Wed, 01 Jan 2031 00:00:00 GMT`). A date-time without an offset is read as UTC (a JS
///   server reads it in its local zone, UTC in upstream's deployments);
/// * a number: milliseconds since the epoch, truncated, finite and within ±8.64e15;
/// * `null`: the epoch, 1970-01-01T00:00:00Z (so it ends the grace at once);
/// * `true` / `false`: 1 ms / 0 ms after the epoch.
///
/// Objects, arrays and unparseable strings are refused. The error names the rule, never the
/// input.
pub fn parse_admin_expires_at(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::Null => Ok(from_millis(0)),
        Value::Bool(b) => Ok(from_millis(i64::from(*b))),
        Value::Number(n) => match n.as_f64() {
            Some(ms) if ms.is_finite() && ms.abs() <= JS_DATE_LIMIT_MS => {
                Ok(from_millis(ms.trunc() as i64))
            }
            _ => Err("expiresAt must be within ±8.64e15 milliseconds of the epoch".into()),
        },
        Value::String(s) => parse_date_string(s.trim())
            .ok_or_else(|| "expiresAt must be an ISO-8601 or RFC 2822 date".into()),
        Value::Array(_) | Value::Object(_) => {
            Err("expiresAt must be a date string, epoch milliseconds or null".into())
        }
    }
}

/// A date string in one of the forms [`parse_admin_expires_at`] lists.
fn parse_date_string(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    // ECMAScript's date-time string format allows omitting seconds, the offset, the time, the
    // day and the month; `Z` is spelled as an offset so one pattern covers both.
    let with_offset = match s.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => s.to_string(),
    };
    for pattern in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z"] {
        if let Ok(t) = DateTime::parse_from_str(&with_offset, pattern) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for pattern in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, pattern) {
            return Some(t.and_utc());
        }
    }
    let date = match s.len() {
        4 => format!("{s}-01-01"),
        7 => format!("{s}-01"),
        _ => s.to_string(),
    };
    if !date.bytes().take(4).all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(&date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn grace_is_a_day_and_exclusive() {
        let now = at(2026, 1, 1, 0, 0, 0);
        let exp = grace_expiry(now, DEFAULT_GRACE);
        assert_eq!(exp, at(2026, 1, 2, 0, 0, 0));
        assert_eq!(DEFAULT_GRACE.num_milliseconds(), 86_400_000);
        assert!(grace_active(exp, now));
        assert!(grace_active(exp, exp - Duration::milliseconds(1)));
        assert!(!grace_active(exp, exp));
        assert!(!grace_active(exp, exp + Duration::milliseconds(1)));
        assert_eq!(grace_expiry(now, Duration::zero()), now);
        assert!(
            !grace_active(grace_expiry(now, Duration::zero()), now),
            "zero grace ends at once"
        );
        assert_eq!(grace_expiry(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn admin_expiry_strings() {
        let y2031 = at(2031, 1, 1, 0, 0, 0);
        let cases = [
            ("2031-01-01T00:00:00.000Z", y2031),
            ("2031-01-01T00:00:00Z", y2031),
            ("2031-01-01t00:00:00z", y2031),
            ("2031-01-01T02:00:00+02:00", y2031),
            ("2031-01-01T00:00Z", y2031),
            ("2031-01-01T01:00+01:00", y2031),
            ("2031-01-01T00:00:00", y2031),
            ("2031-01-01T00:00", y2031),
            ("2031-01-01", y2031),
            ("2031-01", y2031),
            ("2031", y2031),
            (" 2031-01-01 ", y2031),
            ("Wed, 01 Jan 2031 00:00:00 GMT", y2031),
            (
                "2031-06-15T12:30:45.123Z",
                at(2031, 6, 15, 12, 30, 45) + Duration::milliseconds(123),
            ),
        ];
        for (s, want) in cases {
            assert_eq!(parse_admin_expires_at(&json!(s)), Ok(want), "{s}");
        }
        for bad in [
            "tomorrow",
            "",
            "2031-13-01",
            "2031-02-30",
            "1700000000000",
            "20310101",
            "abcd",
            "31-01-01",
        ] {
            assert!(parse_admin_expires_at(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn admin_expiry_other_json() {
        let epoch = at(1970, 1, 1, 0, 0, 0);
        assert_eq!(
            parse_admin_expires_at(&json!(1_924_992_000_000i64)),
            Ok(at(2031, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            parse_admin_expires_at(&json!(1.9)),
            Ok(from_millis(1)),
            "truncated"
        );
        assert_eq!(
            parse_admin_expires_at(&json!(-1)),
            Ok(epoch - Duration::milliseconds(1))
        );
        assert_eq!(parse_admin_expires_at(&json!(0)), Ok(epoch));
        // JavaScript's Date range is wider than chrono's: its ends saturate.
        assert_eq!(
            parse_admin_expires_at(&json!(8.64e15)),
            Ok(DateTime::<Utc>::MAX_UTC)
        );
        assert_eq!(
            parse_admin_expires_at(&json!(-8.64e15)),
            Ok(DateTime::<Utc>::MIN_UTC)
        );
        assert_eq!(parse_admin_expires_at(&json!(null)), Ok(epoch));
        assert_eq!(parse_admin_expires_at(&json!(true)), Ok(from_millis(1)));
        assert_eq!(parse_admin_expires_at(&json!(false)), Ok(epoch));
        for bad in [
            json!({}),
            json!({"at": 1}),
            json!([1]),
            json!([]),
            json!(1e300),
            json!(8.64e15 + 1.0),
        ] {
            assert!(parse_admin_expires_at(&bad).is_err(), "{bad}");
        }
        let err = parse_admin_expires_at(&json!("tr_prod_secret")).unwrap_err();
        assert!(!err.contains("tr_prod_secret"), "{err}");
    }

    #[test]
    fn null_ends_the_grace_and_a_future_date_reopens_it() {
        let now = at(2026, 1, 1, 0, 0, 0);
        assert!(!grace_active(
            parse_admin_expires_at(&json!(null)).unwrap(),
            now
        ));
        assert!(grace_active(
            parse_admin_expires_at(&json!("2031-01-01")).unwrap(),
            now
        ));
    }
}
