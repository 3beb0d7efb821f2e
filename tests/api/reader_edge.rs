//! The reader through the edge, in-process: its JSON API (each call a named
//! command), and the whole journey through the page's forms alone, as a
//! browser without JavaScript makes it. (The same journey with JavaScript,
//! in real Chromium, is `tests/process/browser.rs`.)

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{FAST_REFRESH, TestStack, send};
use crate::support::web::{Browser, Page, get_text};

#[tokio::test]
async fn the_json_api_mirrors_the_reader() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = &stack.edge;
    let http = &edge.http;
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    let atom = stack.feeds.url("/fixtures/atom.xml");

    // A page with two feeds: a choice, nothing stored.
    let (status, body) = edge
        .subscribe(&stack.feeds.url("/fixtures/site-two-feeds.html"))
        .await;
    assert_eq!(status, StatusCode::MULTIPLE_CHOICES, "{body}");
    assert_eq!(body["feeds"][0]["url"], rss);
    assert_eq!(body["feeds"][1]["url"], atom);
    assert!(body["error"].as_str().unwrap().contains("choose one"));
    let (status, body) = edge
        .discover(&stack.feeds.url("/fixtures/site-two-feeds.html"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["feeds"].as_array().unwrap().len(), 2);

    assert_eq!(edge.subscribe(&rss).await.0, StatusCode::OK);
    let listing = edge.listing().await;
    assert_eq!(listing.subscriptions[0].unread, 4);
    let ids: Vec<String> = listing.subscriptions[0]
        .items
        .iter()
        .map(|i| i.id.to_string())
        .collect();

    let (status, state) = edge
        .set_item(&ids[0], json!({"read": true, "starred": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state, json!({"id": ids[0], "read": true, "starred": true}));
    let (status, body) = edge.set_item("99999", json!({"read": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (_, unread) = send(http.get(edge.url("/api/subscriptions?unread=true"))).await;
    assert_eq!(unread["degraded"], false);
    assert_eq!(
        unread["subscriptions"][0]["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (status, _) = send(http.get(edge.url("/api/subscriptions?unread=maybe"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, marked) = edge.mark_read(json!({"url": rss})).await;
    assert_eq!(status, StatusCode::OK, "{marked}");
    assert_eq!(marked, json!({"marked": 3}));

    let (status, feed) = edge.refresh(&rss).await;
    assert_eq!(status, StatusCode::OK, "{feed}");
    assert_eq!(feed["title"], "Recipe Kitchen");

    // OPML: export, and import into this account (the one feed exists).
    let (status, media_type, opml) = edge.export_opml().await;
    assert_eq!(status, StatusCode::OK);
    assert!(media_type.starts_with("text/x-opml"), "{media_type}");
    assert!(opml.contains(&format!("xmlUrl=\"{rss}\"")), "{opml}");
    let with_atom = opml.replace(
        "</body>",
        &format!("<outline type=\"rss\" text=\"Atom\" xmlUrl=\"{atom}\"/></body>"),
    );
    let (status, report) = edge.import_opml(&with_atom, "text/x-opml").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report, json!({"added": 1, "existing": 1, "refused": []}));
    // Not as a form: another site could post a form.
    let (status, body) = edge.import_opml(&with_atom, "text/plain").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Every kind of call is its own command on the dashboard.
    let data = edge.dashboard().await;
    let names: Vec<&str> = data["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "RSSGet",
            "RSSAdd",
            "RSSDel",
            "RSSItem",
            "RSSMarkRead",
            "RSSRefresh",
            "RSSDiscover",
            "RSSOpmlExport",
            "RSSOpmlImport",
            "RSSAccount",
            "RSSArticle",
            "RSSRiver",
            "RSSMedia",
            "GReaderFeeds",
            "GReaderIds",
            "GReaderItems",
            "GReaderStream",
            "GReaderEdit",
            "GReaderMarkAll",
            "GReaderSubscribe",
            "GReaderUnsubscribe"
        ]
    );
    for name in [
        "RSSItem",
        "RSSMarkRead",
        "RSSRefresh",
        "RSSDiscover",
        "RSSOpmlImport",
    ] {
        assert!(
            edge.command(name).await["success"].as_u64().unwrap() >= 1,
            "{name}"
        );
    }
}

/// The `href` of the first link on `page` that starts with `prefix`.
fn link(page: &Page, prefix: &str) -> String {
    let marker = format!("href=\"{prefix}");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {prefix} link"))
        + 6;
    let end = page.body[start..].find('"').unwrap();
    page.body[start..start + end].to_owned()
}

/// The items of the page, as (id, is read, is starred).
fn items(page: &Page) -> Vec<(String, bool, bool)> {
    page.body
        .split("<li class=\"item")
        .skip(1)
        .map(|li| {
            let classes = &li[..li.find('"').unwrap()];
            let id_at = li.find("data-item=\"").unwrap() + 11;
            let id = li[id_at..id_at + li[id_at..].find('"').unwrap()].to_owned();
            (
                id,
                classes.contains("is-read"),
                classes.contains("is-starred"),
            )
        })
        .collect()
}

/// Reloads the page until `ready` holds (within 15 s).
async fn reload_until(browser: &mut Browser, what: &str, ready: impl Fn(&Page) -> bool) -> Page {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = browser.get("/").await;
        if ready(&page) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_whole_journey_works_through_forms_alone() {
    let mut args = FAST_REFRESH.to_vec();
    args.extend(["--refresh-broken-after", "2"]);
    let stack = TestStack::start(1, &args, &[]).await;
    stack.feeds.set_mutable(&["one", "two"]);
    let mut browser: Browser = stack.edge.browser();

    // Import an OPML file through the upload form.
    let opml = format!(
        r#"<?xml version="1.0"?><opml version="2.0"><head><title>Mine</title></head><body>
        <outline text="Folder"><outline type="rss" text="Mutable" xmlUrl="{}"/></outline></body></opml>"#,
        stack.feeds.url("/mutable")
    );
    let posted = browser.upload("/opml", "file", &opml).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let page = browser.get("/").await;
    assert!(page.body.contains("Imported: 1 added"), "{}", page.body);

    // Add a site that lists two feeds, and pick one.
    let page = browser.get("/").await;
    let csrf = page.csrf();
    let site = stack.feeds.url("/fixtures/site-two-feeds.html");
    let choice = browser
        .post_form("/subscriptions", &[("url", &site), ("csrf", &csrf)])
        .await;
    assert_eq!(choice.status, StatusCode::OK, "{}", choice.body);
    assert!(choice.body.contains("Choose a feed"), "{}", choice.body);
    assert!(choice.body.contains("Posts (RSS)") && choice.body.contains("Log (Atom)"));
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    let page = browser.submit("/subscriptions", &[("url", &rss)]).await;
    assert!(page.body.contains("Added Recipe Kitchen"), "{}", page.body);

    // Mark one item read with its button, open another (marks it read).
    let page = reload_until(&mut browser, "the imported feed is fetched", |page| {
        items(page).len() >= 6
    })
    .await;
    assert!(
        page.body.contains("<title>(6) Your feeds"),
        "unread count in the title"
    );
    let first = items(&page)[0].0.clone();
    let page = browser
        .submit(&format!("/items/{first}"), &[("read", "true")])
        .await;
    assert!(
        items(&page)
            .iter()
            .any(|(id, read, _)| *id == first && *read)
    );
    let second = items(&page)[1].0.clone();
    let opened = browser.get(&format!("/items/{second}/open")).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    assert!(
        opened.location().unwrap().starts_with("http"),
        "{:?}",
        opened.location()
    );
    let page = browser.get("/").await;
    assert!(page.body.contains("<title>(4) Your feeds"), "two read");
    assert!(link(&page, "/items/").starts_with("/items/"));

    // Unread only; star one; the starred view.
    let unread = browser.get("/?view=unread").await;
    assert!(items(&unread).iter().all(|(_, read, _)| !read));
    assert_eq!(items(&unread).len(), 4);
    let third = items(&unread)[0].0.clone();
    browser
        .submit(
            &format!("/items/{third}"),
            &[("starred", "true"), ("view", "unread")],
        )
        .await;
    let starred = browser.get("/?view=starred").await;
    assert_eq!(
        items(&starred)
            .iter()
            .map(|(id, ..)| id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&third)
    );

    // Export.
    let export = browser.get("/opml").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(
        export.body.contains(&format!("xmlUrl=\"{rss}\"")),
        "{}",
        export.body
    );
    assert!(export.body.contains("/mutable"));

    // The mutable feed breaks; it shows in the broken list; remove it.
    stack.feeds.set_mutable_failure(500, None);
    let page = reload_until(&mut browser, "the feed is shown as broken", |page| {
        page.body.contains("Broken feeds")
    })
    .await;
    assert!(page.body.contains("failing for"), "{}", page.body);
    let page = browser
        .submit(
            "/subscriptions/delete",
            &[("url", &stack.feeds.url("/mutable"))],
        )
        .await;
    assert!(!page.body.contains("Broken feeds"), "{}", page.body);

    // Mark everything read; reload: everything as left.
    let page = browser.submit("/mark-read", &[]).await;
    assert!(page.body.contains("read."), "{}", page.body);
    let reloaded = browser.get("/").await;
    assert!(
        reloaded.body.contains("<title>Your feeds"),
        "nothing unread"
    );
    assert!(items(&reloaded).iter().all(|(_, read, _)| *read));
    assert!(
        items(&reloaded)
            .iter()
            .any(|(id, _, starred)| *id == third && *starred)
    );
    assert!(!reloaded.body.contains("/mutable"));
}

#[tokio::test]
async fn the_edge_is_told_when_its_copy_is_current_and_shows_any_change_at_once() {
    let stack = TestStack::start(1, &[], &[]).await;
    let (edge, middletier) = (&stack.edge, &stack.middletiers[0]);
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    assert_eq!(edge.subscribe(&rss).await.0, StatusCode::OK);
    let first = edge.feeds().await;
    // The edge asks with its copy's tag: unchanged, the middletier says so
    // (304) and the edge serves its copy.
    assert_eq!(edge.feeds().await, first);
    let metrics = get_text(middletier.url("/metrics")).await;
    assert!(
        metrics.lines().any(|l| l.contains(r#"status="304""#)),
        "the middletier answered 304: {metrics}"
    );
    // A change made past this edge (another edge, a sync app) shows on
    // its very next read.
    let id = first["subscriptions"][0]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = middletier
        .set_item("default", &id, json!({"read": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = edge.feeds().await;
    assert_eq!(after["subscriptions"][0]["items"][0]["read"], true);
    assert_eq!(after["subscriptions"][0]["unread"], 3);
    assert_eq!(after["degraded"], false);
}
