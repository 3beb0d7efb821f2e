//! The middle tier of the RSS recipe: it fetches, parses and stores feeds,
//! refreshes them in the background, and keeps each user's subscriptions
//! and read state.
//!
//! # Layout
//!
//! - [`config`]: flags and their defaults.
//! - `api`: the REST API of docs/ARCHITECTURE.md (`/middletier/rss/...`,
//!   `/healthcheck`, `/metrics`) and its one error type.
//! - [`reader`]: what each call does, over the store and the refresher.
//! - [`refresh`]: the background scheduler, its adaptive policy, the item
//!   merge and feed ownership among instances.
//! - [`feeds`]: the feed pipeline: SSRF [`feeds::guard`], HTTP
//!   [`feeds::fetch`], the pure [`feeds::parse`] normalizer, feed
//!   [`feeds::discover`]y on HTML pages and [`feeds::opml`].
//! - [`store`]: the store trait (subscriptions, feeds, items, read state)
//!   and its three implementations.
//! - `faults`: fault injection (latency, store outage), off by default.
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
mod reader;
pub mod refresh;
pub mod store;

use std::sync::Arc;

use common::discovery::DiscoveryClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use common::ratelimit::WriteLimiter;
use config::{Config, StoreKind};
use faults::Faults;
use feeds::Feeds;
use feeds::guard::Guard;
use reader::Reader;
use refresh::Refresher;
use refresh::scheduler::{self, Ownership, SchedulerSettings};
use store::{CassandraStore, FileStore, MemoryStore, Metered, Store};

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
    store: Arc<dyn Store>,
    refresher: Refresher,
    scheduler: SchedulerSettings,
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
        let store: Box<dyn Store> = match config.store {
            StoreKind::Memory => Box::new(MemoryStore::new()),
            StoreKind::File => Box::new(FileStore::open_with_cache(
                &config.data_dir,
                usize::try_from(config.file_store_cache).unwrap_or(usize::MAX),
            )?),
            StoreKind::Cassandra => Box::new(
                CassandraStore::connect_in_background(config.cassandra.settings())
                    .map_err(StartError::Cassandra)?,
            ),
        };
        let store: Arc<dyn Store> = Arc::new(Metered::new(store, faults.clone()));
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
        let refresher = Refresher::new(feeds.clone(), store.clone(), config.refresh.settings());
        let reader = Reader::new(
            store.clone(),
            feeds,
            refresher.clone(),
            config.reader_settings(),
        );
        let limits = api::Limits {
            writes: WriteLimiter::new(config.user_write_rate, config.user_write_burst)
                .map(Arc::new),
            state: WriteLimiter::new(config.user_state_rate, config.user_state_burst).map(Arc::new),
            refresh: WriteLimiter::every(config.user_refresh_interval, config.user_refresh_burst)
                .map(Arc::new),
        };
        let state = api::AppState::new(
            reader,
            limits,
            usize::try_from(config.max_listing_bytes).unwrap_or(usize::MAX),
        );

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
            refresher,
            scheduler: config.refresh.scheduler(),
        })
    }

    /// The port actually bound (useful with `--port 0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Registers (`STARTING`, then `UP` once the store is ready), runs the
    /// refresh scheduler and serves until `shutdown` fires, deregisters,
    /// then drains in-flight requests (see
    /// [`common::server::serve_registered`]).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let store = self.store.clone();
        let ready = async move { store.ready().await };
        // The scheduler and its discovery fetcher end with this future,
        // even if it is dropped rather than run to its end.
        let stop_background = CancellationToken::new();
        let _background = self.spawn_scheduler(&stop_background);
        let _stop_on_drop = stop_background.drop_guard();
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

    /// Starts the refresh scheduler: with a shared store and a registry,
    /// feeds are shared out among the `UP` instances (the discovery client
    /// keeps its copy of the registry fresh for that); otherwise this
    /// instance refreshes every feed of its own store.
    fn spawn_scheduler(&self, stop: &CancellationToken) -> Vec<AbortOnDropHandle<()>> {
        let mut tasks = Vec::new();
        let me = self.discovery.registration().map(|r| r.instance_id.clone());
        let ownership = match me {
            Some(me) if self.store.is_shared() && self.discovery.is_enabled() => {
                tasks.push(AbortOnDropHandle::new(
                    self.discovery.spawn_fetcher(stop.clone()),
                ));
                Ownership::Shared {
                    me,
                    discovery: self.discovery.clone(),
                    vip: VIP.to_owned(),
                }
            }
            _ => Ownership::All,
        };
        tasks.push(AbortOnDropHandle::new(tokio::spawn(scheduler::run(
            self.refresher.clone(),
            ownership,
            self.scheduler,
            stop.clone(),
        ))));
        tasks
    }
}
