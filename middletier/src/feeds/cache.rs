//! The feed cache: what we last learned about each feed URL, and when.
//!
//! Two rules keep page views off the publisher's back:
//! - **TTL**: an entry younger than the TTL (default 5 min) is served as is;
//!   a failure is remembered for a shorter time (default 30 s) so a broken
//!   feed is neither hammered nor stuck;
//! - **single flight**: each URL has one refresh lock, so however many
//!   requests want a stale feed at once, one fetch goes out and the others
//!   wait for its result.
//!
//! [`Entry`] and its transitions are plain data, tested without a network;
//! [`FeedCache`] adds the map, the locks and a size bound: when full, the
//! least recently used URL that is not being refreshed makes room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::fetch::{FetchError, Validators};
use super::{FeedError, ReadyFeed};

/// What we know about one feed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When we last asked the publisher, whatever the answer.
    pub checked_at: Instant,
    /// The last document that parsed, kept through later failures so a
    /// reader still sees it (with the error) and a 304 has something to mean.
    pub feed: Option<Arc<ReadyFeed>>,
    /// Validators of `feed`, for the next conditional GET.
    pub validators: Validators,
    /// Why the last attempt failed, if it did.
    pub error: Option<FeedError>,
}

/// How one attempt to refresh ended.
#[derive(Debug)]
pub enum Outcome {
    /// A new document, and its validators.
    Fresh(Arc<ReadyFeed>, Validators),
    /// 304: the document we hold is still current.
    NotModified,
    /// The attempt failed.
    Failed(FeedError),
}

impl Entry {
    /// Whether `now` is still within the entry's time to live.
    pub fn is_fresh(&self, now: Instant, ttl: Duration, error_ttl: Duration) -> bool {
        let age = now.saturating_duration_since(self.checked_at);
        let limit = if self.error.is_some() {
            error_ttl.min(ttl)
        } else {
            ttl
        };
        age < limit
    }

    /// The entry after an attempt that ended with `outcome` at `now`.
    pub fn next(previous: Option<&Entry>, outcome: Outcome, now: Instant) -> Entry {
        let keep_feed = || previous.and_then(|p| p.feed.clone());
        let keep_validators = || previous.map(|p| p.validators.clone()).unwrap_or_default();
        match outcome {
            Outcome::Fresh(feed, validators) => Entry {
                checked_at: now,
                feed: Some(feed),
                validators,
                error: None,
            },
            Outcome::NotModified => match keep_feed() {
                Some(feed) => Entry {
                    checked_at: now,
                    feed: Some(feed),
                    validators: keep_validators(),
                    error: None,
                },
                // A 304 to a request we did not make conditional: forget the
                // validators so the next fetch asks for the whole document.
                None => Entry {
                    checked_at: now,
                    feed: None,
                    validators: Validators::default(),
                    error: Some(FeedError::Fetch(FetchError::UnexpectedNotModified)),
                },
            },
            Outcome::Failed(error) => Entry {
                checked_at: now,
                feed: keep_feed(),
                validators: keep_validators(),
                error: Some(error),
            },
        }
    }

    /// Validators to send: only when we hold the document they describe.
    pub fn validators_for_refresh(entry: Option<&Entry>) -> Validators {
        entry
            .filter(|e| e.feed.is_some())
            .map(|e| e.validators.clone())
            .unwrap_or_default()
    }
}

/// One URL's place in the cache.
#[derive(Debug, Default)]
pub struct Slot {
    /// The current entry; read without waiting, even during a refresh.
    current: Mutex<Option<Entry>>,
    /// Held for the whole of a refresh: the single-flight gate. Requests
    /// that find the feed stale queue here; when they get the lock they look
    /// at `current` again and usually find it fresh.
    pub refreshing: tokio::sync::Mutex<()>,
    /// When the slot was last asked for, on the cache's own clock (a
    /// counter): the eviction order.
    last_used: AtomicU64,
}

impl Slot {
    /// The entry now (a copy).
    pub fn current(&self) -> Option<Entry> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the entry.
    pub fn set(&self, entry: Entry) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(entry);
    }
}

/// URL → [`Slot`], bounded in size.
#[derive(Debug)]
pub struct FeedCache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    capacity: usize,
    /// Ticks once per [`FeedCache::slot`] call; stamps `Slot::last_used`.
    clock: AtomicU64,
}

impl FeedCache {
    /// A cache of at most `capacity` URLs.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
        }
    }

    /// The slot for `url`, created if needed, and marked as just used. At
    /// capacity, the least recently used slot that is not being refreshed
    /// is evicted first (an O(n) scan, only when full). A slot just created
    /// is the most recently used, so a page of new feeds never evicts its
    /// own entries before they are filled.
    pub fn slot(&self, url: &str) -> Arc<Slot> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(url) {
            slot.last_used.store(now, Ordering::Relaxed);
            return slot.clone();
        }
        if slots.len() >= self.capacity {
            let least_recent = slots
                .iter()
                .filter(|(_, slot)| slot.refreshing.try_lock().is_ok())
                .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
                .map(|(key, _)| key.clone());
            if let Some(key) = least_recent {
                slots.remove(&key);
            }
        }
        let slot = Arc::new(Slot::default());
        slot.last_used.store(now, Ordering::Relaxed);
        slots.insert(url.to_owned(), slot.clone());
        metrics::gauge!("feed_cache_entries").set(slots.len() as f64);
        slot
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);
    const ERROR_TTL: Duration = Duration::from_secs(30);

    fn feed(title: &str) -> Arc<ReadyFeed> {
        Arc::new(ReadyFeed::new(crate::feeds::parse::ParsedFeed {
            title: Some(title.into()),
            items: vec![],
        }))
    }

    fn etag(tag: &str) -> Validators {
        Validators {
            etag: Some(tag.into()),
            last_modified: None,
        }
    }

    #[test]
    fn an_entry_is_fresh_for_its_ttl_and_a_failure_for_less() {
        let t0 = Instant::now();
        let good = Entry::next(None, Outcome::Fresh(feed("a"), etag("1")), t0);
        assert!(good.is_fresh(t0 + Duration::from_secs(299), TTL, ERROR_TTL));
        assert!(!good.is_fresh(t0 + TTL, TTL, ERROR_TTL));

        let bad = Entry::next(
            None,
            Outcome::Failed(FeedError::Fetch(FetchError::Status(500))),
            t0,
        );
        assert!(bad.is_fresh(t0 + Duration::from_secs(29), TTL, ERROR_TTL));
        assert!(!bad.is_fresh(t0 + ERROR_TTL, TTL, ERROR_TTL));
    }

    #[test]
    fn not_modified_keeps_the_document_and_restarts_the_clock() {
        let t0 = Instant::now();
        let t1 = t0 + TTL;
        let first = Entry::next(None, Outcome::Fresh(feed("a"), etag("1")), t0);
        let second = Entry::next(Some(&first), Outcome::NotModified, t1);
        assert_eq!(second.feed, first.feed);
        assert_eq!(second.validators, etag("1"));
        assert_eq!(second.checked_at, t1);
        assert!(second.error.is_none());
    }

    #[test]
    fn a_failure_keeps_the_last_good_document_beside_the_error() {
        let t0 = Instant::now();
        let first = Entry::next(None, Outcome::Fresh(feed("a"), etag("1")), t0);
        let err = FeedError::Fetch(FetchError::Timeout(Duration::from_secs(10)));
        let second = Entry::next(Some(&first), Outcome::Failed(err.clone()), t0 + TTL);
        assert_eq!(second.feed, first.feed);
        assert_eq!(second.error, Some(err));
        assert_eq!(Entry::validators_for_refresh(Some(&second)), etag("1"));
    }

    #[test]
    fn a_new_document_replaces_the_old_and_clears_the_error() {
        let t0 = Instant::now();
        let failed = Entry::next(
            None,
            Outcome::Failed(FeedError::Fetch(FetchError::Status(503))),
            t0,
        );
        let fixed = Entry::next(Some(&failed), Outcome::Fresh(feed("b"), etag("2")), t0);
        assert_eq!(fixed.feed, Some(feed("b")));
        assert!(fixed.error.is_none());
    }

    #[test]
    fn an_unasked_for_304_is_an_error_and_drops_validators() {
        let t0 = Instant::now();
        let entry = Entry::next(None, Outcome::NotModified, t0);
        assert!(entry.feed.is_none());
        assert!(entry.error.is_some());
        assert!(Entry::validators_for_refresh(Some(&entry)).is_empty());
    }

    #[test]
    fn validators_are_only_sent_for_a_document_we_hold() {
        assert!(Entry::validators_for_refresh(None).is_empty());
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_idle_entry_when_full() {
        let cache = FeedCache::new(2);
        let t0 = Instant::now();
        cache
            .slot("a")
            .set(Entry::next(None, Outcome::Fresh(feed("a"), etag("a")), t0));
        cache
            .slot("b")
            .set(Entry::next(None, Outcome::Fresh(feed("b"), etag("b")), t0));
        // "a" is read again, so "b" is now the least recently used.
        let _ = cache.slot("a");
        let _c = cache.slot("c");
        assert_eq!(cache.len(), 2);
        assert!(
            cache.slot("a").current().is_some(),
            "a was used more recently"
        );
    }

    #[test]
    fn a_page_of_new_feeds_does_not_evict_its_own_entries() {
        let cache = FeedCache::new(2);
        let t0 = Instant::now();
        cache.slot("old").set(Entry::next(
            None,
            Outcome::Fresh(feed("old"), etag("o")),
            t0,
        ));
        // A page with two feeds never seen before: both slots are created
        // before either is filled.
        let first = cache.slot("new-1");
        let second = cache.slot("new-2");
        assert_eq!(cache.len(), 2);
        assert!(
            Arc::ptr_eq(&first, &cache.slot("new-1")),
            "new-1 was evicted"
        );
        assert!(Arc::ptr_eq(&second, &cache.slot("new-2")));
    }

    #[test]
    fn a_slot_being_refreshed_is_never_evicted() {
        let cache = FeedCache::new(1);
        let busy = cache.slot("busy");
        let _held = busy.refreshing.try_lock().unwrap();
        let _other = cache.slot("other");
        assert!(Arc::ptr_eq(&busy, &cache.slot("busy")));
    }
}
