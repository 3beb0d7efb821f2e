//! Browser security: CSRF tokens for forms, and the headers every response
//! carries.
//!
//! **CSRF** (a hostile page making the browser post to us), three locks:
//!
//! - **Where it came from.** Every state-changing request (any method but
//!   GET, HEAD and OPTIONS) whose `Sec-Fetch-Site` says `cross-site` or
//!   `same-site`, or whose `Origin` is not the reader's own, is refused
//!   with 403, token or not ([`cross_site`]). Browsers send at least one
//!   of the two on every such request; API clients send neither and are
//!   not affected.
//! - **A token in forms**: the "double submit" pattern. The page sets a
//!   random token in a `SameSite=Lax`, `HttpOnly` cookie and repeats it in
//!   a hidden form field; a post is accepted only when the two match. Over
//!   HTTPS the cookie is `__Host-csrf` and `Secure`, which no sibling
//!   subdomain and no plain-HTTP page can set.
//! - **Content types a form cannot send**: the JSON API takes only
//!   `application/json`, and OPML import only `text/x-opml`,
//!   `application/xml` or `text/xml`.
//!
//! **Headers** ([`common::security`]): a Content-Security-Policy that
//! allows scripts, styles and images from this origin only (no
//! `unsafe-inline`, so even an injected script tag would not run), no
//! framing, `nosniff`, and no referrer.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::client::client_of;
use crate::error::Error;
use crate::state::AppState;

/// Refuses a state-changing request from another site (see [`cross_site`]),
/// before anything else reads it.
pub(crate) async fn refuse_cross_site(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let client = client_of(&parts, &state.trusted_proxies);
    if let Some(reason) = cross_site(&parts.method, &parts.headers, client.origin().as_deref()) {
        return Error::CrossSite(reason).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// `Cache-Control: no-store` on every answer that does not say otherwise:
/// they are about one user (their feeds, their state), and no shared
/// cache on the way may keep them. (Assets set their own.)
pub(crate) async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The CSRF cookie over plain HTTP.
pub(crate) const CSRF_COOKIE: &str = "csrf";
/// The CSRF cookie over HTTPS: the `__Host-` prefix makes browsers take it
/// only with `Secure`, `Path=/` and no `Domain`, from this very host.
pub(crate) const CSRF_COOKIE_HTTPS: &str = "__Host-csrf";

fn csrf_cookie_name(https: bool) -> &'static str {
    if https {
        CSRF_COOKIE_HTTPS
    } else {
        CSRF_COOKIE
    }
}

/// Why a state-changing request is refused as coming from another site,
/// or `None` when it may go on (see the module docs). `own_origin` is the
/// reader's origin as this request reached it.
pub(crate) fn cross_site(
    method: &Method,
    headers: &HeaderMap,
    own_origin: Option<&str>,
) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    // A browser that sends Sec-Fetch-Site says exactly where the request
    // came from; it is believed first (its `Origin` may be `null` for our
    // own page, under a strict referrer policy).
    if let Some(site) = value("sec-fetch-site") {
        return (!matches!(site, "same-origin" | "none")).then(|| {
            format!(
                "the browser says it was sent by a page of another site (Sec-Fetch-Site: {site})"
            )
        });
    }
    let origin = value(header::ORIGIN.as_str())?;
    let same = own_origin.is_some_and(|own| own.eq_ignore_ascii_case(origin.trim()));
    (!same).then(|| {
        let shown: String = origin.chars().take(100).collect();
        format!("it was sent by a page of {shown}, not of this reader")
    })
}

pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src http: https:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// The request's CSRF token, or a new one (added to the jar to be set),
/// in the cookie for this scheme.
pub(crate) fn csrf_token(jar: CookieJar, https: bool) -> (CookieJar, String) {
    let name = csrf_cookie_name(https);
    if let Some(cookie) = jar.get(name)
        && is_well_formed(cookie.value())
    {
        let token = cookie.value().to_owned();
        return (jar, token);
    }
    let token = new_token();
    let cookie = Cookie::build((name, token.clone()))
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .build();
    (jar.add(cookie), token)
}

/// Whether a submitted form token matches the cookie's (for this scheme).
pub(crate) fn csrf_ok(jar: &CookieJar, submitted: &str, https: bool) -> bool {
    match jar.get(csrf_cookie_name(https)) {
        Some(cookie) if is_well_formed(cookie.value()) => {
            constant_time_eq(cookie.value().as_bytes(), submitted.as_bytes())
        }
        _ => false,
    }
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness is a broken machine; refuse every form rather
        // than issue a guessable token.
        tracing::error!("no randomness available for CSRF tokens");
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares without stopping at the first difference, so timing does not
/// tell an attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_issued_once_and_then_reused() {
        let (jar, token) = csrf_token(CookieJar::new(), false);
        assert!(is_well_formed(&token));
        let (_, again) = csrf_token(jar.clone(), false);
        assert_eq!(token, again);
        assert!(csrf_ok(&jar, &token, false));
    }

    #[test]
    fn over_https_the_token_lives_in_a_host_only_secure_cookie() {
        let (jar, token) = csrf_token(CookieJar::new(), true);
        let cookie = jar.get(CSRF_COOKIE_HTTPS).unwrap();
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.path(), Some("/"));
        assert!(cookie.domain().is_none());
        assert!(csrf_ok(&jar, &token, true));
        // A plain `csrf` cookie (planted over HTTP, or by a sibling
        // subdomain) is not the HTTPS token.
        let planted = CookieJar::new().add(Cookie::new(CSRF_COOKIE, "a".repeat(64)));
        assert!(!csrf_ok(&planted, &"a".repeat(64), true));
    }

    #[test]
    fn forged_or_missing_tokens_are_refused() {
        let (jar, token) = csrf_token(CookieJar::new(), false);
        assert!(!csrf_ok(&jar, "", false));
        assert!(!csrf_ok(&jar, &"0".repeat(64), false));
        assert!(!csrf_ok(&jar, &token[..63], false));
        assert!(
            !csrf_ok(&CookieJar::new(), &token, false),
            "no cookie, no entry"
        );
        let forged = CookieJar::new().add(Cookie::new(CSRF_COOKIE, "attacker"));
        assert!(
            !csrf_ok(&forged, "attacker", false),
            "a malformed cookie never matches"
        );
    }

    fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_write_from_another_site_is_refused_token_or_not() {
        let own = Some("http://127.0.0.1:9090");
        let post = Method::POST;
        assert!(cross_site(&post, &with(&[("origin", "https://attacker.example")]), own).is_some());
        assert!(cross_site(&post, &with(&[("origin", "null")]), own).is_some());
        assert!(cross_site(&post, &with(&[("sec-fetch-site", "cross-site")]), own).is_some());
        assert!(cross_site(&post, &with(&[("sec-fetch-site", "same-site")]), own).is_some());
        assert!(
            cross_site(
                &Method::DELETE,
                &with(&[("origin", "http://evil.sub.example")]),
                own
            )
            .is_some()
        );
    }

    #[test]
    fn the_readers_own_pages_and_api_clients_are_let_through() {
        let own = Some("http://127.0.0.1:9090");
        let post = Method::POST;
        assert!(cross_site(&post, &with(&[("origin", "http://127.0.0.1:9090")]), own).is_none());
        assert!(cross_site(&post, &with(&[("sec-fetch-site", "same-origin")]), own).is_none());
        assert!(cross_site(&post, &with(&[("sec-fetch-site", "none")]), own).is_none());
        // Our own form under a strict referrer policy: Origin null, but
        // the browser says same-origin.
        let own_form = [("sec-fetch-site", "same-origin"), ("origin", "null")];
        assert!(cross_site(&post, &with(&own_form), own).is_none());
        // curl, apps: neither header.
        assert!(cross_site(&post, &HeaderMap::new(), own).is_none());
        // Reads are never refused.
        assert!(
            cross_site(
                &Method::GET,
                &with(&[("origin", "https://attacker.example")]),
                own
            )
            .is_none()
        );
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
    }
}
