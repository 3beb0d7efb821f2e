//! The service registry: a Eureka-compatible server for one machine.
//!
//! Eureka was the phone book of the 2013 recipe: services register
//! themselves, renew a lease with heartbeats, and look each other up. This
//! registry speaks the same REST protocol (JSON and XML, full fetches and
//! deltas, status overrides) so standard Eureka clients can use it, and our
//! clients can use a real Eureka cluster instead. It keeps one copy in
//! memory: it is the single-node default, not a replicated cluster (no
//! peer replication, no self-preservation: a lease that runs out is
//! removed, which is what you want on one machine).
//!
//! # Layout
//!
//! - [`leases`]: the lease table (pure; time passed in).
//! - [`records`]: leases rendered as Eureka records.
//! - [`xml`]: Eureka's XML ↔ the JSON shape.
//! - [`state`]: the shared lease table and the response cache.
//! - [`api`]: the REST API and content negotiation.
//! - [`page`]: the HTML home page.
//! - [`config`]: the flags.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
pub mod config;
pub mod leases;
mod page;
pub mod records;
mod state;
pub mod xml;

pub use api::{ApiError, parse_body_as};

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use config::Config;
use leases::LeaseTable;
use state::AppState;

/// A registry, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    eviction_interval: Duration,
    serve: common::server::ServeSettings,
    port: u16,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener and builds the lease table.
    pub async fn build(config: Config) -> Result<Self, common::server::BindError> {
        let retention_ms = u64::try_from(config.delta_retention.as_millis()).unwrap_or(u64::MAX);
        let state = AppState::new(LeaseTable::new(retention_ms));
        let (listener, port) = common::server::bind(
            "registry",
            &config.server.host,
            config.port,
            config.port_hint,
        )
        .await?;
        Ok(Self {
            listener,
            state,
            eviction_interval: config.eviction_interval,
            serve: config.server.serve_settings(),
            port,
        })
    }

    /// The port actually bound (useful with `--port 0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves, and evicts expired leases, until `shutdown` fires.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        // Ends with this future, even if it is dropped.
        let evictor = AbortOnDropHandle::new(tokio::spawn(evict_periodically(
            self.state.clone(),
            self.eviction_interval,
            shutdown.clone(),
        )));
        let mut state = self.state;
        // Watches end when shutdown begins, so they do not hold up the drain.
        state.stop = shutdown.child_token();
        let served =
            common::server::serve(self.listener, api::router(state), self.serve, shutdown).await;
        let _ = evictor.await;
        served
    }
}

/// The eviction task: one pass per interval, ends with `shutdown`.
async fn evict_periodically(state: AppState, every: Duration, shutdown: CancellationToken) {
    common::shutdown::every_until(every, shutdown, || async {
        state.evict();
    })
    .await;
}
