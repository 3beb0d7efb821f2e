//! The JSON API (docs/ARCHITECTURE.md, "Edge"): the reader's calls, each a
//! named command of [`crate::middletier`].
//!
//! | call | result |
//! |---|---|
//! | `GET /api/subscriptions[?unread=true]` | the middletier's JSON for the current user, plus `"degraded"` |
//! | `POST /api/subscriptions` `{"url": ...}` | 200 once stored; 300 `{"error", "feeds"}` when the page lists several feeds; the middletier's 4xx passed on; 503 when not saved |
//! | `DELETE /api/subscriptions?url=...` | likewise |
//! | `GET /api/items/{id}` | the item whole, with its content (the middletier's JSON) |
//! | `PUT /api/items/{id}` `{"read"?, "starred"?}` | `{"id", "read", "starred"}` |
//! | `GET /api/river[?unread=true][&before=ID][&limit=N]` | `{"items", "next"}`: every feed's items, newest first |
//! | `POST /api/mark-read` `{"url"?, "before"?}` | `{"marked": n}` |
//! | `POST /api/refresh?url=...` | the feed, fetched now |
//! | `GET /api/discover?url=...` | `{"feeds": [{"url", "title", "type"}]}` |
//! | `GET /api/opml`, `POST /api/opml` | export (a download) / import (≤ 1 MiB) |
//!
//! Errors are `{"error": "..."}`, mapped once in [`crate::error`].

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::api::{
    Discovered, FeedUrl, FeedView, ItemChange, ItemId, ItemState, MarkRead, Marked, OpmlImport,
    SubscriptionChange,
};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::client::Client;
use crate::error::{Error, Json};
use crate::middletier::{CallError, Subscribed};
use crate::state::AppState;

/// Items per feed the API lists unless `limit` says otherwise, and the
/// most it lists.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// `GET /api/subscriptions[?unread=true][&limit=N]`: the middletier's
/// JSON, with `"degraded"` (and, when degraded, a `"notice"` saying why)
/// spliced in at the front.
pub(crate) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let unread_only = common::query::flag(query.as_deref(), "unread")
        .map_err(|e| Error::BadParameter(e.to_string()))?;
    let limit = match common::query::param(query.as_deref(), "limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_LIMIT)
            .ok_or_else(|| {
                Error::BadParameter(format!(
                    "limit={:?} is not a number of items per feed from 0 to {MAX_LIMIT}",
                    raw.chars().take(20).collect::<String>()
                ))
            })?,
    };
    let read = state.middletier.read(&user, unread_only, limit).await;
    let notice = read
        .degraded
        .as_deref()
        .map(|reason| format!("showing saved feeds; live update unavailable: {reason}"));
    let body = with_degraded(&read.body, notice.as_deref());
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `{"user": ...}` → `{"degraded": false, "user": ...}`. The body was
/// checked to be a JSON object when it arrived.
fn with_degraded(body: &[u8], notice: Option<&str>) -> Vec<u8> {
    let open = body.iter().position(|b| *b == b'{').unwrap_or(0);
    let rest = &body[(open + 1).min(body.len())..];
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(b"{\"degraded\":");
    out.extend_from_slice(if notice.is_some() { b"true" } else { b"false" });
    if let Some(notice) = notice {
        out.extend_from_slice(b",\"notice\":");
        out.extend_from_slice(&serde_json::to_vec(notice).unwrap_or_default());
    }
    let empty_object = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    if !empty_object {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

#[derive(Debug, Deserialize)]
pub(crate) struct AddBody {
    url: String,
}

/// `POST /api/subscriptions`: 200 when subscribed, 300 with the feeds to
/// choose from.
pub(crate) async fn add(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    Json(body): Json<AddBody>,
) -> Result<Response, Error> {
    let url = FeedUrl::parse(&body.url)?;
    let key = client.rate_key(&user);
    Ok(match state.middletier.subscribe(&key, &user, &url).await? {
        Subscribed::Added(change) => axum::Json(change).into_response(),
        Subscribed::Choice(choice) => {
            (StatusCode::MULTIPLE_CHOICES, axum::Json(*choice)).into_response()
        }
    })
}

/// `DELETE /api/subscriptions?url=...`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<SubscriptionChange>, Error> {
    let url = url_param(
        query.as_deref(),
        "DELETE /api/subscriptions?url=<percent-encoded feed URL>",
    )?;
    let key = client.rate_key(&user);
    Ok(axum::Json(
        state.middletier.unsubscribe(&key, &user, &url).await?,
    ))
}

/// `PUT /api/items/{id}`.
pub(crate) async fn set_item(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(raw_id): Path<String>,
    Json(change): Json<ItemChange>,
) -> Result<axum::Json<ItemState>, Error> {
    // After the body: a bad body is a 400 whatever the id.
    let id = ItemId::parse(&raw_id).map_err(|_| CallError::no_such_item())?;
    Ok(axum::Json(
        state.middletier.set_item(&user, id, change).await?,
    ))
}

/// `GET /api/items/{id}`: the item whole. Reading it here does not mark it
/// read; a client marks what it shows (`PUT`).
pub(crate) async fn article(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(raw_id): Path<String>,
) -> Result<axum::Json<common::api::Article>, Error> {
    let id = ItemId::parse(&raw_id).map_err(|_| CallError::no_such_item())?;
    Ok(axum::Json(state.middletier.article(&user, id).await?))
}

/// `GET /api/river[?unread=true][&before=ID][&limit=N]`.
pub(crate) async fn river(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<common::api::River>, Error> {
    let page = common::query::RiverQuery::parse(query.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)
        .map_err(|e| Error::BadParameter(e.to_string()))?;
    Ok(axum::Json(
        state
            .middletier
            .river(&user, page.unread_only, page.before, page.limit)
            .await?,
    ))
}

/// `POST /api/mark-read`.
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Json(request): Json<MarkRead>,
) -> Result<axum::Json<Marked>, Error> {
    Ok(axum::Json(
        state.middletier.mark_read(&user, request).await?,
    ))
}

/// `POST /api/refresh?url=...`.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<FeedView>, Error> {
    let url = url_param(
        query.as_deref(),
        "POST /api/refresh?url=<percent-encoded feed URL>",
    )?;
    let key = client.rate_key(&user);
    Ok(axum::Json(
        state.middletier.refresh(&key, &user, &url).await?,
    ))
}

/// `GET /api/discover?url=...`.
pub(crate) async fn discover(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<Discovered>, Error> {
    let url = url_param(
        query.as_deref(),
        "GET /api/discover?url=<percent-encoded page or feed URL>",
    )?;
    let key = client.rate_key(&user);
    Ok(axum::Json(
        state.middletier.discover(&key, &user, &url).await?,
    ))
}

/// `GET /api/opml` (and the page's export link): a download.
pub(crate) async fn export_opml(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Response, Error> {
    let opml = state.middletier.export_opml(&user).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/x-opml; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"subscriptions.opml\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        opml,
    )
        .into_response())
}

/// The media types an OPML import is taken in: none of them is one a
/// cross-site form or a "simple" cross-site `fetch` can send.
const OPML_TYPES: [&str; 3] = ["text/x-opml", "application/xml", "text/xml"];

/// `POST /api/opml`: the body is the OPML file, sent as XML. (The media
/// type must be exactly one of [`OPML_TYPES`], parameters aside: no form can
/// send those, so another site cannot make a browser import into the
/// user's account; the page's upload form has its CSRF token.)
pub(crate) async fn import_opml(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<axum::Json<OpmlImport>, Error> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !essence.is_some_and(|t| OPML_TYPES.contains(&t.as_str())) {
        return Err(Error::BadUpload(
            "send the OPML file as the body with Content-Type: text/x-opml (or application/xml, text/xml)"
                .into(),
        ));
    }
    let key = client.rate_key(&user);
    Ok(axum::Json(
        state.middletier.import_opml(&key, &user, body).await?,
    ))
}

fn url_param(query: Option<&str>, usage: &'static str) -> Result<FeedUrl, Error> {
    let raw =
        common::query::param(query, "url").ok_or(Error::MissingParameter { name: "url", usage })?;
    Ok(FeedUrl::parse(&raw)?)
}
