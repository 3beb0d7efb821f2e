//! One article whole, the river, and images for the edge's media proxy.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use common::api::{Article, FeedUrl, River, UserId};
use common::query::RiverQuery;

use super::extract::{ItemPath, User};
use super::{ApiError, AppState};

/// Items per river page, unless `limit` says otherwise.
const RIVER_LIMIT: usize = 50;
/// Most items one river page returns.
const MAX_RIVER_LIMIT: usize = 200;

pub(super) async fn article(
    State(state): State<AppState>,
    ItemPath(user, id): ItemPath,
) -> Result<Json<Article>, ApiError> {
    Ok(Json(state.reader.article(&user, id.get()).await?))
}

pub(super) async fn river(
    State(state): State<AppState>,
    User(user): User,
    RawQuery(query): RawQuery,
) -> Result<Json<River>, ApiError> {
    let options = river_options(query.as_deref())?;
    Ok(Json(state.reader.river(&user, options).await?))
}

fn river_options(query: Option<&str>) -> Result<RiverQuery, ApiError> {
    RiverQuery::parse(query, RIVER_LIMIT, MAX_RIVER_LIMIT)
        .map_err(|e| ApiError::BadParameter(e.to_string()))
}

/// `GET /middletier/media?url=...[&user=...]`: the image at `url`, fetched
/// like a feed (on `user`'s fetch slots) and passed on only if it is one
/// (see [`crate::feeds::media`]).
pub(super) async fn media(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some(raw) = common::query::param(query.as_deref(), "url") else {
        return Err(ApiError::MissingUrl("GET /middletier/media".into()));
    };
    let url = FeedUrl::parse(&raw)?;
    let user = common::query::param(query.as_deref(), "user")
        .map(|raw| UserId::parse(&raw))
        .transpose()?;
    let media = state
        .reader
        .pipeline()
        .media(url.url(), user.as_ref())
        .await?;
    let content_type = HeaderValue::from_str(&media.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        media.bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn river_options_parse_and_refuse_clearly() {
        let o = river_options(Some("unread=true&before=42&limit=7")).unwrap();
        assert!(o.unread_only);
        assert_eq!((o.before.map(|id| id.get()), o.limit), (Some(42), 7));
        let o = river_options(None).unwrap();
        assert_eq!((o.unread_only, o.before, o.limit), (false, None, 50));
        let e = river_options(Some("limit=0")).unwrap_err().to_string();
        assert!(e.contains("1 to 200"), "{e}");
        assert!(river_options(Some("limit=201")).is_err());
        assert!(river_options(Some("before=x")).is_err());
    }
}
