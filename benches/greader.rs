//! Sync (the Google Reader API): what a sync app's first sync, an
//! incremental sync and a bulk edit cost.
//!
//! Run: `cargo bench --bench greader`
//!
//! Real processes (registry, one middletier on the file store, edge), one
//! user with 100 feeds × 200 articles (`/articles/200` of the feed server:
//! a summary and ~6 KB of content each), driven over raw HTTP as
//! NetNewsWire syncs:
//!
//! 1. **first sync**: `tag/list`, `subscription/list`, `unread-count`, the
//!    reading list's unread ids and the starred ids (10,000 a page,
//!    following continuations), then every item's contents 150 ids a call;
//! 2. **incremental sync**, after 50 new items arrived: the same lists
//!    (all unread ids, to reconcile), the ids crawled since the last sync
//!    (`ot`), and those 50 items' contents;
//! 3. **`edit-tag` with 1,000 ids** (long form), marking read then unread,
//!    20 times: one middletier call and one store commit each.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::greader::{GReader, READ, READING_LIST, STARRED, long_form};
use support::stack::Stack;

const FEEDS: usize = 100;
const ITEMS: usize = 200;
/// Items per `stream/items/contents` call, as NetNewsWire asks.
const CONTENTS_BATCH: usize = 150;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::for_bench_on_file_store(dir.path(), &[]).await;
    let started = Instant::now();
    stack
        .subscribe_each((0..FEEDS).map(|i| format!("/articles/{ITEMS}?feed={i}")))
        .await;
    println!(
        "Subscribed {FEEDS} feeds × {ITEMS} articles in {:.1} s.\n",
        started.elapsed().as_secs_f64()
    );
    // `--auth none`: the token names nobody; every call is the default user's.
    let reader = GReader::with_token(&stack.edge.url(""), "default~bench");

    println!("| sync | items | requests | wall time | bytes received |");
    println!("|---|---|---|---|---|");
    // `ot` is in whole seconds (NetNewsWire sends the `Date` of its last
    // sync): a second apart, so the incremental sync asks for the new
    // items only.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = chrono::Utc::now().timestamp().to_string();
    let first = sync(&reader, None).await;
    assert_eq!(first.items, FEEDS * ITEMS, "every item fetched");
    first.row("first sync, 100 feeds × 200 items");

    // 50 new items arrive: a new feed of 50.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack
        .subscribe_each(["/articles/50?feed=new".to_owned()])
        .await;
    let incremental = sync(&reader, Some(&since)).await;
    assert_eq!(incremental.items, 50, "only the new items fetched");
    incremental.row("incremental sync, 50 new items");
    println!();

    edit_tag(&reader).await;
}

/// What one sync did.
struct Sync {
    items: usize,
    requests: usize,
    bytes: usize,
    took: Duration,
}

impl Sync {
    fn row(&self, label: &str) {
        println!(
            "| {label} | {} | {} | {:.2} s | {:.1} MB |",
            self.items,
            self.requests,
            self.took.as_secs_f64(),
            self.bytes as f64 / 1e6
        );
    }
}

/// A sync as NetNewsWire does it; with `since` (seconds), only the items
/// crawled since then are fetched whole.
async fn sync(reader: &GReader, since: Option<&str>) -> Sync {
    let started = Instant::now();
    let (mut requests, mut bytes) = (0, 0);
    for path in ["tag/list", "subscription/list", "unread-count"] {
        let answer = reader.get(path, &[]).await;
        assert!(answer.status.is_success(), "{path}: {}", answer.text);
        (requests, bytes) = (requests + 1, bytes + answer.text.len());
    }
    let (unread, pages, received) = reader
        .id_pages(&[("s", READING_LIST), ("xt", READ)], 10_000)
        .await;
    let (_, starred_pages, starred_bytes) = reader.id_pages(&[("s", STARRED)], 10_000).await;
    requests += pages + starred_pages;
    bytes += received + starred_bytes;
    let wanted = match since {
        None => unread,
        Some(since) => {
            let query = [("s", READING_LIST), ("ot", since)];
            let (new, pages, received) = reader.id_pages(&query, 10_000).await;
            (requests, bytes) = (requests + pages, bytes + received);
            new
        }
    };
    let mut items = 0;
    for batch in wanted.chunks(CONTENTS_BATCH) {
        let mut form: Vec<(&str, &str)> = batch.iter().map(|id| ("i", id.as_str())).collect();
        form.push(("T", "x"));
        let answer = reader.post("stream/items/contents", &form).await;
        assert!(answer.status.is_success(), "{}", answer.text);
        items += answer.json()["items"].as_array().unwrap().len();
        (requests, bytes) = (requests + 1, bytes + answer.text.len());
    }
    Sync {
        items,
        requests,
        bytes,
        took: started.elapsed(),
    }
}

/// `edit-tag` with 1,000 long ids, read then unread, 20 times each.
async fn edit_tag(reader: &GReader) {
    let (ids, _) = reader.all_ids(&[("s", READING_LIST)], 10_000).await;
    let long: Vec<String> = ids[..1000].iter().map(|id| long_form(id)).collect();
    let mut took = Vec::new();
    for round in 0..40 {
        let (add, remove): (&[&str], &[&str]) = if round % 2 == 0 {
            (&[READ], &[])
        } else {
            (&[], &[READ])
        };
        let started = Instant::now();
        let answer = reader.edit_tag(&long, add, remove).await;
        took.push(started.elapsed());
        assert!(answer.status.is_success(), "{}", answer.text);
    }
    took.sort();
    let ms = |q: f64| took[((took.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!("| `edit-tag`, 1,000 ids per call | calls | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    println!(
        "| read / unread in turn, file store | {} | {:.1} | {:.1} |",
        took.len(),
        ms(0.5),
        ms(0.99)
    );
    println!();
}
