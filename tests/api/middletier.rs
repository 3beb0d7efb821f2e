//! The middletier's API and feed pipeline.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_middletier;
use crate::support::feed_server::FeedServer;

/// A publisher that accepts connections and never answers.
struct Hanging {
    port: u16,
    _task: tokio::task::JoinHandle<()>,
}

async fn hanging_publisher() -> Hanging {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    Hanging { port, _task: task }
}

#[tokio::test]
async fn one_users_hanging_feeds_do_not_hold_up_another_users_new_feed() {
    let middletier = spawn_middletier(&[
        // Hanging fetches hold their slot for this long.
        "--feed-timeout",
        "60s",
        "--user-write-rate",
        "0",
    ])
    .await;
    // 100 feeds that never answer, on ten publishers (so no one host's
    // limit is what protects everyone else).
    let mut publishers = Vec::new();
    for _ in 0..10 {
        publishers.push(hanging_publisher().await);
    }
    for n in 0..100 {
        let port = publishers[n % 10].port;
        let feed = format!("http://127.0.0.1:{port}/feed-{n}.xml");
        assert_eq!(middletier.subscribe("mallory", &feed).await, StatusCode::OK);
    }
    let (status, _) = middletier.feeds("mallory").await;
    assert_eq!(status, StatusCode::OK);

    let server = FeedServer::start();
    let good = server.url("/fixtures/rss2.xml");
    assert_eq!(middletier.subscribe("alice", &good).await, StatusCode::OK);
    let (status, alice) = middletier.feeds("alice").await;
    assert_eq!(status, StatusCode::OK);
    let feed = &alice["subscriptions"][0];
    assert_eq!(feed["error"], Value::Null, "{feed}");
    assert_eq!(feed["title"], "Recipe Kitchen");
    assert_eq!(feed["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_304_to_a_request_that_was_not_conditional_is_reported_as_such() {
    let middletier = spawn_middletier(&[]).await;
    let server = FeedServer::start();
    let feed = server.url("/status/304");
    assert_eq!(middletier.subscribe("alice", &feed).await, StatusCode::OK);
    let (_, body) = middletier.feeds("alice").await;
    let error = body["subscriptions"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        error,
        "the publisher answered 304 Not Modified to a request that was not conditional"
    );
}
