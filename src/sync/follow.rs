//! `matterbak sync --follow`: an incremental sync, then live capture of the server's
//! WebSocket events (API notes §15) until stopped.
//!
//! One session: the archive lock and the one catalog writer are held throughout; the
//! WebSocket listener runs on its own task and hands items over a channel, so it keeps
//! reading while a catch-up sync runs. Events are applied in order, in batches of whatever
//! has arrived (one transaction per batch), through [`super::live`].
//!
//! No gaps: every `hello` with a connection id the server just issued (at start, and after
//! a drop it could not resume) is followed by a catch-up sync of every selected channel
//! (an ordinary incremental run, recorded in `runs`) before the events after it are
//! applied; a resumed connection replays what we missed. A live write never moves the
//! `since` watermark (see `catalog::live`), so whatever a crash loses is found by the next
//! catch-up. Channels whose events the account does not receive, and changes the server
//! publishes no event for (§15.7), are caught up by the same sync every `poll_interval`.
//!
//! Stop: the stop request ends every wait (the listener's, the catch-up's requests, the
//! download stage); what was received is committed before the function returns.
//!
//! May import what `sync` may.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::live::{self, Action};
use super::{
    SyncContext, SyncError, SyncOptions, SyncReport, files, log_in, open_for_run, run_with,
};
use crate::archive::{Archive, Claim};
use crate::catalog::LiveWrite;
use crate::config::Credentials;
use crate::mm::ws::{Item, Listener, WsError, WsOptions, backoff_delay};
use crate::mm::{Client, MmError, StopSignal};
use crate::model::object::{self, Raw};
use crate::model::{Outcome, now_ms};
use crate::progress::{Level, LiveState, Observer, Progress};

/// Items the listener may hold for us while a catch-up sync runs; beyond it the listener
/// waits, the server queues (§15.4: 256 events), and past that we get a fresh connection
/// and catch up again: nothing is lost either way, memory stays bounded.
const ITEM_BUFFER: usize = 65_536;
/// Events applied in one transaction at most.
const BATCH: usize = 2_048;

/// Knobs of live capture beside the sync's own options.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// A catch-up sync this often, for channels whose events the account does not receive
    /// and for changes the server publishes no event for.
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
    /// Catch-up syncs run (at start, after a lost connection, every poll interval).
    pub catch_ups: u64,
    /// The last catch-up's report.
    pub last_sync: Option<SyncReport>,
    pub events: u64,
    pub posts_written: u64,
    pub reactions_written: u64,
    pub files_fetched: u64,
    /// Events dropped because their channel is not selected.
    pub events_not_selected: u64,
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
    let listener = Listener::beside(client, follow.ws.clone())?;
    let (tx, items) = mpsc::channel(ITEM_BUFFER);
    let listening = tokio::spawn(listen(listener, tx));
    let (file_queue, downloads) = files::download_stage(ctx);
    let mut follower = Follower {
        ctx,
        me,
        follow,
        report: FollowReport::default(),
        selection: HashMap::new(),
        caught_up_for: HashSet::new(),
        file_queue: Some(file_queue),
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
    let mut report = follower.report;
    match files {
        Ok(tally) => report.files_fetched += tally.files_fetched,
        Err(SyncError::Server(MmError::Stopped { .. })) => {}
        Err(e) => return Err(e),
    }
    result?;
    report.outcome = Outcome::Interrupted;
    Ok(report)
}

/// The listener's task: every item, in order, until the listener ends (stop or a revoked
/// session, sent as the last item) or nobody listens.
async fn listen(mut listener: Listener, tx: mpsc::Sender<Result<Item, WsError>>) {
    loop {
        let item = listener.next().await;
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
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
    selection: HashMap<String, bool>,
    /// Unknown channels a catch-up already looked for (it did not find them selectable):
    /// their events are dropped until the next catch-up.
    caught_up_for: HashSet<String>,
    file_queue: Option<files::FileQueue<'a>>,
}

/// Why a catch-up sync runs, for its log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Start,
    NotResumed,
    Poll,
    Changed,
}

impl Follower<'_> {
    async fn run(
        &mut self,
        mut items: mpsc::Receiver<Result<Item, WsError>>,
    ) -> Result<(), SyncError> {
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
                    self.catch_up(Reason::Poll).await?;
                    continue;
                }
            };
            if received == 0 {
                return Ok(()); // the listener ended without telling why: only at a stop
            }
            let mut writes = Vec::new();
            let mut catch_up = None;
            for item in batch.drain(..) {
                match item {
                    Ok(Item::Fresh {
                        connection_id,
                        previous,
                        ..
                    }) => {
                        self.apply(std::mem::take(&mut writes)).await?;
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
                        catch_up = None;
                        poll.reset();
                    }
                    Ok(Item::Resumed { connection_id }) => {
                        self.ctx.observer.progress(Progress::Live(LiveState::Live));
                        self.ctx.observer.note(
                            Level::Notice,
                            &format!("connection {connection_id} resumed: no event lost"),
                        );
                    }
                    Ok(Item::Disconnected(failure)) => {
                        self.ctx
                            .observer
                            .progress(Progress::Live(LiveState::Reconnecting));
                        self.ctx
                            .observer
                            .note(Level::Warning, &format!("{failure}; reconnecting"));
                    }
                    Ok(Item::Event(event)) => {
                        self.report.events += 1;
                        match live::plan(*event, &self.selection, now_ms()) {
                            Action::Write(write) => writes.push(*write),
                            Action::NotSelected => self.report.events_not_selected += 1,
                            Action::Ignore => {}
                            Action::UnknownChannel(channel_id) => {
                                if self.caught_up_for.insert(channel_id) {
                                    catch_up = Some(Reason::Changed);
                                }
                            }
                            Action::CatchUp => catch_up = Some(Reason::Changed),
                        }
                    }
                    Err(WsError::Stopped) => {
                        self.apply(writes).await?;
                        return Ok(());
                    }
                    Err(e) => {
                        self.apply(writes).await?;
                        return Err(e.into());
                    }
                }
            }
            self.apply(writes).await?;
            if let Some(reason) = catch_up {
                self.catch_up(reason).await?;
            }
        }
    }

    /// At a stop: commits the events already received (no catch-up runs any more; what a
    /// connection change would have caught up, the next start does).
    async fn drain(
        &mut self,
        items: &mut mpsc::Receiver<Result<Item, WsError>>,
    ) -> Result<(), SyncError> {
        let mut writes = Vec::new();
        while let Ok(item) = items.try_recv() {
            if let Ok(Item::Event(event)) = item {
                self.report.events += 1;
                match live::plan(*event, &self.selection, now_ms()) {
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
        let ctx = self.ctx;
        let what = match reason {
            Reason::Start => "catching up with an incremental sync",
            Reason::NotResumed => "catching up: events may have been lost while disconnected",
            Reason::Poll => "polling: incremental sync",
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
            self.caught_up_for.clear();
        }
        ctx.observer.progress(Progress::Live(LiveState::Live));
        Ok(())
    }
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
