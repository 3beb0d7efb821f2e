//! The Google Reader API's names for things, read and written: item ids in
//! every form clients send, stream ids, tags, times and paging. Plain
//! functions, tested without a server.

use common::api::ItemId;
use common::sync::IdsQuery;

/// The long form of an item id, before its 16 hex digits.
pub(crate) const ITEM_PREFIX: &str = "tag:google.com,2005:reader/item/";
/// Every subscription's one label, until folders exist.
pub(crate) const LABEL: &str = "Feeds";
/// Stream and tag ids, as they are sent (`user/-/...`).
pub(crate) const READING_LIST: &str = "user/-/state/com.google/reading-list";
pub(crate) const READ: &str = "user/-/state/com.google/read";
pub(crate) const STARRED: &str = "user/-/state/com.google/starred";

/// The label's stream id.
pub(crate) const LABEL_ID: &str = "user/-/label/Feeds";

/// An item id as clients send it: decimal (Liferea, Fluent Reader), or
/// hex, long and padded (most), long and unpadded (NetNewsWire's
/// contents), or bare (Reeder). All digits and no leading zero is
/// decimal; anything else is hex. Our ids are below 2^53, so a decimal id
/// never starts with `0` and the rule is never ambiguous.
pub(crate) fn item_id(raw: &str) -> Option<ItemId> {
    let raw = raw.trim();
    if !raw.is_empty() && !raw.starts_with('0') && raw.bytes().all(|b| b.is_ascii_digit()) {
        return ItemId::parse(raw).ok();
    }
    let hex = raw.strip_prefix(ITEM_PREFIX).unwrap_or(raw);
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(ItemId::new)
}

/// The long form: the prefix and 16 zero-padded lower-case hex digits.
pub(crate) fn long_item_id(id: ItemId) -> String {
    format!("{ITEM_PREFIX}{:016x}", id.get())
}

/// A feed's stream id: `feed/<number>`.
pub(crate) fn feed_stream(url: &str) -> String {
    format!("feed/{}", common::sync::feed_number(url))
}

/// What a stream id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Every subscription (also the one label).
    ReadingList,
    /// Read items.
    Read,
    /// Starred items.
    Starred,
    /// Unread items (we keep no separate "kept unread" flag).
    KeptUnread,
    /// A label we do not have: nothing is in it.
    OtherLabel,
    /// One feed: its number or its URL.
    Feed(String),
}

/// Reads a stream id; `user/<anyone>/` means `user/-/`.
pub(crate) fn stream(raw: &str) -> Result<Stream, String> {
    let raw = raw.trim();
    if let Some(feed) = raw.strip_prefix("feed/") {
        return Ok(Stream::Feed(feed.to_owned()));
    }
    let Some(rest) = raw.strip_prefix("user/") else {
        return Err(unknown_stream(raw));
    };
    let (_, path) = rest.split_once('/').ok_or_else(|| unknown_stream(raw))?;
    match path {
        "state/com.google/reading-list" => Ok(Stream::ReadingList),
        "state/com.google/read" => Ok(Stream::Read),
        "state/com.google/starred" => Ok(Stream::Starred),
        "state/com.google/kept-unread" => Ok(Stream::KeptUnread),
        "label/Feeds" => Ok(Stream::ReadingList),
        label if label.starts_with("label/") => Ok(Stream::OtherLabel),
        _ => Err(unknown_stream(raw)),
    }
}

fn unknown_stream(raw: &str) -> String {
    let shown: String = raw.chars().take(100).collect();
    format!(
        "unknown stream {shown:?}: use feed/<id>, user/-/state/com.google/reading-list, .../read, .../starred, .../kept-unread or user/-/label/{LABEL}"
    )
}

/// A time as clients send it: seconds, or ms (13+ digits), or µs (16+
/// digits); in ms.
pub(crate) fn time_ms(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let n: u64 = raw.parse().ok()?;
    Some(match raw.len() {
        16.. => n / 1000,
        13..=15 => n,
        _ => n.saturating_mul(1000),
    })
}

/// The parameters a stream page takes, as one query for the middletier.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page<'a> {
    /// `s` (or the path), already read.
    pub stream: Option<Stream>,
    /// `xt`: states to exclude.
    pub exclude: Vec<&'a str>,
    /// `it`: states to include.
    pub include: Vec<&'a str>,
    /// `ot`: items crawled at or after this (seconds).
    pub oldest: Option<&'a str>,
    /// `nt`: items crawled before this (seconds).
    pub newest: Option<&'a str>,
    /// `c`: the continuation of the page before.
    pub continuation: Option<&'a str>,
    /// `r=o`: oldest first.
    pub oldest_first: bool,
    /// `n`.
    pub count: Option<&'a str>,
}

/// Items per page when `n` is not given (Google's default).
const DEFAULT_COUNT: usize = 20;

impl Page<'_> {
    /// The middletier query, with at most `max` items; `None` when the
    /// filters exclude everything (a label we do not have, or `it` and
    /// `xt` of the same state).
    pub(crate) fn query(&self, max: usize) -> Result<Option<IdsQuery>, String> {
        let mut query = IdsQuery {
            limit: match self.count {
                None => DEFAULT_COUNT,
                Some(n) => n
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("n={n:?} is not a number of items"))?
                    .clamp(1, max),
            },
            oldest_first: self.oldest_first,
            ..IdsQuery::default()
        };
        let mut read: Option<bool> = None;
        let mut starred: Option<bool> = None;
        let mut possible = true;
        match self.stream.clone().unwrap_or(Stream::ReadingList) {
            Stream::ReadingList => {}
            Stream::Read => possible &= want(&mut read, true),
            Stream::KeptUnread => possible &= want(&mut read, false),
            Stream::Starred => query.starred_stream = true,
            Stream::OtherLabel => return Ok(None),
            Stream::Feed(feed) => query.feed = Some(feed),
        }
        for (tags, value) in [(&self.include, true), (&self.exclude, false)] {
            for tag in tags {
                match state_tag(tag) {
                    Some(Tag::Read) => possible &= want(&mut read, value),
                    Some(Tag::KeptUnread) => possible &= want(&mut read, !value),
                    Some(Tag::Starred) => possible &= want(&mut starred, value),
                    // Items carry no other label: including one leaves
                    // nothing, excluding one leaves everything.
                    Some(Tag::Label) if value => possible = false,
                    Some(Tag::Label) => {}
                    None => return Err(format!("unknown state {tag:?} in it/xt")),
                }
            }
        }
        if !possible {
            return Ok(None);
        }
        (query.read, query.starred) = (read, starred);
        let bound = |raw: Option<&str>, name: &str| {
            raw.map(|raw| {
                time_ms(raw)
                    .map(ItemId::first_stored_at_ms)
                    .ok_or_else(|| format!("{name}={raw:?} is not a time in seconds since 1970"))
            })
            .transpose()
        };
        // `ot` includes its second; ids above the one before it.
        query.after = bound(self.oldest, "ot")?.map(|id| ItemId::new(id.get().saturating_sub(1)));
        query.before = bound(self.newest, "nt")?;
        if let Some(raw) = self.continuation.filter(|c| !c.trim().is_empty()) {
            let last = item_id(raw)
                .ok_or_else(|| format!("c={raw:?} is not a continuation this server gave"))?;
            // Keyset: the next page starts just past the last id sent.
            if self.oldest_first {
                query.after = Some(query.after.map_or(last, |a| a.max(last)));
            } else {
                query.before = Some(query.before.map_or(last, |b| b.min(last)));
            }
        }
        Ok(Some(query))
    }
}

/// Sets a filter to `value`; `false` when it already held the other one
/// (the filters then match nothing).
fn want(slot: &mut Option<bool>, value: bool) -> bool {
    let agrees = slot.is_none_or(|v| v == value);
    *slot = Some(value);
    agrees
}

/// A state or label tag (`a=`, `r=`, `it=`, `xt=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    Read,
    Starred,
    KeptUnread,
    /// Any label.
    Label,
}

/// Reads a tag; `user/<anyone>/` means `user/-/`.
pub(crate) fn state_tag(raw: &str) -> Option<Tag> {
    let rest = raw.trim().strip_prefix("user/")?;
    let (_, path) = rest.split_once('/')?;
    match path {
        "state/com.google/read" => Some(Tag::Read),
        "state/com.google/starred" => Some(Tag::Starred),
        "state/com.google/kept-unread" => Some(Tag::KeptUnread),
        label if label.starts_with("label/") => Some(Tag::Label),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_are_read_in_every_form_clients_send() {
        let id = ItemId::new(377_541_449_579_907);
        let hex = format!("{:x}", id.get());
        for form in [
            id.to_string(),                // decimal
            long_item_id(id),              // long, padded
            format!("{ITEM_PREFIX}{hex}"), // long, unpadded
            format!("{:016x}", id.get()),  // bare 16 hex
            format!("{ITEM_PREFIX}{}", hex.to_uppercase()),
        ] {
            assert_eq!(item_id(&form), Some(id), "{form}");
        }
        assert_eq!(long_item_id(id), format!("{ITEM_PREFIX}000{hex}"));
        for junk in [
            "",
            "xyz",
            "tag:google.com,2005:reader/item/",
            &"f".repeat(17),
            "-1",
        ] {
            assert_eq!(item_id(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn streams_and_tags_are_read_for_any_user() {
        assert_eq!(stream(READING_LIST), Ok(Stream::ReadingList));
        assert_eq!(
            stream("user/1005/state/com.google/starred"),
            Ok(Stream::Starred)
        );
        assert_eq!(stream("user/-/label/Feeds"), Ok(Stream::ReadingList));
        assert_eq!(stream("user/-/label/Tech"), Ok(Stream::OtherLabel));
        assert_eq!(stream("feed/12"), Ok(Stream::Feed("12".into())));
        assert_eq!(
            stream("feed/https://a.example/f?x=1"),
            Ok(Stream::Feed("https://a.example/f?x=1".into()))
        );
        assert!(stream("user/-/state/com.google/like").is_err());
        assert!(stream("splice/1").is_err());
        assert_eq!(state_tag("user/abc/state/com.google/read"), Some(Tag::Read));
        assert_eq!(state_tag("user/-/label/x"), Some(Tag::Label));
        assert_eq!(state_tag("read"), None);
    }

    #[test]
    fn times_are_seconds_ms_or_microseconds() {
        assert_eq!(time_ms("1764000000"), Some(1_764_000_000_000));
        assert_eq!(time_ms("1764000000123"), Some(1_764_000_000_123));
        assert_eq!(time_ms("1764000000123456"), Some(1_764_000_000_123));
        assert_eq!(time_ms("soon"), None);
    }

    #[test]
    fn a_page_is_an_id_range_and_state_filters() {
        let page = Page {
            stream: Some(Stream::ReadingList),
            exclude: vec![READ],
            oldest: Some("1764000000"),
            count: Some("100000"),
            ..Page::default()
        };
        let query = page.query(10_000).unwrap().unwrap();
        assert_eq!(query.limit, 10_000, "n is capped, not refused");
        assert_eq!(query.read, Some(false));
        let first = ItemId::first_stored_at_ms(1_764_000_000_000);
        assert_eq!(query.after, Some(ItemId::new(first.get() - 1)));
        assert_eq!(query.before, None);

        // Keyset continuation, newest first: below the last id sent.
        let next = Page {
            continuation: Some("12345"),
            newest: Some("1764000000"),
            ..Page::default()
        };
        assert_eq!(
            next.query(10).unwrap().unwrap().before,
            Some(ItemId::new(12_345))
        );
        let oldest_first = Page {
            continuation: Some("12345"),
            oldest_first: true,
            ..Page::default()
        };
        let query = oldest_first.query(10).unwrap().unwrap();
        assert_eq!((query.after, query.limit), (Some(ItemId::new(12_345)), 20));

        // Filters that leave nothing.
        let contradiction = Page {
            stream: Some(Stream::Read),
            exclude: vec![READ],
            ..Page::default()
        };
        assert_eq!(contradiction.query(10), Ok(None));
        let label = Page {
            stream: Some(Stream::OtherLabel),
            ..Page::default()
        };
        assert_eq!(label.query(10), Ok(None));
        let starred = Page {
            stream: Some(Stream::Starred),
            include: vec![READ],
            ..Page::default()
        };
        let query = starred.query(10).unwrap().unwrap();
        assert!(query.starred_stream && query.read == Some(true));
        assert!(
            Page {
                count: Some("many"),
                ..Page::default()
            }
            .query(10)
            .is_err()
        );
        assert!(
            Page {
                continuation: Some("zz"),
                ..Page::default()
            }
            .query(10)
            .is_err()
        );
    }
}
