//! Reading: the listing (stored items with the user's read and starred
//! state), one item's state, mark-read, and refresh now.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::api::{FeedUrl, FeedView, ItemChange, ItemState, UserId};

use crate::feeds::fetch::human_duration;
use crate::refresh::RefreshError;
use crate::refresh::cache::CachedFeed;
use crate::store::{FeedRecord, ItemId, ReadState, StarredItem, StoreError, StoredItem, ids};

use super::{Reader, ReaderError};
use crate::feeds::web_url;

/// A listing, or word that the caller's copy is still current.
#[derive(Debug)]
pub(crate) enum Listing {
    /// The listing, encoded, and its tag when it has one (see
    /// [`Reader::listing`]).
    Fresh {
        /// Its tag.
        tag: Option<String>,
        /// `common::api::UserFeeds` as JSON.
        body: Vec<u8>,
    },
    /// The caller's copy has this tag, and it is still the listing.
    Unchanged {
        /// The tag.
        tag: String,
    },
}

/// How to list.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ListOptions {
    /// Only unread items.
    pub(crate) unread_only: bool,
    /// Items per feed (else the default).
    pub(crate) limit: Option<usize>,
}

impl Reader {
    /// A user's listing, encoded as the API answers it: their
    /// subscriptions, oldest first, each with its items and state
    /// (`common::api::UserFeeds`).
    ///
    /// Each feed's items come encoded from the refresher's cache, shared by
    /// everyone who reads the feed; only this user's flags and each feed's
    /// few other fields are encoded here. A feed never fetched yet is
    /// fetched first (see [`Reader::view`]).
    ///
    /// The listing is tagged (an HTTP entity tag) from what it is made of,
    /// without encoding it: a caller that holds the listing tagged `known`
    /// is told it is [`Listing::Unchanged`], and nothing is encoded or sent.
    pub(crate) async fn listing(
        &self,
        user: &UserId,
        options: ListOptions,
        known: Option<&str>,
    ) -> Result<Listing, ReaderError> {
        let urls = self.subscription_urls(user).await?;
        let (states, starred, feeds) = tokio::try_join!(
            self.store.read_states(user),
            self.starred_ids(user),
            self.refresher.cached(&urls),
        )?;
        let tag = self.listing_tag(user, options, &urls, &feeds, &states, &starred);
        if let Some(tag) = tag.as_ref().filter(|tag| Some(tag.as_str()) == known) {
            return Ok(Listing::Unchanged { tag: tag.clone() });
        }
        let state = |url: &FeedUrl| states.get(url).cloned().unwrap_or_default();
        // Feeds never fetched are fetched now, all at once.
        let unfetched = urls.iter().zip(&feeds).filter(|(_, feed)| !fetched(feed));
        let first_views = futures::future::try_join_all(unfetched.map(|(url, feed)| {
            let stored = (feed.record.clone(), Vec::new());
            self.view(user, url, stored, state(url), &starred, options)
        }))
        .await?;
        let mut first_views = first_views.into_iter();
        let items: usize = feeds
            .iter()
            .map(|f| f.items.len().min(LISTING_ITEM_GUESS))
            .sum();
        let mut out = Vec::with_capacity(256 + items * 512);
        out.extend_from_slice(b"{\"user\":");
        write_json(&mut out, user.as_str());
        out.extend_from_slice(b",\"subscriptions\":[");
        for (n, (url, feed)) in urls.iter().zip(&feeds).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            if fetched(feed) {
                self.write_cached(url, feed, &state(url), &starred, options, &mut out);
            } else if let Some(view) = first_views.next() {
                write_json(&mut out, &view);
            }
        }
        out.extend_from_slice(b"]}");
        Ok(Listing::Fresh { tag, body: out })
    }

    /// The tag of a listing made of these parts: a hash of the user, the
    /// options, each feed's cached version (which changes with any write to
    /// the feed), and the user's read state and stars in each. `None` when
    /// a feed has no version (not kept in the cache, or never fetched).
    fn listing_tag(
        &self,
        user: &UserId,
        options: ListOptions,
        urls: &[FeedUrl],
        feeds: &[Arc<CachedFeed>],
        states: &HashMap<FeedUrl, ReadState>,
        starred: &HashSet<ItemId>,
    ) -> Option<String> {
        use std::hash::{Hash as _, Hasher as _};
        let mut hash = twox_hash::XxHash64::with_seed(self.refresher.cache_epoch());
        user.as_str().hash(&mut hash);
        options.unread_only.hash(&mut hash);
        options
            .limit
            .unwrap_or(self.settings.default_limit)
            .hash(&mut hash);
        for (url, feed) in urls.iter().zip(feeds) {
            if feed.version == 0 || !fetched(feed) {
                return None;
            }
            (url.as_str(), feed.version).hash(&mut hash);
            let state = states.get(url);
            state.map(|s| (s.read_before, &s.overrides)).hash(&mut hash);
            for item in feed.items.iter().filter(|i| starred.contains(&i.id)) {
                item.id.hash(&mut hash);
            }
        }
        Some(format!("\"{:016x}\"", hash.finish()))
    }

    /// Writes one fetched feed's view from its cached form: the same bytes
    /// `serde_json` makes of [`Reader::present`]'s view.
    fn write_cached(
        &self,
        url: &FeedUrl,
        feed: &CachedFeed,
        state: &ReadState,
        starred: &HashSet<ItemId>,
        options: ListOptions,
        out: &mut Vec<u8>,
    ) {
        let limit = options.limit.unwrap_or(self.settings.default_limit);
        let unread = state.unread(feed.items.iter().map(|i| i.id));
        let mut head = Vec::with_capacity(512);
        write_json(&mut head, &self.head(url, feed.record.as_ref(), unread));
        splice_items(&head, out, |out| {
            let shown = feed.items.iter();
            let shown = shown.filter(|item| !options.unread_only || !state.is_read(item.id));
            for (n, item) in shown.take(limit).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                item.write(state.is_read(item.id), starred.contains(&item.id), out);
            }
        });
    }

    pub(super) async fn starred_ids(&self, user: &UserId) -> Result<HashSet<ItemId>, StoreError> {
        Ok(self
            .store
            .starred(user)
            .await?
            .iter()
            .map(|s| s.item.id)
            .collect())
    }

    /// One subscription as the user sees it now, from what the store holds
    /// (`stored`), fetching it first if it was never fetched.
    pub(super) async fn view(
        &self,
        user: &UserId,
        url: &FeedUrl,
        stored: (Option<FeedRecord>, Vec<StoredItem>),
        state: ReadState,
        starred: &HashSet<ItemId>,
        options: ListOptions,
    ) -> Result<FeedView, ReaderError> {
        let (record, items) = match stored {
            (Some(record), items) if record.last_fetched.is_some() => (Some(record), items),
            (known, _) => {
                let fetched = self.first_fetch(user, url).await?;
                // The fetch stored the items it found.
                (fetched.or(known), self.store.items(url).await?)
            }
        };
        Ok(self.present(url, record.as_ref(), &items, &state, starred, options))
    }

    /// Fetches a feed never fetched, waiting at most `first_fetch_wait`; the
    /// fetch goes on (and is stored) if the wait runs out.
    pub(super) async fn first_fetch(
        &self,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<Option<FeedRecord>, ReaderError> {
        let refresh = self.refresher.refresh(url, Some(user));
        match tokio::time::timeout(self.settings.first_fetch_wait, refresh).await {
            Ok(Ok(record)) => Ok(Some(record)),
            Ok(Err(RefreshError::Store(e))) => Err(e.into()),
            Ok(Err(RefreshError::Internal)) | Err(_) => Ok(None),
        }
    }

    pub(super) fn present(
        &self,
        url: &FeedUrl,
        record: Option<&FeedRecord>,
        items: &[StoredItem],
        state: &ReadState,
        starred: &HashSet<ItemId>,
        options: ListOptions,
    ) -> FeedView {
        let limit = options.limit.unwrap_or(self.settings.default_limit);
        let mut view = self.head(url, record, state.unread(items.iter().map(|i| i.id)));
        view.items = items
            .iter()
            .filter(|item| !options.unread_only || !state.is_read(item.id))
            .take(limit)
            .map(|item| item.listed(state.is_read(item.id), starred.contains(&item.id)))
            .collect();
        view
    }

    /// A feed's view without its items; `unread` of them not read.
    fn head(&self, url: &FeedUrl, record: Option<&FeedRecord>, unread: usize) -> FeedView {
        let error = match record {
            Some(record) if record.last_fetched.is_some() => record.error.clone(),
            _ => Some(format!(
                "still loading (the publisher has not answered within {}); reload in a few seconds",
                human_duration(self.settings.first_fetch_wait)
            )),
        };
        let error_count = record.map_or(0, |r| r.error_count);
        FeedView {
            url: url.to_string(),
            title: super::feed_title(url, record),
            items: Vec::new(),
            error,
            unread,
            last_fetched: record.and_then(|r| r.last_fetched),
            next_fetch: record.map(|r| r.next_fetch),
            error_count,
            failing_since: record.and_then(|r| r.failing_since),
            broken: self.refresher.settings().policy.is_broken(error_count),
            site_url: record.and_then(|r| r.site_url.as_deref()).and_then(web_url),
        }
    }

    /// Marks one item read or unread, starred or not.
    pub(crate) async fn set_item(
        &self,
        user: &UserId,
        id: common::api::ItemId,
        change: ItemChange,
    ) -> Result<ItemState, ReaderError> {
        if change.read.is_none() && change.starred.is_none() {
            return Err(ReaderError::NothingToChange);
        }
        let id: ItemId = id.get();
        let (feed, item, starred) = self.locate(user, id).await?;
        let mut state = self
            .store
            .read_states(user)
            .await?
            .remove(&feed)
            .unwrap_or_default();
        if let Some(read) = change.read {
            let override_ = state.mark(id, read);
            self.store
                .set_read_override(user, &feed, id, override_)
                .await?;
            if state.overrides.len() > self.refresher.settings().retention.keep {
                self.prune_overrides(user, &feed, &state).await?;
            }
        }
        let was_starred = starred.iter().any(|s| s.item.id == id);
        let is_starred = match change.starred {
            Some(true) if !was_starred && starred.len() >= self.settings.max_starred => {
                return Err(ReaderError::TooManyStarred(self.settings.max_starred));
            }
            Some(star) => {
                let item = StarredItem { feed, item };
                self.store.set_starred(user, &item, star).await?;
                star
            }
            None => was_starred,
        };
        Ok(ItemState {
            id: common::api::ItemId::new(id),
            read: state.is_read(id),
            starred: is_starred,
        })
    }

    /// Drops the overrides of items no longer stored in `feed`: they can
    /// never be shown again, and without this a user who toggles items of
    /// a busy feed would keep them for ever.
    pub(super) async fn prune_overrides(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        state: &ReadState,
    ) -> Result<(), StoreError> {
        let stored: HashSet<ItemId> = self.store.items(feed).await?.iter().map(|i| i.id).collect();
        let stale = state.overrides.keys().filter(|id| !stored.contains(id));
        futures::future::try_join_all(
            stale.map(|id| self.store.set_read_override(user, feed, *id, None)),
        )
        .await
        .map(drop)
    }

    /// Marks read the items of one feed (or all) up to `before`: the newest
    /// item id the user was shown (that item included), or a date (items
    /// first stored before it); without it, all. Items stored after the
    /// mark stay unread, whatever any middletier's clock says: no feed's
    /// watermark goes past its newest stored item.
    pub(crate) async fn mark_read(
        &self,
        user: &UserId,
        url: Option<FeedUrl>,
        before: Option<&str>,
    ) -> Result<usize, ReaderError> {
        let before = before.map(parse_before).transpose()?;
        let subscribed = self.subscribed(user).await?;
        let feeds: Vec<FeedUrl> = match url {
            Some(url) if subscribed.contains(&url) => vec![url],
            Some(url) => return Err(ReaderError::NotSubscribed(url.to_string())),
            None => subscribed.into_iter().collect(),
        };
        let states = self.store.read_states(user).await?;
        let marks = feeds.iter().map(|feed| {
            let mut state = states.get(feed).cloned().unwrap_or_default();
            async move {
                let ids: Vec<ItemId> = self.store.items(feed).await?.iter().map(|i| i.id).collect();
                let newest = ids.iter().max().map_or(0, |max| max + 1);
                let watermark = match before {
                    Some(Before::Item(id)) => id.saturating_add(1),
                    Some(Before::Date(at)) => ids::first_id_at(at),
                    None => newest,
                }
                .min(newest);
                let unread = state.unread(ids.iter().copied());
                state.mark_read_before(watermark);
                let marked = unread - state.unread(ids.iter().copied());
                if marked > 0 {
                    self.store.mark_read_before(user, feed, watermark).await?;
                }
                Ok::<_, StoreError>(marked)
            }
        });
        Ok(futures::future::try_join_all(marks)
            .await?
            .into_iter()
            .sum())
    }

    /// Fetches one of the user's feeds now; returns it as a listing would.
    pub(crate) async fn refresh(
        &self,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<FeedView, ReaderError> {
        if !self.subscribed(user).await?.contains(url) {
            return Err(ReaderError::NotSubscribed(url.to_string()));
        }
        let record = self.refresher.refresh(url, Some(user)).await?;
        let (states, starred, items) = tokio::try_join!(
            self.store.read_states(user),
            self.starred_ids(user),
            self.store.items(url),
        )?;
        let state = states.get(url).cloned().unwrap_or_default();
        Ok(self.present(
            url,
            Some(&record),
            &items,
            &state,
            &starred,
            ListOptions::default(),
        ))
    }
}

/// Where a mark-read stops.
#[derive(Debug, Clone, Copy)]
enum Before {
    /// Up to this item id, included.
    Item(ItemId),
    /// Items first stored before this time.
    Date(DateTime<Utc>),
}

fn parse_before(raw: &str) -> Result<Before, ReaderError> {
    let raw = raw.trim();
    if let Ok(id) = raw.parse::<ItemId>() {
        return Ok(Before::Item(id));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|d| Before::Date(d.with_timezone(&Utc)))
        .map_err(|_| ReaderError::BadDate(raw.chars().take(60).collect()))
}

/// Items per feed a listing's buffer is sized for.
const LISTING_ITEM_GUESS: usize = 50;

/// Whether a cached feed has been fetched (else a listing fetches it).
fn fetched(feed: &CachedFeed) -> bool {
    feed.record
        .as_ref()
        .is_some_and(|r| r.last_fetched.is_some())
}

/// Appends `value`'s JSON. Our own types always encode.
fn write_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    if let Err(error) = serde_json::to_writer(&mut *out, value) {
        tracing::error!(%error, "a listing could not be encoded");
    }
}

/// Appends `head`, a feed view's JSON with no items, with `items` writing
/// them inside its `"items":[]`. That is the first `,"items":[` in it:
/// inside a JSON string every `"` is escaped, so the text cannot occur in
/// the URL or title before it.
fn splice_items(head: &[u8], out: &mut Vec<u8>, items: impl FnOnce(&mut Vec<u8>)) {
    const ITEMS: &[u8] = b",\"items\":[";
    match head.windows(ITEMS.len()).position(|w| w == ITEMS) {
        Some(at) => {
            let (before, after) = head.split_at(at + ITEMS.len());
            out.extend_from_slice(before);
            items(out);
            out.extend_from_slice(after);
        }
        // `FeedView` always has `items`; without it, the feed is shown empty.
        None => out.extend_from_slice(head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_go_inside_the_views_items_even_when_its_title_mentions_them() {
        let view = FeedView {
            url: "https://example.com/,\"items\":[].xml".into(),
            title: r#"A ,"items":[] title"#.into(),
            ..FeedView::default()
        };
        let mut out = Vec::new();
        splice_items(&serde_json::to_vec(&view).unwrap(), &mut out, |out| {
            out.extend_from_slice(br#"{"title":"x"},{"title":"y"}"#)
        });
        let spliced: FeedView = serde_json::from_slice(&out).unwrap();
        assert_eq!(spliced.title, view.title);
        assert_eq!(spliced.url, view.url);
        let titles: Vec<_> = spliced.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles, ["x", "y"]);
    }
}
