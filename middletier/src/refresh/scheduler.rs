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
//! A feed nobody reads any more is forgotten (state and items) when it
//! comes due. Metrics: `feeds_owned`, `feeds_due`,
//! `feed_refresh_lag_seconds` (how late a refresh started), and the
//! refresher's `feed_refreshes_total{outcome}`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use common::api::FeedUrl;
use common::discovery::DiscoveryClient;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{Refresher, ownership};
use crate::store::Store;

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
    store: Arc<dyn Store>,
    ownership: Ownership,
    settings: SchedulerSettings,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let in_flight: Arc<Mutex<HashSet<FeedUrl>>> = Arc::default();
    let mut last_scan: Option<tokio::time::Instant> = None;
    let mut ticks = tokio::time::interval(settings.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if last_scan.is_none_or(|at| at.elapsed() >= settings.scan_every) {
            match store.schedule().await {
                Ok(scanned) => {
                    refresher.replace_due(scanned);
                    last_scan = Some(tokio::time::Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the refresh schedule; will retry")
                }
            }
        }
        let instances = ownership.instances();
        let now = Utc::now();
        let mut owned = 0usize;
        let mut due: Vec<(FeedUrl, chrono::DateTime<Utc>)> = refresher
            .due()
            .into_iter()
            .filter(|(url, _)| match &instances {
                None => true,
                Some((me, all)) => ownership::owns(me, url.as_str(), all),
            })
            .inspect(|_| owned += 1)
            .filter(|(_, at)| *at <= now)
            .collect();
        metrics::gauge!("feeds_owned").set(owned as f64);
        metrics::gauge!("feeds_due").set(due.len() as f64);
        due.sort_by_key(|(_, at)| *at);
        // Each due feed waits for a free slot, so the slots stay busy
        // while a backlog lasts (all feeds due at once after a restart, or
        // an import), rather than starting a few per tick.
        for (url, at) in due {
            if in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&url)
            {
                continue;
            }
            let permit = tokio::select! {
                () = shutdown.cancelled() => return,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return, // the semaphore is never closed
                },
            };
            in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(url.clone());
            let lag = (Utc::now() - at).to_std().unwrap_or_default();
            metrics::histogram!("feed_refresh_lag_seconds").record(lag.as_secs_f64());
            let (refresher, store, in_flight) =
                (refresher.clone(), store.clone(), in_flight.clone());
            // Each scheduled refresh is a trace of its own: what the
            // scheduler did for this feed, its fetch and its store writes.
            let span = common::telemetry::span(|| {
                tracing::info_span!(
                    parent: None,
                    "scheduled refresh",
                    otel.kind = "internal",
                    url.full = %url,
                    lag_seconds = lag.as_secs_f64(),
                )
            });
            tokio::spawn(async move {
                refresh_one(&refresher, store.as_ref(), &url)
                    .instrument(span)
                    .await;
                in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&url);
                drop(permit);
            });
        }
    }
}

async fn refresh_one(refresher: &Refresher, store: &dyn Store, url: &FeedUrl) {
    match store.has_subscribers(url).await {
        Ok(false) => {
            tracing::info!(url = %url, "nobody reads this feed any more; forgetting it");
            if let Err(e) = store.delete_feed(url).await {
                tracing::warn!(url = %url, error = %e, "could not forget a feed");
            }
            refresher.forget(url);
            return;
        }
        Ok(true) => {}
        Err(e) => {
            tracing::warn!(url = %url, error = %e, "store unavailable; refresh postponed");
            // Try again after a pause rather than every tick.
            refresher.set_due(url, Utc::now() + chrono::Duration::seconds(30));
            return;
        }
    }
    if let Err(e) = refresher.refresh(url, None).await {
        tracing::warn!(url = %url, error = %e, "refresh could not be stored; will retry");
        refresher.set_due(url, Utc::now() + chrono::Duration::seconds(30));
    }
}
