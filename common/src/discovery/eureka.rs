//! Eureka's wire model, as plain data shared by our registry and our client.
//!
//! Eureka records are loosely typed on the wire: Java clients send numbers,
//! XML sends everything as text, JavaScript clients send `"@enabled": true`.
//! So a record is kept as the JSON object it arrived as ([`InstanceRecord`]),
//! which preserves every field we do not know, and read through accessors
//! that accept a number, a numeric string or Eureka's `{"$": ...}` wrapper.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An instance's status, as Eureka defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Serving.
    Up,
    /// Not serving (failing its health check, or leaving).
    Down,
    /// Started, not serving yet.
    Starting,
    /// Taken out of rotation by an operator's override.
    OutOfService,
    /// Status not known (also Eureka's "no override").
    Unknown,
}

impl Status {
    /// Reads a status leniently: unknown text is `UNKNOWN`, as in Eureka.
    pub fn parse(text: &str) -> Status {
        match text.trim().to_ascii_uppercase().as_str() {
            "UP" => Status::Up,
            "DOWN" => Status::Down,
            "STARTING" => Status::Starting,
            "OUT_OF_SERVICE" => Status::OutOfService,
            _ => Status::Unknown,
        }
    }

    /// Reads a status strictly, for values a person typed in a query.
    pub fn parse_strict(text: &str) -> Option<Status> {
        match Status::parse(text) {
            Status::Unknown if !text.trim().eq_ignore_ascii_case("UNKNOWN") => None,
            status => Some(status),
        }
    }

    /// The status as Eureka writes it (`UP`, `OUT_OF_SERVICE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "UP",
            Status::Down => "DOWN",
            Status::Starting => "STARTING",
            Status::OutOfService => "OUT_OF_SERVICE",
            Status::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to an instance, in a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// A new instance.
    Added,
    /// A changed record (status, address, metadata).
    Modified,
    /// An instance that left or was evicted.
    Deleted,
}

impl ActionType {
    /// Reads Eureka's `ADDED`, `MODIFIED` or `DELETED`.
    pub fn parse(text: &str) -> Option<ActionType> {
        match text.trim().to_ascii_uppercase().as_str() {
            "ADDED" => Some(ActionType::Added),
            "MODIFIED" => Some(ActionType::Modified),
            "DELETED" => Some(ActionType::Deleted),
            _ => None,
        }
    }

    /// The action as Eureka writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Added => "ADDED",
            ActionType::Modified => "MODIFIED",
            ActionType::Deleted => "DELETED",
        }
    }
}

/// Why a record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The body does not have the named top-level key.
    #[error("the body must be {{\"{0}\": {{...}}}}")]
    Envelope(&'static str),
    /// A field every record must have is missing.
    #[error("the instance has no {0}")]
    Missing(&'static str),
}

/// One instance record, as JSON, with typed reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceRecord(pub Map<String, Value>);

impl InstanceRecord {
    /// Unwraps `{"instance": {...}}` (or accepts the bare object).
    pub fn from_envelope(body: Value) -> Result<Self, RecordError> {
        match body {
            Value::Object(mut map) => match map.remove("instance") {
                Some(Value::Object(inner)) => Ok(Self(inner)),
                Some(_) => Err(RecordError::Envelope("instance")),
                None if map.contains_key("hostName") => Ok(Self(map)),
                None => Err(RecordError::Envelope("instance")),
            },
            _ => Err(RecordError::Envelope("instance")),
        }
    }

    /// A field as text: strings as they are, numbers and booleans printed,
    /// `{"$": x}` unwrapped. Empty strings count as absent.
    pub fn text(&self, key: &str) -> Option<String> {
        text_of(self.0.get(key)?).filter(|t| !t.is_empty())
    }

    /// Eureka's rule: `instanceId`, or the host name for older clients.
    pub fn instance_id(&self) -> Option<String> {
        self.text("instanceId").or_else(|| self.text("hostName"))
    }

    /// The `app` field, upper-cased as Eureka does.
    pub fn app(&self) -> Option<String> {
        self.text("app").map(|a| a.to_ascii_uppercase())
    }

    /// The `hostName` field.
    pub fn host_name(&self) -> Option<String> {
        self.text("hostName")
    }

    /// The `ipAddr` field.
    pub fn ip_addr(&self) -> Option<String> {
        self.text("ipAddr")
    }

    /// The `vipAddress` field (possibly a comma-separated list).
    pub fn vip_address(&self) -> Option<String> {
        self.text("vipAddress")
    }

    /// The `secureVipAddress` field.
    pub fn secure_vip_address(&self) -> Option<String> {
        self.text("secureVipAddress")
    }

    /// The reported `status` (`UNKNOWN` when absent or unreadable).
    pub fn status(&self) -> Status {
        self.text("status")
            .map_or(Status::Unknown, |s| Status::parse(&s))
    }

    /// `overriddenstatus` (classic) or `overriddenStatus` (newer clients);
    /// `UNKNOWN` means "no override".
    pub fn overridden_status(&self) -> Option<Status> {
        self.text("overriddenstatus")
            .or_else(|| self.text("overriddenStatus"))
            .map(|s| Status::parse(&s))
            .filter(|s| *s != Status::Unknown)
    }

    /// The `port`, whether given as a number, a string or `{"$": n}`.
    pub fn port(&self) -> Option<u16> {
        self.0
            .get("port")
            .and_then(number)
            .and_then(|n| u16::try_from(n).ok())
    }

    /// `@enabled` of the port; a port given without it counts as enabled.
    pub fn port_enabled(&self) -> bool {
        enabled(self.0.get("port")).unwrap_or(true)
    }

    /// The `securePort`, read like [`InstanceRecord::port`].
    pub fn secure_port(&self) -> Option<u16> {
        self.0
            .get("securePort")
            .and_then(number)
            .and_then(|n| u16::try_from(n).ok())
    }

    /// Whether the secure port is `@enabled` (false when not said).
    pub fn secure_port_enabled(&self) -> bool {
        enabled(self.0.get("securePort")).unwrap_or(false)
    }

    /// A `leaseInfo` field in seconds or milliseconds, as sent.
    pub fn lease_field(&self, key: &str) -> Option<u64> {
        self.0.get("leaseInfo")?.get(key).and_then(number)
    }

    /// The instance's `lastDirtyTimestamp` (ms since epoch).
    pub fn last_dirty_timestamp(&self) -> Option<u64> {
        self.0.get("lastDirtyTimestamp").and_then(number)
    }

    /// The `actionType` of a delta's record.
    pub fn action_type(&self) -> Option<ActionType> {
        self.text("actionType").and_then(|a| ActionType::parse(&a))
    }

    /// The `metadata` map, as strings (its `@class` marker left out).
    pub fn metadata(&self) -> Vec<(String, String)> {
        let Some(Value::Object(map)) = self.0.get("metadata") else {
            return Vec::new();
        };
        map.iter()
            .filter(|(k, _)| !k.starts_with('@'))
            .filter_map(|(k, v)| Some((k.clone(), text_of(v)?)))
            .collect()
    }
}

/// A number, from a number, a numeric string or `{"$": ...}`.
pub fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(map) => map.get("$").and_then(number),
        _ => None,
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(map) => map.get("$").and_then(text_of),
        _ => None,
    }
}

fn enabled(port: Option<&Value>) -> Option<bool> {
    match port?.get("@enabled")? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.trim().eq_ignore_ascii_case("true")),
        _ => None,
    }
}

/// `{"applications": {...}}` read into plain data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applications {
    /// `versions__delta`, if the registry sent it.
    pub version: Option<String>,
    /// `apps__hashcode`, if the registry sent it.
    pub hashcode: Option<String>,
    /// Each application's name and instance records.
    pub apps: Vec<(String, Vec<InstanceRecord>)>,
}

/// Reads `{"applications": ...}`. A single application or instance may be
/// an object instead of an array: Eureka's JSON does that for singletons.
pub fn parse_applications(body: &Value) -> Result<Applications, RecordError> {
    let root = body
        .get("applications")
        .ok_or(RecordError::Envelope("applications"))?;
    let apps = one_or_many(root.get("application"))
        .into_iter()
        .filter_map(|app| {
            let name = text_of(app.get("name")?)?.to_ascii_uppercase();
            let instances = one_or_many(app.get("instance"))
                .into_iter()
                .filter_map(|i| i.as_object().cloned().map(InstanceRecord))
                .collect();
            Some((name, instances))
        })
        .collect();
    Ok(Applications {
        version: root.get("versions__delta").and_then(text_of),
        hashcode: root.get("apps__hashcode").and_then(text_of),
        apps,
    })
}

fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    }
}

/// Eureka's `apps__hashcode`: each status with its instance count, sorted
/// by status name, e.g. `DOWN_1_UP_2_`. Client and server compute it the
/// same way; a client that applied a delta compares it to the server's to
/// know its copy is whole.
pub fn reconcile_hashcode(statuses: impl IntoIterator<Item = Status>) -> String {
    let mut counts = std::collections::BTreeMap::<&'static str, usize>::new();
    for status in statuses {
        *counts.entry(status.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(status, n)| format!("{status}_{n}_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_parse_leniently_or_strictly() {
        assert_eq!(Status::parse("up"), Status::Up);
        assert_eq!(Status::parse("OUT_OF_SERVICE"), Status::OutOfService);
        assert_eq!(Status::parse("weird"), Status::Unknown);
        assert_eq!(Status::parse_strict("weird"), None);
        assert_eq!(Status::parse_strict("unknown"), Some(Status::Unknown));
    }

    #[test]
    fn records_accept_what_real_clients_send() {
        // Java client: numbers; XML: strings; JavaScript client: booleans.
        for (port, enabled) in [
            (json!({"$": 9191, "@enabled": "true"}), true),
            (json!({"$": "9191", "@enabled": true}), true),
            (json!("9191"), true),
            (json!(9191), true),
            (json!({"$": 9191, "@enabled": "false"}), false),
        ] {
            let record =
                InstanceRecord::from_envelope(json!({"instance": {"hostName": "h", "port": port}}))
                    .unwrap();
            assert_eq!(record.port(), Some(9191));
            assert_eq!(record.port_enabled(), enabled);
        }
        let record = InstanceRecord::from_envelope(json!({"instance": {
            "hostName": "h", "app": "middletier", "leaseInfo": {"durationInSecs": "30"},
            "overriddenStatus": "OUT_OF_SERVICE", "lastDirtyTimestamp": "1700000000000"
        }}))
        .unwrap();
        assert_eq!(
            record.instance_id().as_deref(),
            Some("h"),
            "falls back to the host name"
        );
        assert_eq!(record.app().as_deref(), Some("MIDDLETIER"));
        assert_eq!(record.lease_field("durationInSecs"), Some(30));
        assert_eq!(record.overridden_status(), Some(Status::OutOfService));
        assert_eq!(record.last_dirty_timestamp(), Some(1_700_000_000_000));
    }

    #[test]
    fn the_envelope_is_required_unless_the_record_is_bare() {
        assert!(InstanceRecord::from_envelope(json!({"instance": []})).is_err());
        assert!(InstanceRecord::from_envelope(json!([1, 2])).is_err());
        assert!(InstanceRecord::from_envelope(json!({"hostName": "h"})).is_ok());
    }

    #[test]
    fn applications_accept_objects_or_arrays() {
        let single = json!({"applications": {"versions__delta": 3, "apps__hashcode": "UP_1_",
            "application": {"name": "middletier", "instance": {"instanceId": "a", "hostName": "h"}}}});
        let parsed = parse_applications(&single).unwrap();
        assert_eq!(parsed.version.as_deref(), Some("3"));
        assert_eq!(parsed.apps.len(), 1);
        assert_eq!(parsed.apps[0].0, "MIDDLETIER");
        assert_eq!(parsed.apps[0].1.len(), 1);

        let many = json!({"applications": {"application": [
            {"name": "A", "instance": [{"hostName": "1"}, {"hostName": "2"}]},
            {"name": "B", "instance": []}
        ]}});
        let parsed = parse_applications(&many).unwrap();
        assert_eq!(
            parsed.apps.iter().map(|(_, i)| i.len()).collect::<Vec<_>>(),
            [2, 0]
        );
        assert!(parse_applications(&json!({"nope": 1})).is_err());
    }

    #[test]
    fn the_hashcode_counts_statuses_in_name_order() {
        let hash = reconcile_hashcode([Status::Up, Status::Down, Status::Up, Status::Starting]);
        assert_eq!(hash, "DOWN_1_STARTING_1_UP_2_");
        assert_eq!(reconcile_hashcode([]), "");
    }

    #[test]
    fn metadata_skips_the_java_class_marker() {
        let record = InstanceRecord::from_envelope(json!({"instance": {"hostName": "h",
            "metadata": {"@class": "java.util.Collections$EmptyMap", "zone": "a", "weight": 3}}}))
        .unwrap();
        assert_eq!(
            record.metadata(),
            [
                ("zone".to_owned(), "a".to_owned()),
                ("weight".to_owned(), "3".to_owned())
            ]
        );
    }
}
