//! The behavioural suite every store passes.
//!
//! A store's test module calls [`behaves_like_a_store!`] with an async
//! expression that makes a fresh, empty store and something to keep alive
//! beside it (a temporary directory, or `()`); the macro expands to one
//! `#[tokio::test]` per behaviour, so a failure names the behaviour broken.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use common::api::{FeedUrl, UserId};

use super::SubscriptionStore;

/// `$make` evaluates to a future of `(store, guard)`. Nothing is skipped:
/// a store that needs a server (Cassandra) starts one for its tests.
macro_rules! behaves_like_a_store {
    ($make:expr) => {
        $crate::store::suite::behaves_like_a_store!(@tests $make;
            a_new_user_has_no_subscriptions,
            an_added_subscription_is_listed,
            adding_twice_keeps_one_entry_in_its_place,
            subscriptions_are_listed_oldest_first,
            removing_deletes_only_that_feed,
            removing_what_is_not_there_succeeds,
            users_do_not_see_each_others_feeds,
            concurrent_adds_are_all_kept,
            urls_round_trip_exactly,
            a_working_store_reports_healthy,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _keep_alive) = $make.await;
                $crate::store::suite::$name(::std::sync::Arc::new(store)).await;
            }
        )*
    };
}
pub(crate) use behaves_like_a_store;

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn url(raw: &str) -> FeedUrl {
    FeedUrl::parse(raw).unwrap()
}

async fn urls_of(store: &dyn SubscriptionStore, id: &str) -> Vec<String> {
    store
        .list(&user(id))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.url.to_string())
        .collect()
}

pub(crate) async fn a_new_user_has_no_subscriptions(store: Arc<impl SubscriptionStore>) {
    assert!(store.list(&user("nobody")).await.unwrap().is_empty());
}

pub(crate) async fn an_added_subscription_is_listed(store: Arc<impl SubscriptionStore>) {
    let before = Utc::now() - chrono::Duration::seconds(1);
    store
        .add(&user("alice"), &url("https://example.com/feed.xml"))
        .await
        .unwrap();
    let listed = store.list(&user("alice")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].url.as_str(), "https://example.com/feed.xml");
    assert!(
        listed[0].added_at >= before
            && listed[0].added_at <= Utc::now() + chrono::Duration::seconds(1)
    );
}

pub(crate) async fn adding_twice_keeps_one_entry_in_its_place(store: Arc<impl SubscriptionStore>) {
    let alice = user("alice");
    store
        .add(&alice, &url("https://a.example/feed"))
        .await
        .unwrap();
    store
        .add(&alice, &url("https://b.example/feed"))
        .await
        .unwrap();
    store
        .add(&alice, &url("https://a.example/feed"))
        .await
        .unwrap();
    assert_eq!(
        urls_of(&*store, "alice").await,
        ["https://a.example/feed", "https://b.example/feed"]
    );
}

pub(crate) async fn subscriptions_are_listed_oldest_first(store: Arc<impl SubscriptionStore>) {
    let alice = user("alice");
    // Deliberately not in alphabetical order, so a store sorting by URL fails.
    let added = [
        "https://z.example/",
        "https://a.example/",
        "https://m.example/",
    ];
    for raw in added {
        store.add(&alice, &url(raw)).await.unwrap();
        // Stores may keep millisecond timestamps; keep the order unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(urls_of(&*store, "alice").await, added);
}

pub(crate) async fn removing_deletes_only_that_feed(store: Arc<impl SubscriptionStore>) {
    let alice = user("alice");
    store.add(&alice, &url("https://a.example/")).await.unwrap();
    store.add(&alice, &url("https://b.example/")).await.unwrap();
    store
        .remove(&alice, &url("https://a.example/"))
        .await
        .unwrap();
    assert_eq!(urls_of(&*store, "alice").await, ["https://b.example/"]);
}

pub(crate) async fn removing_what_is_not_there_succeeds(store: Arc<impl SubscriptionStore>) {
    store
        .remove(&user("alice"), &url("https://never.example/"))
        .await
        .unwrap();
    store
        .add(&user("alice"), &url("https://a.example/"))
        .await
        .unwrap();
    store
        .remove(&user("alice"), &url("https://never.example/"))
        .await
        .unwrap();
    assert_eq!(urls_of(&*store, "alice").await, ["https://a.example/"]);
}

pub(crate) async fn users_do_not_see_each_others_feeds(store: Arc<impl SubscriptionStore>) {
    store
        .add(&user("alice"), &url("https://a.example/"))
        .await
        .unwrap();
    store
        .add(&user("bob"), &url("https://b.example/"))
        .await
        .unwrap();
    store
        .remove(&user("bob"), &url("https://a.example/"))
        .await
        .unwrap();
    assert_eq!(urls_of(&*store, "alice").await, ["https://a.example/"]);
    assert_eq!(urls_of(&*store, "bob").await, ["https://b.example/"]);
}

pub(crate) async fn concurrent_adds_are_all_kept(store: Arc<impl SubscriptionStore>) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .add(&user("busy"), &url(&format!("https://example.com/{i}.xml")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let listed: HashSet<String> = urls_of(&*store, "busy").await.into_iter().collect();
    assert_eq!(listed.len(), 50);
}

pub(crate) async fn urls_round_trip_exactly(store: Arc<impl SubscriptionStore>) {
    let odd = [
        "https://example.com/feed?format=rss&lang=en",
        "https://example.com/caf%C3%A9/feed.xml",
        "https://xn--bcher-kva.example/feed",
        "http://example.com:8080/a;b/feed'x",
    ];
    for raw in odd {
        store.add(&user("alice"), &url(raw)).await.unwrap();
    }
    let expected: Vec<String> = odd.iter().map(|raw| url(raw).to_string()).collect();
    assert_eq!(urls_of(&*store, "alice").await, expected);
    for raw in odd {
        store.remove(&user("alice"), &url(raw)).await.unwrap();
    }
    assert!(urls_of(&*store, "alice").await.is_empty());
}

pub(crate) async fn a_working_store_reports_healthy(store: Arc<impl SubscriptionStore>) {
    store.check().await.unwrap();
    assert!(!store.name().is_empty());
}
