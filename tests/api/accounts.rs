//! `--auth local` and `--auth proxy` at the edge, over real HTTP against
//! an in-process stack: signing in and out, sessions, app passwords,
//! admins, throttling, deleting a user with their data, and what the
//! proxy mode believes from whom.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::Value;

use crate::helpers::TestStack;
use crate::support::eventually;
use crate::support::web::{Browser, Page, get_json, get_with_app_password};

pub(crate) const ADMIN: &str = "root";
pub(crate) const ADMIN_PASSWORD: &str = "root's long password";

pub(crate) async fn local_stack() -> TestStack {
    let stack = TestStack::start(
        1,
        &[],
        &[
            "--auth",
            "local",
            "--admin-username",
            ADMIN,
            "--admin-password",
            ADMIN_PASSWORD,
        ],
    )
    .await;
    // The first admin is created in the background once the middletier
    // answers.
    let account = stack.middletiers[0]
        .running
        .url(&format!("/middletier/accounts/{ADMIN}"));
    eventually(
        "the first admin exists",
        Duration::from_secs(15),
        || async {
            let status = reqwest::get(&account).await.ok()?.status();
            (status == StatusCode::OK).then_some(())
        },
    )
    .await;
    stack
}

/// Signs in with the login form; returns the answer to the form's post.
async fn sign_in(browser: &mut Browser, user: &str, password: &str) -> Page {
    let csrf = browser.get("/login").await.csrf();
    browser
        .post_form(
            "/login",
            &[("username", user), ("password", password), ("csrf", &csrf)],
        )
        .await
}

async fn signed_in(stack: &TestStack, user: &str, password: &str) -> Browser {
    let mut browser = stack.edge.browser();
    let answer = sign_in(&mut browser, user, password).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}

/// Posts a form from `page` (its CSRF token) and returns the answer.
async fn post_from(browser: &mut Browser, page: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = browser.get(page).await.csrf();
    let mut fields = fields.to_vec();
    fields.push(("csrf", &csrf));
    browser.post_form(path, &fields).await
}

async fn add_user(admin: &mut Browser, user: &str, password: &str) -> Page {
    let posted = post_from(
        admin,
        "/admin/users",
        "/admin/users",
        &[("username", user), ("password", password)],
    )
    .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    admin.get("/admin/users").await
}

async fn api_with_token(stack: &TestStack, token: &str) -> reqwest::Response {
    get_with_app_password(&stack.edge.url("/api/subscriptions"), token).await
}

/// The app password a settings page shows once.
fn shown_token(page: &Page) -> String {
    crate::support::web::shown_secret(page)
}

#[tokio::test]
async fn without_signing_in_pages_ask_for_it_and_the_api_says_401() {
    let stack = local_stack().await;
    let mut anonymous = stack.edge.browser();
    let page = anonymous.get("/?view=unread").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login?next=%2F%3Fview%3Dunread"));
    let api = reqwest::get(stack.edge.url("/api/subscriptions"))
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(
        api.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = api.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("/login"), "{body}");
    for path in ["/metrics", "/dashboard/data", "/hystrix.stream"] {
        let answer = reqwest::get(stack.edge.url(path)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(
        anonymous.get("/dashboard").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(anonymous.get("/healthcheck").await.status, StatusCode::OK);
    assert_eq!(
        anonymous.get("/assets/app.css").await.status,
        StatusCode::OK
    );
    let login = anonymous.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains(r#"name="password""#));
}

#[tokio::test]
async fn wrong_credentials_get_one_generic_message_and_the_right_ones_a_session() {
    let stack = local_stack().await;
    let mut browser = stack.edge.browser();
    let wrong_password = sign_in(&mut browser, ADMIN, "not the password").await;
    let no_such_user = sign_in(&mut browser, "nobody", "not the password").await;
    let bad_name = sign_in(&mut browser, "../etc", "not the password").await;
    for failed in [&wrong_password, &no_such_user, &bad_name] {
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
        assert!(failed.body.contains("Wrong user name or password."));
    }
    assert!(!browser.cookies.contains_key("rss_session"));

    let csrf = browser.get("/login?next=/settings").await.csrf();
    let ok = browser
        .post_form(
            "/login",
            &[
                ("username", "ROOT"),
                ("password", ADMIN_PASSWORD),
                ("csrf", &csrf),
                ("next", "/settings"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(
        ok.location(),
        Some("/settings"),
        "names are case-insensitive"
    );
    let cookie = ok
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("rss_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("(root)"));

    // Another site is never where signing in leads.
    let mut other = stack.edge.browser();
    let csrf = other.get("/login").await.csrf();
    let sent = other
        .post_form(
            "/login",
            &[
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
                ("csrf", &csrf),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(sent.location(), Some("/"));
}

#[tokio::test]
async fn behind_a_trusted_https_proxy_the_cookie_is_secure() {
    let stack = local_stack().await;
    let mut browser = stack
        .edge
        .browser()
        .with_header("X-Forwarded-Proto", "https");
    let answer = sign_in(&mut browser, ADMIN, ADMIN_PASSWORD).await;
    let cookie = answer.headers[SET_COOKIE].to_str().unwrap().to_owned();
    let cookies: Vec<String> = answer
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("rss_session="))
        .unwrap_or(&cookie);
    assert!(session.contains("Secure"), "{session}");
}

#[tokio::test]
async fn a_forged_or_tampered_cookie_is_as_good_as_none() {
    let stack = local_stack().await;
    let browser = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    let real = browser.cookies["rss_session"].clone();
    let (payload, mac) = real.rsplit_once('.').unwrap();
    let forged = [
        format!("{}.{mac}", payload.replacen("root", "bob", 1)),
        format!("{payload}.{}", "0".repeat(64)),
        format!("root.0.9999999999.{}", "0".repeat(64)),
        "garbage".to_owned(),
    ];
    for value in forged {
        let mut forger = stack.edge.browser();
        forger.cookies.insert("rss_session".into(), value.clone());
        let page = forger.get("/").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{value}");
    }
}

#[tokio::test]
async fn sign_in_is_throttled_with_retry_after() {
    let stack = local_stack().await;
    let mut browser = stack.edge.browser();
    for _ in 0..5 {
        let failed = sign_in(&mut browser, "carol", "wrong password").await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    let refused = sign_in(&mut browser, "carol", "wrong password").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The address is locked too: even the right password waits.
    let right = sign_in(&mut browser, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn admins_manage_accounts_and_others_get_403() {
    let stack = local_stack().await;
    let mut admin = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    let users = add_user(&mut admin, "Bob", "bob's long password").await;
    assert!(users.body.contains("Added bob."), "{}", users.body);
    let again = add_user(&mut admin, "bob", "another password").await;
    assert!(again.body.contains("already exists"), "{}", again.body);
    let bad = add_user(&mut admin, "bob/../root", "long enough password").await;
    assert!(bad.body.contains("letters, digits"), "{}", bad.body);
    let short = add_user(&mut admin, "dave", "short").await;
    assert!(short.body.contains("at least 8"), "{}", short.body);

    let mut bob = signed_in(&stack, "bob", "bob's long password").await;
    for path in ["/admin/users", "/dashboard", "/dashboard/data", "/metrics"] {
        assert_eq!(bob.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let forbidden = post_from(
        &mut bob,
        "/",
        "/admin/users",
        &[("username", "eve"), ("password", "eve's password")],
    )
    .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    for path in ["/dashboard", "/dashboard/data", "/metrics"] {
        assert_eq!(admin.get(path).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn app_passwords_work_on_the_api_until_revoked() {
    let stack = local_stack().await;
    let mut browser = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    let page = post_from(
        &mut browser,
        "/settings",
        "/settings/app-passwords",
        &[("label", "phone")],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let token = shown_token(&page);
    assert!(
        !browser.get("/settings").await.body.contains(&token),
        "shown once"
    );

    let answer = api_with_token(&stack, &token).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let added = reqwest::Client::new()
        .post(stack.edge.url("/api/subscriptions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"url": stack.feeds.url("/fixtures/rss2.xml")}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK, "no CSRF token needed");
    let listed: Value = api_with_token(&stack, &token).await.json().await.unwrap();
    assert_eq!(listed["user"], ADMIN);

    // The last hex digit changed (to 1 if it was 0: a 0 would be no change).
    let last = if token.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &token[..token.len() - 1]);
    assert_eq!(
        api_with_token(&stack, &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api_with_token(&stack, "root~nope").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let settings = browser.get("/settings").await;
    let id_start = settings.body.find("/settings/app-passwords/").unwrap() + 24;
    let id = &settings.body[id_start..id_start + 12];
    let revoked = post_from(
        &mut browser,
        "/settings",
        &format!("/settings/app-passwords/{id}/delete"),
        &[],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    // On this edge at once; on others within the account cache's 30 s.
    assert_eq!(
        api_with_token(&stack, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session() {
    let stack = local_stack().await;
    let mut laptop = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    let mut phone = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    let mut tablet = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(phone.get("/").await.status, StatusCode::OK);

    // Signing out ends this browser's session only.
    let out = post_from(&mut tablet, "/", "/logout", &[]).await;
    assert_eq!(out.location(), Some("/login"));
    assert_eq!(tablet.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/").await.status, StatusCode::OK);

    let everywhere = post_from(
        &mut laptop,
        "/settings",
        "/settings/sign-out-everywhere",
        &[],
    )
    .await;
    assert_eq!(everywhere.location(), Some("/login"));
    assert_eq!(laptop.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        phone.get("/").await.status,
        StatusCode::SEE_OTHER,
        "old epoch"
    );
    // Signing in again works, with the new epoch.
    let mut again = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(again.get("/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let stack = local_stack().await;
    let mut here = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    let mut there = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    let wrong = post_from(
        &mut here,
        "/settings",
        "/settings/password",
        &[("current", "nope"), ("new", "a new long password")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert!(here.get("/settings").await.body.contains("not right"));
    let changed = post_from(
        &mut here,
        "/settings",
        "/settings/password",
        &[("current", ADMIN_PASSWORD), ("new", "a new long password")],
    )
    .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert!(
        here.get("/settings")
            .await
            .body
            .contains("Password changed")
    );
    assert_eq!(here.get("/").await.status, StatusCode::OK);
    assert_eq!(there.get("/").await.status, StatusCode::SEE_OTHER);
    let old = sign_in(&mut stack.edge.browser(), ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    signed_in(&stack, ADMIN, "a new long password").await;
}

#[tokio::test]
async fn deleting_a_user_deletes_all_of_their_data() {
    let stack = local_stack().await;
    let mut admin = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    add_user(&mut admin, "bob", "bob's long password").await;
    let mut bob = signed_in(&stack, "bob", "bob's long password").await;
    let feed = stack.feeds.url("/fixtures/rss2.xml");
    let page = bob.submit("/subscriptions", &[("url", &feed)]).await;
    assert!(page.body.contains("Recipe Kitchen"), "{}", page.body);
    let middletier = &stack.middletiers[0].running;
    let listing: Value = get_json(middletier.url("/middletier/rss/user/bob")).await;
    let item = listing["subscriptions"][0]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let star = reqwest::Client::new()
        .put(middletier.url(&format!("/middletier/rss/user/bob/items/{item}")))
        .json(&serde_json::json!({"starred": true, "read": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(star.status(), StatusCode::OK);

    let deleted = post_from(&mut admin, "/admin/users", "/admin/users/bob/delete", &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(admin.get("/admin/users").await.body.contains("Deleted bob"));
    let gone = reqwest::get(middletier.url("/middletier/accounts/bob"))
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let listing: Value = get_json(middletier.url("/middletier/rss/user/bob")).await;
    assert_eq!(listing["subscriptions"], serde_json::json!([]));
    let starred: Value = get_json(middletier.url("/middletier/rss/user/bob?limit=0")).await;
    assert_eq!(starred["subscriptions"], serde_json::json!([]));
    assert_eq!(
        bob.get("/").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
    // An admin cannot delete themselves from the page.
    let own = post_from(&mut admin, "/admin/users", "/admin/users/root/delete", &[]).await;
    assert_eq!(own.status, StatusCode::SEE_OTHER);
    assert!(
        admin
            .get("/admin/users")
            .await
            .body
            .contains("your own account")
    );
}

#[tokio::test]
async fn signed_in_users_keep_reading_while_the_middletier_is_down() {
    let mut stack = local_stack().await;
    let mut browser = signed_in(&stack, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
    stack.middletiers.remove(0).running.stop().await;
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Showing saved feeds"), "{}", page.body);
}

#[tokio::test]
async fn proxy_mode_believes_the_header_only_from_trusted_proxies() {
    let untrusted = TestStack::start(
        1,
        &[],
        &[
            "--auth",
            "proxy",
            "--auth-proxy-header",
            "X-User",
            "--trusted-proxies",
            "10.0.0.0/8",
        ],
    )
    .await;
    let mut browser = untrusted.edge.browser().with_header("X-User", "alice");
    for path in ["/", "/api/subscriptions", "/metrics", "/dashboard"] {
        assert_eq!(
            browser.get(path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(browser.get("/healthcheck").await.status, StatusCode::OK);

    let trusted = TestStack::start(
        1,
        &[],
        &["--auth", "proxy", "--auth-proxy-header", "X-User"],
    )
    .await;
    let twice = reqwest::Client::new()
        .get(trusted.edge.url("/api/subscriptions"))
        .header("X-User", "alice")
        .header("X-User", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    let mut alice = trusted.edge.browser().with_header("X-User", "alice");
    assert_eq!(alice.get("/").await.status, StatusCode::OK);
    assert_eq!(alice.get("/metrics").await.status, StatusCode::OK);
    assert_eq!(
        alice.get("/login").await.status,
        StatusCode::NOT_FOUND,
        "no local pages"
    );
}
