//! The middle tier of the RSS recipe: it fetches, parses and caches feeds,
//! and stores each user's subscriptions.
//!
//! # Layout
//!
//! - [`config`]: flags and their defaults.
//! - [`api`]: the REST API of DESIGN.md (`/middletier/rss/user/{user}`,
//!   `/healthcheck`, `/metrics`) and its one error type.
//! - [`feeds`]: the feed pipeline: SSRF [`feeds::guard`], HTTP
//!   [`feeds::fetch`], the pure [`feeds::parse`] normalizer and the
//!   single-flight [`feeds::cache`].
//! - [`store`]: the subscription store trait and its implementations.
//!
//! [`Application`] ties them together in the shape
//! `build(config)` → `port()` → `run_until_stopped(shutdown)`, so the binary,
//! the all-in-one process and tests start it the same way.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod feeds;
pub mod store;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use config::{Config, StoreKind};
use feeds::Feeds;
use feeds::guard::Guard;
use store::{MemoryStore, SubscriptionStore};

/// Why the middletier could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] common::server::BindError),
    #[error("could not set up the HTTP client for fetching feeds: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// A middletier, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    port: u16,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let store: Arc<dyn SubscriptionStore> = match config.store {
            StoreKind::Memory => Arc::new(MemoryStore::new()),
        };
        let guard = Guard::new(config.allow_private_feeds);
        if guard.allows_private() {
            tracing::warn!(
                "--allow-private-feeds is on: feeds may be fetched from private and loopback addresses"
            );
        }
        let feeds = Feeds::new(config.feeds.settings(), guard)?;
        let state = api::AppState::new(store, feeds, config.max_subscriptions);

        let listener = common::server::bind(
            "middletier",
            &config.server.host,
            config.port,
            config::PORT_HINT,
        )
        .await?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.port);
        Ok(Self {
            listener,
            router: api::router(state),
            port,
        })
    }

    /// The port actually bound (useful with `--port 0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` fires, then drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        common::server::serve(self.listener, self.router, shutdown).await
    }
}
