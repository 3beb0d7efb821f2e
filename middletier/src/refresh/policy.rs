//! When to fetch a feed next: the scheduler's policy, as plain arithmetic
//! on times passed in.
//!
//! - **Adaptive interval.** A feed is checked about four times per average
//!   gap between its posts over the last week (a feed posting hourly is
//!   checked every 15 minutes, one posting daily every 6 hours), between
//!   `min` and `max` (`--refresh-min-interval`, default 10 min;
//!   `--refresh-max-interval`, default 6 h). A feed with no post in a week
//!   is checked every `max`.
//! - **The publisher's wishes.** Never earlier than `Cache-Control:
//!   max-age`, `Expires`, RSS `<ttl>`, or a `Retry-After` sent with a 429 or
//!   503 allow, up to a day (a longer wish is more likely a misconfigured
//!   cache than a wish, and a day late is late enough).
//! - **Errors back off exponentially**: `min`, then 2×, 4×, ... up to `max`.
//!   After [`Policy::broken_after`] failures in a row (default 5) the feed
//!   is *broken*: users see it so, and it is still tried every `max`, so it
//!   recovers by itself when the publisher does.
//! - **Jitter** of ±10% spreads feeds that were added together, so they do
//!   not stay due together.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The publisher's hints about when to come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// `Cache-Control: max-age` (or `s-maxage`).
    pub max_age: Option<Duration>,
    /// `Expires`.
    pub expires: Option<DateTime<Utc>>,
    /// RSS `<ttl>`.
    pub ttl: Option<Duration>,
    /// `Retry-After`, sent with a 429 or 503.
    pub retry_after: Option<Duration>,
}

/// The longest a hint may delay the next fetch.
pub const HINT_CAP: Duration = Duration::from_secs(24 * 3600);

/// The scheduler's policy (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The shortest interval between two fetches of one feed.
    pub min: Duration,
    /// The longest, and the cap of the error backoff.
    pub max: Duration,
    /// Failures in a row after which a feed is shown as broken.
    pub broken_after: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(10 * 60),
            max: Duration::from_secs(6 * 3600),
            broken_after: 5,
        }
    }
}

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

impl Policy {
    /// The interval the feed's posting rate calls for. `posted` are the
    /// dates of its items (published, else when first stored).
    pub fn interval(&self, now: DateTime<Utc>, posted: &[DateTime<Utc>]) -> Duration {
        let week_ago = now - chrono::Duration::from_std(WEEK).unwrap_or_default();
        let recent = posted
            .iter()
            .filter(|t| **t > week_ago && **t <= now + chrono::Duration::days(1))
            .count();
        if recent == 0 {
            return self.max;
        }
        let gap = WEEK / u32::try_from(recent).unwrap_or(u32::MAX);
        (gap / 4).clamp(self.min, self.max.max(self.min))
    }

    /// The next fetch after a successful one (a new document or a 304).
    /// `jitter` is uniform in [0, 1).
    pub fn after_success(
        &self,
        now: DateTime<Utc>,
        posted: &[DateTime<Utc>],
        hints: &Hints,
        jitter: f64,
    ) -> DateTime<Utc> {
        let interval =
            jittered(self.interval(now, posted), jitter).clamp(self.min, self.max.max(self.min));
        not_before_hints(now, now + to_chrono(interval), hints)
    }

    /// The next fetch after the `failures`-th failure in a row.
    pub fn after_failure(
        &self,
        now: DateTime<Utc>,
        failures: u32,
        hints: &Hints,
        jitter: f64,
    ) -> DateTime<Utc> {
        let doublings = failures.saturating_sub(1).min(20);
        let backoff = self
            .min
            .saturating_mul(1 << doublings)
            .min(self.max.max(self.min));
        not_before_hints(now, now + to_chrono(jittered(backoff, jitter)), hints)
    }

    /// Whether a feed with `failures` failures in a row is broken.
    pub fn is_broken(&self, failures: u32) -> bool {
        failures >= self.broken_after
    }
}

/// `planned`, or later if a hint asks for later (up to [`HINT_CAP`]).
fn not_before_hints(now: DateTime<Utc>, planned: DateTime<Utc>, hints: &Hints) -> DateTime<Utc> {
    let cap = now + to_chrono(HINT_CAP);
    let wished = [hints.max_age, hints.ttl, hints.retry_after]
        .into_iter()
        .flatten()
        .map(|wait| now + to_chrono(wait))
        .chain(hints.expires)
        .max();
    match wished {
        Some(wished) => planned.max(wished.min(cap)),
        None => planned,
    }
}

fn jittered(interval: Duration, jitter: f64) -> Duration {
    interval.mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0))
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    const MIN: Duration = Duration::from_secs(600);
    const HOUR: i64 = 3600;

    fn policy() -> Policy {
        Policy::default()
    }

    #[test]
    fn the_interval_follows_the_posting_rate_between_min_and_max() {
        let now = at(0);
        let hourly: Vec<_> = (0..168).map(|h| at(-h * HOUR)).collect();
        assert_eq!(policy().interval(now, &hourly), Duration::from_secs(900));
        let daily: Vec<_> = (0..7).map(|d| at(-d * 24 * HOUR)).collect();
        assert_eq!(
            policy().interval(now, &daily),
            Duration::from_secs(6 * 3600)
        );
        let busy: Vec<_> = (0..5000).map(|m| at(-m * 60)).collect();
        assert_eq!(policy().interval(now, &busy), MIN);
        let silent = [at(-30 * 24 * HOUR)];
        assert_eq!(policy().interval(now, &silent), policy().max);
        assert_eq!(policy().interval(now, &[]), policy().max);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_the_bounds() {
        let hourly: Vec<_> = (0..168).map(|h| at(-h * HOUR)).collect();
        let early = policy().after_success(at(0), &hourly, &Hints::default(), 0.0);
        let late = policy().after_success(at(0), &hourly, &Hints::default(), 0.999);
        assert_eq!(early, at(810));
        assert!(late > at(980) && late <= at(990));
        let busy: Vec<_> = (0..5000).map(|m| at(-m * 60)).collect();
        assert_eq!(
            policy().after_success(at(0), &busy, &Hints::default(), 0.0),
            at(600),
            "never under min"
        );
    }

    #[test]
    fn hints_can_only_delay_and_only_up_to_a_day() {
        let hourly: Vec<_> = (0..168).map(|h| at(-h * HOUR)).collect();
        let with = |hints: Hints| policy().after_success(at(0), &hourly, &hints, 0.0);
        let two_hours = Some(Duration::from_secs(2 * 3600));
        assert_eq!(
            with(Hints {
                max_age: two_hours,
                ..Hints::default()
            }),
            at(2 * HOUR)
        );
        assert_eq!(
            with(Hints {
                ttl: two_hours,
                ..Hints::default()
            }),
            at(2 * HOUR)
        );
        assert_eq!(
            with(Hints {
                expires: Some(at(3 * HOUR)),
                ..Hints::default()
            }),
            at(3 * HOUR)
        );
        assert_eq!(
            with(Hints {
                max_age: Some(Duration::from_secs(60)),
                ..Hints::default()
            }),
            at(810),
            "a short max-age does not bring the fetch forward"
        );
        assert_eq!(
            with(Hints {
                expires: Some(at(30 * 24 * HOUR)),
                ..Hints::default()
            }),
            at(24 * HOUR)
        );
    }

    #[test]
    fn errors_back_off_exponentially_up_to_max_and_honour_retry_after() {
        let p = policy();
        let none = Hints::default();
        assert_eq!(p.after_failure(at(0), 1, &none, 0.5), at(600));
        assert_eq!(p.after_failure(at(0), 2, &none, 0.5), at(1200));
        assert_eq!(p.after_failure(at(0), 3, &none, 0.5), at(2400));
        assert_eq!(p.after_failure(at(0), 30, &none, 0.5), at(6 * HOUR));
        let retry_after = Hints {
            retry_after: Some(Duration::from_secs(3600)),
            ..Hints::default()
        };
        assert_eq!(p.after_failure(at(0), 1, &retry_after, 0.5), at(HOUR));
        assert!(!p.is_broken(4));
        assert!(p.is_broken(5));
    }
}
