//! Reading in the reader: one article whole, and the river of every
//! feed's items, newest first.
//!
//! Opening an article marks it read and costs one middletier call
//! (`RSSArticle`), never a whole listing. Its images go through the media
//! proxy ([`crate::media`]); its enclosures get players that load nothing
//! until asked (`preload="none"`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::Utc;
use common::api::{Article, Enclosure, ItemChange, ItemId};
use common::query::RiverQuery;

use crate::auth::{CurrentUser, Identity};
use crate::client::Client;
use crate::error::Error;
use crate::middletier::CallError;
use crate::security::csrf_token;
use crate::state::AppState;

use super::flash::{Flash, take_flash};
use super::view::{ItemLine, View, item_line, relative};

/// Items per river page.
const RIVER_PAGE: usize = 50;

/// An enclosure as the article page shows it.
pub(super) struct EnclosureView {
    pub(super) url: String,
    /// `audio`, `video`, `image` (a player or an image), or none (a link).
    pub(super) kind: Option<&'static str>,
    pub(super) media_type: String,
    /// "Download (12 MB)": what the link says.
    pub(super) label: String,
}

fn enclosure_view(enclosure: &Enclosure, key: &crate::auth::SessionKey) -> EnclosureView {
    let kind = enclosure.kind();
    let size = enclosure
        .length
        .map(|n| format!(" ({:.1} MB)", n as f64 / 1_000_000.0))
        .unwrap_or_default();
    EnclosureView {
        // Images go through the proxy like the article's own; audio and
        // video stream from the publisher when (and only when) played.
        url: if kind == Some("image") {
            crate::media::proxied(key, &enclosure.url)
        } else {
            enclosure.url.clone()
        },
        kind,
        media_type: enclosure.media_type.clone().unwrap_or_default(),
        label: format!("Download the attached file{size}"),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "article.html")]
struct ArticlePage {
    signed_in: bool,
    admin: bool,
    csrf: String,
    flash: Option<Flash>,
    id: String,
    title: String,
    feed_title: String,
    feed_site: Option<String>,
    author: Option<String>,
    date_iso: Option<String>,
    date_relative: Option<String>,
    date_exact: Option<String>,
    /// Sanitized, with every image through the media proxy.
    content: String,
    enclosures: Vec<EnclosureView>,
    categories: Vec<String>,
    link: Option<String>,
    read: bool,
    starred: bool,
}

/// `GET /items/{id}`: the article, marked read as it is opened.
pub(crate) async fn article(
    State(state): State<AppState>,
    who: Identity,
    client: Client,
    Path(raw_id): Path<String>,
    jar: CookieJar,
) -> Result<Response, Error> {
    let id = ItemId::parse(&raw_id).map_err(|_| Error::NotFound)?;
    let mut article = state.middletier.article(&who.user, id).await?;
    if !article.item.read {
        article.item.read = mark_read(&state, &who.user, id).await;
    }
    let (jar, csrf) = csrf_token(jar, client.https);
    let (jar, flash) = take_flash(jar);
    let page = article_page(
        article,
        &state.auth.key,
        who.session.is_some(),
        who.admin,
        csrf,
        flash,
    );
    Ok((jar, [(header::CACHE_CONTROL, "no-store")], page).into_response())
}

/// Marks an opened item read; whether it is. Reading matters more than the
/// mark: a failure is logged, and the page shows the item unread.
async fn mark_read(state: &AppState, user: &common::api::UserId, id: ItemId) -> bool {
    let change = ItemChange {
        read: Some(true),
        starred: None,
    };
    match state.middletier.set_item(user, id, change).await {
        Ok(done) => done.read,
        Err(e) => {
            tracing::warn!(error = %e, "could not mark an opened item read");
            false
        }
    }
}

fn article_page(
    article: Article,
    key: &crate::auth::SessionKey,
    signed_in: bool,
    admin: bool,
    csrf: String,
    flash: Option<Flash>,
) -> ArticlePage {
    let now = Utc::now();
    let Article {
        item,
        feed,
        author,
        content,
        enclosures,
        categories,
    } = article;
    let date = item.published;
    ArticlePage {
        signed_in,
        admin,
        csrf,
        flash,
        id: item.id.to_string(),
        title: item.title,
        feed_title: feed.title,
        feed_site: feed.site_url.filter(|l| is_web(l)),
        author,
        date_iso: date.map(|d| d.to_rfc3339()),
        date_relative: date.map(|d| relative(now, d)),
        date_exact: date.map(|d| d.format("%-d %b %Y, %H:%M UTC").to_string()),
        content: crate::media::rewrite(&content, key),
        enclosures: enclosures
            .iter()
            .filter(|e| is_web(&e.url))
            .map(|e| enclosure_view(e, key))
            .collect(),
        categories,
        link: item.link.filter(|l| is_web(l)),
        read: item.read,
        starred: item.starred,
    }
}

/// Only web links reach a page: a `javascript:` link would run here.
fn is_web(link: &str) -> bool {
    link.starts_with("https://") || link.starts_with("http://")
}

/// `GET /items/{id}/open`: marks the item read and goes to the original.
/// The link comes from the user's own item, never from the request, so
/// this cannot send anyone elsewhere.
pub(crate) async fn open_item(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(raw_id): Path<String>,
) -> Result<Response, Error> {
    let id = ItemId::parse(&raw_id).map_err(|_| Error::NotFound)?;
    let article = state.middletier.article(&user, id).await?;
    let link = article
        .item
        .link
        .filter(|l| is_web(l))
        .ok_or(Error::NotFound)?;
    if !article.item.read {
        mark_read(&state, &user, id).await;
    }
    Ok(Redirect::to(&link).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "river.html")]
struct RiverPage {
    signed_in: bool,
    admin: bool,
    csrf: String,
    flash: Option<Flash>,
    view: View,
    items: Vec<ItemLine>,
    /// "Older items": the next page's address.
    older: Option<String>,
    /// The newest id shown: "Mark everything read" marks nothing newer.
    newest: Option<String>,
    /// Whether this is the first page.
    first: bool,
    failed: Option<String>,
}

/// `GET /river[?unread=true][&before=ID]`: every feed's items in one list.
pub(crate) async fn river(
    State(state): State<AppState>,
    who: Identity,
    client: Client,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Result<Response, Error> {
    let page = RiverQuery::parse(query.as_deref(), RIVER_PAGE, RIVER_PAGE)
        .map_err(|e| Error::BadParameter(e.to_string()))?;
    let view = if page.unread_only {
        View::RiverUnread
    } else {
        View::River
    };
    let (jar, csrf) = csrf_token(jar, client.https);
    let (jar, flash) = take_flash(jar);
    let now = Utc::now();
    let (items, next, failed) = match state
        .middletier
        .river(&who.user, page.unread_only, page.before, page.limit)
        .await
    {
        Ok(river) => (river.items, river.next, None),
        Err(e @ CallError::Refused { .. }) => return Err(e.into()),
        Err(e) => (
            Vec::new(),
            None,
            Some(crate::message::sentence(&e.to_string())),
        ),
    };
    let newest = items
        .iter()
        .map(|i| i.item.id)
        .max()
        .map(|id| id.to_string());
    let older = next.map(|next| {
        let unread = if page.unread_only { "unread=true&" } else { "" };
        format!("/river?{unread}before={next}")
    });
    let page = RiverPage {
        signed_in: who.session.is_some(),
        admin: who.admin,
        csrf,
        flash,
        view,
        items: items
            .iter()
            .map(|i| ItemLine {
                feed: Some(i.feed.title.clone()),
                ..item_line(&i.item, now)
            })
            .collect(),
        older,
        newest,
        first: page.before.is_none(),
        failed,
    };
    Ok((jar, [(header::CACHE_CONTROL, "no-store")], page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosures_get_players_and_images_the_proxy() {
        let key = crate::auth::SessionKey::random().unwrap();
        let audio = Enclosure {
            url: "https://pod.example/1.mp3".into(),
            media_type: Some("audio/mpeg".into()),
            length: Some(12_300_000),
        };
        let view = enclosure_view(&audio, &key);
        assert_eq!(view.kind, Some("audio"));
        assert_eq!(view.url, audio.url, "played from the publisher, when asked");
        assert!(view.label.contains("12.3 MB"), "{}", view.label);
        let image = Enclosure {
            url: "https://img.example/1.jpg".into(),
            media_type: Some("image/jpeg".into()),
            length: None,
        };
        assert!(enclosure_view(&image, &key).url.starts_with("/media/"));
    }
}
