//! Reading one article whole, and the river: every feed's items in one
//! list, newest first, paged by id.
//!
//! Listings stay summary-only so a page of many feeds stays small; the
//! article is the one call that carries an item's full content, and it is
//! found by its id alone (one index read), never by reading a listing.

use common::api::{Article, FeedUrl, ItemFeed, River, RiverItem, UserId};
use common::query::RiverQuery;

use crate::store::{FeedRecord, ItemId, StarredItem, StoreError, StoredItem};

use super::{Reader, ReaderError, feed_title};
use crate::feeds::web_url;

impl Reader {
    /// Finds item `id` among the user's feeds, or among their stars (a
    /// starred item may have left its feed's window); with the user's stars.
    pub(super) async fn locate(
        &self,
        user: &UserId,
        id: ItemId,
    ) -> Result<(FeedUrl, StoredItem, Vec<StarredItem>), ReaderError> {
        let (subscribed, starred, stored) = tokio::try_join!(
            self.subscribed(user),
            self.store.starred(user),
            self.store.item(id),
        )?;
        let (feed, item) = match stored {
            Some((feed, item)) if subscribed.contains(&feed) => (feed, item),
            _ => match starred.iter().find(|s| s.item.id == id) {
                Some(s) => (s.feed.clone(), s.item.clone()),
                None => return Err(ReaderError::UnknownItem(id.to_string())),
            },
        };
        Ok((feed, item, starred))
    }

    /// One item whole, with the user's state: the article page's one call.
    pub(crate) async fn article(&self, user: &UserId, id: ItemId) -> Result<Article, ReaderError> {
        let (feed, item, starred) = self.locate(user, id).await?;
        let (record, mut states) =
            tokio::try_join!(self.store.feed(&feed), self.store.read_states(user))?;
        let state = states.remove(&feed).unwrap_or_default();
        let item_starred = starred.iter().any(|s| s.item.id == id);
        Ok(article_of(
            &feed,
            record.as_ref(),
            &item,
            state.is_read(id),
            item_starred,
        ))
    }

    /// One page of the river: the items of all the user's feeds, newest id
    /// first, from just below `before`.
    pub(crate) async fn river(
        &self,
        user: &UserId,
        options: RiverQuery,
    ) -> Result<River, ReaderError> {
        let urls = self.subscription_urls(user).await?;
        let (states, starred, stored) = tokio::try_join!(
            self.store.read_states(user),
            self.starred_ids(user),
            self.river_items(&urls, options),
        )?;
        let before = options.before.map_or(ItemId::MAX, |id| id.get());
        let mut page: Vec<RiverItem> = Vec::new();
        for (url, (record, items)) in urls.iter().zip(&stored) {
            let state = states.get(url).cloned().unwrap_or_default();
            let feed = ItemFeed {
                url: url.to_string(),
                title: feed_title(url, record.as_ref()),
                site_url: None,
            };
            let wanted = items
                .iter()
                .filter(|i| i.id < before && !(options.unread_only && state.is_read(i.id)))
                // Items come newest first: no feed gives more than a page.
                .take(options.limit + 1);
            page.extend(wanted.map(|i| RiverItem {
                item: i.listed(state.is_read(i.id), starred.contains(&i.id)),
                feed: feed.clone(),
            }));
        }
        page.sort_unstable_by_key(|i| std::cmp::Reverse(i.item.id));
        let next = (page.len() > options.limit).then(|| page[options.limit - 1].item.id);
        page.truncate(options.limit);
        Ok(River { items: page, next })
    }

    /// Each feed's record and the items a river page may take from it: at
    /// most `limit + 1` below `before`, newest first (whatever is read, as
    /// the store cannot tell). Unread-only reads each feed's items whole:
    /// how deep its unread ones go depends on the user's read state.
    async fn river_items(
        &self,
        urls: &[FeedUrl],
        options: RiverQuery,
    ) -> Result<Vec<(Option<FeedRecord>, Vec<StoredItem>)>, StoreError> {
        if options.unread_only {
            return self.store.feeds_with_items(urls).await;
        }
        let store = &self.store;
        futures::future::try_join_all(urls.iter().map(|url| async move {
            tokio::try_join!(
                store.feed(url),
                store.items_before(url, options.before.map(|id| id.get()), options.limit + 1,),
            )
        }))
        .await
    }
}

/// An item whole, as the article call and a sync's contents give it.
pub(super) fn article_of(
    feed: &FeedUrl,
    record: Option<&FeedRecord>,
    item: &StoredItem,
    read: bool,
    starred: bool,
) -> Article {
    let details = item.details.clone().unwrap_or_default();
    let content = if details.content.is_empty() {
        item.description.clone()
    } else {
        details.content
    };
    Article {
        item: item.listed(read, starred),
        feed: ItemFeed {
            title: feed_title(feed, record),
            site_url: record.and_then(|r| r.site_url.as_deref()).and_then(web_url),
            url: feed.to_string(),
        },
        author: details.author,
        content,
        enclosures: details.enclosures,
        categories: details.categories,
    }
}
