//! Every CQL statement the store runs, in one place, and the pure pieces
//! around them: keyspace names, replication, and turning rows into
//! records. The tables are designed by query, one partition per read, with
//! no `ALLOW FILTERING` (docs/ARCHITECTURE.md, "The data model"):
//!
//! | table | partition key | the query it serves |
//! |---|---|---|
//! | `subscriptions` | user | a user's list (clustered by feed URL; the reader's order, oldest first, is restored from `added_at`) |
//! | `feed_subscribers` | feed URL | does anyone still read this feed? (`LIMIT 1`) |
//! | `feeds` | feed URL | one feed's fetch state; the scheduler's scan of every feed (token order, paged) |
//! | `items` | feed URL | a feed's items (clustered by item key, so a refresh upserts by key) |
//! | `item_feeds` | item id | which feed an item id belongs to (`PUT .../items/{id}`) |
//! | `read_marks` | user | a user's watermark per feed |
//! | `read_overrides` | user | a user's per-item exceptions (clustered by feed, then id, so "below the watermark" is one range delete) |
//! | `starred` | user | a user's starred items, newest first |
//! | `accounts` | a constant shard (0) | one account (clustered by user), and the admin's list of all: accounts are few (a household, a team), so one partition serves both |
//! | `id_workers` | worker number | the lease on a worker number for item ids (lightweight transactions, with a TTL) |
//! | `schema_migrations` | name | which one-time changes to old data have run (`migrate.rs`) |

use std::fmt::Write;

use chrono::{DateTime, Utc};
use common::api::FeedUrl;

use crate::store::{FeedRecord, ItemDetails, StoredItem, Subscription, sort_oldest_first};

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

/// `CREATE TABLE IF NOT EXISTS subscriptions`: the table of the 2013
/// recipe, unchanged.
pub fn create_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.subscriptions \
         (user_id text, feed_url text, added_at timestamp, PRIMARY KEY (user_id, feed_url))"
    )
}

/// Every table, in creation order.
pub fn create_tables(keyspace: &str) -> Vec<String> {
    let ks = keyspace;
    vec![
        create_table(ks),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.feed_subscribers \
             (feed_url text, user_id text, PRIMARY KEY (feed_url, user_id))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.feeds (feed_url text PRIMARY KEY, {FEED_COLUMNS_DDL})"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.items (feed_url text, item_key text, item_id bigint, \
             {ITEM_COLUMNS_DDL}, PRIMARY KEY (feed_url, item_key))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.item_feeds \
             (item_id bigint PRIMARY KEY, feed_url text, item_key text)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.read_marks \
             (user_id text, feed_url text, read_before bigint, PRIMARY KEY (user_id, feed_url))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.read_overrides (user_id text, feed_url text, \
             item_id bigint, read boolean, PRIMARY KEY (user_id, feed_url, item_id))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.starred (user_id text, item_id bigint, feed_url text, \
             item_key text, {ITEM_COLUMNS_DDL}, PRIMARY KEY (user_id, item_id)) \
             WITH CLUSTERING ORDER BY (item_id DESC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.accounts \
             (shard int, user_id text, record text, PRIMARY KEY (shard, user_id))"
        ),
        format!("CREATE TABLE IF NOT EXISTS {ks}.id_workers (worker int PRIMARY KEY, owner text)"),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (name text PRIMARY KEY, done_at timestamp)"
        ),
    ]
}

const FEED_COLUMNS_DDL: &str = "title text, site_url text, etag text, last_modified text, \
     last_fetched timestamp, next_fetch timestamp, error_count int, error text, failing_since timestamp";
const FEED_COLUMNS: &str = "feed_url, title, site_url, etag, last_modified, last_fetched, \
     next_fetch, error_count, error, failing_since";
const ITEM_COLUMNS_DDL: &str = "guid text, title text, link text, description text, published text, \
     details_hash bigint, content text, author text, enclosures text, categories list<text>";
/// What a listing reads: the summary, never the content.
const SUMMARY_COLUMNS: &str =
    "item_id, item_key, guid, title, link, description, published, details_hash";
const ITEM_COLUMNS: &str = "item_id, item_key, guid, title, link, description, published, \
     details_hash, content, author, enclosures, categories";
/// The item columns later versions added, as `ALTER TABLE ... ADD` takes
/// them: keyspaces made before them gain them when a middletier connects.
pub const ADDED_ITEM_COLUMNS: [(&str, &str); 5] = [
    ("details_hash", "bigint"),
    ("content", "text"),
    ("author", "text"),
    ("enclosures", "text"),
    ("categories", "list<text>"),
];

/// Every statement the store prepares, by name: as CQL text
/// (`Statements<String>`), then prepared on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statements<T = String> {
    /// A user's subscriptions: one partition.
    pub select_user: T,
    /// One subscription, to keep the first `added_at` on a repeated add.
    pub select_one: T,
    /// Stores one subscription.
    pub insert: T,
    /// Removes one subscription.
    pub delete: T,
    /// Records a reader of a feed.
    pub insert_subscriber: T,
    /// Forgets a reader of a feed.
    pub delete_subscriber: T,
    /// Whether a feed has any reader.
    pub any_subscriber: T,
    /// One feed's state.
    pub select_feed: T,
    /// Every feed and when it is due (a full scan, paged).
    pub scan_schedule: T,
    /// Writes a feed's state.
    pub insert_feed: T,
    /// Forgets a feed's state.
    pub delete_feed: T,
    /// A feed's items.
    pub select_items: T,
    /// A feed's item ids, and nothing else of them.
    pub select_item_ids: T,
    /// One item by its key.
    pub select_item: T,
    /// Writes one item.
    pub insert_item: T,
    /// Writes one item unless its key is stored (LWT): one id per key,
    /// however many middletiers store the same new item at once.
    pub insert_new_item: T,
    /// Removes one item.
    pub delete_item: T,
    /// Removes all of a feed's items.
    pub delete_items: T,
    /// Indexes an item id.
    pub insert_item_feed: T,
    /// Finds an item id's feed.
    pub select_item_feed: T,
    /// Drops an item id from the index.
    pub delete_item_feed: T,
    /// A user's watermarks.
    pub select_marks: T,
    /// One watermark.
    pub select_mark: T,
    /// Writes a first watermark (LWT).
    pub insert_mark: T,
    /// Raises a watermark, never lowers it (LWT).
    pub raise_mark: T,
    /// Forgets a watermark.
    pub delete_mark: T,
    /// A user's overrides.
    pub select_overrides: T,
    /// Writes one override.
    pub upsert_override: T,
    /// Drops one override.
    pub delete_override: T,
    /// Drops a feed's overrides below an id.
    pub delete_overrides_below: T,
    /// Drops all of a feed's overrides.
    pub delete_overrides_of_feed: T,
    /// A user's starred items.
    pub select_starred: T,
    /// Stars an item.
    pub insert_starred: T,
    /// Unstars an item.
    pub delete_starred: T,
    /// One account.
    pub select_account: T,
    /// Every account.
    pub select_accounts: T,
    /// Stores a new account unless the name is taken (LWT).
    pub insert_account: T,
    /// Replaces an existing account, never bringing back a deleted one
    /// (LWT: every write of an account is one, so they are ordered).
    pub update_account: T,
    /// Forgets an account (LWT, likewise).
    pub delete_account: T,
    /// Claims a worker number (LWT, with a TTL).
    pub claim_worker: T,
    /// Renews the claim (LWT, with a TTL).
    pub renew_worker: T,
}

impl Statements<String> {
    /// The statements for `ks`.
    pub fn new(ks: &str) -> Self {
        Self {
            select_user: format!(
                "SELECT feed_url, added_at FROM {ks}.subscriptions WHERE user_id = ?"
            ),
            select_one: format!(
                "SELECT added_at FROM {ks}.subscriptions WHERE user_id = ? AND feed_url = ?"
            ),
            insert: format!(
                "INSERT INTO {ks}.subscriptions (user_id, feed_url, added_at) VALUES (?, ?, ?)"
            ),
            delete: format!("DELETE FROM {ks}.subscriptions WHERE user_id = ? AND feed_url = ?"),
            insert_subscriber: format!(
                "INSERT INTO {ks}.feed_subscribers (feed_url, user_id) VALUES (?, ?)"
            ),
            delete_subscriber: format!(
                "DELETE FROM {ks}.feed_subscribers WHERE feed_url = ? AND user_id = ?"
            ),
            any_subscriber: format!(
                "SELECT user_id FROM {ks}.feed_subscribers WHERE feed_url = ? LIMIT 1"
            ),
            select_feed: format!("SELECT {FEED_COLUMNS} FROM {ks}.feeds WHERE feed_url = ?"),
            scan_schedule: format!("SELECT feed_url, next_fetch FROM {ks}.feeds"),
            insert_feed: format!(
                "INSERT INTO {ks}.feeds ({FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            delete_feed: format!("DELETE FROM {ks}.feeds WHERE feed_url = ?"),
            select_items: format!("SELECT {SUMMARY_COLUMNS} FROM {ks}.items WHERE feed_url = ?"),
            select_item_ids: format!("SELECT item_id FROM {ks}.items WHERE feed_url = ?"),
            select_item: format!(
                "SELECT {ITEM_COLUMNS} FROM {ks}.items WHERE feed_url = ? AND item_key = ?"
            ),
            insert_item: format!(
                "INSERT INTO {ks}.items (feed_url, {ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            insert_new_item: format!(
                "INSERT INTO {ks}.items (feed_url, {ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
            delete_item: format!("DELETE FROM {ks}.items WHERE feed_url = ? AND item_key = ?"),
            delete_items: format!("DELETE FROM {ks}.items WHERE feed_url = ?"),
            insert_item_feed: format!(
                "INSERT INTO {ks}.item_feeds (item_id, feed_url, item_key) VALUES (?, ?, ?)"
            ),
            select_item_feed: format!(
                "SELECT feed_url, item_key FROM {ks}.item_feeds WHERE item_id = ?"
            ),
            delete_item_feed: format!("DELETE FROM {ks}.item_feeds WHERE item_id = ?"),
            select_marks: format!(
                "SELECT feed_url, read_before FROM {ks}.read_marks WHERE user_id = ?"
            ),
            select_mark: format!(
                "SELECT read_before FROM {ks}.read_marks WHERE user_id = ? AND feed_url = ?"
            ),
            insert_mark: format!(
                "INSERT INTO {ks}.read_marks (user_id, feed_url, read_before) VALUES (?, ?, ?) IF NOT EXISTS"
            ),
            raise_mark: format!(
                "UPDATE {ks}.read_marks SET read_before = ? WHERE user_id = ? AND feed_url = ? IF read_before < ?"
            ),
            delete_mark: format!("DELETE FROM {ks}.read_marks WHERE user_id = ? AND feed_url = ?"),
            select_overrides: format!(
                "SELECT feed_url, item_id, read FROM {ks}.read_overrides WHERE user_id = ?"
            ),
            upsert_override: format!(
                "INSERT INTO {ks}.read_overrides (user_id, feed_url, item_id, read) VALUES (?, ?, ?, ?)"
            ),
            delete_override: format!(
                "DELETE FROM {ks}.read_overrides WHERE user_id = ? AND feed_url = ? AND item_id = ?"
            ),
            delete_overrides_below: format!(
                "DELETE FROM {ks}.read_overrides WHERE user_id = ? AND feed_url = ? AND item_id < ?"
            ),
            delete_overrides_of_feed: format!(
                "DELETE FROM {ks}.read_overrides WHERE user_id = ? AND feed_url = ?"
            ),
            select_starred: format!(
                "SELECT feed_url, {ITEM_COLUMNS} FROM {ks}.starred WHERE user_id = ?"
            ),
            insert_starred: format!(
                "INSERT INTO {ks}.starred (user_id, feed_url, {ITEM_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            delete_starred: format!("DELETE FROM {ks}.starred WHERE user_id = ? AND item_id = ?"),
            select_account: format!(
                "SELECT record FROM {ks}.accounts WHERE shard = 0 AND user_id = ?"
            ),
            select_accounts: format!("SELECT record FROM {ks}.accounts WHERE shard = 0"),
            insert_account: format!(
                "INSERT INTO {ks}.accounts (shard, user_id, record) VALUES (0, ?, ?) IF NOT EXISTS"
            ),
            update_account: format!(
                "UPDATE {ks}.accounts SET record = ? WHERE shard = 0 AND user_id = ? IF EXISTS"
            ),
            delete_account: format!(
                "DELETE FROM {ks}.accounts WHERE shard = 0 AND user_id = ? IF EXISTS"
            ),
            claim_worker: format!(
                "INSERT INTO {ks}.id_workers (worker, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            ),
            renew_worker: format!(
                "UPDATE {ks}.id_workers USING TTL ? SET owner = ? WHERE worker = ? IF owner = ?"
            ),
        }
    }
}

impl<T> Statements<T> {
    /// Each statement through `f` (e.g. prepared on a session), in turn.
    pub async fn try_map<U, E, Fut>(self, f: impl Fn(T) -> Fut) -> Result<Statements<U>, E>
    where
        Fut: std::future::Future<Output = Result<U, E>>,
    {
        Ok(Statements {
            select_user: f(self.select_user).await?,
            select_one: f(self.select_one).await?,
            insert: f(self.insert).await?,
            delete: f(self.delete).await?,
            insert_subscriber: f(self.insert_subscriber).await?,
            delete_subscriber: f(self.delete_subscriber).await?,
            any_subscriber: f(self.any_subscriber).await?,
            select_feed: f(self.select_feed).await?,
            scan_schedule: f(self.scan_schedule).await?,
            insert_feed: f(self.insert_feed).await?,
            delete_feed: f(self.delete_feed).await?,
            select_items: f(self.select_items).await?,
            select_item_ids: f(self.select_item_ids).await?,
            select_item: f(self.select_item).await?,
            insert_item: f(self.insert_item).await?,
            insert_new_item: f(self.insert_new_item).await?,
            delete_item: f(self.delete_item).await?,
            delete_items: f(self.delete_items).await?,
            insert_item_feed: f(self.insert_item_feed).await?,
            select_item_feed: f(self.select_item_feed).await?,
            delete_item_feed: f(self.delete_item_feed).await?,
            select_marks: f(self.select_marks).await?,
            select_mark: f(self.select_mark).await?,
            insert_mark: f(self.insert_mark).await?,
            raise_mark: f(self.raise_mark).await?,
            delete_mark: f(self.delete_mark).await?,
            select_overrides: f(self.select_overrides).await?,
            upsert_override: f(self.upsert_override).await?,
            delete_override: f(self.delete_override).await?,
            delete_overrides_below: f(self.delete_overrides_below).await?,
            delete_overrides_of_feed: f(self.delete_overrides_of_feed).await?,
            select_starred: f(self.select_starred).await?,
            insert_starred: f(self.insert_starred).await?,
            delete_starred: f(self.delete_starred).await?,
            select_account: f(self.select_account).await?,
            select_accounts: f(self.select_accounts).await?,
            insert_account: f(self.insert_account).await?,
            update_account: f(self.update_account).await?,
            delete_account: f(self.delete_account).await?,
            claim_worker: f(self.claim_worker).await?,
            renew_worker: f(self.renew_worker).await?,
        })
    }
}

/// A row of `feeds`, in [`FEED_COLUMNS`] order.
pub type FeedRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i32>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// A record as a row of `feeds`.
pub fn feed_row(record: &FeedRecord) -> FeedRow {
    (
        record.url.as_str().to_owned(),
        record.title.clone(),
        record.site_url.clone(),
        record.etag.clone(),
        record.last_modified.clone(),
        record.last_fetched,
        Some(record.next_fetch),
        Some(i32::try_from(record.error_count).unwrap_or(i32::MAX)),
        record.error.clone(),
        record.failing_since,
    )
}

/// A row of `feeds` as a record; `None` if its URL no longer parses.
pub fn feed_record(row: FeedRow) -> Option<FeedRecord> {
    let (url, title, site_url, etag, last_modified, last_fetched, next_fetch, errors, error, since) =
        row;
    Some(FeedRecord {
        url: FeedUrl::parse(&url).ok()?,
        title,
        site_url,
        etag,
        last_modified,
        last_fetched,
        next_fetch: next_fetch.unwrap_or_default(),
        error_count: u32::try_from(errors.unwrap_or(0)).unwrap_or(0),
        error,
        failing_since: since,
    })
}

/// A row of `select_items`, in [`SUMMARY_COLUMNS`] order.
pub type SummaryRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// A row of `items` (and the item part of `starred`), in
/// [`ITEM_COLUMNS`] order: the summary, then the details.
pub type ItemRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
);

/// An item as a row.
pub fn item_row(item: &StoredItem) -> ItemRow {
    let details = item.details.clone().unwrap_or_default();
    (
        i64::try_from(item.id).unwrap_or(i64::MAX),
        item.key.clone(),
        item.guid.clone(),
        Some(item.title.clone()),
        item.link.clone(),
        Some(item.description.clone()),
        item.published.as_ref().map(common::api::rfc3339::format),
        // The hash's bits, as Cassandra's signed bigint.
        Some(i64::from_ne_bytes(item.details_hash.to_ne_bytes())).filter(|h| *h != 0),
        Some(details.content).filter(|c| !c.is_empty()),
        details.author,
        (!details.enclosures.is_empty())
            .then(|| serde_json::to_string(&details.enclosures).ok())
            .flatten(),
        Some(details.categories).filter(|c| !c.is_empty()),
    )
}

/// A summary row as an item without its details.
pub fn summary_item(row: SummaryRow) -> StoredItem {
    let (id, key, guid, title, link, description, published, hash) = row;
    StoredItem {
        id: u64::try_from(id).unwrap_or(0),
        key,
        guid,
        title: title.unwrap_or_default(),
        link,
        description: description.unwrap_or_default(),
        details: None,
        details_hash: hash.map_or(0, |h| u64::from_ne_bytes(h.to_ne_bytes())),
        published: published.as_deref().and_then(common::api::rfc3339::parse),
    }
}

/// A whole row as an item; rows written before details existed have none.
pub fn stored_item(row: ItemRow) -> StoredItem {
    let mut item = summary_item((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7));
    let (content, author, enclosures, categories) = (row.8, row.9, row.10, row.11);
    if item.details_hash != 0 {
        item.details = Some(ItemDetails {
            content: content.unwrap_or_default(),
            author,
            // Written by us as JSON; anything unreadable is no enclosures.
            enclosures: enclosures
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default(),
            categories: categories.unwrap_or_default(),
        });
    }
    item
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
        let statements = Statements::new("k");
        assert_eq!(
            statements.select_user,
            "SELECT feed_url, added_at FROM k.subscriptions WHERE user_id = ?"
        );
        assert!(statements.insert.contains("VALUES (?, ?, ?)"));
        assert!(
            statements
                .delete
                .ends_with("WHERE user_id = ? AND feed_url = ?")
        );
        assert_eq!(create_tables("k").len(), 11);
        for ddl in create_tables("k") {
            assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS k."), "{ddl}");
            assert!(!ddl.contains("  "), "{ddl}");
        }
    }

    #[test]
    fn no_statement_filters_or_scans_a_partition_it_does_not_name() {
        let statements = format!("{:?}", Statements::new("k"));
        assert!(!statements.to_ascii_uppercase().contains("ALLOW FILTERING"));
    }

    #[test]
    fn records_and_items_round_trip_through_rows() {
        let at = DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000).unwrap();
        let record = FeedRecord {
            title: Some("T".into()),
            etag: Some("e".into()),
            last_fetched: Some(at),
            error_count: 3,
            error: Some("HTTP 500".into()),
            failing_since: Some(at),
            ..FeedRecord::new(FeedUrl::parse("https://a.example/f").unwrap(), at)
        };
        assert_eq!(feed_record(feed_row(&record)), Some(record));
        let item = StoredItem {
            id: 42,
            key: "k".into(),
            guid: None,
            title: "t".into(),
            link: Some("https://a.example/1".into()),
            description: "<p>d</p>".into(),
            details: Some(ItemDetails {
                content: "<p>all of it</p>".into(),
                author: Some("Ann".into()),
                enclosures: vec![common::api::Enclosure {
                    url: "https://a.example/1.mp3".into(),
                    media_type: Some("audio/mpeg".into()),
                    length: Some(3),
                }],
                categories: vec!["c".into()],
            }),
            details_hash: u64::MAX - 3,
            published: None,
        };
        assert_eq!(
            stored_item(item_row(&item)),
            item,
            "a hash above i64::MAX too"
        );
        let bare = StoredItem {
            details: None,
            details_hash: 0,
            ..item
        };
        assert_eq!(stored_item(item_row(&bare)), bare);
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
