//! The Google Reader API, for the apps people read on (NetNewsWire,
//! Reeder, ReadYou, Fluent Reader, FeedMe, NewsFlash): the same routes
//! FreshRSS, Miniflux and CommaFeed serve, at the edge's root and under
//! `/api/greader.php/`.
//!
//! The pattern: a second API over the same middletier, with its own
//! named commands (`GReader*`, each its own breaker) and the middletier's
//! bulk calls ([`common::sync`]), so a sync of 20,000 items is a few dozen
//! requests, not 20,000. What differs from the JSON API, on purpose:
//!
//! - **Auth** is `Authorization: GoogleLogin auth=<token>`, where the token
//!   is an app password (`POST /accounts/ClientLogin` checks one and hands
//!   it back). Tokens survive restarts and work on every edge (no session
//!   key involved); a revoked one stops working within the account cache's
//!   30 s. There is no cookie, so no CSRF risk: the `T` edit token is
//!   issued but not required (clients send none, an empty one, or `x`).
//! - **No fallback, ever.** A sync app takes a saved or empty list as the
//!   truth and rewrites the user's read state to match, so when the
//!   middletier cannot answer the answer is 503 with `Retry-After`.
//! - **CORS** is open (`*`): the token travels in a header, never a cookie.
//!   Only with `--auth local` (tokens): under `none` and `proxy` the user
//!   is known without one, so writes from another site's pages are refused
//!   as the reader's own forms refuse them.
//! - **Bodies** up to 2 MiB (a thousand ids per edit), and one write-rate
//!   token per call, never one per id.
//!
//! Ids ([`ids`]): items in every form clients send, feeds as `feed/<n>`
//! (a number derived from the URL, [`common::sync::feed_number`]) or
//! `feed/<url>`, and one label, `Feeds`, until folders exist.

mod calls;
mod ids;
mod render;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::api::UserId;

use crate::auth::{Access, Identity, Mode};
use crate::middletier::CallError;
use crate::state::AppState;

/// NetNewsWire sends a thousand ids in one edit; a long id is 48 bytes.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// How long a client waits before trying again after a 503.
const RETRY_AFTER_SECONDS: u64 = 10;

/// The API's routes, at the root and under `/api/greader.php`, with their
/// own auth, CORS and body limit (they sit outside the reader's
/// cookie-based auth and cross-site checks).
pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/accounts/ClientLogin",
            get(calls::client_login).post(calls::client_login),
        )
        .route("/reader/api/0/token", get(calls::token).post(calls::token))
        .route("/reader/api/0/user-info", get(calls::user_info))
        .route("/reader/api/0/subscription/list", get(calls::subscriptions))
        .route("/reader/api/0/subscription/quickadd", post(calls::quickadd))
        .route(
            "/reader/api/0/subscription/edit",
            post(calls::edit_subscription),
        )
        .route("/reader/api/0/tag/list", get(calls::tags))
        .route("/reader/api/0/unread-count", get(calls::unread_count))
        .route(
            "/reader/api/0/stream/items/ids",
            get(calls::item_ids).post(calls::item_ids),
        )
        .route(
            "/reader/api/0/stream/items/contents",
            get(calls::item_contents).post(calls::item_contents),
        )
        .route(
            "/reader/api/0/stream/contents",
            get(calls::stream_contents).post(calls::stream_contents),
        )
        .route(
            "/reader/api/0/stream/contents/{*stream}",
            get(calls::stream_contents).post(calls::stream_contents),
        )
        .route("/reader/api/0/edit-tag", post(calls::edit_tag))
        .route("/reader/api/0/mark-all-as-read", post(calls::mark_all_read))
        .route("/reader/api/0/{*rest}", axum::routing::any(calls::unknown));
    let mut routes = Router::new()
        .route("/api/greader.php", get(|| async { "OK" }))
        .nest("/api/greader.php", api.clone())
        .merge(api)
        .layer(axum::middleware::map_response(crate::security::no_store));
    if state.auth.mode != Mode::Local {
        // Without tokens (`none`), or with a proxy that signs browsers in
        // by cookie (`proxy`), a page of another site could post here as
        // the user: refused, as the reader's own forms are. (Sync apps
        // send no `Origin` or `Sec-Fetch-Site`.)
        routes = routes.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::security::refuse_cross_site,
        ));
    }
    let routes = routes
        .layer(axum::middleware::from_fn(cors))
        .with_state(state);
    common::limits::apply(
        common::metrics::track_requests(routes, "edge"),
        MAX_BODY_BYTES,
    )
}

/// Open CORS on every answer; a preflight is answered here (204).
async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    response
}

/// Everything a Google Reader call can fail with, in the forms clients
/// understand.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GReaderError {
    /// ClientLogin with a wrong user or app password.
    #[error("Error=BadAuthentication\n")]
    BadAuthentication,
    /// No token, or one that is wrong or revoked.
    #[error(
        "the Authorization token is missing, wrong or revoked; sign in again with an app password (the reader's Settings page makes one)"
    )]
    BadToken,
    /// The request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The body could not be read (too large, or cut off): axum's status.
    #[error("{0}")]
    Body(#[from] axum::extract::rejection::BytesRejection),
    /// A feed URL or user name that is not valid.
    #[error(transparent)]
    Invalid(#[from] common::api::InvalidInput),
    /// No such call.
    #[error("{0}")]
    NotFound(String),
    /// The middletier's answer, or its absence.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Who the user is could not be settled (`--auth proxy`).
    #[error(transparent)]
    Auth(#[from] crate::error::Error),
}

impl IntoResponse for GReaderError {
    fn into_response(self) -> Response {
        let text = |status: StatusCode, body: String| {
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                body,
            )
                .into_response()
        };
        match self {
            Self::BadAuthentication => text(StatusCode::UNAUTHORIZED, self.to_string()),
            Self::BadToken => {
                let mut response = text(StatusCode::UNAUTHORIZED, self.to_string());
                response.headers_mut().insert(
                    "X-Reader-Google-Bad-Token",
                    HeaderValue::from_static("true"),
                );
                response
            }
            Self::BadRequest(message) => text(StatusCode::BAD_REQUEST, message),
            Self::Invalid(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
            Self::Body(rejection) => text(rejection.status(), rejection.body_text()),
            Self::NotFound(message) => text(StatusCode::NOT_FOUND, message),
            Self::Call(CallError::Refused {
                status, message, ..
            }) => text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                message,
            ),
            Self::Call(CallError::TooFast(wait)) => {
                let mut response = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    CallError::TooFast(wait).to_string(),
                );
                retry_after(&mut response, wait.as_secs().max(1));
                response
            }
            // Never a saved copy: the client is told to come back.
            Self::Call(e) => {
                tracing::warn!(error = %e, "greader: the middletier cannot answer");
                let mut response = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{e}; try again in a few seconds"),
                );
                retry_after(&mut response, RETRY_AFTER_SECONDS);
                response
            }
            Self::Auth(e) => e.into_response(),
        }
    }
}

fn retry_after(response: &mut Response, seconds: u64) {
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// The user a call is from, by its `Authorization: GoogleLogin auth=`
/// token (or `Bearer`, the same token), as `--auth` says.
#[derive(Debug)]
pub(crate) struct SyncUser(pub UserId);

impl FromRequestParts<AppState> for SyncUser {
    type Rejection = GReaderError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, GReaderError> {
        let identity = match state.auth.mode {
            Mode::None => Some(Identity {
                user: crate::auth::default_user(),
                admin: false,
                session: None,
            }),
            Mode::Proxy => crate::auth::from_proxy(parts, state, Access::Api)?,
            Mode::Local => match token(parts) {
                Some(token) => {
                    state
                        .auth
                        .app_password_identity(&state.middletier, token)
                        .await?
                }
                None => None,
            },
        };
        identity
            .map(|who| SyncUser(who.user))
            .ok_or(GReaderError::BadToken)
    }
}

/// The token of `Authorization: GoogleLogin auth=<t>` (or `Bearer <t>`).
fn token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("GoogleLogin") {
        rest.trim().strip_prefix("auth=").map(str::trim)
    } else if scheme.eq_ignore_ascii_case("Bearer") {
        Some(rest.trim())
    } else {
        None
    }
}
