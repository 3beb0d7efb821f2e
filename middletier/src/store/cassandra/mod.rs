//! The `cassandra` store: everything in Cassandra (or ScyllaDB), through
//! the `scylla` driver. This is the store that scales past one machine, as
//! Astyanax/Cassandra did in the 2013 recipe: every middletier instance
//! shares it, and each feed is refreshed by one of them
//! (`refresh::ownership`).
//!
//! - **Starting in any order.** The store connects in the background,
//!   retrying with backoff ([`retry::startup`]) and logging each attempt;
//!   until it is connected every call is a clear `Unavailable` (so a 503, and
//!   a 503 `/healthcheck`), and the middletier stays `STARTING` in the
//!   registry. Then it creates the keyspace and tables if missing (`IF NOT
//!   EXISTS`: idempotent, so several middletiers may start at once),
//!   prepares its statements and claims a worker number for item ids.
//! - **Each call**: a prepared statement at the configured consistency
//!   (default `LOCAL_QUORUM`) and request timeout; transient errors retried
//!   with backoff ([`retry::per_request`]); anything else reported at once.
//!   Every statement but the lease's is idempotent, so a retry is safe.
//! - **Item ids** need a worker number no other live middletier holds
//!   ([`super::ids`]). Each claims one with a lightweight transaction
//!   (`INSERT ... IF NOT EXISTS USING TTL 60`) and renews it every 20 s
//!   (`UPDATE ... IF owner = me`). It stops making ids 15 s before its
//!   lease could expire unrenewed, so another process can only take the
//!   number over at least 15 s after its last id: ids stay unique as long
//!   as the middletiers' clocks agree within 15 s (NTP does far better).
//! - **Adding twice** keeps the first `added_at` (read, then insert when
//!   absent). Two concurrent first adds of the same feed may both insert;
//!   the later timestamp then wins, which only moves the feed in the list.
//!   A lightweight transaction would prevent that at the price of a Paxos
//!   round on every subscribe; it is not worth it here.
//! - **Writes in order**: a fetch's items are written before the feed's
//!   state, so a crash in between leaves the old validators, and the next
//!   fetch asks for the whole document again.

mod connect;
pub mod cql;
mod lease;
mod migrate;
pub mod retry;

/// Where the test cluster is (started if need be), shared with the root
/// package's tests.
#[cfg(test)]
#[path = "../../../../tests/support/peers.rs"]
#[allow(dead_code, clippy::unwrap_used)]
mod peers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use chrono::{DateTime, Utc};
use common::api::{Account, FeedUrl, UserId};
use common::config::Secret;
use futures::FutureExt;
use futures::future::BoxFuture;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::ExecutionError;
use scylla::frame::types::Consistency;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use tokio::sync::watch;

use super::ids::ItemId;
use super::{
    FeedRecord, FeedUpdate, ReadState, StarredItem, Store, StoreError, StoredItem, Subscription,
    sort_newest_first,
};
use connect::connect_once;
use cql::{Replication, Statements};
use lease::{IdLease, LEASE_RETRY_EVERY, LeaseEnded, keep_lease};

/// Where the cluster is and how to talk to it.
#[derive(Debug, Clone)]
pub struct CassandraSettings {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// The keyspace (created if missing).
    pub keyspace: String,
    /// How the keyspace is replicated, when it is created.
    pub replication: Replication,
    /// Consistency of every read and write.
    pub consistency: Consistency,
    /// Time allowed for one request.
    pub request_timeout: Duration,
    /// Prefer this data centre's nodes (use with `NetworkTopologyStrategy`
    /// and a `LOCAL_*` consistency).
    pub local_datacenter: Option<String>,
    /// User name and password; the password never shows in `Debug`.
    pub credentials: Option<(String, Secret)>,
}

/// Reads a consistency level by its CQL name (`local_quorum`, `one`, ...).
pub fn parse_consistency(raw: &str) -> Result<Consistency, String> {
    Ok(
        match raw.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "any" => Consistency::Any,
            "one" => Consistency::One,
            "two" => Consistency::Two,
            "three" => Consistency::Three,
            "quorum" => Consistency::Quorum,
            "all" => Consistency::All,
            "local_quorum" => Consistency::LocalQuorum,
            "each_quorum" => Consistency::EachQuorum,
            "local_one" => Consistency::LocalOne,
            other => {
                return Err(format!(
                    "{other:?} is not a consistency level; use e.g. local_quorum, quorum, one or local_one"
                ));
            }
        },
    )
}

/// A session and the statements prepared on it.
struct Connected {
    session: Session,
    statements: Statements<PreparedStatement>,
    ping: PreparedStatement,
}

/// The Cassandra store (see the module docs).
pub struct CassandraStore {
    settings: CassandraSettings,
    /// `None` until connected; the background connector sends `Some` once.
    connected: watch::Receiver<Option<Arc<Connected>>>,
    lease: Arc<IdLease>,
}

impl std::fmt::Debug for CassandraStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraStore")
            .field("settings", &self.settings)
            .field("connected", &self.connected.borrow().is_some())
            .field("worker", &self.lease.worker())
            .finish()
    }
}

impl CassandraStore {
    /// Returns at once; connects in the background until it succeeds (or
    /// the store is dropped), then keeps its worker lease.
    pub fn connect_in_background(settings: CassandraSettings) -> Result<Self, String> {
        cql::keyspace(&settings.keyspace)?;
        if settings.nodes.is_empty() {
            return Err(
                "no Cassandra contact points; set --cassandra-nodes / RSS_CASSANDRA_NODES".into(),
            );
        }
        let (publish, connected) = watch::channel(None);
        let lease = Arc::new(IdLease::default());
        let store = Self {
            settings: settings.clone(),
            connected,
            lease: lease.clone(),
        };
        let publish = Arc::new(publish);
        let weak = Arc::downgrade(&publish);
        let weak_lease = Arc::downgrade(&lease);
        drop(lease);
        tokio::spawn(async move {
            // Holding only weak handles: when the store is gone, stop.
            let attempt = || connect_once(&settings, &weak, &weak_lease);
            let result = attempt
                .retry(retry::startup())
                .notify(|e: &String, wait: Duration| {
                    tracing::warn!(nodes = ?settings.nodes, error = %e, retry_in = ?wait, "Cassandra is not reachable yet");
                })
                .await;
            let mut connected = match result {
                Ok(connected) => connected,
                Err(e) => {
                    tracing::error!(error = %e, "gave up connecting to Cassandra");
                    None
                }
            };
            // Keep the lease; when Cassandra has been unreachable for a
            // while, connect afresh (every second, until it answers), and
            // publish the new session to every call.
            while let Some(db) = connected.take() {
                if keep_lease(&db, &weak_lease).await == LeaseEnded::StoreGone {
                    break;
                }
                drop(db);
                tracing::warn!("Cassandra has not answered for a while; connecting afresh");
                loop {
                    match connect_once(&settings, &weak, &weak_lease).await {
                        Ok(next) => {
                            connected = next;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?LEASE_RETRY_EVERY, "Cassandra is not reachable yet");
                            tokio::time::sleep(LEASE_RETRY_EVERY).await;
                        }
                    }
                }
            }
            drop(publish);
        });
        Ok(store)
    }

    fn session(&self) -> Result<Arc<Connected>, StoreError> {
        self.connected.borrow().clone().ok_or_else(|| {
            StoreError::Unavailable(format!(
                "not connected to Cassandra yet (contact points {})",
                self.settings.nodes.join(", ")
            ))
        })
    }

    /// Runs one prepared statement with retries on transient errors.
    async fn run(
        &self,
        op: &'static str,
        statement: Pick,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        let db = self.session()?;
        let statement = statement(&db.statements);
        let call = || db.session.execute_unpaged(statement, &values);
        call.retry(retry::per_request())
            .when(retry::is_transient)
            .notify(|e: &ExecutionError, wait: Duration| {
                tracing::warn!(op, error = %e, retry_in = ?wait, "transient Cassandra error; retrying");
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("Cassandra {op} failed: {e}")))
    }

    /// Runs a query and reads its rows as `R`, skipping (and logging) rows
    /// that do not decode.
    async fn rows<R>(
        &self,
        op: &'static str,
        statement: Pick,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
    {
        let result = self.run(op, statement, values).await?;
        let rows = result.into_rows_result().map_err(|e| {
            StoreError::Unavailable(format!("unexpected answer from Cassandra: {e}"))
        })?;
        Ok(rows
            .rows::<R>()
            .map_err(|e| StoreError::Unavailable(format!("unexpected rows from Cassandra: {e}")))?
            .filter_map(|row| {
                row.map_err(|e| tracing::warn!(op, error = %e, "skipping an unreadable row"))
                    .ok()
            })
            .collect())
    }

    /// Runs many writes at once; fails if any fails.
    async fn all<'a>(
        &self,
        writes: impl IntoIterator<Item = BoxFuture<'a, Result<QueryResult, StoreError>>>,
    ) -> Result<(), StoreError> {
        futures::future::try_join_all(writes).await.map(drop)
    }
}

impl CassandraStore {
    /// Stores one item of a fetch. A new key is inserted only if no other
    /// writer stored it first (a lightweight transaction): one id per key,
    /// so read and starred state set on it are never lost to a second id.
    /// An item stored under another id keeps that id; one stored under
    /// this id is updated (the publisher edited it).
    async fn upsert_item(&self, url: &str, item: &StoredItem) -> Result<(), StoreError> {
        let row = cql::item_row(item);
        let (id, key) = (row.0, row.1.clone());
        let row = (
            url, row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10,
            row.11,
        );
        let inserted = self.run("save_fetch", |s| &s.insert_new_item, &row).await?;
        match lwt_outcome(inserted)? {
            (true, _) => {}
            (false, Some(stored)) if stored == id => {
                self.run("save_fetch", |s| &s.insert_item, &row).await?;
            }
            // Another writer stored this item first, under its own id.
            (false, _) => return Ok(()),
        }
        self.run("save_fetch", |s| &s.insert_item_feed, (id, url, key))
            .await
            .map(drop)
    }
}

/// Picks one prepared statement; a plain function, so calls picking
/// different statements have one type and can run together.
type Pick = for<'a> fn(&'a Statements<PreparedStatement>) -> &'a PreparedStatement;

/// A lightweight transaction's `[applied]`, and the current value of the
/// column it tested when it was not applied (none if the row is absent).
fn lwt_outcome(result: QueryResult) -> Result<(bool, Option<i64>), StoreError> {
    let failed = |e: &dyn std::fmt::Display| {
        StoreError::Unavailable(format!("unexpected answer from Cassandra: {e}"))
    };
    let rows = result.into_rows_result().map_err(|e| failed(&e))?;
    // A refused insert answers with the row that is there: its `item_id`,
    // found by name (other bigint columns come before it).
    let item_id = rows
        .column_specs()
        .iter()
        .position(|spec| spec.name() == "item_id");
    let row = rows.first_row::<Row>().map_err(|e| failed(&e))?;
    let applied = matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true))));
    let current = item_id
        .and_then(|at| row.columns.get(at))
        .and_then(|c| match c {
            Some(CqlValue::BigInt(value)) => Some(*value),
            _ => None,
        });
    Ok((applied, current))
}

/// The `[applied]` column of a lightweight transaction's answer.
fn applied(result: QueryResult) -> Result<bool, String> {
    let rows = result.into_rows_result().map_err(|e| e.to_string())?;
    let row = rows.first_row::<Row>().map_err(|e| e.to_string())?;
    Ok(matches!(
        row.columns.first(),
        Some(Some(CqlValue::Boolean(true)))
    ))
}

/// Accounts are stored as one JSON record: they are read and written
/// whole, and never queried by a field.
fn encode_account(account: &Account) -> Result<String, StoreError> {
    serde_json::to_string(account)
        .map_err(|e| StoreError::Unavailable(format!("an account would not encode: {e}")))
}

fn decode_account(record: &str) -> Result<Account, StoreError> {
    serde_json::from_str(record)
        .map_err(|e| StoreError::Unavailable(format!("a stored account would not decode: {e}")))
}

fn bigint(id: ItemId) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for CassandraStore {
    fn name(&self) -> &'static str {
        "cassandra"
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn ready(&self) {
        let mut connected = self.connected.clone();
        let _ = connected.wait_for(Option::is_some).await;
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError> {
        let rows: Vec<(String, DateTime<Utc>)> = self
            .rows("list", |s| &s.select_user, (user.as_str(),))
            .await?;
        Ok(cql::subscriptions(rows))
    }

    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let key = (user.as_str(), url.as_str());
        let existing: Vec<(DateTime<Utc>,)> = self.rows("add", |s| &s.select_one, key).await?;
        if existing.is_empty() {
            let row = (user.as_str(), url.as_str(), Utc::now());
            self.run("add", |s| &s.insert, row).await?;
        }
        self.run(
            "add",
            |s| &s.insert_subscriber,
            (url.as_str(), user.as_str()),
        )
        .await
        .map(drop)
    }

    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let key = (user.as_str(), url.as_str());
        self.all([
            self.run("remove", |s| &s.delete, key).boxed(),
            self.run(
                "remove",
                |s| &s.delete_subscriber,
                (url.as_str(), user.as_str()),
            )
            .boxed(),
            self.run("remove", |s| &s.delete_mark, key).boxed(),
            self.run("remove", |s| &s.delete_overrides_of_feed, key)
                .boxed(),
        ])
        .await
    }

    async fn has_subscribers(&self, url: &FeedUrl) -> Result<bool, StoreError> {
        let rows: Vec<(String,)> = self
            .rows("has_subscribers", |s| &s.any_subscriber, (url.as_str(),))
            .await?;
        Ok(!rows.is_empty())
    }

    async fn feed(&self, url: &FeedUrl) -> Result<Option<FeedRecord>, StoreError> {
        let rows: Vec<cql::FeedRow> = self
            .rows("feed", |s| &s.select_feed, (url.as_str(),))
            .await?;
        Ok(rows.into_iter().next().and_then(cql::feed_record))
    }

    async fn schedule(&self) -> Result<Vec<(FeedUrl, DateTime<Utc>)>, StoreError> {
        use futures::TryStreamExt;
        let db = self.session()?;
        let unavailable = |e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!("Cassandra schedule scan failed: {e}"))
        };
        let pager = db
            .session
            .execute_iter(db.statements.scan_schedule.clone(), ())
            .await
            .map_err(|e| unavailable(&e))?;
        let rows: Vec<(String, Option<DateTime<Utc>>)> = pager
            .rows_stream()
            .map_err(|e| unavailable(&e))?
            .try_collect()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(url, next)| Some((FeedUrl::parse(&url).ok()?, next.unwrap_or_default())))
            .collect())
    }

    async fn create_feed(&self, record: &FeedRecord) -> Result<(), StoreError> {
        if self.feed(&record.url).await?.is_none() {
            self.run("create_feed", |s| &s.insert_feed, cql::feed_row(record))
                .await?;
        }
        Ok(())
    }

    async fn save_fetch(&self, update: &FeedUpdate) -> Result<(), StoreError> {
        let url = update.record.url.as_str();
        let removals = update.removals.iter().flat_map(|item| {
            [
                self.run("save_fetch", |s| &s.delete_item, (url, item.key.as_str()))
                    .boxed(),
                self.run("save_fetch", |s| &s.delete_item_feed, (bigint(item.id),))
                    .boxed(),
            ]
        });
        self.all(removals).await?;
        // Items first, then the feed's state: a crash in between refetches
        // and finds the items already there (matched by key).
        let upserts = update
            .upserts
            .iter()
            .map(|item| self.upsert_item(url, item).boxed());
        futures::future::try_join_all(upserts).await?;
        self.run(
            "save_fetch",
            |s| &s.insert_feed,
            cql::feed_row(&update.record),
        )
        .await
        .map(drop)
    }

    async fn delete_feed(&self, url: &FeedUrl) -> Result<(), StoreError> {
        let items = self.items(url).await?;
        self.all(items.iter().map(|item| {
            self.run("delete_feed", |s| &s.delete_item_feed, (bigint(item.id),))
                .boxed()
        }))
        .await?;
        self.all([
            self.run("delete_feed", |s| &s.delete_items, (url.as_str(),))
                .boxed(),
            self.run("delete_feed", |s| &s.delete_feed, (url.as_str(),))
                .boxed(),
        ])
        .await
    }

    async fn items(&self, url: &FeedUrl) -> Result<Vec<StoredItem>, StoreError> {
        let rows: Vec<cql::SummaryRow> = self
            .rows("items", |s| &s.select_items, (url.as_str(),))
            .await?;
        let mut items: Vec<StoredItem> = rows.into_iter().map(cql::summary_item).collect();
        sort_newest_first(&mut items);
        Ok(items)
    }

    /// One partition read per feed, of the id column only, all at once
    /// (the partition key names each: no scan, no filtering).
    async fn item_ids(&self, urls: &[FeedUrl]) -> Result<Vec<Vec<ItemId>>, StoreError> {
        futures::future::try_join_all(urls.iter().map(|url| async move {
            let rows: Vec<(i64,)> = self
                .rows("item_ids", |s| &s.select_item_ids, (url.as_str(),))
                .await?;
            let mut ids: Vec<ItemId> = rows
                .into_iter()
                .filter_map(|(id,)| ItemId::try_from(id).ok())
                .collect();
            ids.sort_unstable();
            Ok(ids)
        }))
        .await
    }

    async fn item(&self, id: ItemId) -> Result<Option<(FeedUrl, StoredItem)>, StoreError> {
        let index: Vec<(String, String)> = self
            .rows("item", |s| &s.select_item_feed, (bigint(id),))
            .await?;
        let Some((url, key)) = index.into_iter().next() else {
            return Ok(None);
        };
        let rows: Vec<cql::ItemRow> = self
            .rows("item", |s| &s.select_item, (url.as_str(), key.as_str()))
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .map(cql::stored_item)
            .filter(|item| item.id == id)
            .and_then(|item| Some((FeedUrl::parse(&url).ok()?, item))))
    }

    fn allocate_ids(&self, n: usize, after: ItemId) -> Result<Vec<ItemId>, StoreError> {
        self.lease.allocate(n, after)
    }

    async fn read_states(&self, user: &UserId) -> Result<HashMap<FeedUrl, ReadState>, StoreError> {
        let (marks, overrides): (Vec<(String, i64)>, Vec<(String, i64, bool)>) = tokio::try_join!(
            self.rows("read_states", |s| &s.select_marks, (user.as_str(),)),
            self.rows("read_states", |s| &s.select_overrides, (user.as_str(),)),
        )?;
        let mut states: HashMap<String, ReadState> = HashMap::new();
        for (feed, before) in marks {
            states.entry(feed).or_default().read_before = u64::try_from(before).unwrap_or(0);
        }
        for (feed, id, read) in overrides {
            states
                .entry(feed)
                .or_default()
                .overrides
                .insert(u64::try_from(id).unwrap_or(0), read);
        }
        Ok(states
            .into_iter()
            .filter_map(|(url, state)| Some((FeedUrl::parse(&url).ok()?, state)))
            .collect())
    }

    async fn set_read_override(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        id: ItemId,
        read: Option<bool>,
    ) -> Result<(), StoreError> {
        let key = (user.as_str(), feed.as_str(), bigint(id));
        match read {
            Some(read) => {
                let (user, feed, id) = key;
                self.run("set_read", |s| &s.upsert_override, (user, feed, id, read))
                    .await
            }
            None => self.run("set_read", |s| &s.delete_override, key).await,
        }
        .map(drop)
    }

    /// The watermark only ever rises: a conditional update (`IF
    /// read_before < ?`), or a conditional first insert, so two marks
    /// racing (two tabs, two middletiers) leave the higher one. Overrides
    /// below it are then dropped; they are below the stored one too.
    async fn mark_read_before(
        &self,
        user: &UserId,
        feed: &FeedUrl,
        before: ItemId,
    ) -> Result<(), StoreError> {
        let (user, feed) = (user.as_str(), feed.as_str());
        let before = bigint(before);
        // Raise, else create, else (created meanwhile) raise again.
        for _ in 0..3 {
            let raised = self
                .run("mark_read", |s| &s.raise_mark, (before, user, feed, before))
                .await?;
            match lwt_outcome(raised)? {
                (true, _) => break,
                // Already as high or higher: nothing to raise.
                (false, Some(current)) if current >= before => break,
                (false, Some(_)) => continue,
                (false, None) => {}
            }
            let created = self
                .run("mark_read", |s| &s.insert_mark, (user, feed, before))
                .await?;
            if lwt_outcome(created)?.0 {
                break;
            }
        }
        self.run(
            "mark_read",
            |s| &s.delete_overrides_below,
            (user, feed, before),
        )
        .await
        .map(drop)
    }

    async fn starred(&self, user: &UserId) -> Result<Vec<StarredItem>, StoreError> {
        type StarredRow = (
            String,
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
        let rows: Vec<StarredRow> = self
            .rows("starred", |s| &s.select_starred, (user.as_str(),))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(StarredItem {
                    feed: FeedUrl::parse(&r.0).ok()?,
                    item: cql::stored_item((
                        r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12,
                    )),
                })
            })
            .collect())
    }

    async fn set_starred(
        &self,
        user: &UserId,
        item: &StarredItem,
        starred: bool,
    ) -> Result<(), StoreError> {
        if starred {
            let r = cql::item_row(&item.item);
            self.run(
                "set_starred",
                |s| &s.insert_starred,
                (
                    user.as_str(),
                    item.feed.as_str(),
                    r.0,
                    r.1,
                    r.2,
                    r.3,
                    r.4,
                    r.5,
                    r.6,
                    r.7,
                    r.8,
                    r.9,
                    r.10,
                    r.11,
                ),
            )
            .await
        } else {
            self.run(
                "set_starred",
                |s| &s.delete_starred,
                (user.as_str(), bigint(item.item.id)),
            )
            .await
        }
        .map(drop)
    }

    async fn account(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        let rows: Vec<(String,)> = self
            .rows("account", |s| &s.select_account, (user.as_str(),))
            .await?;
        rows.into_iter()
            .next()
            .map(|(record,)| decode_account(&record))
            .transpose()
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<(String,)> = self.rows("accounts", |s| &s.select_accounts, ()).await?;
        rows.iter()
            .map(|(record,)| decode_account(record))
            .collect()
    }

    async fn create_account(&self, account: &Account) -> Result<bool, StoreError> {
        let record = encode_account(account)?;
        let result = self
            .run(
                "create_account",
                |s| &s.insert_account,
                (account.user.as_str(), record),
            )
            .await?;
        applied(result).map_err(StoreError::Unavailable)
    }

    async fn update_account(&self, account: &Account) -> Result<bool, StoreError> {
        let record = encode_account(account)?;
        let result = self
            .run(
                "update_account",
                |s| &s.update_account,
                (record, account.user.as_str()),
            )
            .await?;
        applied(result).map_err(StoreError::Unavailable)
    }

    async fn delete_account(&self, user: &UserId) -> Result<(), StoreError> {
        self.run("delete_account", |s| &s.delete_account, (user.as_str(),))
            .await
            .map(drop)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let db = self.session()?;
        db.session
            .execute_unpaged(&db.ping, ())
            .await
            .map_err(|e| StoreError::Unavailable(format!("Cassandra did not answer: {e}")))?;
        // Reachable is not enough: without its id lease this middletier
        // cannot store a new item, so it cannot take a subscription.
        self.lease.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla::client::session_builder::SessionBuilder;

    /// The defaults, for `nodes` and a keyspace named `rss`.
    fn settings(nodes: &[&str]) -> CassandraSettings {
        CassandraSettings {
            nodes: nodes.iter().map(|&n| n.to_owned()).collect(),
            keyspace: "rss".into(),
            replication: Replication::Simple(1),
            consistency: Consistency::LocalQuorum,
            request_timeout: Duration::from_secs(1),
            local_datacenter: None,
            credentials: None,
        }
    }

    #[test]
    fn consistency_levels_are_read_by_cql_name() {
        assert_eq!(
            parse_consistency("LOCAL_QUORUM"),
            Ok(Consistency::LocalQuorum)
        );
        assert_eq!(parse_consistency("local-one"), Ok(Consistency::LocalOne));
        assert_eq!(parse_consistency("quorum"), Ok(Consistency::Quorum));
        assert!(parse_consistency("most").is_err());
    }

    #[tokio::test]
    async fn until_connected_every_call_is_a_clear_unavailable() {
        // Nothing listens on port 1: the store keeps trying in the background.
        let store = CassandraStore::connect_in_background(settings(&["127.0.0.1:1"])).unwrap();
        let user = UserId::parse("alice").unwrap();
        let err = store.list(&user).await.unwrap_err();
        assert!(
            err.to_string().contains("not connected to Cassandra"),
            "{err}"
        );
        assert!(store.check().await.is_err());
        let not_ready = tokio::time::timeout(Duration::from_millis(100), store.ready()).await;
        assert!(not_ready.is_err(), "not ready while Cassandra is away");
    }

    #[test]
    fn bad_settings_are_refused_before_connecting() {
        assert!(CassandraStore::connect_in_background(settings(&[])).is_err());
        let bad_keyspace = CassandraSettings {
            keyspace: "bad;name".into(),
            ..settings(&["127.0.0.1:9042"])
        };
        assert!(CassandraStore::connect_in_background(bad_keyspace).is_err());
    }

    use super::peers;

    /// The behavioural suite against a real Cassandra (see
    /// `scripts/cassandra.sh`), on every run. Each test gets its own
    /// keyspace.
    async fn live_store() -> (CassandraStore, ()) {
        let cluster = peers::cassandra();
        let store = CassandraStore::connect_in_background(CassandraSettings {
            keyspace: peers::fresh_keyspace("rss_suite"),
            request_timeout: Duration::from_secs(5),
            ..settings(&cluster.nodes.split(',').collect::<Vec<_>>())
        })
        .expect("valid Cassandra settings");
        tokio::time::timeout(Duration::from_secs(60), store.ready())
            .await
            .unwrap_or_else(|_| panic!("Cassandra at {} answered within 60 s", cluster.nodes));
        (store, ())
    }

    crate::store::suite::behaves_like_a_store!(live_store());

    #[tokio::test]
    async fn user_ids_saved_in_mixed_case_keep_their_data() {
        // A keyspace with our schema, written before user ids were folded
        // to lower case: `Alice` subscribed and starred, `alice` (the same
        // person, through another login) subscribed to a second feed.
        let cluster = peers::cassandra();
        let nodes: Vec<&str> = cluster.nodes.split(',').collect();
        let ks = peers::fresh_keyspace("rss_fold");
        let session = SessionBuilder::new()
            .known_nodes(&nodes)
            .build()
            .await
            .unwrap();
        let run = |cql: String| {
            let session = &session;
            async move { session.query_unpaged(cql, ()).await.unwrap() }
        };
        run(cql::create_keyspace(&ks, &Replication::Simple(1))).await;
        for ddl in cql::create_tables(&ks) {
            run(ddl).await;
        }
        let (one, two) = ("https://a.example/feed", "https://b.example/feed");
        run(format!("INSERT INTO {ks}.subscriptions (user_id, feed_url, added_at) VALUES ('Alice', '{one}', 1000)")).await;
        run(format!("INSERT INTO {ks}.subscriptions (user_id, feed_url, added_at) VALUES ('alice', '{two}', 2000)")).await;
        run(format!(
            "INSERT INTO {ks}.feed_subscribers (feed_url, user_id) VALUES ('{one}', 'Alice')"
        ))
        .await;
        run(format!("INSERT INTO {ks}.read_marks (user_id, feed_url, read_before) VALUES ('Alice', '{one}', 7)")).await;

        let store = CassandraStore::connect_in_background(CassandraSettings {
            keyspace: ks.clone(),
            request_timeout: Duration::from_secs(5),
            ..settings(&nodes)
        })
        .unwrap();
        tokio::time::timeout(Duration::from_secs(60), store.ready())
            .await
            .unwrap();
        let alice = UserId::parse("ALICE").unwrap();
        let listed: Vec<String> = store
            .list(&alice)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.url.to_string())
            .collect();
        assert_eq!(listed, [one, two]);
        let feed = FeedUrl::parse(one).unwrap();
        assert!(store.has_subscribers(&feed).await.unwrap());
        let states = store.read_states(&alice).await.unwrap();
        assert_eq!(states.get(&feed).map(|s| s.read_before), Some(7));
        // Nothing is left under the old id.
        let old = session
            .query_unpaged(
                format!("SELECT * FROM {ks}.subscriptions WHERE user_id = 'Alice'"),
                (),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows_num();
        assert_eq!(old, 0);
    }
}
