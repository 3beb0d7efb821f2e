//! Finding the feeds of a site, as readers do when given a page instead
//! of a feed:
//!
//! 1. the page's `<link rel="alternate">` elements of feed types
//!    (RSS, Atom, JSON Feed), resolved against `<base href>` and the page;
//! 2. if there are none, the common places: `/feed`, `/rss.xml`,
//!    `/atom.xml`, `/index.xml`, `/feed.json`, `/feed.xml`, `/rss` at the
//!    site's root.
//!
//! Every candidate is fetched and parsed before it is offered (a link to a
//! dead feed is not a feed), through the same [`Feeds`] as everything
//! else, so the SSRF guard and every cap apply to discovered URLs too. At
//! most [`MAX_CANDIDATES`] of the page's links are checked (they may be on
//! any hosts), or the seven common paths on the page's own site, so one
//! call costs a bounded number of fetches whatever the page lists.
//! [`feed_links`] is the pure part: HTML in, candidates out, using the
//! HTML5 tokenizer `ammonia` is built on (no DOM is built; `<script>` and
//! `<style>` are skipped as browsers skip them).

use std::cell::RefCell;
use std::collections::HashSet;

use common::api::{FeedUrl, UserId};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use url::Url;

use super::fetch::Validators;
use super::{Document, FeedDocument, FeedError, Feeds, parse::Format};

/// Feed links read from one page at most: a page listing hundreds is not
/// offering a choice a person can make.
pub const MAX_LINKS: usize = 10;

/// Links checked for one page at most: each is a fetch, perhaps on
/// another host.
pub const MAX_CANDIDATES: usize = 4;

/// Paths tried at a site's root when its page links to no feed.
pub const COMMON_PATHS: [&str; 7] = [
    "/feed",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feed.json",
    "/feed.xml",
    "/rss",
];

/// A feed a page links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Absolute `http(s)`.
    pub url: Url,
    /// The link's `title`, if any.
    pub title: Option<String>,
}

/// The feed links of `html`, a page fetched from `page`, in page order,
/// without duplicates, at most [`MAX_LINKS`].
pub fn feed_links(html: &str, page: &Url) -> Vec<Link> {
    let sink = LinkSink::default();
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let found = tokenizer.sink.found.into_inner();
    let base = found
        .base
        .and_then(|href| page.join(&href).ok())
        .unwrap_or_else(|| page.clone());
    let mut seen = HashSet::new();
    found
        .links
        .into_iter()
        .filter_map(|(href, title)| {
            let url = base.join(href.trim()).ok()?;
            matches!(url.scheme(), "http" | "https").then_some(Link { url, title })
        })
        .filter(|link| seen.insert(link.url.clone()))
        .take(MAX_LINKS)
        .collect()
}

/// Whether a `<link>` with these `rel` and `type` points to a feed.
fn is_feed_link(rel: &str, media_type: &str) -> bool {
    let alternate = rel
        .split_ascii_whitespace()
        .any(|r| r.eq_ignore_ascii_case("alternate") || r.eq_ignore_ascii_case("feed"));
    let media_type = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    alternate
        && matches!(
            media_type.as_str(),
            "application/rss+xml"
                | "application/atom+xml"
                | "application/rdf+xml"
                | "application/feed+json"
                | "application/json"
                | "text/xml"
                | "application/xml"
        )
}

#[derive(Debug, Default)]
struct Found {
    base: Option<String>,
    links: Vec<(String, Option<String>)>,
}

#[derive(Debug, Default)]
struct LinkSink {
    found: RefCell<Found>,
}

impl TokenSink for LinkSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        if tag.kind != TagKind::StartTag {
            return TokenSinkResult::Continue;
        }
        let attr = |name: &str| {
            tag.attrs
                .iter()
                .find(|a| {
                    let local: &str = &a.name.local;
                    local.eq_ignore_ascii_case(name)
                })
                .map(|a| a.value.to_string())
        };
        match tag.name.as_ref() {
            // Text in these is not markup: skip it, as a browser does.
            "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "noscript" | "iframe" | "xmp" | "noembed" | "noframes" => {
                return TokenSinkResult::RawData(RawKind::Rawtext);
            }
            "textarea" | "title" => return TokenSinkResult::RawData(RawKind::Rcdata),
            "base" => {
                let mut found = self.found.borrow_mut();
                if found.base.is_none() {
                    found.base = attr("href");
                }
            }
            "link" | "a" => {
                let rel = attr("rel").unwrap_or_default();
                let media_type = attr("type").unwrap_or_default();
                if let Some(href) = attr("href").filter(|_| is_feed_link(&rel, &media_type)) {
                    let title = attr("title")
                        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                        .filter(|t| !t.is_empty());
                    let mut found = self.found.borrow_mut();
                    if found.links.len() < MAX_LINKS * 4 {
                        found.links.push((href, title));
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// A feed found, read and ready to store.
#[derive(Debug)]
pub struct FoundFeed {
    /// Its URL.
    pub url: FeedUrl,
    /// The link's title, else the feed's own.
    pub title: Option<String>,
    /// Its format.
    pub format: Format,
    /// The document, as read while checking it.
    pub document: Box<FeedDocument>,
}

/// What a URL turned out to be.
#[derive(Debug)]
pub enum Discovery {
    /// A feed itself.
    Feed(Box<FeedDocument>),
    /// An HTML page, and the feeds found for it (perhaps none).
    Page(Vec<FoundFeed>),
}

/// Reads `url`; if it is a page, finds and checks its feeds (see the module
/// docs). A failure to read `url` itself is the error.
pub async fn discover(
    feeds: &Feeds,
    url: &Url,
    user: Option<&UserId>,
) -> Result<Discovery, FeedError> {
    let page = match feeds.read(url, &Validators::default(), user).await {
        Document::Feed(document) => return Ok(Discovery::Feed(document)),
        Document::Page(page) => page,
        Document::Failed(error) => return Err(error),
        Document::NotModified(_) => {
            return Err(FeedError::Fetch(
                super::fetch::FetchError::UnexpectedNotModified,
            ));
        }
    };
    let links = feed_links(&page.html, &page.url);
    let candidates: Vec<Link> = if links.is_empty() {
        COMMON_PATHS
            .iter()
            .filter_map(|path| page.url.join(path).ok())
            .map(|url| Link { url, title: None })
            .collect()
    } else {
        links.into_iter().take(MAX_CANDIDATES).collect()
    };
    let checks = candidates.into_iter().map(|link| async move {
        let url = FeedUrl::parse(link.url.as_str()).ok()?;
        match feeds.read(url.url(), &Validators::default(), user).await {
            Document::Feed(document) => Some(FoundFeed {
                title: link.title.or_else(|| document.parsed.title.clone()),
                format: document.parsed.format,
                url,
                document,
            }),
            _ => None,
        }
    });
    let found = futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    Ok(Discovery::Page(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://blog.example/posts/hello.html").unwrap()
    }

    fn urls(links: &[Link]) -> Vec<&str> {
        links.iter().map(|l| l.url.as_str()).collect()
    }

    #[test]
    fn alternate_links_of_feed_types_are_found_and_resolved() {
        let html = r#"<!doctype html><html><head>
            <link rel="stylesheet" href="/style.css">
            <link rel="alternate" type="application/rss+xml" title="  All   posts " href="/feed.xml">
            <LINK REL="Alternate" TYPE="application/atom+xml" HREF="atom.xml">
            <link rel="alternate" type="application/feed+json" href="https://blog.example/feed.json">
            <link rel="alternate" hreflang="fr" href="/fr/">
            <link rel="alternate" type="application/rss+xml" href="/feed.xml">
            </head><body><a rel="alternate" type="application/rss+xml" href="/comments.xml">c</a></body></html>"#;
        let links = feed_links(html, &page());
        assert_eq!(
            urls(&links),
            [
                "https://blog.example/feed.xml",
                "https://blog.example/posts/atom.xml",
                "https://blog.example/feed.json",
                "https://blog.example/comments.xml"
            ]
        );
        assert_eq!(links[0].title.as_deref(), Some("All posts"));
        assert_eq!(links[1].title, None);
    }

    #[test]
    fn base_href_applies_and_scripts_are_not_markup() {
        let html = r#"<head><base href="https://cdn.example/site/">
            <script>document.write('<link rel="alternate" type="application/rss+xml" href="/evil.xml">')</script>
            <style>/* <link rel="alternate" type="application/rss+xml" href="/css.xml"> */</style>
            <link rel="alternate" type="application/rss+xml" href="rss">"#;
        assert_eq!(
            urls(&feed_links(html, &page())),
            ["https://cdn.example/site/rss"]
        );
    }

    #[test]
    fn only_http_links_and_at_most_ten_are_offered() {
        let mut html = String::from(
            r#"<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
               <link rel="alternate" type="application/rss+xml" href="ftp://x.example/feed">"#,
        );
        for i in 0..50 {
            html.push_str(&format!(
                r#"<link rel="alternate" type="application/rss+xml" href="/f{i}.xml">"#
            ));
        }
        let links = feed_links(&html, &page());
        assert_eq!(links.len(), MAX_LINKS);
        assert_eq!(links[0].url.as_str(), "https://blog.example/f0.xml");
    }

    #[test]
    fn a_page_without_feed_links_has_none() {
        assert!(feed_links("<html><body><p>Hello</p></body></html>", &page()).is_empty());
        assert!(feed_links("not html at all < > &", &page()).is_empty());
    }
}
