//! A per-user limit on write calls (subscribe, unsubscribe, refresh) (used by both the
//! edge, to answer a flood with 429 before it uses up the bulkhead, and the
//! middletier, which guards its store the same way for direct callers).
//!
//! A person adds feeds a few at a time; a script hammering one user's list
//! is either a bug or abuse, and each write costs a store round trip (and a
//! fetch). So each user gets a token bucket (GCRA, from the `governor`
//! crate): a burst of `burst` writes, refilled at `per_second`. Past it, a
//! write is refused with 429 and how long to wait; reads are never limited.
//!
//! The limiter remembers each user it has seen; when it holds many, it
//! forgets those whose bucket is full again, so memory stays bounded even
//! when ids are made up.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::api::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Users tracked before idle ones are forgotten.
const FORGET_ABOVE: usize = 10_000;

/// A token bucket per user for subscribe and unsubscribe calls.
pub struct WriteLimiter {
    limiter: DefaultKeyedRateLimiter<UserId>,
    clock: DefaultClock,
}

impl std::fmt::Debug for WriteLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteLimiter")
            .field("users", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl WriteLimiter {
    /// `None` when either number is zero: no limit.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let quota =
            Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst)?);
        Some(Self::with_quota(quota))
    }

    /// One call per `period` on average, `burst` at once (for calls rarer
    /// than one a second); `None` when either is zero: no limit.
    pub fn every(period: Duration, burst: u32) -> Option<Self> {
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
        Some(Self::with_quota(quota))
    }

    fn with_quota(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when the user must wait before writing again.
    pub fn check(&self, user: &UserId) -> Result<(), Duration> {
        if self.limiter.len() > FORGET_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(user)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_writes_wait() {
        let limiter = WriteLimiter::new(1, 3).unwrap();
        let alice = UserId::parse("alice").unwrap();
        for _ in 0..3 {
            assert!(limiter.check(&alice).is_ok());
        }
        let wait = limiter.check(&alice).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limiter.check(&UserId::parse("bob").unwrap()).is_ok(),
            "users are limited apart"
        );
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(WriteLimiter::new(0, 10).is_none());
        assert!(WriteLimiter::new(10, 0).is_none());
        assert!(WriteLimiter::every(Duration::ZERO, 10).is_none());
    }

    #[test]
    fn a_slow_limit_counts_in_periods() {
        let limiter = WriteLimiter::every(Duration::from_secs(10), 2).unwrap();
        let alice = UserId::parse("alice").unwrap();
        assert!(limiter.check(&alice).is_ok());
        assert!(limiter.check(&alice).is_ok());
        let wait = limiter.check(&alice).unwrap_err();
        assert!(wait > Duration::from_secs(5), "{wait:?}");
    }
}
