//! The lease table: who is registered, until when. Plain data, no I/O, no
//! clock of its own (every call takes `now` in epoch milliseconds), so the
//! tests drive time by hand.
//!
//! A *lease* is an instance's right to be listed. It starts when the
//! instance registers, lasts `leaseInfo.durationInSecs` (default 90 s), and
//! is extended by each heartbeat. [`LeaseTable::evict`] removes the leases
//! that ran out. Each change bumps [`LeaseTable::version`] and is remembered
//! for a few minutes so clients can fetch only what changed (the delta).

use std::collections::{BTreeMap, HashMap, VecDeque};

use common::discovery::eureka::{ActionType, InstanceRecord, Status, reconcile_hashcode};

/// Eureka's defaults when a record does not say.
pub const DEFAULT_DURATION_SECS: u64 = 90;
/// Eureka's default renewal interval, when a record does not say.
pub const DEFAULT_RENEWAL_SECS: u64 = 30;

/// One registered instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The application, upper case.
    pub app: String,
    /// The instance id.
    pub id: String,
    /// The record as the instance sent it (unknown fields included).
    pub record: InstanceRecord,
    /// The status the instance reports.
    pub status: Status,
    /// An operator's override (`PUT .../status`), which wins over `status`.
    pub overridden: Option<Status>,
    /// When it first registered (ms since epoch).
    pub registered_ms: u64,
    /// When it last renewed (ms since epoch).
    pub last_renewal_ms: u64,
    /// When the instance first reported `UP`.
    pub service_up_ms: Option<u64>,
    /// How long the lease lasts without a renewal.
    pub duration_secs: u64,
    /// How often the instance says it renews.
    pub renewal_interval_secs: u64,
    /// The instance's own "my record changed" time (`lastDirtyTimestamp`).
    pub last_dirty_ms: u64,
    /// When this registry last changed the record.
    pub last_updated_ms: u64,
    /// The last change, as a delta would report it.
    pub action: ActionType,
}

impl Lease {
    /// What callers should believe: the override if any, else the report.
    pub fn effective_status(&self) -> Status {
        self.overridden.unwrap_or(self.status)
    }

    /// When the lease runs out without another heartbeat.
    pub fn expires_at_ms(&self) -> u64 {
        self.last_renewal_ms
            .saturating_add(self.duration_secs.saturating_mul(1000))
    }

    /// The VIPs it serves, lower case.
    pub fn vips(&self) -> impl Iterator<Item = String> + '_ {
        self.record.vip_address().into_iter().flat_map(|v| {
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
    }
}

/// Why a registration was refused. Shown to the registering client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// No id to list it under.
    #[error("the instance has neither instanceId nor hostName")]
    NoId,
    /// No address to call it at.
    #[error("the instance has neither hostName nor ipAddr, so nobody could call it")]
    NoAddress,
    /// The record's app and the path's disagree.
    #[error("the instance says app {record:?} but was posted to /apps/{path}")]
    AppMismatch {
        /// The app the record names.
        record: String,
        /// The app in the path.
        path: String,
    },
}

/// A change remembered for deltas. Added and modified instances are read
/// from the table when the delta is rendered (a later change to the same
/// instance supersedes this one anyway); a deleted one keeps its last record
/// here, since the table no longer has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// When it happened (ms since epoch).
    pub at_ms: u64,
    /// The application.
    pub app: String,
    /// The instance id.
    pub id: String,
    /// What happened.
    pub action: ActionType,
    /// The lease as it was, for a deletion.
    pub deleted: Option<Lease>,
}

/// Outcome of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease was extended.
    Renewed,
    /// Unknown instance, or the instance has a newer record than ours:
    /// either way it must register (again).
    NotFound,
}

/// All leases, by app then instance id.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    apps: BTreeMap<String, BTreeMap<String, Lease>>,
    version: u64,
    recent: VecDeque<Change>,
    retention_ms: u64,
    /// Bumped when old changes are dropped, so a cached delta can tell it
    /// is stale even though no lease changed.
    generation: u64,
    /// Renewals per epoch second over the last minute, for the home page.
    renewals: VecDeque<(u64, u64)>,
}

impl LeaseTable {
    /// A table that remembers changes for `retention_ms` (Eureka: 3 min).
    pub fn new(retention_ms: u64) -> Self {
        Self {
            retention_ms,
            version: 1,
            ..Self::default()
        }
    }

    /// Registers, or replaces the record of, an instance.
    pub fn register(
        &mut self,
        path_app: &str,
        record: InstanceRecord,
        now: u64,
    ) -> Result<ActionType, RegisterError> {
        let app = path_app.to_ascii_uppercase();
        if let Some(claimed) = record.app()
            && claimed != app
        {
            return Err(RegisterError::AppMismatch {
                record: claimed,
                path: path_app.to_owned(),
            });
        }
        let id = record.instance_id().ok_or(RegisterError::NoId)?;
        if record.host_name().is_none() && record.ip_addr().is_none() {
            return Err(RegisterError::NoAddress);
        }
        let status = record.status();
        let previous = self.apps.get(&app).and_then(|a| a.get(&id));
        let action = if previous.is_some() {
            ActionType::Modified
        } else {
            ActionType::Added
        };
        let lease = Lease {
            app: app.clone(),
            id: id.clone(),
            status,
            // An override outlives re-registration, as in Eureka.
            overridden: previous
                .and_then(|p| p.overridden)
                .or_else(|| record.overridden_status()),
            registered_ms: previous.map_or(now, |p| p.registered_ms),
            last_renewal_ms: now,
            service_up_ms: previous
                .and_then(|p| p.service_up_ms)
                .or((status == Status::Up).then_some(now)),
            duration_secs: record
                .lease_field("durationInSecs")
                .filter(|d| *d > 0)
                .unwrap_or(DEFAULT_DURATION_SECS),
            renewal_interval_secs: record
                .lease_field("renewalIntervalInSecs")
                .filter(|d| *d > 0)
                .unwrap_or(DEFAULT_RENEWAL_SECS),
            last_dirty_ms: record.last_dirty_timestamp().unwrap_or(now),
            last_updated_ms: now,
            action,
            record,
        };
        self.apps
            .entry(app.clone())
            .or_default()
            .insert(id.clone(), lease);
        self.changed(app, id, action, None, now);
        Ok(action)
    }

    /// A heartbeat. `last_dirty_ms` newer than our copy means the instance
    /// changed since it registered; it is told to register again.
    pub fn renew(&mut self, app: &str, id: &str, last_dirty_ms: Option<u64>, now: u64) -> Renewal {
        let Some(lease) = self.lease_mut(app, id) else {
            return Renewal::NotFound;
        };
        if last_dirty_ms.is_some_and(|dirty| dirty > lease.last_dirty_ms) {
            return Renewal::NotFound;
        }
        lease.last_renewal_ms = now;
        self.count_renewal(now);
        Renewal::Renewed
    }

    /// Removes an instance (graceful shutdown). False if unknown.
    pub fn cancel(&mut self, app: &str, id: &str, now: u64) -> bool {
        match self.remove(app, id) {
            Some(lease) => {
                self.deleted(lease, now);
                true
            }
            None => false,
        }
    }

    /// Sets an operator's status override. False if unknown.
    pub fn set_override(&mut self, app: &str, id: &str, status: Status, now: u64) -> bool {
        self.modify(app, id, now, |lease| lease.overridden = Some(status))
    }

    /// Removes the override; `fallback`, if given, becomes the status.
    pub fn clear_override(
        &mut self,
        app: &str,
        id: &str,
        fallback: Option<Status>,
        now: u64,
    ) -> bool {
        self.modify(app, id, now, |lease| {
            lease.overridden = None;
            if let Some(status) = fallback {
                lease.status = status;
            }
        })
    }

    /// Adds or replaces metadata entries. False if unknown.
    pub fn update_metadata(
        &mut self,
        app: &str,
        id: &str,
        entries: &[(String, String)],
        now: u64,
    ) -> bool {
        self.modify(app, id, now, |lease| {
            let metadata = lease
                .record
                .0
                .entry("metadata")
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !metadata.is_object() {
                *metadata = serde_json::Value::Object(serde_json::Map::new());
            }
            if let Some(map) = metadata.as_object_mut() {
                map.remove("@class");
                for (key, value) in entries {
                    map.insert(key.clone(), serde_json::Value::String(value.clone()));
                }
            }
        })
    }

    /// Removes every lease that ran out by `now`; returns them. Also drops
    /// changes older than the retention.
    pub fn evict(&mut self, now: u64) -> Vec<Lease> {
        let expired: Vec<(String, String)> = self
            .leases()
            .filter(|l| now > l.expires_at_ms())
            .map(|l| (l.app.clone(), l.id.clone()))
            .collect();
        let mut evicted = Vec::new();
        for (app, id) in expired {
            if let Some(lease) = self.remove(&app, &id) {
                evicted.push(lease.clone());
                self.deleted(lease, now);
            }
        }
        self.prune(now);
        evicted
    }

    /// Bumped by every change; `versions__delta`.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Changes whenever a full fetch or a delta would change.
    pub fn state_tag(&self) -> (u64, u64) {
        (self.version, self.generation)
    }

    /// Every lease.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.apps.values().flat_map(BTreeMap::values)
    }

    /// Each application and its leases, by name.
    pub fn apps(&self) -> impl Iterator<Item = (&String, &BTreeMap<String, Lease>)> {
        self.apps.iter()
    }

    /// The leases of `app`.
    pub fn app(&self, app: &str) -> Option<&BTreeMap<String, Lease>> {
        self.apps.get(&app.to_ascii_uppercase())
    }

    /// One lease.
    pub fn lease(&self, app: &str, id: &str) -> Option<&Lease> {
        self.app(app)?.get(id)
    }

    /// An instance by id alone (Eureka's `/instances/{id}`).
    pub fn lease_by_id(&self, id: &str) -> Option<&Lease> {
        self.leases().find(|l| l.id == id)
    }

    /// How many leases there are.
    pub fn len(&self) -> usize {
        self.apps.values().map(BTreeMap::len).sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// `apps__hashcode` of the whole table.
    pub fn hashcode(&self) -> String {
        reconcile_hashcode(self.leases().map(Lease::effective_status))
    }

    /// The changes still remembered, latest per instance, grouped by app,
    /// each with the record to report.
    pub fn delta(&self) -> BTreeMap<&str, Vec<(&Lease, ActionType)>> {
        let mut latest: HashMap<(&str, &str), &Change> = HashMap::new();
        for change in &self.recent {
            latest.insert((&change.app, &change.id), change);
        }
        let mut grouped: BTreeMap<&str, Vec<(&Lease, ActionType)>> = BTreeMap::new();
        for change in latest.into_values() {
            let lease = match &change.deleted {
                Some(last) => Some(last),
                None => self.lease(&change.app, &change.id),
            };
            if let Some(lease) = lease {
                grouped
                    .entry(&change.app)
                    .or_default()
                    .push((lease, change.action));
            }
        }
        for changes in grouped.values_mut() {
            changes.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        }
        grouped
    }

    /// Instance counts per app and effective status, for metrics.
    pub fn counts(&self) -> BTreeMap<(String, Status), usize> {
        let mut counts = BTreeMap::new();
        for lease in self.leases() {
            *counts
                .entry((lease.app.clone(), lease.effective_status()))
                .or_default() += 1;
        }
        counts
    }

    /// Renewals received in the minute before `now`.
    pub fn renewals_last_minute(&self, now: u64) -> u64 {
        let since = (now / 1000).saturating_sub(60);
        self.renewals
            .iter()
            .filter(|(sec, _)| *sec > since)
            .map(|(_, n)| n)
            .sum()
    }

    fn lease_mut(&mut self, app: &str, id: &str) -> Option<&mut Lease> {
        self.apps.get_mut(&app.to_ascii_uppercase())?.get_mut(id)
    }

    fn modify(&mut self, app: &str, id: &str, now: u64, change: impl FnOnce(&mut Lease)) -> bool {
        let Some(lease) = self.lease_mut(app, id) else {
            return false;
        };
        change(lease);
        lease.last_updated_ms = now;
        lease.action = ActionType::Modified;
        let (app, id) = (lease.app.clone(), lease.id.clone());
        self.changed(app, id, ActionType::Modified, None, now);
        true
    }

    fn remove(&mut self, app: &str, id: &str) -> Option<Lease> {
        let app = app.to_ascii_uppercase();
        let instances = self.apps.get_mut(&app)?;
        let lease = instances.remove(id)?;
        if instances.is_empty() {
            self.apps.remove(&app);
        }
        Some(lease)
    }

    fn deleted(&mut self, mut lease: Lease, now: u64) {
        lease.action = ActionType::Deleted;
        lease.last_updated_ms = now;
        let (app, id) = (lease.app.clone(), lease.id.clone());
        self.changed(app, id, ActionType::Deleted, Some(lease), now);
    }

    fn changed(
        &mut self,
        app: String,
        id: String,
        action: ActionType,
        deleted: Option<Lease>,
        now: u64,
    ) {
        self.version += 1;
        self.recent.push_back(Change {
            at_ms: now,
            app,
            id,
            action,
            deleted,
        });
        self.prune(now);
    }

    fn prune(&mut self, now: u64) {
        let cutoff = now.saturating_sub(self.retention_ms);
        let before = self.recent.len();
        while self.recent.front().is_some_and(|c| c.at_ms < cutoff) {
            self.recent.pop_front();
        }
        if self.recent.len() != before {
            self.generation += 1;
        }
        let since = (now / 1000).saturating_sub(60);
        while self.renewals.front().is_some_and(|(sec, _)| *sec <= since) {
            self.renewals.pop_front();
        }
    }

    fn count_renewal(&mut self, now: u64) {
        let sec = now / 1000;
        match self.renewals.back_mut() {
            Some((last, n)) if *last == sec => *n += 1,
            _ => {
                self.renewals.push_back((sec, 1));
                if self.renewals.len() > 120 {
                    self.renewals.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "leases_tests.rs"]
mod tests;
