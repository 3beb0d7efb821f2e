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
        let (mut ids, mut pages, mut continuation) = (Vec::new(), 0, None::<String>);
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
            ids.extend(
                body["itemRefs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned()),
            );
            match body["continuation"].as_str() {
                Some(c) => continuation = Some(c.to_owned()),
                None => return (ids, pages),
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

/// Whether an item's `categories` hold `tag`.
pub(crate) fn has_category(item: &Value, tag: &str) -> bool {
    item["categories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == tag)
}
