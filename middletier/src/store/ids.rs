//! Item ids, Snowflake-style: unique in the store, growing with the time an
//! item was first stored, and below 2^53 so that JavaScript (and every JSON
//! parser that reads numbers as doubles) holds them exactly. Sync clients
//! (Google Reader API, Fever) rely on all three.
//!
//! ```text
//!  52                                  12 11        7 6            0
//! ┌──────────────────────────────────────┬───────────┬──────────────┐
//! │ ms since 2024-01-01 (41 bits, ~69 y)  │ worker (5)│ sequence (7) │
//! └──────────────────────────────────────┴───────────┴──────────────┘
//! ```
//!
//! The worker bits keep two middletiers sharing one store from ever making
//! the same id: each holds a different worker number (a lease in
//! Cassandra, see `store::cassandra`; always 0 for a store only one
//! process uses). The sequence counts ids made in the same millisecond;
//! when 128 are not enough, the generator borrows the next millisecond
//! rather than wait, and a clock that steps back never makes it repeat
//! itself. [`IdGenerator`] is plain data with the time passed in.

use chrono::{DateTime, Utc};

/// An item's id.
pub type ItemId = u64;

/// 2024-01-01T00:00:00Z, in ms since the Unix epoch: ids count from here.
pub const EPOCH_MS: u64 = common::api::ID_EPOCH_MS;
/// Bits for the worker number: 32 middletiers may share a store.
pub const WORKER_BITS: u32 = 5;
/// Bits for the sequence within one millisecond.
const SEQUENCE_BITS: u32 = 7;
/// Bits for the time: 53 in all.
const TIME_BITS: u32 = 53 - WORKER_BITS - SEQUENCE_BITS;
// The edge reads an id's time with `common::api::ItemId::stored_at_ms`.
const _: () = assert!(WORKER_BITS + SEQUENCE_BITS == common::api::ID_TIME_SHIFT);
/// The number of worker numbers there are.
pub const WORKERS: u16 = 1 << WORKER_BITS;
const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;

/// Makes ids for one worker. Not thread-safe on purpose: a store keeps it
/// behind its own lock.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    worker: u64,
    /// The millisecond of the last id made (since [`EPOCH_MS`]).
    last_ms: u64,
    sequence: u64,
}

impl IdGenerator {
    /// A generator for `worker` (taken modulo [`WORKERS`]) that makes no id
    /// from before `not_before_ms` (ms since the Unix epoch): a store that
    /// restarts passes the time of the last id it stored, in case the
    /// clock went back meanwhile.
    pub fn new(worker: u16, not_before_ms: u64) -> Self {
        Self {
            worker: u64::from(worker % WORKERS),
            last_ms: not_before_ms.saturating_sub(EPOCH_MS),
            sequence: MAX_SEQUENCE,
        }
    }

    /// The next id at `now_ms` (ms since the Unix epoch).
    pub fn next(&mut self, now_ms: u64) -> ItemId {
        let now = now_ms.saturating_sub(EPOCH_MS);
        if now > self.last_ms {
            self.last_ms = now;
            self.sequence = 0;
        } else if self.sequence < MAX_SEQUENCE {
            self.sequence += 1;
        } else {
            // This millisecond is used up (or the clock went back): borrow
            // the next one.
            self.last_ms += 1;
            self.sequence = 0;
        }
        compose(self.last_ms, self.worker, self.sequence)
    }

    /// The millisecond (since the Unix epoch) of the last id made.
    pub fn last_ms(&self) -> u64 {
        self.last_ms + EPOCH_MS
    }
}

fn compose(ms: u64, worker: u64, sequence: u64) -> ItemId {
    let ms = ms & ((1 << TIME_BITS) - 1);
    (ms << (WORKER_BITS + SEQUENCE_BITS)) | (worker << SEQUENCE_BITS) | sequence
}

/// The smallest id that can be made at `at` or later: every item first
/// stored before `at` has a smaller id. (How `mark-read` reads `before`.)
pub fn first_id_at(at: DateTime<Utc>) -> ItemId {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    compose(ms.saturating_sub(EPOCH_MS), 0, 0)
}

/// When the item with `id` was first stored.
pub fn stored_at(id: ItemId) -> DateTime<Utc> {
    let ms = (id >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS;
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or_default()
}

/// The first millisecond (since the Unix epoch) in which every id made is
/// greater than `id`, whichever worker makes it.
pub fn ms_after(id: ItemId) -> u64 {
    (id >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS + 1
}

/// `n` ids from `ids`, each greater than `after`: a feed's new items
/// always sort after its stored ones, even when this process's clock is
/// behind the one that stored them.
pub fn next_after(ids: &mut IdGenerator, n: usize, after: ItemId) -> Vec<ItemId> {
    let now = now_ms().max(if after == 0 { 0 } else { ms_after(after) });
    (0..n).map(|_| ids.next(now)).collect()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = EPOCH_MS + 1_000_000;

    #[test]
    fn ids_grow_and_stay_below_two_to_the_53() {
        let mut ids = IdGenerator::new(3, 0);
        let mut last = 0;
        for step in 0..1000 {
            let id = ids.next(T + step / 10);
            assert!(id > last, "ids grow");
            assert!(id < 1 << 53);
            last = id;
        }
        // Even in 2093, the last year the time bits cover.
        let mut late = IdGenerator::new(31, 0);
        assert!(late.next(EPOCH_MS + (1 << TIME_BITS) - 1) < 1 << 53);
    }

    #[test]
    fn two_workers_never_make_the_same_id() {
        let mut a = IdGenerator::new(1, 0);
        let mut b = IdGenerator::new(2, 0);
        let from_a: std::collections::HashSet<_> = (0..500).map(|i| a.next(T + i / 200)).collect();
        assert!((0..500).all(|i| !from_a.contains(&b.next(T + i / 200))));
    }

    #[test]
    fn a_busy_millisecond_borrows_the_next_one() {
        let mut ids = IdGenerator::new(0, 0);
        let made: Vec<_> = (0..300).map(|_| ids.next(T)).collect();
        assert!(made.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids.last_ms(), T + 2, "300 ids need three milliseconds");
        // Once the clock catches up, ids follow it again.
        assert!(ids.next(T + 10) > made[299]);
        assert_eq!(ids.last_ms(), T + 10);
    }

    #[test]
    fn ids_made_after_an_id_are_greater_whatever_the_clock_says() {
        // Stored by worker 5 a minute in the future (its clock ahead of
        // ours), or in this very millisecond by a higher worker number.
        let ahead = compose(now_ms() - EPOCH_MS + 60_000, 5, 3);
        let mut ids = IdGenerator::new(1, 0);
        assert!(next_after(&mut ids, 3, ahead).iter().all(|&id| id > ahead));
        let same_ms = compose(now_ms() - EPOCH_MS, 31, 127);
        let mut ids = IdGenerator::new(0, 0);
        assert!(
            next_after(&mut ids, 3, same_ms)
                .iter()
                .all(|&id| id > same_ms)
        );
    }

    #[test]
    fn a_clock_that_steps_back_does_not_repeat_ids() {
        let mut ids = IdGenerator::new(0, 0);
        let before = ids.next(T);
        let after = ids.next(T - 5_000);
        assert!(after > before);
        // A restarted store starts after the last id it stored.
        let mut restarted = IdGenerator::new(0, ids.last_ms());
        assert!(restarted.next(T - 5_000) > after);
    }

    #[test]
    fn ids_tell_when_they_were_made() {
        let at = DateTime::from_timestamp_millis(i64::try_from(T).unwrap()).unwrap();
        let mut ids = IdGenerator::new(7, 0);
        let id = ids.next(T);
        assert_eq!(stored_at(id), at);
        assert!(first_id_at(at) <= id);
        assert!(first_id_at(at + chrono::Duration::milliseconds(1)) > id);
    }
}
