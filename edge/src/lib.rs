//! The edge of the RSS recipe: the reader in the browser and a JSON API,
//! calling the middle tier through discovery, a load balancer and circuit
//! breakers.
//!
//! # Layout
//!
//! - [`config`]: the flags.
//! - [`middletier`]: one named command per kind of call to the middletier
//!   (`RSSGet`, `RSSAdd`, `RSSDel`, `RSSItem`, ...).
//! - [`fallback`]: `RSSGet`'s fallback, each user's last good answer.
//! - [`ui`]: the reader: its page, views and forms (askama templates in
//!   `templates/`).
//! - [`api`]: the JSON API.
//! - [`greader`]: the Google Reader API, for sync apps.
//! - [`dashboard`]: `/hystrix.stream` and `/dashboard`; [`history`]: the
//!   dashboard's last five minutes.
//! - [`error`]: the one error type, its HTTP mapping, and the extractors
//!   that reject with it.
//! - [`security`]: CSRF tokens and security headers.
//! - [`auth`]: who the current user is (`--auth none|proxy|local`), and
//!   the pages of local accounts: sign in, settings, admin.
//! - [`assets`]: CSS, JavaScript and the icon, served by the edge itself.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod assets;
pub mod auth;
mod client;
pub mod config;
mod dashboard;
mod error;
mod fallback;
mod greader;
mod history;
mod media;
mod message;
mod middletier;
mod security;
mod state;
mod ui;

use axum::routing::{get, post};
use axum::{Json, Router};
use common::balancer::http::BalancedClient;
use common::discovery::DiscoveryClient;
use common::ratelimit::WriteLimiter;
use common::resilience::Command;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

use config::Config;
use middletier::Middletier;
use state::AppState;

/// The registry's name for this service, and its VIP.
pub const APP_NAME: &str = "EDGE";
/// The edge's VIP in the registry.
pub const VIP: &str = "edge";
/// The VIP the edge calls.
pub const MIDDLETIER_VIP: &str = "middletier";

/// Forms and API bodies are a URL and a token; this is generous.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// An OPML import: the middletier's 1 MiB, plus room for a form's parts.
const MAX_OPML_BYTES: usize = 1024 * 1024 + 16 * 1024;

pub(crate) fn router(state: AppState) -> Router {
    let small = Router::new()
        .route("/", get(ui::index))
        .route("/subscriptions", post(ui::add))
        .route("/subscriptions/delete", post(ui::delete))
        .route("/items/{id}", get(ui::article).post(ui::set_item))
        .route("/river", get(ui::river))
        .route("/media/{signature}/{url}", get(media::proxy))
        .route("/items/{id}/open", get(ui::open_item))
        .route("/mark-read", post(ui::mark_read))
        .route("/refresh", post(ui::refresh))
        .route("/opml", get(api::export_opml))
        .route(
            "/api/subscriptions",
            get(api::list).post(api::add).delete(api::delete),
        )
        .route("/api/items/{id}", get(api::article).put(api::set_item))
        .route("/api/river", get(api::river))
        .route("/api/mark-read", post(api::mark_read))
        .route("/api/refresh", post(api::refresh))
        .route("/api/discover", get(api::discover))
        .route("/api/opml", get(api::export_opml))
        .route("/hystrix.stream", get(dashboard::hystrix_stream))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/dashboard/data", get(dashboard::dashboard_data))
        .route("/assets/{name}", get(assets::asset))
        .route("/healthcheck", get(healthcheck));
    // OPML imports are the one large body; every other route keeps the
    // small cap, the outer layer the large one (and the URL length check).
    let imports = Router::new()
        .route("/opml", post(ui::import_opml))
        .route("/api/opml", post(api::import_opml));
    let small = if state.auth.mode == auth::Mode::Local {
        small.merge(account_routes())
    } else {
        small
    };
    let routes = common::limits::apply(small, MAX_BODY_BYTES)
        .merge(imports.layer(axum::extract::DefaultBodyLimit::max(MAX_OPML_BYTES)))
        .fallback(|| async { error::Error::NotFound })
        .method_not_allowed_fallback(|| async { error::Error::MethodNotAllowed })
        // Outermost of these: a write from another site is refused before
        // anything reads its body; every answer about a user is never
        // stored by a cache on the way.
        .layer(axum::middleware::map_response(security::no_store))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::refuse_cross_site,
        ))
        .with_state(state.clone());
    let state_for_sync = state.clone();
    // Who is asking is settled before any handler runs, `/metrics` too.
    let identified = common::metrics::instrument(routes, "edge")
        .layer(axum::middleware::from_fn_with_state(state, auth::identify));
    let routes = common::limits::apply(identified, MAX_OPML_BYTES)
        // The Google Reader API: its own auth (a token header, no cookie),
        // CORS and body limit, so outside the reader's auth and CSRF checks.
        .merge(greader::router(state_for_sync))
        // The fastest level: a page of feeds shrinks about tenfold either
        // way, and the edge's CPU is better spent serving.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest));
    common::security::apply(routes, security::CONTENT_SECURITY_POLICY).layer(
        common::telemetry::http::layer(common::telemetry::http::Incoming::Link),
    )
}

/// `--auth local`: signing in and out, the first account, settings, and
/// the admin's accounts (see [`auth::pages`]).
fn account_routes() -> Router<AppState> {
    use auth::pages;
    Router::new()
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/setup", get(pages::setup_page).post(pages::setup))
        .route("/settings", get(pages::settings_page))
        .route("/settings/password", post(pages::change_password))
        .route("/settings/app-passwords", post(pages::create_app_password))
        .route(
            "/settings/app-passwords/{id}/delete",
            post(pages::delete_app_password),
        )
        .route(
            "/settings/sign-out-everywhere",
            post(pages::sign_out_everywhere),
        )
        .route(
            "/admin/users",
            get(pages::users_page).post(pages::create_user),
        )
        .route("/admin/users/{user}/delete", post(pages::delete_user))
}

/// The edge is healthy when it serves; the middletier's state is reported
/// but does not make the edge unhealthy (it degrades instead).
async fn healthcheck(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    let instances = state.middletier.client().instances().len();
    let breakers: serde_json::Map<String, serde_json::Value> = state
        .middletier
        .commands()
        .iter()
        .map(|c| (c.name().to_owned(), json!(c.snapshot().state.as_str())))
        .collect();
    Json(json!({"status": "UP", "middletier_instances": instances, "circuits": breakers}))
}

/// Why the edge could not start.
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
    /// The way users are known is unsafe or incomplete as configured.
    #[error("{0}")]
    Auth(String),
}

/// An edge, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    discovery: DiscoveryClient,
    serve: common::server::ServeSettings,
    port: u16,
    /// `--auth local`: the admin to create at start, if it does not exist.
    first_admin: Option<auth::start::FirstAdmin>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("discovery", &self.discovery)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener and builds everything the edge serves with.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        // The recorder must exist before the commands register their
        // breaker gauges, or those first zero values are dropped.
        common::metrics::handle();
        let (listener, port) =
            common::server::bind("edge", &config.server.host, config.port, config.port_hint)
                .await?;
        let discovery = config
            .discovery
            .client(&config.server, APP_NAME, VIP, port)?;
        let client = BalancedClient::new(
            MIDDLETIER_VIP,
            discovery.clone(),
            config.balancer.settings(),
        )?;
        let middletier = Middletier::new(
            client,
            config.commands.settings().map(Command::new),
            WriteLimiter::new(config.user_write_rate, config.user_write_burst),
        );
        let (auth, first_admin) = auth::start::settings(&config)?;
        Ok(Self {
            listener,
            state: AppState {
                middletier,
                auth: std::sync::Arc::new(auth),
                trusted_proxies: config.trusted_proxies.into(),
                hystrix_interval: config.hystrix_stream_interval,
                history: std::sync::Arc::default(),
                streams_stop: CancellationToken::new(),
            },
            discovery,
            serve: config.server.serve_settings(),
            port,
            first_admin,
        })
    }

    /// The port actually bound (useful with `--port 0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Fetches the registry, registers, serves until `shutdown`, then
    /// deregisters and drains (see [`common::server::serve_registered`]).
    pub async fn run_until_stopped(mut self, shutdown: CancellationToken) -> std::io::Result<()> {
        // Long-lived streams end when shutdown begins, so they do not hold
        // up the graceful drain.
        self.state.streams_stop = shutdown.child_token();
        let stop_fetching = CancellationToken::new();
        // Background tasks end with this future, even if it is dropped.
        let fetcher = AbortOnDropHandle::new(self.discovery.spawn_fetcher(stop_fetching.clone()));
        let _sampler = AbortOnDropHandle::new(tokio::spawn(dashboard::sample(
            self.state.clone(),
            shutdown.clone(),
        )));
        let _first_admin = self.first_admin.take().map(|admin| {
            AbortOnDropHandle::new(tokio::spawn(
                admin.create(self.state.middletier.clone(), shutdown.clone()),
            ))
        });
        let served = common::server::serve_registered(
            self.listener,
            router(self.state),
            self.serve,
            &self.discovery,
            std::future::ready(()),
            shutdown,
        )
        .await;
        stop_fetching.cancel();
        let _ = fetcher.await;
        served
    }
}
