//! The feed cache: each feed's record and items as a listing shows them,
//! encoded once, shared by every user who reads the feed.
//!
//! Feeds and items are shared by URL and change only when the refresher
//! saves a fetch, yet a listing used to read, decode and re-encode every
//! item on every request. So the refresher, the one writer of feeds, keeps
//! this cache and drops a feed's entry right after each write it makes;
//! the reader splices each user's read and starred flags into the cached
//! bytes ([`CachedItem::json`]).
//!
//! Coherence without a lock around the store: a miss hands out a
//! [`Ticket`], and [`FeedCache::fill`] keeps what was read only if no write
//! dropped the feed since the ticket was taken. So a read that raced a
//! refresh can never put the older items back. (A store shared with other
//! middletiers is also written by them; the refresher checks such entries
//! against the feed's record on each use, see `Refresher::cached`.)
//!
//! It is bounded in bytes (`--listing-cache`, default 8 MiB: some 300
//! feeds of 50 items, and what keeps a middletier of 10,000 feeds on the
//! file store near 150 MiB): past the budget, the least recently used
//! feeds go. A budget of 0 turns it off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use common::api::FeedUrl;

use crate::store::{FeedRecord, ItemId, StoredItem};

/// One feed as listings show it.
#[derive(Debug, PartialEq, Eq)]
pub struct CachedFeed {
    /// Its record as stored when the items were read.
    pub record: Option<FeedRecord>,
    /// Its items, newest first.
    pub items: Vec<CachedItem>,
    /// Names this content among every feed this process has cached since
    /// it started (with [`FeedCache::epoch`], across restarts too): a
    /// listing's tag is made of these. 0 for content not kept, which has
    /// no name.
    pub version: u64,
}

/// One item, encoded for a listing but for the reader's flags.
#[derive(Debug, PartialEq, Eq)]
pub struct CachedItem {
    /// The item's id.
    pub id: ItemId,
    /// The item's listing JSON (`common::api::Item`) without its last two
    /// fields, `read` and `starred`, and the closing brace: a listing
    /// appends `,"read":…,"starred":…}` for its user.
    pub json: Box<str>,
}

/// What `read` and `starred` false look like at the end of an item's JSON.
const UNFLAGGED: &str = r#","read":false,"starred":false}"#;

impl CachedItem {
    /// `item`, encoded.
    pub fn new(item: &StoredItem) -> Self {
        let mut json = serde_json::to_string(&item.listed(false, false)).unwrap_or_default();
        // `read` and `starred` are `Item`'s last fields (a test holds them there).
        json.truncate(json.len().saturating_sub(UNFLAGGED.len()));
        Self {
            id: item.id,
            json: json.into_boxed_str(),
        }
    }

    /// Appends the item with `read` and `starred` to `out`.
    pub fn write(&self, read: bool, starred: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(self.json.as_bytes());
        out.extend_from_slice(if read {
            b",\"read\":true"
        } else {
            b",\"read\":false"
        });
        out.extend_from_slice(if starred {
            b",\"starred\":true}"
        } else {
            b",\"starred\":false}"
        });
    }
}

impl CachedFeed {
    /// A feed's record and items (newest first), encoded.
    pub fn new(record: Option<FeedRecord>, items: &[StoredItem]) -> Self {
        Self {
            record,
            items: items.iter().map(CachedItem::new).collect(),
            version: 0,
        }
    }

    /// Roughly what it takes in memory, the allocator's share included.
    fn bytes(&self) -> usize {
        /// What one allocation costs beyond its bytes (glibc's header and
        /// rounding), measured close enough for a budget.
        const PER_ALLOCATION: usize = 16;
        const ITEM: usize = std::mem::size_of::<CachedItem>() + PER_ALLOCATION;
        let record = self.record.as_ref().map_or(0, |r| {
            let strings = [&r.title, &r.site_url, &r.etag, &r.last_modified, &r.error];
            std::mem::size_of::<FeedRecord>()
                + r.url.as_str().len()
                + strings
                    .iter()
                    .map(|s| s.as_ref().map_or(0, |s| s.len() + PER_ALLOCATION))
                    .sum::<usize>()
        });
        let items: usize = self.items.iter().map(|i| ITEM + i.json.len()).sum();
        // The feed, its Arc and its item list.
        std::mem::size_of::<Self>() + 3 * PER_ALLOCATION + record + items
    }
}

/// A cache miss: what [`FeedCache::fill`] needs to keep what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// A cached feed, or a ticket to fill it.
#[derive(Debug)]
pub enum Lookup {
    /// Cached.
    Hit(Arc<CachedFeed>),
    /// Not cached: read it, then [`FeedCache::fill`].
    Miss(Ticket),
}

/// The cache (see the module docs). Plain data and one mutex; no I/O.
#[derive(Debug)]
pub struct FeedCache {
    budget: usize,
    table: Mutex<Table>,
    tickets: AtomicU64,
    epoch: u64,
}

#[derive(Debug, Default)]
struct Table {
    slots: HashMap<FeedUrl, Slot>,
    /// What the cached feeds take, by [`CachedFeed::bytes`].
    bytes: usize,
    /// A clock for least-recently-used: one tick per lookup.
    clock: u64,
}

/// A feed being read (a ticket out, `feed` empty) or cached.
#[derive(Debug)]
struct Slot {
    ticket: Ticket,
    feed: Option<(Arc<CachedFeed>, usize)>,
    used: u64,
}

impl FeedCache {
    /// A cache of at most `budget` bytes (0: nothing is kept).
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            table: Mutex::default(),
            tickets: AtomicU64::new(1),
            epoch: getrandom::u64().unwrap_or_else(|_| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                now.map_or(0, |d| d.as_nanos() as u64) ^ u64::from(std::process::id())
            }),
        }
    }

    /// A random number of this cache's own: versions start again at 1 in
    /// every process, so a tag made of them includes this too.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each of `urls`, cached or with a ticket to read it, in order.
    pub fn lookup(&self, urls: &[FeedUrl]) -> Vec<Lookup> {
        if self.budget == 0 {
            return urls.iter().map(|_| Lookup::Miss(Ticket(0))).collect();
        }
        let mut table = self.table();
        table.clock += 1;
        let now = table.clock;
        let found: Vec<Lookup> = urls
            .iter()
            .map(|url| {
                let slot = table.slots.entry(url.clone()).or_insert_with(|| Slot {
                    ticket: Ticket(self.tickets.fetch_add(1, Ordering::Relaxed)),
                    feed: None,
                    used: now,
                });
                slot.used = now;
                match &slot.feed {
                    Some((feed, _)) => Lookup::Hit(feed.clone()),
                    None => Lookup::Miss(slot.ticket),
                }
            })
            .collect();
        let hits = found.iter().filter(|l| matches!(l, Lookup::Hit(_))).count();
        metrics::counter!("listing_cache_hits_total").increment(hits as u64);
        metrics::counter!("listing_cache_misses_total").increment((found.len() - hits) as u64);
        found
    }

    /// Keeps `feed`, read after `ticket` was handed out, unless `url` was
    /// written (dropped) since; returns it either way, or what another
    /// read with the same ticket kept first.
    pub fn fill(&self, url: &FeedUrl, ticket: Ticket, mut feed: CachedFeed) -> Arc<CachedFeed> {
        let bytes = feed.bytes();
        if bytes > self.budget / 4 {
            // Too big to be worth the room: read each time.
            return Arc::new(feed);
        }
        let mut table = self.table();
        let table = &mut *table;
        let Some(slot) = table
            .slots
            .get_mut(url)
            .filter(|slot| slot.ticket == ticket)
        else {
            // Written since the ticket: this read may be older than the write.
            return Arc::new(feed);
        };
        if let Some((kept, _)) = &slot.feed {
            // Two reads missed at once: the first to arrive is kept, so a
            // version always names one content.
            return kept.clone();
        }
        // Tickets are never handed out twice, and a slot is filled once.
        feed.version = ticket.0;
        let feed = Arc::new(feed);
        slot.feed = Some((feed.clone(), bytes));
        table.bytes += bytes;
        if table.bytes > self.budget {
            table.evict(self.budget - self.budget / 10);
        }
        metrics::gauge!("listing_cache_bytes").set(table.bytes as f64);
        feed
    }

    /// Drops `url`'s entry after a write: readers in flight keep their
    /// copy, but none of them can put it back.
    pub fn drop_feed(&self, url: &FeedUrl) {
        let mut table = self.table();
        if let Some(Slot {
            feed: Some((_, bytes)),
            ..
        }) = table.slots.remove(url)
        {
            table.bytes -= bytes;
            metrics::gauge!("listing_cache_bytes").set(table.bytes as f64);
        }
    }

    /// What the cached feeds take now, in bytes.
    pub fn bytes(&self) -> usize {
        self.table().bytes
    }
}

impl Table {
    /// Drops the least recently used feeds, and slots no longer read,
    /// until the cached ones take at most `target` bytes.
    fn evict(&mut self, target: usize) {
        let mut by_age: Vec<(u64, FeedUrl)> = self
            .slots
            .iter()
            .map(|(url, slot)| (slot.used, url.clone()))
            .collect();
        by_age.sort_unstable_by_key(|(used, _)| *used);
        for (_, url) in by_age {
            if self.bytes <= target {
                break;
            }
            if let Some(Slot {
                feed: Some((_, bytes)),
                ..
            }) = self.slots.remove(&url)
            {
                self.bytes -= bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(n: usize) -> FeedUrl {
        FeedUrl::parse(&format!("https://example.com/{n}.xml")).unwrap()
    }

    fn item(id: ItemId, description: &str) -> StoredItem {
        StoredItem {
            id,
            key: format!("k{id}"),
            guid: Some(format!("g{id}")),
            title: format!("Item \"{id}\""),
            link: Some(format!("https://example.com/{id}")),
            description: description.to_owned(),
            details: None,
            details_hash: 0,
            published: None,
        }
    }

    fn feed(n: usize, items: usize) -> CachedFeed {
        let items: Vec<StoredItem> = (0..items as u64)
            .rev()
            .map(|id| item(id, "<p>x</p>"))
            .collect();
        CachedFeed::new(Some(FeedRecord::new(url(n), chrono::Utc::now())), &items)
    }

    fn miss(lookup: &Lookup) -> Ticket {
        match lookup {
            Lookup::Miss(ticket) => *ticket,
            Lookup::Hit(_) => panic!("expected a miss"),
        }
    }

    #[test]
    fn an_item_is_its_listing_json_with_the_flags_spliced_in() {
        let stored = item(42, "<p>a \"quoted\" summary</p>");
        for (read, starred) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut out = Vec::new();
            CachedItem::new(&stored).write(read, starred, &mut out);
            assert_eq!(
                out,
                serde_json::to_vec(&stored.listed(read, starred)).unwrap(),
                "read {read}, starred {starred}"
            );
        }
    }

    #[test]
    fn a_miss_is_filled_and_then_hit() {
        let cache = FeedCache::new(1 << 20);
        let ticket = miss(&cache.lookup(&[url(1)])[0]);
        cache.fill(&url(1), ticket, feed(1, 3));
        let first = match &cache.lookup(&[url(1)])[0] {
            Lookup::Hit(hit) => hit.clone(),
            Lookup::Miss(_) => panic!("expected a hit"),
        };
        assert_eq!(first.items.len(), 3);
        assert_ne!(first.version, 0, "kept content has a version");
        // After a write, the same feed read again is another version.
        cache.drop_feed(&url(1));
        let ticket = miss(&cache.lookup(&[url(1)])[0]);
        let second = cache.fill(&url(1), ticket, feed(1, 3));
        assert_ne!(second.version, first.version);
        assert_ne!(FeedCache::new(1).epoch(), cache.epoch());
        assert!(cache.bytes() > 0);
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = FeedCache::new(1 << 20);
        // A listing misses and starts reading the store...
        let before = miss(&cache.lookup(&[url(1)])[0]);
        // ...a refresh saves the feed and drops it...
        cache.drop_feed(&url(1));
        // ...another listing misses after the write...
        let after = miss(&cache.lookup(&[url(1)])[0]);
        // ...and the first, older read arrives last: not kept.
        let raced = cache.fill(&url(1), before, feed(1, 1));
        assert_eq!(raced.version, 0, "content not kept has no version");
        assert!(matches!(cache.lookup(&[url(1)])[0], Lookup::Miss(_)));
        // The read that began after the write is.
        cache.fill(&url(1), after, feed(1, 2));
        assert!(matches!(cache.lookup(&[url(1)])[0], Lookup::Hit(_)));
        // A write drops a cached feed too.
        cache.drop_feed(&url(1));
        assert!(matches!(cache.lookup(&[url(1)])[0], Lookup::Miss(_)));
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn past_its_budget_the_least_recently_used_feeds_go() {
        let one = feed(0, 10).bytes();
        let cache = FeedCache::new(one * 5);
        for n in 0..5 {
            let ticket = miss(&cache.lookup(&[url(n)])[0]);
            cache.fill(&url(n), ticket, feed(n, 10));
        }
        assert_eq!(cache.bytes(), one * 5);
        // Feed 0 is read again: feed 1 is now the least recently used.
        assert!(matches!(cache.lookup(&[url(0)])[0], Lookup::Hit(_)));
        let ticket = miss(&cache.lookup(&[url(5)])[0]);
        cache.fill(&url(5), ticket, feed(5, 10));
        // Evicted down to 90% of the budget: feeds 1 and 2, the oldest.
        assert_eq!(cache.bytes(), one * 4);
        let hits: Vec<bool> = cache
            .lookup(&(0..6).map(url).collect::<Vec<_>>())
            .iter()
            .map(|l| matches!(l, Lookup::Hit(_)))
            .collect();
        assert_eq!(hits, [true, false, false, true, true, true]);
    }

    #[test]
    fn a_budget_of_zero_keeps_nothing() {
        let cache = FeedCache::new(0);
        let ticket = miss(&cache.lookup(&[url(1)])[0]);
        let feed = cache.fill(&url(1), ticket, feed(1, 3));
        assert_eq!(feed.items.len(), 3, "the caller still gets what it read");
        assert_eq!(feed.version, 0);
        assert!(matches!(cache.lookup(&[url(1)])[0], Lookup::Miss(_)));
        assert_eq!(cache.bytes(), 0);
    }
}
