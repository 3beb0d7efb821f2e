//! The file store through the real middletier process: acknowledged
//! subscriptions survive a restart and a SIGKILL, and a data directory
//! serves one process at a time.

use crate::support;
// Tests fail loudly on surprises; helpers outside #[test] fns too.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::feed_server::FeedServer;
use crate::support::process::Service;
use crate::support::web::{get_json, subscription_urls};
use reqwest::StatusCode;

fn file_middletier(dir: &std::path::Path) -> Service {
    let dir = dir.to_str().unwrap();
    // --allow-private-feeds lets it read the local feed server.
    Service::start(
        "middletier",
        &[
            "--registry-url=",
            "--user-write-rate",
            "0",
            "--allow-private-feeds",
            "--store",
            "file",
            "--data-dir",
            dir,
        ],
        &[],
    )
}

/// The feeds point at a closed port on 127.0.0.1, so reading them back
/// fails fast (these tests are about what is stored, not fetched).
async fn stored_urls(service: &Service, user: &str) -> BTreeSet<String> {
    let body: serde_json::Value =
        get_json(service.url(&format!("/middletier/rss/user/{user}"))).await;
    subscription_urls(&body).into_iter().collect()
}

async fn subscribe(
    http: &reqwest::Client,
    service_url: &str,
    user: &str,
    feed: &str,
) -> StatusCode {
    match http
        .post(format!("{service_url}/middletier/rss/user/{user}"))
        .query(&[("url", feed)])
        .send()
        .await
    {
        Ok(response) => response.status(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[tokio::test]
async fn acknowledged_subscriptions_survive_a_restart() {
    let feeds = FeedServer::start();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut expected = BTreeSet::new();
    {
        let mut service = file_middletier(dir.path());
        for i in 0..20 {
            let feed = feeds.url(&format!("/generated/3?feed={i}"));
            assert_eq!(
                subscribe(&http, &service.url(""), "alice", &feed).await,
                StatusCode::OK
            );
            expected.insert(feed);
        }
        let health: serde_json::Value = get_json(service.url("/healthcheck")).await;
        assert_eq!(health["store"], "file");
        service.terminate();
        assert!(
            service
                .wait_exit(Duration::from_secs(10))
                .unwrap()
                .success()
        );
    }
    let service = file_middletier(dir.path());
    assert_eq!(stored_urls(&service, "alice").await, expected);
}

#[tokio::test]
async fn every_acknowledged_write_survives_a_sigkill_mid_stream() {
    let feeds = Arc::new(FeedServer::start());
    let dir = tempfile::tempdir().unwrap();
    let mut service = file_middletier(dir.path());
    let base = service.url("");
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (base, acknowledged, feeds) = (base.clone(), acknowledged.clone(), feeds.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for i in 0.. {
                    // Each subscribe fetches the feed and stores it with
                    // its items, then the subscription: several writes.
                    let feed = feeds.url(&format!("/generated/3?w={w}&i={i}"));
                    if subscribe(&http, &base, &format!("user{w}"), &feed).await != StatusCode::OK {
                        return; // the process is gone
                    }
                    acknowledged.lock().unwrap().insert((w, feed));
                }
            })
        })
        .collect();
    // Killed mid-stream: once the writers have a good many writes
    // acknowledged (however long that takes on a busy machine).
    crate::support::eventually("50 writes acknowledged", Duration::from_secs(60), || {
        let enough = acknowledged.lock().unwrap().len() > 50;
        async move { enough.then_some(()) }
    })
    .await;
    service.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "the writers got going ({} writes)",
        acknowledged.len()
    );

    let restarted = file_middletier(dir.path());
    for w in 0..8 {
        let stored = stored_urls(&restarted, &format!("user{w}")).await;
        for (_, feed) in acknowledged.iter().filter(|(writer, _)| *writer == w) {
            assert!(stored.contains(feed), "{feed} was acknowledged but lost");
        }
    }
}

/// Runs a middletier on the file store in `data_dir` that is expected not
/// to start; returns what it said on stderr.
fn failed_start_on(data_dir: &std::path::Path) -> String {
    let output = std::process::Command::new(support::process::bin_path("middletier"))
        .args([
            "--registry-url=",
            "--port",
            "0",
            "--store",
            "file",
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the middletier started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_second_process_on_the_same_data_dir_stops_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let _first = file_middletier(dir.path());
    let stderr = failed_start_on(dir.path());
    assert!(
        stderr.contains("in use by another middletier") && stderr.contains("--data-dir"),
        "{stderr}"
    );
}

#[test]
fn an_unwritable_data_dir_stops_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let stderr = failed_start_on(&file.join("data"));
    assert!(
        stderr.contains("cannot use") && stderr.contains("--data-dir"),
        "{stderr}"
    );
}
