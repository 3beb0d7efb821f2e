//! Parse throughput of the feed normalizer, in MB/s.
//!
//! Run: `cargo bench --bench parse`
//!
//! Parses generated RSS 2.0 and Atom documents of ~5 MiB (the default body
//! cap) and reports throughput twice: with the default limits (all of the
//! document is parsed, the first 50 items normalized and sanitized), and
//! with every item normalized (the worst case per byte).

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/feed_server.rs"]
#[allow(dead_code)]
mod feed_server;

use std::time::{Duration, Instant};

use middletier::feeds::parse::{ParseLimits, parse_feed};
use url::Url;

fn main() {
    let base = Url::parse("https://gen.example/feed.xml").unwrap();
    let rss = feed_server::generated_rss(6_000);
    let atom = feed_server::generated_atom(6_000);
    let default_limits = ParseLimits::default();
    let every_item = ParseLimits {
        max_items: usize::MAX,
        ..ParseLimits::default()
    };

    println!(
        "| document | size | items normalized | runs | MB/s (median) | ms per document (median) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, doc) in [("RSS 2.0", &rss), ("Atom 1.0", &atom)] {
        for (label, limits) in [("50 (default)", &default_limits), ("all", &every_item)] {
            // Check once that the document is what we think it is.
            let parsed =
                parse_feed(doc.as_bytes(), None, &base, limits).expect("generated feed parses");
            assert!(parsed.items.len() >= 50);

            let mut samples = Vec::new();
            let started = Instant::now();
            while samples.len() < 5
                || (started.elapsed() < Duration::from_secs(5) && samples.len() < 50)
            {
                let t = Instant::now();
                let parsed = parse_feed(doc.as_bytes(), None, &base, limits).unwrap();
                std::hint::black_box(parsed);
                samples.push(t.elapsed());
            }
            samples.sort();
            let median = samples[samples.len() / 2];
            let mb = doc.len() as f64 / 1e6;
            println!(
                "| {name} | {:.1} MB | {label} | {} | {:.0} | {:.1} |",
                mb,
                samples.len(),
                mb / median.as_secs_f64(),
                median.as_secs_f64() * 1e3
            );
        }
    }
}
