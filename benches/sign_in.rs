//! What knowing the user costs a warm page: the same reader page and API
//! call through two edges on one middletier, one with `--auth none`
//! (everyone is `default`) and one with `--auth local`, signed in as
//! `default` (a session cookie: an HMAC check and a cached account), or
//! with an app password (a SHA-256 and a cached account).
//!
//! Run: `cargo bench --bench sign_in`
//!
//! 20 feeds × 50 items, 8 concurrent clients, about 4,000 requests per
//! row, the rows interleaved over three rounds so both edges see the same
//! machine.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderValue};
use support::load::{Throughput, closed_loop};
use support::process::Service;
use support::stack::{FETCH, LEASE, RENEWAL, Stack};
use support::web::Browser;

const PASSWORD: &str = "the benchmark's password";

#[tokio::main]
async fn main() {
    let stack = Stack::start(1, &["--user-write-rate", "0"], &["--user-write-rate", "0"]).await;
    stack.subscribe_generated(20, 50).await;
    let registry = stack.registry.url("/eureka/v2/");
    let local = Service::start(
        "edge",
        &[
            "--registry-url",
            &registry,
            "--renewal-interval",
            RENEWAL,
            "--lease-duration",
            LEASE,
            "--registry-fetch-interval",
            FETCH,
            "--user-write-rate",
            "0",
            "--auth",
            "local",
            "--admin-username",
            "default",
            "--admin-password",
            PASSWORD,
        ],
        &[],
    );
    let cookie = support::eventually("signed in", Duration::from_secs(30), || async {
        let mut browser = Browser::new(&local.url(""));
        let csrf = browser.get("/login").await.csrf();
        let fields = [
            ("username", "default"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ];
        let answer = browser.post_form("/login", &fields).await;
        (answer.status == reqwest::StatusCode::SEE_OTHER)
            .then(|| browser.cookies.get("rss_session").cloned())
            .flatten()
    })
    .await;
    let token = app_password(&local, &cookie).await;

    let plain = reqwest::Client::builder().gzip(false).build().unwrap();
    let with = |name, value: String| {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
        reqwest::Client::builder()
            .gzip(false)
            .default_headers(headers)
            .build()
            .unwrap()
    };
    let session = with(COOKIE, format!("rss_session={cookie}"));
    let bearer = with(AUTHORIZATION, format!("Bearer {token}"));

    let none_page = stack.edge.url("/");
    let local_page = local.url("/");
    let none_api = stack.edge.url("/api/subscriptions");
    let local_api = local.url("/api/subscriptions");
    // Warm: every feed read once on each edge.
    for (client, url) in [
        (&plain, &none_page),
        (&session, &local_page),
        (&bearer, &local_api),
    ] {
        closed_loop(client, url, 1, 20).await;
    }

    println!("### A warm page and API call, 20 feeds x 50 items, 8 concurrent clients\n");
    println!("| what | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    let rows: [(&str, &reqwest::Client, &str); 4] = [
        ("page, `--auth none`", &plain, &none_page),
        (
            "page, `--auth local`, session cookie",
            &session,
            &local_page,
        ),
        ("`/api/subscriptions`, `--auth none`", &plain, &none_api),
        (
            "`/api/subscriptions`, `--auth local`, app password",
            &bearer,
            &local_api,
        ),
    ];
    let mut runs: Vec<Vec<Throughput>> = vec![Vec::new(); rows.len()];
    for _ in 0..3 {
        for (i, (_, client, url)) in rows.iter().enumerate() {
            runs[i].push(closed_loop(client, url, 8, 500 / 3 + 1).await);
        }
    }
    for ((label, ..), runs) in rows.iter().zip(runs) {
        let per_second = runs.iter().map(|r| r.per_second).sum::<f64>() / runs.len() as f64;
        let p50 = runs.iter().map(|r| r.ms(0.50)).sum::<f64>() / runs.len() as f64;
        let p99 = runs.iter().map(|r| r.ms(0.99)).sum::<f64>() / runs.len() as f64;
        println!("| {label} | {per_second:.0} | {p50:.2} | {p99:.2} |");
    }
}

/// Makes an app password through the settings form, as a person does.
async fn app_password(edge: &Service, cookie: &str) -> String {
    let mut browser = Browser::new(&edge.url(""));
    browser
        .cookies
        .insert("rss_session".to_owned(), cookie.to_owned());
    let csrf = browser.get("/settings").await.csrf();
    let page = browser
        .post_form(
            "/settings/app-passwords",
            &[("label", "bench"), ("csrf", &csrf)],
        )
        .await;
    let marker = r#"<code class="secret">"#;
    let start = page.body.find(marker).expect("a new app password") + marker.len();
    let end = page.body[start..].find("</code>").unwrap();
    page.body[start..start + end].to_owned()
}
