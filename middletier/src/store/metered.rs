//! One decorator around whichever store was chosen: it times and counts
//! every call, and, only when fault injection is on, fails calls while the
//! store is "down" (see [`crate::faults`]). One place, so every store is
//! measured (and can be failed) the same way:
//!
//! - `store_operations_total{store, op, outcome}` (`ok` or `error`)
//! - `store_operation_duration_seconds{store, op}` (histogram)
//! - with tracing on, a `store {op}` span per call

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::api::{Account, FeedUrl, UserId};
use tracing::Instrument as _;
use tracing::field::Empty;

use super::{
    FeedRecord, FeedUpdate, ItemId, ReadState, StarredItem, StateEdits, Store, StoreError,
    StoredItem, Subscription,
};
use crate::faults::Faults;

/// A store that counts and times every call to the store it wraps.
pub(crate) struct Metered {
    inner: Box<dyn Store>,
    faults: Option<Arc<Faults>>,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("store", &self.inner.name())
            .field("fault_injection", &self.faults.is_some())
            .finish()
    }
}

impl Metered {
    /// Wraps `inner`; with `faults`, its calls fail while the injected
    /// store outage is on.
    pub(crate) fn new(inner: Box<dyn Store>, faults: Option<Arc<Faults>>) -> Self {
        Self { inner, faults }
    }

    /// `Err` while an outage is injected (`/admin/faults`).
    fn injected_outage(&self) -> Result<(), StoreError> {
        match &self.faults {
            Some(faults) if faults.store_is_down() => Err(StoreError::Unavailable(
                "injected fault: the store is down".into(),
            )),
            _ => Ok(()),
        }
    }

    async fn measure<T>(
        &self,
        op: &'static str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.measure_batch(op, None, call).await
    }

    /// [`Metered::measure`] for an operation on `batch` keys at once.
    async fn measure_batch<T>(
        &self,
        op: &'static str,
        batch: Option<usize>,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let store = self.inner.name();
        let span = common::telemetry::span(|| {
            tracing::info_span!(
                "store",
                otel.name = %format_args!("store {op}"),
                otel.kind = "client",
                otel.status_code = Empty,
                db.system.name = store,
                db.operation.name = op,
                db.operation.batch.size = batch,
                error.message = Empty,
            )
        });
        let result = match self.injected_outage() {
            Err(down) => Err(down),
            Ok(()) => call.instrument(span.clone()).await,
        };
        if let Err(e) = &result {
            span.record("otel.status_code", "ERROR");
            span.record("error.message", tracing::field::display(e));
        }
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("store_operations_total", "store" => store, "op" => op, "outcome" => outcome).increment(1);
        metrics::histogram!("store_operation_duration_seconds", "store" => store, "op" => op)
            .record(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl Store for Metered {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
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

    async fn has_subscribers(&self, url: &FeedUrl) -> Result<bool, StoreError> {
        self.measure("has_subscribers", self.inner.has_subscribers(url))
            .await
    }

    async fn feed(&self, url: &FeedUrl) -> Result<Option<FeedRecord>, StoreError> {
        self.measure("feed", self.inner.feed(url)).await
    }

    async fn schedule(&self) -> Result<Vec<(FeedUrl, DateTime<Utc>)>, StoreError> {
        self.measure("schedule", self.inner.schedule()).await
    }

    async fn create_feed(&self, record: &FeedRecord) -> Result<(), StoreError> {
        self.measure("create_feed", self.inner.create_feed(record))
            .await
    }

    async fn save_fetch(&self, update: &FeedUpdate) -> Result<(), StoreError> {
        self.measure("save_fetch", self.inner.save_fetch(update))
            .await
    }

    async fn delete_feed(&self, url: &FeedUrl) -> Result<(), StoreError> {
        self.measure("delete_feed", self.inner.delete_feed(url))
            .await
    }

    async fn items(&self, url: &FeedUrl) -> Result<Vec<StoredItem>, StoreError> {
        self.measure("items", self.inner.items(url)).await
    }

    async fn feeds_with_items(
        &self,
        urls: &[FeedUrl],
    ) -> Result<Vec<(Option<FeedRecord>, Vec<StoredItem>)>, StoreError> {
        self.measure_batch(
            "feeds_with_items",
            Some(urls.len()),
            self.inner.feeds_with_items(urls),
        )
        .await
    }

    async fn item(&self, id: ItemId) -> Result<Option<(FeedUrl, StoredItem)>, StoreError> {
        self.measure("item", self.inner.item(id)).await
    }

    async fn items_before(
        &self,
        url: &FeedUrl,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<StoredItem>, StoreError> {
        self.measure("items_before", self.inner.items_before(url, before, limit))
            .await
    }

    async fn item_ids(&self, urls: &[FeedUrl]) -> Result<Vec<Vec<ItemId>>, StoreError> {
        self.measure("item_ids", self.inner.item_ids(urls)).await
    }

    async fn items_by_ids(&self, ids: &[ItemId]) -> Result<Vec<(FeedUrl, StoredItem)>, StoreError> {
        self.measure("items_by_ids", self.inner.items_by_ids(ids))
            .await
    }

    async fn edit_states(&self, user: &UserId, edits: &StateEdits) -> Result<(), StoreError> {
        self.measure("edit_states", self.inner.edit_states(user, edits))
            .await
    }

    fn allocate_ids(&self, n: usize, after: ItemId) -> Result<Vec<ItemId>, StoreError> {
        self.injected_outage()?;
        self.inner.allocate_ids(n, after)
    }

    async fn read_states(&self, user: &UserId) -> Result<HashMap<FeedUrl, ReadState>, StoreError> {
        self.measure("read_states", self.inner.read_states(user))
            .await
    }

    async fn set_read_override(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        id: ItemId,
        read: Option<bool>,
    ) -> Result<(), StoreError> {
        self.measure(
            "set_read",
            self.inner.set_read_override(user, feed, id, read),
        )
        .await
    }

    async fn mark_read_before(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        before: ItemId,
    ) -> Result<(), StoreError> {
        self.measure("mark_read", self.inner.mark_read_before(user, feed, before))
            .await
    }

    async fn starred(&self, user: &UserId) -> Result<Vec<StarredItem>, StoreError> {
        self.measure("starred", self.inner.starred(user)).await
    }

    async fn set_starred(
        &self,
        user: &UserId,
        item: &StarredItem,
        starred: bool,
    ) -> Result<(), StoreError> {
        self.measure("set_starred", self.inner.set_starred(user, item, starred))
            .await
    }

    async fn account(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        self.measure("account", self.inner.account(user)).await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.measure("accounts", self.inner.accounts()).await
    }

    async fn create_account(&self, account: &Account) -> Result<bool, StoreError> {
        self.measure("create_account", self.inner.create_account(account))
            .await
    }

    async fn update_account(&self, account: &Account) -> Result<bool, StoreError> {
        self.measure("update_account", self.inner.update_account(account))
            .await
    }

    async fn delete_account(&self, user: &UserId) -> Result<(), StoreError> {
        self.measure("delete_account", self.inner.delete_account(user))
            .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.measure("check", self.inner.check()).await
    }

    async fn ready(&self) {
        self.inner.ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultSettings;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_downed_store_fails_every_call_until_restored() {
        let faults = Arc::new(Faults::default());
        let store = Metered::new(Box::new(MemoryStore::new()), Some(faults.clone()));
        let user = UserId::parse("u").unwrap();
        let url = FeedUrl::parse("https://a.example/").unwrap();
        store.add(&user, &url).await.unwrap();
        faults.apply(&FaultSettings {
            store_down: Some(true),
            ..FaultSettings::default()
        });
        assert!(store.list(&user).await.is_err());
        assert!(store.add(&user, &url).await.is_err());
        assert!(store.items(&url).await.is_err());
        assert!(store.allocate_ids(1, 0).is_err());
        assert!(store.check().await.is_err());
        faults.apply(&FaultSettings {
            store_down: Some(false),
            ..FaultSettings::default()
        });
        assert_eq!(
            store.list(&user).await.unwrap().len(),
            1,
            "nothing was lost"
        );
    }
}
