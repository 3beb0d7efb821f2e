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
//! | `GET /items/{id}` | the article page ([`reading`]): marks it read |
//! | `GET /river[?unread=true][&before=ID]` | every feed's items, newest first |
//! | `POST /items/{id}` | mark read or unread, star or unstar |
//! | `GET /items/{id}/open` | mark read, then go to the item's link |
//! | `POST /mark-read` | mark one feed, or everything, read |
//! | `POST /refresh` | fetch one feed now |
//! | `GET /opml`, `POST /opml` | export (download), import (upload, ≤ 1 MiB) |
//!
//! This module holds the handlers; what a page shows is made by the pure
//! functions of [`view`], and the one-time message by [`flash`].

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::Utc;
use common::api::{FeedUrl, ItemChange, ItemId, MarkRead};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::client::Client;
use crate::error::{CheckedForm, Error};
use crate::message::sentence;
use crate::middletier::{CallError, Subscribed};
use crate::security::{csrf_ok, csrf_token};
use crate::state::AppState;
use flash::{Flash, set_flash, take_flash};
use view::{FeedCard, View, card, newest_id};

pub(crate) mod flash;
mod reading;
mod view;

pub(crate) use reading::{article, open_item, river};

/// Items shown per feed on the page: what the page asks the middletier for.
const ITEMS_PER_FEED: usize = 8;

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
struct IndexPage {
    user: String,
    show_user: bool,
    /// A local account's session: the page links to settings and signs out.
    signed_in: bool,
    admin: bool,
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
    who: crate::auth::Identity,
    client: Client,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Response {
    let user = who.user.clone();
    // An unknown view is the default one, as for any page parameter.
    let view = match common::query::param(query.as_deref(), "view").as_deref() {
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
        show_user: state.auth.mode != crate::auth::Mode::None,
        signed_in: who.session.is_some(),
        admin: who.admin,
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

crate::error::has_csrf!(SubscriptionForm, ItemForm, MarkReadForm);

/// `POST /subscriptions`: add, then back to the page; or, when the page
/// given lists several feeds, a page to choose one.
pub(crate) async fn add(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SubscriptionForm>,
) -> Response {
    let key = client.rate_key(&user);
    feed_form(jar, form, "add", async |jar, url| {
        match state.middletier.subscribe(&key, &user, &url).await {
            Ok(Subscribed::Added(change)) => Done::Back(
                jar,
                Flash::ok(match change.title {
                    Some(title) => format!("Added {title} ({}).", change.url),
                    None => format!("Added {}.", change.url),
                }),
            ),
            Ok(Subscribed::Choice(choice)) => {
                let (jar, csrf) = csrf_token(jar, client.https);
                let page = ChoosePage {
                    csrf,
                    page: url.to_string(),
                    message: sentence(choice.error.as_deref().unwrap_or("")),
                    feeds: choice.feeds,
                };
                Done::Page((jar, [(header::CACHE_CONTROL, "no-store")], page).into_response())
            }
            Err(CallError::Refused { message, .. }) => {
                Done::Back(jar, Flash::error(format!("Couldn't add {url}: {message}")))
            }
            Err(e) => Done::Back(
                jar,
                Flash::error(format!(
                    "Your feed was not added. {}",
                    sentence(&e.to_string())
                )),
            ),
        }
    })
    .await
}

/// Where a feed form's action leads: back to the page with a message, or
/// to a page of its own.
enum Done {
    Back(CookieJar, Flash),
    Page(Response),
}

/// The one path of every form about one feed (add, delete, refresh): the
/// URL is checked, `action` runs with it, and the user is sent back to
/// the view they were on with what happened (Post/Redirect/Get).
async fn feed_form(
    jar: CookieJar,
    form: SubscriptionForm,
    verb: &str,
    action: impl AsyncFnOnce(CookieJar, FeedUrl) -> Done,
) -> Response {
    let done = match FeedUrl::parse(form.url.trim()) {
        Err(invalid) => Done::Back(
            jar,
            Flash::error(format!("Couldn't {verb} that feed: {invalid}")),
        ),
        Ok(url) => action(jar, url).await,
    };
    match done {
        Done::Back(jar, flash) => back(jar, &flash, form.view),
        Done::Page(page) => page,
    }
}

/// `POST /subscriptions/delete`: delete, then back to the page.
pub(crate) async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SubscriptionForm>,
) -> Response {
    let key = client.rate_key(&user);
    feed_form(jar, form, "delete", async |jar, url| {
        let flash = match state.middletier.unsubscribe(&key, &user, &url).await {
            Ok(_) => Flash::ok(format!("Deleted {url}.")),
            Err(e) => failed("The feed was not deleted", &url.to_string(), e),
        };
        Done::Back(jar, flash)
    })
    .await
}

/// The form of an item's buttons: one of `read` or `starred`.
#[derive(Debug, Deserialize)]
pub(crate) struct ItemForm {
    csrf: String,
    read: Option<bool>,
    starred: Option<bool>,
    #[serde(default)]
    view: View,
    /// `article`: back to the item's article page rather than the view.
    back: Option<String>,
}

/// `POST /items/{id}`: read/unread, star/unstar, then back.
pub(crate) async fn set_item(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(raw_id): Path<String>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<ItemForm>,
) -> Response {
    let change = ItemChange {
        read: form.read,
        starred: form.starred,
    };
    // A form goes back to its page, with a message, whatever went wrong.
    let (changed, page) = match ItemId::parse(&raw_id) {
        Ok(id) => {
            let page = match form.back.as_deref() {
                Some("article") => format!("/items/{id}"),
                _ => form.view.path().to_owned(),
            };
            (state.middletier.set_item(&user, id, change).await, page)
        }
        Err(_) => (Err(CallError::no_such_item()), form.view.path().to_owned()),
    };
    let jar = match changed {
        // Done: no message, the page shows it.
        Ok(_) => jar,
        Err(e) => set_flash(jar, &failed("That item was not changed", "the item", e)),
    };
    (jar, Redirect::to(&page)).into_response()
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
    let key = client.rate_key(&user);
    feed_form(jar, form, "refresh", async |jar, url| {
        let flash = match state.middletier.refresh(&key, &user, &url).await {
            Ok(feed) => match feed.error {
                None => Flash::ok(format!("Refreshed {}.", feed.title)),
                Some(error) => {
                    Flash::error(format!("{} could not be fetched: {error}", feed.title))
                }
            },
            Err(e) => failed("The feed was not refreshed", &url.to_string(), e),
        };
        Done::Back(jar, flash)
    })
    .await
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
fn failed(what: &str, subject: &str, error: CallError) -> Flash {
    match error {
        CallError::Refused { message, .. } => {
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
