//! Reads for the exports: one record type per entity (team, channel, post, file, version,
//! reaction, member, user or emoji) and one read per entity, each a fixed query; plus
//! [`Catalog::channel_content`], one channel's rows together for the exports that hold a
//! channel in memory (Markdown, HGF, bulk import; the website reads a page at a time, see
//! `outline`).
//!
//! Streaming reads hand one record at a time to a callback whose error type is the
//! caller's own (`E: From<CatalogError>`): memory stays flat whatever the channel's size,
//! and a sink that fails stops the walk with its own error. Records carry the stored JSON
//! verbatim next to the indexed columns; turning that JSON into typed objects is the
//! exports' view (`export::view`), not the catalog's. Imports `model` only.

use rusqlite::types::FromSql;
use rusqlite::{Row, ToSql, params};

use super::{Catalog, CatalogError, Context, Result};
use crate::model::{BlobId, ChannelId, ChannelType, EmojiId, FileId, PostId, TeamId, UserId};

/// A team that was ever selected for archiving.
#[derive(Debug, Clone)]
pub struct TeamRecord {
    pub id: TeamId,
    pub name: String,
    pub json: String,
    /// The team icon's blob and content type, when archived.
    pub icon: Option<(BlobId, String)>,
}

/// A channel that was ever archived.
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub id: ChannelId,
    /// `''` for direct and group channels.
    pub team_id: TeamId,
    pub kind: ChannelType,
    /// The URL name (direct: `<user id>__<user id>`).
    pub name: String,
    pub display_name: String,
    /// > 0: archived on the server (ms).
    pub delete_at: i64,
    /// Direct: the other username; group: the other usernames joined by `__`.
    pub export_name: Option<String>,
    pub json: String,
}

/// A post: its indexed columns and its stored JSON. The JSON is the newest content we saw
/// while the post was alive, so a deleted post keeps its last text; the columns say what
/// the server did since (`delete_at`).
#[derive(Debug, Clone)]
pub struct PostRecord {
    pub id: PostId,
    /// `''` for a root post.
    pub root_id: PostId,
    pub user_id: UserId,
    pub create_at: i64,
    pub update_at: i64,
    /// 0 = never edited.
    pub edit_at: i64,
    /// 0 = not deleted; else when the server deleted it (ms).
    pub delete_at: i64,
    /// False: the post was already deleted when first seen; the server had blanked its
    /// content, so it has none here.
    pub seen_live: bool,
    /// The post type: `''` for normal posts, `system_*` for system messages.
    pub kind: String,
    /// The current (latest archived) text.
    pub message: String,
    pub json: String,
}

/// An attachment's file info and its bytes' blob, if archived.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub id: FileId,
    pub post_id: PostId,
    pub name: String,
    pub size: i64,
    pub mime_type: String,
    pub create_at: i64,
    pub json: String,
    pub blob: Option<BlobId>,
}

/// An earlier version of an edited post; `message` is `None` when only the server's
/// blanked history row is known.
#[derive(Debug, Clone)]
pub struct VersionRecord {
    pub post_id: PostId,
    /// When this version stopped being current (ms).
    pub replaced_at: i64,
    pub message: Option<String>,
}

/// A reaction still present on the server at the last sync.
#[derive(Debug, Clone)]
pub struct ReactionRecord {
    pub post_id: PostId,
    pub user_id: UserId,
    pub emoji_name: String,
    pub create_at: i64,
}

/// A current member of a team or channel: the user and the stored membership JSON.
#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub user_id: UserId,
    pub json: String,
}

/// A user (`Id` = [`UserId`]) or custom emoji ([`EmojiId`]) with its picture.
#[derive(Debug, Clone)]
pub struct ImageOwnerRecord<Id> {
    pub id: Id,
    /// The username, or the emoji's name.
    pub name: String,
    pub json: String,
    pub image: Option<(BlobId, String)>,
}

/// One channel's rows, as the exports that hold a channel in memory read it.
#[derive(Debug, Clone, Default)]
pub struct ChannelContent {
    /// Every post, those first seen already deleted too, oldest first (then by id).
    pub posts: Vec<PostRecord>,
    /// Attachments of the posts seen alive, by file id.
    pub files: Vec<FileRecord>,
    /// Current reactions, by post, then time.
    pub reactions: Vec<ReactionRecord>,
    /// Earlier versions, by post, then time.
    pub versions: Vec<VersionRecord>,
    /// Current members, in the server's order.
    pub members: Vec<MemberRecord>,
}

fn image(blob: Option<String>, content_type: Option<String>) -> Option<(BlobId, String)> {
    Some((BlobId::parse(&blob?)?, content_type.unwrap_or_default()))
}

pub(super) fn post_record(r: &Row<'_>) -> rusqlite::Result<PostRecord> {
    Ok(PostRecord {
        id: r.get(0)?,
        root_id: r.get(1)?,
        user_id: r.get(2)?,
        create_at: r.get(3)?,
        update_at: r.get(4)?,
        edit_at: r.get(5)?,
        delete_at: r.get(6)?,
        seen_live: r.get(7)?,
        kind: r.get(8)?,
        message: r.get(9)?,
        json: r.get(10)?,
    })
}

pub(super) fn file_record(r: &Row<'_>) -> rusqlite::Result<FileRecord> {
    let blob: Option<String> = r.get(7)?;
    Ok(FileRecord {
        id: r.get(0)?,
        post_id: r.get(1)?,
        name: r.get(2)?,
        size: r.get(3)?,
        mime_type: r.get(4)?,
        create_at: r.get(5)?,
        json: r.get(6)?,
        blob: blob.as_deref().and_then(BlobId::parse),
    })
}

pub(super) fn version_record(r: &Row<'_>) -> rusqlite::Result<VersionRecord> {
    Ok(VersionRecord {
        post_id: r.get(0)?,
        replaced_at: r.get(1)?,
        message: r.get(2)?,
    })
}

pub(super) fn reaction_record(r: &Row<'_>) -> rusqlite::Result<ReactionRecord> {
    Ok(ReactionRecord {
        post_id: r.get(0)?,
        user_id: r.get(1)?,
        emoji_name: r.get(2)?,
        create_at: r.get(3)?,
    })
}

fn member_record(r: &Row<'_>) -> rusqlite::Result<MemberRecord> {
    Ok(MemberRecord {
        user_id: r.get(0)?,
        json: r.get(1)?,
    })
}

fn image_owner_record<Id: FromSql>(r: &Row<'_>) -> rusqlite::Result<ImageOwnerRecord<Id>> {
    Ok(ImageOwnerRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        json: r.get(2)?,
        image: image(r.get(3)?, r.get(4)?),
    })
}

impl Catalog {
    /// Starts a read transaction: every query until `end_snapshot` sees one consistent state,
    /// even while a sync writes.
    pub fn begin_snapshot(&self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN")
            .ctx(&self.path, "begin read")
    }

    pub fn end_snapshot(&self) -> Result<()> {
        self.conn
            .execute_batch("COMMIT")
            .ctx(&self.path, "end read")
    }

    /// Teams that were ever selected for archiving, by name.
    pub fn load_teams(&self) -> Result<Vec<TeamRecord>> {
        self.all_rows(
            "SELECT id, name, json, icon_blob, icon_content_type FROM teams WHERE selected = 1 ORDER BY name, id",
            "list teams",
            |r| {
                Ok(TeamRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    json: r.get(2)?,
                    icon: image(r.get(3)?, r.get(4)?),
                })
            },
        )
    }

    /// Channels that were ever archived, by team, then type code, then name.
    pub fn load_channels(&self) -> Result<Vec<ChannelRecord>> {
        self.all_rows(
            "SELECT id, team_id, type, name, display_name, delete_at, export_name, json FROM channels
             WHERE selected = 1 ORDER BY team_id, type, name, id",
            "list channels",
            |r| {
                Ok(ChannelRecord {
                    id: r.get(0)?,
                    team_id: r.get(1)?,
                    kind: ChannelType::from_code(&r.get::<_, String>(2)?),
                    name: r.get(3)?,
                    display_name: r.get(4)?,
                    delete_at: r.get(5)?,
                    export_name: r.get(6)?,
                    json: r.get(7)?,
                })
            },
        )
    }

    /// Current members of a team, in the server's order.
    pub fn load_team_members<E: From<CatalogError>>(
        &self,
        team_id: &TeamId,
        each: impl FnMut(MemberRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        self.each_row(
            "SELECT user_id, json FROM team_members WHERE team_id = ?1 AND removed_at IS NULL ORDER BY position, user_id",
            team_id,
            "read team members",
            member_record,
            each,
        )
    }

    /// Current members of a channel, in the server's order.
    pub fn load_channel_members<E: From<CatalogError>>(
        &self,
        channel_id: &ChannelId,
        each: impl FnMut(MemberRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        self.each_row(
            "SELECT user_id, json FROM channel_members WHERE channel_id = ?1 AND removed_at IS NULL ORDER BY position, user_id",
            channel_id,
            "read channel members",
            member_record,
            each,
        )
    }

    /// Thread relations of a channel's posts seen alive: `(root_id, reply_id)` grouped by
    /// root. Roots come in the order the Python tool meets them (newest reply first);
    /// replies oldest first.
    pub fn load_thread_replies<E: From<CatalogError>>(
        &self,
        channel_id: &ChannelId,
        mut each: impl FnMut(&PostId, &PostId) -> Result<(), E>,
    ) -> Result<(), E> {
        self.each_row(
            "SELECT root_id, id FROM (
                SELECT root_id, id, create_at, max(create_at) OVER (PARTITION BY root_id) AS newest
                FROM posts WHERE channel_id = ?1 AND root_id <> '' AND seen_live = 1)
             ORDER BY newest DESC, root_id, create_at, id",
            channel_id,
            "read threads",
            |r| Ok((r.get::<_, PostId>(0)?, r.get::<_, PostId>(1)?)),
            |(root, reply)| each(&root, &reply),
        )
    }

    /// Every post of a channel (those first seen already deleted too: see
    /// [`PostRecord::seen_live`]), oldest first, then by id.
    pub fn load_posts<E: From<CatalogError>>(
        &self,
        channel_id: &ChannelId,
        each: impl FnMut(PostRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        self.each_row(
            "SELECT id, root_id, user_id, create_at, update_at, edit_at, delete_at, seen_live, type, message, json
             FROM posts WHERE channel_id = ?1 ORDER BY create_at, id",
            channel_id,
            "read posts",
            post_record,
            each,
        )
    }

    /// File infos of a channel's posts seen alive, by file id.
    pub fn load_files<E: From<CatalogError>>(
        &self,
        channel_id: &ChannelId,
        each: impl FnMut(FileRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        self.each_row(
            "SELECT f.id, f.post_id, f.name, f.size, f.mime_type, f.create_at, f.json, f.blob
             FROM files f JOIN posts p ON p.id = f.post_id
             WHERE p.channel_id = ?1 AND p.seen_live = 1 ORDER BY f.id",
            channel_id,
            "read files",
            file_record,
            each,
        )
    }

    /// Earlier versions of a channel's edited posts, by post, oldest first.
    pub fn load_post_versions(&self, channel_id: &ChannelId) -> Result<Vec<VersionRecord>> {
        self.channel_rows(
            "SELECT v.post_id, v.replaced_at, v.message FROM post_versions v
             JOIN posts p ON p.id = v.post_id
             WHERE p.channel_id = ?1 ORDER BY v.post_id, v.replaced_at",
            channel_id,
            "read post versions",
            version_record,
        )
    }

    /// Current reactions on a channel's posts, by post, oldest first.
    pub fn load_reactions(&self, channel_id: &ChannelId) -> Result<Vec<ReactionRecord>> {
        self.channel_rows(
            "SELECT r.post_id, r.user_id, r.emoji_name, r.create_at FROM reactions r
             JOIN posts p ON p.id = r.post_id
             WHERE p.channel_id = ?1 AND r.removed_at IS NULL
             ORDER BY r.post_id, r.create_at, r.user_id, r.emoji_name",
            channel_id,
            "read reactions",
            reaction_record,
        )
    }

    /// One channel's posts, files, reactions, versions and members. The channel is held in
    /// memory: the exports that read it sort and group its posts.
    pub fn channel_content(&self, channel_id: &ChannelId) -> Result<ChannelContent> {
        let mut content = ChannelContent::default();
        self.load_posts(channel_id, |p| {
            content.posts.push(p);
            Ok::<_, CatalogError>(())
        })?;
        self.load_files(channel_id, |f| {
            content.files.push(f);
            Ok::<_, CatalogError>(())
        })?;
        self.load_channel_members(channel_id, |m| {
            content.members.push(m);
            Ok::<_, CatalogError>(())
        })?;
        content.reactions = self.load_reactions(channel_id)?;
        content.versions = self.load_post_versions(channel_id)?;
        Ok(content)
    }

    /// Ids of the users the Python tool writes to `users/`: everyone ever listed as a team
    /// or channel member, and the accounts that ran the syncs. Its exporter knows no others.
    pub fn load_listed_user_ids(&self) -> Result<Vec<UserId>> {
        self.all_rows(
            "SELECT user_id FROM team_members UNION SELECT user_id FROM channel_members
             UNION SELECT user_id FROM sync_runs WHERE user_id IS NOT NULL",
            "read member ids",
            |r| r.get(0),
        )
    }

    /// Every user the archive knows, by id.
    pub fn load_users(&self) -> Result<Vec<ImageOwnerRecord<UserId>>> {
        self.all_rows(
            "SELECT id, username, json, avatar_blob, avatar_content_type FROM users ORDER BY id",
            "read users",
            image_owner_record,
        )
    }

    /// Every custom emoji the archive knows (removed ones too), by id.
    pub fn load_emojis(&self) -> Result<Vec<ImageOwnerRecord<EmojiId>>> {
        self.all_rows(
            "SELECT id, name, json, image_blob, image_content_type FROM emojis ORDER BY id",
            "read emojis",
            image_owner_record,
        )
    }

    /// Custom emojis the server still listed at the last sync, by name.
    pub fn load_live_emojis(&self) -> Result<Vec<ImageOwnerRecord<EmojiId>>> {
        self.all_rows(
            "SELECT id, name, json, image_blob, image_content_type FROM emojis WHERE removed_at IS NULL ORDER BY name, id",
            "read emojis",
            image_owner_record,
        )
    }

    /// Username of the account the latest sync archived as (default zip name).
    pub fn archive_owner(&self) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT username FROM sync_runs WHERE username IS NOT NULL ORDER BY id DESC LIMIT 1",
                params![],
                |r| r.get(0),
            )
            .optional()
            .ctx(&self.path, "read owner")
    }

    /// The account (user id, username) the latest sync archived as.
    pub fn archive_owner_account(&self) -> Result<Option<(UserId, String)>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT user_id, username FROM sync_runs WHERE user_id IS NOT NULL AND username IS NOT NULL ORDER BY id DESC LIMIT 1",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx(&self.path, "read owner")
    }

    /// All rows of `sql` (no parameter), mapped.
    fn all_rows<T>(
        &self,
        sql: &str,
        action: &'static str,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(&self.path, action)?;
        stmt.query_map([], map)
            .and_then(|rows| rows.collect())
            .ctx(&self.path, action)
    }

    /// All rows of `sql` (one parameter: a channel id), mapped.
    pub(super) fn channel_rows<T>(
        &self,
        sql: &str,
        channel_id: &ChannelId,
        action: &'static str,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        self.rows(sql, channel_id, action, map)
    }

    /// Rows of `sql` (one parameter, `key`), mapped.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        key: &dyn ToSql,
        action: &'static str,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(&self.path, action)?;
        stmt.query_map([key], map)
            .and_then(|rows| rows.collect())
            .ctx(&self.path, action)
    }

    /// Rows of `sql` (one parameter), mapped and handed to `each` one at a time; the first
    /// error, the catalog's or the callback's, stops the walk.
    fn each_row<T, E: From<CatalogError>>(
        &self,
        sql: &str,
        key: &dyn ToSql,
        action: &'static str,
        mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
        mut each: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(&self.path, action)?;
        let mut rows = stmt.query([key]).ctx(&self.path, action)?;
        while let Some(row) = rows.next().ctx(&self.path, action)? {
            each(map(row).ctx(&self.path, action)?)?;
        }
        Ok(())
    }
}
