//! The Mattermost WebSocket client (API notes §15): one connection that survives drops.
//!
//! [`Listener::next`] yields what happened, in order: a [`Item::Fresh`] connection (a
//! `hello` with a connection id the server just issued: at start, and whenever the server
//! could not resume, so events may have been lost and the caller must catch up over REST),
//! [`Item::Resumed`] (the server took our connection id and last sequence number back:
//! nothing was lost), [`Item::Event`]s numbered without gaps, and [`Item::Disconnected`]
//! once per outage (and again only when the kind of failure changes): the caller logs state
//! changes, never attempts.
//!
//! Reconnects name the connection id and the next sequence number we want, with the token
//! in the `Authorization` header (a connection authenticated by the challenge can never
//! resume, §15.1), after a bounded exponential backoff with jitter, for ever. After every
//! (re)connect a `ping` request tells a resumed connection (its reply comes without a
//! `hello` before it) from a fresh one; later pings every [`WsOptions::keepalive`] find a
//! dead link or a revoked session (a `FAIL` 401, [`WsError::Unauthorized`]). Server pings
//! are answered by the framing library while we read. A stop request ends every wait.
//!
//! The upgrade goes through reqwest (HTTP/1.1 only: an upgrade cannot ride HTTP/2) with the
//! same TLS settings as the REST client (`tls`), and tokio-tungstenite frames the upgraded
//! stream. Beside a REST [`Client`] ([`Listener::beside`]) each upgrade waits its turn in the
//! client's pacing like any request (the server's rate limiter counts it, §15.9). The token
//! travels only in the header; it never appears in URLs, errors or items.
//! May use: `model`, `config`, `mm` internals. Never writes anything anywhere.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::header::{AUTHORIZATION, CONNECTION, HeaderValue, UPGRADE};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{Client, MmError, StopSignal, TlsOptions};
use crate::config::Secret;
use crate::model::object::{Channel, Emoji, Post, Raw, Reaction, Team, User};

/// Knobs of the connection; the defaults suit a long-running follower.
#[derive(Clone, Debug)]
pub struct WsOptions {
    /// A `ping` request goes out this long after the previous one; one still unanswered
    /// when the next is due means the link is dead.
    pub keepalive: Duration,
    /// First reconnect delay; doubled per failed attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    pub tls: TlsOptions,
}

impl Default for WsOptions {
    fn default() -> WsOptions {
        WsOptions {
            keepalive: Duration::from_secs(30),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
            tls: TlsOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("stopped")]
    Stopped,
    #[error(
        "the server refused the credentials on the WebSocket (HTTP 401): check the token or password in the credentials file"
    )]
    Unauthorized,
    #[error("{server}: not a usable server URL: {why}")]
    BadUrl { server: String, why: String },
    #[error("WebSocket client setup: {0}")]
    Setup(#[source] MmError),
}

/// Why the connection is down, as far as the next log line needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No TCP/TLS connection (refused, unreachable, DNS, TLS).
    Unreachable(String),
    /// The upgrade was answered with this HTTP status instead of 101.
    Status(u16),
    /// The upgrade succeeded but the server never answered our first request: an invalid
    /// token looks like this (the server closes unauthenticated sockets after 5 s).
    NoAnswer,
    /// An established connection ended (closed, reset, or silent past the keepalive).
    Lost(String),
}

impl Failure {
    /// Same kind of failure: one log line per outage unless the kind changes (a proxy
    /// answering 502 and 503 in turn is one kind).
    fn same_kind(&self, other: &Failure) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(why) => write!(f, "cannot connect: {why}"),
            Failure::Status(status) => write!(f, "the upgrade was answered with HTTP {status}"),
            Failure::NoAnswer => f.write_str(
                "connected, but the server never answered (an invalid token looks like this)",
            ),
            Failure::Lost(why) => write!(f, "connection lost: {why}"),
        }
    }
}

/// One thing that happened on the link.
#[derive(Debug)]
pub enum Item {
    /// A connection with a connection id the server just issued (its `hello`). At the
    /// first connect, and after a drop the server could not resume: events may be lost.
    Fresh {
        connection_id: String,
        server_version: String,
        /// The connection id we asked to resume, if any.
        previous: Option<String>,
    },
    /// The server resumed our connection after a drop: no event was lost.
    Resumed {
        connection_id: String,
    },
    Event(Box<WsEvent>),
    /// The connection is down; reconnecting with backoff until it is back.
    Disconnected(Failure),
}

/// `broadcast`: the scope an event was sent with. The channel id of some channel events
/// is only here (`user_added`, `reaction_removed`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Broadcast {
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub team_id: String,
}

#[derive(Debug)]
pub struct WsEvent {
    pub seq: i64,
    pub broadcast: Broadcast,
    pub event: Event,
    /// Length of the frame it came in: what a queue of events waiting to be applied is
    /// bounded by (a post of 16,383 characters weighs a hundred reactions).
    pub wire_bytes: usize,
}

/// The events a backup acts on, decoded (§15.7); JSON strings inside `data` are decoded
/// again, and each object keeps its bytes ([`Raw`]).
#[derive(Debug)]
pub enum Event {
    Posted {
        post: Raw<Post>,
        /// `O`, `P`, `D` or `G`.
        channel_type: String,
        /// Empty for DMs and GMs.
        team_id: String,
    },
    PostEdited {
        post: Raw<Post>,
    },
    /// The post as it was before the delete (`delete_at` 0, full message and file ids).
    /// Deleting a root deletes its replies too, with this one event.
    PostDeleted {
        post: Raw<Post>,
        delete_by: Option<String>,
    },
    ReactionAdded {
        reaction: Raw<Reaction>,
        post_id: String,
        channel_id: String,
    },
    ReactionRemoved {
        reaction: Raw<Reaction>,
        post_id: String,
        channel_id: String,
    },
    ChannelCreated {
        channel_id: String,
        team_id: String,
    },
    ChannelUpdated {
        channel: Raw<Channel>,
    },
    /// Archived.
    ChannelDeleted {
        channel_id: String,
        delete_at: i64,
    },
    ChannelRestored {
        channel_id: String,
    },
    ChannelConverted {
        channel_id: String,
    },
    UserAdded {
        channel_id: String,
        user_id: String,
    },
    UserRemoved {
        channel_id: String,
        user_id: String,
    },
    DirectAdded {
        channel_id: String,
    },
    GroupAdded {
        channel_id: String,
        teammate_ids: Vec<String>,
    },
    UserUpdated {
        user: Raw<User>,
    },
    EmojiAdded {
        emoji: Raw<Emoji>,
    },
    AddedToTeam {
        team_id: String,
        user_id: String,
    },
    LeaveTeam {
        team_id: String,
        user_id: String,
    },
    TeamUpdated {
        team: Raw<Team>,
    },
    /// An event a backup does not act on (typing, status changes, read state…).
    Other {
        name: String,
    },
    /// An event we act on whose payload did not decode: the caller cannot apply it and
    /// should catch up over REST instead.
    Malformed {
        name: String,
        why: String,
    },
}

/// The backoff before reconnect attempt `failures` (1 = after the first failure): doubling
/// from `base`, capped at `max`, and with "equal jitter" (`jitter` in [0, 1) picks a point
/// in the upper half) so that many clients do not come back in step.
pub fn backoff_delay(base: Duration, max: Duration, failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << doublings.min(31)).min(max);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

type Socket = WebSocketStream<reqwest::Upgraded>;

/// A socket that is open, and what we know about it.
struct Link {
    socket: Socket,
    /// The `ping` sent right after connecting; its reply confirms the connection.
    confirm_seq: Option<i64>,
    /// A keepalive `ping` not yet answered.
    unanswered: Option<i64>,
    next_keepalive: Instant,
    /// A `hello` arrived on this socket.
    saw_hello: bool,
}

/// The WebSocket connection of one session, kept up until stopped.
pub struct Listener {
    http: reqwest::Client,
    /// The REST client whose pacing the upgrades share, if any.
    rest: Option<Arc<Client>>,
    endpoint: Url,
    server: String,
    token: Secret,
    options: WsOptions,
    stop: StopSignal,
    link: Option<Link>,
    connection_id: Option<String>,
    /// The sequence number of the next event we expect.
    next_seq: i64,
    request_seq: i64,
    /// Failed attempts since the last confirmed connection.
    failures: u32,
    /// Retry-After of a 429 on the upgrade, honoured when longer than the backoff.
    retry_after: Option<Duration>,
    /// What the caller was last told about the link being down (None: up, or never told).
    reported: Option<Failure>,
    queued: VecDeque<Item>,
}

impl Listener {
    /// Prepares the connection to `server` (the root URL, as in the credentials); nothing
    /// is sent before the first [`Listener::next`].
    pub fn new(
        server: &str,
        token: Secret,
        options: WsOptions,
        stop: &StopSignal,
    ) -> Result<Listener, WsError> {
        let endpoint =
            Url::parse(&format!("{server}/api/v4/websocket")).map_err(|e| WsError::BadUrl {
                server: server.to_owned(),
                why: e.to_string(),
            })?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(WsError::BadUrl {
                server: server.to_owned(),
                why: "the scheme must be http or https".into(),
            });
        }
        let builder = reqwest::Client::builder()
            .http1_only()
            .user_agent(concat!("matterbak/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout);
        let http = options
            .tls
            .configure(builder)
            .map_err(WsError::Setup)?
            .build()
            .map_err(|error| {
                WsError::Setup(MmError::Transport {
                    endpoint: "WebSocket client setup".into(),
                    error,
                })
            })?;
        Ok(Listener {
            http,
            rest: None,
            endpoint,
            server: server.to_owned(),
            token,
            options,
            stop: stop.clone(),
            link: None,
            connection_id: None,
            next_seq: 0,
            request_seq: 0,
            failures: 0,
            retry_after: None,
            reported: None,
            queued: VecDeque::new(),
        })
    }

    /// A listener beside a REST client: the same server, token, TLS trust and stop request,
    /// and every upgrade paced with the client's requests.
    pub fn beside(client: Arc<Client>, options: WsOptions) -> Result<Listener, WsError> {
        let api = client.api_url().as_str();
        let server = api
            .trim_end_matches('/')
            .strip_suffix("/api/v4")
            .unwrap_or(api)
            .to_owned();
        let options = WsOptions {
            tls: client.tls().clone(),
            ..options
        };
        let mut listener = Listener::new(
            &server,
            client.token().clone(),
            options,
            client.stop_signal(),
        )?;
        listener.rest = Some(client);
        Ok(listener)
    }

    /// The server root this listener connects to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The current connection id (None before the first `hello`).
    pub fn connection_id(&self) -> Option<&str> {
        self.connection_id.as_deref()
    }

    /// Whether a socket is open and confirmed.
    pub fn is_connected(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.confirm_seq.is_none()) && self.reported.is_none()
    }

    /// The next item; waits as long as it takes (reconnecting meanwhile). Ends only on a
    /// stop request ([`WsError::Stopped`]) or a revoked session ([`WsError::Unauthorized`]).
    pub async fn next(&mut self) -> Result<Item, WsError> {
        loop {
            if let Some(item) = self.queued.pop_front() {
                return Ok(item);
            }
            if self.stop.requested() {
                self.close().await;
                return Err(WsError::Stopped);
            }
            if self.link.is_none() {
                match self.connect().await {
                    Ok(()) => {}
                    Err(Some(failure)) => {
                        if let Some(item) = self.report(failure) {
                            return Ok(item);
                        }
                    }
                    Err(None) => continue, // stopped while waiting
                }
                continue;
            }
            self.pump().await?;
        }
    }

    /// Closes the socket politely (a close frame), e.g. before exiting.
    pub async fn close(&mut self) {
        if let Some(mut link) = self.link.take() {
            let _ = link.socket.close(None).await;
        }
    }

    /// Tells the caller about a failure unless it already knows of one of this kind.
    fn report(&mut self, failure: Failure) -> Option<Item> {
        if self
            .reported
            .as_ref()
            .is_some_and(|known| known.same_kind(&failure))
        {
            return None;
        }
        self.reported = Some(failure.clone());
        Some(Item::Disconnected(failure))
    }

    /// One connect attempt, after the backoff its predecessors earned. `Err(None)`: stopped.
    async fn connect(&mut self) -> Result<(), Option<Failure>> {
        if self.failures > 0 {
            let backoff = backoff_delay(
                self.options.base_backoff,
                self.options.max_backoff,
                self.failures,
                rand::random::<f64>(),
            );
            let delay = backoff.max(self.retry_after.take().unwrap_or_default());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.stopped() => return Err(None),
            }
        }
        self.failures = self.failures.saturating_add(1);
        let mut url = self.endpoint.clone();
        if let Some(id) = &self.connection_id {
            url.query_pairs_mut()
                .append_pair("connection_id", id)
                .append_pair("sequence_number", &self.next_seq.to_string());
        }
        let key = generate_key();
        let bearer =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                Some(Failure::Unreachable(
                    "the token is not a valid header".into(),
                ))
            })?;
        let turn = match &self.rest {
            Some(rest) => match rest.wait_turn("GET /api/v4/websocket").await {
                Ok(turn) => Some(turn),
                Err(_) => return Err(None), // only a stop ends a wait for a turn
            },
            None => None,
        };
        let request = self
            .http
            .get(url)
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", &key)
            .header(AUTHORIZATION, bearer)
            .send();
        let response = tokio::select! {
            r = request => r,
            _ = self.stop.stopped() => return Err(None),
        };
        let status = response.as_ref().map(|r| r.status()).ok();
        if let (Some(rest), Some(turn)) = (&self.rest, &turn) {
            match &response {
                Ok(r) => rest.answered(
                    turn,
                    r.headers(),
                    status == Some(StatusCode::TOO_MANY_REQUESTS),
                ),
                Err(_) => rest.unanswered(turn),
            }
        }
        drop(turn); // the socket does not hold a request slot
        let response = response.map_err(|e| Some(Failure::Unreachable(error_chain(&e))))?;
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            // A 401 here (a token in the query) is a failure like any other: the caller
            // checks the session over REST, which names the problem better.
            self.retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Some(Failure::Status(status.as_u16())));
        }
        let accept = response
            .headers()
            .get("sec-websocket-accept")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if accept.as_deref() != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(Some(Failure::Lost(
                "the upgrade answer has a wrong Sec-WebSocket-Accept".into(),
            )));
        }
        let upgraded = response
            .upgrade()
            .await
            .map_err(|e| Some(Failure::Lost(error_chain(&e))))?;
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        let socket = WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await;
        let mut link = Link {
            socket,
            confirm_seq: None,
            unanswered: None,
            next_keepalive: Instant::now() + self.options.keepalive,
            saw_hello: false,
        };
        let seq = self.next_request_seq();
        send_ping(&mut link.socket, seq)
            .await
            .map_err(|e| Some(Failure::Lost(e)))?;
        link.confirm_seq = Some(seq);
        self.link = Some(link);
        Ok(())
    }

    fn next_request_seq(&mut self) -> i64 {
        self.request_seq += 1;
        self.request_seq
    }

    /// Reads one frame (or handles one timer) of the open link; queues what it yields.
    async fn pump(&mut self) -> Result<(), WsError> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        let deadline = link.next_keepalive;
        let frame = tokio::select! {
            frame = link.socket.next() => Some(frame),
            _ = sleep_until(deadline) => None,
            _ = self.stop.stopped() => return Ok(()),
        };
        match frame {
            None => self.keepalive().await,
            Some(None) => self.lost("closed by the server".into()),
            Some(Some(Err(error))) => self.lost(error.to_string()),
            Some(Some(Ok(Message::Text(text)))) => self.on_text(text.as_str())?,
            Some(Some(Ok(Message::Close(_)))) => self.lost("closed by the server".into()),
            Some(Some(Ok(_))) => {} // pings are answered by tungstenite; pongs, binary: nothing
        }
        Ok(())
    }

    /// The keepalive is due: a dead link if the previous ping is unanswered.
    async fn keepalive(&mut self) {
        let Some(link) = self.link.as_ref() else {
            return;
        };
        if link.confirm_seq.is_some() || link.unanswered.is_some() {
            let failure = if link.confirm_seq.is_some() && !link.saw_hello {
                Failure::NoAnswer
            } else {
                Failure::Lost("no answer to a ping".into())
            };
            self.drop_link(failure);
            return;
        }
        let seq = self.next_request_seq();
        let keepalive = self.options.keepalive;
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.next_keepalive = Instant::now() + keepalive;
        match send_ping(&mut link.socket, seq).await {
            Ok(()) => link.unanswered = Some(seq),
            Err(why) => self.lost(why),
        }
    }

    fn lost(&mut self, why: String) {
        let never_answered = self
            .link
            .as_ref()
            .is_some_and(|l| l.confirm_seq.is_some() && !l.saw_hello);
        let failure = if never_answered {
            Failure::NoAnswer
        } else {
            Failure::Lost(why)
        };
        self.drop_link(failure);
    }

    fn drop_link(&mut self, failure: Failure) {
        self.link = None;
        if let Some(item) = self.report(failure) {
            self.queued.push_back(item);
        }
    }

    fn on_text(&mut self, text: &str) -> Result<(), WsError> {
        let Ok(message) = serde_json::from_str::<Incoming>(text) else {
            return Ok(()); // not JSON we know: the server sends nothing else; ignore
        };
        if let Some(name) = message.event {
            self.on_event(
                &name,
                message.seq.unwrap_or(-1),
                message.data,
                message.broadcast,
                text.len(),
            );
            return Ok(());
        }
        if message.status.is_some() {
            return self.on_response(&message);
        }
        Ok(())
    }

    fn on_response(&mut self, message: &Incoming) -> Result<(), WsError> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        let reply_to = message.seq_reply.unwrap_or(0);
        let failed = message.status.as_deref() == Some("FAIL");
        let status_code = message.error.as_ref().map_or(0, |e| e.status_code);
        if failed && status_code == 401 {
            self.link = None;
            return Err(WsError::Unauthorized);
        }
        if link.unanswered == Some(reply_to) {
            link.unanswered = None;
        }
        if link.confirm_seq == Some(reply_to) {
            link.confirm_seq = None;
            let resumed = !link.saw_hello;
            self.confirmed();
            if resumed && let Some(id) = self.connection_id.clone() {
                self.queued.push_back(Item::Resumed { connection_id: id });
            }
        }
        Ok(())
    }

    /// The connection is known good: the backoff starts over and the outage is over.
    fn confirmed(&mut self) {
        self.failures = 0;
        self.reported = None;
    }

    fn on_event(
        &mut self,
        name: &str,
        seq: i64,
        data: Option<Box<RawValue>>,
        broadcast: Option<Broadcast>,
        wire_bytes: usize,
    ) {
        let data = data
            .and_then(|d| serde_json::from_str::<HashMap<String, Box<RawValue>>>(d.get()).ok())
            .unwrap_or_default();
        if name == "hello" {
            let text_of = |key: &str| {
                data.get(key)
                    .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                    .unwrap_or_default()
            };
            let connection_id = text_of("connection_id");
            let previous = self.connection_id.replace(connection_id.clone());
            self.next_seq = seq.max(0) + 1;
            if let Some(link) = self.link.as_mut() {
                link.saw_hello = true;
            }
            self.confirmed();
            self.queued.push_back(Item::Fresh {
                connection_id,
                server_version: text_of("server_version"),
                previous,
            });
            return;
        }
        if seq != self.next_seq {
            if seq < self.next_seq && seq >= 0 {
                return; // already seen (a replay overlapping what we had)
            }
            // Events were skipped: reconnect and ask for them (`disconnect_err_code` 4001).
            self.drop_link(Failure::Lost(format!(
                "sequence number {seq} where {} was due",
                self.next_seq
            )));
            return;
        }
        self.next_seq += 1;
        if let Some(link) = self.link.as_mut()
            && link.confirm_seq.is_some()
            && !link.saw_hello
        {
            // An event with the next number on a reconnect: the server resumed us.
            link.confirm_seq = None;
            self.confirmed();
            if let Some(id) = self.connection_id.clone() {
                self.queued.push_back(Item::Resumed { connection_id: id });
            }
        }
        let broadcast = broadcast.unwrap_or_default();
        let event = decode_event(name, &data, &broadcast);
        self.queued.push_back(Item::Event(Box::new(WsEvent {
            seq,
            broadcast,
            event,
            wire_bytes,
        })));
    }
}

async fn send_ping(socket: &mut Socket, seq: i64) -> Result<(), String> {
    let request = format!(r#"{{"seq":{seq},"action":"ping"}}"#);
    socket
        .send(Message::text(request))
        .await
        .map_err(|e| e.to_string())
}

/// An error and its causes, for a log line ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Any message from the server: events have `event`, responses `status` (§15.2).
#[derive(Deserialize)]
struct Incoming {
    event: Option<String>,
    seq: Option<i64>,
    data: Option<Box<RawValue>>,
    broadcast: Option<Broadcast>,
    status: Option<String>,
    seq_reply: Option<i64>,
    error: Option<ResponseError>,
}

#[derive(Deserialize)]
struct ResponseError {
    #[serde(default)]
    status_code: u16,
}

/// Just the ids of a reaction (the model's reaction keeps what the catalog needs).
#[derive(Deserialize)]
struct ReactionIds {
    #[serde(default)]
    post_id: String,
    #[serde(default)]
    channel_id: String,
}

/// Decodes one event's `data`; a payload that does not decode is [`Event::Malformed`].
fn decode_event(name: &str, data: &HashMap<String, Box<RawValue>>, broadcast: &Broadcast) -> Event {
    match decode_known(name, data, broadcast) {
        Ok(event) => event,
        Err(why) => Event::Malformed {
            name: name.to_owned(),
            why,
        },
    }
}

/// A string value of `data`.
fn text(data: &HashMap<String, Box<RawValue>>, key: &str) -> Result<String, String> {
    let raw = data.get(key).ok_or_else(|| format!("no `{key}`"))?;
    serde_json::from_str::<String>(raw.get()).map_err(|e| format!("`{key}`: {e}"))
}

fn text_or_empty(data: &HashMap<String, Box<RawValue>>, key: &str) -> String {
    text(data, key).unwrap_or_default()
}

/// An object sent as a JSON string inside `data` (`post`, `reaction`, `channel`…).
fn embedded<T: serde::de::DeserializeOwned>(
    data: &HashMap<String, Box<RawValue>>,
    key: &str,
) -> Result<Raw<T>, String> {
    let json = text(data, key)?;
    let raw = RawValue::from_string(json).map_err(|e| format!("`{key}`: {e}"))?;
    Raw::parse(raw).map_err(|e| format!("`{key}`: {e}"))
}

/// An object sent as an object (`user` in `user_updated`).
fn object<T: serde::de::DeserializeOwned>(
    data: &HashMap<String, Box<RawValue>>,
    key: &str,
) -> Result<Raw<T>, String> {
    let raw = data.get(key).ok_or_else(|| format!("no `{key}`"))?;
    Raw::parse(raw.clone()).map_err(|e| format!("`{key}`: {e}"))
}

/// The channel id from `data`, else from the broadcast.
fn channel_of(
    data: &HashMap<String, Box<RawValue>>,
    broadcast: &Broadcast,
) -> Result<String, String> {
    let id = text(data, "channel_id")
        .ok()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| broadcast.channel_id.clone());
    if id.is_empty() {
        Err("no channel id".into())
    } else {
        Ok(id)
    }
}

fn decode_known(
    name: &str,
    data: &HashMap<String, Box<RawValue>>,
    broadcast: &Broadcast,
) -> Result<Event, String> {
    Ok(match name {
        "posted" => Event::Posted {
            post: embedded(data, "post")?,
            channel_type: text_or_empty(data, "channel_type"),
            team_id: text_or_empty(data, "team_id"),
        },
        "post_edited" => Event::PostEdited {
            post: embedded(data, "post")?,
        },
        "post_deleted" => Event::PostDeleted {
            post: embedded(data, "post")?,
            delete_by: text(data, "delete_by").ok().filter(|s| !s.is_empty()),
        },
        "reaction_added" | "reaction_removed" => {
            let reaction: Raw<Reaction> = embedded(data, "reaction")?;
            let ids: ReactionIds =
                serde_json::from_str(reaction.json()).map_err(|e| format!("`reaction`: {e}"))?;
            // A removal carries `channel_id: ""`: the broadcast has it.
            let channel_id = if ids.channel_id.is_empty() {
                broadcast.channel_id.clone()
            } else {
                ids.channel_id
            };
            if ids.post_id.is_empty() || channel_id.is_empty() {
                return Err("a reaction without post or channel".into());
            }
            if name == "reaction_added" {
                Event::ReactionAdded {
                    reaction,
                    post_id: ids.post_id,
                    channel_id,
                }
            } else {
                Event::ReactionRemoved {
                    reaction,
                    post_id: ids.post_id,
                    channel_id,
                }
            }
        }
        "channel_created" => Event::ChannelCreated {
            channel_id: text(data, "channel_id")?,
            team_id: text_or_empty(data, "team_id"),
        },
        "channel_updated" => Event::ChannelUpdated {
            channel: embedded(data, "channel")?,
        },
        "channel_deleted" => Event::ChannelDeleted {
            channel_id: text(data, "channel_id")?,
            delete_at: data
                .get("delete_at")
                .and_then(|v| serde_json::from_str::<i64>(v.get()).ok())
                .unwrap_or(0),
        },
        "channel_restored" => Event::ChannelRestored {
            channel_id: text(data, "channel_id")?,
        },
        "channel_converted" => Event::ChannelConverted {
            channel_id: text(data, "channel_id")?,
        },
        // `user_id`, or (joining a team's default channels, `JoinDefaultChannels`) the user
        // as an object.
        "user_added" => Event::UserAdded {
            channel_id: channel_of(data, broadcast)?,
            user_id: match text(data, "user_id") {
                Ok(id) => id,
                Err(why) => object::<User>(data, "user")
                    .map(|user| user.value.id.to_string())
                    .map_err(|_| why)?,
            },
        },
        // Two shapes: to the channel `{user_id, remover_id}`, to the removed user
        // `{channel_id, remover_id}` with the user in the broadcast.
        "user_removed" => Event::UserRemoved {
            channel_id: channel_of(data, broadcast)?,
            user_id: text(data, "user_id")
                .ok()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| broadcast.user_id.clone()),
        },
        "direct_added" => Event::DirectAdded {
            channel_id: channel_of(data, broadcast)?,
        },
        "group_added" => Event::GroupAdded {
            channel_id: channel_of(data, broadcast)?,
            teammate_ids: serde_json::from_str(&text(data, "teammate_ids")?)
                .map_err(|e| format!("`teammate_ids`: {e}"))?,
        },
        "user_updated" => Event::UserUpdated {
            user: object(data, "user")?,
        },
        "emoji_added" => Event::EmojiAdded {
            emoji: embedded(data, "emoji")?,
        },
        "added_to_team" => Event::AddedToTeam {
            team_id: text(data, "team_id")?,
            user_id: text(data, "user_id")?,
        },
        "leave_team" => Event::LeaveTeam {
            team_id: text(data, "team_id")?,
            user_id: text(data, "user_id")?,
        },
        "update_team" | "restore_team" | "delete_team" => Event::TeamUpdated {
            team: embedded(data, "team")?,
        },
        other => Event::Other {
            name: other.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_keeps_half_as_a_floor() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(60);
        assert_eq!(backoff_delay(base, max, 1, 0.0), Duration::from_millis(250));
        assert_eq!(backoff_delay(base, max, 1, 0.5), Duration::from_millis(375));
        assert!(backoff_delay(base, max, 1, 0.999_999) < Duration::from_millis(500));
        assert_eq!(backoff_delay(base, max, 2, 0.0), Duration::from_millis(500));
        assert_eq!(backoff_delay(base, max, 4, 0.0), Duration::from_secs(2));
        // Hours of failures stay at the cap, without overflow.
        assert_eq!(
            backoff_delay(base, max, 10_000, 0.0),
            Duration::from_secs(30)
        );
        assert!(backoff_delay(base, max, 10_000, 0.999) < Duration::from_secs(60));
    }

    fn data(json: &str) -> HashMap<String, Box<RawValue>> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn posted_decodes_the_post_string_again() {
        let post =
            r#"{"id":"p1","create_at":5,"channel_id":"c1","message":"hi","file_ids":["f1"]}"#;
        let d = data(
            &serde_json::json!({"post": post, "channel_type": "O", "team_id": "t1"}).to_string(),
        );
        match decode_event("posted", &d, &Broadcast::default()) {
            Event::Posted {
                post,
                channel_type,
                team_id,
            } => {
                assert_eq!(post.value.id, "p1");
                assert_eq!(post.value.file_ids, ["f1"]);
                assert_eq!(
                    post.json(),
                    r#"{"id":"p1","create_at":5,"channel_id":"c1","message":"hi","file_ids":["f1"]}"#
                );
                assert_eq!((channel_type.as_str(), team_id.as_str()), ("O", "t1"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// Joining a team's default channels publishes `user_added` with the user as an object
    /// and no `user_id` (`JoinDefaultChannels`, `app/channel.go`).
    #[test]
    fn user_added_takes_the_user_from_the_object_when_no_id_is_given() {
        let d = data(r#"{"team_id":"t1","user":{"id":"u1","username":"alice","update_at":5}}"#);
        let b = Broadcast {
            channel_id: "c1".into(),
            ..Broadcast::default()
        };
        match decode_event("user_added", &d, &b) {
            Event::UserAdded {
                channel_id,
                user_id,
            } => assert_eq!((channel_id.as_str(), user_id.as_str()), ("c1", "u1")),
            other => panic!("{other:?}"),
        }
        let d = data(r#"{"team_id":"t1"}"#);
        assert!(matches!(
            decode_event("user_added", &d, &b),
            Event::Malformed { .. }
        ));
    }

    #[test]
    fn reaction_removed_takes_the_channel_from_the_broadcast() {
        let reaction = r#"{"user_id":"u1","post_id":"p1","emoji_name":"+1","create_at":0,"update_at":9,"delete_at":0,"remote_id":"","channel_id":""}"#;
        let d = data(&serde_json::json!({"reaction": reaction}).to_string());
        let b = Broadcast {
            channel_id: "c9".into(),
            ..Broadcast::default()
        };
        match decode_event("reaction_removed", &d, &b) {
            Event::ReactionRemoved {
                post_id,
                channel_id,
                reaction,
            } => {
                assert_eq!((post_id.as_str(), channel_id.as_str()), ("p1", "c9"));
                assert_eq!(reaction.value.emoji_name, "+1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_removed_has_two_shapes() {
        let to_channel = data(r#"{"user_id":"u1","remover_id":"u2"}"#);
        let b = Broadcast {
            channel_id: "c1".into(),
            ..Broadcast::default()
        };
        assert!(matches!(
            decode_event("user_removed", &to_channel, &b),
            Event::UserRemoved { channel_id, user_id } if channel_id == "c1" && user_id == "u1"
        ));
        let to_user = data(r#"{"channel_id":"c1","remover_id":"u2"}"#);
        let b = Broadcast {
            user_id: "u1".into(),
            ..Broadcast::default()
        };
        assert!(matches!(
            decode_event("user_removed", &to_user, &b),
            Event::UserRemoved { channel_id, user_id } if channel_id == "c1" && user_id == "u1"
        ));
    }

    #[test]
    fn a_bad_payload_is_malformed_not_a_panic() {
        for (name, json) in [
            ("posted", r#"{"post": 5}"#),
            ("posted", r#"{"post": "{not json"}"#),
            ("posted", r#"{"post": "[1,2]"}"#),
            (
                "reaction_added",
                r#"{"reaction": "{\"user_id\":\"u\",\"emoji_name\":\"x\"}"}"#,
            ),
            ("group_added", r#"{"teammate_ids": "nope"}"#),
            ("user_updated", r#"{}"#),
        ] {
            assert!(
                matches!(
                    decode_event(name, &data(json), &Broadcast::default()),
                    Event::Malformed { .. }
                ),
                "{name} {json}"
            );
        }
        assert!(matches!(
            decode_event("typing", &data("{}"), &Broadcast::default()),
            Event::Other { name } if name == "typing"
        ));
    }
}
