//! Client-side load balancing with retries, the Ribbon way.
//!
//! Ribbon, in the 2013 recipe, chose a server for each call from Eureka's
//! list (round robin over the `UP` instances), skipped servers that had just
//! failed ("availability filtering"), and retried failed calls: by default
//! once more on the same server and once on the next. We keep all three,
//! as plain types with no I/O, so each rule is unit-tested on its own:
//!
//! - [`LoadBalancer`] chooses: round robin over the candidates, skipping any
//!   whose connection failed within the cool-down (default 10 s). After the
//!   cool-down, *one* call is let through as a trial, as a half-open
//!   breaker does; the others keep skipping the instance until the trial
//!   connects (it is back) or fails (another cool-down). A dead container
//!   does not refuse, it times out, so without the single trial every
//!   concurrent call would pay that timeout after each cool-down. If every
//!   candidate is cooling down it still picks one: trying a server that may
//!   have come back beats failing for sure.
//! - [`RetryPolicy`] decides what follows a failure. Only connect errors and
//!   timeouts are retried (a 5xx is an answer, and the circuit breaker's
//!   business). A timeout is retried once on the same server, then on the
//!   next; a *refused* connection goes straight to the next server, since
//!   the same server has just told us it is not there (Ribbon would knock
//!   twice).
//!
//! [`http::BalancedClient`] is the shell that runs these over HTTP, with every
//! attempt inside one overall deadline: in the 2013 recipe Ribbon's retries
//! could outlast Hystrix's timeout, so a caller gave up while retries were
//! still being sent. Here the deadline bounds them all.

pub mod http;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::discovery::ServiceInstance;

/// Round robin with availability filtering.
#[derive(Debug)]
pub struct LoadBalancer {
    /// Advances once per choice; shared by all callers.
    cursor: AtomicUsize,
    cooldown: Duration,
    /// Instance id → its cool-down, for instances whose last connection
    /// failed.
    failures: Mutex<HashMap<String, Cooling>>,
}

/// An instance whose last connection failed.
#[derive(Debug, Clone, Copy)]
struct Cooling {
    failed_at: Instant,
    /// When a trial call was let through after the cool-down, if one is
    /// under way. A trial that never reports back is given up after one
    /// more cool-down, and another is let through.
    trial_since: Option<Instant>,
}

impl Cooling {
    /// Whether a new trial may start at `now`.
    fn trial_allowed(&self, now: Instant, cooldown: Duration) -> bool {
        let since = |t: Instant| now.saturating_duration_since(t);
        since(self.failed_at) >= cooldown && self.trial_since.is_none_or(|t| since(t) >= cooldown)
    }
}

impl LoadBalancer {
    /// A balancer that skips an instance for `cooldown` after its connection
    /// failed.
    pub fn new(cooldown: Duration) -> Self {
        Self {
            cursor: AtomicUsize::new(0),
            cooldown,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The next instance to call, or `None` if there are no candidates once
    /// `exclude` (instances already tried for this call) is removed.
    pub fn choose<'a>(
        &self,
        instances: &'a [ServiceInstance],
        exclude: &[String],
        now: Instant,
    ) -> Option<&'a ServiceInstance> {
        let candidates: Vec<&ServiceInstance> = instances
            .iter()
            .filter(|i| !exclude.contains(&i.id))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let n = candidates.len();
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        (0..n)
            .map(|k| candidates[(start + k) % n])
            .find(|i| match failures.get_mut(&i.id) {
                None => true,
                Some(cooling) if cooling.trial_allowed(now, self.cooldown) => {
                    // This call is the trial; the others keep skipping it.
                    cooling.trial_since = Some(now);
                    true
                }
                Some(_) => false,
            })
            .or(Some(candidates[start % n]))
    }

    /// A connection to `id` failed: skip it for the cool-down (again, if
    /// this was its trial).
    pub fn record_connect_failure(&self, id: &str, now: Instant) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id.to_owned(),
                Cooling {
                    failed_at: now,
                    trial_since: None,
                },
            );
    }

    /// `id` answered: it is available again.
    pub fn record_success(&self, id: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Whether `id` would be chosen: not cooling down, or due a trial that
    /// no call has taken yet.
    pub fn is_available(&self, id: &str, now: Instant) -> bool {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures
            .get(id)
            .is_none_or(|cooling| cooling.trial_allowed(now, self.cooldown))
    }
}

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made (refused, unreachable, connect timeout).
    Connect,
    /// Connected, but no answer in time.
    Timeout,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Retry on the server that just failed.
    SameServer,
    /// Try another server.
    NextServer,
    /// Stop: the call has failed.
    GiveUp,
}

/// Ribbon's `MaxAutoRetries` and `MaxAutoRetriesNextServer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts on the server that failed (timeouts only).
    pub same_server: u32,
    /// Other servers to try after that.
    pub next_servers: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            same_server: 1,
            next_servers: 1,
        }
    }
}

impl RetryPolicy {
    /// Decides after a failure, given how many retries this server has had
    /// and how many other servers were already tried.
    pub fn next(&self, failure: Failure, retries_here: u32, servers_switched: u32) -> Next {
        if failure == Failure::Timeout && retries_here < self.same_server {
            Next::SameServer
        } else if servers_switched < self.next_servers {
            Next::NextServer
        } else {
            Next::GiveUp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Status;

    fn instances(ids: &[&str]) -> Vec<ServiceInstance> {
        ids.iter()
            .map(|id| ServiceInstance {
                id: (*id).to_owned(),
                app: "MIDDLETIER".into(),
                host: format!("{id}.local"),
                port: 9191,
                status: Status::Up,
                vips: vec!["middletier".into()],
            })
            .collect()
    }

    fn picks(lb: &LoadBalancer, list: &[ServiceInstance], n: usize, now: Instant) -> Vec<String> {
        (0..n)
            .map(|_| lb.choose(list, &[], now).unwrap().id.clone())
            .collect()
    }

    #[test]
    fn round_robin_visits_every_instance_in_turn() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let list = instances(&["a", "b", "c"]);
        assert_eq!(
            picks(&lb, &list, 6, Instant::now()),
            ["a", "b", "c", "a", "b", "c"]
        );
    }

    #[test]
    fn an_instance_that_failed_to_connect_is_skipped_for_the_cooldown() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let list = instances(&["a", "b"]);
        let t0 = Instant::now();
        lb.record_connect_failure("a", t0);
        assert_eq!(
            picks(&lb, &list, 4, t0 + Duration::from_secs(9)),
            ["b", "b", "b", "b"]
        );
        assert!(!lb.is_available("a", t0 + Duration::from_secs(9)));
        // After the cool-down it is tried again.
        let later = picks(&lb, &list, 2, t0 + Duration::from_secs(10));
        assert!(later.contains(&"a".to_owned()), "{later:?}");
    }

    #[test]
    fn after_the_cooldown_one_call_is_the_trial_and_the_others_wait_for_it() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let list = instances(&["a", "b"]);
        let t0 = Instant::now();
        lb.record_connect_failure("a", t0);
        let after = t0 + Duration::from_secs(10);
        // However many calls come at once, `a` gets exactly one of them.
        let chosen = picks(&lb, &list, 20, after);
        assert_eq!(
            chosen.iter().filter(|id| *id == "a").count(),
            1,
            "{chosen:?}"
        );
        assert!(!lb.is_available("a", after));
        // The trial connects: `a` is back for everyone.
        lb.record_success("a");
        let chosen = picks(&lb, &list, 4, after);
        assert_eq!(chosen.iter().filter(|id| *id == "a").count(), 2);
    }

    #[test]
    fn a_failed_trial_starts_another_cooldown() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let list = instances(&["a", "b"]);
        let t0 = Instant::now();
        lb.record_connect_failure("a", t0);
        let t1 = t0 + Duration::from_secs(10);
        assert!(picks(&lb, &list, 2, t1).contains(&"a".to_owned()));
        lb.record_connect_failure("a", t1 + Duration::from_secs(1));
        assert_eq!(
            picks(&lb, &list, 6, t1 + Duration::from_secs(10)),
            ["b"; 6],
            "cooling down again from the failed trial"
        );
        let t2 = t1 + Duration::from_secs(11);
        assert!(lb.is_available("a", t2), "then another trial is due");
    }

    #[test]
    fn a_trial_that_never_reports_is_given_up_after_a_cooldown() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let list = instances(&["a", "b"]);
        let t0 = Instant::now();
        lb.record_connect_failure("a", t0);
        let t1 = t0 + Duration::from_secs(10);
        assert!(picks(&lb, &list, 2, t1).contains(&"a".to_owned()));
        assert!(!lb.is_available("a", t1 + Duration::from_secs(9)));
        assert!(lb.is_available("a", t1 + Duration::from_secs(10)));
    }

    #[test]
    fn a_success_ends_the_cooldown_at_once() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let t0 = Instant::now();
        lb.record_connect_failure("a", t0);
        lb.record_success("a");
        assert!(lb.is_available("a", t0));
    }

    #[test]
    fn when_all_are_cooling_down_one_is_still_chosen() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let list = instances(&["a", "b"]);
        let t0 = Instant::now();
        lb.record_connect_failure("a", t0);
        lb.record_connect_failure("b", t0);
        assert!(lb.choose(&list, &[], t0).is_some());
    }

    #[test]
    fn excluded_instances_are_never_chosen() {
        let lb = LoadBalancer::new(Duration::from_secs(10));
        let list = instances(&["a", "b"]);
        for _ in 0..4 {
            assert_eq!(
                lb.choose(&list, &["a".into()], Instant::now()).unwrap().id,
                "b"
            );
        }
        assert!(
            lb.choose(&list, &["a".into(), "b".into()], Instant::now())
                .is_none()
        );
        assert!(lb.choose(&[], &[], Instant::now()).is_none());
    }

    #[test]
    fn a_timeout_is_retried_once_here_then_once_elsewhere() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.next(Failure::Timeout, 0, 0), Next::SameServer);
        assert_eq!(policy.next(Failure::Timeout, 1, 0), Next::NextServer);
        assert_eq!(policy.next(Failure::Timeout, 0, 1), Next::SameServer);
        assert_eq!(policy.next(Failure::Timeout, 1, 1), Next::GiveUp);
    }

    #[test]
    fn a_refused_connection_moves_on_at_once() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.next(Failure::Connect, 0, 0), Next::NextServer);
        assert_eq!(policy.next(Failure::Connect, 0, 1), Next::GiveUp);
    }

    #[test]
    fn retries_can_be_turned_off() {
        let policy = RetryPolicy {
            same_server: 0,
            next_servers: 0,
        };
        assert_eq!(policy.next(Failure::Timeout, 0, 0), Next::GiveUp);
        assert_eq!(policy.next(Failure::Connect, 0, 0), Next::GiveUp);
    }
}
