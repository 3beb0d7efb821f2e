//! `RSSGet`'s fallback: each user's last good answer from the middletier.
//!
//! When a read fails (no instance, a timeout, an open breaker), the edge
//! answers with what it last got for that user, marked degraded: a page
//! that is a little old beats no page. The answers are held within a count
//! and a byte budget, so the fallback can never cost the edge its memory;
//! beyond either, arbitrary answers are forgotten, and those users'
//! fallback is an empty list.
//!
//! Each answer keeps the middletier's tag (`ETag`) with it, so the next
//! read asks "has it changed?" (`If-None-Match`) and, when not, is served
//! this copy without the middletier encoding or sending it again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use common::api::UserId;

/// Users whose last good answer is kept.
const SAVED_USERS: usize = 10_000;
/// The answers' total size.
const SAVED_BYTES: usize = 64 * 1024 * 1024;

/// Each user's last good answer, for `RSSGet`'s fallback, held within a
/// count and a byte budget so a fallback cannot cost the edge its memory.
///
/// Eviction picks an arbitrary entry rather than the oldest: the fallback is
/// best effort, and any bound is what matters. An answer larger than a
/// quarter of the budget is not kept, so one huge list cannot push out
/// everyone else's.
#[derive(Debug)]
pub(crate) struct LastGood {
    answers: HashMap<UserId, (Bytes, Option<String>)>,
    bytes: usize,
    max_users: usize,
    max_bytes: usize,
}

impl LastGood {
    pub(crate) fn new(max_users: usize, max_bytes: usize) -> Self {
        Self {
            answers: HashMap::new(),
            bytes: 0,
            max_users,
            max_bytes,
        }
    }

    pub(crate) fn get(&self, user: &UserId) -> Option<Bytes> {
        self.answers.get(user).map(|(body, _)| body.clone())
    }

    /// The answer and its tag, if it has one.
    pub(crate) fn tagged(&self, user: &UserId) -> Option<(String, Bytes)> {
        let (body, tag) = self.answers.get(user)?;
        Some((tag.clone()?, body.clone()))
    }

    pub(crate) fn insert(&mut self, user: UserId, body: Bytes, tag: Option<String>) {
        self.remove(&user);
        if body.len() > self.max_bytes / 4 {
            return;
        }
        while self.answers.len() >= self.max_users || self.bytes + body.len() > self.max_bytes {
            let Some(victim) = self.answers.keys().next().cloned() else {
                break;
            };
            self.remove(&victim);
        }
        self.bytes += body.len();
        self.answers.insert(user, (body, tag));
    }

    pub(crate) fn remove(&mut self, user: &UserId) {
        if let Some((old, _)) = self.answers.remove(user) {
            self.bytes -= old.len();
        }
    }
}

/// [`LastGood`] behind its lock, shared by every request: the only way
/// the edge touches it.
#[derive(Debug, Default)]
pub(crate) struct Saved(Mutex<LastGood>);

impl Saved {
    /// `user`'s last good answer, if it is kept.
    pub(crate) fn get(&self, user: &UserId) -> Option<Bytes> {
        self.lock().get(user)
    }

    /// `user`'s last good answer and its tag, when it has one.
    pub(crate) fn tagged(&self, user: &UserId) -> Option<(String, Bytes)> {
        self.lock().tagged(user)
    }

    /// Keeps `body` (tagged `tag`) as `user`'s last good answer.
    pub(crate) fn save(&self, user: &UserId, body: Bytes, tag: Option<String>) {
        self.lock().insert(user.clone(), body, tag);
    }

    /// After a change (made or maybe made) the saved copy is out of date:
    /// better an empty fallback than one that shows a deleted feed.
    pub(crate) fn forget(&self, user: &UserId) {
        self.lock().remove(user);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LastGood> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for LastGood {
    fn default() -> Self {
        Self::new(SAVED_USERS, SAVED_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_cache_keeps_within_its_count_and_byte_budget() {
        let user = |n: usize| UserId::parse(&format!("user{n}")).unwrap();
        let body = |len: usize| Bytes::from(vec![b' '; len]);
        let mut saved = LastGood::new(3, 100);

        for n in 0..10 {
            saved.insert(user(n), body(10), None);
            assert!(saved.answers.len() <= 3);
        }
        assert_eq!(saved.bytes, 30);
        assert!(saved.get(&user(9)).is_some(), "the newest answer is kept");

        saved.insert(user(10), body(25), None);
        saved.insert(user(11), body(25), None);
        saved.insert(user(12), body(25), None);
        assert!(saved.bytes <= 100);
        assert_eq!(
            saved.bytes,
            saved.answers.values().map(|(b, _)| b.len()).sum::<usize>()
        );

        saved.insert(user(13), body(26), None);
        assert!(
            saved.get(&user(13)).is_none(),
            "an answer over a quarter of the budget is not kept"
        );
        assert_eq!(saved.answers.len(), 3, "and pushes nothing else out");

        saved.insert(user(12), body(5), Some("\"t\"".into()));
        assert_eq!(saved.tagged(&user(12)), Some(("\"t\"".into(), body(5))));
        assert_eq!(saved.tagged(&user(11)), None, "an answer with no tag");
        saved.remove(&user(12));
        saved.remove(&user(12));
        assert_eq!(
            saved.bytes,
            saved.answers.values().map(|(b, _)| b.len()).sum::<usize>()
        );
    }
}
