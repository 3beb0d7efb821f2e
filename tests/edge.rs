//! The edge end to end: registry, middletier(s) and edge as real processes,
//! a person's journey in the page and through the JSON API, and the
//! resilience patterns when the middle tier goes away and comes back.

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::eventually;
use support::process::Service;
use support::stack::Stack;
use support::web::Browser;
use support::web::{get_json, get_text};

async fn api_get(stack: &Stack) -> Value {
    let response = reqwest::get(stack.edge.url("/api/subscriptions"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn api_add(stack: &Stack, url: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(stack.edge.url("/api/subscriptions"))
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn dashboard(stack: &Stack) -> Value {
    get_json(stack.edge.url("/dashboard/data")).await
}

#[tokio::test]
async fn a_person_adds_reads_and_deletes_feeds_in_the_page() {
    let stack = Stack::start(1, &[], &[]).await;
    let mut browser = Browser::new(&stack.edge.url(""));
    let empty = browser.get("/").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No feeds yet"), "{}", empty.body);

    let rss = stack.feeds.url("/fixtures/rss2.xml");
    let atom = stack.feeds.url("/fixtures/atom.xml");
    let page = browser.submit("/subscriptions", &[("url", &rss)]).await;
    assert!(
        page.body.contains(&format!("Added {rss}")),
        "success message shown: {}",
        page.body
    );
    let page = browser.submit("/subscriptions", &[("url", &atom)]).await;
    assert!(
        page.body.contains("Recipe Kitchen") && page.body.contains("Atom Log"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Circuit breakers, explained"));
    assert!(page.body.contains(r#"rel="noopener noreferrer""#));
    assert!(
        page.body
            .contains(r#"<time datetime="2024-01-02T09:30:00+00:00">2 Jan 2024, 09:30 UTC</time>"#)
    );
    // The message is shown once.
    let again = browser.get("/").await;
    assert!(
        !again.body.contains("Added "),
        "the flash message is gone after one view"
    );

    let page = browser
        .submit("/subscriptions/delete", &[("url", &rss)])
        .await;
    assert!(
        page.body.contains(&format!("Deleted {rss}")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("Recipe Kitchen"),
        "the deleted feed is gone"
    );
    assert!(page.body.contains("Atom Log"));

    // A bad URL is the person's error, said in the page.
    let page = browser
        .submit("/subscriptions", &[("url", "not a url")])
        .await;
    assert!(
        page.body.contains("Couldn&#39;t add that feed"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn the_json_api_adds_reads_and_deletes() {
    let stack = Stack::start(1, &["--max-subscriptions", "2"], &[]).await;
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    let (status, body) = api_add(&stack, &rss).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscribed"], true);

    let feeds = api_get(&stack).await;
    assert_eq!(feeds["degraded"], false);
    assert_eq!(feeds["user"], "default");
    assert_eq!(feeds["subscriptions"][0]["title"], "Recipe Kitchen");
    assert_eq!(
        feeds["subscriptions"][0]["items"].as_array().unwrap().len(),
        4
    );

    // Bad input: caught at the edge, or passed on from the middletier.
    let (status, body) = api_add(&stack, "ftp://example.com/feed").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("http://"));
    api_add(&stack, &stack.feeds.url("/fixtures/atom.xml")).await;
    let (status, body) = api_add(&stack, &stack.feeds.url("/fixtures/rss1.rdf")).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the middletier's 409 is passed on: {body}"
    );
    assert!(body["error"].as_str().unwrap().contains("delete one"));
    let rss_add = stack.command("RSSAdd").await;
    assert_eq!(
        rss_add["failure"], 0,
        "the user's mistake is not held against the breaker"
    );
    assert_eq!(rss_add["state"], "closed");

    let text = reqwest::Client::new()
        .post(stack.edge.url("/api/subscriptions"))
        .header("content-type", "text/plain")
        .body(format!(r#"{{"url": "{rss}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(
        text.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "cross-site forms cannot post JSON"
    );

    let deleted = reqwest::Client::new()
        .delete(stack.edge.url("/api/subscriptions"))
        .query(&[("url", &rss)])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let feeds = api_get(&stack).await;
    assert_eq!(feeds["subscriptions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn without_the_middletier_the_edge_degrades_opens_its_breaker_and_recovers() {
    let mut stack = Stack::start(1, &[], &["--breaker-sleep-window", "1s"]).await;
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    api_add(&stack, &rss).await;
    let live = api_get(&stack).await;
    assert_eq!(live["degraded"], false);

    // The middletier stops (and deregisters); the edge's copy follows.
    let mut gone = stack.middletiers.remove(0);
    gone.terminate();
    gone.wait_exit(Duration::from_secs(10))
        .expect("middletier stops");
    stack.wait_until_edge_knows(0).await;

    // The page still answers, within the command timeout, from saved feeds.
    let mut browser = Browser::new(&stack.edge.url(""));
    let page = tokio::time::timeout(Duration::from_secs(10), browser.get("/"))
        .await
        .expect("answers within RSSGet's timeout");
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Showing saved feeds; live update unavailable"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Recipe Kitchen"),
        "the last good feeds are shown"
    );
    let degraded = api_get(&stack).await;
    assert_eq!(degraded["degraded"], true);
    assert_eq!(degraded["subscriptions"], live["subscriptions"]);

    // A change cannot be made, and nobody is told it was.
    let (status, body) = api_add(&stack, &stack.feeds.url("/fixtures/atom.xml")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"].as_str().unwrap().starts_with("not saved"),
        "{body}"
    );
    let page = browser
        .submit(
            "/subscriptions",
            &[("url", &stack.feeds.url("/fixtures/atom.xml"))],
        )
        .await;
    assert!(
        page.body.contains("Your feed was not added"),
        "{}",
        page.body
    );

    // After 20 failing reads in the window the breaker is open...
    for _ in 0..20 {
        api_get(&stack).await;
    }
    let get = stack.command("RSSGet").await;
    assert_eq!(get["state"], "open", "{get}");
    // ...and further reads are short-circuited: answered from the fallback
    // without a call.
    for _ in 0..5 {
        assert_eq!(api_get(&stack).await["degraded"], true);
    }
    let get = stack.command("RSSGet").await;
    assert!(get["short_circuited"].as_u64().unwrap() >= 5, "{get}");

    // The middletier comes back; after the sleep window one trial closes it.
    stack.add_middletier();
    stack.wait_until_edge_knows(1).await;
    eventually("a live answer", Duration::from_secs(5), || async {
        (api_get(&stack).await["degraded"] == false).then_some(())
    })
    .await;
    assert_eq!(
        stack.command("RSSGet").await["state"],
        "closed",
        "the breaker closed after a good trial"
    );
}

#[tokio::test]
async fn hostile_feed_html_renders_inert_under_a_strict_policy() {
    let stack = Stack::start(1, &[], &[]).await;
    api_add(&stack, &stack.feeds.url("/fixtures/rss2.xml")).await;
    let mut browser = Browser::new(&stack.edge.url(""));
    let page = browser.get("/").await;
    assert!(
        page.body.contains("Hostile &#38; harmless"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Safe text"));
    for banned in [
        "onerror",
        "javascript:",
        "<iframe",
        "alert(",
        "<form action=\"https://evil",
    ] {
        assert!(!page.body.contains(banned), "{banned} reached the page");
    }
    let scripts: Vec<_> = page.body.match_indices("<script").collect();
    assert_eq!(scripts.len(), 1, "only our own script");
    assert!(
        page.body
            .contains(r#"<script src="/assets/app.js" defer></script>"#)
    );

    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    for asset in [
        "/assets/app.css",
        "/assets/app.js",
        "/assets/dashboard.js",
        "/assets/icon.svg",
    ] {
        assert_eq!(
            browser.get(asset).await.status,
            StatusCode::OK,
            "{asset} is served by the edge"
        );
    }
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_change_nothing() {
    let stack = Stack::start(1, &[], &[]).await;
    let url = stack.feeds.url("/fixtures/rss2.xml");
    let mut stranger = Browser::new(&stack.edge.url(""));
    let forged = stranger
        .post_form(
            "/subscriptions",
            &[("url", &url), ("csrf", &"a".repeat(64))],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("security token"), "{}", forged.body);

    let mut person = Browser::new(&stack.edge.url(""));
    person.get("/").await;
    let wrong = person
        .post_form(
            "/subscriptions",
            &[("url", &url), ("csrf", &"b".repeat(64))],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let missing = person.post_form("/subscriptions", &[("url", &url)]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api_get(&stack).await["subscriptions"],
        json!([]),
        "nothing was added"
    );

    let cookie = person
        .get("/")
        .await
        .headers
        .get_all("set-cookie")
        .iter()
        .count();
    assert_eq!(cookie, 0, "the token cookie is set once and then reused");
}

#[tokio::test]
async fn the_hystrix_stream_reports_every_command_from_startup() {
    let stack = Stack::start(1, &[], &["--hystrix-stream-interval", "100ms"]).await;
    let mut response = reqwest::get(stack.edge.url("/hystrix.stream"))
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 6 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if let Ok(event) = serde_json::from_str::<Value>(line) {
                seen.insert(format!(
                    "{}/{}",
                    event["type"].as_str().unwrap(),
                    event["name"].as_str().unwrap()
                ));
                if event["type"] == "HystrixCommand" {
                    assert_eq!(event["group"], "RSS");
                    assert!(event["latencyExecute"]["99.5"].is_number());
                }
            }
        }
    }
    let expected: std::collections::BTreeSet<String> = ["RSSGet", "RSSAdd", "RSSDel"]
        .iter()
        .flat_map(|n| {
            [
                format!("HystrixCommand/{n}"),
                format!("HystrixThreadPool/{n}"),
            ]
        })
        .collect();
    assert_eq!(seen, expected);

    let page = get_text(stack.edge.url("/dashboard")).await;
    assert!(
        page.contains("RSSGet") && page.contains("Middletier instances"),
        "{page}"
    );
    let data = dashboard(&stack).await;
    assert_eq!(data["instances"][0]["available"], true);
}

#[tokio::test]
async fn the_edge_registers_as_edge() {
    let stack = Stack::start(1, &[], &[]).await;
    let apps: Value = get_json(stack.registry.url("/eureka/v2/apps/EDGE")).await;
    let instance = &apps["application"]["instance"][0];
    assert_eq!(instance["vipAddress"], "edge");
    assert_eq!(instance["status"], "UP");
    let health: Value = get_json(stack.edge.url("/healthcheck")).await;
    assert_eq!(health["status"], "UP");
    assert_eq!(health["middletier_instances"], 1);
}

#[tokio::test]
async fn an_auth_proxy_header_names_the_user() {
    let stack = Stack::start(1, &[], &["--auth-proxy-header", "X-Forwarded-User"]).await;
    let anonymous = reqwest::get(stack.edge.url("/api/subscriptions"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.text().await.unwrap().contains("X-Forwarded-User"));

    let mut alice =
        Browser::new(&stack.edge.url("")).with_header("X-Forwarded-User", "alice@example.com");
    let mut bob = Browser::new(&stack.edge.url("")).with_header("X-Forwarded-User", "bob");
    alice
        .submit(
            "/subscriptions",
            &[("url", &stack.feeds.url("/fixtures/rss2.xml"))],
        )
        .await;
    assert!(alice.get("/").await.body.contains("Recipe Kitchen"));
    assert!(
        !bob.get("/").await.body.contains("Recipe Kitchen"),
        "bob does not see alice's feeds"
    );
    let bad = Browser::new(&stack.edge.url(""))
        .with_header("X-Forwarded-User", "../../etc")
        .get("/")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_edge_stops_cleanly_even_with_a_stream_open() {
    let stack = Stack::start(1, &[], &[]).await;
    let mut edge = stack.edge;
    let _stream = reqwest::get(edge.url("/hystrix.stream")).await.unwrap();
    edge.terminate();
    let status = edge
        .wait_exit(Duration::from_secs(10))
        .expect("the stream does not hold up shutdown");
    assert!(status.success());
    let _ = Service::start; // the module is shared; keep its API in use here
}
