//! Store throughput and latency at scale: 100,000 users × 20 feeds for the
//! memory and file stores; 10,000 users × 20 feeds for Cassandra (a real
//! single node, `scripts/cassandra.sh`, started if it is not running; it
//! is slower per operation, and the machine's two cores are shared with it).
//!
//! Run: `cargo bench --bench stores`
//!
//! Calls the stores directly (no HTTP), from 256 concurrent tasks for
//! subscribing and 64 for listing, and reports throughput, p50 and p99, and
//! for the file store the size of its database on disk. Every file-store
//! write is durable (fsync'd) before it is acknowledged; concurrent writes
//! share commits. Cassandra writes are acknowledged at `local_quorum` (one
//! replica here), with Cassandra's default periodic commit-log sync.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::api::{FeedUrl, UserId};
use middletier::store::cassandra::cql::Replication;
use middletier::store::{CassandraSettings, CassandraStore, FileStore, MemoryStore, Store};

#[path = "../tests/support/peers.rs"]
#[allow(dead_code)]
mod peers;

const USERS: usize = 100_000;
const CASSANDRA_USERS: usize = 10_000;
const FEEDS: usize = 20;
const WRITERS: usize = 256;
const READERS: usize = 64;
const LISTS: usize = 200_000;

#[tokio::main]
async fn main() {
    println!("| store | operation | count | per second | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|---|");
    run("memory", Arc::new(MemoryStore::new()), USERS).await;
    let dir = tempfile::tempdir().unwrap();
    run(
        "file",
        Arc::new(FileStore::open(dir.path()).unwrap()),
        USERS,
    )
    .await;
    let size = std::fs::metadata(dir.path().join("subscriptions.redb"))
        .unwrap()
        .len();
    println!(
        "\nfile store on disk: {:.1} MiB for {} subscriptions ({:.0} bytes each)",
        size as f64 / 1048576.0,
        USERS * FEEDS,
        size as f64 / (USERS * FEEDS) as f64
    );

    let cassandra = CassandraStore::connect_in_background(CassandraSettings {
        nodes: peers::cassandra()
            .nodes
            .split(',')
            .map(str::to_owned)
            .collect(),
        keyspace: peers::fresh_keyspace("rss_bench"),
        replication: Replication::Simple(1),
        consistency: scylla::statement::Consistency::LocalQuorum,
        request_timeout: Duration::from_secs(5),
        local_datacenter: None,
        credentials: None,
    })
    .unwrap();
    cassandra.ready().await;
    run("cassandra", Arc::new(cassandra), CASSANDRA_USERS).await;
}

fn user(n: usize) -> UserId {
    UserId::parse(&format!("user{n:06}")).unwrap()
}

fn feed(n: usize) -> FeedUrl {
    FeedUrl::parse(&format!(
        "https://feeds{}.example.com/blog/feed.xml",
        n % 5000
    ))
    .unwrap()
}

async fn run(name: &str, store: Arc<dyn Store>, users: usize) {
    // Subscribe: every user to 20 feeds.
    let subscribe = {
        let store = store.clone();
        move |i: usize| {
            let store = store.clone();
            async move {
                let (u, f) = (i / FEEDS, i % FEEDS);
                store.add(&user(u), &feed(u * 31 + f)).await.unwrap();
            }
        }
    };
    let (samples, wall) = measure(WRITERS, users * FEEDS, subscribe).await;
    report(name, "subscribe", samples, wall);

    // List: random users.
    let list = move |i: usize| {
        let store = store.clone();
        async move {
            let listed = store.list(&user((i * 7919) % users)).await.unwrap();
            assert_eq!(listed.len(), FEEDS);
        }
    };
    let (samples, wall) = measure(READERS, LISTS * users / USERS, list).await;
    report(name, "list", samples, wall);
}

/// Calls `op(0)` .. `op(count - 1)` from `tasks` concurrent tasks, each
/// taking the next index when it is free. Returns each call's latency,
/// sorted, and the wall time of the whole run (sorting included, as in the
/// recorded figures).
async fn measure<Op, Call>(tasks: usize, count: usize, op: Op) -> (Vec<Duration>, Duration)
where
    Op: Fn(usize) -> Call + Clone + Send + 'static,
    Call: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..tasks)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return samples;
                    }
                    let call = op(i);
                    let t = Instant::now();
                    call.await;
                    samples.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    (all, started.elapsed())
}

fn report(store: &str, op: &str, samples: Vec<Duration>, wall: Duration) {
    let at = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "| {store} | {op} | {} | {:.0} | {:.0} | {:.0} |",
        samples.len(),
        samples.len() as f64 / wall.as_secs_f64(),
        at(0.5),
        at(0.99)
    );
}
