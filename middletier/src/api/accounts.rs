//! The accounts the edge signs people in with (`--auth local`). The edge
//! does all the judging (passwords, sessions, who is an admin); these
//! calls only keep the records, whole:
//!
//! | call | does |
//! |---|---|
//! | `GET /middletier/accounts` | every account, by name |
//! | `POST /middletier/accounts` | creates one: 201, or 409 when the name is taken |
//! | `GET /middletier/accounts/{user}` | one account, or 404 |
//! | `PUT /middletier/accounts/{user}` | replaces it: 200, or 404 when there is none |
//! | `DELETE /middletier/accounts/{user}` | deletes the user and all their data: 204 |

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use common::api::Account;

use super::extract::User;
use super::{ApiError, AppState};

const SHAPE: &str =
    r#"{"user", "password_hash", "admin", "epoch", "created_at", "app_passwords": [...]}"#;

fn account(body: &[u8]) -> Result<Account, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string(), SHAPE))
}

pub(super) async fn list(State(state): State<AppState>) -> Result<Json<Vec<Account>>, ApiError> {
    Ok(Json(state.reader.accounts().await?))
}

pub(super) async fn create(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let account = account(&body)?;
    state.reader.create_account(&account).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

pub(super) async fn get(
    State(state): State<AppState>,
    User(user): User,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(state.reader.account(&user).await?))
}

pub(super) async fn update(
    State(state): State<AppState>,
    User(user): User,
    body: Bytes,
) -> Result<Json<Account>, ApiError> {
    let account = account(&body)?;
    if account.user != user {
        return Err(ApiError::BadParameter(format!(
            "the body is the account of {}, not of {user} as the path says",
            account.user
        )));
    }
    state.reader.update_account(&account).await?;
    Ok(Json(account))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    User(user): User,
) -> Result<StatusCode, ApiError> {
    state.reader.delete_user(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}
