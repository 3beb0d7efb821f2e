//! Reading feeds from the web: fetch → parse, and finding feeds on pages.
//!
//! [`Feeds`] is the shell that wires the pure parts together:
//!
//! ```text
//! read(url) ── slot (fair: per user, per host, in all) ── fetch (SSRF guard,
//!              caps, conditional GET) ── parse (blocking pool) ──> Document
//! ```
//!
//! A [`Document`] says what came back: a feed, "not modified", an HTML page
//! (where [`discover`] looks for feeds), or a failure a person can read.
//! Storing what was read, and when to read it again, is
//! [`crate::refresh`]'s job. Metrics: `feed_fetches_total{outcome}`,
//! `feed_fetches_in_flight`, `feed_fetch_duration_seconds`,
//! `feed_parse_duration_seconds`.

pub mod discover;
pub mod fetch;
pub mod guard;
pub mod media;
pub mod opml;
pub mod parse;
pub mod slots;

use std::sync::Arc;

use bytes::Bytes;
use common::api::UserId;
use url::Url;

use fetch::{CacheHints, FetchError, FetchSettings, Fetched, Fetcher, Validators};
use guard::Guard;
use parse::{ParseError, ParseLimits, ParsedFeed};
use slots::{FetchSlots, SlotLimits};

/// Why a feed could not be read. Displayed to the reader as is.
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

/// Why [`Feeds::fetch_on_slot`] fetched nothing.
enum FetchOnSlotError {
    Fetch(FetchError),
    /// The slots are closed (never, while the process runs).
    Closed,
}

/// Everything tunable about reading feeds.
#[derive(Debug, Clone, Default)]
pub struct FeedSettings {
    /// Timeouts and caps of a fetch.
    pub fetch: FetchSettings,
    /// Caps of the parser.
    pub limits: ParseLimits,
    /// Fetches in flight at once: in all, per host and per user.
    pub slots: SlotLimits,
}

/// A feed document, read.
#[derive(Debug)]
pub struct FeedDocument {
    /// What it says.
    pub parsed: ParsedFeed,
    /// Its validators, for the next conditional fetch.
    pub validators: Validators,
    /// When the publisher wants us back.
    pub hints: CacheHints,
}

/// An HTML page, where a feed was expected.
#[derive(Debug)]
pub struct Page {
    /// The page, decoded.
    pub html: String,
    /// Where it came from, after redirects: links on it are relative to it.
    pub url: Url,
}

/// What one read of a URL found.
#[derive(Debug)]
pub enum Document {
    /// A feed.
    Feed(Box<FeedDocument>),
    /// 304: the copy we hold is current.
    NotModified(CacheHints),
    /// An HTML page, not a feed.
    Page(Box<Page>),
    /// Nothing usable, and why.
    Failed(FeedError),
}

/// Fetches and parses feeds (see the module docs). Cheap to clone.
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
    /// Bounds fetches, fairly across users and hosts; a slot is held for
    /// the network part only and released when the body is in (or the
    /// fetch failed).
    slots: FetchSlots,
    settings: FeedSettings,
}

impl Feeds {
    /// Reads feeds with `settings`, fetching only what `guard` allows.
    pub fn new(settings: FeedSettings, guard: Guard) -> Result<Self, reqwest::Error> {
        let fetcher = Fetcher::new(settings.fetch.clone(), guard)?;
        Ok(Self {
            inner: Arc::new(Inner {
                fetcher,
                slots: FetchSlots::new(settings.slots),
                settings,
            }),
        })
    }

    /// The guard the fetcher uses.
    pub fn guard(&self) -> &Guard {
        self.inner.fetcher.guard()
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &FeedSettings {
        &self.inner.settings
    }

    /// Fetches `url` (conditionally, with `validators`) on `user`'s share
    /// of the fetch slots (`None`: the scheduler's), and reads it.
    pub async fn read(
        &self,
        url: &Url,
        validators: &Validators,
        user: Option<&UserId>,
    ) -> Document {
        let document = match self.fetch_on_slot(url, validators, user).await {
            Ok(Fetched::NotModified { hints }) => Document::NotModified(hints),
            Ok(Fetched::Body {
                bytes,
                content_type,
                validators,
                hints,
                final_url,
            }) => {
                let charset = content_type.as_deref().and_then(fetch::charset_of);
                self.parse(bytes, charset, final_url, validators, hints)
                    .await
            }
            Err(FetchOnSlotError::Fetch(e)) => Document::Failed(e.into()),
            Err(FetchOnSlotError::Closed) => Document::Failed(FeedError::Internal),
        };
        let outcome = match &document {
            Document::Feed(_) => "ok",
            Document::NotModified(_) => "not_modified",
            Document::Page(_) => "html_page",
            Document::Failed(e) => e.kind(),
        };
        metrics::counter!("feed_fetches_total", "outcome" => outcome).increment(1);
        document
    }

    /// Parses a body on the blocking pool: a few MiB take milliseconds of
    /// CPU, which must not delay other requests on the async workers.
    /// Fetches `url` once a fetch slot for its host (and `user`) is free:
    /// every fetch, feed or image, waits its turn the same way.
    async fn fetch_on_slot(
        &self,
        url: &Url,
        validators: &Validators,
        user: Option<&UserId>,
    ) -> Result<Fetched, FetchOnSlotError> {
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let Some(_slot) = self
            .inner
            .slots
            .acquire(&host, user.map(UserId::as_str))
            .await
        else {
            return Err(FetchOnSlotError::Closed); // semaphore closed: never happens
        };
        metrics::gauge!("feed_fetches_in_flight").increment(1.0);
        let started = std::time::Instant::now();
        let fetched = self.inner.fetcher.fetch(url, validators).await;
        metrics::gauge!("feed_fetches_in_flight").decrement(1.0);
        metrics::histogram!("feed_fetch_duration_seconds").record(started.elapsed().as_secs_f64());
        fetched.map_err(FetchOnSlotError::Fetch)
    }

    async fn parse(
        &self,
        bytes: Bytes,
        charset: Option<String>,
        url: Url,
        validators: Validators,
        hints: CacheHints,
    ) -> Document {
        let limits = self.inner.settings.limits.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let parsed = parse::parse_feed(&bytes, charset.as_deref(), &url, &limits);
            metrics::histogram!("feed_parse_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            match parsed {
                Ok(parsed) => Document::Feed(Box::new(FeedDocument {
                    parsed,
                    validators,
                    hints,
                })),
                Err(ParseError::HtmlPage) => Document::Page(Box::new(Page {
                    html: parse::decode(&bytes, charset.as_deref()).into_owned(),
                    url,
                })),
                Err(e) => Document::Failed(e.into()),
            }
        })
        .await;
        parsed.unwrap_or_else(|join_error| {
            tracing::error!(error = %join_error, "feed parser panicked");
            Document::Failed(FeedError::Internal)
        })
    }
}

/// `raw` if it is an absolute http(s) URL: the only links a reader shows.
pub(crate) fn web_url(raw: &str) -> Option<String> {
    let url = Url::parse(raw.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.into())
}
