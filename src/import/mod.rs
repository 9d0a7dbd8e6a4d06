//! `matterbak import`: a second way into the archive beside `sync`. Reads data directories
//! and zips in the Python matterbak's layout (0.4 and 0.5, and our own `export`) and writes
//! them through the same catalog and blob-store calls a sync uses; the merge rules live in
//! `catalog::import`.
//!
//! May import: `pylayout` (the layout's names), `zip` (the zip reader), `archive`,
//! `catalog`, `blobs`, `model`; never the HTTP client or an export. Invariants:
//! - a backup is checked to be one (`source::Backup::open`) before anything is written;
//! - a blob is committed before the row naming it;
//! - a damaged file (truncated JSON, a post outside its channel) is a failed item naming its
//!   path, and the rest of the backup is still imported;
//! - the order of entries inside a backup does not matter: objects are imported in
//!   dependency order (users, teams, channels, members, posts, files, emojis);
//! - threads only read and store bytes (posts are read and parsed ahead on `READERS`
//!   threads, attachments go to the blob store on `BLOB_THREADS`); every catalog write stays
//!   on the calling thread in entry order, so the archive and the report do not depend on
//!   their timing.
//!
//! Speed (README Performance, `benches/import_speed.sh`): new posts enter the catalog one
//! statement per page (see `catalog::import`), and zips are read through `crate::zip::read`, which
//! holds 24 bytes per entry where the `zip` crate held hundreds.

pub mod source;

use std::collections::HashSet;
use std::io::Write;

use serde_json::value::RawValue;

use crate::archive::{ArchiveError, WriteArchive};
use crate::blobs::{BlobError, BlobStore};
use crate::catalog::{Catalog, CatalogError, ImageOwner, ImportedPost, RunSummary};
use crate::model::object::{self, Raw};
use crate::model::{ChannelId, FileId, Outcome, TeamId, now_ms};
use crate::pylayout::{self, Role, channel_of, id_prefix, role};
pub use source::{Backup, SourceError};

/// Posts per transaction: large enough to amortise the commit (and the FTS5 segment each
/// page's index becomes), small enough for memory (~10 MB of parsed posts).
const POSTS_PER_PAGE: usize = 5000;
/// Posts go from a reader thread to the writer in batches (one wake-up each); each reader
/// runs at most `READ_AHEAD` batches ahead.
const READ_BATCH: usize = 128;
const READ_AHEAD: usize = 4;
/// Threads reading posts (see `Run::posts`).
const READERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// A file of the backup that could not be imported, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailedItem {
    /// Path inside the backup.
    pub path: String,
    pub reason: String,
}

/// What one backup brought in.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub users: u64,
    pub teams: u64,
    pub channels: u64,
    pub members: u64,
    pub emojis: u64,
    /// Posts read from the backup.
    pub posts_read: u64,
    /// Posts the archive did not hold.
    pub posts_added: u64,
    /// Posts whose content the backup changed (newer, or known only deleted before).
    pub posts_updated: u64,
    /// Earlier versions of edited posts added to the history.
    pub versions_added: u64,
    /// Attachments and images whose bytes were taken from the backup, and their size.
    pub binaries_stored: u64,
    pub bytes_stored: u64,
    /// Notes on older layouts recognised (e.g. a pre-0.4 threads file).
    pub notes: Vec<String>,
    pub failed: Vec<FailedItem>,
}

/// Imports opened backups into the archive opened for writing, one run record each, with
/// blobs where the archive's store is (remembered in the catalog, as a sync does). Returns
/// each backup's report, in the given order.
pub fn import_backups(
    archive: &mut WriteArchive,
    backups: &mut [Backup],
) -> Result<Vec<ImportReport>, ImportError> {
    archive.remember_blob_location()?;
    archive.prepare_blobs()?;
    let (catalog, blobs) = archive.catalog_and_blobs();
    let mut reports = Vec::with_capacity(backups.len());
    for backup in backups {
        let started = now_ms();
        let source = backup.path().display().to_string();
        let run = catalog.begin_import_run(started, env!("CARGO_PKG_VERSION"), &source)?;
        let report = match import_backup(catalog, blobs, backup, started) {
            Ok(report) => report,
            Err(e) => {
                // Recorded as sync records its fatal errors, as far as the catalog still lets
                // us; the error itself is returned.
                let failed = RunSummary {
                    outcome: Outcome::Failed,
                    error: Some(e.to_string()),
                    ..RunSummary::default()
                };
                let _ = catalog.finish_run(run, now_ms(), &failed);
                return Err(e);
            }
        };
        catalog.finish_run(run, now_ms(), &run_summary(&report))?;
        reports.push(report);
    }
    Ok(reports)
}

/// Imports one opened backup into the catalog and blob store.
pub fn import_backup(
    catalog: &mut Catalog,
    blobs: &BlobStore,
    backup: &mut Backup,
    now: i64,
) -> Result<ImportReport, ImportError> {
    let label = backup.path().display().to_string();
    let mut run = Run {
        catalog,
        blobs,
        backup: &*backup,
        label,
        now,
        report: ImportReport::default(),
    };
    // Entries are numbered in path order, so a stable sort by role keeps the posts of a
    // channel together and in time order; only indices are held (a backup of 200,000 posts
    // has as many paths).
    let mut by_role: Vec<(Role, usize)> = Vec::new();
    for index in 0..run.backup.len() {
        let path = run.backup.entry_path(index);
        match role(path) {
            Some(role) => by_role.push((role, index)),
            None => {
                let path = path.to_owned();
                run.fail(&path, "not part of the matterbak layout".into());
            }
        }
    }
    by_role.sort_by_key(|(role, _)| *role);
    let mut next = 0;
    while let Some(&(role, index)) = by_role.get(next) {
        if matches!(role, Role::Post | Role::FileBytes) {
            let group = by_role[next..].partition_point(|(r, _)| *r == role);
            let indices = by_role[next..next + group].iter().map(|(_, index)| *index);
            if role == Role::Post {
                run.posts(indices.collect())?;
            } else {
                run.files_bytes(indices.collect())?;
            }
            next += group;
            continue;
        }
        next += 1;
        let path = run.backup.entry_path(index).to_owned();
        match role {
            Role::User => run.user(index, &path)?,
            Role::Team => run.team(index, &path)?,
            Role::TeamMembers => run.members(index, &path, MemberOf::Team)?,
            Role::Channel => run.channel(index, &path)?,
            Role::ChannelMembers => run.members(index, &path, MemberOf::Channel)?,
            Role::Threads => run.threads(index, &path),
            Role::Post | Role::FileBytes => unreachable!("read as a group above"),
            Role::FileInfo => run.file_info(index, &path)?,
            Role::Emoji => run.emoji(index, &path)?,
            Role::UserImage => run.image(index, &path, ImageOwner::User)?,
            Role::TeamIcon => run.image(index, &path, ImageOwner::Team)?,
            Role::EmojiImage => run.image(index, &path, ImageOwner::Emoji)?,
        }
    }
    Ok(run.report)
}

/// Reads and parses one JSON entry; the error is the failed item's reason.
fn parse_entry<T: serde::de::DeserializeOwned>(
    backup: &Backup,
    index: usize,
) -> Result<Raw<T>, String> {
    let raw = read_json(backup, index)?;
    Raw::<T>::parse(raw).map_err(|e| format!("not the expected object: {e}"))
}

fn read_json(backup: &Backup, index: usize) -> Result<Box<RawValue>, String> {
    let bytes = backup
        .read(index)
        .map_err(|e| format!("cannot read: {e}"))?;
    serde_json::from_slice::<Box<RawValue>>(&bytes).map_err(|e| format!("invalid JSON: {e}"))
}

enum MemberOf {
    Team,
    Channel,
}

struct Run<'a> {
    catalog: &'a mut Catalog,
    blobs: &'a BlobStore,
    backup: &'a Backup,
    label: String,
    now: i64,
    report: ImportReport,
}

impl Run<'_> {
    fn fail(&mut self, path: &str, reason: String) {
        self.report.failed.push(FailedItem {
            path: path.to_owned(),
            reason,
        });
    }

    fn read_json(&mut self, index: usize, path: &str) -> Option<Box<RawValue>> {
        read_json(self.backup, index)
            .inspect_err(|reason| self.fail(path, reason.clone()))
            .ok()
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &mut self,
        index: usize,
        path: &str,
    ) -> Option<Raw<T>> {
        parse_entry(self.backup, index)
            .inspect_err(|reason| self.fail(path, reason.clone()))
            .ok()
    }

    /// Imports the posts of a backup (entries in path order, so a channel's posts come
    /// together and in time order), a page per transaction. Reader threads open and parse
    /// the files ahead of the catalog writes, batch `k` on thread `k % READERS`, and the
    /// writer takes the batches back in order. Several readers because opening 200,000 small
    /// files is the file system's time more than ours: a bare loop of open/read/close over
    /// such a backup took 5–8 s here, mostly waiting in the kernel.
    fn posts(&mut self, indices: Vec<usize>) -> Result<(), ImportError> {
        let backup = self.backup;
        let batches: Vec<&[usize]> = indices.chunks(READ_BATCH).collect();
        std::thread::scope(|scope| {
            let receivers: Vec<_> = (0..READERS)
                .map(|reader| {
                    let (send, receive) = std::sync::mpsc::sync_channel(READ_AHEAD);
                    let mine: Vec<&[usize]> = batches
                        .iter()
                        .skip(reader)
                        .step_by(READERS)
                        .copied()
                        .collect();
                    scope.spawn(move || {
                        for batch in mine {
                            let parsed: Vec<_> = batch
                                .iter()
                                .map(|&index| (index, parse_entry::<object::Post>(backup, index)))
                                .collect();
                            if send.send(parsed).is_err() {
                                break; // the writer stopped on an error
                            }
                        }
                    });
                    receive
                })
                .collect();
            let mut page: Vec<(Raw<object::Post>, String)> = Vec::new();
            let in_order = (0..batches.len()).map(|k| {
                receivers[k % READERS]
                    .recv()
                    .expect("a reader thread stopped early")
            });
            for (index, parsed) in in_order.flatten() {
                let path = backup.entry_path(index).to_owned();
                if page
                    .last()
                    .is_some_and(|(_, last)| channel_of(last).0 != channel_of(&path).0)
                    || page.len() >= POSTS_PER_PAGE
                {
                    self.flush_posts(&mut page)?;
                }
                match parsed {
                    Ok(post) => page.push((post, path)),
                    Err(reason) => self.fail(&path, reason),
                }
            }
            self.flush_posts(&mut page)
        })
    }

    fn parse_list<T: serde::de::DeserializeOwned>(
        &mut self,
        index: usize,
        path: &str,
    ) -> Option<Vec<Raw<T>>> {
        let raw = self.read_json(index, path)?;
        match object::parse_list(raw.get().as_bytes()) {
            Ok(list) => Some(list),
            Err(e) => {
                self.fail(path, format!("not a list of members: {e}"));
                None
            }
        }
    }

    fn user(&mut self, index: usize, path: &str) -> Result<(), ImportError> {
        if let Some(user) = self.parse::<object::User>(index, path) {
            self.report.users += self.catalog.import_users(std::slice::from_ref(&user))?;
        }
        Ok(())
    }

    fn team(&mut self, index: usize, path: &str) -> Result<(), ImportError> {
        if let Some(team) = self.parse::<object::Team>(index, path) {
            self.report.teams += self.catalog.import_team(&team)?;
        }
        Ok(())
    }

    fn channel(&mut self, index: usize, path: &str) -> Result<(), ImportError> {
        let Some(channel) = self.parse::<object::Channel>(index, path) else {
            return Ok(());
        };
        // direct/<cid>__<other user>.json, groups/<cid>__<a>__<b>.json: the name the backup
        // gave the channel, which export writes again.
        let export_name = pylayout::channel_export_name(path);
        self.report.channels += self.catalog.import_channel(&channel, export_name)?;
        Ok(())
    }

    fn members(&mut self, index: usize, path: &str, of: MemberOf) -> Result<(), ImportError> {
        let owner = id_prefix(path).to_owned();
        self.report.members += match of {
            MemberOf::Team => {
                let Some(list) = self.parse_list::<object::TeamMember>(index, path) else {
                    return Ok(());
                };
                let owner = TeamId::from(owner);
                if !self.catalog.has_team(&owner)? {
                    self.fail(path, format!("members of team {owner}, which is in neither the backup nor the archive"));
                    return Ok(());
                }
                self.catalog.import_team_members(&owner, &list)?
            }
            MemberOf::Channel => {
                let Some(list) = self.parse_list::<object::ChannelMember>(index, path) else {
                    return Ok(());
                };
                let owner = ChannelId::from(owner);
                if !self.catalog.has_channel(&owner)? {
                    self.fail(path, format!("members of channel {owner}, which is in neither the backup nor the archive"));
                    return Ok(());
                }
                self.catalog.import_channel_members(&owner, &list)?
            }
        };
        Ok(())
    }

    /// Thread relations are in every post's `root_id`, so the threads file is only checked:
    /// `{root: [replies]}` since 0.4, a list of lists before (recognised, nothing to read).
    fn threads(&mut self, index: usize, path: &str) {
        let Some(raw) = self.read_json(index, path) else {
            return;
        };
        match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(serde_json::Value::Object(map)) if map.values().all(|v| v.is_array()) => {}
            Ok(serde_json::Value::Array(list)) if list.iter().all(|v| v.is_array()) => {
                self.report.notes.push(format!(
                    "{path}: threads file of a matterbak older than 0.4 (a list of lists); thread relations are taken from the posts"
                ));
            }
            _ => self.fail(
                path,
                "not a threads file ({root id: [reply ids]}, or a list of lists before 0.4)".into(),
            ),
        }
    }

    fn flush_posts(
        &mut self,
        posts: &mut Vec<(Raw<object::Post>, String)>,
    ) -> Result<(), ImportError> {
        let Some((_, first)) = posts.first() else {
            return Ok(());
        };
        let channel_id = ChannelId::from(channel_of(first).1);
        if !self.catalog.has_channel(&channel_id)? {
            let (dir, _) = channel_of(first);
            let reason = format!(
                "{} post(s) of channel {channel_id}, which is in neither the backup nor the archive",
                posts.len()
            );
            let dir = dir.to_owned();
            self.fail(&dir, reason);
            posts.clear();
            return Ok(());
        }
        let (good, misplaced): (Vec<_>, Vec<_>) = std::mem::take(posts)
            .into_iter()
            .partition(|(post, _)| post.value.channel_id == channel_id);
        for (post, path) in misplaced {
            self.fail(
                &path,
                format!(
                    "post {} belongs to channel {:?}, not to the folder's channel {channel_id}",
                    post.value.id, post.value.channel_id
                ),
            );
        }
        let sources: Vec<String> = good
            .iter()
            .map(|(_, path)| format!("{}:{path}", self.label))
            .collect();
        let page: Vec<ImportedPost<'_>> = good
            .iter()
            .zip(&sources)
            .map(|((post, _), source)| ImportedPost { post, source })
            .collect();
        let outcome = self.catalog.import_posts(&channel_id, &page)?;
        self.report.posts_read += page.len() as u64;
        self.report.posts_added += outcome.posts_added;
        self.report.posts_updated += outcome.posts_updated;
        self.report.versions_added += outcome.versions_added;
        Ok(())
    }

    fn file_info(&mut self, index: usize, path: &str) -> Result<(), ImportError> {
        let Some(info) = self.parse::<object::FileInfo>(index, path) else {
            return Ok(());
        };
        if !self.catalog.has_post(&info.value.post_id)? {
            self.fail(
                path,
                format!(
                    "file info of post {:?}, which is in neither the backup nor the archive",
                    info.value.post_id
                ),
            );
            return Ok(());
        }
        self.catalog.import_file_info(&info)?;
        Ok(())
    }

    /// Attachments' bytes. A copy shorter or longer than its file info says is a failed
    /// item (the Python tool writes in place, so a killed backup leaves truncated files).
    /// Blobs are stored by several threads at once: each is flushed to disk (file and
    /// directory) before its row names it, a flush waits milliseconds whatever the size, and
    /// concurrent flushes share the file system's journal commits; one at a time, 1,000
    /// attachments waited 4 s. Rows are written in entry order, on this thread, once the
    /// backup's bytes are stored (an import stopped before leaves blobs no row names yet;
    /// the next one finds them stored and names them). Of two copies of one file's bytes
    /// in a backup only the first (by path) is read.
    fn files_bytes(&mut self, indices: Vec<usize>) -> Result<(), ImportError> {
        let mut work = Vec::new();
        let mut seen = HashSet::new();
        for index in indices {
            let path = self.backup.entry_path(index);
            let file_id = FileId::from(id_prefix(path));
            match self.catalog.file_blob_state(&file_id)? {
                Some((true, _)) => {} // archived already: costs nothing
                // A second copy of the same file: the first one's bytes are taken.
                Some((false, _)) if !seen.insert(file_id.clone()) => {}
                Some((false, size)) => {
                    let expected = u64::try_from(size).ok().filter(|s| *s > 0);
                    work.push((index, file_id, expected));
                }
                None => {
                    let path = path.to_owned();
                    self.fail(&path, format!("bytes of file {file_id}, whose file info is in neither the backup nor the archive"));
                }
            }
        }
        let (backup, blobs) = (self.backup, self.blobs);
        let per_thread = work.len().div_ceil(BLOB_THREADS).max(1);
        let stored: Vec<StoreResult> = std::thread::scope(|scope| {
            let threads: Vec<_> = work
                .chunks(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|(index, _, expected)| {
                                store_blob(blobs, backup, *index, *expected)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("a blob thread panicked"))
                .collect()
        });
        for ((index, file_id, _), result) in work.iter().zip(stored) {
            if let Some(blob) = self.stored(*index, result?) {
                self.catalog.import_file_blob(file_id, &blob, self.now)?;
            }
        }
        Ok(())
    }

    fn emoji(&mut self, index: usize, path: &str) -> Result<(), ImportError> {
        if let Some(emoji) = self.parse::<object::Emoji>(index, path) {
            self.report.emojis += self.catalog.import_emoji(&emoji)?;
        }
        Ok(())
    }

    /// A picture, icon or emoji image, taken when its owner has none. Its extension is
    /// the one the Python tool derived from the Content-Type (`image/<ext>`). It is stored
    /// as belonging to no known server version (marker 0), so the next sync still fetches
    /// the server's current image, which may be newer than the backup's.
    fn image(&mut self, index: usize, path: &str, owner: ImageOwner) -> Result<(), ImportError> {
        let id = id_prefix(path).to_owned();
        match self.catalog.lacks_image(owner, &id)? {
            Some(true) => {}
            Some(false) => return Ok(()), // the archive has an image already
            None => {
                self.fail(
                    path,
                    format!("image of {id}, which is in neither the backup nor the archive"),
                );
                return Ok(());
            }
        }
        let content_type = pylayout::image_content_type(path);
        if let Some(blob) = self.stored(index, store_blob(self.blobs, self.backup, index, None)?) {
            self.catalog
                .set_image(owner, &id, &blob, &content_type, 0, self.now)?;
        }
        Ok(())
    }

    /// Counts a stored binary, or records why it was not; the blob when stored.
    fn stored(
        &mut self,
        index: usize,
        result: Result<crate::model::BlobRef, String>,
    ) -> Option<crate::model::BlobRef> {
        match result {
            Ok(blob) => {
                self.report.binaries_stored += 1;
                self.report.bytes_stored += blob.size;
                Some(blob)
            }
            Err(reason) => {
                let path = self.backup.entry_path(index).to_owned();
                self.fail(&path, reason);
                None
            }
        }
    }
}

/// Blob stores in flight at once (see `Run::files_bytes`).
const BLOB_THREADS: usize = 8;

/// A stored blob, or why the entry was not stored (a failed item); the outer error ends the
/// import (the blob store itself failed).
type StoreResult = Result<Result<crate::model::BlobRef, String>, BlobError>;

/// Streams a binary into the blob store (hashing as it goes); the reason when it is
/// unreadable or not of the `expected` size (then nothing is stored).
fn store_blob(
    blobs: &BlobStore,
    backup: &Backup,
    index: usize,
    expected: Option<u64>,
) -> StoreResult {
    let mut writer = blobs.writer()?;
    match backup.copy_to(index, &mut writer as &mut dyn Write) {
        Ok(size) if expected.is_some_and(|want| want != size) => {
            let want = expected.unwrap_or_default();
            return Ok(Err(format!(
                "{size} bytes, but its file info says {want}: truncated or damaged"
            )));
        }
        Ok(_) => {}
        Err(e) => return Ok(Err(format!("cannot read: {e}"))),
    }
    Ok(Ok(writer.commit()?))
}

/// Counts for the run record of one backup.
fn run_summary(report: &ImportReport) -> RunSummary {
    RunSummary {
        outcome: if report.failed.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Partial
        },
        server_version: None,
        requests: 0,
        posts_written: report.posts_added + report.posts_updated,
        files_fetched: report.binaries_stored,
        bytes_fetched: report.bytes_stored,
        failures: report.failed.len() as u64,
        error: None,
    }
}
