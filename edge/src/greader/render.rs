//! The JSON shapes Google Reader clients read, built from the
//! middletier's answers. Typed, so a field cannot be misspelt, and
//! borrowed, so a page of a thousand items is not copied to be encoded.

use common::api::{Article, ItemId};
use common::sync::{ItemRef, SyncFeed};
use serde::Serialize;

use super::ids::{self, LABEL, LABEL_ID, READ, READING_LIST, STARRED};

/// `subscription/list`.
#[derive(Serialize)]
pub(crate) struct Subscriptions {
    subscriptions: Vec<Subscription>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    id: String,
    title: String,
    categories: [Category; 1],
    url: String,
    html_url: String,
    icon_url: &'static str,
}

#[derive(Serialize)]
struct Category {
    id: &'static str,
    label: &'static str,
}

pub(crate) fn subscriptions(feeds: Vec<SyncFeed>) -> Subscriptions {
    Subscriptions {
        subscriptions: feeds
            .into_iter()
            .map(|feed| Subscription {
                id: ids::feed_stream(&feed.url),
                title: feed.title,
                categories: [Category {
                    id: LABEL_ID,
                    label: LABEL,
                }],
                html_url: feed.site_url.unwrap_or_else(|| feed.url.clone()),
                url: feed.url,
                icon_url: "",
            })
            .collect(),
    }
}

/// `unread-count`.
#[derive(Serialize)]
pub(crate) struct UnreadCounts {
    max: usize,
    unreadcounts: Vec<UnreadCount>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UnreadCount {
    id: String,
    count: usize,
    newest_item_timestamp_usec: String,
}

/// Each feed's count, then the label's and the reading list's (the sums).
pub(crate) fn unread_counts(feeds: &[SyncFeed]) -> UnreadCounts {
    let usec = |newest: Option<ItemId>| micros(newest.unwrap_or_default());
    let total: usize = feeds.iter().map(|f| f.unread).sum();
    let newest = feeds.iter().filter_map(|f| f.newest).max();
    let mut unreadcounts: Vec<UnreadCount> = feeds
        .iter()
        .map(|feed| UnreadCount {
            id: ids::feed_stream(&feed.url),
            count: feed.unread,
            newest_item_timestamp_usec: usec(feed.newest),
        })
        .collect();
    for id in [LABEL_ID.to_owned(), READING_LIST.to_owned()] {
        unreadcounts.push(UnreadCount {
            id,
            count: total,
            newest_item_timestamp_usec: usec(newest),
        });
    }
    UnreadCounts {
        max: total,
        unreadcounts,
    }
}

/// `tag/list`: starred, and the one label (a folder, which NetNewsWire
/// needs listed or it deletes its local folder).
pub(crate) fn tags() -> serde_json::Value {
    serde_json::json!({"tags": [
        {"id": STARRED},
        {"id": LABEL_ID, "type": "folder"},
    ]})
}

/// `stream/items/ids`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemRefs {
    item_refs: Vec<ItemRefOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemRefOut {
    id: String,
    direct_stream_ids: [(); 0],
    timestamp_usec: String,
}

pub(crate) fn item_refs(refs: &[ItemRef], more: bool) -> ItemRefs {
    ItemRefs {
        item_refs: refs
            .iter()
            .map(|r| ItemRefOut {
                id: r.id.to_string(),
                direct_stream_ids: [],
                timestamp_usec: micros(r.id),
            })
            .collect(),
        continuation: continuation(refs.last().map(|r| r.id), more),
    }
}

/// The continuation after a page: the last id sent, when more follow.
pub(crate) fn continuation(last: Option<ItemId>, more: bool) -> Option<String> {
    last.filter(|_| more).map(|id| id.to_string())
}

/// `stream/items/contents` and `stream/contents`.
#[derive(Serialize)]
pub(crate) struct Stream<'a> {
    id: String,
    updated: i64,
    items: Vec<Item<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    id: String,
    crawl_time_msec: String,
    timestamp_usec: String,
    published: i64,
    updated: i64,
    title: &'a str,
    author: &'a str,
    canonical: Vec<Href<'a>>,
    alternate: Vec<Alternate<'a>>,
    summary: Content<'a>,
    content: Content<'a>,
    categories: Vec<&'static str>,
    origin: Origin<'a>,
    enclosure: Vec<Enclosure<'a>>,
}

#[derive(Serialize)]
struct Href<'a> {
    href: &'a str,
}

#[derive(Serialize)]
struct Alternate<'a> {
    href: &'a str,
    #[serde(rename = "type")]
    media_type: &'static str,
}

#[derive(Serialize)]
struct Content<'a> {
    direction: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Origin<'a> {
    stream_id: String,
    title: &'a str,
    html_url: &'a str,
}

#[derive(Serialize)]
struct Enclosure<'a> {
    href: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    media_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<String>,
}

pub(crate) fn stream<'a>(
    id: &str,
    items: &'a [Article],
    continuation: Option<String>,
) -> Stream<'a> {
    Stream {
        id: id.to_owned(),
        updated: chrono::Utc::now().timestamp(),
        items: items.iter().map(item).collect(),
        continuation,
    }
}

fn item(article: &Article) -> Item<'_> {
    let id = article.item.id;
    let crawled_s = i64::try_from(id.stored_at_ms() / 1000).unwrap_or_default();
    let published = article
        .item
        .published
        .map_or(crawled_s, |at| at.timestamp());
    let link = article.item.link.as_deref();
    // Read and starred travel only here.
    let mut categories = vec![READING_LIST, LABEL_ID];
    if article.item.read {
        categories.push(READ);
    }
    if article.item.starred {
        categories.push(STARRED);
    }
    Item {
        id: ids::long_item_id(id),
        crawl_time_msec: id.stored_at_ms().to_string(),
        timestamp_usec: micros(id),
        published,
        updated: published,
        title: &article.item.title,
        author: article.author.as_deref().unwrap_or_default(),
        canonical: link.map(|href| Href { href }).into_iter().collect(),
        alternate: link
            .map(|href| Alternate {
                href,
                media_type: "text/html",
            })
            .into_iter()
            .collect(),
        summary: Content {
            direction: "ltr",
            content: &article.item.description,
        },
        content: Content {
            direction: "ltr",
            content: &article.content,
        },
        categories,
        origin: Origin {
            stream_id: ids::feed_stream(&article.feed.url),
            title: &article.feed.title,
            html_url: article
                .feed
                .site_url
                .as_deref()
                .unwrap_or(&article.feed.url),
        },
        enclosure: article
            .enclosures
            .iter()
            .map(|e| Enclosure {
                href: &e.url,
                media_type: e.media_type.as_deref(),
                length: e.length.map(|n| n.to_string()),
            })
            .collect(),
    }
}

/// An id's crawl time in µs, as a string (what `timestampUsec` is).
fn micros(id: ItemId) -> String {
    (u128::from(id.stored_at_ms()) * 1000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::api::{Enclosure as WireEnclosure, Item as WireItem, ItemFeed};

    #[test]
    fn an_item_carries_its_state_only_in_categories() {
        let id = ItemId::first_stored_at_ms(1_764_000_000_000);
        let article = Article {
            item: WireItem {
                id,
                title: "T".into(),
                link: Some("https://a.example/1".into()),
                description: "<p>s</p>".into(),
                read: true,
                starred: true,
                ..WireItem::default()
            },
            feed: ItemFeed {
                url: "https://a.example/feed".into(),
                title: "A".into(),
                site_url: None,
            },
            content: "<p>whole</p>".into(),
            enclosures: vec![WireEnclosure {
                url: "https://a.example/1.mp3".into(),
                media_type: Some("audio/mpeg".into()),
                length: Some(7),
            }],
            ..Article::default()
        };
        let json = serde_json::to_value(stream(READING_LIST, std::slice::from_ref(&article), None))
            .unwrap();
        let item = &json["items"][0];
        assert_eq!(item["id"], ids::long_item_id(id));
        assert_eq!(item["crawlTimeMsec"], "1764000000000");
        assert_eq!(item["timestampUsec"], "1764000000000000");
        assert_eq!(item["published"], 1_764_000_000, "no date: the crawl time");
        assert_eq!(item["alternate"][0]["href"], "https://a.example/1");
        assert_eq!(item["content"]["content"], "<p>whole</p>");
        assert_eq!(item["summary"]["content"], "<p>s</p>");
        assert_eq!(item["enclosure"][0]["length"], "7");
        assert_eq!(
            item["origin"]["streamId"],
            format!(
                "feed/{}",
                common::sync::feed_number("https://a.example/feed")
            )
        );
        let categories = item["categories"].as_array().unwrap();
        assert!(categories.contains(&READ.into()) && categories.contains(&STARRED.into()));
        assert!(json.get("continuation").is_none());
        assert!(item.get("read").is_none() && item.get("starred").is_none());
    }

    #[test]
    fn unread_counts_add_up_for_the_label_and_the_reading_list() {
        let feed = |url: &str, unread, newest| SyncFeed {
            url: url.into(),
            title: "t".into(),
            site_url: None,
            unread,
            newest: Some(ItemId::new(newest)),
        };
        let counts = serde_json::to_value(unread_counts(&[
            feed("https://a.example/", 2, 4096),
            feed("https://b.example/", 3, 8192),
        ]))
        .unwrap();
        assert_eq!(counts["max"], 5);
        let all = &counts["unreadcounts"];
        assert_eq!(all[2]["id"], "user/-/label/Feeds");
        assert_eq!(all[3]["id"], READING_LIST);
        assert_eq!(all[3]["count"], 5);
        assert_eq!(
            all[3]["newestItemTimestampUsec"],
            all[1]["newestItemTimestampUsec"]
        );
    }
}
