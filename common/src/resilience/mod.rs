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
//! wait, so the bulkhead is a semaphore (Hystrix's `SEMAPHORE` isolation)
//! and a timed-out call is cancelled rather than abandoned on a thread.

pub mod breaker;
pub mod command;
pub mod hystrix;
pub mod window;

pub use breaker::{BreakerSettings, State};
pub use command::{Command, CommandError, CommandSettings, Failure, Outcome, Snapshot};
