//! Feed parsing and normalization on arbitrary bytes: never panics, never
//! recurses out of the stack, keeps its output within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use middletier::feeds::parse::{ParseLimits, parse_feed};

fuzz_target!(|data: &[u8]| {
    let base = url::Url::parse("https://feeds.example/blog/feed.xml").unwrap();
    let limits = ParseLimits::default();
    // The first byte picks the HTTP charset, so declared, sniffed and
    // header encodings are all exercised.
    let (charset, body) = match data.split_first() {
        Some((0, rest)) => (Some("iso-8859-1"), rest),
        Some((1, rest)) => (Some("utf-16"), rest),
        Some((2, rest)) => (Some("shift_jis"), rest),
        _ => (None, data),
    };
    if let Ok(feed) = parse_feed(body, charset, &base, &limits) {
        assert!(feed.items.len() <= limits.max_items);
        for item in &feed.items {
            if let Some(link) = &item.link {
                assert!(
                    link.starts_with("http://") || link.starts_with("https://"),
                    "{link}"
                );
            }
            assert!(
                !item.description.contains("<script"),
                "{}",
                item.description
            );
            assert!(!item.content.contains("<script"), "{}", item.content);
            assert!(item.enclosures.len() <= middletier::feeds::parse::MAX_ENCLOSURES);
            assert!(item.categories.len() <= middletier::feeds::parse::MAX_CATEGORIES);
            assert!(item.enclosures.iter().all(|e| e.url.starts_with("http")));
        }
    }
});
