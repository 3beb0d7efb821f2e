//! The JSON API (docs/ARCHITECTURE.md, "Edge"):
//!
//! | call | result |
//! |---|---|
//! | `GET /api/subscriptions` | the middletier's JSON for the current user, plus `"degraded"` |
//! | `POST /api/subscriptions` `{"url": ...}` | 200 once stored; the middletier's 4xx passed on; 503 when not saved |
//! | `DELETE /api/subscriptions?url=...` | likewise |
//!
//! Errors are `{"error": "..."}`, mapped once in [`crate::error`].

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use common::api::{FeedUrl, SubscriptionChange};
use serde::Deserialize;

use crate::AppState;
use crate::error::{Error, Json};
use crate::user::CurrentUser;

/// `GET /api/subscriptions`: the middletier's JSON, with `"degraded"` (and,
/// when degraded, a `"notice"` saying why) spliced in at the front.
pub(crate) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Response {
    let read = state.middletier.read(&user).await;
    let notice = read
        .degraded
        .as_deref()
        .map(|reason| format!("showing saved feeds; live update unavailable: {reason}"));
    let body = with_degraded(&read.body, notice.as_deref());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
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

/// `POST /api/subscriptions`.
pub(crate) async fn add(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Json(body): Json<AddBody>,
) -> Result<axum::Json<SubscriptionChange>, Error> {
    let url = FeedUrl::parse(&body.url)?;
    Ok(axum::Json(state.middletier.subscribe(&user, &url).await?))
}

/// `DELETE /api/subscriptions?url=...`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<SubscriptionChange>, Error> {
    let raw = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "url")
        .map(|(_, value)| value.into_owned())
        .ok_or(Error::MissingParameter {
            name: "url",
            usage: "DELETE /api/subscriptions?url=<percent-encoded feed URL>",
        })?;
    let url = FeedUrl::parse(&raw)?;
    Ok(axum::Json(state.middletier.unsubscribe(&user, &url).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn degraded_is_spliced_into_the_object() {
        let body = br#"{"user":"u","subscriptions":[]}"#;
        let live: Value = serde_json::from_slice(&with_degraded(body, None)).unwrap();
        assert_eq!(
            live,
            json!({"degraded": false, "user": "u", "subscriptions": []})
        );
        let saved: Value =
            serde_json::from_slice(&with_degraded(body, Some("it said \"no\""))).unwrap();
        assert_eq!(saved["degraded"], true);
        assert_eq!(saved["notice"], "it said \"no\"");
        let empty: Value = serde_json::from_slice(&with_degraded(b"{ }", None)).unwrap();
        assert_eq!(empty, json!({"degraded": false}));
    }
}
