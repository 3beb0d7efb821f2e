//! The file store's writer: one thread applies every change, in batches
//! (group commit). Each batch is one redb transaction, committed with
//! `Durability::Immediate`, and every write in it is acknowledged only
//! after the commit: a write the API acknowledged is on disk.

use std::collections::HashMap;
use std::sync::mpsc;

use common::api::{Account, FeedUrl, UserId};
use redb::{Database, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use crate::store::ids::{self, ItemId};
use crate::store::{FeedRecord, FeedUpdate, StarredItem, StoreError, StoredItem};

use super::{
    ACCOUNTS, DbError, FEEDS, HEALTH, IDS_HIGH_MS, ITEM_DETAILS, ITEM_FEEDS, ITEMS, MAX_BATCH,
    META, READ_MARKS, READ_OVERRIDES, STARRED, SUBSCRIBERS, SUBSCRIPTIONS,
};

/// A change, queued for the writer thread.
pub(super) enum Op {
    Add {
        user: UserId,
        url: FeedUrl,
        at_ms: i64,
    },
    Remove {
        user: UserId,
        url: FeedUrl,
    },
    CreateFeed(FeedRecord),
    SaveFetch(FeedUpdate),
    DeleteFeed(FeedUrl),
    ReadOverride {
        user: UserId,
        feed: FeedUrl,
        id: ItemId,
        read: Option<bool>,
    },
    MarkReadBefore {
        user: UserId,
        feed: FeedUrl,
        before: ItemId,
    },
    Star {
        user: UserId,
        item: StarredItem,
        starred: bool,
    },
    /// Stores an account: a new one only if the name is free
    /// (`only_new`), else only over an existing one.
    PutAccount {
        account: Account,
        only_new: bool,
    },
    DeleteAccount(UserId),
    /// Several writes in the one transaction (a sync's bulk edit).
    All(Vec<Op>),
    /// The health probe: a commit that changes nothing anyone reads.
    Probe {
        at_ms: i64,
    },
}

/// A write waiting for the writer thread, and where to say it is done.
pub(super) struct Pending {
    pub(super) op: Op,
    pub(super) done: oneshot::Sender<Result<(), StoreError>>,
}

/// The writer thread: batch, apply, commit, acknowledge; until the channel
/// closes.
pub(super) fn write_loop(db: &Database, queue: &mpsc::Receiver<Pending>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let result = apply(db, &batch).map_err(|e| {
            tracing::error!(error = %e, writes = batch.len(), "file store commit failed");
            StoreError::Unavailable(format!("the file store could not commit: {e}"))
        });
        metrics::histogram!("file_store_batch_size").record(batch.len() as f64);
        for pending in batch {
            let _ = pending.done.send(result.clone());
        }
    }
}

pub(super) fn apply(db: &Database, batch: &[Pending]) -> Result<(), DbError> {
    let txn = db.begin_write()?;
    for pending in batch {
        apply_one(&txn, &pending.op)?;
    }
    // Durability::Immediate (the default): on disk when this returns.
    txn.commit()?;
    Ok(())
}

pub(super) fn apply_one(txn: &WriteTransaction, op: &Op) -> Result<(), DbError> {
    match op {
        Op::All(ops) => {
            for op in ops {
                apply_one(txn, op)?;
            }
        }
        Op::Add { user, url, at_ms } => {
            let mut table = txn.open_table(SUBSCRIPTIONS)?;
            let key = (user.as_str(), url.as_str());
            // Adding twice keeps the first time, and so the place.
            if table.get(key)?.is_none() {
                table.insert(key, at_ms)?;
            }
            txn.open_table(SUBSCRIBERS)?
                .insert((url.as_str(), user.as_str()), ())?;
        }
        Op::Remove { user, url } => {
            let key = (user.as_str(), url.as_str());
            txn.open_table(SUBSCRIPTIONS)?.remove(key)?;
            txn.open_table(SUBSCRIBERS)?
                .remove((url.as_str(), user.as_str()))?;
            txn.open_table(READ_MARKS)?.remove(key)?;
            txn.open_table(READ_OVERRIDES)?.retain_in(
                (user.as_str(), url.as_str(), 0)..=(user.as_str(), url.as_str(), u64::MAX),
                |_, _| false,
            )?;
        }
        Op::CreateFeed(record) => {
            let mut feeds = txn.open_table(FEEDS)?;
            if feeds.get(record.url.as_str())?.is_none() {
                let value = serde_json::to_vec(record)?;
                feeds.insert(record.url.as_str(), value.as_slice())?;
            }
        }
        Op::SaveFetch(update) => save_fetch(txn, update)?,
        Op::DeleteFeed(url) => {
            let url = url.as_str();
            txn.open_table(FEEDS)?.remove(url)?;
            let mut items = txn.open_table(ITEMS)?;
            let ids = items
                .range((url, 0)..=(url, u64::MAX))?
                .map(|row| row.map(|(key, _)| key.value().1))
                .collect::<Result<Vec<u64>, _>>()?;
            let mut index = txn.open_table(ITEM_FEEDS)?;
            let mut details = txn.open_table(ITEM_DETAILS)?;
            for id in ids {
                items.remove((url, id))?;
                index.remove(id)?;
                details.remove(id)?;
            }
        }
        Op::ReadOverride {
            user,
            feed,
            id,
            read,
        } => {
            let mut table = txn.open_table(READ_OVERRIDES)?;
            let key = (user.as_str(), feed.as_str(), *id);
            match read {
                Some(read) => table.insert(key, read).map(drop),
                None => table.remove(key).map(drop),
            }?;
        }
        Op::MarkReadBefore { user, feed, before } => {
            let key = (user.as_str(), feed.as_str());
            let mut marks = txn.open_table(READ_MARKS)?;
            let current = marks.get(key)?.map_or(0, |v| v.value());
            marks.insert(key, current.max(*before))?;
            if *before > 0 {
                txn.open_table(READ_OVERRIDES)?.retain_in(
                    (user.as_str(), feed.as_str(), 0)..(user.as_str(), feed.as_str(), *before),
                    |_, _| false,
                )?;
            }
        }
        Op::Star {
            user,
            item,
            starred,
        } => {
            let mut table = txn.open_table(STARRED)?;
            let key = (user.as_str(), item.item.id);
            if *starred {
                let value = serde_json::to_vec(item)?;
                table.insert(key, value.as_slice()).map(drop)
            } else {
                table.remove(key).map(drop)
            }?;
        }
        Op::PutAccount { account, only_new } => {
            let mut table = txn.open_table(ACCOUNTS)?;
            let key = account.user.as_str();
            let exists = table.get(key)?.is_some();
            if exists != *only_new {
                let value = serde_json::to_vec(account)?;
                table.insert(key, value.as_slice())?;
            }
        }
        Op::DeleteAccount(user) => {
            txn.open_table(ACCOUNTS)?.remove(user.as_str())?;
        }
        Op::Probe { at_ms } => {
            txn.open_table(HEALTH)?.insert("probe", at_ms)?;
        }
    }
    Ok(())
}

pub(super) fn save_fetch(txn: &WriteTransaction, update: &FeedUpdate) -> Result<(), DbError> {
    let url = update.record.url.as_str();
    let record = serde_json::to_vec(&update.record)?;
    txn.open_table(FEEDS)?.insert(url, record.as_slice())?;
    let mut items = txn.open_table(ITEMS)?;
    let mut index = txn.open_table(ITEM_FEEDS)?;
    let mut details = txn.open_table(ITEM_DETAILS)?;
    // Upserts match by key, and one key has one id: an item already stored
    // under another id (another refresh of the same feed stored it first)
    // keeps that id.
    let mut ids_by_key: HashMap<String, u64> = HashMap::new();
    if !update.upserts.is_empty() {
        for row in items.range((url, 0)..=(url, u64::MAX))? {
            let (key, value) = row?;
            if let Ok(item) = serde_json::from_slice::<StoredItem>(value.value()) {
                ids_by_key.insert(item.key, key.value().1);
            }
        }
    }
    for item in &update.removals {
        items.remove((url, item.id))?;
        index.remove(item.id)?;
        details.remove(item.id)?;
    }
    let mut high_id = 0;
    for item in &update.upserts {
        let id = ids_by_key.get(&item.key).copied().unwrap_or(item.id);
        let value = serde_json::to_vec(&StoredItem {
            id,
            ..item.summary()
        })?;
        items.insert((url, id), value.as_slice())?;
        match &item.details {
            Some(more) => details.insert(id, serde_json::to_vec(more)?.as_slice())?,
            None => details.remove(id)?,
        };
        index.insert(id, url)?;
        high_id = high_id.max(id);
    }
    if high_id > 0 {
        let high_ms = u64::try_from(ids::stored_at(high_id).timestamp_millis()).unwrap_or(0);
        let mut meta = txn.open_table(META)?;
        let current = meta.get(IDS_HIGH_MS)?.map_or(0, |v| v.value());
        if high_ms > current {
            meta.insert(IDS_HIGH_MS, high_ms)?;
        }
    }
    Ok(())
}
