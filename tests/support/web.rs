//! A browser without the rendering: keeps cookies, follows nothing by
//! itself, and can fill in the reader's forms (CSRF token included).

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the hidden `csrf` field.
    pub(crate) fn csrf(&self) -> String {
        let marker = r#"name="csrf" value=""#;
        let start = self.body.find(marker).expect("the page has a CSRF field") + marker.len();
        let end = self.body[start..].find('"').expect("closing quote");
        self.body[start..start + end].to_owned()
    }

    pub(crate) fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }
}

pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
    extra: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
            extra: Vec::new(),
        }
    }

    /// Sends this header with every request (e.g. an auth proxy's).
    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts a form; `csrf` is added from the cookie-bound page token.
    pub(crate) async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(fields);
        self.send(request).await
    }

    /// Uploads a file as a browser's `multipart/form-data` form does, with
    /// the page's CSRF token.
    pub(crate) async fn upload(&mut self, path: &str, field: &str, file: &str) -> Page {
        let csrf = self.get("/").await.csrf();
        let boundary = "----rss-recipes-test-boundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"feeds.opml\"\r\n\
             Content-Type: text/x-opml\r\n\r\n{file}\r\n--{boundary}--\r\n"
        );
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(request).await
    }

    /// Posts a form and follows the redirect back to the page.
    pub(crate) async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get("/").await.csrf();
        let mut with_token: Vec<(&str, &str)> = fields.to_vec();
        with_token.push(("csrf", &csrf));
        let posted = self.post_form(path, &with_token).await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
        let location = posted.location().expect("a redirect").to_owned();
        self.get(&location).await
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in &self.extra {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.expect("the edge answers");
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(SET_COOKIE) {
            let text = set.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = text.to_ascii_lowercase().contains("max-age=0");
                if expired || value.is_empty() {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }
}

/// `GET url` with an app password as `Authorization: Bearer`.
pub(crate) async fn get_with_app_password(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("the edge answers")
}

/// The feed URLs of a `{"user", "subscriptions"}` answer, in order.
pub(crate) fn subscription_urls(body: &serde_json::Value) -> Vec<String> {
    body["subscriptions"]
        .as_array()
        .expect("a subscriptions list")
        .iter()
        .map(|s| s["url"].as_str().expect("each has a url").to_owned())
        .collect()
}

/// GETs `url` and decodes its JSON body. Asks for JSON explicitly, which
/// the registry needs (it answers XML otherwise) and others ignore.
pub(crate) async fn get_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    reqwest::Client::new()
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .expect("the service answers")
        .json()
        .await
        .expect("a JSON body")
}

/// GETs `url` and returns its body as text (a page, or metrics).
pub(crate) async fn get_text(url: impl reqwest::IntoUrl) -> String {
    reqwest::get(url)
        .await
        .expect("the service answers")
        .text()
        .await
        .expect("a text body")
}

/// Signs in at `base` with the login form and makes an app password on the
/// settings page, as a person does; the token it shows once.
pub(crate) async fn new_app_password(
    base: &str,
    user: &str,
    password: &str,
    label: &str,
) -> String {
    let mut browser = Browser::new(base);
    let csrf = browser.get("/login").await.csrf();
    let signed_in = browser
        .post_form(
            "/login",
            &[("username", user), ("password", password), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let csrf = browser.get("/settings").await.csrf();
    let page = browser
        .post_form(
            "/settings/app-passwords",
            &[("label", label), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    shown_secret(&page)
}

/// The app password a settings page shows once.
pub(crate) fn shown_secret(page: &Page) -> String {
    let marker = r#"<code class="secret">"#;
    let start = page.body.find(marker).expect("a new token") + marker.len();
    let end = page.body[start..].find("</code>").expect("the token's end");
    page.body[start..start + end].to_owned()
}
