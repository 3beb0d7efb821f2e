//! The feed normalizer: bytes in, `{title, items}` out. Pure, no I/O.
//!
//! RSS 0.9x/1.0/2.0 go to the `rss` crate and Atom 1.0 to
//! `atom_syndication`; which one is decided by the document's root element
//! (`<rss>`, `<rdf:RDF>`, `<feed>`), never by the URL or the Content-Type,
//! which publishers get wrong. Every item comes out in one shape:
//!
//! - `title`: plain text; falls back to the start of the description;
//! - `link`: absolute `http(s)`, resolved against the feed URL; dropped if it
//!   is anything else (a `javascript:` link never reaches a page);
//! - `description`: HTML sanitized by `ammonia` (no scripts, event handlers,
//!   iframes, forms, styles or `javascript:` URLs), relative URLs made
//!   absolute, links given `rel="noopener noreferrer"`;
//! - `published`: RFC 3339 in UTC when the feed gave a readable date.
//!
//! # Hostile XML
//!
//! The parsers are built on quick-xml, which never loads a DTD, never fetches
//! an external entity and does not expand custom entities, so XXE and
//! "billion laughs" cannot work. We go further and refuse any document that
//! declares entities at all, with a message saying so, and any document
//! nested deeper than a limit (the parsers' extension handling recurses, so
//! depth is the one thing that could exhaust a stack). Both checks are one
//! streaming pass that allocates nothing per element.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use common::api::Item;
use encoding_rs::Encoding;
use quick_xml::events::Event;
use url::Url;

/// A feed, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFeed {
    /// The feed's title, plain text.
    pub title: Option<String>,
    /// Its items, newest first, at most `max_items`.
    pub items: Vec<Item>,
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
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_items: 50,
            max_depth: 64,
            max_description_bytes: 16 * 1024,
        }
    }
}

/// Why a document is not a feed we can show. Messages are for the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Neither RSS nor Atom; what it looked like instead.
    #[error("not an RSS or Atom feed ({0})")]
    NotAFeed(String),
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
            Self::NotAFeed(_) => "not_a_feed",
            Self::Malformed(_) => "malformed",
            Self::DeclaresEntities | Self::TooDeep(_) => "unsafe_xml",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Rss,
    Atom,
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
    let xml = strip_declaration(&text);
    match sniff(xml, limits.max_depth)? {
        Format::Rss => {
            let channel = rss::Channel::read_from(xml.as_bytes()).map_err(rss_error)?;
            Ok(from_rss(&channel, base, limits))
        }
        Format::Atom => {
            let feed = atom_syndication::Feed::read_from(xml.as_bytes())
                .map_err(|e| ParseError::Malformed(short(&e.to_string())))?;
            Ok(from_atom(&feed, base, limits))
        }
    }
}

/// Decodes to UTF-8. Precedence: byte-order mark, then the XML declaration,
/// then the HTTP charset, then UTF-8. Invalid bytes become U+FFFD rather than
/// failing the feed.
fn decode<'a>(body: &'a [u8], http_charset: Option<&str>) -> Cow<'a, str> {
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

/// One streaming pass: finds the root element, refuses entity declarations
/// and excessive depth, and checks the XML is well formed.
fn sniff(xml: &str, max_depth: usize) -> Result<Format, ParseError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut format = None;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(ParseError::Malformed(short(&e.to_string()))),
        };
        match event {
            Event::DocType(doctype) => {
                let doctype = String::from_utf8_lossy(doctype.as_ref());
                if doctype.contains("<!ENTITY") {
                    return Err(ParseError::DeclaresEntities);
                }
                if doctype
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("html")
                {
                    return Err(html_page());
                }
            }
            Event::Start(element) => {
                depth += 1;
                if depth > max_depth {
                    return Err(ParseError::TooDeep(max_depth));
                }
                if format.is_none() {
                    format = Some(root_format(element.local_name().as_ref())?);
                }
            }
            Event::Empty(element) if format.is_none() => {
                root_format(element.local_name().as_ref())?;
                return Err(ParseError::NotAFeed("the document is empty".into()));
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(text)
                if format.is_none() && !text.as_ref().iter().all(u8::is_ascii_whitespace) =>
            {
                return Err(ParseError::NotAFeed("it is not XML".into()));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    format.ok_or_else(|| ParseError::NotAFeed("the document is empty".into()))
}

fn root_format(local_name: &[u8]) -> Result<Format, ParseError> {
    match local_name {
        b"rss" | b"RDF" => Ok(Format::Rss),
        b"feed" => Ok(Format::Atom),
        b"html" | b"HTML" => Err(html_page()),
        other => Err(ParseError::NotAFeed(format!(
            "its root element is <{}>",
            short(&String::from_utf8_lossy(other))
        ))),
    }
}

fn html_page() -> ParseError {
    ParseError::NotAFeed("it is an HTML page; look on it for a link to the feed itself".into())
}

fn rss_error(err: rss::Error) -> ParseError {
    match err {
        rss::Error::Eof => ParseError::NotAFeed("the RSS document has no <channel>".into()),
        rss::Error::InvalidStartTag => {
            ParseError::NotAFeed("the root element is not <rss> or <rdf:RDF>".into())
        }
        other => ParseError::Malformed(short(&other.to_string())),
    }
}

fn from_rss(channel: &rss::Channel, base: &Url, limits: &ParseLimits) -> ParsedFeed {
    let clean = Sanitizer::new(base, limits.max_description_bytes);
    let items = channel
        .items()
        .iter()
        .take(limits.max_items)
        .map(|item| {
            let description = item.description().or(item.content()).unwrap_or_default();
            let description = clean.html(description);
            let link = item
                .link()
                .or_else(|| item.guid().filter(|g| g.is_permalink()).map(|g| g.value()))
                .and_then(|l| absolute_http(base, l));
            let published = item.pub_date().and_then(parse_date).or_else(|| {
                item.dublin_core_ext()
                    .and_then(|dc| dc.dates().iter().find_map(|d| parse_date(d)))
            });
            Item {
                title: title_or_excerpt(item.title(), &description),
                link,
                description,
                published,
            }
        })
        .collect();
    ParsedFeed {
        title: non_empty(Some(channel.title())),
        items,
    }
}

fn from_atom(feed: &atom_syndication::Feed, base: &Url, limits: &ParseLimits) -> ParsedFeed {
    let clean = Sanitizer::new(base, limits.max_description_bytes);
    let items = feed
        .entries()
        .iter()
        .take(limits.max_items)
        .map(|entry| {
            let description = match (entry.summary(), entry.content()) {
                (Some(summary), _) => clean.atom_text(summary),
                (None, Some(content)) => clean.atom_content(content),
                (None, None) => String::new(),
            };
            let link = entry
                .links()
                .iter()
                .find(|l| l.rel() == "alternate")
                .or_else(|| entry.links().first())
                .and_then(|l| absolute_http(base, l.href()));
            // Atom requires <updated>; the crate fills in the epoch when it
            // is missing, which we treat as "no date".
            let published = entry
                .published()
                .or(Some(entry.updated()))
                .filter(|d| d.timestamp() != 0)
                .map(utc_rfc3339);
            let title = match entry.title().r#type {
                atom_syndication::TextType::Text => entry.title().value.clone(),
                _ => clean.text(&entry.title().value),
            };
            Item {
                title: title_or_excerpt(Some(&title), &description),
                link,
                description,
                published,
            }
        })
        .collect();
    let title = match feed.title().r#type {
        atom_syndication::TextType::Text => feed.title().value.clone(),
        _ => Sanitizer::new(base, limits.max_description_bytes).text(&feed.title().value),
    };
    ParsedFeed {
        title: non_empty(Some(&title)),
        items,
    }
}

/// Wraps one `ammonia` configuration per feed: the base URL differs per feed.
struct Sanitizer {
    html: ammonia::Builder<'static>,
    text: ammonia::Builder<'static>,
    max_bytes: usize,
}

impl Sanitizer {
    fn new(base: &Url, max_bytes: usize) -> Self {
        let mut html = ammonia::Builder::default();
        html.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow"));
        let mut text = ammonia::Builder::empty();
        text.clean_content_tags(HashSet::from(["script", "style"]));
        Self {
            html,
            text,
            max_bytes,
        }
    }

    /// Feed HTML → safe HTML. Truncating first bounds the work; the HTML
    /// parser closes whatever the cut left open.
    fn html(&self, raw: &str) -> String {
        self.html
            .clean(truncate(raw, self.max_bytes))
            .to_string()
            .trim()
            .to_owned()
    }

    /// HTML → plain text (tags dropped, entities decoded).
    fn text(&self, raw: &str) -> String {
        let escaped = self.text.clean(truncate(raw, self.max_bytes)).to_string();
        let plain = quick_xml::escape::unescape(&escaped)
            .map(Cow::into_owned)
            .unwrap_or(escaped);
        collapse_whitespace(&plain)
    }

    fn atom_text(&self, text: &atom_syndication::Text) -> String {
        match text.r#type {
            atom_syndication::TextType::Text => escape_html(&text.value),
            _ => self.html(&text.value),
        }
    }

    fn atom_content(&self, content: &atom_syndication::Content) -> String {
        let value = content.value().unwrap_or_default();
        match content.content_type() {
            Some("html" | "xhtml") => self.html(value),
            Some(t) if t.starts_with("text/html") || t.contains("xhtml") => self.html(value),
            _ => escape_html(value),
        }
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

/// Resolves `link` against the feed URL; only `http(s)` results survive.
fn absolute_http(base: &Url, link: &str) -> Option<String> {
    let url = base.join(link.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.into())
}

fn parse_date(raw: &str) -> Option<String> {
    diligent_date_parser::parse_date(raw.trim()).map(|d| utc_rfc3339(&d))
}

fn utc_rfc3339(date: &DateTime<FixedOffset>) -> String {
    date.with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(collapse_whitespace).filter(|t| !t.is_empty())
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape_html(text: &str) -> String {
    quick_xml::escape::escape(text.trim()).into_owned()
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
#[path = "parse_tests.rs"]
mod tests;
