//! API rate limits: the limiter configurations an organization can be given, their validation
//! and plain-English preview, and the two algorithms as pure functions of a bucket's state, the
//! configuration and `now` (milliseconds since the Unix epoch). The server keeps the state (in
//! process, or in Redis with the same arithmetic in a script); nothing here does IO.
//!
//! The algorithms are those of trigger.dev's limiter (Upstash's `tokenBucket` and
//! `fixedWindow`), so a bucket behaves the same whichever server answers:
//!
//! - a **token bucket** starts full at `max_tokens`; every whole `interval` since it was last
//!   refilled adds `refill_rate` tokens (capped at the maximum); a request takes one token or,
//!   when none is left, is refused until the next refill (`reset`);
//! - a **fixed window** lets `tokens` requests through in each aligned `window`.

use serde::{Deserialize, Serialize};

/// The most tokens a bucket may hold or a window may admit (bounds every stored count).
pub const MAX_TOKENS: u32 = 1_000_000;
/// The shortest refill interval an organization may be given.
pub const MIN_INTERVAL_MS: u64 = 1_000;
/// The longest refill interval an organization may be given.
pub const MAX_INTERVAL_MS: u64 = 3_600_000;

/// A duration as the limiter's configuration spells it: an integer and a unit (`ms`, `s`, `m`,
/// `h`, `d`), with at most one space between (`"10s"`, `"1 m"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    text: String,
    ms: u64,
}

impl Interval {
    /// Parses `"10s"`, `"1m"`, `"500 ms"`…; `None` for anything else or a zero duration.
    pub fn parse(s: &str) -> Option<Interval> {
        let digits_end = s.bytes().position(|b| !b.is_ascii_digit())?;
        let (number, rest) = s.split_at(digits_end);
        let unit = rest.strip_prefix(' ').unwrap_or(rest);
        let per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        let ms = n.checked_mul(per_unit)?;
        (ms > 0).then(|| Interval {
            text: s.to_string(),
            ms,
        })
    }

    pub fn millis(&self) -> u64 {
        self.ms
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Interval::parse(&s)
            .ok_or_else(|| serde::de::Error::custom("a duration such as \"10s\", \"1m\" or \"1h\""))
    }
}

/// A limiter configuration, in trigger.dev's `apiRateLimiterConfig` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LimitConfig {
    #[serde(rename_all = "camelCase")]
    TokenBucket {
        refill_rate: u32,
        interval: Interval,
        max_tokens: u32,
    },
    #[serde(rename_all = "camelCase")]
    FixedWindow { window: Interval, tokens: u32 },
}

/// Why an organization's limit was refused: the field and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidLimit {
    pub field: &'static str,
    pub message: &'static str,
}

fn invalid(field: &'static str, message: &'static str) -> InvalidLimit {
    InvalidLimit { field, message }
}

impl LimitConfig {
    /// A token bucket, checked as [`LimitConfig::validate_override`] would.
    pub fn token_bucket(
        refill_rate: u32,
        interval: Interval,
        max_tokens: u32,
    ) -> Result<Self, InvalidLimit> {
        let config = LimitConfig::TokenBucket {
            refill_rate,
            interval,
            max_tokens,
        };
        config.validate_override().map(|()| config)
    }

    /// The rules for an organization's override: a token bucket refilling at least one token
    /// per interval, an interval from one second to one hour, a maximum no smaller than the
    /// refill and no larger than [`MAX_TOKENS`].
    pub fn validate_override(&self) -> Result<(), InvalidLimit> {
        let LimitConfig::TokenBucket {
            refill_rate,
            interval,
            max_tokens,
        } = self
        else {
            return Err(invalid(
                "type",
                "an organization's limit must be a \"tokenBucket\"",
            ));
        };
        if *refill_rate < 1 || *refill_rate > MAX_TOKENS {
            return Err(invalid("refillRate", "must be from 1 to 1000000"));
        }
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval.millis()) {
            return Err(invalid("interval", "must be from 1s to 1h"));
        }
        if *max_tokens < *refill_rate || *max_tokens > MAX_TOKENS {
            return Err(invalid(
                "maxTokens",
                "must be at least refillRate and at most 1000000",
            ));
        }
        Ok(())
    }

    /// Checks a configured default (the JWT window, which is a fixed window, included).
    pub fn validate_default(&self) -> Result<(), InvalidLimit> {
        match self {
            LimitConfig::TokenBucket { .. } => self.validate_override(),
            LimitConfig::FixedWindow { window, tokens } => {
                if *tokens < 1 || *tokens > MAX_TOKENS {
                    return Err(invalid("tokens", "must be from 1 to 1000000"));
                }
                if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&window.millis()) {
                    return Err(invalid("window", "must be from 1s to 1h"));
                }
                Ok(())
            }
        }
    }

    /// The `x-ratelimit-limit` of this configuration.
    pub fn limit(&self) -> u32 {
        match self {
            LimitConfig::TokenBucket { max_tokens, .. } => *max_tokens,
            LimitConfig::FixedWindow { tokens, .. } => *tokens,
        }
    }

    /// What the limit allows, in words: "sustains 25 requests per second, bursts to 750".
    pub fn preview(&self) -> String {
        let (per, interval_ms, burst) = match self {
            LimitConfig::TokenBucket {
                refill_rate,
                interval,
                max_tokens,
            } => (*refill_rate, interval.millis(), *max_tokens),
            LimitConfig::FixedWindow { window, tokens } => (*tokens, window.millis(), *tokens),
        };
        let per_ms = f64::from(per) / interval_ms as f64;
        let (rate, unit) = [(1_000.0, "second"), (60_000.0, "minute")]
            .into_iter()
            .map(|(ms, unit)| (per_ms * ms, unit))
            .find(|(rate, _)| *rate >= 1.0)
            .unwrap_or((per_ms * 3_600_000.0, "hour"));
        let rate = format_rate(rate);
        let requests = if rate == "1" { "request" } else { "requests" };
        format!("sustains {rate} {requests} per {unit}, bursts to {burst}")
    }
}

/// A rate with at most two decimals and no trailing zeros.
fn format_rate(rate: f64) -> String {
    let s = format!("{rate:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `x-ratelimit-limit`.
    pub limit: u32,
    /// Tokens left after this request; `-1` when a token bucket refused it (as upstream's
    /// 429 body says; the header clamps it to 0).
    pub remaining: i64,
    /// When the bucket next refills or the window ends, in milliseconds since the epoch.
    pub reset_ms: i64,
}

/// A token bucket's state: the tokens left, and when it was last refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    pub tokens: u32,
    pub refilled_at_ms: i64,
}

/// Takes one token from a bucket (`None`: never used, so full). Returns the decision and the
/// state to store. A clock that went backwards refills nothing.
pub fn take_token(
    state: Option<BucketState>,
    refill_rate: u32,
    interval_ms: u64,
    max_tokens: u32,
    now_ms: i64,
) -> (Decision, BucketState) {
    let interval = i64::try_from(interval_ms.max(1)).unwrap_or(i64::MAX);
    let mut s = state.unwrap_or(BucketState {
        tokens: max_tokens,
        refilled_at_ms: now_ms,
    });
    let elapsed = now_ms.saturating_sub(s.refilled_at_ms);
    if elapsed >= interval {
        let refills = elapsed / interval;
        let added = u64::try_from(refills)
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(refill_rate));
        s.tokens = u64::from(s.tokens)
            .saturating_add(added)
            .min(u64::from(max_tokens)) as u32;
        s.refilled_at_ms = s
            .refilled_at_ms
            .saturating_add(refills.saturating_mul(interval));
    }
    // A lowered maximum applies at once.
    s.tokens = s.tokens.min(max_tokens);
    let reset_ms = s.refilled_at_ms.saturating_add(interval);
    if s.tokens == 0 {
        let decision = Decision {
            allowed: false,
            limit: max_tokens,
            remaining: -1,
            reset_ms,
        };
        return (decision, s);
    }
    s.tokens -= 1;
    let decision = Decision {
        allowed: true,
        limit: max_tokens,
        remaining: i64::from(s.tokens),
        reset_ms,
    };
    (decision, s)
}

/// When a bucket in `state` is full again (and so the same as one never used).
pub fn bucket_full_at(
    state: BucketState,
    refill_rate: u32,
    interval_ms: u64,
    max_tokens: u32,
) -> i64 {
    let missing = u64::from(max_tokens.saturating_sub(state.tokens));
    let refills = missing.div_ceil(u64::from(refill_rate.max(1)));
    let wait = refills.saturating_mul(interval_ms);
    state
        .refilled_at_ms
        .saturating_add(i64::try_from(wait).unwrap_or(i64::MAX))
}

/// A fixed window's state: which window (`now / window`) and how many requests it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    pub window: i64,
    pub used: u32,
}

/// The fixed window `now_ms` falls in, `window_ms` wide: its number (`now / width`) and when
/// it ends (when its count resets).
pub fn window_of(window_ms: u64, now_ms: i64) -> (i64, i64) {
    let width = i64::try_from(window_ms.max(1)).unwrap_or(i64::MAX);
    let window = now_ms.div_euclid(width);
    (window, window.saturating_add(1).saturating_mul(width))
}

/// Counts one request in the window of `now`.
pub fn count_in_window(
    state: Option<WindowState>,
    tokens: u32,
    window_ms: u64,
    now_ms: i64,
) -> (Decision, WindowState) {
    let (window, reset_ms) = window_of(window_ms, now_ms);
    let used = match state {
        Some(s) if s.window == window => s.used,
        _ => 0,
    };
    let used = used.saturating_add(1).min(MAX_TOKENS.saturating_mul(2));
    let decision = Decision {
        allowed: used <= tokens,
        limit: tokens,
        remaining: i64::from(tokens.saturating_sub(used)),
        reset_ms,
    };
    (decision, WindowState { window, used })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(refill: u32, interval: &str, max: u32) -> LimitConfig {
        LimitConfig::TokenBucket {
            refill_rate: refill,
            interval: Interval::parse(interval).unwrap(),
            max_tokens: max,
        }
    }

    #[test]
    fn intervals_parse_as_the_limiter_spells_them() {
        assert_eq!(Interval::parse("10s").unwrap().millis(), 10_000);
        assert_eq!(Interval::parse("1 m").unwrap().millis(), 60_000);
        assert_eq!(Interval::parse("500ms").unwrap().millis(), 500);
        assert_eq!(Interval::parse("1h").unwrap().millis(), 3_600_000);
        for bad in [
            "",
            "s",
            "10",
            "1.5s",
            "10  s",
            "-1s",
            "0s",
            "10sec",
            "99999999999999999d",
        ] {
            assert!(Interval::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_wire_shape_is_upstreams() {
        let config: LimitConfig = serde_json::from_str(
            r#"{"type":"tokenBucket","refillRate":5,"interval":"1m","maxTokens":5}"#,
        )
        .unwrap();
        assert_eq!(config, bucket(5, "1m", 5));
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"type":"tokenBucket","refillRate":5,"interval":"1m","maxTokens":5}"#
        );
    }

    #[test]
    fn an_override_names_the_field_it_breaks() {
        let field = |c: LimitConfig| c.validate_override().unwrap_err().field;
        assert_eq!(field(bucket(0, "1m", 5)), "refillRate");
        assert_eq!(field(bucket(5, "500ms", 5)), "interval");
        assert_eq!(field(bucket(5, "2h", 5)), "interval");
        assert_eq!(field(bucket(5, "1m", 4)), "maxTokens");
        assert_eq!(field(bucket(5, "1m", 2_000_000)), "maxTokens");
        let window = LimitConfig::FixedWindow {
            window: Interval::parse("1m").unwrap(),
            tokens: 5,
        };
        assert_eq!(field(window), "type");
        assert!(bucket(1, "1s", 1).validate_override().is_ok());
        assert!(bucket(5, "1h", 5).validate_override().is_ok());
    }

    #[test]
    fn previews_say_the_sustained_rate_and_the_burst() {
        assert_eq!(
            bucket(250, "10s", 750).preview(),
            "sustains 25 requests per second, bursts to 750"
        );
        assert_eq!(
            bucket(5, "1m", 5).preview(),
            "sustains 5 requests per minute, bursts to 5"
        );
        assert_eq!(
            bucket(1, "1h", 10).preview(),
            "sustains 1 request per hour, bursts to 10"
        );
        assert_eq!(
            bucket(100, "1m", 300).preview(),
            "sustains 1.67 requests per second, bursts to 300"
        );
    }

    #[test]
    fn a_bucket_starts_full_and_refuses_when_empty() {
        let mut state = None;
        for left in (0..3).rev() {
            let (d, s) = take_token(state, 1, 1_000, 3, 10_000);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
            assert_eq!(d.reset_ms, 11_000);
            state = Some(s);
        }
        let (d, _) = take_token(state, 1, 1_000, 3, 10_999);
        assert!(!d.allowed);
        assert_eq!(d.remaining, -1);
        assert_eq!(d.reset_ms, 11_000);
    }

    #[test]
    fn a_bucket_refills_by_whole_intervals_up_to_its_maximum() {
        let empty = BucketState {
            tokens: 0,
            refilled_at_ms: 0,
        };
        // 2.5 intervals: two refills of 2, counted from the last refill, not from now.
        let (d, s) = take_token(Some(empty), 2, 1_000, 10, 2_500);
        assert!(d.allowed);
        assert_eq!(d.remaining, 3);
        assert_eq!(s.refilled_at_ms, 2_000);
        assert_eq!(d.reset_ms, 3_000);
        let (d, _) = take_token(Some(empty), 2, 1_000, 10, 1_000_000);
        assert_eq!(d.remaining, 9, "never above the maximum");
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let s = BucketState {
            tokens: 0,
            refilled_at_ms: 5_000,
        };
        let (d, _) = take_token(Some(s), 1, 1_000, 3, 1_000);
        assert!(!d.allowed);
    }

    #[test]
    fn a_bucket_is_full_again_after_enough_refills() {
        let s = BucketState {
            tokens: 1,
            refilled_at_ms: 0,
        };
        assert_eq!(bucket_full_at(s, 2, 1_000, 6), 3_000);
        let full = BucketState {
            tokens: 6,
            refilled_at_ms: 7,
        };
        assert_eq!(bucket_full_at(full, 2, 1_000, 6), 7);
    }

    #[test]
    fn a_fixed_window_admits_its_tokens_then_starts_over() {
        let mut state = None;
        for n in 1..=3 {
            let (d, s) = count_in_window(state, 2, 60_000, 61_000);
            assert_eq!(d.allowed, n <= 2);
            assert_eq!(d.remaining, i64::from(2u32.saturating_sub(n)));
            assert_eq!(d.reset_ms, 120_000);
            state = Some(s);
        }
        let (d, _) = count_in_window(state, 2, 60_000, 120_000);
        assert!(d.allowed, "a new window");
        assert_eq!(d.remaining, 1);
    }
}
