//! `/__mock/*`: unauthenticated hooks for scripts (never counted, never faulted).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::super::error::{ApiError, ApiResult};
use super::super::server::AppState;
use super::json;

/// Applies the update scenario; a second call is refused (409) because the scenario
/// is defined against the sample's initial state.
pub async fn apply_update(State(state): State<AppState>) -> ApiResult<Response> {
    let mut ws = state.workspace();
    if ws.update_scenario_applied() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "mock.scenario.already_applied",
            "The update scenario was already applied.",
        ));
    }
    ws.apply_update_scenario();
    Ok(json(json!({"ok": true})))
}

/// Adds the file-name scenario (channel `eng/file-names`); refused (409) when applied
/// before or when the workspace has no team `eng` (the sample has it).
pub async fn apply_file_names(State(state): State<AppState>) -> ApiResult<Response> {
    let mut ws = state.workspace();
    if !ws.file_name_cases_possible() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "mock.scenario.not_applicable",
            "The file-name scenario was applied before, or there is no team eng.",
        ));
    }
    let channel_id = ws.add_file_name_cases();
    Ok(json(json!({"ok": true, "channel_id": channel_id})))
}

pub async fn requests(State(state): State<AppState>) -> Response {
    let records = state.records();
    let mut by_route: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        *by_route.entry(record.route.clone()).or_default() += 1;
    }
    json(json!({"total": records.len(), "by_route": by_route}))
}

pub async fn reset_requests(State(state): State<AppState>) -> Response {
    state.clear_records();
    json(json!({"ok": true}))
}

/// Drops every WebSocket like a network failure (resumable).
pub async fn drop_websockets(State(state): State<AppState>) -> Response {
    state.hub().drop_sockets();
    json(json!({"ok": true}))
}

/// Forgets every WebSocket connection like a server restart.
pub async fn restart_websockets(State(state): State<AppState>) -> Response {
    state.hub().forget_all();
    json(json!({"ok": true}))
}
