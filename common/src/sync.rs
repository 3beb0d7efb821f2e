//! The middletier's calls for sync clients: what the edge's Google Reader
//! API asks of it, in bulk.
//!
//! A sync app asks for thousands of ids at once, then their contents a
//! hundred at a time, then marks hundreds read in one call. Doing that one
//! item at a time would cost a round trip (and, in a durable store, a
//! commit) per item, so each of these calls is one request to the
//! middletier and one operation per kind of data in its store:
//!
//! | call | body → answer |
//! |---|---|
//! | `POST /middletier/rss/user/{user}/sync/ids` | [`IdsQuery`] → [`Ids`] |
//! | `POST /middletier/rss/user/{user}/sync/contents` | [`IdsQuery`] → [`Items`] (the same items, whole) |
//! | `POST /middletier/rss/user/{user}/sync/items` | [`ItemsQuery`] → [`Items`] |
//! | `POST /middletier/rss/user/{user}/sync/edit` | [`Edit`] → [`Edited`] |
//! | `GET /middletier/rss/user/{user}/sync/feeds` | → [`SyncFeeds`] |
//!
//! Paging is by id (keyset), never by offset: the edge turns a client's
//! continuation and its crawl-time bounds into [`IdsQuery::after`] and
//! [`IdsQuery::before`], so a page stays valid while items arrive and
//! across restarts of either service.

use serde::{Deserialize, Serialize};

use crate::api::{Article, ItemId};

/// The most ids one call may ask for or change.
pub const MAX_IDS: usize = 10_000;
/// The most whole items one call returns.
pub const MAX_ITEMS: usize = 1_000;

/// Which of a user's items, in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsQuery {
    /// One feed: its URL, or its number ([`feed_number`]). None: every
    /// subscription.
    #[serde(default)]
    pub feed: Option<String>,
    /// The user's starred items (kept copies included) instead of their
    /// subscriptions.
    #[serde(default)]
    pub starred_stream: bool,
    /// Only read (`true`) or only unread (`false`) items.
    #[serde(default)]
    pub read: Option<bool>,
    /// Only starred (`true`) or only unstarred (`false`) items.
    #[serde(default)]
    pub starred: Option<bool>,
    /// Only ids above this one.
    #[serde(default)]
    pub after: Option<ItemId>,
    /// Only ids below this one.
    #[serde(default)]
    pub before: Option<ItemId>,
    /// Lowest id first (else highest first).
    #[serde(default)]
    pub oldest_first: bool,
    /// At most this many (1 to [`MAX_IDS`]; [`MAX_ITEMS`] for contents).
    pub limit: usize,
}

/// One item's id and the feed it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRef {
    /// The item.
    pub id: ItemId,
    /// Its feed's URL.
    pub feed: String,
}

/// The answer to `sync/ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    /// In the order asked.
    pub refs: Vec<ItemRef>,
    /// Whether more items follow the last one.
    pub more: bool,
}

/// `sync/items`: items by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemsQuery {
    /// At most [`MAX_ITEMS`].
    pub ids: Vec<ItemId>,
}

/// Whole items with the user's state: the answer to `sync/items` (in the
/// order asked; ids of no item of the user's are left out) and
/// `sync/contents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Items {
    /// Each with its feed, content, read and starred state.
    pub items: Vec<Article>,
    /// `sync/contents`: whether more items follow the last one.
    #[serde(default)]
    pub more: bool,
}

/// `sync/edit`: marks many items read or unread, starred or not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// At most [`MAX_IDS`]; ids of no item of the user's are skipped.
    pub ids: Vec<ItemId>,
    /// Mark them read (`true`) or unread (`false`).
    #[serde(default)]
    pub read: Option<bool>,
    /// Star (`true`) or unstar (`false`) them.
    #[serde(default)]
    pub starred: Option<bool>,
}

/// The answer to `sync/edit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edited {
    /// Items whose state changed.
    pub changed: usize,
    /// Ids that name no item of the user's.
    pub unknown: usize,
}

/// The answer to `sync/feeds`: each subscription, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFeeds {
    /// The user's subscriptions.
    pub feeds: Vec<SyncFeed>,
}

/// One subscription, as a sync client lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFeed {
    /// The feed's URL.
    pub url: String,
    /// Its title (its host until it has been read).
    pub title: String,
    /// The site it belongs to.
    #[serde(default)]
    pub site_url: Option<String>,
    /// Its unread items.
    pub unread: usize,
    /// Its newest item.
    #[serde(default)]
    pub newest: Option<ItemId>,
}

/// A feed's number for sync clients (`feed/<n>`): the same for every user
/// and on every edge, for as long as the URL is the same, with no table to
/// keep. It is the first 53 bits of a SHA-256 of the URL (a number every
/// JSON parser holds exactly); two of one user's feeds sharing one would
/// take about 10^12 subscriptions.
pub fn feed_number(url: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(url.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_numbers_are_stable_and_fit_a_double() {
        let n = feed_number("https://example.com/feed.xml");
        assert_eq!(n, feed_number("https://example.com/feed.xml"));
        assert_ne!(n, feed_number("https://example.com/feed.xml?x"));
        assert!(n < 1 << 53 && n > 0);
    }

    #[test]
    fn ids_carry_the_time_they_were_first_stored() {
        let ms = crate::api::ID_EPOCH_MS + 86_400_000;
        let first = ItemId::first_stored_at_ms(ms);
        assert_eq!(first.stored_at_ms(), ms);
        assert_eq!(ItemId::new(first.get() + 4095).stored_at_ms(), ms);
        assert_eq!(ItemId::new(first.get() + 4096).stored_at_ms(), ms + 1);
    }
}
