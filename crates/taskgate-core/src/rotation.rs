//! Rotation and grace-window rules as pure functions of `now` (spec/auth.md §1.8, §1.11).

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::time::from_millis;

/// The default grace of a rotated key: clients roll their environment variables within a day.
pub const DEFAULT_GRACE: Duration = Duration::hours(24);

/// When a key rotated at `now` stops working.
pub fn grace_expiry(now: DateTime<Utc>, grace: Duration) -> DateTime<Utc> {
    now + grace
}

/// Whether a revoked key is still accepted: `expires_at` strictly after `now`.
pub fn grace_active(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at > now
}

/// The largest |ms| JavaScript's `Date` accepts.
const JS_DATE_LIMIT_MS: f64 = 8.64e15;

/// `expiresAt` of the admin route, coerced as JavaScript's `new Date(value)`: an ISO-8601 /
/// RFC 3339 string (or a bare date), a number of milliseconds since the epoch, `null` (the
/// epoch: ends the grace), or a boolean (0 or 1 ms). Anything else is refused.
pub fn parse_admin_expires_at(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::Null => Ok(from_millis(0)),
        Value::Bool(b) => Ok(from_millis(i64::from(*b))),
        Value::Number(n) => match n.as_f64() {
            Some(ms) if ms.is_finite() && ms.abs() <= JS_DATE_LIMIT_MS => {
                Ok(from_millis(ms.trunc() as i64))
            }
            _ => Err("expiresAt is out of range".into()),
        },
        Value::String(s) => {
            parse_date_string(s.trim()).ok_or_else(|| format!("expiresAt {s:?} is not a date"))
        }
        _ => Err("expiresAt must be an ISO-8601 string, epoch milliseconds or null".into()),
    }
}

fn parse_date_string(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn grace_is_exclusive() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let exp = grace_expiry(now, DEFAULT_GRACE);
        assert_eq!(exp, now + Duration::hours(24));
        assert!(grace_active(exp, exp - Duration::milliseconds(1)));
        assert!(!grace_active(exp, exp));
    }

    #[test]
    fn admin_expiry_coercion() {
        let t = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap();
        assert_eq!(
            parse_admin_expires_at(&json!("2031-01-01T00:00:00.000Z")).unwrap(),
            t(2031, 1, 1)
        );
        assert_eq!(
            parse_admin_expires_at(&json!("2031-01-01")).unwrap(),
            t(2031, 1, 1)
        );
        assert_eq!(
            parse_admin_expires_at(&json!("2031-01-01T02:00:00+02:00")).unwrap(),
            t(2031, 1, 1)
        );
        assert_eq!(
            parse_admin_expires_at(&json!(1_924_992_000_000i64)).unwrap(),
            t(2031, 1, 1)
        );
        assert_eq!(parse_admin_expires_at(&json!(null)).unwrap(), t(1970, 1, 1));
        assert_eq!(
            parse_admin_expires_at(&json!(true)).unwrap(),
            from_millis(1)
        );
        for bad in [json!("tomorrow"), json!({}), json!([1]), json!(1e300)] {
            assert!(parse_admin_expires_at(&bad).is_err(), "{bad}");
        }
    }
}
