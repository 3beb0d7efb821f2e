//! Keeping the local copy of the registry fresh: a full fetch first, then
//! deltas checked against the registry's hashcode, a full fetch again on a
//! mismatch, every `full_fetch_interval`, and whenever a caller finds every
//! instance it knows dead.

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
