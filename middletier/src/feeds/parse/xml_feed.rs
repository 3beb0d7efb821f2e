//! RSS (0.90 to 2.0, RDF or not) and Atom (1.0 and 0.3), read from the
//! forgiving tree of [`super::tree`] with the fallbacks mature readers use:
//!
//! | field | RSS | Atom |
//! |---|---|---|
//! | feed title | `<title>`, else `<dc:title>` (plain text) | `<title>`, any `type` |
//! | item title | `<title>`, else `<dc:title>` (else an excerpt, later) | `<title>`, any `type` |
//! | item link | `<link>`, else a permalink `<guid>`, else an `atom:link` | `rel="alternate"` (or no `rel`), else the first link, else an `<id>` that is a URL |
//! | description | `<description>` (escaped or raw markup), else `content:encoded` | `<summary>`, else `<content>` unless it is binary or out of line |
//! | date | `<pubDate>`, else `<dc:date>` | `<published>` (0.3: `<issued>`), else `<updated>` (`<modified>`) |
//! | item guid | `<guid>`, else `<dc:identifier>`, else RDF `about` | `<id>` |
//! | site | channel `<link>`, else its `atom:link` | the feed's alternate link |
//!
//! Links resolve against `xml:base` where the feed sets it, else the feed's
//! URL. An element the reader does not know is ignored, never fatal.

use url::Url;

use super::tree::{Element, Ns};
use super::{
    Format, ParseError, ParseLimits, ParsedFeed, ParsedItem, Sanitizer, absolute_http, guid,
    non_empty, parse_date,
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
    let clean = Sanitizer::new(base, limits.max_description_bytes);
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
        title: title_of(channel),
        site_url,
        ttl,
        items,
    })
}

/// `<title>`, else `<dc:title>`. RSS titles are plain text: markup in
/// one is shown as written, never interpreted.
fn title_of(element: &Element) -> Option<String> {
    [
        element.first(RSS, "title"),
        element.first(&[Ns::Dc], "title"),
    ]
    .into_iter()
    .flatten()
    .find_map(|title| non_empty(Some(&title.text())))
}

fn rss_item(item: &Element, base: &Url, clean: &Sanitizer) -> ParsedItem {
    let base = with_xml_base(base, item);
    let description = match item.first(RSS, "description") {
        // Markup that was not escaped is markup all the same.
        Some(d) if d.elements().next().is_some() => clean.html(&d.inner_html()),
        Some(d) => clean.html(&d.text()),
        None => String::new(),
    };
    let description = if description.is_empty() {
        item.first(&[Ns::Content], "encoded")
            .map(|c| clean.html(&c.text()))
            .unwrap_or_default()
    } else {
        description
    };
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
        title: super::title_or_excerpt(title_of(item).as_deref(), &description),
        link,
        description,
        published,
    }
}

fn atom(feed: &Element, base: &Url, clean: &Sanitizer, limits: &ParseLimits) -> ParsedFeed {
    let base = with_xml_base(base, feed);
    let items = feed
        .all(ATOM, "entry")
        .take(limits.max_items)
        .map(|entry| atom_entry(entry, &base, clean))
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

fn atom_entry(entry: &Element, base: &Url, clean: &Sanitizer) -> ParsedItem {
    let base = with_xml_base(base, entry);
    let description = match (entry.first(ATOM, "summary"), entry.first(ATOM, "content")) {
        (Some(summary), _) if !summary.text().trim().is_empty() => atom_html(summary, clean),
        (_, Some(content)) => atom_html(content, clean),
        _ => String::new(),
    };
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
    let title = entry.first(ATOM, "title").map(|t| atom_text(t, clean));
    ParsedItem {
        guid: guid(entry.first(ATOM, "id").map(|id| id.text())),
        title: super::title_or_excerpt(title.as_deref(), &description),
        link,
        description,
        published,
    }
}

/// The alternate link of an Atom entry (or an RSS item's `atom:link`).
fn atom_link(element: &Element, base: &Url) -> Option<String> {
    let links: Vec<&Element> = element
        .elements()
        .filter(|e| {
            e.name == "link" && (e.ns == Ns::Atom || (e.ns == Ns::None && e.attr("href").is_some()))
        })
        .collect();
    let alternate = links
        .iter()
        .find(|l| l.attr("rel").is_none_or(|r| r == "alternate"))
        .or_else(|| links.iter().find(|l| l.attr("rel") != Some("self")))
        .or(links.first())?;
    let href = alternate.attr("href")?;
    absolute_http(&with_xml_base(base, alternate), href)
}

/// The kind of text an Atom text or content element holds.
enum Kind {
    Text,
    Html,
    Xhtml,
    /// Base64 or another media type we do not show.
    Other,
}

fn kind(element: &Element) -> Kind {
    let mode = element.attr("mode").unwrap_or_default();
    if mode.eq_ignore_ascii_case("base64") {
        return Kind::Other;
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
        Kind::Other => String::new(),
    }
}

/// An Atom summary or content as safe HTML; empty for binary content or
/// content that lives elsewhere (`src`).
fn atom_html(element: &Element, clean: &Sanitizer) -> String {
    if element.attr("src").is_some() {
        return String::new();
    }
    match kind(element) {
        Kind::Html => clean.html(&element.text()),
        Kind::Xhtml if element.elements().next().is_some() => clean.html(&element.inner_html()),
        Kind::Text | Kind::Xhtml => super::escape_html(&element.text(), clean.max_bytes),
        Kind::Other => String::new(),
    }
}

/// `base` with the element's `xml:base` applied, if it has a usable one.
fn with_xml_base(base: &Url, element: &Element) -> Url {
    element
        .attr("xml:base")
        .and_then(|b| base.join(b.trim()).ok())
        .unwrap_or_else(|| base.clone())
}
