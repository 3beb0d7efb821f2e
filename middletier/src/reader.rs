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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use common::api::{
    Discovered, DiscoveredFeed, FeedUrl, FeedView, Item, ItemChange, ItemState, OpmlImport,
    Refused, UserId,
};

use crate::feeds::discover::{self, Discovery, FoundFeed};
use crate::feeds::guard::Blocked;
use crate::feeds::opml::{self, OpmlError, OpmlFeed};
use crate::feeds::{Document, FeedError, Feeds, fetch::human_duration};
use crate::refresh::{RefreshError, Refresher};
use crate::store::{
    FeedRecord, ItemId, ReadState, StarredItem, Store, StoreError, StoredItem, ids,
};

/// What the reader allows and how long it waits.
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    /// Subscriptions one user may have.
    pub max_subscriptions: usize,
    /// How long a listing waits for a feed's first fetch.
    pub first_fetch_wait: Duration,
    /// How long a subscribe may spend checking and discovering.
    pub subscribe_timeout: Duration,
    /// Items per feed in a listing, unless `limit` says otherwise.
    pub default_limit: usize,
    /// Items one user may have starred (each is a copy kept for good).
    pub max_starred: usize,
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
pub enum ReaderError {
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

/// The feeds of a page that lists several.
#[derive(Debug)]
pub struct Choice {
    /// The page.
    pub url: String,
    /// Its feeds.
    pub feeds: Vec<DiscoveredFeed>,
}

impl Choice {
    /// What the user is asked to do.
    pub fn question(&self) -> String {
        format!(
            "{} lists {} feeds; choose one and subscribe to its URL",
            self.url,
            self.feeds.len()
        )
    }
}

/// What a subscribe did: a success either way, since a page that offers
/// several feeds is an answer, not a failure.
#[derive(Debug)]
pub enum Subscribe {
    /// Subscribed (already, or now).
    Added(Subscribed),
    /// Nothing stored: the page lists several feeds to choose from.
    Choose(Choice),
}

/// A subscription made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// The feed stored (the URL given, or the feed found on it).
    pub url: FeedUrl,
    /// Its title.
    pub title: Option<String>,
}

/// How to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Only unread items.
    pub unread_only: bool,
    /// Items per feed (else the default).
    pub limit: Option<usize>,
}

/// The reader (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Reader {
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

/// How long a discovery is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);
/// Discoveries remembered at most.
const DISCOVERY_CACHE: usize = 1024;

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
    pub fn new(
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

    /// The store (for health checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A user's subscriptions, oldest first, each with its items and state.
    pub async fn feeds(
        &self,
        user: &UserId,
        options: ListOptions,
    ) -> Result<Vec<FeedView>, ReaderError> {
        let subscriptions = self.store.list(user).await?;
        let urls: Vec<FeedUrl> = subscriptions.into_iter().map(|s| s.url).collect();
        let (states, starred, stored) = tokio::try_join!(
            self.store.read_states(user),
            self.starred_ids(user),
            self.store.feeds_with_items(&urls),
        )?;
        let views = urls.iter().zip(stored).map(|(url, stored)| {
            let state = states.get(url).cloned().unwrap_or_default();
            self.view(user, url, stored, state, &starred, options)
        });
        futures::future::try_join_all(views).await
    }

    async fn starred_ids(&self, user: &UserId) -> Result<HashSet<ItemId>, StoreError> {
        Ok(self
            .store
            .starred(user)
            .await?
            .iter()
            .map(|s| s.item.id)
            .collect())
    }

    /// One subscription as the user sees it now, from what the store holds
    /// (`stored`), fetching it first if it was never fetched.
    async fn view(
        &self,
        user: &UserId,
        url: &FeedUrl,
        stored: (Option<FeedRecord>, Vec<StoredItem>),
        state: ReadState,
        starred: &HashSet<ItemId>,
        options: ListOptions,
    ) -> Result<FeedView, ReaderError> {
        let (record, items) = match stored {
            (Some(record), items) if record.last_fetched.is_some() => (Some(record), items),
            (known, _) => {
                let fetched = self.first_fetch(user, url).await?;
                // The fetch stored the items it found.
                (fetched.or(known), self.store.items(url).await?)
            }
        };
        Ok(self.present(url, record.as_ref(), &items, &state, starred, options))
    }

    /// Fetches a feed never fetched, waiting at most `first_fetch_wait`; the
    /// fetch goes on (and is stored) if the wait runs out.
    async fn first_fetch(
        &self,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<Option<FeedRecord>, ReaderError> {
        let refresh = self.refresher.refresh(url, Some(user));
        match tokio::time::timeout(self.settings.first_fetch_wait, refresh).await {
            Ok(Ok(record)) => Ok(Some(record)),
            Ok(Err(RefreshError::Store(e))) => Err(e.into()),
            Ok(Err(RefreshError::Internal)) | Err(_) => Ok(None),
        }
    }

    fn present(
        &self,
        url: &FeedUrl,
        record: Option<&FeedRecord>,
        items: &[StoredItem],
        state: &ReadState,
        starred: &HashSet<ItemId>,
        options: ListOptions,
    ) -> FeedView {
        let limit = options.limit.unwrap_or(self.settings.default_limit);
        let error = match record {
            Some(record) if record.last_fetched.is_some() => record.error.clone(),
            _ => Some(format!(
                "still loading (the publisher has not answered within {}); reload in a few seconds",
                human_duration(self.settings.first_fetch_wait)
            )),
        };
        let error_count = record.map_or(0, |r| r.error_count);
        FeedView {
            url: url.to_string(),
            title: record
                .and_then(|r| r.title.clone())
                .unwrap_or_else(|| url.host().to_owned()),
            items: items
                .iter()
                .filter(|item| !options.unread_only || !state.is_read(item.id))
                .take(limit)
                .map(|item| wire_item(item, state.is_read(item.id), starred.contains(&item.id)))
                .collect(),
            error,
            unread: state.unread(items.iter().map(|i| i.id)),
            last_fetched: record.and_then(|r| r.last_fetched).map(rfc3339),
            next_fetch: record.map(|r| rfc3339(r.next_fetch)),
            error_count,
            failing_since: record.and_then(|r| r.failing_since).map(rfc3339),
            broken: self.refresher.settings().policy.is_broken(error_count),
            site_url: record.and_then(|r| r.site_url.as_deref()).and_then(web_url),
        }
    }

    /// Subscribes `user` to `url`, or to the one feed found on it (see the
    /// module docs).
    pub async fn subscribe(&self, user: &UserId, url: FeedUrl) -> Result<Subscribe, ReaderError> {
        self.check_address(&url).await?;
        // A first look, so a user at the cap is not made to wait for a
        // fetch; the cap is checked again, in the user's turn, below.
        let existing: HashSet<FeedUrl> = self.subscribed(user).await?;
        if existing.contains(&url) {
            return self.subscribed_to(url).await.map(Subscribe::Added);
        }
        if existing.len() >= self.settings.max_subscriptions {
            return Err(ReaderError::TooManySubscriptions(
                self.settings.max_subscriptions,
            ));
        }
        // A feed someone already reads, and that works, needs no check.
        if let Some(record) = self.store.feed(&url).await?
            && record.last_fetched.is_some()
            && record.error_count == 0
        {
            return self
                .store_subscription(user, url, None)
                .await
                .map(Subscribe::Added);
        }
        let found = tokio::time::timeout(
            self.settings.subscribe_timeout,
            discover::discover(&self.feeds, url.url(), Some(user)),
        )
        .await
        .map_err(|_| ReaderError::TimedOut {
            url: url.to_string(),
            after: self.settings.subscribe_timeout,
        })?
        .map_err(|error| ReaderError::Unreadable {
            url: url.to_string(),
            error,
        })?;
        let (feed_url, document) = match found {
            Discovery::Feed(document) => (url, document),
            Discovery::Page(mut feeds) => match feeds.len() {
                0 => return Err(ReaderError::NoFeed(url.to_string())),
                1 => {
                    let found = feeds.remove(0);
                    (found.url, found.document)
                }
                _ => {
                    return Ok(Subscribe::Choose(Choice {
                        url: url.to_string(),
                        feeds: offered(&feeds),
                    }));
                }
            },
        };
        self.store_subscription(user, feed_url, Some(Document::Feed(document)))
            .await
            .map(Subscribe::Added)
    }

    /// Stores a subscription (and, first, the feed read for it), in the
    /// user's turn: the cap is checked where no other subscribe of theirs
    /// can slip in between, however many arrive at once. The fetches
    /// before it run side by side; only this short part is one at a time.
    async fn store_subscription(
        &self,
        user: &UserId,
        feed_url: FeedUrl,
        document: Option<Document>,
    ) -> Result<Subscribed, ReaderError> {
        let _turn = self.adding_turn(user).await;
        let existing: HashSet<FeedUrl> = self.subscribed(user).await?;
        if existing.contains(&feed_url) {
            return self.subscribed_to(feed_url).await;
        }
        if existing.len() >= self.settings.max_subscriptions {
            return Err(ReaderError::TooManySubscriptions(
                self.settings.max_subscriptions,
            ));
        }
        let title = match document {
            // The feed and its items first, then the subscription: a
            // listing never finds a subscription with nothing behind it.
            Some(document) => self.refresher.save(&feed_url, document).await?.title,
            None => self.store.feed(&feed_url).await?.and_then(|r| r.title),
        };
        self.store.add(user, &feed_url).await?;
        Ok(Subscribed {
            url: feed_url,
            title,
        })
    }

    async fn subscribed_to(&self, url: FeedUrl) -> Result<Subscribed, ReaderError> {
        let title = self.store.feed(&url).await?.and_then(|r| r.title);
        Ok(Subscribed { url, title })
    }

    async fn subscribed(&self, user: &UserId) -> Result<HashSet<FeedUrl>, StoreError> {
        Ok(self
            .store
            .list(user)
            .await?
            .into_iter()
            .map(|s| s.url)
            .collect())
    }

    async fn check_address(&self, url: &FeedUrl) -> Result<(), ReaderError> {
        self.feeds
            .guard()
            .check_url(url.url())
            .await
            .map_err(|blocked| ReaderError::Blocked {
                url: url.to_string(),
                blocked,
            })
    }

    /// The feeds at `url` (itself, if it is one), fetched on `user`'s
    /// share of the fetch slots; the same URL within a minute is answered
    /// from the last discovery.
    pub async fn discover(
        &self,
        url: FeedUrl,
        user: Option<&UserId>,
    ) -> Result<Discovered, ReaderError> {
        self.check_address(&url).await?;
        if let Some(found) = self.recently_discovered(&url) {
            return Ok(found);
        }
        let found = tokio::time::timeout(
            self.settings.subscribe_timeout,
            discover::discover(&self.feeds, url.url(), user),
        )
        .await;
        let (feeds, error) = match found {
            Ok(Ok(Discovery::Feed(document))) => (
                vec![DiscoveredFeed {
                    url: url.to_string(),
                    title: document.parsed.title.clone(),
                    media_type: document.parsed.format.media_type().to_owned(),
                }],
                None,
            ),
            Ok(Ok(Discovery::Page(found))) => (offered(&found), None),
            Ok(Err(error)) => (Vec::new(), Some(format!("could not read {url}: {error}"))),
            Err(_) => (
                Vec::new(),
                Some(format!(
                    "{url} did not answer within {}",
                    human_duration(self.settings.subscribe_timeout)
                )),
            ),
        };
        let discovered = Discovered { error, feeds };
        self.remember_discovery(url, &discovered);
        Ok(discovered)
    }

    fn recently_discovered(&self, url: &FeedUrl) -> Option<Discovered> {
        let cache = self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(url)
            .filter(|(at, _)| at.elapsed() < DISCOVERY_TTL)
            .map(|(_, found)| found.clone())
    }

    fn remember_discovery(&self, url: FeedUrl, found: &Discovered) {
        let mut cache = self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= DISCOVERY_CACHE {
            cache.retain(|_, (at, _)| at.elapsed() < DISCOVERY_TTL);
        }
        if cache.len() < DISCOVERY_CACHE {
            cache.insert(url, (std::time::Instant::now(), found.clone()));
        }
    }

    /// Unsubscribes; a feed nobody reads any more is forgotten.
    pub async fn unsubscribe(&self, user: &UserId, url: &FeedUrl) -> Result<(), ReaderError> {
        self.store.remove(user, url).await?;
        self.refresher.drop_if_unread(url).await?;
        Ok(())
    }

    /// Marks one item read or unread, starred or not.
    pub async fn set_item(
        &self,
        user: &UserId,
        id: common::api::ItemId,
        change: ItemChange,
    ) -> Result<ItemState, ReaderError> {
        if change.read.is_none() && change.starred.is_none() {
            return Err(ReaderError::NothingToChange);
        }
        let unknown = || ReaderError::UnknownItem(id.to_string());
        let id: ItemId = id.get();
        let subscribed = self.subscribed(user).await?;
        let starred = self.store.starred(user).await?;
        let (feed, item) = match self.store.item(id).await? {
            Some((feed, item)) if subscribed.contains(&feed) => (feed, item),
            // A starred item may have left its feed's window.
            _ => match starred.iter().find(|s| s.item.id == id) {
                Some(s) => (s.feed.clone(), s.item.clone()),
                None => return Err(unknown()),
            },
        };
        let mut state = self
            .store
            .read_states(user)
            .await?
            .remove(&feed)
            .unwrap_or_default();
        if let Some(read) = change.read {
            let override_ = state.mark(id, read);
            self.store
                .set_read_override(user, &feed, id, override_)
                .await?;
            if state.overrides.len() > self.refresher.settings().keep_items {
                self.prune_overrides(user, &feed, &state).await?;
            }
        }
        let was_starred = starred.iter().any(|s| s.item.id == id);
        let is_starred = match change.starred {
            Some(true) if !was_starred && starred.len() >= self.settings.max_starred => {
                return Err(ReaderError::TooManyStarred(self.settings.max_starred));
            }
            Some(star) => {
                let item = StarredItem { feed, item };
                self.store.set_starred(user, &item, star).await?;
                star
            }
            None => was_starred,
        };
        Ok(ItemState {
            id: common::api::ItemId::new(id),
            read: state.is_read(id),
            starred: is_starred,
        })
    }

    /// Drops the overrides of items no longer stored in `feed`: they can
    /// never be shown again, and without this a user who toggles items of
    /// a busy feed would keep them for ever.
    async fn prune_overrides(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        state: &ReadState,
    ) -> Result<(), StoreError> {
        let stored: HashSet<ItemId> = self.store.items(feed).await?.iter().map(|i| i.id).collect();
        let stale = state.overrides.keys().filter(|id| !stored.contains(id));
        futures::future::try_join_all(
            stale.map(|id| self.store.set_read_override(user, feed, *id, None)),
        )
        .await
        .map(drop)
    }

    /// Marks read the items of one feed (or all) up to `before`: the newest
    /// item id the user was shown (that item included), or a date (items
    /// first stored before it); without it, all. Items stored after the
    /// mark stay unread, whatever any middletier's clock says: no feed's
    /// watermark goes past its newest stored item.
    pub async fn mark_read(
        &self,
        user: &UserId,
        url: Option<FeedUrl>,
        before: Option<&str>,
    ) -> Result<usize, ReaderError> {
        let before = before.map(parse_before).transpose()?;
        let subscribed = self.subscribed(user).await?;
        let feeds: Vec<FeedUrl> = match url {
            Some(url) if subscribed.contains(&url) => vec![url],
            Some(url) => return Err(ReaderError::NotSubscribed(url.to_string())),
            None => subscribed.into_iter().collect(),
        };
        let states = self.store.read_states(user).await?;
        let marks = feeds.iter().map(|feed| {
            let mut state = states.get(feed).cloned().unwrap_or_default();
            async move {
                let ids: Vec<ItemId> = self.store.items(feed).await?.iter().map(|i| i.id).collect();
                let newest = ids.iter().max().map_or(0, |max| max + 1);
                let watermark = match before {
                    Some(Before::Item(id)) => id.saturating_add(1),
                    Some(Before::Date(at)) => ids::first_id_at(at),
                    None => newest,
                }
                .min(newest);
                let unread = state.unread(ids.iter().copied());
                state.mark_read_before(watermark);
                let marked = unread - state.unread(ids.iter().copied());
                if marked > 0 {
                    self.store.mark_read_before(user, feed, watermark).await?;
                }
                Ok::<_, StoreError>(marked)
            }
        });
        Ok(futures::future::try_join_all(marks)
            .await?
            .into_iter()
            .sum())
    }

    /// Fetches one of the user's feeds now; returns it as a listing would.
    pub async fn refresh(&self, user: &UserId, url: &FeedUrl) -> Result<FeedView, ReaderError> {
        if !self.subscribed(user).await?.contains(url) {
            return Err(ReaderError::NotSubscribed(url.to_string()));
        }
        let record = self.refresher.refresh(url, Some(user)).await?;
        let (states, starred, items) = tokio::try_join!(
            self.store.read_states(user),
            self.starred_ids(user),
            self.store.items(url),
        )?;
        let state = states.get(url).cloned().unwrap_or_default();
        Ok(self.present(
            url,
            Some(&record),
            &items,
            &state,
            &starred,
            ListOptions::default(),
        ))
    }

    /// The user's subscriptions as OPML 2.0.
    pub async fn export_opml(&self, user: &UserId) -> Result<String, ReaderError> {
        let subscriptions = self.store.list(user).await?;
        let records =
            futures::future::try_join_all(subscriptions.iter().map(|s| self.store.feed(&s.url)))
                .await?;
        let feeds: Vec<OpmlFeed> = subscriptions
            .iter()
            .zip(records)
            .map(|(s, record)| OpmlFeed {
                xml_url: s.url.to_string(),
                title: record.as_ref().and_then(|r| r.title.clone()),
                html_url: record
                    .and_then(|r| r.site_url)
                    .and_then(|site| web_url(&site)),
            })
            .collect();
        Ok(opml::write(
            &format!("Subscriptions of {user} (RSS Recipes)"),
            &feeds,
            Utc::now(),
        ))
    }

    /// Subscribes to every feed of an OPML file; fetches none of them
    /// here (the scheduler will, within a tick).
    pub async fn import_opml(&self, user: &UserId, text: &str) -> Result<OpmlImport, ReaderError> {
        let entries = opml::read(text)?;
        let _turn = self.adding_turn(user).await;
        let subscribed = self.subscribed(user).await?;
        let guard = self.feeds.guard();
        let mut report = OpmlImport::default();
        let mut seen = HashSet::new();
        let mut count = subscribed.len();
        let mut new = Vec::new();
        for entry in entries {
            let refuse = |error: String| Refused {
                url: entry.xml_url.chars().take(2048).collect(),
                error,
            };
            let url = match FeedUrl::parse(&entry.xml_url) {
                Ok(url) => url,
                Err(e) => {
                    report.refused.push(refuse(e.to_string()));
                    continue;
                }
            };
            if let Err(blocked) = guard.check_literal(url.url()) {
                let error = ReaderError::Blocked {
                    url: url.to_string(),
                    blocked,
                };
                report.refused.push(refuse(error.to_string()));
                continue;
            }
            if !seen.insert(url.clone()) {
                report.refused.push(refuse(
                    "listed more than once in this file; added once".into(),
                ));
                continue;
            }
            if subscribed.contains(&url) {
                report.existing += 1;
                continue;
            }
            if count >= self.settings.max_subscriptions {
                let error = ReaderError::TooManySubscriptions(self.settings.max_subscriptions);
                report.refused.push(refuse(error.to_string()));
                continue;
            }
            count += 1;
            new.push((url, entry));
        }
        let now = Utc::now();
        let adds = new.iter().map(|(url, entry)| async move {
            // The file names the feed until its first fetch does: only an
            // http(s) site and a title of sane length are taken.
            let record = FeedRecord {
                title: entry.title.as_deref().map(cap_title),
                site_url: entry.html_url.as_deref().and_then(web_url),
                ..FeedRecord::new(url.clone(), now)
            };
            self.refresher.added(record).await?;
            self.store.add(user, url).await?;
            Ok::<_, StoreError>(())
        });
        futures::future::try_join_all(adds).await?;
        report.added = new.len();
        Ok(report)
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

/// Where a mark-read stops.
#[derive(Debug, Clone, Copy)]
enum Before {
    /// Up to this item id, included.
    Item(ItemId),
    /// Items first stored before this time.
    Date(DateTime<Utc>),
}

fn parse_before(raw: &str) -> Result<Before, ReaderError> {
    let raw = raw.trim();
    if let Ok(id) = raw.parse::<ItemId>() {
        return Ok(Before::Item(id));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|d| Before::Date(d.with_timezone(&Utc)))
        .map_err(|_| ReaderError::BadDate(raw.chars().take(60).collect()))
}

/// Feeds found on a page, as the API offers them.
fn offered(found: &[FoundFeed]) -> Vec<DiscoveredFeed> {
    found
        .iter()
        .map(|f| DiscoveredFeed {
            url: f.url.to_string(),
            title: f.title.clone(),
            media_type: f.format.media_type().to_owned(),
        })
        .collect()
}

/// An item as the API shows it.
fn wire_item(item: &StoredItem, read: bool, starred: bool) -> Item {
    Item {
        id: common::api::ItemId::new(item.id),
        guid: item.guid.clone(),
        title: item.title.clone(),
        // Stored before links were checked as they are now: checked again.
        link: item.link.as_deref().and_then(web_url),
        description: item.description.clone(),
        published: item.published.clone(),
        read,
        starred,
    }
}

/// `raw` if it is an absolute http(s) URL.
fn web_url(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.into())
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

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
