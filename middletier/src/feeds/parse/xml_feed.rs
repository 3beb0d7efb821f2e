//! RSS (0.90 to 2.0, RDF or not) and Atom (1.0 and 0.3), read from the
//! forgiving tree of [`super::tree`] with the fallbacks mature readers use:
//!
//! | field | RSS | Atom |
//! |---|---|---|
//! | feed title | `<title>`, else `<dc:title>` (plain text) | `<title>`, any `type` |
//! | item title | `<title>`, else `<dc:title>`, else `media:title` (else an excerpt, later) | `<title>`, any `type` or base64 `mode`, else `media:title` |
//! | item link | `<link>`, else a permalink `<guid>`, else an alternate `atom:link` | `rel="alternate"` (or no `rel`), else an `<id>` that is a URL; never `self`, `enclosure`, `via`, `license`, `related` |
//! | description | `<description>` (escaped or raw markup), else the content's start | `<summary>`, else the content's start |
//! | content | `content:encoded` | `<content>` unless it is binary or out of line |
//! | author | `<author>`, `<dc:creator>`, `<itunes:author>` | `<author><name>`, else the feed's |
//! | enclosures | `<enclosure>`, `media:content` (also in `media:group`) | `link rel="enclosure"`, `media:content` |
//! | categories | `<category>`, `<dc:subject>` | `<category term>` |
//! | date | `<pubDate>`, else `<dc:date>` | `<published>` (0.3: `<issued>`), else `<updated>` (`<modified>`) |
//! | item guid | `<guid>`, else `<dc:identifier>`, else RDF `about` | `<id>` |
//! | site | channel `<link>`, else its `atom:link` | the feed's alternate link |
//!
//! Links resolve against `xml:base` where the feed sets it, else the feed's
//! URL. An element the reader does not know is ignored, never fatal.

use url::Url;

use super::tree::{Element, Ns};
use common::api::Enclosure;

use super::{
    Format, ParseError, ParseLimits, ParsedFeed, ParsedItem, Sanitizer, absolute_http, enclosure,
    guid, non_empty, parse_date,
};

/// Where RSS elements live: no namespace, or one of the RSS namespaces.
const RSS: &[Ns] = &[Ns::None, Ns::Rss];
/// Where Atom elements live: Atom's namespaces, or none (lax feeds).
const ATOM: &[Ns] = &[Ns::Atom, Ns::None];

/// A feed from its document's root element.
pub(super) fn from_root(
    root: &Element,
    base: &Url,
    limits: &ParseLimits,
) -> Result<ParsedFeed, ParseError> {
    let clean = Sanitizer::new(base, limits);
    match root.name.as_str() {
        "rss" | "RDF" => rss(root, base, &clean, limits),
        // Some feeds lose their <rss>: the channel is the root.
        "channel" => rss_channel(root, &[], base, &clean, limits),
        "feed" => Ok(atom(root, base, &clean, limits)),
        "html" | "HTML" => Err(ParseError::HtmlPage),
        other => Err(ParseError::NotAFeed(format!(
            "its root element is <{}>",
            super::short(other)
        ))),
    }
}

fn rss(
    root: &Element,
    base: &Url,
    clean: &Sanitizer,
    limits: &ParseLimits,
) -> Result<ParsedFeed, ParseError> {
    let channel = root
        .first(RSS, "channel")
        .ok_or_else(|| ParseError::NotAFeed("the RSS document has no <channel>".into()))?;
    // RSS 0.90 and 1.0 put the items beside the channel, not in it.
    let beside: Vec<&Element> = root.all(RSS, "item").collect();
    rss_channel(channel, &beside, base, clean, limits)
}

fn rss_channel(
    channel: &Element,
    beside: &[&Element],
    base: &Url,
    clean: &Sanitizer,
    limits: &ParseLimits,
) -> Result<ParsedFeed, ParseError> {
    let base = with_xml_base(base, channel);
    let items = channel
        .all(RSS, "item")
        .chain(beside.iter().copied())
        .take(limits.max_items)
        .map(|item| rss_item(item, &base, clean))
        .collect();
    let site_url = channel
        .all(RSS, "link")
        .find_map(|l| absolute_http(&base, &l.text()))
        .or_else(|| atom_link(channel, &base));
    // <ttl> is minutes; nonsense (0, or more than a year) is ignored.
    let ttl = channel
        .first(RSS, "ttl")
        .and_then(|t| t.text().trim().parse::<u64>().ok())
        .filter(|minutes| (1..=525_600).contains(minutes))
        .map(|minutes| std::time::Duration::from_secs(minutes * 60));
    Ok(ParsedFeed {
        format: Format::Rss,
        title: title_of(channel, clean),
        site_url,
        ttl,
        items,
    })
}

/// `<title>`, else `<dc:title>`, else `media:title`. RSS titles are plain
/// text: markup in one is shown as written, unless it plainly is formatting
/// (see [`super::looks_like_html`]), which is dropped.
fn title_of(element: &Element, clean: &Sanitizer) -> Option<String> {
    [
        element.first(RSS, "title"),
        element.first(&[Ns::Dc], "title"),
        element.first(&[Ns::Media], "title"),
    ]
    .into_iter()
    .flatten()
    .find_map(|title| {
        let text = title.text();
        if super::looks_like_html(&text) {
            non_empty(Some(&clean.text(&text)))
        } else {
            non_empty(Some(&text))
        }
    })
}

fn rss_item(item: &Element, base: &Url, clean: &Sanitizer) -> ParsedItem {
    let base = with_xml_base(base, item);
    let summary = item.first(RSS, "description");
    let content = item.first(&[Ns::Content], "encoded");
    let (description, content) = clean.summary_and_content(
        |max| match summary {
            // Markup that was not escaped is markup all the same.
            Some(d) if d.elements().next().is_some() => clean.html(&d.inner_html(), max),
            Some(d) => clean.html(&d.text(), max),
            None => String::new(),
        },
        |max| content.map_or_else(String::new, |c| clean.html(&c.text(), max)),
    );
    let author = [
        item.first(&[Ns::Dc], "creator"),
        item.first(RSS, "author"),
        item.first(&[Ns::Itunes], "author"),
    ]
    .into_iter()
    .flatten()
    .find_map(|a| non_empty(Some(&a.text())));
    let mut enclosures: Vec<Enclosure> = item
        .all(RSS, "enclosure")
        .filter_map(|e| enclosure(&base, e.attr("url")?, e.attr("type"), e.attr("length")))
        .collect();
    enclosures.extend(media_contents(item, &base));
    let categories = item
        .all(RSS, "category")
        .chain(item.all(&[Ns::Dc], "subject"))
        .filter_map(|c| non_empty(Some(&c.text())))
        .collect();
    let link = item
        .all(RSS, "link")
        .find_map(|l| absolute_http(&base, &l.text()))
        .or_else(|| {
            item.first(RSS, "guid")
                .filter(|g| {
                    !g.attr("isPermaLink")
                        .is_some_and(|p| p.eq_ignore_ascii_case("false"))
                })
                .and_then(|g| super::guid_link(&g.text()))
        })
        .or_else(|| atom_link(item, &base));
    let published = [
        item.first(RSS, "pubDate"),
        item.first(&[Ns::Dc], "date"),
        item.first(&[Ns::Atom], "published"),
        item.first(&[Ns::Atom], "updated"),
    ]
    .into_iter()
    .flatten()
    .find_map(|d| parse_date(&d.text()));
    let id = [item.first(RSS, "guid"), item.first(&[Ns::Dc], "identifier")]
        .into_iter()
        .flatten()
        .find_map(|g| guid(Some(g.text())))
        .or_else(|| guid(item.attr("rdf:about").map(str::to_owned)));
    ParsedItem {
        guid: id,
        title: super::title_or_excerpt(title_of(item, clean).as_deref(), &description),
        link,
        description,
        content,
        author,
        enclosures,
        categories,
        published,
    }
}

/// Media RSS files: `media:content`, alone or in a `media:group`.
fn media_contents<'a>(element: &'a Element, base: &'a Url) -> impl Iterator<Item = Enclosure> + 'a {
    element
        .all(&[Ns::Media], "content")
        .chain(
            element
                .all(&[Ns::Media], "group")
                .flat_map(|g| g.all(&[Ns::Media], "content")),
        )
        .filter_map(move |m| {
            let media_type = m.attr("type").map(str::to_owned).or_else(|| {
                // Media RSS may give only the medium ("image"), not a type.
                m.attr("medium").map(|medium| format!("{medium}/*"))
            });
            enclosure(
                base,
                m.attr("url")?,
                media_type.as_deref(),
                m.attr("fileSize"),
            )
        })
}

fn atom(feed: &Element, base: &Url, clean: &Sanitizer, limits: &ParseLimits) -> ParsedFeed {
    let base = with_xml_base(base, feed);
    let items = feed
        .all(ATOM, "entry")
        .take(limits.max_items)
        .map(|entry| atom_entry(entry, &base, clean, feed))
        .collect();
    ParsedFeed {
        format: Format::Atom,
        title: feed
            .first(ATOM, "title")
            .and_then(|t| non_empty(Some(&atom_text(t, clean)))),
        site_url: atom_link(feed, &base),
        ttl: None,
        items,
    }
}

fn atom_entry(entry: &Element, base: &Url, clean: &Sanitizer, feed: &Element) -> ParsedItem {
    let base = with_xml_base(base, entry);
    let summary = entry.first(ATOM, "summary");
    let content = entry.first(ATOM, "content");
    let (description, content) = clean.summary_and_content(
        |max| summary.map_or_else(String::new, |s| atom_html(s, clean, max)),
        |max| content.map_or_else(String::new, |c| atom_html(c, clean, max)),
    );
    let author = [entry, feed]
        .into_iter()
        .filter_map(|e| e.first(ATOM, "author"))
        .find_map(|a| {
            let name = a.first(ATOM, "name").map(|n| n.text());
            non_empty(name.as_deref())
        });
    let mut enclosures: Vec<Enclosure> = links(entry)
        .filter(|l| l.attr("rel").is_some_and(|r| r.trim() == "enclosure"))
        .filter_map(|l| enclosure(&base, l.attr("href")?, l.attr("type"), l.attr("length")))
        .collect();
    enclosures.extend(media_contents(entry, &base));
    let categories = entry
        .all(ATOM, "category")
        .filter_map(|c| non_empty(c.attr("term").or(c.attr("label"))))
        .collect();
    let link = atom_link(entry, &base).or_else(|| {
        // An <id> that is a web address is the entry's address.
        entry
            .first(ATOM, "id")
            .and_then(|id| super::guid_link(&id.text()))
    });
    let published = ["published", "issued", "created", "updated", "modified"]
        .into_iter()
        .filter_map(|name| entry.first(ATOM, name))
        .find_map(|d| parse_date(&d.text()));
    let title = entry
        .first(ATOM, "title")
        .map(|t| atom_text(t, clean))
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            let media = entry.first(&[Ns::Media], "title").map(|t| t.text());
            non_empty(media.as_deref())
        });
    ParsedItem {
        guid: guid(entry.first(ATOM, "id").map(|id| id.text())),
        title: super::title_or_excerpt(title.as_deref(), &description),
        link,
        description,
        content,
        author,
        enclosures,
        categories,
        published,
    }
}

/// An element's Atom links (also an RSS item's `atom:link`, and a lax
/// feed's `<link href>` without a namespace).
fn links(element: &Element) -> impl Iterator<Item = &Element> {
    element.elements().filter(|e| {
        e.name == "link" && (e.ns == Ns::Atom || (e.ns == Ns::None && e.attr("href").is_some()))
    })
}

/// The alternate link of an Atom entry (or an RSS item's `atom:link`): one
/// with `rel="alternate"` or no `rel`. A `self`, `enclosure`, `via`,
/// `license` or `related` link is never the article.
fn atom_link(element: &Element, base: &Url) -> Option<String> {
    links(element)
        .filter(|l| l.attr("rel").is_none_or(|r| r.trim() == "alternate"))
        .find_map(|l| absolute_http(&with_xml_base(base, l), l.attr("href")?))
}

/// The kind of text an Atom text or content element holds.
enum Kind {
    Text,
    Html,
    Xhtml,
    /// Atom 0.3's `mode="base64"`: the text, encoded.
    Base64,
    /// A media type we do not show.
    Other,
}

fn kind(element: &Element) -> Kind {
    let mode = element.attr("mode").unwrap_or_default();
    if mode.eq_ignore_ascii_case("base64") {
        return Kind::Base64;
    }
    if mode.eq_ignore_ascii_case("xml") {
        return Kind::Xhtml;
    }
    match element.attr("type").map(|t| t.trim().to_ascii_lowercase()) {
        None => {
            if mode.eq_ignore_ascii_case("escaped") {
                Kind::Html
            } else {
                Kind::Text
            }
        }
        Some(t) if t == "text" || t == "text/plain" => Kind::Text,
        Some(t) if t == "html" || t.starts_with("text/html") => Kind::Html,
        Some(t)
            if t == "xhtml"
                || t.contains("xhtml")
                || t.ends_with("+xml")
                || t.ends_with("/xml") =>
        {
            Kind::Xhtml
        }
        Some(t) if t.starts_with("text/") => Kind::Text,
        Some(_) => Kind::Other,
    }
}

/// An Atom text construct (a title) as plain text.
fn atom_text(element: &Element, clean: &Sanitizer) -> String {
    match kind(element) {
        Kind::Html => clean.text(&element.text()),
        Kind::Xhtml if element.elements().next().is_some() => clean.text(&element.inner_html()),
        Kind::Text | Kind::Xhtml => clean.text(&quick_xml::escape::escape(element.text().as_str())),
        Kind::Base64 => match base64_text(element) {
            Some(text) if element.attr("type").is_some_and(|t| t.contains("html")) => {
                clean.text(&text)
            }
            Some(text) => clean.text(&quick_xml::escape::escape(text.as_str())),
            None => String::new(),
        },
        Kind::Other => String::new(),
    }
}

/// An Atom summary or content as safe HTML, within `max` bytes; empty for
/// binary content or content that lives elsewhere (`src`).
fn atom_html(element: &Element, clean: &Sanitizer, max: usize) -> String {
    if element.attr("src").is_some() {
        return String::new();
    }
    match kind(element) {
        Kind::Html => clean.html(&element.text(), max),
        Kind::Xhtml if element.elements().next().is_some() => {
            clean.html(&element.inner_html(), max)
        }
        Kind::Text | Kind::Xhtml => super::escape_html(&element.text(), max),
        Kind::Base64 => match base64_text(element) {
            Some(text) if element.attr("type").is_some_and(|t| t.contains("html")) => {
                clean.html(&text, max)
            }
            Some(text) => super::escape_html(&text, max),
            None => String::new(),
        },
        Kind::Other => String::new(),
    }
}

/// Atom 0.3's base64 text, decoded, if it decodes to UTF-8 text.
fn base64_text(element: &Element) -> Option<String> {
    use base64::Engine as _;
    let compact: String = element.text().split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// `base` with the element's `xml:base` applied, if it has a usable one.
fn with_xml_base(base: &Url, element: &Element) -> Url {
    element
        .attr("xml:base")
        .and_then(|b| base.join(b.trim()).ok())
        .unwrap_or_else(|| base.clone())
}
