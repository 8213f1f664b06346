//! Expiry inputs: jose's relative-time strings (spec/auth.md §3.1) and the `parse-duration`
//! strings of the user-actor exchange (§5.8 step 10).

use serde::Deserialize;

/// An `expirationTime` as clients send it: a number (absolute epoch seconds for jose) or a
/// string (relative).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ExpirationInput {
    Seconds(f64),
    Text(String),
}

/// Why an expiry could not be computed.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    #[error("invalid expiration time")]
    Invalid,
}

const MINUTE: f64 = 60.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;
const WEEK: f64 = 604_800.0;
const YEAR: f64 = 31_557_600.0; // 365.25 days, as jose

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => WEEK,
        "y" | "yr" | "yrs" | "year" | "years" => YEAR,
        _ => return None,
    })
}

/// Seconds of a jose relative time: `^(\+|-)? ?(\d+|\d+\.\d+) ?(unit)(?: (ago|from now))?$`,
/// case-insensitive, rounded; a leading `-` or a trailing ` ago` is negative; a sign together
/// with `ago`/`from now` is invalid.
pub fn parse_jose_relative(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut sign = None;
    if let Some(r) = rest.strip_prefix('+') {
        sign = Some(1.0);
        rest = r;
    } else if let Some(r) = rest.strip_prefix('-') {
        sign = Some(-1.0);
        rest = r;
    }
    if sign.is_some() {
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    let mut suffix = None;
    if let Some(r) = rest.strip_suffix(" ago") {
        suffix = Some(-1.0);
        rest = r;
    } else if let Some(r) = rest.strip_suffix(" from now") {
        suffix = Some(1.0);
        rest = r;
    }
    if sign.is_some() && suffix.is_some() {
        return None;
    }
    let digits_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, unit) = rest.split_at(digits_end);
    let valid_number = !number.is_empty()
        && !number.starts_with('.')
        && !number.ends_with('.')
        && number.matches('.').count() <= 1;
    if !valid_number {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let seconds = (value * unit_seconds(unit)?).round();
    let factor = sign.or(suffix).unwrap_or(1.0);
    Some((seconds * factor) as i64)
}

/// An absolute `exp` from a jose-style input: a number is absolute epoch seconds, a string is
/// relative to `now_secs`; absent means `default_relative`.
pub fn jose_expiration(
    input: Option<&ExpirationInput>,
    default_relative: &str,
    now_secs: i64,
) -> Result<i64, DurationError> {
    match input {
        Some(ExpirationInput::Seconds(n)) if n.is_finite() => Ok(n.floor() as i64),
        Some(ExpirationInput::Seconds(_)) => Err(DurationError::Invalid),
        Some(ExpirationInput::Text(s)) => parse_jose_relative(s)
            .map(|d| now_secs + d)
            .ok_or(DurationError::Invalid),
        None => parse_jose_relative(default_relative)
            .map(|d| now_secs + d)
            .ok_or(DurationError::Invalid),
    }
}

/// Milliseconds of an npm `parse-duration` string: a sequence of `<number><unit>` (units ms,
/// s, m, h, d, w, y and their long forms; a number without unit is milliseconds), e.g.
/// `1h30m`, `1.5h`, `250`.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut total = 0.0;
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(num_end);
        let value: f64 = number.parse().ok()?;
        let tail = tail.trim_start();
        let unit_end = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_end);
        let ms = match unit {
            "" | "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
            u => unit_seconds(u)? * 1000.0,
        };
        total += value * ms;
        any = true;
        rest = after.trim_start_matches([',', ' ']);
    }
    any.then_some(total.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jose_relative_times() {
        assert_eq!(parse_jose_relative("15m"), Some(900));
        assert_eq!(parse_jose_relative("1h"), Some(3600));
        assert_eq!(parse_jose_relative("2 days"), Some(172_800));
        assert_eq!(parse_jose_relative("1.5h"), Some(5400));
        assert_eq!(parse_jose_relative("31d"), Some(2_678_400));
        assert_eq!(parse_jose_relative("1 year"), Some(31_557_600));
        assert_eq!(parse_jose_relative("-5m"), Some(-300));
        assert_eq!(parse_jose_relative("5m ago"), Some(-300));
        assert_eq!(parse_jose_relative("5 MINUTES from now"), Some(300));
        assert_eq!(parse_jose_relative("+5m ago"), None);
        for bad in ["", "soon", "5", "m5", "5 parsecs", ".5h", "5.h", "1.2.3h"] {
            assert_eq!(parse_jose_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn jose_expirations() {
        assert_eq!(jose_expiration(None, "1h", 100), Ok(3700));
        assert_eq!(
            jose_expiration(Some(&ExpirationInput::Seconds(3600.0)), "1h", 100),
            Ok(3600),
            "numbers are absolute"
        );
        assert_eq!(
            jose_expiration(Some(&ExpirationInput::Text("10m".into())), "1h", 100),
            Ok(700)
        );
        assert_eq!(
            jose_expiration(Some(&ExpirationInput::Text("x".into())), "1h", 100),
            Err(DurationError::Invalid)
        );
    }

    #[test]
    fn parse_duration_strings() {
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("365d"), Some(31_536_000_000));
        assert_eq!(parse_duration_ms("250"), Some(250));
        assert_eq!(parse_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration_ms("2 hours"), Some(7_200_000));
        assert_eq!(parse_duration_ms("nope"), None);
        assert_eq!(parse_duration_ms(""), None);
    }
}
