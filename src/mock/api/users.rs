//! Login/logout, ping, user lookups and profile pictures (§1, §6).

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::super::error::{ApiError, ApiResult};
use super::super::model::{TokenKind, User};
use super::super::png;
use super::super::render;
use super::super::server::AppState;
use super::params::Params;
use super::{Caller, bytes, json, with_etag};

const INVALID_CREDENTIALS: ApiError = ApiError::new(
    StatusCode::UNAUTHORIZED,
    "api.user.login.invalid_credentials_email_username",
    "Enter a valid email or username and/or password.",
);

const USER_MISSING: ApiError = ApiError::new(
    StatusCode::NOT_FOUND,
    "app.user.missing_account.const",
    "Unable to find the user.",
);

pub async fn ping() -> Response {
    json(json!({"status": "OK", "ActiveSearchBackend": "database"}))
}

/// The credentials of a login body; `token: null` counts as no MFA code.
struct Credentials {
    login_id: String,
    password: String,
    mfa_token: String,
}

fn parse_credentials(body: &[u8]) -> ApiResult<Credentials> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::invalid_body())?;
    let object = value.as_object().ok_or_else(ApiError::invalid_body)?;
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Credentials {
        login_id: text("login_id"),
        password: text("password"),
        mfa_token: text("token"),
    })
}

/// Checks in the server's order: blank password, account, activity, password, MFA.
fn authenticate<'a>(
    users: impl Iterator<Item = &'a User>,
    creds: &Credentials,
) -> ApiResult<&'a User> {
    if creds.password.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "api.user.login.blank_pwd.app_error",
            "Password field must not be blank",
        ));
    }
    let login = creds.login_id.to_lowercase();
    let mut users = users;
    let user = users
        .find(|u| u.username == login || u.email.to_lowercase() == login)
        .ok_or(INVALID_CREDENTIALS)?;
    if user.is_bot {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "api.user.login.bot_login_forbidden.app_error",
            "Bot login is forbidden.",
        ));
    }
    if user.delete_at > 0 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "api.user.login.inactive.app_error",
            "Login failed because your account has been deactivated.",
        ));
    }
    if user.password.as_deref() != Some(creds.password.as_str()) {
        return Err(INVALID_CREDENTIALS);
    }
    if user
        .mfa_code
        .as_ref()
        .is_some_and(|code| *code != creds.mfa_token)
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "mfa.validate_token.authenticate.app_error",
            "Invalid MFA token.",
        ));
    }
    Ok(user)
}

/// `POST /users/login`: the session token travels in the `Token` response header.
pub async fn login(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let creds = parse_credentials(&body)?;
    let mut ws = state.workspace();
    let (user_id, body) = {
        let user = authenticate(ws.users.values(), &creds)?;
        (user.id.clone(), render::user(user))
    };
    let token = ws.issue_token(&user_id, TokenKind::Session);
    let mut response = json(body);
    if let Ok(value) = HeaderValue::from_str(&token) {
        response.headers_mut().insert("Token", value);
    }
    Ok(response)
}

pub async fn logout(State(state): State<AppState>, caller: Caller) -> Response {
    state.workspace().revoke_session(&caller.token);
    json(json!({"status": "OK"}))
}

pub async fn by_id(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let id = caller.resolve(&user_id)?;
    let ws = state.workspace();
    let user = ws.users.get(id).ok_or(USER_MISSING)?;
    Ok(json(render::user(user)))
}

pub async fn by_username(
    State(state): State<AppState>,
    _caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Response> {
    let ws = state.workspace();
    let user = ws
        .user_by_name(&username)
        .ok_or(ApiError::not_found("app.user.get_by_username.app_error"))?;
    Ok(json(render::user(user)))
}

/// A JSON array of strings, de-duplicated; not an array (or a non-string entry) → 400.
fn id_array(body: &[u8]) -> ApiResult<BTreeSet<String>> {
    let ids: Vec<String> = serde_json::from_slice(body).map_err(|_| ApiError::invalid_body())?;
    Ok(ids.into_iter().collect())
}

/// `POST /users/ids?since=`: known ids only, sorted by username.
pub async fn by_ids(
    State(state): State<AppState>,
    _caller: Caller,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    let since = params.int("since")?.unwrap_or(0);
    let ids = id_array(&body)?;
    if ids.is_empty() {
        return Err(ApiError::invalid_body());
    }
    let ws = state.workspace();
    let mut users: Vec<&User> = ids
        .iter()
        .filter_map(|id| ws.users.get(id))
        .filter(|u| u.update_at > since)
        .collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(json(Value::Array(
        users.into_iter().map(render::user).collect(),
    )))
}

/// Ids the server reads of a group-channel body (`MaxGroupChannelsForProfiles`).
pub const MAX_GROUP_CHANNELS_FOR_PROFILES: usize = 50;

/// `POST /users/group_channels` (§14.1): the other members of the caller's group channels
/// among the given ids. Like the server: the ids are sorted and de-duplicated, then all but
/// the first 50 dropped without a word; a body that is not a string array reads as no ids
/// (400 naming `channel_ids`); only `G` channels the caller belongs to answer, each with
/// its other members by username, and one without other members is left out.
pub async fn group_channels(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let ids = id_array(&body).unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_body_param.app_error",
            "Invalid or missing channel_ids in request body.",
        ));
    }
    let ws = state.workspace();
    let mut out = Map::new();
    let read = ids.iter().take(MAX_GROUP_CHANNELS_FOR_PROFILES);
    for channel in read.filter_map(|id| ws.channels.get(id)) {
        if channel.kind != 'G' || !ws.is_channel_member(&channel.id, &caller.user_id) {
            continue;
        }
        let mut members: Vec<&User> = ws
            .channel_members_of(&channel.id)
            .filter(|m| m.user_id != caller.user_id)
            .filter_map(|m| ws.users.get(&m.user_id))
            .collect();
        if members.is_empty() {
            continue;
        }
        members.sort_by(|a, b| a.username.cmp(&b.username));
        let rendered = members.into_iter().map(render::user).collect();
        out.insert(channel.id.clone(), Value::Array(rendered));
    }
    Ok(json(Value::Object(out)))
}

/// The picture the server would generate for a user without an upload.
pub fn default_avatar(username: &str) -> Vec<u8> {
    png::seeded_picture(username, 32)
}

/// `GET /users/{id}/image`: always a PNG, uploaded or generated; ETag = last update.
pub async fn image(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let id = caller.resolve(&user_id)?;
    let (picture, etag) = {
        let ws = state.workspace();
        let user = ws.users.get(id).ok_or(USER_MISSING)?;
        let picture = match &user.avatar {
            Some(uploaded) if user.last_picture_update > 0 => uploaded.clone(),
            _ => default_avatar(&user.username),
        };
        (picture, user.last_picture_update.to_string())
    };
    let mut response = with_etag(&headers, &etag, || bytes("image/png", picture));
    response.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("max-age=86400, private"),
    );
    Ok(response)
}
