//! The feed parser over a corpus of real-world quirks
//! (`tests/fixtures/quirks/`, one quirk per document, after what
//! feedparser, feed-rs and Miniflux are known to handle): each quirk reads
//! as a reader expects, and on the whole corpus we agree with Python's
//! feedparser, the most widely used lenient parser, on at least 95 % of
//! documents (feed title and the set of (item title, item link) pairs; the
//! rules of the comparison are in `interop/python/feed_agreement.py`).

use std::collections::BTreeMap;
use std::process::Command;

use middletier::feeds::parse::{ParseLimits, ParsedFeed, parse_feed};
use serde_json::{Value, json};
use url::Url;

use crate::support::peers::{interop_python, repo_file};

const BASE: &str = "https://quirks.example/feed";

fn corpus() -> BTreeMap<String, Vec<u8>> {
    let dir = repo_file("tests/fixtures/quirks");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

fn parse(name: &str) -> ParsedFeed {
    let body = std::fs::read(repo_file(&format!("tests/fixtures/quirks/{name}"))).unwrap();
    parse_feed(
        &body,
        None,
        &Url::parse(BASE).unwrap(),
        &ParseLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `(title, link)` of each item.
fn pairs(feed: &ParsedFeed) -> Vec<(&str, Option<&str>)> {
    feed.items
        .iter()
        .map(|i| (i.title.as_str(), i.link.as_deref()))
        .collect()
}

#[test]
fn whole_feeds_are_no_longer_refused_over_one_odd_part() {
    // Atom `type` attributes outside the three the spec names.
    let feed = parse("atom-octet-stream.xml");
    assert_eq!(feed.items.len(), 2);
    assert_eq!(feed.items[0].description, "", "base64 content is not shown");
    let feed = parse("atom-xhtml-xml-type.xml");
    assert_eq!(feed.title.as_deref(), Some("Media Typed"));
    assert_eq!(feed.items[1].title, "HTML-typed title");
    assert!(feed.items[0].description.contains("<p>Hi</p>"));
    // RSS 0.90, and RDF with every element prefixed.
    assert_eq!(parse("rss090-netscape.rdf").items.len(), 2);
    let prefixed = parse("rss10-prefixed.rdf");
    assert_eq!(prefixed.title.as_deref(), Some("Prefixed Everything"));
    assert_eq!(
        prefixed.items[0]
            .published
            .as_ref()
            .map(common::api::rfc3339::format)
            .as_deref(),
        Some("2024-03-01T10:00:00Z")
    );
    // A bare ampersand, HTML entities, a document cut short.
    let amps = parse("rss-unescaped-ampersand.xml");
    assert_eq!(
        pairs(&amps)[0],
        ("Query links", Some("https://amp.example/?a=1&b=2"))
    );
    assert_eq!(
        parse("rss-html-entities.xml").title.as_deref(),
        Some("Café Society")
    );
    assert_eq!(
        parse("rss-truncated.xml").items.len(),
        2,
        "whole items, not the half one"
    );
}

#[test]
fn titles_and_links_fall_back_as_mature_readers_do() {
    assert_eq!(
        parse("dc-title-channel.xml").title.as_deref(),
        Some("Dublin Core Channel")
    );
    assert_eq!(
        parse("dc-title-item.xml").items[0].title,
        "Titled the Dublin way"
    );
    assert_eq!(
        pairs(&parse("atom-id-only.xml")),
        [
            ("Linked by id", Some("https://ids.example/posts/1")),
            ("Also by id", Some("https://ids.example/posts/2")),
        ]
    );
    assert_eq!(
        parse("atom-urn-id.xml").items[0].link,
        None,
        "a URN is not a link"
    );
    assert_eq!(
        pairs(&parse("rss-guid-permalink.xml")),
        [
            ("Permalink guid", Some("https://guid.example/p/1")),
            ("Explicit permalink", Some("https://guid.example/p/2")),
            ("Not a permalink", None),
        ]
    );
    assert_eq!(
        parse("atom-link-order.xml").items[0].link.as_deref(),
        Some("https://lo.example/1"),
        "the alternate link, not the first"
    );
    assert_eq!(
        parse("atom-xml-base.xml").items[1].link.as_deref(),
        Some("https://other.example/x")
    );
    let untitled = parse("atom-entry-no-title.xml");
    assert_eq!(
        untitled.items[0].title, "Just a status update",
        "an excerpt stands in"
    );
}

#[test]
fn json_feed_one_and_eleven_are_read() {
    let one = parse("jsonfeed-1.0.json");
    assert_eq!(one.title.as_deref(), Some("JSON Feed One"));
    assert_eq!(
        pairs(&one),
        [
            ("First JSON item", Some("https://jf1.example/1")),
            (
                "A micro post without a title",
                Some("https://jf1.example/2")
            ),
            ("Linked elsewhere", Some("https://elsewhere.example/x")),
        ]
    );
    assert_eq!(
        one.items[0]
            .published
            .as_ref()
            .map(common::api::rfc3339::format)
            .as_deref(),
        Some("2024-01-01T10:00:00Z")
    );
    assert!(one.items[0].description.contains("<p>Hello</p>"));
    let eleven = parse("jsonfeed-1.1.json");
    assert_eq!(
        eleven.items[0]
            .published
            .as_ref()
            .map(common::api::rfc3339::format)
            .as_deref(),
        Some("2024-01-31T22:00:00Z")
    );
    assert_eq!(parse("jsonfeed-no-title.json").title, None);
}

#[test]
fn our_parser_agrees_with_feedparser_on_at_least_95_percent_of_the_corpus() {
    let base = Url::parse(BASE).unwrap();
    let ours: BTreeMap<String, Value> = corpus()
        .into_iter()
        .map(|(name, body)| {
            let parsed = match parse_feed(&body, None, &base, &ParseLimits::default()) {
                Ok(feed) => json!({
                    "title": feed.title,
                    "items": feed.items.iter().map(|i| json!([i.title, i.link])).collect::<Vec<_>>(),
                }),
                Err(e) => json!({"title": null, "items": [], "error": e.to_string()}),
            };
            (name, parsed)
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&ours).unwrap()).unwrap();
    let output = Command::new(interop_python())
        .arg(repo_file("interop/python/feed_agreement.py"))
        .arg(repo_file("tests/fixtures/quirks"))
        .arg(BASE)
        .arg(file.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    let last = report.lines().last().unwrap_or_default();
    let (agreed, total) = last
        .strip_prefix("agreement: ")
        .and_then(|r| r.split_once('/'))
        .map(|(a, t)| (a.parse::<usize>().unwrap(), t.parse::<usize>().unwrap()))
        .unwrap_or_else(|| panic!("no agreement line in {report}"));
    assert!(total >= 40, "a varied corpus: {total} documents");
    assert!(
        agreed * 100 >= total * 95,
        "agreement {agreed}/{total}:\n{report}"
    );
}
