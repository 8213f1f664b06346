//! Runs: stored statuses and their API names (spec errors-runs-sdk §3.6, the 2025-07-16
//! mapping the 4.8.3 SDK asks for), the list filter's status mapping (§3.3), list cursors,
//! and the TTL and delay inputs of a trigger.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::parse_jose_relative;

/// Stored statuses taskgate produces today.
pub mod stored {
    pub const PENDING: &str = "PENDING";
    pub const DELAYED: &str = "DELAYED";
    pub const EXECUTING: &str = "EXECUTING";
    pub const COMPLETED_SUCCESSFULLY: &str = "COMPLETED_SUCCESSFULLY";
    pub const COMPLETED_WITH_ERRORS: &str = "COMPLETED_WITH_ERRORS";
    pub const CANCELED: &str = "CANCELED";
    pub const EXPIRED: &str = "EXPIRED";
    pub const SYSTEM_FAILURE: &str = "SYSTEM_FAILURE";
    pub const CRASHED: &str = "CRASHED";
    pub const TIMED_OUT: &str = "TIMED_OUT";
    pub const INTERRUPTED: &str = "INTERRUPTED";
}

/// The API status of a stored status (`apiStatusFromRunStatusV2`).
pub fn api_status(stored: &str) -> &'static str {
    match stored {
        "DELAYED" => "DELAYED",
        "PENDING_VERSION" | "WAITING_FOR_DEPLOY" => "PENDING_VERSION",
        "PENDING" => "QUEUED",
        "PAUSED" | "WAITING_TO_RESUME" => "WAITING",
        "DEQUEUED" => "DEQUEUED",
        "EXECUTING" | "RETRYING_AFTER_FAILURE" => "EXECUTING",
        "CANCELED" => "CANCELED",
        "COMPLETED_SUCCESSFULLY" => "COMPLETED",
        "COMPLETED_WITH_ERRORS" | "INTERRUPTED" => "FAILED",
        "SYSTEM_FAILURE" => "SYSTEM_FAILURE",
        "CRASHED" => "CRASHED",
        "EXPIRED" => "EXPIRED",
        "TIMED_OUT" => "TIMED_OUT",
        _ => "QUEUED",
    }
}

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

/// Whether a stored status is final (the run will not change again).
pub fn is_final(stored: &str) -> bool {
    matches!(
        stored,
        "COMPLETED_SUCCESSFULLY"
            | "COMPLETED_WITH_ERRORS"
            | "CANCELED"
            | "EXPIRED"
            | "SYSTEM_FAILURE"
            | "CRASHED"
            | "TIMED_OUT"
            | "INTERRUPTED"
    )
}

/// Whether an idempotency key on a run in this stored status may be reused by a new run
/// (failed or expired runs give their key up, spec §3.1).
pub fn releases_idempotency_key(stored: &str) -> bool {
    matches!(
        stored,
        "INTERRUPTED"
            | "COMPLETED_WITH_ERRORS"
            | "SYSTEM_FAILURE"
            | "CRASHED"
            | "TIMED_OUT"
            | "EXPIRED"
    )
}

/// The stored statuses an API status filter value selects; `None` for an unknown value.
pub fn stored_statuses_for_filter(api: &str) -> Option<&'static [&'static str]> {
    Some(match api {
        "QUEUED" => &["PENDING"],
        "EXECUTING" => &["EXECUTING", "RETRYING_AFTER_FAILURE"],
        "REATTEMPTING" => &["RETRYING_AFTER_FAILURE"],
        "FROZEN" => &["PAUSED", "WAITING_TO_RESUME"],
        "WAITING" => &["WAITING_TO_RESUME", "PAUSED"],
        "DEQUEUED" => &["DEQUEUED"],
        "COMPLETED" => &["COMPLETED_SUCCESSFULLY"],
        "FAILED" => &["COMPLETED_WITH_ERRORS", "INTERRUPTED"],
        "DELAYED" => &["DELAYED"],
        "PENDING_VERSION" => &["PENDING_VERSION", "WAITING_FOR_DEPLOY"],
        "WAITING_FOR_DEPLOY" => &["WAITING_FOR_DEPLOY"],
        "CANCELED" => &["CANCELED"],
        "SYSTEM_FAILURE" => &["SYSTEM_FAILURE"],
        "INTERRUPTED" => &["INTERRUPTED"],
        "CRASHED" => &["CRASHED"],
        "EXPIRED" => &["EXPIRED"],
        "TIMED_OUT" => &["TIMED_OUT"],
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

/// A run's `ttl` option: a duration string (`1h`, `10m`) or whole seconds. `Ok(None)` for
/// zero (no TTL); `Err` for anything else.
pub fn parse_ttl(v: &serde_json::Value) -> Result<Option<Duration>, String> {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(0) => Ok(None),
            Some(s) if s > 0 => Ok(Some(Duration::seconds(s))),
            _ => Err(
                "ttl must be a non-negative integer of seconds or a duration like \"1h\"".into(),
            ),
        },
        serde_json::Value::String(s) => match parse_jose_relative(s) {
            Some(0) => Ok(None),
            Some(secs) if secs > 0 => Ok(Some(Duration::seconds(secs))),
            _ => Err(format!("ttl {s:?} is not a duration like \"1h\"")),
        },
        serde_json::Value::Null => Ok(None),
        _ => Err("ttl must be a duration string or a number of seconds".into()),
    }
}

/// A run's `delay` option: a duration string from now, or an ISO-8601 date.
pub fn parse_delay(
    v: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => {
            if let Some(secs) = parse_jose_relative(s) {
                return Ok(Some(now + Duration::seconds(secs.max(0))));
            }
            DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| {
                    format!("delay {s:?} is neither a duration like \"1h\" nor an ISO-8601 date")
                })
        }
        _ => Err("delay must be a duration string or an ISO-8601 date".into()),
    }
}

/// An idempotency key's TTL option (`^\d+[smhd]$`); anything else falls through to the default.
pub fn parse_idempotency_ttl(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok().filter(|n| *n >= 0)?;
    Some(match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return None,
    })
}

/// Default idempotency key lifetime: 30 days (upstream).
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::days(30);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn statuses_map_as_upstreams_v2_presenter() {
        let table = [
            ("PENDING", "QUEUED"),
            ("DELAYED", "DELAYED"),
            ("WAITING_FOR_DEPLOY", "PENDING_VERSION"),
            ("WAITING_TO_RESUME", "WAITING"),
            ("RETRYING_AFTER_FAILURE", "EXECUTING"),
            ("COMPLETED_SUCCESSFULLY", "COMPLETED"),
            ("INTERRUPTED", "FAILED"),
            ("COMPLETED_WITH_ERRORS", "FAILED"),
            ("EXPIRED", "EXPIRED"),
            ("NEW_THING", "QUEUED"),
        ];
        for (stored, api) in table {
            assert_eq!(api_status(stored), api, "{stored}");
        }
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
            Some(&["COMPLETED_WITH_ERRORS", "INTERRUPTED"][..])
        );
        assert_eq!(stored_statuses_for_filter("BOGUS"), None);
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
        assert_eq!(parse_idempotency_ttl("5m"), Some(Duration::minutes(5)));
        assert_eq!(parse_idempotency_ttl("5x"), None);
        assert_eq!(parse_idempotency_ttl(""), None);
    }
}
