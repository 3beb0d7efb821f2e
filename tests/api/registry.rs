//! The registry's Eureka REST API, as standard clients use it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Format, record, spawn_registry};

#[tokio::test]
async fn every_eureka_path_also_answers_with_a_trailing_slash_in_json_and_xml() {
    let registry = spawn_registry(&[]).await;
    for base in ["/eureka/v2/", "/eureka/"] {
        let id = format!("a{}", base.len());
        assert_eq!(
            registry
                .register(base, "SLASHED/", record("SLASHED", &id, 9191))
                .await,
            StatusCode::NO_CONTENT
        );
        for format in Format::BOTH {
            for path in [
                "apps/".to_owned(),
                "apps/delta/".to_owned(),
                "apps/SLASHED/".to_owned(),
                format!("apps/SLASHED/{id}/"),
                format!("instances/{id}/"),
                "vips/slashed/".to_owned(),
                "svips/slashed/".to_owned(),
            ] {
                let answer = registry
                    .call(Method::GET, &format!("{base}{path}"), format)
                    .await;
                assert_eq!(answer.status, StatusCode::OK, "GET {base}{path} {format:?}");
                assert!(
                    answer.body.contains(&id),
                    "GET {base}{path} {format:?}: {}",
                    answer.body
                );
            }
        }
        for (method, path) in [
            (Method::PUT, format!("apps/SLASHED/{id}/?status=UP")),
            (
                Method::PUT,
                format!("apps/SLASHED/{id}/status/?value=OUT_OF_SERVICE"),
            ),
            (Method::DELETE, format!("apps/SLASHED/{id}/status/")),
            (Method::PUT, format!("apps/SLASHED/{id}/metadata/?zone=a")),
            (Method::DELETE, format!("apps/SLASHED/{id}/")),
        ] {
            let answer = registry
                .call(method.clone(), &format!("{base}{path}"), Format::Json)
                .await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{method} {base}{path}: {}",
                answer.body
            );
        }
    }
}

#[tokio::test]
async fn a_record_cannot_make_a_browser_run_a_script_on_the_registry() {
    let registry = spawn_registry(&[]).await;
    let mut evil = record("EVIL", "evil-1", 80);
    evil["@xmlns"] = json!("http://www.w3.org/1999/xhtml");
    evil["script"] = json!("alert(document.domain)");
    assert_eq!(
        registry.register("/eureka/v2/", "EVIL", evil).await,
        StatusCode::NO_CONTENT
    );
    // What a browser gets when someone opens the link: XML, the default.
    let page = registry
        .call(Method::GET, "/eureka/v2/apps/EVIL/evil-1", Format::Xml)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains(" xmlns"),
        "no namespace is declared: {}",
        page.body
    );
    assert!(
        page.body.contains("alert(document.domain)"),
        "the field is still echoed"
    );
    for path in [
        "/eureka/v2/apps/EVIL/evil-1",
        "/eureka/v2/apps",
        "/eureka/v2/nowhere",
    ] {
        for format in Format::BOTH {
            let answer = registry.call(Method::GET, path, format).await;
            assert_eq!(answer.header("x-content-type-options"), "nosniff", "{path}");
            assert!(
                answer
                    .header("content-security-policy")
                    .starts_with("default-src 'none'"),
                "{path}: {:?}",
                answer.header("content-security-policy")
            );
        }
    }
}

#[tokio::test]
async fn the_home_page_allows_only_its_own_stylesheet() {
    let registry = spawn_registry(&[]).await;
    let page = registry.call(Method::GET, "/", Format::Xml).await;
    assert_eq!(page.status, StatusCode::OK);
    let policy = page.header("content-security-policy");
    assert!(
        policy.starts_with("default-src 'none'; style-src 'self'"),
        "{policy}"
    );
    assert!(
        !policy.contains("script-src") && !policy.contains("unsafe"),
        "{policy}"
    );
    assert!(!page.body.contains("<style") && !page.body.contains("<script"));
    assert!(page.body.contains(r#"href="/registry.css""#));
    let css = registry
        .call(Method::GET, "/registry.css", Format::Xml)
        .await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
}

/// `versions__delta` of a full fetch.
async fn version_of(registry: &crate::helpers::TestRegistry) -> u64 {
    let body: serde_json::Value = reqwest::Client::new()
        .get(registry.url("/eureka/v2/apps"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["applications"]["versions__delta"]
        .as_str()
        .map(|v| v.parse().unwrap())
        .or_else(|| body["applications"]["versions__delta"].as_u64())
        .unwrap()
}

async fn watch(
    registry: &crate::helpers::TestRegistry,
    query: &str,
) -> (StatusCode, serde_json::Value) {
    let answer = reqwest::get(registry.url(&format!("/eureka/v2/apps/watch?{query}")))
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap())
}

#[tokio::test]
async fn a_watch_answers_when_the_registry_changes_and_not_before() {
    let registry = spawn_registry(&[]).await;
    let version = version_of(&registry).await;

    // Behind: answered at once with the current version.
    let (status, body) = watch(&registry, &format!("version={}", version - 1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], version);
    // Current, nothing changes: held until its timeout, same version.
    let (_, body) = watch(&registry, &format!("version={version}&timeout=1")).await;
    assert_eq!(body["version"], version);

    // Current, then a registration: answered with the new version (its
    // timeout, 60 s, is far off).
    let waiting = {
        let url = registry.url(&format!(
            "/eureka/v2/apps/watch?version={version}&timeout=60"
        ));
        tokio::spawn(async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "held while nothing changes");
    assert_eq!(
        registry
            .register("/eureka/v2/", "WATCHED", record("WATCHED", "w1", 9191))
            .await,
        StatusCode::NO_CONTENT
    );
    let woken = tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
        .await
        .expect("the watch answered before its timeout")
        .unwrap();
    let after = version_of(&registry).await;
    assert!(after > version);
    assert_eq!(woken["version"], after);

    let (status, body) = watch(&registry, "version=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("version="),
        "{body}"
    );
}
