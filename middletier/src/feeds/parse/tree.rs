//! A forgiving XML reader: the document as a small tree of elements, built
//! the way long-lived feed readers read feeds. It never loses a whole
//! document to one flaw:
//!
//! - a bare `&` (`?a=1&b=2`, `Ben & Jerry`) is text;
//! - HTML's named entities (`&eacute;`, `&mdash;`), which XML does not
//!   define but feeds use all the time, are decoded; unknown ones stay as
//!   written;
//! - an end tag that does not match closes up to the element it names, or
//!   is ignored if it names none (`<title>a</item>` closes both);
//! - a document cut short, or broken further on, keeps what came before
//!   (but not an item cut in half).
//!
//! It is strict where it must be: a DOCTYPE that declares entities is
//! refused (no expansion, no external fetch, ever), nesting deeper than the
//! limit is refused, and elements past the item cap are skipped unread.
//! Element names are resolved against their `xmlns` declarations, so a
//! feed means the same whatever prefixes it chose.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};

use super::ParseError;

/// The namespaces feeds use, by what they mean to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ns {
    /// No namespace at all (RSS 0.91–2.0, and lax Atom).
    None,
    /// RSS 0.90 (Netscape), RSS 1.0, and Userland's RSS 2.0 namespaces.
    Rss,
    /// RDF, the root of RSS 0.90 and 1.0.
    Rdf,
    /// Atom 1.0 and 0.3.
    Atom,
    /// Dublin Core (`dc:title`, `dc:date`), elements and terms.
    Dc,
    /// `content:encoded`.
    Content,
    /// Media RSS (`media:content`, `media:title`).
    Media,
    /// Apple's podcast tags (`itunes:author`).
    Itunes,
    /// Anything else.
    Other,
}

impl Ns {
    fn of(uri: &str) -> Ns {
        match uri.trim_end_matches(['/', '#']) {
            "http://purl.org/rss/1.0"
            | "http://my.netscape.com/rdf/simple/0.9"
            | "http://channel.netscape.com/rdf/simple/0.9"
            | "http://backend.userland.com/rss2"
            | "http://backend.userland.com/rss" => Ns::Rss,
            "http://www.w3.org/1999/02/22-rdf-syntax-ns" => Ns::Rdf,
            "http://www.w3.org/2005/Atom" | "http://purl.org/atom/ns" => Ns::Atom,
            "http://purl.org/dc/elements/1.1" | "http://purl.org/dc/terms" => Ns::Dc,
            "http://purl.org/rss/1.0/modules/content" => Ns::Content,
            "http://search.yahoo.com/mrss" => Ns::Media,
            "http://www.itunes.com/dtds/podcast-1.0.dtd" => Ns::Itunes,
            _ => Ns::Other,
        }
    }
}

/// An element: its resolved name, its attributes, and what it contains.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Element {
    pub(super) ns: Ns,
    /// The local name (`title` for `dc:title`).
    pub(super) name: String,
    /// Attributes by qualified name (`href`, `xml:base`), values decoded.
    pub(super) attrs: Vec<(String, String)>,
    pub(super) children: Vec<Node>,
}

/// What an element contains, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// The value of attribute `name` (qualified, e.g. `xml:base`).
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Child elements.
    pub(super) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// Child elements called `name` in one of `namespaces`.
    pub(super) fn all<'a>(
        &'a self,
        namespaces: &'a [Ns],
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> {
        self.elements()
            .filter(move |e| e.name == name && namespaces.contains(&e.ns))
    }

    /// The first child element called `name` in one of `namespaces`.
    pub(super) fn first(&self, namespaces: &[Ns], name: &str) -> Option<&Element> {
        self.elements()
            .find(|e| e.name == name && namespaces.contains(&e.ns))
    }

    /// All the text inside, markup dropped.
    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        self.collect_text(&mut out);
        out
    }

    fn collect_text(&self, out: &mut String) {
        for node in &self.children {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Element(element) => element.collect_text(out),
            }
        }
    }

    /// What is inside, written back as HTML: for XHTML content and for
    /// descriptions whose markup was not escaped.
    pub(super) fn inner_html(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            write_html(node, &mut out);
        }
        out
    }
}

fn write_html(node: &Node, out: &mut String) {
    match node {
        Node::Text(text) => out.push_str(&quick_xml::escape::escape(text.as_str())),
        Node::Element(element) => {
            out.push('<');
            out.push_str(&element.name);
            for (key, value) in &element.attrs {
                if key == "xmlns" || key.starts_with("xmlns:") {
                    continue;
                }
                out.push(' ');
                out.push_str(key);
                out.push_str("=\"");
                out.push_str(&quick_xml::escape::escape(value.as_str()));
                out.push('"');
            }
            out.push('>');
            for child in &element.children {
                write_html(child, out);
            }
            out.push_str("</");
            out.push_str(&element.name);
            out.push('>');
        }
    }
}

/// How much of the document to read.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadLimits {
    pub(super) max_depth: usize,
    /// Items (`item`, `entry`) past this many are skipped unread.
    pub(super) max_items: usize,
}

/// An element being read, with the namespace declarations it made.
struct Open {
    element: Element,
    /// `(prefix, uri)` declared on this element; `""` is the default.
    declared: Vec<(String, String)>,
    /// The name as written, to match its end tag.
    qname: String,
}

/// Reads `xml` into a tree; the root element, however far it got.
pub(super) fn read(xml: &str, limits: ReadLimits) -> Result<Element, ParseError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let config = reader.config_mut();
    config.allow_dangling_amp = true;
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Element> = None;
    let mut items = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            // Keep what came before the flaw; refuse only a document that
            // gave us nothing.
            Err(e) if stack.is_empty() && root.is_none() => {
                return Err(ParseError::Malformed(super::short(&e.to_string())));
            }
            Err(_) => break,
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
                    return Err(ParseError::HtmlPage);
                }
            }
            Event::Start(start) => {
                if stack.len() >= limits.max_depth {
                    return Err(ParseError::TooDeep(limits.max_depth));
                }
                if root.is_some() {
                    // A second root: the document is over.
                    break;
                }
                let open = open(&start, &stack);
                if is_item(&open.element.name) {
                    items += 1;
                    if items > limits.max_items {
                        if reader.read_to_end(start.name()).is_err() {
                            break;
                        }
                        continue;
                    }
                }
                stack.push(open);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    break;
                }
                let element = open(&start, &stack).element;
                if is_item(&element.name) {
                    items += 1;
                }
                attach(&mut stack, &mut root, Node::Element(element));
            }
            Event::End(end) => {
                let name = String::from_utf8_lossy(end.name().as_ref()).into_owned();
                if let Some(at) = stack.iter().rposition(|open| open.qname == name) {
                    while stack.len() > at {
                        close(&mut stack, &mut root);
                    }
                }
            }
            Event::Text(text) => {
                let text = text.decode().unwrap_or_else(|_| {
                    Cow::Owned(String::from_utf8_lossy(text.as_ref()).into_owned())
                });
                if stack.is_empty() {
                    if root.is_none() && !text.trim().is_empty() {
                        return Err(ParseError::NotAFeed("it is not XML".into()));
                    }
                    continue;
                }
                push_text(&mut stack, &text);
            }
            Event::CData(data) => {
                if !stack.is_empty() {
                    push_text(&mut stack, &String::from_utf8_lossy(data.as_ref()));
                }
            }
            Event::GeneralRef(reference) => {
                if stack.is_empty() {
                    continue;
                }
                let name = String::from_utf8_lossy(reference.as_ref()).into_owned();
                let text = resolve_reference(&name);
                push_text(&mut stack, &text);
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    // A document cut short: close what is open, but drop an item that
    // never ended (its title or link may be cut in half).
    while let Some(open) = stack.last() {
        if is_item(&open.element.name) {
            stack.pop();
        } else {
            close(&mut stack, &mut root);
        }
    }
    root.ok_or_else(|| ParseError::NotAFeed("the document is empty".into()))
}

fn is_item(name: &str) -> bool {
    name == "item" || name == "entry"
}

/// `&name;`: a character reference, one of XML's five, one of HTML's named
/// entities, or else the reference as written.
fn resolve_reference(name: &str) -> Cow<'static, str> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number.parse().ok(),
        };
        return match code.and_then(char::from_u32) {
            Some(c) if c != '\0' => Cow::Owned(c.to_string()),
            _ => Cow::Borrowed("\u{fffd}"),
        };
    }
    if let Some(predefined) = quick_xml::escape::resolve_predefined_entity(name) {
        return Cow::Borrowed(predefined);
    }
    let written = format!("&{name};");
    match html_escape::decode_html_entities(&written) {
        Cow::Owned(decoded) => Cow::Owned(decoded),
        Cow::Borrowed(_) => Cow::Owned(written),
    }
}

fn push_text(stack: &mut [Open], text: &str) {
    let Some(top) = stack.last_mut() else {
        return;
    };
    match top.element.children.last_mut() {
        Some(Node::Text(last)) => last.push_str(text),
        _ => top.element.children.push(Node::Text(text.to_owned())),
    }
}

fn attach(stack: &mut [Open], root: &mut Option<Element>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.element.children.push(node),
        None => {
            if let Node::Element(element) = node {
                *root = Some(element);
            }
        }
    }
}

fn close(stack: &mut Vec<Open>, root: &mut Option<Element>) {
    if let Some(done) = stack.pop() {
        attach(stack, root, Node::Element(done.element));
    }
}

/// A start tag as an element: attributes decoded (a malformed one is
/// skipped, not fatal), its name resolved in the scope of `stack`.
fn open(start: &BytesStart<'_>, stack: &[Open]) -> Open {
    let qname = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    let mut declared = Vec::new();
    for attr in start.attributes().with_checks(false).flatten() {
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .normalized_value_with(
                quick_xml::XmlVersion::Implicit1_0,
                1,
                quick_xml::escape::resolve_predefined_entity,
            )
            .map(Cow::into_owned)
            .unwrap_or_else(|_| String::from_utf8_lossy(&attr.value).into_owned());
        if key == "xmlns" {
            declared.push((String::new(), value.clone()));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            declared.push((prefix.to_owned(), value.clone()));
        }
        attrs.push((key, value));
    }
    let (prefix, local) = match qname.split_once(':') {
        Some((prefix, local)) => (prefix, local),
        None => ("", qname.as_str()),
    };
    let uri = declared
        .iter()
        .rev()
        .chain(
            stack
                .iter()
                .rev()
                .flat_map(|open| open.declared.iter().rev()),
        )
        .find(|(p, _)| p == prefix)
        .map(|(_, uri)| uri.as_str());
    let ns = match uri {
        Some(uri) if !uri.is_empty() => Ns::of(uri),
        // An undeclared prefix, or none: read as no namespace.
        _ => Ns::None,
    };
    Open {
        element: Element {
            ns,
            name: local.to_owned(),
            attrs,
            children: Vec::new(),
        },
        declared,
        qname,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ReadLimits = ReadLimits {
        max_depth: 64,
        max_items: 50,
    };

    #[test]
    fn names_are_resolved_whatever_the_prefix() {
        let root = read(
            r#"<x:feed xmlns:x="http://www.w3.org/2005/Atom"><x:title>t</x:title></x:feed>"#,
            LIMITS,
        )
        .unwrap();
        assert_eq!((root.ns, root.name.as_str()), (Ns::Atom, "feed"));
        assert_eq!(root.first(&[Ns::Atom], "title").unwrap().text(), "t");
    }

    #[test]
    fn bare_ampersands_and_html_entities_are_text() {
        let root = read(
            "<t>a=1&b=2 Ben & Jerry caf&eacute; &amp; &nosuch; &#233;</t>",
            LIMITS,
        )
        .unwrap();
        assert_eq!(root.text(), "a=1&b=2 Ben & Jerry café & &nosuch; é");
    }

    #[test]
    fn mismatched_and_missing_end_tags_close_what_they_name() {
        let root = read(
            "<rss><channel><item><title>open</item><item><title>b</title></item>",
            LIMITS,
        )
        .unwrap();
        let channel = root.first(&[Ns::None], "channel").unwrap();
        let titles: Vec<String> = channel
            .all(&[Ns::None], "item")
            .map(|i| i.first(&[Ns::None], "title").unwrap().text())
            .collect();
        assert_eq!(titles, ["open", "b"]);
    }

    #[test]
    fn items_past_the_cap_are_skipped() {
        let mut xml = String::from("<rss><channel>");
        for i in 0..10 {
            xml.push_str(&format!("<item><title>{i}</title></item>"));
        }
        xml.push_str("</channel></rss>");
        let root = read(
            &xml,
            ReadLimits {
                max_items: 3,
                ..LIMITS
            },
        )
        .unwrap();
        let channel = root.first(&[Ns::None], "channel").unwrap();
        assert_eq!(channel.all(&[Ns::None], "item").count(), 3);
    }

    #[test]
    fn xhtml_is_written_back_as_html() {
        let root = read(
            r#"<c><div xmlns="http://www.w3.org/1999/xhtml"><p class="x">a &lt; <b>b</b></p></div></c>"#,
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            root.inner_html(),
            r#"<div><p class="x">a &lt; <b>b</b></p></div>"#
        );
    }
}
