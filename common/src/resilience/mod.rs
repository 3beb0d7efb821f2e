//! Resilience, the Hystrix way: commands with circuit breakers, bulkheads,
//! timeouts and fallbacks.
//!
//! In the 2013 recipe every call from the edge to the middle tier was a
//! Hystrix command. When the middle tier slowed down or failed, the
//! command's breaker *opened* (stopped calling it), its bulkhead kept slow
//! calls from using up the edge, and its fallback served something useful
//! instead of an error page. We keep those semantics and defaults (10 s
//! rolling window in 1 s buckets, 20 requests minimum, 50 % errors, 5 s
//! sleep window, one trial request) as plain types:
//!
//! - [`window`]: the rolling statistics;
//! - [`breaker`]: the breaker's state machine (pure);
//! - [`command`]: the shell that runs a call through breaker, bulkhead and
//!   timeout, falls back, and measures;
//! - [`hystrix`]: the metrics-stream format for the Hystrix Dashboard.
//!
//! Hystrix ran commands on thread pools; async Rust needs no threads to
//! wait, so the bulkhead is a semaphore (Hystrix's `SEMAPHORE` isolation).
//! A command still runs its work as a task of its own, as the pool's thread
//! did, so that a call whose caller gave up runs to its end (or timeout)
//! and is counted; at its timeout it is cancelled rather than abandoned.
//!
//! # Why commands are not tower layers
//!
//! tower's `Timeout`, `ConcurrencyLimit` and `Retry` are the idiomatic way
//! to wrap a service, and a breaker could be one more layer. We did not
//! stack them, for three reasons:
//!
//! - **Fallbacks need the caller's context.** `RSSGet` falls back to *this
//!   user's* last good answer; a layer sees a request, not a user, and its
//!   error type would have to carry the fallback's value back out.
//! - **One command, one set of metrics.** Hystrix counts every outcome of a
//!   command (success, failure, timeout, short-circuited, rejected,
//!   fallback) in one rolling window that feeds the breaker, the dashboard
//!   and `/hystrix.stream`. Split across layers, each layer would see only
//!   part of the story and the window would need a side channel.
//! - **The deadline is handed to the work.** The balancer inside the
//!   command must fit its retries (same server, next server) into what is
//!   left of the command's timeout, so the command passes its deadline in
//!   (`work(deadline)`); a `Timeout` layer only cancels from outside.
//!
//! So a [`Command`] is one small type that does the gates in order
//! (breaker, bulkhead, timeout), and each gate's logic is its own pure type
//! ([`breaker::CircuitBreaker`], [`window::RollingWindow`]) that a tower
//! layer could wrap just as well.

pub mod breaker;
pub mod command;
pub mod hystrix;
pub mod window;

pub use breaker::{BreakerSettings, State};
pub use command::{Command, CommandError, CommandSettings, Failure, Outcome, Snapshot};
