//! The JSON API (DESIGN.md):
//!
//! | call | result |
//! |---|---|
//! | `GET /api/subscriptions` | the middletier's JSON for the current user, plus `"degraded"` |
//! | `POST /api/subscriptions` `{"url": ...}` | 200 once stored; the middletier's 4xx passed on; 503 when not saved |
//! | `DELETE /api/subscriptions?url=...` | likewise |
//!
//! Errors are `{"error": "..."}`, mapped once in [`ApiError`].

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::api::{ErrorBody, FeedUrl, InvalidInput, SubscriptionChange};
use serde::Deserialize;

use crate::AppState;
use crate::middletier::WriteError;
use crate::user::CurrentUser;

/// `GET /api/subscriptions`: the middletier's JSON, with `"degraded"` (and,
/// when degraded, a `"notice"` saying why) spliced in at the front.
pub async fn list(State(state): State<AppState>, CurrentUser(user): CurrentUser) -> Response {
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
pub struct AddBody {
    url: String,
}

/// `POST /api/subscriptions`.
pub async fn add(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    body: Result<Json<AddBody>, JsonRejection>,
) -> Result<Json<SubscriptionChange>, ApiError> {
    let Json(body) = body.map_err(ApiError::Body)?;
    let url = FeedUrl::parse(&body.url)?;
    Ok(Json(state.middletier.subscribe(&user, &url).await?))
}

/// `DELETE /api/subscriptions?url=...`.
pub async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    RawQuery(query): RawQuery,
) -> Result<Json<SubscriptionChange>, ApiError> {
    let raw = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "url")
        .map(|(_, value)| value.into_owned())
        .ok_or(ApiError::MissingUrl)?;
    let url = FeedUrl::parse(&raw)?;
    Ok(Json(state.middletier.unsubscribe(&user, &url).await?))
}

/// Everything that can go wrong in an API call, and its HTTP form.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", body_message(.0))]
    Body(JsonRejection),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(
        "the `url` query parameter is missing: use DELETE /api/subscriptions?url=<percent-encoded feed URL>"
    )]
    MissingUrl,
    #[error(transparent)]
    Write(#[from] WriteError),
}

fn body_message(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "send the body as JSON with Content-Type: application/json, e.g. {\"url\": \"https://example.com/feed.xml\"}".to_owned()
        }
        other => format!("the body is not {{\"url\": \"...\"}} ({}); send e.g. {{\"url\": \"https://example.com/feed.xml\"}}", other.body_text()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Body(JsonRejection::MissingJsonContentType(_)) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Body(_) | ApiError::Invalid(_) | ApiError::MissingUrl => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Write(WriteError::Refused { status, .. }) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::Write(WriteError::NotSaved(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Write(WriteError::TooFast(_)) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Write(WriteError::Unknown) => StatusCode::GATEWAY_TIMEOUT,
        };
        // A 429 says when to try again, whether the edge or the middletier
        // refused the call.
        let retry_after = match &self {
            ApiError::Write(WriteError::TooFast(wait)) => Some(wait.as_secs().max(1)),
            ApiError::Write(WriteError::Refused { retry_after, .. }) => *retry_after,
            _ => None,
        };
        let mut response = (status, Json(ErrorBody::new(self.to_string()))).into_response();
        if let Some(value) =
            retry_after.and_then(|s| axum::http::HeaderValue::from_str(&s.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
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
