//! What a handler takes from a request, each parsed once at the boundary
//! and refused with the API's one error type ([`ApiError`]), so handlers
//! receive checked values and never map a rejection by hand.
//!
//! | extractor | from | refused with |
//! |---|---|---|
//! | [`User`] | the `{user}` path segment | 400: not a valid user id |
//! | [`ItemPath`] | `{user}` and `{id}` | 400, or 404 for an id that names no item |
//! | [`FeedParam`] | the `url` query parameter | 400 naming the call's usage |
//! | [`JsonBody`] | a JSON body, empty meaning the default | 400 showing the shape to send (413 over the size limit) |

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, RawPathParams, RawQuery, Request};
use axum::http::request::Parts;
use common::api::{FeedUrl, ItemChange, ItemId, MarkRead, UserId};
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::reader::ReaderError;

/// The user the path names.
#[derive(Debug)]
pub(crate) struct User(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "user").await?;
        Ok(User(UserId::parse(&raw)?))
    }
}

/// The user and the item the path names.
#[derive(Debug)]
pub(crate) struct ItemPath(pub UserId, pub ItemId);

impl<S: Send + Sync> FromRequestParts<S> for ItemPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let User(user) = User::from_request_parts(parts, state).await?;
        let raw = path_param(parts, state, "id").await?;
        // Not an id: it names no item (404), as another user's item does.
        let id = ItemId::parse(&raw)
            .map_err(|_| ReaderError::UnknownItem(raw.chars().take(40).collect()))?;
        Ok(ItemPath(user, id))
    }
}

/// One path parameter, percent-decoded.
async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::BadPath)?;
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .ok_or(ApiError::BadPath)
}

/// The feed the `url` query parameter names. A missing one is refused
/// with the call's own usage (its method and route).
#[derive(Debug)]
pub(crate) struct FeedParam(pub FeedUrl);

impl<S: Send + Sync> FromRequestParts<S> for FeedParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        let Some(raw) = common::query::param(query.as_deref(), "url") else {
            let route = MatchedPath::from_request_parts(parts, state)
                .await
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|_| parts.uri.path().to_owned());
            return Err(ApiError::MissingUrl(format!("{} {route}", parts.method)));
        };
        Ok(FeedParam(FeedUrl::parse(&raw)?))
    }
}

/// A body the API takes as JSON, and the shape to show when it is not.
pub(crate) trait Shape: DeserializeOwned + Default {
    /// What to send, as the error message shows it.
    const SHAPE: &'static str;
}

impl Shape for ItemChange {
    const SHAPE: &'static str = r#"{"read": true|false, "starred": true|false}"#;
}

impl Shape for MarkRead {
    const SHAPE: &'static str = r#"{"url"?: "<feed URL>", "before"?: "<item id or RFC 3339 date>"} (an empty body marks everything)"#;
}

/// A JSON body; an empty one is `T::default()`. The content type is not
/// checked: the middletier is called by the edge (and operators' curl),
/// never by a browser.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: Shape> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(T::default()));
        }
        serde_json::from_slice(&body)
            .map(JsonBody)
            .map_err(|e| ApiError::BadJson(e.to_string(), T::SHAPE))
    }
}
