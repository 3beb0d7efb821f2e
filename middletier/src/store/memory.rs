//! The `memory` store: a `HashMap` behind a lock. Fast, and gone when the
//! process stops; the default for a single middletier you are trying out.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use chrono::Utc;
use common::api::{FeedUrl, UserId};

use super::{StoreError, Subscription, SubscriptionStore};

/// Subscriptions in a map, for one process's lifetime.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Per user, subscriptions in the order added. A `Vec` keeps that order
    /// and is small (users have at most a few hundred feeds). The lock is
    /// never held across an `.await`.
    users: RwLock<HashMap<UserId, Vec<Subscription>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SubscriptionStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users.get(user).cloned().unwrap_or_default())
    }

    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        let subscriptions = users.entry(user.clone()).or_default();
        if !subscriptions.iter().any(|s| &s.url == url) {
            subscriptions.push(Subscription {
                url: url.clone(),
                added_at: Utc::now(),
            });
        }
        Ok(())
    }

    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(subscriptions) = users.get_mut(user) {
            subscriptions.retain(|s| &s.url != url);
            if subscriptions.is_empty() {
                users.remove(user);
            }
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    crate::store::suite::behaves_like_a_store!(async { (super::MemoryStore::new(), ()) });
}
