//! Eureka's XML, mapped to and from the JSON shape.
//!
//! Eureka's two formats are one tree: an XML attribute is a JSON key with an
//! `@` (`<port enabled="true">9191</port>` ↔ `{"@enabled": "true", "$":
//! 9191}`), text beside attributes is `$`, and repeated elements are arrays.
//! So the registry renders JSON values and this module writes them as XML,
//! and parses XML bodies into the same values; one code path serves both.
//!
//! Parsing is defensive: no DTDs (so no entity tricks), a depth limit, and
//! the caller bounds the body size.
//!
//! Writing is too. Records echo the fields an instance sent, and XML gives
//! names meaning: an `"@xmlns": "http://www.w3.org/1999/xhtml"` field,
//! written as is, would make the answer XHTML, and a `"script"` field
//! beside it a script that a browser runs on the registry's origin. So
//! names starting with `xml` (reserved by XML itself: `xmlns`, `xml:lang`,
//! ...) are written with a leading `_`, like any other name XML does not
//! allow: no record can declare a namespace or change how its answer is
//! read.

use serde_json::{Map, Value};

const MAX_DEPTH: usize = 32;

/// Why an XML body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// It has a DOCTYPE.
    #[error("DTDs are not accepted")]
    Doctype,
    /// Nested too deep.
    #[error("XML nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// No element at all.
    #[error("the XML document is empty")]
    Empty,
}

/// Writes `value` as the element `<root>`.
pub fn to_xml(root: &str, value: &Value) -> String {
    let mut out = String::with_capacity(4096);
    write_element(&mut out, root, value);
    out
}

/// Appends `value` as the element `<name>` (an array: one element per item).
pub fn write_element(out: &mut String, name: &str, value: &Value) {
    let name = element_name(name);
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                write_element(out, &name, item);
            }
        }
        Value::Object(map) => {
            out.push('<');
            out.push_str(&name);
            for (key, attr) in map.iter().filter(|(k, _)| k.starts_with('@')) {
                out.push(' ');
                out.push_str(&element_name(&key[1..]));
                out.push_str("=\"");
                out.push_str(&quick_xml::escape::escape(scalar_text(attr)));
                out.push('"');
            }
            let text = map.get("$").map(scalar_text);
            let mut children = map
                .iter()
                .filter(|(k, _)| !k.starts_with('@') && *k != "$")
                .peekable();
            if text.is_none() && children.peek().is_none() {
                out.push_str("/>");
                return;
            }
            out.push('>');
            if let Some(text) = text {
                out.push_str(&quick_xml::escape::escape(text));
            }
            for (key, child) in children {
                write_element(out, key, child);
            }
            out.push_str("</");
            out.push_str(&name);
            out.push('>');
        }
        scalar => {
            out.push('<');
            out.push_str(&name);
            out.push('>');
            out.push_str(&quick_xml::escape::escape(scalar_text(scalar)));
            out.push_str("</");
            out.push_str(&name);
            out.push('>');
        }
    }
}

fn scalar_text(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        Value::Null => std::borrow::Cow::Borrowed(""),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

/// Keys become element and attribute names: characters XML does not allow
/// become `_`, and a name XML does not allow to start that way (a digit,
/// `-`, `.`, or the reserved `xml`) gets a leading `_`.
fn element_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let reserved = name
        .get(..3)
        .is_some_and(|start| start.eq_ignore_ascii_case("xml"));
    if name.is_empty()
        || reserved
        || name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
    {
        name.insert(0, '_');
    }
    name
}

/// An element being read: its attributes, children and text so far.
struct Open {
    name: String,
    fields: Map<String, Value>,
    /// Children in order, so repeated names become arrays in place.
    children: Vec<(String, Value)>,
    text: String,
}

impl Open {
    fn into_value(self) -> Value {
        let text = self.text.trim();
        if self.fields.is_empty() && self.children.is_empty() {
            return Value::String(text.to_owned());
        }
        let mut map = self.fields;
        for (name, value) in self.children {
            match map.get_mut(&name) {
                Some(Value::Array(items)) => items.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
                None => {
                    map.insert(name, value);
                }
            }
        }
        if !text.is_empty() {
            map.insert("$".to_owned(), Value::String(text.to_owned()));
        }
        Value::Object(map)
    }
}

/// Parses an XML document into `(root element name, value)`.
pub fn from_xml(text: &str) -> Result<(String, Value), XmlError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    loop {
        match reader.read_event().map_err(|e| malformed(&e))? {
            Event::DocType(_) => return Err(XmlError::Doctype),
            event @ (Event::Start(_) | Event::Empty(_)) => {
                let (element, empty) = match &event {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    _ => unreachable!("matched above"),
                };
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let name = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
                let mut fields = Map::new();
                for attr in element.attributes() {
                    let attr = attr.map_err(|e| malformed(&e))?;
                    let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| malformed(&e))?
                        .into_owned();
                    fields.insert(format!("@{key}"), Value::String(value));
                }
                stack.push(Open {
                    name,
                    fields,
                    children: Vec::new(),
                    text: String::new(),
                });
                if empty && let Some(done) = close(&mut stack) {
                    return Ok(done);
                }
            }
            Event::End(_) => {
                if let Some(done) = close(&mut stack) {
                    return Ok(done);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(|e| malformed(&e))?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| malformed(&e))?;
                let resolved = if let Some(c) = r.resolve_char_ref().map_err(|e| malformed(&e))? {
                    c.to_string()
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                    s.to_owned()
                } else {
                    return Err(XmlError::Malformed(format!("unknown entity &{name};")));
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => return Err(XmlError::Empty),
            _ => {}
        }
    }
}

/// Closes the innermost element; returns the root when it was the root.
fn close(stack: &mut Vec<Open>) -> Option<(String, Value)> {
    let done = stack.pop()?;
    let name = done.name.clone();
    let value = done.into_value();
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push((name, value));
            None
        }
        None => Some((name, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn eureka_records_map_to_xml_and_back() {
        let record = json!({
            "instanceId": "a", "hostName": "a.local", "status": "UP",
            "port": {"$": 9191, "@enabled": "true"},
            "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
            "metadata": {"@class": "java.util.Collections$EmptyMap"},
            "leaseInfo": {"durationInSecs": 90}
        });
        let xml = to_xml("instance", &record);
        assert!(xml.contains(r#"<port enabled="true">9191</port>"#), "{xml}");
        assert!(
            xml.contains(r#"<metadata class="java.util.Collections$EmptyMap"/>"#),
            "{xml}"
        );
        let (root, back) = from_xml(&xml).unwrap();
        assert_eq!(root, "instance");
        // XML carries text only: numbers come back as strings, which the
        // record accessors read all the same.
        assert_eq!(back["port"], json!({"@enabled": "true", "$": "9191"}));
        assert_eq!(back["dataCenterInfo"]["name"], "MyOwn");
        assert_eq!(back["leaseInfo"]["durationInSecs"], "90");
    }

    #[test]
    fn arrays_are_repeated_elements_and_repeats_become_arrays() {
        let apps = json!({"application": [{"name": "A", "instance": [{"hostName": "1"}, {"hostName": "2"}]}]});
        let xml = to_xml("applications", &apps);
        assert_eq!(
            xml,
            "<applications><application><name>A</name><instance><hostName>1</hostName></instance><instance><hostName>2</hostName></instance></application></applications>"
        );
        let (_, back) = from_xml(&xml).unwrap();
        assert_eq!(back["application"]["instance"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn text_is_escaped_and_unescaped() {
        let xml = to_xml("instance", &json!({"metadata": {"note": "a<b & \"c\""}}));
        assert!(xml.contains("a&lt;b &amp; &quot;c&quot;"), "{xml}");
        let (_, back) = from_xml(&xml).unwrap();
        assert_eq!(back["metadata"]["note"], "a<b & \"c\"");
    }

    #[test]
    fn odd_keys_still_make_well_formed_xml() {
        let xml = to_xml(
            "metadata",
            &json!({"1st key": "x", "management.port": "8080"}),
        );
        assert_eq!(
            xml,
            "<metadata><_1st_key>x</_1st_key><management.port>8080</management.port></metadata>"
        );
        assert!(from_xml(&xml).is_ok());
    }

    #[test]
    fn no_record_can_declare_a_namespace_or_turn_the_answer_into_a_page() {
        let record = json!({
            "instanceId": "evil",
            "@xmlns": "http://www.w3.org/1999/xhtml",
            "@xmlns:h": "http://www.w3.org/1999/xhtml",
            "@XML:lang": "en",
            "xmlns": "http://www.w3.org/1999/xhtml",
            "script": "alert(document.domain)",
            "metadata": {"@xmlns": "http://www.w3.org/1999/xhtml", "h:script": "alert(1)"}
        });
        let xml = to_xml("instance", &record);
        assert!(!xml.to_ascii_lowercase().contains(" xml"), "{xml}");
        assert!(!xml.contains("<xmlns"), "{xml}");
        assert!(!xml.contains("h:script"), "{xml}");
        assert!(
            xml.contains(r#"<instance _xmlns="http://www.w3.org/1999/xhtml""#),
            "{xml}"
        );
        // Still well-formed, and still the same tree apart from the names.
        let (_, back) = from_xml(&xml).unwrap();
        assert_eq!(back["script"], "alert(document.domain)");
        assert_eq!(back["_xmlns"], "http://www.w3.org/1999/xhtml");
    }

    #[test]
    fn hostile_or_broken_xml_is_refused() {
        assert_eq!(
            from_xml(
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><instance>&e;</instance>"
            ),
            Err(XmlError::Doctype)
        );
        assert!(matches!(
            from_xml("<instance><a></instance>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            from_xml("<instance>&nope;</instance>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(from_xml(""), Err(XmlError::Empty));
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(from_xml(&deep), Err(XmlError::TooDeep));
    }

    #[test]
    fn character_references_are_decoded() {
        let (_, value) =
            from_xml("<instance><hostName>caf&#233;&amp;co</hostName></instance>").unwrap();
        assert_eq!(value["hostName"], "café&co");
    }
}
