//! Runs as the API shows them: the status helpers of the SDK's run shape, the list filter's
//! status mapping, list cursors, and the TTL and delay inputs of a trigger. The statuses
//! themselves and their transitions are [`crate::engine`]'s.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::parse_jose_relative;
use crate::engine::RunStatus;

/// The boolean helpers of a run, from its API status (upstream's presenter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFlags {
    pub is_queued: bool,
    pub is_executing: bool,
    pub is_waiting: bool,
    pub is_completed: bool,
    pub is_success: bool,
    pub is_failed: bool,
    pub is_cancelled: bool,
}

pub fn status_flags(api: &str) -> StatusFlags {
    let is_completed = matches!(
        api,
        "COMPLETED" | "CANCELED" | "FAILED" | "CRASHED" | "SYSTEM_FAILURE"
    );
    StatusFlags {
        is_queued: matches!(api, "QUEUED" | "DELAYED" | "PENDING_VERSION"),
        is_executing: matches!(api, "EXECUTING" | "DEQUEUED"),
        is_waiting: api == "WAITING",
        is_completed,
        is_success: api == "COMPLETED",
        is_failed: is_completed && api != "COMPLETED",
        is_cancelled: api == "CANCELED",
    }
}

/// The stored statuses an API status filter value selects; `None` for an unknown value.
pub fn stored_statuses_for_filter(api: &str) -> Option<&'static [RunStatus]> {
    use RunStatus as S;
    Some(match api {
        "QUEUED" => &[S::Pending],
        "EXECUTING" => &[S::Executing, S::RetryingAfterFailure],
        "REATTEMPTING" => &[S::RetryingAfterFailure],
        "FROZEN" => &[S::Paused, S::WaitingToResume],
        "WAITING" => &[S::WaitingToResume, S::Paused],
        "DEQUEUED" => &[S::Dequeued],
        "COMPLETED" => &[S::CompletedSuccessfully],
        "FAILED" => &[S::CompletedWithErrors, S::Interrupted],
        "DELAYED" => &[S::Delayed],
        "PENDING_VERSION" => &[S::PendingVersion, S::WaitingForDeploy],
        "WAITING_FOR_DEPLOY" => &[S::WaitingForDeploy],
        "CANCELED" => &[S::Canceled],
        "SYSTEM_FAILURE" => &[S::SystemFailure],
        "INTERRUPTED" => &[S::Interrupted],
        "CRASHED" => &[S::Crashed],
        "EXPIRED" => &[S::Expired],
        "TIMED_OUT" => &[S::TimedOut],
        _ => return None,
    })
}

/// A position in a run listing: ordered by `created_at` desc, then internal id desc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCursor {
    #[serde(rename = "c")]
    pub created_at_ms: i64,
    #[serde(rename = "r")]
    pub run_id: String,
}

impl RunCursor {
    /// base64url of `{"c":<ms>,"r":"<id>"}` (upstream's shape; opaque to clients).
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// `None` for anything that is not a cursor this server made.
    pub fn decode(s: &str) -> Option<RunCursor> {
        if s.len() > 512 {
            return None;
        }
        let bytes = crate::bearer::decode_b64url(s)?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Longest TTL, delay or idempotency-key lifetime a trigger may ask for: a year. Longer values
/// are far more likely a unit mistake than an intent, and the bound keeps every time derived
/// from them inside what the stores and clients represent (a huge one used to overflow).
pub const MAX_RUN_DURATION: Duration = Duration::days(365);
/// How the bound reads in error messages.
const MAX_RUN_DURATION_TEXT: &str = "365 days";

/// `secs` as a duration within `0..=MAX_RUN_DURATION`, or an error naming `field`.
fn bounded(field: &str, secs: i64) -> Result<Duration, String> {
    Duration::try_seconds(secs)
        .filter(|d| *d >= Duration::zero() && *d <= MAX_RUN_DURATION)
        .ok_or_else(|| format!("{field} must be from 0 seconds to {MAX_RUN_DURATION_TEXT}"))
}

/// A run's `ttl` option: a duration string (`1h`, `10m`) or whole seconds, at most
/// [`MAX_RUN_DURATION`]. `Ok(None)` for zero (no TTL); `Err` names the field and the range.
pub fn parse_ttl(v: &serde_json::Value) -> Result<Option<Duration>, String> {
    let secs = match v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Number(n) => n.as_i64().filter(|s| *s >= 0).ok_or_else(|| {
            format!("ttl must be a whole number of seconds from 0 to {MAX_RUN_DURATION_TEXT}, or a duration like \"1h\"")
        })?,
        serde_json::Value::String(s) => parse_jose_relative(s)
            .filter(|secs| *secs >= 0)
            .ok_or_else(|| format!("ttl {s:?} is not a duration like \"1h\""))?,
        _ => return Err("ttl must be a duration string or a number of seconds".into()),
    };
    let d = bounded("ttl", secs)?;
    Ok((d > Duration::zero()).then_some(d))
}

/// A run's `delay` option: a duration string from now (at most [`MAX_RUN_DURATION`]), or an
/// ISO-8601 date no later than that. A date in the past means no delay.
pub fn parse_delay(
    v: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    parse_deadline("delay", v, now)
}

/// A point in time given as a duration string from `now` (`"30s"`, `"2h"`, at most
/// [`MAX_RUN_DURATION`]) or an ISO-8601 date no later than that: a run's `delay`, a wait
/// token's `timeout`. Errors name the option `what`.
pub fn parse_deadline(
    what: &str,
    v: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    let latest = now + MAX_RUN_DURATION;
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => {
            if let Some(secs) = parse_jose_relative(s) {
                let d = bounded(what, secs.max(0))?;
                return Ok(now.checked_add_signed(d));
            }
            let at = DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    format!("{what} {s:?} is neither a duration like \"1h\" nor an ISO-8601 date")
                })?;
            if at > latest {
                return Err(format!(
                    "{what} must be at most {MAX_RUN_DURATION_TEXT} from now"
                ));
            }
            Ok(Some(at))
        }
        _ => Err(format!(
            "{what} must be a duration string or an ISO-8601 date"
        )),
    }
}

/// A debounce's `delay` or `maxDelay`: a duration string (`"5s"`, `"2h30m"`, `"1w"`), at least
/// one second and at most [`MAX_RUN_DURATION`]. Dates are refused: the delay is applied again
/// at each trigger.
pub fn parse_debounce_duration(what: &str, s: &str) -> Result<Duration, String> {
    let ms = crate::duration::parse_duration_ms(s).ok_or_else(|| {
        format!("debounce.{what} {s:?} is not a duration like \"5s\" or \"2h30m\"")
    })?;
    let d = Duration::try_milliseconds(ms).unwrap_or(Duration::MAX);
    if d < Duration::seconds(1) || d > MAX_RUN_DURATION {
        return Err(format!(
            "debounce.{what} must be from 1 second to {MAX_RUN_DURATION_TEXT}"
        ));
    }
    Ok(d)
}

/// An idempotency key's TTL option (`^\d+[smhd]$`): `Ok(None)` for anything else (the default
/// applies, as upstream), `Err` when it names more than [`MAX_RUN_DURATION`].
pub fn parse_idempotency_ttl(s: &str) -> Result<Option<Duration>, String> {
    // The unit is the last character, which may be any character: split on its boundary.
    let Some(unit) = s.chars().next_back() else {
        return Ok(None);
    };
    let num = &s[..s.len() - unit.len_utf8()];
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let per_unit: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Ok(None),
    };
    let too_long = || format!("idempotencyKeyTTL must be at most {MAX_RUN_DURATION_TEXT}");
    let n: i64 = num.parse().map_err(|_| too_long())?;
    let secs = n.checked_mul(per_unit).ok_or_else(too_long)?;
    bounded("idempotencyKeyTTL", secs)
        .map(Some)
        .map_err(|_| too_long())
}

/// Default idempotency key lifetime: 30 days (upstream).
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::days(30);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_flags_and_filters() {
        let f = status_flags("CANCELED");
        assert!(f.is_completed && f.is_failed && f.is_cancelled && !f.is_success);
        let f = status_flags("EXPIRED");
        assert!(
            !f.is_completed && !f.is_failed,
            "upstream: EXPIRED is neither"
        );
        assert!(status_flags("DELAYED").is_queued);
        assert_eq!(
            stored_statuses_for_filter("FAILED"),
            Some(&[RunStatus::CompletedWithErrors, RunStatus::Interrupted][..])
        );
        assert_eq!(stored_statuses_for_filter("BOGUS"), None);
        for s in RunStatus::ALL {
            let api = s.api_status();
            assert!(
                stored_statuses_for_filter(api).is_some_and(|set| set.contains(s)),
                "filtering by {api} finds {s}"
            );
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = RunCursor {
            created_at_ms: 1_700_000_000_000,
            run_id: "cabc".into(),
        };
        assert_eq!(RunCursor::decode(&c.encode()), Some(c));
        assert_eq!(RunCursor::decode("not a cursor"), None);
        assert_eq!(RunCursor::decode(&"A".repeat(600)), None);
    }

    #[test]
    fn ttl_delay_and_idempotency_inputs() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_ttl(&json!("1h")).unwrap(), Some(Duration::hours(1)));
        assert_eq!(parse_ttl(&json!(30)).unwrap(), Some(Duration::seconds(30)));
        assert_eq!(parse_ttl(&json!(0)).unwrap(), None);
        assert!(parse_ttl(&json!(-1)).is_err() && parse_ttl(&json!("soon")).is_err());
        assert_eq!(
            parse_delay(&json!("10m"), now).unwrap(),
            Some(now + Duration::minutes(10))
        );
        assert_eq!(
            parse_delay(&json!("2026-01-02T00:00:00Z"), now).unwrap(),
            Some(now + Duration::days(1))
        );
        assert!(parse_delay(&json!(5), now).is_err());
        assert_eq!(parse_idempotency_ttl("5m"), Ok(Some(Duration::minutes(5))));
        assert_eq!(parse_idempotency_ttl("5x"), Ok(None));
        assert_eq!(parse_idempotency_ttl(""), Ok(None));
        assert_eq!(parse_idempotency_ttl("-5m"), Ok(None));
        assert_eq!(
            parse_idempotency_ttl("5Ⱥ"),
            Ok(None),
            "a multi-byte last character"
        );
    }

    #[test]
    fn durations_beyond_a_year_are_refused_by_name() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for huge in [
            "99999999999d",
            "9223372036854775807s",
            "99999999999999999999999y",
            "366d",
        ] {
            let delay = parse_delay(&json!(huge), now).unwrap_err();
            assert!(delay.starts_with("delay must be"), "{huge}: {delay}");
            let ttl = parse_ttl(&json!(huge)).unwrap_err();
            assert!(ttl.starts_with("ttl "), "{huge}: {ttl}");
            if huge.ends_with(['s', 'd']) {
                let idem = parse_idempotency_ttl(huge).unwrap_err();
                assert!(
                    idem.starts_with("idempotencyKeyTTL must be"),
                    "{huge}: {idem}"
                );
            }
        }
        assert!(parse_ttl(&json!(i64::MAX)).is_err());
        assert!(parse_ttl(&json!(u64::MAX)).is_err());
        assert!(parse_delay(&json!("+275760-09-13T00:00:00Z"), now).is_err());
        assert!(parse_delay(&json!("9999-12-31T23:59:59Z"), now).is_err());
        assert_eq!(
            parse_delay(&json!("365d"), now).unwrap(),
            Some(now + MAX_RUN_DURATION)
        );
        assert_eq!(parse_idempotency_ttl("365d"), Ok(Some(MAX_RUN_DURATION)));
    }

    proptest::proptest! {
        #[test]
        fn duration_inputs_never_panic(s in ".{0,30}", n in proptest::num::i64::ANY) {
            let now = Utc::now();
            let _ = parse_ttl(&json!(s));
            let _ = parse_ttl(&json!(n));
            let _ = parse_delay(&json!(s), now);
            let _ = parse_idempotency_ttl(&s);
            let _ = parse_idempotency_ttl(&format!("{n}d"));
        }

        #[test]
        fn cursors_decode_what_they_encode_and_nothing_panics(c in proptest::num::i64::ANY, r in ".{0,40}", junk in ".{0,600}") {
            let cursor = RunCursor { created_at_ms: c, run_id: r };
            proptest::prop_assert_eq!(RunCursor::decode(&cursor.encode()), Some(cursor));
            let _ = RunCursor::decode(&junk);
        }
    }
}

#[cfg(test)]
mod debounce_tests {
    use super::*;

    #[test]
    fn debounce_durations_are_durations_of_a_second_or_more() {
        assert_eq!(
            parse_debounce_duration("delay", "5s"),
            Ok(Duration::seconds(5))
        );
        assert_eq!(
            parse_debounce_duration("delay", "2h30m"),
            Ok(Duration::minutes(150))
        );
        assert_eq!(
            parse_debounce_duration("maxDelay", "1w"),
            Ok(Duration::weeks(1))
        );
        for bad in [
            "500ms",
            "0s",
            "-5s",
            "soon",
            "2026-01-01T00:00:00Z",
            "400d",
            "",
        ] {
            assert!(parse_debounce_duration("delay", bad).is_err(), "{bad}");
        }
    }
}
