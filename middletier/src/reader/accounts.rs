//! Accounts: kept here, judged at the edge. The middletier stores each
//! account whole and never sees a password; deleting a user deletes all of
//! their data first, then the account, so a failure half-way leaves an
//! account that can be deleted again, never data without an owner.

use common::api::{Account, UserId};

use super::{Reader, ReaderError};

impl Reader {
    /// One account.
    pub(crate) async fn account(&self, user: &UserId) -> Result<Account, ReaderError> {
        self.store
            .account(user)
            .await?
            .ok_or_else(|| ReaderError::NoAccount(user.to_string()))
    }

    /// Every account, by name.
    pub(crate) async fn accounts(&self) -> Result<Vec<Account>, ReaderError> {
        Ok(self.store.accounts().await?)
    }

    /// A new account; refused when the name is taken.
    pub(crate) async fn create_account(&self, account: &Account) -> Result<(), ReaderError> {
        if self.store.create_account(account).await? {
            Ok(())
        } else {
            Err(ReaderError::AccountExists(account.user.to_string()))
        }
    }

    /// Replaces an existing account (a new password, epoch or app
    /// password); refused when there is none.
    pub(crate) async fn update_account(&self, account: &Account) -> Result<(), ReaderError> {
        if self.store.update_account(account).await? {
            Ok(())
        } else {
            Err(ReaderError::NoAccount(account.user.to_string()))
        }
    }

    /// Deletes the user and everything of theirs: subscriptions, read
    /// state, stars, then the account (with its app passwords). Feeds
    /// nobody else reads go too. Repeating it is harmless.
    pub(crate) async fn delete_user(&self, user: &UserId) -> Result<(), ReaderError> {
        let subscribed = self.store.list(user).await?.into_iter().map(|s| s.url);
        // Read state left for a feed no longer subscribed goes as well.
        let marked = self.store.read_states(user).await?.into_keys();
        let feeds: std::collections::BTreeSet<_> = subscribed.chain(marked).collect();
        for url in &feeds {
            self.store.remove(user, url).await?;
            self.refresher.drop_if_unread(url).await?;
        }
        for starred in self.store.starred(user).await? {
            self.store.set_starred(user, &starred, false).await?;
        }
        self.store.delete_account(user).await?;
        tracing::info!(%user, feeds = feeds.len(), "deleted a user and their data");
        Ok(())
    }
}
