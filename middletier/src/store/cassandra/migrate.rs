//! One-time changes to data that earlier versions wrote, run by every
//! middletier when it connects, after the schema exists. Each is recorded
//! in `schema_migrations` once done, and each is idempotent, so
//! middletiers that start together may both run it.
//!
//! These are the store's only scans (`SELECT DISTINCT` of a partition key,
//! paged), and they run once per keyspace, never on a request.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use scylla::client::session::Session;

/// The tables partitioned by user.
const USER_TABLES: [&str; 4] = ["subscriptions", "read_marks", "read_overrides", "starred"];

/// Runs what has not run yet in keyspace `ks`.
pub(super) async fn run(session: &Session, ks: &str) -> Result<(), String> {
    for table in ["items", "starred"] {
        add_item_columns(session, ks, table).await?;
    }
    let name = "user_case_folded";
    if !done(session, ks, name).await? {
        fold_user_case(session, ks).await?;
        session
            .query_unpaged(
                format!("INSERT INTO {ks}.schema_migrations (name, done_at) VALUES (?, toTimestamp(now()))"),
                (name,),
            )
            .await
            .map_err(|e| format!("recording migration {name} failed: {e}"))?;
    }
    Ok(())
}

/// Adds the item columns a keyspace made by an earlier version lacks
/// (contents, authors, enclosures, categories): existing rows read them as
/// empty. Checked against the schema on every start (one small read), so a
/// keyspace made with them, or changed by another middletier just now, is
/// left as it is.
async fn add_item_columns(session: &Session, ks: &str, table: &str) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("adding item columns to {ks}.{table}: {e}");
    let have: BTreeSet<String> = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
            (ks, table),
        )
        .await
        .map_err(|e| failed(&e))?
        .into_rows_result()
        .map_err(|e| failed(&e))?
        .rows::<(String,)>()
        .map_err(|e| failed(&e))?
        .filter_map(Result::ok)
        .map(|(name,)| name)
        .collect();
    for (column, kind) in super::cql::ADDED_ITEM_COLUMNS {
        if have.contains(column) {
            continue;
        }
        tracing::info!(%table, %column, "adding a column to an existing keyspace");
        let added = session
            .query_unpaged(format!("ALTER TABLE {ks}.{table} ADD {column} {kind}"), ())
            .await;
        // Another middletier may have added it a moment ago.
        if let Err(e) = added
            && !e.to_string().contains("conflicts with an existing column")
        {
            return Err(failed(&e));
        }
    }
    Ok(())
}

async fn done(session: &Session, ks: &str, name: &str) -> Result<bool, String> {
    let rows = session
        .query_unpaged(
            format!("SELECT name FROM {ks}.schema_migrations WHERE name = ?"),
            (name,),
        )
        .await
        .map_err(|e| format!("reading {ks}.schema_migrations failed: {e}"))?
        .into_rows_result()
        .map_err(|e| format!("reading {ks}.schema_migrations failed: {e}"))?
        .rows_num();
    Ok(rows > 0)
}

/// User ids are compared without case now (`Alice` is `alice`): rows
/// saved under a mixed-case id move to the lower-case one, keeping rows
/// already there, so their owners keep their data.
async fn fold_user_case(session: &Session, ks: &str) -> Result<(), String> {
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("folding user ids: {what}: {e}");
    let mut users = BTreeSet::new();
    for table in USER_TABLES {
        let pager = session
            .query_iter(format!("SELECT DISTINCT user_id FROM {ks}.{table}"), ())
            .await
            .map_err(|e| failed(table, &e))?;
        let mut rows = pager
            .rows_stream::<(String,)>()
            .map_err(|e| failed(table, &e))?;
        while let Some((user,)) = rows.try_next().await.map_err(|e| failed(table, &e))? {
            if user.bytes().any(|b| b.is_ascii_uppercase()) {
                users.insert(user);
            }
        }
    }
    for user in &users {
        let lower = user.to_ascii_lowercase();
        tracing::info!(%user, to = %lower, "folding a mixed-case user id");
        for table in USER_TABLES {
            let pager = session
                .query_iter(
                    format!("SELECT JSON * FROM {ks}.{table} WHERE user_id = ?"),
                    (user.as_str(),),
                )
                .await
                .map_err(|e| failed(table, &e))?;
            let rows: Vec<(String,)> = pager
                .rows_stream::<(String,)>()
                .map_err(|e| failed(table, &e))?
                .try_collect()
                .await
                .map_err(|e| failed(table, &e))?;
            for (json,) in rows {
                let mut row: serde_json::Value =
                    serde_json::from_str(&json).map_err(|e| failed(table, &e))?;
                row["user_id"] = serde_json::Value::from(lower.as_str());
                session
                    .query_unpaged(
                        format!("INSERT INTO {ks}.{table} JSON ? IF NOT EXISTS"),
                        (row.to_string(),),
                    )
                    .await
                    .map_err(|e| failed(table, &e))?;
                if table == "subscriptions"
                    && let Some(feed) = row["feed_url"].as_str()
                {
                    session
                        .query_unpaged(
                            format!("INSERT INTO {ks}.feed_subscribers (feed_url, user_id) VALUES (?, ?)"),
                            (feed, lower.as_str()),
                        )
                        .await
                        .map_err(|e| failed("feed_subscribers", &e))?;
                    session
                        .query_unpaged(
                            format!("DELETE FROM {ks}.feed_subscribers WHERE feed_url = ? AND user_id = ?"),
                            (feed, user.as_str()),
                        )
                        .await
                        .map_err(|e| failed("feed_subscribers", &e))?;
                }
            }
            session
                .query_unpaged(
                    format!("DELETE FROM {ks}.{table} WHERE user_id = ?"),
                    (user.as_str(),),
                )
                .await
                .map_err(|e| failed(table, &e))?;
        }
    }
    Ok(())
}
