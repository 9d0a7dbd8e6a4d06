//! `GET /api/v4/websocket`: the upgrade and one task per socket (API notes §15.1–§15.5;
//! `api4/websocket.go`, `web_conn.go` readPump/writePump, `websocket_router.go`).
//!
//! Authentication at upgrade (cookie `MMAUTHTOKEN`, then `Authorization`) makes the socket
//! a hub connection at once; a missing or invalid token still upgrades, but the socket hears
//! nothing until an `authentication_challenge` succeeds and is closed after the auth timeout
//! otherwise. Requests are answered as the server's router does; their replies go through
//! the hub, so an unregistered socket gets none. Every close the server makes without a close
//! frame is a plain drop of the socket here.

use std::collections::HashMap;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::super::error::ApiError;
use super::super::hub::{Attached, Out};
use super::super::server::{AppState, SERVER_VERSION};

/// `SocketMaxMessageSizeKb`: the read limit for client messages (close 1009 beyond).
const MAX_CLIENT_MESSAGE: usize = 8192;

/// Who the upgrade request authenticated as.
struct Session {
    user_id: String,
    token: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "MMAUTHTOKEN")
        .map(|(_, value)| value.to_owned())
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    let token = token.trim();
    (known && !token.is_empty()).then(|| token.to_owned())
}

/// The upgrade failed (gorilla's `Upgrader`): the status text, then the AppError JSON.
fn upgrade_error(status: StatusCode) -> Response {
    let prefix = match status {
        StatusCode::FORBIDDEN => "Forbidden\n",
        _ => "Bad Request\n",
    };
    ApiError::new(
        status,
        "api.web_socket.connect.upgrade.app_error",
        "Failed to upgrade websocket connection.",
    )
    .with_body_prefix(prefix)
    .into_response()
}

/// `Origin` must name the host the request was sent to (`OriginChecker` without a site URL);
/// a client that is not a browser sends none.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host.trim_end_matches('/').eq_ignore_ascii_case(host)
}

pub async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, rejection::WebSocketUpgradeRejection>,
) -> Response {
    // `ParseAuthTokenFromRequest`: the cookie wins over the header, then the query.
    let token = cookie_token(&headers).or_else(|| header_token(&headers));
    let session = {
        let ws = state.workspace();
        match &token {
            Some(token) => ws.session_user(token).map(|user_id| Session {
                user_id: user_id.to_owned(),
                token: token.clone(),
            }),
            None => {
                let query_token = query.get("access_token").filter(|t| !t.is_empty());
                if query_token.is_some_and(|t| ws.session_user(t).is_some()) {
                    // Not an OAuth session (the mock has none): refused before any upgrade.
                    return ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "api.context.token_provided.app_error",
                        "Session is not OAuth but token was provided in the query string.",
                    )
                    .into_response();
                }
                None
            }
        }
    };
    if !origin_allowed(&headers) {
        return upgrade_error(StatusCode::FORBIDDEN);
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) => return upgrade_error(StatusCode::BAD_REQUEST),
    };
    let connection_id = query.get("connection_id").cloned().unwrap_or_default();
    let sequence_number = query.get("sequence_number").cloned();
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            serve(state, socket, session, connection_id, sequence_number).await;
        })
}

/// A client request (`model.WebSocketRequest`); a frame that does not decode into it closes
/// the connection.
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    seq: i64,
    #[serde(default)]
    action: String,
    #[serde(default)]
    data: Option<Map<String, Value>>,
}

/// A `FAIL` response without `detailed_error` (cleared before sending).
fn failure(seq: i64, id: &str, message: &str, status: u16) -> String {
    let mut reply = json!({"status": "FAIL"});
    if seq != 0 {
        reply["seq_reply"] = json!(seq);
    }
    reply["error"] = json!({
        "id": id,
        "message": message,
        "detailed_error": "",
        "status_code": status,
    });
    reply.to_string()
}

/// What the socket task does after one wake-up.
enum Step {
    Write(String),
    Close(Option<CloseFrame>),
    Drop,
    Ping,
    Pong,
    Request(String),
    Nothing,
}

async fn serve(
    state: AppState,
    mut socket: WebSocket,
    session: Option<Session>,
    connection_id: String,
    sequence_number: Option<String>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let timing = state.hub().timing;
    let mut conn: Option<Attached> = None;
    if let Some(session) = &session {
        let attached = if connection_id.is_empty() {
            Ok(state
                .hub()
                .attach_fresh(&session.user_id, &session.token, tx.clone()))
        } else {
            state.hub().attach_resumed(
                &session.user_id,
                &session.token,
                &connection_id,
                sequence_number.as_deref(),
                tx.clone(),
            )
        };
        match attached {
            Ok(attached) => conn = Some(attached),
            // `PopulateWebConnConfig` failed: the socket is closed right after the 101.
            Err(_) => return,
        }
    }
    // The hub holds the only sender of a registered connection: when it forgets the
    // connection the channel closes and the socket gets a close frame.
    let mut own_tx = if conn.is_some() { None } else { Some(tx) };
    let started = Instant::now();
    let mut read_deadline = started + timing.pong_wait;
    let mut next_ping = started + timing.ping_interval;
    let auth_deadline = started + timing.auth_timeout;
    let mut challenge_token: Option<String> = None;
    loop {
        let authenticated = conn.is_some();
        let step = tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(text)) => Step::Write(text),
                Some(Out::Drop) => Step::Drop,
                None => Step::Close(None),
            },
            message = socket.recv() => match message {
                None => Step::Drop,
                Some(Err(error)) => {
                    let too_big = error_text(&error).contains("Message too long")
                        || error_text(&error).contains("Space limit exceeded");
                    if too_big {
                        Step::Close(Some(CloseFrame { code: 1009, reason: "".into() }))
                    } else {
                        Step::Drop
                    }
                }
                Some(Ok(Message::Text(text))) => Step::Request(text.as_str().to_owned()),
                // Binary frames are msgpack requests; the mock speaks none (an
                // unauthenticated socket is closed for one by the server too).
                Some(Ok(Message::Binary(_))) => Step::Drop,
                Some(Ok(Message::Pong(_))) => Step::Pong,
                Some(Ok(Message::Ping(_))) => Step::Nothing,
                Some(Ok(Message::Close(_))) => Step::Drop,
            },
            _ = sleep_until(next_ping) => Step::Ping,
            _ = sleep_until(read_deadline) => Step::Drop,
            _ = sleep_until(auth_deadline), if !authenticated => Step::Drop,
        };
        match step {
            Step::Write(text) => {
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            Step::Close(frame) => {
                let _ = socket.send(Message::Close(frame)).await;
                break;
            }
            Step::Drop => break,
            Step::Ping => {
                next_ping = Instant::now() + timing.ping_interval;
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            Step::Pong => read_deadline = Instant::now() + timing.pong_wait,
            Step::Nothing => {}
            Step::Request(text) => {
                let Ok(request) = serde_json::from_str::<Request>(&text) else {
                    break; // readPump's Decode error
                };
                match route(
                    &state,
                    &request,
                    conn.as_ref(),
                    session.as_ref(),
                    &challenge_token,
                ) {
                    Routed::Reply(reply) => {
                        if let Some(attached) = &conn {
                            state.hub().respond(attached.key, reply);
                        }
                    }
                    Routed::Ignore => {}
                    Routed::Close => break,
                    Routed::Authenticate { user_id, token } => {
                        let Some(tx) = own_tx.take() else { break };
                        let attached = state.hub().attach_fresh(&user_id, &token, tx);
                        let reply = json!({"status": "OK", "seq_reply": request.seq}).to_string();
                        state.hub().respond(attached.key, reply);
                        challenge_token = Some(token);
                        conn = Some(attached);
                    }
                }
            }
        }
    }
    if let Some(attached) = conn {
        state.hub().detach(attached.key);
    }
}

fn error_text(error: &axum::Error) -> String {
    error.to_string()
}

enum Routed {
    Reply(String),
    Ignore,
    Close,
    Authenticate { user_id: String, token: String },
}

/// `WebSocketRouter.ServeWebSocket`.
fn route(
    state: &AppState,
    request: &Request,
    conn: Option<&Attached>,
    session: Option<&Session>,
    challenge_token: &Option<String>,
) -> Routed {
    if request.action.is_empty() {
        return Routed::Reply(failure(
            request.seq,
            "api.web_socket_router.no_action.app_error",
            "No websocket action.",
            400,
        ));
    }
    if request.seq <= 0 {
        return Routed::Reply(failure(
            request.seq,
            "api.web_socket_router.bad_seq.app_error",
            "Invalid sequence for WebSocket message.",
            400,
        ));
    }
    if request.action == "authentication_challenge" {
        if conn.is_some() {
            return Routed::Ignore; // already authenticated: no reply at all
        }
        let token = request
            .data
            .as_ref()
            .and_then(|d| d.get("token"))
            .and_then(Value::as_str);
        let Some(token) = token else {
            return Routed::Close;
        };
        let user = state.workspace().session_user(token).map(str::to_owned);
        return match user {
            Some(user_id) => Routed::Authenticate {
                user_id,
                token: token.to_owned(),
            },
            None => Routed::Close,
        };
    }
    let token = session
        .map(|s| s.token.clone())
        .or_else(|| challenge_token.clone());
    let (server_time, valid) = {
        let ws = state.workspace();
        let valid = token.as_deref().and_then(|t| ws.session_user(t)).is_some();
        (ws.now(), valid)
    };
    if !valid {
        return Routed::Reply(failure(
            request.seq,
            "api.web_socket_router.not_authenticated.app_error",
            "Unauthenticated WebSocket connection. Please log in.",
            401,
        ));
    }
    match request.action.as_str() {
        "ping" => Routed::Reply(
            json!({
                "status": "OK",
                "seq_reply": request.seq,
                "data": {
                    "node_id": "",
                    "server_time": server_time,
                    "text": "pong",
                    "version": SERVER_VERSION,
                },
            })
            .to_string(),
        ),
        _ => Routed::Reply(failure(
            request.seq,
            "api.web_socket_router.bad_action.app_error",
            "Unknown WebSocket action.",
            500,
        )),
    }
}
