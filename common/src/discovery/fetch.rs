//! Keeping the local copy of the registry fresh: a full fetch first, then
//! deltas checked against the registry's hashcode, a full fetch again on a
//! mismatch, every `full_fetch_interval`, and whenever a caller finds every
//! instance it knows dead.
//!
//! **When to fetch: watch, else poll.** Between fetches the client waits
//! on a *watch* ([`DiscoveryClient::until_changed`]): `GET apps/watch?
//! version=<n>`, a long poll our registry answers as soon as its
//! `versions__delta` is not `n` (or after `watch_timeout`, 30 s). A new
//! instance, a cancelled one or a status change reaches every client within
//! milliseconds, and an idle registry answers one watch per client per 30 s
//! instead of a poll every 5 s. A registry that answers the watch with a
//! 404 (Eureka's own: it is not part of Eureka's protocol) is polled every
//! `fetch_interval` instead, for the life of the process; so is any
//! registry while watches fail.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::client::{DiscoveryClient, DiscoveryError, now_ms};
use super::eureka::parse_applications;
use super::local::{LocalRegistry, ServiceInstance};

impl DiscoveryClient {
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
        self.remember_version(apps.version.as_deref());
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
        self.remember_version(delta.version.as_deref());
        Ok(true)
    }

    /// Keeps `versions__delta` of the copy now held, for the next watch.
    fn remember_version(&self, version: Option<&str>) {
        let version = version.and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        self.inner.version.store(version, Ordering::Relaxed);
    }

    /// Waits until the registry may have changed (see the module docs): a
    /// watch while the registry offers one, else `fetch_interval`.
    pub(super) async fn until_changed(&self) {
        let settings = &self.inner.settings;
        let known = self.inner.version.load(Ordering::Relaxed);
        let watching = !settings.watch_timeout.is_zero()
            && known != 0
            && self.inner.watch_offered.load(Ordering::Relaxed);
        if watching {
            match self.watch(known).await {
                Ok(()) => return,
                Err(DiscoveryError::Refused(404 | 405)) => {
                    self.inner.watch_offered.store(false, Ordering::Relaxed);
                    tracing::info!(every = ?settings.fetch_interval,
                        "the registry offers no watch (apps/watch); polling it instead");
                }
                Err(e) => tracing::debug!(error = %e, "registry watch failed; polling once"),
            }
        }
        tokio::time::sleep(settings.fetch_interval).await;
    }

    /// One watch: returns when the registry's version is not `known`, or
    /// when the registry's wait ran out.
    async fn watch(&self, known: u64) -> Result<(), DiscoveryError> {
        let wait = self.inner.settings.watch_timeout;
        let path = format!(
            "apps/watch?version={known}&timeout={}",
            wait.as_secs().max(1)
        );
        let response = self
            .send(|base, http| {
                Ok(http
                    .get(base.join(&path)?)
                    // The registry holds it for up to `wait`.
                    .timeout(wait + self.inner.settings.request_timeout)
                    .header(reqwest::header::ACCEPT, "application/json"))
            })
            .await?;
        let status = response.status();
        metrics::counter!("discovery_watches_total", "outcome" => if status.is_success() { "ok" } else { "refused" })
            .increment(1);
        if status.is_success() {
            Ok(())
        } else {
            Err(DiscoveryError::Refused(status.as_u16()))
        }
    }

    fn replace_local(&self, local: LocalRegistry) {
        metrics::gauge!("discovery_known_instances").set(local.len() as f64);
        *self
            .inner
            .local
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(local);
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
}
