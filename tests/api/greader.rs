//! The Google Reader API at the edge, over raw HTTP against an in-process
//! stack (`--auth local`): the client quirks GREADER.md lists, one by one,
//! that a client library does not send (the whole sync with a real
//! client library is `tests/process/greader.rs`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::{ADMIN, ADMIN_PASSWORD, local_stack};
use crate::helpers::TestStack;
use crate::support::eventually;
use crate::support::greader::{
    GReader, READ, READING_LIST, STARRED, client_login, has_category, long_form, long_id,
};
use crate::support::web::{get_with_app_password, new_app_password};

/// An app password for the admin, made on the settings page.
async fn app_password(stack: &TestStack) -> String {
    new_app_password(&stack.edge.url(""), ADMIN, ADMIN_PASSWORD, "NetNewsWire").await
}

/// The edge's JSON API with the same app password: the other side of "one
/// state, two APIs".
async fn edge_items(stack: &TestStack, token: &str) -> Vec<Value> {
    let answer = get_with_app_password(&stack.edge.url("/api/subscriptions"), token).await;
    let body: Value = answer.json().await.unwrap();
    body["subscriptions"][0]["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn sign_in_takes_an_app_password_and_answers_as_clients_parse_it() {
    let stack = local_stack().await;
    let token = app_password(&stack).await;
    let base = stack.edge.url("");

    let refused = client_login(&base, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "never the web password"
    );
    assert_eq!(refused.text, "Error=BadAuthentication\n");
    let refused = client_login(&base, "someone-else", &token).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    for password in [token.clone(), token.split_once('~').unwrap().1.to_owned()] {
        let answer = client_login(&base, ADMIN, &password).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let lines: Vec<&str> = answer.text.lines().collect();
        assert_eq!(lines.len(), 3, "{}", answer.text);
        assert_eq!(lines[1], "LSID=null");
        let auth = lines[2].strip_prefix("Auth=").unwrap();
        assert!(!auth.contains('='), "NetNewsWire splits on '=': {auth}");
        assert_eq!(lines[0], format!("SID={auth}"));
    }
    let json = reqwest::Client::new()
        .post(format!("{base}/accounts/ClientLogin?output=json"))
        .form(&[("Email", ADMIN), ("Passwd", token.as_str())])
        .send()
        .await
        .unwrap();
    let json: Value = json.json().await.unwrap();
    assert_eq!(json["Auth"], json["SID"]);

    let reader = GReader::login(&base, ADMIN, &token).await;
    let edit_token = reader.get("token", &[]).await;
    assert_eq!(edit_token.status, StatusCode::OK);
    assert!(edit_token.text.ends_with('\n') && edit_token.text.len() > 20);
    let info = reader.get("user-info", &[]).await.json();
    assert_eq!(info["userName"], ADMIN);

    // A wrong token: 401 with the header clients look for.
    let wrong = GReader::with_token(&base, "root~0000");
    let answer = wrong.get("subscription/list", &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header("X-Reader-Google-Bad-Token"), "true");
    assert!(answer.text.contains("app password"), "{}", answer.text);

    // CORS, the probe and the alias.
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/reader/api/0/edit-tag"),
        )
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
    let probe = reqwest::get(format!("{base}/api/greader.php"))
        .await
        .unwrap();
    assert_eq!(probe.status(), StatusCode::OK);
    assert_eq!(probe.text().await.unwrap(), "OK");
    let alias = GReader::login(&format!("{base}/api/greader.php"), ADMIN, &token).await;
    assert_eq!(alias.get("tag/list", &[]).await.status, StatusCode::OK);
    let unknown = reader.get("preference/stream/list", &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_sync_sees_and_changes_the_same_state_as_the_browser() {
    let stack = local_stack().await;
    let token = app_password(&stack).await;
    let reader = GReader::login(&stack.edge.url(""), ADMIN, &token).await;
    let feed = stack.feeds.url("/generated/7");

    let added = reader
        .post("subscription/quickadd", &[("quickadd", &feed), ("T", "")])
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    let added = added.json();
    assert_eq!(added["numResults"], 1);
    let stream = added["streamId"].as_str().unwrap().to_owned();
    assert!(stream.starts_with("feed/") && stream[5..].parse::<u64>().is_ok());
    let bad = reader
        .post("subscription/quickadd", &[("quickadd", "not a url")])
        .await
        .json();
    assert_eq!(bad["numResults"], 0);
    assert!(bad["error"].as_str().is_some());

    let list = reader.get("subscription/list", &[]).await.json();
    let subscription = &list["subscriptions"][0];
    assert_eq!(subscription["id"], stream);
    assert_eq!(subscription["url"], feed);
    assert_eq!(
        subscription["categories"],
        json!([{"id": "user/-/label/Feeds", "label": "Feeds"}])
    );
    let tags = reader.get("tag/list", &[]).await.json();
    assert_eq!(
        tags["tags"][1],
        json!({"id": "user/-/label/Feeds", "type": "folder"})
    );

    // Paging with continuations, newest first and oldest first.
    let (ids, pages) = reader.all_ids(&[("s", READING_LIST)], 3).await;
    assert_eq!((ids.len(), pages), (7, 3));
    let numbers: Vec<u64> = ids.iter().map(|id| id.parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "newest first");
    let (oldest_first, _) = reader.all_ids(&[("s", &stream), ("r", "o")], 2).await;
    assert_eq!(oldest_first, ids.iter().rev().cloned().collect::<Vec<_>>());

    // Contents by every id form clients send.
    let id = numbers[0];
    let forms = [
        id.to_string(),
        long_id(id),
        format!("tag:google.com,2005:reader/item/{id:x}"),
        format!("{id:016x}"),
    ];
    let items = reader.contents(&forms).await;
    assert_eq!(items.len(), 4);
    for item in &items {
        assert_eq!(item["id"], forms[1]);
        assert_eq!(item["origin"]["streamId"], stream);
        assert!(has_category(item, READING_LIST) && !has_category(item, READ));
    }
    // The stream in the path, percent-encoded.
    let path = format!("stream/contents/{}", stream.replace('/', "%2F"));
    let page = reader.get(&path, &[("n", "5")]).await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let continuation = page["continuation"].as_str().unwrap().to_owned();
    let rest = reader
        .get(&path, &[("n", "5"), ("c", &continuation)])
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest.get("continuation").is_none(), "the last page has none");

    // An app marks read and starred: the browser's API sees it.
    let marked = reader.edit_tag(&forms[1..2], &[READ], &[]).await;
    assert_eq!(
        (marked.status, marked.text.as_str()),
        (StatusCode::OK, "OK")
    );
    let starred = reader
        .edit_tag(&[numbers[1].to_string()], &[STARRED], &[])
        .await;
    assert_eq!(starred.status, StatusCode::OK);
    let web = edge_items(&stack, &token).await;
    let web_item = |id: u64| {
        web.iter()
            .find(|i| i["id"].as_str() == Some(id.to_string().as_str()))
            .unwrap()
            .clone()
    };
    assert_eq!(web_item(numbers[0])["read"], true);
    assert_eq!(web_item(numbers[1])["starred"], true);
    // The browser marks one read: the app sees it.
    let marked = reqwest::Client::new()
        .put(stack.edge.url(&format!("/api/items/{}", numbers[2])))
        .bearer_auth(&token)
        .json(&json!({"read": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), StatusCode::OK);
    let (unread, _) = reader
        .all_ids(&[("s", READING_LIST), ("xt", READ)], 100)
        .await;
    assert_eq!(unread.len(), 5);
    assert!(!unread.contains(&numbers[0].to_string()) && !unread.contains(&numbers[2].to_string()));
    let (read, _) = reader.all_ids(&[("s", READ)], 100).await;
    assert_eq!(read.len(), 2);
    let (stars, _) = reader.all_ids(&[("s", STARRED)], 100).await;
    assert_eq!(stars, [numbers[1].to_string()]);
    let (stars, _) = reader
        .all_ids(&[("s", READING_LIST), ("it", STARRED)], 100)
        .await;
    assert_eq!(stars, [numbers[1].to_string()]);

    let counts = reader.get("unread-count", &[]).await.json();
    let count_of = |id: &str| {
        counts["unreadcounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["count"]
            .clone()
    };
    assert_eq!(count_of(&stream), 5);
    assert_eq!(count_of(READING_LIST), 5);

    // `ot` is on crawl time: everything was crawled just now.
    let an_hour_ago = (chrono::Utc::now().timestamp() - 3600).to_string();
    let in_an_hour = (chrono::Utc::now().timestamp() + 3600).to_string();
    assert_eq!(
        reader.all_ids(&[("ot", &an_hour_ago)], 100).await.0.len(),
        7
    );
    assert!(
        reader
            .all_ids(&[("ot", &in_an_hour)], 100)
            .await
            .0
            .is_empty()
    );

    // Mark all read: before a time (nothing crawled then), then all.
    let marked = reader
        .post("mark-all-as-read", &[("s", &stream), ("ts", &an_hour_ago)])
        .await;
    assert_eq!(marked.status, StatusCode::OK, "{}", marked.text);
    assert_eq!(reader.all_ids(&[("xt", READ)], 100).await.0.len(), 5);
    let ts_micros = format!("{}000000", in_an_hour);
    reader
        .post(
            "mark-all-as-read",
            &[("s", READING_LIST), ("ts", &ts_micros)],
        )
        .await;
    assert!(reader.all_ids(&[("xt", READ)], 100).await.0.is_empty());
    assert!(
        edge_items(&stack, &token)
            .await
            .iter()
            .all(|i| i["read"] == true)
    );

    // Folders and renames are refused, not pretended.
    let folder = reader
        .post(
            "subscription/edit",
            &[("ac", "edit"), ("s", &stream), ("a", "user/-/label/Tech")],
        )
        .await;
    assert_eq!(folder.status, StatusCode::BAD_REQUEST);
    assert!(folder.text.contains("folders"), "{}", folder.text);
    let gone = reader
        .post(
            "subscription/edit",
            &[("ac", "unsubscribe"), ("s", &stream)],
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    let list = reader.get("subscription/list", &[]).await.json();
    assert_eq!(list["subscriptions"], json!([]));
}

#[tokio::test]
async fn a_thousand_ids_in_one_edit_and_bodies_up_to_two_mib() {
    let stack = local_stack().await;
    let token = app_password(&stack).await;
    let reader = GReader::login(&stack.edge.url(""), ADMIN, &token).await;
    let feed = stack.feeds.url("/generated/50");
    reader
        .post("subscription/quickadd", &[("quickadd", &feed)])
        .await;
    let (ids, _) = reader.all_ids(&[], 1000).await;
    assert_eq!(ids.len(), 50);
    // NetNewsWire's 1000 long ids (the other 950 name no item: skipped).
    let mut long: Vec<String> = ids.iter().map(|id| long_form(id)).collect();
    long.extend((1..=950).map(long_id));
    let answer = reader.edit_tag(&long, &[READ], &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(reader.all_ids(&[("xt", READ)], 1000).await.0.is_empty());

    let huge = "x".repeat(2 * 1024 * 1024 + 1);
    let too_big = reader.post("edit-tag", &[("i", &huge)]).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let label = reader
        .edit_tag(&ids[..1], &[READ, "user/-/label/Later"], &[])
        .await;
    assert_eq!(
        label.status,
        StatusCode::BAD_REQUEST,
        "refused, not half done"
    );
    assert!(label.text.contains("labels on items"), "{}", label.text);
    let bad = reader.edit_tag(&["nope".to_owned()], &[READ], &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("not an item id"), "{}", bad.text);
}

#[tokio::test]
async fn a_revoked_app_password_is_refused_within_a_minute_on_every_edge() {
    let stack = local_stack().await;
    let token = app_password(&stack).await;
    let reader = GReader::login(&stack.edge.url(""), ADMIN, &token).await;
    assert_eq!(reader.get("tag/list", &[]).await.status, StatusCode::OK);
    // Revoked where this edge cannot see it (another edge, or an admin
    // script): the account changes at the middletier only.
    let middletier = &stack.middletiers[0];
    let (_, mut account) = middletier
        .get(&format!("/middletier/accounts/{ADMIN}"))
        .await;
    account["app_passwords"] = json!([]);
    let updated = reqwest::Client::new()
        .put(middletier.url(&format!("/middletier/accounts/{ADMIN}")))
        .json(&account)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    eventually(
        "the revoked token is refused",
        Duration::from_secs(60),
        || async {
            let answer = reader.get("tag/list", &[]).await;
            (answer.status == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn with_the_middletier_down_the_answer_is_503_never_a_saved_copy() {
    let mut stack = TestStack::start(1, &[], &[]).await;
    let feed = stack.feeds.url("/generated/3");
    assert_eq!(stack.edge.subscribe(&feed).await.0, StatusCode::OK);
    // `--auth none`: any token is the default user.
    let reader = GReader::with_token(&stack.edge.url(""), "default~x");
    assert_eq!(reader.all_ids(&[], 10).await.0.len(), 3);
    // Without tokens (`--auth none`), another site's page may not post.
    let forged = reqwest::Client::new()
        .post(stack.edge.url("/reader/api/0/edit-tag"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("i", "1"), ("a", READ)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The browser's listing is saved for its fallback; a sync never sees it.
    assert_eq!(stack.edge.listing().await.subscriptions.len(), 1);
    stack.middletiers.remove(0).running.stop().await;
    for path in ["stream/items/ids", "subscription/list", "unread-count"] {
        let answer = reader.get(path, &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            answer.text
        );
        assert!(
            answer.header("Retry-After").parse::<u64>().is_ok(),
            "{path}"
        );
    }
    let edit = reader.edit_tag(&["1".to_owned()], &[READ], &[]).await;
    assert_eq!(edit.status, StatusCode::SERVICE_UNAVAILABLE);
    // Each call is its own command on the dashboard.
    for name in ["GReaderIds", "GReaderFeeds", "GReaderEdit"] {
        assert_eq!(stack.edge.command(name).await["name"], name);
    }
}
