//! Managing subscriptions: subscribe (with discovery), unsubscribe, OPML.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::api::{Discovered, OpmlImport, SubscriptionChange};

use super::extract::{FeedParam, User};
use super::{ApiError, AppState, Budget};
use crate::feeds::parse;
use crate::reader::Subscribe;

/// Subscribed (200), or a page that lists several feeds: 300, with the
/// feeds to choose from.
pub(super) async fn subscribe(
    State(state): State<AppState>,
    User(user): User,
    FeedParam(url): FeedParam,
) -> Result<Response, ApiError> {
    state.admit(&user, Budget::Writes)?;
    Ok(match state.reader.subscribe(&user, url).await? {
        Subscribe::Added(subscribed) => Json(SubscriptionChange {
            user: user.into(),
            url: subscribed.url.into(),
            title: subscribed.title,
            subscribed: true,
        })
        .into_response(),
        Subscribe::Choose(choice) => (
            StatusCode::MULTIPLE_CHOICES,
            Json(Discovered {
                error: Some(choice.question()),
                feeds: choice.feeds,
            }),
        )
            .into_response(),
    })
}

pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    User(user): User,
    FeedParam(url): FeedParam,
) -> Result<Json<SubscriptionChange>, ApiError> {
    state.admit(&user, Budget::Writes)?;
    state.reader.unsubscribe(&user, &url).await?;
    Ok(Json(SubscriptionChange {
        user: user.into(),
        url: url.into(),
        title: None,
        subscribed: false,
    }))
}

/// The feeds at a URL. `user` (optional, the edge always sends it) meters
/// the fetches it causes like a refresh, and puts them on that user's
/// fetch slots.
pub(super) async fn discover(
    State(state): State<AppState>,
    FeedParam(url): FeedParam,
    RawQuery(query): RawQuery,
) -> Result<Json<Discovered>, ApiError> {
    let user = common::query::param(query.as_deref(), "user")
        .map(|raw| common::api::UserId::parse(&raw))
        .transpose()?;
    if let Some(user) = &user {
        state.admit(user, Budget::Refresh)?;
    }
    Ok(Json(state.reader.discover(url, user.as_ref()).await?))
}

pub(super) async fn export_opml(
    State(state): State<AppState>,
    User(user): User,
) -> Result<Response, ApiError> {
    let opml = state.reader.export_opml(&user).await?;
    let mut response = opml.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-opml; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"subscriptions.opml\""),
    );
    Ok(response)
}

pub(super) async fn import_opml(
    State(state): State<AppState>,
    User(user): User,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OpmlImport>, ApiError> {
    state.admit(&user, Budget::Writes)?;
    // The same decoding as feeds: BOM, XML declaration, HTTP charset.
    let charset = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("charset=")))
        .map(|c| c.trim_matches('"'));
    let text = parse::decode(&body, charset);
    Ok(Json(state.reader.import_opml(&user, &text).await?))
}
