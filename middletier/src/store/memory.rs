//! The `memory` store: maps behind one lock. Fast, and gone when the
//! process stops; the default for a single middletier you are trying out.
//!
//! Its memory is the data itself: about the size of the items' text plus
//! ~200 bytes per item (measured in BENCHMARKS.md, "Stores": 10,000 feeds
//! of 50 items take ~0.6 GiB). Use the `file` store for more than a few
//! thousand feeds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::api::{Account, FeedUrl, UserId};

use super::ids::{IdGenerator, ItemId, now_ms};
use super::{
    FeedRecord, FeedUpdate, ReadState, StarredItem, StateEdits, Store, StoreError, StoredItem,
    Subscription,
};

/// Everything, in one process's memory.
#[derive(Debug)]
pub struct MemoryStore {
    /// The lock is never held across an `.await`.
    data: RwLock<Data>,
    ids: Mutex<IdGenerator>,
}

#[derive(Debug, Default)]
struct Data {
    /// Per user, subscriptions in the order added (a few hundred at most).
    users: HashMap<UserId, Vec<Subscription>>,
    subscribers: HashMap<FeedUrl, HashSet<UserId>>,
    feeds: HashMap<FeedUrl, FeedRecord>,
    /// Per feed, its items by id.
    items: HashMap<FeedUrl, BTreeMap<ItemId, StoredItem>>,
    /// Item id → its feed.
    item_feeds: HashMap<ItemId, FeedUrl>,
    read: HashMap<UserId, HashMap<FeedUrl, ReadState>>,
    starred: HashMap<UserId, BTreeMap<ItemId, StarredItem>>,
    accounts: BTreeMap<UserId, Account>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            data: RwLock::default(),
            ids: Mutex::new(IdGenerator::new(0, now_ms())),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Data> {
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Data> {
        self.data.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError> {
        Ok(self.read().users.get(user).cloned().unwrap_or_default())
    }

    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let mut data = self.write();
        let subscriptions = data.users.entry(user.clone()).or_default();
        if !subscriptions.iter().any(|s| &s.url == url) {
            subscriptions.push(Subscription {
                url: url.clone(),
                added_at: Utc::now(),
            });
        }
        data.subscribers
            .entry(url.clone())
            .or_default()
            .insert(user.clone());
        Ok(())
    }

    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let mut data = self.write();
        if let Some(subscriptions) = data.users.get_mut(user) {
            subscriptions.retain(|s| &s.url != url);
            if subscriptions.is_empty() {
                data.users.remove(user);
            }
        }
        if let Some(readers) = data.subscribers.get_mut(url) {
            readers.remove(user);
            if readers.is_empty() {
                data.subscribers.remove(url);
            }
        }
        if let Some(states) = data.read.get_mut(user) {
            states.remove(url);
        }
        Ok(())
    }

    async fn has_subscribers(&self, url: &FeedUrl) -> Result<bool, StoreError> {
        Ok(self.read().subscribers.contains_key(url))
    }

    async fn feed(&self, url: &FeedUrl) -> Result<Option<FeedRecord>, StoreError> {
        Ok(self.read().feeds.get(url).cloned())
    }

    async fn schedule(&self) -> Result<Vec<(FeedUrl, DateTime<Utc>)>, StoreError> {
        Ok(self
            .read()
            .feeds
            .values()
            .map(|f| (f.url.clone(), f.next_fetch))
            .collect())
    }

    async fn create_feed(&self, record: &FeedRecord) -> Result<(), StoreError> {
        self.write()
            .feeds
            .entry(record.url.clone())
            .or_insert_with(|| record.clone());
        Ok(())
    }

    async fn save_fetch(&self, update: &FeedUpdate) -> Result<(), StoreError> {
        let mut data = self.write();
        let url = &update.record.url;
        data.feeds.insert(url.clone(), update.record.clone());
        for item in &update.removals {
            data.item_feeds.remove(&item.id);
        }
        let items = data.items.entry(url.clone()).or_default();
        for item in &update.removals {
            items.remove(&item.id);
        }
        // One id per key: an item already stored under another id (another
        // refresh of the same feed stored it first) keeps that id.
        let mut indexed = Vec::new();
        for item in &update.upserts {
            let stored = items
                .iter()
                .find(|(_, old)| old.key == item.key)
                .map(|(id, _)| *id);
            let id = stored.unwrap_or(item.id);
            items.insert(id, StoredItem { id, ..item.clone() });
            indexed.push(id);
        }
        for id in indexed {
            data.item_feeds.insert(id, url.clone());
        }
        Ok(())
    }

    async fn delete_feed(&self, url: &FeedUrl) -> Result<(), StoreError> {
        let mut data = self.write();
        data.feeds.remove(url);
        if let Some(items) = data.items.remove(url) {
            for id in items.keys() {
                data.item_feeds.remove(id);
            }
        }
        Ok(())
    }

    async fn items(&self, url: &FeedUrl) -> Result<Vec<StoredItem>, StoreError> {
        Ok(self
            .read()
            .items
            .get(url)
            .map(|items| items.values().rev().map(StoredItem::summary).collect())
            .unwrap_or_default())
    }

    async fn items_before(
        &self,
        url: &FeedUrl,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<StoredItem>, StoreError> {
        Ok(self
            .read()
            .items
            .get(url)
            .map(|items| {
                items
                    .range(..before.unwrap_or(u64::MAX))
                    .rev()
                    .take(limit)
                    .map(|(_, item)| item.summary())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn item(&self, id: ItemId) -> Result<Option<(FeedUrl, StoredItem)>, StoreError> {
        let data = self.read();
        Ok(data.item_feeds.get(&id).and_then(|url| {
            let item = data.items.get(url)?.get(&id)?;
            Some((url.clone(), item.clone()))
        }))
    }

    async fn item_ids(&self, urls: &[FeedUrl]) -> Result<Vec<Vec<ItemId>>, StoreError> {
        let data = self.read();
        Ok(urls
            .iter()
            .map(|url| {
                data.items
                    .get(url)
                    .map(|items| items.keys().copied().collect())
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn items_by_ids(&self, ids: &[ItemId]) -> Result<Vec<(FeedUrl, StoredItem)>, StoreError> {
        let data = self.read();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let url = data.item_feeds.get(id)?;
                Some((url.clone(), data.items.get(url)?.get(id)?.clone()))
            })
            .collect())
    }

    async fn edit_states(&self, user: &UserId, edits: &StateEdits) -> Result<(), StoreError> {
        let mut data = self.write();
        let states = data.read.entry(user.clone()).or_default();
        for (feed, id, read) in &edits.read {
            let overrides = &mut states.entry(feed.clone()).or_default().overrides;
            match read {
                Some(read) => overrides.insert(*id, *read),
                None => overrides.remove(id),
            };
        }
        let mine = data.starred.entry(user.clone()).or_default();
        for item in &edits.star {
            mine.insert(item.item.id, item.clone());
        }
        for item in &edits.unstar {
            mine.remove(&item.item.id);
        }
        Ok(())
    }

    fn allocate_ids(&self, n: usize, after: ItemId) -> Result<Vec<ItemId>, StoreError> {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(super::ids::next_after(&mut ids, n, after))
    }

    async fn read_states(&self, user: &UserId) -> Result<HashMap<FeedUrl, ReadState>, StoreError> {
        Ok(self.read().read.get(user).cloned().unwrap_or_default())
    }

    async fn set_read_override(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        id: ItemId,
        read: Option<bool>,
    ) -> Result<(), StoreError> {
        let mut data = self.write();
        let state = data
            .read
            .entry(user.clone())
            .or_default()
            .entry(feed.clone())
            .or_default();
        match read {
            Some(read) => state.overrides.insert(id, read),
            None => state.overrides.remove(&id),
        };
        Ok(())
    }

    async fn mark_read_before(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        before: ItemId,
    ) -> Result<(), StoreError> {
        self.write()
            .read
            .entry(user.clone())
            .or_default()
            .entry(feed.clone())
            .or_default()
            .mark_read_before(before);
        Ok(())
    }

    async fn starred(&self, user: &UserId) -> Result<Vec<StarredItem>, StoreError> {
        Ok(self
            .read()
            .starred
            .get(user)
            .map(|items| items.values().rev().cloned().collect())
            .unwrap_or_default())
    }

    async fn set_starred(
        &self,
        user: &UserId,
        item: &StarredItem,
        starred: bool,
    ) -> Result<(), StoreError> {
        let mut data = self.write();
        let mine = data.starred.entry(user.clone()).or_default();
        if starred {
            mine.insert(item.item.id, item.clone());
        } else {
            mine.remove(&item.item.id);
        }
        Ok(())
    }

    async fn account(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(self.read().accounts.get(user).cloned())
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.read().accounts.values().cloned().collect())
    }

    async fn create_account(&self, account: &Account) -> Result<bool, StoreError> {
        let mut data = self.write();
        if data.accounts.contains_key(&account.user) {
            return Ok(false);
        }
        data.accounts.insert(account.user.clone(), account.clone());
        Ok(true)
    }

    async fn update_account(&self, account: &Account) -> Result<bool, StoreError> {
        Ok(match self.write().accounts.get_mut(&account.user) {
            Some(stored) => {
                *stored = account.clone();
                true
            }
            None => false,
        })
    }

    async fn delete_account(&self, user: &UserId) -> Result<(), StoreError> {
        self.write().accounts.remove(user);
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    crate::store::suite::behaves_like_a_store!(async { (super::MemoryStore::new(), ()) });
}
