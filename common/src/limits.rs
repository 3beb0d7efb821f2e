//! Bounds on a request, checked before any handler runs, with errors a
//! client can act on:
//!
//! - a URL longer than 8 KiB: 414 (a real URL here is a path and one
//!   percent-encoded feed URL of at most 2048 bytes);
//! - a body declared larger than the service's limit: 413 at once, before
//!   anything is read; a body that is not declared (chunked) is cut off at
//!   the same limit while it is read.
//!
//! Header sizes are bounded by hyper itself (it answers 431).
//!
//! And on what we read back from others: [`read_capped`] bounds a
//! response body we receive (a feed, a middletier's answer).

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::limit::RequestBodyLimitLayer;

use crate::api::ErrorBody;

/// Longest request target accepted, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Adds both limits to a router; `max_body` in bytes.
pub fn apply<S>(router: Router<S>, max_body: usize) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| check(max_body, request, next),
        ))
}

async fn check(max_body: usize, request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        let message = format!(
            "the URL is {uri_len} bytes long; the limit is {MAX_URI_BYTES} (a feed URL may be at most 2048)"
        );
        return (StatusCode::URI_TOO_LONG, Json(ErrorBody::new(message))).into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > max_body as u64
    {
        let message = format!("the request body is {length} bytes; the limit here is {max_body}");
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(ErrorBody::new(message))).into_response();
    }
    next.run(request).await
}

/// Why [`read_capped`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum ReadCappedError {
    /// More than the cap arrived.
    #[error("the body is larger than the limit")]
    TooLarge,
    /// Reading failed.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads a response's body, refusing one larger than `max` bytes before
/// holding more than that in memory. Content-Length is only a hint (and
/// absent when decompressing), so the cap is enforced again on the bytes
/// as they arrive.
pub async fn read_capped(
    mut response: reqwest::Response,
    max: u64,
) -> Result<bytes::Bytes, ReadCappedError> {
    if response.content_length().is_some_and(|len| len > max) {
        return Err(ReadCappedError::TooLarge);
    }
    let initial = response.content_length().unwrap_or(64 * 1024).min(max);
    let mut body = bytes::BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(ReadCappedError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> Router {
        apply(
            Router::new().route(
                "/",
                post(|body: String| async move { body.len().to_string() }),
            ),
            16,
        )
    }

    #[tokio::test]
    async fn long_urls_and_large_bodies_get_clear_errors() {
        let long = format!("/?q={}", "a".repeat(MAX_URI_BYTES));
        let response = app()
            .oneshot(Request::post(long).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::URI_TOO_LONG);

        let big = Request::post("/")
            .header(header::CONTENT_LENGTH, "17")
            .body(Body::from("x".repeat(17)))
            .unwrap();
        assert_eq!(
            app().oneshot(big).await.unwrap().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );

        let fine = Request::post("/").body(Body::from("x".repeat(16))).unwrap();
        assert_eq!(app().oneshot(fine).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn an_undeclared_body_is_cut_at_the_limit() {
        let chunks =
            futures::stream::iter(["x".repeat(10), "x".repeat(10)].map(Ok::<_, std::io::Error>));
        let response = app()
            .oneshot(Request::post("/").body(Body::from_stream(chunks)).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
