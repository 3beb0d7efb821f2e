//! Who is asking: decided once per request, at the edge, in one of three
//! modes (`--auth`, env `RSS_AUTH`):
//!
//! | mode | who the user is | for |
//! |---|---|---|
//! | `none` | everyone is `default` | one person on one machine: the edge refuses to start in this mode on any address but loopback |
//! | `proxy` | the header `--auth-proxy-header` names the user, believed only from `--trusted-proxies`; any other peer gets 403 (the operators' pages are for those trusted peers, header or not) | behind an authenticating proxy (oauth2-proxy, Authelia, ...) |
//! | `local` | accounts with passwords, kept by the middletier; a signed session cookie for browsers, app passwords for apps | a household, a team, any public deployment |
//!
//! The [`identify`] middleware runs before every handler. It sorts the
//! path ([`Access`]), finds the identity (proxy header, session cookie or
//! `Authorization: Bearer` app password), and either lets the request on
//! with an [`Identity`] in its extensions (which [`CurrentUser`] reads)
//! or answers at once: a page asks the browser to sign in (303 to
//! `/login?next=...`), an API call gets 401, an operator's page 403 for
//! anyone but an admin.
//!
//! **Sessions are stateless** ([`session`]): any edge with the shared key
//! checks a cookie without a store call. What a cookie cannot know, that
//! the user signed out everywhere (the account's epoch rose) or was
//! deleted, comes from the account, cached for [`ACCOUNT_TTL`]: so "sign
//! out everywhere" and a revoked app password take effect on every edge
//! within that time. While the middletier cannot be asked, a valid cookie
//! is believed on its own (signed-in users keep reading the saved feeds),
//! but it grants no admin rights.

mod app_password;
pub(crate) mod pages;
mod password;
mod session;
pub(crate) mod start;
mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Utc;
use common::api::{Account, UserId};

use crate::client::{client_of, peer_of};
use crate::error::Error;
use crate::middletier::{CallError, Middletier};
use crate::state::AppState;

pub(crate) use session::{Session, SessionKey};

/// How long an account (its epoch, admin flag and app passwords) is
/// believed before it is read again: the most a sign-out-everywhere or a
/// revoked app password waits to take effect (the contract: 60 s).
pub(crate) const ACCOUNT_TTL: Duration = Duration::from_secs(30);
/// Accounts cached at most; past it the cache starts again.
const MAX_CACHED: usize = 10_000;

/// How the edge knows who is asking (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Everyone is `default`; loopback only.
    None,
    /// An authenticating proxy names the user in a header.
    Proxy,
    /// Accounts with passwords.
    Local,
}

impl Mode {
    /// Its name, as `--auth` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Proxy => "proxy",
            Mode::Local => "local",
        }
    }
}

/// Who a request is from.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub user: UserId,
    /// May manage accounts and see the operators' pages.
    pub admin: bool,
    /// The browser session it came with (`local` mode), renewed as used.
    pub session: Option<Session>,
}

/// What a path is, for deciding who may have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone, always: `/healthcheck`, the assets.
    Open,
    /// The way in: `/login`, `/setup`.
    SignIn,
    /// The JSON API: 401 without credentials; app passwords accepted.
    Api,
    /// The operators' pages and streams (`/dashboard`, `/dashboard/data`,
    /// `/hystrix.stream`, `/metrics`): admins only.
    Operator,
    /// Managing accounts (`/admin/...`): admins only.
    Admin,
    /// The reader's own pages and forms.
    Reader,
}

impl Access {
    /// Sorts a request path.
    pub(crate) fn of(path: &str) -> Self {
        let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
        if path == "/healthcheck" || under("/assets") {
            Access::Open
        } else if path == "/login" || path == "/setup" {
            Access::SignIn
        } else if under("/api") {
            Access::Api
        } else if matches!(
            path,
            "/dashboard" | "/dashboard/data" | "/hystrix.stream" | "/metrics"
        ) {
            Access::Operator
        } else if under("/admin") {
            Access::Admin
        } else {
            Access::Reader
        }
    }

    /// Whether the answer is for a browser page (a redirect to sign in)
    /// rather than a program (a status and `{"error"}`).
    fn is_page(self, path: &str) -> bool {
        matches!(self, Access::Reader | Access::Admin) || path == "/dashboard"
    }
}

/// The first account, when no account exists yet: a one-time code printed
/// in the log, which `/setup` asks for.
#[derive(Debug)]
pub(crate) struct Setup {
    pub code: String,
    /// Set once any account exists; from then on `/setup` is closed.
    done: AtomicBool,
}

/// Everything about signing in, shared by the handlers.
pub(crate) struct Auth {
    pub mode: Mode,
    /// `proxy` mode: the header that names the user.
    pub proxy_header: Option<String>,
    pub key: SessionKey,
    /// `local` mode without an admin from the environment.
    pub setup: Option<Setup>,
    accounts: Mutex<HashMap<UserId, (Instant, Option<Account>)>>,
    throttle: Mutex<throttle::Throttle>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("mode", &self.mode)
            .field("proxy_header", &self.proxy_header)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Signing in as `mode` says; `setup_code` opens `/setup` until an
    /// account exists.
    pub(crate) fn new(
        mode: Mode,
        proxy_header: Option<String>,
        key: SessionKey,
        setup_code: Option<String>,
    ) -> Self {
        Self {
            mode,
            proxy_header,
            key,
            setup: setup_code.map(|code| Setup {
                code,
                done: AtomicBool::new(false),
            }),
            accounts: Mutex::default(),
            throttle: Mutex::default(),
        }
    }

    /// The account, from the cache while it is fresh. When the middletier
    /// cannot be asked, the last copy is used however old; with none, the
    /// error.
    pub(crate) async fn account(
        &self,
        middletier: &Middletier,
        user: &UserId,
    ) -> Result<Option<Account>, CallError> {
        let cached = self
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .cloned();
        if let Some((at, account)) = &cached
            && at.elapsed() < ACCOUNT_TTL
        {
            return Ok(account.clone());
        }
        match middletier.account(user).await {
            Ok(account) => {
                self.remember(user, account.clone());
                Ok(account)
            }
            Err(e) => match cached {
                Some((_, account)) => Ok(account),
                None => Err(e),
            },
        }
    }

    /// The sign-in throttle (see [`throttle`]), locked.
    pub(crate) fn throttle(&self) -> std::sync::MutexGuard<'_, throttle::Throttle> {
        self.throttle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `account` as the current copy of `user`'s (after reading or
    /// changing it here, so this edge sees its own change at once).
    pub(crate) fn remember(&self, user: &UserId, account: Option<Account>) {
        let mut cache = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(user.clone(), (Instant::now(), account));
    }

    /// Whether `/setup` is open: no admin came from the environment and no
    /// account exists yet. Once one does, this never asks again.
    pub(crate) async fn setup_needed(&self, middletier: &Middletier) -> bool {
        let Some(setup) = &self.setup else {
            return false;
        };
        if setup.done.load(Ordering::Relaxed) {
            return false;
        }
        match middletier.accounts().await {
            Ok(accounts) if accounts.is_empty() => true,
            Ok(_) => {
                self.setup_done();
                false
            }
            // Cannot tell: not open (signing in says what is wrong).
            Err(_) => false,
        }
    }

    /// An account exists: `/setup` is closed for good.
    pub(crate) fn setup_done(&self) {
        if let Some(setup) = &self.setup {
            setup.done.store(true, Ordering::Relaxed);
        }
    }

    /// The session cookie for `session`.
    pub(crate) fn session_cookie(&self, session: &Session, https: bool) -> Cookie<'static> {
        let expires = time_of(session.expires);
        Cookie::build((session::COOKIE, session.sign(&self.key)))
            .path("/")
            .http_only(true)
            .secure(https)
            .same_site(SameSite::Lax)
            .expires(expires)
            .build()
    }

    /// A cookie that removes the session cookie.
    pub(crate) fn cleared_cookie() -> Cookie<'static> {
        Cookie::build((session::COOKIE, "")).path("/").build()
    }

    /// The identity a session cookie proves, if it is valid and its epoch
    /// is the account's.
    async fn session_identity(&self, middletier: &Middletier, jar: &CookieJar) -> Option<Identity> {
        let value = jar.get(session::COOKIE)?.value();
        let session = Session::verify(value, &self.key, Utc::now())?;
        match self.account(middletier, &session.user).await {
            Ok(Some(account)) if account.epoch == session.epoch => Some(Identity {
                user: session.user.clone(),
                admin: account.admin,
                session: Some(session),
            }),
            // Signed out everywhere, or deleted.
            Ok(_) => None,
            // Nobody to ask: the signed cookie stands, without admin rights.
            Err(e) => {
                tracing::debug!(error = %e, "session believed on its signature alone");
                Some(Identity {
                    user: session.user.clone(),
                    admin: false,
                    session: Some(session),
                })
            }
        }
    }

    /// The identity an `Authorization: Bearer` app password proves.
    async fn bearer_identity(&self, middletier: &Middletier, token: &str) -> Option<Identity> {
        self.app_password_identity(middletier, token)
            .await
            .ok()
            .flatten()
    }

    /// The identity an app password (`{user}~{secret}`) proves: `None` for
    /// a wrong or revoked one, an error when the account cannot be read
    /// (so a sync app is told to retry, not that its password is wrong).
    pub(crate) async fn app_password_identity(
        &self,
        middletier: &Middletier,
        token: &str,
    ) -> Result<Option<Identity>, CallError> {
        let Some((user, secret)) = app_password::parse(token) else {
            return Ok(None);
        };
        let Some(account) = self.account(middletier, &user).await? else {
            return Ok(None);
        };
        Ok(app_password::matches(&account, secret).then_some(Identity {
            user,
            admin: account.admin,
            session: None,
        }))
    }
}

fn time_of(at: chrono::DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Decides who a request is from, before any handler (see the module
/// docs); answers at once when they may not have what they asked for.
pub(crate) async fn identify(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let access = Access::of(&path);
    if access == Access::Open {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let auth = &state.auth;
    let identity = match auth.mode {
        Mode::None => Ok(Some(Identity {
            user: default_user(),
            admin: true,
            session: None,
        })),
        Mode::Proxy => from_proxy(&parts, &state, access),
        Mode::Local => {
            if auth.setup_needed(&state.middletier).await && path != "/setup" {
                return if access.is_page(&path) {
                    Redirect::to("/setup").into_response()
                } else {
                    Error::SetupFirst.into_response()
                };
            }
            Ok(local_identity(&parts, &state, access).await)
        }
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(e) => return e.into_response(),
    };
    let allowed = match (&identity, access) {
        (_, Access::SignIn) => true,
        (None, _) => {
            return if access.is_page(&path) {
                sign_in_first(&parts)
            } else {
                Error::SignInRequired.into_response()
            };
        }
        (Some(who), Access::Operator | Access::Admin) => who.admin,
        (Some(_), _) => true,
    };
    if !allowed {
        return Error::AdminsOnly.into_response();
    }
    let renew = identity
        .as_ref()
        .and_then(|who| who.session.clone())
        .filter(|session| session.due_for_renewal(Utc::now()));
    if let Some(identity) = identity {
        parts.extensions.insert(identity);
    }
    let https = client_of(&parts, &state.trusted_proxies).https;
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(session) = renew {
        let renewed = Session::new(session.user, session.epoch, Utc::now());
        let cookie = auth.session_cookie(&renewed, https);
        // Unless the handler set (or cleared) the cookie itself.
        let already = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(session::COOKIE.as_bytes()));
        if !already && let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `local` mode: a session cookie, or on the API and operators' paths an
/// app password.
async fn local_identity(parts: &Parts, state: &AppState, access: Access) -> Option<Identity> {
    let auth = &state.auth;
    if matches!(access, Access::Api | Access::Operator)
        && let Some(token) = bearer(parts)
    {
        // A wrong app password is no identity, even with a cookie: the
        // caller meant the token.
        return auth.bearer_identity(&state.middletier, token).await;
    }
    let jar = CookieJar::from_headers(&parts.headers);
    auth.session_identity(&state.middletier, &jar).await
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// `proxy` mode: the header, from a trusted proxy only.
pub(crate) fn from_proxy(
    parts: &Parts,
    state: &AppState,
    access: Access,
) -> Result<Option<Identity>, Error> {
    let peer: IpAddr = peer_of(parts);
    if !state.trusted_proxies.iter().any(|net| net.contains(&peer)) {
        return Err(Error::UntrustedPeer(peer));
    }
    let header = state.auth.proxy_header.as_deref().unwrap_or_default();
    let mut values = parts.headers.get_all(header).iter();
    let Some(value) = values.next() else {
        // The operators' pages are for trusted peers, user or not (a
        // metrics scraper names nobody).
        if access == Access::Operator {
            return Ok(Some(Identity {
                user: default_user(),
                admin: true,
                session: None,
            }));
        }
        // The way in is the proxy's own.
        return Err(Error::NoUser(header.to_owned()));
    };
    if values.next().is_some() {
        return Err(Error::RepeatedUser(header.to_owned()));
    }
    let text = value.to_str().map_err(|_| Error::BadUser {
        header: header.to_owned(),
        reason: "it is not ASCII".to_owned(),
    })?;
    let user = UserId::parse(text.trim()).map_err(|e| Error::BadUser {
        header: header.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Some(Identity {
        user,
        // Only trusted peers get this far: the proxy decides.
        admin: true,
        session: None,
    }))
}

/// The redirect to the sign-in page, coming back here afterwards (for a
/// page someone was reading; a form post goes back to the page).
fn sign_in_first(parts: &Parts) -> Response {
    let back = if parts.method == Method::GET {
        parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned()
    } else {
        "/".to_owned()
    };
    let next = url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// Where to go after signing in: a path of this reader, never another site
/// (`//evil.example` and `/\evil.example` are other sites to a browser).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The one user of `--auth none`.
pub(crate) fn default_user() -> UserId {
    UserId::parse("default").unwrap_or_else(|_| unreachable!("`default` is a valid user id"))
}

/// The current user, as [`identify`] found them.
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let who = Identity::from_request_parts(parts, state).await?;
        Ok(CurrentUser(who.user))
    }
}

/// The whole identity, where a handler needs more than the user.
impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or(Error::SignInRequired)
    }
}

/// The identity, for a page anyone may see (`/login`).
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Identity as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sorted_by_who_may_have_them() {
        assert_eq!(Access::of("/healthcheck"), Access::Open);
        assert_eq!(Access::of("/assets/app.css"), Access::Open);
        assert_eq!(Access::of("/login"), Access::SignIn);
        assert_eq!(Access::of("/setup"), Access::SignIn);
        assert_eq!(Access::of("/api/subscriptions"), Access::Api);
        assert_eq!(Access::of("/apiary"), Access::Reader);
        assert_eq!(Access::of("/metrics"), Access::Operator);
        assert_eq!(Access::of("/hystrix.stream"), Access::Operator);
        assert_eq!(Access::of("/dashboard/data"), Access::Operator);
        assert_eq!(Access::of("/admin/users"), Access::Admin);
        assert_eq!(Access::of("/admin/users/bob/delete"), Access::Admin);
        assert_eq!(Access::of("/settings"), Access::Reader);
        assert_eq!(Access::of("/"), Access::Reader);
    }

    #[test]
    fn only_paths_of_this_reader_are_places_to_go_back_to() {
        assert_eq!(safe_next(Some("/?view=unread")), "/?view=unread");
        assert_eq!(safe_next(Some("/settings")), "/settings");
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "/a\r\nSet-Cookie: x",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
