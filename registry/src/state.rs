//! The registry's shared state: the lease table behind a lock, and the
//! response cache.
//!
//! Full fetches and deltas are what thousands of clients poll every few
//! seconds, so each is rendered once per registry version and format, and
//! gzipped once when a client first asks for it: serving a poll costs a
//! copy, not a render. The cache is tagged with the table's state, so any
//! change (a registration, a cancellation, a status change, an eviction, or
//! old changes leaving the delta) invalidates it.
//!
//! Every change is also published to watchers (`GET /eureka/v2/apps/watch`,
//! [`AppState::changed`]): the write guard compares the table's version
//! when it is dropped, so no handler can change the table and forget to
//! tell them.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use common::discovery::eureka::Status;
use common::discovery::now_ms;

use crate::leases::LeaseTable;
use crate::records::{self, Format};

/// Shared by all handlers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    table: Arc<RwLock<LeaseTable>>,
    cache: Arc<Mutex<ResponseCache>>,
    /// Per app and status, the label sets last reported, so an app that
    /// disappears is reported as 0 rather than frozen at its last count.
    reported: Arc<Mutex<Vec<(String, Status)>>>,
    /// The table's version, published after every change.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    /// Fires when the registry begins to stop, ending watches at once.
    pub(crate) stop: tokio_util::sync::CancellationToken,
    pub(crate) started_ms: u64,
}

/// The table, locked for writing; on drop, a new version is published to
/// the watchers.
pub(crate) struct TableWrite<'a> {
    table: RwLockWriteGuard<'a, LeaseTable>,
    changes: &'a tokio::sync::watch::Sender<u64>,
}

impl std::ops::Deref for TableWrite<'_> {
    type Target = LeaseTable;

    fn deref(&self) -> &LeaseTable {
        &self.table
    }
}

impl std::ops::DerefMut for TableWrite<'_> {
    fn deref_mut(&mut self) -> &mut LeaseTable {
        &mut self.table
    }
}

impl Drop for TableWrite<'_> {
    fn drop(&mut self) {
        let version = self.table.version();
        self.changes.send_if_modified(|published| {
            let changed = *published != version;
            *published = version;
            changed
        });
    }
}

impl AppState {
    pub(crate) fn new(table: LeaseTable) -> Self {
        let (changes, _) = tokio::sync::watch::channel(table.version());
        Self {
            table: Arc::new(RwLock::new(table)),
            cache: Arc::default(),
            reported: Arc::default(),
            changes: Arc::new(changes),
            stop: tokio_util::sync::CancellationToken::new(),
            started_ms: now_ms(),
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, LeaseTable> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> TableWrite<'_> {
        TableWrite {
            table: self.table.write().unwrap_or_else(PoisonError::into_inner),
            changes: &self.changes,
        }
    }

    /// Resolves when the registry begins to stop.
    pub(crate) async fn stopping(&self) {
        self.stop.cancelled().await;
    }

    /// Waits until the table's version is no longer `known`, for at most
    /// `wait`; the version then. A watcher that is behind is answered at
    /// once, so no change between two watches is missed.
    pub(crate) async fn changed(&self, known: u64, wait: Duration) -> u64 {
        let mut versions = self.changes.subscribe();
        let _ = tokio::time::timeout(wait, versions.wait_for(|v| *v != known)).await;
        *versions.borrow()
    }

    /// Removes expired leases (the eviction task calls this).
    pub(crate) fn evict(&self) -> usize {
        let evicted = self.write().evict(now_ms());
        for lease in &evicted {
            tracing::warn!(app = %lease.app, id = %lease.id, lease_secs = lease.duration_secs,
                "evicted: no heartbeat within its lease");
        }
        metrics::counter!("registry_evictions_total").increment(evicted.len() as u64);
        if !evicted.is_empty() {
            self.update_gauges();
        }
        evicted.len()
    }

    /// `registry_instances{app, status}` from the table.
    pub(crate) fn update_gauges(&self) {
        let counts = self.read().counts();
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        for key in reported.iter().filter(|k| !counts.contains_key(*k)) {
            metrics::gauge!("registry_instances", "app" => key.0.clone(), "status" => key.1.as_str()).set(0.0);
        }
        for ((app, status), n) in &counts {
            metrics::gauge!("registry_instances", "app" => app.clone(), "status" => status.as_str()).set(*n as f64);
        }
        *reported = counts.into_keys().collect();
    }

    /// The cached rendering of `kind` in `format`, rendered if the table
    /// changed since.
    pub(crate) fn cached(&self, kind: Kind, format: Format) -> Arc<Cached> {
        let table = self.read();
        let tag = table.state_tag();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hit) = cache.get(&(kind, format)).filter(|c| c.tag == tag) {
            return hit.clone();
        }
        let body = match kind {
            Kind::Full => records::encode_full(&table, format),
            Kind::Delta => records::encode_delta(&table, format),
        };
        drop(table);
        let fresh = Arc::new(Cached {
            tag,
            format,
            body: Bytes::from(body),
            gzipped: OnceLock::new(),
        });
        cache.insert((kind, format), fresh.clone());
        fresh
    }
}

/// Rendered full fetches and deltas, per format, tagged with the table
/// state they were rendered from.
type ResponseCache = HashMap<(Kind, Format), Arc<Cached>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Full,
    Delta,
}

/// A rendered body and, once someone asked for it, its gzipped twin.
pub(crate) struct Cached {
    tag: (u64, u64),
    format: Format,
    body: Bytes,
    gzipped: OnceLock<Bytes>,
}

impl Cached {
    pub(crate) fn respond(&self, headers: &HeaderMap) -> Response {
        let accepts_gzip = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("gzip"));
        let content_type = (header::CONTENT_TYPE, content_type(self.format));
        let vary = (
            header::VARY,
            HeaderValue::from_static("accept, accept-encoding"),
        );
        if accepts_gzip {
            let body = self.gzipped.get_or_init(|| gzip(&self.body)).clone();
            let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            ([content_type, vary, encoding], body).into_response()
        } else {
            ([content_type, vary], self.body.clone()).into_response()
        }
    }
}

fn gzip(body: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// The `Content-Type` of `format`.
pub(crate) fn content_type(format: Format) -> HeaderValue {
    HeaderValue::from_static(match format {
        Format::Json => "application/json",
        Format::Xml => "application/xml",
    })
}
