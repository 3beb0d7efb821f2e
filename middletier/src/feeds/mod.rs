//! The feed pipeline: fetch → parse → cache → view.
//!
//! [`Feeds`] is the shell that wires the pure parts together:
//!
//! ```text
//! view(url) ── fresh in cache? ──yes──> FeedView
//!                  │no
//!                  └─> refresh task (single flight per URL; bounded by a
//!                      semaphore across all URLs)
//!                        fetch (conditional GET) → parse (blocking pool)
//!                        → cache entry
//! ```
//!
//! A request waits for a refresh at most `wait` (default 3 s). If the
//! publisher is slower, the request gets the stale copy (or "still loading")
//! and the refresh carries on in the background to fill the cache for the
//! next view: one slow feed never holds a whole page hostage, and the edge's
//! 10 s `RSSGet` timeout is never the thing that fires.

pub mod cache;
pub mod fetch;
pub mod guard;
pub mod parse;
pub mod slots;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use common::api::{FeedUrl, UserId};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use cache::{Entry, FeedCache, Outcome, Slot};
use fetch::{FetchError, FetchSettings, Fetched, Fetcher};
use guard::Guard;
use parse::{ParseError, ParseLimits, ParsedFeed};
use slots::{FetchSlots, SlotLimits};

/// Why a feed has no fresh items. Displayed to the reader as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The fetch failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The document is not a feed we can read.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A bug: a task failed; logged.
    #[error("could not be read because of an internal error; it has been logged")]
    Internal,
}

impl FeedError {
    /// A short, stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fetch(e) => e.kind(),
            Self::Parse(e) => e.kind(),
            Self::Internal => "internal",
        }
    }
}

/// Everything tunable about the pipeline.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Timeouts and caps of a fetch.
    pub fetch: FetchSettings,
    /// Caps of the parser.
    pub limits: ParseLimits,
    /// How long a fetched feed is served from the cache.
    pub ttl: Duration,
    /// How long a failure is remembered before trying again.
    pub error_ttl: Duration,
    /// How long a request waits for a refresh before answering without it.
    pub wait: Duration,
    /// Fetches in flight at once: in all, per host and per user.
    pub slots: SlotLimits,
    /// Feed URLs remembered.
    pub cache_capacity: usize,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            fetch: FetchSettings::default(),
            limits: ParseLimits::default(),
            ttl: Duration::from_secs(300),
            error_ttl: Duration::from_secs(30),
            wait: Duration::from_secs(3),
            slots: SlotLimits::default(),
            cache_capacity: 1000,
        }
    }
}

/// The feed pipeline. Cheap to clone; clones share cache and limits.
/// The feed pipeline (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Feeds {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Feeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeds")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner {
    fetcher: Fetcher,
    cache: FeedCache,
    /// Bounds fetches, fairly across users and hosts; a slot is held for
    /// the network part only and released when the body is in (or the
    /// fetch failed).
    slots: FetchSlots,
    settings: FeedSettings,
}

impl Feeds {
    /// A pipeline with `settings`, fetching only what `guard` allows.
    pub fn new(settings: FeedSettings, guard: Guard) -> Result<Self, reqwest::Error> {
        let fetcher = Fetcher::new(settings.fetch.clone(), guard)?;
        Ok(Self {
            inner: Arc::new(Inner {
                fetcher,
                cache: FeedCache::new(settings.cache_capacity),
                slots: FetchSlots::new(settings.slots),
                settings,
            }),
        })
    }

    /// The guard the fetcher uses.
    pub fn guard(&self) -> &Guard {
        self.inner.fetcher.guard()
    }

    /// `user`'s views of many feeds, fetched concurrently, in the order
    /// given.
    pub async fn views(&self, user: &UserId, urls: &[FeedUrl]) -> Vec<FeedView> {
        futures::future::join_all(urls.iter().map(|url| self.view(user, url))).await
    }

    /// Starts a refresh of `url` in the background, on `user`'s share of
    /// the fetch slots (after a subscribe, so the first page view is likely
    /// a cache hit).
    pub fn prefetch(&self, user: &UserId, url: &FeedUrl) {
        let slot = self.inner.cache.slot(url.as_str());
        tokio::spawn(self.clone().refresh(user.clone(), url.clone(), slot));
    }

    /// One feed as `user` should see it now.
    pub async fn view(&self, user: &UserId, url: &FeedUrl) -> FeedView {
        let settings = &self.inner.settings;
        let slot = self.inner.cache.slot(url.as_str());
        let current = slot.current();
        if let Some(entry) = current.as_ref()
            && entry.is_fresh(Instant::now(), settings.ttl, settings.error_ttl)
        {
            metrics::counter!("feed_cache_requests_total", "result" => "hit").increment(1);
            return FeedView::of(url, Some(entry));
        }
        metrics::counter!("feed_cache_requests_total", "result" => "miss").increment(1);

        // The refresh runs as its own task so that it finishes (and fills
        // the cache) even when this request stops waiting for it.
        let refresh = tokio::spawn(self.clone().refresh(user.clone(), url.clone(), slot));
        match tokio::time::timeout(settings.wait, refresh).await {
            Ok(Ok(entry)) => FeedView::of(url, Some(&entry)),
            Ok(Err(join_error)) => {
                tracing::error!(url = %url, error = %join_error, "feed refresh task failed");
                let mut view = FeedView::of(url, current.as_ref());
                view.error = Some(FeedError::Internal.to_string());
                view
            }
            Err(_still_running) => match current {
                // Stale-while-revalidate: the old items beat no items.
                Some(entry) => FeedView::of(url, Some(&entry)),
                None => FeedView {
                    url: url.clone(),
                    feed: None,
                    error: Some(format!(
                        "still loading (the publisher has not answered within {}); reload in a few seconds",
                        fetch::human_duration(settings.wait)
                    )),
                },
            },
        }
    }

    /// Brings the slot up to date, unless someone did while we queued.
    async fn refresh(self, user: UserId, url: FeedUrl, slot: Arc<Slot>) -> Entry {
        let settings = &self.inner.settings;
        let _flight = slot.refreshing.lock().await;
        let previous = slot.current();
        if let Some(entry) = previous.as_ref()
            && entry.is_fresh(Instant::now(), settings.ttl, settings.error_ttl)
        {
            return entry.clone();
        }
        let outcome = self.fetch_and_parse(&user, &url, previous.as_ref()).await;
        let label = match &outcome {
            Outcome::Fresh(..) => "ok",
            Outcome::NotModified => "not_modified",
            Outcome::Failed(e) => e.kind(),
        };
        metrics::counter!("feed_fetches_total", "outcome" => label).increment(1);
        if let Outcome::Failed(error) = &outcome {
            tracing::info!(url = %url, error = %error, "feed refresh failed");
        }
        let entry = Entry::next(previous.as_ref(), outcome, Instant::now());
        slot.set(entry.clone());
        entry
    }

    async fn fetch_and_parse(
        &self,
        user: &UserId,
        url: &FeedUrl,
        previous: Option<&Entry>,
    ) -> Outcome {
        let validators = Entry::validators_for_refresh(previous);
        let fetched = {
            let host = format!(
                "{}:{}",
                url.host(),
                url.url().port_or_known_default().unwrap_or(0)
            );
            let Some(_slot) = self.inner.slots.acquire(&host, Some(user.as_str())).await else {
                return Outcome::Failed(FeedError::Internal); // semaphore closed: never happens
            };
            metrics::gauge!("feed_fetches_in_flight").increment(1.0);
            let started = std::time::Instant::now();
            let fetched = self.inner.fetcher.fetch(url.url(), &validators).await;
            metrics::gauge!("feed_fetches_in_flight").decrement(1.0);
            metrics::histogram!("feed_fetch_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            fetched
        };
        let (bytes, charset, validators) = match fetched {
            Ok(Fetched::NotModified) => return Outcome::NotModified,
            Ok(Fetched::Body {
                bytes,
                charset,
                validators,
            }) => (bytes, charset, validators),
            Err(e) => return Outcome::Failed(e.into()),
        };
        // Parsing a few MiB takes milliseconds of CPU: keep it off the
        // async workers so other requests are not delayed behind it.
        let base = url.url().clone();
        let limits = self.inner.settings.limits.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let parsed =
                parse::parse_feed(&bytes, charset.as_deref(), &base, &limits).map(ReadyFeed::new);
            metrics::histogram!("feed_parse_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            parsed
        })
        .await;
        match parsed {
            Ok(Ok(feed)) => Outcome::Fresh(Arc::new(feed), validators),
            Ok(Err(e)) => Outcome::Failed(e.into()),
            Err(join_error) => {
                tracing::error!(url = %url, error = %join_error, "feed parser panicked");
                Outcome::Failed(FeedError::Internal)
            }
        }
    }
}

/// A parsed feed, ready to serve many times.
///
/// The items are serialized to JSON once, when the document is parsed; every
/// page view then copies those bytes instead of cloning and re-serializing
/// the items (measured in BENCHMARKS.md).
#[derive(Debug)]
pub struct ReadyFeed {
    /// The feed's title, if it has one.
    pub title: Option<String>,
    items: Box<RawValue>,
}

impl ReadyFeed {
    /// Serializes `parsed`'s items once, for every later view.
    pub fn new(parsed: ParsedFeed) -> Self {
        let items = serde_json::value::to_raw_value(&parsed.items)
            // Serializing strings and options cannot fail; be safe anyway.
            .unwrap_or_else(|_| empty_items().to_owned());
        Self {
            title: parsed.title,
            items,
        }
    }

    /// The items as JSON text.
    pub fn items_json(&self) -> &str {
        self.items.get()
    }
}

impl PartialEq for ReadyFeed {
    fn eq(&self, other: &Self) -> bool {
        self.title == other.title && self.items.get() == other.items.get()
    }
}

fn empty_items() -> &'static RawValue {
    static EMPTY: LazyLock<Box<RawValue>> =
        LazyLock::new(|| RawValue::from_string("[]".to_owned()).unwrap_or_default());
    &EMPTY
}

/// One subscription as the API shows it; serializes to the contract's
/// `{"url", "title", "items", "error"}` ([`common::api::FeedView`]).
#[derive(Debug, Clone)]
pub struct FeedView {
    url: FeedUrl,
    feed: Option<Arc<ReadyFeed>>,
    error: Option<String>,
}

impl FeedView {
    fn of(url: &FeedUrl, entry: Option<&Entry>) -> Self {
        Self {
            url: url.clone(),
            feed: entry.and_then(|e| e.feed.clone()),
            error: entry
                .and_then(|e| e.error.as_ref())
                .map(ToString::to_string),
        }
    }
}

impl Serialize for FeedView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            url: &'a str,
            title: &'a str,
            items: &'a RawValue,
            error: Option<&'a str>,
        }
        let feed = self.feed.as_deref();
        Wire {
            url: self.url.as_str(),
            title: feed
                .and_then(|f| f.title.as_deref())
                .unwrap_or_else(|| self.url.host()),
            items: match feed {
                Some(f) => &f.items,
                None => empty_items(),
            },
            error: self.error.as_deref(),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::api::Item;

    #[test]
    fn a_view_serializes_to_the_contract_shape() {
        let url = FeedUrl::parse("https://example.com/feed.xml").unwrap();
        let item = Item {
            title: "Hello".into(),
            link: Some("https://example.com/1".into()),
            description: "<p>Hi</p>".into(),
            published: None,
        };
        let ready = ReadyFeed::new(ParsedFeed {
            title: Some("Example".into()),
            items: vec![item.clone()],
        });
        let view = FeedView {
            url: url.clone(),
            feed: Some(Arc::new(ready)),
            error: Some("timed out after 10 s".into()),
        };
        let parsed: common::api::FeedView =
            serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();
        assert_eq!(
            parsed,
            common::api::FeedView {
                url: url.to_string(),
                title: "Example".into(),
                items: vec![item],
                error: Some("timed out after 10 s".into()),
            }
        );
    }

    #[test]
    fn a_feed_never_read_shows_its_host_and_no_items() {
        let url = FeedUrl::parse("https://example.com/feed.xml").unwrap();
        let json = serde_json::to_value(FeedView::of(&url, None)).unwrap();
        assert_eq!(json["title"], "example.com");
        assert_eq!(json["items"], serde_json::json!([]));
        assert_eq!(json["error"], serde_json::Value::Null);
    }
}
