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

use super::{FeedRecord, FeedUpdate, ItemId, StarredItem, Store, StoredItem};

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
            subscribers_are_tracked_per_feed,
            a_feed_is_created_once_and_scheduled,
            a_fetch_stores_the_record_and_items_newest_first,
            feeds_are_read_with_their_items_in_one_call,
            a_sync_reads_ids_and_items_and_edits_state_in_bulk,
            items_are_replaced_by_key_and_removed,
            an_item_stored_twice_at_once_keeps_its_first_id,
            deleting_a_feed_forgets_its_items_only,
            ids_are_unique_and_ascending,
            read_state_is_a_watermark_with_overrides,
            racing_marks_leave_the_higher_watermark,
            unsubscribing_forgets_the_read_state_of_that_feed,
            starred_items_are_kept_whole_and_newest_first,
            an_account_is_created_once_and_listed_by_name,
            an_account_is_updated_only_while_it_exists,
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

async fn urls_of(store: &dyn Store, id: &str) -> Vec<String> {
    store
        .list(&user(id))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.url.to_string())
        .collect()
}

pub(crate) async fn a_new_user_has_no_subscriptions(store: Arc<impl Store>) {
    assert!(store.list(&user("nobody")).await.unwrap().is_empty());
}

pub(crate) async fn an_added_subscription_is_listed(store: Arc<impl Store>) {
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

pub(crate) async fn adding_twice_keeps_one_entry_in_its_place(store: Arc<impl Store>) {
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

pub(crate) async fn subscriptions_are_listed_oldest_first(store: Arc<impl Store>) {
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

pub(crate) async fn removing_deletes_only_that_feed(store: Arc<impl Store>) {
    let alice = user("alice");
    store.add(&alice, &url("https://a.example/")).await.unwrap();
    store.add(&alice, &url("https://b.example/")).await.unwrap();
    store
        .remove(&alice, &url("https://a.example/"))
        .await
        .unwrap();
    assert_eq!(urls_of(&*store, "alice").await, ["https://b.example/"]);
}

pub(crate) async fn removing_what_is_not_there_succeeds(store: Arc<impl Store>) {
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

pub(crate) async fn users_do_not_see_each_others_feeds(store: Arc<impl Store>) {
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

pub(crate) async fn concurrent_adds_are_all_kept(store: Arc<impl Store>) {
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

pub(crate) async fn urls_round_trip_exactly(store: Arc<impl Store>) {
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

pub(crate) async fn a_working_store_reports_healthy(store: Arc<impl Store>) {
    store.check().await.unwrap();
    assert!(!store.name().is_empty());
}

pub(crate) async fn subscribers_are_tracked_per_feed(store: Arc<impl Store>) {
    let feed = url("https://a.example/feed");
    assert!(!store.has_subscribers(&feed).await.unwrap());
    store.add(&user("alice"), &feed).await.unwrap();
    store.add(&user("bob"), &feed).await.unwrap();
    store.remove(&user("alice"), &feed).await.unwrap();
    assert!(
        store.has_subscribers(&feed).await.unwrap(),
        "bob still reads it"
    );
    store.remove(&user("bob"), &feed).await.unwrap();
    assert!(!store.has_subscribers(&feed).await.unwrap());
}

/// A record as a fetch would leave it, at a whole second (Cassandra keeps
/// milliseconds).
fn record(raw: &str, title: &str) -> FeedRecord {
    let now = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    FeedRecord {
        title: Some(title.to_owned()),
        site_url: Some("https://a.example/".into()),
        etag: Some("\"v1\"".into()),
        last_modified: Some("Tue, 01 Dec 2026 10:00:00 GMT".into()),
        last_fetched: Some(now),
        error_count: 0,
        error: None,
        failing_since: None,
        ..FeedRecord::new(url(raw), now + chrono::Duration::minutes(10))
    }
}

fn details(key: &str) -> super::ItemDetails {
    super::ItemDetails {
        content: format!("<p>Hello &amp; welcome, all of item {key}</p>"),
        author: Some("Ann Author".into()),
        enclosures: vec![common::api::Enclosure {
            url: format!("https://a.example/{key}.mp3"),
            media_type: Some("audio/mpeg".into()),
            length: Some(1234),
        }],
        categories: vec!["news".into(), "rust".into()],
    }
}

/// `item(id, key)` as `Store::items` returns it: without its details.
fn summary(id: ItemId, key: &str) -> StoredItem {
    item(id, key).summary()
}

fn item(id: ItemId, key: &str) -> StoredItem {
    StoredItem {
        id,
        key: key.to_owned(),
        guid: Some(key.to_owned()),
        title: format!("Item {key}"),
        link: Some(format!("https://a.example/{key}")),
        description: "<p>Hello &amp; welcome</p>".into(),
        details_hash: details(key).fingerprint(),
        details: Some(details(key)),
        published: common::api::rfc3339::parse("2026-12-01T10:00:00Z"),
    }
}

pub(crate) async fn a_feed_is_created_once_and_scheduled(store: Arc<impl Store>) {
    let feed = url("https://a.example/feed");
    assert_eq!(store.feed(&feed).await.unwrap(), None);
    let first = record("https://a.example/feed", "First");
    store.create_feed(&first).await.unwrap();
    store
        .create_feed(&record("https://a.example/feed", "Second"))
        .await
        .unwrap();
    assert_eq!(store.feed(&feed).await.unwrap(), Some(first.clone()));
    let schedule = store.schedule().await.unwrap();
    assert_eq!(schedule, [(feed, first.next_fetch)]);
}

pub(crate) async fn a_fetch_stores_the_record_and_items_newest_first(store: Arc<impl Store>) {
    let feed = url("https://a.example/feed");
    let mut state = record("https://a.example/feed", "A");
    store
        .create_feed(&FeedRecord::new(feed.clone(), Utc::now()))
        .await
        .unwrap();
    store
        .save_fetch(&FeedUpdate {
            record: state.clone(),
            upserts: vec![item(10, "a"), item(30, "c"), item(20, "b")],
            removals: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.feed(&feed).await.unwrap(), Some(state.clone()));
    let ids: Vec<ItemId> = store
        .items(&feed)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [30, 20, 10]);
    assert_eq!(
        store.items(&feed).await.unwrap()[2],
        summary(10, "a"),
        "round trips exactly"
    );
    assert_eq!(
        store.item(20).await.unwrap(),
        Some((feed.clone(), item(20, "b")))
    );
    // One feed's share of a river page: below an id, newest first, capped.
    let page = |before, limit| {
        let (store, feed) = (store.clone(), feed.clone());
        async move {
            let items = store.items_before(&feed, before, limit).await.unwrap();
            items.iter().map(|i| i.id).collect::<Vec<ItemId>>()
        }
    };
    assert_eq!(page(None, 2).await, [30, 20]);
    assert_eq!(page(Some(30), 5).await, [20, 10]);
    assert_eq!(page(Some(10), 5).await, Vec::<ItemId>::new());
    assert_eq!(
        store.items_before(&feed, None, 1).await.unwrap(),
        [summary(30, "c")],
        "summaries, as items() gives them"
    );
    assert_eq!(store.item(99).await.unwrap(), None);

    // A failed fetch changes only the record.
    state.error_count = 2;
    state.error = Some("HTTP 500 (Internal Server Error)".into());
    state.failing_since = state.last_fetched;
    store
        .save_fetch(&FeedUpdate {
            record: state.clone(),
            upserts: vec![],
            removals: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.feed(&feed).await.unwrap(), Some(state));
    assert_eq!(store.items(&feed).await.unwrap().len(), 3);
}

pub(crate) async fn feeds_are_read_with_their_items_in_one_call(store: Arc<impl Store>) {
    let (a, b, unknown) = (
        url("https://a.example/feed"),
        url("https://b.example/feed"),
        url("https://unknown.example/feed"),
    );
    for feed in [&a, &b] {
        store
            .create_feed(&FeedRecord::new(feed.clone(), Utc::now()))
            .await
            .unwrap();
    }
    let state = record("https://b.example/feed", "B");
    store
        .save_fetch(&FeedUpdate {
            record: state.clone(),
            upserts: vec![item(40, "d"), item(50, "e")],
            removals: vec![],
        })
        .await
        .unwrap();

    let read = store
        .feeds_with_items(&[b.clone(), unknown, a.clone()])
        .await
        .unwrap();
    assert_eq!(read.len(), 3, "one answer per URL, in order");
    assert_eq!(
        read[0],
        (Some(state), vec![summary(50, "e"), summary(40, "d")])
    );
    assert_eq!(
        read[1],
        (None, vec![]),
        "an unknown feed is no record, no items"
    );
    assert_eq!(read[2].0, store.feed(&a).await.unwrap());
    assert!(read[2].0.is_some() && read[2].1.is_empty());
    assert!(store.feeds_with_items(&[]).await.unwrap().is_empty());
}

pub(crate) async fn a_sync_reads_ids_and_items_and_edits_state_in_bulk(store: Arc<impl Store>) {
    let (a, b, unknown) = (
        url("https://a.example/feed"),
        url("https://b.example/feed"),
        url("https://unknown.example/feed"),
    );
    for (feed, items) in [
        (&a, vec![item(30, "c"), item(10, "a"), item(20, "b")]),
        (&b, vec![item(40, "d")]),
    ] {
        store
            .save_fetch(&FeedUpdate {
                record: record(feed.as_str(), "T"),
                upserts: items,
                removals: vec![],
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .item_ids(&[b.clone(), unknown, a.clone()])
            .await
            .unwrap(),
        [vec![40], vec![], vec![10, 20, 30]],
        "ids only, lowest first, one list per URL in order"
    );

    let found = store.items_by_ids(&[30, 99, 40]).await.unwrap();
    assert_eq!(
        found,
        [(a.clone(), item(30, "c")), (b.clone(), item(40, "d"))],
        "whole items in the order asked; an unknown id is left out"
    );

    let reader = user("reader");
    store.mark_read_before(&reader, &a, 20).await.unwrap();
    let star = |id, key| StarredItem {
        feed: a.clone(),
        item: item(id, key),
    };
    store
        .set_starred(&reader, &star(10, "a"), true)
        .await
        .unwrap();
    let edits = super::StateEdits {
        read: vec![(a.clone(), 30, Some(true)), (a.clone(), 10, Some(false))],
        star: vec![star(30, "c")],
        unstar: vec![star(10, "a")],
    };
    store.edit_states(&reader, &edits).await.unwrap();
    let state = store
        .read_states(&reader)
        .await
        .unwrap()
        .remove(&a)
        .unwrap();
    assert_eq!(
        [10, 20, 30].map(|id| state.is_read(id)),
        [false, false, true]
    );
    let starred: Vec<ItemId> = store
        .starred(&reader)
        .await
        .unwrap()
        .iter()
        .map(|s| s.item.id)
        .collect();
    assert_eq!(starred, [30]);
    // Dropping overrides in bulk.
    let edits = super::StateEdits {
        read: vec![(a.clone(), 30, None), (a.clone(), 10, None)],
        ..super::StateEdits::default()
    };
    store.edit_states(&reader, &edits).await.unwrap();
    let state = store
        .read_states(&reader)
        .await
        .unwrap()
        .remove(&a)
        .unwrap();
    assert!(state.overrides.is_empty());
    assert_eq!([10, 30].map(|id| state.is_read(id)), [true, false]);
}

pub(crate) async fn items_are_replaced_by_key_and_removed(store: Arc<impl Store>) {
    let feed = url("https://a.example/feed");
    let state = record("https://a.example/feed", "A");
    let save = |upserts: Vec<StoredItem>, removals: Vec<StoredItem>| {
        let store = store.clone();
        let update = FeedUpdate {
            record: state.clone(),
            upserts,
            removals,
        };
        async move { store.save_fetch(&update).await.unwrap() }
    };
    save(vec![item(1, "a"), item(2, "b"), item(3, "c")], vec![]).await;
    let edited = StoredItem {
        title: "Edited".into(),
        ..item(2, "b")
    };
    save(vec![edited.clone(), item(4, "d")], vec![item(1, "a")]).await;
    let items = store.items(&feed).await.unwrap();
    let ids: Vec<ItemId> = items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [4, 3, 2]);
    assert_eq!(items[2], edited.summary(), "listings carry no details");
    assert_eq!(
        store.item(2).await.unwrap().map(|(_, item)| item),
        Some(edited),
        "one item carries them"
    );
    assert_eq!(
        store.item(1).await.unwrap(),
        None,
        "removed items are gone by id too"
    );
}

/// Two refreshes of one feed that raced (two middletiers, or a subscribe
/// and a scheduled refresh) both found item "k" new and gave it an id
/// each: the first one stored keeps it, so state set on it is not lost.
pub(crate) async fn an_item_stored_twice_at_once_keeps_its_first_id(store: Arc<impl Store>) {
    let feed = url("https://a.example/feed");
    let state = record("https://a.example/feed", "A");
    for id in [5, 9] {
        store
            .save_fetch(&FeedUpdate {
                record: state.clone(),
                upserts: vec![item(id, "k")],
                removals: vec![],
            })
            .await
            .unwrap();
    }
    let ids: Vec<ItemId> = store
        .items(&feed)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [5]);
    assert!(store.item(5).await.unwrap().is_some());
    assert_eq!(
        store.item(9).await.unwrap(),
        None,
        "the second id is never used"
    );
}

pub(crate) async fn deleting_a_feed_forgets_its_items_only(store: Arc<impl Store>) {
    let (a, b) = (url("https://a.example/feed"), url("https://b.example/feed"));
    for (feed, id) in [(&a, 1), (&b, 2)] {
        store
            .save_fetch(&FeedUpdate {
                record: record(feed.as_str(), "x"),
                upserts: vec![item(id, "k")],
                removals: vec![],
            })
            .await
            .unwrap();
    }
    store.delete_feed(&a).await.unwrap();
    assert_eq!(store.feed(&a).await.unwrap(), None);
    assert!(store.items(&a).await.unwrap().is_empty());
    assert_eq!(store.item(1).await.unwrap(), None);
    assert_eq!(store.items(&b).await.unwrap().len(), 1);
    assert_eq!(store.schedule().await.unwrap().len(), 1);
}

pub(crate) async fn ids_are_unique_and_ascending(store: Arc<impl Store>) {
    let first = store.allocate_ids(500, 0).unwrap();
    let second = store.allocate_ids(3, 0).unwrap();
    assert!(first.windows(2).all(|w| w[0] < w[1]));
    assert!(second[0] > first[499]);
    assert!(second.iter().all(|id| *id < 1 << 53));
}

pub(crate) async fn read_state_is_a_watermark_with_overrides(store: Arc<impl Store>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let feed = url("https://a.example/feed");
    store.add(&alice, &feed).await.unwrap();
    assert!(store.read_states(&alice).await.unwrap().is_empty());
    store
        .set_read_override(&alice, &feed, 2, Some(true))
        .await
        .unwrap();
    store
        .set_read_override(&alice, &feed, 7, Some(true))
        .await
        .unwrap();
    store
        .set_read_override(&alice, &feed, 8, Some(true))
        .await
        .unwrap();
    store
        .set_read_override(&alice, &feed, 8, None)
        .await
        .unwrap();
    store.mark_read_before(&alice, &feed, 5).await.unwrap();
    store
        .set_read_override(&alice, &feed, 3, Some(false))
        .await
        .unwrap();
    let states = store.read_states(&alice).await.unwrap();
    let state = &states[&feed];
    assert_eq!(state.read_before, 5);
    assert_eq!(
        state
            .overrides
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect::<Vec<_>>(),
        [(3, false), (7, true)]
    );
    // The watermark never moves back.
    store.mark_read_before(&alice, &feed, 1).await.unwrap();
    assert_eq!(
        store.read_states(&alice).await.unwrap()[&feed].read_before,
        5
    );
    assert!(
        store.read_states(&bob).await.unwrap().is_empty(),
        "bob's state is his own"
    );
}

/// Two marks at once (two tabs, two middletiers): the watermark ends at
/// the higher one, whichever finishes last.
pub(crate) async fn racing_marks_leave_the_higher_watermark(store: Arc<impl Store>) {
    let alice = user("alice");
    let feed = url("https://a.example/feed");
    store.add(&alice, &feed).await.unwrap();
    for round in 0..5u64 {
        let high = 100 + round * 10;
        let marks = (0..8u64).map(|i| {
            let (store, alice, feed) = (store.clone(), alice.clone(), feed.clone());
            let before = if i % 2 == 0 { high } else { high - 50 };
            async move { store.mark_read_before(&alice, &feed, before).await }
        });
        for marked in futures::future::join_all(marks).await {
            marked.unwrap();
        }
        assert_eq!(
            store.read_states(&alice).await.unwrap()[&feed].read_before,
            high
        );
    }
}

pub(crate) async fn unsubscribing_forgets_the_read_state_of_that_feed(store: Arc<impl Store>) {
    let alice = user("alice");
    let (a, b) = (url("https://a.example/feed"), url("https://b.example/feed"));
    for feed in [&a, &b] {
        store.add(&alice, feed).await.unwrap();
        store.mark_read_before(&alice, feed, 10).await.unwrap();
        store
            .set_read_override(&alice, feed, 12, Some(true))
            .await
            .unwrap();
    }
    store.remove(&alice, &a).await.unwrap();
    let states = store.read_states(&alice).await.unwrap();
    assert!(!states.contains_key(&a));
    assert_eq!(states[&b].read_before, 10);
    // Subscribing again starts afresh.
    store.add(&alice, &a).await.unwrap();
    assert!(!store.read_states(&alice).await.unwrap().contains_key(&a));
}

pub(crate) async fn starred_items_are_kept_whole_and_newest_first(store: Arc<impl Store>) {
    let alice = user("alice");
    let feed = url("https://a.example/feed");
    let star = |id, key| StarredItem {
        feed: feed.clone(),
        item: item(id, key),
    };
    assert!(store.starred(&alice).await.unwrap().is_empty());
    store
        .set_starred(&alice, &star(1, "a"), true)
        .await
        .unwrap();
    store
        .set_starred(&alice, &star(3, "c"), true)
        .await
        .unwrap();
    store
        .set_starred(&alice, &star(2, "b"), true)
        .await
        .unwrap();
    store
        .set_starred(&alice, &star(2, "b"), false)
        .await
        .unwrap();
    store
        .set_starred(&alice, &star(3, "c"), true)
        .await
        .unwrap();
    store.delete_feed(&feed).await.unwrap();
    assert_eq!(
        store.starred(&alice).await.unwrap(),
        [star(3, "c"), star(1, "a")]
    );
    assert!(store.starred(&user("bob")).await.unwrap().is_empty());
}

fn account(name: &str, hash: &str) -> common::api::Account {
    common::api::Account {
        user: user(name),
        password_hash: hash.to_owned(),
        admin: false,
        epoch: 0,
        created_at: Utc::now(),
        app_passwords: Vec::new(),
    }
}

pub(crate) async fn an_account_is_created_once_and_listed_by_name(store: Arc<impl Store>) {
    assert!(store.accounts().await.unwrap().is_empty());
    assert_eq!(store.account(&user("bob")).await.unwrap(), None);
    let bob = account("bob", "$argon2id$first");
    assert!(store.create_account(&bob).await.unwrap());
    assert!(
        !store
            .create_account(&account("bob", "$argon2id$second"))
            .await
            .unwrap(),
        "a taken name is refused"
    );
    assert_eq!(
        store.account(&user("bob")).await.unwrap(),
        Some(bob.clone())
    );
    assert!(store.create_account(&account("alice", "h")).await.unwrap());
    let names: Vec<String> = store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.user.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
}

pub(crate) async fn an_account_is_updated_only_while_it_exists(store: Arc<impl Store>) {
    let mut carol = account("carol", "h1");
    assert!(
        !store.update_account(&carol).await.unwrap(),
        "no such account"
    );
    assert_eq!(store.account(&user("carol")).await.unwrap(), None);
    assert!(store.create_account(&carol).await.unwrap());
    carol.epoch = 3;
    carol.admin = true;
    carol.app_passwords.push(common::api::AppPassword {
        id: "0123abcd".into(),
        label: "phone".into(),
        hash: "ab".repeat(32),
        created_at: Utc::now(),
    });
    assert!(store.update_account(&carol).await.unwrap());
    assert_eq!(
        store.account(&user("carol")).await.unwrap(),
        Some(carol.clone())
    );
    store.delete_account(&user("carol")).await.unwrap();
    store.delete_account(&user("carol")).await.unwrap();
    assert_eq!(store.account(&user("carol")).await.unwrap(), None);
    assert!(
        !store.update_account(&carol).await.unwrap(),
        "a deleted account is not brought back"
    );
    assert!(store.accounts().await.unwrap().is_empty());
}
