//! The API's one error type, and its HTTP form.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::api::{ErrorBody, InvalidInput};

use crate::reader::ReaderError;

/// Everything that can go wrong in a request: bad input found by the
/// handlers, or a refusal of the [`crate::reader::Reader`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("the `url` query parameter is missing: use {0}?url=<percent-encoded feed URL>")]
    MissingUrl(String),
    #[error("the user id in the path is not valid percent-encoded UTF-8")]
    BadPath,
    #[error("{0}")]
    BadParameter(String),
    #[error("the body is not the JSON this call takes ({0}); send {1}")]
    BadJson(String, &'static str),
    /// The body could not be read (too large, or cut off): axum's status.
    #[error("{0}")]
    BadBody(#[from] axum::extract::rejection::BytesRejection),
    #[error("too many requests of this kind for this user just now; wait {} s and try again", .0.as_secs().max(1))]
    TooManyWrites(std::time::Duration),
    #[error(transparent)]
    Reader(#[from] ReaderError),
    #[error(transparent)]
    Media(#[from] crate::feeds::media::MediaError),
    #[error(
        "your feeds' items come to {} MiB, more than the {} MiB one listing may be; ask for fewer items per feed (limit=), or remove the largest feeds",
        .bytes / (1024 * 1024),
        .limit / (1024 * 1024)
    )]
    ListingTooLarge { bytes: usize, limit: usize },
    #[error("no such endpoint: see GET, POST and DELETE /middletier/rss/user/{{user}}")]
    NotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_)
            | Self::MissingUrl(_)
            | Self::BadPath
            | Self::BadParameter(_)
            | Self::BadJson(..) => StatusCode::BAD_REQUEST,
            Self::TooManyWrites(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ListingTooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Reader(e) => reader_status(e),
            Self::Media(e) => media_status(e),
            Self::BadBody(rejection) => rejection.status(),
        }
    }
}

fn reader_status(error: &ReaderError) -> StatusCode {
    match error {
        ReaderError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        ReaderError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ReaderError::Blocked { .. }
        | ReaderError::NothingToChange
        | ReaderError::BadDate(_)
        | ReaderError::TooManyIds { .. } => StatusCode::BAD_REQUEST,
        ReaderError::TooManySubscriptions(_) | ReaderError::TooManyStarred(_) => {
            StatusCode::CONFLICT
        }
        ReaderError::Unreadable { .. }
        | ReaderError::NoFeed(_)
        | ReaderError::TimedOut { .. }
        | ReaderError::Opml(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ReaderError::NotSubscribed(_) | ReaderError::UnknownItem(_) | ReaderError::NoAccount(_) => {
            StatusCode::NOT_FOUND
        }
        ReaderError::AccountExists(_) => StatusCode::CONFLICT,
    }
}

fn media_status(error: &crate::feeds::media::MediaError) -> StatusCode {
    use crate::feeds::fetch::FetchError;
    use crate::feeds::media::MediaError;
    match error {
        MediaError::NotAnImage(_) | MediaError::Tracker => StatusCode::UNPROCESSABLE_ENTITY,
        MediaError::Fetch(FetchError::Blocked(_)) => StatusCode::FORBIDDEN,
        MediaError::Fetch(FetchError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
        MediaError::Fetch(_) => StatusCode::BAD_GATEWAY,
        MediaError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // The causes are for operators; the user gets the generic message.
            Self::Reader(ReaderError::Store(cause)) => {
                tracing::error!(error = %cause, "store failure");
            }
            Self::Reader(ReaderError::Internal) => tracing::error!("internal error"),
            _ => {}
        }
        let status = self.status();
        let message = self.to_string();
        let retry_after = match &self {
            Self::TooManyWrites(wait) => {
                HeaderValue::from_str(&wait.as_secs().max(1).to_string()).ok()
            }
            _ => None,
        };
        let mut response = (status, Json(ErrorBody::new(message))).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        response
    }
}
