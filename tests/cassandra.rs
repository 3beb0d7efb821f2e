//! The Cassandra store for real: a real Apache Cassandra 5.0 (started by
//! `scripts/cassandra.sh`; see `support::peers`), the real registry, two
//! real middletiers on `--store cassandra` and the real edge.
//!
//! Every test has a keyspace of its own. The outage test stops the whole
//! cluster, so it takes the cluster for itself ([`CLUSTER`], write side);
//! the others share it (read side). (`cargo test` runs one test binary at a
//! time, so no other binary uses Cassandra meanwhile.)

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::eventually;
use support::feed_server::FeedServer;
use support::peers::{self, fresh_keyspace};
use support::process::Service;
use support::stack::Stack;
use support::web::{get_json, subscription_urls};
use tokio::sync::RwLock;

/// Shared by the tests that use the cluster; taken whole by the one that
/// stops it.
static CLUSTER: RwLock<()> = RwLock::const_new(());

/// A middletier's flags for the shared cluster and `keyspace`.
fn cassandra_args(keyspace: &str) -> Vec<String> {
    [
        "--store",
        "cassandra",
        "--cassandra-nodes",
        &peers::cassandra().nodes,
        "--cassandra-keyspace",
        keyspace,
        "--user-write-rate",
        "0",
        // A feed added through the other middletier is known here at the
        // next scan of the schedule: soon, so ownership settles in a test.
        "--refresh-scan-interval",
        "5s",
    ]
    .map(str::to_owned)
    .to_vec()
}

async fn stack_on_cassandra(middletiers: usize) -> Stack {
    let args = cassandra_args(&fresh_keyspace("rss_e2e"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Writes are not rate-limited here: the outage test writes steadily.
    Stack::start(middletiers, &args, &["--user-write-rate", "0"]).await
}

async fn subscribe_through(edge: &str, http: &reqwest::Client, feed: &str) -> (StatusCode, Value) {
    match http
        .post(format!("{edge}/api/subscriptions"))
        .json(&json!({ "url": feed }))
        .send()
        .await
    {
        Ok(response) => (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        ),
        Err(e) => panic!("the edge did not answer: {e}"),
    }
}

/// A user's feed URLs as one middletier lists them.
async fn listed_by(middletier: &Service, user: &str) -> BTreeSet<String> {
    let body = get_json(middletier.url(&format!("/middletier/rss/user/{user}"))).await;
    subscription_urls(&body).into_iter().collect()
}

#[tokio::test]
async fn a_subscription_added_through_the_edge_is_read_through_either_middletier() {
    let _shared = CLUSTER.read().await;
    let stack = stack_on_cassandra(2).await;
    let edge = stack.edge.url("");
    let feed = stack.feeds.url("/fixtures/rss2.xml");
    let (status, body) = subscribe_through(&edge, &reqwest::Client::new(), &feed).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Whichever middletier stored it, both read it from Cassandra.
    for middletier in &stack.middletiers {
        assert_eq!(
            listed_by(middletier, "default").await,
            BTreeSet::from([feed.clone()])
        );
    }
    // And through the edge, whichever instance answers each time.
    for _ in 0..4 {
        let page = get_json(format!("{edge}/api/subscriptions")).await;
        assert_eq!(page["degraded"], false);
        assert_eq!(subscription_urls(&page), std::slice::from_ref(&feed));
    }
    // The feeds are shared out: once each middletier sees the other UP in
    // the registry, every feed has exactly one owner refreshing it.
    let second = stack.feeds.url("/fixtures/atom.xml");
    assert_eq!(
        subscribe_through(&edge, &reqwest::Client::new(), &second)
            .await
            .0,
        StatusCode::OK
    );
    eventually(
        "each feed owned by exactly one middletier",
        Duration::from_secs(30),
        || async {
            let mut owned = 0.0;
            for middletier in &stack.middletiers {
                owned += gauge(middletier, "feeds_owned").await?;
            }
            (owned == 2.0).then_some(())
        },
    )
    .await;

    // Each middletier caches the feeds it lists. A refresh through one
    // shows in the other's very next listing: with a shared store, each
    // cached feed is checked against its record on every listing.
    stack.feeds.set_mutable(&["first"]);
    let mutable = stack.feeds.url("/mutable");
    let (status, body) = subscribe_through(&edge, &reqwest::Client::new(), &mutable).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for middletier in &stack.middletiers {
        assert_eq!(titles_of(middletier, &mutable).await, ["first"]);
    }
    stack.feeds.set_mutable(&["second", "first"]);
    let refreshed = reqwest::Client::new()
        .post(stack.middletiers[0].url("/middletier/rss/user/default/refresh"))
        .query(&[("url", &mutable)])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    for middletier in &stack.middletiers {
        assert_eq!(titles_of(middletier, &mutable).await, ["second", "first"]);
    }
}

/// The titles of `feed`'s items in one middletier's listing of `default`.
async fn titles_of(middletier: &Service, feed: &str) -> Vec<String> {
    let body = get_json(middletier.url("/middletier/rss/user/default")).await;
    let subscriptions = body["subscriptions"].as_array().unwrap();
    let listed = subscriptions.iter().find(|s| s["url"] == feed).unwrap();
    support::listing::item_titles(listed)
}

/// A gauge's value in a service's `/metrics`, once it is there.
async fn gauge(service: &Service, name: &str) -> Option<f64> {
    let text = reqwest::get(service.url("/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn two_middletiers_create_the_schema_at_once_and_an_existing_keyspace_is_used() {
    let _shared = CLUSTER.read().await;
    let keyspace = fresh_keyspace("rss_schema");
    // Two middletiers started together race to create the keyspace and
    // table; both must come up.
    let (a, b) = (standalone_on(&keyspace), standalone_on(&keyspace));
    for service in [&a, &b] {
        wait_until_healthy(service).await;
    }
    let feeds = FeedServer::start();
    let feed = feeds.url("/fixtures/rss2.xml");
    let feed = feed.as_str();
    assert_eq!(subscribe_directly(&a, "alice", feed).await, StatusCode::OK);
    assert_eq!(
        listed_by(&b, "alice").await,
        BTreeSet::from([feed.to_owned()])
    );

    // A keyspace an operator created beforehand, without our table.
    let existing = fresh_keyspace("rss_existing");
    create_keyspace(&existing).await;
    let c = standalone_on(&existing);
    wait_until_healthy(&c).await;
    assert_eq!(subscribe_directly(&c, "bob", feed).await, StatusCode::OK);
}

/// A middletier on `keyspace`, with no registry.
fn standalone_on(keyspace: &str) -> Service {
    let args = cassandra_args(keyspace);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--registry-url=", "--allow-private-feeds"]);
    Service::start("middletier", &args, &[])
}

async fn subscribe_directly(middletier: &Service, user: &str, feed: &str) -> StatusCode {
    reqwest::Client::new()
        .post(middletier.url(&format!("/middletier/rss/user/{user}")))
        .query(&[("url", feed)])
        .send()
        .await
        .unwrap()
        .status()
}

async fn wait_until_healthy(service: &Service) {
    let url = service.url("/healthcheck");
    eventually(
        "the middletier's store is ready",
        Duration::from_secs(60),
        || async {
            let response = reqwest::get(&url).await.ok()?;
            response.status().is_success().then_some(())
        },
    )
    .await;
}

/// `CREATE KEYSPACE` with the scylla driver, as an operator would in cqlsh.
async fn create_keyspace(name: &str) {
    run_cql(&[format!(
        "CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )])
    .await;
}

/// Runs statements in order with the scylla driver, as an operator would.
async fn run_cql(statements: &[String]) {
    let nodes: Vec<&str> = peers::cassandra().nodes.split(',').collect();
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&nodes)
        .build()
        .await
        .unwrap();
    for statement in statements {
        session
            .query_unpaged(statement.as_str(), &[])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_keyspace_from_before_article_contents_gains_them_and_keeps_its_items() {
    let _shared = CLUSTER.read().await;
    let ks = fresh_keyspace("rss_v2");
    // The item tables as the previous version made them, and a star saved
    // then (an id no feed holds any more, as old stars are).
    let old_columns = "guid text, title text, link text, description text, published text";
    run_cql(&[
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        format!(
            "CREATE TABLE {ks}.items (feed_url text, item_key text, item_id bigint, \
             {old_columns}, PRIMARY KEY (feed_url, item_key))"
        ),
        format!(
            "CREATE TABLE {ks}.starred (user_id text, item_id bigint, feed_url text, \
             item_key text, {old_columns}, PRIMARY KEY (user_id, item_id)) \
             WITH CLUSTERING ORDER BY (item_id DESC)"
        ),
        format!(
            "INSERT INTO {ks}.starred (user_id, item_id, feed_url, item_key, title, description) \
             VALUES ('alice', 7, 'https://old.example/feed', 'k7', 'An old star', '<p>Kept</p>')"
        ),
    ])
    .await;
    let middletier = standalone_on(&ks);
    wait_until_healthy(&middletier).await;
    let old = get_json(middletier.url("/middletier/rss/user/alice/items/7")).await;
    assert_eq!(old["title"], "An old star", "{old}");
    assert_eq!(
        old["content"], "<p>Kept</p>",
        "the summary stands in: {old}"
    );
    assert_eq!(old["enclosures"], json!([]));
    assert_eq!(old["starred"], true);

    // New items store their contents in the columns just added.
    let feeds = FeedServer::start();
    let feed = feeds.url("/fixtures/article.xml");
    assert_eq!(
        subscribe_directly(&middletier, "alice", &feed).await,
        StatusCode::OK
    );
    let listing = get_json(middletier.url("/middletier/rss/user/alice")).await;
    let id = listing["subscriptions"][0]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let article = get_json(middletier.url(&format!("/middletier/rss/user/alice/items/{id}"))).await;
    assert_eq!(article["author"], "Pat Podcaster", "{article}");
    assert!(
        article["content"]
            .as_str()
            .unwrap()
            .contains("The full notes")
    );
    assert_eq!(article["enclosures"][0]["type"], "audio/mpeg");
    assert_eq!(article["categories"], json!(["Audio", "Interviews"]));
}

/// What one writer saw: each feed it tried, and the status it got.
type Writes = Arc<Mutex<Vec<(String, StatusCode, String)>>>;

#[tokio::test]
async fn a_real_google_reader_client_syncs_across_an_edge_restart() {
    let _shared = CLUSTER.read().await;
    let args = cassandra_args(&fresh_keyspace("rss_greader"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut stack = Stack::start(1, &args, &support::greader::SYNC_EDGE_ARGS).await;
    support::greader::python_sync(&mut stack).await;
}

#[tokio::test]
async fn with_cassandra_stopped_under_load_errors_are_honest_and_the_stack_recovers_by_itself() {
    let _whole_cluster = CLUSTER.write().await;
    let stack = stack_on_cassandra(2).await;
    let edge = stack.edge.url("");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let first = stack.feeds.url("/fixtures/rss2.xml");
    assert_eq!(
        subscribe_through(&edge, &http, &first).await.0,
        StatusCode::OK
    );

    // A writer adding a new feed every 50 ms through the edge, noting each
    // answer, and readers through the edge.
    let writes: Writes = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (edge, http, writes, stop) = (edge.clone(), http.clone(), writes.clone(), stop.clone());
        let base = stack.feeds.url("/fixtures/rss2.xml");
        async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let feed = format!("{base}?n={n}");
                let (status, body) = subscribe_through(&edge, &http, &feed).await;
                let error = body["error"].as_str().unwrap_or_default().to_owned();
                writes.lock().unwrap().push((feed, status, error));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let load = support::load::Load::start_any(&edge, 2, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // On a blocking thread: the readers and the writer must keep running
    // on this test's runtime while the script waits.
    tokio::task::spawn_blocking(|| peers::cassandra().stop())
        .await
        .unwrap();
    // While it is down: the middletiers say so, reads are served from the
    // edge's saved copy, and writes are refused saying why.
    for middletier in &stack.middletiers {
        let health = reqwest::get(middletier.url("/healthcheck")).await.unwrap();
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let page = get_json(format!("{edge}/api/subscriptions")).await;
    assert_eq!(page["degraded"], true, "{page}");
    let while_down = stack.feeds.url("/fixtures/rss2.xml?while=down");
    let (status, body) = subscribe_through(&edge, &http, &while_down).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let message = body["error"].as_str().unwrap();
    // The store's own refusal, or the breaker's once the writer's refused
    // writes have opened it: either way, not saved and why.
    assert!(
        message.starts_with("not saved")
            && (message.contains("store is unavailable") || message.contains("circuit open")),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    tokio::task::spawn_blocking(|| peers::cassandra().start())
        .await
        .unwrap();
    // Back, without restarting anything.
    eventually(
        "live reads through the edge",
        Duration::from_secs(60),
        || async {
            let page = get_json(format!("{edge}/api/subscriptions")).await;
            (page["degraded"] == false).then_some(())
        },
    )
    .await;
    eventually(
        "writes are accepted again",
        Duration::from_secs(60),
        || async {
            writes
                .lock()
                .unwrap()
                .last()
                .is_some_and(|(_, status, _)| *status == StatusCode::OK)
                .then_some(())
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let reads = load.stop().await;
    assert_eq!(reads.failed, 0, "every read was answered: {reads:?}");

    // Every answer was a success or an honest refusal; every acknowledged
    // write is in Cassandra; none refused is.
    let writes = writes.lock().unwrap().clone();
    let refused: Vec<_> = writes
        .iter()
        .filter(|(_, s, _)| *s != StatusCode::OK)
        .collect();
    assert!(!refused.is_empty(), "some writes fell in the outage");
    for (feed, status, error) in &refused {
        assert!(
            (*status == StatusCode::SERVICE_UNAVAILABLE && error.starts_with("not saved"))
                || (*status == StatusCode::GATEWAY_TIMEOUT
                    && error.contains("may not have been saved")),
            "{feed}: {status} {error}"
        );
    }
    // Each middletier finds Cassandra again on its own; ask until this one
    // answers.
    let stored = eventually(
        "the middletier reads from Cassandra again",
        Duration::from_secs(60),
        || async {
            let url = stack.middletiers[0].url("/middletier/rss/user/default");
            let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            body["subscriptions"].is_array().then(|| {
                subscription_urls(&body)
                    .into_iter()
                    .collect::<BTreeSet<String>>()
            })
        },
    )
    .await;
    for (feed, status, _) in &writes {
        if *status == StatusCode::OK {
            assert!(
                stored.contains(feed),
                "{feed} was acknowledged but is not stored"
            );
        } else if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(!stored.contains(feed), "{feed} was refused but is stored");
        }
    }
    assert!(stored.contains(&first));
}
