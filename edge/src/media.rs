//! The media proxy: an article's images come from this origin, never from
//! their publishers.
//!
//! An article page that loaded images from wherever the feed pointed would
//! tell every publisher (and every tracker they embed) who read what, when
//! and from where, and would need a CSP open to every host. Instead the
//! article's HTML is rewritten as it is rendered ([`rewrite`]): every
//! `<img src>` becomes `/media/{signature}/{encoded URL}`, signed with the
//! edge's key, so the proxy fetches only what the edge itself put into a
//! page and cannot be used as an open proxy. `srcset` is dropped (each
//! candidate would need signing, and one size reads fine), and so are
//! images that say they are 1×1: tracking pixels.
//!
//! `GET /media/...` ([`proxy`]) checks the signature and asks the
//! middletier (`RSSMedia`), which fetches with the feeds' address guard,
//! size cap and timeouts, sends no cookies or referrer, and passes on only
//! `image/*` that is not SVG and not 1×1. The page's CSP stays
//! `img-src 'self' data:`.

use std::borrow::Cow;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::auth::{CurrentUser, SessionKey};
use crate::middletier::CallError;
use crate::state::AppState;

/// What the signatures are for: a media signature is never a session's.
const PURPOSE: &str = "media";

/// The proxy's address for the image at `url`.
pub(crate) fn proxied(key: &SessionKey, url: &str) -> String {
    format!(
        "/media/{}/{}",
        key.sign_for(PURPOSE, url),
        URL_SAFE_NO_PAD.encode(url)
    )
}

/// The URL a proxy address names, if the edge signed it.
pub(crate) fn unsign(key: &SessionKey, signature: &str, encoded: &str) -> Option<String> {
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    key.verify_for(PURPOSE, &url, signature).then_some(url)
}

/// Article HTML (already sanitized when the feed was read) with every
/// image through the proxy; sanitized again, so the page never trusts the
/// stored copy alone.
pub(crate) fn rewrite(html: &str, key: &SessionKey) -> String {
    let key = key.clone();
    let mut builder = ammonia::Builder::default();
    builder
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into())
        .attribute_filter(
            move |element, attribute, value| match (element, attribute) {
                ("img", "src") => {
                    let web = value.starts_with("https://") || value.starts_with("http://");
                    web.then(|| Cow::Owned(proxied(&key, value)))
                }
                ("img", "srcset") => None,
                _ => Some(Cow::Borrowed(value)),
            },
        );
    let cleaned = builder.clean(html).to_string();
    drop_pixels(&cleaned)
}

/// Removes `<img>` elements that declare themselves 1×1 (tracking pixels):
/// the proxy refuses them anyway, but a broken-image icon is noise.
fn drop_pixels(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find("<img") {
        out.push_str(&rest[..at]);
        let tag_end = rest[at..].find('>').map_or(rest.len(), |end| at + end + 1);
        let tag = &rest[at..tag_end];
        let one = |name: &str| {
            tag.contains(&format!("{name}=\"1\"")) || tag.contains(&format!("{name}=\"0\""))
        };
        if !(one("width") && one("height")) {
            out.push_str(tag);
        }
        rest = &rest[tag_end..];
    }
    out.push_str(rest);
    out
}

/// `GET /media/{signature}/{encoded URL}`: the image, from the middletier.
pub(crate) async fn proxy(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((signature, encoded)): Path<(String, String)>,
) -> Response {
    let Some(url) = unsign(&state.auth.key, &signature, &encoded) else {
        return (
            StatusCode::NOT_FOUND,
            "no such image: this address was not made by this reader (or its key changed); reload the article",
        )
            .into_response();
    };
    match state.middletier.media(&user, &url).await {
        Ok((media_type, bytes))
            if media_type.starts_with("image/") && !media_type.contains("svg") =>
        {
            let content_type = HeaderValue::from_str(&media_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("private, max-age=86400"),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(_) => (StatusCode::BAD_GATEWAY, "the image could not be shown").into_response(),
        Err(CallError::Refused {
            status, message, ..
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, message).into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("the image could not be fetched: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_file_contents(&[7u8; 32]).unwrap()
    }

    #[test]
    fn only_signed_addresses_name_an_image() {
        let key = key();
        let address = proxied(&key, "https://img.example/a.png?x=1");
        let mut parts = address.trim_start_matches("/media/").split('/');
        let (signature, encoded) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(
            unsign(&key, signature, encoded).as_deref(),
            Some("https://img.example/a.png?x=1")
        );
        let other = URL_SAFE_NO_PAD.encode("http://169.254.169.254/");
        assert_eq!(
            unsign(&key, signature, &other),
            None,
            "a signature is for one URL"
        );
        let session_like = key.sign_for("session", "https://img.example/a.png?x=1");
        assert_eq!(
            unsign(&key, &session_like, encoded),
            None,
            "and one purpose"
        );
        let random = SessionKey::random().unwrap();
        assert_eq!(unsign(&random, signature, encoded), None);
    }

    #[test]
    fn images_go_through_the_proxy_and_pixels_are_dropped() {
        let key = key();
        let html = r#"<p>Hi <img src="https://img.example/a.png" srcset="https://img.example/a2.png 2x" alt="A">
            <img src="https://t.example/p.gif" width="1" height="1">
            <img src="data:image/png;base64,AAAA"><script>x()</script></p>"#;
        let out = rewrite(html, &key);
        assert!(
            out.contains(&proxied(&key, "https://img.example/a.png")),
            "{out}"
        );
        assert!(!out.contains("img.example/a"), "no direct fetch: {out}");
        assert!(!out.contains("srcset"), "{out}");
        assert!(!out.contains("t.example"), "the pixel is gone: {out}");
        assert!(!out.contains("data:"), "{out}");
        assert!(!out.contains("script"), "{out}");
        assert!(out.contains(r#"alt="A""#), "{out}");
    }
}
