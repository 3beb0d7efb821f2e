//! Fetching a feed over HTTP, politely and defensively.
//!
//! - one shared `reqwest::Client` (connection pooling, rustls);
//! - a connect timeout and a total timeout that also covers the body, so a
//!   server that trickles bytes forever is cut off;
//! - a body cap enforced while streaming: we never hold more than the cap,
//!   even if `Content-Length` lies or a gzip bomb inflates (the cap counts
//!   decompressed bytes);
//! - at most 5 redirects, each target checked by the SSRF [`Guard`];
//! - gzip, deflate and brotli; a User-Agent that says who we are;
//! - conditional GET: the ETag and Last-Modified of the last good response
//!   are sent back, and a 304 means "use your copy";
//! - the publisher's wishes about the next visit (`Cache-Control: max-age`,
//!   `Expires`, `Retry-After`) are read into [`CacheHints`] for the
//!   scheduler.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::limits::{ReadCappedError, read_capped};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, redirect};
use tracing::Instrument as _;
use tracing::field::Empty;
use url::Url;

use super::guard::{Blocked, Guard, GuardedResolver, Unresolvable};

/// Identifies us to publishers, as feed readers conventionally do.
pub const USER_AGENT: &str = concat!(
    "rss-recipes/",
    env!("CARGO_PKG_VERSION"),
    " (feed reader; NetflixOSS RSS recipe in Rust)"
);

/// Limits on one fetch. Defaults suit a reader on the public internet.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Time to connect to a publisher.
    pub connect_timeout: Duration,
    /// From connecting to the last body byte.
    pub timeout: Duration,
    /// Largest document read, decompressed.
    pub max_bytes: u64,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_bytes: 5 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// The validators of the last good response, sent back on the next fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` the publisher sent.
    pub etag: Option<String>,
    /// The `Last-Modified` the publisher sent.
    pub last_modified: Option<String>,
}

impl Validators {
    fn from_headers(headers: &HeaderMap) -> Self {
        let get = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            etag: get(header::ETAG),
            last_modified: get(header::LAST_MODIFIED),
        }
    }

    /// Whether there is nothing to send (the fetch is unconditional).
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// What the publisher said about when to come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHints {
    /// `Cache-Control: s-maxage`, else `max-age` (none with `no-cache` or
    /// `no-store`).
    pub max_age: Option<Duration>,
    /// `Expires`, if it is a date in the future.
    pub expires: Option<DateTime<Utc>>,
    /// `Retry-After`, as seconds or a date, from `now`.
    pub retry_after: Option<Duration>,
}

impl CacheHints {
    /// Reads the hints from response headers received at `now`.
    pub fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let http_date = |raw: &str| {
            DateTime::parse_from_rfc2822(raw.trim())
                .ok()
                .map(|d| d.with_timezone(&Utc))
        };
        let max_age = text(header::CACHE_CONTROL).and_then(|value| {
            let directives: Vec<(String, Option<&str>)> = value
                .split(',')
                .map(|d| match d.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        Some(v.trim().trim_matches('"')),
                    ),
                    None => (d.trim().to_ascii_lowercase(), None),
                })
                .collect();
            if directives
                .iter()
                .any(|(k, _)| k == "no-cache" || k == "no-store")
            {
                return None;
            }
            let seconds = |name: &str| {
                directives
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.as_ref()?.parse::<u64>().ok())
            };
            seconds("s-maxage")
                .or_else(|| seconds("max-age"))
                .map(Duration::from_secs)
        });
        let expires = text(header::EXPIRES)
            .and_then(http_date)
            .filter(|at| *at > now);
        let retry_after =
            text(header::RETRY_AFTER).and_then(|raw| match raw.trim().parse::<u64>() {
                Ok(seconds) => Some(Duration::from_secs(seconds)),
                Err(_) => http_date(raw).and_then(|at| (at - now).to_std().ok()),
            });
        Self {
            max_age,
            expires,
            retry_after,
        }
    }
}

/// What the publisher answered.
#[derive(Debug)]
pub enum Fetched {
    /// A new document.
    Body {
        /// The document, at most `max_bytes`.
        bytes: Bytes,
        /// The Content-Type, if any.
        content_type: Option<String>,
        /// Its validators, for the next fetch.
        validators: Validators,
        /// When to come back.
        hints: CacheHints,
        /// The URL the document came from, after redirects.
        final_url: Url,
    },
    /// 304: our copy is still current.
    NotModified {
        /// When to come back.
        hints: CacheHints,
    },
}

/// Why a fetch failed. The message is shown on the feed, to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No complete answer in time.
    #[error("timed out after {}", human_duration(*.0))]
    Timeout(Duration),
    /// An error status from the publisher, and how long it asked us to
    /// wait (`Retry-After`, with a 429 or 503).
    #[error("HTTP {}{}", status_text(*.code), retry_text(*.retry_after))]
    Status {
        /// The status code.
        code: u16,
        /// `Retry-After`, if it was sent.
        retry_after: Option<Duration>,
    },
    /// A document larger than the cap.
    #[error("larger than {}", human_bytes(*.0))]
    TooLarge(u64),
    /// The address is one the guard refuses.
    #[error("refused: {0}")]
    Blocked(Blocked),
    /// The host name does not resolve.
    #[error("could not resolve host {0}")]
    Dns(String),
    /// The connection failed. Why (refused, no route, reset) is logged,
    /// not shown: the difference tells a user which hosts and ports exist
    /// inside our network.
    #[error("could not connect to {host}")]
    Connect {
        /// The host called.
        host: String,
    },
    /// Too many redirects.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// A redirect to something that is not an http(s) URL.
    #[error("redirected to {0}, which is not an http(s) URL")]
    BadRedirect(String),
    /// The body broke off or could not be decompressed.
    #[error("the response was cut off or could not be decompressed")]
    Body,
    /// A 304 to a request that had no validators.
    #[error("the publisher answered 304 Not Modified to a request that was not conditional")]
    UnexpectedNotModified,
    /// Anything else, with the client's words.
    #[error("could not fetch: {0}")]
    Other(String),
}

impl FetchError {
    /// A short, stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Status { .. } => "http_status",
            Self::TooLarge(_) => "too_large",
            Self::Blocked(_) => "blocked",
            Self::Dns(_) => "dns",
            Self::Connect { .. } => "connect",
            Self::TooManyRedirects(_) | Self::BadRedirect(_) => "redirect",
            Self::Body => "body",
            Self::UnexpectedNotModified => "unexpected_304",
            Self::Other(_) => "other",
        }
    }
}

/// The redirect policy's refusal, carried through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct TooManyRedirects;

/// Fetches feed documents. Cheap to clone (the client is reference counted).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Guard,
    settings: FetchSettings,
}

impl Fetcher {
    /// A fetcher with `settings`, refusing what `guard` refuses.
    pub fn new(settings: FetchSettings, guard: Guard) -> Result<Self, reqwest::Error> {
        let policy_guard = guard.clone();
        let max_redirects = settings.max_redirects;
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(TooManyRedirects);
            }
            match policy_guard.check_literal(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(blocked) => attempt.error(blocked),
            }
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, \
                 application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5",
            ),
        );
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(policy)
            // Nothing about where a link was found goes to its publisher.
            .referer(false)
            .dns_resolver(Arc::new(GuardedResolver::new(guard.clone())))
            // A proxy from the environment would resolve names itself and
            // bypass the guard's resolver.
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            guard,
            settings,
        })
    }

    /// The guard it checks addresses with.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Fetches `url`, conditionally when `validators` are given. With
    /// tracing on, in a `feed fetch` span: the status, the bytes read, and
    /// whether it was a 304.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        let span = common::telemetry::span(|| {
            tracing::info_span!(
                "feed fetch",
                otel.kind = "client",
                otel.status_code = Empty,
                url.full = %url,
                server.address = url.host_str().unwrap_or_default(),
                conditional = !validators.is_empty(),
                http.response.status_code = Empty,
                not_modified = Empty,
                bytes = Empty,
                error.message = Empty,
            )
        });
        let result = self
            .fetch_unobserved(url, validators)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(Fetched::NotModified { .. }) => {
                span.record("not_modified", true);
            }
            Ok(Fetched::Body { bytes, .. }) => {
                span.record("not_modified", false);
                span.record("bytes", bytes.len());
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.message", tracing::field::display(e));
            }
        }
        result
    }

    async fn fetch_unobserved(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        self.guard.check_literal(url).map_err(FetchError::Blocked)?;
        let mut request = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(date) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, date);
        }
        let response = request.send().await.map_err(|e| self.classify(url, &e))?;

        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let hints = CacheHints::from_headers(response.headers(), Utc::now());
        if status == StatusCode::NOT_MODIFIED {
            // "Use your copy" means nothing when we did not say we had one.
            return if validators.is_empty() {
                Err(FetchError::UnexpectedNotModified)
            } else {
                Ok(Fetched::NotModified { hints })
            };
        }
        if status.is_redirection() {
            // reqwest hands back, unfollowed, redirects to non-http(s) URLs.
            let target = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("an unusable location");
            return Err(FetchError::BadRedirect(target.chars().take(200).collect()));
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                code: status.as_u16(),
                retry_after: hints.retry_after,
            });
        }
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let validators = Validators::from_headers(response.headers());
        let max = self.settings.max_bytes;
        let bytes = read_capped(response, max).await.map_err(|e| match e {
            ReadCappedError::TooLarge => FetchError::TooLarge(max),
            ReadCappedError::Transport(e) => self.classify(url, &e),
        })?;
        Ok(Fetched::Body {
            bytes,
            content_type,
            validators,
            hints,
            final_url,
        })
    }

    /// Turns reqwest's error into the reason a person is shown.
    fn classify(&self, url: &Url, err: &reqwest::Error) -> FetchError {
        // Our own errors (guard, resolver, redirect policy) travel as sources.
        let mut source: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(blocked) = e.downcast_ref::<Blocked>() {
                return FetchError::Blocked(blocked.clone());
            }
            if let Some(dns) = e.downcast_ref::<Unresolvable>() {
                return FetchError::Dns(dns.host.clone());
            }
            if e.downcast_ref::<TooManyRedirects>().is_some() {
                return FetchError::TooManyRedirects(self.settings.max_redirects);
            }
            source = e.source();
        }
        if err.is_timeout() {
            let limit = if err.is_connect() {
                self.settings.connect_timeout
            } else {
                self.settings.timeout
            };
            return FetchError::Timeout(limit);
        }
        if err.is_connect() {
            let host = url.host_str().unwrap_or_default().to_owned();
            tracing::debug!(%host, reason = %root_cause(err), "feed fetch could not connect");
            return FetchError::Connect { host };
        }
        if err.is_body() || err.is_decode() {
            return FetchError::Body;
        }
        FetchError::Other(root_cause(err))
    }
}

/// The innermost error message (see [`common::root_cause`]), in lower case
/// and without the OS error number, to read well inside a sentence.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let text = common::root_cause(err);
    text.strip_suffix(" (os error 111)")
        .unwrap_or(&text)
        .to_lowercase()
}

/// The media type of a Content-Type, lower case, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The `charset` parameter of a Content-Type.
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn status_text(code: u16) -> String {
    match StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{code} ({reason})"),
        None => code.to_string(),
    }
}

fn retry_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("; the publisher asked us to wait {}", human_duration(wait)),
        None => String::new(),
    }
}

/// "10 s", "1.5 s", "500 ms", "2 min", "1 h": how a person reads a wait.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        return format!("{} h", secs / 3600);
    }
    if secs >= 120 && secs.is_multiple_of(60) {
        return format!("{} min", secs / 60);
    }
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// "5 MiB", "512 KiB", "100 bytes".
pub fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_sentences() {
        assert_eq!(
            FetchError::Timeout(Duration::from_secs(10)).to_string(),
            "timed out after 10 s"
        );
        assert_eq!(
            FetchError::Status {
                code: 404,
                retry_after: None
            }
            .to_string(),
            "HTTP 404 (Not Found)"
        );
        assert_eq!(
            FetchError::Status {
                code: 429,
                retry_after: Some(Duration::from_secs(3600))
            }
            .to_string(),
            "HTTP 429 (Too Many Requests); the publisher asked us to wait 1 h"
        );
        assert_eq!(
            FetchError::TooLarge(5 << 20).to_string(),
            "larger than 5 MiB"
        );
        assert_eq!(
            FetchError::Timeout(Duration::from_millis(250)).to_string(),
            "timed out after 250 ms"
        );
        assert_eq!(human_bytes(1536), "1 KiB");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn cache_hints_are_read_from_headers() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            CacheHints::from_headers(&map, now)
        };
        assert_eq!(headers(&[]), CacheHints::default());
        assert_eq!(
            headers(&[("cache-control", "public, max-age=600")]).max_age,
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            headers(&[("cache-control", "max-age=60, s-maxage=900")]).max_age,
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            headers(&[("cache-control", "no-cache, max-age=600")]).max_age,
            None
        );
        assert_eq!(
            headers(&[("expires", "Tue, 01 Dec 2026 12:00:00 GMT")]).expires,
            Some(now + chrono::Duration::hours(2))
        );
        assert_eq!(
            headers(&[("expires", "Tue, 01 Dec 2026 08:00:00 GMT")]).expires,
            None,
            "a date in the past is no hint"
        );
        assert_eq!(headers(&[("expires", "0")]).expires, None);
        assert_eq!(
            headers(&[("retry-after", "3600")]).retry_after,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            headers(&[("retry-after", "Tue, 01 Dec 2026 10:30:00 GMT")]).retry_after,
            Some(Duration::from_secs(1800))
        );
        assert_eq!(headers(&[("retry-after", "soon")]).retry_after, None);
    }

    #[test]
    fn charset_is_read_from_content_type() {
        assert_eq!(
            charset_of("text/xml; charset=ISO-8859-1").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(
            charset_of("application/rss+xml;Charset=\"utf-8\"").as_deref(),
            Some("utf-8")
        );
        assert_eq!(charset_of("application/atom+xml"), None);
    }
}
