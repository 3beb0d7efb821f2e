//! Keeping stored feeds current: the refresher, the one owner of a feed's
//! life, and its scheduler.
//!
//! The [`Refresher`] is the only component that writes feed records and
//! keeps the due table. Everything else asks it, by intent:
//!
//! | call | what it does |
//! |---|---|
//! | [`added`](Refresher::added) | a new feed: stored, and due at once |
//! | [`refresh`](Refresher::refresh) | fetch now, store, plan the next fetch |
//! | [`save`](Refresher::save) | store a document read elsewhere (subscribing) |
//! | [`drop_if_unread`](Refresher::drop_if_unread) | forget a feed nobody reads |
//! | [`due_now`](Refresher::due_now) | what the scheduler should refresh now |
//! | [`refresh_due`](Refresher::refresh_due) | one scheduled refresh |
//! | [`rescan`](Refresher::rescan) | reread the schedule from the store |
//! | [`cached`](Refresher::cached) | feeds as listings show them, from the [`cache`] |
//!
//! One refresh:
//!
//! ```text
//! refresh(url) ── single flight per URL ── read (conditional GET with the
//!    stored validators) ── merge the items (new ids, edits, the window of
//!    the newest N) ── plan the next fetch (policy) ── save_fetch (items,
//!    then state) ──> the feed's new record
//! ```
//!
//! The [`scheduler`] only keeps time: each tick it asks for what is due
//! and runs it on its slots; it holds no store. Requests refresh only a
//! feed never fetched yet, and on an explicit refresh. However many ask at
//! once, one fetch goes out per URL, and every caller gets its result.
//! Each part is separately tested: the [`policy`] (when next), [`merge`]
//! (what to write), [`ownership`] (whose job), the due table.

pub mod cache;
mod due;
pub mod merge;
pub mod ownership;
pub mod policy;
pub mod scheduler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use common::api::{FeedUrl, UserId};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument as _;

pub use merge::Retention;

use crate::feeds::fetch::{FetchError, Validators};
use crate::feeds::{Document, FeedDocument, FeedError, Feeds};
use crate::store::{FeedRecord, FeedUpdate, Store, StoreError, StoredItem, ids};
use cache::{CachedFeed, FeedCache, Lookup};
use due::DueTable;
pub use due::Owned;
use merge::Merge;
use policy::{Hints, Policy};

/// Why a refresh could not be recorded. (A feed that fails to fetch is
/// not an error here: its failure is recorded on the feed.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: the refresh task failed; logged.
    #[error("the refresh failed because of an internal error; it has been logged")]
    Internal,
}

/// What the refresher keeps and how it plans.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Which of a feed's items are kept.
    pub retention: Retention,
    /// When to fetch next.
    pub policy: Policy,
    /// The most bytes the feed cache holds (0: none).
    pub cache_bytes: usize,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            policy: Policy::default(),
            cache_bytes: 8 << 20,
        }
    }
}

type Flight = Shared<BoxFuture<'static, Result<FeedRecord, RefreshError>>>;

/// Refreshes feeds into the store (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Refresher {
    inner: Arc<Inner>,
}

struct Inner {
    feeds: Feeds,
    store: Arc<dyn Store>,
    settings: RefreshSettings,
    /// Refreshes in progress, by URL: later callers join the first.
    flights: Mutex<HashMap<FeedUrl, Flight>>,
    /// One save at a time per feed in this process: a save reads the
    /// stored items, merges and writes, and two interleaved would both
    /// take the same new item for new. (Across processes the stores keep
    /// one id per item key; see `Store::save_fetch`.) Entries go when the
    /// last holder is done.
    saving: Mutex<HashMap<FeedUrl, Arc<tokio::sync::Mutex<()>>>>,
    /// When each known feed is due, as far as this process knows: updated
    /// by every refresh, and by rescans of the store.
    due: Mutex<DueTable>,
    /// Feeds as listings show them; each write below drops its feed.
    cache: FeedCache,
}

/// A feed handed out by [`Refresher::due_now`]: taken until this is
/// dropped (its refresh is done, or the scheduler stopped first).
#[derive(Debug)]
pub struct Due {
    /// The feed.
    pub url: FeedUrl,
    /// When it was due.
    pub at: DateTime<Utc>,
    inner: Arc<Inner>,
}

impl Drop for Due {
    fn drop(&mut self) {
        self.inner.due_table().release(&self.url);
    }
}

impl Inner {
    fn due_table(&self) -> std::sync::MutexGuard<'_, DueTable> {
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("settings", &self.inner.settings)
            .field("store", &self.inner.store.name())
            .finish_non_exhaustive()
    }
}

impl Refresher {
    /// A refresher reading with `feeds` into `store`.
    pub fn new(feeds: Feeds, store: Arc<dyn Store>, settings: RefreshSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                feeds,
                store,
                flights: Mutex::default(),
                saving: Mutex::default(),
                due: Mutex::default(),
                cache: FeedCache::new(settings.cache_bytes),
                settings,
            }),
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &RefreshSettings {
        &self.inner.settings
    }

    /// Fetches `url` now and stores what came back; on `user`'s share of
    /// the fetch slots (`None`: the scheduler's). Joins a refresh of the
    /// same URL already running. The work runs as a task of its own, so it
    /// finishes (and is stored) even if the caller stops waiting.
    pub async fn refresh(
        &self,
        url: &FeedUrl,
        user: Option<&UserId>,
    ) -> Result<FeedRecord, RefreshError> {
        let flight = {
            let mut flights = self
                .inner
                .flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            flights
                .entry(url.clone())
                .or_insert_with(|| {
                    let this = self.clone();
                    let (url, user) = (url.clone(), user.cloned());
                    // The first caller's span is the refresh's parent in
                    // a trace; callers that join it share its result.
                    let task = tokio::spawn(
                        async move {
                            let result = this.refresh_now(&url, user.as_ref()).await;
                            this.inner
                                .flights
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(&url);
                            result
                        }
                        .instrument(tracing::Span::current()),
                    );
                    async move {
                        task.await.unwrap_or_else(|join_error| {
                            tracing::error!(error = %join_error, "feed refresh task failed");
                            Err(RefreshError::Internal)
                        })
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        flight.await
    }

    async fn refresh_now(
        &self,
        url: &FeedUrl,
        user: Option<&UserId>,
    ) -> Result<FeedRecord, RefreshError> {
        let record = self.record(url).await?;
        let validators = Validators {
            etag: record.etag.clone(),
            last_modified: record.last_modified.clone(),
        };
        let document = self.inner.feeds.read(url.url(), &validators, user).await;
        self.save_record(record, document).await
    }

    /// The stored record of `url`, or a new one.
    async fn record(&self, url: &FeedUrl) -> Result<FeedRecord, StoreError> {
        Ok(self
            .inner
            .store
            .feed(url)
            .await?
            .unwrap_or_else(|| FeedRecord::new(url.clone(), Utc::now())))
    }

    /// A feed added without being read (an OPML import names it): stored,
    /// then `subscribed` (the subscription that reads it), and only then
    /// due at its `next_fetch`, so the scheduler reads it within a tick. In
    /// that order, a listing never finds a subscription with no feed
    /// behind it, and the scheduler never finds the feed before anyone
    /// reads it (it would forget it as unread).
    pub async fn added(
        &self,
        record: FeedRecord,
        subscribed: impl Future<Output = Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let created = self.inner.store.create_feed(&record).await;
        self.inner.cache.drop_feed(&record.url);
        created?;
        subscribed.await?;
        self.inner.due_table().add(&record.url, record.next_fetch);
        Ok(())
    }

    /// Stores what a read of `url` found elsewhere, and plans the next one.
    /// (Subscribing reads the feed to check it, and saves that read here,
    /// so the feed is not fetched twice.)
    pub async fn save(
        &self,
        url: &FeedUrl,
        document: Document,
    ) -> Result<FeedRecord, RefreshError> {
        let record = self.record(url).await?;
        self.save_record(record, document).await
    }

    /// One save at a time per feed in this process (see `Inner::saving`).
    async fn save_record(
        &self,
        record: FeedRecord,
        document: Document,
    ) -> Result<FeedRecord, RefreshError> {
        let lock = self
            .inner
            .saving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(record.url.clone())
            .or_default()
            .clone();
        let url = record.url.clone();
        let saved = {
            let _one_at_a_time = lock.lock().await;
            self.save_locked(record, document).await
        };
        // The last one out removes the entry.
        let mut saving = self
            .inner
            .saving
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if Arc::strong_count(&lock) == 2 {
            saving.remove(&url);
        }
        saved
    }

    async fn save_locked(
        &self,
        mut record: FeedRecord,
        document: Document,
    ) -> Result<FeedRecord, RefreshError> {
        let store = &self.inner.store;
        let policy = &self.inner.settings.policy;
        let now = Utc::now();
        let jitter = random_unit();
        let url = record.url.clone();
        let (label, update) = match document {
            Document::Feed(document) => {
                let FeedDocument {
                    parsed,
                    validators,
                    hints,
                } = *document;
                let stored = store.items(&url).await?;
                let plan = Merge::plan(&stored, &parsed.items);
                let newest = stored.iter().map(|i| i.id).max().unwrap_or(0);
                let ids = store.allocate_ids(plan.new_items(), newest)?;
                let changes = plan.apply(&ids, &self.inner.settings.retention, now);
                metrics::counter!("feed_items_new_total").increment(ids.len() as u64);
                record.title = parsed.title.or(record.title);
                record.site_url = parsed.site_url.or(record.site_url);
                record.etag = validators.etag;
                record.last_modified = validators.last_modified;
                let hints = Hints {
                    max_age: hints.max_age,
                    expires: hints.expires,
                    ttl: parsed.ttl,
                    retry_after: None,
                };
                record.succeeded(now);
                record.next_fetch =
                    policy.after_success(now, &posted(&changes.items), &hints, jitter);
                (
                    "ok",
                    FeedUpdate {
                        record,
                        upserts: changes.upserts,
                        removals: changes.removals,
                    },
                )
            }
            Document::NotModified(hints) => {
                let stored = store.items(&url).await?;
                let hints = Hints {
                    max_age: hints.max_age,
                    expires: hints.expires,
                    ..Hints::default()
                };
                record.succeeded(now);
                record.next_fetch = policy.after_success(now, &posted(&stored), &hints, jitter);
                ("not_modified", FeedUpdate::state_only(record))
            }
            Document::Page(_) => failed(
                record,
                FeedError::Parse(crate::feeds::parse::ParseError::HtmlPage),
                now,
                policy,
                jitter,
            ),
            Document::Failed(error) => failed(record, error, now, policy, jitter),
        };
        metrics::counter!("feed_refreshes_total", "outcome" => label).increment(1);
        let saved = store.save_fetch(&update).await;
        // Dropped whatever the outcome: a failed write may have written part.
        self.inner.cache.drop_feed(&url);
        saved?;
        self.inner.due_table().set(&url, update.record.next_fetch);
        Ok(update.record)
    }

    /// Forgets `url`, its state and items, if nobody reads it any more;
    /// says whether it did.
    pub async fn drop_if_unread(&self, url: &FeedUrl) -> Result<bool, StoreError> {
        if self.inner.store.has_subscribers(url).await? {
            return Ok(false);
        }
        let deleted = self.inner.store.delete_feed(url).await;
        self.inner.cache.drop_feed(url);
        deleted?;
        self.inner.due_table().remove(url);
        Ok(true)
    }

    /// The feeds `owns` says are this instance's, and those of them due at
    /// `now` that are not being refreshed already, oldest due first. Each
    /// is taken until its [`Due`] is dropped.
    pub fn due_now(&self, now: DateTime<Utc>, owns: impl Fn(&FeedUrl) -> bool) -> Owned<Due> {
        let Owned { owned, due } = self.inner.due_table().take_due(now, owns);
        let due = due
            .into_iter()
            .map(|(url, at)| Due {
                url,
                at,
                inner: self.inner.clone(),
            })
            .collect();
        Owned { owned, due }
    }

    /// One scheduled refresh: a feed nobody reads is forgotten instead;
    /// one the store cannot take now is tried again in 30 s, not every
    /// tick.
    pub async fn refresh_due(&self, due: Due) {
        let url = &due.url;
        let retry = |what: &str, error: &dyn std::fmt::Display| {
            tracing::warn!(url = %url, error = %error, "{what}; will retry");
            self.inner
                .due_table()
                .set(url, Utc::now() + chrono::Duration::seconds(30));
        };
        match self.drop_if_unread(url).await {
            Ok(true) => {
                tracing::info!(url = %url, "nobody reads this feed any more; forgot it");
                return;
            }
            Ok(false) => {}
            Err(e) => return retry("store unavailable; refresh postponed", &e),
        }
        if let Err(e) = self.refresh(url, None).await {
            retry("refresh could not be stored", &e);
        }
    }

    /// Each of `urls` as listings show it, in order: from the cache, or
    /// read from the store (one operation for all the misses) and cached.
    ///
    /// A store other middletiers share is written by them too, without
    /// this process knowing: there each feed's record is read first, and a
    /// cached feed whose record differs is read again. Their refreshers
    /// write a feed's items before its record, so an unchanged record
    /// means unchanged items.
    pub async fn cached(&self, urls: &[FeedUrl]) -> Result<Vec<Arc<CachedFeed>>, StoreError> {
        let store = &self.inner.store;
        let cache = &self.inner.cache;
        let mut lookups = cache.lookup(urls);
        let records = if store.is_shared() {
            let records = futures::future::try_join_all(urls.iter().map(|url| store.feed(url)));
            let records = records.await?;
            for ((url, lookup), record) in urls.iter().zip(&mut lookups).zip(&records) {
                if matches!(lookup, Lookup::Hit(hit) if hit.record != *record) {
                    cache.drop_feed(url);
                    *lookup = cache.lookup(std::slice::from_ref(url)).remove(0);
                }
            }
            Some(records)
        } else {
            None
        };
        let missed: Vec<usize> = (0..urls.len())
            .filter(|&i| matches!(lookups[i], Lookup::Miss(_)))
            .collect();
        let mut read = match &records {
            // Items only, after the records above.
            Some(records) => {
                let reads = missed.iter().map(|&i| async move {
                    Ok::<_, StoreError>((records[i].clone(), store.items(&urls[i]).await?))
                });
                futures::future::try_join_all(reads).await?
            }
            None if missed.is_empty() => Vec::new(),
            None => {
                let missed: Vec<FeedUrl> = missed.iter().map(|&i| urls[i].clone()).collect();
                store.feeds_with_items(&missed).await?
            }
        }
        .into_iter();
        Ok(urls
            .iter()
            .zip(lookups)
            .map(|(url, lookup)| match lookup {
                Lookup::Hit(feed) => feed,
                Lookup::Miss(ticket) => {
                    let (record, items) = read.next().unwrap_or_default();
                    cache.fill(url, ticket, CachedFeed::new(record, &items))
                }
            })
            .collect())
    }

    /// See [`FeedCache::epoch`].
    pub fn cache_epoch(&self) -> u64 {
        self.inner.cache.epoch()
    }

    /// Replaces what this process knows is due with a scan of the store
    /// (feeds added through other instances sharing it come in this way).
    pub async fn rescan(&self) -> Result<(), StoreError> {
        let scanned = self.inner.store.schedule().await?;
        self.inner.due_table().replace(scanned);
        Ok(())
    }
}

/// The record after a failed fetch: counted, explained, backed off.
fn failed(
    mut record: FeedRecord,
    error: FeedError,
    now: DateTime<Utc>,
    policy: &Policy,
    jitter: f64,
) -> (&'static str, FeedUpdate) {
    tracing::info!(url = %record.url, error = %error, "feed refresh failed");
    let retry_after = match &error {
        FeedError::Fetch(FetchError::Status { retry_after, .. }) => *retry_after,
        _ => None,
    };
    if matches!(error, FeedError::Fetch(FetchError::UnexpectedNotModified)) {
        record.forget_validators();
    }
    record.failed(error.to_string(), now);
    let hints = Hints {
        retry_after,
        ..Hints::default()
    };
    record.next_fetch = policy.after_failure(now, record.error_count, &hints, jitter);
    (error.kind(), FeedUpdate::state_only(record))
}

/// When a feed's items were posted: their dates, else when first stored.
fn posted(items: &[StoredItem]) -> Vec<DateTime<Utc>> {
    items
        .iter()
        .map(|item| item.published.unwrap_or_else(|| ids::stored_at(item.id)))
        .collect()
}

/// Uniform in [0, 1), for jitter.
fn random_unit() -> f64 {
    (getrandom::u32().unwrap_or(0) >> 8) as f64 / f64::from(1u32 << 24)
}
