//! Who is asking. Without `RSS_AUTH_PROXY_HEADER` everyone is `default`;
//! with it, a trusted authenticating proxy in front of the edge names the
//! user in that header, and a request without it is refused (so a
//! misconfigured proxy fails loudly instead of showing one shared list).
//! So is a request that carries it more than once: a proxy that appends
//! its header to one the client sent would otherwise let the client's
//! value win, and name any user it likes.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use common::api::{ErrorBody, UserId};

use crate::AppState;

/// The current user, validated.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub UserId);

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "this reader expects the {0} header from the authenticating proxy in front of it; sign in through the proxy"
    )]
    Missing(String),
    #[error("the {header} header does not name a valid user: {reason}")]
    Invalid { header: String, reason: String },
    #[error(
        "the {0} header appears more than once, so it is not clear who you are; the authenticating proxy must set it exactly once"
    )]
    Repeated(String),
}

impl IntoResponse for UserError {
    fn into_response(self) -> Response {
        let status = match self {
            UserError::Missing(_) => StatusCode::UNAUTHORIZED,
            UserError::Invalid { .. } | UserError::Repeated(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(ErrorBody::new(self.to_string()))).into_response()
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = UserError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = state.auth_proxy_header.as_deref() else {
            return Ok(CurrentUser(UserId::parse("default").map_err(|e| {
                UserError::Invalid {
                    header: String::new(),
                    reason: e.to_string(),
                }
            })?));
        };
        let mut values = parts.headers.get_all(header).iter();
        let value = values
            .next()
            .ok_or_else(|| UserError::Missing(header.to_owned()))?;
        if values.next().is_some() {
            return Err(UserError::Repeated(header.to_owned()));
        }
        let text = value.to_str().map_err(|_| UserError::Invalid {
            header: header.to_owned(),
            reason: "it is not ASCII".to_owned(),
        })?;
        UserId::parse(text.trim())
            .map(CurrentUser)
            .map_err(|e| UserError::Invalid {
                header: header.to_owned(),
                reason: e.to_string(),
            })
    }
}
