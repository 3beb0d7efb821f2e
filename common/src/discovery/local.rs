//! The client's copy of the registry: plain data, updated by full fetches
//! and deltas, read by the load balancer.

use std::collections::BTreeMap;

use super::eureka::{ActionType, Applications, InstanceRecord, Status, reconcile_hashcode};

/// An instance a client can call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceInstance {
    /// The registry's `instanceId`.
    pub id: String,
    /// The application name, upper case (`MIDDLETIER`).
    pub app: String,
    /// Host name or address to connect to (Eureka's `hostName`, as Ribbon
    /// uses by default).
    pub host: String,
    /// The port to call.
    pub port: u16,
    /// The instance's status, override included.
    pub status: Status,
    /// VIP addresses this instance serves (Eureka allows a comma list).
    pub vips: Vec<String>,
}

impl ServiceInstance {
    /// Builds from a record; `None` if it lacks what a caller needs.
    pub fn from_record(app: &str, record: &InstanceRecord) -> Option<Self> {
        let id = record.instance_id()?;
        let host = record.host_name().or_else(|| record.ip_addr())?;
        let port = record.port()?;
        let vips = record
            .vip_address()
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            id,
            app: app.to_ascii_uppercase(),
            host,
            port,
            status: record.status(),
            vips,
        })
    }

    /// `http://host:port`, the base every call to this instance starts from.
    pub fn base_url(&self) -> String {
        super::http_base(&self.host, self.port)
    }
}

/// App → instance id → instance, plus the registry's hashcode as last seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalRegistry {
    apps: BTreeMap<String, BTreeMap<String, ServiceInstance>>,
}

impl LocalRegistry {
    /// The registry as a full fetch describes it.
    pub fn from_full(full: &Applications) -> Self {
        let mut local = Self::default();
        for (app, records) in &full.apps {
            for record in records {
                local.upsert(app, record);
            }
        }
        local
    }

    /// Applies a delta: `ADDED`/`MODIFIED` replace, `DELETED` removes.
    pub fn apply_delta(&mut self, delta: &Applications) {
        for (app, records) in &delta.apps {
            for record in records {
                match record.action_type() {
                    Some(ActionType::Deleted) => {
                        if let Some(id) = record.instance_id() {
                            self.remove(app, &id);
                        }
                    }
                    _ => self.upsert(app, record),
                }
            }
        }
    }

    fn upsert(&mut self, app: &str, record: &InstanceRecord) {
        if let Some(instance) = ServiceInstance::from_record(app, record) {
            self.apps
                .entry(instance.app.clone())
                .or_default()
                .insert(instance.id.clone(), instance);
        }
    }

    fn remove(&mut self, app: &str, id: &str) {
        let app = app.to_ascii_uppercase();
        if let Some(instances) = self.apps.get_mut(&app) {
            instances.remove(id);
            if instances.is_empty() {
                self.apps.remove(&app);
            }
        }
    }

    /// What `apps__hashcode` should be if this copy is complete.
    pub fn hashcode(&self) -> String {
        reconcile_hashcode(self.all().map(|i| i.status))
    }

    /// Every instance of every application.
    pub fn all(&self) -> impl Iterator<Item = &ServiceInstance> {
        self.apps.values().flat_map(BTreeMap::values)
    }

    /// The `UP` instances serving `vip`, in a stable order (by id), so round
    /// robin visits each in turn.
    pub fn up_instances(&self, vip: &str) -> Vec<ServiceInstance> {
        let vip = vip.to_ascii_lowercase();
        self.all()
            .filter(|i| i.status == Status::Up && i.vips.contains(&vip))
            .cloned()
            .collect()
    }

    /// How many instances the copy holds.
    pub fn len(&self) -> usize {
        self.apps.values().map(BTreeMap::len).sum()
    }

    /// Whether the copy holds no instance.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::eureka::parse_applications;
    use serde_json::json;

    fn instance(id: &str, status: &str, action: Option<&str>) -> serde_json::Value {
        let mut record = json!({"instanceId": id, "hostName": format!("{id}.local"), "app": "MIDDLETIER",
            "status": status, "port": {"$": 9191, "@enabled": "true"}, "vipAddress": "middletier"});
        if let Some(action) = action {
            record["actionType"] = json!(action);
        }
        record
    }

    fn apps(instances: Vec<serde_json::Value>, hash: &str) -> Applications {
        parse_applications(&json!({"applications": {"apps__hashcode": hash,
            "application": [{"name": "MIDDLETIER", "instance": instances}]}}))
        .unwrap()
    }

    #[test]
    fn a_full_fetch_lists_up_instances_of_a_vip() {
        let local = LocalRegistry::from_full(&apps(
            vec![
                instance("b", "UP", None),
                instance("a", "UP", None),
                instance("c", "STARTING", None),
            ],
            "STARTING_1_UP_2_",
        ));
        let up: Vec<_> = local
            .up_instances("MIDDLETIER")
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(
            up,
            ["a", "b"],
            "UP only, sorted by id, VIP case-insensitive"
        );
        assert_eq!(local.hashcode(), "STARTING_1_UP_2_");
        assert_eq!(local.up_instances("edge"), []);
    }

    #[test]
    fn deltas_add_modify_and_delete() {
        let mut local = LocalRegistry::from_full(&apps(
            vec![instance("a", "UP", None), instance("b", "UP", None)],
            "",
        ));
        local.apply_delta(&apps(
            vec![
                instance("a", "DOWN", Some("MODIFIED")),
                instance("b", "UP", Some("DELETED")),
                instance("c", "UP", Some("ADDED")),
            ],
            "DOWN_1_UP_1_",
        ));
        let ids: Vec<_> = local.all().map(|i| (i.id.as_str(), i.status)).collect();
        assert_eq!(ids, [("a", Status::Down), ("c", Status::Up)]);
        assert_eq!(local.hashcode(), "DOWN_1_UP_1_");
    }

    #[test]
    fn records_without_an_address_are_ignored() {
        let local =
            LocalRegistry::from_full(&apps(vec![json!({"instanceId": "x", "status": "UP"})], ""));
        assert!(local.is_empty());
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let mut i = ServiceInstance::from_record(
            "A",
            &crate::discovery::eureka::InstanceRecord::from_envelope(instance("a", "UP", None))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(i.base_url(), "http://a.local:9191");
        i.host = "::1".into();
        assert_eq!(i.base_url(), "http://[::1]:9191");
    }
}
