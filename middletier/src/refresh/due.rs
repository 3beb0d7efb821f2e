//! When each known feed is next due, as far as this process knows: a plain
//! table, kept by the [`Refresher`](super::Refresher) alone.
//!
//! A feed handed out as due is *taken* until its refresh is done, so a
//! scheduler tick that comes while it is still running does not hand it
//! out again. Scans of the store replace the times, never what is taken.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use common::api::FeedUrl;

/// Due times and what is taken (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct DueTable {
    due: HashMap<FeedUrl, DateTime<Utc>>,
    taken: HashSet<FeedUrl>,
}

/// The feeds this instance owns now, and those of them that are due.
#[derive(Debug)]
pub struct Owned<T> {
    /// How many known feeds this instance owns.
    pub owned: usize,
    /// The due ones, oldest due first.
    pub due: Vec<T>,
}

impl DueTable {
    /// A feed just added: due at `at`, unless it is known already.
    pub(crate) fn add(&mut self, url: &FeedUrl, at: DateTime<Utc>) {
        self.due.entry(url.clone()).or_insert(at);
    }

    /// `url` is next due at `at`.
    pub(crate) fn set(&mut self, url: &FeedUrl, at: DateTime<Utc>) {
        self.due.insert(url.clone(), at);
    }

    /// Nobody reads `url` any more.
    pub(crate) fn remove(&mut self, url: &FeedUrl) {
        self.due.remove(url);
    }

    /// The times as a scan of the store found them.
    pub(crate) fn replace(&mut self, scanned: impl IntoIterator<Item = (FeedUrl, DateTime<Utc>)>) {
        self.due = scanned.into_iter().collect();
    }

    /// Takes every feed `owns` says is ours that is due at `now` and not
    /// taken already, oldest due first.
    pub(crate) fn take_due(
        &mut self,
        now: DateTime<Utc>,
        owns: impl Fn(&FeedUrl) -> bool,
    ) -> Owned<(FeedUrl, DateTime<Utc>)> {
        let mut owned = 0;
        let mut due: Vec<(FeedUrl, DateTime<Utc>)> = self
            .due
            .iter()
            .filter(|(url, _)| owns(url))
            .inspect(|_| owned += 1)
            .filter(|(url, at)| **at <= now && !self.taken.contains(*url))
            .map(|(url, at)| (url.clone(), *at))
            .collect();
        due.sort_by_key(|(_, at)| *at);
        self.taken.extend(due.iter().map(|(url, _)| url.clone()));
        Owned { owned, due }
    }

    /// The refresh of a taken feed is over.
    pub(crate) fn release(&mut self, url: &FeedUrl) {
        self.taken.remove(url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(n: u32) -> FeedUrl {
        FeedUrl::parse(&format!("http://example.com/{n}.xml")).unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn urls(owned: &Owned<(FeedUrl, DateTime<Utc>)>) -> Vec<FeedUrl> {
        owned.due.iter().map(|(u, _)| u.clone()).collect()
    }

    #[test]
    fn due_feeds_come_oldest_first_and_only_once_until_released() {
        let mut table = DueTable::default();
        table.set(&url(1), at(20));
        table.set(&url(2), at(10));
        table.set(&url(3), at(99));
        let first = table.take_due(at(50), |_| true);
        assert_eq!(first.owned, 3);
        assert_eq!(urls(&first), [url(2), url(1)]);
        assert!(table.take_due(at(50), |_| true).due.is_empty(), "taken");
        table.release(&url(1));
        assert_eq!(urls(&table.take_due(at(50), |_| true)), [url(1)]);
    }

    #[test]
    fn only_owned_feeds_are_counted_and_handed_out() {
        let mut table = DueTable::default();
        table.set(&url(1), at(0));
        table.set(&url(2), at(0));
        let mine = table.take_due(at(1), |u| *u == url(2));
        assert_eq!((mine.owned, urls(&mine)), (1, vec![url(2)]));
    }

    #[test]
    fn adding_keeps_a_known_time_and_a_scan_keeps_what_is_taken() {
        let mut table = DueTable::default();
        table.set(&url(1), at(100));
        table.add(&url(1), at(0));
        assert!(table.take_due(at(50), |_| true).due.is_empty());
        table.replace([(url(1), at(0))]);
        assert_eq!(urls(&table.take_due(at(50), |_| true)), [url(1)]);
        table.replace([(url(1), at(0))]);
        assert!(
            table.take_due(at(50), |_| true).due.is_empty(),
            "still taken"
        );
        table.remove(&url(1));
        table.release(&url(1));
        assert!(table.take_due(at(50), |_| true).due.is_empty(), "forgotten");
    }
}
