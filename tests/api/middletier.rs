//! The middletier's v1 calls and its feed pipeline, reading a real local
//! HTTP server (fetching, storing, conditional GET, errors a person can
//! read), in-process. The v2 reader calls are in `reader.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    FAST_REFRESH, TestMiddletier, send, spawn_middletier, spawn_strict_middletier,
};
use crate::support::eventually;
use crate::support::feed_server::FeedServer;
use crate::support::listing::item_titles;
use crate::support::web::subscription_urls;

/// A middletier allowed to read the local feed server, with fast timings.
async fn middletier(extra: &[&str]) -> TestMiddletier {
    let mut args = vec![
        "--feed-timeout",
        "1s",
        "--feed-connect-timeout",
        "1s",
        "--feed-wait",
        "5s",
    ];
    args.extend_from_slice(extra);
    spawn_middletier(&args).await
}

fn subscription<'a>(feeds: &'a Value, url: &str) -> &'a Value {
    feeds["subscriptions"]
        .as_array()
        .expect("subscriptions is an array")
        .iter()
        .find(|s| s["url"] == url)
        .unwrap_or_else(|| panic!("{url} missing from {feeds:#}"))
}

#[tokio::test]
async fn subscribing_then_reading_returns_parsed_rss_and_atom_items() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let rss = feeds.url("/fixtures/rss2.xml");
    let atom = feeds.url("/fixtures/atom.xml");

    let (status, body) = api.subscribe("alice", &rss).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscribed"], true);
    assert_eq!(api.subscribe("alice", &atom).await.0, StatusCode::OK);

    let (status, body) = api.feeds("alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], "alice");
    assert_eq!(
        subscription_urls(&body),
        [rss.as_str(), atom.as_str()],
        "in the order subscribed"
    );

    let rss_feed = subscription(&body, &rss);
    assert_eq!(rss_feed["title"], "Recipe Kitchen");
    assert_eq!(rss_feed["error"], Value::Null);
    assert_eq!(item_titles(rss_feed)[0], "Circuit breakers, explained");
    let first = &rss_feed["items"][0];
    assert_eq!(
        first["link"],
        format!("http://{}/posts/breakers.html", feeds.addr)
    );
    assert_eq!(first["published"], "2024-01-02T09:30:00Z");

    let atom_feed = subscription(&body, &atom);
    assert_eq!(atom_feed["title"], "Atom Log");
    assert_eq!(
        item_titles(atom_feed),
        ["HTML summary", "Plain text summary", "XHTML content"]
    );

    // Other users see nothing of alice's.
    let (_, bob) = api.feeds("bob").await;
    assert_eq!(bob["subscriptions"], Value::Array(vec![]));
}

#[tokio::test]
async fn reads_serve_stored_items_without_asking_the_publisher() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let url = feeds.url("/fixtures/rss2.xml");
    assert_eq!(api.subscribe("alice", &url).await.0, StatusCode::OK);
    assert_eq!(api.subscribe("bob", &url).await.0, StatusCode::OK);

    for user in ["alice", "alice", "bob", "alice"] {
        let (_, body) = api.feeds(user).await;
        assert_eq!(item_titles(&body["subscriptions"][0]).len(), 4);
    }
    assert_eq!(
        feeds.hits("/fixtures/rss2.xml"),
        1,
        "subscribing fetched it once; a second subscriber and every read use what is stored"
    );
}

#[tokio::test]
async fn concurrent_readers_cause_no_fetch() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let slow = feeds.url("/slow/300/rss2.xml");
    for user in 0..20 {
        // The first subscribe fetches: that is the one fetch.
        assert_eq!(
            api.subscribe(&format!("user{user}"), &slow).await.0,
            StatusCode::OK
        );
    }
    let reads = (0..20).map(|user| {
        let api = &api;
        async move { api.feeds(&format!("user{user}")).await }
    });
    for (status, body) in futures::future::join_all(reads).await {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["subscriptions"][0]["error"], Value::Null, "{body}");
    }
    assert_eq!(feeds.hits("/slow/300/rss2.xml"), 1);
}

#[tokio::test]
async fn the_scheduler_refetches_with_a_conditional_get_and_keeps_the_items() {
    let feeds = FeedServer::start();
    let api = middletier(&FAST_REFRESH).await;
    let url = feeds.url("/etag/rss2.xml");
    assert_eq!(api.subscribe("alice", &url).await.0, StatusCode::OK);
    let (_, first) = api.feeds("alice").await;
    assert_eq!(item_titles(&first["subscriptions"][0]).len(), 4);

    eventually(
        "the publisher answers 304 to a refresh",
        Duration::from_secs(10),
        || async { (feeds.not_modified("/etag/rss2.xml") >= 1).then_some(()) },
    )
    .await;
    let (_, second) = api.feeds("alice").await;
    assert_eq!(
        second["subscriptions"][0]["items"], first["subscriptions"][0]["items"],
        "the stored items, ids and all, are served"
    );
    assert_eq!(second["subscriptions"][0]["error_count"], 0);
    assert_ne!(
        second["subscriptions"][0]["last_fetched"],
        Value::Null,
        "{second}"
    );
}

#[tokio::test]
async fn a_feed_that_cannot_be_read_is_refused_with_a_readable_error() {
    let feeds = FeedServer::start();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let api = middletier(&["--feed-max-bytes", "256KiB"]).await;
    let cases = [
        (feeds.url("/status/404"), "HTTP 404"),
        (feeds.url("/status/500"), "HTTP 500"),
        (feeds.url("/slow/3000/rss2.xml"), "timed out after 1 s"),
        (feeds.url("/big/1048576"), "larger than 256 KiB"),
        (feeds.url("/big-declared/1048576"), "larger than 256 KiB"),
        (feeds.url("/gzip-bomb"), "larger than 256 KiB"),
        (
            feeds.url("/fixtures/page.html"),
            "no RSS, Atom or JSON feed found",
        ),
        (feeds.url("/fixtures/unreadable.xml"), "malformed"),
        (feeds.url("/fixtures/xxe.xml"), "declares XML entities"),
        (
            feeds.url("/fixtures/billion-laughs.xml"),
            "declares XML entities",
        ),
        (feeds.url("/redirect/6/rss2.xml"), "more than 5 redirects"),
        (
            format!("http://127.0.0.1:{closed_port}/feed.xml"),
            "could not connect",
        ),
    ];
    for (url, reason) in &cases {
        let (status, body) = api.subscribe("alice", url).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{url} has no error: {body}"));
        assert!(
            error.contains(reason),
            "{url}: expected {reason:?}, got {error:?}"
        );
        assert!(!error.contains("root:"), "nothing from /etc/passwd leaks");
    }
    let good = feeds.url("/fixtures/rss2.xml");
    assert_eq!(api.subscribe("alice", &good).await.0, StatusCode::OK);

    let (status, body) = api.feeds("alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        subscription_urls(&body),
        [good.as_str()],
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn redirects_within_the_limit_are_followed() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let url = feeds.url("/redirect/5/atom.xml");
    api.subscribe("alice", &url).await;
    let (_, body) = api.feeds("alice").await;
    assert_eq!(subscription(&body, &url)["title"], "Atom Log");
}

#[tokio::test]
async fn non_utf8_feeds_are_decoded() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let latin1 = feeds.url("/fixtures/latin1.xml");
    let utf16 = feeds.url("/fixtures/utf16.xml");
    api.subscribe("alice", &latin1).await;
    api.subscribe("alice", &utf16).await;
    let (_, body) = api.feeds("alice").await;
    assert_eq!(subscription(&body, &latin1)["title"], "Café Crème");
    assert_eq!(
        item_titles(subscription(&body, &utf16)),
        ["日本語のタイトル"]
    );
}

#[tokio::test]
async fn unsubscribing_removes_the_feed_and_is_idempotent() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let rss = feeds.url("/fixtures/rss2.xml");
    let atom = feeds.url("/fixtures/atom.xml");
    api.subscribe("alice", &rss).await;
    api.subscribe("alice", &atom).await;

    let (status, body) = api.unsubscribe("alice", &rss).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscribed"], false);
    assert_eq!(
        api.unsubscribe("alice", &rss).await.0,
        StatusCode::OK,
        "again is fine"
    );

    let (_, body) = api.feeds("alice").await;
    assert_eq!(subscription_urls(&body), [atom]);
}

#[tokio::test]
async fn subscribing_twice_keeps_one_entry() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let rss = feeds.url("/fixtures/rss2.xml");
    assert_eq!(api.subscribe("alice", &rss).await.0, StatusCode::OK);
    assert_eq!(api.subscribe("alice", &rss).await.0, StatusCode::OK);
    let (_, body) = api.feeds("alice").await;
    assert_eq!(body["subscriptions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_that_says_what_to_do() {
    let feeds = FeedServer::start();
    let api = middletier(&["--max-subscriptions", "2"]).await;
    let (one, two, three) = (
        feeds.url("/fixtures/rss2.xml"),
        feeds.url("/fixtures/atom.xml"),
        feeds.url("/fixtures/rss1.rdf"),
    );
    let long_url = format!("https://example.com/{}", "a".repeat(2100));
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "bad user!",
            "https://example.com/feed".into(),
            StatusCode::BAD_REQUEST,
            "user id",
        ),
        (
            "alice",
            "ftp://example.com/feed".into(),
            StatusCode::BAD_REQUEST,
            "http://",
        ),
        (
            "alice",
            "example.com/feed".into(),
            StatusCode::BAD_REQUEST,
            "absolute URL",
        ),
        ("alice", long_url, StatusCode::BAD_REQUEST, "2048"),
        ("alice", String::new(), StatusCode::BAD_REQUEST, "empty"),
    ];
    for (user, url, status, hint) in cases {
        let (got, body) = api.subscribe(user, &url).await;
        assert_eq!(got, status, "{user} {url}: {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {body}"));
        assert!(
            message.contains(hint),
            "{message:?} should mention {hint:?}"
        );
    }

    let missing = send(api.http.post(api.url("/middletier/rss/user/alice"))).await;
    assert_eq!(missing.0, StatusCode::BAD_REQUEST);
    assert!(
        missing.1["error"]
            .as_str()
            .unwrap()
            .contains("`url` query parameter")
    );

    let (status, body) = api.get("/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    let wrong_method = send(api.http.put(api.url("/middletier/rss/user/alice"))).await;
    assert_eq!(wrong_method.0, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.1["error"].is_string());

    // The subscription limit: the third distinct feed is refused, a repeat is not.
    assert_eq!(api.subscribe("alice", &one).await.0, StatusCode::OK);
    assert_eq!(api.subscribe("alice", &two).await.0, StatusCode::OK);
    let (status, body) = api.subscribe("alice", &three).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].as_str().unwrap().contains("delete one"));
    assert_eq!(api.subscribe("alice", &one).await.0, StatusCode::OK);

    let (_, body) = api.feeds("alice").await;
    assert_eq!(
        body["subscriptions"].as_array().unwrap().len(),
        2,
        "no refused call changed anything"
    );
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let feeds = FeedServer::start();
    let api = spawn_strict_middletier(&[]).await;
    let refused = [
        (feeds.url("/fixtures/rss2.xml"), "loopback"),
        (
            format!("http://localhost:{}/fixtures/rss2.xml", feeds.addr.port()),
            "loopback",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local",
        ),
        ("http://10.0.0.1/feed".to_owned(), "private"),
        ("http://192.168.1.1/feed".to_owned(), "private"),
        ("http://[::1]/feed".to_owned(), "loopback"),
        ("http://[fd00::1]/feed".to_owned(), "unique-local"),
        ("http://0.0.0.0/feed".to_owned(), "unspecified"),
    ];
    for (url, kind) in &refused {
        let (status, body) = api.subscribe("alice", url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains(kind) && message.contains("--allow-private-feeds"),
            "{message}"
        );
    }
    let (_, body) = api.feeds("alice").await;
    assert_eq!(body["subscriptions"], Value::Array(vec![]));
    assert_eq!(feeds.hits("/fixtures/rss2.xml"), 0, "nothing was fetched");
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let feeds = FeedServer::start();
    let api = middletier(&[]).await;
    let (status, body) = api.get("/healthcheck").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "UP");
    assert_eq!(body["store"], "memory");

    api.subscribe("alice", &feeds.url("/fixtures/rss2.xml"))
        .await;
    api.subscribe("alice", &feeds.url("/status/404")).await;
    api.feeds("alice").await;
    api.feeds("alice").await;
    // The scheduler's gauges appear with its first tick.
    eventually(
        "the scheduler counts its feeds",
        Duration::from_secs(5),
        || async {
            let metrics = api
                .http
                .get(api.url("/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            metrics.contains("feeds_owned").then_some(())
        },
    )
    .await;

    let metrics = crate::support::web::get_text(api.url("/metrics")).await;
    for series in [
        r#"http_requests_total{service="middletier",method="GET",route="/middletier/rss/user/{user}",status="200"}"#,
        r#"http_request_duration_seconds_bucket{service="middletier",method="GET",route="/middletier/rss/user/{user}",le="#,
        r#"feed_fetches_total{outcome="ok"}"#,
        r#"feed_fetches_total{outcome="http_status"}"#,
        r#"feed_refreshes_total{outcome="ok"}"#,
        "feed_fetches_in_flight",
        "feeds_owned",
        "feeds_due",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }
}

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
    // Hanging fetches would hold their slot this long; subscribing gives
    // up after its own 4 s.
    let middletier = std::sync::Arc::new(spawn_middletier(&["--feed-timeout", "60s"]).await);
    // 100 feeds that never answer, on ten publishers (so no one host's
    // limit is what protects everyone else), all being subscribed at once.
    let mut publishers = Vec::new();
    for _ in 0..10 {
        publishers.push(hanging_publisher().await);
    }
    let mallory: Vec<_> = (0..100)
        .map(|n| {
            let feed = format!("http://127.0.0.1:{}/feed-{n}.xml", publishers[n % 10].port);
            let middletier = middletier.clone();
            tokio::spawn(async move { middletier.subscribe("mallory", &feed).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let server = FeedServer::start();
    let good = server.url("/fixtures/rss2.xml");
    let (status, body) = middletier.subscribe("alice", &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        mallory.iter().all(|s| !s.is_finished()),
        "alice was answered while mallory's subscribes were still hanging, not after them"
    );
    let (_, alice) = middletier.feeds("alice").await;
    let feed = &alice["subscriptions"][0];
    assert_eq!(feed["error"], Value::Null, "{feed}");
    assert_eq!(feed["title"], "Recipe Kitchen");
    assert_eq!(feed["items"].as_array().unwrap().len(), 4);

    for subscribe in mallory {
        let (status, body) = subscribe.await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("did not answer within 4 s"),
            "{body}"
        );
    }
    let (_, body) = middletier.feeds("mallory").await;
    assert_eq!(
        body["subscriptions"],
        Value::Array(vec![]),
        "nothing that hung was stored"
    );
}

#[tokio::test]
async fn a_304_to_a_request_that_was_not_conditional_is_reported_as_such() {
    let middletier = spawn_middletier(&[]).await;
    let server = FeedServer::start();
    let feed = server.url("/status/304");
    let (status, body) = middletier.subscribe("alice", &feed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "the publisher answered 304 Not Modified to a request that was not conditional"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn json_feed_and_quirky_feeds_show_their_items() {
    let api = middletier(&[]).await;
    let feeds = FeedServer::start();
    for (name, title, items) in [
        ("jsonfeed-1.1.json", "JSON Feed Eleven", 2),
        ("jsonfeed-1.0.json", "JSON Feed One", 3),
        ("atom-xhtml-xml-type.xml", "Media Typed", 2),
        ("rss090-netscape.rdf", "Netscape Ninety", 2),
    ] {
        let url = feeds.url(&format!("/quirks/{name}"));
        assert_eq!(api.subscribe("alice", &url).await.0, StatusCode::OK);
        let (_, body) = api.feeds("alice").await;
        let feed = subscription(&body, &url);
        assert_eq!(feed["error"], Value::Null, "{name}: {feed}");
        assert_eq!(feed["title"], title, "{name}");
        assert_eq!(feed["items"].as_array().unwrap().len(), items, "{name}");
    }
}

/// The accounts the edge keeps here: created once, replaced only while
/// they exist, and a body that names another user than the path is
/// refused.
#[tokio::test]
async fn accounts_are_kept_whole_and_refused_with_reasons() {
    let api = middletier(&[]).await;
    let http = reqwest::Client::new();
    let account = serde_json::json!({
        "user": "erin", "password_hash": "$argon2id$x", "admin": false, "epoch": 0,
        "created_at": "2026-12-03T10:00:00Z", "app_passwords": []
    });
    let accounts = api.url("/middletier/accounts");
    let create = || http.post(&accounts).json(&account).send();
    assert_eq!(create().await.unwrap().status(), StatusCode::CREATED);
    let again = create().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("already exists"),
        "{body}"
    );

    let one = api.url("/middletier/accounts/erin");
    let mut changed = account.clone();
    changed["epoch"] = 1.into();
    let put = http.put(&one).json(&changed).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let stored: Value = http.get(&one).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["epoch"], 1);
    let listed: Value = http
        .get(&accounts)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let other = http
        .put(api.url("/middletier/accounts/frank"))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        StatusCode::BAD_REQUEST,
        "path and body disagree"
    );
    let bad = http.post(&accounts).body("{").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let deleted = http.delete(&one).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        http.get(&one).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let put = http.put(&one).json(&changed).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::NOT_FOUND, "not brought back");
}
