//! Subscribing: subscribe (with discovery), unsubscribe, discovery on its
//! own, and OPML export and import.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use common::api::{Discovered, DiscoveredFeed, FeedUrl, OpmlImport, Refused, UserId};

use crate::feeds::discover::{self, Discovery, FoundFeed};
use crate::feeds::opml::{self, OpmlFeed};
use crate::feeds::{Document, fetch::human_duration};
use crate::store::FeedRecord;

use super::{Reader, ReaderError, cap_title};
use crate::feeds::web_url;

/// The feeds of a page that lists several.
#[derive(Debug)]
pub(crate) struct Choice {
    /// The page.
    pub(crate) url: String,
    /// Its feeds.
    pub(crate) feeds: Vec<DiscoveredFeed>,
}

impl Choice {
    /// What the user is asked to do.
    pub(crate) fn question(&self) -> String {
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
pub(crate) enum Subscribe {
    /// Subscribed (already, or now).
    Added(Subscribed),
    /// Nothing stored: the page lists several feeds to choose from.
    Choose(Choice),
}

/// A subscription made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscribed {
    /// The feed stored (the URL given, or the feed found on it).
    pub(crate) url: FeedUrl,
    /// Its title.
    pub(crate) title: Option<String>,
}

/// How long a discovery is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);

/// Discoveries remembered at most.
const DISCOVERY_CACHE: usize = 1024;

impl Reader {
    /// Subscribes `user` to `url`, or to the one feed found on it (see the
    /// module docs).
    pub(crate) async fn subscribe(
        &self,
        user: &UserId,
        url: FeedUrl,
    ) -> Result<Subscribe, ReaderError> {
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
    pub(super) async fn store_subscription(
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

    pub(super) async fn subscribed_to(&self, url: FeedUrl) -> Result<Subscribed, ReaderError> {
        let title = self.store.feed(&url).await?.and_then(|r| r.title);
        Ok(Subscribed { url, title })
    }

    pub(super) async fn check_address(&self, url: &FeedUrl) -> Result<(), ReaderError> {
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
    pub(crate) async fn discover(
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

    pub(super) fn recently_discovered(&self, url: &FeedUrl) -> Option<Discovered> {
        let cache = self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(url)
            .filter(|(at, _)| at.elapsed() < DISCOVERY_TTL)
            .map(|(_, found)| found.clone())
    }

    pub(super) fn remember_discovery(&self, url: FeedUrl, found: &Discovered) {
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
    pub(crate) async fn unsubscribe(
        &self,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<(), ReaderError> {
        self.store.remove(user, url).await?;
        self.refresher.drop_if_unread(url).await?;
        Ok(())
    }

    /// The user's subscriptions as OPML 2.0.
    pub(crate) async fn export_opml(&self, user: &UserId) -> Result<String, ReaderError> {
        let urls = self.subscription_urls(user).await?;
        let records = self.records(&urls).await?;
        let feeds: Vec<OpmlFeed> = urls
            .iter()
            .zip(records)
            .map(|(url, record)| OpmlFeed {
                xml_url: url.to_string(),
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
    pub(crate) async fn import_opml(
        &self,
        user: &UserId,
        text: &str,
    ) -> Result<OpmlImport, ReaderError> {
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
            self.refresher
                .added(record, self.store.add(user, url))
                .await
        });
        futures::future::try_join_all(adds).await?;
        report.added = new.len();
        Ok(report)
    }
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
