//! The reader in the browser: one server-rendered page and two forms, in
//! the Post/Redirect/Get pattern (a form posts, the edge answers with a
//! redirect to `/` and a one-time "flash" message in a cookie), so the page
//! works without JavaScript and a reload never re-submits a form.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use common::api::{FeedUrl, FeedView, Item};
use serde::Deserialize;

use crate::AppState;
use crate::error::{CheckedForm, HasCsrf};
use crate::middletier::WriteError;
use crate::security::csrf_token;
use crate::user::CurrentUser;

/// Items shown per feed on the page.
const ITEMS_PER_FEED: usize = 8;
/// Summary length, in characters.
const SUMMARY_CHARS: usize = 240;
const FLASH_COOKIE: &str = "flash";

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
struct IndexPage {
    user: String,
    show_user: bool,
    csrf: String,
    flash: Option<Flash>,
    degraded: Option<String>,
    feeds: Vec<FeedCard>,
}

/// A one-time message after a form post.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Flash {
    ok: bool,
    text: String,
}

struct FeedCard {
    url: String,
    title: String,
    error: Option<String>,
    items: Vec<ItemLine>,
}

struct ItemLine {
    title: String,
    link: Option<String>,
    date_iso: Option<String>,
    date_text: Option<String>,
    summary: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    title: &'static str,
    text: String,
}

/// A page with one message: what a refused form post gets (see
/// [`crate::error`]).
pub(crate) fn message_page(title: &'static str, text: &str) -> MessagePage {
    MessagePage {
        title,
        text: sentence(text),
    }
}

/// `GET /`: the page.
pub(crate) async fn index(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    jar: CookieJar,
) -> Response {
    let (jar, csrf) = csrf_token(jar);
    let (jar, flash) = take_flash(jar);
    let read = state.middletier.read(&user).await;
    let feeds = read.feeds(&user);
    let page = IndexPage {
        user: user.to_string(),
        show_user: state.auth_proxy_header.is_some(),
        csrf,
        flash,
        degraded: read.degraded,
        feeds: feeds.subscriptions.iter().map(card).collect(),
    };
    (jar, [(header::CACHE_CONTROL, "no-store")], page).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionForm {
    url: String,
    csrf: String,
}

impl HasCsrf for SubscriptionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /subscriptions`: add, then back to the page.
pub(crate) async fn add(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SubscriptionForm>,
) -> Response {
    let flash = match FeedUrl::parse(&form.url) {
        Err(invalid) => Flash::error(format!("Couldn't add that feed: {invalid}")),
        Ok(url) => match state.middletier.subscribe(&user, &url).await {
            Ok(_) => Flash::ok(format!(
                "Added {url}. Its items appear below once it has been read."
            )),
            Err(WriteError::Refused { message, .. }) => {
                Flash::error(format!("Couldn't add {url}: {message}"))
            }
            Err(e) => Flash::error(format!(
                "Your feed was not added. {}",
                sentence(&e.to_string())
            )),
        },
    };
    (set_flash(jar, &flash), Redirect::to("/")).into_response()
}

/// `POST /subscriptions/delete`: delete, then back to the page.
pub(crate) async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SubscriptionForm>,
) -> Response {
    let flash = match FeedUrl::parse(&form.url) {
        Err(invalid) => Flash::error(format!("Couldn't delete that feed: {invalid}")),
        Ok(url) => match state.middletier.unsubscribe(&user, &url).await {
            Ok(_) => Flash::ok(format!("Deleted {url}.")),
            Err(WriteError::Refused { message, .. }) => {
                Flash::error(format!("Couldn't delete {url}: {message}"))
            }
            Err(e) => Flash::error(format!(
                "The feed was not deleted. {}",
                sentence(&e.to_string())
            )),
        },
    };
    (set_flash(jar, &flash), Redirect::to("/")).into_response()
}

/// Capitalizes the first letter and ends with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl Flash {
    fn ok(text: String) -> Self {
        Self { ok: true, text }
    }

    fn error(text: String) -> Self {
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

fn set_flash(jar: CookieJar, flash: &Flash) -> CookieJar {
    jar.add(
        Cookie::build((FLASH_COOKIE, flash.encode()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .build(),
    )
}

/// Reads the flash message once: it is removed as it is shown.
fn take_flash(jar: CookieJar) -> (CookieJar, Option<Flash>) {
    let Some(flash) = jar.get(FLASH_COOKIE).and_then(|c| Flash::decode(c.value())) else {
        return (jar, None);
    };
    (
        jar.remove(Cookie::build(FLASH_COOKIE).path("/")),
        Some(flash),
    )
}

fn card(feed: &FeedView) -> FeedCard {
    FeedCard {
        url: feed.url.clone(),
        title: feed.title.clone(),
        error: feed.error.clone(),
        items: feed
            .items
            .iter()
            .take(ITEMS_PER_FEED)
            .map(item_line)
            .collect(),
    }
}

fn item_line(item: &Item) -> ItemLine {
    let date = item
        .published
        .as_deref()
        .and_then(|p| chrono::DateTime::parse_from_rfc3339(p).ok());
    ItemLine {
        title: item.title.clone(),
        // The middletier only sends http(s) links; check again, since a
        // `javascript:` link would run in our origin.
        link: item
            .link
            .clone()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://")),
        date_iso: date.map(|d| d.to_rfc3339()),
        date_text: date.map(|d| d.format("%-d %b %Y, %H:%M UTC").to_string()),
        summary: summary(&item.description),
    }
}

/// A short plain-text summary of feed HTML. `ammonia` with no tags allowed
/// drops every element (and the content of scripts and styles), keeping
/// text only; the template escapes it again when it is written out. A space
/// goes before each tag first, so "<p>a</p><p>b</p>" reads "a b", not "ab".
pub(crate) fn summary(html: &str) -> String {
    let spaced = html.replace('<', " <");
    let text = ammonia::Builder::empty().clean(&spaced).to_string();
    let text = unescape(&text);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text,
    }
}

/// Undoes the escaping html5ever's serializer applies to text.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_short_plain_text() {
        let html = r#"<p>Hello <b>world</b> &amp; friends</p><script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">link</a><iframe src="https://evil.example"></iframe><style>p{}</style>"#;
        assert_eq!(summary(html), "Hello world & friends link");
        let long = "word ".repeat(200);
        let cut = summary(&long);
        assert!(cut.ends_with('…') && cut.chars().count() <= SUMMARY_CHARS + 1);
        assert_eq!(
            summary("a &lt;b&gt; c"),
            "a <b> c",
            "escaped text stays text"
        );
    }

    #[test]
    fn flash_messages_survive_the_cookie() {
        let flash =
            Flash::error("Couldn't add https://x.example/?a=1&b=2: HTTP 404; try again".into());
        assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        assert_eq!(Flash::decode("garbage"), None);
        assert_eq!(Flash::decode("what.ever"), None);
    }

    #[test]
    fn only_web_links_are_kept() {
        let mut item = Item {
            title: "t".into(),
            link: Some("javascript:alert(1)".into()),
            description: String::new(),
            published: Some("2024-01-02T09:30:00Z".into()),
            ..Item::default()
        };
        let line = item_line(&item);
        assert_eq!(line.link, None);
        assert_eq!(line.date_text.as_deref(), Some("2 Jan 2024, 09:30 UTC"));
        item.link = Some("https://example.com/a".into());
        assert_eq!(
            item_line(&item).link.as_deref(),
            Some("https://example.com/a")
        );
    }

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            sentence("not saved: the feed service is busy"),
            "Not saved: the feed service is busy."
        );
        assert_eq!(sentence("Done."), "Done.");
    }
}
