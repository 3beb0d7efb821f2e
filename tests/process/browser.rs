//! The reader in a real browser: Debian's headless Chromium driven through
//! WebDriver (chromedriver) against the running stack. A person adds a feed
//! through the form, sees its items and the success message, deletes it and
//! sees it gone; a hostile feed's scripts never run; the grid has three
//! columns on a wide screen and one on a phone. The reader's whole journey
//! (OPML import, a choice of feeds, reading with the keyboard and the mouse,
//! views, stars, export, a broken feed removed, a reload) runs with
//! JavaScript, and `axe-core` finds no accessibility violation on its pages,
//! on a desktop and at 390 px. Screenshots are saved under
//! `target/screenshots/`. (The same journey through forms alone, as without
//! JavaScript, is in `tests/api/reader_edge.rs`.)
//!
//! Needs `chromium` and `chromium-driver` (Debian packages), which
//! `scripts/test.sh` installs when they are missing, and `axe-core` (npm),
//! which `scripts/interop-clients.sh` installs.

use crate::support;
// Tests fail loudly on surprises; helpers outside #[test] fns too.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::eventually;
use crate::support::stack::Stack;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

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
    browser_with(true).await
}

/// A headless Chromium, with JavaScript on or off (off: as a person who
/// blocks scripts reads).
async fn browser_with(javascript: bool) -> (Driver, Client) {
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
            ],
            "prefs": {
                "profile.managed_default_content_settings.javascript": if javascript { 1 } else { 2 }
            }
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
        "Add a site or feed",
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
            .starts_with(&format!("Added Hostile Kitchen ({hostile})"))
    );
    let title = client.find(Locator::Css(".card h2")).await.unwrap();
    assert!(title.text().await.unwrap().starts_with("Hostile Kitchen"));
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
        .find(Locator::XPath(
            r#"//button[contains(@class, "delete") and normalize-space(.)="Delete Hostile Kitchen"]"#,
        ))
        .await
        .unwrap();
    submit_and_wait(&client, async {
        delete.click().await.unwrap();
    })
    .await;
    let flash = text_of(&client, ".flash-ok").await;
    assert!(flash.starts_with(&format!("Deleted {hostile}")), "{flash}");
    let names = js(
        &client,
        "return Array.from(document.querySelectorAll('.card h2')).map(h => h.firstChild.textContent.trim())",
    )
    .await;
    assert_eq!(
        names,
        json!(["Recipe Kitchen", "Atom Log"]),
        "the deleted feed is gone"
    );

    // The dismiss button appears (JavaScript ran) and works.
    click(&client, "[data-dismiss]").await;
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

/// Runs axe-core (npm, installed by `scripts/interop-clients.sh`) on the
/// page and fails on any violation, naming each.
async fn assert_accessible(client: &Client, page: &str) {
    let axe = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/interop/node/node_modules/axe-core/axe.min.js");
    if !axe.exists() {
        let status = Command::new("bash")
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/interop-clients.sh"),
            )
            .status()
            .unwrap();
        assert!(
            status.success(),
            "scripts/interop-clients.sh installs axe-core"
        );
    }
    let source = std::fs::read_to_string(&axe).unwrap();
    // WebDriver's scripts are not the page's: the page's CSP does not apply.
    client.execute(&source, vec![]).await.unwrap();
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done(r.violations.map(v =>
                 v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(result, json!([]), "axe-core violations on {page}");
}

/// The text of what `css` finds.
async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Clicks what `css` finds (on this page).
async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks what `css` finds and waits for the page it leads to.
async fn click_and_wait(client: &Client, css: &str) {
    let element = client.find(Locator::Css(css)).await.unwrap();
    submit_and_wait(client, async {
        element.click().await.unwrap();
    })
    .await;
}

/// The items on the page: (id, read, starred).
async fn items(client: &Client) -> Vec<(String, bool, bool)> {
    let found = js(
        client,
        "return Array.from(document.querySelectorAll('[data-item]')).map(li =>
             [li.dataset.item, li.classList.contains('is-read'), li.classList.contains('is-starred')])",
    )
    .await;
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i[0].as_str().unwrap().to_owned(),
                i[1].as_bool().unwrap(),
                i[2].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn press(client: &Client, keys: &str) {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_person_reads_and_manages_feeds_with_the_keyboard_in_chromium() {
    let middletier_args = [&support::FAST_REFRESH[..], &["--refresh-broken-after", "2"]].concat();
    let stack = Stack::start(1, &middletier_args, &[]).await;
    stack.feeds.set_mutable(&["first", "second"]);
    let (_driver, client) = browser().await;
    client.goto(&stack.edge.url("/")).await.unwrap();
    assert_accessible(&client, "the empty reader").await;

    // Import an OPML file through the upload form.
    let dir = tempfile::tempdir().unwrap();
    let opml = dir.path().join("feeds.opml");
    std::fs::write(
        &opml,
        format!(
            r#"<?xml version="1.0"?><opml version="2.0"><head><title>Mine</title></head><body>
            <outline text="News"><outline type="rss" text="Mutable" xmlUrl="{}"/></outline></body></opml>"#,
            stack.feeds.url("/mutable")
        ),
    )
    .unwrap();
    click(&client, ".opml summary").await;
    client
        .find(Locator::Css("#opml-file"))
        .await
        .unwrap()
        .send_keys(&opml.display().to_string())
        .await
        .unwrap();
    click_and_wait(&client, ".opml button[type=submit]").await;
    let flash = text_of(&client, ".flash-ok").await;
    assert!(flash.starts_with("Imported: 1 added"), "{flash}");

    // Add a site that lists two feeds, and pick the Atom one.
    let input = client.find(Locator::Css("#feed-url")).await.unwrap();
    input
        .send_keys(&stack.feeds.url("/fixtures/site-two-feeds.html"))
        .await
        .unwrap();
    submit_and_wait(&client, async {
        input.send_keys("\u{E007}").await.unwrap();
    })
    .await;
    assert_eq!(client.title().await.unwrap(), "Choose a feed · RSS Reader");
    assert_accessible(&client, "the choice of feeds").await;
    click(&client, "#choice-2").await;
    click_and_wait(&client, ".choose button[type=submit]").await;
    let flash = text_of(&client, ".flash-ok").await;
    assert!(flash.starts_with("Added Atom Log"), "{flash}");

    // Wait for the imported feed's items (the scheduler fetches it).
    let mut all = Vec::new();
    for _ in 0..50 {
        client.refresh().await.unwrap();
        all = items(&client).await;
        if all.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(all.len(), 5, "two mutable items and three Atom items");
    assert_eq!(client.title().await.unwrap(), "(5) Your feeds · RSS Reader");
    assert_accessible(&client, "the reader").await;
    screenshot(&client, "journey-desktop.png").await;

    // Keyboard: j selects the first item, m marks it read in place; three
    // more j and s star the fourth; a click marks the third read.
    press(&client, "j").await;
    press(&client, "m").await;
    press(&client, "jjj").await;
    press(&client, "s").await;
    let third = all[2].0.clone();
    client
        .find(Locator::Css(&format!(
            r#"[data-item="{third}"] form[data-toggle="read"] button"#
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "the changes show in place",
        Duration::from_secs(5),
        || async {
            let now = items(&client).await;
            (now[0].1 && now[3].2 && now[2].1).then_some(())
        },
    )
    .await;
    assert_eq!(client.title().await.unwrap(), "(3) Your feeds · RSS Reader");
    // The help opens with ?.
    press(&client, "?").await;
    assert_eq!(
        js(&client, "return document.getElementById('keys').open").await,
        true
    );
    press(&client, "\u{E00C}").await; // Escape
    assert_eq!(
        js(&client, "return document.getElementById('keys').open").await,
        false
    );

    // Unread only: the two read items are gone from the view.
    click_and_wait(&client, r#".views a[href="/?view=unread"]"#).await;
    let unread = items(&client).await;
    assert_eq!(unread.len(), 3, "{unread:?}");
    assert!(unread.iter().all(|(_, read, _)| !read));
    click_and_wait(&client, r#".views a[href="/?view=starred"]"#).await;
    assert_eq!(items(&client).await.len(), 1);

    // Export, as the link downloads it.
    let exported = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/opml').then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    let exported = exported.as_str().unwrap();
    assert!(
        exported.contains(&stack.feeds.url("/mutable")),
        "{exported}"
    );
    assert!(
        exported.contains(&stack.feeds.url("/fixtures/atom.xml")),
        "{exported}"
    );

    // The imported feed breaks; it is listed as broken; remove it there.
    stack.feeds.set_mutable_failure(500, None);
    client.goto(&stack.edge.url("/")).await.unwrap();
    for _ in 0..75 {
        if js(&client, "return !!document.querySelector('.broken')").await == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.refresh().await.unwrap();
    }
    click_and_wait(&client, ".broken button.delete").await;
    assert_eq!(
        js(&client, "return !!document.querySelector('.broken')").await,
        false
    );

    // Reload: everything as left.
    client.refresh().await.unwrap();
    let now = items(&client).await;
    assert_eq!(now.len(), 3, "only the Atom feed's items: {now:?}");
    assert!(
        now.iter()
            .any(|(id, _, starred)| *id == all[1].0 && !starred)
            || !now.iter().any(|(id, ..)| *id == all[1].0)
    );
    assert!(
        now.iter().any(|(id, read, _)| *id == third && *read),
        "{now:?}"
    );

    // Usable at 390 px: nothing wider than the screen.
    client.set_window_size(390, 844).await.unwrap();
    assert_fits_the_screen(&client).await;
    assert_accessible(&client, "the reader at 390 px").await;
    screenshot(&client, "journey-mobile.png").await;
    client.goto(&stack.edge.url("/dashboard")).await.unwrap();
    assert_accessible(&client, "the dashboard").await;
    client.close().await.unwrap();
}

/// Nothing on the page is wider than the window (no sideways scrolling).
async fn assert_fits_the_screen(client: &Client) {
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth";
    assert_eq!(js(client, fits).await, true, "no horizontal scrolling");
}

/// `GET /api/subscriptions` with an app password.
async fn with_app_password(stack: &Stack, token: &str) -> reqwest::Response {
    support::web::get_with_app_password(&stack.edge.url("/api/subscriptions"), token).await
}

/// Types `text` into the field `css` finds.
async fn type_into(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// The one-time setup code, from the edge's log.
async fn setup_code(stack: &Stack) -> String {
    let marker = "setup code: ";
    eventually(
        "the edge logs a setup code",
        Duration::from_secs(10),
        || async {
            stack.edge.logs().iter().find_map(|line| {
                let start = line.find(marker)? + marker.len();
                Some(
                    line[start..]
                        .chars()
                        .take_while(char::is_ascii_hexdigit)
                        .collect(),
                )
            })
        },
    )
    .await
}

#[tokio::test]
async fn a_person_sets_up_the_reader_signs_in_and_signs_out_everywhere_in_chromium() {
    let stack = Stack::start(1, &[], &["--auth", "local"]).await;
    let (_driver, client) = browser().await;
    let edge = stack.edge.url("");

    // No account yet: every page leads to /setup, which asks for the code
    // the edge printed in its log.
    client.goto(&format!("{edge}/")).await.unwrap();
    assert!(client.current_url().await.unwrap().path() == "/setup");
    assert_accessible(&client, "the setup page").await;
    type_into(&client, "#code", &setup_code(&stack).await).await;
    type_into(&client, "#username", "alice").await;
    type_into(&client, "#password", "alice's long password").await;
    click_and_wait(&client, "form[action='/setup'] button").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/");

    // Signed in: reading works as before.
    add_feed(&client, &stack.feeds.url("/fixtures/rss2.xml")).await;
    assert!(text_of(&client, "main").await.contains("Recipe Kitchen"));

    // An app password, shown once, works on the API.
    client.goto(&format!("{edge}/settings")).await.unwrap();
    assert_accessible(&client, "the settings page").await;
    type_into(&client, "#label", "phone").await;
    click_and_wait(&client, "form[action='/settings/app-passwords'] button").await;
    let token = text_of(&client, "code.secret").await;
    let api = with_app_password(&stack, &token).await;
    assert_eq!(api.status(), reqwest::StatusCode::OK);
    let listed: Value = api.json().await.unwrap();
    assert_eq!(listed["subscriptions"][0]["title"], "Recipe Kitchen");
    screenshot(&client, "settings.png").await;

    client.goto(&format!("{edge}/admin/users")).await.unwrap();
    assert_accessible(&client, "the users page").await;

    // A second session elsewhere (a plain HTTP client), then sign out
    // everywhere in Chromium: both sessions end; the app password stays.
    let mut elsewhere = support::web::Browser::new(&edge);
    let csrf = elsewhere.get("/login").await.csrf();
    let signed = elsewhere
        .post_form(
            "/login",
            &[
                ("username", "alice"),
                ("password", "alice's long password"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(signed.status, reqwest::StatusCode::SEE_OTHER);
    assert_eq!(elsewhere.get("/").await.status, reqwest::StatusCode::OK);
    client.goto(&format!("{edge}/settings")).await.unwrap();
    click_and_wait(
        &client,
        "form[action='/settings/sign-out-everywhere'] button",
    )
    .await;
    assert_eq!(client.current_url().await.unwrap().path(), "/login");
    assert_accessible(&client, "the sign-in page").await;
    assert_eq!(
        elsewhere.get("/").await.status,
        reqwest::StatusCode::SEE_OTHER
    );
    client.goto(&format!("{edge}/")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/login");

    // Signing in again leads back to the page asked for.
    client.goto(&format!("{edge}/?view=starred")).await.unwrap();
    type_into(&client, "#username", "alice").await;
    type_into(&client, "#password", "alice's long password").await;
    click_and_wait(&client, "form[action='/login'] button").await;
    let url = client.current_url().await.unwrap();
    assert_eq!((url.path(), url.query()), ("/", Some("view=starred")));
    let api = with_app_password(&stack, &token).await;
    assert_eq!(api.status(), reqwest::StatusCode::OK, "app passwords stay");
    client.set_window_size(390, 844).await.unwrap();
    client.goto(&format!("{edge}/settings")).await.unwrap();
    assert_fits_the_screen(&client).await;
    assert_accessible(&client, "the settings page at 390 px").await;
    client.close().await.unwrap();
}

/// Waits for the article page at `/items/...` to have loaded.
async fn on_article(client: &Client) -> String {
    client
        .wait()
        .for_element(Locator::Css("[data-article]"))
        .await
        .unwrap()
        .attr("data-article")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_person_reads_articles_from_the_river_and_the_cards_in_chromium() {
    let stack = Stack::start(1, &[], &[]).await;
    let (_driver, client) = browser().await;
    client.goto(&stack.edge.url("/")).await.unwrap();
    add_feed(&client, &stack.feeds.url("/fixtures/article.xml")).await;
    add_feed(&client, &stack.feeds.url("/fixtures/rss2.xml")).await;

    // The river: every feed's items, newest first.
    client.goto(&stack.edge.url("/river")).await.unwrap();
    let river = items(&client).await;
    assert_eq!(river.len(), 6, "{river:?}");
    assert_accessible(&client, "the river").await;

    // Open the podcast from the river: its player waits to be asked, its
    // image comes through the media proxy.
    let podcast = js(
        &client,
        "return Array.from(document.querySelectorAll('[data-item]')).find(li =>
             li.textContent.includes('A podcast with pictures')).dataset.item",
    )
    .await;
    let podcast = podcast.as_str().unwrap().to_owned();
    click_and_wait(&client, &format!("[data-item='{podcast}'] a.item-title")).await;
    assert_eq!(on_article(&client).await, podcast);
    let audio = client.find(Locator::Css("audio[controls]")).await.unwrap();
    assert_eq!(
        audio.attr("preload").await.unwrap().as_deref(),
        Some("none")
    );
    eventually("the article's image loads", Duration::from_secs(10), || async {
        let loaded = "const img = document.querySelector('.content img');
             return !!img && img.getAttribute('src').startsWith('/media/') && img.naturalWidth === 8";
        (client.execute(loaded, vec![]).await.ok()? == Value::Bool(true)).then_some(())
    })
    .await;
    assert_accessible(&client, "the article page").await;
    screenshot(&client, "article.png").await;

    // j goes to the next item of the river; s stars it.
    let at = river.iter().position(|(id, ..)| *id == podcast).unwrap();
    let next = river[at + 1].0.clone();
    submit_and_wait(&client, press(&client, "j")).await;
    assert_eq!(on_article(&client).await, next);
    submit_and_wait(&client, press(&client, "s")).await;
    assert!(
        text_of(&client, "form[data-toggle='starred'] button")
            .await
            .contains("Unstar"),
        "starred"
    );
    // k goes back; u back to the river, where both read ones are dimmed.
    submit_and_wait(&client, press(&client, "k")).await;
    assert_eq!(on_article(&client).await, podcast);
    submit_and_wait(&client, press(&client, "u")).await;
    let now = items(&client).await;
    for id in [&podcast, &next] {
        assert!(
            now.iter().any(|(i, read, _)| i == id && *read),
            "{id} read: {now:?}"
        );
    }
    assert!(now.iter().any(|(i, _, starred)| *i == next && *starred));

    // From a feed card, too.
    client.goto(&stack.edge.url("/")).await.unwrap();
    click_and_wait(&client, ".card [data-item] a.item-title").await;
    on_article(&client).await;

    // At 390 px: the article and the river fit and stay accessible.
    client.set_window_size(390, 844).await.unwrap();
    assert_fits_the_screen(&client).await;
    assert_accessible(&client, "the article page at 390 px").await;
    client.goto(&stack.edge.url("/river")).await.unwrap();
    assert_fits_the_screen(&client).await;
    assert_accessible(&client, "the river at 390 px").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn articles_read_and_star_without_javascript_in_chromium() {
    let stack = Stack::start(1, &[], &[]).await;
    stack
        .subscribe_each(["/fixtures/article.xml".to_owned()])
        .await;
    let (_driver, client) = browser_with(false).await;
    client.goto(&stack.edge.url("/river")).await.unwrap();
    // Everything below is links and forms: WebDriver clicks, no scripts.
    click(&client, "[data-item] a.item-title").await;
    let id = on_article(&client).await;
    client
        .find(Locator::Css("audio[preload='none']"))
        .await
        .unwrap();
    click(&client, "form[data-toggle='starred'] button").await;
    client
        .wait()
        .for_element(Locator::Css("article.is-starred"))
        .await
        .unwrap();
    click(&client, "[data-back]").await;
    client
        .wait()
        .for_element(Locator::Css(&format!(
            "li.is-read.is-starred[data-item='{id}']"
        )))
        .await
        .unwrap();
    client.close().await.unwrap();
}
