//! Reading a listing (`GET .../rss/user/{user}` at the middletier,
//! `GET /api/subscriptions` at the edge) in tests: decoded into the API's
//! own types, so a test says what it checks, not how to walk JSON.

use common::api::{FeedView, UserFeeds};
use serde_json::Value;

/// The listing, decoded; panics with the body when it is not one.
pub(crate) fn decode(body: &Value) -> UserFeeds {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not a listing ({e}): {body:#}"))
}

/// One feed of a listing, decoded.
pub(crate) fn feed(feed: &Value) -> FeedView {
    serde_json::from_value(feed.clone()).unwrap_or_else(|e| panic!("not a feed ({e}): {feed:#}"))
}

/// The titles of a listing's feeds, in order.
pub(crate) fn feed_titles(body: &Value) -> Vec<String> {
    decode(body)
        .subscriptions
        .into_iter()
        .map(|f| f.title)
        .collect()
}

/// The titles of one feed's items, newest first.
pub(crate) fn item_titles(feed_json: &Value) -> Vec<String> {
    feed(feed_json).items.into_iter().map(|i| i.title).collect()
}

/// The ids of one feed's items, as the API writes them.
pub(crate) fn item_ids(feed_json: &Value) -> Vec<String> {
    feed(feed_json)
        .items
        .iter()
        .map(|i| i.id.to_string())
        .collect()
}

/// The ids of every item of a listing.
pub(crate) fn all_item_ids(body: &Value) -> Vec<u64> {
    decode(body)
        .subscriptions
        .iter()
        .flat_map(|f| f.items.iter().map(|i| i.id.get()))
        .collect()
}
