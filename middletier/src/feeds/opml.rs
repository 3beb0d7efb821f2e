//! OPML, the format every feed reader imports and exports subscriptions
//! in. Pure: text in, feeds out, and back.
//!
//! **Reading** is strict where it must be and lenient where exporters
//! differ. Folders (outlines inside outlines) are flattened; a feed is any
//! outline with an `xmlUrl` (Miniflux, FreshRSS, Feedly, Inoreader and
//! NetNewsWire all write that; some write `xmlurl`), whatever its `type`.
//! Its title is `title`, else `text`. An OPML file comes from a user's
//! upload, so it is treated as hostile: the caller caps its size (1 MiB),
//! and here a DOCTYPE declaring entities is refused, as are nesting deeper
//! than [`MAX_DEPTH`] and more than [`MAX_OUTLINES`] outlines, and anything
//! that is not XML with an `<opml>` root.
//!
//! **Writing** produces OPML 2.0: one `<outline type="rss">` per feed with
//! `text`, `title`, `xmlUrl` and `htmlUrl`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use quick_xml::events::{BytesStart, Event};

/// Deepest outline nesting accepted (folders in folders...).
pub const MAX_DEPTH: usize = 32;
/// Most outlines (feeds and folders) accepted in one file.
pub const MAX_OUTLINES: usize = 10_000;

/// One feed of an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// The feed's URL, as written (not yet checked).
    pub xml_url: String,
    /// Its title, if the file gives one.
    pub title: Option<String>,
    /// The site's URL, if given.
    pub html_url: Option<String>,
}

/// Why an upload is not an OPML file we will read. Messages are for the
/// person who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpmlError {
    /// Not well-formed XML.
    #[error(
        "the file is not XML that can be read ({0}); export your subscriptions as OPML and upload that file"
    )]
    NotXml(String),
    /// XML, but not OPML.
    #[error(
        "the file is not OPML (its root element is <{0}>); export your subscriptions as OPML and upload that file"
    )]
    NotOpml(String),
    /// It declares entities.
    #[error("refused: the file declares XML entities, which OPML does not need and attackers use")]
    DeclaresEntities,
    /// Nested too deeply.
    #[error("refused: outlines are nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// Too many outlines.
    #[error("refused: the file has more than {MAX_OUTLINES} outlines; split it into smaller files")]
    TooManyOutlines,
}

/// The feeds of an OPML document, in document order, folders flattened.
pub fn read(text: &str) -> Result<Vec<OpmlFeed>, OpmlError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut depth = 0usize;
    let mut outlines = 0usize;
    let mut root_seen = false;
    let mut feeds = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| OpmlError::NotXml(short(&e.to_string())))?;
        match event {
            Event::DocType(doctype)
                if String::from_utf8_lossy(doctype.as_ref()).contains("<!ENTITY") =>
            {
                return Err(OpmlError::DeclaresEntities);
            }
            Event::Start(start) if !root_seen => {
                root(&start)?;
                root_seen = true;
                depth = 1;
            }
            Event::Empty(start) if !root_seen => {
                // <opml/>: nothing in it.
                root(&start)?;
                break;
            }
            Event::Start(start) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(OpmlError::TooDeep);
                }
                outline(&start, &mut outlines, &mut feeds)?;
            }
            Event::Empty(start) => outline(&start, &mut outlines, &mut feeds)?,
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            Event::Eof => {
                if !root_seen {
                    return Err(OpmlError::NotXml("it has no elements".into()));
                }
                break;
            }
            _ => {}
        }
    }
    Ok(feeds)
}

fn root(start: &BytesStart<'_>) -> Result<(), OpmlError> {
    let name = local_name(start);
    if name.eq_ignore_ascii_case("opml") {
        Ok(())
    } else {
        Err(OpmlError::NotOpml(short(&name)))
    }
}

fn outline(
    start: &BytesStart<'_>,
    outlines: &mut usize,
    feeds: &mut Vec<OpmlFeed>,
) -> Result<(), OpmlError> {
    if !local_name(start).eq_ignore_ascii_case("outline") {
        return Ok(());
    }
    *outlines += 1;
    if *outlines > MAX_OUTLINES {
        return Err(OpmlError::TooManyOutlines);
    }
    let mut xml_url = None;
    let mut title = None;
    let mut text = None;
    let mut html_url = None;
    for attr in start.attributes().with_checks(false).flatten() {
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).to_ascii_lowercase();
        let value = attr
            .normalized_value_with(
                quick_xml::XmlVersion::Implicit1_0,
                1,
                quick_xml::escape::resolve_predefined_entity,
            )
            .map(Cow::into_owned)
            .unwrap_or_else(|_| String::from_utf8_lossy(&attr.value).into_owned());
        let value = value.trim().to_owned();
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "xmlurl" => xml_url = Some(value),
            "title" => title = Some(value),
            "text" => text = Some(value),
            "htmlurl" => html_url = Some(value),
            _ => {}
        }
    }
    if let Some(xml_url) = xml_url {
        feeds.push(OpmlFeed {
            xml_url,
            title: title.or(text),
            html_url,
        });
    }
    Ok(())
}

fn local_name(start: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(start.local_name().as_ref()).into_owned()
}

fn short(text: &str) -> String {
    text.chars().take(120).collect()
}

/// An OPML 2.0 document listing `feeds`, titled `title`.
pub fn write(title: &str, feeds: &[OpmlFeed], created: DateTime<Utc>) -> String {
    let attr = |text: &str| quick_xml::escape::escape(text).into_owned();
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n");
    out.push_str(&format!(
        "  <head>\n    <title>{}</title>\n    <dateCreated>{}</dateCreated>\n  </head>\n  <body>\n",
        attr(title),
        created.to_rfc2822()
    ));
    for feed in feeds {
        let name = attr(feed.title.as_deref().unwrap_or(&feed.xml_url));
        out.push_str(&format!(
            "    <outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{}\"",
            attr(&feed.xml_url)
        ));
        if let Some(site) = &feed.html_url {
            out.push_str(&format!(" htmlUrl=\"{}\"", attr(site)));
        }
        out.push_str("/>\n");
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(feeds: &[OpmlFeed]) -> Vec<&str> {
        feeds.iter().map(|f| f.xml_url.as_str()).collect()
    }

    #[test]
    fn folders_are_flattened_and_titles_fall_back_to_text() {
        let opml = r#"<?xml version="1.0"?>
            <opml version="1.0"><head><title>Mine</title></head><body>
              <outline text="Tech">
                <outline text="A &amp; B" type="rss" xmlUrl="https://a.example/feed" htmlUrl="https://a.example/"/>
                <outline text="Deeper"><outline title="C" text="c" xmlUrl="https://c.example/rss"/></outline>
              </outline>
              <outline text="No feed here"/>
              <outline type="rss" xmlurl="https://d.example/atom"/>
            </body></opml>"#;
        let feeds = read(opml).unwrap();
        assert_eq!(
            urls(&feeds),
            [
                "https://a.example/feed",
                "https://c.example/rss",
                "https://d.example/atom"
            ]
        );
        assert_eq!(feeds[0].title.as_deref(), Some("A & B"));
        assert_eq!(feeds[0].html_url.as_deref(), Some("https://a.example/"));
        assert_eq!(feeds[1].title.as_deref(), Some("C"));
        assert_eq!(feeds[2].title, None);
    }

    #[test]
    fn what_is_written_reads_back() {
        let feeds = vec![
            OpmlFeed {
                xml_url: "https://a.example/feed?x=1&y=\"2\"".into(),
                title: Some("A <b> & \"B\"".into()),
                html_url: Some("https://a.example/".into()),
            },
            OpmlFeed {
                xml_url: "https://b.example/rss".into(),
                title: None,
                html_url: None,
            },
        ];
        let text = write("Subscriptions", &feeds, Utc::now());
        assert!(text.contains("<opml version=\"2.0\">"));
        let back = read(&text).unwrap();
        assert_eq!(back[0], feeds[0]);
        assert_eq!(back[1].xml_url, feeds[1].xml_url);
        assert_eq!(back[1].title.as_deref(), Some("https://b.example/rss"));
    }

    #[test]
    fn hostile_files_are_refused() {
        let entities =
            r#"<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body/></opml>"#;
        assert_eq!(read(entities), Err(OpmlError::DeclaresEntities));
        let deep = format!(
            "<opml><body>{}{}</body></opml>",
            "<outline text=\"x\">".repeat(40),
            "</outline>".repeat(40)
        );
        assert_eq!(read(&deep), Err(OpmlError::TooDeep));
        let many = format!(
            "<opml><body>{}</body></opml>",
            "<outline xmlUrl=\"https://a.example/\"/>".repeat(MAX_OUTLINES + 1)
        );
        assert_eq!(read(&many), Err(OpmlError::TooManyOutlines));
        assert!(matches!(
            read("just text"),
            Err(OpmlError::NotXml(_) | OpmlError::NotOpml(_))
        ));
        assert!(matches!(read(""), Err(OpmlError::NotXml(_))));
        assert!(matches!(
            read("<opml><body><outline></body>"),
            Err(OpmlError::NotXml(_))
        ));
        assert_eq!(
            read("<rss version=\"2.0\"><channel/></rss>"),
            Err(OpmlError::NotOpml("rss".into()))
        );
        assert!(
            OpmlError::NotOpml("rss".into())
                .to_string()
                .contains("export"),
            "says what to do"
        );
    }

    #[test]
    fn an_empty_opml_has_no_feeds() {
        assert_eq!(read("<opml version=\"2.0\"/>"), Ok(vec![]));
        assert_eq!(read("<opml><head/><body></body></opml>"), Ok(vec![]));
    }
}
