//! The bulk calls of sync clients ([`common::sync`]): thin handlers over
//! [`crate::reader::Reader`]'s `sync_*` methods.

use axum::Json;
use axum::extract::State;
use common::sync::{Edit, Edited, Ids, IdsQuery, Items, ItemsQuery, SyncFeeds};

use super::extract::{JsonBody, Shape, User};
use super::{ApiError, AppState, Budget};

impl Shape for IdsQuery {
    const SHAPE: &'static str = r#"{"feed"?: "<URL or number>", "starred_stream"?: bool, "read"?: bool, "starred"?: bool, "after"?: "<id>", "before"?: "<id>", "oldest_first"?: bool, "limit": 1-10000}"#;
}

impl Shape for ItemsQuery {
    const SHAPE: &'static str = r#"{"ids": ["<id>", ...]} (1 to 1000 ids)"#;
}

impl Shape for Edit {
    const SHAPE: &'static str =
        r#"{"ids": ["<id>", ...], "read"?: true|false, "starred"?: true|false} (1 to 10000 ids)"#;
}

pub(super) async fn ids(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(query): JsonBody<IdsQuery>,
) -> Result<Json<Ids>, ApiError> {
    Ok(Json(state.reader.sync_ids(&user, &query).await?))
}

pub(super) async fn contents(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(query): JsonBody<IdsQuery>,
) -> Result<Json<Items>, ApiError> {
    Ok(Json(state.reader.sync_contents(&user, &query).await?))
}

pub(super) async fn items(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(query): JsonBody<ItemsQuery>,
) -> Result<Json<Items>, ApiError> {
    Ok(Json(state.reader.sync_items(&user, &query.ids).await?))
}

pub(super) async fn feeds(
    State(state): State<AppState>,
    User(user): User,
) -> Result<Json<SyncFeeds>, ApiError> {
    Ok(Json(state.reader.sync_feeds(&user).await?))
}

/// One state-change token per call, however many ids it carries: a sync
/// app sends a thousand at once.
pub(super) async fn edit(
    State(state): State<AppState>,
    User(user): User,
    JsonBody(edit): JsonBody<Edit>,
) -> Result<Json<Edited>, ApiError> {
    state.admit(&user, Budget::State)?;
    Ok(Json(state.reader.sync_edit(&user, &edit).await?))
}
