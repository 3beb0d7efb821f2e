//! A steady load of readers through the edge, counting every request that
//! did not get a live answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

/// What the readers saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub live: usize,
    /// Answered from the fallback (`"degraded": true`).
    pub degraded: usize,
    /// An error status, or no answer.
    pub failed: usize,
}

/// Readers in the background until [`Load::stop`].
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    live: Arc<AtomicUsize>,
    degraded: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `readers` tasks each reading `GET /api/subscriptions` every `pause`,
    /// expecting `expected_titles` when live.
    pub(crate) fn start(
        edge: &str,
        readers: usize,
        pause: Duration,
        expected_titles: &[&str],
    ) -> Load {
        let expected: Vec<String> = expected_titles.iter().map(|s| s.to_string()).collect();
        Self::spawn(edge, None, readers, pause, Some(expected))
    }

    /// Like [`Load::start`], for feeds that change while it runs: any live
    /// answer counts as live.
    pub(crate) fn start_any(edge: &str, readers: usize, pause: Duration) -> Load {
        Self::spawn(edge, None, readers, pause, None)
    }

    /// Like [`Load::start`] (or [`Load::start_any`] without titles),
    /// signed in: every read sends `cookie` (a session's `Cookie` header).
    pub(crate) fn start_signed_in(
        edge: &str,
        cookie: &str,
        readers: usize,
        pause: Duration,
        expected_titles: Option<&[&str]>,
    ) -> Load {
        let expected = expected_titles.map(|t| t.iter().map(|s| s.to_string()).collect());
        Self::spawn(edge, Some(cookie), readers, pause, expected)
    }

    fn spawn(
        edge: &str,
        cookie: Option<&str>,
        readers: usize,
        pause: Duration,
        expected: Option<Vec<String>>,
    ) -> Load {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(cookie) = cookie {
            headers.insert(
                reqwest::header::COOKIE,
                cookie.parse().expect("a cookie header"),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (live, degraded, failed): (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>) =
            (Arc::default(), Arc::default(), Arc::default());
        let tasks = (0..readers)
            .map(|_| {
                let url = format!("{edge}/api/subscriptions");
                let headers = headers.clone();
                let (stop, live, degraded, failed, expected) = (
                    stop.clone(),
                    Arc::clone(&live),
                    Arc::clone(&degraded),
                    Arc::clone(&failed),
                    expected.clone(),
                );
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .default_headers(headers)
                        .timeout(Duration::from_secs(15))
                        .build()
                        .unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        match read(&http, &url).await {
                            Ok((false, titles))
                                if expected.as_ref().is_none_or(|e| *e == titles) =>
                            {
                                live.fetch_add(1, Ordering::Relaxed)
                            }
                            Ok((true, _)) => degraded.fetch_add(1, Ordering::Relaxed),
                            other => {
                                eprintln!("failed read: {other:?}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            live,
            degraded,
            failed,
            tasks,
        }
    }

    pub(crate) fn tally(&self) -> Tally {
        Tally {
            live: self.live.load(Ordering::Relaxed),
            degraded: self.degraded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Stops the readers and returns the final tally.
    pub(crate) async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        Tally {
            live: self.live.load(Ordering::Relaxed),
            degraded: self.degraded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// (degraded, titles), or why the read failed: an error status, no
/// answer, or an answer of the wrong shape.
async fn read(http: &reqwest::Client, url: &str) -> Result<(bool, Vec<String>), String> {
    let started = std::time::Instant::now();
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("no answer after {:?}: {e:?}", started.elapsed()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{status}, body unreadable: {e:?}"))?;
    let shape = || format!("{status}: {}", text.chars().take(300).collect::<String>());
    if !status.is_success() {
        return Err(shape());
    }
    let body: Value = serde_json::from_str(&text).map_err(|_| shape())?;
    let titles = body["subscriptions"]
        .as_array()
        .ok_or_else(shape)?
        .iter()
        .filter_map(|s| s["title"].as_str().map(str::to_owned))
        .collect();
    Ok((body["degraded"].as_bool().ok_or_else(shape)?, titles))
}

/// What a closed-loop run measured: requests per second and latencies.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub per_second: f64,
    /// Every request's latency, sorted.
    pub samples: Vec<Duration>,
}

impl Throughput {
    /// The `p` quantile (0.0..=1.0) in milliseconds.
    pub(crate) fn ms(&self, p: f64) -> f64 {
        let i = ((self.samples.len() as f64 * p) as usize).min(self.samples.len() - 1);
        self.samples[i].as_secs_f64() * 1e3
    }
}

/// `clients` tasks each sending `requests` GETs to `url` back to back (a
/// closed loop, so the rate is what the server sustains); every answer must
/// be a success.
pub(crate) async fn closed_loop(
    http: &reqwest::Client,
    url: &str,
    clients: usize,
    requests: usize,
) -> Throughput {
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url) = (http.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let t = std::time::Instant::now();
                    let response = http.get(&url).send().await.unwrap();
                    assert!(
                        response.status().is_success(),
                        "{url}: {}",
                        response.status()
                    );
                    response.bytes().await.unwrap();
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    let per_second = samples.len() as f64 / started.elapsed().as_secs_f64();
    samples.sort();
    Throughput {
        per_second,
        samples,
    }
}
