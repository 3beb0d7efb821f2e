//! Reading: the listing, read and starred state, refresh now.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::api::{FeedView, ItemChange, ItemState, MarkRead, Marked};

use super::extract::{FeedParam, ItemPath, JsonBody, User};
use super::{ApiError, AppState, Budget};
use crate::reader::{ListOptions, Listing};

/// Most items per feed one listing returns.
const MAX_LIMIT: usize = 500;

/// A user's listing. One that would be larger than `max_listing_bytes`
/// is refused (422) saying so: a few huge feeds are that user's problem,
/// and must not become an answer that fails everyone's circuit breaker at
/// the edge. `limit=0` (feeds without items) always fits.
pub(super) async fn list(
    State(state): State<AppState>,
    User(user): User,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let options = list_options(query.as_deref())?;
    // The edge asks with the tag of the copy it holds (one tag: ours).
    let known = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let (tag, body) = match state.reader.listing(&user, options, known).await? {
        Listing::Unchanged { tag } => {
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
        }
        Listing::Fresh { tag, body } => (tag, body),
    };
    if body.len() > state.max_listing_bytes {
        return Err(ApiError::ListingTooLarge {
            bytes: body.len(),
            limit: state.max_listing_bytes,
        });
    }
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(tag) = tag.and_then(|tag| HeaderValue::from_str(&tag).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

fn list_options(query: Option<&str>) -> Result<ListOptions, ApiError> {
    let unread_only =
        common::query::flag(query, "unread").map_err(|e| ApiError::BadParameter(e.to_string()))?;
    let limit = common::query::param(query, "limit")
        .map(|raw| match raw.parse::<usize>() {
            Ok(n) if n <= MAX_LIMIT => Ok(n),
            _ => Err(ApiError::BadParameter(format!(
                "limit={:?} is not a number of items from 0 to {MAX_LIMIT}",
                raw.chars().take(20).collect::<String>()
            ))),
        })
        .transpose()?;
    Ok(ListOptions { unread_only, limit })
}

pub(super) async fn set_item(
    State(state): State<AppState>,
    ItemPath(user, id): ItemPath,
    JsonBody(change): JsonBody<ItemChange>,
) -> Result<Json<ItemState>, ApiError> {
    state.admit(&user, Budget::State)?;
    Ok(Json(state.reader.set_item(&user, id, change).await?))
}

pub(super) async fn mark_read(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(request): JsonBody<MarkRead>,
) -> Result<Json<Marked>, ApiError> {
    let url = request
        .url
        .as_deref()
        .map(common::api::FeedUrl::parse)
        .transpose()?;
    state.admit(&user, Budget::State)?;
    let marked = state
        .reader
        .mark_read(&user, url, request.before.as_deref())
        .await?;
    Ok(Json(Marked { marked }))
}

pub(super) async fn refresh(
    State(state): State<AppState>,
    User(user): User,
    FeedParam(url): FeedParam,
) -> Result<Json<FeedView>, ApiError> {
    state.admit(&user, Budget::Refresh)?;
    Ok(Json(state.reader.refresh(&user, &url).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_options_parse_and_refuse_clearly() {
        let o = list_options(Some("unread=true&limit=5")).unwrap();
        assert!(o.unread_only);
        assert_eq!(o.limit, Some(5));
        let o = list_options(None).unwrap();
        assert!(!o.unread_only);
        assert_eq!(o.limit, None);
        let e = list_options(Some("unread=maybe")).unwrap_err().to_string();
        assert!(e.contains("unread=true"), "{e}");
        let e = list_options(Some("limit=-1")).unwrap_err().to_string();
        assert!(e.contains("0 to 500"), "{e}");
        assert!(list_options(Some("limit=501")).is_err());
    }
}
