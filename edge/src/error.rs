//! The edge's one error type, mapped to HTTP in one place.
//!
//! Every handler, page or API, returns [`Error`]; so do the extractors
//! ([`Json`], [`Form`], [`crate::auth::CurrentUser`], [`CheckedForm`]),
//! through axum's typed rejections. The status follows what went wrong:
//!
//! | what | status |
//! |---|---|
//! | the request itself (bad JSON, a bad URL, a missing parameter) | 400 (415 for a body that is not JSON, 413 for one too large) |
//! | no user: no session or app password (`--auth local`), or no proxy header (`--auth proxy`) | 401, with `WWW-Authenticate: Bearer` for the former |
//! | an admin's page to a non-admin; in `--auth proxy`, a peer that is not a trusted proxy | 403 |
//! | a form without the right CSRF token | 403 |
//! | the middletier refused it (the user's mistake) | its own 4xx, passed on |
//! | too many changes just now | 429, with `Retry-After` |
//! | the middletier answered badly (a 5xx, an unreadable answer) | 502 |
//! | no middletier to ask: none registered, none reachable, the breaker open, the bulkhead full, or it said it cannot serve | 503 |
//! | no answer in time (the change may have happened) | 504 |
//!
//! The body is `{"error": "<what is wrong and what to do>"}`, except for a
//! refused form post, which a person submitted from the page and gets an
//! HTML page saying what to do. A 5xx also carries `"reference"`, a short
//! id the user can quote: it is logged with the error, and with tracing on
//! it is the start of the trace id and the request span's `error.reference`.

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use common::api::{ErrorBody, InvalidInput};

use crate::middletier::CallError;
use crate::security::csrf_ok;

/// Everything that can go wrong in an edge request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A JSON body that is not what the endpoint takes.
    #[error("{}", json_message(.0))]
    Json(#[from] JsonRejection),
    /// A form that did not arrive whole.
    #[error("{}", form_message(.0))]
    Form(#[from] FormRejection),
    /// A state-changing request sent by a page of another site.
    #[error(
        "refused: {0}. Use the reader's own pages; if this is the reader behind a proxy that changes the Host header, have the proxy send X-Forwarded-Host and list it in --trusted-proxies"
    )]
    CrossSite(String),
    /// A form without the token of the page it came from.
    #[error(
        "the form's security token did not match (the page may be old, or the form came from another site); go back to the reader, reload it, and try again"
    )]
    BadToken,
    /// A user id or feed URL that is not valid.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A query parameter that is not what the endpoint takes.
    #[error("{0}")]
    BadParameter(String),
    /// An OPML upload that is not a file of OPML.
    #[error("{0}")]
    BadUpload(String),
    /// A required query parameter is missing.
    #[error("the `{name}` query parameter is missing: use {usage}")]
    MissingParameter {
        name: &'static str,
        usage: &'static str,
    },
    /// The authenticating proxy did not name the user.
    #[error(
        "this reader expects the {0} header from the authenticating proxy in front of it; sign in through the proxy"
    )]
    NoUser(String),
    /// The proxy's header does not name a valid user.
    #[error("the {header} header does not name a valid user: {reason}")]
    BadUser { header: String, reason: String },
    /// The proxy's header appears more than once.
    #[error(
        "the {0} header appears more than once, so it is not clear who you are; the authenticating proxy must set it exactly once"
    )]
    RepeatedUser(String),
    /// `--auth local`: no session or app password.
    #[error(
        "sign in first: open the reader's /login page, or send an app password (made in Settings) as Authorization: Bearer <app password>"
    )]
    SignInRequired,
    /// A page for admins only.
    #[error("this page is for the reader's administrators; ask one if you need it")]
    AdminsOnly,
    /// `--auth proxy`: a request that did not come through the proxy.
    #[error(
        "requests from {0} are refused: this reader is only reached through its authenticating proxy (--trusted-proxies)"
    )]
    UntrustedPeer(std::net::IpAddr),
    /// `--auth local` with no account yet.
    #[error(
        "no account exists yet: open /setup in a browser and create the first one with the setup code from the edge's log"
    )]
    SetupFirst,
    /// A call to the middletier that did not go through.
    #[error(transparent)]
    Call(#[from] CallError),
    /// No such page or endpoint.
    #[error("no such page: the reader is at /, the API under /api/ (e.g. /api/subscriptions)")]
    NotFound,
    /// A method this path does not take.
    #[error(
        "method not allowed here: see the API in the README (GET, POST and DELETE /api/subscriptions, PUT /api/items/{{id}}, ...); forms post to the page's own paths"
    )]
    MethodNotAllowed,
}

impl Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Json(JsonRejection::MissingJsonContentType(_)) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Error::Json(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::Form(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::Json(_)
            | Error::Form(_)
            | Error::Invalid(_)
            | Error::MissingParameter { .. }
            | Error::BadParameter(_)
            | Error::BadUpload(_)
            | Error::BadUser { .. }
            | Error::RepeatedUser(_) => StatusCode::BAD_REQUEST,
            Error::NoUser(_) | Error::SignInRequired => StatusCode::UNAUTHORIZED,
            Error::AdminsOnly | Error::UntrustedPeer(_) => StatusCode::FORBIDDEN,
            Error::SetupFirst => StatusCode::SERVICE_UNAVAILABLE,
            Error::BadToken | Error::CrossSite(_) => StatusCode::FORBIDDEN,
            Error::Call(write) => match write {
                CallError::Refused { status, .. } => {
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
                }
                CallError::TooFast(_) => StatusCode::TOO_MANY_REQUESTS,
                CallError::BadReply(_) => StatusCode::BAD_GATEWAY,
                CallError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                CallError::Unknown => StatusCode::GATEWAY_TIMEOUT,
            },
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// When to try again, in seconds, for a 429 (ours or the middletier's).
    fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Call(CallError::TooFast(wait)) => Some(wait.as_secs().max(1)),
            Error::Call(CallError::Refused { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }

    /// A form post a person made from the page: answered with a page.
    fn is_form_refusal(&self) -> bool {
        matches!(self, Error::Form(_) | Error::BadToken)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after();
        let mut response = if self.is_form_refusal() {
            let title = match status {
                StatusCode::FORBIDDEN => "Form expired",
                StatusCode::PAYLOAD_TOO_LARGE => "Form too large",
                _ => "Incomplete form",
            };
            (
                status,
                crate::message::message_page(title, &self.to_string()),
            )
                .into_response()
        } else if status.is_server_error() {
            // Ours or the middletier's failure: give the user a reference
            // to quote, which finds this request's trace and log lines.
            let reference = common::telemetry::http::error_reference();
            tracing::warn!(%reference, status = status.as_u16(), error = %self, "request failed");
            let body = ErrorBody {
                reference: Some(reference),
                ..ErrorBody::new(self.to_string())
            };
            (status, axum::Json(body)).into_response()
        } else {
            (status, axum::Json(ErrorBody::new(self.to_string()))).into_response()
        };
        if matches!(self, Error::SignInRequired) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rss-reader\""),
            );
        }
        if let Some(value) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

fn json_message(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "send the body as JSON with Content-Type: application/json, e.g. {\"url\": \"https://example.com/feed.xml\"}".to_owned()
        }
        other => format!(
            "the body is not {{\"url\": \"...\"}} ({}); send e.g. {{\"url\": \"https://example.com/feed.xml\"}}",
            other.body_text()
        ),
    }
}

fn form_message(rejection: &FormRejection) -> String {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "the form is larger than the reader accepts (a feed URL is at most 2048 characters); go back to the reader and try again".to_owned()
    } else {
        "the form arrived incomplete; go back to the reader and try again".to_owned()
    }
}

/// `axum::Json`, rejecting with [`Error`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub(crate) struct Json<T>(pub T);

/// `axum::Form`, rejecting with [`Error`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Form), rejection(Error))]
pub(crate) struct Form<T>(pub T);

/// A form that carries the CSRF token of the page it came from.
pub(crate) trait HasCsrf {
    fn csrf(&self) -> &str;
}

/// Each form's token is its `csrf` field.
macro_rules! has_csrf {
    ($($form:ty),*) => {$(
        impl $crate::error::HasCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}
pub(crate) use has_csrf;

/// A form whose CSRF token matches the cookie's (see
/// [`crate::security`]); anything else is refused before the handler runs.
#[derive(Debug)]
pub(crate) struct CheckedForm<T>(pub T);

impl<T> FromRequest<crate::state::AppState> for CheckedForm<T>
where
    T: HasCsrf + serde::de::DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &crate::state::AppState) -> Result<Self, Error> {
        let jar = CookieJar::from_headers(request.headers());
        let (parts, body) = request.into_parts();
        let https = crate::client::client_of(&parts, &state.trusted_proxies).https;
        let request = Request::from_parts(parts, body);
        let Form(form) = Form::<T>::from_request(request, state).await?;
        if csrf_ok(&jar, form.csrf(), https) {
            Ok(CheckedForm(form))
        } else {
            Err(Error::BadToken)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_failure_has_its_status() {
        let write = |e: CallError| Error::Call(e).status();
        assert_eq!(
            write(CallError::BadReply("x".into())),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            write(CallError::Unavailable("x".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(write(CallError::Unknown), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            write(CallError::TooFast(Duration::from_secs(2))),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            write(CallError::Refused {
                status: 409,
                message: "x".into(),
                retry_after: None
            }),
            StatusCode::CONFLICT
        );
        assert_eq!(Error::BadToken.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            Error::NoUser("X-User".into()).status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn a_429_says_when_to_try_again() {
        let response = Error::Call(CallError::TooFast(Duration::from_secs(3))).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
