//! Sign-in throttling: after [`MAX_FAILURES`] failures in [`WINDOW`] for
//! one key (a user name, a client address), further tries are refused
//! until the oldest failure leaves the window. A plain type, so the rule is
//! tested without a clock or a network; the handler keeps one per edge.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Failures allowed in the window (the contract: 5 a minute).
pub(crate) const MAX_FAILURES: usize = 5;
/// The window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Keys remembered at most; past it, the oldest-looking are dropped
/// (an attacker spraying addresses cannot grow the map without bound).
const MAX_KEYS: usize = 100_000;

/// Recent failures per key.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    /// `Err(wait)` while `key` has had too many failures just now.
    pub(crate) fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(times) = self.failures.get_mut(key) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() < MAX_FAILURES {
            if times.is_empty() {
                self.failures.remove(key);
            }
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err(WINDOW
            .saturating_sub(now.duration_since(oldest))
            .max(Duration::from_secs(1)))
    }

    /// Counts a failure against `key`.
    pub(crate) fn fail(&mut self, key: &str, now: Instant) {
        if self.failures.len() >= MAX_KEYS && !self.failures.contains_key(key) {
            self.failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
            if self.failures.len() >= MAX_KEYS {
                self.failures.clear();
            }
        }
        let times = self.failures.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    /// Forgets `key`'s failures (a successful sign-in).
    pub(crate) fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_a_minute_lock_the_key_until_the_oldest_ages_out() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(throttle.check("user:bob", start).is_ok());
            throttle.fail("user:bob", start + Duration::from_secs(i as u64));
        }
        let wait = throttle
            .check("user:bob", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            throttle.check("user:alice", start).is_ok(),
            "keys are apart"
        );
        assert!(throttle.check("user:bob", start + WINDOW).is_ok());
    }

    #[test]
    fn a_success_clears_the_key() {
        let mut throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            throttle.fail("ip:203.0.113.1", now);
        }
        assert!(throttle.check("ip:203.0.113.1", now).is_err());
        throttle.clear("ip:203.0.113.1");
        assert!(throttle.check("ip:203.0.113.1", now).is_ok());
    }
}
