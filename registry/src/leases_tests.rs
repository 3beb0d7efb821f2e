//! The lease table driven by a hand-held clock (`now` in ms).

use super::*;
use serde_json::json;

const RETENTION: u64 = 180_000;

fn record(id: &str, status: &str, duration_secs: u64) -> InstanceRecord {
    InstanceRecord::from_envelope(json!({"instance": {
        "instanceId": id, "hostName": format!("{id}.local"), "app": "MIDDLETIER", "ipAddr": "10.0.0.1",
        "status": status, "port": {"$": 9191, "@enabled": "true"}, "vipAddress": "middletier",
        "leaseInfo": {"durationInSecs": duration_secs, "renewalIntervalInSecs": 30},
        "someFutureField": {"kept": true}
    }}))
    .unwrap()
}

fn table_with(ids: &[&str], now: u64) -> LeaseTable {
    let mut table = LeaseTable::new(RETENTION);
    for id in ids {
        table
            .register("middletier", record(id, "UP", 90), now)
            .unwrap();
    }
    table
}

#[test]
fn registering_lists_the_instance_and_bumps_the_version() {
    let mut table = LeaseTable::new(RETENTION);
    let v0 = table.version();
    assert_eq!(
        table.register("middletier", record("a", "STARTING", 90), 1_000),
        Ok(ActionType::Added)
    );
    assert!(table.version() > v0);
    let lease = table.lease("MIDDLETIER", "a").unwrap();
    assert_eq!(lease.app, "MIDDLETIER", "app names are upper-cased");
    assert_eq!(lease.status, Status::Starting);
    assert_eq!(lease.registered_ms, 1_000);
    assert_eq!(
        lease.record.0["someFutureField"],
        json!({"kept": true}),
        "unknown fields are kept"
    );
}

#[test]
fn registering_again_replaces_the_record_but_keeps_the_registration_time() {
    let mut table = LeaseTable::new(RETENTION);
    table
        .register("MIDDLETIER", record("a", "STARTING", 90), 1_000)
        .unwrap();
    assert_eq!(
        table.register("MIDDLETIER", record("a", "UP", 90), 2_000),
        Ok(ActionType::Modified)
    );
    let lease = table.lease("MIDDLETIER", "a").unwrap();
    assert_eq!(lease.status, Status::Up);
    assert_eq!(lease.registered_ms, 1_000);
    assert_eq!(lease.service_up_ms, Some(2_000));
    assert_eq!(table.len(), 1);
}

#[test]
fn bad_registrations_are_refused_with_a_reason() {
    let mut table = LeaseTable::new(RETENTION);
    let no_id =
        InstanceRecord::from_envelope(json!({"instance": {"app": "X", "ipAddr": "1.2.3.4"}}))
            .unwrap();
    assert_eq!(table.register("X", no_id, 0), Err(RegisterError::NoId));
    let no_address =
        InstanceRecord::from_envelope(json!({"instance": {"instanceId": "i", "app": "X"}}))
            .unwrap();
    assert_eq!(
        table.register("X", no_address, 0),
        Err(RegisterError::NoAddress)
    );
    assert!(matches!(
        table.register("EDGE", record("a", "UP", 90), 0),
        Err(RegisterError::AppMismatch { .. })
    ));
    assert!(table.is_empty());
}

#[test]
fn a_lease_expires_after_its_duration_without_renewal() {
    let mut table = LeaseTable::new(RETENTION);
    table
        .register("MIDDLETIER", record("a", "UP", 30), 0)
        .unwrap();
    assert!(table.evict(30_000).is_empty(), "still inside the lease");
    let evicted = table.evict(30_001);
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].id, "a");
    assert!(table.lease("MIDDLETIER", "a").is_none());
}

#[test]
fn a_renewal_extends_the_lease() {
    let mut table = LeaseTable::new(RETENTION);
    table
        .register("MIDDLETIER", record("a", "UP", 30), 0)
        .unwrap();
    assert_eq!(
        table.renew("MIDDLETIER", "a", None, 25_000),
        Renewal::Renewed
    );
    assert!(table.evict(50_000).is_empty());
    assert_eq!(table.evict(55_001).len(), 1);
}

#[test]
fn renewing_an_unknown_instance_asks_it_to_register() {
    let mut table = table_with(&["a"], 0);
    assert_eq!(
        table.renew("MIDDLETIER", "nobody", None, 1),
        Renewal::NotFound
    );
    assert_eq!(table.renew("EDGE", "a", None, 1), Renewal::NotFound);
}

#[test]
fn a_newer_dirty_timestamp_asks_the_instance_to_register_again() {
    let mut table = LeaseTable::new(RETENTION);
    let mut rec = record("a", "UP", 90);
    rec.0.insert("lastDirtyTimestamp".into(), json!("5000"));
    table.register("MIDDLETIER", rec, 5_000).unwrap();
    assert_eq!(
        table.renew("MIDDLETIER", "a", Some(5_000), 6_000),
        Renewal::Renewed
    );
    assert_eq!(
        table.renew("MIDDLETIER", "a", Some(7_000), 8_000),
        Renewal::NotFound
    );
}

#[test]
fn renewals_do_not_change_the_version() {
    let mut table = table_with(&["a"], 0);
    let tag = table.state_tag();
    table.renew("MIDDLETIER", "a", None, 1_000);
    assert_eq!(table.state_tag(), tag, "a cached full fetch stays valid");
    assert_eq!(table.renewals_last_minute(1_000), 1);
    assert_eq!(table.renewals_last_minute(120_000), 0);
}

#[test]
fn cancel_removes_at_once_and_reports_unknown_ids() {
    let mut table = table_with(&["a", "b"], 0);
    assert!(table.cancel("middletier", "a", 10));
    assert!(!table.cancel("middletier", "a", 11));
    assert_eq!(
        table.leases().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
}

#[test]
fn an_override_wins_until_removed() {
    let mut table = table_with(&["a"], 0);
    assert!(table.set_override("MIDDLETIER", "a", Status::OutOfService, 1));
    let lease = table.lease("MIDDLETIER", "a").unwrap();
    assert_eq!(lease.effective_status(), Status::OutOfService);
    // The instance re-registering as UP does not lift the override.
    table
        .register("MIDDLETIER", record("a", "UP", 90), 2)
        .unwrap();
    assert_eq!(
        table.lease("MIDDLETIER", "a").unwrap().effective_status(),
        Status::OutOfService
    );
    assert!(table.clear_override("MIDDLETIER", "a", Some(Status::Up), 3));
    assert_eq!(
        table.lease("MIDDLETIER", "a").unwrap().effective_status(),
        Status::Up
    );
    assert!(!table.set_override("MIDDLETIER", "zzz", Status::Down, 4));
}

#[test]
fn the_hashcode_changes_when_the_registry_does() {
    let mut table = table_with(&["a", "b"], 0);
    assert_eq!(table.hashcode(), "UP_2_");
    table.set_override("MIDDLETIER", "a", Status::OutOfService, 1);
    assert_eq!(table.hashcode(), "OUT_OF_SERVICE_1_UP_1_");
    table.cancel("MIDDLETIER", "b", 2);
    assert_eq!(table.hashcode(), "OUT_OF_SERVICE_1_");
}

#[test]
fn the_delta_reports_each_change_once_with_its_action() {
    let mut table = table_with(&["a", "b", "c"], 0);
    table.set_override("MIDDLETIER", "b", Status::OutOfService, 1);
    table.cancel("MIDDLETIER", "c", 2);
    let delta = table.delta();
    let actions: Vec<_> = delta["MIDDLETIER"]
        .iter()
        .map(|(l, a)| (l.id.as_str(), *a))
        .collect();
    assert_eq!(
        actions,
        [
            ("a", ActionType::Added),
            ("b", ActionType::Modified),
            ("c", ActionType::Deleted)
        ]
    );
}

#[test]
fn old_changes_leave_the_delta_and_the_tag_moves() {
    let mut table = table_with(&["a"], 0);
    let tag = table.state_tag();
    table.renew("MIDDLETIER", "a", None, RETENTION);
    table.evict(RETENTION + 1);
    assert!(table.delta().is_empty());
    assert_ne!(
        table.state_tag(),
        tag,
        "a cached delta must not be served after pruning"
    );
    assert_eq!(table.len(), 1, "pruning the delta does not touch leases");
}

#[test]
fn metadata_updates_keep_other_entries() {
    let mut table = table_with(&["a"], 0);
    assert!(table.update_metadata("MIDDLETIER", "a", &[("zone".into(), "b".into())], 1));
    assert!(table.update_metadata("MIDDLETIER", "a", &[("weight".into(), "2".into())], 2));
    let metadata = table.lease("MIDDLETIER", "a").unwrap().record.metadata();
    assert_eq!(
        metadata,
        [
            ("zone".to_owned(), "b".to_owned()),
            ("weight".to_owned(), "2".to_owned())
        ]
    );
}

#[test]
fn counts_group_by_app_and_status() {
    let mut table = table_with(&["a", "b"], 0);
    table.set_override("MIDDLETIER", "a", Status::Down, 1);
    let counts = table.counts();
    assert_eq!(counts[&("MIDDLETIER".to_owned(), Status::Down)], 1);
    assert_eq!(counts[&("MIDDLETIER".to_owned(), Status::Up)], 1);
}
