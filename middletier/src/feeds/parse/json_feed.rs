//! JSON Feed 1.0 and 1.1 (<https://jsonfeed.org/version/1.1>): a JSON
//! object with a `version` URL and an `items` array. Read leniently like
//! the XML formats: a missing title or an item without one is fine, a field
//! of the wrong type is ignored rather than fatal, and only the first
//! `max_items` items are normalized.

use serde_json::Value;
use url::Url;

use super::{
    Format, ParseError, ParseLimits, ParsedFeed, ParsedItem, Sanitizer, absolute_http, enclosure,
    guid, non_empty, parse_date,
};

/// A feed from a JSON document; `NotAFeed` if it is JSON but not a JSON
/// Feed.
pub(super) fn parse(
    text: &str,
    base: &Url,
    limits: &ParseLimits,
) -> Result<ParsedFeed, ParseError> {
    let document: Value = serde_json::from_str(text)
        .map_err(|e| ParseError::Malformed(super::short(&format!("JSON: {e}"))))?;
    let is_json_feed = document["version"]
        .as_str()
        .is_some_and(|v| v.contains("jsonfeed.org/version/"));
    let Some(items) = document["items"].as_array().filter(|_| is_json_feed) else {
        return Err(ParseError::NotAFeed(
            "it is JSON, but not a JSON Feed (no jsonfeed.org version and items)".into(),
        ));
    };
    let clean = Sanitizer::new(base, limits);
    let string = |value: &Value, key: &str| value[key].as_str().map(str::to_owned);
    let items = items
        .iter()
        .filter(|item| item.is_object())
        .take(limits.max_items)
        .map(|item| {
            let (description, content) = clean.summary_and_content(
                |max| {
                    string(item, "summary")
                        .map_or_else(String::new, |text| super::escape_html(&text, max))
                },
                |max| {
                    if let Some(html) = string(item, "content_html") {
                        clean.html(&html, max)
                    } else if let Some(text) = string(item, "content_text") {
                        super::escape_html(&text, max)
                    } else {
                        String::new()
                    }
                },
            );
            // 1.1 has `authors`; 1.0 had one `author`; the item's, else the feed's.
            let author = [item, &document]
                .into_iter()
                .flat_map(|v| {
                    v["authors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(std::iter::once(&v["author"]))
                })
                .find_map(|a| non_empty(a["name"].as_str()));
            let enclosures = item["attachments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| {
                    let length = a["size_in_bytes"].as_u64().map(|n| n.to_string());
                    enclosure(
                        base,
                        a["url"].as_str()?,
                        a["mime_type"].as_str(),
                        length.as_deref(),
                    )
                })
                .collect();
            let categories = item["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| non_empty(t.as_str()))
                .collect();
            let link = ["url", "external_url"]
                .into_iter()
                .filter_map(|key| string(item, key))
                .find_map(|url| absolute_http(base, &url));
            let published = ["date_published", "date_modified"]
                .into_iter()
                .filter_map(|key| string(item, key))
                .find_map(|date| parse_date(&date));
            let title = string(item, "title");
            // `id` is a string in 1.1; 1.0 feeds sometimes give a number.
            let id = match &item["id"] {
                Value::String(id) => Some(id.clone()),
                Value::Number(id) => Some(id.to_string()),
                _ => None,
            };
            ParsedItem {
                guid: guid(id),
                title: super::title_or_excerpt(title.as_deref(), &description),
                link,
                description,
                content,
                author,
                enclosures,
                categories,
                published,
            }
        })
        .collect();
    Ok(ParsedFeed {
        format: Format::Json,
        title: non_empty(string(&document, "title").as_deref()),
        site_url: string(&document, "home_page_url").and_then(|url| absolute_http(base, &url)),
        ttl: None,
        items,
    })
}
