//! The background refresh at scale, and what the stored reader costs.
//!
//! Run: `cargo bench --bench refresh`
//!
//! A local feed farm (20 listeners on 127.0.0.1, so 20 "hosts" for the
//! per-host limit) serves 10,000 distinct feeds. Each answers with an ETag,
//! and 304 when the request's `If-None-Match` matches it.
//!
//! 1. **Scheduler throughput**, in-process, on the `file` store (every
//!    write durable before it is acknowledged), with the middletier's
//!    default flags (32 refreshes at once, 4 per host, a 1 s tick): all
//!    10,000 feeds due at once, first as new feeds answered with 200 and 20
//!    items each, then all due again and answered with 304.
//! 2. **Memory and GET latency of the real release binary**, on a `file`
//!    store holding 10,000 feeds × 50 items (100 users × 100 feeds), all
//!    due at start so the binary refreshes every one of them (304s) while
//!    every user's page is read; then `GET /middletier/rss/user/{user}`
//!    for a user with 100 feeds of 50 items, one client.
//! 3. **The memory store's budget**: this process's resident memory
//!    before and after filling a memory store with 10,000 feeds × 50 items.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use clap::Parser;
use common::api::{FeedUrl, UserId};
use middletier::config::Config;
use middletier::feeds::Feeds;
use middletier::feeds::guard::Guard;
use middletier::refresh::Refresher;
use middletier::refresh::scheduler::{self, Ownership};
use middletier::store::{FeedRecord, FeedUpdate, FileStore, MemoryStore, Store};
use support::process::{Service, memory_mib};
use tokio_util::sync::CancellationToken;

const FEEDS: usize = 10_000;
const PORTS: usize = 20;
const USERS: usize = 100;

/// The farm: how many items each feed has now.
#[derive(Clone)]
struct Farm {
    items: Arc<AtomicUsize>,
}

async fn feed(State(farm): State<Farm>, Path(n): Path<usize>, headers: HeaderMap) -> Response {
    let etag = format!("\"{n}-v1\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let items = farm.items.load(Ordering::Relaxed);
    let mut body = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Farm feed {n}</title>\
         <link>https://farm.example/{n}/</link>"
    );
    for i in 0..items {
        // Posted every 3 hours: a realistic blog's pace.
        let posted = Utc::now() - chrono::Duration::hours(3 * i as i64);
        body.push_str(&format!(
            "<item><title>Post {i} of feed {n}</title><link>https://farm.example/{n}/{i}</link>\
             <guid>farm-{n}-{i}</guid><pubDate>{}</pubDate><description>&lt;p&gt;Paragraph {i} \
             about &lt;b&gt;breakers&lt;/b&gt; and caches, long enough to look like a summary \
             of a post that someone wrote about resilience patterns.&lt;/p&gt;</description></item>",
            posted.to_rfc2822()
        ));
    }
    body.push_str("</channel></rss>");
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml".to_owned()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

/// Starts the farm on its own runtime thread; returns its ports.
fn start_farm(farm: Farm) -> Vec<u16> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new()
                .route("/f/{n}", axum::routing::get(feed))
                .with_state(farm);
            let mut ports = Vec::new();
            for _ in 0..PORTS {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ports.push(listener.local_addr().unwrap().port());
                tokio::spawn(axum::serve(listener, app.clone()).into_future());
            }
            tx.send(ports).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

fn feed_url(ports: &[u16], n: usize) -> FeedUrl {
    FeedUrl::parse(&format!(
        "http://127.0.0.1:{}/f/{n}",
        ports[n % ports.len()]
    ))
    .unwrap()
}

fn user(n: usize) -> UserId {
    UserId::parse(&format!("user{}", n % USERS)).unwrap()
}

/// Subscribes the users to every feed, all due now.
async fn plant(store: &dyn Store, ports: &[u16]) {
    let now = Utc::now();
    for n in 0..FEEDS {
        let url = feed_url(ports, n);
        store
            .create_feed(&FeedRecord::new(url.clone(), now))
            .await
            .unwrap();
        store.add(&user(n), &url).await.unwrap();
    }
}

/// Makes every feed due now.
async fn all_due(store: &dyn Store) {
    let now = Utc::now();
    for (url, _) in store.schedule().await.unwrap() {
        let mut record = store.feed(&url).await.unwrap().unwrap();
        record.next_fetch = now;
        store
            .save_fetch(&FeedUpdate::state_only(record))
            .await
            .unwrap();
    }
}

/// Runs the scheduler with the binary's defaults until every feed has
/// been refreshed since `since`; returns how long that took.
async fn refresh_all(store: Arc<dyn Store>, since: chrono::DateTime<Utc>) -> Duration {
    let config = Config::try_parse_from(["middletier"]).unwrap();
    let feeds = Feeds::new(config.feeds.settings(), Guard::new(true)).unwrap();
    let refresher = Refresher::new(feeds, store.clone(), config.refresh.settings());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(scheduler::run(
        refresher,
        Ownership::All,
        config.refresh.scheduler(),
        stop.clone(),
    ));
    // A refreshed feed is next due at least the minimum interval (10 min)
    // later; one not yet refreshed is due before `since`.
    let refreshed = since + chrono::Duration::minutes(5);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let schedule = store.schedule().await.unwrap();
        let done = schedule
            .iter()
            .filter(|(_, next)| *next > refreshed)
            .count();
        if done == FEEDS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{done} of {FEEDS} refreshed"
        );
    }
    let took = started.elapsed();
    stop.cancel();
    task.await.unwrap();
    took
}

#[tokio::main]
async fn main() {
    let farm = Farm {
        items: Arc::new(AtomicUsize::new(20)),
    };
    let ports = start_farm(farm.clone());
    let dir = tempfile::tempdir().unwrap();

    // 1. Scheduler throughput.
    println!("## 1. {FEEDS} feeds all due at once, file store, default flags\n");
    println!("| answer | feeds | seconds | feeds/s |\n|---|---|---|---|");
    let store: Arc<dyn Store> = Arc::new(FileStore::open(&dir.path().join("a")).unwrap());
    plant(store.as_ref(), &ports).await;
    let since = Utc::now();
    let took = refresh_all(store.clone(), since).await;
    let row = |what: &str, took: Duration| {
        println!(
            "| {what} | {FEEDS} | {:.1} | {:.0} |",
            took.as_secs_f64(),
            FEEDS as f64 / took.as_secs_f64()
        );
    };
    row("200, 20 new items each", took);
    all_due(store.as_ref()).await;
    let since = Utc::now();
    let took = refresh_all(store.clone(), since).await;
    row("304 Not Modified", took);
    drop(store);

    // 2. The real binary on 10,000 feeds × 50 items.
    farm.items.store(50, Ordering::Relaxed);
    let data = dir.path().join("b");
    {
        let store: Arc<dyn Store> = Arc::new(FileStore::open(&data).unwrap());
        plant(store.as_ref(), &ports).await;
        refresh_all(store.clone(), Utc::now()).await;
        all_due(store.as_ref()).await;
    }
    let data_dir = data.to_str().unwrap();
    // BENCH_LISTING_CACHE=<bytes> measures another feed cache budget.
    let cache = std::env::var("BENCH_LISTING_CACHE").ok();
    let mut args = vec![
        "--registry-url=",
        "--allow-private-feeds",
        "--store",
        "file",
        "--data-dir",
        data_dir,
    ];
    if let Some(cache) = &cache {
        args.extend(["--listing-cache", cache]);
    }
    let service = Service::start("middletier", &args, &[]);
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let metrics = http
            .get(service.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let refreshed: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("feed_refreshes_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        // Read every user's page meanwhile, as readers would.
        for u in 0..USERS {
            let response = http
                .get(service.url(&format!("/middletier/rss/user/user{u}")))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
        }
        if refreshed >= FEEDS as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{refreshed} refreshed"
        );
    }
    let refresh_took = started.elapsed();
    let mut latencies = Vec::new();
    let page = service.url("/middletier/rss/user/user7");
    let mut bytes = 0;
    for _ in 0..500 {
        let started = Instant::now();
        let response = http.get(&page).send().await.unwrap();
        assert!(response.status().is_success());
        bytes = response.bytes().await.unwrap().len();
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let ms = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!("\n## 2. The release binary, file store, {FEEDS} feeds × 50 items\n");
    println!(
        "all {FEEDS} refreshed (304) within {:.1} s of start, while every user's page was read",
        refresh_took.as_secs_f64()
    );
    println!(
        "\n| resident now MiB | peak MiB | database MiB |\n|---|---|---|\n| {:.1} | {:.1} | {:.1} |",
        memory_mib(service.pid(), "VmRSS"),
        memory_mib(service.pid(), "VmHWM"),
        std::fs::metadata(data.join("subscriptions.redb"))
            .map_or(0.0, |m| m.len() as f64 / 1048576.0),
    );
    println!(
        "\nGET for a user with 100 feeds × 50 items ({} KiB), 500 requests, one client:\n",
        bytes / 1024
    );
    println!(
        "| p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|\n| {:.2} | {:.2} | {:.2} | {:.2} |",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0)
    );
    drop(service);

    // 3. The memory store's budget.
    let before = memory_mib(std::process::id(), "VmRSS");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    plant(store.as_ref(), &ports).await;
    refresh_all(store.clone(), Utc::now()).await;
    let after = memory_mib(std::process::id(), "VmRSS");
    println!("\n## 3. The memory store\n");
    println!(
        "{FEEDS} feeds × 50 items: {:.1} MiB more resident memory ({:.2} KiB per item)",
        after - before,
        (after - before) * 1024.0 / (FEEDS * 50) as f64
    );
}
