//! `matterbak sync`: decide what to fetch, fetch it, and hand rows to the catalog and bytes to
//! the blob store. Incremental (per-channel watermark + `since`), resumable (walk cursors are
//! committed with each page) and safe to interrupt (a stop request ends the run after the
//! current transaction; a kill loses at most the page in flight).
//!
//! Order of writes: a blob is committed before the row that references it; a page of posts
//! and its cursor commit together.

mod files;
mod plan;
mod posts;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::archive::{Archive, ArchiveError, Claim, LockedArchive, Writing};
use crate::blobs::{BlobError, BlobLocation, BlobStore, Cleaned};
use crate::catalog::{
    Catalog, CatalogError, CatalogWriter, ImageOwner, Result as CatalogResult, RunSummary,
};
use crate::config::{ChannelsConfig, Credentials};
use crate::mm::{Client, ClientOptions, DownloadError, MmError, StopSignal};
use crate::model::object::{self, Raw};
use crate::model::{BlobRef, Outcome, UserId, dm_other_user, now_ms};
use crate::progress::{Level, Observer, Progress};
use crate::selection::{self, ChannelSkips, ChannelView, TeamView};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use posts::ChannelTask;

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
    let (client, me) = match Client::connect(
        credentials,
        options.mfa_token.as_deref(),
        &options.client,
        stop,
    )
    .await
    {
        Ok(pair) => pair,
        Err(e) => {
            locked.abandon();
            // Stopped while logging in: nothing was written, and the run is interrupted like
            // any other (exit 1, the next sync starts afresh), not failed.
            if matches!(e, MmError::Stopped { .. }) && stop.requested() {
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
            }
            return Err(e.into());
        }
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
    let result = run_with(
        client,
        me,
        started,
        options,
        &writing.writer,
        &writing.blobs,
        observer,
        stop,
    )
    .await;
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

#[allow(clippy::too_many_arguments)]
async fn run_with(
    client: &Client,
    me: Raw<object::User>,
    started: i64,
    options: &SyncOptions,
    writer: &CatalogWriter,
    blobs: &BlobStore,
    observer: &dyn Observer,
    stop: &StopSignal,
) -> Result<SyncReport, SyncError> {
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
        client,
        writer,
        blobs,
        options,
        observer,
        stop,
        me_id: UserId::from(me.value.id.as_str()),
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
    client.logout().await;
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

/// A binary fetched and stored: the caller's key and its size, or why not.
pub(crate) type Stored<K> = (K, Result<u64, SyncError>);

/// Stores a fetched binary's row once its blob is durable.
pub(crate) type StoreFn<K> = fn(&mut Catalog, &K, &BlobRef, &str) -> CatalogResult<()>;

/// Downloads binaries (`(key, path segments)`) into the blob store and commits each one's row
/// with `store`, yielding `(key, bytes)` or the failure as each completes. Up to
/// `2 × concurrency` items are under way: the client caps requests in flight at
/// `concurrency`, and the others are ready to take a slot the moment one frees (while a
/// finished download flushes its blob and waits for the writer). Download and commit happen
/// in the same task, blob first (the crash-safety order). A download error is
/// `SyncError::Server` (one failed item); a catalog error is fatal to the run. Items not
/// started before a stop request are skipped.
pub(crate) fn fetch_and_store<'a, K: Clone + Send + Sync + 'static>(
    run: Handles<'a>,
    concurrency: usize,
    items: impl futures_util::Stream<Item = (K, Vec<String>)> + Send + 'a,
    store: StoreFn<K>,
) -> BoxStream<'a, Stored<K>> {
    let (client, blobs, writer, stop) = run;
    items
        .map(move |(key, segments)| -> BoxFuture<'a, Option<Stored<K>>> {
            Box::pin(async move {
                if stop.requested() {
                    return None;
                }
                let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
                let result = match files::download_blob(client, blobs, &segments).await {
                    Ok((blob, content_type)) => {
                        let (k, size) = (key.clone(), blob.size);
                        writer
                            .call(move |c| store(c, &k, &blob, &content_type))
                            .await
                            .map(|()| size)
                            .map_err(SyncError::from)
                    }
                    Err(e) => Err(e.into()),
                };
                Some((key, result))
            })
        })
        .buffer_unordered(2 * concurrency.max(1))
        .filter_map(std::future::ready)
        .boxed()
}

/// What a channel task hands back: the channel, its label, its counts and its outcome.
type ChannelResult<'a> = (
    &'a Raw<object::Channel>,
    String,
    ChannelTask<'a>,
    Result<(), SyncError>,
);

/// Usernames by user id, member ids by group channel id, and why a group channel's members
/// could not be read.
type PrivateChannelUsers = (
    HashMap<String, String>,
    HashMap<String, Vec<String>>,
    HashMap<String, String>,
);

/// What the run shares with its parts: client, blob store, catalog writer, stop signal.
pub(crate) type Handles<'a> = (&'a Client, &'a BlobStore, &'a CatalogWriter, &'a StopSignal);

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
    pub(crate) client: &'a Client,
    pub(crate) writer: &'a CatalogWriter,
    pub(crate) blobs: &'a BlobStore,
    pub(crate) options: &'a SyncOptions,
    pub(crate) observer: &'a dyn Observer,
    pub(crate) stop: &'a StopSignal,
    pub(crate) me_id: UserId,
    pub(crate) me_name: String,
    pub(crate) notes: Vec<String>,
    pub(crate) failures: Vec<Failure>,
    pub(crate) summary: RunSummary,
    /// Users fetched for naming DMs/GMs, stored with the others at the end.
    extra_users: Vec<Raw<object::User>>,
    /// Teams whose channels showed join/leave posts: refresh their member lists.
    pub(crate) team_membership_changed: HashSet<String>,
    channels_selected: usize,
}

impl Run<'_> {
    /// A note the report keeps too, as a log shows it.
    fn note(&mut self, level: Level, text: &str) {
        self.observer.note(level, text);
        self.notes.push(level.line(text));
    }

    /// Records an item that failed; fatal errors end the run instead.
    pub(crate) fn fail(&mut self, item: String, error: MmError) -> Result<(), SyncError> {
        record_failure(self.observer, &mut self.failures, item, error)
    }

    async fn archive(&mut self, me: Raw<object::User>) -> Result<(), SyncError> {
        let skips = self.options.skips;
        let (known_users, users_watermark) = self.writer.call(|c| c.known_users()).await?;
        if !skips.users {
            self.writer
                .call(move |c| c.upsert_users(std::slice::from_ref(&me)))
                .await?;
        }

        // Teams and channels at once: both only need the session.
        let (teams, channels) =
            futures_util::future::join(self.client.fetch_teams(), self.client.fetch_my_channels())
                .await;
        let teams = teams?;
        let channels = match channels? {
            Some(channels) => channels,
            None => {
                let team_ids: Vec<String> = teams.iter().map(|t| t.value.id.clone()).collect();
                self.client.fetch_team_channels(&team_ids).await?
            }
        };
        let (usernames, group_members, member_errors) =
            self.resolve_private_channel_users(&channels, skips).await?;

        let team_views: Vec<TeamView> = teams.iter().map(|t| TeamView::from(&t.value)).collect();
        let channel_views: Vec<ChannelView> = channels
            .iter()
            .map(|c| ChannelView::from(&c.value))
            .collect();
        let selection = selection::plan_selection(
            &self.options.channels,
            (&self.me_id, &self.me_name),
            &team_views,
            &channel_views,
            &usernames,
            &group_members,
            ChannelSkips {
                teams: skips.teams,
                direct: skips.direct,
                groups: skips.groups,
            },
        );
        // Names not found and teams without access are warnings: `--quiet` still shows them.
        for note in &selection.notes {
            self.note(Level::Warning, note);
        }
        for (channel_id, why) in &selection.undecided {
            let error = member_errors.get(channel_id).unwrap_or(why);
            let kind = channels
                .iter()
                .find(|c| &c.value.id == channel_id)
                .map_or("channel", |c| match c.value.kind.as_str() {
                    "D" => "direct channel",
                    "G" => "group channel",
                    _ => "channel",
                });
            self.observer
                .note(Level::Failure, &format!("{kind} {channel_id}: {error}"));
            self.failures.push(Failure {
                item: format!("{kind} {channel_id}"),
                error: format!("cannot tell whether channels.json selects it: {error}"),
            });
        }

        // Catalogue every team and channel we can see; `selected` marks the archived ones.
        let selected_teams: HashSet<String> = selection.team_ids.iter().cloned().collect();
        let selected_channels: HashMap<String, Option<String>> = selection
            .channels
            .iter()
            .map(|c| (c.id.clone(), c.export_name.clone()))
            .collect();
        let teams = Arc::new(teams);
        let channels = Arc::new(channels);
        {
            let (teams, channels, selected_teams, selected_channels) = (
                teams.clone(),
                channels.clone(),
                selected_teams.clone(),
                selected_channels.clone(),
            );
            self.writer
                .call(move |c| {
                    for team in teams.iter() {
                        c.upsert_team(team, selected_teams.contains(&team.value.id))?;
                    }
                    for channel in channels.iter() {
                        let export_name =
                            selected_channels.get(&channel.value.id).cloned().flatten();
                        c.upsert_channel(
                            channel,
                            selected_channels.contains_key(&channel.value.id),
                            export_name.as_deref(),
                        )?;
                    }
                    Ok(())
                })
                .await?;
        }

        let order: Vec<&Raw<object::Channel>> = selection
            .channels
            .iter()
            .filter_map(|s| channels.iter().find(|c| c.value.id == s.id))
            .collect();
        self.channels_selected = order.len();
        self.observer
            .note(Level::Info, &format!("{} channel(s) selected", order.len()));
        self.observer
            .progress(Progress::ChannelsPlanned(order.len()));
        // Channels are independent: up to `concurrency` run at once (the client caps the
        // requests in flight); each commits through the one catalog writer.
        let (client, writer, blobs, options, observer, stop) = (
            self.client,
            self.writer,
            self.blobs,
            self.options,
            self.observer,
            self.stop,
        );
        let labels: Vec<String> = order
            .iter()
            .map(|c| {
                posts::channel_label(
                    c,
                    selected_channels
                        .get(&c.value.id)
                        .and_then(|n| n.as_deref()),
                )
            })
            .collect();
        // Three parts run side by side: the channels (then teams and users, which depend
        // on what the posts said), the file downloads the channels feed, and the custom
        // emojis, which depend on nothing. Request slots stay busy until the very end.
        let handles = (client, blobs, writer, stop);
        let concurrency = options.client.concurrency;
        let (file_queue, downloads) = files::download_stage(handles, concurrency, observer);
        let files_done = files::drain(downloads, writer, observer);
        let emojis_done = async move {
            if skips.emojis {
                return Ok(Tally::default());
            }
            sync_emojis(handles, concurrency, observer).await
        };
        let rest = async {
            self.sync_channels(order, labels, file_queue).await?;
            if self.stop.requested() {
                return Ok(());
            }
            // After the channels, whose posts tell whether team memberships changed.
            for team in teams
                .iter()
                .filter(|t| selected_teams.contains(&t.value.id))
            {
                if self.stop.requested() {
                    return Ok(());
                }
                self.sync_team(team).await?;
            }
            if !skips.users && !self.stop.requested() {
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
        let (client, writer, options, observer, stop) = (
            self.client,
            self.writer,
            self.options,
            self.observer,
            self.stop,
        );
        // Boxed with explicit types: without them rustc cannot prove the run's future `Send`.
        let tasks: Vec<BoxFuture<'_, ChannelResult<'_>>> = order
            .into_iter()
            .zip(labels)
            .enumerate()
            .map(
                |(i, (channel, label))| -> BoxFuture<'_, ChannelResult<'_>> {
                    let files = file_queue.clone();
                    Box::pin(async move {
                        if i > 0 {
                            jitter(options.step_jitter, "step", observer).await;
                        }
                        let mut task =
                            ChannelTask::new(client, writer, files, options, observer, stop);
                        let result = if stop.requested() {
                            Ok(())
                        } else {
                            task.sync_channel(channel, &label).await
                        };
                        (channel, label, task, result)
                    })
                },
            )
            .collect();
        // The download stage ends once the last channel task (and its queue handle) is gone.
        drop(file_queue);
        let mut running =
            futures_util::stream::iter(tasks).buffer_unordered(options.client.concurrency.max(1));
        while let Some((channel, label, task, result)) = running.next().await {
            result?;
            self.observer.progress(Progress::ChannelDone {
                label,
                posts_written: task.summary.posts_written,
            });
            let team_id = channel.value.team_id.clone();
            self.summary.posts_written += task.summary.posts_written;
            self.failures.extend(task.failures);
            if task.team_membership_changed {
                self.team_membership_changed.insert(team_id);
            }
        }
        Ok(())
    }

    /// Usernames of DM partners and the members of group channels, needed to apply
    /// `channels.json` and to name those channels in exports; and, per group channel whose
    /// members could not be read, why.
    async fn resolve_private_channel_users(
        &mut self,
        channels: &[Raw<object::Channel>],
        skips: Skips,
    ) -> Result<PrivateChannelUsers, SyncError> {
        let mut usernames = HashMap::new();
        let mut group_members = HashMap::new();
        let mut member_errors = HashMap::new();
        if !skips.direct {
            let partners: Vec<String> = channels
                .iter()
                .filter(|c| c.value.kind == "D")
                .filter_map(|c| dm_other_user(&c.value.name, &self.me_id))
                .filter(|id| id != &self.me_id)
                .map(|id| id.0)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            self.learn_usernames(partners, &mut usernames).await?;
        }
        if !skips.groups {
            let groups: Vec<String> = channels
                .iter()
                .filter(|c| c.value.kind == "G")
                .map(|c| c.value.id.clone())
                .collect();
            let answered = self
                .client
                .fetch_group_channel_users(&groups)
                .await?
                .unwrap_or_default();
            for (channel_id, users) in answered {
                group_members.insert(
                    channel_id,
                    users.iter().map(|u| u.value.id.clone()).collect(),
                );
                for user in users {
                    usernames.insert(user.value.id.clone(), user.value.username.clone());
                    self.extra_users.push(user);
                }
            }
            // Channels the endpoint did not answer for (an old or filtering server, or a
            // group whose other members left): from their member lists instead (§14.1).
            let mut strangers = HashSet::new();
            let unanswered: Vec<&String> = groups
                .iter()
                .filter(|id| !group_members.contains_key(*id))
                .collect();
            for channel_id in unanswered {
                match self.client.fetch_channel_members(channel_id).await {
                    Ok(members) => {
                        let ids: Vec<String> =
                            members.iter().map(|m| m.value.user_id.clone()).collect();
                        strangers.extend(
                            ids.iter()
                                .filter(|id| !usernames.contains_key(*id))
                                .cloned(),
                        );
                        group_members.insert(channel_id.clone(), ids);
                    }
                    Err(e) if e.is_fatal() => return Err(e.into()),
                    Err(e) => {
                        member_errors.insert(channel_id.clone(), e.to_string());
                    }
                }
            }
            strangers.remove(self.me_id.as_str());
            self.learn_usernames(strangers.into_iter().collect(), &mut usernames)
                .await?;
        }
        Ok((usernames, group_members, member_errors))
    }

    /// Usernames of `ids`: known ones from the catalog (renames arrive with the user
    /// refresh); only strangers cost a request.
    async fn learn_usernames(
        &mut self,
        ids: Vec<String>,
        usernames: &mut HashMap<String, String>,
    ) -> Result<(), SyncError> {
        if ids.is_empty() {
            return Ok(());
        }
        let known = self.writer.call({
            let ids = ids.clone();
            move |c| c.usernames(&ids)
        });
        let known = known.await?;
        let strangers: Vec<String> = ids
            .into_iter()
            .filter(|id| !known.contains_key(id))
            .collect();
        usernames.extend(known);
        if !strangers.is_empty() {
            for user in self.client.fetch_users(&strangers, None).await? {
                usernames.insert(user.value.id.clone(), user.value.username.clone());
                self.extra_users.push(user);
            }
        }
        Ok(())
    }

    async fn sync_team(&mut self, team: &Raw<object::Team>) -> Result<(), SyncError> {
        let team_id = team.value.id.clone();
        let id = team_id.clone();
        let synced_at = self
            .writer
            .call(move |c| c.team_members_synced_at(&id))
            .await?;
        if members_due(self.options, synced_at) || self.team_membership_changed.contains(&team_id) {
            match self.client.fetch_team_members(&team_id).await {
                Ok(members) => {
                    let id = team_id.clone();
                    self.writer
                        .call(move |c| c.replace_team_members(&id, &members, now_ms()))
                        .await?;
                }
                Err(e) => self.fail(format!("members of team {}", team.value.name), e)?,
            }
        }
        let icon_update = team.value.last_team_icon_update;
        if icon_update > 0 {
            let id = team_id.clone();
            let stored = self.writer.call(move |c| c.team_icon_update(&id)).await?;
            if stored != icon_update {
                match files::download_blob(self.client, self.blobs, &["teams", &team_id, "image"])
                    .await
                {
                    Ok((blob, content_type)) => {
                        self.summary.bytes_fetched += blob.size;
                        self.writer
                            .call(move |c| {
                                c.set_image(
                                    ImageOwner::Team,
                                    &team_id,
                                    &blob,
                                    &content_type,
                                    icon_update,
                                    now_ms(),
                                )
                            })
                            .await?;
                    }
                    Err(DownloadError::Server(e)) => {
                        self.fail(format!("icon of team {}", team.value.name), e)?
                    }
                    Err(DownloadError::Sink(e)) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    async fn sync_users(
        &mut self,
        known_at_start: Vec<String>,
        watermark: i64,
    ) -> Result<(), SyncError> {
        // Changed users among those we already had: one request per batch, `since` filtered.
        if !known_at_start.is_empty() {
            let since = (watermark - self.options.since_margin_ms).max(1);
            match self.client.fetch_users(&known_at_start, Some(since)).await {
                Ok(users) => self.writer.call(move |c| c.upsert_users(&users)).await?,
                Err(e) => self.fail("users (refresh)".into(), e)?,
            }
        }
        let extra = std::mem::take(&mut self.extra_users);
        self.writer.call(move |c| c.upsert_users(&extra)).await?;
        let referenced = self.writer.call(|c| c.referenced_user_ids()).await?;
        let (known, _) = self.writer.call(|c| c.known_users()).await?;
        let known: HashSet<String> = known.into_iter().collect();
        let missing: Vec<String> = referenced
            .into_iter()
            .filter(|id| !known.contains(id))
            .collect();
        if !missing.is_empty() {
            match self.client.fetch_users(&missing, None).await {
                Ok(users) => self.writer.call(move |c| c.upsert_users(&users)).await?,
                Err(e) => self.fail("users".into(), e)?,
            }
        }
        if self.options.skips.user_images {
            return Ok(());
        }
        let avatars = self.writer.call(|c| c.users_needing_avatar()).await?;
        let items: Vec<_> = avatars
            .into_iter()
            .map(|(user_id, picture_update)| {
                (
                    (user_id.clone(), picture_update),
                    vec!["users".into(), user_id, "image".into()],
                )
            })
            .collect();
        let images = fetch_images(
            (self.client, self.blobs, self.writer, self.stop),
            self.options.client.concurrency,
            self.observer,
            items,
            |c, (user_id, picture_update), blob, content_type| {
                c.set_image(
                    ImageOwner::User,
                    user_id,
                    blob,
                    content_type,
                    *picture_update,
                    now_ms(),
                )
            },
            |(user_id, _)| format!("picture of user {user_id}"),
        )
        .await?;
        self.absorb(images);
        Ok(())
    }
}

/// Custom emojis: the list, then the images of new or changed ones.
async fn sync_emojis(
    handles: Handles<'_>,
    concurrency: usize,
    observer: &dyn Observer,
) -> Result<Tally, SyncError> {
    let (client, _, writer, _) = handles;
    let mut tally = Tally::default();
    let emojis = match client.fetch_emojis().await {
        Ok(Some(list)) => list,
        Ok(None) => {
            let note = "custom emojis are disabled on this server; skipped".to_owned();
            observer.note(Level::Info, &note);
            tally.notes.push(note);
            return Ok(tally);
        }
        Err(e) => {
            record_failure(observer, &mut tally.failures, "custom emojis".into(), e)?;
            return Ok(tally);
        }
    };
    let stale = writer
        .call(move |c| c.replace_emojis(&emojis, now_ms()))
        .await?;
    let items: Vec<_> = stale
        .into_iter()
        .map(|(emoji_id, update_at)| {
            (
                (emoji_id.clone(), update_at),
                vec!["emoji".into(), emoji_id, "image".into()],
            )
        })
        .collect();
    let images = fetch_images(
        handles,
        concurrency,
        observer,
        items,
        |c, (emoji_id, update_at), blob, content_type| {
            c.set_image(
                ImageOwner::Emoji,
                emoji_id,
                blob,
                content_type,
                *update_at,
                now_ms(),
            )
        },
        |(emoji_id, _)| format!("image of emoji {emoji_id}"),
    )
    .await?;
    tally.add(images);
    Ok(tally)
}

/// Downloads images (avatars, emoji images) `concurrency` at a time and counts them; an image
/// that cannot be fetched is one failed item, named by `item`.
async fn fetch_images<K: Clone + Send + Sync + 'static>(
    handles: Handles<'_>,
    concurrency: usize,
    observer: &dyn Observer,
    items: Vec<(K, Vec<String>)>,
    store: StoreFn<K>,
    item: fn(&K) -> String,
) -> Result<Tally, SyncError> {
    let mut tally = Tally::default();
    let mut fetched = fetch_and_store(
        handles,
        concurrency,
        futures_util::stream::iter(items),
        store,
    );
    while let Some((key, result)) = fetched.next().await {
        match result {
            Ok(bytes) => tally.bytes_fetched += bytes,
            Err(SyncError::Server(e)) => {
                record_failure(observer, &mut tally.failures, item(&key), e)?
            }
            Err(fatal) => return Err(fatal),
        }
    }
    Ok(tally)
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
