//! The middletier REST API (docs/ARCHITECTURE.md, "Middletier"). The v1
//! calls of the 2013 recipe keep their shape; v2 adds read state,
//! discovery, refresh and OPML:
//!
//! | call | does |
//! |---|---|
//! | `GET /middletier/rss/user/{user}[?unread=true&limit=N]` | the user's feeds with stored items, read state and health; 422 when larger than `--max-listing-bytes` |
//! | `POST /middletier/rss/user/{user}?url=...` | subscribe after checking: 200, 300 (choose a feed) or 422 |
//! | `DELETE /middletier/rss/user/{user}?url=...` | unsubscribe |
//! | `GET /middletier/rss/user/{user}/items/{id}` | one item whole, with its content ([`common::api::Article`]) |
//! | `PUT /middletier/rss/user/{user}/items/{id}` | `{"read"?, "starred"?}` |
//! | `GET /middletier/rss/user/{user}/river[?unread=true&before=ID&limit=N]` | every feed's items, newest first, paged by id |
//! | `GET /middletier/media?url=...[&user=...]` | an image for the edge's media proxy: `image/*` only, no 1×1 trackers |
//! | `POST /middletier/rss/user/{user}/mark-read` | `{"url"?, "before"?}` |
//! | `POST /middletier/rss/user/{user}/refresh?url=...` | fetch one feed now |
//! | `GET`/`POST /middletier/rss/user/{user}/opml` | export / import OPML |
//! | `GET /middletier/rss/discover?url=...[&user=...]` | the feeds a page lists (metered and on the fetch slots of `user`) |
//! | `GET`/`POST /middletier/accounts`, `GET`/`PUT`/`DELETE /middletier/accounts/{user}` | the edge's accounts ([`accounts`]); deleting one deletes all of the user's data |
//! | `POST /middletier/rss/user/{user}/sync/{ids,contents,items,edit}`, `GET .../sync/feeds` | the bulk calls of sync clients ([`common::sync`]) |
//! | `GET /healthcheck` | 200 UP, or 503 when the store is unreachable or cannot store new items |
//! | `GET /metrics` | Prometheus text |
//!
//! Handlers parse input into newtypes and call the [`Reader`]; every
//! failure is an [`ApiError`], turned into HTTP in exactly one place
//! ([`error`]). Bodies are capped at 16 KiB, except OPML imports and sync
//! calls (1 MiB).

mod accounts;
mod articles;
mod error;
mod extract;
mod reading;
mod subscriptions;
mod sync;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::api::UserId;
use common::ratelimit::{RateKey, WriteLimiter};
use serde_json::json;

pub(crate) use error::ApiError;

use crate::faults::{self, Faults};
use crate::reader::Reader;
use crate::store::StoreError;

/// Every endpoint but OPML import takes at most a small JSON body.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// An OPML file of a few thousand feeds is well under this.
pub(crate) const MAX_OPML_BYTES: usize = 1024 * 1024;

/// Per-user rate limits; `None` is no limit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    /// Subscribe, unsubscribe, OPML import.
    pub(crate) writes: Option<Arc<WriteLimiter>>,
    /// Read and starred changes, mark-read.
    pub(crate) state: Option<Arc<WriteLimiter>>,
    /// "Refresh now".
    pub(crate) refresh: Option<Arc<WriteLimiter>>,
}

/// Shared by all handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    reader: Reader,
    limits: Limits,
    /// The largest listing answered, in bytes: a bigger one is refused
    /// with a message, as that user's problem (see `reading::list`).
    max_listing_bytes: usize,
}

impl AppState {
    pub(crate) fn new(reader: Reader, limits: Limits, max_listing_bytes: usize) -> Self {
        Self {
            reader,
            limits,
            max_listing_bytes,
        }
    }
}

/// Which per-user limit a call counts against.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Writes,
    State,
    /// A fetch a user asks for: refresh now, discover.
    Refresh,
}

impl AppState {
    /// Refuses a call when the user has made too many of its kind just now.
    fn admit(&self, user: &UserId, budget: Budget) -> Result<(), ApiError> {
        let limiter = match budget {
            Budget::Writes => &self.limits.writes,
            Budget::State => &self.limits.state,
            Budget::Refresh => &self.limits.refresh,
        };
        match limiter {
            Some(limiter) => limiter
                .check(&RateKey::user(user))
                .map_err(ApiError::TooManyWrites),
            None => Ok(()),
        }
    }
}

/// The API's routes; with `faults`, also `/admin/faults` and the injected
/// latency on `/middletier/...` (see [`crate::faults`]).
pub(crate) fn router(state: AppState, faults: Option<Arc<Faults>>) -> Router {
    let small = Router::new()
        .route(
            "/middletier/rss/user/{user}",
            get(reading::list)
                .post(subscriptions::subscribe)
                .delete(subscriptions::unsubscribe),
        )
        .route(
            "/middletier/rss/user/{user}/items/{id}",
            get(articles::article).put(reading::set_item),
        )
        .route("/middletier/rss/user/{user}/river", get(articles::river))
        .route("/middletier/media", get(articles::media))
        .route(
            "/middletier/rss/user/{user}/mark-read",
            post(reading::mark_read),
        )
        .route(
            "/middletier/rss/user/{user}/refresh",
            post(reading::refresh),
        )
        .route("/middletier/rss/discover", get(subscriptions::discover))
        .route(
            "/middletier/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route(
            "/middletier/accounts/{user}",
            get(accounts::get)
                .put(accounts::update)
                .delete(accounts::delete),
        );
    // OPML imports and sync calls (up to 10,000 ids) take larger bodies.
    let opml = Router::new()
        .route(
            "/middletier/rss/user/{user}/opml",
            get(subscriptions::export_opml).post(subscriptions::import_opml),
        )
        .route("/middletier/rss/user/{user}/sync/ids", post(sync::ids))
        .route(
            "/middletier/rss/user/{user}/sync/contents",
            post(sync::contents),
        )
        .route("/middletier/rss/user/{user}/sync/items", post(sync::items))
        .route("/middletier/rss/user/{user}/sync/edit", post(sync::edit))
        .route("/middletier/rss/user/{user}/sync/feeds", get(sync::feeds));
    // The small cap on every route but the import; the large one (and the
    // URL length check) on everything, below.
    let mut api = common::limits::apply(small, MAX_BODY_BYTES).merge(opml);
    if let Some(faults) = &faults {
        api = api.route_layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            faults::delay,
        ));
    }
    let mut routes = api
        .route("/healthcheck", get(healthcheck))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    if let Some(faults) = faults {
        routes = routes.merge(common::limits::apply(
            faults::routes(faults),
            MAX_BODY_BYTES,
        ));
    }
    common::limits::apply(
        common::metrics::instrument(routes, "middletier"),
        MAX_OPML_BYTES,
    )
    .layer(common::telemetry::http::layer(
        common::telemetry::http::Incoming::Continue,
    ))
}

async fn healthcheck(State(state): State<AppState>) -> Response {
    let store = state.reader.store();
    match store.check().await {
        Ok(()) => Json(json!({"status": "UP", "store": store.name()})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "healthcheck: store unavailable");
            // For operators (the middletier is not published): what is
            // wrong, e.g. unreachable, or reachable but unable to store new
            // items yet.
            let StoreError::Unavailable(reason) = e;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "DOWN",
                    "store": store.name(),
                    "error": format!("the subscription store cannot take writes: {reason}"),
                })),
            )
                .into_response()
        }
    }
}
