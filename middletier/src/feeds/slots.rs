//! Fetch slots, shared fairly.
//!
//! A fetch holds a slot for as long as the publisher takes, up to the fetch
//! timeout. With one shared pool, one user with a hundred feeds that never
//! answer would hold every slot, and everyone else's new feeds would wait
//! behind them. So a fetch takes three permits, in this order:
//!
//! 1. its **user's** (default 8 at once): one person cannot take more than
//!    a share of the pool, however many feeds they have;
//! 2. its **host's** (default 4 at once, per host and port): politeness
//!    towards publishers, and one slow site cannot take the pool either;
//! 3. one of the **pool's** (default 32): the bound on fetches in flight.
//!
//! Always taking them in that order means two fetches can never each hold
//! what the other waits for. A fetch the scheduler makes for nobody in
//! particular skips the first. Per-key semaphores exist only while someone
//! holds or waits for them, so the maps stay as small as the work in
//! flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many fetches may run at once, in all and per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotLimits {
    /// Fetches in flight at once, in all.
    pub total: usize,
    /// ... from one host and port.
    pub per_host: usize,
    /// ... for one user's feeds.
    pub per_user: usize,
}

impl Default for SlotLimits {
    fn default() -> Self {
        Self {
            total: 32,
            per_host: 4,
            per_user: 8,
        }
    }
}

/// The pool of fetch slots. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct FetchSlots {
    total: Arc<Semaphore>,
    hosts: KeyedSemaphores,
    users: KeyedSemaphores,
}

/// Held for the duration of one fetch; dropping it frees every permit.
#[derive(Debug)]
pub struct Slot {
    // Fields drop in order: the pool's permit first, so a waiting fetch of
    // another user can start as soon as possible.
    _total: OwnedSemaphorePermit,
    _host: KeyedPermit,
    _user: Option<KeyedPermit>,
}

impl FetchSlots {
    /// A pool with `limits`.
    pub fn new(limits: SlotLimits) -> Self {
        Self {
            total: Arc::new(Semaphore::new(limits.total.max(1))),
            hosts: KeyedSemaphores::new(limits.per_host),
            users: KeyedSemaphores::new(limits.per_user),
        }
    }

    /// Waits for a slot for a fetch from `host` on behalf of `user` (none
    /// for the background scheduler). `None` only if a semaphore was
    /// closed, which this type never does.
    pub async fn acquire(&self, host: &str, user: Option<&str>) -> Option<Slot> {
        let user = match user {
            Some(user) => Some(self.users.acquire(user).await?),
            None => None,
        };
        let host = self.hosts.acquire(host).await?;
        let total = self.total.clone().acquire_owned().await.ok()?;
        Some(Slot {
            _total: total,
            _host: host,
            _user: user,
        })
    }

    /// Slots in use now (for tests and metrics).
    pub fn in_use(&self, limits: &SlotLimits) -> usize {
        limits.total.max(1) - self.total.available_permits()
    }
}

/// A semaphore per key, created on first use and dropped with its last
/// holder or waiter.
#[derive(Debug)]
struct KeyedSemaphores {
    per_key: usize,
    map: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A permit of one key's semaphore; removes the key when nobody else holds
/// or waits for it.
#[derive(Debug)]
struct KeyedPermit {
    key: String,
    permit: Option<OwnedSemaphorePermit>,
    map: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl KeyedSemaphores {
    fn new(per_key: usize) -> Self {
        Self {
            per_key: per_key.max(1),
            map: Arc::default(),
        }
    }

    async fn acquire(&self, key: &str) -> Option<KeyedPermit> {
        let semaphore = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
            .clone();
        // If this future is dropped while waiting, `semaphore` (our clone)
        // goes with it; a key left with no holder is removed by the next
        // permit's drop, or stays as one small idle entry.
        let permit = semaphore.acquire_owned().await.ok()?;
        Some(KeyedPermit {
            key: key.to_owned(),
            permit: Some(permit),
            map: self.map.clone(),
        })
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for KeyedPermit {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(permit) = self.permit.take() else {
            return;
        };
        drop(permit);
        // The map's Arc is the only one left: nobody holds or waits.
        if map
            .get(&self.key)
            .is_some_and(|semaphore| Arc::strong_count(semaphore) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMITS: SlotLimits = SlotLimits {
        total: 4,
        per_host: 2,
        per_user: 3,
    };

    /// Whether `acquire` would get a slot now (without waiting).
    async fn available(slots: &FetchSlots, host: &str, user: Option<&str>) -> Option<Slot> {
        tokio::time::timeout(Duration::from_millis(10), slots.acquire(host, user))
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn one_user_cannot_take_every_slot() {
        let slots = FetchSlots::new(LIMITS);
        let mut held = Vec::new();
        for host in ["a", "b", "c", "d", "e"] {
            if let Some(slot) = available(&slots, host, Some("mallory")).await {
                held.push(slot);
            }
        }
        assert_eq!(held.len(), 3, "mallory has her share");
        assert!(
            available(&slots, "f", Some("alice")).await.is_some(),
            "alice still gets a slot"
        );
    }

    #[tokio::test]
    async fn one_host_cannot_take_every_slot() {
        let slots = FetchSlots::new(LIMITS);
        let first = available(&slots, "slow.example", None).await;
        let second = available(&slots, "slow.example", Some("bob")).await;
        assert!(first.is_some() && second.is_some());
        assert!(
            available(&slots, "slow.example", Some("carol"))
                .await
                .is_none()
        );
        assert!(
            available(&slots, "fast.example", Some("carol"))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn the_pool_bounds_the_total_and_frees_slots_on_drop() {
        let slots = FetchSlots::new(LIMITS);
        let held: Vec<Option<Slot>> =
            futures::future::join_all(["a", "b", "c", "d"].map(|host| slots.acquire(host, None)))
                .await;
        assert_eq!(slots.in_use(&LIMITS), 4);
        assert!(available(&slots, "e", Some("dave")).await.is_none());
        drop(held);
        assert_eq!(slots.in_use(&LIMITS), 0);
        assert!(available(&slots, "e", Some("dave")).await.is_some());
    }

    #[tokio::test]
    async fn keys_are_forgotten_when_nobody_holds_them() {
        let slots = FetchSlots::new(LIMITS);
        let slot = slots.acquire("a.example", Some("erin")).await.unwrap();
        assert_eq!((slots.hosts.keys(), slots.users.keys()), (1, 1));
        drop(slot);
        assert_eq!((slots.hosts.keys(), slots.users.keys()), (0, 0));
    }
}
