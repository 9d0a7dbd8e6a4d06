//! The `/api/v4` routes and the `/__mock` control routes.
//!
//! Each submodule serves one resource. Handlers lock the workspace briefly, build an
//! owned response and release it; they never panic on client input: malformed ids,
//! numbers or bodies become the server's 400 errors.

mod auth;
mod channels;
mod control;
mod emoji;
mod files;
mod params;
mod posts;
mod teams;
mod users;
mod websocket;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::Value;

use super::error::ApiError;
use super::server::AppState;

pub use auth::Caller;

/// The route template a response was produced by (request counting reports it).
#[derive(Clone, Copy, Debug)]
pub struct RouteTemplate(pub &'static str);

/// Marks responses of one route with its template, so the outer pipeline can record
/// it without axum's `matched-path` feature; answers 404 for routes the faults remove.
async fn tag_route(
    State((template, state)): State<(RouteTemplate, AppState)>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = if state.route_missing(template.0) {
        route_not_found().await.into_response()
    } else {
        next.run(request).await
    };
    response.extensions_mut().insert(template);
    response
}

/// Every route the mock serves, with full paths (they are the recorded templates).
pub fn router(state: AppState) -> Router {
    let routes: Vec<(&'static str, MethodRouter<AppState>)> = vec![
        ("/api/v4/system/ping", get(users::ping)),
        ("/api/v4/users/login", post(users::login)),
        ("/api/v4/users/logout", post(users::logout)),
        ("/api/v4/users/ids", post(users::by_ids)),
        ("/api/v4/users/group_channels", post(users::group_channels)),
        ("/api/v4/users/username/{username}", get(users::by_username)),
        ("/api/v4/users/{user_id}", get(users::by_id)),
        ("/api/v4/users/{user_id}/image", get(users::image)),
        ("/api/v4/users/{user_id}/teams", get(teams::for_user)),
        (
            "/api/v4/users/{user_id}/teams/members",
            get(teams::memberships_of_user),
        ),
        ("/api/v4/users/{user_id}/channels", get(channels::for_user)),
        (
            "/api/v4/users/{user_id}/teams/{team_id}/channels",
            get(channels::for_user_in_team),
        ),
        ("/api/v4/teams/{team_id}/members", get(teams::members)),
        ("/api/v4/teams/{team_id}/image", get(teams::image)),
        ("/api/v4/channels/{channel_id}", get(channels::by_id)),
        (
            "/api/v4/channels/{channel_id}/members",
            get(channels::members),
        ),
        (
            "/api/v4/channels/{channel_id}/posts",
            get(posts::for_channel),
        ),
        ("/api/v4/posts/{post_id}", get(posts::by_id)),
        ("/api/v4/files/{file_id}", get(files::content)),
        ("/api/v4/files/{file_id}/info", get(files::info)),
        ("/api/v4/emoji", get(emoji::list)),
        ("/api/v4/emoji/{emoji_id}", get(emoji::by_id)),
        ("/api/v4/emoji/{emoji_id}/image", get(emoji::image)),
        ("/api/v4/websocket", get(websocket::connect)),
        ("/api/v4/websocket/", get(websocket::connect)),
        ("/__mock/scenario/update", post(control::apply_update)),
        (
            "/__mock/scenario/file-names",
            post(control::apply_file_names),
        ),
        ("/__mock/requests", get(control::requests)),
        ("/__mock/requests/reset", post(control::reset_requests)),
        ("/__mock/websocket/drop", post(control::drop_websockets)),
        (
            "/__mock/websocket/restart",
            post(control::restart_websockets),
        ),
    ];
    let mut router = Router::new();
    for (path, method_router) in routes {
        let tagged =
            method_router
                .fallback(method_not_allowed)
                .layer(middleware::from_fn_with_state(
                    (RouteTemplate(path), state.clone()),
                    tag_route,
                ));
        router = router.route(path, tagged);
    }
    router.fallback(route_not_found).with_state(state)
}

async fn route_not_found() -> ApiError {
    ApiError::route_not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "api.context.405.app_error",
        "Method not allowed.",
    )
}

/// The server's version-prefixed ETag for a change marker.
pub fn etag_for(marker: impl std::fmt::Display) -> String {
    format!("{}.{marker}", super::server::SERVER_VERSION)
}

/// Whether the client's `If-None-Match` names `etag` (quotes and `W/` tolerated).
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|candidate| {
                let c = candidate.trim();
                let c = c.strip_prefix("W/").unwrap_or(c);
                c.trim_matches('"') == etag
            })
        })
}

/// 304 when the client already has `etag`, else `make()` with the ETag header.
pub fn with_etag(headers: &HeaderMap, etag: &str, make: impl FnOnce() -> Response) -> Response {
    let mut response = if etag_matches(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        make()
    };
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

pub fn json(value: Value) -> Response {
    axum::Json(value).into_response()
}

/// A binary body with the given content type.
pub fn bytes(content_type: &str, body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    let value = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response
}

/// FNV-1a over a rendered body: a cheap change marker for list ETags.
pub fn body_marker(value: &Value) -> String {
    let hash = value
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
}
