//! The caller's channel lists and channel members (§4).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use super::super::error::{ApiError, ApiResult};
use super::super::model::{Channel, ChannelMember};
use super::super::render;
use super::super::server::AppState;
use super::params::{Params, path_id};
use super::{Caller, body_marker, etag_for, json, with_etag};

/// `include_deleted` / `last_delete_at` filtering shared by both list endpoints.
struct DeletedFilter {
    include_deleted: bool,
    last_delete_at: i64,
}

impl DeletedFilter {
    fn from_params(params: &Params) -> ApiResult<Self> {
        let last_delete_at = params.int("last_delete_at")?.unwrap_or(0);
        if last_delete_at < 0 {
            return Err(ApiError::invalid_param());
        }
        Ok(DeletedFilter {
            include_deleted: params.flag("include_deleted"),
            last_delete_at,
        })
    }

    fn keeps(&self, channel: &Channel) -> bool {
        channel.delete_at == 0 || (self.include_deleted && channel.delete_at >= self.last_delete_at)
    }
}

fn render_all(channels: Vec<&Channel>) -> Value {
    Value::Array(channels.into_iter().map(render::channel).collect())
}

/// `GET /users/{id}/channels`: every membership once (DMs/GMs included), by id.
pub async fn for_user(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user_id = caller.own_id(&user_id)?;
    let filter = DeletedFilter::from_params(&params)?;
    let ws = state.workspace();
    let channels = ws
        .member_channels(user_id)
        .into_iter()
        .filter(|c| filter.keeps(c))
        .collect();
    Ok(json(render_all(channels)))
}

/// `GET /users/{id}/teams/{team_id}/channels`: the team's memberships plus ALL of
/// the user's DMs/GMs, sorted by display name; ETag/304.
pub async fn for_user_in_team(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user_id = caller.own_id(&user_id)?;
    let team_id = path_id(&team_id)?;
    let filter = DeletedFilter::from_params(&params)?;
    let body = {
        let ws = state.workspace();
        if !ws.is_team_member(team_id, user_id) {
            return Err(ApiError::forbidden());
        }
        let mut channels: Vec<&Channel> = ws
            .member_channels(user_id)
            .into_iter()
            .filter(|c| c.team_id == team_id || c.is_direct_or_group())
            .filter(|c| filter.keeps(c))
            .collect();
        channels.sort_by(|a, b| (&a.display_name, &a.id).cmp(&(&b.display_name, &b.id)));
        render_all(channels)
    };
    let etag = etag_for(body_marker(&body));
    Ok(with_etag(&headers, &etag, || json(body)))
}

/// `GET /channels/{id}` (`api4/channel.go` getChannel): 404 for an unknown id
/// (`GetChannel`), then a public channel is readable by the team's members and a private,
/// direct or group one by its members only (403); archived channels too. The same
/// rendering as the lists (the mock's headers name no channels, so `FillInChannelProps`
/// adds nothing).
pub async fn by_id(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let channel_id = path_id(&channel_id)?;
    let ws = state.workspace();
    let channel = ws
        .channels
        .get(channel_id)
        .ok_or(ApiError::not_found("app.channel.get.existing.app_error"))?;
    if !ws.can_read_channel(&caller.user_id, channel) {
        return Err(ApiError::forbidden());
    }
    Ok(json(render::channel(channel)))
}

/// `GET /channels/{id}/members`: join order, paged.
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let channel_id = path_id(&channel_id)?;
    let ws = state.workspace();
    let channel = ws
        .channels
        .get(channel_id)
        .ok_or_else(ApiError::forbidden)?;
    if !ws.can_read_channel(&caller.user_id, channel) {
        return Err(ApiError::forbidden());
    }
    let rows: Vec<&ChannelMember> = ws.channel_members_of(channel_id).collect();
    let page = params.paging().slice(rows);
    Ok(json(Value::Array(
        page.into_iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .collect(),
    )))
}
