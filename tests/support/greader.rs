//! A raw-HTTP Google Reader client for tests and benches: what the apps
//! send, spelt out, so a test can send exactly one quirk (the Python
//! client in `interop/python/greader_sync.py` is the real library).

use reqwest::StatusCode;
use serde_json::Value;

/// Signed in to one edge (or any base URL, e.g. `.../api/greader.php`).
#[derive(Debug, Clone)]
pub(crate) struct GReader {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

/// An answer: status, body as text, and the headers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// `POST {base}/accounts/ClientLogin`.
pub(crate) async fn client_login(base: &str, user: &str, password: &str) -> Reply {
    let answer = reqwest::Client::new()
        .post(format!("{base}/accounts/ClientLogin"))
        .form(&[("Email", user), ("Passwd", password)])
        .send()
        .await
        .unwrap();
    reply(answer).await
}

async fn reply(answer: reqwest::Response) -> Reply {
    Reply {
        status: answer.status(),
        headers: answer.headers().clone(),
        text: answer.text().await.unwrap(),
    }
}

impl GReader {
    /// Signs in; panics unless it works.
    pub(crate) async fn login(base: &str, user: &str, password: &str) -> GReader {
        let answer = client_login(base, user, password).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let token = answer
            .text
            .lines()
            .find_map(|line| line.strip_prefix("Auth="))
            .expect("an Auth line")
            .to_owned();
        GReader::with_token(base, &token)
    }

    /// A client that sends `token` as is.
    pub(crate) fn with_token(base: &str, token: &str) -> GReader {
        GReader {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(8)
                .build()
                .unwrap(),
        }
    }

    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("Authorization", format!("GoogleLogin auth={}", self.token))
    }

    /// `GET {base}/reader/api/0/{path}` with `query` (and `output=json`).
    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> Reply {
        let mut query = query.to_vec();
        query.push(("output", "json"));
        let request = self
            .http
            .get(format!("{}/reader/api/0/{path}", self.base))
            .query(&query);
        reply(self.auth(request).send().await.unwrap()).await
    }

    /// `POST {base}/reader/api/0/{path}` with a form body.
    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(format!("{}/reader/api/0/{path}", self.base))
            .query(&[("output", "json")])
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        reply(self.auth(request).send().await.unwrap()).await
    }

    /// Every id of a stream, following continuations, `n` per page; with
    /// the number of pages.
    pub(crate) async fn all_ids(&self, query: &[(&str, &str)], n: usize) -> (Vec<String>, usize) {
        let (ids, pages, _) = self.id_pages(query, n).await;
        (ids, pages)
    }

    /// Like [`GReader::all_ids`], with the bytes of the answers too.
    pub(crate) async fn id_pages(
        &self,
        query: &[(&str, &str)],
        n: usize,
    ) -> (Vec<String>, usize, usize) {
        let (mut ids, mut pages, mut bytes) = (Vec::new(), 0, 0);
        let mut continuation = None::<String>;
        loop {
            let n = n.to_string();
            let mut page: Vec<(&str, &str)> = query.to_vec();
            page.push(("n", &n));
            if let Some(c) = &continuation {
                page.push(("c", c));
            }
            let answer = self.get("stream/items/ids", &page).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            let body = answer.json();
            pages += 1;
            bytes += answer.text.len();
            ids.extend(
                body["itemRefs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned()),
            );
            match body["continuation"].as_str() {
                Some(c) => continuation = Some(c.to_owned()),
                None => return (ids, pages, bytes),
            }
        }
    }

    /// The items of `ids` whole, asked for in one call.
    pub(crate) async fn contents(&self, ids: &[String]) -> Vec<Value> {
        let mut form: Vec<(&str, &str)> = ids.iter().map(|id| ("i", id.as_str())).collect();
        form.push(("T", "x"));
        let answer = self.post("stream/items/contents", &form).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()["items"].as_array().unwrap().clone()
    }

    /// `edit-tag` on `ids`: `a` and `r` tags.
    pub(crate) async fn edit_tag(&self, ids: &[String], add: &[&str], remove: &[&str]) -> Reply {
        let mut form: Vec<(&str, &str)> = ids.iter().map(|id| ("i", id.as_str())).collect();
        form.extend(add.iter().map(|tag| ("a", *tag)));
        form.extend(remove.iter().map(|tag| ("r", *tag)));
        self.post("edit-tag", &form).await
    }
}

/// The stream and state ids tests use.
pub(crate) const READING_LIST: &str = "user/-/state/com.google/reading-list";
pub(crate) const READ: &str = "user/-/state/com.google/read";
pub(crate) const STARRED: &str = "user/-/state/com.google/starred";

/// An item id's long form, as most clients send it (padded hex).
pub(crate) fn long_id(id: u64) -> String {
    format!("tag:google.com,2005:reader/item/{id:016x}")
}

/// The long form of a decimal id from `stream/items/ids`.
pub(crate) fn long_form(decimal: &str) -> String {
    long_id(decimal.parse().expect("a decimal item id"))
}

/// Whether an item's `categories` hold `tag`.
pub(crate) fn has_category(item: &Value, tag: &str) -> bool {
    item["categories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == tag)
}

/// The admin a sync test signs in as (`--auth local`).
pub(crate) const SYNC_ADMIN: &str = "reader";
pub(crate) const SYNC_ADMIN_PASSWORD: &str = "a long enough password";

/// The edge flags for [`python_sync`]'s stack.
pub(crate) const SYNC_EDGE_ARGS: [&str; 6] = [
    "--auth",
    "local",
    "--admin-username",
    SYNC_ADMIN,
    "--admin-password",
    SYNC_ADMIN_PASSWORD,
];

/// A whole sync by the real `google-reader` Python library
/// (`interop/python/greader_sync.py`) against `stack` (its edge started
/// with [`SYNC_EDGE_ARGS`]), restarting the edge halfway: sign in, add a
/// feed of 25 items, list, page ids 10 at a time; restart; carry on from
/// the continuation, fetch every item in batches of 150, mark read and
/// starred, mark all read; then the same state through the edge's JSON API.
pub(crate) async fn python_sync(stack: &mut super::stack::Stack) {
    let base = stack.edge.url("");
    let middletier = stack.middletiers[0].url(&format!("/middletier/accounts/{SYNC_ADMIN}"));
    super::eventually(
        "the first admin exists",
        std::time::Duration::from_secs(30),
        || async {
            let status = reqwest::get(&middletier).await.ok()?.status();
            (status == StatusCode::OK).then_some(())
        },
    )
    .await;
    let password =
        super::web::new_app_password(&base, SYNC_ADMIN, SYNC_ADMIN_PASSWORD, "python").await;
    let feed = stack.feeds.url("/generated/25?feed=sync");

    let started = run_python(&["start", &base, SYNC_ADMIN, &password, &feed, "10"]).await;
    assert_eq!(started["user"], SYNC_ADMIN, "{started}");
    assert_eq!(started["added"]["num_results"], 1, "{started}");
    let stream = started["added"]["stream_id"].as_str().unwrap().to_owned();
    let subscriptions = started["subscriptions"].as_array().unwrap();
    assert_eq!(subscriptions.len(), 1, "{started}");
    assert_eq!(subscriptions[0]["id"], stream.as_str());
    assert_eq!(subscriptions[0]["url"], feed.as_str());
    assert_eq!(subscriptions[0]["categories"][0], "user/-/label/Feeds");
    let tags = started["tags"].as_array().unwrap();
    assert!(tags.iter().any(|t| t == STARRED), "{started}");
    let first: Vec<String> = strings(&started["first_ids"]);
    assert_eq!(first.len(), 10, "{started}");
    let continuation = started["continuation"].as_str().unwrap().to_owned();
    assert!(!continuation.is_empty(), "{started}");

    // The edge goes away mid-sync; the token and the continuation stay good.
    stack.restart_edge().await;
    let token = started["token"].as_str().unwrap();
    let finished = run_python(&["finish", &base, token, &stream, &continuation, "10"]).await;
    let all = strings(&finished["all_ids"]);
    assert_eq!(all.len(), 25, "{finished}");
    assert_eq!(finished["pages"], 3);
    let resumed: Vec<String> = first
        .iter()
        .chain(&strings(&finished["rest_ids"]))
        .cloned()
        .collect();
    assert_eq!(
        resumed, all,
        "the continuation carried on exactly where it was"
    );
    let items = finished["items"].as_array().unwrap();
    assert_eq!(items.len(), 25);
    for item in items {
        assert_eq!(item["origin"], stream.as_str(), "{item}");
        assert_eq!(item["has_content"], true, "{item}");
        assert!(item["title"].as_str().unwrap().starts_with("Post number"));
    }
    let unread = strings(&finished["unread"]);
    assert_eq!(unread.len(), 23, "two marked read: {finished}");
    assert!(!unread.contains(&all[0]) && !unread.contains(&all[1]));
    assert_eq!(strings(&finished["starred"]), [all[2].clone()]);
    assert!(strings(&finished["unread_after_mark_all"]).is_empty());

    // One state, two APIs.
    let listing: Value =
        super::web::get_with_app_password(&stack.edge.url("/api/subscriptions"), &password)
            .await
            .json()
            .await
            .unwrap();
    let web = listing["subscriptions"][0]["items"].as_array().unwrap();
    assert_eq!(web.len(), 25);
    assert!(web.iter().all(|i| i["read"] == true), "{listing}");
    let starred: Vec<&Value> = web.iter().filter(|i| i["starred"] == true).collect();
    assert_eq!(starred.len(), 1);
    assert_eq!(starred[0]["id"], all[2].as_str());
}

fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Runs `interop/python/greader_sync.py` with `args`; its JSON.
async fn run_python(args: &[&str]) -> Value {
    let python = super::peers::interop_python();
    let script = super::peers::repo_file("interop/python/greader_sync.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "greader_sync.py {}: {}\n{stdout}\n{}",
        args[0],
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
