//! Metrics for any store, as a decorator: it wraps a store, times and
//! counts each call, and passes it on. One place, so every store is measured
//! the same way:
//!
//! - `store_operations_total{store, op, outcome}` (`ok` or `error`)
//! - `store_operation_duration_seconds{store, op}` (histogram)

use std::time::Instant;

use async_trait::async_trait;
use common::api::{FeedUrl, UserId};

use super::{StoreError, Subscription, SubscriptionStore};

/// A store that counts and times every call to the store it wraps.
pub struct Metered<S> {
    inner: S,
}

impl<S: SubscriptionStore> std::fmt::Debug for Metered<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("store", &self.inner.name())
            .finish()
    }
}

impl<S: SubscriptionStore> Metered<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    async fn measure<T>(
        &self,
        op: &'static str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let store = self.inner.name();
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("store_operations_total", "store" => store, "op" => op, "outcome" => outcome).increment(1);
        metrics::histogram!("store_operation_duration_seconds", "store" => store, "op" => op)
            .record(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl<S: SubscriptionStore> SubscriptionStore for Metered<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError> {
        self.measure("list", self.inner.list(user)).await
    }

    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        self.measure("add", self.inner.add(user, url)).await
    }

    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        self.measure("remove", self.inner.remove(user, url)).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.measure("check", self.inner.check()).await
    }

    async fn ready(&self) {
        self.inner.ready().await;
    }
}
