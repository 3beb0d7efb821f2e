//! The discovery client: registers this process, keeps its lease alive, and
//! keeps a local copy of the registry fresh for the load balancer.
//!
//! It follows the Eureka client's contract, so it works against our
//! registry and a real Eureka server alike:
//!
//! - **register** (`POST apps/{APP}`) at start with status `STARTING`, and
//!   again with `UP` once the service can serve (a status change is a
//!   re-registration, as in the Java client);
//! - **heartbeat** (`PUT apps/{APP}/{id}`) every renewal interval (default
//!   30 s, lease 90 s: three missed beats before the registry gives up);
//!   a 404 means the registry forgot us (restarted, or evicted us), so we
//!   register again at once;
//! - **fetch** the registry whenever it changes (a watch, our registry's
//!   long poll; every 5 s from a registry without one, such as Eureka's
//!   own, see [`super::fetch`]): a full `GET apps` the first time, then
//!   `GET apps/delta` applied to the local copy and checked against the
//!   server's `apps__hashcode`; a mismatch means we missed something, so a
//!   full fetch follows. The hashcode only counts instances per status, so
//!   a client that missed the delta while one instance was replaced by
//!   another would match and keep the dead one; so a full fetch also
//!   happens every minute (`full_fetch_interval`), and at once when a
//!   caller finds every instance it knows dead
//!   ([`DiscoveryClient::fetch_full_if_older_than`]);
//! - **failover**: registry URLs are tried in order, starting from the last
//!   one that answered; when none answers, the last known copy keeps being
//!   served (logged and counted in `discovery_registry_unreachable_total`);
//! - **deregister** on graceful shutdown: `DOWN`, then `DELETE`, *before*
//!   the listener closes, so callers stop choosing us while we still answer.
//!
//! The client is one type, in four files: this one (registering, renewing,
//! leaving, and the background tasks), [`super::fetch`] (keeping the local
//! copy of the registry), [`super::transport`] (talking to the registries
//! in failover order), and [`super::registration`] (the record we send).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::eureka::Status;
use super::local::LocalRegistry;
use super::registration::Registration;
use super::settings::DiscoverySettings;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No registry URL is configured: the service runs on its own.
    #[error("no registry is configured")]
    Disabled,
    /// No registry answered; the message names the last one tried and why.
    #[error("no registry answered ({0})")]
    Unreachable(String),
    /// The registry answered with an error status.
    #[error("the registry refused the request: HTTP {0}")]
    Refused(u16),
    /// The registry's answer could not be read or was too large.
    #[error("the registry sent a body we cannot read: {0}")]
    BadBody(String),
}

/// Registers, renews and fetches. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct DiscoveryClient {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for DiscoveryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryClient")
            .field("registration", &self.inner.registration)
            .field("status", &self.status())
            .field("known_instances", &self.snapshot().len())
            .finish_non_exhaustive()
    }
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) settings: DiscoverySettings,
    pub(super) registration: Option<Registration>,
    pub(super) status: RwLock<Status>,
    /// When our record last changed (ms since epoch): sent as
    /// `lastDirtyTimestamp` so the registry can tell a stale copy.
    pub(super) dirty_ms: AtomicU64,
    /// The local copy, replaced whole on each fetch; readers clone the Arc.
    pub(super) local: RwLock<Arc<LocalRegistry>>,
    /// Whether `local` came from a full fetch yet (deltas need a base).
    pub(super) has_full_copy: AtomicBool,
    /// Index of the registry URL that last answered; tried first.
    pub(super) preferred: AtomicUsize,
    /// When the last fetch started (ms since epoch), to rate-limit fetches
    /// made on demand.
    pub(super) last_fetch_ms: AtomicU64,
    /// When the last full fetch succeeded (ms since epoch).
    pub(super) last_full_ms: AtomicU64,
    /// When the last full fetch started, whatever its outcome: rate-limits
    /// the ones made on demand.
    pub(super) last_full_attempt_ms: AtomicU64,
    /// One fetch at a time: concurrent callers wait for it instead of each
    /// sending their own.
    pub(super) fetching: tokio::sync::Mutex<()>,
    /// `versions__delta` of the last fetch applied (0: none yet): what a
    /// watch waits to change.
    pub(super) version: AtomicU64,
    /// Whether the registry answered a watch as a watch (not a 404).
    pub(super) watch_offered: AtomicBool,
}

impl DiscoveryClient {
    /// A client with `settings`; with a `registration`, it can register
    /// this process; without one, it only reads the registry.
    pub fn new(
        settings: DiscoverySettings,
        registration: Option<Registration>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Never reuse a connection the server may be closing as idle.
            .pool_idle_timeout(crate::server::CLIENT_POOL_IDLE)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .no_proxy()
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                settings,
                registration,
                status: RwLock::new(Status::Starting),
                dirty_ms: AtomicU64::new(now_ms()),
                local: RwLock::new(Arc::new(LocalRegistry::default())),
                has_full_copy: AtomicBool::new(false),
                preferred: AtomicUsize::new(0),
                last_fetch_ms: AtomicU64::new(0),
                last_full_ms: AtomicU64::new(0),
                last_full_attempt_ms: AtomicU64::new(0),
                version: AtomicU64::new(0),
                watch_offered: AtomicBool::new(true),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Whether a registry is configured.
    pub fn is_enabled(&self) -> bool {
        !self.inner.settings.registry_urls.is_empty()
    }

    /// Who this process registers as, if it registers.
    pub fn registration(&self) -> Option<&Registration> {
        self.inner.registration.as_ref()
    }

    /// The status this process reports (`STARTING` until it is ready).
    pub fn status(&self) -> Status {
        *self
            .inner
            .status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes our status and tells the registry (a re-registration).
    pub async fn set_status(&self, status: Status) -> Result<(), DiscoveryError> {
        *self
            .inner
            .status
            .write()
            .unwrap_or_else(PoisonError::into_inner) = status;
        self.inner.dirty_ms.store(now_ms(), Ordering::Relaxed);
        self.register().await
    }

    /// `POST apps/{APP}` with our record and current status.
    pub async fn register(&self) -> Result<(), DiscoveryError> {
        let Some(me) = &self.inner.registration else {
            return Ok(());
        };
        let body = me.body(
            self.status(),
            &self.inner.settings,
            self.inner.dirty_ms.load(Ordering::Relaxed),
        );
        let path = format!("apps/{}", me.app);
        let response = self
            .send(|base, http| Ok(http.post(base.join(&path)?).json(&body)))
            .await?;
        let status = response.status();
        metrics::counter!("discovery_registrations_total", "outcome" => outcome(status))
            .increment(1);
        if status.is_success() {
            tracing::info!(app = %me.app, id = %me.instance_id, status = %self.status(), "registered");
            Ok(())
        } else {
            Err(DiscoveryError::Refused(status.as_u16()))
        }
    }

    /// One heartbeat; re-registers when the registry does not know us.
    pub async fn renew(&self) -> Result<(), DiscoveryError> {
        let Some(me) = &self.inner.registration else {
            return Ok(());
        };
        let path = format!("apps/{}/{}", me.app, me.instance_id);
        let query = [
            ("status", self.status().as_str().to_owned()),
            (
                "lastDirtyTimestamp",
                self.inner.dirty_ms.load(Ordering::Relaxed).to_string(),
            ),
        ];
        let response = self
            .send(|base, http| Ok(http.put(base.join(&path)?).query(&query)))
            .await;
        match response {
            Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                metrics::counter!("discovery_heartbeats_total", "outcome" => "reregistered")
                    .increment(1);
                tracing::info!(
                    "the registry does not know us (restarted or evicted); registering again"
                );
                self.register().await
            }
            Ok(r) if r.status().is_success() => {
                metrics::counter!("discovery_heartbeats_total", "outcome" => "ok").increment(1);
                Ok(())
            }
            Ok(r) => {
                metrics::counter!("discovery_heartbeats_total", "outcome" => "error").increment(1);
                Err(DiscoveryError::Refused(r.status().as_u16()))
            }
            Err(e) => {
                metrics::counter!("discovery_heartbeats_total", "outcome" => "error").increment(1);
                Err(e)
            }
        }
    }

    /// Marks us `DOWN` and cancels the lease. Best effort and bounded (3 s
    /// in all): a stop must not hang because the registry is away; if it is,
    /// our lease simply expires.
    pub async fn deregister(&self) {
        const LIMIT: Duration = Duration::from_secs(3);
        if !self.is_enabled() {
            return;
        }
        if tokio::time::timeout(LIMIT, self.leave()).await.is_err() {
            tracing::warn!("the registry did not answer in time; our lease will expire on its own");
        }
    }

    async fn leave(&self) {
        let Some(me) = &self.inner.registration else {
            return;
        };
        if let Err(e) = self.set_status(Status::Down).await {
            tracing::warn!(error = %e, "could not mark this instance DOWN");
        }
        let path = format!("apps/{}/{}", me.app, me.instance_id);
        match self
            .send(|base, http| Ok(http.delete(base.join(&path)?)))
            .await
        {
            Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_FOUND => {
                tracing::info!(app = %me.app, id = %me.instance_id, "deregistered");
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "the registry refused to cancel our lease")
            }
            Err(e) => tracing::warn!(error = %e, "could not cancel our lease; it will expire"),
        }
    }

    /// Heartbeats every renewal interval until `shutdown`.
    pub fn spawn_heartbeat(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let client = self.clone();
        let every = self.inner.settings.renewal_interval;
        tokio::spawn(async move {
            crate::shutdown::every_until(every, shutdown, || async {
                if let Err(e) = client.renew().await {
                    tracing::warn!(error = %e, "heartbeat failed; will retry");
                }
            })
            .await;
        })
    }

    /// Refreshes the local copy every fetch interval until `shutdown`. The
    /// first fetch happens at once.
    pub fn spawn_fetcher(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let client = self.clone();
        tokio::spawn(async move {
            if let Err(e) = client.fetch().await {
                tracing::warn!(error = %e, "first registry fetch failed; will retry");
            }
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = client.until_changed() => {}
                }
                if let Err(e) = client.fetch().await {
                    let known = client.snapshot().len();
                    tracing::warn!(error = %e, known, "registry fetch failed; serving the last known instances");
                    // A watch answers at once while the copy is behind:
                    // without this pause a failing fetch would spin.
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(client.inner.settings.fetch_interval) => {}
                    }
                }
            }
        })
    }
}

fn outcome(status: StatusCode) -> &'static str {
    if status.is_success() { "ok" } else { "refused" }
}

/// Milliseconds since the Unix epoch, Eureka's timestamp unit.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
