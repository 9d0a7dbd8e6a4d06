//! `mm::ws::Listener` against the mock's WebSocket on loopback: the first `hello`, typed
//! events, resume after a drop, a new connection id when the server cannot resume, backoff
//! while the server is away, a revoked session, and stop.

use std::net::SocketAddr;
use std::time::Duration;

use matterbak::config::Secret;
use matterbak::mm::StopSignal;
use matterbak::mm::ws::{Event, Failure, Item, Listener, WsError, WsOptions};
use matterbak::mock::{MockServer, NewFile, SAMPLE_TOKEN, SEND_QUEUE_SIZE, Workspace};

fn options() -> WsOptions {
    WsOptions {
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..WsOptions::default()
    }
}

fn listener(server: &MockServer, stop: &StopSignal) -> Listener {
    Listener::new(&server.url(), Secret::new(SAMPLE_TOKEN), options(), stop).expect("listener")
}

async fn next(listener: &mut Listener) -> Item {
    listener.next().await.expect("an item")
}

/// The next item must be an event; returns it.
async fn next_event(listener: &mut Listener) -> (i64, Event) {
    match next(listener).await {
        Item::Event(event) => {
            let event = *event;
            (event.seq, event.event)
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn fresh(listener: &mut Listener) -> (String, Option<String>) {
    match next(listener).await {
        Item::Fresh {
            connection_id,
            previous,
            server_version,
        } => {
            assert!(server_version.starts_with("9.11.0."), "{server_version}");
            (connection_id, previous)
        }
        other => panic!("expected a fresh connection, got {other:?}"),
    }
}

/// A sample server, its eng town-square, the stop signal and a listener past its first
/// `hello`, and that hello's connection id: where every resume test starts.
async fn connected() -> (MockServer, String, StopSignal, Listener, String) {
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    let town = server.with_workspace(|w| w.channel_id("eng", "town-square"));
    let stop = StopSignal::default();
    let mut ws = listener(&server, &stop);
    let (id, previous) = fresh(&mut ws).await;
    assert_eq!(previous, None);
    (server, town, stop, ws, id)
}

fn posted_id(event: &Event) -> &str {
    match event {
        Event::Posted { post, .. } => &post.value.id,
        other => panic!("expected posted, got {other:?}"),
    }
}

#[tokio::test]
async fn first_connection_then_typed_events() {
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    let stop = StopSignal::default();
    let mut ws = listener(&server, &stop);
    let (id, previous) = fresh(&mut ws).await;
    assert_eq!(previous, None);
    assert_eq!(server.websocket_connections()[0].connection_id, id);
    assert_eq!(ws.connection_id(), Some(id.as_str()));

    let dev = server.with_workspace(|w| w.channel_id("eng", "dev"));
    let file = NewFile {
        name: "a.txt".into(),
        bytes: b"abc".to_vec(),
        mime_type: "text/plain".into(),
    };
    let post_id =
        server.with_workspace(|w| w.create_post_with_files(&dev, "bob", "hello", None, vec![file]));
    let (seq, event) = next_event(&mut ws).await;
    assert_eq!(seq, 1);
    match &event {
        Event::Posted {
            post,
            channel_type,
            team_id,
        } => {
            assert_eq!(post.value.id, post_id);
            assert_eq!(post.value.message, "hello");
            assert_eq!(post.value.metadata.files.len(), 1);
            assert_eq!(channel_type, "O");
            assert!(!team_id.is_empty());
        }
        other => panic!("{other:?}"),
    }
    server.with_workspace(|w| w.add_reaction(&post_id, "carol", "smile"));
    match next_event(&mut ws).await.1 {
        Event::ReactionAdded {
            reaction,
            post_id: on,
            channel_id,
        } => {
            assert_eq!(reaction.value.emoji_name, "smile");
            assert_eq!(
                (on.as_str(), channel_id.as_str()),
                (post_id.as_str(), dev.as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    server.with_workspace(|w| w.remove_reaction(&post_id, "carol", "smile"));
    assert!(matches!(
        next_event(&mut ws).await.1,
        Event::ReactionRemoved { channel_id, .. } if channel_id == dev
    ));
    server.with_workspace(|w| w.delete_post(&post_id));
    match next_event(&mut ws).await.1 {
        Event::PostDeleted { post, delete_by } => {
            assert_eq!(post.value.message, "hello");
            assert_eq!(post.value.delete_at, 0);
            assert_eq!(post.value.file_ids.len(), 1);
            assert_eq!(delete_by, None);
        }
        other => panic!("{other:?}"),
    }
    server.with_workspace(|w| w.add_channel_member(&dev, "erin"));
    assert!(matches!(
        next_event(&mut ws).await.1,
        Event::UserAdded { channel_id, .. } if channel_id == dev
    ));
    assert!(matches!(next_event(&mut ws).await.1, Event::Posted { .. }));
}

#[tokio::test]
async fn a_drop_is_resumed_without_losing_events() {
    let (server, town, _stop, mut ws, id) = connected().await;
    let first = server.with_workspace(|w| w.create_post(&town, "bob", "before", None));
    assert_eq!(posted_id(&next_event(&mut ws).await.1), first);

    server.drop_websockets();
    let missed: Vec<String> = (0..5)
        .map(|n| server.with_workspace(|w| w.create_post(&town, "bob", &format!("away {n}"), None)))
        .collect();
    match next(&mut ws).await {
        Item::Disconnected(Failure::Lost(_)) => {}
        other => panic!("expected the loss to be reported, got {other:?}"),
    }
    match next(&mut ws).await {
        Item::Resumed { connection_id } => assert_eq!(connection_id, id),
        other => panic!("expected a resume, got {other:?}"),
    }
    for (n, post_id) in missed.iter().enumerate() {
        let (seq, event) = next_event(&mut ws).await;
        assert_eq!(seq, 2 + n as i64);
        assert_eq!(posted_id(&event), post_id);
    }
    // And live again.
    let after = server.with_workspace(|w| w.create_post(&town, "bob", "after", None));
    assert_eq!(posted_id(&next_event(&mut ws).await.1), after);
    assert!(ws.is_connected());
}

#[tokio::test]
async fn a_drop_with_nothing_missed_is_resumed_too() {
    let (server, town, _stop, mut ws, id) = connected().await;
    server.drop_websockets();
    assert!(matches!(next(&mut ws).await, Item::Disconnected(_)));
    // The resume is confirmed by the reply to the ping the client sends after connecting.
    match next(&mut ws).await {
        Item::Resumed { connection_id } => assert_eq!(connection_id, id),
        other => panic!("expected a resume, got {other:?}"),
    }
    let post = server.with_workspace(|w| w.create_post(&town, "bob", "x", None));
    let (seq, event) = next_event(&mut ws).await;
    assert_eq!((seq, posted_id(&event)), (1, post.as_str()));
}

#[tokio::test]
async fn too_much_while_away_is_a_new_connection() {
    let (server, town, _stop, mut ws, id) = connected().await;
    server.drop_websockets();
    server.with_workspace(|w| {
        for n in 0..=SEND_QUEUE_SIZE {
            w.create_post(&town, "bob", &format!("flood {n}"), None);
        }
    });
    assert!(matches!(next(&mut ws).await, Item::Disconnected(_)));
    let (new_id, previous) = fresh(&mut ws).await;
    assert_eq!(previous.as_deref(), Some(id.as_str()));
    assert_ne!(new_id, id);
    // Numbering starts over with the new connection.
    let post = server.with_workspace(|w| w.create_post(&town, "bob", "next", None));
    let (seq, event) = next_event(&mut ws).await;
    assert_eq!((seq, posted_id(&event)), (1, post.as_str()));
}

#[tokio::test]
async fn a_server_restart_is_a_new_connection() {
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    let stop = StopSignal::default();
    let mut ws = listener(&server, &stop);
    let (id, _) = fresh(&mut ws).await;
    server.restart_websockets();
    assert!(matches!(next(&mut ws).await, Item::Disconnected(_)));
    let (new_id, previous) = fresh(&mut ws).await;
    assert_eq!(previous, Some(id.clone()));
    assert_ne!(new_id, id);
}

/// A free loopback port (bound, then released).
async fn free_addr() -> SocketAddr {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    probe.local_addr().unwrap()
}

#[tokio::test]
async fn a_server_that_is_away_is_retried_until_it_is_back() {
    let addr = free_addr().await;
    let stop = StopSignal::default();
    let mut ws = Listener::new(
        &format!("http://{addr}"),
        Secret::new(SAMPLE_TOKEN),
        options(),
        &stop,
    )
    .unwrap();
    match ws.next().await.unwrap() {
        Item::Disconnected(Failure::Unreachable(why)) => {
            assert!(!why.contains(SAMPLE_TOKEN));
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    // Attempts go on (one report per outage): the next item is the connection itself.
    let server = MockServer::start_on(addr, Workspace::sample())
        .await
        .unwrap();
    let (_, previous) = fresh(&mut ws).await;
    assert_eq!(previous, None);
    assert!(server.count("GET /api/v4/websocket") >= 1);
}

#[tokio::test]
async fn failed_upgrades_are_reported_once_and_retried() {
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    server.set_faults(matterbak::mock::Faults {
        error_permille: 1000,
        ..Default::default()
    });
    let stop = StopSignal::default();
    let mut ws = listener(&server, &stop);
    match ws.next().await.unwrap() {
        Item::Disconnected(Failure::Status(status)) => assert!(status == 502 || status == 503),
        other => panic!("expected an HTTP failure, got {other:?}"),
    }
    // More attempts fail meanwhile, silently; then the server heals.
    let waiting = tokio::spawn(async move {
        let item = ws.next().await;
        (ws, item)
    });
    server.wait_for_count("GET /api/v4/websocket", 3).await;
    server.set_faults(matterbak::mock::Faults::default());
    let (_ws, item) = waiting.await.unwrap();
    assert!(matches!(item, Ok(Item::Fresh { .. })), "{item:?}");
}

#[tokio::test]
async fn a_revoked_session_ends_the_stream() {
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    let stop = StopSignal::default();
    let mut ws = Listener::new(
        &server.url(),
        Secret::new(SAMPLE_TOKEN),
        WsOptions {
            keepalive: Duration::from_millis(50),
            ..options()
        },
        &stop,
    )
    .unwrap();
    fresh(&mut ws).await;
    server.with_workspace(|w| w.set_user_field("alice", "delete_at", serde_json::json!(1)));
    loop {
        match ws.next().await {
            Err(WsError::Unauthorized) => break,
            Ok(Item::Event(_)) => {} // the user_updated about alice herself may come first
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_invalid_token_is_reported_as_no_answer() {
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    server.set_websocket_timing(matterbak::mock::WsTiming {
        auth_timeout: Duration::from_millis(50),
        ..Default::default()
    });
    let stop = StopSignal::default();
    let mut ws =
        Listener::new(&server.url(), Secret::new("not-a-token"), options(), &stop).unwrap();
    assert!(matches!(
        ws.next().await.unwrap(),
        Item::Disconnected(Failure::NoAnswer)
    ));
}

#[tokio::test]
async fn stop_ends_every_wait() {
    // While connected and idle.
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    let stop = StopSignal::default();
    let mut ws = listener(&server, &stop);
    fresh(&mut ws).await;
    let waiting = tokio::spawn(async move { ws.next().await });
    server
        .wait_for_websockets(|c| c.len() == 1 && c[0].active)
        .await;
    stop.request();
    assert!(matches!(waiting.await.unwrap(), Err(WsError::Stopped)));

    // While backing off from a server that is away.
    let addr = free_addr().await;
    let stop = StopSignal::default();
    let mut ws = Listener::new(
        &format!("http://{addr}"),
        Secret::new(SAMPLE_TOKEN),
        WsOptions {
            base_backoff: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(3600),
            ..options()
        },
        &stop,
    )
    .unwrap();
    assert!(matches!(ws.next().await.unwrap(), Item::Disconnected(_)));
    let waiting = tokio::spawn(async move { ws.next().await });
    stop.request();
    assert!(matches!(waiting.await.unwrap(), Err(WsError::Stopped)));
}

#[tokio::test]
async fn beside_a_rest_client_it_shares_server_token_and_pacing() {
    use matterbak::config::{Auth, Credentials};
    use matterbak::mm::{Client, ClientOptions};
    let server = MockServer::start(Workspace::sample()).await.unwrap();
    let stop = StopSignal::default();
    let credentials = Credentials {
        user: "alice".into(),
        auth: Auth::Token(Secret::new(SAMPLE_TOKEN)),
        server: server.url(),
    };
    let (client, me) = Client::connect(&credentials, None, &ClientOptions::default(), &stop)
        .await
        .expect("REST login");
    let mut ws = Listener::beside(std::sync::Arc::new(client), options()).expect("listener");
    assert_eq!(ws.server(), server.url());
    fresh(&mut ws).await;
    assert_eq!(server.websocket_connections()[0].user_id, me.value.id);
    assert_eq!(server.count("GET /api/v4/websocket"), 1);
    // The client's stop request ends the listener too.
    stop.request();
    assert!(matches!(ws.next().await, Err(WsError::Stopped)));
}
