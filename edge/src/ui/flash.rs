//! The one-time message a form post leaves for the next page (the "flash"
//! of Post/Redirect/Get), carried in a short-lived cookie and removed as
//! it is shown.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// The cookie that carries a flash message to the next page.
const FLASH_COOKIE: &str = "flash";

/// A one-time message after a form post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    pub(crate) ok: bool,
    pub(crate) text: String,
}

impl Flash {
    pub(crate) fn ok(text: String) -> Self {
        Self { ok: true, text }
    }

    pub(crate) fn error(text: String) -> Self {
        Self { ok: false, text }
    }

    /// `ok.<percent-encoded text>` or `err.<...>`; kept short for a cookie.
    fn encode(&self) -> String {
        let text: String = self.text.chars().take(600).collect();
        let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
        format!("{}.{encoded}", if self.ok { "ok" } else { "err" })
    }

    fn decode(value: &str) -> Option<Self> {
        let (kind, encoded) = value.split_once('.')?;
        let text = url::form_urlencoded::parse(format!("t={encoded}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        match kind {
            "ok" => Some(Flash::ok(text)),
            "err" => Some(Flash::error(text)),
            _ => None,
        }
    }
}

pub(crate) fn set_flash(jar: CookieJar, flash: &Flash) -> CookieJar {
    jar.add(
        Cookie::build((FLASH_COOKIE, flash.encode()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .build(),
    )
}

/// Reads the flash message once: it is removed as it is shown.
pub(crate) fn take_flash(jar: CookieJar) -> (CookieJar, Option<Flash>) {
    let Some(flash) = jar.get(FLASH_COOKIE).and_then(|c| Flash::decode(c.value())) else {
        return (jar, None);
    };
    (
        jar.remove(Cookie::build(FLASH_COOKIE).path("/")),
        Some(flash),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_messages_survive_the_cookie() {
        let flash =
            Flash::error("Couldn't add https://x.example/?a=1&b=2: HTTP 404; try again".into());
        assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        assert_eq!(Flash::decode("garbage"), None);
        assert_eq!(Flash::decode("what.ever"), None);
    }
}
