//! The findings of the 2026-12 security review of the reader, each as the
//! behaviour that answers it (the finding's label is in each test's doc).
//! Pure parts are tested beside their code: the address guard
//! (`feeds::guard`, L4-L6), field caps and guid links (`feeds::parse`, H2,
//! L9), the id lease (`store::cassandra`, L11), ids after a feed's newest
//! (`store::ids`, L12), the serve loop's idle connections
//! (`common::server::serve`, M4), the CSRF cookie and the cross-site check
//! (`edge::security`, M2), rate-limit keys (`common::ratelimit`, L7), user
//! ids (`common::api`, M1), and the stores' races (`store::suite`, M7, M8).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestStack, send, spawn_middletier};
use crate::hostile_requests::raw;
use crate::support::listing::all_item_ids;

/// H2: one user's huge feeds are that user's problem. Their listing is
/// refused as too large (not counted against the breaker everyone shares),
/// they are shown their feeds without items (so they can remove them), the
/// page asks only for what it shows and stays whole, and other users are
/// served live throughout.
#[tokio::test]
async fn one_users_huge_feeds_never_take_the_reader_from_others() {
    let stack = TestStack::start(
        1,
        &["--max-listing-bytes", "16KiB"],
        &["--auth-proxy-header", "X-User"],
    )
    .await;
    let edge = &stack.edge;
    let as_user =
        |user: &'static str| move |request: reqwest::RequestBuilder| request.header("X-User", user);
    let big = as_user("big");
    // 50 items of about 600 bytes each: 40 KB as a listing of 50 a feed.
    for n in [50, 51] {
        let feed = stack.feeds.url(&format!("/generated/{n}"));
        let (status, body) = send(big(edge
            .http
            .post(edge.url("/api/subscriptions"))
            .json(&json!({ "url": feed }))))
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let other = as_user("other");
    let (status, _) =
        send(other(edge.http.post(edge.url("/api/subscriptions")).json(
            &json!({"url": stack.feeds.url("/fixtures/rss2.xml")}),
        )))
        .await;
    assert_eq!(status, StatusCode::OK);

    for _ in 0..25 {
        let (status, body) = send(big(edge.http.get(edge.url("/api/subscriptions")))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["degraded"], true, "{body}");
        let notice = body["notice"].as_str().unwrap();
        assert!(notice.contains("without their items"), "{notice}");
        let feeds = body["subscriptions"].as_array().unwrap();
        assert_eq!(feeds.len(), 2, "the feeds are listed, to be removed");
        assert!(
            feeds
                .iter()
                .all(|f| f["items"].as_array().unwrap().is_empty())
        );
    }
    let get = edge.command("RSSGet").await;
    assert_eq!(get["state"], "closed", "{get}");
    let (_, body) = send(other(edge.http.get(edge.url("/api/subscriptions")))).await;
    assert_eq!(body["degraded"], false, "{body}");

    // The page asks for the 8 items a feed shows: that fits.
    let page = edge.browser().with_header("X-User", "big").get("/").await;
    assert!(!page.body.contains("without their items"), "{}", page.body);
    assert!(
        page.body.contains("Post number 0:"),
        "the newest items show"
    );
}

/// M1: a user id that a URL parser would drop as a dot segment is refused,
/// at the edge and at the middletier; ids are one person whatever their
/// case.
#[tokio::test]
async fn dot_user_ids_are_refused_and_case_does_not_make_a_new_user() {
    let stack = TestStack::start(1, &[], &["--auth-proxy-header", "X-User"]).await;
    let edge = &stack.edge;
    for dot in [".", ".."] {
        let (status, body) = edge.list_with(&[("X-User", dot)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{dot}: {body}");
        let (status, body) = raw(
            stack.middletiers[0].running.port,
            format!("GET /middletier/rss/user/{dot}/opml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert!(status.is_client_error(), "{dot}: {status} {body}");
    }
    let feed = stack.feeds.url("/fixtures/rss2.xml");
    let (status, _) = send(
        edge.http
            .post(edge.url("/api/subscriptions"))
            .header("X-User", "Alice")
            .json(&json!({ "url": feed })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = edge.list_with(&[("X-User", "alice")]).await;
    assert_eq!(body["user"], "alice");
    assert_eq!(body["subscriptions"][0]["url"], feed.as_str());
}

/// M2 (a): an OPML import is taken only as one of the XML media types no
/// cross-site form or simple `fetch` can send.
#[tokio::test]
async fn an_opml_import_needs_an_xml_media_type_exactly() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = &stack.edge;
    let opml = format!(
        r#"<opml version="2.0"><body><outline xmlUrl="{}"/></body></opml>"#,
        stack.feeds.url("/fixtures/rss2.xml")
    );
    for sneaky in [
        "text/plain; x=opml",
        "multipart/form-data; boundary=xml",
        "application/xml-dtd",
    ] {
        let (status, body) = send(
            edge.http
                .post(edge.url("/api/opml"))
                .header("content-type", sneaky)
                .body(opml.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sneaky}: {body}");
    }
    assert!(
        edge.feeds().await["subscriptions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for good in ["text/x-opml", "application/xml; charset=utf-8", "TEXT/XML"] {
        let (status, body) = send(
            edge.http
                .post(edge.url("/api/opml"))
                .header("content-type", good)
                .body(opml.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{good}: {body}");
    }
}

/// M2 (b): every state-changing call refuses a request another site made,
/// token or not; the reader's own pages and API clients go on working.
#[tokio::test]
async fn writes_from_another_site_are_refused_token_or_not() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = &stack.edge;
    let feed = stack.feeds.url("/fixtures/rss2.xml");
    assert_eq!(edge.subscribe(&feed).await.0, StatusCode::OK);

    let refresh = || {
        edge.http
            .post(edge.url("/api/refresh"))
            .query(&[("url", feed.as_str())])
    };
    let (status, body) = send(refresh().header("origin", "https://attacker.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("another site")
            || body["error"].as_str().unwrap().contains("attacker.example"),
        "{body}"
    );
    let (status, _) = send(refresh().header("sec-fetch-site", "cross-site")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let own = edge.url("");
    let (status, body) = send(refresh().header("origin", own.trim_end_matches('/'))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(send(refresh()).await.0, StatusCode::OK, "an API client");

    // A form with a valid token, from a sibling site: refused.
    let mut browser = edge.browser();
    let csrf = browser.get("/").await.csrf();
    let mut sneaky = edge
        .browser()
        .with_header("origin", "http://evil.sub.example");
    sneaky.cookies = browser.cookies.clone();
    let page = sneaky
        .post_form("/subscriptions/delete", &[("url", &feed), ("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(
        edge.feeds().await["subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing was deleted"
    );
}

/// M2 (c): over HTTPS (as a trusted proxy says), the CSRF cookie is
/// `__Host-` and `Secure`; a plain `csrf` cookie does not pass for it.
#[tokio::test]
async fn over_https_the_csrf_cookie_is_host_only_and_secure() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = &stack.edge;
    let page = edge
        .browser()
        .with_header("x-forwarded-proto", "https")
        .get("/")
        .await;
    let cookies: Vec<&str> = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("__Host-csrf="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(csrf.contains("Secure") && csrf.contains("Path=/"), "{csrf}");
    assert!(!csrf.contains("Domain"), "{csrf}");
    // Over plain HTTP it is the plain cookie, without Secure.
    let page = edge.browser().get("/").await;
    let cookie = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.starts_with("csrf=") && !cookie.contains("Secure"),
        "{cookie}"
    );
}

/// M3: discovering feeds is metered per user like a subscribe, and one
/// call fetches a bounded number of URLs however many a page links to.
#[tokio::test]
async fn discovery_is_metered_and_bounded() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = &stack.edge;
    let page = stack.feeds.url("/links/10");
    let (status, body) = send(
        edge.http
            .get(edge.url("/api/discover"))
            .query(&[("url", page.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fetched: usize = (0..10)
        .map(|i| stack.feeds.hits(&format!("/linked/{i}.xml")))
        .sum();
    assert!(
        fetched <= 4,
        "one call fetched {fetched} of the page's links"
    );

    let mut statuses = Vec::new();
    for i in 0..30 {
        let page = stack
            .feeds
            .url(&format!("/fixtures/site-one-feed.html?try={i}"));
        let response = edge
            .http
            .get(edge.url("/api/discover"))
            .query(&[("url", page.as_str())])
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().get("retry-after").is_some());
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "a flood of discovery is refused: {statuses:?}"
    );
}

/// M5: a method nobody uses becomes the `other` label, not a series of
/// its own.
#[tokio::test]
async fn unknown_methods_do_not_make_metric_series() {
    let stack = TestStack::start(1, &[], &[]).await;
    let long = "X".repeat(4000);
    for method in ["FOOA", "FOOB", long.as_str()] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let _ = stack
            .edge
            .http
            .request(method, stack.edge.url("/api/subscriptions"))
            .send()
            .await
            .unwrap();
    }
    let metrics = crate::support::web::get_text(stack.edge.url("/metrics")).await;
    assert!(
        !metrics.contains("FOOA") && !metrics.contains("XXXX"),
        "unknown methods are labelled"
    );
    assert!(
        metrics.contains(r#"method="other""#),
        "they are counted as other"
    );
}

/// M6, L12: "Mark everything read" marks what the page showed, not items
/// that arrived after it was made; and no mark reaches past a feed's
/// newest stored item, whatever date or id it names.
#[tokio::test]
async fn marking_everything_read_spares_items_that_arrived_later() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = &stack.edge;
    stack.feeds.set_mutable(&["one", "two"]);
    let feed = stack.feeds.url("/mutable");
    assert_eq!(edge.subscribe(&feed).await.0, StatusCode::OK);
    let mut browser = edge.browser();
    let page = browser.get("/").await;
    let csrf = page.csrf();
    let before = page
        .body
        .split(r#"name="before" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form says where to stop")
        .to_owned();

    // A new item, stored after the page was made.
    stack.feeds.set_mutable(&["three", "one", "two"]);
    let (status, _) = send(
        edge.http
            .post(edge.url("/api/refresh"))
            .query(&[("url", feed.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let posted = browser
        .post_form("/mark-read", &[("csrf", &csrf), ("before", &before)])
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let listing = edge.feeds().await;
    let items = listing["subscriptions"][0]["items"].as_array().unwrap();
    let unread: Vec<&str> = items
        .iter()
        .filter(|i| i["read"] == false)
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(unread, ["three"]);

    // A date far in the future marks only what is stored now.
    let (status, _) = send(
        edge.http
            .post(edge.url("/api/mark-read"))
            .json(&json!({"before": "2100-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    stack.feeds.set_mutable(&["four", "three", "one", "two"]);
    send(
        edge.http
            .post(edge.url("/api/refresh"))
            .query(&[("url", feed.as_str())]),
    )
    .await;
    let listing = edge.feeds().await;
    assert_eq!(listing["subscriptions"][0]["unread"], 1, "{listing}");
}

/// M7: many users subscribing to one new feed at once each fetch and
/// store it: every item still ends with one id, the same for all of them.
/// (The stores' own guarantee, whoever stores first, is
/// `store::suite::an_item_stored_twice_at_once_keeps_its_first_id`.)
#[tokio::test]
async fn concurrent_first_fetches_give_each_item_one_id() {
    let middletier = spawn_middletier(&[]).await;
    let feeds = crate::support::feed_server::FeedServer::start();
    let url = feeds.url("/generated/20");
    let racers = (0..8).map(|i| {
        let (middletier, url) = (&middletier, url.clone());
        async move { middletier.subscribe(&format!("user{i}"), &url).await.0 }
    });
    for status in futures::future::join_all(racers).await {
        assert_eq!(status, StatusCode::OK);
    }
    let mut seen = None;
    for i in 0..8 {
        let (_, body) = middletier
            .feeds_where(&format!("user{i}"), "limit=500")
            .await;
        let mut ids = all_item_ids(&body);
        ids.sort_unstable();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(
            (ids.len(), unique.len()),
            (20, 20),
            "one id per item: {ids:?}"
        );
        assert_eq!(
            seen.get_or_insert_with(|| ids.clone()),
            &ids,
            "the same ids for all"
        );
    }
}

/// L1: the subscription cap holds when many subscribes arrive at once.
#[tokio::test]
async fn the_subscription_cap_holds_under_concurrent_subscribes() {
    let middletier = spawn_middletier(&["--max-subscriptions", "5"]).await;
    let feeds = crate::support::feed_server::FeedServer::start();
    let adds = (0..20).map(|i| {
        let (middletier, feed) = (&middletier, feeds.url(&format!("/fixtures/rss2.xml?n={i}")));
        async move { middletier.subscribe("alice", &feed).await.0 }
    });
    let statuses = futures::future::join_all(adds).await;
    let accepted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(accepted, 5, "{statuses:?}");
    let (_, body) = middletier.feeds("alice").await;
    assert_eq!(body["subscriptions"].as_array().unwrap().len(), 5);
}

/// L2: an OPML file cannot give a feed a `javascript:` site or a
/// megabyte title; nothing but http(s) leaves the reader.
#[tokio::test]
async fn an_imported_feed_gets_only_a_web_site_and_a_sane_title() {
    let middletier = spawn_middletier(&[]).await;
    let opml = format!(
        r#"<opml version="2.0"><body><outline title="{}" xmlUrl="https://nonexistent.example/feed.xml" htmlUrl="javascript:alert(document.domain)"/></body></opml>"#,
        "T".repeat(5000)
    );
    let (status, body) = middletier.import_opml("alice", opml).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, export, _) = middletier.export_opml("alice").await;
    assert!(!export.contains("javascript:"), "{export}");
    let (_, listing) = middletier.feeds("alice").await;
    let feed = &listing["subscriptions"][0];
    assert_eq!(feed["site_url"], Value::Null, "{feed}");
    assert!(feed["title"].as_str().unwrap().len() <= 1024);
}

/// L5: a refused or failed fetch does not tell the user about our network:
/// no resolved address, no "connection refused" versus "no route".
#[tokio::test]
async fn fetch_errors_name_no_addresses_or_connection_details() {
    let middletier = spawn_middletier(&[]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, body) = middletier
        .subscribe("alice", &format!("http://127.0.0.1:{closed}/feed.xml"))
        .await;
    assert!(status.is_client_error(), "{status}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("could not connect"), "{error}");
    assert!(!error.contains("refused"), "{error}");
}

/// L7: the edge keys its write budget by user and client address: one
/// client that uses up the shared `default` user's budget leaves others
/// theirs.
#[tokio::test]
async fn one_client_cannot_use_up_everyones_write_budget() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = &stack.edge;
    let add = |client: &'static str, i: usize| {
        let feed = stack
            .feeds
            .url(&format!("/fixtures/rss2.xml?c={client}&n={i}"));
        send(
            edge.http
                .post(edge.url("/api/subscriptions"))
                .header("x-forwarded-for", client)
                .json(&json!({ "url": feed })),
        )
    };
    let mut i = 0;
    loop {
        let (status, body) = add("203.0.113.9", i).await;
        i += 1;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(i < 100, "never limited");
    }
    let (status, body) = add("198.51.100.7", 0).await;
    assert_eq!(status, StatusCode::OK, "another client still may: {body}");
}

/// L8: an answer about a user is never kept by a cache on the way.
#[tokio::test]
async fn per_user_json_is_not_cacheable() {
    let stack = TestStack::start(1, &[], &[]).await;
    let response = stack
        .edge
        .http
        .get(stack.edge.url("/api/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
}

/// L10: starred copies are bounded per user.
#[tokio::test]
async fn starred_items_are_bounded_per_user() {
    let middletier = spawn_middletier(&["--max-starred", "2"]).await;
    let feeds = crate::support::feed_server::FeedServer::start();
    assert_eq!(
        middletier
            .subscribe("alice", &feeds.url("/fixtures/rss2.xml"))
            .await
            .0,
        StatusCode::OK
    );
    let (_, body) = middletier.feeds("alice").await;
    let ids = all_item_ids(&body);
    for id in &ids[..2] {
        let (status, _) = middletier
            .set_item("alice", &id.to_string(), json!({"starred": true}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = middletier
        .set_item("alice", &ids[2].to_string(), json!({"starred": true}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("unstar"), "{body}");
}
