//! The catalog: the archive's SQLite database and the only code that speaks SQL.
//! May import: `model` only (docs/design.md "Allowed directions").
//!
//! DDL lives in `schema/NNNN_*.sql`, applied in order and tracked by `PRAGMA user_version`;
//! an applied file is never edited. DML is fixed strings next to the function using it, with
//! parameters. Writers: exactly one `Catalog` opened `ReadWrite` per archive (the sync holds
//! the archive lock); readers open `ReadOnly` and see a consistent WAL snapshot per
//! transaction. Every function that writes more than one row does so in one transaction.

mod check;
mod follow_log;
mod ids;
mod import;
mod live;
mod new_posts;
mod outline;
mod posts;
mod query;
mod read;
mod summary;
mod team_events;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::model::Outcome;
use crate::model::object::{self, Raw};
use crate::model::{BlobRef, ChannelId, EmojiId, FileId, TeamId, UserId};

pub use check::{BlobRecord, BlobReference};
pub use follow_log::{
    ConnectionEnd, ConnectionKind, ConnectionStats, ConnectionTally, FollowStats,
};
pub use import::{ImportOutcome, ImportedPost};
pub use live::{LiveOutcome, LiveWrite};
pub use outline::{PostOutline, PostsContent};
pub use posts::{ChannelCursor, LastOutcome, PageOutcome, Walk};
pub use query::{
    ArchiveStats, Cell, ChannelStats, DeletedPosts, QueryError, RowSink, RunStats, SearchHit,
    SearchQuery, TeamStats, fts_query, statement_kind,
};
pub use read::{
    ChannelContent, ChannelRecord, FileRecord, ImageOwnerRecord, MemberRecord, PostRecord,
    ReactionRecord, TeamRecord, VersionRecord,
};
pub use summary::{ChannelSums, PostSpan};

pub use writer::CatalogWriter;

/// Schema files in order; index + 1 is the `user_version` after applying it.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial.sql",
        include_str!("../../schema/0001_initial.sql"),
    ),
    // Views, the full-text index and its triggers; backfills the index.
    (
        "0002_query.sql",
        include_str!("../../schema/0002_query.sql"),
    ),
    // Provenance of imported posts and runs (`matterbak import`).
    (
        "0003_import.sql",
        include_str!("../../schema/0003_import.sql"),
    ),
    // Settings remembered by the archive (where its blobs live).
    (
        "0004_archive_settings.sql",
        include_str!("../../schema/0004_archive_settings.sql"),
    ),
    // Live capture's sessions and their WebSocket connections (`stats`).
    (
        "0005_follow_runs.sql",
        include_str!("../../schema/0005_follow_runs.sql"),
    ),
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog {}: {action}{}", path.display(), disk_full_hint(.source))]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "catalog {} has schema version {found}, newer than this matterbak understands ({supported}); use a newer matterbak",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the catalog writer thread stopped")]
    WriterGone,
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// A catalog error met inside an I/O callback (a sink writing rows as they are read)
/// travels as an I/O error of kind `Other` with the catalog error as its source.
impl From<CatalogError> for std::io::Error {
    fn from(e: CatalogError) -> Self {
        std::io::Error::other(e)
    }
}

fn disk_full_hint(error: &rusqlite::Error) -> &'static str {
    if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        crate::model::DISK_FULL_HINT
    } else {
        ""
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Creates and migrates the catalog if needed. Only the lock holder opens this way.
    ReadWrite,
    /// Never writes; fails if the catalog does not exist or is newer than this build.
    ReadOnly,
}

pub struct Catalog {
    pub(crate) conn: Connection,
    path: PathBuf,
}

/// Attaches the catalog path and what we were doing to a rusqlite error.
pub(crate) trait Context<T> {
    fn ctx(self, catalog: &Path, action: &'static str) -> Result<T>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, path: &Path, action: &'static str) -> Result<T> {
        self.map_err(|source| CatalogError::Sqlite {
            path: path.to_owned(),
            action,
            source,
        })
    }
}

/// Counts and outcome of one sync run, stored in `sync_runs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub outcome: Outcome,
    pub server_version: Option<String>,
    pub requests: u64,
    pub posts_written: u64,
    pub files_fetched: u64,
    pub bytes_fetched: u64,
    pub failures: u64,
    pub error: Option<String>,
}

/// Whose image [`Catalog::set_image`] stores: a user's profile picture, a team's icon, a
/// custom emoji's image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageOwner {
    User,
    Team,
    Emoji,
}

/// Where the catalog says the archive's blobs are ([`Catalog::blob_setting`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobSetting {
    /// The location remembered by [`Catalog::remember_blob_location`], as text.
    Remembered(String),
    /// Nothing remembered, but blobs are recorded: an archive older than the setting, whose
    /// blobs are all on local disk.
    Unnamed,
    /// Nothing remembered and nothing stored: a new archive (its first run decides).
    Nothing,
}

/// A file whose bytes are not archived yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingFile {
    pub id: FileId,
    pub channel_id: ChannelId,
    pub name: String,
    pub size: i64,
}

impl Catalog {
    /// Opens the catalog file `path` (the archive names it: `archive::CATALOG_FILE`).
    /// `ReadOnly` never creates it.
    pub fn open(path: &Path, access: Access) -> Result<Catalog> {
        let path = path.to_owned();
        let conn = match access {
            Access::ReadWrite => Connection::open(&path).ctx(&path, "open")?,
            Access::ReadOnly => {
                // Opened writable (never created) with `query_only` on: a sync killed mid-write
                // leaves a hot journal or WAL that only a writable connection may recover,
                // while `query_only` still refuses every statement that would change data.
                // A file we may not write falls back to a plain read-only open.
                let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
                Connection::open_with_flags(&path, flags | OpenFlags::SQLITE_OPEN_READ_WRITE)
                    .or_else(|_| {
                        Connection::open_with_flags(&path, flags | OpenFlags::SQLITE_OPEN_READ_ONLY)
                    })
                    .ctx(&path, "open read-only")?
            }
        };
        let mut catalog = Catalog { conn, path };
        catalog
            .conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .ctx(&catalog.path, "set busy timeout")?;
        match access {
            Access::ReadWrite => {
                // WAL lets readers (export, sql) run during a sync; NORMAL is durable enough
                // in WAL mode: a crash loses at most the last commits, never consistency.
                catalog
                    .conn
                    .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                    .ctx(&catalog.path, "configure")?;
                catalog.migrate()?;
            }
            Access::ReadOnly => {
                catalog
                    .conn
                    .execute_batch("PRAGMA query_only = ON;")
                    .ctx(&catalog.path, "configure")?;
                let found = catalog.schema_version()?;
                if found > SCHEMA_VERSION {
                    return Err(CatalogError::NewerSchema {
                        path: catalog.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        Ok(catalog)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .ctx(&self.path, "read schema version")
    }

    /// Applies every schema file newer than the catalog, each in its own transaction together
    /// with its `user_version` bump, so a crash mid-migration leaves the previous version.
    fn migrate(&mut self) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(CatalogError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (index, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction().ctx(&self.path, "begin migration")?;
            tx.execute_batch(sql)
                .ctx(&self.path, "apply schema migration")?;
            // PRAGMA takes no parameters; the value is our own constant.
            tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))
                .ctx(&self.path, "record schema version")?;
            tx.commit().ctx(&self.path, "commit migration")?;
        }
        Ok(())
    }

    /// What the catalog says about where the archive keeps its blobs (`archive` turns it
    /// into a location).
    pub fn blob_setting(&self) -> Result<BlobSetting> {
        let version = self.schema_version()?;
        if version == 0 {
            return Ok(BlobSetting::Nothing);
        }
        if version >= 4 {
            let set: Option<String> = self
                .conn
                .query_row(
                    "SELECT value FROM archive_settings WHERE key = 'blobs'",
                    params![],
                    |r| r.get(0),
                )
                .optional()
                .ctx(&self.path, "read blob location")?;
            if let Some(text) = set {
                return Ok(BlobSetting::Remembered(text));
            }
        }
        let any: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM blobs)", params![], |r| {
                r.get(0)
            })
            .ctx(&self.path, "read blob location")?;
        Ok(if any {
            BlobSetting::Unnamed
        } else {
            BlobSetting::Nothing
        })
    }

    /// Remembers where the archive keeps its blobs (text form of `BlobLocation`), so later
    /// commands need not repeat `--blobs`. Idempotent.
    pub fn remember_blob_location(&self, location: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO archive_settings (key, value) VALUES ('blobs', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![location],
            )
            .ctx(&self.path, "remember blob location")
            .map(drop)
    }

    /// Whether the archive's bucket holds an encrypted repository, as remembered: its id, or
    /// `none` for plain storage; None when nothing is remembered (local blobs, an older
    /// catalog).
    pub fn encryption_setting(&self) -> Result<Option<String>> {
        if self.schema_version()? < 4 {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT value FROM archive_settings WHERE key = 'encryption'",
                params![],
                |r| r.get(0),
            )
            .optional()
            .ctx(&self.path, "read encryption setting")
    }

    /// Remembers the encrypted repository's id (or `none`) of the archive's bucket. Idempotent.
    pub fn remember_encryption(&self, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO archive_settings (key, value) VALUES ('encryption', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![value],
            )
            .ctx(&self.path, "remember encryption")
            .map(drop)
    }

    /// Writes a consistent copy of the catalog to the new file `dest` (`VACUUM INTO`: one read
    /// transaction, so a running sync goes on and the copy holds whole pages and cursors).
    pub fn copy_into(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_str().ok_or_else(|| CatalogError::Sqlite {
            path: dest.to_owned(),
            action: "name snapshot file",
            source: rusqlite::Error::InvalidPath(dest.to_owned()),
        })?;
        self.conn
            .execute("VACUUM INTO ?1", params![dest])
            .ctx(&self.path, "copy the catalog")
            .map(drop)
    }

    /// Test seam (`--simulate-disk-full catalog:PAGES`): lets the catalog grow by at most
    /// `pages` more pages, after which writes fail as on a full disk (SQLITE_FULL).
    pub fn limit_growth(&self, pages: u32) -> Result<()> {
        let now: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .ctx(&self.path, "read page count")?;
        // PRAGMA takes no parameters; the value is a number we computed.
        self.conn
            .query_row(
                &format!("PRAGMA max_page_count = {}", now + i64::from(pages)),
                [],
                |_| Ok(()),
            )
            .ctx(&self.path, "limit growth")
    }

    // ----- sync runs -----------------------------------------------------------------------

    pub fn begin_run(&mut self, started_at: i64, tool_version: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO sync_runs (started_at, tool_version) VALUES (?1, ?2)",
                params![started_at, tool_version],
            )
            .ctx(&self.path, "record sync run")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records who the run archives as, once logged in.
    pub fn set_run_user(&mut self, run: i64, user_id: &UserId, username: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE sync_runs SET user_id = ?2, username = ?3 WHERE id = ?1",
                params![run, user_id, username],
            )
            .ctx(&self.path, "record sync run user")?;
        Ok(())
    }

    pub fn finish_run(&mut self, run: i64, finished_at: i64, s: &RunSummary) -> Result<()> {
        self.conn
            .execute(
                "UPDATE sync_runs SET finished_at = ?2, outcome = ?3, server_version = ?4, requests = ?5,
                    posts_written = ?6, files_fetched = ?7, bytes_fetched = ?8, failures = ?9, error = ?10
                 WHERE id = ?1",
                params![
                    run,
                    finished_at,
                    s.outcome.as_str(),
                    s.server_version,
                    s.requests as i64,
                    s.posts_written as i64,
                    s.files_fetched as i64,
                    s.bytes_fetched as i64,
                    s.failures as i64,
                    s.error
                ],
            )
            .ctx(&self.path, "finish sync run")?;
        Ok(())
    }

    // ----- blobs ---------------------------------------------------------------------------

    fn insert_blob(conn: &Connection, path: &Path, blob: &BlobRef, now: i64) -> Result<()> {
        conn.prepare_cached("INSERT INTO blobs (hash, size, stored_at) VALUES (?1, ?2, ?3) ON CONFLICT (hash) DO NOTHING")
            .and_then(|mut s| s.execute(params![blob.id.as_str(), blob.size as i64, now]))
            .ctx(path, "record blob")?;
        Ok(())
    }

    // ----- users ---------------------------------------------------------------------------

    /// Stores users, each unless we already hold a version at least as new.
    pub fn upsert_users(&mut self, users: &[Raw<object::User>]) -> Result<()> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO users (id, username, update_at, delete_at, is_bot, last_picture_update, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (id) DO UPDATE SET username = excluded.username, update_at = excluded.update_at,
                        delete_at = excluded.delete_at, is_bot = excluded.is_bot,
                        last_picture_update = excluded.last_picture_update, json = excluded.json
                     WHERE excluded.update_at >= users.update_at",
                )
                .ctx(&self.path, "store users")?;
            for user in users {
                execute_user(&mut stmt, user).ctx(&self.path, "store user")?;
            }
        }
        tx.commit().ctx(&self.path, "commit users")
    }

    /// Ids of all users in the catalog, with the newest `update_at` among them.
    pub fn known_users(&self) -> Result<(Vec<UserId>, i64)> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM users ORDER BY id")
            .ctx(&self.path, "list users")?;
        let ids = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<UserId>>>())
            .ctx(&self.path, "list users")?;
        let max: Option<i64> = self
            .conn
            .query_row("SELECT max(update_at) FROM users", [], |r| r.get(0))
            .ctx(&self.path, "list users")?;
        Ok((ids, max.unwrap_or(0)))
    }

    /// Every user id the archive refers to: members of archived teams and channels, post
    /// authors and reactors.
    pub fn referenced_user_ids(&self) -> Result<Vec<UserId>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT user_id FROM team_members tm JOIN teams t ON t.id = tm.team_id WHERE t.selected = 1 AND tm.removed_at IS NULL
                 UNION SELECT user_id FROM channel_members cm JOIN channels c ON c.id = cm.channel_id WHERE c.selected = 1 AND cm.removed_at IS NULL
                 UNION SELECT user_id FROM posts WHERE user_id <> ''
                 UNION SELECT user_id FROM reactions",
            )
            .ctx(&self.path, "list referenced users")?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "list referenced users")
    }

    /// Usernames of the given users that the catalog holds.
    pub fn usernames(&self, ids: &[UserId]) -> Result<HashMap<UserId, String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT username FROM users WHERE id = ?1")
            .ctx(&self.path, "read user")?;
        let mut found = HashMap::new();
        for id in ids {
            if let Some(name) = stmt
                .query_row([id], |r| r.get::<_, String>(0))
                .optional()
                .ctx(&self.path, "read user")?
            {
                found.insert(id.clone(), name);
            }
        }
        Ok(found)
    }

    /// Users whose uploaded picture is newer than the one we hold.
    pub fn users_needing_avatar(&self) -> Result<Vec<(UserId, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, last_picture_update FROM users
                 WHERE last_picture_update > 0 AND last_picture_update <> avatar_picture_update ORDER BY id",
            )
            .ctx(&self.path, "list avatars to fetch")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "list avatars to fetch")
    }

    // ----- teams ---------------------------------------------------------------------------

    pub fn upsert_team(&mut self, team: &Raw<object::Team>, selected: bool) -> Result<()> {
        let t = &team.value;
        self.conn
            .prepare_cached(
                "INSERT INTO teams (id, name, display_name, update_at, delete_at, last_team_icon_update, json, selected)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, display_name = excluded.display_name,
                    update_at = excluded.update_at, delete_at = excluded.delete_at,
                    last_team_icon_update = excluded.last_team_icon_update, json = excluded.json,
                    selected = max(teams.selected, excluded.selected)",
            )
            .and_then(|mut s| {
                s.execute(params![t.id, t.name, t.display_name, t.update_at, t.delete_at, t.last_team_icon_update, team.json(), selected])
            })
            .ctx(&self.path, "store team")?;
        Ok(())
    }

    /// The `last_team_icon_update` value the stored icon belongs to (0 = none stored).
    pub fn team_icon_update(&self, team_id: &TeamId) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT icon_update FROM teams WHERE id = ?1",
                [team_id],
                |r| r.get(0),
            )
            .optional()
            .ctx(&self.path, "read team icon state")
            .map(Option::unwrap_or_default)
    }

    pub fn replace_team_members(
        &mut self,
        team_id: &TeamId,
        members: &[Raw<object::TeamMember>],
        now: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        replace_members(
            &tx,
            &self.path,
            members.iter().map(|m| (m.value.user_id.as_str(), m.json())),
            team_id,
            now,
            MemberSql {
                mark_all: "UPDATE team_members SET removed_at = ?2 WHERE team_id = ?1 AND removed_at IS NULL",
                upsert: "INSERT INTO team_members (team_id, user_id, position, json) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (team_id, user_id) DO UPDATE SET position = excluded.position, json = excluded.json, removed_at = NULL",
                synced: "UPDATE teams SET members_synced_at = ?2 WHERE id = ?1",
            },
        )?;
        tx.commit().ctx(&self.path, "commit team members")
    }

    // ----- channels ------------------------------------------------------------------------

    pub fn upsert_channel(
        &mut self,
        channel: &Raw<object::Channel>,
        selected: bool,
        export_name: Option<&str>,
    ) -> Result<()> {
        let c = &channel.value;
        self.conn
            .prepare_cached(
                "INSERT INTO channels (id, team_id, type, name, display_name, update_at, delete_at, json, selected, export_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, type = excluded.type, name = excluded.name,
                    display_name = excluded.display_name, update_at = excluded.update_at, delete_at = excluded.delete_at,
                    json = excluded.json, selected = max(channels.selected, excluded.selected),
                    export_name = coalesce(excluded.export_name, channels.export_name)",
            )
            .and_then(|mut s| {
                s.execute(params![c.id, c.team_id, c.kind, c.name, c.display_name, c.update_at, c.delete_at, channel.json(), selected, export_name])
            })
            .ctx(&self.path, "store channel")?;
        Ok(())
    }

    /// When the team's member list was last refreshed (local ms), if ever.
    pub fn team_members_synced_at(&self, team_id: &TeamId) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT members_synced_at FROM teams WHERE id = ?1",
                [team_id],
                |r| r.get(0),
            )
            .optional()
            .ctx(&self.path, "read team state")
            .map(Option::flatten)
    }

    /// When the channel's member list was last refreshed (local ms), if ever.
    pub fn channel_members_synced_at(&self, channel_id: &ChannelId) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT members_synced_at FROM channels WHERE id = ?1",
                [channel_id],
                |r| r.get(0),
            )
            .optional()
            .ctx(&self.path, "read channel state")
            .map(Option::flatten)
    }

    pub fn replace_channel_members(
        &mut self,
        channel_id: &ChannelId,
        members: &[Raw<object::ChannelMember>],
        now: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        replace_members(
            &tx,
            &self.path,
            members.iter().map(|m| (m.value.user_id.as_str(), m.json())),
            channel_id,
            now,
            MemberSql {
                mark_all: "UPDATE channel_members SET removed_at = ?2 WHERE channel_id = ?1 AND removed_at IS NULL",
                upsert: "INSERT INTO channel_members (channel_id, user_id, position, json) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (channel_id, user_id) DO UPDATE SET position = excluded.position, json = excluded.json, removed_at = NULL",
                synced: "UPDATE channels SET members_synced_at = ?2 WHERE id = ?1",
            },
        )?;
        tx.commit().ctx(&self.path, "commit channel members")
    }

    // ----- files ---------------------------------------------------------------------------

    /// Files of the channel whose bytes are not archived yet, oldest first.
    pub fn pending_files(&self, channel_id: &ChannelId) -> Result<Vec<PendingFile>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, channel_id, name, size FROM files WHERE blob IS NULL AND channel_id = ?1 ORDER BY create_at, id",
            )
            .ctx(&self.path, "list pending files")?;
        stmt.query_map([channel_id], |r| {
            Ok(PendingFile {
                id: r.get(0)?,
                channel_id: r.get(1)?,
                name: r.get(2)?,
                size: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "list pending files")
    }

    pub fn set_file_blob(&mut self, file_id: &FileId, blob: &BlobRef, now: i64) -> Result<()> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        Self::insert_blob(&tx, &self.path, blob, now)?;
        tx.execute(
            "UPDATE files SET blob = ?2, fetch_error = NULL WHERE id = ?1",
            params![file_id, blob.id.as_str()],
        )
        .ctx(&self.path, "store file")?;
        tx.commit().ctx(&self.path, "commit file")
    }

    pub fn set_file_error(&mut self, file_id: &FileId, error: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE files SET fetch_error = ?2 WHERE id = ?1",
                params![file_id, error],
            )
            .ctx(&self.path, "record file failure")?;
        Ok(())
    }

    /// Stores a file info fetched on its own (a post that came without `metadata.files`);
    /// returns it when its bytes are still to fetch.
    pub fn upsert_file_info(
        &mut self,
        info: &Raw<object::FileInfo>,
    ) -> Result<Option<PendingFile>> {
        posts::upsert_file(&self.conn, &self.path, info)
    }

    // ----- emojis --------------------------------------------------------------------------

    /// Stores the server's full emoji list; emojis missing from it are marked removed.
    /// Returns the emojis whose image must be (re)fetched: `(id, update_at)`.
    pub fn replace_emojis(
        &mut self,
        emojis: &[Raw<object::Emoji>],
        now: i64,
    ) -> Result<Vec<(EmojiId, i64)>> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        tx.execute(
            "UPDATE emojis SET removed_at = ?1 WHERE removed_at IS NULL",
            [now],
        )
        .ctx(&self.path, "mark emojis")?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO emojis (id, name, creator_id, create_at, update_at, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, creator_id = excluded.creator_id,
                        create_at = excluded.create_at, update_at = excluded.update_at, json = excluded.json, removed_at = NULL",
                )
                .ctx(&self.path, "store emoji")?;
            for emoji in emojis {
                execute_emoji(&mut stmt, emoji).ctx(&self.path, "store emoji")?;
            }
        }
        let stale = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, update_at FROM emojis WHERE removed_at IS NULL AND (image_blob IS NULL OR image_update_at <> update_at) ORDER BY name",
                )
                .ctx(&self.path, "list emoji images to fetch")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(EmojiId, i64)>>>())
                .ctx(&self.path, "list emoji images to fetch")?
        };
        tx.commit().ctx(&self.path, "commit emojis")?;
        Ok(stale)
    }

    /// Stores a fetched image (avatar, team icon, emoji image) and points its owner's row at
    /// it, with the server's change marker the image belongs to, in one transaction.
    pub fn set_image(
        &mut self,
        owner: ImageOwner,
        id: &str,
        blob: &BlobRef,
        content_type: &str,
        changed_at: i64,
        now: i64,
    ) -> Result<()> {
        let (sql, what) = match owner {
            ImageOwner::User => (
                "UPDATE users SET avatar_blob = ?2, avatar_content_type = ?3, avatar_picture_update = ?4 WHERE id = ?1",
                "store avatar",
            ),
            ImageOwner::Team => (
                "UPDATE teams SET icon_blob = ?2, icon_content_type = ?3, icon_update = ?4 WHERE id = ?1",
                "store team icon",
            ),
            ImageOwner::Emoji => (
                "UPDATE emojis SET image_blob = ?2, image_content_type = ?3, image_update_at = ?4 WHERE id = ?1",
                "store emoji image",
            ),
        };
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        Self::insert_blob(&tx, &self.path, blob, now)?;
        tx.execute(sql, params![id, blob.id.as_str(), content_type, changed_at])
            .ctx(&self.path, what)?;
        tx.commit().ctx(&self.path, what)
    }
}

struct MemberSql {
    mark_all: &'static str,
    upsert: &'static str,
    synced: &'static str,
}

/// Replaces a member list keeping the server's order; members no longer listed are marked.
fn replace_members<'a>(
    tx: &Connection,
    path: &Path,
    members: impl Iterator<Item = (&'a str, &'a str)>,
    owner_id: &str,
    now: i64,
    sql: MemberSql,
) -> Result<()> {
    tx.execute(sql.mark_all, params![owner_id, now])
        .ctx(path, "mark members")?;
    let mut stmt = tx.prepare_cached(sql.upsert).ctx(path, "store members")?;
    for (position, (user_id, json)) in members.enumerate() {
        stmt.execute(params![owner_id, user_id, position as i64, json])
            .ctx(path, "store member")?;
    }
    tx.execute(sql.synced, params![owner_id, now])
        .ctx(path, "record member refresh")?;
    Ok(())
}

/// Runs a users upsert (sync's or import's: they differ only in the merge rule) for one
/// user, whose columns are bound as `?1`..`?7` in the order of the `users` table.
fn execute_user(
    stmt: &mut rusqlite::CachedStatement<'_>,
    user: &Raw<object::User>,
) -> rusqlite::Result<usize> {
    let u = &user.value;
    stmt.execute(params![
        u.id,
        u.username,
        u.update_at,
        u.delete_at,
        u.is_bot,
        u.last_picture_update,
        user.json()
    ])
}

/// Runs an emojis upsert (sync's, live capture's or import's: they differ in the merge rule)
/// for one emoji, whose columns are bound as `?1`..`?6` in the order of the `emojis` table.
fn execute_emoji(
    stmt: &mut rusqlite::CachedStatement<'_>,
    emoji: &Raw<object::Emoji>,
) -> rusqlite::Result<usize> {
    let e = &emoji.value;
    stmt.execute(params![
        e.id,
        e.name,
        e.creator_id,
        e.create_at,
        e.update_at,
        emoji.json()
    ])
}

/// Ad-hoc read queries for tests and diagnostics: each row rendered as `a|b|c` (NULL as
/// `NULL`), so assertions can compare text.
pub mod testing {
    use super::Catalog;
    use rusqlite::types::ValueRef;

    /// The search index holds what the schema's own definition gives (0002_query.sql): each
    /// post's message and its files' names, under the post's rowid.
    pub fn assert_search_index_is_as_defined(catalog: &Catalog) {
        let index = "SELECT rowid, message, file_names FROM post_search ORDER BY rowid";
        let defined = "SELECT p.rowid, p.message,
                coalesce((SELECT group_concat(f.name, ' ') FROM files f WHERE f.post_id = p.id), '')
            FROM posts p ORDER BY p.rowid";
        assert_eq!(
            query_strings(catalog, index),
            query_strings(catalog, defined)
        );
    }

    pub fn query_strings(catalog: &Catalog, sql: &str) -> Vec<String> {
        let mut stmt = catalog
            .conn
            .prepare(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut out = Vec::new();
        while let Some(row) = rows.next().expect("row") {
            let cells: Vec<String> = (0..columns)
                .map(|i| match row.get_ref(i).expect("cell") {
                    ValueRef::Null => "NULL".to_owned(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
                })
                .collect();
            out.push(cells.join("|"));
        }
        out
    }
}
