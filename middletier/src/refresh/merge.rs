//! Folding a freshly parsed document into a feed's stored items. Pure: the
//! stored items, the parsed ones and the new ids go in; what to write
//! comes out.
//!
//! - Items are told apart across refreshes by a **key**: the item's guid,
//!   else its link, else a hash of its title and date (feeds without
//!   either exist; a hash of the title alone would merge every "Untitled").
//!   A known key keeps its id, so read and starred state stay with it; its
//!   text is updated if the publisher edited it.
//! - **New items get new ids** in reverse document order: feeds list their
//!   newest item first, so the first item gets the highest id, and items
//!   sorted by id read as the publisher ordered them.
//! - The newest `keep` items (by id) are kept, plus any still in the
//!   document: dropping one the document still lists would bring it back
//!   as "new" on the next refresh.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

use chrono::{DateTime, TimeDelta, Utc};
use twox_hash::XxHash64;

use crate::feeds::parse::ParsedItem;
use crate::store::{ItemDetails, ItemId, StoredItem, ids};

/// The key that identifies `item` among its feed's items.
pub fn key(item: &ParsedItem) -> String {
    if let Some(guid) = &item.guid {
        return guid.clone();
    }
    if let Some(link) = &item.link {
        return link.clone();
    }
    let mut hasher = XxHash64::with_seed(0);
    hasher.write(item.title.as_bytes());
    hasher.write(&[0]);
    // The date as it was always written, so keys made before dates were
    // dates still match.
    let published = item.published.as_ref().map(common::api::rfc3339::format);
    hasher.write(published.unwrap_or_default().as_bytes());
    format!("hash:{:016x}", hasher.finish())
}

/// A document, compared with what is stored; ready for new ids.
#[derive(Debug)]
pub struct Merge<'a> {
    stored: &'a [StoredItem],
    /// The document's items with their keys, duplicates dropped.
    parsed: Vec<(String, &'a ParsedItem)>,
    /// How many of them are new.
    new: usize,
}

/// What to write.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New items, and stored ones whose text changed.
    pub upserts: Vec<StoredItem>,
    /// Stored items that fell out of the window.
    pub removals: Vec<StoredItem>,
    /// The feed's items after the change, newest first.
    pub items: Vec<StoredItem>,
}

impl<'a> Merge<'a> {
    /// Compares `parsed` (in document order) with `stored`.
    pub fn plan(stored: &'a [StoredItem], parsed: &'a [ParsedItem]) -> Self {
        let known: HashSet<&str> = stored.iter().map(|i| i.key.as_str()).collect();
        let mut seen = HashSet::new();
        let parsed: Vec<(String, &ParsedItem)> = parsed
            .iter()
            .map(|item| (key(item), item))
            .filter(|(key, _)| seen.insert(key.clone()))
            .collect();
        let new = parsed
            .iter()
            .filter(|(key, _)| !known.contains(key.as_str()))
            .count();
        Self {
            stored,
            parsed,
            new,
        }
    }

    /// How many new ids [`Merge::apply`] needs.
    pub fn new_items(&self) -> usize {
        self.new
    }

    /// The changes, given `ids` (ascending, [`Merge::new_items`] of them)
    /// for the new items, keeping the newest `keep`.
    pub fn apply(self, ids: &[ItemId], retention: &Retention, now: DateTime<Utc>) -> Changes {
        debug_assert_eq!(ids.len(), self.new, "one id per new item");
        let by_key: HashMap<&str, &StoredItem> =
            self.stored.iter().map(|i| (i.key.as_str(), i)).collect();
        let mut fresh_ids = ids.iter().rev().copied();
        let mut upserts = Vec::new();
        let mut in_document = HashSet::new();
        for (key, item) in &self.parsed {
            let details = details_of(item);
            let details_hash = details.fingerprint();
            let id = match by_key.get(key.as_str()) {
                Some(stored) if same_text(stored, item, details_hash) => {
                    in_document.insert(stored.id);
                    continue;
                }
                Some(stored) => stored.id,
                None => match fresh_ids.next() {
                    Some(id) => id,
                    None => continue, // too few ids: only if the caller erred
                },
            };
            in_document.insert(id);
            upserts.push(StoredItem {
                id,
                key: key.clone(),
                guid: item.guid.clone(),
                title: item.title.clone(),
                link: item.link.clone(),
                description: item.description.clone(),
                details_hash,
                details: Some(details),
                published: item.published,
            });
        }
        let replaced: HashSet<ItemId> = upserts.iter().map(|i| i.id).collect();
        let mut items: Vec<StoredItem> = self
            .stored
            .iter()
            .filter(|i| !replaced.contains(&i.id))
            .cloned()
            // What the feed holds now, as `Store::items` would list it.
            .chain(upserts.iter().map(StoredItem::summary))
            .collect();
        crate::store::sort_newest_first(&mut items);
        let mut kept = Vec::with_capacity(items.len().min(retention.max));
        let mut removals = Vec::new();
        let young = ids::first_id_at(now - retention.keep_for);
        for item in items {
            let wanted =
                kept.len() < retention.keep || in_document.contains(&item.id) || item.id >= young;
            if wanted && kept.len() < retention.max {
                kept.push(item);
            } else {
                removals.push(item);
            }
        }
        // A removed item never needs writing first.
        let removed: HashSet<ItemId> = removals.iter().map(|i| i.id).collect();
        upserts.retain(|i| !removed.contains(&i.id));
        Changes {
            upserts,
            removals,
            items: kept,
        }
    }
}

/// How long a feed's items are kept. An item is dropped only when it is
/// both outside the newest `keep` and was first stored more than `keep_for`
/// ago (so a busy feed's unread items outlive a day's flood), or when it is
/// past `max`, which bounds a feed that floods. Stars are copies, kept
/// apart, for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The newest items kept whatever their age.
    pub keep: usize,
    /// Items younger than this are kept too.
    pub keep_for: TimeDelta,
    /// The most items kept, however young.
    pub max: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep: 200,
            keep_for: TimeDelta::days(60),
            max: 5000,
        }
    }
}

/// What the article shows beyond the summary.
fn details_of(item: &ParsedItem) -> ItemDetails {
    ItemDetails {
        content: item.content.clone(),
        author: item.author.clone(),
        enclosures: item.enclosures.clone(),
        categories: item.categories.clone(),
    }
}

/// Whether the stored item says what the document says. The details are
/// compared by fingerprint (`details_hash`, the document's): the stored
/// summary carries one, so a refresh never reads a feed's full contents.
fn same_text(stored: &StoredItem, item: &ParsedItem, details_hash: u64) -> bool {
    stored.title == item.title
        && stored.link == item.link
        && stored.description == item.description
        && stored.details_hash == details_hash
        && stored.published == item.published
        && stored.guid == item.guid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(guid: &str, title: &str) -> ParsedItem {
        ParsedItem {
            guid: Some(guid.to_owned()),
            title: title.to_owned(),
            link: Some(format!("https://a.example/{guid}")),
            description: String::new(),
            content: String::new(),
            author: None,
            enclosures: Vec::new(),
            categories: Vec::new(),
            published: None,
        }
    }

    /// Merges with ids from `first_id` on (ids below 2^22 were stored in
    /// 2024: long past any `keep_for`).
    fn merge(stored: &[StoredItem], doc: &[ParsedItem], first_id: ItemId, keep: usize) -> Changes {
        let retention = Retention {
            keep,
            ..Retention::default()
        };
        merge_with(stored, doc, first_id, &retention)
    }

    fn merge_with(
        stored: &[StoredItem],
        doc: &[ParsedItem],
        first_id: ItemId,
        retention: &Retention,
    ) -> Changes {
        let plan = Merge::plan(stored, doc);
        let ids: Vec<ItemId> = (first_id..first_id + plan.new_items() as u64).collect();
        plan.apply(&ids, retention, Utc::now())
    }

    #[test]
    fn young_items_outlive_the_newest_n_and_the_cap_bounds_a_flood() {
        let now = Utc::now();
        let yesterday = ids::first_id_at(now - TimeDelta::days(1));
        let last_year = ids::first_id_at(now - TimeDelta::days(365));
        let retention = Retention {
            keep: 2,
            keep_for: TimeDelta::days(60),
            max: 5,
        };
        let doc: Vec<ParsedItem> = ["a", "b"].iter().map(|g| parsed(g, g)).collect();
        let old = merge_with(&[], &doc, last_year, &retention).items;
        let day = merge_with(
            &old,
            &[parsed("c", "C"), parsed("d", "D")],
            yesterday,
            &retention,
        );
        // Four items; keep 2; the two from yesterday are young anyway, the
        // two from last year are past both.
        assert_eq!(ids(&day.items), [yesterday + 1, yesterday]);
        let flood: Vec<ParsedItem> = (0..4).map(|i| parsed(&format!("n{i}"), "N")).collect();
        let flooded = merge_with(&day.items, &flood, yesterday + 10, &retention);
        assert_eq!(flooded.items.len(), 5, "the cap holds, young or not");
        assert_eq!(ids(&flooded.removals), [yesterday]);
    }

    fn ids(items: &[StoredItem]) -> Vec<ItemId> {
        items.iter().map(|i| i.id).collect()
    }

    #[test]
    fn keys_fall_back_from_guid_to_link_to_a_hash_of_title_and_date() {
        let mut item = parsed("g", "T");
        assert_eq!(key(&item), "g");
        item.guid = None;
        assert_eq!(key(&item), "https://a.example/g");
        item.link = None;
        let by_title = key(&item);
        assert!(by_title.starts_with("hash:"));
        item.published = common::api::rfc3339::parse("2026-12-01T00:00:00Z");
        assert_ne!(
            key(&item),
            by_title,
            "the date tells same-titled items apart"
        );
    }

    #[test]
    fn a_first_fetch_numbers_items_in_document_order() {
        let doc = [parsed("c", "C"), parsed("b", "B"), parsed("a", "A")];
        let changes = merge(&[], &doc, 100, 200);
        assert_eq!(ids(&changes.items), [102, 101, 100]);
        assert_eq!(changes.items[0].title, "C", "the first item is the newest");
        assert_eq!(changes.upserts.len(), 3);
        assert!(changes.removals.is_empty());
    }

    #[test]
    fn known_items_keep_their_ids_and_only_new_or_edited_ones_are_written() {
        let first = merge(&[], &[parsed("b", "B"), parsed("a", "A")], 10, 200).items;
        let doc = [parsed("c", "C"), parsed("b", "B, edited"), parsed("a", "A")];
        let changes = merge(&first, &doc, 20, 200);
        assert_eq!(ids(&changes.items), [20, 11, 10]);
        let written: Vec<(ItemId, &str)> = changes
            .upserts
            .iter()
            .map(|i| (i.id, i.title.as_str()))
            .collect();
        assert_eq!(written, [(20, "C"), (11, "B, edited")]);
    }

    #[test]
    fn the_newest_are_kept_and_the_document_is_never_pruned() {
        let old = merge(&[], &[parsed("b", "B"), parsed("a", "A")], 1, 200).items;
        // Two new items; keep 3: "a" (oldest) goes.
        let doc = [parsed("d", "D"), parsed("c", "C")];
        let changes = merge(&old, &doc, 10, 3);
        assert_eq!(ids(&changes.items), [11, 10, 2]);
        assert_eq!(ids(&changes.removals), [1]);
        // Keep 1, but the document lists two: both stay.
        let changes = merge(&old, &doc, 10, 1);
        assert_eq!(ids(&changes.items), [11, 10]);
        assert_eq!(ids(&changes.removals), [2, 1]);
    }

    #[test]
    fn an_item_listed_twice_is_stored_once() {
        let doc = [parsed("a", "A"), parsed("a", "A again")];
        let plan = Merge::plan(&[], &doc);
        assert_eq!(plan.new_items(), 1);
        let changes = plan.apply(&[5], &Retention::default(), Utc::now());
        assert_eq!(changes.items.len(), 1);
        assert_eq!(changes.items[0].title, "A");
    }
}
