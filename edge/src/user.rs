//! Who is asking. Without `RSS_AUTH_PROXY_HEADER` everyone is `default`;
//! with it, a trusted authenticating proxy in front of the edge names the
//! user in that header, and a request without it is refused (so a
//! misconfigured proxy fails loudly instead of showing one shared list).
//! So is a request that carries it more than once: a proxy that appends
//! its header to one the client sent would otherwise let the client's
//! value win, and name any user it likes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use common::api::UserId;

use crate::error::Error;
use crate::state::AppState;

/// The current user, validated.
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser(pub UserId);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = state.auth_proxy_header.as_deref() else {
            return Ok(CurrentUser(UserId::parse("default")?));
        };
        let mut values = parts.headers.get_all(header).iter();
        let value = values
            .next()
            .ok_or_else(|| Error::NoUser(header.to_owned()))?;
        if values.next().is_some() {
            return Err(Error::RepeatedUser(header.to_owned()));
        }
        let text = value.to_str().map_err(|_| Error::BadUser {
            header: header.to_owned(),
            reason: "it is not ASCII".to_owned(),
        })?;
        UserId::parse(text.trim())
            .map(CurrentUser)
            .map_err(|e| Error::BadUser {
                header: header.to_owned(),
                reason: e.to_string(),
            })
    }
}
