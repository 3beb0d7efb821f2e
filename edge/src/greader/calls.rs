//! One handler per Google Reader call: parameters read (from the query and
//! the form body alike, as clients differ), one or two middletier calls,
//! the answer rendered ([`super::render`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use common::api::{FeedUrl, ItemId, MarkRead, UserId};
use common::sync::{Edit, ItemsQuery, MAX_IDS, MAX_ITEMS};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::ids::{self, Page, READING_LIST, Stream, Tag};
use super::{GReaderError, SyncUser, render};
use crate::auth::{Access, Mode};
use crate::client::Client;
use crate::middletier::Subscribed;
use crate::state::AppState;

/// A call's parameters: the query's and the form body's, in that order,
/// repeated names kept (`i=...&i=...`).
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    fn read(query: Option<&str>, body: &[u8]) -> Self {
        let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .chain(url::form_urlencoded::parse(body));
        Params(
            pairs
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn json(&self) -> bool {
        self.first("output") == Some("json")
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = GReaderError;

    async fn from_request(request: Request, state: &S) -> Result<Self, GReaderError> {
        let query = request.uri().query().map(str::to_owned);
        let body = Bytes::from_request(request, state).await?;
        Ok(Params::read(query.as_deref(), &body))
    }
}

/// `POST /accounts/ClientLogin`: `Email` and an app password as `Passwd`
/// (the whole `{user}~{secret}` the Settings page shows, or the secret
/// alone). The answer's token is that app password: clients send it on
/// every call, and it keeps working until it is revoked.
pub(crate) async fn client_login(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, GReaderError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, super::MAX_BODY_BYTES)
        .await
        .map_err(|e| GReaderError::BadRequest(e.to_string()))?;
    let params = Params::read(parts.uri.query(), &body);
    let token = match state.auth.mode {
        Mode::Local => {
            let user = params
                .first("Email")
                .and_then(|email| UserId::parse(email.trim()).ok())
                .ok_or(GReaderError::BadAuthentication)?;
            let password = params.first("Passwd").unwrap_or_default().trim();
            let token = if password.contains('~') {
                password.to_owned()
            } else {
                format!("{user}~{password}")
            };
            match state
                .auth
                .app_password_identity(&state.middletier, &token)
                .await?
            {
                Some(who) if who.user == user => token,
                _ => {
                    tracing::info!(user = %user, "greader: sign-in refused (it takes an app password, not the web password)");
                    return Err(GReaderError::BadAuthentication);
                }
            }
        }
        // Nobody signs in: the token only names the user.
        Mode::None => format!("{}~{}", crate::auth::default_user(), "0".repeat(64)),
        Mode::Proxy => match crate::auth::from_proxy(&parts, &state, Access::Api)? {
            Some(who) => format!("{}~{}", who.user, "0".repeat(64)),
            None => return Err(GReaderError::BadAuthentication),
        },
    };
    Ok(if params.json() {
        Json(json!({"SID": token, "LSID": "null", "Auth": token})).into_response()
    } else {
        text(format!("SID={token}\nLSID=null\nAuth={token}\n"))
    })
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn ok() -> Response {
    text("OK".to_owned())
}

/// `GET /reader/api/0/token`: an edit token. Issued because clients ask
/// for one; not required back (see the module docs of [`super`]).
pub(crate) async fn token(SyncUser(user): SyncUser) -> Response {
    let digest = Sha256::digest(format!("greader-edit-token:{user}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    text(format!("{}\n", &hex[..57]))
}

pub(crate) async fn user_info(SyncUser(user): SyncUser) -> Response {
    let email = if user.as_str().contains('@') {
        user.as_str()
    } else {
        ""
    };
    Json(json!({
        "userId": user.as_str(),
        "userName": user.as_str(),
        "userProfileId": user.as_str(),
        "userEmail": email,
    }))
    .into_response()
}

pub(crate) async fn subscriptions(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
) -> Result<Response, GReaderError> {
    let feeds = state.middletier.sync_feeds(&user).await?;
    Ok(Json(render::subscriptions(feeds.feeds)).into_response())
}

pub(crate) async fn tags(SyncUser(_): SyncUser) -> Response {
    Json(render::tags()).into_response()
}

pub(crate) async fn unread_count(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
) -> Result<Response, GReaderError> {
    let feeds = state.middletier.sync_feeds(&user).await?;
    Ok(Json(render::unread_counts(&feeds.feeds)).into_response())
}

/// `quickadd=<url>`: subscribes, to the first feed a page lists when it
/// lists several. A refusal is an answer (`numResults: 0` and why); only
/// an unavailable middletier is an error.
pub(crate) async fn quickadd(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
    client: Client,
    params: Params,
) -> Result<Response, GReaderError> {
    let raw = params
        .first("quickadd")
        .ok_or_else(|| GReaderError::BadRequest("quickadd=<feed or site URL> is missing".into()))?;
    let raw = raw.trim().strip_prefix("feed/").unwrap_or(raw.trim());
    let refused = |error: String| Json(json!({"numResults": 0, "query": raw, "error": error}));
    let url = match FeedUrl::parse(raw) {
        Ok(url) => url,
        Err(e) => return Ok(refused(e.to_string()).into_response()),
    };
    match subscribe(&state, &client, &user, &url).await {
        Ok((url, title)) => Ok(Json(json!({
            "numResults": 1,
            "query": raw,
            "streamId": ids::feed_stream(&url),
            "streamName": title.unwrap_or(url),
        }))
        .into_response()),
        Err(GReaderError::Call(crate::middletier::CallError::Refused { message, .. })) => {
            Ok(refused(message).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Subscribes to `url`, or to the first feed of a page that lists several;
/// the feed's URL and title.
async fn subscribe(
    state: &AppState,
    client: &Client,
    user: &UserId,
    url: &FeedUrl,
) -> Result<(String, Option<String>), GReaderError> {
    let key = client.rate_key(user);
    let mut url = url.clone();
    for _ in 0..2 {
        match state.middletier.sync_subscribe(&key, user, &url).await? {
            Subscribed::Added(change) => return Ok((change.url, change.title)),
            Subscribed::Choice(choice) => match choice.feeds.first() {
                Some(first) => url = FeedUrl::parse(&first.url)?,
                None => break,
            },
        }
    }
    Err(GReaderError::BadRequest(format!(
        "{url} lists feeds that list other feeds; give a feed's own address"
    )))
}

/// `ac=subscribe|unsubscribe|edit`, `s` (repeatable), `t`, `a`, `r`.
/// Folders and renaming are refused with a message (not pretended): every
/// feed is in the one label, under its own title.
pub(crate) async fn edit_subscription(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
    client: Client,
    params: Params,
) -> Result<Response, GReaderError> {
    let action = params.first("ac").unwrap_or_default();
    let labels_ok = params
        .all("a")
        .iter()
        .all(|label| matches!(ids::stream(label), Ok(Stream::ReadingList)));
    if !labels_ok || (action == "edit" && !params.all("r").is_empty()) {
        return Err(GReaderError::BadRequest(
            "folders are not supported yet: every feed is in Feeds".into(),
        ));
    }
    if action == "edit" && params.first("t").is_some() {
        return Err(GReaderError::BadRequest(
            "renaming feeds is not supported yet: a feed keeps its own title".into(),
        ));
    }
    let streams = params.all("s");
    if streams.is_empty() {
        return Err(GReaderError::BadRequest("s=feed/<id> is missing".into()));
    }
    match action {
        "subscribe" => {
            for stream in streams {
                let url = FeedUrl::parse(stream.strip_prefix("feed/").unwrap_or(stream))?;
                subscribe(&state, &client, &user, &url).await?;
            }
        }
        "unsubscribe" => {
            let key = client.rate_key(&user);
            for stream in streams {
                let url = feed_url(&state, &user, stream).await?;
                state.middletier.sync_unsubscribe(&key, &user, &url).await?;
            }
        }
        // Only the one label, which every feed already has.
        "edit" => {}
        other => {
            return Err(GReaderError::BadRequest(format!(
                "ac={other:?}: use subscribe, unsubscribe or edit"
            )));
        }
    }
    Ok(ok())
}

/// The subscription a `feed/<n>` or `feed/<url>` stream names.
async fn feed_url(state: &AppState, user: &UserId, stream: &str) -> Result<FeedUrl, GReaderError> {
    let Ok(Stream::Feed(feed)) = ids::stream(stream) else {
        return Err(GReaderError::BadRequest(format!(
            "{stream:?} is not a feed: use feed/<id>"
        )));
    };
    if let Ok(number) = feed.parse::<u64>() {
        let feeds = state.middletier.sync_feeds(user).await?.feeds;
        let found = feeds
            .iter()
            .find(|f| common::sync::feed_number(&f.url) == number)
            .ok_or_else(|| GReaderError::NotFound(format!("you have no feed {stream}")))?;
        return Ok(FeedUrl::parse(&found.url)?);
    }
    Ok(FeedUrl::parse(&feed)?)
}

/// A page's parameters; `stream` from the path, else `s`.
fn page<'a>(params: &'a Params, stream: Option<&'a str>) -> Result<Page<'a>, GReaderError> {
    let stream = stream
        .or(params.first("s"))
        .filter(|s| !s.trim().is_empty())
        .map(ids::stream)
        .transpose()
        .map_err(GReaderError::BadRequest)?;
    Ok(Page {
        stream,
        exclude: params.all("xt"),
        include: params.all("it"),
        oldest: params.first("ot"),
        newest: params.first("nt"),
        continuation: params.first("c"),
        oldest_first: params.first("r") == Some("o"),
        count: params.first("n"),
    })
}

pub(crate) async fn item_ids(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
    params: Params,
) -> Result<Response, GReaderError> {
    let query = page(&params, None)?
        .query(MAX_IDS)
        .map_err(GReaderError::BadRequest)?;
    let ids = match query {
        Some(query) => state.middletier.sync_ids(&user, query).await?,
        None => common::sync::Ids::default(),
    };
    Ok(Json(render::item_refs(&ids.refs, ids.more)).into_response())
}

/// `i` (repeatable, any id form) → the items whole. More than a middletier
/// call takes is asked for in turns.
pub(crate) async fn item_contents(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
    params: Params,
) -> Result<Response, GReaderError> {
    let ids = item_ids_of(&params)?;
    let mut items = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_ITEMS) {
        let query = ItemsQuery {
            ids: chunk.to_vec(),
        };
        items.extend(state.middletier.sync_items(&user, query).await?.items);
    }
    Ok(Json(render::stream(READING_LIST, &items, None)).into_response())
}

fn item_ids_of(params: &Params) -> Result<Vec<ItemId>, GReaderError> {
    let raw = params.all("i");
    if raw.len() > MAX_IDS {
        return Err(GReaderError::BadRequest(format!(
            "{} ids in one call; send at most {MAX_IDS}",
            raw.len()
        )));
    }
    raw.iter()
        .map(|raw| {
            ids::item_id(raw).ok_or_else(|| {
                let shown: String = raw.chars().take(60).collect();
                GReaderError::BadRequest(format!(
                    "i={shown:?} is not an item id (decimal, or tag:google.com,2005:reader/item/<hex>)"
                ))
            })
        })
        .collect()
}

pub(crate) async fn stream_contents(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
    stream: Option<Path<String>>,
    params: Params,
) -> Result<Response, GReaderError> {
    let stream = stream.map(|Path(stream)| stream);
    let page = page(&params, stream.as_deref())?;
    let id = stream
        .as_deref()
        .or(params.first("s"))
        .unwrap_or(READING_LIST)
        .to_owned();
    let found = match page.query(MAX_ITEMS).map_err(GReaderError::BadRequest)? {
        Some(query) => state.middletier.sync_contents(&user, query).await?,
        None => common::sync::Items::default(),
    };
    let last = found.items.last().map(|a| a.item.id);
    let continuation = render::continuation(last, found.more);
    Ok(Json(render::stream(&id, &found.items, continuation)).into_response())
}

/// `i` (repeatable), `a` and/or `r`: read, starred (and kept-unread, which
/// is unread) on many items in one middletier call.
pub(crate) async fn edit_tag(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
    params: Params,
) -> Result<Response, GReaderError> {
    let ids = item_ids_of(&params)?;
    let mut edit = Edit {
        ids,
        ..Edit::default()
    };
    let mut conflict = false;
    for (tags, add) in [(params.all("a"), true), (params.all("r"), false)] {
        for tag in tags {
            let (slot, value) = match ids::state_tag(tag) {
                Some(Tag::Read) => (&mut edit.read, add),
                Some(Tag::KeptUnread) if add => (&mut edit.read, false),
                Some(Tag::Starred) => (&mut edit.starred, add),
                // Kept-unread is unread: removing it changes nothing.
                Some(Tag::KeptUnread) => continue,
                Some(Tag::Label) => {
                    return Err(GReaderError::BadRequest(format!(
                        "{tag:?}: labels on items are not supported yet; only read and starred are kept"
                    )));
                }
                None => {
                    return Err(GReaderError::BadRequest(format!(
                        "unknown tag {tag:?}: use user/-/state/com.google/read or .../starred"
                    )));
                }
            };
            conflict |= slot.is_some_and(|v| v != value);
            *slot = Some(value);
        }
    }
    if conflict {
        return Err(GReaderError::BadRequest(
            "the same state is both added and removed".into(),
        ));
    }
    if edit.ids.is_empty() {
        return Err(GReaderError::BadRequest("i=<item id> is missing".into()));
    }
    if edit.read.is_none() && edit.starred.is_none() {
        return Err(GReaderError::BadRequest(
            "nothing to change: add or remove user/-/state/com.google/read or .../starred".into(),
        ));
    }
    state.middletier.sync_edit(&user, edit).await?;
    Ok(ok())
}

/// `s` and `ts` (items crawled before it, in µs or s): one feed, or every
/// feed for the reading list and the label.
pub(crate) async fn mark_all_read(
    State(state): State<AppState>,
    SyncUser(user): SyncUser,
    params: Params,
) -> Result<Response, GReaderError> {
    let stream = params
        .first("s")
        .ok_or_else(|| GReaderError::BadRequest("s=<stream id> is missing".into()))?;
    let url = match ids::stream(stream).map_err(GReaderError::BadRequest)? {
        Stream::ReadingList => None,
        Stream::Feed(_) => Some(feed_url(&state, &user, stream).await?.to_string()),
        // Nothing is in a label we do not have.
        Stream::OtherLabel | Stream::Read => return Ok(ok()),
        Stream::Starred | Stream::KeptUnread => {
            return Err(GReaderError::BadRequest(
                "mark a feed or the reading list read; marking starred items read is not supported"
                    .into(),
            ));
        }
    };
    let before = params
        .first("ts")
        .filter(|ts| !ts.trim().is_empty())
        .map(|ts| {
            ids::time_ms(ts)
                .and_then(|ms| chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?))
                .map(|at| common::api::rfc3339::format(&at))
                .ok_or_else(|| GReaderError::BadRequest(format!("ts={ts:?} is not a time")))
        })
        .transpose()?;
    state
        .middletier
        .sync_mark_read(&user, MarkRead { url, before })
        .await?;
    Ok(ok())
}

/// A call we do not serve: 404, logged with the client, so a missing call
/// an app needs shows in the logs.
pub(crate) async fn unknown(uri: Uri, headers: HeaderMap) -> GReaderError {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::warn!(
        path = uri.path(),
        user_agent = agent,
        "greader: unknown call"
    );
    GReaderError::NotFound(format!(
        "{} is not a Google Reader call this server serves",
        uri.path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_come_from_the_query_and_the_body_repeated() {
        let params = Params::read(Some("output=json&i=1"), b"i=2&i=3&T=x&s=feed%2F12");
        assert_eq!(params.all("i"), ["1", "2", "3"]);
        assert_eq!(params.first("s"), Some("feed/12"));
        assert!(params.json());
        assert!(Params::read(None, b"").all("i").is_empty());
    }
}
