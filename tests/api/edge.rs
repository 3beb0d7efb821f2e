//! The edge's API and its calls to the middletier.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{padded_json_server, record, spawn_edge, spawn_registry};

#[tokio::test]
async fn a_user_header_sent_twice_is_refused() {
    let edge = spawn_edge("", &["--auth-proxy-header", "X-Forwarded-User"]).await;
    let (status, body) = edge
        .list_with(&[
            ("x-forwarded-user", "alice"),
            ("x-forwarded-user", "mallory"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("more than once"),
        "{body}"
    );
    let (status, body) = edge.list_with(&[("x-forwarded-user", "alice")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], "alice");
    let (status, _) = edge.list_with(&[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_oversized_error_from_the_middletier_is_not_read() {
    // A "middletier" whose refusals carry a valid error followed by 100 MiB
    // of spaces.
    let port = padded_json_server(StatusCode::BAD_REQUEST, r#"{"error": "read all of it"}"#).await;
    let registry = spawn_registry(&[]).await;
    assert_eq!(
        registry
            .register(
                "/eureka/v2/",
                "MIDDLETIER",
                record("MIDDLETIER", "huge", port)
            )
            .await,
        StatusCode::NO_CONTENT
    );
    let edge = spawn_edge(&registry.url("/eureka/v2/"), &["--rss-add-timeout", "60s"]).await;
    let (status, body) = edge.subscribe("https://example.com/feed.xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        Value::from("Bad Request"),
        "only the status is reported"
    );
}
