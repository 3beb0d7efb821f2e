//! The middletier REST API (docs/ARCHITECTURE.md, "Middletier"),
//! compatible with the 2013 recipe:
//!
//! | call | does |
//! |---|---|
//! | `GET /middletier/rss/user/{user}` | the user's feeds with their items |
//! | `POST /middletier/rss/user/{user}?url=...` | subscribe (200 once stored) |
//! | `DELETE /middletier/rss/user/{user}?url=...` | unsubscribe |
//! | `GET /healthcheck` | 200 UP, or 503 when the store is unreachable |
//! | `GET /metrics` | Prometheus text |
//!
//! Handlers parse input into newtypes and wire the store and the feed
//! pipeline together; every failure is an [`ApiError`], turned into HTTP in
//! exactly one place.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::api::{ErrorBody, FeedUrl, InvalidInput, SubscriptionChange, UserId};
use serde_json::json;
use tower_http::trace::TraceLayer;

use crate::faults::{self, Faults};
use crate::feeds::guard::Blocked;
use crate::feeds::{FeedView, Feeds};
use crate::store::{StoreError, SubscriptionStore};
use common::ratelimit::WriteLimiter;

/// None of our endpoints takes a body; this bounds what a client can send.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared by all handlers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<dyn SubscriptionStore>,
    feeds: Feeds,
    max_subscriptions: usize,
    /// `None`: writes are not rate-limited.
    writes: Option<Arc<WriteLimiter>>,
}

impl AppState {
    pub(crate) fn new(
        store: Arc<dyn SubscriptionStore>,
        feeds: Feeds,
        max_subscriptions: usize,
        writes: Option<Arc<WriteLimiter>>,
    ) -> Self {
        Self {
            store,
            feeds,
            max_subscriptions,
            writes,
        }
    }

    /// Refuses a write when the user has made too many just now.
    fn admit_write(&self, user: &UserId) -> Result<(), ApiError> {
        match &self.writes {
            Some(limiter) => limiter.check(user).map_err(ApiError::TooManyWrites),
            None => Ok(()),
        }
    }
}

/// The API's routes; with `faults`, also `/admin/faults` and the injected
/// latency on `/middletier/...` (see [`crate::faults`]).
pub(crate) fn router(state: AppState, faults: Option<Arc<Faults>>) -> Router {
    let mut users = Router::new().route(
        "/middletier/rss/user/{user}",
        get(list).post(subscribe).delete(unsubscribe),
    );
    if let Some(faults) = &faults {
        users = users.route_layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            faults::delay,
        ));
    }
    let mut routes = users
        .route("/healthcheck", get(healthcheck))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    if let Some(faults) = faults {
        routes = routes.merge(faults::routes(faults));
    }
    common::limits::apply(
        common::metrics::instrument(routes, "middletier"),
        MAX_BODY_BYTES,
    )
    .layer(TraceLayer::new_for_http())
}

/// The body of `GET /middletier/rss/user/{user}`: the contract's
/// [`common::api::UserFeeds`], serialized from cached JSON.
#[derive(serde::Serialize)]
struct UserFeeds {
    user: String,
    subscriptions: Vec<FeedView>,
}

async fn list(
    State(state): State<AppState>,
    user: Result<Path<String>, PathRejection>,
) -> Result<Json<UserFeeds>, ApiError> {
    let user = user_from(user)?;
    let urls: Vec<FeedUrl> = state
        .store
        .list(&user)
        .await?
        .into_iter()
        .map(|s| s.url)
        .collect();
    let subscriptions = state.feeds.views(&user, &urls).await;
    Ok(Json(UserFeeds {
        user: user.into(),
        subscriptions,
    }))
}

async fn subscribe(
    State(state): State<AppState>,
    user: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<SubscriptionChange>, ApiError> {
    let user = user_from(user)?;
    let url = url_from(query.as_deref(), "POST")?;
    state.admit_write(&user)?;
    state
        .feeds
        .guard()
        .check_url(url.url())
        .await
        .map_err(|blocked| ApiError::Blocked {
            url: url.to_string(),
            blocked,
        })?;
    // Check then add: two concurrent adds may overshoot the limit by one,
    // which is fine for a limit that exists to stop floods.
    let existing = state.store.list(&user).await?;
    if existing.len() >= state.max_subscriptions && !existing.iter().any(|s| s.url == url) {
        return Err(ApiError::TooManySubscriptions(state.max_subscriptions));
    }
    state.store.add(&user, &url).await?;
    state.feeds.prefetch(&user, &url);
    Ok(Json(SubscriptionChange {
        user: user.into(),
        url: url.into(),
        subscribed: true,
    }))
}

async fn unsubscribe(
    State(state): State<AppState>,
    user: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<SubscriptionChange>, ApiError> {
    let user = user_from(user)?;
    let url = url_from(query.as_deref(), "DELETE")?;
    state.admit_write(&user)?;
    state.store.remove(&user, &url).await?;
    Ok(Json(SubscriptionChange {
        user: user.into(),
        url: url.into(),
        subscribed: false,
    }))
}

async fn healthcheck(State(state): State<AppState>) -> Response {
    let store = state.store.name();
    match state.store.check().await {
        Ok(()) => Json(json!({"status": "UP", "store": store})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "healthcheck: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "DOWN",
                    "store": store,
                    "error": "the subscription store is unreachable",
                })),
            )
                .into_response()
        }
    }
}

fn user_from(path: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(raw) = path.map_err(|_| ApiError::BadPath)?;
    Ok(UserId::parse(&raw)?)
}

fn url_from(query: Option<&str>, method: &'static str) -> Result<FeedUrl, ApiError> {
    let raw = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "url")
        .map(|(_, value)| value)
        .ok_or(ApiError::MissingUrl(method))?;
    Ok(FeedUrl::parse(&raw)?)
}

/// Everything that can go wrong in a request, and its HTTP form.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(
        "the `url` query parameter is missing: use {0} /middletier/rss/user/{{user}}?url=<percent-encoded feed URL>"
    )]
    MissingUrl(&'static str),
    #[error("the user id in the path is not valid percent-encoded UTF-8")]
    BadPath,
    #[error(
        "refusing {url}: {blocked}. Feeds must be on the public internet; an operator can allow private addresses with --allow-private-feeds"
    )]
    Blocked { url: String, blocked: Blocked },
    #[error(
        "you already have {0} subscriptions, the most allowed; delete one before adding another"
    )]
    TooManySubscriptions(usize),
    #[error("too many changes for this user just now; wait {} s and try again", .0.as_secs().max(1))]
    TooManyWrites(std::time::Duration),
    #[error(
        "the subscription store is unavailable right now, so nothing was read or changed; try again in a moment"
    )]
    Store(#[from] StoreError),
    #[error("no such endpoint: the API is GET, POST and DELETE /middletier/rss/user/{{user}}")]
    NotFound,
    #[error(
        "method not allowed on this path: use GET, POST or DELETE /middletier/rss/user/{{user}}"
    )]
    MethodNotAllowed,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::MissingUrl(_) | Self::BadPath | Self::Blocked { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::TooManySubscriptions(_) => StatusCode::CONFLICT,
            Self::TooManyWrites(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Store(cause) = &self {
            // The cause is for operators; the user gets the generic message.
            tracing::error!(error = %cause, "store failure");
        }
        let mut response = (self.status(), Json(ErrorBody::new(self.to_string()))).into_response();
        if let Self::TooManyWrites(wait) = &self {
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = axum::http::HeaderValue::from_str(&seconds) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}
