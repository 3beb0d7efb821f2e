//! Reading (v3): what the article page, the river, the media proxy and
//! items' full contents cost.
//!
//! Run: `cargo bench --bench reading`
//!
//! Real processes (registry, one middletier on the file store, edge), one
//! user with 100 feeds × 200 long articles (`/articles/200` of the feed
//! server: a summary and ~6 KB of content each):
//!
//! 1. the article page's latency, sequential: the HTML page through the
//!    edge, its JSON, and the middletier's one call;
//! 2. the river's first page (50 items across all 100 feeds), 8 concurrent
//!    clients: the edge's JSON and page, and the middletier direct;
//! 3. the media proxy, 8 concurrent clients on one image: through the
//!    edge (signature, `RSSMedia`, the middletier's guarded fetch and
//!    checks) against the same image straight from the feed server;
//! 4. the file store's size per 10,000 items, with their content and (a
//!    second middletier, `--feed-max-content-bytes 0`) without.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use support::load::closed_loop;
use support::stack::Stack;
use support::web::{get_json, get_text};

const FEEDS: usize = 100;
const ITEMS: usize = 200;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with-content");
    let stack = start(&with, &[]).await;
    let started = Instant::now();
    subscribe(&stack, FEEDS).await;
    let listing = get_json(stack.edge.url("/api/subscriptions?limit=0")).await;
    let stored: u64 = listing["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["unread"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, (FEEDS * ITEMS) as u64, "every article stored");
    println!(
        "Subscribed {FEEDS} feeds × {ITEMS} articles in {:.1} s.\n",
        started.elapsed().as_secs_f64()
    );

    article_latency(&stack).await;
    river(&stack).await;
    media(&stack).await;

    // Store size: this store holds FEEDS × ITEMS items (and one fixture's).
    let items = FEEDS * ITEMS;
    let with_bytes = size_of(&with);
    drop(stack);
    let without = dir.path().join("without-content");
    let bare = start(&without, &["--feed-max-content-bytes", "0"]).await;
    subscribe(&bare, FEEDS / 2).await;
    let without_bytes = size_of(&without);
    drop(bare);
    println!("### The file store on disk, per 10,000 items\n");
    println!("| items stored | bytes on disk | per 10,000 items |");
    println!("|---|---|---|");
    for (label, bytes, n) in [
        ("with content (~6 KB of HTML each)", with_bytes, items),
        ("summaries only", without_bytes, items / 2),
    ] {
        println!(
            "| {label}: {n} | {:.1} MB | {:.1} MB |",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 * 10_000.0 / n as f64
        );
    }
    println!();
}

async fn start(data: &Path, extra: &[&str]) -> Stack {
    Stack::for_bench_on_file_store(data, extra).await
}

async fn subscribe(stack: &Stack, feeds: usize) {
    stack
        .subscribe_each((0..feeds).map(|i| format!("/articles/{ITEMS}?feed={i}")))
        .await;
}

/// A table row per `(label, url)`: 8 concurrent clients, 250 requests each.
async fn throughput_rows(http: &reqwest::Client, paths: &[(&str, String)]) {
    println!("| path | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (label, url) in paths {
        let run = closed_loop(http, url, 8, 250).await;
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} |",
            run.per_second,
            run.ms(0.50),
            run.ms(0.99)
        );
    }
    println!();
}

/// The bytes of every file under `dir`.
fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                size_of(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

async fn article_latency(stack: &Stack) {
    let river = get_json(stack.edge.url("/api/river?limit=1")).await;
    let id = river["items"][0]["id"].as_str().unwrap().to_owned();
    let http = reqwest::Client::builder().gzip(false).build().unwrap();
    // Opened once: read from now on, so every run below is the same work.
    http.get(stack.edge.url(&format!("/items/{id}")))
        .send()
        .await
        .unwrap();
    println!("### The article page, one article of ~6 KB, 1,000 sequential requests each\n");
    println!("| path | p50 ms | p99 ms | mean ms |");
    println!("|---|---|---|---|");
    let paths = [
        (
            "edge `GET /items/{id}` (HTML)",
            stack.edge.url(&format!("/items/{id}")),
        ),
        (
            "edge `GET /api/items/{id}` (JSON)",
            stack.edge.url(&format!("/api/items/{id}")),
        ),
        (
            "middletier `GET .../items/{id}`",
            stack.middletiers[0].url(&format!("/middletier/rss/user/default/items/{id}")),
        ),
    ];
    for (label, url) in paths {
        let run = closed_loop(&http, &url, 1, 1_000).await;
        let mean = run.samples.iter().map(|d| d.as_secs_f64()).sum::<f64>()
            / run.samples.len() as f64
            * 1e3;
        println!(
            "| {label} | {:.2} | {:.2} | {mean:.2} |",
            run.ms(0.50),
            run.ms(0.99)
        );
    }
    println!();
}

async fn river(stack: &Stack) {
    let http = reqwest::Client::builder().gzip(false).build().unwrap();
    let first = get_json(stack.edge.url("/api/river")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 50);
    println!(
        "### The river's first page (50 of {} items), 8 concurrent clients, 2,000 requests each way\n",
        FEEDS * ITEMS
    );
    let paths = [
        (
            "middletier `GET .../river`",
            stack.middletiers[0].url("/middletier/rss/user/default/river"),
        ),
        ("edge `GET /api/river`", stack.edge.url("/api/river")),
        ("edge `GET /river` (HTML)", stack.edge.url("/river")),
    ];
    throughput_rows(&http, &paths).await;
}

async fn media(stack: &Stack) {
    stack
        .subscribe_each(["/fixtures/article.xml".to_owned()])
        .await;
    let http = reqwest::Client::builder().gzip(false).build().unwrap();
    let river = get_json(stack.edge.url("/api/river?limit=200")).await;
    let id = river["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "A podcast with pictures")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = get_text(stack.edge.url(&format!("/items/{id}"))).await;
    let start = page.find("src=\"/media/").unwrap() + 5;
    let src = &page[start..start + page[start..].find('"').unwrap()];
    let bytes = std::fs::metadata("tests/fixtures/photo.png").map_or(0, |m| m.len());
    println!(
        "### The media proxy, one {bytes}-byte PNG, 8 concurrent clients, 2,000 requests each way\n"
    );
    let paths = [
        (
            "the feed server, direct",
            stack.feeds.url("/fixtures/photo.png"),
        ),
        ("edge `GET /media/...`", stack.edge.url(src)),
    ];
    throughput_rows(&http, &paths).await;
}
