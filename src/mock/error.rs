//! The server's `AppError` JSON error responses.
//!
//! Handlers return [`ApiError`]; its response carries the error as an extension with an
//! empty body, and the server's header middleware renders the JSON body, because only
//! it knows the request id the body must repeat.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Clone, Debug, thiserror::Error)]
#[error("{status} {id}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub id: &'static str,
    pub message: &'static str,
    /// Text before the JSON (a failed WebSocket upgrade: gorilla writes the status text
    /// first, then the handler's error).
    pub body_prefix: &'static str,
}

impl ApiError {
    pub const fn new(status: StatusCode, id: &'static str, message: &'static str) -> Self {
        ApiError {
            status,
            id,
            message,
            body_prefix: "",
        }
    }

    pub const fn with_body_prefix(self, prefix: &'static str) -> Self {
        ApiError {
            body_prefix: prefix,
            ..self
        }
    }

    pub const fn session_expired() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        )
    }

    pub const fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
        )
    }

    pub const fn not_found(id: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, id, "Unable to find the resource.")
    }

    pub const fn route_not_found() -> Self {
        Self::not_found("api.context.404.app_error")
    }

    /// A malformed or missing parameter; the server names it in the message.
    pub const fn invalid_param() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_url_param.app_error",
            "Invalid or missing parameter in request URL.",
        )
    }

    pub const fn invalid_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_body_param.app_error",
            "Invalid or missing parameter in request body.",
        )
    }

    /// The JSON body, given the request id of the response.
    pub fn body(&self, request_id: &str) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            id: &'a str,
            message: &'a str,
            detailed_error: &'a str,
            request_id: &'a str,
            status_code: u16,
        }
        let json = serde_json::to_string(&Body {
            id: self.id,
            message: self.message,
            detailed_error: "",
            request_id,
            status_code: self.status.as_u16(),
        })
        .unwrap_or_default();
        format!("{}{json}", self.body_prefix)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
