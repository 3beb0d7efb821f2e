//! What every process of the RSS recipe shares.
//!
//! # Layout
//!
//! - [`api`]: the JSON wire types that edge and middletier exchange, and the
//!   newtypes ([`api::UserId`], [`api::FeedUrl`]) that validate input once, at
//!   the boundary, so the rest of the code never sees a bad value.
//! - [`config`]: flags every binary accepts (clap, each flag also read from
//!   its `RSS_*` environment variable) and a duration parser for timing knobs.
//! - [`telemetry`]: `tracing` setup, text or JSON lines.
//! - [`metrics`]: one Prometheus recorder per process, the `/metrics`
//!   handler, and a middleware that counts and times every request per route.
//! - [`shutdown`]: one cancellation token that SIGINT/SIGTERM trip, handed to
//!   every server and background task so they all end together.
//! - [`limits`]: URL length and body size bounds with clear 414/413 errors.
//! - [`server`]: bind a listener with an error that names the flag to change,
//!   and serve a router until the shutdown token fires.
//! - [`discovery`]: the Eureka wire model, the client's copy of the registry,
//!   and the client that registers, heartbeats and fetches.
//! - [`balancer`]: round robin with availability filtering, Ribbon-style
//!   retries, and the HTTP shell that runs them inside one deadline.
//! - [`ratelimit`]: a per-user token bucket for writes.
//! - [`sync`]: the middletier's bulk calls for sync clients (the edge's
//!   Google Reader API), and feed numbers.
//! - [`resilience`]: Hystrix-style commands: circuit breaker, bulkhead,
//!   timeout, fallback, rolling metrics and the Hystrix stream format.
//! - [`security`]: the headers every response carries (CSP, nosniff, ...).
//!
//! And one function, [`root_cause`]: the message to show for an error
//! chain.
//!
//! How these fit together across the processes: docs/ARCHITECTURE.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// `json!` with the ~50 fields of a Hystrix event needs more than the default.
#![recursion_limit = "256"]

pub mod api;
pub mod balancer;
pub mod config;
pub mod discovery;
pub mod limits;
pub mod metrics;
pub mod query;
pub mod ratelimit;
pub mod resilience;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod sync;
pub mod telemetry;

/// The innermost message of an error chain: "connection refused" rather
/// than reqwest's "error sending request for url (...)", which is what a
/// person reading a log line or an error can act on.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = err;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
