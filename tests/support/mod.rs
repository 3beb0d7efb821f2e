//! Test harness shared by the end-to-end tests: a real local HTTP server
//! serving feed fixtures, and helpers that start the real binaries as child
//! processes on 127.0.0.1.
//!
//! Each test binary includes this module and uses only part of it.
#![allow(dead_code)]
// Test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

pub(crate) mod compose;
pub(crate) mod feed_server;
pub(crate) mod greader;
pub(crate) mod listing;
pub(crate) mod load;
pub(crate) mod otlp;
pub(crate) mod peers;
pub(crate) mod process;
pub(crate) mod stack;
pub(crate) mod web;

use std::future::Future;
use std::time::Duration;

/// Middletier refresh timings in milliseconds, so the background
/// scheduler plays out within a test.
pub(crate) const FAST_REFRESH: [&str; 6] = [
    "--refresh-min-interval",
    "200ms",
    "--refresh-max-interval",
    "300ms",
    "--refresh-tick",
    "50ms",
];

/// Polls `probe` every 100 ms until it gives `Some`, for at most `within`;
/// panics saying what never happened otherwise. Tests wait for outcomes,
/// not for fixed times, so a slow machine makes them slower, not red.
pub(crate) async fn eventually<T, Fut>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Fut,
) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // A probe that hangs (a request nobody answers) must not hang the
        // test: it gets what is left of the time.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let probed = tokio::time::timeout(left.max(Duration::from_millis(100)), probe()).await;
        if let Ok(Some(found)) = probed {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}{}",
            if probed.is_err() {
                " (the last check never finished)"
            } else {
                ""
            }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
