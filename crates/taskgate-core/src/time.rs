//! Time: the [`Clock`] every use of "now" goes through, so tests move time instead of sleeping,
//! and the conversions between timestamps and the millisecond integers the stores keep.
//!
//! Nothing here panics: arithmetic that would leave chrono's range is clamped to its ends.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};

/// A source of the current time. The server holds one `Arc<dyn Clock>`; tests hold a
/// [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// The current instant in milliseconds since the Unix epoch: `to_millis(self.now())`,
    /// which a clock may answer without building a date (the rate limiter asks on every
    /// request).
    fn now_millis(&self) -> i64 {
        to_millis(self.now())
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Truncated to milliseconds, the precision every store keeps, so a time in a response
    /// reads the same when the row is read back.
    fn now(&self) -> DateTime<Utc> {
        from_millis(Utc::now().timestamp_millis())
    }

    fn now_millis(&self) -> i64 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        match since {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            // A clock set before 1970: the date path handles negative times.
            Err(_) => to_millis(self.now()),
        }
    }
}

/// A clock that moves only when told to, for tests of expiry and grace windows.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t` (backwards too).
    pub fn set(&self, t: DateTime<Utc>) {
        // A poisoned lock still holds a valid timestamp: a panicking test elsewhere must not
        // make this clock unusable.
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    /// Moves the clock by `by` (negative moves back), clamped to chrono's range.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = add_clamped(*now, by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `t + by`, clamped to chrono's range instead of panicking on overflow.
pub fn add_clamped(t: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    t.checked_add_signed(by)
        .unwrap_or(if by < Duration::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// Milliseconds since the Unix epoch (negative before 1970).
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time `ms` milliseconds after the Unix epoch, clamped to chrono's range (never panics).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    match Utc.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t,
        _ if ms < 0 => DateTime::<Utc>::MIN_UTC,
        _ => DateTime::<Utc>::MAX_UTC,
    }
}

/// ISO-8601 with milliseconds and `Z`, as JavaScript's `toISOString`: `2026-01-02T03:04:05.678Z`.
pub fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_has_the_stores_precision() {
        use chrono::Timelike;
        assert_eq!(SystemClock.now().nanosecond() % 1_000_000, 0);
    }

    #[test]
    fn the_system_clocks_milliseconds_are_its_date() {
        let before = to_millis(SystemClock.now());
        let ms = SystemClock.now_millis();
        let after = to_millis(SystemClock.now());
        assert!(before <= ms && ms <= after, "{before} <= {ms} <= {after}");
    }

    #[test]
    fn a_manual_clocks_milliseconds_follow_it() {
        let clock = ManualClock::new(at(2026, 1, 2));
        clock.advance(Duration::milliseconds(1_234));
        assert_eq!(clock.now_millis(), to_millis(at(2026, 1, 2)) + 1_234);
    }

    fn at(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn millis_round_trip_and_clamp() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + Duration::milliseconds(678);
        assert_eq!(to_millis(t), 1_767_323_045_678);
        assert_eq!(from_millis(to_millis(t)), t);
        assert_eq!(from_millis(-1), at(1970, 1, 1) - Duration::milliseconds(1));
        assert_eq!(from_millis(i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(from_millis(i64::MIN), DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn iso_millis_is_javascripts_to_iso_string() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + Duration::milliseconds(678);
        assert_eq!(iso_millis(t), "2026-01-02T03:04:05.678Z");
        assert_eq!(iso_millis(from_millis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(at(2031, 1, 1)), "2031-01-01T00:00:00.000Z");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(at(2026, 1, 1));
        assert_eq!(c.now(), at(2026, 1, 1));
        assert_eq!(c.now(), at(2026, 1, 1), "reading does not move it");
        c.advance(Duration::hours(25));
        assert_eq!(c.now(), at(2026, 1, 2) + Duration::hours(1));
        c.advance(Duration::hours(-1));
        assert_eq!(c.now(), at(2026, 1, 2));
        c.set(at(2020, 5, 5));
        assert_eq!(c.now(), at(2020, 5, 5));
    }

    #[test]
    fn manual_clock_clamps_instead_of_panicking() {
        let c = ManualClock::new(at(2026, 1, 1));
        c.advance(Duration::MAX);
        assert_eq!(c.now(), DateTime::<Utc>::MAX_UTC);
        c.advance(Duration::MIN);
        c.advance(Duration::MIN);
        assert_eq!(c.now(), DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn clocks_are_usable_as_trait_objects() {
        let clocks: Vec<Box<dyn Clock>> = vec![
            Box::new(SystemClock),
            Box::new(ManualClock::new(at(2026, 1, 1))),
        ];
        assert!(clocks[0].now() > at(2020, 1, 1));
        assert_eq!(clocks[1].now(), at(2026, 1, 1));
    }
}
