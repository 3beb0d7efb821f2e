//! Hostile feeds, served by the local feed server and read by the real
//! middletier: each is refused at subscribe time with a clear error (422,
//! nothing stored) or gives a correct, bounded result, in bounded time and
//! memory, and nobody else's feeds notice.
//!
//! The middletier here may read 127.0.0.1 (where the feed server listens)
//! and no other private address (`--allow-feed-addresses`), so redirects to
//! 127.0.0.2, the metadata service or a private network are refused as in
//! production.

use crate::support;
// Tests fail loudly on surprises; helpers outside #[test] fns too.

use std::time::Duration;

use crate::support::feed_server::FeedServer;
use crate::support::process::Service;
use reqwest::StatusCode;
use serde_json::Value;

/// What a feed must come to.
enum Expect {
    Error(&'static str),
    /// Fetched, with exactly this many items.
    Items(usize),
}

async fn subscribe(service: &Service, user: &str, url: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(service.url(&format!("/middletier/rss/user/{user}")))
        .query(&[("url", url)])
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn feeds(service: &Service, user: &str) -> Value {
    // Bounded time: every hostile feed is settled within the 2 s feed
    // timeout and the 3 s wait, so 10 s is generous.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = http
        .get(service.url(&format!("/middletier/rss/user/{user}")))
        .send()
        .await
        .expect("answers in bounded time");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn hostile_feeds_get_clear_errors_or_bounded_results() {
    let server = FeedServer::start();
    let port = server.addr.port();
    let service = Service::start(
        "middletier",
        &[
            "--registry-url=",
            "--allow-feed-addresses",
            "127.0.0.1",
            "--feed-timeout",
            "2s",
            // Not about write limits: mallory subscribes to every case.
            "--user-write-rate",
            "0",
        ],
        &[],
    );
    let feed = |path: &str| server.url(path);
    let redirect = |target: String| {
        feed(&format!(
            "/redirect-to?url={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        ))
    };
    let cases: Vec<(String, Expect)> = vec![
        (
            feed("/fixtures/xxe.xml"),
            Expect::Error("declares XML entities"),
        ),
        (
            feed("/xxe-network.xml"),
            Expect::Error("declares XML entities"),
        ),
        (
            feed("/fixtures/billion-laughs.xml"),
            Expect::Error("declares XML entities"),
        ),
        (
            feed("/quadratic.xml"),
            Expect::Error("declares XML entities"),
        ),
        (feed("/big/1073741824"), Expect::Error("larger than 5 MiB")),
        (feed("/gzip-bomb"), Expect::Error("larger than 5 MiB")),
        (feed("/trickle"), Expect::Error("timed out after 2 s")),
        (
            feed("/redirect-loop"),
            Expect::Error("more than 5 redirects"),
        ),
        (
            redirect(format!("http://127.0.0.2:{port}/fixtures/rss2.xml")),
            Expect::Error("127.0.0.2 is a loopback address"),
        ),
        (
            redirect("http://169.254.169.254/latest/meta-data/".into()),
            Expect::Error("link-local"),
        ),
        (
            redirect("http://10.0.0.1/feed.xml".into()),
            Expect::Error("private network"),
        ),
        (feed("/invalid-utf8.xml"), Expect::Items(1)),
        (feed("/many/10000"), Expect::Items(50)),
        (
            feed("/deep.xml"),
            Expect::Error("nested more than 64 levels"),
        ),
        (
            feed("/fixtures/page.html"),
            Expect::Error("no RSS, Atom or JSON feed found"),
        ),
        (feed("/fixtures/malformed.xml"), Expect::Items(1)),
        (feed("/fixtures/unreadable.xml"), Expect::Error("malformed")),
    ];
    assert_eq!(
        subscribe(&service, "alice", &feed("/fixtures/rss2.xml"))
            .await
            .0,
        StatusCode::OK
    );
    for (url, expect) in &cases {
        let (status, body) = subscribe(&service, "mallory", url).await;
        match expect {
            Expect::Error(reason) => {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
                let error = body["error"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{url}: no error in {body}"));
                assert!(
                    error.contains(reason),
                    "{url}: expected {reason:?}, got {error:?}"
                );
            }
            Expect::Items(_) => assert_eq!(status, StatusCode::OK, "{url}: {body}"),
        }
    }

    let hostile = feeds(&service, "mallory").await;
    let alice = feeds(&service, "alice").await;
    let kept: Vec<&(String, Expect)> = cases
        .iter()
        .filter(|(_, e)| matches!(e, Expect::Items(_)))
        .collect();
    assert_eq!(
        hostile["subscriptions"].as_array().unwrap().len(),
        kept.len(),
        "only readable feeds were stored: {hostile}"
    );
    for (url, expect) in kept {
        let feed = hostile["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["url"] == url.as_str())
            .unwrap_or_else(|| panic!("{url} was stored"));
        if let Expect::Items(n) = expect {
            assert_eq!(feed["error"], Value::Null, "{url}: {feed}");
            assert_eq!(feed["items"].as_array().unwrap().len(), *n, "{url}");
        }
    }
    let utf8 = hostile["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"] == feed("/invalid-utf8.xml"))
        .unwrap();
    assert_eq!(
        utf8["title"], "broken \u{fffd}\u{fffd} bytes",
        "invalid bytes become U+FFFD"
    );
    assert_eq!(server.hits("/secret"), 0, "no external entity was fetched");

    // Nobody else noticed.
    assert_eq!(alice["subscriptions"][0]["error"], Value::Null);
    assert_eq!(
        alice["subscriptions"][0]["items"].as_array().unwrap().len(),
        4
    );

    let peak = support::process::memory_mib(service.pid(), "VmHWM");
    eprintln!("middletier peak RSS during the hostile suite: {peak:.1} MiB");
    assert!(peak < 100.0, "peak RSS {peak:.1} MiB");
}

#[tokio::test]
async fn names_and_addresses_inside_our_network_are_refused_at_subscribe_time() {
    let server = FeedServer::start();
    let strict = Service::start("middletier", &["--registry-url="], &[]);
    let port = server.addr.port();
    for url in [
        format!("http://localhost:{port}/fixtures/rss2.xml"),
        format!("http://127.0.0.1:{port}/fixtures/rss2.xml"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::ffff:10.0.0.1]/feed".to_owned(),
        "http://0x7f000001/feed".to_owned(),
        "http://2130706433/feed".to_owned(),
    ] {
        let response = reqwest::Client::new()
            .post(strict.url("/middletier/rss/user/alice"))
            .query(&[("url", &url)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
    }
    assert_eq!(server.hits("/fixtures/rss2.xml"), 0);
}
