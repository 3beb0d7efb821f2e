//! A real HTTP server on 127.0.0.1 that plays feed publishers, good and bad.
//!
//! | path | behaviour |
//! |---|---|
//! | `/fixtures/{name}` | a file from `tests/fixtures/` |
//! | `/quirks/{name}` | a file from `tests/fixtures/quirks/`, served as `application/octet-stream` (the parser must tell the format from the document) |
//! | `/etag/{name}` | the same, with ETag/Last-Modified; 304 when they match |
//! | `/slow/{ms}/{name}` | waits `ms` milliseconds, then the fixture |
//! | `/trickle` | starts a feed, then sends one byte every 100 ms, forever |
//! | `/big/{bytes}` | a valid RSS document of about `bytes` bytes, streamed without Content-Length |
//! | `/big-declared/{bytes}` | the same with an honest Content-Length |
//! | `/gzip-bomb` | 16 MiB of zeros, gzip-compressed to about 16 KiB |
//! | `/status/{code}` | an empty response with that status |
//! | `/redirect/{n}/{name}` | a chain of `n` redirects ending at the fixture |
//! | `/redirect-loop` | redirects to itself |
//! | `/redirect-to?url=...` | one redirect to any URL |
//! | `/generated/{n}` | an RSS feed of `n` realistic items (HTML descriptions, dates) |
//! | `/articles/{n}` | an RSS feed of `n` long articles (a summary, and ~6 KB of `content:encoded`) |
//! | `/many/{n}` | an RSS feed of `n` short items (10,000 fit under 5 MiB) |
//! | `/xxe-network.xml` | an entity that would fetch `/secret` from this server |
//! | `/quadratic.xml` | one 64 KiB entity referenced 10,000 times (quadratic blowup) |
//! | `/deep.xml` | 100,000 nested elements |
//! | `/invalid-utf8.xml` | a UTF-8 feed with invalid bytes in its title |
//! | `/secret` | counts whether anyone fetched it (nobody should) |
//! | `/mutable` | a feed whose items the test sets with [`FeedServer::set_mutable`], or an error status it sets with [`FeedServer::set_mutable_failure`] |
//!
//! Every request is counted by path, and 304s are counted apart, so tests
//! can tell whether the middletier asked the publisher at all.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use bytes::Bytes;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const ETAG_LAST_MODIFIED: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

#[derive(Default)]
struct Counters {
    hits: HashMap<String, usize>,
    not_modified: HashMap<String, usize>,
    last_headers: HashMap<String, HeaderMap>,
}

#[derive(Clone, Default)]
struct Shared {
    counters: Arc<Mutex<Counters>>,
    mutable: Arc<Mutex<Vec<String>>>,
    /// While set, `/mutable` answers with it.
    mutable_failure: Arc<Mutex<Option<Failure>>>,
}

/// An error answer: a status and, perhaps, `Retry-After`.
#[derive(Clone)]
struct Failure {
    status: u16,
    retry_after: Option<String>,
}

/// The running server. It runs on a thread of its own (so it serves sync
/// and async tests alike) and stops when dropped.
pub(crate) struct FeedServer {
    pub addr: SocketAddr,
    shared: Shared,
    /// Dropping the sender ends the server thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FeedServer {
    pub(crate) fn start() -> Self {
        let shared = Shared::default();
        let app = router(shared.clone());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("feed server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind feed server");
                addr_tx
                    .send(listener.local_addr().expect("address"))
                    .expect("report address");
                // Not a graceful shutdown: a trickling body never ends.
                tokio::select! {
                    served = axum::serve(listener, app) => served.expect("feed server"),
                    _ = stop_rx => {}
                }
            });
            runtime.shutdown_background();
        });
        let addr = addr_rx.recv().expect("feed server started");
        Self {
            addr,
            shared,
            _stop: stop_tx,
        }
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests seen for `path` (any status).
    pub(crate) fn hits(&self, path: &str) -> usize {
        let counters = self.shared.counters.lock().unwrap();
        counters.hits.get(path).copied().unwrap_or(0)
    }

    /// 304 answers given for `path`.
    pub(crate) fn not_modified(&self, path: &str) -> usize {
        let counters = self.shared.counters.lock().unwrap();
        counters.not_modified.get(path).copied().unwrap_or(0)
    }

    /// A request header of the last request for `path`.
    pub(crate) fn last_header(&self, path: &str, name: &str) -> Option<String> {
        let counters = self.shared.counters.lock().unwrap();
        let value = counters.last_headers.get(path)?.get(name)?;
        Some(value.to_str().ok()?.to_owned())
    }

    /// Sets the item titles `/mutable` serves.
    pub(crate) fn set_mutable(&self, titles: &[&str]) {
        *self.shared.mutable.lock().unwrap() = titles.iter().map(|t| t.to_string()).collect();
    }

    /// Makes `/mutable` answer `status` (with `Retry-After: retry_after`).
    pub(crate) fn set_mutable_failure(&self, status: u16, retry_after: Option<&str>) {
        *self.shared.mutable_failure.lock().unwrap() = Some(Failure {
            status,
            retry_after: retry_after.map(str::to_owned),
        });
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/fixtures/{name}", get(fixture))
        .route("/quirks/{name}", get(quirk))
        .route("/etag/{name}", get(etag))
        .route("/slow/{ms}/{name}", get(slow))
        .route("/trickle", get(trickle))
        .route("/big/{bytes}", get(big))
        .route("/big-declared/{bytes}", get(big_declared))
        .route("/gzip-bomb", get(gzip_bomb))
        .route("/status/{code}", get(status))
        .route("/redirect/{n}/{name}", get(redirect_chain))
        .route(
            "/redirect-loop",
            get(|| async { Redirect::temporary("/redirect-loop") }),
        )
        .route("/redirect-to", get(redirect_to))
        .route("/generated/{n}", get(generated))
        .route(
            "/articles/{n}",
            get(|Path(n): Path<usize>| async move {
                (
                    [(header::CONTENT_TYPE, "application/rss+xml")],
                    generated_articles(n.min(10_000)),
                )
            }),
        )
        .route(
            "/many/{n}",
            get(|Path(n): Path<usize>| async move { rss(many(n.min(100_000))) }),
        )
        .route(
            "/xxe-network.xml",
            get(|| async { rss(XXE_NETWORK.to_owned()) }),
        )
        .route("/quadratic.xml", get(|| async { rss(quadratic()) }))
        .route("/deep.xml", get(|| async { rss(deep()) }))
        .route("/invalid-utf8.xml", get(|| async { rss(invalid_utf8()) }))
        .route("/secret", get(|| async { "root:x:0:0:secret" }))
        .route("/mutable", get(mutable))
        .route(
            "/links/{n}",
            get(|Path(n): Path<usize>| async move { links_page(n.min(100)) }),
        )
        .route(
            "/linked/{name}",
            get(|| async {
                let body = read_fixture("rss2.xml").unwrap_or_default();
                ([(header::CONTENT_TYPE, "application/rss+xml")], body)
            }),
        )
        .layer(axum::middleware::from_fn_with_state(shared.clone(), count))
        .with_state(shared)
}

async fn count(
    State(shared): State<Shared>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    {
        let mut counters = shared.counters.lock().unwrap();
        *counters.hits.entry(path.clone()).or_default() += 1;
        counters
            .last_headers
            .insert(path.clone(), req.headers().clone());
    }
    let response = next.run(req).await;
    if response.status() == StatusCode::NOT_MODIFIED {
        *shared
            .counters
            .lock()
            .unwrap()
            .not_modified
            .entry(path)
            .or_default() += 1;
    }
    response
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".png") {
        "image/png"
    } else if name.ends_with(".gif") {
        "image/gif"
    } else if name.ends_with(".mp3") {
        "audio/mpeg"
    } else if name.ends_with(".html") {
        "text/html; charset=utf-8"
    } else if name.ends_with(".rdf") {
        "application/rdf+xml"
    } else if name.starts_with("atom") {
        "application/atom+xml"
    } else {
        // No charset: documents declare their own (latin1.xml does).
        "application/rss+xml"
    }
}

fn read_fixture(name: &str) -> Option<Vec<u8>> {
    read_from(FIXTURES, name)
}

/// A file of `dir` by its bare name (no path, so no traversal).
fn read_from(dir: &str, name: &str) -> Option<Vec<u8>> {
    if name.contains('/') || name.contains("..") {
        return None;
    }
    std::fs::read(format!("{dir}/{name}")).ok()
}

async fn fixture(Path(name): Path<String>) -> Response {
    match read_fixture(&name) {
        Some(body) => ([(header::CONTENT_TYPE, content_type(&name))], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn quirk(Path(name): Path<String>) -> Response {
    match read_from(&format!("{FIXTURES}/quirks"), &name) {
        Some(body) => ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn etag(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(body) = read_fixture(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let tag = format!("\"{}-{}\"", name, body.len());
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let validators = [
        (header::ETAG, tag.clone()),
        (header::LAST_MODIFIED, ETAG_LAST_MODIFIED.to_owned()),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    (
        validators,
        [(header::CONTENT_TYPE, content_type(&name))],
        body,
    )
        .into_response()
}

async fn slow(Path((ms, name)): Path<(u64, String)>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    fixture(Path(name)).await
}

async fn trickle() -> Response {
    let head = Bytes::from_static(
        b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>drip</title>",
    );
    let stream = futures::stream::unfold(Some(head), |first| async move {
        match first {
            Some(head) => Some((Ok::<_, std::io::Error>(head), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok(Bytes::from_static(b" ")), None))
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/rss+xml")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A valid RSS document of about `bytes` bytes, in 16 KiB chunks.
fn big_stream(bytes: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let item = "<item><title>filler</title><description>".to_owned()
        + &"x".repeat(16 * 1024 - 64)
        + "</description></item>";
    let head = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>big</title>".to_owned();
    let tail = "</channel></rss>".to_owned();
    let items = bytes.saturating_sub(head.len() + tail.len()) / item.len();
    let chunks = std::iter::once(head)
        .chain(std::iter::repeat_n(item, items))
        .chain(std::iter::once(tail))
        .map(|chunk| Ok(Bytes::from(chunk)));
    futures::stream::iter(chunks)
}

async fn big(Path(bytes): Path<usize>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/rss+xml")],
        Body::from_stream(big_stream(bytes)),
    )
        .into_response()
}

async fn big_declared(Path(bytes): Path<usize>) -> Response {
    use futures::TryStreamExt;
    let body: Vec<Bytes> = big_stream(bytes).try_collect().await.unwrap();
    let body: Vec<u8> = body.concat();
    ([(header::CONTENT_TYPE, "application/rss+xml")], body).into_response()
}

async fn gzip_bomb() -> Response {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    let body = BOMB.get_or_init(|| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            encoder.write_all(&zeros).unwrap();
        }
        encoder.finish().unwrap()
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/rss+xml"),
            ),
            (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
        ],
        body.clone(),
    )
        .into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    StatusCode::from_u16(code)
        .unwrap_or(StatusCode::IM_A_TEAPOT)
        .into_response()
}

async fn redirect_chain(Path((n, name)): Path<(u32, String)>) -> Response {
    if n == 0 {
        fixture(Path(name)).await
    } else {
        Redirect::temporary(&format!("/redirect/{}/{name}", n - 1)).into_response()
    }
}

async fn redirect_to(Query(params): Query<HashMap<String, String>>) -> Response {
    match params.get("url") {
        Some(url) => Redirect::temporary(url).into_response(),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// An HTML page linking to `n` feeds, `/linked/0.xml` and on.
fn links_page(n: usize) -> Response {
    let links: String = (0..n)
        .map(|i| {
            format!(r#"<link rel="alternate" type="application/rss+xml" href="/linked/{i}.xml">"#)
        })
        .collect();
    let body = format!("<!doctype html><html><head>{links}</head><body>many feeds</body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn mutable(State(shared): State<Shared>) -> Response {
    if let Some(failure) = shared.mutable_failure.lock().unwrap().clone() {
        let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::IM_A_TEAPOT);
        return match failure.retry_after {
            Some(wait) => (status, [(header::RETRY_AFTER, wait)]).into_response(),
            None => status.into_response(),
        };
    }
    let titles = shared.mutable.lock().unwrap().clone();
    let items: String = titles
        .iter()
        .map(|t| format!("<item><title>{t}</title><link>https://mutable.example/{t}</link></item>"))
        .collect();
    let body = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Mutable</title>{items}</channel></rss>"
    );
    ([(header::CONTENT_TYPE, "application/rss+xml")], body).into_response()
}

/// An RSS document of `n` items that look like a blog's: a title, a link, a
/// date and a paragraph or two of HTML.
pub(crate) fn generated_rss(n: usize) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Generated</title><link>https://gen.example/</link><description>bench</description>",
    );
    for i in 0..n {
        body.push_str(&format!(
            "<item><title>Post number {i}: on caches &amp; breakers</title><link>https://gen.example/posts/{i}</link>\
             <pubDate>Mon, 01 Jan 2024 {:02}:{:02}:00 GMT</pubDate><guid>https://gen.example/posts/{i}</guid>\
             <description><![CDATA[<p>Paragraph {i} about <b>circuit breakers</b>, <a href=\"/tags/resilience\">resilience</a> and \
             <em>discovery</em>. A breaker that is open rejects calls until its sleep window ends; then one trial \
             request decides whether it closes.</p><p><img src=\"/img/{i}.png\" alt=\"figure {i}\"> Second paragraph \
             with a <code>code sample</code> and a list:</p><ul><li>one</li><li>two</li></ul>]]></description></item>",
            i % 24,
            i % 60
        ));
    }
    body.push_str("</channel></rss>");
    body
}

/// An RSS document of `n` items as a long-form blog writes them: a short
/// summary, and the whole article (about 6 KB of HTML, with images) in
/// `content:encoded`.
pub(crate) fn generated_articles(n: usize) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>Articles</title><link>https://gen.example/</link>",
    );
    let paragraph = "<p>A breaker that is open rejects calls until its sleep window ends; then one \
        trial request decides whether it closes. Discovery keeps a local copy of the registry, so \
        a lost registry costs nothing until an instance changes. <a href=\"/tags/resilience\">More \
        on resilience</a>, <em>retries</em> and <code>bulkheads</code>.</p>";
    for i in 0..n {
        let article: String = (0..12)
            .map(|p| {
                if p % 4 == 3 {
                    format!("<p><img src=\"/img/{i}-{p}.png\" alt=\"figure {p}\"></p>{paragraph}")
                } else {
                    paragraph.to_owned()
                }
            })
            .collect();
        body.push_str(&format!(
            "<item><title>Article {i}</title><link>https://gen.example/articles/{i}</link>\
             <pubDate>Mon, 01 Jan 2024 {:02}:{:02}:00 GMT</pubDate><guid>https://gen.example/articles/{i}</guid>\
             <author>writer@gen.example (A. Writer)</author><category>resilience</category>\
             <description>Article {i}, in short: breakers, discovery and retries.</description>\
             <content:encoded><![CDATA[{article}]]></content:encoded></item>",
            i % 24,
            i % 60
        ));
    }
    body.push_str("</channel></rss>");
    body
}

async fn generated(Path(n): Path<usize>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/rss+xml")],
        generated_rss(n.min(100_000)),
    )
        .into_response()
}

/// The Atom twin of [`generated_rss`].
pub(crate) fn generated_atom(n: usize) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Generated</title>\
         <id>urn:gen</id><updated>2024-01-01T00:00:00Z</updated><link href=\"https://gen.example/\"/>",
    );
    for i in 0..n {
        body.push_str(&format!(
            "<entry><title>Entry number {i}: on caches &amp; breakers</title><id>urn:gen:{i}</id>\
             <link rel=\"alternate\" href=\"https://gen.example/entries/{i}\"/><published>2024-01-01T{:02}:{:02}:00Z</published>\
             <updated>2024-01-02T00:00:00Z</updated><summary type=\"html\">&lt;p&gt;Paragraph {i} about &lt;b&gt;circuit \
             breakers&lt;/b&gt;, &lt;a href=\"/tags/resilience\"&gt;resilience&lt;/a&gt; and &lt;em&gt;discovery&lt;/em&gt;. \
             A breaker that is open rejects calls until its sleep window ends; then one trial request decides whether \
             it closes.&lt;/p&gt;&lt;p&gt;&lt;img src=\"/img/{i}.png\" alt=\"figure {i}\"&gt; Second paragraph with a \
             &lt;code&gt;code sample&lt;/code&gt;.&lt;/p&gt;</summary></entry>",
            i % 24,
            i % 60
        ));
    }
    body.push_str("</feed>");
    body
}

fn rss(body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, "application/rss+xml")], body.into()).into_response()
}

const XXE_NETWORK: &str = r#"<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY net SYSTEM "/secret">]>
<rss version="2.0"><channel><title>net &net;</title><item><title>&net;</title></item></channel></rss>"#;

fn quadratic() -> String {
    let big = "a".repeat(64 * 1024);
    let refs = "&big;".repeat(10_000);
    format!(
        "<?xml version=\"1.0\"?><!DOCTYPE rss [<!ENTITY big \"{big}\">]><rss version=\"2.0\"><channel><title>q</title><item><title>{refs}</title></item></channel></rss>"
    )
}

fn deep() -> String {
    let depth = 100_000;
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>deep</title><item><title>t</title>{}{}</item></channel></rss>",
        "<x:a xmlns:x=\"urn:x\">".repeat(depth),
        "</x:a>".repeat(depth)
    )
}

fn invalid_utf8() -> Vec<u8> {
    let mut body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>broken \xff\xfe bytes</title><item><title>item \xc3\x28</title></item></channel></rss>".to_vec();
    body.push(b'\n');
    body
}

fn many(n: usize) -> String {
    let items: String = (0..n)
        .map(|i| {
            format!("<item><title>item {i}</title><link>https://many.example/{i}</link></item>")
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>many</title>{items}</channel></rss>"
    )
}
