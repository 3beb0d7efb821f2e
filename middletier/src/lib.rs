//! The middle tier of the RSS recipe: it fetches, parses and caches feeds,
//! and stores each user's subscriptions.
//!
//! # Layout
//!
//! - [`config`]: flags and their defaults.
//! - [`api`]: the REST API of docs/ARCHITECTURE.md (`/middletier/rss/user/{user}`,
//!   `/healthcheck`, `/metrics`) and its one error type.
//! - [`feeds`]: the feed pipeline: SSRF [`feeds::guard`], HTTP
//!   [`feeds::fetch`], the pure [`feeds::parse`] normalizer and the
//!   single-flight [`feeds::cache`].
//! - [`store`]: the subscription store trait and its implementations.
//! - [`faults`]: fault injection (latency, store outage), off by default.
//!
//! [`Application`] ties them together in the shape
//! `build(config)` → `port()` → `run_until_stopped(shutdown)`, so the binary,
//! the all-in-one process and tests start it the same way.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
pub mod config;
mod faults;
pub mod feeds;
pub mod store;

use std::sync::Arc;

use common::discovery::DiscoveryClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use config::{Config, StoreKind};
use faults::{Faults, Faulty};
use feeds::Feeds;
use feeds::guard::Guard;
use store::{CassandraStore, FileStore, MemoryStore, Metered, SubscriptionStore};

/// Why the middletier could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener could not be bound.
    #[error(transparent)]
    Bind(#[from] common::server::BindError),
    /// The HTTP client could not be built.
    #[error("could not set up an HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// The discovery client could not be set up.
    #[error(transparent)]
    Discovery(#[from] common::config::DiscoverySetupError),
    /// The file store could not open its directory.
    #[error(transparent)]
    FileStore(#[from] store::file::OpenError),
    /// The Cassandra settings cannot be used.
    #[error("cannot use the Cassandra store: {0}")]
    Cassandra(String),
}

/// The registry's name for this service, and the VIP callers look up.
pub const APP_NAME: &str = "MIDDLETIER";
/// The VIP the edge calls.
pub const VIP: &str = "middletier";

/// A middletier, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    serve: common::server::ServeSettings,
    port: u16,
    discovery: DiscoveryClient,
    store: Arc<dyn SubscriptionStore>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("store", &self.store.name())
            .field("discovery", &self.discovery)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the store, builds the feed pipeline and binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let faults = config.enable_fault_injection.then(|| {
            tracing::warn!(
                "fault injection is on: /admin/faults can slow this middletier or fail its store"
            );
            Arc::new(Faults::default())
        });
        let store: Box<dyn SubscriptionStore> = match config.store {
            StoreKind::Memory => Box::new(MemoryStore::new()),
            StoreKind::File => Box::new(FileStore::open(&config.data_dir)?),
            StoreKind::Cassandra => Box::new(
                CassandraStore::connect_in_background(config.cassandra.settings())
                    .map_err(StartError::Cassandra)?,
            ),
        };
        let store: Arc<dyn SubscriptionStore> = match &faults {
            Some(faults) => Arc::new(Metered::new(Faulty::new(store, faults.clone()))),
            None => Arc::new(Metered::new(store)),
        };
        let guard = Guard::new(config.allow_private_feeds)
            .with_exceptions(config.allow_feed_addresses.iter().copied());
        if guard.allows_private() {
            tracing::warn!(
                "--allow-private-feeds is on: feeds may be fetched from private and loopback addresses"
            );
        } else if !config.allow_feed_addresses.is_empty() {
            tracing::info!(addresses = ?config.allow_feed_addresses, "these private addresses may serve feeds");
        }
        let feeds = Feeds::new(config.feeds.settings(), guard)?;
        let writes =
            common::ratelimit::WriteLimiter::new(config.user_write_rate, config.user_write_burst)
                .map(Arc::new);
        let state = api::AppState::new(store.clone(), feeds, config.max_subscriptions, writes);

        let (listener, port) = common::server::bind(
            "middletier",
            &config.server.host,
            config.port,
            config.port_hint,
        )
        .await?;
        let discovery = config
            .discovery
            .client(&config.server, APP_NAME, VIP, port)?;
        Ok(Self {
            listener,
            router: api::router(state, faults),
            serve: config.server.serve_settings(),
            port,
            discovery,
            store,
        })
    }

    /// The port actually bound (useful with `--port 0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Registers (`STARTING`, then `UP` once the store is ready), serves
    /// until `shutdown` fires, deregisters, then drains in-flight requests
    /// (see [`common::server::serve_registered`]).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let store = self.store.clone();
        let ready = async move { store.ready().await };
        common::server::serve_registered(
            self.listener,
            self.router,
            self.serve,
            &self.discovery,
            ready,
            shutdown,
        )
        .await
    }
}
