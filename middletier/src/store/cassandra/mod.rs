//! The `cassandra` store: subscriptions in Cassandra (or ScyllaDB), through
//! the `scylla` driver. This is the store that scales past one machine, as
//! Astyanax/Cassandra did in the 2013 recipe: every middletier instance
//! shares it.
//!
//! - **Starting in any order.** The store connects in the background,
//!   retrying with backoff ([`retry::startup`]) and logging each attempt;
//!   until it is connected every call is a clear `Unavailable` (so a 503, and
//!   a 503 `/healthcheck`), and the middletier stays `STARTING` in the
//!   registry. Then it creates the keyspace and table if missing (`IF NOT
//!   EXISTS`: idempotent, so several middletiers may start at once) and
//!   prepares its statements.
//! - **Each call**: a prepared statement at the configured consistency
//!   (default `LOCAL_QUORUM`) and request timeout; transient errors retried
//!   with backoff ([`retry::per_request`]); anything else reported at once.
//! - **Adding twice** keeps the first `added_at` (read, then insert when
//!   absent). Two concurrent first adds of the same feed may both insert;
//!   the later timestamp then wins, which only moves the feed in the list.
//!   A lightweight transaction would prevent that at the price of a Paxos
//!   round on every subscribe; it is not worth it here.

pub mod cql;
pub mod retry;

/// Where the test cluster is (started if need be), shared with the root
/// package's tests.
#[cfg(test)]
#[path = "../../../../tests/support/peers.rs"]
#[allow(dead_code, clippy::unwrap_used)]
mod peers;

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use chrono::{DateTime, Utc};
use common::api::{FeedUrl, UserId};
use common::config::Secret;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::frame::types::Consistency;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::statement::prepared::PreparedStatement;
use tokio::sync::watch;

use super::{StoreError, Subscription, SubscriptionStore};
use cql::Replication;

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
    select_user: PreparedStatement,
    select_one: PreparedStatement,
    insert: PreparedStatement,
    delete: PreparedStatement,
    ping: PreparedStatement,
}

/// The Cassandra store (see the module docs).
pub struct CassandraStore {
    settings: CassandraSettings,
    /// `None` until connected; the background connector sends `Some` once.
    connected: watch::Receiver<Option<Arc<Connected>>>,
}

impl std::fmt::Debug for CassandraStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraStore")
            .field("settings", &self.settings)
            .field("connected", &self.connected.borrow().is_some())
            .finish()
    }
}

impl CassandraStore {
    /// Returns at once; connects in the background until it succeeds (or
    /// the store is dropped).
    pub fn connect_in_background(settings: CassandraSettings) -> Result<Self, String> {
        cql::keyspace(&settings.keyspace)?;
        if settings.nodes.is_empty() {
            return Err(
                "no Cassandra contact points; set --cassandra-nodes / RSS_CASSANDRA_NODES".into(),
            );
        }
        let (publish, connected) = watch::channel(None);
        let store = Self {
            settings: settings.clone(),
            connected,
        };
        let publish = Arc::new(publish);
        let weak = Arc::downgrade(&publish);
        tokio::spawn(async move {
            // Holding only a weak handle: when the store is gone, stop.
            let attempt = || connect_once(&settings, &weak);
            let result = attempt
                .retry(retry::startup())
                .notify(|e: &String, wait: Duration| {
                    tracing::warn!(nodes = ?settings.nodes, error = %e, retry_in = ?wait, "Cassandra is not reachable yet");
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "gave up connecting to Cassandra");
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

    /// Runs one request with retries on transient errors.
    async fn request<T, F, Fut>(&self, op: &'static str, call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ExecutionError>>,
    {
        call.retry(retry::per_request())
            .when(retry::is_transient)
            .notify(|e: &ExecutionError, wait: Duration| {
                tracing::warn!(op, error = %e, retry_in = ?wait, "transient Cassandra error; retrying");
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("Cassandra {op} failed: {e}")))
    }
}

/// One connection attempt: session, schema, statements. Publishes the
/// result; returns `Ok` also when the store was dropped meanwhile.
async fn connect_once(
    settings: &CassandraSettings,
    publish: &Weak<watch::Sender<Option<Arc<Connected>>>>,
) -> Result<(), String> {
    let Some(publish) = publish.upgrade() else {
        return Ok(());
    };
    tracing::info!(nodes = ?settings.nodes, keyspace = %settings.keyspace, "connecting to Cassandra");
    let mut balancing = DefaultPolicy::builder();
    if let Some(dc) = &settings.local_datacenter {
        balancing = balancing.prefer_datacenter(dc.clone());
    }
    let profile = ExecutionProfile::builder()
        .consistency(settings.consistency)
        .request_timeout(Some(settings.request_timeout))
        // Retries are ours (retry.rs), so they are visible and bounded.
        .retry_policy(Arc::new(FallthroughRetryPolicy::new()))
        .load_balancing_policy(balancing.build())
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&settings.nodes)
        .connection_timeout(Duration::from_secs(5))
        .default_execution_profile_handle(profile.into_handle());
    if let Some((user, password)) = &settings.credentials {
        builder = builder.user(user, password.expose());
    }
    let session = builder.build().await.map_err(|e| e.to_string())?;
    let ks = &settings.keyspace;
    for ddl in [
        cql::create_keyspace(ks, &settings.replication),
        cql::create_table(ks),
    ] {
        match session.query_unpaged(ddl.as_str(), &[]).await {
            Ok(_) => {}
            // Another middletier won the race to create it: fine.
            Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
                DbError::AlreadyExists { .. },
                _,
            ))) => {}
            Err(e) => return Err(format!("creating the schema failed: {e}")),
        }
    }
    let prepare = |text: String| {
        let session = &session;
        async move {
            let mut statement = session.prepare(text).await.map_err(|e| e.to_string())?;
            statement.set_is_idempotent(true);
            Ok::<_, String>(statement)
        }
    };
    let connected = Connected {
        select_user: prepare(cql::select_user(ks)).await?,
        select_one: prepare(cql::select_one(ks)).await?,
        insert: prepare(cql::insert(ks)).await?,
        delete: prepare(cql::delete(ks)).await?,
        ping: prepare(cql::PING.to_owned()).await?,
        session,
    };
    tracing::info!(keyspace = %ks, "connected to Cassandra; schema ready");
    let _ = publish.send(Some(Arc::new(connected)));
    Ok(())
}

#[async_trait]
impl SubscriptionStore for CassandraStore {
    fn name(&self) -> &'static str {
        "cassandra"
    }

    async fn ready(&self) {
        let mut connected = self.connected.clone();
        let _ = connected.wait_for(Option::is_some).await;
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Subscription>, StoreError> {
        let db = self.session()?;
        let result = self
            .request("list", || {
                db.session
                    .execute_unpaged(&db.select_user, (user.as_str(),))
            })
            .await?;
        let rows = result.into_rows_result().map_err(|e| {
            StoreError::Unavailable(format!("unexpected answer from Cassandra: {e}"))
        })?;
        let rows = rows
            .rows::<(String, DateTime<Utc>)>()
            .map_err(|e| StoreError::Unavailable(format!("unexpected rows from Cassandra: {e}")))?
            .filter_map(|row| {
                row.map_err(|e| tracing::warn!(error = %e, "skipping an unreadable row"))
                    .ok()
            });
        Ok(cql::subscriptions(rows))
    }

    async fn add(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let db = self.session()?;
        let key = (user.as_str(), url.as_str());
        let existing = self
            .request("add", || db.session.execute_unpaged(&db.select_one, key))
            .await?;
        let present = existing
            .into_rows_result()
            .map(|r| r.rows_num() > 0)
            .unwrap_or(false);
        if present {
            return Ok(());
        }
        let row = (user.as_str(), url.as_str(), Utc::now());
        self.request("add", || db.session.execute_unpaged(&db.insert, row))
            .await
            .map(|_| ())
    }

    async fn remove(&self, user: &UserId, url: &FeedUrl) -> Result<(), StoreError> {
        let db = self.session()?;
        let key = (user.as_str(), url.as_str());
        self.request("remove", || db.session.execute_unpaged(&db.delete, key))
            .await
            .map(|_| ())
    }

    async fn check(&self) -> Result<(), StoreError> {
        let db = self.session()?;
        db.session
            .execute_unpaged(&db.ping, ())
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(format!("Cassandra did not answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
