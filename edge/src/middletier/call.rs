//! One call to the middletier and what its answer means: the balanced
//! HTTP call, its reply classified (the caller's failure, which no breaker
//! counts, or the middletier's), and failures worded for the person who
//! asked.

use bytes::Bytes;
use common::api::ErrorBody;
use common::balancer::http::CallError as BalancerError;
use common::limits::{ReadCappedError, read_capped};
use common::resilience::{Command, CommandError, Failure};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::Middletier;

/// The largest answer the edge reads from the middletier. The middletier's
/// own limits (100 feeds of 50 items) keep real answers far below this.
pub(super) const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// The largest error answer read: `{"error": "<a sentence>"}`. A larger one
/// is not read at all; the status alone is reported.
pub(super) const MAX_ERROR_BYTES: u64 = 64 * 1024;

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
    pub(super) fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge(_) | Self::Status { status: 422, .. })
    }
}

/// Why a call to the middletier was not answered as asked: a change not
/// made (or maybe made), or a read the user is refused (a discovery that
/// is not allowed, an export too large).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CallError {
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
pub(super) type Decode<T> = fn(reqwest::StatusCode, &[u8]) -> serde_json::Result<T>;

pub(super) fn unreachable(error: &BalancerError) -> CallFailure {
    match error {
        BalancerError::NoInstances { .. } => {
            CallFailure::Unreachable("no feed service instance is registered".to_owned())
        }
        BalancerError::Timeout { .. } => {
            CallFailure::TimedOut("no feed service instance answered in time".to_owned())
        }
        BalancerError::Unreachable { .. } => {
            CallFailure::Unreachable("no feed service instance could be reached".to_owned())
        }
        BalancerError::Request(e) => CallFailure::Unreachable(e.clone()),
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

pub(super) fn write_error(error: CommandError<CallFailure>) -> CallError {
    match error {
        CommandError::BadRequest(CallFailure::TooLarge(message)) => CallError::Refused {
            status: 422,
            message,
            retry_after: None,
        },
        CommandError::BadRequest(CallFailure::Status {
            status,
            message,
            retry_after,
        }) => CallError::Refused {
            status,
            message,
            retry_after,
        },
        CommandError::Timeout(_) | CommandError::Error(CallFailure::TimedOut(_)) => {
            CallError::Unknown
        }
        // The middletier says it cannot serve now (its store is down).
        CommandError::Error(failure @ CallFailure::Status { status: 503, .. }) => {
            CallError::Unavailable(failure.to_string())
        }
        CommandError::Error(failure @ CallFailure::Status { .. }) => {
            CallError::BadReply(format!("not saved: {failure}"))
        }
        CommandError::Error(CallFailure::Body(reason)) => CallError::BadReply(format!(
            "the feed service's answer could not be read ({reason}), so the change may or may not have been saved; reload to check"
        )),
        other => CallError::Unavailable(describe(&other)),
    }
}

impl CallError {
    /// An item id that names no item of this user's (or no item at all).
    pub(crate) fn no_such_item() -> Self {
        Self::Refused {
            status: 404,
            message: "no such item; reload to get current item ids".into(),
            retry_after: None,
        }
    }
}

impl Middletier {
    /// One call as `command`, its JSON answer decoded; a failure as the
    /// user should hear it.
    pub(super) async fn run<T: DeserializeOwned + Send + 'static>(
        &self,
        command: &Command,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync + 'static,
    ) -> Result<T, CallError> {
        let this = self.clone();
        command
            .execute(|deadline| async move { this.call(deadline, build).await })
            .await
            .map_err(write_error)
    }

    /// One call as `command`, its answer's body as it came (OPML, or
    /// nothing); a failure as the user should hear it.
    pub(super) async fn run_bytes(
        &self,
        command: &Command,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync + 'static,
    ) -> Result<Bytes, CallError> {
        let this = self.clone();
        command
            .execute(|deadline| async move { this.send(deadline, build).await })
            .await
            .map_err(write_error)
    }

    /// One balanced call, its answer read as JSON.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, Failure<CallFailure>> {
        self.call_as(deadline, build, |_, body| serde_json::from_slice(body))
            .await
    }

    /// One balanced call, its answer read by `decode`.
    pub(super) async fn call_as<T>(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        decode: Decode<T>,
    ) -> Result<T, Failure<CallFailure>> {
        let answer = self.send_answer(deadline, build).await?;
        decode(answer.status, &answer.body)
            .map_err(|e| Failure::Error(CallFailure::Body(e.to_string())))
    }

    /// One balanced call and its answer's body.
    pub(super) async fn send(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Bytes, Failure<CallFailure>> {
        Ok(self.send_answer(deadline, build).await?.body)
    }

    /// One balanced call, and its answer: a 2xx, a 300 (a choice for the
    /// user, which only a subscribe reads as one) or a 304 (to a request
    /// that said which copy it holds). Any other 3xx or a 4xx is the
    /// caller's failure; anything else is the middletier's.
    pub(super) async fn send_answer(
        &self,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Answer, Failure<CallFailure>> {
        let served = self
            .client
            .call(deadline, build)
            .await
            .map_err(|e| Failure::Error(unreachable(&e)))?;
        let status = served.response.status();
        let answered = status.is_success()
            || status == reqwest::StatusCode::MULTIPLE_CHOICES
            || status == reqwest::StatusCode::NOT_MODIFIED;
        if !answered {
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
        let header = |name| {
            let value = served.response.headers().get(name);
            value.and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let tag = header(reqwest::header::ETAG);
        read_capped(served.response, MAX_ANSWER_BYTES)
            .await
            .map(|body| Answer {
                status,
                content_type,
                tag,
                body,
            })
            .map_err(|e| match e {
                // Too much for this user, not a failing middletier.
                ReadCappedError::TooLarge => Failure::BadRequest(CallFailure::TooLarge(format!(
                    "the answer is larger than {} MiB",
                    MAX_ANSWER_BYTES / (1024 * 1024)
                ))),
                ReadCappedError::Transport(e) => Failure::Error(CallFailure::Body(e.to_string())),
            })
    }
}

/// What the middletier answered (see [`Middletier::send_answer`]).
#[derive(Debug)]
pub(super) struct Answer {
    pub status: reqwest::StatusCode,
    /// Its `Content-Type`, or empty.
    pub content_type: String,
    /// Its `ETag`, if it has one.
    pub tag: Option<String>,
    pub body: Bytes,
}
