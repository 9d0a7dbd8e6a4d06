//! Custom emojis and their images (§7).

use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::Value;

use super::super::error::{ApiError, ApiResult};
use super::super::model::Emoji;
use super::super::server::AppState;
use super::params::{Params, path_id};
use super::{Caller, bytes, json};

const EMOJI_MISSING: ApiError = ApiError::not_found("app.emoji.get.no_result");

/// `GET /emoji`: live emojis, by name with `sort=name`, otherwise by id.
pub async fn list(State(state): State<AppState>, _caller: Caller, params: Params) -> Response {
    let ws = state.workspace();
    let mut emojis: Vec<&Emoji> = ws.emojis.values().filter(|e| e.delete_at == 0).collect();
    if params.get("sort") == Some("name") {
        emojis.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let page = params.paging().slice(emojis);
    json(Value::Array(
        page.into_iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .collect(),
    ))
}

fn live_emoji<'a>(
    emojis: &'a std::collections::BTreeMap<String, Emoji>,
    id: &str,
) -> ApiResult<&'a Emoji> {
    emojis
        .get(path_id(id)?)
        .filter(|e| e.delete_at == 0)
        .ok_or(EMOJI_MISSING)
}

pub async fn by_id(
    State(state): State<AppState>,
    _caller: Caller,
    Path(emoji_id): Path<String>,
) -> ApiResult<Response> {
    let ws = state.workspace();
    let emoji = live_emoji(&ws.emojis, &emoji_id)?;
    Ok(json(serde_json::to_value(emoji).unwrap_or(Value::Null)))
}

/// `GET /emoji/{id}/image`: stored bytes as `image/<format>`.
pub async fn image(
    State(state): State<AppState>,
    _caller: Caller,
    Path(emoji_id): Path<String>,
) -> ApiResult<Response> {
    let (format, data) = {
        let ws = state.workspace();
        let emoji = live_emoji(&ws.emojis, &emoji_id)?;
        (emoji.format.clone(), emoji.bytes.clone())
    };
    let mut response = bytes(&format!("image/{format}"), data);
    response.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("max-age=2592000, private"),
    );
    Ok(response)
}
