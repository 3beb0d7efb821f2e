//! Sync: what a Google Reader client asks for, in bulk (see
//! [`common::sync`]).
//!
//! Each call reads each kind of data once (the subscriptions, the read
//! state, the stars, and the items' ids or the items), whatever the number
//! of ids; a bulk edit is one [`crate::store::Store::edit_states`]. Item ids
//! grow with the time an item was first stored, so a client's crawl-time
//! bounds and continuations are id bounds, and paging is a filter on ids,
//! stable while items arrive.

use std::collections::{HashMap, HashSet};

use common::api::{Article, FeedUrl, UserId};
use common::sync::{
    Edit, Edited, Ids, IdsQuery, ItemRef, Items, MAX_IDS, MAX_ITEMS, SyncFeed, SyncFeeds,
    feed_number,
};

use crate::store::{
    FeedRecord, ItemId, ReadState, StarredItem, StateEdits, StoreError, Subscription,
};

use super::articles::article_of;
use super::{Reader, ReaderError, feed_title};
use crate::feeds::web_url;

impl Reader {
    /// `sync/ids`: the ids a stream holds, in the order asked.
    pub(crate) async fn sync_ids(
        &self,
        user: &UserId,
        query: &IdsQuery,
    ) -> Result<Ids, ReaderError> {
        check_limit(query.limit, MAX_IDS)?;
        let (refs, more) = self.select(user, query).await?;
        Ok(Ids {
            refs: refs
                .into_iter()
                .map(|(feed, id)| ItemRef {
                    id: common::api::ItemId::new(id),
                    feed: feed.to_string(),
                })
                .collect(),
            more,
        })
    }

    /// `sync/contents`: the items a stream holds, whole.
    pub(crate) async fn sync_contents(
        &self,
        user: &UserId,
        query: &IdsQuery,
    ) -> Result<Items, ReaderError> {
        check_limit(query.limit, MAX_ITEMS)?;
        let (refs, more) = self.select(user, query).await?;
        let ids: Vec<ItemId> = refs.into_iter().map(|(_, id)| id).collect();
        let items = self.articles(user, &ids).await?;
        Ok(Items { items, more })
    }

    /// `sync/items`: items by id, whole, in the order asked.
    pub(crate) async fn sync_items(
        &self,
        user: &UserId,
        ids: &[common::api::ItemId],
    ) -> Result<Items, ReaderError> {
        check_limit(ids.len().max(1), MAX_ITEMS)?;
        let ids: Vec<ItemId> = ids.iter().map(|id| id.get()).collect();
        Ok(Items {
            items: self.articles(user, &ids).await?,
            more: false,
        })
    }

    /// `sync/feeds`: each subscription with its unread count and newest
    /// item, from ids alone.
    pub(crate) async fn sync_feeds(&self, user: &UserId) -> Result<SyncFeeds, ReaderError> {
        let urls = self.subscription_urls(user).await?;
        let (states, ids, records) = tokio::try_join!(
            self.store.read_states(user),
            self.store.item_ids(&urls),
            self.records(&urls),
        )?;
        let feeds = urls
            .iter()
            .zip(ids)
            .zip(records)
            .map(|((url, ids), record)| SyncFeed {
                url: url.to_string(),
                title: feed_title(url, record.as_ref()),
                site_url: record
                    .as_ref()
                    .and_then(|r| r.site_url.as_deref())
                    .and_then(web_url),
                unread: states
                    .get(url)
                    .map_or(ids.len(), |state| state.unread(ids.iter().copied())),
                newest: ids.last().map(|id| common::api::ItemId::new(*id)),
            })
            .collect();
        Ok(SyncFeeds { feeds })
    }

    /// `sync/edit`: marks many items read or unread, starred or not, in one
    /// store write. Ids of no item of the user's are counted, not refused:
    /// a client syncing after items expired must not fail for it.
    pub(crate) async fn sync_edit(
        &self,
        user: &UserId,
        edit: &Edit,
    ) -> Result<Edited, ReaderError> {
        if edit.read.is_none() && edit.starred.is_none() {
            return Err(ReaderError::NothingToChange);
        }
        check_limit(edit.ids.len().max(1), MAX_IDS)?;
        let ids: Vec<ItemId> = edit.ids.iter().map(|id| id.get()).collect();
        let (subscribed, mut states, starred, found) = tokio::try_join!(
            self.subscribed(user),
            self.store.read_states(user),
            self.store.starred(user),
            self.store.items_by_ids(&ids),
        )?;
        let located = locate_all(&ids, &subscribed, &starred, found);
        let starred_ids: HashSet<ItemId> = starred.iter().map(|s| s.item.id).collect();
        let mut edits = StateEdits::default();
        let mut touched: HashSet<FeedUrl> = HashSet::new();
        let mut changed: HashSet<ItemId> = HashSet::new();
        for (feed, item) in located.values() {
            if let Some(read) = edit.read {
                let state = states.entry(feed.clone()).or_default();
                if state.is_read(item.id) != read {
                    edits
                        .read
                        .push((feed.clone(), item.id, state.mark(item.id, read)));
                    touched.insert(feed.clone());
                    changed.insert(item.id);
                }
            }
            let copy = || StarredItem {
                feed: feed.clone(),
                item: item.clone(),
            };
            match edit.starred {
                Some(true) if !starred_ids.contains(&item.id) => edits.star.push(copy()),
                Some(false) if starred_ids.contains(&item.id) => edits.unstar.push(copy()),
                _ => continue,
            }
            changed.insert(item.id);
        }
        if starred_ids.len() + edits.star.len() > self.settings.max_starred {
            return Err(ReaderError::TooManyStarred(self.settings.max_starred));
        }
        let changed = changed.len();
        self.prune_in(&touched, &states, &mut edits).await?;
        if !edits.is_empty() {
            self.store.edit_states(user, &edits).await?;
        }
        Ok(Edited {
            changed,
            unknown: ids.len() - located.len(),
        })
    }

    /// Adds to `edits` the removal of overrides for items no longer stored,
    /// in feeds with more overrides than items kept (as one item's change
    /// does, see `prune_overrides`), so a sync app marking every item
    /// read one by one never grows the read state for ever.
    async fn prune_in(
        &self,
        feeds: &HashSet<FeedUrl>,
        states: &HashMap<FeedUrl, ReadState>,
        edits: &mut StateEdits,
    ) -> Result<(), StoreError> {
        let keep = self.refresher.settings().retention.keep;
        let crowded: Vec<FeedUrl> = feeds
            .iter()
            .filter(|feed| states.get(*feed).is_some_and(|s| s.overrides.len() > keep))
            .cloned()
            .collect();
        if crowded.is_empty() {
            return Ok(());
        }
        let stored = self.store.item_ids(&crowded).await?;
        for (feed, ids) in crowded.iter().zip(stored) {
            let ids: HashSet<ItemId> = ids.into_iter().collect();
            let stale = states[feed].overrides.keys().filter(|id| !ids.contains(id));
            edits.read.extend(stale.map(|id| (feed.clone(), *id, None)));
        }
        Ok(())
    }

    /// The (feed, id) pairs a query selects, in its order, and whether
    /// more follow.
    async fn select(
        &self,
        user: &UserId,
        query: &IdsQuery,
    ) -> Result<(Vec<(FeedUrl, ItemId)>, bool), ReaderError> {
        let subscriptions = self.store.list(user).await?;
        let feeds = match &query.feed {
            Some(feed) => vec![resolve(feed, &subscriptions)?],
            None => subscriptions.into_iter().map(|s| s.url).collect(),
        };
        let feed_ids = async {
            if query.starred_stream {
                Ok(Vec::new())
            } else {
                self.store.item_ids(&feeds).await
            }
        };
        let (states, starred, feed_ids) = tokio::try_join!(
            self.store.read_states(user),
            self.store.starred(user),
            feed_ids,
        )?;
        let starred_ids: HashSet<ItemId> = starred.iter().map(|s| s.item.id).collect();
        let candidates: Vec<(&FeedUrl, ItemId)> = if query.starred_stream {
            starred
                .iter()
                .filter(|s| query.feed.is_none() || feeds.contains(&s.feed))
                .map(|s| (&s.feed, s.item.id))
                .collect()
        } else {
            feeds
                .iter()
                .zip(&feed_ids)
                .flat_map(|(feed, ids)| ids.iter().map(move |id| (feed, *id)))
                .collect()
        };
        let unmarked = ReadState::default();
        let after = query.after.map_or(0, |id| id.get());
        let before = query.before.map_or(ItemId::MAX, |id| id.get());
        let mut selected: Vec<(&FeedUrl, ItemId)> = candidates
            .into_iter()
            .filter(|&(feed, id)| {
                let read = states.get(feed).unwrap_or(&unmarked).is_read(id);
                id > after
                    && id < before
                    && query.read.is_none_or(|want| want == read)
                    && query
                        .starred
                        .is_none_or(|want| want == starred_ids.contains(&id))
            })
            .collect();
        if query.oldest_first {
            selected.sort_unstable_by_key(|&(_, id)| id);
        } else {
            selected.sort_unstable_by_key(|&(_, id)| std::cmp::Reverse(id));
        }
        let more = selected.len() > query.limit;
        selected.truncate(query.limit);
        Ok((
            selected
                .into_iter()
                .map(|(feed, id)| (feed.clone(), id))
                .collect(),
            more,
        ))
    }

    /// Items by id, whole, with the user's state, in the order of `ids`.
    async fn articles(&self, user: &UserId, ids: &[ItemId]) -> Result<Vec<Article>, ReaderError> {
        let (subscribed, states, starred, found) = tokio::try_join!(
            self.subscribed(user),
            self.store.read_states(user),
            self.store.starred(user),
            self.store.items_by_ids(ids),
        )?;
        let located = locate_all(ids, &subscribed, &starred, found);
        let feeds: Vec<FeedUrl> = located
            .values()
            .map(|(feed, _)| feed.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let records: HashMap<FeedUrl, Option<FeedRecord>> = feeds
            .iter()
            .cloned()
            .zip(self.records(&feeds).await?)
            .collect();
        let starred_ids: HashSet<ItemId> = starred.iter().map(|s| s.item.id).collect();
        let unmarked = ReadState::default();
        Ok(ids
            .iter()
            .filter_map(|id| located.get(id))
            .map(|(feed, item)| {
                let read = states.get(feed).unwrap_or(&unmarked).is_read(item.id);
                let record = records.get(feed).and_then(Option::as_ref);
                article_of(feed, record, item, read, starred_ids.contains(&item.id))
            })
            .collect())
    }
}

/// The items of `ids` that are the user's: in a subscribed feed, else a
/// starred copy (a starred item may have left its feed).
fn locate_all(
    ids: &[ItemId],
    subscribed: &HashSet<FeedUrl>,
    starred: &[StarredItem],
    found: Vec<(FeedUrl, crate::store::StoredItem)>,
) -> HashMap<ItemId, (FeedUrl, crate::store::StoredItem)> {
    let mut located: HashMap<ItemId, (FeedUrl, crate::store::StoredItem)> = found
        .into_iter()
        .filter(|(feed, _)| subscribed.contains(feed))
        .map(|(feed, item)| (item.id, (feed, item)))
        .collect();
    let wanted: HashSet<ItemId> = ids.iter().copied().collect();
    for star in starred {
        if wanted.contains(&star.item.id) && !located.contains_key(&star.item.id) {
            located.insert(star.item.id, (star.feed.clone(), star.item.clone()));
        }
    }
    located
}

/// The subscription `feed` names: its number or its URL.
fn resolve(feed: &str, subscriptions: &[Subscription]) -> Result<FeedUrl, ReaderError> {
    let number = feed.parse::<u64>().ok();
    let url = FeedUrl::parse(feed).ok();
    subscriptions
        .iter()
        .find(|s| match number {
            Some(n) => feed_number(s.url.as_str()) == n,
            None => Some(&s.url) == url.as_ref(),
        })
        .map(|s| s.url.clone())
        .ok_or_else(|| ReaderError::NotSubscribed(feed.chars().take(200).collect()))
}

fn check_limit(n: usize, max: usize) -> Result<(), ReaderError> {
    if (1..=max).contains(&n) {
        Ok(())
    } else {
        Err(ReaderError::TooManyIds { asked: n, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_feed_is_named_by_its_number_or_its_url() {
        let url = FeedUrl::parse("https://a.example/feed").unwrap();
        let subscriptions = [Subscription {
            url: url.clone(),
            added_at: Utc::now(),
        }];
        let number = feed_number(url.as_str()).to_string();
        assert_eq!(resolve(&number, &subscriptions).unwrap(), url);
        assert_eq!(
            resolve("https://a.example/feed", &subscriptions).unwrap(),
            url
        );
        assert!(matches!(
            resolve("12", &subscriptions),
            Err(ReaderError::NotSubscribed(_))
        ));
        assert!(resolve("https://b.example/feed", &subscriptions).is_err());
    }

    #[test]
    fn limits_are_one_to_the_maximum() {
        assert!(check_limit(1, 10).is_ok() && check_limit(10, 10).is_ok());
        assert!(check_limit(0, 10).is_err() && check_limit(11, 10).is_err());
    }
}
