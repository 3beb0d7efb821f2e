//! Connecting: the session, the schema (created if missing, by any number
//! of middletiers at once), migrations, the prepared statements, and a
//! worker number; published to the store when all of it is ready.

use std::sync::{Arc, Weak};
use std::time::Duration;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::frame::types::SerialConsistency;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use tokio::sync::watch;

use super::cql::{self, Statements};
use super::lease::{IdLease, claim_worker, renew_or_claim};
use super::{CassandraSettings, Connected, migrate};

/// One connection attempt: session, schema, statements, a worker number.
/// Publishes the result; returns `Ok(None)` when the store was dropped
/// meanwhile.
pub(super) async fn connect_once(
    settings: &CassandraSettings,
    publish: &Weak<watch::Sender<Option<Arc<Connected>>>>,
    lease: &Weak<IdLease>,
) -> Result<Option<Arc<Connected>>, String> {
    let (Some(publish), Some(lease)) = (publish.upgrade(), lease.upgrade()) else {
        return Ok(None);
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
    let schema = std::iter::once(cql::create_keyspace(ks, &settings.replication))
        .chain(cql::create_tables(ks));
    for ddl in schema {
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
    migrate::run(&session, ks).await?;
    let prepare = |text: String| {
        let session = &session;
        async move {
            let mut statement = session.prepare(text).await.map_err(|e| e.to_string())?;
            // Everything may be retried but the lightweight transactions
            // (the lease, the read watermark, new items), which are
            // serialized across every data centre: two middletiers in two
            // data centres must never hold one worker number.
            let is_transaction = statement.get_statement().contains(" IF ");
            statement.set_is_idempotent(!is_transaction);
            if is_transaction {
                statement.set_serial_consistency(Some(SerialConsistency::Serial));
            }
            Ok::<_, String>(statement)
        }
    };
    let statements = Statements::new(ks).try_map(prepare).await?;
    let ping = prepare(cql::PING.to_owned()).await?;
    let db = Arc::new(Connected {
        session,
        statements,
        ping,
    });
    // A new session after an outage keeps the number it held, if it still
    // can; otherwise, and at start, it claims one.
    if !renew_or_claim(&db, &lease).await {
        claim_worker(&db, &lease).await?;
    }
    tracing::info!(keyspace = %ks, worker = ?lease.worker(), "connected to Cassandra; schema ready");
    let _ = publish.send(Some(db.clone()));
    Ok(Some(db))
}
