//! The edge: a person's journey in the page and through the JSON API, the
//! resilience patterns when the middle tier goes away and comes back, and
//! what the edge does with odd answers and odd requests.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestStack, padded_json_server, record, spawn_edge, spawn_registry};
use crate::support::eventually;
use crate::support::web::{get_json, get_text};

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

#[tokio::test]
async fn a_person_adds_reads_and_deletes_feeds_in_the_page() {
    let stack = TestStack::start(1, &[], &[]).await;
    let mut browser = stack.edge.browser();
    let empty = browser.get("/").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No feeds yet"), "{}", empty.body);

    let rss = stack.feeds.url("/fixtures/rss2.xml");
    let atom = stack.feeds.url("/fixtures/atom.xml");
    let page = browser.submit("/subscriptions", &[("url", &rss)]).await;
    assert!(
        page.body.contains(&format!("Added Recipe Kitchen ({rss})")),
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
    // Dates relative, the exact time on hover.
    assert!(
        page.body
            .contains(r#"<time datetime="2024-01-02T09:30:00+00:00" title="2 Jan 2024, 09:30 UTC">2 Jan 2024</time>"#),
        "{}",
        page.body
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
    let stack = TestStack::start(1, &["--max-subscriptions", "2"], &[]).await;
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    let (status, body) = stack.edge.subscribe(&rss).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscribed"], true);

    let feeds = stack.edge.feeds().await;
    assert_eq!(feeds["degraded"], false);
    assert_eq!(feeds["user"], "default");
    assert_eq!(feeds["subscriptions"][0]["title"], "Recipe Kitchen");
    assert_eq!(
        feeds["subscriptions"][0]["items"].as_array().unwrap().len(),
        4
    );

    // Bad input: caught at the edge, or passed on from the middletier.
    let (status, body) = stack.edge.subscribe("ftp://example.com/feed").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("http://"));
    stack
        .edge
        .subscribe(&stack.feeds.url("/fixtures/atom.xml"))
        .await;
    let (status, body) = stack
        .edge
        .subscribe(&stack.feeds.url("/fixtures/rss1.rdf"))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the middletier's 409 is passed on: {body}"
    );
    assert!(body["error"].as_str().unwrap().contains("delete one"));
    let rss_add = stack.edge.command("RSSAdd").await;
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

    let (deleted, _) = stack.edge.unsubscribe(&rss).await;
    assert_eq!(deleted, StatusCode::OK);
    let feeds = stack.edge.feeds().await;
    assert_eq!(feeds["subscriptions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn without_the_middletier_the_edge_degrades_opens_its_breaker_and_recovers() {
    let mut stack = TestStack::start(1, &[], &["--breaker-sleep-window", "1s"]).await;
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    stack.edge.subscribe(&rss).await;
    let live = stack.edge.feeds().await;
    assert_eq!(live["degraded"], false);

    // The middletier stops (and deregisters); the edge's copy follows.
    stack.middletiers.remove(0).running.stop().await;
    stack.edge.wait_until_it_knows(0).await;

    // The page still answers, within the command timeout, from saved feeds.
    let mut browser = stack.edge.browser();
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
    let degraded = stack.edge.feeds().await;
    assert_eq!(degraded["degraded"], true);
    assert_eq!(degraded["subscriptions"], live["subscriptions"]);

    // A change cannot be made, and nobody is told it was.
    let (status, body) = stack
        .edge
        .subscribe(&stack.feeds.url("/fixtures/atom.xml"))
        .await;
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
        stack.edge.feeds().await;
    }
    let get = stack.edge.command("RSSGet").await;
    assert_eq!(get["state"], "open", "{get}");
    // ...and further reads are short-circuited: answered from the fallback
    // without a call.
    for _ in 0..5 {
        assert_eq!(stack.edge.feeds().await["degraded"], true);
    }
    let get = stack.edge.command("RSSGet").await;
    assert!(get["short_circuited"].as_u64().unwrap() >= 5, "{get}");

    // The middletier comes back; after the sleep window one trial closes it.
    stack.add_middletier().await;
    stack.edge.wait_until_it_knows(1).await;
    eventually("a live answer", Duration::from_secs(5), || async {
        (stack.edge.feeds().await["degraded"] == false).then_some(())
    })
    .await;
    assert_eq!(
        stack.edge.command("RSSGet").await["state"],
        "closed",
        "the breaker closed after a good trial"
    );
}

#[tokio::test]
async fn hostile_feed_html_renders_inert_under_a_strict_policy() {
    let stack = TestStack::start(1, &[], &[]).await;
    stack
        .edge
        .subscribe(&stack.feeds.url("/fixtures/rss2.xml"))
        .await;
    let mut browser = stack.edge.browser();
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
    assert_eq!(page.headers["referrer-policy"], "same-origin");
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
    let stack = TestStack::start(1, &[], &[]).await;
    let url = stack.feeds.url("/fixtures/rss2.xml");
    let mut stranger = stack.edge.browser();
    let forged = stranger
        .post_form(
            "/subscriptions",
            &[("url", &url), ("csrf", &"a".repeat(64))],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("security token"), "{}", forged.body);

    let mut person = stack.edge.browser();
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
        stack.edge.feeds().await["subscriptions"],
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
    let stack = TestStack::start(1, &[], &["--hystrix-stream-interval", "100ms"]).await;
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
    let data = stack.edge.dashboard().await;
    assert_eq!(data["instances"][0]["available"], true);
}

#[tokio::test]
async fn the_edge_registers_as_edge() {
    let stack = TestStack::start(1, &[], &[]).await;
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
    let stack = TestStack::start(1, &[], &["--auth-proxy-header", "X-Forwarded-User"]).await;
    let anonymous = reqwest::get(stack.edge.url("/api/subscriptions"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.text().await.unwrap().contains("X-Forwarded-User"));

    let mut alice = stack
        .edge
        .browser()
        .with_header("X-Forwarded-User", "alice@example.com");
    let mut bob = stack.edge.browser().with_header("X-Forwarded-User", "bob");
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
    let bad = stack
        .edge
        .browser()
        .with_header("X-Forwarded-User", "../../etc")
        .get("/")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
