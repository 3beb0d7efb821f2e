//! The headers every response of every service carries, so that nothing a
//! service returns can be turned against a browser:
//!
//! - `Content-Security-Policy`, given per service: the edge allows its own
//!   scripts and styles; the registry's API allows nothing at all
//!   (`default-src 'none'`), so even a record that smuggled markup into an
//!   XML answer could not run a script on the registry's origin;
//! - `X-Content-Type-Options: nosniff`: the browser believes our
//!   `Content-Type` and never sniffs JSON or XML into HTML;
//! - `X-Frame-Options: DENY`, `Referrer-Policy: same-origin` (no address
//!   of ours is ever sent to another site, while our own forms still carry
//!   their true `Origin`, which the edge checks; with `no-referrer`,
//!   browsers send `Origin: null` even to the same site) and
//!   `Cross-Origin-Opener-Policy: same-origin`.
//!
//! A handler may set its own CSP (a page that needs a stylesheet); the
//! layer adds the default only where none is set.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// `router` with the security headers, `csp` as the default policy.
pub fn apply<S>(router: Router<S>, csp: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(set(header::CONTENT_SECURITY_POLICY, csp))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(set(header::REFERRER_POLICY, "same-origin"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn every_response_carries_the_headers_and_a_page_may_set_its_own_policy() {
        let router = apply(
            Router::new().route("/api", get(|| async { "{}" })).route(
                "/page",
                get(|| async {
                    (
                        [(header::CONTENT_SECURITY_POLICY, "style-src 'self'")],
                        "<p>",
                    )
                }),
            ),
            "default-src 'none'",
        );
        let get = |path: &'static str| {
            router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
        };
        let api = get("/api").await.unwrap();
        assert_eq!(
            api.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'"
        );
        assert_eq!(api.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(api.headers()[header::X_FRAME_OPTIONS], "DENY");
        let missing = get("/nowhere").await.unwrap();
        assert_eq!(missing.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let page = get("/page").await.unwrap();
        assert_eq!(
            page.headers()[header::CONTENT_SECURITY_POLICY],
            "style-src 'self'"
        );
    }
}
