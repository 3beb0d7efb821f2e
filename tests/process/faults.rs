//! Faults under a steady load through the edge, with real processes: each
//! test names the fault, what users must see, and checks it. Timings are
//! shortened (500 ms heartbeats, 2 s leases, 200 ms registry fetches) so
//! each scenario plays out in seconds.

// Tests fail loudly on surprises; helpers outside #[test] fns too.

use std::time::Duration;

use crate::support::eventually;
use crate::support::load::Load;
use crate::support::process::Service;
use crate::support::stack::Stack;
use crate::support::web::{get_json, subscription_urls};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PAUSE: Duration = Duration::from_millis(20);

/// Middletiers with their own file store each (so a restarted one has its
/// subscriptions back), each subscribed to the same feed directly.
async fn stack_with_file_stores(n: usize, dirs: &[tempfile::TempDir], edge_args: &[&str]) -> Stack {
    let args = (0..n)
        .map(|i| {
            vec![
                "--store".to_owned(),
                "file".to_owned(),
                "--data-dir".to_owned(),
                dirs[i].path().to_str().unwrap().to_owned(),
                "--enable-fault-injection".to_owned(),
            ]
        })
        .collect();
    let stack = Stack::start_each(args, edge_args).await;
    stack
        .subscribe_on_each_middletier("default", &stack.feeds.url("/fixtures/rss2.xml"))
        .await;
    stack
}

fn dirs(n: usize) -> Vec<tempfile::TempDir> {
    (0..n).map(|_| tempfile::tempdir().unwrap()).collect()
}

async fn set_faults(middletier: &Service, faults: Value) {
    let response = reqwest::Client::new()
        .put(middletier.url("/admin/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn command_state(stack: &Stack, name: &str) -> String {
    stack.command(name).await["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_of_two_middletiers_killed_then_restarted_fails_no_request() {
    let dirs = dirs(2);
    let mut stack = stack_with_file_stores(2, &dirs, &[]).await;
    let load = Load::start(&stack.edge.url(""), 4, PAUSE, &["Recipe Kitchen"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.middletiers[0].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.restart_middletier(0);
    stack.wait_until_edge_knows(2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = load.stop().await;
    assert!(tally.live > 50, "{tally:?}");
    assert_eq!((tally.failed, tally.degraded), (0, 0), "{tally:?}");
}

#[tokio::test]
async fn a_rolling_restart_with_sigterm_fails_no_request() {
    let dirs = dirs(2);
    let mut stack = stack_with_file_stores(2, &dirs, &[]).await;
    let load = Load::start(&stack.edge.url(""), 4, PAUSE, &["Recipe Kitchen"]);
    for i in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        stack.middletiers[i].terminate();
        let status = stack.middletiers[i]
            .wait_exit(Duration::from_secs(10))
            .expect("stops on SIGTERM");
        assert!(status.success());
        stack.restart_middletier(i);
        stack.wait_until_edge_knows(2).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let tally = load.stop().await;
    assert!(tally.live > 50, "{tally:?}");
    assert_eq!((tally.failed, tally.degraded), (0, 0), "{tally:?}");
}

#[tokio::test]
async fn with_the_registry_down_no_request_fails_and_everyone_re_registers() {
    let dirs = dirs(2);
    let mut stack = stack_with_file_stores(2, &dirs, &[]).await;
    let load = Load::start(&stack.edge.url(""), 4, PAUSE, &["Recipe Kitchen"]);
    let port = stack.registry.port;
    stack.registry.kill();
    // Down for a minute: with 2 s leases, 500 ms heartbeats and 200 ms
    // fetches, that is thirty leases and three hundred failed fetches.
    // Clients keep serving their last copy.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let during = load.tally();
    assert_eq!((during.failed, during.degraded), (0, 0), "{during:?}");

    stack.registry = Service::start_on("registry", port, &["--eviction-interval", "200ms"], &[]);
    let apps_url = stack.registry.url("/eureka/v2/apps");
    eventually(
        "every instance registered again with the new registry",
        Duration::from_secs(5),
        || async {
            let apps: Value = get_json(&apps_url).await;
            let count = |name: &str| {
                apps["applications"]["application"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["name"] == name)
                    .map_or(0, |a| a["instance"].as_array().unwrap().len())
            };
            (count("MIDDLETIER") == 2 && count("EDGE") == 1).then_some(())
        },
    )
    .await;
    let tally = load.stop().await;
    assert_eq!((tally.failed, tally.degraded), (0, 0), "{tally:?}");
}

#[tokio::test]
async fn a_slow_middletier_trips_the_breaker_and_the_edge_still_answers_in_time() {
    let dirs = dirs(1);
    let stack = stack_with_file_stores(
        1,
        &dirs,
        &[
            "--rss-get-timeout",
            "1s",
            "--attempt-timeout",
            "400ms",
            "--breaker-sleep-window",
            "1s",
        ],
    )
    .await;
    let edge = stack.edge.url("/api/subscriptions");
    let live: Value = get_json(&edge).await;
    assert_eq!(live["degraded"], false);

    set_faults(&stack.middletiers[0], json!({"latency_ms": 3000})).await;
    // A burst of readers (the breaker judges the last 10 s): every one is
    // answered within RSSGet's 1 s timeout (the client allows a little
    // more), from the fallback.
    let bounded = reqwest::Client::builder()
        .timeout(Duration::from_millis(1800))
        .build()
        .unwrap();
    let reads = (0..25).map(|_| {
        let (bounded, edge) = (bounded.clone(), edge.clone());
        async move {
            let body: Value = bounded
                .get(&edge)
                .send()
                .await
                .expect("answered in time")
                .json()
                .await
                .unwrap();
            body
        }
    });
    for body in futures::future::join_all(reads).await {
        assert_eq!(body["degraded"], true);
        assert_eq!(
            body["subscriptions"], live["subscriptions"],
            "the saved feeds"
        );
    }
    assert_eq!(
        command_state(&stack, "RSSGet").await,
        "open",
        "the breaker opened"
    );
    // Open, it answers at once from the fallback, without calling.
    let body: Value = bounded
        .get(&edge)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .unwrap();
    assert_eq!(body["degraded"], true);

    set_faults(&stack.middletiers[0], json!({"latency_ms": 0})).await;
    eventually(
        "live again after the sleep window and one good trial",
        Duration::from_secs(4),
        || async {
            let body: Value = bounded.get(&edge).send().await.ok()?.json().await.ok()?;
            (body["degraded"] == false).then_some(())
        },
    )
    .await;
    assert_eq!(command_state(&stack, "RSSGet").await, "closed");
}

#[tokio::test]
async fn with_the_store_down_reads_degrade_writes_fail_loudly_and_nothing_is_lost() {
    let dirs = dirs(1);
    let stack = stack_with_file_stores(1, &dirs, &[]).await;
    let edge = stack.edge.url("/api/subscriptions");
    let http = reqwest::Client::new();
    let atom = stack.feeds.url("/fixtures/atom.xml");
    let added = http
        .post(&edge)
        .json(&json!({"url": atom}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);
    let before: Value = get_json(&edge).await;
    assert_eq!(before["subscriptions"].as_array().unwrap().len(), 2);

    let middletier = &stack.middletiers[0];
    set_faults(middletier, json!({"store_down": true})).await;
    let health = reqwest::get(middletier.url("/healthcheck")).await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the middletier says its store is down"
    );

    let read: Value = get_json(&edge).await;
    assert_eq!(read["degraded"], true);
    assert_eq!(
        read["subscriptions"], before["subscriptions"],
        "reads degrade to the saved feeds"
    );

    let write = http
        .post(&edge)
        .json(&json!({"url": stack.feeds.url("/fixtures/rss1.rdf")}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error: Value = write.json().await.unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.starts_with("not saved") && message.contains("store is unavailable"),
        "{message}"
    );
    let direct = http
        .delete(middletier.url("/middletier/rss/user/default"))
        .query(&[("url", &atom)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        direct.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the middletier never claims a write it did not make"
    );

    set_faults(middletier, json!({"store_down": false})).await;
    let after = eventually("live reads again", Duration::from_secs(5), || async {
        let body = get_json(&edge).await;
        (body["degraded"] == false).then_some(body)
    })
    .await;
    assert_eq!(
        subscription_urls(&after),
        [stack.feeds.url("/fixtures/rss2.xml"), atom.clone()],
        "every acknowledged subscription is there; the refused one is not"
    );
}

#[tokio::test]
async fn fault_injection_is_off_unless_enabled() {
    let service = Service::start("middletier", &["--registry-url="], &[]);
    let response = reqwest::Client::new()
        .put(service.url("/admin/faults"))
        .json(&json!({"latency_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
