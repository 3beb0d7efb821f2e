//! Hostile requests to the edge and the middletier: oversized bodies and
//! URLs, bad UTF-8, path traversal, wrong methods, floods. Each gets a
//! clear 4xx, nothing panics, and nothing changes.
//! (Forms without the right CSRF token are covered in `edge.rs`; slow
//! clients in `common::server::serve` and `tests/process/e2e.rs`.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestStack;
use crate::support::web::get_json;

async fn status_and_body(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// A 4xx whose body says something (JSON `error`, or a page).
fn assert_clear_4xx(what: &str, status: StatusCode, body: &str, expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    let said = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    assert!(
        said.len() > 10,
        "{what}: the answer says what is wrong: {body:?}"
    );
}

/// Sends `request` and checks it gets `expected` with a clear message.
async fn expect_clear_4xx(what: &str, request: reqwest::RequestBuilder, expected: StatusCode) {
    let (status, body) = status_and_body(request.send().await.unwrap()).await;
    assert_clear_4xx(what, status, &body, expected);
}

/// Sends raw bytes as a request, for what reqwest will not build (bad
/// UTF-8 in a path, a huge request line).
pub(crate) async fn raw(port: u16, request: &[u8]) -> (StatusCode, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The server may answer and close before it has read everything (a
    // body over the limit): that is fine, its answer is what we check.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::IM_A_TEAPOT);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn hostile_requests_get_clear_4xx_and_change_nothing() {
    let stack = TestStack::start(1, &[], &[]).await;
    let http = reqwest::Client::new();
    let edge = stack.edge.url("");
    let middletier = stack.middletiers[0].url("");
    let feed = stack.feeds.url("/fixtures/rss2.xml");
    assert_eq!(
        http.post(format!("{edge}/api/subscriptions"))
            .json(&json!({"url": feed}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let before: Value = get_json(format!("{edge}/api/subscriptions")).await;

    // Oversized bodies: declared, and streamed without a length.
    let huge = format!(r#"{{"url": "{}"}}"#, "a".repeat(1 << 20));
    expect_clear_4xx(
        "1 MiB API body",
        http.post(format!("{edge}/api/subscriptions"))
            .header("content-type", "application/json")
            .body(huge.clone()),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let mut chunked = b"POST /subscriptions HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..64 {
        chunked.extend_from_slice(b"4000\r\n");
        chunked.extend_from_slice(&[b'a'; 0x4000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, body) = raw(stack.edge.running.port, &chunked).await;
    assert_clear_4xx(
        "1 MiB streamed form",
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    expect_clear_4xx(
        "1 MiB middletier body",
        http.post(format!("{middletier}/middletier/rss/user/default?url=x"))
            .body(huge),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    // Oversized URLs.
    let long = "a".repeat(10 * 1024);
    expect_clear_4xx(
        "10 KiB URL at the edge",
        http.get(format!("{edge}/api/subscriptions?url={long}")),
        StatusCode::URI_TOO_LONG,
    )
    .await;
    expect_clear_4xx(
        "10 KiB URL at the middletier",
        http.get(format!("{middletier}/middletier/rss/user/{long}")),
        StatusCode::URI_TOO_LONG,
    )
    .await;
    let feed_too_long = format!("https://example.com/{}", "a".repeat(3000));
    expect_clear_4xx(
        "3 KB feed URL",
        http.post(format!("{edge}/api/subscriptions"))
            .json(&json!({"url": feed_too_long})),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Bad UTF-8, in a path, a query, a JSON body and a form.
    let (status, body) = raw(
        stack.middletiers[0].running.port,
        b"GET /middletier/rss/user/%FF%FE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_clear_4xx(
        "bad UTF-8 in the user id",
        status,
        &body,
        StatusCode::BAD_REQUEST,
    );
    expect_clear_4xx(
        "bad UTF-8 in a query",
        http.delete(format!("{edge}/api/subscriptions?url=%FF%FE")),
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_clear_4xx(
        "bad UTF-8 in JSON",
        http.post(format!("{edge}/api/subscriptions"))
            .header("content-type", "application/json")
            .body(b"{\"url\": \"\xff\xfe\"}".to_vec()),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let (status, body) = status_and_body(
        http.post(format!("{edge}/subscriptions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"url=%FF%FE&csrf=x".to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        status.is_client_error() && !body.is_empty(),
        "bad UTF-8 in a form: {status}"
    );

    // Path traversal.
    expect_clear_4xx(
        "encoded traversal in the user id",
        http.get(format!(
            "{middletier}/middletier/rss/user/..%2F..%2Fetc%2Fpasswd"
        )),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let (status, body) = raw(stack.middletiers[0].running.port, b"GET /middletier/rss/user/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_clear_4xx("raw traversal", status, &body, StatusCode::NOT_FOUND);
    for path in ["/assets/..%2F..%2FCargo.toml", "/assets/%2e%2e/src/lib.rs"] {
        let (status, body) =
            status_and_body(http.get(format!("{edge}{path}")).send().await.unwrap()).await;
        assert!(
            status == StatusCode::NOT_FOUND && !body.contains("[package]"),
            "{path}: {status} {body}"
        );
    }

    // Wrong methods.
    expect_clear_4xx(
        "PUT on the API",
        http.put(format!("{edge}/api/subscriptions")),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    expect_clear_4xx(
        "PATCH on the middletier",
        http.patch(format!("{middletier}/middletier/rss/user/default")),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    expect_clear_4xx(
        "GET on a form action",
        http.get(format!("{edge}/subscriptions")),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    expect_clear_4xx(
        "an unknown page",
        http.get(format!("{edge}/no/such/page")),
        StatusCode::NOT_FOUND,
    )
    .await;

    // Nothing changed, and everyone is still healthy.
    let after: Value = get_json(format!("{edge}/api/subscriptions")).await;
    assert_eq!(after["subscriptions"], before["subscriptions"]);
    for health in [
        stack.edge.url("/healthcheck"),
        stack.middletiers[0].url("/healthcheck"),
        stack.registry.url("/healthcheck"),
    ] {
        assert_eq!(
            http.get(&health).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_flood_of_subscribe_calls_gets_429s_not_errors() {
    let stack = TestStack::start(1, &[], &[]).await;
    let edge = stack.edge.url("/api/subscriptions");
    let calls = (0..200).map(|i| {
        let (edge, feed) = (
            edge.clone(),
            stack.feeds.url(&format!("/fixtures/rss2.xml?copy={i}")),
        );
        async move {
            let response = reqwest::Client::new()
                .post(&edge)
                .json(&json!({"url": feed}))
                .send()
                .await
                .unwrap();
            let retry_after = response.headers().get("retry-after").is_some();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        }
    });
    let started = std::time::Instant::now();
    let answers = futures::future::join_all(calls).await;
    // The bucket holds 10 and refills at 5 a second while the flood lasts.
    let refilled = (5.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    let accepted = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::OK)
        .count();
    for (status, retry_after, body) in &answers {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::TOO_MANY_REQUESTS,
            "{status}: {body}"
        );
        if *status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry_after, "a 429 says when to retry");
            let message = body["error"].as_str().unwrap();
            assert!(
                message.contains("too fast") || message.contains("too many changes"),
                "{body}"
            );
        }
    }
    assert!(
        (1..=10 + refilled).contains(&accepted),
        "the burst was let through, the rest refused: {accepted} (refilled {refilled})"
    );
    let stored: Value = get_json(&edge).await;
    assert_eq!(
        stored["subscriptions"].as_array().unwrap().len(),
        accepted,
        "only what was accepted was stored"
    );
    let add = stack.edge.command("RSSAdd").await;
    assert_eq!(add["rejected"], 0, "the flood never reached the bulkhead");
    assert_eq!(add["state"], "closed");
}
