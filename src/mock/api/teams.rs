//! Teams of the caller, team members and team icons (§3).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::super::error::{ApiError, ApiResult};
use super::super::model::{Team, TeamMember};
use super::super::render;
use super::super::server::AppState;
use super::params::{Params, path_id};
use super::{Caller, bytes, json, with_etag};

pub async fn for_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user_id = caller.own_id(&user_id)?;
    let ws = state.workspace();
    let mut teams: Vec<&Team> = ws
        .teams
        .values()
        .filter(|t| t.delete_at == 0 && ws.is_team_member(&t.id, user_id))
        .collect();
    teams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(json(Value::Array(
        teams.into_iter().map(render::team).collect(),
    )))
}

fn member_rows<'a>(rows: impl Iterator<Item = &'a TeamMember>) -> Value {
    Value::Array(rows.filter_map(|m| serde_json::to_value(m).ok()).collect())
}

pub async fn memberships_of_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user_id = caller.own_id(&user_id)?;
    let ws = state.workspace();
    let rows = ws
        .team_members
        .iter()
        .filter(|m| m.user_id == user_id && m.delete_at == 0);
    Ok(json(member_rows(rows)))
}

/// `GET /teams/{id}/members`: ordered by user id (stable offset paging).
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    Path(team_id): Path<String>,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id)?;
    let ws = state.workspace();
    if !ws.is_team_member(team_id, &caller.user_id) {
        return Err(ApiError::forbidden());
    }
    let mut rows: Vec<&TeamMember> = ws
        .team_members
        .iter()
        .filter(|m| m.team_id == team_id && m.delete_at == 0)
        .collect();
    rows.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    Ok(json(member_rows(params.paging().slice(rows).into_iter())))
}

/// `GET /teams/{id}/image`: the uploaded icon, or 404 when there is none.
pub async fn image(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(team_id): Path<String>,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id)?;
    let (icon, etag) = {
        let ws = state.workspace();
        let team = ws
            .teams
            .get(team_id)
            .ok_or(ApiError::not_found("app.team.get.find.app_error"))?;
        if !team.allow_open_invite && !ws.is_team_member(team_id, &caller.user_id) {
            return Err(ApiError::forbidden());
        }
        let icon = team.icon.clone().filter(|_| team.last_team_icon_update > 0);
        let icon = icon.ok_or(ApiError::new(
            StatusCode::NOT_FOUND,
            "api.team.get_team_icon.read_file.app_error",
            "Could not read team icon file.",
        ))?;
        (icon, team.last_team_icon_update.to_string())
    };
    let mut response = with_etag(&headers, &etag, || bytes("image/png", icon));
    response.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("max-age=86400, private"),
    );
    Ok(response)
}
