//! `matterbak sync --follow`: an incremental sync, then live capture of the server's
//! WebSocket events (API notes §15) until stopped.
//!
//! One session: the archive lock and the one catalog writer are held throughout; the
//! WebSocket listener runs on its own task and hands items over a channel, so it keeps
//! reading while a catch-up sync runs. Events are applied in order, in batches of what
//! arrives within 100 ms of a batch's first event (one transaction per batch), through
//! [`super::live`].
//!
//! No gaps: every `hello` with a connection id the server just issued (at start, and after
//! a drop it could not resume) is followed by a catch-up sync of every selected channel
//! (an ordinary incremental run, recorded in `runs`) before the events after it are
//! applied; a resumed connection replays what we missed. A live write never moves the
//! `since` watermark (see `catalog::live`), so whatever a crash loses is found by the next
//! catch-up. Channel, membership, user, emoji and team events fetch the rows they changed
//! (`targeted`), with the same client and so the same pacing as a sync. Channels whose events the account does not receive are synced every
//! `poll_interval` (see [`Follower::poll`]); changes the server announces to nobody
//! (§15.7) are found by the next catch-up.
//!
//! Stop: the stop request ends every wait (the listener's, the catch-up's requests, the
//! download stage); what was received is committed before the function returns.
//!
//! May import what `sync` may.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::backlog::{self, Waiting};
use super::connections::ConnectionLog;
use super::live::{self, Action, Fetch};
use super::targeted;
use super::{
    SyncContext, SyncError, SyncOptions, SyncReport, files, log_in, open_for_run, run_with,
};
use crate::archive::{Archive, Claim};
use crate::catalog::{ConnectionEnd, ConnectionKind, LiveWrite};
use crate::config::Credentials;
use crate::mm::ws::{Item, Listener, WsError, WsEvent, WsOptions, backoff_delay};
use crate::mm::{Client, MmError, StopSignal};
use crate::model::object::{self, Raw};
use crate::model::{ChannelId, Outcome, now_ms};
use crate::progress::{Level, LiveState, Observer, Progress};

/// What the listener may hold for us while events are applied as they come, in events and
/// in bytes of their frames (see [`backlog`]): 1 MiB, some 1,000 everyday posts, is ample
/// for a transaction's length, and what waits decoded weighs about twice its frames (4 MiB
/// held 8 MB more on the follow bench, where the mock runs 10,000 events ahead).
const BACKLOG_ITEMS: usize = 16_384;
const BACKLOG_BYTES: u32 = 1 << 20;
/// How much more may wait while the follower does not read (a catch-up sync, a poll):
/// 31 MiB more, tens of thousands of posts, minutes of a busy workspace's traffic. Beyond
/// it the listener waits, the server queues 256 events (§15.4) and past that forgets the
/// connection; we then catch up again: nothing is lost either way.
const BACKLOG_BYTES_NOT_READING: u32 = 31 << 20;
/// Events applied in one transaction at most.
const BATCH: usize = 2_048;
/// How long the first event of a transaction waits for others (see `Follower::gather`).
const GATHER: Duration = Duration::from_millis(100);

/// Knobs of live capture beside the sync's own options.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// The channels whose events the account does not receive (archived ones) are synced
    /// this often.
    pub poll_interval: Duration,
    pub ws: WsOptions,
}

impl Default for FollowOptions {
    fn default() -> FollowOptions {
        FollowOptions {
            poll_interval: Duration::from_secs(600),
            ws: WsOptions::default(),
        }
    }
}

/// What a follow session did until it was stopped.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FollowReport {
    pub outcome: Outcome,
    pub user: String,
    /// Catch-up syncs run (at start, after a connection the server could not resume, after
    /// a payload that did not decode or a targeted fetch the server failed).
    pub catch_ups: u64,
    /// The last catch-up's report.
    pub last_sync: Option<SyncReport>,
    pub events: u64,
    pub posts_written: u64,
    pub reactions_written: u64,
    pub files_fetched: u64,
    /// Events dropped because their channel is not selected.
    pub events_not_selected: u64,
    /// Targeted fetches done for channel, membership, user, emoji and team events.
    pub targeted_fetches: u64,
    /// Polls of the channels whose events the account does not receive.
    pub polls: u64,
}

/// Follows the server until `stop`: lock, log in, catch up, then apply events as they come.
pub async fn run_follow(
    credentials: &Credentials,
    options: &SyncOptions,
    follow: &FollowOptions,
    observer: &dyn Observer,
    stop: &StopSignal,
) -> Result<FollowReport, SyncError> {
    let archive = Archive::at(&options.archive);
    let locked = archive.lock(archive.blobs(&options.blobs)?, Claim::NewOrArchive)?;
    let Some((client, me, locked)) = log_in(credentials, options, locked, stop).await? else {
        return Ok(FollowReport {
            outcome: Outcome::Interrupted,
            user: credentials.user.clone(),
            ..FollowReport::default()
        });
    };
    let client = Arc::new(client);
    let (_, writing) = match open_for_run(locked, options) {
        Ok(opened) => opened,
        Err(e) => {
            client.logout().await;
            return Err(e);
        }
    };
    let ctx = SyncContext {
        client: &client,
        writer: &writing.writer,
        blobs: &writing.blobs,
        options,
        observer,
        stop,
    };
    let result = follow_with(ctx, client.clone(), me, follow).await;
    client.logout().await;
    writing.finish();
    result
}

async fn follow_with(
    ctx: SyncContext<'_>,
    client: Arc<Client>,
    me: Raw<object::User>,
    follow: &FollowOptions,
) -> Result<FollowReport, SyncError> {
    ctx.writer.call(|c| c.prepare_for_live()).await?;
    let listener = Listener::beside(client, follow.ws.clone())?;
    let log = ConnectionLog::begin(ctx.writer, now_ms()).await?;
    let (tx, items, room) = backlog::backlog(BACKLOG_ITEMS, BACKLOG_BYTES);
    let listening = tokio::spawn(listen(listener, tx));
    let (file_queue, downloads) = files::download_stage(ctx);
    let mut follower = Follower {
        ctx,
        me,
        follow,
        report: FollowReport::default(),
        selection: HashMap::new(),
        unreachable: HashSet::new(),
        file_queue: Some(file_queue),
        log,
        room,
    };
    follower.report.user = follower.me.value.username.clone();
    let events = async {
        let result = follower.run(items).await;
        // Ends the download stage once what is queued is stored.
        follower.file_queue = None;
        result
    };
    let (result, files) = futures_util::future::join(events, files::drain(downloads, ctx)).await;
    listening.abort();
    let end = match (&result, &files) {
        (Ok(()), Ok(_) | Err(SyncError::Server(MmError::Stopped { .. }))) => ConnectionEnd::Stopped,
        _ => ConnectionEnd::Error,
    };
    let logged = follower.log.finish(ctx.writer, end, now_ms()).await;
    let mut report = follower.report;
    match files {
        Ok(tally) => report.files_fetched += tally.files_fetched,
        Err(SyncError::Server(MmError::Stopped { .. })) => {}
        Err(e) => return Err(e),
    }
    result?;
    logged?;
    report.outcome = Outcome::Interrupted;
    Ok(report)
}

/// The listener's task: every item, in order, until the listener ends (stop or a revoked
/// session, sent as the last item) or nobody listens.
async fn listen(mut listener: Listener, tx: backlog::Sender) {
    loop {
        let item = listener.next().await;
        let last = item.is_err();
        if tx.send(now_ms(), item).await.is_err() || last {
            listener.close().await;
            return;
        }
    }
}

struct Follower<'a> {
    ctx: SyncContext<'a>,
    me: Raw<object::User>,
    follow: &'a FollowOptions,
    report: FollowReport,
    /// Channel id → selected, as the catalog holds them after the last catch-up.
    selection: HashMap<ChannelId, bool>,
    /// Channels the server would not let us read when an event named them: their events
    /// are dropped until the next catch-up.
    unreachable: HashSet<ChannelId>,
    file_queue: Option<files::FileQueue<'a>>,
    /// The session's connections, as `stats` shows them.
    log: ConnectionLog,
    /// The listener's byte budget, widened while we do not read.
    room: backlog::Room,
}

/// Why a catch-up sync runs, for its log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Start,
    NotResumed,
    Changed,
}

impl Follower<'_> {
    async fn run(&mut self, mut items: mpsc::Receiver<Waiting>) -> Result<(), SyncError> {
        let stop = self.ctx.stop;
        let mut poll = tokio::time::interval_at(
            tokio::time::Instant::now() + self.follow.poll_interval,
            self.follow.poll_interval,
        );
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(BATCH);
        let mut connected_once = false;
        loop {
            let received = tokio::select! {
                biased;
                _ = stop.stopped() => return self.drain(&mut items).await,
                n = items.recv_many(&mut batch, BATCH) => n,
                _ = poll.tick() => {
                    self.poll().await?;
                    continue;
                }
            };
            if received == 0 {
                return Ok(()); // the listener ended without telling why: only at a stop
            }
            self.gather(&mut items, &mut batch).await;
            // Events are handled in runs between connection items, in order.
            let mut events = Vec::new();
            for Waiting { at, item, .. } in batch.drain(..) {
                let item = match item {
                    Ok(Item::Event(event)) => {
                        self.log.event(live::event_time(&event));
                        events.push(*event);
                        continue;
                    }
                    other => other,
                };
                self.handle(std::mem::take(&mut events)).await?;
                match item {
                    Ok(Item::Event(event)) => events.push(*event), // taken above
                    Ok(Item::Fresh {
                        connection_id,
                        previous,
                        ..
                    }) => {
                        let writer = self.ctx.writer;
                        self.log
                            .opened(writer, &connection_id, ConnectionKind::Fresh, at)
                            .await?;
                        let reason = if connected_once {
                            self.ctx.observer.note(
                                Level::Notice,
                                &format!(
                                    "connected again, but the server could not resume {}: catching up",
                                    previous.as_deref().unwrap_or("the connection")
                                ),
                            );
                            Reason::NotResumed
                        } else {
                            self.ctx
                                .observer
                                .note(Level::Info, &format!("connected ({connection_id})"));
                            Reason::Start
                        };
                        connected_once = true;
                        self.catch_up(reason).await?;
                        poll.reset();
                    }
                    Ok(Item::Resumed { connection_id }) => {
                        let writer = self.ctx.writer;
                        self.log
                            .opened(writer, &connection_id, ConnectionKind::Resumed, at)
                            .await?;
                        self.ctx.observer.progress(Progress::Live(LiveState::Live));
                        self.ctx.observer.note(
                            Level::Notice,
                            &format!("connection {connection_id} resumed: no event lost"),
                        );
                    }
                    Ok(Item::Disconnected(failure)) => {
                        self.log
                            .closed(self.ctx.writer, ConnectionEnd::Dropped, at)
                            .await?;
                        self.ctx
                            .observer
                            .progress(Progress::Live(LiveState::Reconnecting));
                        self.ctx
                            .observer
                            .note(Level::Warning, &format!("{failure}; reconnecting"));
                    }
                    Err(WsError::Stopped) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
            self.handle(events).await?;
            self.log.flush(self.ctx.writer).await?;
        }
    }

    /// A run of events, in order: first the channels they name that the catalog does not
    /// hold are fetched (so that a post in a channel created a moment ago is judged by the
    /// rules, and kept, deletion included); then the writes are committed in one
    /// transaction; then the rows the other events changed are fetched, each once.
    async fn handle(&mut self, events: Vec<WsEvent>) -> Result<(), SyncError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut catch_up = false;
        let mut fetched_now = HashSet::new();
        let mut new_channels: Vec<ChannelId> = Vec::new();
        for event in &events {
            if let Some(channel_id) = live::channel_named(event, self.me.value.id.as_str())
                && !self.selection.contains_key(channel_id)
                && !self.unreachable.contains(channel_id)
                && !new_channels.iter().any(|c| c == channel_id)
            {
                new_channels.push(channel_id.into());
            }
        }
        for channel_id in new_channels {
            catch_up |= self.fetch(Fetch::Channel(channel_id.clone())).await?;
            fetched_now.insert(channel_id);
        }
        let mut writes = Vec::new();
        let mut fetches: Vec<Fetch> = Vec::new();
        let me = self.me.value.id.clone();
        for event in events {
            self.report.events += 1;
            match live::plan(event, &self.selection, &me, now_ms()) {
                Action::Write(write) => writes.push(*write),
                Action::NotSelected => self.report.events_not_selected += 1,
                Action::Ignore => {}
                Action::CatchUp => catch_up = true,
                Action::Fetch(Fetch::Channel(id))
                    if fetched_now.contains(&id) || self.unreachable.contains(&id) => {}
                Action::Fetch(fetch) => {
                    if !fetches.iter().any(|f| f.same_rows(&fetch)) {
                        fetches.push(fetch);
                    }
                }
            }
        }
        self.apply(writes).await?;
        for fetch in fetches {
            catch_up |= self.fetch(fetch).await?;
        }
        if catch_up {
            self.catch_up(Reason::Changed).await?;
        }
        Ok(())
    }

    /// One targeted fetch, written as a sync writes it. True when it could not be done for
    /// now (the server is away or failing): a catch-up sync, retried until the server
    /// answers, takes its place. A channel we may not read is noted and its events dropped
    /// until the next catch-up.
    async fn fetch(&mut self, fetch: Fetch) -> Result<bool, SyncError> {
        let ctx = self.ctx;
        let Some(files) = self.file_queue.clone() else {
            return Ok(false);
        };
        let me = targeted::Me {
            id: &self.me.value.id,
            name: &self.me.value.username,
        };
        let (what, result) = match fetch {
            Fetch::Channel(id) => {
                let was_selected = self.selection.get(&id) == Some(&true);
                let result = targeted::channel(ctx, me, &id, was_selected, &files).await;
                let result = result.map(|found| {
                    self.report.posts_written += found.posts_written;
                    self.selection.insert(id.clone(), found.selected);
                    found.tally
                });
                if let Err(SyncError::Server(e)) = &result
                    && refused(e)
                {
                    self.unreachable.insert(id.clone());
                }
                (format!("channel {id}"), result)
            }
            Fetch::Members(id) => (
                format!("members of channel {id}"),
                targeted::members(ctx, &id).await,
            ),
            Fetch::User(user_id) => (
                format!("user {user_id}"),
                targeted::user(ctx, me, &user_id).await,
            ),
            Fetch::Emoji(emoji) => (
                format!("custom emoji {}", emoji.value.name),
                targeted::emoji(ctx, *emoji).await,
            ),
            Fetch::Team { team_id, joined } => {
                let result =
                    targeted::team(ctx, me, &team_id, joined, &self.selection, &files).await;
                let result = result.map(|found| {
                    self.report.posts_written += found.posts_written;
                    self.selection.extend(found.channels);
                    found.tally
                });
                (format!("team {team_id}"), result)
            }
            Fetch::TeamMemberLeft { team_id, user_id } => (
                format!("members of team {team_id}"),
                targeted::team_member_left(ctx, &team_id, &user_id).await,
            ),
        };
        match result {
            Ok(tally) => {
                self.report.targeted_fetches += 1;
                self.report.files_fetched += tally.files_fetched;
                Ok(false)
            }
            Err(SyncError::Server(MmError::Stopped { .. })) if ctx.stop.requested() => Ok(false),
            Err(SyncError::Server(e)) if !retry_later(&e) => Err(e.into()),
            Err(SyncError::Server(e)) if refused(&e) => {
                ctx.observer.note(
                    Level::Warning,
                    &format!("{what}: {e}; skipped until the next catch-up"),
                );
                Ok(false)
            }
            Err(SyncError::Server(e)) => {
                ctx.observer.note(
                    Level::Warning,
                    &format!("{what}: {e}; catching up with a sync instead"),
                );
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Every `poll_interval`: an incremental sync of each selected channel whose events the
    /// account does not receive, and only of those. The server sends a channel's events to
    /// the members of channels that are not archived (`ShouldSendEvent` reads
    /// `GetAllChannelMembersForUser(user, false, false)`, whose `includeDeleted` false keeps
    /// `Channels.DeleteAt = 0`, `app/platform/web_conn.go`, `sqlstore/channel_store.go`),
    /// and a sync archives only channels the account is a member of: the archived ones are
    /// polled. (A deletion there by an admin or a retention job reaches nobody live.)
    async fn poll(&mut self) -> Result<(), SyncError> {
        let _not_reading = self.room.widen(BACKLOG_BYTES_NOT_READING);
        let ctx = self.ctx;
        let Some(files) = self.file_queue.clone() else {
            return Ok(());
        };
        let channels = ctx.writer.call(|c| c.load_channels()).await?;
        let archived: Vec<_> = channels.into_iter().filter(|c| c.delete_at > 0).collect();
        let mut posts_written = 0;
        for record in &archived {
            if ctx.stop.requested() {
                return Ok(());
            }
            let parsed = serde_json::value::RawValue::from_string(record.json.clone())
                .ok()
                .and_then(|raw| Raw::<object::Channel>::parse(raw).ok());
            let Some(channel) = parsed else {
                continue; // a stored row always parsed once; the next catch-up rewrites it
            };
            let label = super::posts::channel_label(&channel, record.export_name.as_deref());
            let mut task = super::posts::ChannelTask::new(ctx, files.clone());
            match task.sync_channel(&channel, &label).await {
                Ok(()) => posts_written += task.summary.posts_written,
                Err(SyncError::Server(MmError::Stopped { .. })) if ctx.stop.requested() => {
                    return Ok(());
                }
                Err(SyncError::Server(e)) if retry_later(&e) => {
                    ctx.observer.note(
                        Level::Warning,
                        &format!("polling {label}: {e}; again at the next poll"),
                    );
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        self.report.polls += 1;
        self.report.posts_written += posts_written;
        if posts_written > 0 {
            match targeted::users_referred_to(ctx).await {
                Ok(tally) => self.report.files_fetched += tally.files_fetched,
                Err(SyncError::Server(e)) if retry_later(&e) => {}
                Err(e) => return Err(e),
            }
        }
        ctx.observer.progress(Progress::Polled {
            channels: archived.len(),
        });
        Ok(())
    }

    /// Group commit: adds to `batch` what arrives within [`GATHER`] of its first item (up to
    /// [`BATCH`]), so that a steady trickle of events is written a few transactions a second
    /// instead of one per event. Each transaction costs far more than an event in it (a new
    /// search-index segment, the pages of every index touched): at 1,000 events/s one per
    /// event took 425 µs of CPU per event, and on a loaded machine the backlog made the p99
    /// from event to committed row 1.7 s. Returns early at a stop (the batch is applied).
    async fn gather(&self, items: &mut mpsc::Receiver<Waiting>, batch: &mut Vec<Waiting>) {
        let deadline = tokio::time::Instant::now() + GATHER;
        while batch.len() < BATCH {
            tokio::select! {
                biased;
                _ = self.ctx.stop.stopped() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                n = items.recv_many(batch, BATCH - batch.len()) => if n == 0 {
                    return;
                },
            }
        }
    }

    /// At a stop: commits the events already received (no catch-up runs any more; what a
    /// connection change would have caught up, the next start does).
    async fn drain(&mut self, items: &mut mpsc::Receiver<Waiting>) -> Result<(), SyncError> {
        let mut writes = Vec::new();
        while let Ok(Waiting { item, .. }) = items.try_recv() {
            if let Ok(Item::Event(event)) = item {
                self.log.event(live::event_time(&event));
                self.report.events += 1;
                match live::plan(*event, &self.selection, &self.me.value.id, now_ms()) {
                    Action::Write(write) => writes.push(*write),
                    Action::NotSelected => self.report.events_not_selected += 1,
                    _ => {}
                }
            }
        }
        self.apply(writes).await
    }

    /// Commits a batch of writes and queues the files they reference for download.
    async fn apply(&mut self, writes: Vec<LiveWrite>) -> Result<(), SyncError> {
        if writes.is_empty() {
            return Ok(());
        }
        let outcome = self.ctx.writer.call(move |c| c.apply_live(&writes)).await?;
        self.report.posts_written += outcome.posts_written;
        self.report.reactions_written += outcome.reactions_written;
        self.ctx.observer.progress(Progress::EventsCommitted {
            events: self.report.events,
            posts_written: outcome.posts_written,
        });
        if let Some(queue) = &self.file_queue {
            queue.push(outcome.files_to_fetch).await;
        }
        Ok(())
    }

    /// An incremental sync of every selected channel, retried with backoff while the server
    /// is unreachable (for ever: a server away for hours is waited for); then the selection
    /// events are filtered with is reloaded.
    async fn catch_up(&mut self, reason: Reason) -> Result<(), SyncError> {
        let _not_reading = self.room.widen(BACKLOG_BYTES_NOT_READING);
        let ctx = self.ctx;
        let what = match reason {
            Reason::Start => "catching up with an incremental sync",
            Reason::NotResumed => "catching up: events may have been lost while disconnected",
            Reason::Changed => "channels changed: incremental sync",
        };
        ctx.observer.note(Level::Info, what);
        ctx.observer.progress(Progress::Live(LiveState::CatchingUp));
        let mut failures = 0u32;
        let mut reported = false;
        loop {
            if ctx.stop.requested() {
                return Ok(());
            }
            let me = Raw::parse(self.me.raw.clone()).map_err(|_| {
                SyncError::Server(MmError::NotMattermost {
                    endpoint: "GET /api/v4/users/me".into(),
                    why: "the user object no longer parses".into(),
                })
            })?;
            match run_with(ctx, me, now_ms()).await {
                Ok(report) => {
                    self.report.catch_ups += 1;
                    self.report.posts_written += report.summary.posts_written;
                    self.report.files_fetched += report.summary.files_fetched;
                    if reported {
                        ctx.observer
                            .note(Level::Notice, "the server is back: caught up");
                    }
                    self.report.last_sync = Some(report);
                    break;
                }
                Err(SyncError::Server(e)) if retry_later(&e) => {
                    failures = failures.saturating_add(1);
                    if !reported {
                        ctx.observer.note(
                            Level::Warning,
                            &format!(
                                "catch-up sync failed ({e}); retrying until the server answers"
                            ),
                        );
                        reported = true;
                    }
                    let delay = backoff_delay(
                        self.follow.ws.base_backoff,
                        self.follow.ws.max_backoff,
                        failures,
                        rand::random::<f64>(),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = ctx.stop.stopped() => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.selection = ctx.writer.call(|c| c.channel_selection()).await?;
        if reason != Reason::Changed {
            self.unreachable.clear();
        }
        ctx.observer.progress(Progress::Live(LiveState::Live));
        Ok(())
    }
}

/// The server answered that this item cannot be read (403, 404, …): trying again soon
/// would not help.
fn refused(error: &MmError) -> bool {
    error
        .status()
        .is_some_and(|s| (400..500).contains(&s) && s != 429)
}

/// A catch-up that failed because of the server or the network is tried again later; bad
/// credentials, a TLS setup error or something that is not Mattermost end the session.
fn retry_later(error: &MmError) -> bool {
    !matches!(
        error,
        MmError::Unauthorized { .. }
            | MmError::MfaRequired { .. }
            | MmError::NotMattermost { .. }
            | MmError::Tls(_)
            | MmError::Stopped { .. }
    )
}
