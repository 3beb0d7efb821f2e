//! The reader: what each API call does, over the store and the refresher.
//!
//! Handlers in [`crate::api`] parse input and map [`ReaderError`] to HTTP;
//! everything in between is here, one method per call:
//!
//! - **listing** serves stored items with the user's read and starred
//!   state; only a feed never fetched yet is fetched inside the request
//!   (waiting at most `first_fetch_wait`, default 3 s);
//! - **subscribing** checks before it stores: the URL is fetched; a feed is
//!   stored with its items, an HTML page is searched for feeds
//!   ([`crate::feeds::discover`]); one feed found is subscribed, several
//!   are offered (300), none is refused (422), all within
//!   `subscribe_timeout` (default 4 s, inside the edge's 5 s `RSSAdd`);
//! - **read state** is a watermark per feed with per-item overrides
//!   ([`crate::store::ReadState`]); **starring** keeps a copy of the item;
//! - **OPML import** stores subscriptions and never fetches inside the
//!   request: the scheduler fetches the new feeds within a tick.
//!
//! Its rooms mirror [`crate::api`]'s: `reading.rs` (listing, item state,
//! mark-read, refresh now), `articles.rs` (one article whole, the river), `subscriptions.rs` (subscribe, discovery,
//! unsubscribe, OPML), `sync.rs` (the bulk calls of sync clients) and `accounts.rs` (the edge's accounts, and
//! deleting a user with all their data); this file holds what they share.

mod accounts;
mod articles;
mod reading;
mod subscriptions;
mod sync;

pub(crate) use reading::{ListOptions, Listing};
pub(crate) use subscriptions::Subscribe;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::api::{Discovered, FeedUrl, UserId};

use crate::feeds::guard::Blocked;
use crate::feeds::opml::OpmlError;
use crate::feeds::{FeedError, Feeds, fetch::human_duration};
use crate::refresh::{RefreshError, Refresher};
use crate::store::{Store, StoreError};

/// What the reader allows and how long it waits.
#[derive(Debug, Clone)]
pub(crate) struct ReaderSettings {
    /// Subscriptions one user may have.
    pub(crate) max_subscriptions: usize,
    /// How long a listing waits for a feed's first fetch.
    pub(crate) first_fetch_wait: Duration,
    /// How long a subscribe may spend checking and discovering.
    pub(crate) subscribe_timeout: Duration,
    /// Items per feed in a listing, unless `limit` says otherwise.
    pub(crate) default_limit: usize,
    /// Items one user may have starred (each is a copy kept for good).
    pub(crate) max_starred: usize,
}

impl Default for ReaderSettings {
    fn default() -> Self {
        Self {
            max_subscriptions: 100,
            first_fetch_wait: Duration::from_secs(3),
            subscribe_timeout: Duration::from_secs(4),
            default_limit: 50,
            max_starred: 10_000,
        }
    }
}

/// Everything a reader call can refuse, and why. The API maps each to a
/// status once ([`crate::api`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReaderError {
    /// The store is unreachable.
    #[error(
        "the store is unavailable right now, so nothing was read or changed; try again in a moment"
    )]
    Store(#[from] StoreError),
    /// A bug; logged.
    #[error("an internal error occurred; it has been logged")]
    Internal,
    /// The SSRF guard refused the URL.
    #[error(
        "refusing {url}: {blocked}. Feeds must be on the public internet; an operator can allow private addresses with --allow-private-feeds"
    )]
    Blocked {
        /// The URL given.
        url: String,
        /// Why.
        blocked: Blocked,
    },
    /// The user has as many subscriptions as allowed.
    #[error(
        "you already have {0} subscriptions, the most allowed; delete one before adding another"
    )]
    TooManySubscriptions(usize),
    /// The URL could not be read.
    #[error("could not subscribe to {url}: {error}; check the address and try again")]
    Unreadable {
        /// The URL given.
        url: String,
        /// What went wrong.
        error: FeedError,
    },
    /// A page with no feed.
    #[error(
        "no RSS, Atom or JSON feed found at {0}: the page links to none, and none is at the usual places (/feed, /rss.xml, /atom.xml, ...); give the feed's own address"
    )]
    NoFeed(String),
    /// The site did not answer in time.
    #[error(
        "{url} did not answer within {}; try again, or give the feed's own address",
        human_duration(*.after)
    )]
    TimedOut {
        /// The URL given.
        url: String,
        /// The time allowed.
        after: Duration,
    },
    /// The user does not read this feed.
    #[error("you are not subscribed to {0}; subscribe to it first")]
    NotSubscribed(String),
    /// No such item for this user.
    #[error("no item {0} in your feeds; reload to get current item ids")]
    UnknownItem(String),
    /// A sync call asked for too many (or no) items at once.
    #[error(
        "{asked} items asked for in one call; ask for 1 to {max}, and page with the continuation"
    )]
    TooManyIds {
        /// How many were asked for.
        asked: usize,
        /// The most one call takes.
        max: usize,
    },
    /// A change that changes nothing.
    #[error("nothing to change: give \"read\" and/or \"starred\" (true or false)")]
    NothingToChange,
    /// `before` is neither an item id nor a date.
    #[error(
        "{0:?} is neither an item id nor a date; give \"before\" as the newest item id shown (e.g. \"377541449579907\") or in RFC 3339 (e.g. 2026-12-01T10:00:00Z)"
    )]
    BadDate(String),
    /// The user has as many starred items as allowed.
    #[error("you have {0} starred items, the most allowed; unstar some before starring more")]
    TooManyStarred(usize),
    /// No account has this name.
    #[error("there is no account named {0}")]
    NoAccount(String),
    /// The name is taken.
    #[error("an account named {0} already exists; choose another name")]
    AccountExists(String),
    /// The OPML file is refused.
    #[error(transparent)]
    Opml(#[from] OpmlError),
}

impl From<RefreshError> for ReaderError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Store(e) => Self::Store(e),
            RefreshError::Internal => Self::Internal,
        }
    }
}

/// The reader (see the module docs). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Reader {
    store: Arc<dyn Store>,
    /// Reads pages and feeds for subscribing and discovery (the guard
    /// comes with it).
    feeds: Feeds,
    /// Owns each feed's life: adding, refreshing, forgetting.
    refresher: Refresher,
    settings: Arc<ReaderSettings>,
    /// One subscribe or import at a time per user in this process, so the
    /// subscription cap holds however many arrive at once. Entries go when
    /// the last holder is done.
    adding: Arc<std::sync::Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>>,
    /// Discoveries of the last minute, by URL: the same page asked for
    /// again (a user retrying, many users pasting one site) costs no
    /// fetch.
    discovered: Arc<std::sync::Mutex<HashMap<FeedUrl, (std::time::Instant, Discovered)>>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("store", &self.store.name())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader over `store`, reading pages with `feeds` and leaving each
    /// feed's life to `refresher`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        feeds: Feeds,
        refresher: Refresher,
        settings: ReaderSettings,
    ) -> Self {
        Self {
            store,
            feeds,
            refresher,
            settings: Arc::new(settings),
            adding: Arc::default(),
            discovered: Arc::default(),
        }
    }

    /// Holds `user`'s "adding" turn (see the field) until dropped.
    async fn adding_turn(&self, user: &UserId) -> AddingTurn {
        let lock = self
            .adding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(user.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        AddingTurn {
            guard: Some(guard),
            lock,
            user: user.clone(),
            all: self.adding.clone(),
        }
    }

    /// The feed pipeline (for the media proxy's fetches).
    pub(crate) fn pipeline(&self) -> &Feeds {
        &self.feeds
    }

    /// The store (for health checks).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn subscribed(&self, user: &UserId) -> Result<HashSet<FeedUrl>, StoreError> {
        Ok(self.subscription_urls(user).await?.into_iter().collect())
    }

    /// The user's feeds, oldest subscription first.
    async fn subscription_urls(&self, user: &UserId) -> Result<Vec<FeedUrl>, StoreError> {
        Ok(self
            .store
            .list(user)
            .await?
            .into_iter()
            .map(|s| s.url)
            .collect())
    }

    /// Each feed's record, in the order of `urls`.
    async fn records(
        &self,
        urls: &[FeedUrl],
    ) -> Result<Vec<Option<crate::store::FeedRecord>>, StoreError> {
        futures::future::try_join_all(urls.iter().map(|url| self.store.feed(url))).await
    }
}

/// A user's turn to add subscriptions (see [`Reader::adding_turn`]); the
/// map entry goes with the last turn.
struct AddingTurn {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    lock: Arc<tokio::sync::Mutex<()>>,
    user: UserId,
    all: Arc<std::sync::Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Drop for AddingTurn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut all = self
            .all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's and ours: nobody else waits.
        if Arc::strong_count(&self.lock) == 2 {
            all.remove(&self.user);
        }
    }
}

/// A feed's title: its own, else its host (until it has been read).
fn feed_title(url: &FeedUrl, record: Option<&crate::store::FeedRecord>) -> String {
    record
        .and_then(|r| r.title.clone())
        .unwrap_or_else(|| url.host().to_owned())
}

/// A title from outside (an OPML file), cut to what a feed's own may be.
fn cap_title(title: &str) -> String {
    let max = crate::feeds::parse::MAX_TITLE_BYTES;
    if title.len() <= max {
        return title.to_owned();
    }
    let mut cut = max - '…'.len_utf8();
    while !title.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &title[..cut])
}
