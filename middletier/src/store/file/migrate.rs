//! One-time changes to an existing store's data, each recorded in the
//! `meta` table so it runs once.

use redb::{ReadableTable, WriteTransaction};

use super::{
    META, READ_MARKS, READ_OVERRIDES, STARRED, SUBSCRIBERS, SUBSCRIPTIONS, USER_CASE_FOLDED,
};

/// Folds user ids saved before ids were compared without case (`Alice`)
/// into their lower-case form (`alice`), merging with what is already
/// there, so their owners keep their data. Runs once per store (a `meta`
/// flag), inside the opening transaction.
pub(super) fn fold_user_case(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut meta = txn.open_table(META)?;
    if meta.get(USER_CASE_FOLDED)?.is_some() {
        return Ok(());
    }
    let mixed = |user: &str| user.bytes().any(|b| b.is_ascii_uppercase());
    let lower = |user: &str| user.to_ascii_lowercase();

    let mut table = txn.open_table(SUBSCRIPTIONS)?;
    let rows: Vec<(String, String, i64)> = table
        .iter()?
        .filter_map(Result::ok)
        .map(|(k, v)| (k.value().0.to_owned(), k.value().1.to_owned(), v.value()))
        .filter(|(user, _, _)| mixed(user))
        .collect();
    for (user, url, at) in rows {
        table.remove((user.as_str(), url.as_str()))?;
        let key = (lower(&user), url);
        let first = table
            .get((key.0.as_str(), key.1.as_str()))?
            .map_or(at, |v| v.value().min(at));
        table.insert((key.0.as_str(), key.1.as_str()), first)?;
    }
    drop(table);

    let mut table = txn.open_table(SUBSCRIBERS)?;
    let rows: Vec<(String, String)> = table
        .iter()?
        .filter_map(Result::ok)
        .map(|(k, _)| (k.value().0.to_owned(), k.value().1.to_owned()))
        .filter(|(_, user)| mixed(user))
        .collect();
    for (url, user) in rows {
        table.remove((url.as_str(), user.as_str()))?;
        table.insert((url.as_str(), lower(&user).as_str()), ())?;
    }
    drop(table);

    let mut table = txn.open_table(READ_MARKS)?;
    let rows: Vec<(String, String, u64)> = table
        .iter()?
        .filter_map(Result::ok)
        .map(|(k, v)| (k.value().0.to_owned(), k.value().1.to_owned(), v.value()))
        .filter(|(user, _, _)| mixed(user))
        .collect();
    for (user, url, mark) in rows {
        table.remove((user.as_str(), url.as_str()))?;
        let user = lower(&user);
        let key = (user.as_str(), url.as_str());
        let mark = table.get(key)?.map_or(mark, |v| v.value().max(mark));
        table.insert(key, mark)?;
    }
    drop(table);

    let mut table = txn.open_table(READ_OVERRIDES)?;
    let rows: Vec<(String, String, u64, bool)> = table
        .iter()?
        .filter_map(Result::ok)
        .map(|(k, v)| {
            let (user, url, id) = k.value();
            (user.to_owned(), url.to_owned(), id, v.value())
        })
        .filter(|(user, _, _, _)| mixed(user))
        .collect();
    for (user, url, id, read) in rows {
        table.remove((user.as_str(), url.as_str(), id))?;
        let user = lower(&user);
        if table.get((user.as_str(), url.as_str(), id))?.is_none() {
            table.insert((user.as_str(), url.as_str(), id), read)?;
        }
    }
    drop(table);

    let mut table = txn.open_table(STARRED)?;
    let rows: Vec<(String, u64, Vec<u8>)> = table
        .iter()?
        .filter_map(Result::ok)
        .map(|(k, v)| (k.value().0.to_owned(), k.value().1, v.value().to_vec()))
        .filter(|(user, _, _)| mixed(user))
        .collect();
    for (user, id, item) in rows {
        table.remove((user.as_str(), id))?;
        table.insert((lower(&user).as_str(), id), item.as_slice())?;
    }
    drop(table);

    meta.insert(USER_CASE_FOLDED, 1)?;
    Ok(())
}
