//! Keeping stored feeds current: the refresher and its scheduler.
//!
//! [`Refresher::refresh`] brings one feed up to date:
//!
//! ```text
//! refresh(url) ── single flight per URL ── read (conditional GET with the
//!    stored validators) ── merge the items (new ids, edits, the window of
//!    the newest N) ── plan the next fetch (policy) ── save_fetch (items,
//!    then state) ──> the feed's new record
//! ```
//!
//! The [`scheduler`] calls it for every due feed this instance owns;
//! requests call it only for a feed never fetched yet, and for an explicit
//! refresh. However many ask at once, one fetch goes out per URL, and
//! every caller gets its result. Each part is separately tested: the
//! [`policy`] (when next), [`merge`] (what to write), [`ownership`] (whose
//! job).

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

use crate::feeds::fetch::{FetchError, Validators};
use crate::feeds::{Document, FeedDocument, FeedError, Feeds};
use crate::store::{FeedRecord, FeedUpdate, Store, StoreError, StoredItem, ids};
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
    /// Items kept per feed (the newest).
    pub keep_items: usize,
    /// When to fetch next.
    pub policy: Policy,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            keep_items: 200,
            policy: Policy::default(),
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
    /// by every refresh, and by the scheduler's scans of the store.
    due: Mutex<HashMap<FeedUrl, DateTime<Utc>>>,
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
                settings,
                flights: Mutex::default(),
                saving: Mutex::default(),
                due: Mutex::default(),
            }),
        }
    }

    /// The feed reader it uses.
    pub fn feeds(&self) -> &Feeds {
        &self.inner.feeds
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
        let store = &self.inner.store;
        let record = store
            .feed(url)
            .await?
            .unwrap_or_else(|| FeedRecord::new(url.clone(), Utc::now()));
        let validators = Validators {
            etag: record.etag.clone(),
            last_modified: record.last_modified.clone(),
        };
        let document = self.inner.feeds.read(url.url(), &validators, user).await;
        self.save(record, document).await
    }

    /// Stores what a read of the feed found, and plans the next one.
    /// (Subscribing calls this with the document it read to check the
    /// feed, so the feed is not fetched twice.)
    pub async fn save(
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
        let settings = &self.inner.settings;
        let now = Utc::now();
        let jitter = random_unit();
        let url = record.url.clone();
        record.last_fetched = Some(now);
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
                let changes = plan.apply(&ids, settings.keep_items);
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
                succeeded(&mut record);
                record.next_fetch =
                    settings
                        .policy
                        .after_success(now, &posted(&changes.items), &hints, jitter);
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
                succeeded(&mut record);
                record.next_fetch =
                    settings
                        .policy
                        .after_success(now, &posted(&stored), &hints, jitter);
                ("not_modified", FeedUpdate::state_only(record))
            }
            Document::Page(_) => failed(
                record,
                FeedError::Parse(crate::feeds::parse::ParseError::HtmlPage),
                now,
                &settings.policy,
                jitter,
            ),
            Document::Failed(error) => failed(record, error, now, &settings.policy, jitter),
        };
        metrics::counter!("feed_refreshes_total", "outcome" => label).increment(1);
        store.save_fetch(&update).await?;
        self.set_due(&url, update.record.next_fetch);
        Ok(update.record)
    }

    /// Notes when `url` is due (after a refresh, or a scan of the store).
    pub fn set_due(&self, url: &FeedUrl, at: DateTime<Utc>) {
        self.inner
            .due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(url.clone(), at);
    }

    /// Notes `url` as due at `at` unless it is known already (a feed just
    /// added: the scheduler fetches it at its next tick).
    pub fn track(&self, url: &FeedUrl, at: DateTime<Utc>) {
        self.inner
            .due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(url.clone())
            .or_insert(at);
    }

    /// Forgets `url` (nobody reads it any more).
    pub fn forget(&self, url: &FeedUrl) {
        self.inner
            .due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(url);
    }

    /// Every known feed and when it is due.
    pub fn due(&self) -> Vec<(FeedUrl, DateTime<Utc>)> {
        self.inner
            .due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(url, at)| (url.clone(), *at))
            .collect()
    }

    /// Replaces what this process knows is due with a scan of the store.
    pub fn replace_due(&self, scanned: Vec<(FeedUrl, DateTime<Utc>)>) {
        *self
            .inner
            .due
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = scanned.into_iter().collect();
    }
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

fn succeeded(record: &mut FeedRecord) {
    record.error_count = 0;
    record.error = None;
    record.failing_since = None;
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
    // A 304 we cannot use: forget the validators so the next fetch asks
    // for the whole document.
    if matches!(error, FeedError::Fetch(FetchError::UnexpectedNotModified)) {
        record.etag = None;
        record.last_modified = None;
    }
    record.error_count = record.error_count.saturating_add(1);
    record.failing_since.get_or_insert(now);
    record.error = Some(error.to_string());
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
        .map(|item| {
            item.published
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .map_or_else(|| ids::stored_at(item.id), |d| d.with_timezone(&Utc))
        })
        .collect()
}

/// Uniform in [0, 1), for jitter.
fn random_unit() -> f64 {
    (getrandom::u32().unwrap_or(0) >> 8) as f64 / f64::from(1u32 << 24)
}
