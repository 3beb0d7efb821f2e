//! The v2 reader calls of the middletier, in-process, against a real local
//! feed server: stored items refreshed in the background, subscribe with
//! validation and discovery, read and starred state, OPML.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{FAST_REFRESH, TestMiddletier, spawn_middletier, spawn_strict_middletier};
use crate::support::eventually;
use crate::support::feed_server::FeedServer;
use crate::support::listing::{item_ids, item_titles};
use crate::support::web::subscription_urls;

#[tokio::test]
async fn a_changed_feed_shows_its_new_items_with_no_page_view_in_between() {
    let feeds = FeedServer::start();
    feeds.set_mutable(&["first", "second"]);
    let api = spawn_middletier(&FAST_REFRESH).await;
    let url = feeds.url("/mutable");
    assert_eq!(api.subscribe("alice", &url).await.0, StatusCode::OK);
    let (_, before) = api.feeds("alice").await;
    let before = &before["subscriptions"][0];
    assert_eq!(item_titles(before), ["first", "second"]);

    feeds.set_mutable(&["third", "first", "second"]);
    let fetched = feeds.hits("/mutable");
    // No GET until the scheduler has fetched the feed twice more by itself.
    eventually(
        "the scheduler refetches",
        Duration::from_secs(10),
        || async { (feeds.hits("/mutable") >= fetched + 2).then_some(()) },
    )
    .await;
    let (_, after) = api.feeds("alice").await;
    let after = &after["subscriptions"][0];
    assert_eq!(item_titles(after), ["third", "first", "second"], "{after}");
    assert_eq!(
        item_ids(after)[1..],
        item_ids(before)[..],
        "items keep their ids across refreshes"
    );
    assert!(
        item_ids(after)[0].parse::<u64>().unwrap() > item_ids(before)[0].parse::<u64>().unwrap(),
        "a newer item has a larger id"
    );
    assert_eq!(after["unread"], 3);
}

#[tokio::test]
async fn a_listing_is_never_stale_for_any_reader_of_a_shared_feed() {
    // Listings serve a feed's items from a cache shared by its readers;
    // each change must show on the very next listing, on either store.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let stores: [&[&str]; 2] = [
        &["--store", "memory"],
        &["--store", "file", "--data-dir", data_dir],
    ];
    for store in stores {
        let feeds = FeedServer::start();
        feeds.set_mutable(&["a"]);
        let api = spawn_middletier(store).await;
        let url = feeds.url("/mutable");
        for user in ["alice", "bob"] {
            assert_eq!(api.subscribe(user, &url).await.0, StatusCode::OK);
            let (_, listing) = api.feeds(user).await;
            assert_eq!(
                item_titles(&listing["subscriptions"][0]),
                ["a"],
                "{store:?}"
            );
        }

        // A refresh by one reader: the next listing of either shows it.
        feeds.set_mutable(&["b", "a"]);
        assert_eq!(api.refresh("alice", &url).await.0, StatusCode::OK);
        for user in ["bob", "alice"] {
            let (_, listing) = api.feeds(user).await;
            let feed = &listing["subscriptions"][0];
            assert_eq!(item_titles(feed), ["b", "a"], "{user} on {store:?}");
            assert_eq!(feed["unread"], 2, "{feed}");
        }

        // One reader's flags are theirs alone, at once.
        let (_, listing) = api.feeds("bob").await;
        let ids = item_ids(&listing["subscriptions"][0]);
        api.set_item("bob", &ids[0], json!({"read": true})).await;
        api.set_item("bob", &ids[1], json!({"starred": true})).await;
        let flags = |listing: &serde_json::Value| {
            let items = listing["subscriptions"][0]["items"]
                .as_array()
                .unwrap()
                .clone();
            items
                .iter()
                .map(|i| {
                    (
                        i["read"].as_bool().unwrap(),
                        i["starred"].as_bool().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let (_, bobs) = api.feeds("bob").await;
        assert_eq!(flags(&bobs), [(true, false), (false, true)], "{store:?}");
        assert_eq!(bobs["subscriptions"][0]["unread"], 1);
        let (_, alices) = api.feeds("alice").await;
        assert_eq!(
            flags(&alices),
            [(false, false), (false, false)],
            "{store:?}"
        );
        let (_, unread) = api.feeds_where("bob", "unread=true").await;
        assert_eq!(item_titles(&unread["subscriptions"][0]), ["a"]);
        assert_eq!(api.mark_read("bob", json!({})).await.0, StatusCode::OK);
        let (_, bobs) = api.feeds("bob").await;
        assert_eq!(flags(&bobs), [(true, false), (true, true)], "{store:?}");

        // A caller holding the listing asks whether it changed: no while
        // nothing did, yes after a change of state or of the feed.
        let tagged = |known: Option<String>| {
            let request = api.http.get(api.url("/middletier/rss/user/bob"));
            let request = match known {
                Some(tag) => request.header("if-none-match", tag),
                None => request,
            };
            async move {
                let response = request.send().await.unwrap();
                let tag = response.headers()["etag"].to_str().unwrap().to_owned();
                (response.status(), tag, response.bytes().await.unwrap())
            }
        };
        let (status, tag, body) = tagged(None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, same, empty) = tagged(Some(tag.clone())).await;
        assert_eq!(
            (status, &same, empty.len()),
            (StatusCode::NOT_MODIFIED, &tag, 0)
        );
        api.set_item("bob", &ids[1], json!({"starred": false}))
            .await;
        let (status, starred, changed) = tagged(Some(tag.clone())).await;
        assert_eq!(status, StatusCode::OK, "{store:?}: a star changed");
        assert_ne!((&starred, &changed), (&tag, &body));
        feeds.set_mutable(&["b2", "b", "a"]);
        assert_eq!(api.refresh("alice", &url).await.0, StatusCode::OK);
        let (status, refreshed, _) = tagged(Some(starred.clone())).await;
        assert_eq!(status, StatusCode::OK, "{store:?}: the feed changed");
        assert_ne!(refreshed, starred);
        let (status, ..) = tagged(Some(refreshed)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);

        // Unsubscribed and subscribed again: read afresh.
        feeds.set_mutable(&["c", "b2", "b", "a"]);
        assert_eq!(api.unsubscribe("alice", &url).await.0, StatusCode::OK);
        assert_eq!(api.unsubscribe("bob", &url).await.0, StatusCode::OK);
        assert_eq!(api.subscribe("alice", &url).await.0, StatusCode::OK);
        let (_, listing) = api.feeds("alice").await;
        let feed = &listing["subscriptions"][0];
        assert_eq!(
            item_titles(feed),
            ["c", "b2", "b", "a"],
            "{store:?}: {feed}"
        );
        api.running.stop().await;
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_not_fetched_again_before_it_allows() {
    let feeds = FeedServer::start();
    feeds.set_mutable(&["only"]);
    let api = spawn_middletier(&FAST_REFRESH).await;
    let url = feeds.url("/mutable");
    assert_eq!(api.subscribe("alice", &url).await.0, StatusCode::OK);

    feeds.set_mutable_failure(429, Some("3600"));
    let before = feeds.hits("/mutable");
    eventually(
        "the scheduler meets the 429",
        Duration::from_secs(10),
        || async { (feeds.hits("/mutable") > before).then_some(()) },
    )
    .await;
    let refused = feeds.hits("/mutable");
    // With a 300 ms maximum interval, the scheduler would otherwise have
    // fetched it about ten times by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        feeds.hits("/mutable"),
        refused,
        "Retry-After: 3600 is honoured"
    );
    let (_, body) = api.feeds("alice").await;
    let feed = &body["subscriptions"][0];
    assert_eq!(feed["error_count"], 1, "{feed}");
    let error = feed["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 429") && error.contains("wait 1 h"),
        "{error}"
    );
    let next = chrono::DateTime::parse_from_rfc3339(feed["next_fetch"].as_str().unwrap()).unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::Duration::minutes(59),
        "next fetch {next}"
    );
    assert_eq!(
        item_titles(feed),
        ["only"],
        "the stored items are still served"
    );
}

#[tokio::test]
async fn a_typo_url_gets_a_422_and_is_not_stored() {
    let feeds = FeedServer::start();
    let api = spawn_middletier(&[]).await;
    for typo in [
        feeds.url("/fixtures/rss2.xm"),
        "http://no-such-host.invalid/feed.xml".to_owned(),
    ] {
        let (status, body) = api.subscribe("alice", &typo).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{typo}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(&typo) && error.contains("check the address"),
            "{error}"
        );
    }
    let (_, body) = api.feeds("alice").await;
    assert_eq!(body["subscriptions"], json!([]));
}

#[tokio::test]
async fn a_page_with_one_feed_subscribes_to_it_and_two_give_a_choice() {
    let feeds = FeedServer::start();
    let api = spawn_middletier(&[]).await;
    let rss = feeds.url("/fixtures/rss2.xml");
    let atom = feeds.url("/fixtures/atom.xml");

    let (status, body) = api
        .subscribe("alice", &feeds.url("/fixtures/site-one-feed.html"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], rss, "the feed found is what is stored");
    assert_eq!(body["title"], "Recipe Kitchen");
    assert_eq!(body["subscribed"], true);

    let page = feeds.url("/fixtures/site-two-feeds.html");
    let (status, body) = api.subscribe("bob", &page).await;
    assert_eq!(status, StatusCode::MULTIPLE_CHOICES, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("choose one"),
        "{body}"
    );
    assert_eq!(
        body["feeds"],
        json!([
            {"url": rss, "title": "Posts (RSS)", "type": "application/rss+xml"},
            {"url": atom, "title": "Log (Atom)", "type": "application/atom+xml"},
        ])
    );
    let (_, bob) = api.feeds("bob").await;
    assert_eq!(bob["subscriptions"], json!([]), "a choice stores nothing");

    // The same discovery, without subscribing.
    let (status, found) = api.discover(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["feeds"], body["feeds"]);
    let (_, found) = api.discover(&atom).await;
    assert_eq!(
        found["feeds"],
        json!([{"url": atom, "title": "Atom Log", "type": "application/atom+xml"}])
    );
    let (status, found) = api.discover(&feeds.url("/fixtures/page.html")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["feeds"], json!([]));
}

#[tokio::test]
async fn a_page_without_feed_links_is_searched_at_the_usual_paths() {
    // A site whose home page names no feed, with one at /feed.
    let site = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                axum::response::Html("<html><head><title>Home</title></head><body>hi</body></html>")
            }),
        )
        .route(
            "/feed",
            axum::routing::get(|| async {
                (
                    [("content-type", "application/rss+xml")],
                    "<rss version=\"2.0\"><channel><title>Found at /feed</title>\
                     <item><title>one</title><link>https://x.example/1</link></item></channel></rss>",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, site).await });

    let api = spawn_middletier(&[]).await;
    let (status, body) = api.subscribe("alice", &format!("http://{addr}/")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], format!("http://{addr}/feed"));
    assert_eq!(body["title"], "Found at /feed");
}

#[tokio::test]
async fn discovered_feeds_pass_the_address_guard_too() {
    let feeds = FeedServer::start();
    // Private addresses refused: the page itself is refused before any fetch.
    let api = spawn_strict_middletier(&[]).await;
    let (status, body) = api
        .subscribe("alice", &feeds.url("/fixtures/site-one-feed.html"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = api
        .discover(&feeds.url("/fixtures/site-one-feed.html"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(feeds.hits("/fixtures/site-one-feed.html"), 0);
    assert_eq!(feeds.hits("/fixtures/rss2.xml"), 0);
}

#[tokio::test]
async fn read_and_starred_state_with_unread_counts_and_filters() {
    let feeds = FeedServer::start();
    let api = spawn_middletier(&[]).await;
    let rss = feeds.url("/fixtures/rss2.xml");
    let atom = feeds.url("/fixtures/atom.xml");
    api.subscribe("alice", &rss).await;
    api.subscribe("alice", &atom).await;
    let (_, body) = api.feeds("alice").await;
    let feed = &body["subscriptions"][0];
    assert_eq!(feed["unread"], 4);
    let ids = item_ids(feed);
    let first = &feed["items"][0];
    assert_eq!(
        (first["read"].clone(), first["starred"].clone()),
        (json!(false), json!(false))
    );
    assert!(first["guid"].is_string(), "{first}");

    let (status, state) = api.set_item("alice", &ids[0], json!({"read": true})).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state, json!({"id": ids[0], "read": true, "starred": false}));
    let (_, state) = api
        .set_item("alice", &ids[1], json!({"starred": true}))
        .await;
    assert_eq!(state, json!({"id": ids[1], "read": false, "starred": true}));

    let (_, body) = api.feeds("alice").await;
    let feed = &body["subscriptions"][0];
    assert_eq!(feed["unread"], 3);
    assert_eq!(feed["items"][0]["read"], true);
    assert_eq!(feed["items"][1]["starred"], true);

    let (_, unread) = api.feeds_where("alice", "unread=true").await;
    assert_eq!(item_ids(&unread["subscriptions"][0]), ids[1..]);
    let (_, limited) = api.feeds_where("alice", "limit=1").await;
    assert_eq!(item_ids(&limited["subscriptions"][0]), ids[..1]);
    assert_eq!(
        limited["subscriptions"][0]["unread"], 3,
        "counts ignore the limit"
    );

    // One feed, then everything.
    let (status, marked) = api.mark_read("alice", json!({"url": rss})).await;
    assert_eq!(status, StatusCode::OK, "{marked}");
    assert_eq!(marked, json!({"marked": 3}));
    let (_, body) = api.feeds("alice").await;
    assert_eq!(body["subscriptions"][0]["unread"], 0);
    assert_eq!(body["subscriptions"][1]["unread"], 3);
    let (_, marked) = api.mark_read("alice", json!({})).await;
    assert_eq!(marked, json!({"marked": 3}));

    // Unread again, one item.
    let (_, state) = api.set_item("alice", &ids[2], json!({"read": false})).await;
    assert_eq!(state["read"], false);
    let (_, body) = api.feeds("alice").await;
    assert_eq!(body["subscriptions"][0]["unread"], 1);
    assert_eq!(
        body["subscriptions"][0]["items"][1]["starred"], true,
        "starring outlives mark-read"
    );

    // A date in the past marks nothing.
    let (_, marked) = api
        .mark_read("alice", json!({"before": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(marked, json!({"marked": 0}));

    // Another user's state is their own.
    api.subscribe("bob", &rss).await;
    let (_, bob) = api.feeds("bob").await;
    assert_eq!(bob["subscriptions"][0]["unread"], 4);
}

#[tokio::test]
async fn read_state_calls_refuse_bad_input_clearly() {
    let feeds = FeedServer::start();
    let api = spawn_middletier(&[]).await;
    let rss = feeds.url("/fixtures/rss2.xml");
    api.subscribe("alice", &rss).await;
    let (_, body) = api.feeds("alice").await;
    let id = item_ids(&body["subscriptions"][0])[0].clone();

    let cases = [
        (
            api.set_item("alice", "123456789", json!({"read": true}))
                .await,
            StatusCode::NOT_FOUND,
            "no item",
        ),
        (
            api.set_item("alice", "not-an-id", json!({"read": true}))
                .await,
            StatusCode::NOT_FOUND,
            "no item",
        ),
        (
            api.set_item("bob", &id, json!({"read": true})).await,
            StatusCode::NOT_FOUND,
            "no item",
        ),
        (
            api.set_item("alice", &id, json!({})).await,
            StatusCode::BAD_REQUEST,
            "\"read\"",
        ),
        (
            api.set_item("alice", &id, json!({"read": "yes"})).await,
            StatusCode::BAD_REQUEST,
            "not the JSON",
        ),
        (
            api.set_item("alice", &id, json!({"colour": "red"})).await,
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            api.mark_read("alice", json!({"before": "yesterday"})).await,
            StatusCode::BAD_REQUEST,
            "RFC 3339",
        ),
        (
            api.mark_read("alice", json!({"url": feeds.url("/other.xml")}))
                .await,
            StatusCode::NOT_FOUND,
            "not subscribed",
        ),
        (
            api.feeds_where("alice", "limit=lots").await,
            StatusCode::BAD_REQUEST,
            "limit=",
        ),
        (
            api.feeds_where("alice", "unread=perhaps").await,
            StatusCode::BAD_REQUEST,
            "unread=true",
        ),
        (
            api.refresh("alice", &feeds.url("/other.xml")).await,
            StatusCode::NOT_FOUND,
            "subscribe to it first",
        ),
    ];
    for ((status, body), expected, hint) in cases {
        assert_eq!(status, expected, "{body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {body}"));
        assert!(error.contains(hint), "{error:?} should mention {hint:?}");
    }
}

#[tokio::test]
async fn refresh_now_fetches_and_is_rate_limited() {
    let feeds = FeedServer::start();
    feeds.set_mutable(&["a"]);
    let api = spawn_strict_middletier(&[
        "--allow-private-feeds",
        "--user-refresh-interval",
        "1h",
        "--user-refresh-burst",
        "2",
    ])
    .await;
    let url = feeds.url("/mutable");
    assert_eq!(api.subscribe("alice", &url).await.0, StatusCode::OK);
    feeds.set_mutable(&["b", "a"]);
    let (status, feed) = api.refresh("alice", &url).await;
    assert_eq!(status, StatusCode::OK, "{feed}");
    assert_eq!(feed["url"], url);
    assert_eq!(item_titles(&feed), ["b", "a"]);
    assert_eq!(api.refresh("alice", &url).await.0, StatusCode::OK);
    let (status, body) = api.refresh("alice", &url).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"].as_str().unwrap().contains("wait"), "{body}");
}

#[tokio::test]
async fn read_state_survives_a_restart_on_the_file_store() {
    let feeds = FeedServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let args = ["--store", "file", "--data-dir", data_dir];
    let rss = feeds.url("/fixtures/rss2.xml");

    let api = spawn_middletier(&args).await;
    api.subscribe("alice", &rss).await;
    let (_, before) = api.feeds("alice").await;
    let ids = item_ids(&before["subscriptions"][0]);
    api.set_item("alice", &ids[0], json!({"read": true})).await;
    api.set_item("alice", &ids[3], json!({"starred": true}))
        .await;
    let (_, before) = api.feeds("alice").await;
    let TestMiddletier { running, .. } = api;
    running.stop().await;

    let api = spawn_middletier(&args).await;
    let (_, after) = api.feeds("alice").await;
    assert_eq!(
        after, before,
        "items, ids, read and starred state all survive"
    );
    assert_eq!(after["subscriptions"][0]["unread"], 3);
    assert_eq!(after["subscriptions"][0]["items"][3]["starred"], true);
    assert_eq!(
        feeds.hits("/fixtures/rss2.xml"),
        1,
        "stored items need no refetch"
    );
}

/// OPML files shaped like those three popular readers export, naming
/// feeds on `feeds` (and, in each, one URL that must be refused).
fn exports(feeds: &FeedServer) -> [(&'static str, String); 3] {
    let rss = feeds.url("/fixtures/rss2.xml");
    let atom = feeds.url("/fixtures/atom.xml");
    let rdf = feeds.url("/fixtures/rss1.rdf");
    let json = feeds.url("/quirks/jsonfeed-1.1.json");
    // Miniflux: flat categories, `title` and `text`, OPML 2.0.
    let miniflux = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
    <head>
        <title>Miniflux</title>
        <dateCreated>Tue, 01 Dec 2026 10:00:00 UTC</dateCreated>
    </head>
    <body>
        <outline text="All">
            <outline title="Recipe Kitchen" text="Recipe Kitchen" xmlUrl="{rss}" htmlUrl="https://recipes.example/" description=""></outline>
            <outline title="Atom Log" text="Atom Log" xmlUrl="{atom}" htmlUrl="https://atom.example/" description=""></outline>
        </outline>
        <outline text="Tech">
            <outline title="Broken" text="Broken" xmlUrl="ftp://files.example/feed" htmlUrl="" description=""></outline>
        </outline>
    </body>
</opml>"#
    );
    // FreshRSS: nested folders, `type="rss"`, an extra namespace.
    let freshrss = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0" xmlns:frss="https://freshrss.org/opml">
	<head>
		<title>FreshRSS</title>
		<dateCreated>Tue, 01 Dec 2026 10:00:00 +0000</dateCreated>
	</head>
	<body>
		<outline text="Uncategorized">
			<outline text="RDF &amp; friends" type="rss" xmlUrl="{rdf}" htmlUrl="https://rdf.example/" description="" frss:priority="10"/>
			<outline text="Deeper">
				<outline text="JSON" type="rss" xmlUrl="{json}" htmlUrl="https://json.example/"/>
				<outline text="Same again" type="rss" xmlUrl="{rdf}"/>
			</outline>
		</outline>
	</body>
</opml>"#
    );
    // Feedly: OPML 1.0, categories with `title` and `text`, feeds with
    // `type="rss"`.
    let feedly = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head>
    <title>Alice subscriptions in feedly Cloud</title>
  </head>
  <body>
    <outline text="News" title="News">
      <outline type="rss" text="Recipe Kitchen" title="Recipe Kitchen" xmlUrl="{rss}" htmlUrl="https://recipes.example/"/>
      <outline type="rss" text="Not a URL" title="Not a URL" xmlUrl="not a url"/>
    </outline>
  </body>
</opml>"#
    );
    [
        ("miniflux", miniflux),
        ("freshrss", freshrss),
        ("feedly", feedly),
    ]
}

#[tokio::test]
async fn opml_from_other_readers_imports_without_fetching_and_round_trips() {
    let feeds = FeedServer::start();
    // The scheduler ticks every 5 s. To be sure no tick falls inside the
    // import below, wait for one: a probe feed, imported for another user,
    // is fetched by the next tick, and the import then has 5 s to itself.
    let api = spawn_middletier(&["--refresh-tick", "5s"]).await;
    let probe = feeds.url("/fixtures/rss091.xml");
    let (status, _) = api
        .import_opml(
            "probe",
            format!(r#"<opml version="2.0"><body><outline type="rss" text="p" xmlUrl="{probe}"/></body></opml>"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually("a scheduler tick", Duration::from_secs(15), || async {
        (feeds.hits("/fixtures/rss091.xml") > 0).then_some(())
    })
    .await;
    let [(_, miniflux), (_, freshrss), (_, feedly)] = exports(&feeds);

    let (status, report) = api.import_opml("alice", miniflux).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["added"], 2);
    assert_eq!(report["existing"], 0);
    assert_eq!(report["refused"][0]["url"], "ftp://files.example/feed");
    assert!(
        report["refused"][0]["error"]
            .as_str()
            .unwrap()
            .contains("http://"),
        "{report}"
    );
    assert_eq!(
        feeds.hits("/fixtures/rss2.xml"),
        0,
        "nothing is fetched inside the request"
    );

    let (_, report) = api.import_opml("alice", freshrss).await;
    assert_eq!(report["added"], 2, "{report}");
    assert_eq!(report["refused"][0]["url"], feeds.url("/fixtures/rss1.rdf"));
    assert!(
        report["refused"][0]["error"]
            .as_str()
            .unwrap()
            .contains("more than once")
    );

    let (_, report) = api.import_opml("alice", feedly).await;
    assert_eq!(report["added"], 0, "{report}");
    assert_eq!(report["existing"], 1);
    assert_eq!(report["refused"][0]["url"], "not a url");

    // The scheduler fetches them all by itself.
    let body = eventually(
        "the imported feeds are fetched",
        Duration::from_secs(15),
        || async {
            let (_, body) = api.feeds_where("alice", "limit=0").await;
            let subs = body["subscriptions"].as_array()?.clone();
            subs.iter()
                .all(|s| s["last_fetched"].is_string())
                .then_some(body)
        },
    )
    .await;
    let titles: Vec<&str> = body["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 4);
    assert!(
        titles.contains(&"Atom Log") && titles.contains(&"JSON Feed Eleven"),
        "{titles:?}"
    );

    // Export, and import into another account: the same feeds.
    let (status, content_type, opml) = api.export_opml("alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/x-opml"), "{content_type}");
    assert!(opml.contains(r#"<opml version="2.0">"#), "{opml}");
    assert!(
        opml.contains(r#"type="rss""#) && opml.contains(r#"text="Atom Log""#),
        "{opml}"
    );
    let (_, report) = api.import_opml("bob", opml).await;
    assert_eq!(report, json!({"added": 4, "existing": 0, "refused": []}));
    let (_, alice) = api.feeds_where("alice", "limit=0").await;
    let (_, bob) = api.feeds_where("bob", "limit=0").await;
    assert_eq!(subscription_urls(&alice), subscription_urls(&bob));
}

#[tokio::test]
async fn hostile_opml_gets_a_4xx() {
    let api = spawn_middletier(&[]).await;
    let outline = r#"<outline type="rss" xmlUrl="https://x.example/f"/>"#;
    let deep = format!(
        "<opml version=\"2.0\"><body>{}{outline}{}</body></opml>",
        "<outline text=\"d\">".repeat(100),
        "</outline>".repeat(100)
    );
    let many = format!(
        "<opml version=\"2.0\"><body>{}</body></opml>",
        "<outline/>".repeat(100_000)
    );
    let cases = [
        (
            r#"<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><opml version="2.0"><body><outline text="&b;"/></body></opml>"#.to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "entities",
        ),
        (deep, StatusCode::UNPROCESSABLE_ENTITY, "deep"),
        (many, StatusCode::UNPROCESSABLE_ENTITY, "outlines"),
        ("this is not XML at all".to_owned(), StatusCode::UNPROCESSABLE_ENTITY, "XML"),
        ("<rss version=\"2.0\"><channel/></rss>".to_owned(), StatusCode::UNPROCESSABLE_ENTITY, "OPML"),
        (
            format!("<opml><body>{}</body></opml>", " ".repeat(1024 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
    ];
    for (opml, expected, hint) in cases {
        let (status, body) = api.import_opml("alice", opml).await;
        assert_eq!(status, expected, "{body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {body}"));
        assert!(error.contains(hint), "{error:?} should mention {hint:?}");
    }
    let (_, body) = api.feeds("alice").await;
    assert_eq!(body["subscriptions"], json!([]));
}
