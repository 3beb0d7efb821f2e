//! Where subscriptions live: one trait, several stores.
//!
//! This is the Astyanax/Cassandra layer of the 2013 recipe made pluggable.
//! Handlers see only [`SubscriptionStore`]; `--store` picks the
//! implementation at start-up. Every implementation must pass the same
//! behavioural suite ([`suite`]), so swapping stores cannot change what a
//! user sees.
//!
//! The contract a store keeps:
//! - `add` returns only once the subscription is stored (for a durable
//!   store: durably), and is idempotent: adding twice keeps one entry, in its
//!   original place;
//! - `list` returns a user's subscriptions oldest first;
//! - `remove` is idempotent: removing what is not there succeeds;
//! - any failure to reach the data is [`StoreError::Unavailable`], which the
//!   API turns into a 503: never a silent success, never a 200 with nothing
//!   stored.

pub mod cassandra;
pub mod file;
mod memory;
mod metered;
#[cfg(test)]
pub(crate) mod suite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::api::{FeedUrl, UserId};

pub use cassandra::{CassandraSettings, CassandraStore};
pub use file::FileStore;
pub use memory::MemoryStore;
pub use metered::Metered;

/// One stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The feed.
    pub url: FeedUrl,
    /// When the user first subscribed to it.
    pub added_at: DateTime<Utc>,
}

/// A store could not do what was asked. The text goes to the log; the API
/// shows a generic message (stores' internals are not the user's business).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused the operation.
    #[error("the subscription store is unavailable: {0}")]
    Unavailable(String),
}

/// What every store does (see the module docs for the contract).
#[async_trait]
pub trait SubscriptionStore: Send + Sync + 'static {
    /// Short name for logs and `/healthcheck`: `memory`, `file`, `cassandra`.
    fn name(&self) -> &'static str;

    /// A user's subscriptions, oldest first.
    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError>;

    /// Stores a subscription; returns once it is stored.
    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError>;

    /// Removes a subscription if present.
    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError>;

    /// Whether the store can serve right now (for `/healthcheck`).
    async fn check(&self) -> Result<(), StoreError>;

    /// Resolves once the store is ready for its first request (a store that
    /// connects in the background waits here); until then the service
    /// stays `STARTING` in the registry.
    async fn ready(&self) {}
}

/// Oldest first; the URL breaks ties, so the order is stable.
pub(crate) fn sort_oldest_first(list: &mut [Subscription]) {
    list.sort_by(|a, b| a.added_at.cmp(&b.added_at).then_with(|| a.url.cmp(&b.url)));
}

/// A boxed store is a store, so decorators ([`Metered`], fault injection)
/// can wrap whichever store was chosen at start-up.
#[async_trait]
impl SubscriptionStore for Box<dyn SubscriptionStore> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError> {
        (**self).list(user).await
    }

    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        (**self).add(user, url).await
    }

    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        (**self).remove(user, url).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        (**self).check().await
    }

    async fn ready(&self) {
        (**self).ready().await;
    }
}
