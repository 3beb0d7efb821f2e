//! `RSSAccount`: the accounts of `--auth local`, kept by the middletier
//! (`/middletier/accounts`). One command for all of them: they are rare
//! next to reads, and a middletier that cannot keep accounts is one
//! failure, whichever call found it.

use common::api::{Account, UserId};

use super::{CallError, Middletier};

impl Middletier {
    /// One account, or `None` when there is no such account.
    pub(crate) async fn account(&self, user: &UserId) -> Result<Option<Account>, CallError> {
        let path = format!("/middletier/accounts/{user}");
        let found = self
            .run(&self.commands.account, move |http, base| {
                http.get(format!("{base}{path}"))
            })
            .await;
        match found {
            Ok(account) => Ok(Some(account)),
            Err(CallError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every account, by name.
    pub(crate) async fn accounts(&self) -> Result<Vec<Account>, CallError> {
        self.run(&self.commands.account, |http, base| {
            http.get(format!("{base}/middletier/accounts"))
        })
        .await
    }

    /// Creates an account: `Ok(false)` when the name is taken.
    pub(crate) async fn create_account(&self, account: &Account) -> Result<bool, CallError> {
        let account = account.clone();
        let created: Result<Account, _> = self
            .run(&self.commands.account, move |http, base| {
                http.post(format!("{base}/middletier/accounts"))
                    .json(&account)
            })
            .await;
        match created {
            Ok(_) => Ok(true),
            Err(CallError::Refused { status: 409, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces an account (a new password, epoch, or app passwords).
    pub(crate) async fn update_account(&self, account: &Account) -> Result<(), CallError> {
        let path = format!("/middletier/accounts/{}", account.user);
        let account = account.clone();
        self.run::<Account>(&self.commands.account, move |http, base| {
            http.put(format!("{base}{path}")).json(&account)
        })
        .await
        .map(drop)
    }

    /// Deletes a user and all their data.
    pub(crate) async fn delete_user(&self, user: &UserId) -> Result<(), CallError> {
        let path = format!("/middletier/accounts/{user}");
        let result = self
            .run_bytes(&self.commands.account, move |http, base| {
                http.delete(format!("{base}{path}"))
            })
            .await
            .map(drop);
        self.saved.forget(user);
        result
    }
}
