//! The edge's view of the middle tier: one named command per kind of call
//! (the 2013 recipe's three, and the reader's), each with its own breaker,
//! timeout and bulkhead, each calling the middletier through the load
//! balancer.
//!
//! | command | call | timeout | fallback |
//! |---|---|---|---|
//! | `RSSGet` | `GET /middletier/rss/user/{user}`, with `If-None-Match` when it holds a copy | 10 s | the user's last good answer, marked degraded; else an empty degraded list |
//! | `RSSAdd` | `POST ...?url=` | 5 s | none: the user is told the change was not saved |
//! | `RSSDel` | `DELETE ...?url=` | 2 s | none, likewise |
//! | `RSSItem` | `PUT .../items/{id}` | 2 s | none |
//! | `RSSMarkRead` | `POST .../mark-read` | 2 s | none |
//! | `RSSRefresh` | `POST .../refresh?url=` | 12 s | none |
//! | `RSSDiscover` | `GET /middletier/rss/discover?url=` | 5 s | none: "could not look now" is honest, an empty list would not be |
//! | `RSSOpmlExport` | `GET .../opml` | 5 s | none: a partial export would lose feeds silently |
//! | `RSSOpmlImport` | `POST .../opml` | 5 s | none |
//! | `RSSAccount` | `/middletier/accounts[/{user}]` | 5 s | none: the sign-in check falls back on the cookie itself ([`crate::auth`]) |
//! | `RSSArticle` | `GET .../items/{id}` | 5 s | none: an article is read live or not at all |
//! | `RSSRiver` | `GET .../river` | 5 s | none |
//! | `RSSMedia` | `GET /middletier/media?url=` | 12 s | none: a missing image shows as one |
//! | `GReaderFeeds`, `GReaderIds`, `GReaderItems`, `GReaderStream`, `GReaderEdit` | `.../sync/...` ([`common::sync`]) | 10 s | none: a sync app takes a saved or empty answer as the truth ([`sync`]) |
//! | `GReaderMarkAll`, `GReaderSubscribe`, `GReaderUnsubscribe` | `mark-read`, `POST`/`DELETE ...?url=` | 2 s, 5 s, 2 s | none |
//!
//! Reads may fall back to the last good answer; writes never pretend.
//! The command's deadline is handed to the balancer, so its retries (one
//! more try on the same instance, one on the next) all fit inside the
//! command's timeout. A 4xx from the middletier (an invalid or refused URL)
//! is the user's error: it is shown to them and not held against the
//! middletier's breaker.

use std::sync::Arc;

use bytes::Bytes;
use common::api::{
    Article, Discovered, FeedUrl, FeedView, ItemChange, ItemId, ItemState, MarkRead, Marked,
    OpmlImport, River, SubscriptionChange, UserFeeds, UserId,
};
use common::balancer::http::BalancedClient;
use common::ratelimit::{RateKey, WriteLimiter};
use common::resilience::{Command, CommandError, Failure, Outcome};
use serde::de::IgnoredAny;

use crate::config::PerCommand;
use crate::fallback::Saved;

mod accounts;
mod call;
mod sync;

pub(crate) use call::{CallError, CallFailure, describe};
use call::{Decode, write_error};

/// A read, live or from the fallback.
///
/// The body is the middletier's JSON as it came (checked to be
/// `{"user", "subscriptions"}`, not parsed): the API passes it on with
/// `"degraded"` added, without decoding and re-encoding a thousand items;
/// the page parses it with [`Read::feeds`].
#[derive(Debug, Clone)]
pub(crate) struct Read {
    pub body: Bytes,
    /// Why the live answer was not available, when it was not.
    pub degraded: Option<String>,
}

impl Read {
    /// The feeds, decoded. A body that will not decode (its frame was
    /// checked when it arrived, so this should not happen) reads as no
    /// feeds, and is logged.
    pub(crate) fn feeds(&self, user: &UserId) -> UserFeeds {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            tracing::error!(%error, %user, "a listing passed its frame check but does not decode");
            empty(user)
        })
    }
}

/// A listing and the middletier's tag of it, if it gave one.
type Tagged = (Bytes, Option<String>);

/// An empty listing's bytes: the fallback of a user with no saved answer.
fn empty_body(user: &UserId) -> Bytes {
    Bytes::from(serde_json::to_vec(&empty(user)).unwrap_or_default())
}

fn empty(user: &UserId) -> UserFeeds {
    UserFeeds {
        user: user.to_string(),
        subscriptions: Vec::new(),
    }
}

/// The shape a read must have; fields are checked for presence only.
#[derive(serde::Deserialize)]
struct Shape {
    #[serde(rename = "user")]
    _user: IgnoredAny,
    #[serde(rename = "subscriptions")]
    _subscriptions: IgnoredAny,
}

/// Whether `body` is a listing of `user`'s feeds.
///
/// Our middletier writes exactly `{"user":"<user>","subscriptions":[…]}`,
/// so its frame is checked: the start names this user, the end closes the
/// list. That catches what goes wrong in practice (a proxy's HTML error
/// page, another service's or another user's answer, a cut body) without
/// walking a 200 KB answer, which took a third of the edge's CPU. Anything
/// else is walked in full: it passes if it has the contract's fields
/// (spaces, another order and extra fields are fine).
fn check_shape(user: &UserId, body: &[u8]) -> Result<(), String> {
    let list = body
        .strip_prefix(b"{\"user\":\"")
        .and_then(|rest| rest.strip_prefix(user.as_str().as_bytes()))
        .and_then(|rest| rest.strip_prefix(b"\",\"subscriptions\":["));
    if list.is_some_and(|list| list.ends_with(b"]}")) {
        return Ok(());
    }
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        return Err("not a JSON object".to_owned());
    }
    serde_json::from_slice::<Shape>(body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The commands, each by its name (see [`PerCommand`]).
pub(crate) type Commands = PerCommand<Command>;

/// What a subscribe did: subscribed, or found several feeds to choose from.
#[derive(Debug, Clone)]
pub(crate) enum Subscribed {
    Added(SubscriptionChange),
    Choice(Box<Discovered>),
}

/// Calls to the middle tier. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Middletier {
    client: BalancedClient,
    /// Shared, not copied: a handler clones the middletier per request.
    pub commands: Arc<Commands>,
    saved: Arc<Saved>,
    /// Per-user limit on adds, deletes and imports; `None`: no limit.
    writes: Option<Arc<WriteLimiter>>,
}

impl Middletier {
    pub(crate) fn new(
        client: BalancedClient,
        commands: Commands,
        writes: Option<WriteLimiter>,
    ) -> Self {
        Self {
            client,
            commands: Arc::new(commands),
            saved: Arc::default(),
            writes: writes.map(Arc::new),
        }
    }

    /// Refuses a change (or a fetch a user asks for) when this key has
    /// made too many just now.
    fn admit_write(&self, key: &RateKey) -> Result<(), CallError> {
        match &self.writes {
            Some(limiter) => limiter.check(key).map_err(CallError::TooFast),
            None => Ok(()),
        }
    }

    pub(crate) fn client(&self) -> &BalancedClient {
        &self.client
    }

    pub(crate) fn commands(&self) -> [&Command; crate::config::COMMANDS] {
        self.commands.all()
    }

    /// `RSSGet`: the user's feeds, `limit` items each, or the fallback.
    /// Only the full view (`unread_only` false) is saved for the fallback,
    /// which serves every view.
    ///
    /// An answer too large for this user (their feeds' items are huge) is
    /// their problem, not the middletier's: it does not count against the
    /// breaker every user shares, and they are shown their feeds without
    /// items, so they can still see and remove them.
    pub(crate) async fn read(&self, user: &UserId, unread_only: bool, limit: usize) -> Read {
        let read = self.read_live(user, unread_only, limit).await;
        match read {
            Err(CommandError::BadRequest(failure)) if failure.is_too_large() => {
                let reason = failure.to_string();
                match self.read_live(user, unread_only, 0).await {
                    Ok(Outcome::Primary((body, _))) => Read {
                        body,
                        degraded: Some(format!(
                            "your feeds are shown without their items: {reason}"
                        )),
                    },
                    other => self.as_read(user, unread_only, other),
                }
            }
            other => self.as_read(user, unread_only, other),
        }
    }

    /// The live answer and its tag. Asks with the tag of the saved copy
    /// (the full view's), and is served that copy when the middletier says
    /// it is still current (304): the middletier then neither encodes nor
    /// sends it.
    async fn read_live(
        &self,
        user: &UserId,
        unread_only: bool,
        limit: usize,
    ) -> Result<Outcome<Tagged, CallFailure>, CommandError<CallFailure>> {
        let mut path = format!("{}?limit={limit}", user_path(user));
        if unread_only {
            path.push_str("&unread=true");
        }
        let held = (!unread_only).then(|| self.saved.tagged(user)).flatten();
        // The command runs the call as a task of its own: it gets its own
        // handle on the middletier (a clone shares everything).
        let this = self.clone();
        let owner = user.clone();
        self.commands
            .get
            .execute_or(
                |deadline| async move {
                    let held_tag = held.as_ref().map(|(tag, _)| tag.clone());
                    let answer = this
                        .send_answer(deadline, move |http, base| {
                            let request = http.get(format!("{base}{path}"));
                            match &held_tag {
                                Some(tag) => request.header(reqwest::header::IF_NONE_MATCH, tag),
                                None => request,
                            }
                        })
                        .await?;
                    if answer.status == reqwest::StatusCode::NOT_MODIFIED {
                        return match held {
                            Some((tag, body)) => Ok((body, Some(tag))),
                            None => Err(Failure::Error(CallFailure::Body(
                                "304 Not Modified to a request that held no copy".to_owned(),
                            ))),
                        };
                    }
                    check_shape(&owner, &answer.body)
                        .map_err(|e| Failure::Error(CallFailure::Body(e)))?;
                    Ok((answer.body, answer.tag))
                },
                |_| {
                    Some((
                        self.saved.get(user).unwrap_or_else(|| empty_body(user)),
                        None,
                    ))
                },
            )
            .await
    }

    fn as_read(
        &self,
        user: &UserId,
        unread_only: bool,
        result: Result<Outcome<Tagged, CallFailure>, CommandError<CallFailure>>,
    ) -> Read {
        match result {
            Ok(Outcome::Primary((body, tag))) => {
                if !unread_only {
                    self.saved.save(user, body.clone(), tag);
                }
                Read {
                    body,
                    degraded: None,
                }
            }
            Ok(Outcome::Fallback((body, _), reason)) => Read {
                body,
                degraded: Some(describe(&reason)),
            },
            // A 4xx for a read (the user id is validated before we call), or
            // an impossible fallback failure: still answer, degraded.
            Err(reason) => Read {
                body: self.saved.get(user).unwrap_or_else(|| empty_body(user)),
                degraded: Some(describe(&reason)),
            },
        }
    }

    /// `RSSAdd`: subscribed, or a choice of feeds (nothing stored).
    pub(crate) async fn subscribe(
        &self,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<Subscribed, CallError> {
        self.subscribe_as(&self.commands.add, key, user, url).await
    }

    /// A subscribe as `command`.
    async fn subscribe_as(
        &self,
        command: &Command,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<Subscribed, CallError> {
        // A 300 is an answer too: the feeds of the page, to choose from.
        let decode = |status: reqwest::StatusCode, body: &[u8]| {
            Ok(if status == reqwest::StatusCode::MULTIPLE_CHOICES {
                Subscribed::Choice(Box::new(serde_json::from_slice(body)?))
            } else {
                Subscribed::Added(serde_json::from_slice(body)?)
            })
        };
        self.write(command, reqwest::Method::POST, key, user, url, decode)
            .await
    }

    /// `RSSDel`.
    pub(crate) async fn unsubscribe(
        &self,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<SubscriptionChange, CallError> {
        self.unsubscribe_as(&self.commands.del, key, user, url)
            .await
    }

    /// An unsubscribe as `command`.
    async fn unsubscribe_as(
        &self,
        command: &Command,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<SubscriptionChange, CallError> {
        let decode = |_, body: &[u8]| serde_json::from_slice(body);
        self.write(command, reqwest::Method::DELETE, key, user, url, decode)
            .await
    }

    /// A change to `user`'s subscriptions: `RSSAdd` and `RSSDel` differ only
    /// in their command and HTTP method.
    async fn write<T: Send + 'static>(
        &self,
        command: &Command,
        method: reqwest::Method,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
        decode: Decode<T>,
    ) -> Result<T, CallError> {
        self.admit_write(key)?;
        let (path, url) = (user_path(user), url.to_string());
        let build = move |http: &reqwest::Client, base: &str| {
            http.request(method.clone(), format!("{base}{path}"))
                .query(&[("url", &url)])
        };
        let this = self.clone();
        let result = command
            .execute(move |deadline| async move { this.call_as(deadline, build, decode).await })
            .await
            .map_err(write_error);
        self.saved.forget(user);
        result
    }

    /// `RSSItem`: marks one item read or unread, starred or not.
    pub(crate) async fn set_item(
        &self,
        user: &UserId,
        id: ItemId,
        change: ItemChange,
    ) -> Result<ItemState, CallError> {
        let path = format!("{}/items/{id}", user_path(user));
        self.run(&self.commands.item, move |http, base| {
            http.put(format!("{base}{path}")).json(&change)
        })
        .await
    }

    /// `RSSMarkRead`: marks one feed (or every feed) read.
    pub(crate) async fn mark_read(
        &self,
        user: &UserId,
        request: MarkRead,
    ) -> Result<Marked, CallError> {
        let path = format!("{}/mark-read", user_path(user));
        self.run(&self.commands.mark_read, move |http, base| {
            http.post(format!("{base}{path}")).json(&request)
        })
        .await
    }

    /// `RSSRefresh`: fetches one feed now.
    pub(crate) async fn refresh(
        &self,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<FeedView, CallError> {
        self.admit_write(key)?;
        let (path, url) = (format!("{}/refresh", user_path(user)), url.to_string());
        self.run(&self.commands.refresh, move |http, base| {
            http.post(format!("{base}{path}")).query(&[("url", &url)])
        })
        .await
    }

    /// `RSSDiscover`: the feeds a page lists. Metered like a change (it
    /// fetches), and on the user's own fetch slots at the middletier.
    pub(crate) async fn discover(
        &self,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<Discovered, CallError> {
        self.admit_write(key)?;
        let (url, user) = (url.to_string(), user.to_string());
        self.run(&self.commands.discover, move |http, base| {
            http.get(format!("{base}/middletier/rss/discover"))
                .query(&[("url", &url), ("user", &user)])
        })
        .await
    }

    /// `RSSOpmlExport`: the user's subscriptions as OPML.
    /// One item whole, with its content.
    pub(crate) async fn article(&self, user: &UserId, id: ItemId) -> Result<Article, CallError> {
        let path = format!("{}/items/{id}", user_path(user));
        self.run(&self.commands.article, move |http, base| {
            http.get(format!("{base}{path}"))
        })
        .await
    }

    /// A page of the river: `before` an item id, unread only or not.
    pub(crate) async fn river(
        &self,
        user: &UserId,
        unread_only: bool,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<River, CallError> {
        let mut path = format!("{}/river?limit={limit}", user_path(user));
        if unread_only {
            path.push_str("&unread=true");
        }
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.run(&self.commands.river, move |http, base| {
            http.get(format!("{base}{path}"))
        })
        .await
    }

    /// The image at `url`, fetched by the middletier on `user`'s fetch
    /// slots: its media type and bytes.
    pub(crate) async fn media(
        &self,
        user: &UserId,
        url: &str,
    ) -> Result<(String, Bytes), CallError> {
        let (url, user) = (url.to_owned(), user.to_string());
        let this = self.clone();
        self.commands
            .media
            .execute(|deadline| async move {
                let answer = this
                    .send_answer(deadline, move |http, base| {
                        http.get(format!("{base}/middletier/media"))
                            .query(&[("url", &url), ("user", &user)])
                    })
                    .await?;
                Ok((answer.content_type, answer.body))
            })
            .await
            .map_err(write_error)
    }

    pub(crate) async fn export_opml(&self, user: &UserId) -> Result<Bytes, CallError> {
        let path = format!("{}/opml", user_path(user));
        self.run_bytes(&self.commands.opml_export, move |http, base| {
            http.get(format!("{base}{path}"))
        })
        .await
    }

    /// `RSSOpmlImport`: subscribes to every feed of an OPML file.
    pub(crate) async fn import_opml(
        &self,
        key: &RateKey,
        user: &UserId,
        opml: Bytes,
    ) -> Result<OpmlImport, CallError> {
        self.admit_write(key)?;
        let path = format!("{}/opml", user_path(user));
        let result = self
            .run(&self.commands.opml_import, move |http, base| {
                http.post(format!("{base}{path}"))
                    .header(reqwest::header::CONTENT_TYPE, "text/x-opml")
                    .body(opml.clone())
            })
            .await;
        self.saved.forget(user);
        result
    }
}

fn user_path(user: &UserId) -> String {
    // User ids are validated to URL-safe characters; no escaping needed.
    format!("/middletier/rss/user/{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contract_shape_is_accepted() {
        let u = UserId::parse("u").unwrap();
        let check = |body: &[u8]| check_shape(&u, body);
        // Framed as our middletier writes it.
        assert!(check(br#"{"user":"u","subscriptions":[]}"#).is_ok());
        assert!(check(br#"{"user":"u","subscriptions":[{"url":"x"}]}"#).is_ok());
        // Walked in full.
        assert!(check(br#"{"user": "u", "subscriptions": []}"#).is_ok());
        assert!(check(br#" {"subscriptions": [], "user": "u", "extra": 1}"#).is_ok());
        assert!(
            check(br#"["u", []]"#).is_err(),
            "a sequence is not an object"
        );
        assert!(check(br#"{"user": "u"}"#).is_err());
        assert!(check(b"<html>").is_err());
        assert!(
            check(br#"{"user":"u","subscriptions":[{"url":"x"}"#).is_err(),
            "a cut answer"
        );
        assert!(
            check(br#"{"user":"uv","subscriptions":[{"url":"x"}"#).is_err(),
            "another user's cut answer"
        );
    }

    #[test]
    fn a_body_that_will_not_decode_reads_as_no_feeds() {
        let user = UserId::parse("u").unwrap();
        let read = Read {
            body: Bytes::from_static(b"{}"),
            degraded: None,
        };
        assert!(read.feeds(&user).subscriptions.is_empty());
    }
}
