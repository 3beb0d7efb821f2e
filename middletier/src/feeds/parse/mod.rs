//! The feed normalizer: bytes in, `{title, items}` out. Pure, no I/O.
//!
//! Feeds in the wild are RSS 0.90 to 2.0 (with or without RDF), Atom 1.0
//! and 0.3, and JSON Feed 1.0 and 1.1, written by every tool and by hand,
//! and many are not quite what their specification says. So the format is
//! told from the document itself (a JSON object, or the XML root element),
//! never from the URL or the Content-Type, which publishers get wrong; and
//! the document is read leniently, the way long-lived readers such as
//! Python's `feedparser` read it: one odd element, attribute or encoding
//! never loses the whole feed, what is readable is kept, and titles and
//! links fall back as [`xml_feed`] describes. (The `rss` and
//! `atom_syndication` crates refuse whole documents over one unknown
//! `type` attribute, and `feed-rs` over several other quirks; measured on
//! our corpus, see `tests/api/feed_corpus.rs`.)
//!
//! - [`tree`]: the forgiving XML reader (the one place XML is parsed);
//! - [`xml_feed`]: RSS and Atom from its tree;
//! - [`json_feed`]: JSON Feed.
//!
//! Every item comes out in one shape ([`ParsedItem`]):
//!
//! - `guid`: the item's own identifier (RSS `guid`, Atom `id`, JSON Feed
//!   `id`), if it has one; the refresher tells items apart by it;
//! - `title`: plain text; falls back to the start of the description;
//! - `link`: absolute `http(s)`, resolved against `xml:base` or the feed URL;
//!   dropped if it is anything else (a `javascript:` link never reaches a
//!   page);
//! - `description`: the summary, HTML sanitized by `ammonia` (no scripts,
//!   event handlers, iframes, forms, styles or `javascript:` URLs), relative
//!   URLs made absolute, links given `rel="noopener noreferrer"`; derived
//!   from the content when the feed gives only content;
//! - `content`: the full article (RSS `content:encoded`, Atom `<content>`,
//!   JSON Feed `content_html`/`content_text`), sanitized the same way; empty
//!   when the feed gives only a summary;
//! - `author`: plain text; `categories`: plain text, at most 16;
//! - `enclosures`: attached files (RSS `<enclosure>`, Atom
//!   `link rel="enclosure"`, Media RSS `media:content`, JSON Feed
//!   `attachments`), absolute `http(s)` only, at most 8;
//! - `published`: RFC 3339 in UTC when the feed gave a readable date.
//!
//! Every text field is capped where it is parsed, so no feed makes a
//! listing unbounded: titles at 1 KiB (cut with "…"), links at 2 KiB (a
//! longer one is dropped), guids at 2 KiB (a longer one is replaced by its
//! hash, which still tells items apart), authors and categories at 256 B,
//! descriptions at `max_description_bytes` and contents at
//! `max_content_bytes` before they are sanitized or escaped.
//!
//! # Hostile documents
//!
//! Lenient is not credulous. The XML reader never loads a DTD, never
//! fetches anything and never expands a declared entity; a document that
//! declares entities at all is refused with a message saying so (XXE,
//! "billion laughs"), as is one nested deeper than the limit. A DOCTYPE that
//! only names an external DTD, as RSS 0.91 feeds do, is read past. The
//! document's size is capped by the fetcher, items past `max_items` are
//! skipped unread, and each description is cut to `max_description_bytes`
//! before it is sanitized.

use std::borrow::Cow;
use std::collections::HashSet;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use common::api::Enclosure;
use encoding_rs::Encoding;
use url::Url;

mod json_feed;
mod tree;
mod xml_feed;

/// A feed, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFeed {
    /// Which format the document is in.
    pub format: Format,
    /// The feed's title, plain text.
    pub title: Option<String>,
    /// The site the feed belongs to (RSS channel `<link>`, Atom alternate
    /// link, JSON Feed `home_page_url`), absolute `http(s)`.
    pub site_url: Option<String>,
    /// RSS `<ttl>`: how long the publisher asks readers to wait between
    /// fetches.
    pub ttl: Option<Duration>,
    /// Its items, in document order (newest first, by convention), at most
    /// `max_items`.
    pub items: Vec<ParsedItem>,
}

/// One item, normalized (see the module docs for each field's rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedItem {
    /// The item's own identifier, as the feed gives it.
    pub guid: Option<String>,
    /// Plain text (never HTML).
    pub title: String,
    /// Absolute `http(s)` link to the article.
    pub link: Option<String>,
    /// Sanitized HTML: the summary.
    pub description: String,
    /// Sanitized HTML: the full article, if the feed gave more than a summary.
    pub content: String,
    /// Plain text.
    pub author: Option<String>,
    /// Attached files, absolute `http(s)`.
    pub enclosures: Vec<Enclosure>,
    /// Plain text.
    pub categories: Vec<String>,
    /// When it was published, to the second.
    pub published: Option<DateTime<Utc>>,
}

/// The formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RSS 0.90 to 2.0, with or without RDF.
    Rss,
    /// Atom 1.0 or 0.3.
    Atom,
    /// JSON Feed 1.0 or 1.1.
    Json,
}

impl Format {
    /// The format's media type, as `<link rel="alternate" type=...>` names it.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Rss => "application/rss+xml",
            Self::Atom => "application/atom+xml",
            Self::Json => "application/feed+json",
        }
    }
}

/// Longest item title kept, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest link or guid kept, in bytes.
pub const MAX_LINK_BYTES: usize = 2048;
/// Longest author or category kept, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most enclosures kept per item: a podcast has one, a gallery a few.
pub const MAX_ENCLOSURES: usize = 8;
/// Most categories kept per item.
pub const MAX_CATEGORIES: usize = 16;

impl ParsedItem {
    /// The item with every field within its cap (see the module docs).
    fn capped(mut self) -> Self {
        if self.title.len() > MAX_TITLE_BYTES {
            let cut = truncate(&self.title, MAX_TITLE_BYTES - '…'.len_utf8());
            self.title = format!("{}…", cut.trim_end());
        }
        self.link = self.link.filter(|link| link.len() <= MAX_LINK_BYTES);
        self.author = self
            .author
            .map(|author| truncate(&author, MAX_NAME_BYTES).trim_end().to_owned());
        let mut seen = HashSet::new();
        self.categories = std::mem::take(&mut self.categories)
            .into_iter()
            .map(|c| truncate(&c, MAX_NAME_BYTES).trim_end().to_owned())
            .filter(|c| !c.is_empty() && seen.insert(c.clone()))
            .take(MAX_CATEGORIES)
            .collect();
        let mut seen = HashSet::new();
        self.enclosures = std::mem::take(&mut self.enclosures)
            .into_iter()
            .filter(|e| e.url.len() <= MAX_LINK_BYTES && seen.insert(e.url.clone()))
            .take(MAX_ENCLOSURES)
            .collect();
        // Stored once: an article that is all summary is the summary.
        if self.content == self.description {
            self.content.clear();
        }
        self.guid = self.guid.map(|guid| {
            if guid.len() <= MAX_LINK_BYTES {
                guid
            } else {
                use std::hash::Hasher as _;
                let mut hasher = twox_hash::XxHash64::with_seed(0);
                hasher.write(guid.as_bytes());
                format!("long-guid:{:016x}:{}", hasher.finish(), guid.len())
            }
        });
        self
    }
}

/// Bounds on what one document may cost us.
#[derive(Debug, Clone)]
pub struct ParseLimits {
    /// Items kept per feed (the first ones, which publishers put newest first).
    pub max_items: usize,
    /// Deepest element nesting accepted. Real feeds stay under 20, even with
    /// XHTML content.
    pub max_depth: usize,
    /// Description HTML kept per item, in bytes, before sanitizing.
    pub max_description_bytes: usize,
    /// Content HTML kept per item, in bytes, before sanitizing.
    pub max_content_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_items: 50,
            max_depth: 64,
            max_description_bytes: 16 * 1024,
            max_content_bytes: 256 * 1024,
        }
    }
}

/// Why a document is not a feed we can show. Messages are for the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not RSS, Atom or JSON Feed; what it looked like instead.
    #[error("not an RSS, Atom or JSON feed ({0})")]
    NotAFeed(String),
    /// An HTML page: the place to look for links to feeds.
    #[error(
        "not an RSS, Atom or JSON feed (it is an HTML page; look on it for a link to the feed itself)"
    )]
    HtmlPage,
    /// Not well-formed XML.
    #[error("not a readable feed: the XML is malformed ({0})")]
    Malformed(String),
    #[error(
        "refused: the document declares XML entities, which feeds do not need and attackers use"
    )]
    /// It declares entities, which we never expand.
    DeclaresEntities,
    /// Nested deeper than the limit.
    #[error("refused: the XML is nested more than {0} levels deep")]
    TooDeep(usize),
}

impl ParseError {
    /// A short, stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotAFeed(_) | Self::HtmlPage => "not_a_feed",
            Self::Malformed(_) => "malformed",
            Self::DeclaresEntities | Self::TooDeep(_) => "unsafe_xml",
        }
    }
}

/// Parses and normalizes a feed document.
///
/// `http_charset` is the `charset` of the response's Content-Type, used only
/// when the document itself (BOM, XML declaration) does not say.
pub fn parse_feed(
    body: &[u8],
    http_charset: Option<&str>,
    base: &Url,
    limits: &ParseLimits,
) -> Result<ParsedFeed, ParseError> {
    let text = decode(body, http_charset);
    let document = strip_declaration(&text);
    let mut feed = if document.starts_with('{') {
        json_feed::parse(document, base, limits)?
    } else {
        let root = tree::read(
            document,
            tree::ReadLimits {
                max_depth: limits.max_depth,
                max_items: limits.max_items,
            },
        )?;
        xml_feed::from_root(&root, base, limits)?
    };
    feed.items = feed.items.into_iter().map(ParsedItem::capped).collect();
    feed.title = feed.title.map(|title| {
        if title.len() > MAX_TITLE_BYTES {
            format!("{}…", truncate(&title, MAX_TITLE_BYTES - 3).trim_end())
        } else {
            title
        }
    });
    Ok(feed)
}

/// Decodes to UTF-8. Precedence: byte-order mark, then the XML declaration,
/// then the HTTP charset, then UTF-8. Invalid bytes become U+FFFD rather than
/// failing the feed.
pub fn decode<'a>(body: &'a [u8], http_charset: Option<&str>) -> Cow<'a, str> {
    let (encoding, bom_len) = Encoding::for_bom(body).unwrap_or_else(|| {
        let declared = declared_encoding(body)
            .or_else(|| http_charset.and_then(|c| Encoding::for_label(c.trim().as_bytes())));
        (declared.unwrap_or(encoding_rs::UTF_8), 0)
    });
    let (text, _had_errors) = encoding.decode_without_bom_handling(&body[bom_len..]);
    text
}

/// The `encoding="..."` of an `<?xml ...?>` declaration, if the document
/// starts with one.
fn declared_encoding(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(512)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = head[start..].strip_prefix(b"<?xml")?;
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = &head[..end];
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let rest = &decl[at + 8..];
    let quote_at = rest.iter().position(|b| *b == b'"' || *b == b'\'')?;
    let quote = rest[quote_at];
    let value = &rest[quote_at + 1..];
    let value = &value[..value.iter().position(|b| *b == quote)?];
    Encoding::for_label(value)
}

/// Drops the XML declaration: the text is UTF-8 now, whatever it declared,
/// and the parsers must not decode it a second time.
fn strip_declaration(text: &str) -> &str {
    let trimmed = text.trim_start();
    if trimmed.starts_with("<?xml")
        && let Some(end) = trimmed.find("?>")
    {
        return &trimmed[end + 2..];
    }
    trimmed
}

/// Wraps one `ammonia` configuration per feed: the base URL differs per feed.
struct Sanitizer {
    html: ammonia::Builder<'static>,
    text: ammonia::Builder<'static>,
    /// The summary's cap.
    max_bytes: usize,
    /// The full content's cap.
    max_content_bytes: usize,
}

impl Sanitizer {
    fn new(base: &Url, limits: &ParseLimits) -> Self {
        let mut html = ammonia::Builder::default();
        html.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow"));
        let mut text = ammonia::Builder::empty();
        text.clean_content_tags(HashSet::from(["script", "style"]));
        Self {
            html,
            text,
            max_bytes: limits.max_description_bytes,
            max_content_bytes: limits.max_content_bytes,
        }
    }

    /// Feed HTML → safe HTML. Truncating first bounds the work; the HTML
    /// parser closes whatever the cut left open.
    fn html(&self, raw: &str, max: usize) -> String {
        self.html
            .clean(truncate(raw, max))
            .to_string()
            .trim()
            .to_owned()
    }

    /// An item's summary and full content, each sanitized within its cap,
    /// from functions that render the feed's summary or content to safe HTML
    /// within a given cap (empty if the feed has none). When the feed gives
    /// only the content, the summary is its start.
    fn summary_and_content(
        &self,
        summary: impl Fn(usize) -> String,
        content: impl Fn(usize) -> String,
    ) -> (String, String) {
        let mut description = summary(self.max_bytes);
        if description.is_empty() {
            description = content(self.max_bytes);
        }
        (description, content(self.max_content_bytes))
    }

    /// HTML → plain text (tags dropped, entities decoded).
    fn text(&self, raw: &str) -> String {
        let escaped = self.text.clean(truncate(raw, self.max_bytes)).to_string();
        let plain = quick_xml::escape::unescape(&escaped)
            .map(Cow::into_owned)
            .unwrap_or(escaped);
        collapse_whitespace(&plain)
    }
}

fn title_or_excerpt(title: Option<&str>, description_html: &str) -> String {
    if let Some(title) = title.map(collapse_whitespace).filter(|t| !t.is_empty()) {
        return title;
    }
    let text = ammonia::Builder::empty()
        .clean(description_html)
        .to_string();
    let text = quick_xml::escape::unescape(&text)
        .map(Cow::into_owned)
        .unwrap_or(text);
    let text = collapse_whitespace(&text);
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None if text.is_empty() => "Untitled".to_owned(),
        None => text,
    }
}

/// Resolves `link` against the feed URL; only `http(s)` results survive,
/// and an empty link is no link (not the feed's own URL).
fn absolute_http(base: &Url, link: &str) -> Option<String> {
    let link = link.trim();
    if link.is_empty() {
        return None;
    }
    let url = base.join(link).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.into())
}

/// A guid (or an Atom id) as the item's link: only when it is an absolute
/// `http(s)` URL on its own. An opaque guid such as `g2` is an identifier,
/// and resolving it against the feed's URL would invent a link.
fn guid_link(guid: &str) -> Option<String> {
    let url = Url::parse(guid.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.into())
}

/// An enclosure from a feed's attributes: only an absolute `http(s)` URL
/// makes one; a type or length that is not one is left out.
fn enclosure(
    base: &Url,
    url: &str,
    media_type: Option<&str>,
    length: Option<&str>,
) -> Option<Enclosure> {
    Some(Enclosure {
        url: absolute_http(base, url)?,
        media_type: media_type
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| t.contains('/') && t.len() <= 100),
        length: length
            .and_then(|l| l.trim().parse().ok())
            .filter(|l| *l > 0),
    })
}

/// Whether a title in a format that is plain text by its specification (RSS)
/// holds HTML all the same: a closing tag of an element that formats text.
/// `History of the <blink> tag` is text about a tag; `<b>New</b> release`
/// is markup. The same test Python's `feedparser` makes.
fn looks_like_html(text: &str) -> bool {
    const FORMATTING: &[&str] = &[
        "a", "abbr", "b", "big", "cite", "code", "em", "i", "q", "s", "small", "span", "strong",
        "sub", "sup", "u",
    ];
    text.match_indices("</").any(|(at, _)| {
        let rest = &text[at + 2..];
        let name_end = rest.find('>').unwrap_or(rest.len());
        FORMATTING.contains(&rest[..name_end].trim().to_ascii_lowercase().as_str())
    })
}

/// An item's own identifier: trimmed, and none if empty.
fn guid(raw: Option<String>) -> Option<String> {
    raw.map(|g| g.trim().to_owned()).filter(|g| !g.is_empty())
}

/// A date in any of the forms feeds use, in UTC, to the second (as it is
/// stored and compared across refreshes).
fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    diligent_date_parser::parse_date(raw.trim()).map(|d| d.with_timezone(&Utc).trunc_subsecs(0))
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(collapse_whitespace).filter(|t| !t.is_empty())
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Plain text as HTML, cut to `max` bytes first (escaping can make text
/// four times longer: `<` is `&lt;`).
fn escape_html(text: &str, max: usize) -> String {
    quick_xml::escape::escape(truncate(text, max).trim()).into_owned()
}

/// The longest prefix of `text` of at most `max` bytes, cut on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Error detail from a parser, kept short enough to show on a page.
fn short(detail: &str) -> String {
    let cut = truncate(detail, 160);
    if cut.len() < detail.len() {
        format!("{cut}…")
    } else {
        cut.to_owned()
    }
}

#[cfg(test)]
mod tests;
