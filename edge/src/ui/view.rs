//! The reader page's view model: what a feed card and an item line show,
//! made from the middletier's answer by pure functions (no I/O), so each
//! is tested without a server. The templates in `templates/` render them.

use chrono::{DateTime, Utc};
use common::api::{FeedView, Item, ItemId};
use serde::Deserialize;

use super::ITEMS_PER_FEED;

/// Summary length, in characters.
const SUMMARY_CHARS: usize = 240;

/// Which items the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum View {
    #[default]
    All,
    Unread,
    Starred,
    /// The river: every feed's items in one list.
    River,
    /// The river, unread only.
    #[serde(rename = "river-unread")]
    RiverUnread,
}

impl View {
    /// The page's address for this view.
    pub(super) fn path(self) -> &'static str {
        match self {
            View::All => "/",
            View::Unread => "/?view=unread",
            View::Starred => "/?view=starred",
            View::River => "/river",
            View::RiverUnread => "/river?unread=true",
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            View::All => "all",
            View::Unread => "unread",
            View::Starred => "starred",
            View::River => "river",
            View::RiverUnread => "river-unread",
        }
    }
}

pub(super) struct FeedCard {
    pub(super) url: String,
    pub(super) title: String,
    pub(super) site_url: Option<String>,
    pub(super) error: Option<String>,
    pub(super) unread: usize,
    /// "checked 5 min ago", or why not yet.
    pub(super) checked: Option<String>,
    /// "failing for 2 h (4 times)", when it is.
    pub(super) failing: Option<String>,
    pub(super) broken: bool,
    /// The feed's newest item id the page was given ("Mark all read" stops
    /// there).
    pub(super) newest: Option<String>,
    pub(super) items: Vec<ItemLine>,
}

pub(super) struct ItemLine {
    pub(super) id: String,
    pub(super) title: String,
    /// Where opening it goes: the article page, which marks it read.
    pub(super) open: String,
    /// The original, through `/items/{id}/open` (which marks it read);
    /// `None` when the item has no web link.
    pub(super) original: Option<String>,
    /// The feed's title, where the list mixes feeds (the river).
    pub(super) feed: Option<String>,
    pub(super) date_iso: Option<String>,
    pub(super) date_relative: Option<String>,
    pub(super) date_exact: Option<String>,
    pub(super) summary: String,
    pub(super) read: bool,
    pub(super) starred: bool,
}

/// The highest item id of `feed`'s items as listed.
pub(super) fn newest_id(feed: &FeedView) -> Option<ItemId> {
    feed.items.iter().map(|i| i.id).max()
}

pub(super) fn card(feed: &FeedView, view: View, now: DateTime<Utc>) -> FeedCard {
    let failing = match (feed.error_count, feed.failing_since) {
        (0, _) => None,
        (n, Some(since)) => Some(format!(
            "failing for {} ({n} time{} in a row)",
            span(now - since),
            if n == 1 { "" } else { "s" }
        )),
        (n, None) => Some(format!(
            "failed {n} time{} in a row",
            if n == 1 { "" } else { "s" }
        )),
    };
    FeedCard {
        url: feed.url.clone(),
        title: feed.title.clone(),
        site_url: feed
            .site_url
            .clone()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://")),
        error: feed.error.clone(),
        unread: feed.unread,
        checked: feed
            .last_fetched
            .map(|at| format!("checked {}", relative(now, at))),
        failing,
        broken: feed.broken,
        newest: newest_id(feed).map(|id| id.to_string()),
        items: feed
            .items
            .iter()
            .filter(|item| view != View::Starred || item.starred)
            .take(ITEMS_PER_FEED)
            .map(|item| item_line(item, now))
            .collect(),
    }
}

/// The item's link, if it is a web link. The middletier only sends
/// http(s) links; check again, since a `javascript:` link would run in
/// our origin.
pub(super) fn web_link(item: &Item) -> Option<String> {
    item.link
        .clone()
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
}

pub(super) fn item_line(item: &Item, now: DateTime<Utc>) -> ItemLine {
    let date = item.published;
    ItemLine {
        id: item.id.to_string(),
        title: item.title.clone(),
        open: format!("/items/{}", item.id),
        original: web_link(item).map(|_| format!("/items/{}/open", item.id)),
        feed: None,
        date_iso: date.map(|d| d.to_rfc3339()),
        date_relative: date.map(|d| relative(now, d)),
        date_exact: date.map(|d| d.format("%-d %b %Y, %H:%M UTC").to_string()),
        summary: summary(&item.description),
        read: item.read,
        starred: item.starred,
    }
}

/// "just now", "5 min ago", "2 h ago", "3 days ago"; a date for the future
/// or for over a year ago.
pub(super) fn relative(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let ago = now - at;
    if ago < chrono::Duration::zero() || ago > chrono::Duration::days(365) {
        return at.format("%-d %b %Y").to_string();
    }
    if ago < chrono::Duration::minutes(1) {
        return "just now".to_owned();
    }
    format!("{} ago", span(ago))
}

/// A length of time, roughly: "5 min", "2 h", "3 days".
fn span(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match minutes {
        0..=59 => format!("{} min", minutes.max(1)),
        60..=2879 => format!("{} h", minutes / 60),
        _ => format!("{} days", minutes / 1440),
    }
}

/// A short plain-text summary of feed HTML. `ammonia` with no tags allowed
/// drops every element (and the content of scripts and styles), keeping
/// text only; the template escapes it again when it is written out. A space
/// goes before each tag first, so "<p>a</p><p>b</p>" reads "a b", not "ab".
pub(crate) fn summary(html: &str) -> String {
    let spaced = html.replace('<', " <");
    let text = ammonia::Builder::empty().clean(&spaced).to_string();
    let text = unescape(&text);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text,
    }
}

/// Undoes the escaping html5ever's serializer applies to text.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_short_plain_text() {
        let html = r#"<p>Hello <b>world</b> &amp; friends</p><script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">link</a><iframe src="https://evil.example"></iframe><style>p{}</style>"#;
        assert_eq!(summary(html), "Hello world & friends link");
        let long = "word ".repeat(200);
        let cut = summary(&long);
        assert!(cut.ends_with('…') && cut.chars().count() <= SUMMARY_CHARS + 1);
        assert_eq!(
            summary("a &lt;b&gt; c"),
            "a <b> c",
            "escaped text stays text"
        );
    }

    #[test]
    fn only_web_links_are_kept() {
        let mut item = Item {
            title: "t".into(),
            link: Some("javascript:alert(1)".into()),
            description: String::new(),
            published: common::api::rfc3339::parse("2024-01-02T09:30:00Z"),
            ..Item::default()
        };
        item.id = ItemId::new(42);
        let now = Utc::now();
        let line = item_line(&item, now);
        assert_eq!(line.original, None);
        assert_eq!(
            line.open, "/items/42",
            "the article opens whatever the link"
        );
        assert_eq!(line.date_exact.as_deref(), Some("2 Jan 2024, 09:30 UTC"));
        item.link = Some("https://example.com/a".into());
        assert_eq!(
            item_line(&item, now).original.as_deref(),
            Some("/items/42/open")
        );
    }

    #[test]
    fn dates_read_relative() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        assert_eq!(relative(now, at("2026-12-01T11:59:30Z")), "just now");
        assert_eq!(relative(now, at("2026-12-01T11:55:00Z")), "5 min ago");
        assert_eq!(relative(now, at("2026-12-01T10:00:00Z")), "2 h ago");
        assert_eq!(relative(now, at("2026-11-28T12:00:00Z")), "3 days ago");
        assert_eq!(relative(now, at("2027-01-01T00:00:00Z")), "1 Jan 2027");
        assert_eq!(relative(now, at("2020-01-01T00:00:00Z")), "1 Jan 2020");
    }
}
