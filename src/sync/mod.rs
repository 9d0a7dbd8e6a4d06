//! `matterbak sync`: decide what to fetch, fetch it, and hand rows to the catalog and bytes to
//! the blob store. Incremental (per-channel watermark + `since`), resumable (walk cursors are
//! committed with each page) and safe to interrupt (a stop request ends the run after the
//! current transaction; a kill loses at most the page in flight).
//!
//! Order of writes: a blob is committed before the row that references it; a page of posts
//! and its cursor commit together.
//!
//! The parts: `discover` (what the server lists, and which of it `channels.json` selects),
//! `posts` (one channel), `files` (the download stage and the blob-then-row helper), `people`
//! (users, teams, custom emojis, their images), `plan` (the pure walk decision). Every part
//! borrows the run's [`SyncContext`].
//!
//! May import: `selection`, `mm`, `archive`, `catalog`, `blobs`, `model`, `config`,
//! `progress`, `outdir`.

mod backlog;
mod connections;
mod discover;
mod files;
mod follow;
mod live;
mod people;
mod plan;
mod posts;
mod targeted;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::archive::{Archive, ArchiveError, Claim, LockedArchive, Writing};
use crate::blobs::{BlobError, BlobLocation, BlobStore, Cleaned};
use crate::catalog::{CatalogError, CatalogWriter, RunSummary};
use crate::config::{ChannelsConfig, Credentials};
use crate::mm::{Client, ClientOptions, DownloadError, MmError, StopSignal};
use crate::model::object::{self, Raw};
use crate::model::{Outcome, TeamId, UserId, now_ms};
use crate::progress::{Level, Observer, Progress};
use crate::selection::ChannelSkips;
use posts::ChannelTask;

pub use follow::{FollowOptions, FollowReport, run_follow};

/// Everything a sync run needs besides credentials.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub archive: PathBuf,
    pub channels: ChannelsConfig,
    pub skips: Skips,
    /// Re-read every selected channel in full instead of asking only for changes.
    pub update_old_posts: bool,
    pub client: ClientOptions,
    pub mfa_token: Option<String>,
    /// Random sleep up to this long before the first request (spreads cron starts).
    pub initial_jitter: Duration,
    /// Random sleep up to this long between channels.
    pub step_jitter: Duration,
    /// Member lists older than this are refreshed even without a membership change.
    pub members_max_age: Duration,
    /// How far before the watermark a `since` request starts, to catch rows that committed
    /// late on a clustered server (§2.8).
    pub since_margin_ms: i64,
    /// Test seam: make the archive's disk look full part-way through the run.
    pub simulate_disk_full: Option<DiskFull>,
    /// Where blobs go; remembered in the catalog by the run.
    pub blobs: BlobLocation,
}

/// Where a simulated full disk strikes (tests of crash safety; hidden `--simulate-disk-full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFull {
    /// Blob writes fail after this many more bytes.
    Blobs { after_bytes: u64 },
    /// Catalog writes fail once it has grown by this many pages.
    Catalog { after_pages: u32 },
}

impl SyncOptions {
    pub fn new(archive: PathBuf, channels: ChannelsConfig) -> SyncOptions {
        SyncOptions {
            archive,
            channels,
            skips: Skips::default(),
            update_old_posts: false,
            client: ClientOptions::default(),
            mfa_token: None,
            initial_jitter: Duration::ZERO,
            step_jitter: Duration::ZERO,
            members_max_age: Duration::from_secs(24 * 3600),
            since_margin_ms: 5_000,
            simulate_disk_full: None,
            blobs: BlobLocation::Local,
        }
    }
}

/// The `--skip-*` flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct Skips {
    pub direct: bool,
    pub groups: bool,
    pub teams: bool,
    /// Store no personal user data (implies `user_images`).
    pub users: bool,
    pub user_images: bool,
    pub emojis: bool,
}

impl Skips {
    /// The kinds of channel `channels.json` is not applied to, as `selection` takes them.
    pub fn channels(&self) -> ChannelSkips {
        ChannelSkips {
            teams: self.teams,
            direct: self.direct,
            groups: self.groups,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Server(#[from] MmError),
    #[error(transparent)]
    Live(#[from] crate::mm::ws::WsError),
}

impl From<DownloadError<BlobError>> for SyncError {
    /// The server's failure is one failed item (unless fatal); the blob store's ends the run.
    fn from(e: DownloadError<BlobError>) -> SyncError {
        match e {
            DownloadError::Server(e) => SyncError::Server(e),
            DownloadError::Sink(e) => SyncError::Blob(e),
        }
    }
}

/// One item that could not be archived this time.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub item: String,
    pub error: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SyncReport {
    pub run_id: i64,
    pub outcome: Outcome,
    pub user: String,
    pub summary: RunSummary,
    pub channels_selected: usize,
    pub notes: Vec<String>,
    pub failures: Vec<Failure>,
}

/// Runs a whole sync: lock the archive, log in, open the archive, archive, record the run.
///
/// Logging in comes before the catalog is opened, so that bad credentials or a wrong URL
/// leave the archive as it was (a new archive directory is not even created).
pub async fn run_sync(
    credentials: &Credentials,
    options: &SyncOptions,
    observer: &dyn Observer,
    stop: &StopSignal,
) -> Result<SyncReport, SyncError> {
    // A bucket that is unreachable, missing or refuses the credentials fails the run before
    // the archive is touched; a directory of other files never becomes an archive.
    let archive = Archive::at(&options.archive);
    let locked = archive.lock(archive.blobs(&options.blobs)?, Claim::NewOrArchive)?;
    jitter(options.initial_jitter, "initial", observer).await;
    let started = now_ms();
    let Some((client, me, locked)) = log_in(credentials, options, locked, stop).await? else {
        return Ok(SyncReport {
            run_id: 0,
            outcome: Outcome::Interrupted,
            user: credentials.user.clone(),
            summary: RunSummary {
                outcome: Outcome::Interrupted,
                ..RunSummary::default()
            },
            channels_selected: 0,
            notes: Vec::new(),
            failures: Vec::new(),
        });
    };
    if me.value.username != credentials.user {
        observer.note(
            Level::Notice,
            &format!(
                "the credentials authenticate as '{}', not '{}'; archiving what '{}' can read",
                me.value.username, credentials.user, me.value.username
            ),
        );
    }
    archive_into(&client, me, started, options, locked, observer, stop).await
}

/// Logs in for a run that holds `locked`. `None`: stopped while logging in; nothing was
/// written and the lock is given up, so the run is interrupted like any other (exit 1, the
/// next one starts afresh), not failed. Any other failure gives the lock up too.
pub(crate) async fn log_in(
    credentials: &Credentials,
    options: &SyncOptions,
    locked: LockedArchive,
    stop: &StopSignal,
) -> Result<Option<(Client, Raw<object::User>, LockedArchive)>, SyncError> {
    match Client::connect(
        credentials,
        options.mfa_token.as_deref(),
        &options.client,
        stop,
    )
    .await
    {
        Ok((client, me)) => Ok(Some((client, me, locked))),
        Err(e) => {
            locked.abandon();
            if matches!(e, MmError::Stopped { .. }) && stop.requested() {
                return Ok(None);
            }
            Err(e.into())
        }
    }
}

/// The part of a run that writes: blob store, catalog writer thread, the run itself.
async fn archive_into(
    client: &Client,
    me: Raw<object::User>,
    started: i64,
    options: &SyncOptions,
    locked: LockedArchive,
    observer: &dyn Observer,
    stop: &StopSignal,
) -> Result<SyncReport, SyncError> {
    let (stale, writing) = match open_for_run(locked, options) {
        Ok(opened) => opened,
        Err(e) => {
            client.logout().await;
            return Err(e);
        }
    };
    if stale.temps > 0 {
        observer.note(
            Level::Info,
            &format!(
                "removed {} partial download(s) left by an interrupted run",
                stale.temps
            ),
        );
    }
    if stale.uploads > 0 {
        observer.note(
            Level::Info,
            &format!(
                "aborted {} incomplete multipart upload(s) left by an interrupted run",
                stale.uploads
            ),
        );
    }
    let ctx = SyncContext {
        client,
        writer: &writing.writer,
        blobs: &writing.blobs,
        options,
        observer,
        stop,
    };
    let result = run_with(ctx, me, started).await;
    client.logout().await;
    writing.finish();
    result
}

/// Opens the locked archive for the run: the catalog on its writer thread, the blob store
/// readied (what an interrupted run left is removed: returned for a note) and remembered.
fn open_for_run(
    locked: LockedArchive,
    options: &SyncOptions,
) -> Result<(Cleaned, Writing), SyncError> {
    let mut archive = locked.open_write()?;
    let stale = archive.prepare_blobs()?;
    archive.remember_blob_location()?;
    match options.simulate_disk_full {
        Some(DiskFull::Blobs { after_bytes }) => archive.limit_blob_space(after_bytes),
        Some(DiskFull::Catalog { after_pages }) => archive.catalog().limit_growth(after_pages)?,
        None => {}
    }
    Ok((stale, archive.into_writer()))
}

/// The run itself, between its record's start and finish in the catalog. The session stays
/// open (a follower runs many).
async fn run_with(
    ctx: SyncContext<'_>,
    me: Raw<object::User>,
    started: i64,
) -> Result<SyncReport, SyncError> {
    let SyncContext {
        client,
        writer,
        stop,
        ..
    } = ctx;
    let run_id = writer
        .call(move |c| c.begin_run(started, env!("CARGO_PKG_VERSION")))
        .await?;
    {
        let (id, name) = (me.value.id.clone(), me.value.username.clone());
        writer
            .call(move |c| c.set_run_user(run_id, &id, &name))
            .await?;
    }
    let mut run = Run {
        ctx,
        me_id: me.value.id.clone(),
        me_name: me.value.username.clone(),
        notes: Vec::new(),
        failures: Vec::new(),
        summary: RunSummary::default(),
        extra_users: Vec::new(),
        team_membership_changed: HashSet::new(),
        channels_selected: 0,
    };
    let result = match run.archive(me).await {
        // A request that was waiting for its turn when the stop came: an interrupted run.
        Err(SyncError::Server(MmError::Stopped { .. })) if stop.requested() => Ok(()),
        other => other,
    };
    let mut summary = std::mem::take(&mut run.summary);
    summary.requests = client.request_count();
    summary.server_version = client.server_version();
    summary.failures = run.failures.len() as u64;
    let outcome = match &result {
        Ok(()) if stop.requested() => Outcome::Interrupted,
        Ok(()) if !run.failures.is_empty() => Outcome::Partial,
        Ok(()) => Outcome::Ok,
        Err(e) => {
            summary.outcome = Outcome::Failed;
            summary.error = Some(e.to_string());
            let s = summary.clone();
            writer
                .call(move |c| c.finish_run(run_id, now_ms(), &s))
                .await?;
            return Err(result.expect_err("matched Err"));
        }
    };
    summary.outcome = outcome;
    let s = summary.clone();
    writer
        .call(move |c| c.finish_run(run_id, now_ms(), &s))
        .await?;
    Ok(SyncReport {
        run_id,
        outcome,
        user: run.me_name.clone(),
        summary,
        channels_selected: run.channels_selected,
        notes: run.notes,
        failures: run.failures,
    })
}

async fn jitter(max: Duration, label: &str, observer: &dyn Observer) {
    if max.is_zero() {
        return;
    }
    let delay = max.mul_f64(rand::random::<f64>());
    observer.note(
        Level::Info,
        &format!(
            "{label} random jitter: sleeping for {:.2}s",
            delay.as_secs_f64()
        ),
    );
    tokio::time::sleep(delay).await;
}

/// Records an item that failed; fatal errors (authentication, server down) end the run.
pub(crate) fn record_failure(
    observer: &dyn Observer,
    failures: &mut Vec<Failure>,
    item: String,
    error: MmError,
) -> Result<(), SyncError> {
    if error.is_fatal() {
        return Err(error.into());
    }
    let error = with_causes(&error);
    observer.note(Level::Failure, &format!("{item}: {error}"));
    failures.push(Failure { item, error });
    Ok(())
}

/// An error and its causes on one line (`a: b: c`), as `main` prints a fatal one: a failed
/// item's message needs its cause too, and a `Display` never repeats its `#[source]`.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        line.push_str(": ");
        line.push_str(&inner.to_string());
        cause = inner.source();
    }
    line
}

/// A member list is refreshed when never fetched, older than the configured age, or on a
/// forced full re-read; membership posts trigger it too (see the callers).
pub(crate) fn members_due(options: &SyncOptions, synced_at: Option<i64>) -> bool {
    let max_age = options.members_max_age.as_millis() as i64;
    options.update_old_posts || synced_at.is_none_or(|at| now_ms() - at > max_age)
}

/// What every part of a run borrows: the client, the catalog writer, the blob store, the
/// options, the observer and the stop request. Cheap to copy (six references).
#[derive(Clone, Copy)]
pub(crate) struct SyncContext<'a> {
    pub(crate) client: &'a Client,
    pub(crate) writer: &'a CatalogWriter,
    pub(crate) blobs: &'a BlobStore,
    pub(crate) options: &'a SyncOptions,
    pub(crate) observer: &'a dyn Observer,
    pub(crate) stop: &'a StopSignal,
}

impl SyncContext<'_> {
    /// Requests in flight at once: also how many channels and downloads run side by side.
    pub(crate) fn concurrency(&self) -> usize {
        self.options.client.concurrency.max(1)
    }
}

/// Counts, failures and notes of a part that runs beside the others; the run adds them to
/// its own when the part ends.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) files_fetched: u64,
    pub(crate) bytes_fetched: u64,
    pub(crate) failures: Vec<Failure>,
    pub(crate) notes: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.files_fetched += other.files_fetched;
        self.bytes_fetched += other.bytes_fetched;
        self.failures.extend(other.failures);
        self.notes.extend(other.notes);
    }
}

/// State of one run.
pub(crate) struct Run<'a> {
    pub(crate) ctx: SyncContext<'a>,
    pub(crate) me_id: UserId,
    pub(crate) me_name: String,
    pub(crate) notes: Vec<String>,
    pub(crate) failures: Vec<Failure>,
    pub(crate) summary: RunSummary,
    /// Users fetched for naming DMs/GMs, stored with the others at the end.
    extra_users: Vec<Raw<object::User>>,
    /// Teams whose channels showed join/leave posts: refresh their member lists.
    pub(crate) team_membership_changed: HashSet<TeamId>,
    channels_selected: usize,
}

impl Run<'_> {
    /// A note the report keeps too, as a log shows it.
    fn note(&mut self, level: Level, text: &str) {
        self.ctx.observer.note(level, text);
        self.notes.push(level.line(text));
    }

    /// Records an item that failed; fatal errors end the run instead.
    pub(crate) fn fail(&mut self, item: String, error: MmError) -> Result<(), SyncError> {
        record_failure(self.ctx.observer, &mut self.failures, item, error)
    }

    async fn archive(&mut self, me: Raw<object::User>) -> Result<(), SyncError> {
        let ctx = self.ctx;
        let skips = ctx.options.skips;
        let (known_users, users_watermark) = ctx.writer.call(|c| c.known_users()).await?;
        if !skips.users {
            ctx.writer
                .call(move |c| c.upsert_users(std::slice::from_ref(&me)))
                .await?;
        }

        let discovery = self.discover().await?;
        let selected = self.select(&discovery);
        self.catalogue(&discovery, &selected).await?;

        let order = selected.in_order(&discovery);
        self.channels_selected = order.len();
        ctx.observer
            .note(Level::Info, &format!("{} channel(s) selected", order.len()));
        ctx.observer
            .progress(Progress::ChannelsPlanned(order.len()));
        let labels: Vec<String> = order
            .iter()
            .map(|c| posts::channel_label(c, selected.export_name(&c.value.id)))
            .collect();
        // Three parts run side by side: the channels (then teams and users, which depend
        // on what the posts said), the file downloads the channels feed, and the custom
        // emojis, which depend on nothing. Request slots stay busy until the very end.
        let (file_queue, downloads) = files::download_stage(ctx);
        let files_done = files::drain(downloads, ctx);
        let emojis_done = async move {
            if skips.emojis {
                return Ok(Tally::default());
            }
            people::sync_emojis(ctx).await
        };
        let rest = async {
            self.sync_channels(order, labels, file_queue).await?;
            if ctx.stop.requested() {
                return Ok(());
            }
            // After the channels, whose posts tell whether team memberships changed.
            for team in discovery
                .teams
                .iter()
                .filter(|t| selected.team_ids.contains(&t.value.id))
            {
                if ctx.stop.requested() {
                    return Ok(());
                }
                self.sync_team(team).await?;
            }
            if !skips.users && !ctx.stop.requested() {
                self.sync_users(known_users, users_watermark).await?;
            }
            Ok(())
        };
        let ((), files, emojis) =
            futures_util::future::try_join3(rest, files_done, emojis_done).await?;
        self.absorb(files);
        self.absorb(emojis);
        Ok(())
    }

    fn absorb(&mut self, tally: Tally) {
        self.summary.files_fetched += tally.files_fetched;
        self.summary.bytes_fetched += tally.bytes_fetched;
        self.failures.extend(tally.failures);
        self.notes.extend(tally.notes);
    }

    /// The selected channels, up to `concurrency` at once (the client caps the requests in
    /// flight); each commits through the one catalog writer and queues its files.
    async fn sync_channels(
        &mut self,
        order: Vec<&Raw<object::Channel>>,
        labels: Vec<String>,
        file_queue: files::FileQueue<'_>,
    ) -> Result<(), SyncError> {
        let ctx = self.ctx;
        // Boxed with explicit types: without them rustc cannot prove the run's future `Send`.
        let tasks: Vec<BoxFuture<'_, ChannelDone<'_>>> = order
            .into_iter()
            .zip(labels)
            .enumerate()
            .map(|(i, (channel, label))| -> BoxFuture<'_, ChannelDone<'_>> {
                let files = file_queue.clone();
                Box::pin(async move {
                    if i > 0 {
                        jitter(ctx.options.step_jitter, "step", ctx.observer).await;
                    }
                    let mut task = ChannelTask::new(ctx, files);
                    let result = if ctx.stop.requested() {
                        Ok(())
                    } else {
                        task.sync_channel(channel, &label).await
                    };
                    ChannelDone {
                        channel,
                        label,
                        task,
                        result,
                    }
                })
            })
            .collect();
        // The download stage ends once the last channel task (and its queue handle) is gone.
        drop(file_queue);
        let mut running = futures_util::stream::iter(tasks).buffer_unordered(ctx.concurrency());
        while let Some(done) = running.next().await {
            done.result?;
            let task = done.task;
            ctx.observer.progress(Progress::ChannelDone {
                label: done.label,
                posts_written: task.summary.posts_written,
            });
            let team_id = done.channel.value.team_id.clone();
            self.summary.posts_written += task.summary.posts_written;
            self.failures.extend(task.failures);
            if task.team_membership_changed {
                self.team_membership_changed.insert(team_id);
            }
        }
        Ok(())
    }
}

/// What a channel task hands back: the channel, its label, its counts and its outcome.
struct ChannelDone<'a> {
    channel: &'a Raw<object::Channel>,
    label: String,
    task: ChannelTask<'a>,
    result: Result<(), SyncError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_item_keeps_the_cause_its_display_leaves_to_the_chain() {
        let source = serde_json::from_str::<u32>("x").unwrap_err();
        let error = MmError::Decode {
            endpoint: "GET /api/v4/files/f1/info".into(),
            source,
        };
        let line = with_causes(&error);
        assert!(
            line.starts_with(
                "GET /api/v4/files/f1/info: cannot decode the response: expected value"
            ),
            "{line}"
        );
    }
}
