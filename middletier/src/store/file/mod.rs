//! The `file` store: subscriptions in an embedded database in `--data-dir`.
//!
//! **Why redb.** It is a pure-Rust, well-maintained, ACID key-value store
//! with copy-on-write B-trees and checksummed commits: a commit with the
//! default durability is on disk when `commit()` returns, and a crash at
//! any point leaves the last committed state (no repair step, no WAL to
//! replay). No C library to build (unlike RocksDB or SQLite), one file,
//! and it is fast enough for this job with room to spare (BENCHMARKS.md).
//!
//! **Durable acknowledgements, with group commit.** Every write goes to one
//! writer thread, which takes all the writes waiting at that moment, applies
//! them in one transaction and commits it (one fsync), and only then tells
//! each caller "done". A write is acknowledged only once it is on disk, and
//! under load many writes share one fsync instead of queueing for their own.
//!
//! **Health tells the truth about writes.** A full or read-only disk lets
//! reads go on while every commit fails, so `check` (the healthcheck)
//! commits a small probe through the same writer, at most once a second,
//! and reports the store unavailable when it fails. (redb refuses further
//! work after an I/O error until the database is reopened: once the disk
//! is fixed, restart the middletier.)
//!
//! **One process per directory.** `LOCK` in the directory is held
//! exclusively for the store's lifetime (the OS releases it if the process
//! dies), so a second middletier on the same directory stops at start with
//! a message saying so.
//!
//! **Layout** (redb tables; values are JSON where they are records):
//!
//! | table | key → value | serves |
//! |---|---|---|
//! | `subscriptions` | (user, feed URL) → first subscribed, ms | a user's list: one key range |
//! | `subscribers` | (feed URL, user) → () | does anyone still read a feed? |
//! | `feeds` | feed URL → [`FeedRecord`] | fetch state; the scheduler's scan |
//! | `items` | (feed URL, item id) → [`StoredItem`] summary | a feed's items: one key range |
//! | `item_details` | item id → [`super::ItemDetails`] | one article's content, author, enclosures, categories |
//! | `item_feeds` | item id → feed URL | `PUT .../items/{id}` |
//! | `read_marks` | (user, feed URL) → watermark id | a user's read state |
//! | `read_overrides` | (user, feed URL, item id) → read | likewise |
//! | `starred` | (user, item id) → [`StarredItem`] | a user's starred items |
//! | `accounts` | user → [`Account`] | signing in; the admin's list: one table |
//! | `meta` | name → number | the last item id's time, so ids never repeat after a restart |
//!
//! **Memory.** redb caches pages it reads; the cache is capped
//! (`--file-store-cache`, default 64 MiB) so a large store does not grow
//! the process (redb's own default is 1 GiB).

mod migrate;
mod writer;

use migrate::fold_user_case;
use writer::{Op, Pending, write_loop};

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::api::{Account, FeedUrl, UserId};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::ids::{self, IdGenerator, ItemId};
use super::{
    FeedRecord, FeedUpdate, ReadState, StarredItem, StateEdits, Store, StoreError, StoredItem,
    Subscription, sort_oldest_first,
};

const SUBSCRIPTIONS: TableDefinition<(&str, &str), i64> = TableDefinition::new("subscriptions");
const SUBSCRIBERS: TableDefinition<(&str, &str), ()> = TableDefinition::new("subscribers");
const FEEDS: TableDefinition<&str, &[u8]> = TableDefinition::new("feeds");
const ITEMS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("items");
const ITEM_FEEDS: TableDefinition<u64, &str> = TableDefinition::new("item_feeds");
/// An item's details (content, author, enclosures, categories), apart from
/// its summary in `items`, so listings never read them.
const ITEM_DETAILS: TableDefinition<u64, &[u8]> = TableDefinition::new("item_details");
const READ_MARKS: TableDefinition<(&str, &str), u64> = TableDefinition::new("read_marks");
const READ_OVERRIDES: TableDefinition<(&str, &str, u64), bool> =
    TableDefinition::new("read_overrides");
const STARRED: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("starred");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// One row, rewritten by each health probe: proof that a commit works.
const HEALTH: TableDefinition<&str, i64> = TableDefinition::new("health");
/// `meta` key: the time (ms) of the newest item id stored.
const IDS_HIGH_MS: &str = "ids_high_ms";
/// `meta` key: set once user ids saved in mixed case have been folded.
const USER_CASE_FOLDED: &str = "user_case_folded";
/// How long a probe's verdict stands before `check` commits another.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Writes applied in one transaction at most; bounds a commit's size.
const MAX_BATCH: usize = 1024;
/// The default page cache.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Why the file store could not open. Shown at start, so it says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "cannot use {dir} as the data directory: {source}; choose a writable directory with --data-dir / RSS_DATA_DIR"
    )]
    /// The directory cannot be created or written.
    Directory {
        /// The directory.
        dir: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    #[error(
        "the data directory {0} is in use by another middletier (it holds {0}/LOCK); stop that process, or give this one its own --data-dir / RSS_DATA_DIR"
    )]
    /// Another process holds the directory's lock.
    Locked(PathBuf),
    /// The database file cannot be opened.
    #[error("cannot open the database in {dir}: {source}")]
    Database {
        /// The data directory.
        dir: PathBuf,
        /// What redb said.
        source: redb::Error,
    },
}

/// The file store (see the module docs).
pub struct FileStore {
    db: Arc<Database>,
    dir: PathBuf,
    /// Writes go to the writer thread through this channel; dropping it
    /// lets the thread finish what is queued and end.
    writes: Mutex<Option<mpsc::Sender<Pending>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    ids: Mutex<IdGenerator>,
    /// The last probe: when, and whether its commit worked.
    last_probe: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), StoreError>)>>,
    /// Held (locked) for as long as the store exists.
    _lock: File,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (or creates) the store in `dir`, with the default page cache.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store in `dir`, caching at most
    /// `cache_bytes` of pages.
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, OpenError> {
        Self::open_with(dir, |path| {
            Database::builder().set_cache_size(cache_bytes).create(path)
        })
    }

    /// Opens the store in `dir` with the database `create` makes from the
    /// database's path (tests substitute a storage backend).
    fn open_with(
        dir: &Path,
        create: impl FnOnce(&Path) -> Result<Database, redb::DatabaseError>,
    ) -> Result<Self, OpenError> {
        let directory_error = |source| OpenError::Directory {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(directory_error)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(directory_error)?;
        match fs4::FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => return Err(OpenError::Locked(dir.to_owned())),
            Err(fs4::TryLockError::Error(e)) => return Err(directory_error(e)),
        }
        let db = create(&dir.join("subscriptions.redb")).map_err(|e| OpenError::Database {
            dir: dir.to_owned(),
            source: e.into(),
        })?;
        // Create the tables up front, so readers never find them missing,
        // and read where item ids left off.
        let init = || -> Result<u64, redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(SUBSCRIPTIONS)?;
            txn.open_table(SUBSCRIBERS)?;
            txn.open_table(FEEDS)?;
            txn.open_table(ITEMS)?;
            txn.open_table(ITEM_FEEDS)?;
            txn.open_table(ITEM_DETAILS)?;
            txn.open_table(READ_MARKS)?;
            txn.open_table(READ_OVERRIDES)?;
            txn.open_table(STARRED)?;
            txn.open_table(HEALTH)?;
            txn.open_table(ACCOUNTS)?;
            fold_user_case(&txn)?;
            let high_ms = txn
                .open_table(META)?
                .get(IDS_HIGH_MS)?
                .map_or(0, |v| v.value());
            txn.commit()?;
            Ok(high_ms)
        };
        let high_ms = init().map_err(|source| OpenError::Database {
            dir: dir.to_owned(),
            source,
        })?;
        let db = Arc::new(db);
        let (writes, queue) = mpsc::channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("file-store-writer".into())
            .spawn(move || write_loop(&writer_db, &queue))
            .map_err(directory_error)?;
        tracing::info!(dir = %dir.display(), "file store open");
        Ok(Self {
            db,
            dir: dir.to_owned(),
            writes: Mutex::new(Some(writes)),
            writer: Mutex::new(Some(writer)),
            // Only this process uses the directory (LOCK): worker 0, after
            // the last id stored.
            ids: Mutex::new(IdGenerator::new(0, high_ms + 1)),
            last_probe: tokio::sync::Mutex::new(None),
            _lock: lock,
        })
    }

    async fn write(&self, op: Op) -> Result<(), StoreError> {
        let (done, acknowledged) = oneshot::channel();
        let sent = self
            .writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|writes| writes.send(Pending { op, done }).is_ok());
        if !sent {
            return Err(StoreError::Unavailable("the file store is closed".into()));
        }
        acknowledged.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the file store's writer stopped".into(),
            ))
        })
    }

    /// Runs `read` on a read transaction, off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read()?;
            read(&txn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(|e| StoreError::Unavailable(format!("the file store could not be read: {e}")))
    }
}

/// A read or a commit failed: in redb, or a record would not encode or
/// decode.
#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error(transparent)]
    Db(#[from] redb::Error),
    #[error("a stored record does not encode or decode: {0}")]
    Codec(#[from] serde_json::Error),
}

/// redb has an error type per step; `?` takes any of them.
macro_rules! from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for DbError {
            fn from(e: $error) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

/// The first and last key of a string-keyed prefix: every `(prefix, _)`
/// falls in `[(prefix, ""), (prefix + "\0", ""))`, since no key part
/// (user ids, URLs) contains NUL.
fn after(prefix: &str) -> String {
    format!("{prefix}\0")
}

fn list(txn: &redb::ReadTransaction, user: &UserId) -> Result<Vec<Subscription>, DbError> {
    let table = txn.open_table(SUBSCRIPTIONS)?;
    let upper = after(user.as_str());
    let mut subscriptions = Vec::new();
    for row in table.range((user.as_str(), "")..(upper.as_str(), ""))? {
        let (key, added_at) = row?;
        let (_, url) = key.value();
        match FeedUrl::parse(url) {
            Ok(url) => subscriptions.push(Subscription {
                url,
                added_at: DateTime::<Utc>::from_timestamp_millis(added_at.value())
                    .unwrap_or_default(),
            }),
            Err(e) => {
                tracing::warn!(user = %user, url, error = %e, "skipping an unreadable stored URL")
            }
        }
    }
    sort_oldest_first(&mut subscriptions);
    Ok(subscriptions)
}

/// Every record under `prefix` in a table keyed `(prefix, id)`, decoded,
/// highest id (the newest) first: a feed's items, a user's stars.
fn newest_first<T: serde::de::DeserializeOwned>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<(&str, u64), &[u8]>,
    prefix: &str,
) -> Result<Vec<T>, DbError> {
    let table = txn.open_table(table)?;
    table
        .range((prefix, 0)..=(prefix, u64::MAX))?
        .rev()
        .map(|row| {
            let (_, value) = row?;
            Ok(serde_json::from_slice(value.value())?)
        })
        .collect()
}

#[async_trait]
impl Store for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError> {
        let user = user.clone();
        self.read(move |txn| list(txn, &user)).await
    }

    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        self.write(Op::Add {
            user: user.clone(),
            url: url.clone(),
            at_ms: Utc::now().timestamp_millis(),
        })
        .await
    }

    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        self.write(Op::Remove {
            user: user.clone(),
            url: url.clone(),
        })
        .await
    }

    async fn has_subscribers(&self, url: &FeedUrl) -> Result<bool, StoreError> {
        let url = url.as_str().to_owned();
        self.read(move |txn| {
            let table = txn.open_table(SUBSCRIBERS)?;
            let upper = after(&url);
            Ok(table
                .range((url.as_str(), "")..(upper.as_str(), ""))?
                .next()
                .is_some())
        })
        .await
    }

    async fn feed(&self, url: &FeedUrl) -> Result<Option<FeedRecord>, StoreError> {
        let url = url.as_str().to_owned();
        self.read(move |txn| {
            let table = txn.open_table(FEEDS)?;
            let record = table.get(url.as_str())?;
            Ok(record
                .map(|value| serde_json::from_slice(value.value()))
                .transpose()?)
        })
        .await
    }

    async fn schedule(&self) -> Result<Vec<(FeedUrl, DateTime<Utc>)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(FEEDS)?;
            let mut due = Vec::new();
            for row in table.iter()? {
                let (_, value) = row?;
                match serde_json::from_slice::<FeedRecord>(value.value()) {
                    Ok(record) => due.push((record.url, record.next_fetch)),
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable feed record"),
                }
            }
            Ok(due)
        })
        .await
    }

    async fn create_feed(&self, record: &FeedRecord) -> Result<(), StoreError> {
        self.write(Op::CreateFeed(record.clone())).await
    }

    async fn save_fetch(&self, update: &FeedUpdate) -> Result<(), StoreError> {
        self.write(Op::SaveFetch(update.clone())).await
    }

    async fn delete_feed(&self, url: &FeedUrl) -> Result<(), StoreError> {
        self.write(Op::DeleteFeed(url.clone())).await
    }

    async fn items(&self, url: &FeedUrl) -> Result<Vec<StoredItem>, StoreError> {
        let url = url.as_str().to_owned();
        self.read(move |txn| newest_first(txn, ITEMS, &url)).await
    }

    async fn items_before(
        &self,
        url: &FeedUrl,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<StoredItem>, StoreError> {
        let url = url.as_str().to_owned();
        self.read(move |txn| {
            let table = txn.open_table(ITEMS)?;
            let end = before.unwrap_or(u64::MAX);
            table
                .range((url.as_str(), 0)..(url.as_str(), end))?
                .rev()
                .take(limit)
                .map(|row| {
                    let (_, value) = row?;
                    Ok(serde_json::from_slice(value.value())?)
                })
                .collect()
        })
        .await
    }

    async fn item(&self, id: ItemId) -> Result<Option<(FeedUrl, StoredItem)>, StoreError> {
        self.read(move |txn| {
            let Some(url) = txn
                .open_table(ITEM_FEEDS)?
                .get(id)?
                .map(|v| v.value().to_owned())
            else {
                return Ok(None);
            };
            let Some(value) = txn.open_table(ITEMS)?.get((url.as_str(), id))? else {
                return Ok(None);
            };
            let mut item: StoredItem = serde_json::from_slice(value.value())?;
            if let Some(details) = txn.open_table(ITEM_DETAILS)?.get(id)? {
                item.details = Some(serde_json::from_slice(details.value())?);
            }
            Ok(FeedUrl::parse(&url).ok().map(|url| (url, item)))
        })
        .await
    }

    async fn item_ids(&self, urls: &[FeedUrl]) -> Result<Vec<Vec<ItemId>>, StoreError> {
        let urls: Vec<String> = urls.iter().map(|u| u.as_str().to_owned()).collect();
        self.read(move |txn| {
            let table = txn.open_table(ITEMS)?;
            urls.iter()
                .map(|url| {
                    // Keys only: no item record is decoded.
                    table
                        .range((url.as_str(), 0)..=(url.as_str(), u64::MAX))?
                        .map(|row| Ok(row?.0.value().1))
                        .collect()
                })
                .collect()
        })
        .await
    }

    async fn items_by_ids(&self, ids: &[ItemId]) -> Result<Vec<(FeedUrl, StoredItem)>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |txn| {
            let (index, items, details) = (
                txn.open_table(ITEM_FEEDS)?,
                txn.open_table(ITEMS)?,
                txn.open_table(ITEM_DETAILS)?,
            );
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let Some(url) = index.get(id)?.map(|v| v.value().to_owned()) else {
                    continue;
                };
                let Some(value) = items.get((url.as_str(), id))? else {
                    continue;
                };
                let mut item: StoredItem = serde_json::from_slice(value.value())?;
                if let Some(stored) = details.get(id)? {
                    item.details = Some(serde_json::from_slice(stored.value())?);
                }
                if let Ok(url) = FeedUrl::parse(&url) {
                    found.push((url, item));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn edit_states(&self, user: &UserId, edits: &StateEdits) -> Result<(), StoreError> {
        let reads = edits.read.iter().map(|(feed, id, read)| Op::ReadOverride {
            user: user.clone(),
            feed: feed.clone(),
            id: *id,
            read: *read,
        });
        let stars = (edits.star.iter().map(|item| (item, true)))
            .chain(edits.unstar.iter().map(|item| (item, false)))
            .map(|(item, starred)| Op::Star {
                user: user.clone(),
                item: item.clone(),
                starred,
            });
        // One transaction, one commit, whatever the number of changes.
        self.write(Op::All(reads.chain(stars).collect())).await
    }

    fn allocate_ids(&self, n: usize, after: ItemId) -> Result<Vec<ItemId>, StoreError> {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(ids::next_after(&mut ids, n, after))
    }

    async fn read_states(&self, user: &UserId) -> Result<HashMap<FeedUrl, ReadState>, StoreError> {
        let user = user.as_str().to_owned();
        self.read(move |txn| {
            let upper = after(&user);
            let mut states: HashMap<String, ReadState> = HashMap::new();
            let marks = txn.open_table(READ_MARKS)?;
            for row in marks.range((user.as_str(), "")..(upper.as_str(), ""))? {
                let (key, before) = row?;
                states
                    .entry(key.value().1.to_owned())
                    .or_default()
                    .read_before = before.value();
            }
            let overrides = txn.open_table(READ_OVERRIDES)?;
            for row in overrides.range((user.as_str(), "", 0)..(upper.as_str(), "", 0))? {
                let (key, read) = row?;
                let (_, feed, id) = key.value();
                states
                    .entry(feed.to_owned())
                    .or_default()
                    .overrides
                    .insert(id, read.value());
            }
            Ok(states
                .into_iter()
                .filter_map(|(url, state)| Some((FeedUrl::parse(&url).ok()?, state)))
                .collect())
        })
        .await
    }

    async fn set_read_override(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        id: ItemId,
        read: Option<bool>,
    ) -> Result<(), StoreError> {
        self.write(Op::ReadOverride {
            user: user.clone(),
            feed: feed.clone(),
            id,
            read,
        })
        .await
    }

    async fn mark_read_before(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        before: ItemId,
    ) -> Result<(), StoreError> {
        self.write(Op::MarkReadBefore {
            user: user.clone(),
            feed: feed.clone(),
            before,
        })
        .await
    }

    async fn starred(&self, user: &UserId) -> Result<Vec<StarredItem>, StoreError> {
        let user = user.as_str().to_owned();
        self.read(move |txn| newest_first(txn, STARRED, &user))
            .await
    }

    async fn set_starred(
        &self,
        user: &UserId,
        item: &StarredItem,
        starred: bool,
    ) -> Result<(), StoreError> {
        self.write(Op::Star {
            user: user.clone(),
            item: item.clone(),
            starred,
        })
        .await
    }

    async fn account(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        let user = user.as_str().to_owned();
        self.read(move |txn| {
            let table = txn.open_table(ACCOUNTS)?;
            let row = table.get(user.as_str())?;
            Ok(row.map(|v| serde_json::from_slice(v.value())).transpose()?)
        })
        .await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(ACCOUNTS)?;
            table
                .iter()?
                .map(|row| Ok(serde_json::from_slice(row?.1.value())?))
                .collect()
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> Result<bool, StoreError> {
        self.write(Op::PutAccount {
            account: account.clone(),
            only_new: true,
        })
        .await?;
        // Ours is stored only if the name was free: read back which won.
        Ok(self.account(&account.user).await?.as_ref() == Some(account))
    }

    async fn update_account(&self, account: &Account) -> Result<bool, StoreError> {
        self.write(Op::PutAccount {
            account: account.clone(),
            only_new: false,
        })
        .await?;
        Ok(self.account(&account.user).await?.as_ref() == Some(account))
    }

    async fn delete_account(&self, user: &UserId) -> Result<(), StoreError> {
        self.write(Op::DeleteAccount(user.clone())).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        let writer_alive = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|w| !w.is_finished());
        if !writer_alive {
            return Err(StoreError::Unavailable(format!(
                "the file store in {} stopped",
                self.dir.display()
            )));
        }
        // Concurrent checks wait for one probe rather than each sending one.
        let mut last = self.last_probe.lock().await;
        if let Some((at, verdict)) = last.as_ref()
            && at.elapsed() < PROBE_EVERY
        {
            return verdict.clone();
        }
        let verdict = self
            .write(Op::Probe {
                at_ms: Utc::now().timestamp_millis(),
            })
            .await;
        *last = Some((std::time::Instant::now(), verdict.clone()));
        verdict
    }
}

impl Drop for FileStore {
    /// Finishes queued writes before the lock is released: closing the
    /// channel ends the writer once it has drained it.
    fn drop(&mut self) {
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a fresh temporary directory (removed after the store).
    async fn temp_store() -> (FileStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (FileStore::open(dir.path()).unwrap(), dir)
    }

    crate::store::suite::behaves_like_a_store!(temp_store());

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[tokio::test]
    async fn user_ids_saved_in_mixed_case_keep_their_data() {
        // A store written before user ids were folded to lower case: `Alice`
        // subscribed and starred, and `alice` (the same person, through
        // another login) subscribed to a second feed.
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = ("https://a.example/feed", "https://b.example/feed");
        {
            let db = Database::create(dir.path().join("subscriptions.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut subs = txn.open_table(SUBSCRIPTIONS).unwrap();
                subs.insert(("Alice", one), 1).unwrap();
                subs.insert(("alice", two), 2).unwrap();
                let mut readers = txn.open_table(SUBSCRIBERS).unwrap();
                readers.insert((one, "Alice"), ()).unwrap();
                readers.insert((two, "alice"), ()).unwrap();
                txn.open_table(READ_MARKS)
                    .unwrap()
                    .insert(("Alice", one), 7)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let store = FileStore::open(dir.path()).unwrap();
        let listed: Vec<String> = store
            .list(&user("ALICE"))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.url.to_string())
            .collect();
        assert_eq!(listed, [one, two]);
        assert!(store.has_subscribers(&url(one)).await.unwrap());
        let states = store.read_states(&user("alice")).await.unwrap();
        assert_eq!(states.get(&url(one)).map(|s| s.read_before), Some(7));
    }

    fn url(raw: &str) -> FeedUrl {
        FeedUrl::parse(raw).unwrap()
    }

    /// Storage that can be made to fail every write, as a full or
    /// read-only disk does. (A real full disk needs a filesystem of its
    /// own, which these machines cannot mount; the failure redb sees is the
    /// same I/O error.)
    #[derive(Debug)]
    struct Disk {
        memory: redb::backends::InMemoryBackend,
        full: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Disk {
        fn refuse(&self) -> Result<(), std::io::Error> {
            if self.full.load(std::sync::atomic::Ordering::Relaxed) {
                Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
            } else {
                Ok(())
            }
        }
    }

    impl redb::StorageBackend for Disk {
        fn len(&self) -> Result<u64, std::io::Error> {
            self.memory.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
            self.memory.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            self.refuse()?;
            self.memory.set_len(len)
        }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            self.refuse()?;
            self.memory.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            self.refuse()?;
            self.memory.write(offset, data)
        }
    }

    /// A store on a disk that fills up when the flag is set.
    fn store_on_a_disk_that_can_fill(
        dir: &Path,
    ) -> (FileStore, Arc<std::sync::atomic::AtomicBool>) {
        let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let disk = Disk {
            memory: redb::backends::InMemoryBackend::new(),
            full: full.clone(),
        };
        let store =
            FileStore::open_with(dir, |_| redb::Builder::new().create_with_backend(disk)).unwrap();
        (store, full)
    }

    #[tokio::test]
    async fn health_reports_a_disk_that_refuses_writes_even_when_nobody_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, full) = store_on_a_disk_that_can_fill(dir.path());
        store.check().await.unwrap();
        full.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(PROBE_EVERY).await;
        // Reads still work; writes do not; health says so.
        assert!(store.list(&user("alice")).await.is_ok());
        assert!(store.check().await.is_err());
    }

    #[tokio::test]
    async fn a_failed_write_is_refused_and_health_turns_down() {
        let dir = tempfile::tempdir().unwrap();
        let (store, full) = store_on_a_disk_that_can_fill(dir.path());
        store
            .add(&user("alice"), &url("https://a.example/"))
            .await
            .unwrap();
        store.check().await.unwrap();
        full.store(true, std::sync::atomic::Ordering::Relaxed);
        let refused = store.add(&user("alice"), &url("https://b.example/")).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))));
        tokio::time::sleep(PROBE_EVERY).await;
        assert!(store.check().await.is_err());
    }

    #[tokio::test]
    async fn subscriptions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FileStore::open(dir.path()).unwrap();
            store
                .add(&user("alice"), &url("https://a.example/"))
                .await
                .unwrap();
            store
                .add(&user("alice"), &url("https://b.example/"))
                .await
                .unwrap();
            store
                .remove(&user("alice"), &url("https://a.example/"))
                .await
                .unwrap();
        }
        let store = FileStore::open(dir.path()).unwrap();
        let urls: Vec<_> = store
            .list(&user("alice"))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.url.to_string())
            .collect();
        assert_eq!(urls, ["https://b.example/"]);
    }

    #[tokio::test]
    async fn a_second_store_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = FileStore::open(dir.path()).unwrap();
        let err = FileStore::open(dir.path()).expect_err("the directory is locked");
        assert!(matches!(err, OpenError::Locked(_)));
        assert!(err.to_string().contains("--data-dir"), "{err}");
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let err = FileStore::open(&blocker.join("data"))
            .expect_err("cannot create a directory inside a file");
        assert!(matches!(err, OpenError::Directory { .. }));
        assert!(err.to_string().contains("--data-dir"), "{err}");
    }

    #[tokio::test]
    async fn users_whose_ids_share_a_prefix_stay_apart() {
        let (store, _dir) = temp_store().await;
        store
            .add(&user("al"), &url("https://a.example/"))
            .await
            .unwrap();
        store
            .add(&user("alice"), &url("https://b.example/"))
            .await
            .unwrap();
        store
            .add(&user("al.ice"), &url("https://c.example/"))
            .await
            .unwrap();
        assert_eq!(store.list(&user("al")).await.unwrap().len(), 1);
        assert_eq!(store.list(&user("alice")).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn concurrent_writes_share_commits() {
        let (store, _dir) = temp_store().await;
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .add(
                            &user(&format!("u{}", i % 10)),
                            &url(&format!("https://x.example/{i}")),
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let total: usize = futures::future::join_all((0..10).map(|u| {
            let store = store.clone();
            async move { store.list(&user(&format!("u{u}"))).await.unwrap().len() }
        }))
        .await
        .into_iter()
        .sum();
        assert_eq!(total, 200);
    }
}
