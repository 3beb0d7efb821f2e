//! The calls behind the Google Reader API ([`crate::greader`]), each a
//! named command of its own (`GReader*`).
//!
//! None has a fallback: a sync app that is shown a saved or empty list
//! takes it as the truth and rewrites the user's read state to match. A
//! failure is a failure, which the API answers with 503 and `Retry-After`.

use common::api::{FeedUrl, MarkRead, Marked, SubscriptionChange, UserId};
use common::ratelimit::RateKey;
use common::sync::{Edit, Edited, Ids, IdsQuery, Items, ItemsQuery, SyncFeeds};

use super::{CallError, Middletier, Subscribed, user_path};

impl Middletier {
    /// `GReaderFeeds`: the user's subscriptions with unread counts.
    pub(crate) async fn sync_feeds(&self, user: &UserId) -> Result<SyncFeeds, CallError> {
        let path = format!("{}/sync/feeds", user_path(user));
        self.run(&self.commands.greader_feeds, move |http, base| {
            http.get(format!("{base}{path}"))
        })
        .await
    }

    /// `GReaderIds`: a page of a stream's ids.
    pub(crate) async fn sync_ids(&self, user: &UserId, query: IdsQuery) -> Result<Ids, CallError> {
        let path = format!("{}/sync/ids", user_path(user));
        self.run(&self.commands.greader_ids, move |http, base| {
            http.post(format!("{base}{path}")).json(&query)
        })
        .await
    }

    /// `GReaderStream`: a page of a stream's items, whole.
    pub(crate) async fn sync_contents(
        &self,
        user: &UserId,
        query: IdsQuery,
    ) -> Result<Items, CallError> {
        let path = format!("{}/sync/contents", user_path(user));
        self.run(&self.commands.greader_stream, move |http, base| {
            http.post(format!("{base}{path}")).json(&query)
        })
        .await
    }

    /// `GReaderItems`: items whole, by id.
    pub(crate) async fn sync_items(
        &self,
        user: &UserId,
        query: ItemsQuery,
    ) -> Result<Items, CallError> {
        let path = format!("{}/sync/items", user_path(user));
        self.run(&self.commands.greader_items, move |http, base| {
            http.post(format!("{base}{path}")).json(&query)
        })
        .await
    }

    /// `GReaderEdit`: read and starred state of many items, in one call.
    pub(crate) async fn sync_edit(&self, user: &UserId, edit: Edit) -> Result<Edited, CallError> {
        let path = format!("{}/sync/edit", user_path(user));
        let result = self
            .run(&self.commands.greader_edit, move |http, base| {
                http.post(format!("{base}{path}")).json(&edit)
            })
            .await;
        self.saved.forget(user);
        result
    }

    /// `GReaderMarkAll`: marks a feed, or every feed, read.
    pub(crate) async fn sync_mark_read(
        &self,
        user: &UserId,
        request: MarkRead,
    ) -> Result<Marked, CallError> {
        let path = format!("{}/mark-read", user_path(user));
        let result = self
            .run(&self.commands.greader_mark_all, move |http, base| {
                http.post(format!("{base}{path}")).json(&request)
            })
            .await;
        self.saved.forget(user);
        result
    }

    /// `GReaderSubscribe`: subscribed, or a choice of feeds.
    pub(crate) async fn sync_subscribe(
        &self,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<Subscribed, CallError> {
        self.subscribe_as(&self.commands.greader_subscribe, key, user, url)
            .await
    }

    /// `GReaderUnsubscribe`.
    pub(crate) async fn sync_unsubscribe(
        &self,
        key: &RateKey,
        user: &UserId,
        url: &FeedUrl,
    ) -> Result<SubscriptionChange, CallError> {
        self.unsubscribe_as(&self.commands.greader_unsubscribe, key, user, url)
            .await
    }
}
