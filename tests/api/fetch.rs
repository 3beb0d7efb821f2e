//! The fetcher against a real local HTTP server, in-process, so the SSRF
//! guard can be tested strictly: these tests allow exactly 127.0.0.1 (where
//! the feed server listens) and nothing else private, which the binary's
//! all-or-nothing `--allow-private-feeds` cannot express.

use std::time::Duration;

use crate::support::feed_server::FeedServer;
use middletier::feeds::fetch::{FetchError, FetchSettings, Fetched, Fetcher, Validators};
use middletier::feeds::guard::{AddressKind, Guard};
use url::Url;

fn fetcher(settings: FetchSettings) -> Fetcher {
    let guard = Guard::new(false).with_exceptions(["127.0.0.1/32".parse().unwrap()]);
    Fetcher::new(settings, guard).unwrap()
}

fn fast() -> FetchSettings {
    FetchSettings {
        timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(800),
        max_bytes: 256 * 1024,
        ..FetchSettings::default()
    }
}

async fn fetch(server: &FeedServer, path: &str) -> Result<Fetched, FetchError> {
    let url = Url::parse(&server.url(path)).unwrap();
    fetcher(fast()).fetch(&url, &Validators::default()).await
}

fn blocked_kind(result: Result<Fetched, FetchError>) -> AddressKind {
    match result {
        Err(FetchError::Blocked(blocked)) => blocked.kind,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_to_the_metadata_service_is_refused() {
    let server = FeedServer::start();
    let result = fetch(
        &server,
        "/redirect-to?url=http://169.254.169.254/latest/meta-data/",
    )
    .await;
    assert_eq!(blocked_kind(result), AddressKind::LinkLocal);
}

#[tokio::test]
async fn a_redirect_to_another_loopback_or_private_address_is_refused() {
    let server = FeedServer::start();
    let port = server.addr.port();
    let loopback = fetch(
        &server,
        &format!("/redirect-to?url=http://127.0.0.2:{port}/fixtures/rss2.xml"),
    )
    .await;
    assert_eq!(blocked_kind(loopback), AddressKind::Loopback);
    let private = fetch(&server, "/redirect-to?url=http://10.1.2.3/feed").await;
    assert_eq!(blocked_kind(private), AddressKind::Private);
    let v6 = fetch(&server, "/redirect-to?url=http://[::1]/feed").await;
    assert_eq!(blocked_kind(v6), AddressKind::Loopback);
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_refused_at_fetch_time() {
    let server = FeedServer::start();
    // No exceptions at all: `localhost` must not be reachable through DNS.
    let strict = Fetcher::new(fast(), Guard::new(false)).unwrap();
    let url = Url::parse(&format!(
        "http://localhost:{}/fixtures/rss2.xml",
        server.addr.port()
    ))
    .unwrap();
    let result = strict.fetch(&url, &Validators::default()).await;
    assert_eq!(blocked_kind(result), AddressKind::Loopback);
    assert_eq!(server.hits("/fixtures/rss2.xml"), 0);
}

#[tokio::test]
async fn a_redirect_to_a_non_http_scheme_is_refused() {
    let server = FeedServer::start();
    let result = fetch(&server, "/redirect-to?url=file:///etc/passwd").await;
    assert!(
        matches!(result, Err(FetchError::BadRedirect(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn redirect_loops_stop_at_the_limit() {
    let server = FeedServer::start();
    let result = fetch(&server, "/redirect-loop").await;
    assert_eq!(result.unwrap_err(), FetchError::TooManyRedirects(5));
    assert_eq!(
        server.hits("/redirect-loop"),
        6,
        "the first request and five redirects"
    );
}

#[tokio::test]
async fn a_never_ending_body_is_cut_off_by_the_total_timeout() {
    let server = FeedServer::start();
    let result = fetch(&server, "/trickle").await;
    assert_eq!(
        result.unwrap_err(),
        FetchError::Timeout(Duration::from_millis(800))
    );
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_whether_declared_streamed_or_compressed() {
    let server = FeedServer::start();
    for path in ["/big/1048576", "/big-declared/1048576", "/gzip-bomb"] {
        let result = fetch(&server, path).await;
        assert_eq!(
            result.unwrap_err(),
            FetchError::TooLarge(256 * 1024),
            "{path}"
        );
    }
    assert!(matches!(
        fetch(&server, "/big/200000").await,
        Ok(Fetched::Body { .. })
    ));
}

#[tokio::test]
async fn validators_make_the_request_conditional() {
    let server = FeedServer::start();
    let url = Url::parse(&server.url("/etag/atom.xml")).unwrap();
    let fetcher = fetcher(fast());
    let Ok(Fetched::Body { validators, .. }) = fetcher.fetch(&url, &Validators::default()).await
    else {
        panic!("first fetch returns the document");
    };
    assert!(validators.etag.is_some() && validators.last_modified.is_some());
    let second = fetcher.fetch(&url, &validators).await.unwrap();
    assert!(matches!(second, Fetched::NotModified { .. }));
    assert_eq!(server.not_modified("/etag/atom.xml"), 1);
}

#[tokio::test]
async fn requests_say_who_we_are_and_what_we_accept() {
    let server = FeedServer::start();
    assert!(matches!(
        fetch(&server, "/fixtures/rss2.xml").await,
        Ok(Fetched::Body { .. })
    ));
    let agent = server
        .last_header("/fixtures/rss2.xml", "user-agent")
        .unwrap();
    assert!(agent.starts_with("rss-recipes/"), "{agent}");
    let encodings = server
        .last_header("/fixtures/rss2.xml", "accept-encoding")
        .unwrap();
    for encoding in ["gzip", "deflate", "br"] {
        assert!(encodings.contains(encoding), "{encodings}");
    }
    let accept = server.last_header("/fixtures/rss2.xml", "accept").unwrap();
    assert!(accept.contains("application/rss+xml") && accept.contains("application/atom+xml"));
}
