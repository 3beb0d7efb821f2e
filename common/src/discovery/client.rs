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
//! - **fetch** the registry every 5 s: a full `GET apps` the first time, then
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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::eureka::{Status, parse_applications};
use super::local::{LocalRegistry, ServiceInstance};

/// The largest registry answer read: 10,000 instances are about 20 MiB of
/// JSON; anything much larger is not a registry we should trust.
pub const MAX_REGISTRY_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// Timings and where the registry is. Defaults are Eureka's, except the
/// fetch interval (Eureka: 30 s; here 5 s, so a new instance gets traffic
/// sooner; a fetch of a small registry is cheap).
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    /// Registry base URLs, e.g. `http://127.0.0.1:8761/eureka/v2/`. Empty:
    /// no registry (the service runs standalone).
    pub registry_urls: Vec<Url>,
    pub renewal_interval: Duration,
    pub lease_duration: Duration,
    pub fetch_interval: Duration,
    /// A full fetch at least this often, whatever the deltas say.
    pub full_fetch_interval: Duration,
    /// Per request to the registry.
    pub request_timeout: Duration,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        Self {
            registry_urls: Vec::new(),
            renewal_interval: Duration::from_secs(30),
            lease_duration: Duration::from_secs(90),
            fetch_interval: Duration::from_secs(5),
            full_fetch_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(3),
        }
    }
}

/// Parses registry URLs, making each end in `/` so relative paths join
/// under it (`.../eureka/v2` and `.../eureka/v2/` mean the same).
pub fn parse_registry_urls(raw: &[String]) -> Result<Vec<Url>, String> {
    raw.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let with_slash = if s.ends_with('/') { s.to_owned() } else { format!("{s}/") };
            Url::parse(&with_slash)
                .map_err(|e| format!("registry URL {s:?} is not valid ({e}); use e.g. http://127.0.0.1:8761/eureka/v2/"))
        })
        .collect()
}

/// Who this process is, as the registry will list it.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Upper case, e.g. `MIDDLETIER`.
    pub app: String,
    /// e.g. `middletier`.
    pub vip: String,
    pub instance_id: String,
    /// Where callers connect: the advertised host.
    pub host: String,
    pub ip: String,
    pub port: u16,
}

impl Registration {
    /// A registration with the conventional id `{host}:{vip}:{port}`.
    pub fn new(app: &str, vip: &str, host: &str, port: u16, instance_id: Option<String>) -> Self {
        Self {
            app: app.to_ascii_uppercase(),
            vip: vip.to_owned(),
            instance_id: instance_id.unwrap_or_else(|| format!("{host}:{vip}:{port}")),
            host: host.to_owned(),
            ip: host.to_owned(),
            port,
        }
    }

    /// The record a standard Eureka client would send.
    fn body(&self, status: Status, settings: &DiscoverySettings, dirty_ms: u64) -> Value {
        let base = super::http_base(&self.host, self.port);
        json!({"instance": {
            "instanceId": self.instance_id,
            "hostName": self.host,
            "app": self.app,
            "ipAddr": self.ip,
            "status": status.as_str(),
            "overriddenstatus": "UNKNOWN",
            "port": {"$": self.port, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": {
                "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                "name": "MyOwn"
            },
            "leaseInfo": {
                "renewalIntervalInSecs": settings.renewal_interval.as_secs().max(1),
                "durationInSecs": settings.lease_duration.as_secs().max(1)
            },
            "metadata": {"@class": "java.util.Collections$EmptyMap"},
            "homePageUrl": format!("{base}/"),
            "statusPageUrl": format!("{base}/healthcheck"),
            "healthCheckUrl": format!("{base}/healthcheck"),
            "vipAddress": self.vip,
            "secureVipAddress": self.vip,
            "isCoordinatingDiscoveryServer": "false",
            "lastUpdatedTimestamp": dirty_ms.to_string(),
            "lastDirtyTimestamp": dirty_ms.to_string()
        }})
    }
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("no registry is configured")]
    Disabled,
    #[error("no registry answered ({0})")]
    Unreachable(String),
    #[error("the registry refused the request: HTTP {0}")]
    Refused(u16),
    #[error("the registry sent a body we cannot read: {0}")]
    BadBody(String),
}

/// Registers, renews and fetches. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct DiscoveryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    settings: DiscoverySettings,
    registration: Option<Registration>,
    status: RwLock<Status>,
    /// When our record last changed (ms since epoch): sent as
    /// `lastDirtyTimestamp` so the registry can tell a stale copy.
    dirty_ms: AtomicU64,
    /// The local copy, replaced whole on each fetch; readers clone the Arc.
    local: RwLock<Arc<LocalRegistry>>,
    /// Whether `local` came from a full fetch yet (deltas need a base).
    has_full_copy: AtomicBool,
    /// Index of the registry URL that last answered; tried first.
    preferred: AtomicUsize,
    /// When the last fetch started (ms since epoch), to rate-limit fetches
    /// made on demand.
    last_fetch_ms: AtomicU64,
    /// When the last full fetch succeeded (ms since epoch).
    last_full_ms: AtomicU64,
    /// When the last full fetch started, whatever its outcome: rate-limits
    /// the ones made on demand.
    last_full_attempt_ms: AtomicU64,
    /// One fetch at a time: concurrent callers wait for it instead of each
    /// sending their own.
    fetching: tokio::sync::Mutex<()>,
}

impl DiscoveryClient {
    pub fn new(
        settings: DiscoverySettings,
        registration: Option<Registration>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
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
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn is_enabled(&self) -> bool {
        !self.inner.settings.registry_urls.is_empty()
    }

    pub fn registration(&self) -> Option<&Registration> {
        self.inner.registration.as_ref()
    }

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

    /// Fetches the whole registry now unless a full fetch started within
    /// `min_age`: for callers that found no instance, or every instance
    /// they know dead (it may have been replaced by one that a delta never
    /// told us about, or registered a moment ago).
    pub async fn fetch_full_if_older_than(&self, min_age: Duration) -> Result<(), DiscoveryError> {
        let _one_at_a_time = self.inner.fetching.lock().await;
        let age = now_ms().saturating_sub(self.inner.last_full_attempt_ms.load(Ordering::Relaxed));
        if u128::from(age) < min_age.as_millis() {
            return Ok(());
        }
        self.inner.last_fetch_ms.store(now_ms(), Ordering::Relaxed);
        self.fetch_full().await
    }

    /// Refreshes the local copy: a delta when we have a base, else (or on a
    /// hashcode mismatch, or when the last full fetch is older than
    /// `full_fetch_interval`) a full fetch.
    pub async fn fetch(&self) -> Result<(), DiscoveryError> {
        let _one_at_a_time = self.inner.fetching.lock().await;
        self.fetch_unlocked().await
    }

    async fn fetch_unlocked(&self) -> Result<(), DiscoveryError> {
        let now = now_ms();
        self.inner.last_fetch_ms.store(now, Ordering::Relaxed);
        let full_age = now.saturating_sub(self.inner.last_full_ms.load(Ordering::Relaxed));
        let full_is_due =
            u128::from(full_age) >= self.inner.settings.full_fetch_interval.as_millis();
        if self.inner.has_full_copy.load(Ordering::Acquire) && !full_is_due {
            match self.fetch_delta().await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    metrics::counter!("discovery_fetches_total", "kind" => "delta", "outcome" => "hash_mismatch")
                        .increment(1);
                    tracing::debug!("delta did not reconcile; fetching the whole registry");
                }
                Err(e) => return Err(e),
            }
        }
        self.fetch_full().await
    }

    async fn fetch_full(&self) -> Result<(), DiscoveryError> {
        self.inner
            .last_full_attempt_ms
            .store(now_ms(), Ordering::Relaxed);
        let body = self.get_json("apps").await;
        metrics::counter!("discovery_fetches_total", "kind" => "full", "outcome" => if body.is_ok() { "ok" } else { "error" })
            .increment(1);
        let apps =
            parse_applications(&body?).map_err(|e| DiscoveryError::BadBody(e.to_string()))?;
        self.replace_local(LocalRegistry::from_full(&apps));
        self.inner.has_full_copy.store(true, Ordering::Release);
        self.inner.last_full_ms.store(now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// Applies a delta; `Ok(false)` when the result does not match the
    /// server's hashcode.
    async fn fetch_delta(&self) -> Result<bool, DiscoveryError> {
        let body = self.get_json("apps/delta").await;
        if body.is_err() {
            metrics::counter!("discovery_fetches_total", "kind" => "delta", "outcome" => "error")
                .increment(1);
        }
        let delta =
            parse_applications(&body?).map_err(|e| DiscoveryError::BadBody(e.to_string()))?;
        let mut updated = (*self.snapshot()).clone();
        updated.apply_delta(&delta);
        if delta
            .hashcode
            .as_deref()
            .is_some_and(|h| h != updated.hashcode())
        {
            return Ok(false);
        }
        metrics::counter!("discovery_fetches_total", "kind" => "delta", "outcome" => "ok")
            .increment(1);
        self.replace_local(updated);
        Ok(true)
    }

    fn replace_local(&self, local: LocalRegistry) {
        metrics::gauge!("discovery_known_instances").set(local.len() as f64);
        *self
            .inner
            .local
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(local);
    }

    async fn get_json(&self, path: &str) -> Result<Value, DiscoveryError> {
        let response = self
            .send(|base, http| {
                Ok(http
                    .get(base.join(path)?)
                    .header(reqwest::header::ACCEPT, "application/json"))
            })
            .await?;
        if !response.status().is_success() {
            return Err(DiscoveryError::Refused(response.status().as_u16()));
        }
        let body = crate::limits::read_capped(response, MAX_REGISTRY_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                crate::limits::ReadCappedError::TooLarge => DiscoveryError::BadBody(format!(
                    "the answer is larger than {} MiB",
                    MAX_REGISTRY_ANSWER_BYTES >> 20
                )),
                crate::limits::ReadCappedError::Transport(e) => {
                    DiscoveryError::BadBody(crate::root_cause(&e))
                }
            })?;
        serde_json::from_slice(&body).map_err(|e| DiscoveryError::BadBody(e.to_string()))
    }

    /// The local copy as last fetched.
    pub fn snapshot(&self) -> Arc<LocalRegistry> {
        self.inner
            .local
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `UP` instances of a VIP, from the local copy (no network).
    pub fn up_instances(&self, vip: &str) -> Vec<ServiceInstance> {
        self.snapshot().up_instances(vip)
    }

    /// Sends to the registries in order, starting with the one that last
    /// answered; a transport error or a 5xx moves on to the next.
    async fn send(
        &self,
        build: impl Fn(&Url, &reqwest::Client) -> Result<reqwest::RequestBuilder, url::ParseError>,
    ) -> Result<reqwest::Response, DiscoveryError> {
        let urls = &self.inner.settings.registry_urls;
        if urls.is_empty() {
            return Err(DiscoveryError::Disabled);
        }
        let first = self.inner.preferred.load(Ordering::Relaxed) % urls.len();
        let mut last_error = String::new();
        for offset in 0..urls.len() {
            let index = (first + offset) % urls.len();
            let request = match build(&urls[index], &self.inner.http) {
                Ok(request) => request,
                Err(e) => return Err(DiscoveryError::BadBody(e.to_string())),
            };
            match request.send().await {
                Ok(response) if !response.status().is_server_error() => {
                    self.inner.preferred.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Ok(response) => {
                    last_error = format!("{} answered HTTP {}", urls[index], response.status())
                }
                Err(e) => last_error = format!("{}: {}", urls[index], crate::root_cause(&e)),
            }
        }
        metrics::counter!("discovery_registry_unreachable_total").increment(1);
        Err(DiscoveryError::Unreachable(last_error))
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
        let every = self.inner.settings.fetch_interval;
        tokio::spawn(async move {
            if let Err(e) = client.fetch().await {
                tracing::warn!(error = %e, "first registry fetch failed; will retry");
            }
            crate::shutdown::every_until(every, shutdown, || async {
                if let Err(e) = client.fetch().await {
                    let known = client.snapshot().len();
                    tracing::warn!(error = %e, known, "registry fetch failed; serving the last known instances");
                }
            })
            .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls_get_a_trailing_slash() {
        let urls = parse_registry_urls(&[
            "http://a:8761/eureka/v2".into(),
            " ".into(),
            "http://b/eureka/".into(),
        ])
        .unwrap();
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["http://a:8761/eureka/v2/", "http://b/eureka/"]);
        assert_eq!(
            parse_registry_urls(&["http://a:8761/eureka/v2/".into()]).unwrap()[0]
                .join("apps/X")
                .unwrap()
                .as_str(),
            "http://a:8761/eureka/v2/apps/X"
        );
        assert!(parse_registry_urls(&["not a url".into()]).is_err());
        assert!(
            parse_registry_urls(&[String::new()]).unwrap().is_empty(),
            "empty means standalone"
        );
    }

    #[test]
    fn an_ipv6_host_makes_valid_urls_in_the_record() {
        let me = Registration::new("middletier", "middletier", "::1", 9191, None);
        let body = me.body(Status::Up, &DiscoverySettings::default(), 42);
        for field in ["homePageUrl", "statusPageUrl", "healthCheckUrl"] {
            let url = body["instance"][field].as_str().unwrap();
            assert!(url.starts_with("http://[::1]:9191/"), "{field}: {url}");
            assert!(Url::parse(url).is_ok(), "{field}: {url}");
        }
    }

    #[test]
    fn the_registration_body_is_what_a_eureka_client_sends() {
        let me = Registration::new("middletier", "middletier", "10.0.0.5", 9191, None);
        let body = me.body(Status::Up, &DiscoverySettings::default(), 42);
        let record = crate::discovery::eureka::InstanceRecord::from_envelope(body).unwrap();
        assert_eq!(
            record.instance_id().as_deref(),
            Some("10.0.0.5:middletier:9191")
        );
        assert_eq!(record.app().as_deref(), Some("MIDDLETIER"));
        assert_eq!(record.status(), Status::Up);
        assert_eq!(record.port(), Some(9191));
        assert!(record.port_enabled());
        assert_eq!(record.lease_field("durationInSecs"), Some(90));
        assert_eq!(record.lease_field("renewalIntervalInSecs"), Some(30));
        assert_eq!(record.last_dirty_timestamp(), Some(42));
        assert_eq!(
            record.text("healthCheckUrl").as_deref(),
            Some("http://10.0.0.5:9191/healthcheck")
        );
    }
}
