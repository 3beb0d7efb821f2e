//! Browser security: CSRF tokens for forms, and the headers every response
//! carries.
//!
//! **CSRF** (a hostile page making the browser post to us): the "double
//! submit" pattern. The page sets a random token in a `SameSite=Lax`,
//! `HttpOnly` cookie and repeats it in a hidden form field; a post is
//! accepted only when the two match. Another site can make the browser send
//! the cookie (not even that, with `SameSite=Lax`, for a cross-site POST) but
//! cannot read it to fill in the field. The JSON API is protected by
//! requiring `Content-Type: application/json`, which no cross-site form can
//! send.
//!
//! **Headers** ([`common::security`]): a Content-Security-Policy that
//! allows scripts, styles and images from this origin only (no
//! `unsafe-inline`, so even an injected script tag would not run), no
//! framing, `nosniff`, and no referrer.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

pub(crate) const CSRF_COOKIE: &str = "csrf";

pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// The request's CSRF token, or a new one (added to the jar to be set).
pub(crate) fn csrf_token(jar: CookieJar) -> (CookieJar, String) {
    if let Some(cookie) = jar.get(CSRF_COOKIE)
        && is_well_formed(cookie.value())
    {
        let token = cookie.value().to_owned();
        return (jar, token);
    }
    let token = new_token();
    let cookie = Cookie::build((CSRF_COOKIE, token.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build();
    (jar.add(cookie), token)
}

/// Whether a submitted form token matches the cookie's.
pub(crate) fn csrf_ok(jar: &CookieJar, submitted: &str) -> bool {
    match jar.get(CSRF_COOKIE) {
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
        let (jar, token) = csrf_token(CookieJar::new());
        assert!(is_well_formed(&token));
        let (_, again) = csrf_token(jar.clone());
        assert_eq!(token, again);
        assert!(csrf_ok(&jar, &token));
    }

    #[test]
    fn forged_or_missing_tokens_are_refused() {
        let (jar, token) = csrf_token(CookieJar::new());
        assert!(!csrf_ok(&jar, ""));
        assert!(!csrf_ok(&jar, &"0".repeat(64)));
        assert!(!csrf_ok(&jar, &token[..63]));
        assert!(!csrf_ok(&CookieJar::new(), &token), "no cookie, no entry");
        let forged = CookieJar::new().add(Cookie::new(CSRF_COOKIE, "attacker"));
        assert!(
            !csrf_ok(&forged, "attacker"),
            "a malformed cookie never matches"
        );
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
    }
}
