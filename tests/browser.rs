//! The reader in a real browser: Debian's headless Chromium driven through
//! WebDriver (chromedriver) against the running stack. A person adds a feed
//! through the form, sees its items and the success message, deletes it and
//! sees it gone; a hostile feed's scripts never run; the grid has three
//! columns on a wide screen and one on a phone. Screenshots are saved under
//! `target/screenshots/`.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages), which
//! `scripts/test.sh` installs when they are missing.

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::eventually;
use support::stack::Stack;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser() -> (Driver, Client) {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(path).exists(),
            "{path} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    eventually("chromedriver answers", Duration::from_secs(10), || async {
        reqwest::get(format!("{url}/status")).await.ok().map(drop)
    })
    .await;
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            // As the machine's probe runs it: headless, no sandbox (we are
            // root in a container), and nothing that calls home.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("chromedriver starts a headless Chromium");
    (
        Driver {
            child,
            _profile: profile,
        },
        client,
    )
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn screenshot(client: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), client.screenshot().await.unwrap()).unwrap();
}

/// Runs `submit` (a form submission) and waits for the page it leads to.
///
/// Waiting for an element is not enough: the old page may have it too (a
/// flash message from the last change), so the old document is marked and
/// the wait is for a complete document without the mark.
async fn submit_and_wait(client: &Client, submit: impl std::future::Future<Output = ()>) {
    js(client, "window.__oldPage = true; return null").await;
    submit.await;
    let new_page = "return window.__oldPage === undefined && document.readyState === 'complete'";
    // A script run while the browser navigates may fail; that is "not yet".
    eventually(
        "the form's answer page loads",
        Duration::from_secs(10),
        || async {
            (client.execute(new_page, vec![]).await.ok()? == Value::Bool(true)).then_some(())
        },
    )
    .await;
}

/// Types a feed URL into the form and submits it with the keyboard.
async fn add_feed(client: &Client, url: &str) {
    let input = client.find(Locator::Css("#feed-url")).await.unwrap();
    input.send_keys(url).await.unwrap();
    submit_and_wait(client, async {
        input.send_keys("\u{E007}").await.unwrap(); // Enter
    })
    .await;
    client
        .wait()
        .for_element(Locator::Css("[data-flash]"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_person_adds_reads_and_deletes_a_feed_in_chromium() {
    let stack = Stack::start(1, &[], &[]).await;
    let (_driver, client) = browser().await;
    let edge = stack.edge.url("/");
    client.goto(&edge).await.unwrap();
    assert_eq!(client.title().await.unwrap(), "Your feeds · RSS Reader");
    let label = client
        .find(Locator::Css("label[for=feed-url]"))
        .await
        .unwrap();
    assert_eq!(
        label.text().await.unwrap(),
        "Feed URL",
        "the input is labelled"
    );

    let hostile = stack.feeds.url("/fixtures/hostile.xml");
    add_feed(&client, &hostile).await;
    let flash = client.find(Locator::Css(".flash-ok")).await.unwrap();
    assert!(
        flash
            .text()
            .await
            .unwrap()
            .starts_with(&format!("Added {hostile}"))
    );
    let title = client.find(Locator::Css(".card h2")).await.unwrap();
    assert_eq!(title.text().await.unwrap(), "Hostile Kitchen");
    let items = client
        .find_all(Locator::Css(".card .items li"))
        .await
        .unwrap();
    assert_eq!(items.len(), 5, "its items are shown");
    let escaped = client.find_all(Locator::Css(".item-title")).await.unwrap();
    let mut titles = Vec::new();
    for t in escaped {
        titles.push(t.text().await.unwrap());
    }
    assert!(
        titles.contains(&r#"<img src=x onerror="window.__pwned='title'">"#.to_owned()),
        "HTML in a title is shown as text: {titles:?}"
    );

    // Nothing from the feed ran: not the scripts, handlers, javascript:
    // links or frames. (Give any stray handler a moment first.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        js(&client, "return typeof window.__pwned").await,
        "undefined"
    );
    for link in client.find_all(Locator::Css("a")).await.unwrap() {
        let href = link.attr("href").await.unwrap().unwrap_or_default();
        assert!(!href.starts_with("javascript:"), "{href}");
    }
    assert_eq!(js(&client, "return document.querySelectorAll('iframe, object, form[action^=\"https://evil\"], svg').length").await, 0);
    assert_eq!(
        js(&client, "return document.querySelectorAll('script').length").await,
        1,
        "only our own script"
    );
    screenshot(&client, "reader.png").await;

    // Three columns on a wide screen, one on a phone.
    add_feed(&client, &stack.feeds.url("/fixtures/rss2.xml")).await;
    add_feed(&client, &stack.feeds.url("/fixtures/atom.xml")).await;
    let columns = "return getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length";
    assert_eq!(js(&client, columns).await, 3);
    screenshot(&client, "reader-wide.png").await;
    client.set_window_size(400, 900).await.unwrap();
    assert_eq!(js(&client, columns).await, 1);
    screenshot(&client, "reader-phone.png").await;
    client.set_window_size(1400, 1000).await.unwrap();

    // Delete the hostile feed with its own button.
    let delete = client
        .find(Locator::Css(
            r#"button[aria-label="Delete the feed Hostile Kitchen"]"#,
        ))
        .await
        .unwrap();
    submit_and_wait(&client, async {
        delete.click().await.unwrap();
    })
    .await;
    let flash = client
        .find(Locator::Css(".flash-ok"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(flash.starts_with(&format!("Deleted {hostile}")), "{flash}");
    let cards = client.find_all(Locator::Css(".card h2")).await.unwrap();
    let mut names = Vec::new();
    for card in cards {
        names.push(card.text().await.unwrap());
    }
    assert_eq!(
        names,
        ["Recipe Kitchen", "Atom Log"],
        "the deleted feed is gone"
    );

    // The dismiss button appears (JavaScript ran) and works.
    client
        .find(Locator::Css("[data-dismiss]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        js(
            &client,
            "return document.querySelectorAll('[data-flash]').length"
        )
        .await,
        0
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_dashboard_updates_itself_in_chromium() {
    let stack = Stack::start(1, &[], &[]).await;
    let (_driver, client) = browser().await;
    client.goto(&stack.edge.url("/dashboard")).await.unwrap();
    let row = client
        .find(Locator::Css(
            r#"tr[data-command="RSSGet"] [data-field="success"]"#,
        ))
        .await
        .unwrap();
    assert_eq!(row.text().await.unwrap(), "0");
    for _ in 0..3 {
        reqwest::get(stack.edge.url("/api/subscriptions"))
            .await
            .unwrap();
    }
    eventually(
        "the page refreshed its figures without a reload",
        Duration::from_secs(6),
        || async { (row.text().await.ok()? == "3").then_some(()) },
    )
    .await;
    screenshot(&client, "dashboard.png").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_registry_record_never_runs_a_script_in_chromium() {
    let registry = support::process::Service::start("registry", &[], &[]);
    // A record that tries to make its XML answer an XHTML page with a
    // script in it, registered as any client could.
    let evil = json!({"instance": {
        "instanceId": "evil-1", "hostName": "127.0.0.1", "app": "EVIL", "ipAddr": "127.0.0.1",
        "status": "UP", "port": {"$": 80, "@enabled": "true"}, "vipAddress": "evil",
        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
        "@xmlns": "http://www.w3.org/1999/xhtml",
        "script": "window.__pwned = document.domain"
    }});
    let registered = reqwest::Client::new()
        .post(registry.url("/eureka/v2/apps/EVIL"))
        .json(&evil)
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{}", registered.status());

    let (_driver, client) = browser().await;
    client
        .goto(&registry.url("/eureka/v2/apps/EVIL/evil-1"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        js(&client, "return typeof window.__pwned").await,
        "undefined",
        "the record's script ran on the registry's origin"
    );
    client.close().await.unwrap();
}
