//! Reading (v3): the article, the river and the media proxy, through the
//! middletier's API and the edge's pages and JSON, in-process over HTTP,
//! with a real feed server serving the feed, its image and its podcast.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestStack, send, spawn_strict_middletier};

/// Subscribes the stack's user to the article fixture; its items' ids,
/// newest first.
async fn subscribed(stack: &TestStack) -> Vec<String> {
    let feed = stack.feeds.url("/fixtures/article.xml");
    assert_eq!(stack.edge.subscribe(&feed).await.0, StatusCode::OK);
    stack.edge.listing().await.subscriptions[0]
        .items
        .iter()
        .map(|i| i.id.to_string())
        .collect()
}

#[tokio::test]
async fn an_article_is_whole_and_listings_stay_summaries() {
    let stack = TestStack::start(1, &[], &[]).await;
    let ids = subscribed(&stack).await;
    let middletier = &stack.middletiers[0];
    let (status, article) = middletier
        .get(&format!("/middletier/rss/user/default/items/{}", ids[0]))
        .await;
    assert_eq!(status, StatusCode::OK, "{article}");
    assert_eq!(article["title"], "A podcast with pictures");
    assert_eq!(article["author"], "Pat Podcaster");
    assert_eq!(article["feed"]["title"], "Long Reads");
    assert_eq!(
        article["feed"]["url"],
        stack.feeds.url("/fixtures/article.xml")
    );
    assert_eq!(article["feed"]["site_url"], "https://longreads.example/");
    assert_eq!(article["description"], "Episode notes, short.");
    let content = article["content"].as_str().unwrap();
    assert!(content.contains("The full notes"), "{content}");
    assert!(!content.contains("script"), "sanitized: {content}");
    assert!(
        content.contains(&stack.feeds.url("/fixtures/photo.png")),
        "relative image made absolute: {content}"
    );
    assert_eq!(
        article["enclosures"],
        json!([{"url": stack.feeds.url("/fixtures/episode.mp3"), "type": "audio/mpeg", "length": 522}])
    );
    assert_eq!(article["categories"], json!(["Audio", "Interviews"]));
    assert_eq!(
        (&article["read"], &article["starred"]),
        (&json!(false), &json!(false))
    );
    // A summary-only item's content is its summary.
    let (_, essay) = middletier
        .get(&format!("/middletier/rss/user/default/items/{}", ids[1]))
        .await;
    assert_eq!(essay["content"], "Only a summary here.");

    // Not in this user's feeds: 404, saying so.
    let (status, body) = middletier
        .get(&format!(
            "/middletier/rss/user/someone-else/items/{}",
            ids[0]
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no item"),
        "{body}"
    );

    // Listings carry no content, author or enclosures.
    let (_, listing) = middletier.feeds("default").await;
    let item = &listing["subscriptions"][0]["items"][0];
    for field in ["content", "enclosures", "author"] {
        assert!(item.get(field).is_none(), "{field} in a listing: {item}");
    }

    // The edge's JSON is the middletier's item as is.
    let (status, through_edge) = send(
        stack
            .edge
            .http
            .get(stack.edge.url(&format!("/api/items/{}", ids[0]))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(through_edge, article);
    let (status, _) = send(stack.edge.http.get(stack.edge.url("/api/items/nope"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_river_pages_every_feed_newest_first() {
    let stack = TestStack::start(1, &[], &[]).await;
    subscribed(&stack).await;
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    assert_eq!(stack.edge.subscribe(&rss).await.0, StatusCode::OK);
    let river = |query: &str| {
        let url = stack.edge.url(&format!("/api/river{query}"));
        let http = stack.edge.http.clone();
        async move { send(http.get(url)).await }
    };
    let (status, all) = river("?limit=200").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "2 + 4 items");
    assert_eq!(all["next"], Value::Null);
    let ids: Vec<u64> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest id first: {ids:?}"
    );
    let feeds: std::collections::HashSet<&str> = items
        .iter()
        .map(|i| i["feed"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(feeds.len(), 2, "{feeds:?}");
    assert!(
        items.iter().all(|i| i.get("content").is_none()),
        "summaries only"
    );

    // Keyset paging: pages of 4, then the rest, then nothing.
    let (_, first) = river("?limit=4").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    let next = first["next"].as_str().unwrap().to_owned();
    assert_eq!(next, ids[3].to_string());
    let (_, second) = river(&format!("?limit=4&before={next}")).await;
    let second_ids: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(second_ids, [ids[4].to_string(), ids[5].to_string()]);
    assert_eq!(second["next"], Value::Null);

    // Unread only, after reading one.
    let read = ids[0].to_string();
    stack.edge.set_item(&read, json!({"read": true})).await;
    let (_, unread) = river("?unread=true").await;
    let unread_ids: Vec<&str> = unread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(unread_ids.len(), 5);
    assert!(!unread_ids.contains(&read.as_str()));

    // Bad parameters are refused with what to send.
    let (status, body) = river("?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = river("?before=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_article_page_marks_read_plays_enclosures_and_proxies_images() {
    let stack = TestStack::start(1, &[], &[]).await;
    let ids = subscribed(&stack).await;
    let mut browser = stack.edge.browser();
    let page = browser.get(&format!("/items/{}", ids[0])).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("A podcast with pictures"), "{body}");
    assert!(body.contains("Pat Podcaster"));
    assert!(
        body.contains(&format!(
            "<audio controls preload=\"none\" src=\"{}\"",
            stack.feeds.url("/fixtures/episode.mp3")
        )),
        "{body}"
    );
    assert!(
        body.contains("href=\"https://longreads.example/podcast\""),
        "the original"
    );
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(!body.contains("pixel.gif"), "the tracker is dropped");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
    // Opening it marked it read.
    let listing = stack.edge.listing().await;
    assert!(listing.subscriptions[0].items[0].read);

    // Its image comes through the proxy, from this origin.
    let start = body.find("src=\"/media/").expect("a proxied image") + 5;
    let src = &body[start..start + body[start..].find('"').unwrap()];
    let image = browser.get(src).await;
    assert_eq!(image.status, StatusCode::OK, "{}", image.body);
    assert_eq!(image.headers["content-type"], "image/png");
    assert_eq!(stack.feeds.hits("/fixtures/photo.png"), 1);
    assert!(
        stack
            .feeds
            .last_header("/fixtures/photo.png", "cookie")
            .is_none()
            && stack
                .feeds
                .last_header("/fixtures/photo.png", "referer")
                .is_none(),
        "nothing about the reader goes onward"
    );
    // An address the edge did not sign names nothing.
    let forged = src.replacen("/media/", "/media/00", 1);
    assert_eq!(browser.get(&forged).await.status, StatusCode::NOT_FOUND);

    // Star it from the page: back to the article, starred.
    let page = browser
        .submit(
            &format!("/items/{}", ids[0]),
            &[("starred", "true"), ("back", "article")],
        )
        .await;
    assert!(page.body.contains("★ Unstar"), "{}", page.body);
}

#[tokio::test]
async fn the_media_call_passes_only_images() {
    let stack = TestStack::start(1, &[], &[]).await;
    let middletier = &stack.middletiers[0];
    let media = |url: String| {
        let url = middletier.url(&format!(
            "/middletier/media?url={}",
            url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
        ));
        async move { reqwest::get(url).await.unwrap() }
    };
    let image = media(stack.feeds.url("/fixtures/photo.png")).await;
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/png");
    let page = media(stack.feeds.url("/fixtures/page.html")).await;
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = page.json::<Value>().await.unwrap()["error"].to_string();
    assert!(message.contains("text/html"), "{message}");
    let pixel = media(stack.feeds.url("/fixtures/pixel.gif")).await;
    assert_eq!(pixel.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // With the default guard, the feeds' address rules hold for images.
    let strict = spawn_strict_middletier(&[]).await;
    let url = strict.url(&format!(
        "/middletier/media?url={}",
        url::form_urlencoded::byte_serialize(stack.feeds.url("/fixtures/photo.png").as_bytes())
            .collect::<String>()
    ));
    let refused = reqwest::get(url).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
