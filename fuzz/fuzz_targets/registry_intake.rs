//! The registry's intake on arbitrary bodies: JSON or XML parsing, the
//! instance record, registration in the lease table, and rendering back to
//! JSON and XML. Never panics; whatever it renders parses again.
#![no_main]

use common::discovery::eureka::InstanceRecord;
use libfuzzer_sys::fuzz_target;
use registry::parse_body_as;
use registry::leases::LeaseTable;
use registry::records::{Format, encode_delta, encode_full};

fuzz_target!(|data: &[u8]| {
    let content_type = match data.first() {
        Some(b) if b % 3 == 0 => "application/xml",
        Some(b) if b % 3 == 1 => "application/json",
        _ => "",
    };
    let Ok(body) = parse_body_as(content_type, data) else {
        return;
    };
    let Ok(record) = InstanceRecord::from_envelope(body) else {
        return;
    };
    let mut table = LeaseTable::new(180_000);
    let app = record.app().unwrap_or_else(|| "APP".to_owned());
    if table.register(&app, record, 1_000).is_err() {
        return;
    }
    let json = encode_full(&table, Format::Json);
    serde_json_check(&json);
    let xml = String::from_utf8(encode_full(&table, Format::Xml)).expect("XML output is UTF-8");
    registry::xml::from_xml(&xml).expect("rendered XML parses again");
    let _ = encode_delta(&table, Format::Json);
    table.evict(1_000_000_000);
});

fn serde_json_check(json: &[u8]) {
    let text = std::str::from_utf8(json).expect("JSON output is UTF-8");
    assert!(text.starts_with("{\"applications\":"), "{text}");
    assert!(text.ends_with("}}"), "{text}");
}
