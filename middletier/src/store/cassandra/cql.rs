//! Every CQL statement the store runs, in one place, and the pure pieces
//! around them: keyspace names, replication, and turning rows into
//! subscriptions. Table (docs/ARCHITECTURE.md, "The data model"):
//!
//! ```cql
//! subscriptions (user_id text, feed_url text, added_at timestamp,
//!                PRIMARY KEY (user_id, feed_url))
//! ```
//!
//! The partition key is the user, so a user's list is one partition read,
//! clustered by URL; the reader's order (oldest first) is restored from
//! `added_at` after reading.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use common::api::FeedUrl;

use crate::store::{Subscription, sort_oldest_first};

/// How the keyspace is replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with this replication factor: one data centre.
    Simple(u32),
    /// `NetworkTopologyStrategy`: a factor per data centre.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// Parses `3` (SimpleStrategy, RF 3) or `dc1=3,dc2=2`
    /// (NetworkTopologyStrategy).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let factor = |text: &str| -> Result<u32, String> {
            text.trim()
                .parse::<u32>()
                .ok()
                .filter(|f| *f > 0)
                .ok_or_else(|| {
                    format!("{text:?} is not a replication factor (a whole number from 1)")
                })
        };
        if !raw.contains('=') {
            return factor(raw).map(Replication::Simple);
        }
        raw.split(',')
            .map(|pair| {
                let (dc, rf) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not datacenter=factor"))?;
                let dc = dc.trim();
                if dc.is_empty()
                    || !dc
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(format!("{dc:?} is not a data centre name"));
                }
                Ok((dc.to_owned(), factor(rf)?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Replication::NetworkTopology)
    }

    /// The CQL map literal for `WITH replication = ...`.
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(rf) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
            }
            Replication::NetworkTopology(dcs) => {
                let mut map = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, rf) in dcs {
                    let _ = write!(map, ", '{dc}': {rf}");
                }
                map.push('}');
                map
            }
        }
    }
}

/// Checks a keyspace name, since it is written into CQL text: letters,
/// digits and `_`, starting with a letter, at most 48 characters.
pub fn keyspace(name: &str) -> Result<&str, String> {
    let ok = (1..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "{name:?} is not a valid keyspace name: use letters, digits and _, starting with a letter (at most 48)"
        ))
    }
}

/// `CREATE KEYSPACE IF NOT EXISTS`.
pub fn create_keyspace(keyspace: &str, replication: &Replication) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
        replication.cql()
    )
}

/// `CREATE TABLE IF NOT EXISTS subscriptions`.
pub fn create_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.subscriptions \
         (user_id text, feed_url text, added_at timestamp, PRIMARY KEY (user_id, feed_url))"
    )
}

/// A user's subscriptions: one partition.
pub fn select_user(keyspace: &str) -> String {
    format!("SELECT feed_url, added_at FROM {keyspace}.subscriptions WHERE user_id = ?")
}

/// One subscription, to keep the first `added_at` on a repeated add.
pub fn select_one(keyspace: &str) -> String {
    format!("SELECT added_at FROM {keyspace}.subscriptions WHERE user_id = ? AND feed_url = ?")
}

/// Stores one subscription.
pub fn insert(keyspace: &str) -> String {
    format!("INSERT INTO {keyspace}.subscriptions (user_id, feed_url, added_at) VALUES (?, ?, ?)")
}

/// Removes one subscription.
pub fn delete(keyspace: &str) -> String {
    format!("DELETE FROM {keyspace}.subscriptions WHERE user_id = ? AND feed_url = ?")
}

/// A cheap query every node answers: is the cluster there?
pub const PING: &str = "SELECT release_version FROM system.local";

/// Rows of `select_user` → subscriptions, oldest first. A row whose URL no
/// longer parses (written by hand, or by an older version) is skipped and
/// logged rather than failing the whole list.
pub fn subscriptions(rows: impl IntoIterator<Item = (String, DateTime<Utc>)>) -> Vec<Subscription> {
    let mut list: Vec<Subscription> = rows
        .into_iter()
        .filter_map(|(url, added_at)| match FeedUrl::parse(&url) {
            Ok(url) => Some(Subscription { url, added_at }),
            Err(e) => {
                tracing::warn!(url, error = %e, "skipping an unreadable stored URL");
                None
            }
        })
        .collect();
    sort_oldest_first(&mut list);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_is_simple_by_default_and_per_dc_on_request() {
        assert_eq!(Replication::parse("1"), Ok(Replication::Simple(1)));
        assert_eq!(
            Replication::parse(" dc1=3, dc-2=2 "),
            Ok(Replication::NetworkTopology(vec![
                ("dc1".into(), 3),
                ("dc-2".into(), 2)
            ]))
        );
        assert_eq!(
            Replication::Simple(1).cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        assert_eq!(
            Replication::NetworkTopology(vec![("eu".into(), 3), ("us".into(), 2)]).cql(),
            "{'class': 'NetworkTopologyStrategy', 'eu': 3, 'us': 2}"
        );
        for bad in ["0", "three", "dc1=", "=3", "dc'1=3", ""] {
            assert!(Replication::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keyspace_names_cannot_smuggle_cql() {
        assert_eq!(keyspace("rss"), Ok("rss"));
        assert_eq!(keyspace("rss_test_1"), Ok("rss_test_1"));
        for bad in ["", "1rss", "rss; DROP KEYSPACE x", "rss.x", &"a".repeat(49)] {
            assert!(keyspace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statements_use_the_keyspace_and_the_design_table() {
        assert_eq!(
            create_table("rss"),
            "CREATE TABLE IF NOT EXISTS rss.subscriptions (user_id text, feed_url text, added_at timestamp, PRIMARY KEY (user_id, feed_url))"
        );
        assert!(
            create_keyspace("rss", &Replication::Simple(1))
                .starts_with("CREATE KEYSPACE IF NOT EXISTS rss WITH replication")
        );
        assert_eq!(
            select_user("k"),
            "SELECT feed_url, added_at FROM k.subscriptions WHERE user_id = ?"
        );
        assert!(insert("k").contains("VALUES (?, ?, ?)"));
        assert!(delete("k").ends_with("WHERE user_id = ? AND feed_url = ?"));
    }

    #[test]
    fn rows_become_subscriptions_oldest_first() {
        let at = |ms| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
        let list = subscriptions([
            ("https://b.example/".to_owned(), at(2_000)),
            ("not a url".to_owned(), at(1_500)),
            ("https://a.example/".to_owned(), at(3_000)),
            ("https://c.example/".to_owned(), at(1_000)),
        ]);
        let urls: Vec<_> = list.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://c.example/",
                "https://b.example/",
                "https://a.example/"
            ]
        );
    }
}
