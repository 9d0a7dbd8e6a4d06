//! Who is calling: the `Authorization` header resolved to a user.
//!
//! Accepts `Bearer <token>` and `Token <token>` (prefix case-insensitive), like
//! `ParseAuthTokenFromRequest`; anything else is the server's 401 session error.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::super::error::{ApiError, ApiResult};
use super::super::ids::is_valid_id;
use super::super::server::AppState;

/// An authenticated request: the token and the user it belongs to.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: String,
    pub token: String,
}

impl Caller {
    /// Resolves a `{user_id}` path segment: `me` or the caller's own id only, because an
    /// ordinary user may not list other users' teams or channels.
    pub fn own_id(&self, user_id: &str) -> ApiResult<&str> {
        if user_id == "me" || user_id == self.user_id {
            Ok(&self.user_id)
        } else if is_valid_id(user_id) {
            Err(ApiError::forbidden())
        } else {
            Err(ApiError::invalid_param())
        }
    }

    /// Resolves `me` to the caller's id; other ids must be well-formed.
    pub fn resolve<'a>(&'a self, user_id: &'a str) -> ApiResult<&'a str> {
        if user_id == "me" {
            Ok(&self.user_id)
        } else if is_valid_id(user_id) {
            Ok(user_id)
        } else {
            Err(ApiError::invalid_param())
        }
    }
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    let token = token.trim();
    (known && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(ApiError::session_expired)?;
        let ws = state.workspace();
        let row = ws.tokens.get(token).ok_or_else(ApiError::session_expired)?;
        let active = ws.users.get(&row.user_id).is_some_and(|u| u.delete_at == 0);
        if !active {
            return Err(ApiError::session_expired());
        }
        Ok(Caller {
            user_id: row.user_id.clone(),
            token: token.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn parses_bearer_and_token_schemes() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Token abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
