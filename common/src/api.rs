//! Wire types shared by the edge and the middletier.
//!
//! The JSON shapes are a contract (docs/ARCHITECTURE.md): the 2013 recipe's
//! `{"user": ..., "subscriptions": [...]}` with each feed keeping its entry and
//! an `error` when it could not be fetched. Input is parsed into newtypes here,
//! once, so handlers and stores only ever hold valid values.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

/// Longest user id we accept; long enough for an email address.
pub const MAX_USER_ID_LEN: usize = 64;
/// Longest feed URL we accept, in bytes (the usual practical URL limit).
pub const MAX_FEED_URL_LEN: usize = 2048;

/// Input that does not meet the contract. The message says what is wrong and
/// what to do about it, because it is shown to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error(
        "user id {0:?} is not valid: use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '@' and '-'"
    )]
    /// A user id outside the allowed length or characters.
    UserId(String),
    #[error(
        "the feed URL is empty: give the address of an RSS or Atom feed, e.g. https://example.com/feed.xml"
    )]
    /// An empty feed URL.
    EmptyUrl,
    /// A feed URL longer than [`MAX_FEED_URL_LEN`] bytes.
    #[error("the feed URL is {0} characters long; the limit is 2048")]
    UrlTooLong(usize),
    #[error(
        "{url:?} is not a valid absolute URL ({reason}): give the full address, e.g. https://example.com/feed.xml"
    )]
    /// Not an absolute URL at all.
    UrlSyntax {
        /// The text given.
        url: String,
        /// What the URL parser said.
        reason: String,
    },
    /// A URL whose scheme is not `http` or `https`.
    #[error("{url:?} uses the {scheme:?} scheme; feed URLs must start with http:// or https://")]
    UrlScheme {
        /// The text given.
        url: String,
        /// The scheme it has.
        scheme: String,
    },
    #[error(
        "{0:?} contains a user name or password; subscribe to the feed's public address instead"
    )]
    /// A URL with a user name or password in it.
    UrlCredentials(String),
    /// An item id that is not a decimal number.
    #[error("{0:?} is not an item id (ids are decimal numbers); reload to get current item ids")]
    ItemId(String),
}

/// Dates on the wire and in stored records: RFC 3339 in UTC, to the
/// second, with `Z` (`2024-01-02T09:30:00Z`); read from any RFC 3339
/// offset. Parsed here, once: everywhere else a date is a `DateTime`.
pub mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};

    /// The one written form.
    pub fn format(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Any RFC 3339 date, in UTC.
    pub fn parse(raw: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(raw.trim())
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// `#[serde(with = "rfc3339::option")]` for an optional date.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer, de::Error};

        /// Writes the date in [`super::format`]'s form, or `null`.
        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => serializer.serialize_str(&super::format(at)),
                None => serializer.serialize_none(),
            }
        }

        /// Reads an RFC 3339 date, or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(deserializer)? {
                None => Ok(None),
                Some(raw) => super::parse(&raw)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(format!("{raw:?} is not an RFC 3339 date"))),
            }
        }
    }
}

/// An item's id: unique in the store, stable across refreshes, growing
/// with the time the item was first stored. On the wire it is a decimal
/// string (the number is below 2^53, but as a string no client can round
/// it); it is parsed once, here, and is a number everywhere else.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ItemId(u64);

/// Item ids count time from 2024-01-01T00:00:00Z (ms since the Unix epoch).
pub const ID_EPOCH_MS: u64 = 1_704_067_200_000;
/// The bits of an item id below its time (worker and sequence).
pub const ID_TIME_SHIFT: u32 = 12;

impl ItemId {
    /// The id `n`.
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// When the item was first stored, in ms since the Unix epoch: ids are
    /// made from that time (the middletier's `store::ids`), so it is what
    /// sync clients call the crawl time.
    pub const fn stored_at_ms(self) -> u64 {
        (self.0 >> ID_TIME_SHIFT) + ID_EPOCH_MS
    }

    /// The smallest id of an item first stored at `ms` (since the Unix
    /// epoch) or later: a time bound as an id bound.
    pub const fn first_stored_at_ms(ms: u64) -> Self {
        Self(ms.saturating_sub(ID_EPOCH_MS) << ID_TIME_SHIFT)
    }

    /// Parses the decimal form; anything else names no item.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = || InvalidInput::ItemId(raw.chars().take(40).collect());
        if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        raw.parse().map(Self).map_err(|_| invalid())
    }
}

impl std::fmt::Display for ItemId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ItemId {
    type Err = InvalidInput;

    fn from_str(raw: &str) -> Result<Self, InvalidInput> {
        Self::parse(raw)
    }
}

impl TryFrom<String> for ItemId {
    type Error = InvalidInput;

    fn try_from(raw: String) -> Result<Self, InvalidInput> {
        Self::parse(&raw)
    }
}

impl From<ItemId> for String {
    fn from(id: ItemId) -> String {
        id.to_string()
    }
}

/// A validated user id: 1–64 chars of `A–Z a–z 0–9 . _ @ -`, but not `.` or
/// `..`, compared without case (kept in lower case).
///
/// The character set keeps ids safe in URLs, file names and CQL without
/// escaping. `.` and `..` are refused because a URL parser drops them as
/// dot segments: `/middletier/rss/user/./opml` *is*
/// `/middletier/rss/user/opml`, another user's data. Case is folded
/// because people and identity providers do not agree on it: `Alice` and
/// `alice` are one person (stores fold ids saved before this rule, once,
/// when they open).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Checks `raw` against the rules above.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let ok_len = (1..=MAX_USER_ID_LEN).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
        let dot_segment = raw == "." || raw == "..";
        if ok_len && ok_chars && !dot_segment {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            // Quote at most the first 80 chars so an attacker cannot make us echo megabytes.
            Err(InvalidInput::UserId(raw.chars().take(80).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> Self {
        value.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated feed URL: absolute `http`/`https`, at most 2048 bytes, no
/// credentials, fragment removed.
///
/// The URL is kept in the `url` crate's normalized form (lower-case host,
/// default port dropped), so `HTTP://Example.com:80/feed#top` and
/// `http://example.com/feed` are the same subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FeedUrl(Url);

impl FeedUrl {
    /// Checks `raw`: absolute, `http`/`https`, no credentials, at most
    /// [`MAX_FEED_URL_LEN`] bytes.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(InvalidInput::EmptyUrl);
        }
        if raw.len() > MAX_FEED_URL_LEN {
            return Err(InvalidInput::UrlTooLong(raw.len()));
        }
        let mut url = Url::parse(raw).map_err(|e| InvalidInput::UrlSyntax {
            url: raw.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidInput::UrlScheme {
                url: raw.to_owned(),
                scheme: url.scheme().to_owned(),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidInput::UrlSyntax {
                url: raw.to_owned(),
                reason: "it has no host".to_owned(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidInput::UrlCredentials(raw.to_owned()));
        }
        url.set_fragment(None);
        // Normalizing can lengthen a URL (percent-encoding), so check again.
        if url.as_str().len() > MAX_FEED_URL_LEN {
            return Err(InvalidInput::UrlTooLong(url.as_str().len()));
        }
        Ok(Self(url))
    }

    /// The URL as text, exactly as it is stored and compared.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The host, for showing a feed that has no title yet.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

impl TryFrom<String> for FeedUrl {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FeedUrl> for String {
    fn from(value: FeedUrl) -> Self {
        value.0.into()
    }
}

impl fmt::Display for FeedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /middletier/rss/user/{user}`: every subscription of a user, in the
/// order they were added, each with its latest items or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserFeeds {
    /// Whose feeds these are.
    pub user: String,
    /// One entry per subscription, oldest first.
    #[serde(default)]
    pub subscriptions: Vec<FeedView>,
}

/// One subscription as a reader sees it.
///
/// A feed that could not be fetched or parsed is never dropped: it keeps its
/// entry with `error` set to a reason a person understands, and with the
/// items stored from earlier fetches. The fields after `error` came with
/// the reader's v2 API; v1 clients ignore them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedView {
    /// The feed's URL, as subscribed.
    pub url: String,
    /// The feed's own title, or its host until the feed has been read.
    pub title: String,
    /// The newest items, newest first.
    #[serde(default)]
    pub items: Vec<Item>,
    /// Why the last fetch or parse failed, in words a person reads; `null`
    /// when it worked.
    #[serde(default)]
    pub error: Option<String>,
    /// How many of the feed's stored items the user has not read.
    #[serde(default)]
    pub unread: usize,
    /// When the feed was last fetched, whatever the outcome.
    #[serde(default, with = "rfc3339::option")]
    pub last_fetched: Option<DateTime<Utc>>,
    /// When it is fetched next.
    #[serde(default, with = "rfc3339::option")]
    pub next_fetch: Option<DateTime<Utc>>,
    /// Failed fetches in a row.
    #[serde(default)]
    pub error_count: u32,
    /// Since when it has been failing, if it is.
    #[serde(default, with = "rfc3339::option")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Whether it has failed so often that it is shown as broken.
    #[serde(default)]
    pub broken: bool,
    /// The site the feed belongs to.
    #[serde(default)]
    pub site_url: Option<String>,
}

/// One feed item, normalized from RSS, Atom or JSON Feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// See [`ItemId`]; 0 for an item not stored yet.
    #[serde(default)]
    pub id: ItemId,
    /// The feed's own identifier for the item, if it gave one.
    #[serde(default)]
    pub guid: Option<String>,
    /// Plain text (never HTML); clients must escape it.
    pub title: String,
    /// Absolute `http(s)` link to the article, if the feed gave a usable one.
    #[serde(default)]
    pub link: Option<String>,
    /// Sanitized HTML: no scripts, event handlers, `javascript:` URLs,
    /// iframes, forms or styles; relative URLs made absolute.
    #[serde(default)]
    pub description: String,
    /// When the feed gave a date we could read.
    #[serde(default, with = "rfc3339::option")]
    pub published: Option<DateTime<Utc>>,
    /// Whether the user has read it.
    #[serde(default)]
    pub read: bool,
    /// Whether the user starred it.
    #[serde(default)]
    pub starred: bool,
}

/// A file attached to an item: a podcast's audio, a video, an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    /// Absolute `http(s)` URL of the file.
    pub url: String,
    /// Its media type, as the feed declared it (`audio/mpeg`), if it did.
    #[serde(rename = "type", default)]
    pub media_type: Option<String>,
    /// Its size in bytes, as the feed declared it, if it did.
    #[serde(default)]
    pub length: Option<u64>,
}

impl Enclosure {
    /// Which player shows it: `audio`, `video`, `image`, or none (a link).
    pub fn kind(&self) -> Option<&'static str> {
        let media_type = self.media_type.as_deref().unwrap_or_default();
        ["audio", "video", "image"]
            .into_iter()
            .find(|kind| media_type.starts_with(&format!("{kind}/")))
    }
}

/// The feed an item belongs to, as an article or the river names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFeed {
    /// The feed's URL, as subscribed.
    pub url: String,
    /// The feed's title (its host until it has been read).
    pub title: String,
    /// The site the feed belongs to, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_url: Option<String>,
}

/// `GET /middletier/rss/user/{user}/items/{id}`: one item whole, with the
/// full content listings leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    /// The item as listings show it (its `description` is the summary).
    #[serde(flatten)]
    pub item: Item,
    /// The feed it came from.
    pub feed: ItemFeed,
    /// Plain text, if the feed named one.
    #[serde(default)]
    pub author: Option<String>,
    /// Sanitized HTML: the full article (the summary when the feed gave
    /// nothing more).
    #[serde(default)]
    pub content: String,
    /// Files attached to it, at most 8.
    #[serde(default)]
    pub enclosures: Vec<Enclosure>,
    /// Its categories or tags, at most 16.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// `GET /middletier/rss/user/{user}/river`: one page of every feed's items,
/// newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct River {
    /// Newest id first.
    pub items: Vec<RiverItem>,
    /// The `before` of the next (older) page; none on the last page.
    #[serde(default)]
    pub next: Option<ItemId>,
}

/// An item of the river: a listing's item and the feed it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiverItem {
    /// The item, summary only.
    #[serde(flatten)]
    pub item: Item,
    /// Its feed (without `site_url`).
    pub feed: ItemFeed,
}

/// The answer to `POST`/`DELETE /middletier/rss/user/{user}?url=...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionChange {
    /// Whose subscriptions changed.
    pub user: String,
    /// The feed URL that was added or removed: on a subscribe, the feed
    /// actually stored (found from the page given, perhaps).
    pub url: String,
    /// The feed's title, on a subscribe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Whether the user is subscribed to `url` after the call.
    pub subscribed: bool,
}

/// A feed found at a URL: `GET /middletier/rss/discover`, and the feeds of
/// a 300 answer to a subscribe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredFeed {
    /// The feed's URL.
    pub url: String,
    /// Its title, if known.
    #[serde(default)]
    pub title: Option<String>,
    /// Its media type: `application/rss+xml`, `application/atom+xml` or
    /// `application/feed+json`.
    #[serde(rename = "type")]
    pub media_type: String,
}

/// `GET /middletier/rss/discover?url=`: the feeds found (none is an empty
/// list); and the 300 answer to a subscribe, with `error` saying to choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    /// Why there is nothing, or that a choice is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The feeds found.
    pub feeds: Vec<DiscoveredFeed>,
}

/// The body of `PUT /middletier/rss/user/{user}/items/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemChange {
    /// Mark read (`true`) or unread.
    #[serde(default)]
    pub read: Option<bool>,
    /// Star or unstar.
    #[serde(default)]
    pub starred: Option<bool>,
}

/// An item's state for a user, after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    /// The item.
    pub id: ItemId,
    /// Whether it is read.
    pub read: bool,
    /// Whether it is starred.
    pub starred: bool,
}

/// The body of `POST /middletier/rss/user/{user}/mark-read`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Only this feed (else every feed).
    #[serde(default)]
    pub url: Option<String>,
    /// Only items that arrived before this time (RFC 3339); else all.
    #[serde(default)]
    pub before: Option<String>,
}

/// The answer to a mark-read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marked {
    /// How many items turned from unread to read.
    pub marked: usize,
}

/// The answer to an OPML import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpmlImport {
    /// Feeds subscribed to now.
    pub added: usize,
    /// Feeds the user already had.
    pub existing: usize,
    /// Feeds not added, each with why.
    pub refused: Vec<Refused>,
}

/// One feed an import did not add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The URL as the file gave it.
    pub url: String,
    /// Why it was not added.
    pub error: String,
}

/// Every 4xx/5xx body: `{"error": "<what is wrong and how to fix it>"}`,
/// and, on the edge's 5xx, `"reference"`: a short id a user can quote,
/// which finds the request's trace and log lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong and what to do about it.
    pub error: String,
    /// The failed request's reference (see
    /// [`crate::telemetry::http::error_reference`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl ErrorBody {
    /// An error body with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: message.into(),
            reference: None,
        }
    }
}

/// A local account (`--auth local` at the edge): who may sign in, and
/// what ends their sessions. Stored by the middletier, judged by the edge:
/// the middletier keeps the record and never sees a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The user name, which is the user id.
    pub user: UserId,
    /// The password's argon2id hash, in PHC string form.
    pub password_hash: String,
    /// May manage accounts and see the operators' pages.
    #[serde(default)]
    pub admin: bool,
    /// Raised to end every session of the user at once: a session cookie
    /// carries the epoch it was issued in.
    #[serde(default)]
    pub epoch: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Credentials for apps (`Authorization: Bearer`), each revocable.
    #[serde(default)]
    pub app_passwords: Vec<AppPassword>,
}

/// One app password: only a hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPassword {
    /// Names it in the URL that revokes it.
    pub id: String,
    /// What the user called it ("phone", "NetNewsWire").
    pub label: String,
    /// SHA-256 of the secret, in hex. The secret is 256 random bits, so a
    /// fast hash is enough (nothing to brute-force), and a bearer request
    /// is checked without argon2's deliberate cost.
    pub hash: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_follow_the_contract() {
        for ok in [
            "default",
            "a",
            "alice@example.com",
            "a.b_c-d",
            &"x".repeat(64),
        ] {
            assert!(UserId::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "a b",
            "../etc",
            "a/b",
            "é",
            &"x".repeat(65),
            "a%2F",
            ".",
            "..",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad} should be invalid");
        }
        // Not dot segments: fine.
        assert!(UserId::parse("...").is_ok());
        assert!(UserId::parse(".alice").is_ok());
    }

    #[test]
    fn user_ids_are_compared_without_case() {
        assert_eq!(
            UserId::parse("Alice").unwrap(),
            UserId::parse("alice").unwrap()
        );
        assert_eq!(
            UserId::parse("Bob@Example.COM").unwrap().as_str(),
            "bob@example.com"
        );
    }

    #[test]
    fn user_id_errors_do_not_echo_unbounded_input() {
        let err = UserId::parse(&"/".repeat(10_000)).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn feed_urls_are_normalized() {
        let url = FeedUrl::parse("  HTTP://Example.COM:80/feed.xml#top ").unwrap();
        assert_eq!(url.as_str(), "http://example.com/feed.xml");
        assert_eq!(url.host(), "example.com");
    }

    #[test]
    fn feed_urls_must_be_absolute_http() {
        assert_eq!(FeedUrl::parse(""), Err(InvalidInput::EmptyUrl));
        assert!(matches!(
            FeedUrl::parse("example.com/feed"),
            Err(InvalidInput::UrlSyntax { .. })
        ));
        assert!(matches!(
            FeedUrl::parse("/feed.xml"),
            Err(InvalidInput::UrlSyntax { .. })
        ));
        assert!(matches!(
            FeedUrl::parse("ftp://example.com/feed"),
            Err(InvalidInput::UrlScheme { .. })
        ));
        assert!(matches!(
            FeedUrl::parse("javascript:alert(1)"),
            Err(InvalidInput::UrlScheme { .. })
        ));
        assert!(matches!(
            FeedUrl::parse("file:///etc/passwd"),
            Err(InvalidInput::UrlScheme { .. })
        ));
        assert!(matches!(
            FeedUrl::parse("http://user:pw@example.com/feed"),
            Err(InvalidInput::UrlCredentials(_))
        ));
    }

    #[test]
    fn feed_urls_are_capped_at_2048_bytes() {
        let base = "https://example.com/";
        let ok = format!("{base}{}", "a".repeat(MAX_FEED_URL_LEN - base.len()));
        assert!(FeedUrl::parse(&ok).is_ok());
        let long = format!("{ok}a");
        assert_eq!(
            FeedUrl::parse(&long),
            Err(InvalidInput::UrlTooLong(MAX_FEED_URL_LEN + 1))
        );
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let msg = FeedUrl::parse("ftp://x/y").unwrap_err().to_string();
        assert!(msg.contains("http://"), "{msg}");
    }

    #[test]
    fn wire_types_round_trip_through_json() {
        let feeds = UserFeeds {
            user: "default".into(),
            subscriptions: vec![FeedView {
                url: "https://example.com/feed".into(),
                title: "Example".into(),
                items: vec![Item {
                    id: ItemId::new(123),
                    title: "Hello".into(),
                    link: Some("https://example.com/1".into()),
                    description: "<p>Hi</p>".into(),
                    published: rfc3339::parse("2024-01-02T03:04:05Z"),
                    ..Item::default()
                }],
                error: None,
                unread: 1,
                ..FeedView::default()
            }],
        };
        let json = serde_json::to_value(&feeds).unwrap();
        assert_eq!(json["subscriptions"][0]["error"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<UserFeeds>(json).unwrap(), feeds);
    }

    #[test]
    fn v1_answers_still_read() {
        let v1 = r#"{"user": "u", "subscriptions": [{"url": "https://a.example/", "title": "A",
            "items": [{"title": "T", "link": null, "description": "", "published": null}], "error": null}]}"#;
        let feeds: UserFeeds = serde_json::from_str(v1).unwrap();
        assert_eq!(feeds.subscriptions[0].items[0].title, "T");
        assert!(!feeds.subscriptions[0].items[0].read);
    }
}
