//! Normalizer tests over the fixture feeds shared with the end-to-end tests.

use common::api::rfc3339;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/",
            $name
        ))
    };
}

fn base() -> Url {
    Url::parse("https://feeds.example/blog/feed.xml").unwrap()
}

fn parse(body: &[u8]) -> Result<ParsedFeed, ParseError> {
    parse_feed(body, None, &base(), &ParseLimits::default())
}

#[test]
fn rss2_items_are_normalized() {
    let feed = parse(fixture!("rss2.xml")).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Recipe Kitchen"));
    assert_eq!(feed.items.len(), 4);
    let first = &feed.items[0];
    assert_eq!(first.title, "Circuit breakers, explained");
    assert_eq!(
        first.link.as_deref(),
        Some("https://feeds.example/posts/breakers.html")
    );
    assert_eq!(
        first.published.as_ref().map(rfc3339::format).as_deref(),
        Some("2024-01-02T09:30:00Z")
    );
    assert!(
        first.description.contains("<b>open</b>"),
        "{}",
        first.description
    );
    assert!(
        first
            .description
            .contains(r#"src="https://feeds.example/blog/img/breaker.png""#),
        "relative image URLs are made absolute: {}",
        first.description
    );
    assert!(
        first
            .description
            .contains(r#"href="https://feeds.example/blog/more.html""#)
    );
    assert!(
        first
            .description
            .contains(r#"rel="noopener noreferrer nofollow""#)
    );
    assert_eq!(feed.items[1].title, "Hostile & harmless");
}

#[test]
fn hostile_html_is_made_inert() {
    let feed = parse(fixture!("rss2.xml")).unwrap();
    let html = &feed.items[1].description;
    assert!(html.contains("Safe text"));
    for banned in [
        "<script",
        "alert(",
        "onerror",
        "javascript:",
        "<iframe",
        "<form",
        "<input",
        "style=",
    ] {
        assert!(!html.contains(banned), "{banned} survived in {html}");
    }
}

#[test]
fn rss_falls_back_to_permalink_guid_content_and_dc_date() {
    let feed = parse(fixture!("rss2.xml")).unwrap();
    let item = &feed.items[2];
    assert_eq!(
        item.link.as_deref(),
        Some("https://kitchen.example/posts/permalink")
    );
    assert!(item.description.contains("Full content"));
    assert_eq!(
        item.published.as_ref().map(rfc3339::format).as_deref(),
        Some("2023-12-31T23:59:59Z")
    );
}

#[test]
fn non_http_links_are_dropped() {
    let feed = parse(fixture!("rss2.xml")).unwrap();
    assert_eq!(feed.items[3].link, None);
}

#[test]
fn rss1_rdf_is_read() {
    let feed = parse(fixture!("rss1.rdf")).unwrap();
    assert_eq!(feed.title.as_deref(), Some("RDF Site Summary"));
    let titles: Vec<_> = feed.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["First RDF item", "Second RDF item"]);
    assert_eq!(
        feed.items[0]
            .published
            .as_ref()
            .map(rfc3339::format)
            .as_deref(),
        Some("2024-02-03T02:05:06Z")
    );
    assert_eq!(
        feed.items[1].link.as_deref(),
        Some("https://feeds.example/blog/2")
    );
}

#[test]
fn rss091_with_a_public_dtd_is_read_without_fetching_it() {
    let feed = parse(fixture!("rss091.xml")).unwrap();
    assert_eq!(feed.items[0].title, "Ninety-one");
}

#[test]
fn atom_entries_are_normalized() {
    let feed = parse(fixture!("atom.xml")).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Atom Log"));
    let [html, text, xhtml] = &feed.items[..] else {
        panic!("expected 3 entries, got {:?}", feed.items)
    };
    assert_eq!(
        html.link.as_deref(),
        Some("https://feeds.example/blog/entries/1")
    );
    assert_eq!(
        html.published.as_ref().map(rfc3339::format).as_deref(),
        Some("2024-03-01T15:00:00Z")
    );
    assert!(
        html.description
            .contains(r#"href="https://feeds.example/about""#),
        "{}",
        html.description
    );
    assert_eq!(
        text.published.as_ref().map(rfc3339::format).as_deref(),
        Some("2024-02-28T08:00:00Z"),
        "falls back to <updated>"
    );
    assert_eq!(text.description, "Less than &lt;b&gt; is not bold");
    assert_eq!(xhtml.title, "XHTML content");
    assert!(
        xhtml.description.contains("<em>XHTML</em>"),
        "{}",
        xhtml.description
    );
    assert!(!xhtml.description.contains("script"));
}

#[test]
fn missing_fields_get_sensible_fallbacks() {
    let feed = parse(fixture!("missing-fields.xml")).unwrap();
    assert_eq!(feed.title, None);
    let untitled = &feed.items[0];
    assert!(
        untitled.title.starts_with("An item with no title"),
        "{}",
        untitled.title
    );
    assert!(untitled.title.ends_with('…') && untitled.title.chars().count() <= 81);
    assert_eq!(untitled.link, None);
    assert_eq!(untitled.published, None);
    assert_eq!(feed.items[1].description, "");
    assert_eq!(
        feed.items[2].published, None,
        "an unreadable date is dropped, not guessed"
    );
}

#[test]
fn declared_non_utf8_encodings_are_decoded() {
    let feed = parse(fixture!("latin1.xml")).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Café Crème"));
    assert_eq!(feed.items[0].title, "Déjà vu à Paris");
    assert!(feed.items[0].description.contains("señor"));
}

#[test]
fn a_byte_order_mark_selects_utf16() {
    let feed = parse(fixture!("utf16.xml")).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Ünïcödé sixteen"));
    assert_eq!(feed.items[0].title, "日本語のタイトル");
}

#[test]
fn the_http_charset_applies_when_the_document_is_silent() {
    let body = "<rss version=\"2.0\"><channel><title>Caf\u{e9}</title></channel></rss>";
    let (latin1, _, _) = encoding_rs::WINDOWS_1252.encode(body);
    let feed = parse_feed(
        &latin1,
        Some("iso-8859-1"),
        &base(),
        &ParseLimits::default(),
    )
    .unwrap();
    assert_eq!(feed.title.as_deref(), Some("Café"));
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let mut body =
        b"<rss version=\"2.0\"><channel><title>ok \xff\xfe bytes</title></channel></rss>".to_vec();
    body.extend_from_slice(b"\n");
    let feed = parse(&body).unwrap();
    assert_eq!(feed.title.as_deref(), Some("ok \u{fffd}\u{fffd} bytes"));
}

#[test]
fn html_pages_are_not_feeds() {
    let err = parse(fixture!("page.html")).unwrap_err();
    assert!(matches!(err, ParseError::HtmlPage), "{err}");
    assert!(
        err.to_string().starts_with("not an RSS, Atom or JSON feed"),
        "{err}"
    );
    let err = parse(b"<html><body>hi</body></html>").unwrap_err();
    assert!(matches!(err, ParseError::HtmlPage), "{err}");
}

#[test]
fn other_documents_are_not_feeds() {
    for body in [
        &b""[..],
        b"   ",
        b"{\"json\": true}",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        b"<note><to>x</to></note>",
    ] {
        let err = parse(body).unwrap_err();
        assert!(
            matches!(err, ParseError::NotAFeed(_)),
            "{:?} gave {err}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn mismatched_tags_keep_what_is_readable() {
    let feed = parse(fixture!("malformed.xml")).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Broken"));
    assert_eq!(feed.items[0].title, "Unclosed");
}

#[test]
fn xml_that_cannot_be_read_at_all_is_reported() {
    let err = parse(fixture!("unreadable.xml")).unwrap_err();
    assert!(matches!(err, ParseError::Malformed(_)), "{err}");
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[test]
fn rss_without_a_channel_is_reported() {
    let err = parse(b"<rss version=\"2.0\"></rss>").unwrap_err();
    assert!(err.to_string().contains("<channel>"), "{err}");
}

#[test]
fn external_entities_are_refused() {
    let err = parse(fixture!("xxe.xml")).unwrap_err();
    assert_eq!(err, ParseError::DeclaresEntities);
}

#[test]
fn billion_laughs_is_refused_at_once() {
    let err = parse(fixture!("billion-laughs.xml")).unwrap_err();
    assert_eq!(err, ParseError::DeclaresEntities);
}

#[test]
fn undeclared_entities_are_left_unexpanded() {
    // Without a DTD, unknown entities cannot expand to anything.
    let body = b"<rss version=\"2.0\"><channel><title>a &unknown; b</title></channel></rss>";
    if let Ok(feed) = parse(body) {
        assert!(!feed.title.unwrap_or_default().contains("root:"));
    }
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 100_000;
    let mut body = String::from("<rss version=\"2.0\"><channel><title>deep</title><item>");
    body.push_str(&"<x:a xmlns:x=\"urn:x\">".repeat(depth));
    body.push_str(&"</x:a>".repeat(depth));
    body.push_str("</item></channel></rss>");
    let err = parse(body.as_bytes()).unwrap_err();
    assert_eq!(err, ParseError::TooDeep(64));
}

#[test]
fn moderate_nesting_is_fine() {
    let mut body =
        String::from("<rss version=\"2.0\"><channel><title>t</title><item><title>i</title>");
    body.push_str(&"<x:a xmlns:x=\"urn:x\">".repeat(20));
    body.push_str(&"</x:a>".repeat(20));
    body.push_str("</item></channel></rss>");
    assert_eq!(parse(body.as_bytes()).unwrap().items.len(), 1);
}

#[test]
fn items_are_capped() {
    let mut body = String::from("<rss version=\"2.0\"><channel><title>many</title>");
    for i in 0..10_000 {
        body.push_str(&format!("<item><title>item {i}</title></item>"));
    }
    body.push_str("</channel></rss>");
    let limits = ParseLimits {
        max_items: 50,
        ..ParseLimits::default()
    };
    let feed = parse_feed(body.as_bytes(), None, &base(), &limits).unwrap();
    assert_eq!(feed.items.len(), 50);
    assert_eq!(feed.items[0].title, "item 0");
}

#[test]
fn every_item_text_field_is_capped_where_it_is_parsed() {
    // The security review's feed: a 200,000-character title and a
    // 100,000-character guid, and a link far past any real one.
    let body = format!(
        "<rss version=\"2.0\"><channel><title>{}</title><item><title>{}</title><guid>{}</guid><link>https://a.example/{}</link></item></channel></rss>",
        "T".repeat(5000),
        "t".repeat(200_000),
        "g".repeat(100_000),
        "l".repeat(5000),
    );
    let feed = parse(body.as_bytes()).unwrap();
    assert!(feed.title.as_ref().unwrap().len() <= MAX_TITLE_BYTES);
    let item = &feed.items[0];
    assert!(item.title.len() <= MAX_TITLE_BYTES, "{}", item.title.len());
    assert!(item.title.ends_with('…'));
    let guid = item.guid.as_ref().unwrap();
    assert!(guid.len() <= MAX_LINK_BYTES, "{}", guid.len());
    assert_eq!(item.link, None, "a link past 2 KiB is no link");
}

#[test]
fn long_guids_still_tell_items_apart() {
    let item = |guid: &str| format!("<item><title>x</title><guid>{guid}</guid></item>");
    let body = format!(
        "<rss version=\"2.0\"><channel><title>t</title>{}{}</channel></rss>",
        item(&format!("{}a", "g".repeat(5000))),
        item(&format!("{}b", "g".repeat(5000))),
    );
    let feed = parse(body.as_bytes()).unwrap();
    assert_ne!(feed.items[0].guid, feed.items[1].guid);
}

#[test]
fn json_feed_text_is_cut_before_it_is_escaped() {
    // Each `<` becomes `&lt;`: 100 KB of them must not become 400 KB.
    let body = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "big",
        "items": [
            {"id": "1", "content_text": "<".repeat(100_000)},
            {"id": "2", "summary": "<".repeat(100_000)},
        ],
    })
    .to_string();
    let limits = ParseLimits::default();
    let feed = parse(body.as_bytes()).unwrap();
    for item in &feed.items {
        assert!(
            item.description.len() <= 4 * limits.max_description_bytes,
            "{}",
            item.description.len()
        );
        assert!(item.description.len() < 100_000);
    }
}

#[test]
fn an_opaque_guid_is_never_taken_as_the_link() {
    let body = r#"<rss version="2.0"><channel><title>t</title>
        <item><title>opaque</title><guid>g2</guid></item>
        <item><title>permalink</title><guid>https://blog.example/posts/2</guid></item>
        </channel></rss>"#;
    let feed = parse(body.as_bytes()).unwrap();
    assert_eq!(feed.items[0].link, None);
    assert_eq!(
        feed.items[1].link.as_deref(),
        Some("https://blog.example/posts/2")
    );
}

#[test]
fn long_descriptions_are_truncated_to_well_formed_html() {
    let long = format!("<p><b>{}</b></p>", "é".repeat(20_000));
    let body = format!(
        "<rss version=\"2.0\"><channel><title>t</title><item><description><![CDATA[{long}]]></description></item></channel></rss>"
    );
    let limits = ParseLimits::default();
    let feed = parse_feed(body.as_bytes(), None, &base(), &limits).unwrap();
    let description = &feed.items[0].description;
    assert!(
        description.len() <= limits.max_description_bytes + 64,
        "{}",
        description.len()
    );
    assert!(
        description.ends_with("</b></p>"),
        "tags are closed: {}",
        &description[description.len() - 20..]
    );
}

#[test]
fn the_declared_encoding_is_read_from_the_declaration_only() {
    assert_eq!(
        declared_encoding(b"<?xml version=\"1.0\" encoding='ISO-8859-1'?><rss/>"),
        Some(encoding_rs::WINDOWS_1252)
    );
    assert_eq!(
        declared_encoding(b"  <?xml version=\"1.0\"?><rss encoding=\"koi8-r\"/>"),
        None
    );
    assert_eq!(declared_encoding(b"<rss/>"), None);
}

/// Every quirk document cut off at every few bytes, and with bytes
/// overwritten, still yields a feed or a typed error: leniency must never
/// become a panic. (The fuzz target in `fuzz/` explores further; this
/// keeps the common cases in every test run.)
#[test]
fn damaged_quirk_documents_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/quirks");
    let mut documents = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        documents += 1;
        for cut in (0..body.len()).step_by(13) {
            let _ = parse(&body[..cut]);
        }
        for (i, poison) in [b'<', b'&', b'>', b'"', 0xff].into_iter().enumerate() {
            let mut damaged = body.clone();
            for at in (i * 7..damaged.len()).step_by(61) {
                damaged[at] = poison;
            }
            let _ = parse(&damaged);
        }
    }
    assert!(
        documents >= 40,
        "the corpus went missing from {}",
        dir.display()
    );
}

#[test]
fn rss_keeps_content_author_enclosures_and_categories() {
    let feed = parse(fixture!("quirks/rss-podcast.xml")).unwrap();
    let item = &feed.items[0];
    assert_eq!(item.description, "Short notes.");
    assert_eq!(
        item.content,
        "<p>Long notes with <a href=\"https://feeds.example/pod/12/links\" rel=\"noopener noreferrer nofollow\">links</a>.</p>"
    );
    assert_eq!(item.author.as_deref(), Some("Pat Podcaster"));
    assert_eq!(
        item.enclosures,
        [Enclosure {
            url: "https://quirks.example/pod/12.mp3".into(),
            media_type: Some("audio/mpeg".into()),
            length: Some(12_345_678),
        }]
    );
    assert_eq!(item.categories, ["Technology"]);
}

#[test]
fn content_alone_gives_the_summary_and_is_stored_once() {
    let body = br#"<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>t</title>
        <item><title>a</title><content:encoded><![CDATA[<p>Only content</p>]]></content:encoded></item></channel></rss>"#;
    let item = &parse(body).unwrap().items[0];
    assert_eq!(item.description, "<p>Only content</p>");
    assert_eq!(item.content, "", "the same text is not kept twice");
}

#[test]
fn a_long_article_keeps_its_content_but_the_summary_stays_short() {
    let long = format!("<p>{}</p>", "word ".repeat(20_000));
    let body = format!(
        r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><title>a</title><content type="html"><![CDATA[{long}]]></content></entry></feed>"#
    );
    let limits = ParseLimits::default();
    let item = &parse_feed(body.as_bytes(), None, &base(), &limits)
        .unwrap()
        .items[0];
    assert!(item.description.len() <= limits.max_description_bytes + 16);
    assert!(item.content.len() > 90_000, "{}", item.content.len());
    let small = ParseLimits {
        max_content_bytes: 1000,
        ..ParseLimits::default()
    };
    let item = &parse_feed(body.as_bytes(), None, &base(), &small)
        .unwrap()
        .items[0];
    assert!(item.content.len() <= 1016, "capped: {}", item.content.len());
}

#[test]
fn atom_links_are_only_alternate_ones_and_enclosures_are_kept_apart() {
    let feed = parse(fixture!("quirks/atom-link-rels.xml")).unwrap();
    let links: Vec<Option<&str>> = feed.items.iter().map(|i| i.link.as_deref()).collect();
    assert_eq!(
        links,
        [
            Some("https://quirks.example/1"),
            None,
            Some("https://quirks.example/3")
        ]
    );
    assert_eq!(
        feed.items[1].enclosures[0].url,
        "https://quirks.example/2.mp3"
    );
    assert_eq!(feed.items[1].enclosures[0].kind(), Some("audio"));
}

#[test]
fn titles_from_base64_media_and_escaped_markup() {
    let feed = parse(fixture!("quirks/atom03-base64-title.xml")).unwrap();
    assert_eq!(feed.items[0].title, "Hello from base64");
    let feed = parse(fixture!("quirks/rss-media-title.xml")).unwrap();
    assert_eq!(feed.items[0].title, "A video with only a media title");
    assert_eq!(
        feed.items[0].enclosures[0].media_type.as_deref(),
        Some("video/mp4")
    );
    let feed = parse(fixture!("quirks/rss-escaped-markup-title.xml")).unwrap();
    assert_eq!(feed.items[0].title, "History of the <blink> tag");
    assert_eq!(feed.items[1].title, "Bold news");
    let feed = parse(fixture!("quirks/atom-text-title-markup.xml")).unwrap();
    assert_eq!(feed.items[0].title, "History of the <blink> tag");
}

#[test]
fn json_feed_keeps_content_authors_attachments_and_tags() {
    let body = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "j", "authors": [{"name": "Feed Author"}],
        "items": [{"id": "1", "summary": "Sum", "content_html": "<p>Full</p>", "tags": ["a", "b", "a"],
        "attachments": [{"url": "https://j.example/1.m4a", "mime_type": "audio/x-m4a", "size_in_bytes": 99},
                        {"url": "javascript:alert(1)", "mime_type": "audio/mpeg"}]}]}"#;
    let item = &parse(body).unwrap().items[0];
    assert_eq!(item.description, "Sum");
    assert_eq!(item.content, "<p>Full</p>");
    assert_eq!(item.author.as_deref(), Some("Feed Author"));
    assert_eq!(item.categories, ["a", "b"]);
    assert_eq!(item.enclosures.len(), 1, "only http(s) files");
    assert_eq!(item.enclosures[0].length, Some(99));
}

#[test]
fn enclosures_and_categories_are_capped() {
    let mut body =
        String::from(r#"<rss version="2.0"><channel><title>t</title><item><title>a</title>"#);
    for i in 0..40 {
        body.push_str(&format!(
            r#"<enclosure url="https://e.example/{i}.mp3" type="audio/mpeg"/><category>{}</category>"#,
            format_args!("c{i}{}", "x".repeat(400))
        ));
    }
    body.push_str("</item></channel></rss>");
    let item = &parse(body.as_bytes()).unwrap().items[0];
    assert_eq!(item.enclosures.len(), MAX_ENCLOSURES);
    assert_eq!(item.categories.len(), MAX_CATEGORIES);
    assert!(item.categories.iter().all(|c| c.len() <= MAX_NAME_BYTES));
}
