//! The background scheduler: every middletier runs one.
//!
//! Each tick (default every second) it takes the feeds this instance owns
//! whose next fetch has come, oldest due first, and refreshes them with at
//! most `concurrency` at once (the fetch slots add the per-host limit),
//! starting the next as soon as one finishes, until none is due.
//! What is due comes from the store: a scan at start and every
//! `scan_every` (default 30 s), so feeds added through other instances
//! sharing the store are picked up; between scans, this instance's own
//! refreshes keep it current.
//!
//! **Ownership.** With a store only this process uses (memory, file), it
//! owns every feed. With a shared one (Cassandra), each feed belongs to one
//! of the `UP` middletiers in discovery, chosen by rendezvous hashing
//! ([`super::ownership`]); the set is re-read from the discovery client's
//! local copy every tick, so when an instance comes or goes, ownership
//! moves within one registry fetch. If the registry has not listed us yet
//! we count ourselves in: refreshing a feed twice is better than never.
//!
//! The scheduler holds no store: what is due, what is being refreshed,
//! and forgetting a feed nobody reads any more (when it comes due) are the
//! [`Refresher`]'s. Metrics: `feeds_owned`, `feeds_due`,
//! `feed_refresh_lag_seconds` (how late a refresh started), and the
//! refresher's `feed_refreshes_total{outcome}`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::discovery::DiscoveryClient;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{Refresher, ownership};

/// How the scheduler runs.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerSettings {
    /// How often it looks for due feeds.
    pub tick: Duration,
    /// How often it rereads the whole schedule from the store.
    pub scan_every: Duration,
    /// Refreshes running at once.
    pub concurrency: usize,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            scan_every: Duration::from_secs(30),
            concurrency: 32,
        }
    }
}

/// Who refreshes what.
#[derive(Debug, Clone)]
pub enum Ownership {
    /// This process owns every feed (its store is its own).
    All,
    /// Feeds are shared out among the `UP` instances of `vip`.
    Shared {
        /// This instance's registry id.
        me: String,
        /// Where the other instances are listed.
        discovery: DiscoveryClient,
        /// The VIP the middletiers register under.
        vip: String,
    },
}

impl Ownership {
    /// The instances sharing the feeds now (`None`: this one owns all).
    fn instances(&self) -> Option<(String, Vec<String>)> {
        match self {
            Self::All => None,
            Self::Shared { me, discovery, vip } => {
                let mut ids: Vec<String> = discovery
                    .snapshot()
                    .up_instances(vip)
                    .into_iter()
                    .map(|i| i.id)
                    .collect();
                if !ids.contains(me) {
                    ids.push(me.clone());
                }
                Some((me.clone(), ids))
            }
        }
    }
}

/// Runs the scheduler until `shutdown`; refreshes in flight are not
/// awaited (each finishes or is dropped with the runtime; nothing is
/// half-written, since a refresh writes its items before its state).
pub async fn run(
    refresher: Refresher,
    ownership: Ownership,
    settings: SchedulerSettings,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut last_scan: Option<tokio::time::Instant> = None;
    let mut ticks = tokio::time::interval(settings.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if last_scan.is_none_or(|at| at.elapsed() >= settings.scan_every) {
            match refresher.rescan().await {
                Ok(()) => last_scan = Some(tokio::time::Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the refresh schedule; will retry")
                }
            }
        }
        let instances = ownership.instances();
        let owned = refresher.due_now(Utc::now(), |url| match &instances {
            None => true,
            Some((me, all)) => ownership::owns(me, url.as_str(), all),
        });
        metrics::gauge!("feeds_owned").set(owned.owned as f64);
        metrics::gauge!("feeds_due").set(owned.due.len() as f64);
        // Each due feed waits for a free slot, so the slots stay busy
        // while a backlog lasts (all feeds due at once after a restart, or
        // an import), rather than starting a few per tick.
        for due in owned.due {
            let permit = tokio::select! {
                () = shutdown.cancelled() => return,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return, // the semaphore is never closed
                },
            };
            let lag = (Utc::now() - due.at).to_std().unwrap_or_default();
            metrics::histogram!("feed_refresh_lag_seconds").record(lag.as_secs_f64());
            // Each scheduled refresh is a trace of its own: what the
            // scheduler did for this feed, its fetch and its store writes.
            let span = common::telemetry::span(|| {
                tracing::info_span!(
                    parent: None,
                    "scheduled refresh",
                    otel.kind = "internal",
                    url.full = %due.url,
                    lag_seconds = lag.as_secs_f64(),
                )
            });
            let refresher = refresher.clone();
            tokio::spawn(async move {
                refresher.refresh_due(due).instrument(span).await;
                drop(permit);
            });
        }
    }
}
