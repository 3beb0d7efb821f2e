//! Where the reader's data lives: one trait, three stores.
//!
//! This is the Astyanax/Cassandra layer of the 2013 recipe made pluggable.
//! The rest of the middletier sees only [`Store`]; `--store` picks the
//! implementation at start-up. Every implementation passes the same
//! behavioural suite ([`suite`]), so swapping stores cannot change what a
//! user sees.
//!
//! What is stored (docs/ARCHITECTURE.md, "The data model"):
//!
//! - **subscriptions**: (user, feed URL, when first subscribed);
//! - **feeds**: each subscribed feed's fetch state ([`FeedRecord`]):
//!   title, validators, when it was and will next be fetched, its errors;
//! - **items**: each feed's newest items ([`StoredItem`]), with ids from
//!   [`ids`];
//! - **read state** per (user, feed) ([`ReadState`]) and **starred items**
//!   per user ([`StarredItem`], a copy, so it outlives the feed's window);
//! - **accounts** ([`Account`]): user name, password hash, admin, session
//!   epoch and app-password hashes, for the edge's `--auth local`.
//!
//! The contract every store keeps:
//! - a write returns only once the store has it (for a durable store:
//!   durably), and repeating a write changes nothing more;
//! - `list` returns a user's subscriptions oldest first; `items` a feed's
//!   items newest first;
//! - any failure to reach the data is [`StoreError::Unavailable`], which the
//!   API turns into a 503: never a silent success.

pub mod cassandra;
pub mod file;
pub mod ids;
mod memory;
mod metered;
pub mod read_state;
#[cfg(test)]
pub(crate) mod suite;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::api::{Account, Enclosure, FeedUrl, UserId};
use futures::FutureExt as _;
use serde::{Deserialize, Serialize};

pub use cassandra::{CassandraSettings, CassandraStore};
pub use file::FileStore;
pub use ids::ItemId;
pub use memory::MemoryStore;
pub(crate) use metered::Metered;
pub use read_state::ReadState;

/// One stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The feed.
    pub url: FeedUrl,
    /// When the user first subscribed to it.
    pub added_at: DateTime<Utc>,
}

/// What we know about fetching one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    /// The feed.
    pub url: FeedUrl,
    /// Its title, from the last document that parsed.
    pub title: Option<String>,
    /// The site it belongs to.
    pub site_url: Option<String>,
    /// The `ETag` of the last document, sent back on the next fetch.
    pub etag: Option<String>,
    /// The `Last-Modified` of the last document, likewise.
    pub last_modified: Option<String>,
    /// When we last asked the publisher, whatever the answer; `None` until
    /// the first fetch.
    pub last_fetched: Option<DateTime<Utc>>,
    /// When the scheduler fetches it next.
    pub next_fetch: DateTime<Utc>,
    /// Failures in a row (0 after a success).
    pub error_count: u32,
    /// Why the last fetch failed, in words for a person.
    pub error: Option<String>,
    /// When the current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
}

impl FeedRecord {
    /// A feed never fetched, due at `now`.
    pub fn new(url: FeedUrl, now: DateTime<Utc>) -> Self {
        Self {
            url,
            title: None,
            site_url: None,
            etag: None,
            last_modified: None,
            last_fetched: None,
            next_fetch: now,
            error_count: 0,
            error: None,
            failing_since: None,
        }
    }

    /// A fetch at `now` worked: any run of failures is over.
    pub fn succeeded(&mut self, now: DateTime<Utc>) {
        self.last_fetched = Some(now);
        self.error_count = 0;
        self.error = None;
        self.failing_since = None;
    }

    /// A fetch at `now` failed, for `reason` (in words for a person):
    /// counted, explained, and dated from the first failure of the run.
    pub fn failed(&mut self, reason: String, now: DateTime<Utc>) {
        self.last_fetched = Some(now);
        self.error_count = self.error_count.saturating_add(1);
        self.failing_since.get_or_insert(now);
        self.error = Some(reason);
    }

    /// Drops the validators, so the next fetch asks for the whole
    /// document (after a 304 we could not use).
    pub fn forget_validators(&mut self) {
        self.etag = None;
        self.last_modified = None;
    }
}

/// One stored item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredItem {
    /// Unique in the store, growing with the time it was first stored.
    pub id: ItemId,
    /// What tells it apart from the feed's other items across refreshes:
    /// its guid, else its link, else a hash of its title and date.
    pub key: String,
    /// The feed's own identifier for it, if it gave one.
    pub guid: Option<String>,
    /// Plain text.
    pub title: String,
    /// Absolute `http(s)`.
    pub link: Option<String>,
    /// Sanitized HTML: the summary.
    pub description: String,
    /// The rest of the item, which only its article shows. [`Store::items`]
    /// leaves it out (`None`), so listings and the river never read or
    /// decode full contents; [`Store::item`], stars and a refresh's writes
    /// carry it. Items stored before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ItemDetails>,
    /// [`ItemDetails::fingerprint`] of `details`, kept with the summary, so a
    /// refresh tells an edited article from an unchanged one without
    /// reading it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub details_hash: u64,
    /// When it was published, if the feed said (stored as RFC 3339).
    #[serde(default, with = "common::api::rfc3339::option")]
    pub published: Option<DateTime<Utc>>,
}

impl StoredItem {
    /// The item as listings show it, with one user's flags.
    pub fn listed(&self, read: bool, starred: bool) -> common::api::Item {
        common::api::Item {
            id: common::api::ItemId::new(self.id),
            guid: self.guid.clone(),
            title: self.title.clone(),
            // Stored before links were checked as they are now: checked again.
            link: self.link.as_deref().and_then(crate::feeds::web_url),
            description: self.description.clone(),
            published: self.published,
            read,
            starred,
        }
    }

    /// The item without its details, as [`Store::items`] returns it.
    pub fn summary(&self) -> StoredItem {
        StoredItem {
            id: self.id,
            key: self.key.clone(),
            guid: self.guid.clone(),
            title: self.title.clone(),
            link: self.link.clone(),
            description: self.description.clone(),
            details: None,
            details_hash: self.details_hash,
            published: self.published,
        }
    }
}

/// What an article shows beyond the summary a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDetails {
    /// Sanitized HTML: the full article, if the feed gave more than the
    /// summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Attached files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enclosures: Vec<Enclosure>,
    /// Plain text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl ItemDetails {
    /// A stable hash of every field (XXH64 of its JSON form; never 0, so 0
    /// means "stored before details existed").
    pub fn fingerprint(&self) -> u64 {
        use std::hash::Hasher as _;
        let mut hasher = twox_hash::XxHash64::with_seed(0);
        hasher.write(&serde_json::to_vec(self).unwrap_or_default());
        hasher.finish().max(1)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An item a user starred, kept whole: it stays when its feed moves on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarredItem {
    /// The feed it came from.
    pub feed: FeedUrl,
    /// The item as it was when starred.
    pub item: StoredItem,
}

/// The result of one fetch, written at once: the feed's new state, the
/// items that are new or changed, and those that fell out of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedUpdate {
    /// The feed's state after the fetch.
    pub record: FeedRecord,
    /// Items to insert or replace (matched by `key`).
    pub upserts: Vec<StoredItem>,
    /// Items to delete.
    pub removals: Vec<StoredItem>,
}

impl FeedUpdate {
    /// A change of the feed's state only.
    pub fn state_only(record: FeedRecord) -> Self {
        Self {
            record,
            upserts: Vec::new(),
            removals: Vec::new(),
        }
    }
}

/// Changes to one user's read and starred state, applied together
/// ([`Store::edit_states`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateEdits {
    /// Read overrides to store (`Some`) or drop (`None`), as
    /// [`Store::set_read_override`] takes them.
    pub read: Vec<(FeedUrl, ItemId, Option<bool>)>,
    /// Items to star (each a whole copy).
    pub star: Vec<StarredItem>,
    /// Items to unstar.
    pub unstar: Vec<StarredItem>,
}

impl StateEdits {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.star.is_empty() && self.unstar.is_empty()
    }
}

/// How many single-item operations a store's default bulk methods keep in
/// flight.
pub const BULK_CONCURRENCY: usize = 32;

/// A store could not do what was asked. The text goes to the log; the API
/// shows a generic message (stores' internals are not the user's business).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused the operation.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// What every store does (see the module docs for the contract).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Short name for logs and `/healthcheck`: `memory`, `file`, `cassandra`.
    fn name(&self) -> &'static str;

    /// Whether other middletiers may share this store's feeds, so each feed
    /// needs one owner to refresh it (see `refresh::ownership`).
    fn is_shared(&self) -> bool {
        false
    }

    // Subscriptions.

    /// A user's subscriptions, oldest first.
    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError>;

    /// Stores a subscription (keeping the first `added_at` if it exists).
    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError>;

    /// Removes a subscription and the user's read state for that feed.
    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError>;

    /// Whether anyone is subscribed to `url`.
    async fn has_subscribers(&self, url: &FeedUrl) -> Result<bool, StoreError>;

    // Feeds and their items.

    /// One feed's fetch state.
    async fn feed(&self, url: &FeedUrl) -> Result<Option<FeedRecord>, StoreError>;

    /// Every feed and when it is due: what the scheduler plans from.
    async fn schedule(&self) -> Result<Vec<(FeedUrl, DateTime<Utc>)>, StoreError>;

    /// Stores `record` unless the feed is already known.
    async fn create_feed(&self, record: &FeedRecord) -> Result<(), StoreError>;

    /// Writes the outcome of a fetch.
    async fn save_fetch(&self, update: &FeedUpdate) -> Result<(), StoreError>;

    /// Forgets a feed nobody reads any more: its state and items.
    async fn delete_feed(&self, url: &FeedUrl) -> Result<(), StoreError>;

    /// A feed's stored items, newest (highest id) first.
    async fn items(&self, url: &FeedUrl) -> Result<Vec<StoredItem>, StoreError>;

    /// Each feed's record and items, in the order of `urls`: what a listing
    /// of many feeds reads. One operation to its caller (one span, one
    /// metric), however the store performs it; by default `feed` and
    /// `items` for each, all at once.
    async fn feeds_with_items(
        &self,
        urls: &[FeedUrl],
    ) -> Result<Vec<(Option<FeedRecord>, Vec<StoredItem>)>, StoreError> {
        futures::future::try_join_all(
            urls.iter()
                .map(|url| async move { tokio::try_join!(self.feed(url), self.items(url)) }),
        )
        .await
    }

    /// The item with `id`, and its feed.
    async fn item(&self, id: ItemId) -> Result<Option<(FeedUrl, StoredItem)>, StoreError>;

    /// At most `limit` of a feed's items with an id below `before` (all,
    /// without), newest first, as [`Store::items`] gives them: one feed's
    /// share of a page of the river. This default reads them all; a store
    /// that keeps a feed's items in id order reads only the page.
    async fn items_before(
        &self,
        url: &FeedUrl,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<StoredItem>, StoreError> {
        let mut items = self.items(url).await?;
        items.retain(|item| before.is_none_or(|before| item.id < before));
        items.truncate(limit);
        Ok(items)
    }

    /// The ids of each feed's stored items, lowest first, in the order of
    /// `urls`: what a sync's id lists and unread counts need, without
    /// reading a single item. One operation to its caller; by default
    /// `items` for each feed, all at once.
    async fn item_ids(&self, urls: &[FeedUrl]) -> Result<Vec<Vec<ItemId>>, StoreError> {
        futures::future::try_join_all(urls.iter().map(|url| async move {
            Ok(self.items(url).await?.iter().rev().map(|i| i.id).collect())
        }))
        .await
    }

    /// Items by id, whole (with their details), each with its feed; ids
    /// of no stored item are left out. One operation to its caller; by
    /// default `item` for each id, [`BULK_CONCURRENCY`] at a time.
    async fn items_by_ids(&self, ids: &[ItemId]) -> Result<Vec<(FeedUrl, StoredItem)>, StoreError> {
        use futures::StreamExt as _;
        // Collected first: a lazy iterator of futures in a stream trips the
        // compiler's `Send` check inside `async_trait`.
        let lookups: Vec<_> = ids.iter().map(|&id| self.item(id)).collect();
        let found: Vec<_> = futures::stream::iter(lookups)
            .buffered(BULK_CONCURRENCY)
            .collect()
            .await;
        Ok(found
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Applies many read and star changes of one user at once (a sync
    /// app marking a thousand items read). A durable store commits them
    /// together; by default each change is written on its own,
    /// [`BULK_CONCURRENCY`] at a time.
    async fn edit_states(&self, user: &UserId, edits: &StateEdits) -> Result<(), StoreError> {
        use futures::StreamExt as _;
        let mut writes = Vec::new();
        for (feed, id, read) in &edits.read {
            writes.push(self.set_read_override(user, feed, *id, *read).boxed());
        }
        for (items, star) in [(&edits.star, true), (&edits.unstar, false)] {
            for item in items {
                writes.push(self.set_starred(user, item, star).boxed());
            }
        }
        futures::stream::iter(writes)
            .buffer_unordered(BULK_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// `n` new item ids, ascending, each greater than `after` (the feed's
    /// highest stored id, or 0), whatever this process's clock says. Fails
    /// while a shared store has not given this process a worker number.
    fn allocate_ids(&self, n: usize, after: ItemId) -> Result<Vec<ItemId>, StoreError>;

    // Each user's state.

    /// A user's read state, per feed (feeds never marked are absent).
    async fn read_states(&self, user: &UserId) -> Result<HashMap<FeedUrl, ReadState>, StoreError>;

    /// Stores (`Some`) or drops (`None`) one item's override of the
    /// watermark (see [`ReadState::mark`]).
    async fn set_read_override(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        id: ItemId,
        read: Option<bool>,
    ) -> Result<(), StoreError>;

    /// Marks read every item of `feed` below `before` (see
    /// [`ReadState::mark_read_before`]).
    async fn mark_read_before(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        before: ItemId,
    ) -> Result<(), StoreError>;

    /// A user's starred items, newest first.
    async fn starred(&self, user: &UserId) -> Result<Vec<StarredItem>, StoreError>;

    /// Stars (keeping a copy of) or unstars an item.
    async fn set_starred(
        &self,
        user: &UserId,
        item: &StarredItem,
        starred: bool,
    ) -> Result<(), StoreError>;

    // Accounts (`--auth local` at the edge). The middletier keeps them;
    // the edge decides who signs in.

    /// One account.
    async fn account(&self, user: &UserId) -> Result<Option<Account>, StoreError>;

    /// Every account, by user name.
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// Stores a new account; `false` (and nothing changed) when the name
    /// is taken.
    async fn create_account(&self, account: &Account) -> Result<bool, StoreError>;

    /// Replaces an existing account; `false` (and nothing stored) when
    /// there is none, so a deleted account is never brought back.
    async fn update_account(&self, account: &Account) -> Result<bool, StoreError>;

    /// Forgets an account (its data is deleted first, by the reader).
    async fn delete_account(&self, user: &UserId) -> Result<(), StoreError>;

    // Health.

    /// Whether the store can serve right now (for `/healthcheck`).
    async fn check(&self) -> Result<(), StoreError>;

    /// Resolves once the store is ready for its first request (a store that
    /// connects in the background waits here); until then the service
    /// stays `STARTING` in the registry.
    async fn ready(&self) {}
}

/// Oldest first; the URL breaks ties, so the order is stable.
pub(crate) fn sort_oldest_first(list: &mut [Subscription]) {
    list.sort_by(|a, b| a.added_at.cmp(&b.added_at).then_with(|| a.url.cmp(&b.url)));
}

/// Newest (highest id) first.
pub(crate) fn sort_newest_first(items: &mut [StoredItem]) {
    items.sort_by_key(|item| std::cmp::Reverse(item.id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_stored_before_contents_read_with_empty_ones() {
        // A file store's item record as the previous version wrote it.
        let old = r#"{"id": 5, "key": "g", "guid": "g", "title": "T", "link": null,
                      "description": "<p>d</p>", "published": "2026-01-02T03:04:05Z"}"#;
        let item: StoredItem = serde_json::from_str(old).unwrap();
        assert_eq!(item.title, "T");
        assert_eq!((&item.details, item.details_hash), (&None, 0));
        // And absent fields take no room in new records.
        let written = serde_json::to_string(&item).unwrap();
        assert!(!written.contains("details"), "{written}");
        let details = ItemDetails {
            content: "<p>c</p>".into(),
            ..ItemDetails::default()
        };
        assert_ne!(details.fingerprint(), ItemDetails::default().fingerprint());
        assert_ne!(ItemDetails::default().fingerprint(), 0);
    }
}
