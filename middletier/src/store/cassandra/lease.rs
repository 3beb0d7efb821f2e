//! The item-id worker lease: each middletier claims a worker number (0 to
//! 1023) in Cassandra with a lightweight transaction, holds it with a TTL,
//! and renews it; ids are made only while the lease is surely held (see
//! [`crate::store::ids`]).

use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::{Connected, applied};
use crate::store::StoreError;
use crate::store::ids::{self, IdGenerator, ItemId};

/// How long a claim on a worker number lasts unrenewed.
pub(super) const LEASE_TTL: Duration = Duration::from_secs(60);
/// How often the claim is renewed.
pub(super) const LEASE_RENEW_EVERY: Duration = Duration::from_secs(20);
/// Ids stop this long before the lease could expire.
pub(super) const LEASE_MARGIN: Duration = Duration::from_secs(15);
/// How soon a failed claim or renewal is tried again: at once, near
/// enough, so writes are back within a second or two of Cassandra.
pub(super) const LEASE_RETRY_EVERY: Duration = Duration::from_secs(1);

/// This process's worker number for item ids, while its lease holds.
#[derive(Debug, Default)]
pub(super) struct IdLease {
    held: Mutex<Option<Held>>,
}

#[derive(Debug)]
pub(super) struct Held {
    worker: u16,
    /// No id is made after this.
    valid_until: Instant,
    /// ... nor after this, by the wall clock: a monotonic clock does not
    /// advance while a virtual machine is suspended, but the lease's TTL in
    /// Cassandra does.
    valid_until_wall: std::time::SystemTime,
    ids: IdGenerator,
}

impl Held {
    pub(super) fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until && std::time::SystemTime::now() < self.valid_until_wall
    }
}

impl IdLease {
    pub(super) fn allocate(&self, n: usize, after: ItemId) -> Result<Vec<ItemId>, StoreError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.as_mut() {
            Some(lease) if lease.is_valid() => Ok(ids::next_after(&mut lease.ids, n, after)),
            _ => Err(Self::not_held()),
        }
    }

    /// Whether ids can be made now; `/healthcheck` says so.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.as_ref() {
            Some(lease) if lease.is_valid() => Ok(()),
            _ => Err(Self::not_held()),
        }
    }

    pub(super) fn not_held() -> StoreError {
        StoreError::Unavailable(
            "no new items can be stored: no worker number for item ids (its lease in Cassandra is being claimed)"
                .into(),
        )
    }

    pub(super) fn worker(&self) -> Option<u16> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|h| h.worker)
    }

    /// Records a claim or renewal sent at `sent` (monotonic), which was
    /// `sent_wall` by the wall clock.
    pub(super) fn hold(&self, worker: u16, sent: Instant, sent_wall: std::time::SystemTime) {
        let valid_until = sent + LEASE_TTL - LEASE_MARGIN;
        let valid_until_wall = sent_wall + LEASE_TTL - LEASE_MARGIN;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.as_mut() {
            Some(lease) if lease.worker == worker => {
                lease.valid_until = valid_until;
                lease.valid_until_wall = valid_until_wall;
            }
            _ => {
                *held = Some(Held {
                    worker,
                    valid_until,
                    valid_until_wall,
                    ids: IdGenerator::new(worker, ids::now_ms()),
                })
            }
        }
    }

    pub(super) fn lose(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Claims a free worker number, starting from a random one so that
/// middletiers starting together rarely contend.
pub(super) async fn claim_worker(db: &Connected, lease: &IdLease) -> Result<(), String> {
    let owner = lease_owner();
    let start = u16::try_from(getrandom::u32().unwrap_or(0) % u32::from(ids::WORKERS)).unwrap_or(0);
    let ttl = i32::try_from(LEASE_TTL.as_secs()).unwrap_or(60);
    for offset in 0..ids::WORKERS {
        let worker = (start + offset) % ids::WORKERS;
        let (sent, sent_wall) = (Instant::now(), std::time::SystemTime::now());
        let result = db
            .session
            .execute_unpaged(
                &db.statements.claim_worker,
                (i32::from(worker), owner.as_str(), ttl),
            )
            .await
            .map_err(|e| format!("claiming an item-id worker number failed: {e}"))?;
        if applied(result)? {
            lease.hold(worker, sent, sent_wall);
            OWNER.get_or_init(|| owner.clone());
            return Ok(());
        }
    }
    Err(format!(
        "all {} worker numbers for item ids are taken: more middletiers share this keyspace than ids allow",
        ids::WORKERS
    ))
}

/// Who this process is, in the lease table.
pub(super) static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub(super) fn lease_owner() -> String {
    OWNER.get().cloned().unwrap_or_else(|| {
        format!(
            "pid{}-{:016x}",
            std::process::id(),
            getrandom::u64().unwrap_or(0)
        )
    })
}

/// Failed rounds in a row after which the session is given up for a new
/// one (about 5 s at [`LEASE_RETRY_EVERY`]).
pub(super) const RECONNECT_AFTER: u32 = 5;

/// Why [`keep_lease`] returned.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LeaseEnded {
    /// The store was dropped.
    StoreGone,
    /// The lease could not be renewed or claimed [`RECONNECT_AFTER`] times
    /// in a row: Cassandra is away, or this session cannot reach it.
    Unreachable,
}

/// Renews the lease every [`LEASE_RENEW_EVERY`] while the store exists;
/// claims another number if it was lost. After a failure (Cassandra
/// unreachable, say) it tries again every [`LEASE_RETRY_EVERY`], not a
/// whole period later: once the lease has run out, no new item can be
/// stored until it is back. After [`RECONNECT_AFTER`] failures in a row it
/// returns, so the caller connects afresh: after a long outage the driver
/// refills its connection pool on a backoff of several seconds, while a new
/// session connects as soon as Cassandra answers.
pub(super) async fn keep_lease(db: &Connected, lease: &Weak<IdLease>) -> LeaseEnded {
    let mut wait = LEASE_RENEW_EVERY;
    let mut failures = 0;
    loop {
        tokio::time::sleep(wait).await;
        let Some(lease) = lease.upgrade() else {
            return LeaseEnded::StoreGone;
        };
        if renew_or_claim(db, &lease).await {
            failures = 0;
            wait = LEASE_RENEW_EVERY;
        } else {
            failures += 1;
            if failures >= RECONNECT_AFTER {
                return LeaseEnded::Unreachable;
            }
            wait = LEASE_RETRY_EVERY;
        }
    }
}

/// One round of [`keep_lease`]: whether the lease is held afterwards.
pub(super) async fn renew_or_claim(db: &Connected, lease: &IdLease) -> bool {
    let ttl = i32::try_from(LEASE_TTL.as_secs()).unwrap_or(60);
    let owner = lease_owner();
    let Some(worker) = lease.worker() else {
        return match claim_worker(db, lease).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?LEASE_RETRY_EVERY, "could not claim an item-id worker number");
                false
            }
        };
    };
    let (sent, sent_wall) = (Instant::now(), std::time::SystemTime::now());
    let renewed = db
        .session
        .execute_unpaged(
            &db.statements.renew_worker,
            (ttl, owner.as_str(), i32::from(worker), owner.as_str()),
        )
        .await
        .map_err(|e| e.to_string())
        .and_then(applied);
    match renewed {
        Ok(true) => {
            lease.hold(worker, sent, sent_wall);
            true
        }
        Ok(false) => {
            tracing::warn!(worker, "lost the item-id worker lease; claiming another");
            lease.lose();
            false
        }
        // Not known either way: keep the lease until it runs out.
        Err(e) => {
            tracing::warn!(worker, error = %e, retry_in = ?LEASE_RETRY_EVERY, "could not renew the item-id worker lease");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_live_id_lease_writes_and_health_say_no() {
        let lease = IdLease::default();
        assert!(lease.check().is_err(), "never claimed");
        lease.hold(3, Instant::now(), std::time::SystemTime::now());
        assert!(lease.check().is_ok());
        assert_eq!(lease.allocate(2, 0).unwrap().len(), 2);
        // A renewal that last succeeded a whole TTL ago (Cassandra was
        // away): the lease has run out, and health says why.
        let long_ago = Instant::now() - LEASE_TTL;
        let lapsed = IdLease::default();
        lapsed.hold(3, long_ago, std::time::SystemTime::now() - LEASE_TTL);
        let err = lapsed.check().unwrap_err().to_string();
        assert!(err.contains("no new items can be stored"), "{err}");
        assert!(lapsed.allocate(1, 0).is_err());
    }

    #[test]
    fn a_lease_runs_out_by_the_wall_clock_too() {
        // A virtual machine suspended for a minute: its monotonic clock
        // says a moment passed, the wall clock (and Cassandra's TTL) say
        // the lease has run out.
        let lease = IdLease::default();
        lease.hold(3, Instant::now(), std::time::SystemTime::now() - LEASE_TTL);
        assert!(lease.check().is_err());
        assert!(lease.allocate(1, 0).is_err());
    }
}
