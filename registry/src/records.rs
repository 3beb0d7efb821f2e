//! Leases rendered as Eureka records, applications and deltas (JSON
//! values; [`crate::xml`] turns the same values into Eureka's XML).
//!
//! A rendered record is the instance's own record with the fields the
//! registry owns written over it, in the types a Eureka server emits:
//! `status` (the override, if any), `overriddenstatus` (and its newer
//! spelling `overriddenStatus`), ports as `{"$": n, "@enabled": "true"}`,
//! `leaseInfo` with the server's timestamps, `metadata` with Java's empty-map
//! marker when empty, timestamps as strings, and `actionType`.

use std::collections::BTreeMap;

use common::discovery::eureka::{ActionType, number};
use serde_json::{Map, Value, json};

use crate::leases::{Lease, LeaseTable};
use crate::xml;

/// One instance as a Eureka server shows it.
pub fn instance(lease: &Lease) -> Value {
    let mut record: Map<String, Value> = lease.record.0.clone();
    let overridden = lease.overridden.map_or("UNKNOWN", |s| s.as_str());
    let port = |key: &str, default_enabled: bool, enabled: bool| -> Value {
        let value = record.get(key).and_then(number).unwrap_or(0);
        let enabled = if record.contains_key(key) {
            enabled
        } else {
            default_enabled
        };
        json!({"$": value, "@enabled": enabled.to_string()})
    };
    let port_value = port("port", true, lease.record.port_enabled());
    let secure_port_value = port("securePort", false, lease.record.secure_port_enabled());
    let country = record.get("countryId").and_then(number).unwrap_or(1);
    let data_center = match record.get("dataCenterInfo") {
        Some(Value::Object(dc)) if dc.contains_key("name") => Value::Object(dc.clone()),
        _ => {
            json!({"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"})
        }
    };
    let metadata = match record.get("metadata") {
        Some(Value::Object(m)) if m.keys().any(|k| !k.starts_with('@')) => Value::Object(m.clone()),
        _ => json!({"@class": "java.util.Collections$EmptyMap"}),
    };
    let set = |record: &mut Map<String, Value>, key: &str, value: Value| {
        record.insert(key.to_owned(), value);
    };
    set(&mut record, "instanceId", json!(lease.id));
    set(&mut record, "app", json!(lease.app));
    set(
        &mut record,
        "status",
        json!(lease.effective_status().as_str()),
    );
    set(&mut record, "overriddenstatus", json!(overridden));
    set(&mut record, "overriddenStatus", json!(overridden));
    set(&mut record, "port", port_value);
    set(&mut record, "securePort", secure_port_value);
    set(&mut record, "countryId", json!(country));
    set(&mut record, "dataCenterInfo", data_center);
    set(
        &mut record,
        "leaseInfo",
        json!({
            "renewalIntervalInSecs": lease.renewal_interval_secs,
            "durationInSecs": lease.duration_secs,
            "registrationTimestamp": lease.registered_ms,
            "lastRenewalTimestamp": lease.last_renewal_ms,
            "evictionTimestamp": 0,
            "serviceUpTimestamp": lease.service_up_ms.unwrap_or(0),
        }),
    );
    set(&mut record, "metadata", metadata);
    if !record.contains_key("isCoordinatingDiscoveryServer") {
        set(&mut record, "isCoordinatingDiscoveryServer", json!("false"));
    }
    set(
        &mut record,
        "lastUpdatedTimestamp",
        json!(lease.last_updated_ms.to_string()),
    );
    set(
        &mut record,
        "lastDirtyTimestamp",
        json!(lease.last_dirty_ms.to_string()),
    );
    set(&mut record, "actionType", json!(lease.action.as_str()));
    Value::Object(record)
}

/// JSON, or Eureka's XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/json`.
    Json,
    /// Eureka's XML, `application/xml`.
    Xml,
}

impl Format {
    /// `{root: value}` as JSON, or `<root>...</root>`.
    pub fn encode(self, root: &str, value: &Value) -> Vec<u8> {
        match self {
            Format::Json => json!({ root: value }).to_string().into_bytes(),
            Format::Xml => xml::to_xml(root, value).into_bytes(),
        }
    }
}

/// `{"name": ..., "instance": [...]}`, the inner object of `{"application": ...}`.
pub fn application<'a>(name: &str, leases: impl IntoIterator<Item = &'a Lease>) -> Value {
    let instances: Vec<Value> = leases.into_iter().map(instance).collect();
    json!({"name": name, "instance": instances})
}

/// Apps with an instance serving `vip` (or secure VIP), only those instances,
/// as the inner object of `{"applications": ...}`.
pub fn by_vip(table: &LeaseTable, vip: &str, secure: bool) -> Option<Value> {
    let vip = vip.to_ascii_lowercase();
    let mut matching: BTreeMap<&String, Vec<&Lease>> = BTreeMap::new();
    for lease in table.leases() {
        let serves = if secure {
            lease
                .record
                .secure_vip_address()
                .is_some_and(|v| v.split(',').any(|s| s.trim().eq_ignore_ascii_case(&vip)))
        } else {
            lease.vips().any(|v| v == vip)
        };
        if serves {
            matching.entry(&lease.app).or_default().push(lease);
        }
    }
    if matching.is_empty() {
        return None;
    }
    let apps: Vec<Value> = matching
        .into_iter()
        .map(|(name, leases)| application(name, leases))
        .collect();
    Some(json!({
        "versions__delta": table.version().to_string(),
        "apps__hashcode": table.hashcode(),
        "application": apps,
    }))
}

/// The whole registry, `{"applications": ...}`, encoded.
pub fn encode_full(table: &LeaseTable, format: Format) -> Vec<u8> {
    let apps = table
        .apps()
        .map(|(name, leases)| (name.as_str(), leases.values().map(|l| (l, None)).collect()));
    encode_applications(table, format, apps)
}

/// The delta: recent changes, each record with its `actionType`. The
/// hashcode is the whole table's, for clients to check their copy against.
pub fn encode_delta(table: &LeaseTable, format: Format) -> Vec<u8> {
    let apps = table.delta().into_iter().map(|(name, changes)| {
        let changes = changes
            .into_iter()
            .map(|(lease, action)| (lease, Some(action)))
            .collect();
        (name, changes)
    });
    encode_applications(table, format, apps)
}

/// Writes `{"applications": ...}` one instance at a time: with thousands of
/// instances, building the whole tree first would cost several times the
/// output in short-lived memory.
fn encode_applications<'a>(
    table: &LeaseTable,
    format: Format,
    apps: impl Iterator<Item = (&'a str, Vec<(&'a Lease, Option<ActionType>)>)>,
) -> Vec<u8> {
    let record = |lease: &Lease, action: Option<ActionType>| {
        let mut record = instance(lease);
        if let Some(action) = action {
            record["actionType"] = json!(action.as_str());
        }
        record
    };
    let version = table.version().to_string();
    let hashcode = table.hashcode();
    match format {
        Format::Json => {
            let mut out = format!(
                r#"{{"applications":{{"versions__delta":{},"apps__hashcode":{},"application":["#,
                Value::from(version),
                Value::from(hashcode)
            )
            .into_bytes();
            for (i, (name, instances)) in apps.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    format!(r#"{{"name":{},"instance":["#, Value::from(name)).as_bytes(),
                );
                for (j, (lease, action)) in instances.into_iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    // Writing a Value to a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut out, &record(lease, action));
                }
                out.extend_from_slice(b"]}");
            }
            out.extend_from_slice(b"]}}");
            out
        }
        Format::Xml => {
            let mut out = String::from("<applications>");
            xml::write_element(&mut out, "versions__delta", &Value::from(version));
            xml::write_element(&mut out, "apps__hashcode", &Value::from(hashcode));
            for (name, instances) in apps {
                out.push_str("<application>");
                xml::write_element(&mut out, "name", &Value::from(name));
                for (lease, action) in instances {
                    xml::write_element(&mut out, "instance", &record(lease, action));
                }
                out.push_str("</application>");
            }
            out.push_str("</applications>");
            out.into_bytes()
        }
    }
}

/// For the home page and tests: which action a record carries.
pub fn action_of(record: &Value) -> Option<ActionType> {
    record
        .get("actionType")?
        .as_str()
        .and_then(ActionType::parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::discovery::eureka::{InstanceRecord, Status, parse_applications};
    use serde_json::json;

    fn table() -> LeaseTable {
        let mut table = LeaseTable::new(180_000);
        let record = InstanceRecord::from_envelope(json!({"instance": {
            "instanceId": "a", "hostName": "a.local", "app": "middletier", "ipAddr": "10.0.0.1",
            "status": "UP", "port": "9191", "vipAddress": "middletier", "lastDirtyTimestamp": 5,
            "custom": "kept"
        }}))
        .unwrap();
        table.register("MIDDLETIER", record, 1_000).unwrap();
        table
    }

    #[test]
    fn a_record_is_rendered_in_eureka_types() {
        let table = table();
        let record = instance(table.lease("MIDDLETIER", "a").unwrap());
        assert_eq!(record["port"], json!({"$": 9191, "@enabled": "true"}));
        assert_eq!(record["securePort"], json!({"$": 0, "@enabled": "false"}));
        assert_eq!(record["status"], "UP");
        assert_eq!(record["overriddenstatus"], "UNKNOWN");
        assert_eq!(record["overriddenStatus"], "UNKNOWN");
        assert_eq!(record["countryId"], 1);
        assert_eq!(record["dataCenterInfo"]["name"], "MyOwn");
        assert_eq!(record["leaseInfo"]["durationInSecs"], 90);
        assert_eq!(record["leaseInfo"]["registrationTimestamp"], 1_000);
        assert_eq!(
            record["metadata"],
            json!({"@class": "java.util.Collections$EmptyMap"})
        );
        assert_eq!(record["lastDirtyTimestamp"], "5");
        assert_eq!(record["actionType"], "ADDED");
        assert_eq!(record["custom"], "kept", "unknown fields are echoed");
    }

    #[test]
    fn an_override_shows_as_the_status() {
        let mut table = table();
        table.set_override("MIDDLETIER", "a", Status::OutOfService, 2_000);
        let record = instance(table.lease("MIDDLETIER", "a").unwrap());
        assert_eq!(record["status"], "OUT_OF_SERVICE");
        assert_eq!(record["overriddenstatus"], "OUT_OF_SERVICE");
    }

    #[test]
    fn the_full_registry_reads_back_with_our_client_parser() {
        let table = table();
        let body: Value = serde_json::from_slice(&encode_full(&table, Format::Json)).unwrap();
        let parsed = parse_applications(&body).unwrap();
        assert_eq!(parsed.hashcode.as_deref(), Some("UP_1_"));
        assert_eq!(parsed.apps[0].0, "MIDDLETIER");
        assert_eq!(parsed.apps[0].1[0].port(), Some(9191));
    }

    #[test]
    fn json_and_xml_encodings_carry_the_same_tree() {
        let table = table();
        let json: Value = serde_json::from_slice(&encode_full(&table, Format::Json)).unwrap();
        let xml = String::from_utf8(encode_full(&table, Format::Xml)).unwrap();
        let (root, from_xml) = crate::xml::from_xml(&xml).unwrap();
        assert_eq!(root, "applications");
        let from_xml = parse_applications(&json!({"applications": from_xml})).unwrap();
        let from_json = parse_applications(&json).unwrap();
        assert_eq!(from_xml.hashcode, from_json.hashcode);
        let record = &from_xml.apps[0].1[0];
        assert_eq!(record.port(), Some(9191));
        assert_eq!(record.text("custom").as_deref(), Some("kept"));
    }

    #[test]
    fn an_empty_registry_is_still_well_formed() {
        let table = LeaseTable::new(1_000);
        let json: Value = serde_json::from_slice(&encode_full(&table, Format::Json)).unwrap();
        assert_eq!(json["applications"]["application"], json!([]));
        assert!(
            crate::xml::from_xml(&String::from_utf8(encode_full(&table, Format::Xml)).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn vips_select_instances() {
        let table = table();
        assert!(by_vip(&table, "MiddleTier", false).is_some());
        assert!(by_vip(&table, "edge", false).is_none());
    }

    #[test]
    fn the_delta_marks_deletions() {
        let mut table = table();
        table.cancel("MIDDLETIER", "a", 2_000);
        let delta: Value = serde_json::from_slice(&encode_delta(&table, Format::Json)).unwrap();
        let record = &delta["applications"]["application"][0]["instance"][0];
        assert_eq!(action_of(record), Some(ActionType::Deleted));
        assert_eq!(delta["applications"]["apps__hashcode"], "");
    }
}
