//! The circuit breaker: a state machine, kept apart from the code that
//! runs calls through it (see [`super::command`]).
//!
//! - **Closed**: calls go through. When, over the rolling window, at least
//!   `volume_threshold` calls (default 20) were made and at least
//!   `error_threshold` % of them (default 50) failed, it **opens**.
//! - **Open**: every call is refused at once ("short-circuited"), without
//!   touching the failing dependency, for the sleep window (default 5 s).
//! - **Half-open**: after the sleep window, exactly one call (the trial) is
//!   let through. If it succeeds the breaker closes and the statistics start
//!   afresh; if it fails, the breaker opens for another sleep window.
//!
//! These are Hystrix's semantics and defaults. While the trial runs, every
//! other call is short-circuited, however long the trial takes (up to its
//! command's timeout, which may be longer than the sleep window): two
//! trials never overlap. A trial always reports, because the command runs
//! it to its end even when its caller goes away (see [`super::command`]).

use std::time::Duration;

use tokio::time::Instant;

use super::window::Health;

/// The breaker's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// A disabled breaker never opens (Hystrix's `circuitBreaker.enabled`).
    pub enabled: bool,
    /// Calls in the window before the breaker may open.
    pub volume_threshold: u64,
    /// Error percentage in the window that opens it.
    pub error_threshold_percentage: u64,
    /// How long an open breaker refuses calls before one trial.
    pub sleep_window: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            volume_threshold: 20,
            error_threshold_percentage: 50,
            sleep_window: Duration::from_secs(5),
        }
    }
}

/// Where the breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls are refused until the sleep window has passed.
    Open {
        /// When it opened.
        since: Instant,
    },
    /// One trial call is running; the others are refused.
    HalfOpen {
        /// When the trial started.
        since: Instant,
    },
}

impl State {
    /// `closed`, `open` or `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half-open",
        }
    }
}

/// Leave to make one call; handed back with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a permit's result must be reported to the breaker"]
pub struct Permit {
    /// The single call let through while half-open.
    pub trial: bool,
}

/// What a result did to the breaker, for logs and the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Enough failures: the breaker opened.
    Opened,
    /// The trial succeeded: the breaker closed.
    Closed,
    /// The trial failed: open for another sleep window.
    Reopened,
}

/// The breaker's state machine (see the module docs).
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: State,
}

impl CircuitBreaker {
    /// A closed breaker with `settings`.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: State::Closed,
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// Its state now.
    pub fn state(&self) -> State {
        self.state
    }

    /// Hystrix's `isOpen`: true from opening until a trial succeeds.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed)
    }

    /// May a call go through now? `None` means short-circuit it.
    pub fn admit(&mut self, now: Instant) -> Option<Permit> {
        if !self.settings.enabled {
            return Some(Permit { trial: false });
        }
        match self.state {
            State::Closed => Some(Permit { trial: false }),
            State::Open { since }
                if now.saturating_duration_since(since) >= self.settings.sleep_window =>
            {
                self.state = State::HalfOpen { since: now };
                Some(Permit { trial: true })
            }
            // Open within the sleep window, or half-open with its one trial
            // still running.
            State::Open { .. } | State::HalfOpen { .. } => None,
        }
    }

    /// Reports a call's result. `healthy` is false for failures, timeouts
    /// and rejections; `health` is the rolling window including this call.
    pub fn record(
        &mut self,
        permit: Permit,
        healthy: bool,
        health: Health,
        now: Instant,
    ) -> Option<Transition> {
        if !self.settings.enabled {
            return None;
        }
        match self.state {
            State::HalfOpen { .. } if permit.trial => {
                if healthy {
                    self.state = State::Closed;
                    Some(Transition::Closed)
                } else {
                    self.state = State::Open { since: now };
                    Some(Transition::Reopened)
                }
            }
            State::Closed
                if !healthy
                    && health.total >= self.settings.volume_threshold
                    && health.error_percentage >= self.settings.error_threshold_percentage =>
            {
                self.state = State::Open { since: now };
                Some(Transition::Opened)
            }
            // Late results of calls admitted before the breaker opened, or
            // while it was half-open, change nothing.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLEEP: Duration = Duration::from_secs(5);

    fn health(total: u64, errors: u64) -> Health {
        Health {
            total,
            errors,
            error_percentage: errors * 100 / total.max(1),
        }
    }

    fn open_breaker(t0: Instant) -> CircuitBreaker {
        let mut breaker = CircuitBreaker::new(BreakerSettings::default());
        let permit = breaker.admit(t0).unwrap();
        assert_eq!(
            breaker.record(permit, false, health(20, 20), t0),
            Some(Transition::Opened)
        );
        breaker
    }

    #[test]
    fn closed_lets_calls_through_until_volume_and_error_rate_are_reached() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::new(BreakerSettings::default());
        let permit = breaker.admit(t0).unwrap();
        assert!(!permit.trial);
        // 19 failures out of 19: not enough volume yet.
        assert_eq!(breaker.record(permit, false, health(19, 19), t0), None);
        // 20 calls but only 45 % errors: still closed.
        assert_eq!(breaker.record(permit, false, health(20, 9), t0), None);
        assert_eq!(breaker.state(), State::Closed);
        // 20 calls, 50 % errors: open.
        assert_eq!(
            breaker.record(permit, false, health(20, 10), t0),
            Some(Transition::Opened)
        );
        assert!(breaker.is_open());
    }

    #[test]
    fn a_success_never_opens_the_breaker() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::new(BreakerSettings::default());
        let permit = breaker.admit(t0).unwrap();
        assert_eq!(breaker.record(permit, true, health(100, 90), t0), None);
    }

    #[test]
    fn open_short_circuits_for_the_sleep_window() {
        let t0 = Instant::now();
        let mut breaker = open_breaker(t0);
        assert_eq!(breaker.admit(t0 + SLEEP - Duration::from_millis(1)), None);
    }

    #[test]
    fn closed_to_open_to_half_open_to_closed() {
        let t0 = Instant::now();
        let mut breaker = open_breaker(t0);
        let trial = breaker
            .admit(t0 + SLEEP)
            .expect("one trial after the sleep window");
        assert!(trial.trial);
        assert!(matches!(breaker.state(), State::HalfOpen { .. }));
        assert_eq!(breaker.admit(t0 + SLEEP), None, "only one trial at a time");
        assert_eq!(
            breaker.record(trial, true, health(1, 0), t0 + SLEEP),
            Some(Transition::Closed)
        );
        assert_eq!(breaker.state(), State::Closed);
        assert!(breaker.admit(t0 + SLEEP).is_some());
    }

    #[test]
    fn a_failed_trial_reopens_for_another_sleep_window() {
        let t0 = Instant::now();
        let mut breaker = open_breaker(t0);
        let t1 = t0 + SLEEP;
        let trial = breaker.admit(t1).unwrap();
        assert_eq!(
            breaker.record(trial, false, health(1, 1), t1),
            Some(Transition::Reopened)
        );
        assert_eq!(breaker.state(), State::Open { since: t1 });
        assert_eq!(breaker.admit(t1 + SLEEP - Duration::from_millis(1)), None);
        assert!(breaker.admit(t1 + SLEEP).unwrap().trial);
    }

    #[test]
    fn late_results_do_not_close_a_half_open_breaker() {
        let t0 = Instant::now();
        let mut breaker = open_breaker(t0);
        let _trial = breaker.admit(t0 + SLEEP).unwrap();
        let old = Permit { trial: false };
        assert_eq!(breaker.record(old, true, health(1, 0), t0 + SLEEP), None);
        assert!(breaker.is_open());
    }

    #[test]
    fn a_trial_that_outlasts_the_sleep_window_is_still_the_only_trial() {
        let t0 = Instant::now();
        let mut breaker = open_breaker(t0);
        let trial = breaker.admit(t0 + SLEEP).unwrap();
        // The trial is slow (a 10 s command timeout, a 5 s sleep window).
        assert_eq!(breaker.admit(t0 + SLEEP * 2), None);
        assert_eq!(breaker.admit(t0 + SLEEP * 3), None);
        assert_eq!(
            breaker.record(trial, false, health(1, 1), t0 + SLEEP * 3),
            Some(Transition::Reopened)
        );
        assert!(breaker.admit(t0 + SLEEP * 4).unwrap().trial);
    }

    #[test]
    fn a_disabled_breaker_never_opens() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::new(BreakerSettings {
            enabled: false,
            ..BreakerSettings::default()
        });
        let permit = breaker.admit(t0).unwrap();
        assert_eq!(breaker.record(permit, false, health(100, 100), t0), None);
        assert!(breaker.admit(t0).is_some());
    }
}
