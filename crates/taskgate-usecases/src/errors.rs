//! The errors list's query, checked as upstream checks it, and triage (resolve, ignore,
//! unresolve) with the acting user recorded: what the API and the dashboard share.

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;
use taskgate_api::errors::IgnoreErrorRequest;
use taskgate_core::duration::parse_duration_ms;
use taskgate_core::errors::{parse_group_id, GroupStatus, Ignore};
use taskgate_core::time::from_millis;
use taskgate_core::Problem;
use taskgate_store::{
    ErrorCursor, ErrorGroupDetail as StoredDetail, ErrorListQuery, ListedErrorGroup, PageDirection,
    TriageAction, TriageActor,
};

use crate::{Result, UseCases};

/// Rows of an errors page unless the caller asks for another size, and the most it may.
pub const DEFAULT_PAGE_SIZE: u32 = 25;
pub const MAX_PAGE_SIZE: u32 = 100;
/// A list without a period or dates covers the last day (upstream).
const DEFAULT_WINDOW: Duration = Duration::days(1);
const MAX_SEARCH: usize = 1000;
const MAX_REASON: usize = 1000;
const MAX_VERSION: usize = 255;
/// Longest ignore: ten years, in milliseconds.
const MAX_IGNORE_MS: f64 = 10.0 * 365.0 * 86_400_000.0;
const MAX_RATE: f64 = 1_000_000_000.0;
const MAX_TOTAL: f64 = 1e12;

/// Upstream's query failure: `{"error":"Query Error","details":[…]}`.
pub fn query_error(param: &str, message: impl Into<String>) -> Problem {
    Problem::invalid("Query Error").with(
        "details",
        json!([{ "code": "custom", "message": message.into(), "path": [param] }]),
    )
}

pub fn validation(message: impl std::fmt::Display) -> Problem {
    Problem::invalid(format!("Validation error: {message}"))
}

pub fn comma_list(params: &HashMap<String, String>, key: &str) -> Vec<String> {
    params
        .get(key)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A date as upstream's `CoercedDate` takes it: epoch milliseconds, or a date string (RFC
/// 3339, or a bare `YYYY-MM-DD` at midnight UTC).
fn date(params: &HashMap<String, String>, key: &str) -> Result<Option<DateTime<Utc>>> {
    let Some(raw) = params.get(key) else {
        return Ok(None);
    };
    let v = raw.trim();
    let parsed = v
        .parse::<i64>()
        .ok()
        .filter(|ms| ms.unsigned_abs() < 8_640_000_000_000_000)
        .map(from_millis)
        .or_else(|| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        });
    parsed
        .map(Some)
        .ok_or_else(|| query_error(key, "Invalid date"))
}

/// `base64(JSON)` of a list position. Upstream writes standard base64; both alphabets are
/// read back.
fn encode_cursor(c: &ErrorCursor) -> String {
    let json = serde_json::to_vec(c).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// An undecodable cursor is no cursor (upstream).
fn decode_cursor(s: &str) -> Option<ErrorCursor> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    if s.len() > 2048 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(s))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The list position just past `r`.
pub fn cursor_of(r: &ListedErrorGroup) -> String {
    encode_cursor(&ErrorCursor {
        occurrence_count: r.count,
        fingerprint: r.group.fingerprint.clone(),
        task_identifier: r.group.task_identifier.clone(),
    })
}

/// The list query, validated as upstream does, from the API's query parameters
/// (`filter[status]`, `page[after]`, …). The dashboard's list goes through here too.
pub fn list_query(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<ErrorListQuery> {
    let size = match params.get("page[size]") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| query_error("page[size]", "must be an integer from 1 to 100"))?,
    };
    let mut statuses = Vec::new();
    let mut bad = Vec::new();
    for s in comma_list(params, "filter[status]") {
        match GroupStatus::from_api(&s) {
            Some(st) if !statuses.contains(&st) => statuses.push(st),
            Some(_) => {}
            None => bad.push(s),
        }
    }
    if !bad.is_empty() {
        return Err(query_error(
            "filter[status]",
            format!(
                "Invalid status values: {}. Allowed: unresolved, resolved, ignored.",
                bad.join(", ")
            ),
        ));
    }
    let search = match params.get("filter[search]") {
        Some(s) if s.chars().count() > MAX_SEARCH => {
            return Err(query_error(
                "filter[search]",
                format!("must be at most {MAX_SEARCH} characters"),
            ))
        }
        Some(s) => Some(s.trim().to_lowercase()).filter(|s| !s.is_empty()),
        None => None,
    };
    // A period wins (an unparseable one is the default day, and still ignores the dates).
    let (from, to) = match params.get("filter[period]") {
        Some(p) => {
            let period = parse_duration_ms(p)
                .filter(|ms| *ms > 0)
                .map(Duration::milliseconds)
                .unwrap_or(DEFAULT_WINDOW);
            (now - period.min(retention), now)
        }
        None => {
            let from = date(params, "filter[from]")?;
            let to = date(params, "filter[to]")?;
            match (from, to) {
                (Some(f), Some(t)) => (f, t),
                (Some(f), None) => (f, now),
                (None, Some(t)) => (now - DEFAULT_WINDOW, t),
                (None, None) => (now - DEFAULT_WINDOW, now),
            }
        }
    };
    // Nothing older than the buckets' retention can be counted.
    let from = from.max(now - retention);
    let cursor = match (params.get("page[before]"), params.get("page[after]")) {
        (Some(b), _) => decode_cursor(b).map(|c| (c, PageDirection::Before)),
        (None, Some(a)) => decode_cursor(a).map(|c| (c, PageDirection::After)),
        (None, None) => None,
    };
    Ok(ErrorListQuery {
        task_identifiers: comma_list(params, "filter[taskIdentifier]"),
        versions: comma_list(params, "filter[version]"),
        statuses,
        search,
        from,
        to,
        size,
        cursor,
        now,
    })
}

/// The fingerprint a path's error id names; malformed ids are 400 (upstream: 500).
pub fn fingerprint_of(error_id: &str) -> Result<String> {
    parse_group_id(error_id).ok_or_else(|| {
        Problem::invalid("Params Error").with(
            "details",
            json!([{ "code": "custom", "path": ["errorId"],
                     "message": "must be error_ followed by 16 lowercase hex characters, or the bare fingerprint" }]),
        )
    })
}

/// Applies a triage action to `fingerprint`'s groups in `env_id` as `actor` (the caller has
/// authorized); 404 when there is no such group. The dashboard triages through here.
pub async fn apply_triage(
    uc: &UseCases,
    env_id: &str,
    fingerprint: &str,
    action: TriageAction,
    actor: &TriageActor,
) -> Result<StoredDetail> {
    let name = action.action();
    let updated = uc
        .store
        .triage_error_group(env_id, fingerprint, action, actor, uc.now())
        .await?
        .ok_or_else(|| Problem::not_found("Resource not found"))?;
    tracing::info!(env.id = %env_id, error.fingerprint = %fingerprint, action = name, "error group triaged");
    Ok(updated)
}

/// A resolve, optionally in a version (1 to 255 characters, no control characters).
pub fn resolve_action(in_version: Option<String>) -> Result<TriageAction> {
    if let Some(v) = &in_version {
        if v.is_empty() || v.chars().count() > MAX_VERSION || v.chars().any(char::is_control) {
            return Err(validation(format!(
                "resolvedInVersion must be 1 to {MAX_VERSION} characters at \"resolvedInVersion\""
            )));
        }
    }
    Ok(TriageAction::Resolve { in_version })
}

/// A positive whole number no larger than `max`, or the validation error naming `field`.
fn positive_int(field: &str, v: Option<f64>, max: f64) -> Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n.fract() == 0.0 && n > 0.0 && n <= max => Ok(Some(n as i64)),
        Some(_) => Err(validation(format!(
            "{field} must be a positive integer no larger than {max} at \"{field}\""
        ))),
    }
}

/// An ignore, validated: a duration (ms, at most ten years), an occurrence rate (per minute),
/// a total of new occurrences, each positive, and a reason of at most 1,000 characters.
pub fn ignore_action(body: IgnoreErrorRequest) -> Result<TriageAction> {
    let occurrence_rate = match body.occurrence_rate {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => Some(r),
        Some(_) => {
            return Err(validation(format!(
                "occurrenceRate must be a positive number no larger than {MAX_RATE} at \"occurrenceRate\""
            )))
        }
    };
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(validation(format!(
            "reason must be at most {MAX_REASON} characters at \"reason\""
        )));
    }
    Ok(TriageAction::Ignore(Ignore {
        duration_ms: positive_int("duration", body.duration, MAX_IGNORE_MS)?,
        occurrence_rate,
        total_occurrences: positive_int("totalOccurrences", body.total_occurrences, MAX_TOTAL)?,
        reason: body.reason,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_in_either_alphabet() {
        let c = ErrorCursor {
            occurrence_count: 7,
            fingerprint: "131c37334a407e47".into(),
            task_identifier: "my/task+x".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c.clone()));
        let standard = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&c).unwrap_or_default());
        assert_eq!(decode_cursor(&standard), Some(c));
        assert_eq!(decode_cursor("not a cursor"), None);
    }

    #[test]
    fn a_period_wins_and_a_bad_one_is_a_day() {
        let now = from_millis(1_800_000_000_000);
        let retention = Duration::days(30);
        let params = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let q = list_query(
            &params(&[("filter[period]", "7d"), ("filter[from]", "0")]),
            now,
            retention,
        )
        .unwrap_or_else(|_| unreachable!());
        assert_eq!((q.from, q.to), (now - Duration::days(7), now));
        let q = list_query(&params(&[("filter[period]", "soon")]), now, retention)
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(q.from, now - Duration::days(1));
        // Older than the retention is clamped.
        let q = list_query(&params(&[("filter[period]", "90d")]), now, retention)
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(q.from, now - retention);
        let q = list_query(
            &params(&[
                ("filter[from]", "2026-11-01"),
                ("filter[to]", "1800000000000"),
            ]),
            now,
            retention,
        )
        .unwrap_or_else(|_| unreachable!());
        assert_eq!(q.to, now);
        assert!(list_query(&params(&[("filter[from]", "yesterday")]), now, retention).is_err());
        assert!(list_query(&params(&[("page[size]", "0")]), now, retention).is_err());
        assert!(list_query(&params(&[("filter[status]", "open")]), now, retention).is_err());
    }
}
