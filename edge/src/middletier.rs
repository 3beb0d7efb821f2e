//! The edge's view of the middle tier: three commands, named as in the 2013
//! recipe, each calling the middletier through the load balancer.
//!
//! | command | call | timeout | fallback |
//! |---|---|---|---|
//! | `RSSGet` | `GET /middletier/rss/user/{user}` | 10 s | the user's last good answer, marked degraded; else an empty degraded list |
//! | `RSSAdd` | `POST ...?url=` | 5 s | none: the user is told the change was not saved |
//! | `RSSDel` | `DELETE ...?url=` | 2 s | none, likewise |
//!
//! The command's deadline is handed to the balancer, so its retries (one
//! more try on the same instance, one on the next) all fit inside the
//! command's timeout. A 4xx from the middletier (an invalid or refused URL)
//! is the user's error: it is shown to them and not held against the
//! middletier's breaker.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use common::api::{ErrorBody, FeedUrl, SubscriptionChange, UserFeeds, UserId};
use common::balancer::http::{BalancedClient, CallError};
use common::limits::{ReadCappedError, read_capped};
use common::ratelimit::WriteLimiter;
use common::resilience::{Command, CommandError, Failure, Outcome};
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio::time::Instant;

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

/// Calls to the middle tier. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Middletier {
    client: BalancedClient,
    pub get: Command,
    pub add: Command,
    pub del: Command,
    saved: Arc<Mutex<LastGood>>,
    /// Per-user limit on adds and deletes; `None`: no limit.
    writes: Option<Arc<WriteLimiter>>,
}

impl Middletier {
    pub(crate) fn new(
        client: BalancedClient,
        [get, add, del]: [Command; 3],
        writes: Option<WriteLimiter>,
    ) -> Self {
        Self {
            client,
            get,
            add,
            del,
            saved: Arc::new(Mutex::new(LastGood::default())),
            writes: writes.map(Arc::new),
        }
    }

    /// Refuses a change when this user has made too many just now.
    fn admit_write(&self, user: &UserId) -> Result<(), WriteError> {
        match &self.writes {
            Some(limiter) => limiter.check(user).map_err(WriteError::TooFast),
            None => Ok(()),
        }
    }

    pub(crate) fn client(&self) -> &BalancedClient {
        &self.client
    }

    pub(crate) fn commands(&self) -> [&Command; 3] {
        [&self.get, &self.add, &self.del]
    }

    /// `RSSGet`: the user's feeds, or the fallback.
    pub(crate) async fn read(&self, user: &UserId) -> Read {
        let path = user_path(user);
        // The command runs the call as a task of its own: it gets its own
        // handle on the middletier (a clone shares everything).
        let this = self.clone();
        let result = self
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
            .await;
        match result {
            Ok(Outcome::Primary(body)) => {
                self.save(user, body.clone());
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

    /// `RSSAdd`.
    pub(crate) async fn subscribe(
        &self,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<SubscriptionChange, WriteError> {
        self.write(&self.add, reqwest::Method::POST, user, url)
            .await
    }

    /// `RSSDel`.
    pub(crate) async fn unsubscribe(
        &self,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<SubscriptionChange, WriteError> {
        self.write(&self.del, reqwest::Method::DELETE, user, url)
            .await
    }

    /// A change to `user`'s subscriptions: `RSSAdd` and `RSSDel` differ only
    /// in their command and HTTP method.
    async fn write(
        &self,
        command: &Command,
        method: reqwest::Method,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<SubscriptionChange, WriteError> {
        self.admit_write(user)?;
        let (path, url) = (user_path(user), url.to_string());
        let this = self.clone();
        let result = command
            .execute(|deadline| async move {
                this.call(deadline, move |http, base| {
                    http.request(method.clone(), format!("{base}{path}"))
                        .query(&[("url", &url)])
                })
                .await
            })
            .await;
        self.forget_saved(user);
        result.map_err(write_error)
    }

    /// One balanced call, its answer read as JSON.
    async fn call<T: DeserializeOwned>(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, Failure<CallFailure>> {
        let body = self.send(deadline, build).await?;
        serde_json::from_slice(&body).map_err(|e| Failure::Error(CallFailure::Body(e.to_string())))
    }

    /// One balanced call and its answer's body. A 4xx, or a 3xx (a choice
    /// for the caller to make), is the caller's failure; anything else
    /// that is not 2xx is the middletier's.
    async fn send(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Bytes, Failure<CallFailure>> {
        let served = self
            .client
            .call(deadline, build)
            .await
            .map_err(|e| Failure::Error(unreachable(&e)))?;
        let status = served.response.status();
        if !status.is_success() {
            let retry_after = served
                .response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let message = read_capped(served.response, MAX_ERROR_BYTES)
                .await
                .ok()
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
        let body = read_capped(served.response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                ReadCappedError::TooLarge => format!(
                    "the answer is larger than {} MiB",
                    MAX_ANSWER_BYTES / (1024 * 1024)
                ),
                ReadCappedError::Transport(e) => e.to_string(),
            });
        body.map_err(|e| Failure::Error(CallFailure::Body(e)))
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
