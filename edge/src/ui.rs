//! The reader in the browser: server-rendered pages and forms in the
//! Post/Redirect/Get pattern (a form posts, the edge answers with a
//! redirect back and a one-time "flash" message in a cookie), so every
//! action works without JavaScript and a reload never re-submits a form.
//! `assets/app.js` only enhances: keyboard shortcuts, marking items in
//! place, relative dates that stay current.
//!
//! | path | does |
//! |---|---|
//! | `GET /[?view=unread\|starred]` | the feeds, with unread counts, health and a list of broken feeds |
//! | `POST /subscriptions` | add by site or feed URL; a page with several feeds answers with a choice |
//! | `POST /subscriptions/delete` | delete a feed |
//! | `POST /items/{id}` | mark read or unread, star or unstar |
//! | `GET /items/{id}/open` | mark read, then go to the item's link |
//! | `POST /mark-read` | mark one feed, or everything, read |
//! | `POST /refresh` | fetch one feed now |
//! | `GET /opml`, `POST /opml` | export (download), import (upload, ≤ 1 MiB) |

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, Utc};
use common::api::{FeedUrl, FeedView, Item, ItemChange, MarkRead};
use serde::Deserialize;

use crate::AppState;
use crate::client::Client;
use crate::error::{CheckedForm, Error, HasCsrf};
use crate::middletier::{Subscribed, WriteError};
use crate::security::{csrf_ok, csrf_token};
use crate::user::CurrentUser;

/// Items shown per feed on the page: what the page asks the middletier for.
const ITEMS_PER_FEED: usize = 8;
/// Items per feed read to find one to open.
const READ_LIMIT: usize = 200;
/// Summary length, in characters.
const SUMMARY_CHARS: usize = 240;
const FLASH_COOKIE: &str = "flash";

/// Which items the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum View {
    #[default]
    All,
    Unread,
    Starred,
}

impl View {
    /// The page's address for this view.
    fn path(self) -> &'static str {
        match self {
            View::All => "/",
            View::Unread => "/?view=unread",
            View::Starred => "/?view=starred",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            View::All => "all",
            View::Unread => "unread",
            View::Starred => "starred",
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
struct IndexPage {
    user: String,
    show_user: bool,
    csrf: String,
    flash: Option<Flash>,
    degraded: Option<String>,
    view: View,
    unread_total: usize,
    /// The newest item id on the page: "Mark everything read" marks
    /// nothing newer, so items that arrive after the page was made stay
    /// unread.
    newest: Option<String>,
    feeds: Vec<FeedCard>,
    broken: Vec<FeedCard>,
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
    site_url: Option<String>,
    error: Option<String>,
    unread: usize,
    /// "checked 5 min ago", or why not yet.
    checked: Option<String>,
    /// "failing for 2 h (4 times)", when it is.
    failing: Option<String>,
    broken: bool,
    /// The feed's newest item id the page was given ("Mark all read" stops
    /// there).
    newest: Option<String>,
    items: Vec<ItemLine>,
}

struct ItemLine {
    id: String,
    title: String,
    /// Where opening it goes: through `/items/{id}/open`, which marks it
    /// read; `None` when the item has no web link.
    open: Option<String>,
    date_iso: Option<String>,
    date_relative: Option<String>,
    date_exact: Option<String>,
    summary: String,
    read: bool,
    starred: bool,
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

#[derive(Template, WebTemplate)]
#[template(path = "choose.html")]
struct ChoosePage {
    csrf: String,
    page: String,
    message: String,
    feeds: Vec<common::api::DiscoveredFeed>,
}

/// `GET /`: the page.
pub(crate) async fn index(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Response {
    // An unknown view is the default one, as for any page parameter.
    let view = match crate::api::param(query.as_deref(), "view").as_deref() {
        Some("unread") => View::Unread,
        Some("starred") => View::Starred,
        _ => View::All,
    };
    let (jar, csrf) = csrf_token(jar, client.https);
    let (jar, flash) = take_flash(jar);
    let read = state
        .middletier
        .read(&user, view == View::Unread, ITEMS_PER_FEED)
        .await;
    let feeds = read.feeds(&user);
    let now = Utc::now();
    let unread_total = feeds.subscriptions.iter().map(|f| f.unread).sum();
    let broken = feeds
        .subscriptions
        .iter()
        .filter(|f| f.broken)
        .map(|f| card(f, view, now))
        .collect();
    let cards = feeds
        .subscriptions
        .iter()
        .map(|f| card(f, view, now))
        .filter(|c| view != View::Starred || !c.items.is_empty())
        .collect();
    let page = IndexPage {
        user: user.to_string(),
        show_user: state.auth_proxy_header.is_some(),
        csrf,
        flash,
        degraded: read.degraded.map(|reason| {
            let reference = common::telemetry::http::error_reference();
            tracing::warn!(%reference, %reason, "served the saved feeds");
            format!("{reason}; reference {reference}")
        }),
        view,
        unread_total,
        newest: feeds
            .subscriptions
            .iter()
            .filter_map(newest_id)
            .max()
            .map(|id| id.to_string()),
        feeds: cards,
        broken,
    };
    (jar, [(header::CACHE_CONTROL, "no-store")], page).into_response()
}

/// Every form carries its CSRF token and the view to return to.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionForm {
    url: String,
    csrf: String,
    #[serde(default)]
    view: View,
}

/// Each form's token is its `csrf` field.
macro_rules! has_csrf {
    ($($form:ty),*) => {$(
        impl HasCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}
has_csrf!(SubscriptionForm, ItemForm, MarkReadForm);

/// `POST /subscriptions`: add, then back to the page; or, when the page
/// given lists several feeds, a page to choose one.
pub(crate) async fn add(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SubscriptionForm>,
) -> Response {
    let flash = match FeedUrl::parse(form.url.trim()) {
        Err(invalid) => Flash::error(format!("Couldn't add that feed: {invalid}")),
        Ok(url) => match state
            .middletier
            .subscribe(&client.rate_key(&user), &user, &url)
            .await
        {
            Ok(Subscribed::Added(change)) => Flash::ok(match change.title {
                Some(title) => format!("Added {title} ({}).", change.url),
                None => format!("Added {}.", change.url),
            }),
            Ok(Subscribed::Choice(choice)) => {
                let (jar, csrf) = csrf_token(jar, client.https);
                let page = ChoosePage {
                    csrf,
                    page: url.to_string(),
                    message: sentence(choice.error.as_deref().unwrap_or("")),
                    feeds: choice.feeds,
                };
                return (jar, [(header::CACHE_CONTROL, "no-store")], page).into_response();
            }
            Err(WriteError::Refused { message, .. }) => {
                Flash::error(format!("Couldn't add {url}: {message}"))
            }
            Err(e) => Flash::error(format!(
                "Your feed was not added. {}",
                sentence(&e.to_string())
            )),
        },
    };
    back(jar, &flash, form.view)
}

/// `POST /subscriptions/delete`: delete, then back to the page.
pub(crate) async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SubscriptionForm>,
) -> Response {
    let flash = match FeedUrl::parse(&form.url) {
        Err(invalid) => Flash::error(format!("Couldn't delete that feed: {invalid}")),
        Ok(url) => match state
            .middletier
            .unsubscribe(&client.rate_key(&user), &user, &url)
            .await
        {
            Ok(_) => Flash::ok(format!("Deleted {url}.")),
            Err(e) => failed("The feed was not deleted", &url.to_string(), e),
        },
    };
    back(jar, &flash, form.view)
}

/// The form of an item's buttons: one of `read` or `starred`.
#[derive(Debug, Deserialize)]
pub(crate) struct ItemForm {
    csrf: String,
    read: Option<bool>,
    starred: Option<bool>,
    #[serde(default)]
    view: View,
}

/// `POST /items/{id}`: read/unread, star/unstar, then back.
pub(crate) async fn set_item(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<ItemForm>,
) -> Response {
    let change = ItemChange {
        read: form.read,
        starred: form.starred,
    };
    match state.middletier.set_item(&user, &id, change).await {
        // Done: no message, the page shows it.
        Ok(_) => (jar, Redirect::to(form.view.path())).into_response(),
        Err(e) => back(
            jar,
            &failed("That item was not changed", "the item", e),
            form.view,
        ),
    }
}

/// `GET /items/{id}/open`: marks the item read and goes to its link. The
/// link comes from the user's own feeds, never from the request, so this
/// cannot send anyone elsewhere.
pub(crate) async fn open_item(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let read = state.middletier.read(&user, false, READ_LIMIT).await;
    let link = read
        .feeds(&user)
        .subscriptions
        .iter()
        .flat_map(|f| f.items.iter())
        .find(|item| item.id == id)
        .and_then(web_link)
        .ok_or(Error::NotFound)?;
    let change = ItemChange {
        read: Some(true),
        starred: None,
    };
    if let Err(e) = state.middletier.set_item(&user, &id, change).await {
        // Reading matters more than the mark: go anyway.
        tracing::warn!(error = %e, "could not mark an opened item read");
    }
    Ok(Redirect::to(&link).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct MarkReadForm {
    csrf: String,
    /// One feed; absent or empty: every feed.
    url: Option<String>,
    /// The newest item id the page showed: nothing newer is marked.
    before: Option<String>,
    #[serde(default)]
    view: View,
}

/// `POST /mark-read`: one feed, or everything.
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<MarkReadForm>,
) -> Response {
    let url = form.url.filter(|u| !u.trim().is_empty());
    let what = url.clone().unwrap_or_else(|| "every feed".to_owned());
    let before = form.before.filter(|b| !b.trim().is_empty());
    let request = MarkRead { url, before };
    let flash = match state.middletier.mark_read(&user, request).await {
        Ok(marked) => Flash::ok(format!(
            "Marked {} item{} read.",
            marked.marked,
            if marked.marked == 1 { "" } else { "s" }
        )),
        Err(e) => failed("Nothing was marked read", &what, e),
    };
    back(jar, &flash, form.view)
}

/// `POST /refresh`: fetch one feed now.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SubscriptionForm>,
) -> Response {
    let flash = match FeedUrl::parse(&form.url) {
        Err(invalid) => Flash::error(format!("Couldn't refresh that feed: {invalid}")),
        Ok(url) => match state
            .middletier
            .refresh(&client.rate_key(&user), &user, &url)
            .await
        {
            Ok(feed) => match feed.error {
                None => Flash::ok(format!("Refreshed {}.", feed.title)),
                Some(error) => {
                    Flash::error(format!("{} could not be fetched: {error}", feed.title))
                }
            },
            Err(e) => failed("The feed was not refreshed", &url.to_string(), e),
        },
    };
    back(jar, &flash, form.view)
}

/// `POST /opml`: an uploaded OPML file (multipart, with the CSRF token).
pub(crate) async fn import_opml(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    jar: CookieJar,
    mut multipart: Multipart,
) -> Result<Response, Error> {
    let upload = || {
        Error::BadUpload(
            "the upload arrived incomplete; choose the OPML file again and import it".into(),
        )
    };
    let (mut csrf, mut file) = (None, None);
    while let Some(field) = multipart.next_field().await.map_err(|_| upload())? {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(|_| upload())?),
            Some("file") => file = Some(field.bytes().await.map_err(|_| upload())?),
            _ => {}
        }
    }
    if !csrf.is_some_and(|token| csrf_ok(&jar, &token, client.https)) {
        return Err(Error::BadToken);
    }
    let file = file.filter(|f| !f.is_empty()).ok_or_else(|| {
        Error::BadUpload("no file was chosen; choose an OPML file exported from your reader".into())
    })?;
    let flash = match state
        .middletier
        .import_opml(&client.rate_key(&user), &user, file)
        .await
    {
        Ok(report) => {
            let mut text = format!(
                "Imported: {} added, {} already there.",
                report.added, report.existing
            );
            if !report.refused.is_empty() {
                text.push_str(&format!(" {} refused:", report.refused.len()));
                for refused in report.refused.iter().take(5) {
                    text.push_str(&format!(" {} ({});", refused.url, refused.error));
                }
            }
            if report.added > 0 {
                text.push_str(
                    " New feeds show their items within a few seconds; reload to see them.",
                );
            }
            Flash::ok(text)
        }
        Err(e) => failed("Nothing was imported", "the file", e),
    };
    Ok(back(jar, &flash, View::All))
}

/// The message for a change that did not go through.
fn failed(what: &str, subject: &str, error: WriteError) -> Flash {
    match error {
        WriteError::Refused { message, .. } => {
            Flash::error(format!("{what}: {subject}: {}", sentence(&message)))
        }
        e => {
            // Not the user's mistake: a reference to quote, which finds
            // this request's trace and log lines.
            let reference = common::telemetry::http::error_reference();
            tracing::warn!(%reference, error = %e, "{what}");
            Flash::error(format!(
                "{what}. {} (Reference: {reference}.)",
                sentence(&e.to_string())
            ))
        }
    }
}

/// Back to the page the form was on, with a message.
fn back(jar: CookieJar, flash: &Flash, view: View) -> Response {
    (set_flash(jar, flash), Redirect::to(view.path())).into_response()
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

/// The highest item id of `feed`'s items as listed.
fn newest_id(feed: &FeedView) -> Option<u64> {
    feed.items.iter().filter_map(|i| i.id.parse().ok()).max()
}

fn card(feed: &FeedView, view: View, now: DateTime<Utc>) -> FeedCard {
    let parse = |at: &Option<String>| {
        at.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let failing = match (feed.error_count, parse(&feed.failing_since)) {
        (0, _) => None,
        (n, Some(since)) => Some(format!(
            "failing for {} ({n} time{} in a row)",
            span(now - since),
            if n == 1 { "" } else { "s" }
        )),
        (n, None) => Some(format!(
            "failed {n} time{} in a row",
            if n == 1 { "" } else { "s" }
        )),
    };
    FeedCard {
        url: feed.url.clone(),
        title: feed.title.clone(),
        site_url: feed
            .site_url
            .clone()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://")),
        error: feed.error.clone(),
        unread: feed.unread,
        checked: parse(&feed.last_fetched).map(|at| format!("checked {}", relative(now, at))),
        failing,
        broken: feed.broken,
        newest: newest_id(feed).map(|id| id.to_string()),
        items: feed
            .items
            .iter()
            .filter(|item| view != View::Starred || item.starred)
            .take(ITEMS_PER_FEED)
            .map(|item| item_line(item, now))
            .collect(),
    }
}

/// The item's link, if it is a web link. The middletier only sends
/// http(s) links; check again, since a `javascript:` link would run in
/// our origin.
fn web_link(item: &Item) -> Option<String> {
    item.link
        .clone()
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
}

fn item_line(item: &Item, now: DateTime<Utc>) -> ItemLine {
    let date = item
        .published
        .as_deref()
        .and_then(|p| DateTime::parse_from_rfc3339(p).ok())
        .map(|d| d.with_timezone(&Utc));
    ItemLine {
        id: item.id.clone(),
        title: item.title.clone(),
        open: web_link(item).map(|_| format!("/items/{}/open", item.id)),
        date_iso: date.map(|d| d.to_rfc3339()),
        date_relative: date.map(|d| relative(now, d)),
        date_exact: date.map(|d| d.format("%-d %b %Y, %H:%M UTC").to_string()),
        summary: summary(&item.description),
        read: item.read,
        starred: item.starred,
    }
}

/// "just now", "5 min ago", "2 h ago", "3 days ago"; a date for the future
/// or for over a year ago.
fn relative(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let ago = now - at;
    if ago < chrono::Duration::zero() || ago > chrono::Duration::days(365) {
        return at.format("%-d %b %Y").to_string();
    }
    if ago < chrono::Duration::minutes(1) {
        return "just now".to_owned();
    }
    format!("{} ago", span(ago))
}

/// A length of time, roughly: "5 min", "2 h", "3 days".
fn span(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match minutes {
        0..=59 => format!("{} min", minutes.max(1)),
        60..=2879 => format!("{} h", minutes / 60),
        _ => format!("{} days", minutes / 1440),
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
        item.id = "42".into();
        let now = Utc::now();
        let line = item_line(&item, now);
        assert_eq!(line.open, None);
        assert_eq!(line.date_exact.as_deref(), Some("2 Jan 2024, 09:30 UTC"));
        item.link = Some("https://example.com/a".into());
        assert_eq!(
            item_line(&item, now).open.as_deref(),
            Some("/items/42/open")
        );
    }

    #[test]
    fn dates_read_relative() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        assert_eq!(relative(now, at("2026-12-01T11:59:30Z")), "just now");
        assert_eq!(relative(now, at("2026-12-01T11:55:00Z")), "5 min ago");
        assert_eq!(relative(now, at("2026-12-01T10:00:00Z")), "2 h ago");
        assert_eq!(relative(now, at("2026-11-28T12:00:00Z")), "3 days ago");
        assert_eq!(relative(now, at("2027-01-01T00:00:00Z")), "1 Jan 2027");
        assert_eq!(relative(now, at("2020-01-01T00:00:00Z")), "1 Jan 2020");
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
