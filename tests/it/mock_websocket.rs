//! The mock's WebSocket endpoint against the server's behaviour (API notes §15), driven by a
//! plain RFC 6455 client: handshake and authentication, `hello` and sequence numbers, event
//! payloads and who receives them, requests, resume and its limits, keep-alive.
//!
//! "Nothing was delivered" is shown without waiting: a `ping` request sent after the
//! mutation is answered through the same queue, so its reply must be the next message.

use crate::mock_support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use matterbak::mock::{
    DEAD_QUEUE_SIZE, MockServer, NewFile, SAMPLE_TOKEN, SEND_QUEUE_SIZE, Workspace, WsTiming,
    sample_png,
};
use mock_support::Ctx;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    socket: Socket,
    next_request: i64,
}

/// Opens `/api/v4/websocket{query}` with the given extra headers.
async fn open_with(server: &MockServer, query: &str, headers: &[(&str, String)]) -> Client {
    let url = format!("ws://{}/api/v4/websocket{query}", server.addr());
    let mut request = url.into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("header value"),
        );
    }
    let (socket, response) = connect_async(request).await.expect("upgrade");
    assert_eq!(response.status(), 101);
    Client {
        socket,
        next_request: 1,
    }
}

async fn open(server: &MockServer, query: &str) -> Client {
    open_with(
        server,
        query,
        &[("authorization", format!("Bearer {SAMPLE_TOKEN}"))],
    )
    .await
}

impl Client {
    /// The next text frame, raw (pings and pongs skipped). Panics if the socket ends.
    async fn next_text(&mut self) -> String {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("socket ended or sent something else: {other:?}"),
            }
        }
    }

    async fn next_json(&mut self) -> Value {
        let text = self.next_text().await;
        serde_json::from_str(&text).expect("json frame")
    }

    /// The next event, checking its name.
    async fn expect_event(&mut self, name: &str) -> Value {
        let message = self.next_json().await;
        assert_eq!(message["event"], name, "{message}");
        message
    }

    async fn send(&mut self, value: Value) {
        self.socket
            .send(Message::text(value.to_string()))
            .await
            .expect("send");
    }

    /// Sends a `ping` request and returns its seq.
    async fn ping(&mut self) -> i64 {
        let seq = self.next_request;
        self.next_request += 1;
        self.send(json!({"seq": seq, "action": "ping"})).await;
        seq
    }

    /// Asserts that nothing is queued for this socket: the reply to a new ping comes next.
    async fn expect_nothing_pending(&mut self) {
        let seq = self.ping().await;
        let message = self.next_json().await;
        assert_eq!(
            message["seq_reply"], seq,
            "expected only the ping reply: {message}"
        );
    }

    /// The socket ends without a close frame (the server dropped the TCP connection).
    async fn expect_dropped(&mut self) {
        loop {
            match self.socket.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("expected a drop, got {other:?}"),
            }
        }
    }
}

/// `data[key]`, a JSON string holding JSON, decoded.
fn embedded(message: &Value, key: &str) -> Value {
    let text = message["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("data.{key} is not a string: {message}"));
    serde_json::from_str(text).expect("embedded json")
}

fn post_in(ctx: &Ctx, channel: &str, user: &str, message: &str) -> String {
    ctx.ws(|ws| ws.create_post(channel, user, message, None))
}

#[tokio::test]
async fn hello_and_sequence_numbers_per_connection() {
    let ctx = Ctx::sample().await;
    let alice = ctx.ws(|ws| ws.user_id("alice"));
    let town = ctx.channel("eng", "town-square");
    let mut a = open(&ctx.server, "").await;
    let mut b = open(&ctx.server, "/").await; // a trailing slash is accepted
    let hello_a = a.next_text().await;
    assert!(
        hello_a.ends_with('\n'),
        "hello is compact JSON with a newline"
    );
    let hello_a: Value = serde_json::from_str(&hello_a).unwrap();
    let hello_b = b.expect_event("hello").await;
    assert_eq!(hello_a["event"], "hello");
    assert_eq!(hello_a["seq"], 0);
    assert_eq!(hello_a["broadcast"]["user_id"], alice.as_str());
    let id_a = hello_a["data"]["connection_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id_b = hello_b["data"]["connection_id"].as_str().unwrap();
    assert_eq!(id_a.len(), 26);
    assert!(
        id_a.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert_ne!(id_a, id_b);
    let version = hello_a["data"]["server_version"].as_str().unwrap();
    assert!(
        version.starts_with("9.11.0.") && version.ends_with(".false"),
        "{version}"
    );

    post_in(&ctx, &town, "bob", "first");
    post_in(&ctx, &town, "bob", "second");
    for client in [&mut a, &mut b] {
        for seq in [1, 2] {
            assert_eq!(client.expect_event("posted").await["seq"], seq);
        }
    }
    // A later connection numbers from its own hello.
    let mut c = open(&ctx.server, "").await;
    c.expect_event("hello").await;
    post_in(&ctx, &town, "bob", "third");
    assert_eq!(c.expect_event("posted").await["seq"], 1);
    assert_eq!(a.expect_event("posted").await["seq"], 3);
}

#[tokio::test]
async fn posted_carries_the_post_as_a_string_and_the_channel() {
    let ctx = Ctx::sample().await;
    let (alice, bob) = ctx.ws(|ws| (ws.user_id("alice"), ws.user_id("bob")));
    let (dev, eng) = (ctx.channel("eng", "dev"), ctx.ws(|ws| ws.team_id("eng")));
    let dm = ctx.ws(|ws| ws.dm_channel_id("alice", "bob"));
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;

    let png = NewFile {
        name: "shot.png".into(),
        bytes: sample_png("shot"),
        mime_type: "image/png".into(),
    };
    let post_id =
        ctx.ws(|ws| ws.create_post_with_files(&dev, "bob", "look @alice", None, vec![png]));
    let text = client.next_text().await;
    // alice is mentioned: her copy is modified for her (compact, with a newline).
    assert!(text.ends_with('\n'));
    let message: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(message["event"], "posted");
    let data = &message["data"];
    assert_eq!(data["channel_type"], "O");
    assert_eq!(data["channel_name"], "dev");
    assert_eq!(data["channel_display_name"], "Development");
    assert_eq!(data["sender_name"], "@bob");
    assert_eq!(data["team_id"], eng.as_str());
    assert_eq!(data["set_online"], true);
    assert_eq!(data["otherFile"], "true");
    assert_eq!(data["image"], "true");
    assert_eq!(data["mentions"], json!([alice]).to_string());
    assert_eq!(message["broadcast"]["channel_id"], dev.as_str());
    let post = embedded(&message, "post");
    assert_eq!(post["id"], post_id.as_str());
    assert_eq!(post["message"], "look @alice");
    assert_eq!(post["user_id"], bob.as_str());
    assert_eq!(post["metadata"]["files"][0]["name"], "shot.png");
    assert_eq!(post["reply_count"], 0);

    // Not mentioned: the shared pre-serialised form (spaces, no newline), no `mentions`.
    ctx.ws(|ws| ws.create_post(&dm, "bob", "plain", None));
    let text = client.next_text().await;
    assert!(text.starts_with("{\"event\": \"posted\", \"data\": {") && !text.ends_with('\n'));
    let message: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(message["data"]["channel_display_name"], "@bob");
    assert_eq!(message["data"]["channel_type"], "D");
    assert_eq!(message["data"]["team_id"], "");
    assert!(message["data"].get("mentions").is_none());
    assert!(message["data"].get("otherFile").is_none());
}

#[tokio::test]
async fn edits_deletes_and_reactions() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    let file = NewFile {
        name: "notes.txt".into(),
        bytes: b"kept bytes".to_vec(),
        mime_type: "text/plain".into(),
    };
    let post_id = ctx.ws(|ws| ws.create_post_with_files(&dev, "bob", "draft", None, vec![file]));
    let posted = client.expect_event("posted").await;
    assert!(posted["data"].get("image").is_none());
    ctx.ws(|ws| ws.edit_post(&post_id, "final"));
    let edited = client.expect_event("post_edited").await;
    let post = embedded(&edited, "post");
    assert_eq!(post["message"], "final");
    assert!(post["edit_at"].as_i64().unwrap() > 0);

    ctx.ws(|ws| ws.add_reaction(&post_id, "carol", "heart"));
    let added = client.expect_event("reaction_added").await;
    let reaction = embedded(&added, "reaction");
    assert_eq!(reaction["post_id"], post_id.as_str());
    assert_eq!(reaction["emoji_name"], "heart");
    assert_eq!(reaction["channel_id"], dev.as_str());
    assert!(reaction["create_at"].as_i64().unwrap() > 0);
    ctx.ws(|ws| ws.remove_reaction(&post_id, "carol", "heart"));
    let removed = client.expect_event("reaction_removed").await;
    let reaction = embedded(&removed, "reaction");
    assert_eq!(
        reaction["channel_id"], "",
        "the removal's object comes from the URL"
    );
    assert_eq!(reaction["create_at"], 0);
    assert!(reaction["update_at"].as_i64().unwrap() > 0);
    assert_eq!(removed["broadcast"]["channel_id"], dev.as_str());

    let file_id = ctx.ws(|ws| ws.post_file_ids(&post_id))[0].clone();
    ctx.ws(|ws| ws.delete_post(&post_id));
    let deleted = client.expect_event("post_deleted").await;
    let keys: Vec<&String> = deleted["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["post"], "an ordinary user gets no delete_by");
    assert_eq!(deleted["broadcast"]["contains_sanitized_data"], true);
    let post = embedded(&deleted, "post");
    assert_eq!(post["message"], "final");
    assert_eq!(post["delete_at"], 0, "the post as it was before the delete");
    assert_eq!(post["file_ids"], json!([file_id]));
    assert!(post.get("metadata").is_none());
    // And over REST the file is gone now (§15.8).
    let info = ctx.get(&format!("/files/{file_id}/info")).await;
    assert_eq!(info.status(), 404);
    client.expect_nothing_pending().await;
}

#[tokio::test]
async fn deleting_a_root_publishes_one_event() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    let root = post_in(&ctx, &town, "bob", "root");
    ctx.ws(|ws| ws.create_post(&town, "carol", "reply", Some(&root)));
    client.expect_event("posted").await;
    client.expect_event("posted").await;
    ctx.ws(|ws| ws.delete_post(&root));
    let deleted = client.expect_event("post_deleted").await;
    assert_eq!(embedded(&deleted, "post")["id"], root.as_str());
    assert_eq!(embedded(&deleted, "post")["reply_count"], 1);
    client.expect_nothing_pending().await;
}

#[tokio::test]
async fn who_receives_what() {
    let ctx = Ctx::sample().await;
    let (alice, bob, erin) =
        ctx.ws(|ws| (ws.user_id("alice"), ws.user_id("bob"), ws.user_id("erin")));
    let dev = ctx.channel("eng", "dev");
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;

    // A public channel alice is not in: nothing about it, not even its creation.
    let random = ctx.ws(|ws| ws.create_channel("eng", "random", "Random", 'O', &["bob", "carol"]));
    post_in(&ctx, &random, "bob", "not for alice");
    // Other people's DMs, and a team alice is not in.
    let bc = ctx.ws(|ws| ws.dm_channel_id("bob", "carol"));
    post_in(&ctx, &bc, "bob", "private");
    let secret = ctx.channel("secret", "town-square");
    post_in(&ctx, &secret, "zed", "secret");
    client.expect_nothing_pending().await;

    // Archiving a public channel goes to the team, members or not.
    ctx.ws(|ws| ws.archive_channel(&random));
    let archived = client.expect_event("channel_deleted").await;
    assert_eq!(archived["data"]["channel_id"], random.as_str());
    assert!(archived["data"]["delete_at"].as_i64().unwrap() > 0);
    ctx.ws(|ws| ws.restore_channel(&random));
    client.expect_event("channel_restored").await;

    // Joining: user_added (the channel id only in the broadcast), then the system post.
    ctx.ws(|ws| ws.add_channel_member(&random, "alice"));
    let added = client.expect_event("user_added").await;
    assert_eq!(added["data"]["user_id"], alice.as_str());
    assert_eq!(added["broadcast"]["channel_id"], random.as_str());
    let system = client.expect_event("posted").await;
    assert_eq!(embedded(&system, "post")["type"], "system_add_to_channel");
    assert_eq!(system["data"]["sender_name"], "System");
    post_in(&ctx, &random, "bob", "now alice hears it");
    client.expect_event("posted").await;

    // Leaving: the members get {user_id, remover_id}, the one who left {channel_id, …}.
    ctx.ws(|ws| ws.remove_channel_member(&dev, "bob"));
    let removed = client.expect_event("user_removed").await;
    assert_eq!(removed["data"]["user_id"], bob.as_str());
    assert_eq!(removed["broadcast"]["channel_id"], dev.as_str());
    ctx.ws(|ws| ws.remove_channel_member(&random, "alice"));
    let me_removed = client.expect_event("user_removed").await;
    assert_eq!(me_removed["data"]["channel_id"], random.as_str());
    assert_eq!(me_removed["broadcast"]["user_id"], alice.as_str());
    post_in(&ctx, &random, "bob", "alice left");
    client.expect_nothing_pending().await;

    // Channel changes, new channels (the creator only), DMs and GMs.
    ctx.ws(|ws| ws.update_channel(&dev, "header", "new header"));
    let updated = client.expect_event("channel_updated").await;
    assert_eq!(embedded(&updated, "channel")["header"], "new header");
    let mine = ctx.ws(|ws| ws.create_channel("eng", "mine", "Mine", 'P', &["alice", "erin"]));
    let created = client.expect_event("channel_created").await;
    assert_eq!(created["data"]["channel_id"], mine.as_str());
    assert_eq!(created["broadcast"]["user_id"], alice.as_str());
    let added = client.expect_event("user_added").await;
    assert_eq!(added["data"]["user_id"], erin.as_str());
    let dm = ctx.ws(|ws| ws.create_direct_channel("erin", "alice"));
    let direct = client.expect_event("direct_added").await;
    assert_eq!(direct["broadcast"]["channel_id"], dm.as_str());
    assert_eq!(direct["data"]["creator_id"], erin.as_str());
    assert_eq!(direct["data"]["teammate_id"], alice.as_str());
    let gm = ctx.ws(|ws| ws.create_group_channel(&["alice", "dave", "erin"]));
    let group = client.expect_event("group_added").await;
    assert_eq!(group["broadcast"]["channel_id"], gm.as_str());
    let ids: Vec<String> =
        serde_json::from_str(group["data"]["teammate_ids"].as_str().unwrap()).unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&alice));
    let open_channel = ctx.channel("eng", "off-topic");
    ctx.ws(|ws| ws.convert_channel_to_private(&open_channel));
    assert_eq!(
        client.expect_event("channel_updated").await["broadcast"]["channel_id"],
        open_channel.as_str()
    );
    client.expect_event("channel_converted").await;

    // Everyone: profile changes (an object, sanitized copy) and new emojis (a string).
    ctx.ws(|ws| ws.set_avatar("zed", sample_png("zed-new")));
    let user = client.expect_event("user_updated").await;
    assert!(user["data"]["user"].is_object());
    assert_eq!(user["data"]["user"]["username"], "zed");
    assert_eq!(user["broadcast"]["contains_sanitized_data"], true);
    ctx.ws(|ws| ws.add_emoji("shipit", "zed", sample_png("shipit"), "png"));
    let emoji = client.expect_event("emoji_added").await;
    assert_eq!(embedded(&emoji, "emoji")["name"], "shipit");
    client.expect_nothing_pending().await;
}

#[tokio::test]
async fn silent_changes_publish_nothing() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    let id = ctx.ws(|ws| ws.without_events(|ws| ws.create_post(&town, "bob", "imported", None)));
    ctx.ws(|ws| ws.delete_emoji("dancing"));
    client.expect_nothing_pending().await;
    // The state changed all the same.
    let post = ctx.get_json(&format!("/posts/{id}")).await;
    assert_eq!(post["message"], "imported");
}

#[tokio::test]
async fn authentication() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");

    // No credentials: the upgrade succeeds, nothing is heard until the challenge.
    let mut anonymous = open_with(&ctx.server, "", &[]).await;
    anonymous.send(json!({"seq": 1, "action": "ping"})).await; // no reply: not registered
    post_in(&ctx, &town, "bob", "before the challenge");
    anonymous
        .send(json!({"seq": 2, "action": "authentication_challenge", "data": {"token": SAMPLE_TOKEN}}))
        .await;
    let hello = anonymous.expect_event("hello").await;
    assert_eq!(hello["seq"], 0);
    assert_eq!(
        anonymous.next_json().await,
        json!({"status": "OK", "seq_reply": 2})
    );
    post_in(&ctx, &town, "bob", "after the challenge");
    assert_eq!(anonymous.expect_event("posted").await["seq"], 1);

    // Already authenticated by the header: the challenge gets no reply at all.
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    client
        .send(json!({"seq": 1, "action": "authentication_challenge", "data": {"token": SAMPLE_TOKEN}}))
        .await;
    client.next_request = 2;
    client.expect_nothing_pending().await;

    // A bad token in the challenge closes the connection, without a close frame.
    let mut bad = open_with(&ctx.server, "", &[("authorization", "Bearer nope".into())]).await;
    bad.send(json!({"seq": 1, "action": "authentication_challenge", "data": {"token": "wrong"}}))
        .await;
    bad.expect_dropped().await;
    let mut not_string = open_with(&ctx.server, "", &[]).await;
    not_string
        .send(json!({"seq": 1, "action": "authentication_challenge", "data": {"token": 7}}))
        .await;
    not_string.expect_dropped().await;

    // The cookie wins over the header.
    let mut cookie = open_with(
        &ctx.server,
        "",
        &[
            ("cookie", format!("MMAUTHTOKEN={SAMPLE_TOKEN}")),
            ("authorization", "Bearer wrong".into()),
        ],
    )
    .await;
    cookie.expect_event("hello").await;

    // A session token in the query string is refused before any upgrade.
    let url = format!(
        "ws://{}/api/v4/websocket?access_token={SAMPLE_TOKEN}",
        ctx.server.addr()
    );
    match connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["id"], "api.context.token_provided.app_error");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn unauthenticated_sockets_are_closed_after_the_auth_timeout() {
    let ctx = Ctx::sample().await;
    ctx.server.set_websocket_timing(WsTiming {
        auth_timeout: Duration::from_millis(100),
        ..WsTiming::default()
    });
    let mut anonymous = open_with(&ctx.server, "", &[]).await;
    anonymous.expect_dropped().await;
    // An authenticated one stays: its ping is still answered afterwards.
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    let mut other = open_with(&ctx.server, "", &[]).await;
    other.expect_dropped().await; // the timeout has passed for `client` too
    client.expect_nothing_pending().await;
}

#[tokio::test]
async fn failed_upgrades() {
    let ctx = Ctx::sample().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v4/websocket", ctx.server.url());
    // A plain GET: no upgrade headers.
    let response = http
        .get(&url)
        .bearer_auth(SAMPLE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    let json = body
        .strip_prefix("Bad Request\n")
        .expect("status text first");
    let error: Value = serde_json::from_str(json).unwrap();
    assert_eq!(error["id"], "api.web_socket.connect.upgrade.app_error");
    // A browser origin that is not the server's.
    let url = format!("ws://{}/api/v4/websocket", ctx.server.addr());
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    // The upgrade is a request like any other: it is counted.
    assert_eq!(ctx.server.count("GET /api/v4/websocket"), 2);
}

#[tokio::test]
async fn requests_and_their_errors() {
    let ctx = Ctx::sample().await;
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    client.send(json!({"seq": 5, "action": "ping"})).await;
    let pong = client.next_json().await;
    assert_eq!(pong["status"], "OK");
    assert_eq!(pong["seq_reply"], 5);
    assert_eq!(pong["data"]["text"], "pong");
    assert_eq!(pong["data"]["version"], "9.11.0");
    assert_eq!(pong["data"]["node_id"], "");
    assert!(pong["data"]["server_time"].as_i64().unwrap() > 0);
    assert!(pong.get("event").is_none() && pong.get("seq").is_none());

    client.send(json!({"seq": 6})).await;
    let no_action = client.next_json().await;
    assert_eq!(no_action["status"], "FAIL");
    assert_eq!(no_action["seq_reply"], 6);
    assert_eq!(
        no_action["error"]["id"],
        "api.web_socket_router.no_action.app_error"
    );
    assert_eq!(no_action["error"]["status_code"], 400);
    assert_eq!(no_action["error"]["detailed_error"], "");
    client.send(json!({"seq": 0, "action": "ping"})).await;
    let bad_seq = client.next_json().await;
    assert_eq!(
        bad_seq["error"]["id"],
        "api.web_socket_router.bad_seq.app_error"
    );
    assert!(bad_seq.get("seq_reply").is_none());
    client
        .send(json!({"seq": 7, "action": "get_statuses_typo"}))
        .await;
    let bad_action = client.next_json().await;
    assert_eq!(
        bad_action["error"]["id"],
        "api.web_socket_router.bad_action.app_error"
    );
    assert_eq!(bad_action["error"]["status_code"], 500);
    // A frame that does not decode as a request ends the connection.
    client.send(json!({"seq": "8", "action": "ping"})).await;
    client.expect_dropped().await;
}

#[tokio::test]
async fn a_revoked_session_hears_nothing_and_pings_fail() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    ctx.ws(|ws| ws.set_user_field("alice", "delete_at", json!(1)));
    post_in(&ctx, &town, "bob", "unheard");
    let seq = client.ping().await;
    let reply = client.next_json().await;
    assert_eq!(reply["seq_reply"], seq);
    assert_eq!(reply["status"], "FAIL");
    assert_eq!(
        reply["error"]["id"],
        "api.web_socket_router.not_authenticated.app_error"
    );
    assert_eq!(reply["error"]["status_code"], 401);
}

/// A new connection to `server` past its `hello`, and the connection id that gave it.
/// Opens a connection that asks to resume connection `id` with `sequence_number=seq`.
async fn reopen(server: &MockServer, id: &str, seq: i64) -> Client {
    open(
        server,
        &format!("?connection_id={id}&sequence_number={seq}"),
    )
    .await
}

async fn past_hello(server: &MockServer) -> (Client, String) {
    let mut client = open(server, "").await;
    let id = client.expect_event("hello").await["data"]["connection_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (client, id)
}

/// Waits until the server has seen the drop of every socket (no connection active).
async fn dropped(server: &MockServer) {
    server.drop_websockets();
    server
        .wait_for_websockets(|conns| conns.iter().all(|c| !c.active))
        .await;
}

#[tokio::test]
async fn resume_replays_what_was_missed() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let mut client = open(&ctx.server, "").await;
    let hello = client.expect_event("hello").await;
    let id = hello["data"]["connection_id"].as_str().unwrap().to_owned();
    post_in(&ctx, &town, "bob", "seen");
    assert_eq!(client.expect_event("posted").await["seq"], 1);
    dropped(&ctx.server).await;
    client.expect_dropped().await;
    let missed: Vec<String> = (0..3)
        .map(|n| post_in(&ctx, &town, "bob", &format!("missed {n}")))
        .collect();
    let queued = ctx.server.websocket_connections();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].queued, 3);

    // Resume: the queued events, numbered on, no hello.
    let mut resumed = reopen(&ctx.server, &id, 2).await;
    for (n, post_id) in missed.iter().enumerate() {
        let event = resumed.expect_event("posted").await;
        assert_eq!(event["seq"], 2 + n as i64);
        assert_eq!(embedded(&event, "post")["id"], post_id.as_str());
    }
    resumed.expect_nothing_pending().await;
    assert_eq!(ctx.server.websocket_connections()[0].connection_id, id);

    // Asking for an event already written replays it from the dead queue, original seq.
    dropped(&ctx.server).await;
    let mut again = reopen(&ctx.server, &id, 3).await;
    for seq in [3, 4] {
        let event = again.expect_event("posted").await;
        assert_eq!(event["seq"], seq);
    }
    post_in(&ctx, &town, "bob", "live again");
    assert_eq!(again.expect_event("posted").await["seq"], 5);
}

#[tokio::test]
async fn the_dead_queue_holds_the_last_128_events() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let total = DEAD_QUEUE_SIZE as i64 + 20;
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = open(&ctx.server, "").await;
        let hello = client.expect_event("hello").await;
        ids.push(hello["data"]["connection_id"].as_str().unwrap().to_owned());
        clients.push(client);
    }
    for n in 0..total {
        post_in(&ctx, &town, "bob", &format!("post {n}"));
    }
    for client in &mut clients {
        for seq in 1..=total {
            assert_eq!(client.expect_event("posted").await["seq"], seq);
        }
    }
    dropped(&ctx.server).await;
    // The oldest replayable event is the 128th before the end.
    let oldest = total + 1 - DEAD_QUEUE_SIZE as i64;
    let mut replay = reopen(&ctx.server, &ids[0], oldest).await;
    let first = replay.expect_event("posted").await;
    assert_eq!(first["seq"], oldest);
    // One older than that: lost, so a new connection id and hello.
    let mut lost = reopen(&ctx.server, &ids[1], oldest - 1).await;
    let hello = lost.expect_event("hello").await;
    assert_eq!(hello["seq"], 0);
    assert_ne!(hello["data"]["connection_id"], ids[1].as_str());
    lost.expect_nothing_pending().await;
}

#[tokio::test]
async fn more_than_the_send_queue_while_away_forgets_the_connection() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let (_client, id) = past_hello(&ctx.server).await;
    dropped(&ctx.server).await;
    for n in 0..SEND_QUEUE_SIZE {
        post_in(&ctx, &town, "bob", &format!("queued {n}"));
    }
    assert_eq!(
        ctx.server.websocket_connections()[0].queued,
        SEND_QUEUE_SIZE
    );
    post_in(&ctx, &town, "bob", "one too many");
    assert!(ctx.server.websocket_connections().is_empty());
    let mut resumed = reopen(&ctx.server, &id, 1).await;
    let hello = resumed.expect_event("hello").await;
    assert_ne!(hello["data"]["connection_id"], id.as_str());
    resumed.expect_nothing_pending().await;
}

#[tokio::test]
async fn resume_requests_that_cannot_be_honoured() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let (mut first, id) = past_hello(&ctx.server).await;
    post_in(&ctx, &town, "bob", "one");
    first.expect_event("posted").await;

    // Half-open: the connection is still active, so it is not found: a fresh one.
    let mut half_open = reopen(&ctx.server, &id, 2).await;
    let hello = half_open.expect_event("hello").await;
    assert_ne!(hello["data"]["connection_id"], id.as_str());

    // A number ahead of what was written: a new connection id.
    dropped(&ctx.server).await;
    let mut ahead = reopen(&ctx.server, &id, 50).await;
    let hello = ahead.expect_event("hello").await;
    let renamed = hello["data"]["connection_id"].as_str().unwrap().to_owned();
    assert_ne!(renamed, id);
    post_in(&ctx, &town, "bob", "two");
    assert_eq!(ahead.expect_event("posted").await["seq"], 1);

    // Malformed ids and numbers: closed right after the 101.
    let mut bad_id = open(&ctx.server, "?connection_id=nope&sequence_number=1").await;
    bad_id.expect_dropped().await;
    dropped(&ctx.server).await;
    let mut no_seq = open(&ctx.server, &format!("?connection_id={renamed}")).await;
    no_seq.expect_dropped().await;
    // The server took the connection out before reading the number: it is gone.
    let mut after = reopen(&ctx.server, &renamed, 2).await;
    let hello = after.expect_event("hello").await;
    assert_ne!(hello["data"]["connection_id"], renamed.as_str());

    // A server restart forgets every connection.
    let fresh_id = hello["data"]["connection_id"].as_str().unwrap().to_owned();
    ctx.server.restart_websockets();
    after.expect_dropped().await;
    let mut restarted = reopen(&ctx.server, &fresh_id, 1).await;
    let hello = restarted.expect_event("hello").await;
    assert_ne!(hello["data"]["connection_id"], fresh_id.as_str());
}

#[tokio::test]
async fn inactive_connections_are_reaped() {
    let ctx = Ctx::sample().await;
    ctx.server.set_websocket_timing(WsTiming {
        reap_after: Duration::ZERO,
        ..WsTiming::default()
    });
    let (_client, id) = past_hello(&ctx.server).await;
    dropped(&ctx.server).await;
    let mut resumed = reopen(&ctx.server, &id, 1).await;
    let hello = resumed.expect_event("hello").await;
    assert_ne!(hello["data"]["connection_id"], id.as_str());
}

#[tokio::test]
async fn server_pings_and_the_pong_deadline() {
    let ctx = Ctx::with(Workspace::sample()).await;
    ctx.server.set_websocket_timing(WsTiming {
        ping_interval: Duration::from_millis(20),
        pong_wait: Duration::from_millis(200),
        ..WsTiming::default()
    });
    // A client that answers pings (tungstenite does while reading) stays connected well
    // past the pong deadline.
    let mut client = open(&ctx.server, "").await;
    client.expect_event("hello").await;
    let mut pings = 0;
    while pings < 20 {
        match client.socket.next().await {
            Some(Ok(Message::Ping(payload))) => {
                assert!(payload.is_empty());
                pings += 1;
            }
            other => panic!("expected pings, got {other:?}"),
        }
    }
    client.expect_nothing_pending().await;

    // A client that never answers is dropped after the deadline, without a close frame.
    let mut raw = tokio::net::TcpStream::connect(ctx.server.addr())
        .await
        .unwrap();
    let request = format!(
        "GET /api/v4/websocket HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {SAMPLE_TOKEN}\r\n\r\n",
        ctx.server.addr()
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match raw.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(received.starts_with(b"HTTP/1.1 101"));
    let frames = &received[head_end..];
    // Frames: the hello (text, 0x81), pings (0x89, empty) and no close frame (0x88).
    assert_eq!(frames[0], 0x81);
    let mut at = 0;
    let mut kinds = Vec::new();
    while at < frames.len() {
        let kind = frames[at];
        let len = usize::from(frames[at + 1] & 0x7f);
        let (len, header) = match len {
            126 => (
                usize::from(u16::from_be_bytes([frames[at + 2], frames[at + 3]])),
                4,
            ),
            127 => panic!("unexpectedly long frame"),
            n => (n, 2),
        };
        kinds.push(kind);
        at += header + len;
    }
    assert!(
        kinds.iter().filter(|k| **k == 0x89).count() >= 2,
        "{kinds:x?}"
    );
    assert!(
        !kinds.contains(&0x88),
        "dropped without a close frame: {kinds:x?}"
    );
}

/// `user_updated` as `sendUpdatedUserEvent` sends it (`app/user.go`): the user themself
/// gets their unsanitized record (private fields included), everyone else the sanitized
/// profile, without them.
#[tokio::test]
async fn user_updated_is_unsanitized_only_for_the_user_themself() {
    let ctx = Ctx::sample().await;
    let alice = ctx.ws(|ws| ws.user_id("alice"));
    let (mut client, _) = past_hello(&ctx.server).await;
    ctx.ws(|ws| ws.set_user_field("alice", "nickname", json!("Al")));
    let own = client.expect_event("user_updated").await;
    assert_eq!(own["broadcast"]["user_id"], alice.as_str());
    assert_eq!(own["data"]["user"]["nickname"], "Al");
    assert!(own["data"]["user"]["password"].is_string(), "{own}");
    assert!(own["data"]["user"]["notify_props"].is_object(), "{own}");
    ctx.ws(|ws| ws.set_user_field("bob", "nickname", json!("B")));
    let other = client.expect_event("user_updated").await;
    assert_eq!(other["broadcast"]["contains_sanitized_data"], true);
    assert_eq!(
        other["broadcast"]["omit_users"][ctx.ws(|ws| ws.user_id("bob"))],
        true
    );
    assert_eq!(other["data"]["user"]["nickname"], "B");
    assert!(other["data"]["user"].get("password").is_none(), "{other}");
    assert!(other["data"]["user"].get("mfa_secret").is_none(), "{other}");
    client.expect_nothing_pending().await;
}

/// Team membership as `app/team.go` publishes it: joining enters the open default channels
/// (a join post, then `user_added` with the user as an object and no `user_id`), then
/// `added_to_team` goes to the joining user alone; leaving sends `leave_team` to the team's
/// members, the leaving user still among them.
#[tokio::test]
async fn team_joins_and_leaves_are_published_as_the_server_does() {
    let ctx = Ctx::sample().await;
    let alice = ctx.ws(|ws| ws.user_id("alice"));
    let secret = ctx.ws(|ws| ws.team_id("secret"));
    let secret_town = ctx.channel("secret", "town-square");
    let (mut client, _) = past_hello(&ctx.server).await;
    ctx.ws(|ws| ws.add_team_member("secret", "alice"));
    let posted = client.expect_event("posted").await;
    assert_eq!(embedded(&posted, "post")["type"], "system_join_team");
    let added = client.expect_event("user_added").await;
    assert_eq!(added["broadcast"]["channel_id"], secret_town.as_str());
    assert_eq!(added["data"]["user"]["id"], alice.as_str());
    assert!(added["data"].get("user_id").is_none(), "{added}");
    let joined = client.expect_event("added_to_team").await;
    assert_eq!(joined["broadcast"]["user_id"], alice.as_str());
    assert_eq!(joined["data"]["team_id"], secret.as_str());
    assert_eq!(joined["data"]["user_id"], alice.as_str());
    client.expect_nothing_pending().await;
    ctx.ws(|ws| ws.remove_team_member("secret", "alice"));
    let left = client.expect_event("leave_team").await;
    assert_eq!(left["broadcast"]["team_id"], secret.as_str());
    assert_eq!(left["data"]["user_id"], alice.as_str());
    client.expect_nothing_pending().await;
}
