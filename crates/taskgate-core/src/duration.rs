//! Expiry inputs: jose's relative-time strings and `expirationTime` semantics, and the npm
//! `parse-duration` strings of the user-actor exchange. Pure functions of their inputs and `now`; arithmetic saturates, never panics.

use serde::Deserialize;

/// An `expirationTime` as clients send it: a JSON number or a string. What each means depends
/// on the route (jose: a number is absolute epoch seconds, a string relative; the UAT exchange
/// has its own rules), so this only keeps the shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ExpirationInput {
    /// A JSON number (integer or not).
    Seconds(f64),
    /// A JSON string.
    Text(String),
}

/// Why an expiry could not be computed.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not a relative time jose accepts, or a number that is not finite.
    #[error("invalid expiration time")]
    Invalid,
}

// Seconds per unit, as jose (`secs.ts`) and `parse-duration` both count them.
/// Seconds in a minute.
const MINUTE: f64 = 60.0;
/// Seconds in an hour.
const HOUR: f64 = 3600.0;
/// Seconds in a day (no leap seconds, as JavaScript).
const DAY: f64 = 86_400.0;
/// Seconds in a week.
const WEEK: f64 = 604_800.0;
/// A year is 365.25 days in both libraries.
const YEAR: f64 = 31_557_600.0;
/// `parse-duration`'s month: a twelfth of its year.
const MONTH: f64 = YEAR / 12.0;

/// The units of jose's regex: `seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y`.
fn jose_unit_seconds(unit: &str) -> Option<f64> {
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

/// jose's number: `\d+|\d+\.\d+` (ASCII digits, at most one inner dot).
fn jose_number(s: &str) -> Option<f64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    s.parse().ok()
}

/// Seconds of a jose relative time, the regex
/// `^(\+|-)? ?(\d+|\d+\.\d+) ?(unit)(?: (ago|from now))?$` (case-insensitive), rounded to
/// whole seconds. A leading `-` or a trailing ` ago` makes it negative; a sign together with
/// `ago`/`from now` is invalid. `None` when it does not match.
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
    rest = rest.strip_prefix(' ').unwrap_or(rest);
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
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, unit) = rest.split_at(number_end);
    let value = jose_number(number)?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    // jose rounds the magnitude, then applies the sign.
    let seconds = (value * jose_unit_seconds(unit)?).round();
    let factor = sign.or(suffix).unwrap_or(1.0);
    // `as` saturates: an absurd "9999999999999999999y" becomes i64::MAX, not a panic.
    Some((seconds * factor) as i64)
}

/// An absolute `exp` (epoch seconds) from a jose `expirationTime`: a number is already absolute
/// epoch seconds (so `3600` is in 1970, as upstream), a string is relative to `now_secs`, and
/// absent means `default_relative` (e.g. `"15m"`).
pub fn jose_expiration(
    input: Option<&ExpirationInput>,
    default_relative: &str,
    now_secs: i64,
) -> Result<i64, DurationError> {
    let relative = |s: &str| {
        parse_jose_relative(s)
            .map(|d| now_secs.saturating_add(d))
            .ok_or(DurationError::Invalid)
    };
    match input {
        Some(ExpirationInput::Seconds(n)) if n.is_finite() => Ok(n.floor() as i64),
        Some(ExpirationInput::Seconds(_)) => Err(DurationError::Invalid),
        Some(ExpirationInput::Text(s)) => relative(s),
        None => relative(default_relative),
    }
}

/// Milliseconds per `parse-duration` unit (lower case; a plural `s` is also accepted).
fn duration_unit_ms(unit: &str) -> Option<f64> {
    let ms = |u: &str| -> Option<f64> {
        Some(match u {
            "" | "ms" | "msec" | "millisecond" => 1.0,
            "ns" | "nanosecond" => 1e-6,
            "us" | "µs" | "μs" | "microsecond" => 1e-3,
            "mo" | "b" | "month" => MONTH * 1000.0,
            "wk" => WEEK * 1000.0,
            u => jose_unit_seconds(u)? * 1000.0,
        })
    };
    ms(unit).or_else(|| unit.strip_suffix('s').and_then(ms))
}

/// Milliseconds of an npm `parse-duration` string: one or more `<number>[ ]<unit>` terms,
/// optionally separated by spaces or commas (`1h30m`, `1h, 30m`, `1.5h`, `2 days`). A number
/// without a unit is milliseconds (`250`); a leading `-` makes a term negative; `_` or `,`
/// between digits is ignored (`1_000`).
///
/// Stricter than the npm package in one way: text that is not a term (an unknown unit, stray
/// words) makes the whole string unparseable, so the caller falls back to its default instead
/// of honouring half of the input.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let lower = remove_digit_separators(&s.trim().to_lowercase());
    let mut rest = lower.as_str();
    let mut total = 0.0;
    let mut terms = 0;
    while !rest.is_empty() {
        let number_end = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && c == '-')))
            .map_or(rest.len(), |(i, _)| i);
        let (number, tail) = rest.split_at(number_end);
        let value: f64 = number.parse().ok()?;
        let tail = tail.trim_start();
        let unit_end = tail
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_end);
        total += value * duration_unit_ms(unit)?;
        terms += 1;
        let next = after.trim_start_matches([',', ' ']);
        // A unitless term must end the input or be separated from the next (`5-3m` is not two
        // terms); `1h30m` needs no separator because the unit ends the term.
        if unit.is_empty() && next.len() == after.len() && !next.is_empty() {
            return None;
        }
        rest = next;
    }
    // An absurd input whose total is not finite is unparseable; a finite one saturates.
    (terms > 0 && total.is_finite()).then_some(total.round() as i64)
}

/// `parse-duration` drops a `,` or `_` between two digits before parsing.
fn remove_digit_separators(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let digit_at = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(char::is_ascii_digit)
    };
    chars
        .iter()
        .enumerate()
        .filter(|&(i, c)| {
            !(matches!(c, ',' | '_') && digit_at(i.checked_sub(1)) && digit_at(Some(i + 1)))
        })
        .map(|(_, c)| *c)
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn jose_relative_times() {
        // Expected values checked against jose 5.10's own parser.
        let cases: &[(&str, Option<i64>)] = &[
            ("15m", Some(900)),
            ("1h", Some(3600)),
            ("2 days", Some(172_800)),
            ("1.5h", Some(5400)),
            ("31d", Some(2_678_400)),
            ("1 year", Some(31_557_600)),
            ("1yrs", Some(31_557_600)),
            ("1 hrs", Some(3600)),
            ("0.5s", Some(1)),
            ("2.5s", Some(3)),
            ("-5m", Some(-300)),
            ("- 5m", Some(-300)),
            ("+ 5m", Some(300)),
            (" 5m", Some(300)),
            ("5 m", Some(300)),
            ("5m ago", Some(-300)),
            ("5m from now", Some(300)),
            ("5 MINUTES FROM NOW", Some(300)),
            ("2 Weeks", Some(1_209_600)),
            ("+5m ago", None),
            ("-5m from now", None),
            ("5  m", None),
            ("5m  ago", None),
            ("  5m", None),
            ("", None),
            ("soon", None),
            ("5", None),
            ("m5", None),
            ("5 parsecs", None),
            (".5h", None),
            ("5.h", None),
            ("1.2.3h", None),
            ("5m ", None),
            ("5mago", None),
            ("١h", None), // non-ASCII digits
        ];
        for (s, want) in cases {
            assert_eq!(parse_jose_relative(s), *want, "{s:?}");
        }
        assert_eq!(
            parse_jose_relative("99999999999999999999999y"),
            Some(i64::MAX)
        );
    }

    #[test]
    fn jose_expirations() {
        let secs = |n: f64| Some(ExpirationInput::Seconds(n));
        let text = |s: &str| Some(ExpirationInput::Text(s.into()));
        assert_eq!(jose_expiration(None, "1h", 100), Ok(3700));
        assert_eq!(jose_expiration(None, "15m", 100), Ok(1000));
        assert_eq!(
            jose_expiration(secs(3600.0).as_ref(), "1h", 100),
            Ok(3600),
            "numbers are absolute"
        );
        assert_eq!(
            jose_expiration(secs(1_770_000_000.7).as_ref(), "1h", 100),
            Ok(1_770_000_000)
        );
        assert_eq!(jose_expiration(text("10m").as_ref(), "1h", 100), Ok(700));
        assert_eq!(
            jose_expiration(text("5m ago").as_ref(), "1h", 1000),
            Ok(700)
        );
        assert_eq!(
            jose_expiration(text("x").as_ref(), "1h", 100),
            Err(DurationError::Invalid)
        );
        assert_eq!(
            jose_expiration(None, "bogus", 100),
            Err(DurationError::Invalid)
        );
        assert_eq!(
            jose_expiration(secs(f64::NAN).as_ref(), "1h", 100),
            Err(DurationError::Invalid)
        );
        assert_eq!(
            jose_expiration(text("999999999999999y").as_ref(), "1h", 100),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn expiration_input_from_json() {
        let parse = |s: &str| serde_json::from_str::<ExpirationInput>(s).unwrap();
        assert_eq!(parse("3600"), ExpirationInput::Seconds(3600.0));
        assert_eq!(parse("1.5"), ExpirationInput::Seconds(1.5));
        assert_eq!(parse("\"1h\""), ExpirationInput::Text("1h".into()));
        assert!(serde_json::from_str::<ExpirationInput>("true").is_err());
        assert!(serde_json::from_str::<ExpirationInput>("null").is_err());
    }

    #[test]
    fn parse_duration_strings() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1h30m", Some(5_400_000)),
            ("1h 30m", Some(5_400_000)),
            ("1h, 30m", Some(5_400_000)),
            ("365d", Some(31_536_000_000)),
            ("250", Some(250)),
            ("250ms", Some(250)),
            ("1.5h", Some(5_400_000)),
            (".5s", Some(500)),
            ("2 hours", Some(7_200_000)),
            ("15m", Some(900_000)),
            ("30 mins", Some(1_800_000)),
            ("1w", Some(604_800_000)),
            ("1y", Some(31_557_600_000)),
            ("1 Day", Some(86_400_000)),
            ("-5m", Some(-300_000)),
            ("1_000", Some(1000)),
            ("1,000ms", Some(1000)),
            ("nope", None),
            ("", None),
            ("   ", None),
            ("5 parsecs", None),
            ("1h and 30m", None),
            ("5-3m", None),
            ("1.2.3s", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration_ms(s), *want, "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = parse_jose_relative(&s);
            let _ = parse_duration_ms(&s);
        }

        #[test]
        fn jose_minutes(n in 0u32..1_000_000) {
            prop_assert_eq!(parse_jose_relative(&format!("{n}m")), Some(i64::from(n) * 60));
            prop_assert_eq!(parse_jose_relative(&format!("{n} minutes ago")), Some(-i64::from(n) * 60));
            prop_assert_eq!(parse_duration_ms(&format!("{n}m")), Some(i64::from(n) * 60_000));
        }
    }
}
