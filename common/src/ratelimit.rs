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
//! A bucket belongs to a [`RateKey`]: the user, and where the edge knows
//! it, the client's address. The user alone is a name the client may
//! choose (every request a new name, behind a careless proxy) or share
//! (everyone is `default` without accounts), so it must not be the whole
//! key: one abuser would get a fresh bucket per request, or empty the one
//! bucket everyone shares.
//!
//! The limiter remembers each key it has seen; when it holds many, it
//! forgets those whose bucket is full again (at most once a second, so a
//! flood of made-up keys costs each call nothing extra), and memory stays
//! bounded.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::api::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys tracked before idle ones are forgotten.
const FORGET_ABOVE: usize = 10_000;

/// Whose bucket a call draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    user: UserId,
    client: Option<IpAddr>,
}

impl RateKey {
    /// The user alone (inside the stack, where the caller is the edge).
    pub fn user(user: &UserId) -> Self {
        Self {
            user: user.clone(),
            client: None,
        }
    }

    /// The user, calling from `client`.
    pub fn user_at(user: &UserId, client: IpAddr) -> Self {
        Self {
            user: user.clone(),
            client: Some(client),
        }
    }
}

/// A token bucket per key for write calls.
pub struct WriteLimiter {
    limiter: DefaultKeyedRateLimiter<RateKey>,
    clock: DefaultClock,
    /// When idle keys were last forgotten, in ms since `started`.
    last_forget: AtomicU64,
    started: std::time::Instant,
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
            last_forget: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// `Err(wait)` when `key` must wait before writing again.
    pub fn check(&self, key: &RateKey) -> Result<(), Duration> {
        let now = self.clock.now();
        if self.limiter.len() > FORGET_ABOVE {
            let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let last = self.last_forget.load(Ordering::Relaxed);
            if now_ms.saturating_sub(last) >= 1000
                && self
                    .last_forget
                    .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.limiter.retain_recent();
            }
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_writes_wait() {
        let limiter = WriteLimiter::new(1, 3).unwrap();
        let alice = RateKey::user(&UserId::parse("alice").unwrap());
        for _ in 0..3 {
            assert!(limiter.check(&alice).is_ok());
        }
        let wait = limiter.check(&alice).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limiter
                .check(&RateKey::user(&UserId::parse("bob").unwrap()))
                .is_ok(),
            "users are limited apart"
        );
    }

    #[test]
    fn one_client_cannot_empty_a_shared_users_bucket() {
        // Everyone is `default` without accounts: each client address has
        // a bucket of its own.
        let limiter = WriteLimiter::new(1, 2).unwrap();
        let default = UserId::parse("default").unwrap();
        let abuser = RateKey::user_at(&default, "203.0.113.9".parse().unwrap());
        while limiter.check(&abuser).is_ok() {}
        let neighbour = RateKey::user_at(&default, "198.51.100.7".parse().unwrap());
        assert!(limiter.check(&neighbour).is_ok());
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
        let alice = RateKey::user(&UserId::parse("alice").unwrap());
        assert!(limiter.check(&alice).is_ok());
        assert!(limiter.check(&alice).is_ok());
        let wait = limiter.check(&alice).unwrap_err();
        assert!(wait > Duration::from_secs(5), "{wait:?}");
    }
}
