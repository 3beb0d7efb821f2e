//! App passwords: what an app (or a script) sends as
//! `Authorization: Bearer <token>` instead of signing in.
//!
//! A token is `{user}~{secret}`: the user (whose account holds the hashes;
//! `~` is never in a user id) and 256 random bits in hex. Only SHA-256 of
//! the secret is stored. A fast hash is right here, unlike for passwords:
//! nobody can guess 256 random bits, so there is nothing to slow down,
//! and every API request checks one.

use chrono::Utc;
use common::api::{Account, AppPassword, UserId};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::session::hex;

/// App passwords one account may have.
pub(crate) const MAX_PER_ACCOUNT: usize = 20;
/// The longest label kept.
pub(crate) const MAX_LABEL: usize = 100;

/// A new app password for `user`: the token to show once, and the record
/// to store.
pub(crate) fn issue(user: &UserId, label: &str) -> Result<(String, AppPassword), getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    let mut id = [0u8; 6];
    getrandom::fill(&mut id)?;
    let secret = hex(&secret);
    let label: String = label.trim().chars().take(MAX_LABEL).collect();
    let record = AppPassword {
        id: hex(&id),
        label: if label.is_empty() {
            "app".to_owned()
        } else {
            label
        },
        hash: digest(&secret),
        created_at: Utc::now(),
    };
    Ok((format!("{user}~{secret}"), record))
}

/// The user a token names, and its secret; `None` for anything that is
/// not a token.
pub(crate) fn parse(token: &str) -> Option<(UserId, &str)> {
    let (user, secret) = token.trim().split_once('~')?;
    let well_formed = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(())?;
    Some((UserId::parse(user).ok()?, secret))
}

/// Whether `secret` is one of the account's app passwords (compared in
/// constant time, all of them, whichever matches).
pub(crate) fn matches(account: &Account, secret: &str) -> bool {
    let hash = digest(secret);
    account
        .app_passwords
        .iter()
        .fold(subtle::Choice::from(0), |found, app| {
            found | app.hash.as_bytes().ct_eq(hash.as_bytes())
        })
        .into()
}

fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: &UserId) -> Account {
        Account {
            user: user.clone(),
            password_hash: String::new(),
            admin: false,
            epoch: 0,
            created_at: Utc::now(),
            app_passwords: Vec::new(),
        }
    }

    #[test]
    fn an_issued_token_names_its_user_and_matches_only_its_account() {
        let bob = UserId::parse("bob.b@example.com").unwrap();
        let (token, record) = issue(&bob, "  phone  ").unwrap();
        assert_eq!(record.label, "phone");
        let (user, secret) = parse(&token).unwrap();
        assert_eq!(user, bob);
        let mut stored = account(&bob);
        assert!(!matches(&stored, secret), "not stored yet");
        stored.app_passwords.push(record);
        assert!(matches(&stored, secret));
        let (_, other) = issue(&bob, "").unwrap();
        assert_eq!(other.label, "app");
        assert!(!matches(&stored, &"0".repeat(64)));
    }

    #[test]
    fn anything_else_is_not_a_token() {
        for junk in [
            "",
            "bob",
            "bob~",
            "bob~xyz",
            "~abc",
            &format!("../x~{}", "a".repeat(64)),
        ] {
            assert!(parse(junk).is_none(), "{junk:?}");
        }
    }
}
