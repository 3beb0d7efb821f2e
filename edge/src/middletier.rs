//! The edge's view of the middle tier: one named command per kind of call
//! (the 2013 recipe's three, and the reader's), each with its own breaker,
//! timeout and bulkhead, each calling the middletier through the load
//! balancer.
//!
//! | command | call | timeout | fallback |
//! |---|---|---|---|
//! | `RSSGet` | `GET /middletier/rss/user/{user}` | 10 s | the user's last good answer, marked degraded; else an empty degraded list |
//! | `RSSAdd` | `POST ...?url=` | 5 s | none: the user is told the change was not saved |
//! | `RSSDel` | `DELETE ...?url=` | 2 s | none, likewise |
//! | `RSSItem` | `PUT .../items/{id}` | 2 s | none |
//! | `RSSMarkRead` | `POST .../mark-read` | 2 s | none |
//! | `RSSRefresh` | `POST .../refresh?url=` | 12 s | none |
//! | `RSSDiscover` | `GET /middletier/rss/discover?url=` | 5 s | none: "could not look now" is honest, an empty list would not be |
//! | `RSSOpmlExport` | `GET .../opml` | 5 s | none: a partial export would lose feeds silently |
//! | `RSSOpmlImport` | `POST .../opml` | 5 s | none |
//!
//! Reads may fall back to the last good answer; writes never pretend.
//! The command's deadline is handed to the balancer, so its retries (one
//! more try on the same instance, one on the next) all fit inside the
//! command's timeout. A 4xx from the middletier (an invalid or refused URL)
//! is the user's error: it is shown to them and not held against the
//! middletier's breaker.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use common::api::{
    Discovered, ErrorBody, FeedUrl, FeedView, ItemChange, ItemId, ItemState, MarkRead, Marked,
    OpmlImport, SubscriptionChange, UserFeeds, UserId,
};
use common::balancer::http::{BalancedClient, CallError};
use common::limits::{ReadCappedError, read_capped};
use common::ratelimit::{RateKey, WriteLimiter};
use common::resilience::{Command, CommandError, Failure, Outcome};
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio::time::Instant;

use crate::config::PerCommand;
use crate::fallback::LastGood;

/// The largest answer the edge reads from the middletier. The middletier's
/// own limits (100 feeds of 50 items) keep real answers far below this.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// The largest error answer read: `{"error": "<a sentence>"}`. A larger one
/// is not read at all; the status alone is reported.
const MAX_ERROR_BYTES: u64 = 64 * 1024;

/// Why a call to the middletier did not give the answer we wanted.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CallFailure {
    /// The middletier answered with an error; `message` is its `{"error"}`.
    #[error("the feed service answered HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        /// The middletier's `Retry-After`, in seconds, when it sent one.
        retry_after: Option<u64>,
    },
    #[error("{0}")]
    Unreachable(String),
    /// Sent, but no answer in time: the middletier may have acted on it.
    #[error("{0}")]
    TimedOut(String),
    #[error("the feed service sent an answer we could not read: {0}")]
    Body(String),
    /// More than one user's answer may be: that user's problem.
    #[error("{0}")]
    TooLarge(String),
}

impl CallFailure {
    /// Whether the answer was refused as too large for this user (by the
    /// middletier, or by our own cap).
    fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge(_) | Self::Status { status: 422, .. })
    }
}

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
    /// The feeds, decoded. A body that will not decode (it was checked
    /// when it arrived, so this does not happen) reads as no feeds.
    pub(crate) fn feeds(&self, user: &UserId) -> UserFeeds {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| empty(user))
    }
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

fn check_shape(body: &[u8]) -> Result<(), String> {
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        return Err("not a JSON object".to_owned());
    }
    serde_json::from_slice::<Shape>(body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Why a change was not made (or may not have been).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum WriteError {
    /// The middletier refused it (the user's mistake): status and reason.
    #[error("{message}")]
    Refused {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// This user made too many changes just now; try again after `wait`.
    #[error("you are changing your feeds too fast; wait {} s and try again", .0.as_secs().max(1))]
    TooFast(std::time::Duration),
    /// It did not happen: no middletier could take it (none registered or
    /// reachable, the breaker open, the bulkhead full, or the middletier
    /// said it cannot serve now).
    #[error("not saved: {0}")]
    Unavailable(String),
    /// The middletier answered, but badly (a 5xx, or an answer we cannot
    /// read); the message says whether the change may have happened.
    #[error("{0}")]
    BadReply(String),
    /// No answer in time: it may or may not have happened.
    #[error(
        "the feed service did not answer in time, so the change may not have been saved; reload to check"
    )]
    Unknown,
}

/// Reads an answer's body, given its status.
type Decode<T> = fn(reqwest::StatusCode, &[u8]) -> serde_json::Result<T>;

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
    pub commands: Commands,
    saved: Arc<Mutex<LastGood>>,
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
            commands,
            saved: Arc::new(Mutex::new(LastGood::default())),
            writes: writes.map(Arc::new),
        }
    }

    /// Refuses a change (or a fetch a user asks for) when this key has
    /// made too many just now.
    fn admit_write(&self, key: &RateKey) -> Result<(), WriteError> {
        match &self.writes {
            Some(limiter) => limiter.check(key).map_err(WriteError::TooFast),
            None => Ok(()),
        }
    }

    pub(crate) fn client(&self) -> &BalancedClient {
        &self.client
    }

    pub(crate) fn commands(&self) -> [&Command; 9] {
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
                    Ok(Outcome::Primary(body)) => Read {
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

    async fn read_live(
        &self,
        user: &UserId,
        unread_only: bool,
        limit: usize,
    ) -> Result<Outcome<Bytes, CallFailure>, CommandError<CallFailure>> {
        let mut path = format!("{}?limit={limit}", user_path(user));
        if unread_only {
            path.push_str("&unread=true");
        }
        // The command runs the call as a task of its own: it gets its own
        // handle on the middletier (a clone shares everything).
        let this = self.clone();
        self.commands
            .get
            .execute_or(
                |deadline| async move {
                    let body = this
                        .send(deadline, move |http, base| {
                            http.get(format!("{base}{path}"))
                        })
                        .await?;
                    check_shape(&body).map_err(|e| Failure::Error(CallFailure::Body(e)))?;
                    Ok(body)
                },
                |_| Some(self.saved(user)),
            )
            .await
    }

    fn as_read(
        &self,
        user: &UserId,
        unread_only: bool,
        result: Result<Outcome<Bytes, CallFailure>, CommandError<CallFailure>>,
    ) -> Read {
        match result {
            Ok(Outcome::Primary(body)) => {
                if !unread_only {
                    self.save(user, body.clone());
                }
                Read {
                    body,
                    degraded: None,
                }
            }
            Ok(Outcome::Fallback(body, reason)) => Read {
                body,
                degraded: Some(describe(&reason)),
            },
            // A 4xx for a read (the user id is validated before we call), or
            // an impossible fallback failure: still answer, degraded.
            Err(reason) => Read {
                body: self.saved(user),
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
    ) -> Result<Subscribed, WriteError> {
        // A 300 is an answer too: the feeds of the page, to choose from.
        let decode = |status: reqwest::StatusCode, body: &[u8]| {
            Ok(if status == reqwest::StatusCode::MULTIPLE_CHOICES {
                Subscribed::Choice(Box::new(serde_json::from_slice(body)?))
            } else {
                Subscribed::Added(serde_json::from_slice(body)?)
            })
        };
        self.write(
            &self.commands.add,
            reqwest::Method::POST,
            key,
            user,
            url,
            decode,
        )
        .await
    }

    /// `RSSDel`.
    pub(crate) async fn unsubscribe(
        &self,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<SubscriptionChange, WriteError> {
        let decode = |_, body: &[u8]| serde_json::from_slice(body);
        self.write(
            &self.commands.del,
            reqwest::Method::DELETE,
            key,
            user,
            url,
            decode,
        )
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
    ) -> Result<T, WriteError> {
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
        self.forget_saved(user);
        result
    }

    /// `RSSItem`: marks one item read or unread, starred or not.
    pub(crate) async fn set_item(
        &self,
        user: &UserId,
        id: ItemId,
        change: ItemChange,
    ) -> Result<ItemState, WriteError> {
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
    ) -> Result<Marked, WriteError> {
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
    ) -> Result<FeedView, WriteError> {
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
    ) -> Result<Discovered, WriteError> {
        self.admit_write(key)?;
        let (url, user) = (url.to_string(), user.to_string());
        self.run(&self.commands.discover, move |http, base| {
            http.get(format!("{base}/middletier/rss/discover"))
                .query(&[("url", &url), ("user", &user)])
        })
        .await
    }

    /// `RSSOpmlExport`: the user's subscriptions as OPML.
    pub(crate) async fn export_opml(&self, user: &UserId) -> Result<Bytes, WriteError> {
        let path = format!("{}/opml", user_path(user));
        let this = self.clone();
        self.commands
            .opml_export
            .execute(|deadline| async move {
                this.send(deadline, move |http, base| {
                    http.get(format!("{base}{path}"))
                })
                .await
            })
            .await
            .map_err(write_error)
    }

    /// `RSSOpmlImport`: subscribes to every feed of an OPML file.
    pub(crate) async fn import_opml(
        &self,
        key: &RateKey,
        user: &UserId,
        opml: Bytes,
    ) -> Result<OpmlImport, WriteError> {
        self.admit_write(key)?;
        let path = format!("{}/opml", user_path(user));
        let result = self
            .run(&self.commands.opml_import, move |http, base| {
                http.post(format!("{base}{path}"))
                    .header(reqwest::header::CONTENT_TYPE, "text/x-opml")
                    .body(opml.clone())
            })
            .await;
        self.forget_saved(user);
        result
    }

    /// One call as `command`, its JSON answer decoded; a failure as the
    /// user should hear it.
    async fn run<T: DeserializeOwned + Send + 'static>(
        &self,
        command: &Command,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync + 'static,
    ) -> Result<T, WriteError> {
        let this = self.clone();
        command
            .execute(|deadline| async move { this.call(deadline, build).await })
            .await
            .map_err(write_error)
    }

    /// One balanced call, its answer read as JSON.
    async fn call<T: DeserializeOwned>(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, Failure<CallFailure>> {
        self.call_as(deadline, build, |_, body| serde_json::from_slice(body))
            .await
    }

    /// One balanced call, its answer read by `decode`.
    async fn call_as<T>(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        decode: Decode<T>,
    ) -> Result<T, Failure<CallFailure>> {
        let (status, body) = self.send_answer(deadline, build).await?;
        decode(status, &body).map_err(|e| Failure::Error(CallFailure::Body(e.to_string())))
    }

    /// One balanced call and its answer's body.
    async fn send(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Bytes, Failure<CallFailure>> {
        Ok(self.send_answer(deadline, build).await?.1)
    }

    /// One balanced call, and its answer: a 2xx, or a 300 (a choice for
    /// the user, which only a subscribe reads as one). Any other 3xx or a
    /// 4xx is the caller's failure; anything else is the middletier's.
    async fn send_answer(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Bytes), Failure<CallFailure>> {
        let served = self
            .client
            .call(deadline, build)
            .await
            .map_err(|e| Failure::Error(unreachable(&e)))?;
        let status = served.response.status();
        if !status.is_success() && status != reqwest::StatusCode::MULTIPLE_CHOICES {
            let retry_after = served
                .response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = read_capped(served.response, MAX_ERROR_BYTES).await.ok();
            let message = body
                .and_then(|body| serde_json::from_slice::<ErrorBody>(&body).ok())
                .map_or_else(
                    || status.canonical_reason().unwrap_or("error").to_owned(),
                    |body| body.error,
                );
            let failure = CallFailure::Status {
                status: status.as_u16(),
                message,
                retry_after,
            };
            return Err(if status.is_client_error() || status.is_redirection() {
                Failure::BadRequest(failure)
            } else {
                Failure::Error(failure)
            });
        }
        read_capped(served.response, MAX_ANSWER_BYTES)
            .await
            .map(|body| (status, body))
            .map_err(|e| match e {
                // Too much for this user, not a failing middletier.
                ReadCappedError::TooLarge => Failure::BadRequest(CallFailure::TooLarge(format!(
                    "the answer is larger than {} MiB",
                    MAX_ANSWER_BYTES / (1024 * 1024)
                ))),
                ReadCappedError::Transport(e) => Failure::Error(CallFailure::Body(e.to_string())),
            })
    }

    fn saved(&self, user: &UserId) -> Bytes {
        let saved = self.saved.lock().unwrap_or_else(PoisonError::into_inner);
        saved
            .get(user)
            .unwrap_or_else(|| Bytes::from(serde_json::to_vec(&empty(user)).unwrap_or_default()))
    }

    fn save(&self, user: &UserId, body: Bytes) {
        self.saved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.clone(), body);
    }

    /// After a change (made or maybe made) the saved copy is out of date:
    /// better an empty fallback than one that shows a deleted feed.
    fn forget_saved(&self, user: &UserId) {
        self.saved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }
}

fn user_path(user: &UserId) -> String {
    // User ids are validated to URL-safe characters; no escaping needed.
    format!("/middletier/rss/user/{user}")
}

fn unreachable(error: &CallError) -> CallFailure {
    match error {
        CallError::NoInstances { .. } => {
            CallFailure::Unreachable("no feed service instance is registered".to_owned())
        }
        CallError::Timeout { .. } => {
            CallFailure::TimedOut("no feed service instance answered in time".to_owned())
        }
        CallError::Unreachable { .. } => {
            CallFailure::Unreachable("no feed service instance could be reached".to_owned())
        }
        CallError::Request(e) => CallFailure::Unreachable(e.clone()),
    }
}

/// A command failure as a person reads it.
pub(crate) fn describe(error: &CommandError<CallFailure>) -> String {
    match error {
        CommandError::BadRequest(e) | CommandError::Error(e) => e.to_string(),
        CommandError::Timeout(limit) => format!("the feed service did not answer within {} s", limit.as_secs_f64()),
        CommandError::ShortCircuited => {
            "the feed service has been failing, so calls are paused for a few seconds (circuit open)".to_owned()
        }
        CommandError::Rejected => "the feed service is busy with other requests".to_owned(),
        CommandError::Cancelled => "the reader is stopping".to_owned(),
    }
}

fn write_error(error: CommandError<CallFailure>) -> WriteError {
    match error {
        CommandError::BadRequest(CallFailure::TooLarge(message)) => WriteError::Refused {
            status: 422,
            message,
            retry_after: None,
        },
        CommandError::BadRequest(CallFailure::Status {
            status,
            message,
            retry_after,
        }) => WriteError::Refused {
            status,
            message,
            retry_after,
        },
        CommandError::Timeout(_) | CommandError::Error(CallFailure::TimedOut(_)) => {
            WriteError::Unknown
        }
        // The middletier says it cannot serve now (its store is down).
        CommandError::Error(failure @ CallFailure::Status { status: 503, .. }) => {
            WriteError::Unavailable(failure.to_string())
        }
        CommandError::Error(failure @ CallFailure::Status { .. }) => {
            WriteError::BadReply(format!("not saved: {failure}"))
        }
        CommandError::Error(CallFailure::Body(reason)) => WriteError::BadReply(format!(
            "the feed service's answer could not be read ({reason}), so the change may or may not have been saved; reload to check"
        )),
        other => WriteError::Unavailable(describe(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contract_shape_is_accepted() {
        assert!(check_shape(br#"{"user": "u", "subscriptions": []}"#).is_ok());
        assert!(check_shape(br#" {"subscriptions": [], "user": "u", "extra": 1}"#).is_ok());
        assert!(
            check_shape(br#"["u", []]"#).is_err(),
            "a sequence is not an object"
        );
        assert!(check_shape(br#"{"user": "u"}"#).is_err());
        assert!(check_shape(b"<html>").is_err());
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
