//! The WebSocket hub: every connection the server knows, its sequence numbers and its two
//! queues, and the reliable-reconnect rules (API notes §15.3, §15.4; `web_hub.go`,
//! `web_conn.go`).
//!
//! A connection is *active* while its socket is open and *inactive* after the socket ends;
//! an inactive connection keeps collecting the events it would have received (the send
//! queue, [`SEND_QUEUE_SIZE`]; one more and it is forgotten) and keeps the last
//! [`DEAD_QUEUE_SIZE`] events written to its socket (the dead queue), until a client
//! resumes it with `connection_id` and `sequence_number` or it is reaped. Sequence numbers
//! are per connection: `hello` is 0, then +1 per event written.
//!
//! No I/O: a socket task owns each socket and receives what to write through an unbounded
//! channel. Lock order: the workspace before the hub (events are published while the
//! workspace is locked); the hub never locks the workspace.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::events::{self, Event};
use super::ids::{IdGen, is_valid_id};
use super::workspace::Workspace;

/// `sendQueueSize`: events an inactive connection collects before it is forgotten.
pub const SEND_QUEUE_SIZE: usize = 256;
/// `deadQueueSize`: events written to a socket that a resume can replay.
pub const DEAD_QUEUE_SIZE: usize = 128;

/// The server's timers (`web_conn.go`, `web_hub.go`); tests shorten them.
#[derive(Clone, Copy, Debug)]
pub struct WsTiming {
    /// Ping frames every `pingInterval` (60 s).
    pub ping_interval: Duration,
    /// The read deadline, reset only by pong frames (`pongWaitTime`, 100 s).
    pub pong_wait: Duration,
    /// An unauthenticated socket is closed after `authCheckInterval` (5 s).
    pub auth_timeout: Duration,
    /// An inactive connection older than this is reaped (`inactiveConnReaperInterval`,
    /// 5 min, counted from when the connection was created or resumed).
    pub reap_after: Duration,
}

impl Default for WsTiming {
    fn default() -> WsTiming {
        WsTiming {
            ping_interval: Duration::from_secs(60),
            pong_wait: Duration::from_secs(100),
            auth_timeout: Duration::from_secs(5),
            reap_after: Duration::from_secs(5 * 60),
        }
    }
}

/// What a socket task is told to do.
#[derive(Debug)]
pub enum Out {
    /// Write a text frame.
    Text(String),
    /// Drop the TCP connection without a close frame (a network failure, a server crash).
    Drop,
}

/// One connection the hub knows, active or not.
struct Conn {
    /// Internal handle of the socket currently attached (changes on resume).
    key: u64,
    connection_id: String,
    user_id: String,
    token: String,
    active: bool,
    /// The sequence number of the next event written.
    next_seq: i64,
    /// `(seq, text)` of the last events written, oldest first.
    dead: VecDeque<(i64, Arc<str>)>,
    /// Events collected while inactive, not yet numbered.
    pending: VecDeque<Arc<Event>>,
    tx: Option<UnboundedSender<Out>>,
    /// `lastUserActivityAt`: set when the connection is created or resumed.
    since: Instant,
}

impl Conn {
    /// Numbers and writes one event (or queues it while inactive). Returns false when the
    /// connection must be forgotten (its send queue overflowed).
    fn deliver(&mut self, event: &Arc<Event>) -> bool {
        if !self.active {
            if self.pending.len() >= SEND_QUEUE_SIZE {
                return false;
            }
            self.pending.push_back(Arc::clone(event));
            return true;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let text: Arc<str> = event.encode(seq, &self.user_id).into();
        self.write(seq, text);
        true
    }

    /// Adds to the dead queue and hands to the socket. A socket that already died keeps the
    /// event in the dead queue only, as a write into a dead TCP connection does.
    fn write(&mut self, seq: i64, text: Arc<str>) {
        if self.dead.len() == DEAD_QUEUE_SIZE {
            self.dead.pop_front();
        }
        self.dead.push_back((seq, Arc::clone(&text)));
        if let Some(tx) = &self.tx {
            let _ = tx.send(Out::Text(text.to_string()));
        }
    }

    fn send_hello(&mut self, server_version: &str) {
        self.next_seq = 1;
        let text: Arc<str> =
            events::hello(&self.user_id, &self.connection_id, server_version).into();
        self.write(0, text);
    }
}

/// Why an upgrade ends right after the 101 (`PopulateWebConnConfig` errors).
#[derive(Debug, PartialEq, Eq)]
pub enum ResumeRefused {
    InvalidConnectionId,
    MissingSequenceNumber,
    InvalidSequenceNumber,
}

/// A connection the hub accepted: the handle of its socket.
#[derive(Debug)]
pub struct Attached {
    pub key: u64,
}

/// What tests can see of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub connection_id: String,
    pub user_id: String,
    pub active: bool,
    /// The sequence number the next event will get.
    pub next_seq: i64,
    /// Events collected while inactive.
    pub queued: usize,
}

pub struct Hub {
    conns: Vec<Conn>,
    next_key: u64,
    ids: IdGen,
    server_version: String,
    pub timing: WsTiming,
    /// Bumped on every change of the connection set, so tests can wait for one.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Hub {
    pub fn new(server_version: &str) -> Hub {
        Hub {
            conns: Vec::new(),
            next_key: 1,
            ids: IdGen::new(0x7773_636f_6e6e),
            server_version: server_version.to_owned(),
            timing: WsTiming::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn new_key(&mut self) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        key
    }

    /// A fresh connection (no or unknown `connection_id`, or authenticated by the
    /// challenge): a new id and `hello` with seq 0.
    pub fn attach_fresh(
        &mut self,
        user_id: &str,
        token: &str,
        tx: UnboundedSender<Out>,
    ) -> Attached {
        let key = self.new_key();
        let mut conn = Conn {
            key,
            connection_id: self.ids.next_id(),
            user_id: user_id.to_owned(),
            token: token.to_owned(),
            active: true,
            next_seq: 0,
            dead: VecDeque::new(),
            pending: VecDeque::new(),
            tx: Some(tx),
            since: Instant::now(),
        };
        conn.send_hello(&self.server_version);
        self.conns.push(conn);
        self.changed();
        Attached { key }
    }

    /// A reconnect naming `connection_id` and `sequence_number` (the next seq the client
    /// wants), with the outcomes of §15.4: replay from the dead queue, nothing missed, a
    /// new connection id with `hello` when the requested seq is not replayable, or a fresh
    /// connection when the id is unknown (reaped, forgotten, still active: half-open).
    pub fn attach_resumed(
        &mut self,
        user_id: &str,
        token: &str,
        connection_id: &str,
        sequence_number: Option<&str>,
        tx: UnboundedSender<Out>,
    ) -> Result<Attached, ResumeRefused> {
        if !is_valid_id(connection_id) {
            return Err(ResumeRefused::InvalidConnectionId);
        }
        self.reap();
        let found = self
            .conns
            .iter()
            .position(|c| c.user_id == user_id && c.connection_id == connection_id && !c.active);
        let Some(index) = found else {
            return Ok(self.attach_fresh(user_id, token, tx));
        };
        // The server takes the connection out of its index before it reads the number, so
        // a bad number loses it.
        let mut conn = self.conns.swap_remove(index);
        self.changed();
        let seq = match sequence_number {
            None | Some("") => return Err(ResumeRefused::MissingSequenceNumber),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => return Err(ResumeRefused::InvalidSequenceNumber),
            },
        };
        conn.key = self.new_key();
        conn.token = token.to_owned();
        conn.active = true;
        conn.tx = Some(tx);
        conn.since = Instant::now();
        conn.next_seq = seq;
        if seq != 0 {
            if let Some(from) = conn.dead.iter().position(|(s, _)| *s == seq) {
                let replay: Vec<(i64, Arc<str>)> = conn.dead.iter().skip(from).cloned().collect();
                for (s, text) in replay {
                    if let Some(tx) = &conn.tx {
                        let _ = tx.send(Out::Text(text.to_string()));
                    }
                    conn.next_seq = s + 1;
                }
            } else if conn.dead.back().is_some_and(|(last, _)| *last != seq - 1) {
                // Not replayable: the client missed events it cannot get back.
                conn.dead.clear();
                conn.connection_id = self.ids.next_id();
                conn.send_hello(&self.server_version);
            }
            // Else nothing was missed (or nothing was ever written): carry on at `seq`.
        }
        let pending: Vec<Arc<Event>> = conn.pending.drain(..).collect();
        for event in &pending {
            conn.deliver(event);
        }
        let attached = Attached { key: conn.key };
        self.conns.push(conn);
        self.changed();
        Ok(attached)
    }

    /// The socket of `key` ended: its connection becomes inactive (resumable).
    pub fn detach(&mut self, key: u64) {
        if let Some(conn) = self.conns.iter_mut().find(|c| c.key == key) {
            conn.active = false;
            conn.tx = None;
            self.changed();
        }
    }

    /// Removes inactive connections older than the reap age (the server's reaper runs
    /// every 5 minutes; the mock reaps whenever it looks).
    fn reap(&mut self) {
        let age = self.timing.reap_after;
        let before = self.conns.len();
        self.conns.retain(|c| c.active || c.since.elapsed() < age);
        if self.conns.len() != before {
            self.changed();
        }
    }

    /// Delivers events to every connection whose user is in their audience and whose
    /// session is still valid (a revoked session silently stops receiving, §15.5).
    pub fn publish(&mut self, events: Vec<Event>, ws: &Workspace) {
        if self.conns.is_empty() {
            return;
        }
        let before = self.conns.len();
        for event in events.into_iter().map(Arc::new) {
            self.conns.retain_mut(|conn| {
                let listening = event.audience.includes(&conn.user_id)
                    && ws.session_user(&conn.token) == Some(conn.user_id.as_str());
                // Forgetting an active connection closes its socket (the send channel is
                // closed, the socket task writes a close frame).
                !listening || conn.deliver(&event)
            });
        }
        if self.conns.len() != before {
            self.changed();
        }
    }

    /// Drops every open socket without a close frame, as a network failure would; the
    /// connections stay resumable. Events published from now on are queued.
    pub fn drop_sockets(&mut self) {
        for conn in self.conns.iter_mut().filter(|c| c.active) {
            if let Some(tx) = conn.tx.take() {
                let _ = tx.send(Out::Drop);
            }
            conn.active = false;
        }
        self.changed();
    }

    /// Forgets every connection and drops the sockets (a server restart): a resume then
    /// gets a fresh connection id.
    pub fn forget_all(&mut self) {
        self.drop_sockets();
        self.conns.clear();
        self.changed();
    }

    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.conns
            .iter()
            .map(|c| ConnectionInfo {
                connection_id: c.connection_id.clone(),
                user_id: c.user_id.clone(),
                active: c.active,
                next_seq: c.next_seq,
                queued: c.pending.len(),
            })
            .collect()
    }

    /// Sends a response frame (no sequence number) to the socket of `key`.
    pub fn respond(&self, key: u64, text: String) {
        if let Some(tx) = self
            .conns
            .iter()
            .find(|c| c.key == key)
            .and_then(|c| c.tx.as_ref())
        {
            let _ = tx.send(Out::Text(text));
        }
    }
}
