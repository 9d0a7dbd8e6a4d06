//! Read queries for export, stats and tests. Rows are handed to a callback one at a time, so
//! memory stays flat whatever the archive's size.

use rusqlite::params;

use super::{Catalog, Context, Result};
use crate::model::BlobId;

/// A team to export.
#[derive(Debug, Clone)]
pub struct TeamRow {
    pub id: String,
    pub name: String,
    pub json: String,
    pub icon: Option<(BlobId, String)>,
}

/// A channel to export.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: String,
    pub team_id: String,
    pub kind: String,
    pub name: String,
    pub export_name: Option<String>,
    pub json: String,
}

/// A post as export writes it: the newest content we saw while it was alive.
#[derive(Debug, Clone)]
pub struct PostRow {
    pub id: String,
    pub create_at: i64,
    pub json: String,
}

/// A file info and its bytes' blob, if archived.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: String,
    pub name: String,
    pub json: String,
    pub blob: Option<BlobId>,
}

/// A user or emoji with its picture.
#[derive(Debug, Clone)]
pub struct ImageOwnerRow {
    pub id: String,
    pub name: String,
    pub json: String,
    pub image: Option<(BlobId, String)>,
}

/// A post as the chat exports (Markdown, HGF) show it: the stored content plus the state
/// the server blanks (a deleted post keeps its last text here).
#[derive(Debug, Clone)]
pub struct PostStateRow {
    pub id: String,
    pub create_at: i64,
    /// 0 = never edited.
    pub edit_at: i64,
    /// 0 = not deleted; else when the server deleted it (ms).
    pub delete_at: i64,
    pub json: String,
}

/// An earlier version of an edited post; `message` is `None` when only the server's
/// blanked history row is known.
#[derive(Debug, Clone)]
pub struct PostVersionRow {
    pub post_id: String,
    /// When this version stopped being current (ms).
    pub replaced_at: i64,
    pub message: Option<String>,
}

/// A reaction still present on the server at the last sync.
#[derive(Debug, Clone)]
pub struct ReactionRow {
    pub post_id: String,
    pub user_id: String,
    pub emoji_name: String,
    pub create_at: i64,
}

fn image(blob: Option<String>, content_type: Option<String>) -> Option<(BlobId, String)> {
    Some((BlobId::parse(&blob?)?, content_type.unwrap_or_default()))
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
    pub fn export_teams(&self) -> Result<Vec<TeamRow>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, json, icon_blob, icon_content_type FROM teams WHERE selected = 1 ORDER BY name, id")
            .ctx(&self.path, "list teams")?;
        stmt.query_map([], |r| {
            Ok(TeamRow {
                id: r.get(0)?,
                name: r.get(1)?,
                json: r.get(2)?,
                icon: image(r.get(3)?, r.get(4)?),
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "list teams")
    }

    /// Channels that were ever archived, grouped by team, then by name.
    pub fn export_channels(&self) -> Result<Vec<ChannelRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, team_id, type, name, export_name, json FROM channels WHERE selected = 1 ORDER BY team_id, type, name, id",
            )
            .ctx(&self.path, "list channels")?;
        stmt.query_map([], |r| {
            Ok(ChannelRow {
                id: r.get(0)?,
                team_id: r.get(1)?,
                kind: r.get(2)?,
                name: r.get(3)?,
                export_name: r.get(4)?,
                json: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "list channels")
    }

    /// Current members (raw JSON) of a team, in the server's order.
    pub fn for_each_team_member(
        &self,
        team_id: &str,
        f: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        self.for_each_string(
            "SELECT json FROM team_members WHERE team_id = ?1 AND removed_at IS NULL ORDER BY position, user_id",
            team_id,
            f,
        )
    }

    /// Current members (raw JSON) of a channel, in the server's order.
    pub fn for_each_channel_member(
        &self,
        channel_id: &str,
        f: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        self.for_each_string(
            "SELECT json FROM channel_members WHERE channel_id = ?1 AND removed_at IS NULL ORDER BY position, user_id",
            channel_id,
            f,
        )
    }

    fn for_each_string(
        &self,
        sql: &str,
        key: &str,
        mut f: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(&self.path, "read")?;
        let mut rows = stmt.query([key]).ctx(&self.path, "read")?;
        while let Some(row) = rows.next().ctx(&self.path, "read")? {
            let text: String = row.get(0).ctx(&self.path, "read")?;
            if let Err(e) = f(&text) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Thread relations of a channel: `(root_id, reply_id)` grouped by root. Roots come in
    /// the order the Python tool meets them (newest reply first); replies oldest first.
    pub fn for_each_thread_reply(
        &self,
        channel_id: &str,
        mut f: impl FnMut(&str, &str) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT root_id, id FROM (
                    SELECT root_id, id, create_at, max(create_at) OVER (PARTITION BY root_id) AS newest
                    FROM posts WHERE channel_id = ?1 AND root_id <> '' AND seen_live = 1)
                 ORDER BY newest DESC, root_id, create_at, id",
            )
            .ctx(&self.path, "read threads")?;
        let mut rows = stmt.query([channel_id]).ctx(&self.path, "read threads")?;
        while let Some(row) = rows.next().ctx(&self.path, "read threads")? {
            let root: String = row.get(0).ctx(&self.path, "read threads")?;
            let reply: String = row.get(1).ctx(&self.path, "read threads")?;
            if let Err(e) = f(&root, &reply) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Posts of a channel that we saw alive, oldest first.
    pub fn for_each_post(
        &self,
        channel_id: &str,
        mut f: impl FnMut(PostRow) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, create_at, json FROM posts WHERE channel_id = ?1 AND seen_live = 1 ORDER BY create_at, id")
            .ctx(&self.path, "read posts")?;
        let mut rows = stmt.query([channel_id]).ctx(&self.path, "read posts")?;
        while let Some(row) = rows.next().ctx(&self.path, "read posts")? {
            let post = PostRow {
                id: row.get(0).ctx(&self.path, "read posts")?,
                create_at: row.get(1).ctx(&self.path, "read posts")?,
                json: row.get(2).ctx(&self.path, "read posts")?,
            };
            if let Err(e) = f(post) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// File infos of a channel's exported posts, by id.
    pub fn for_each_file(
        &self,
        channel_id: &str,
        mut f: impl FnMut(FileRow) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT f.id, f.name, f.json, f.blob FROM files f JOIN posts p ON p.id = f.post_id
                 WHERE p.channel_id = ?1 AND p.seen_live = 1 ORDER BY f.id",
            )
            .ctx(&self.path, "read files")?;
        let mut rows = stmt.query([channel_id]).ctx(&self.path, "read files")?;
        while let Some(row) = rows.next().ctx(&self.path, "read files")? {
            let blob: Option<String> = row.get(3).ctx(&self.path, "read files")?;
            let file = FileRow {
                id: row.get(0).ctx(&self.path, "read files")?,
                name: row.get(1).ctx(&self.path, "read files")?,
                json: row.get(2).ctx(&self.path, "read files")?,
                blob: blob.as_deref().and_then(BlobId::parse),
            };
            if let Err(e) = f(file) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Posts of a channel that we saw alive, oldest first, with their edit and delete state.
    /// One channel's posts are held in memory: the chat exports need them sorted and grouped.
    pub fn load_post_states(&self, channel_id: &str) -> Result<Vec<PostStateRow>> {
        self.channel_rows(
            "SELECT id, create_at, edit_at, delete_at, json FROM posts
             WHERE channel_id = ?1 AND seen_live = 1 ORDER BY create_at, id",
            channel_id,
            "read posts",
            |r| {
                Ok(PostStateRow {
                    id: r.get(0)?,
                    create_at: r.get(1)?,
                    edit_at: r.get(2)?,
                    delete_at: r.get(3)?,
                    json: r.get(4)?,
                })
            },
        )
    }

    /// Earlier versions of a channel's edited posts, by post, oldest first.
    pub fn load_post_versions(&self, channel_id: &str) -> Result<Vec<PostVersionRow>> {
        self.channel_rows(
            "SELECT v.post_id, v.replaced_at, v.message FROM post_versions v
             JOIN posts p ON p.id = v.post_id
             WHERE p.channel_id = ?1 ORDER BY v.post_id, v.replaced_at",
            channel_id,
            "read post versions",
            |r| {
                Ok(PostVersionRow {
                    post_id: r.get(0)?,
                    replaced_at: r.get(1)?,
                    message: r.get(2)?,
                })
            },
        )
    }

    /// Current reactions on a channel's posts, by post, oldest first.
    pub fn load_reactions(&self, channel_id: &str) -> Result<Vec<ReactionRow>> {
        self.channel_rows(
            "SELECT r.post_id, r.user_id, r.emoji_name, r.create_at FROM reactions r
             JOIN posts p ON p.id = r.post_id
             WHERE p.channel_id = ?1 AND r.removed_at IS NULL
             ORDER BY r.post_id, r.create_at, r.user_id, r.emoji_name",
            channel_id,
            "read reactions",
            |r| {
                Ok(ReactionRow {
                    post_id: r.get(0)?,
                    user_id: r.get(1)?,
                    emoji_name: r.get(2)?,
                    create_at: r.get(3)?,
                })
            },
        )
    }

    /// All rows of `sql` (one parameter: a channel id), mapped.
    pub(super) fn channel_rows<T>(
        &self,
        sql: &str,
        channel_id: &str,
        action: &'static str,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(&self.path, action)?;
        stmt.query_map([channel_id], map)
            .and_then(|rows| rows.collect())
            .ctx(&self.path, action)
    }

    /// Ids of the users the Python tool writes to `users/`: everyone ever listed as a team
    /// or channel member, and the accounts that ran the syncs. Its exporter knows no others.
    pub fn listed_user_ids(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT user_id FROM team_members UNION SELECT user_id FROM channel_members
                 UNION SELECT user_id FROM sync_runs WHERE user_id IS NOT NULL",
            )
            .ctx(&self.path, "read member ids")?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "read member ids")
    }

    pub fn export_users(&self) -> Result<Vec<ImageOwnerRow>> {
        self.image_owners(
            "SELECT id, username, json, avatar_blob, avatar_content_type FROM users ORDER BY id",
        )
    }

    pub fn export_emojis(&self) -> Result<Vec<ImageOwnerRow>> {
        self.image_owners(
            "SELECT id, name, json, image_blob, image_content_type FROM emojis ORDER BY id",
        )
    }

    fn image_owners(&self, sql: &str) -> Result<Vec<ImageOwnerRow>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(&self.path, "read")?;
        stmt.query_map([], |r| {
            Ok(ImageOwnerRow {
                id: r.get(0)?,
                name: r.get(1)?,
                json: r.get(2)?,
                image: image(r.get(3)?, r.get(4)?),
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "read")
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
    pub fn archive_owner_account(&self) -> Result<Option<(String, String)>> {
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

    /// Every post of a channel (deleted ones too, so the caller can report them) grouped by
    /// thread: each root, then its replies oldest first; threads in root id order. A reply
    /// whose root is not in the archive forms a group without its root.
    pub fn for_each_thread_post(
        &self,
        channel_id: &str,
        mut f: impl FnMut(ThreadPostRow) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, root_id, user_id, create_at, edit_at, delete_at, seen_live, type, message, json
                 FROM posts WHERE channel_id = ?1
                 ORDER BY CASE WHEN root_id = '' THEN id ELSE root_id END, root_id <> '', create_at, id",
            )
            .ctx(&self.path, "read threads")?;
        let mut rows = stmt.query([channel_id]).ctx(&self.path, "read threads")?;
        while let Some(row) = rows.next().ctx(&self.path, "read threads")? {
            let post = (|| {
                Ok::<_, rusqlite::Error>(ThreadPostRow {
                    id: row.get(0)?,
                    root_id: row.get(1)?,
                    user_id: row.get(2)?,
                    create_at: row.get(3)?,
                    edit_at: row.get(4)?,
                    delete_at: row.get(5)?,
                    seen_live: row.get(6)?,
                    kind: row.get(7)?,
                    message: row.get(8)?,
                    json: row.get(9)?,
                })
            })()
            .ctx(&self.path, "read threads")?;
            if let Err(e) = f(post) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Attachments of the posts of a channel with the post they belong to, by post, then id.
    pub fn channel_post_files(&self, channel_id: &str) -> Result<Vec<PostFileRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT f.post_id, f.id, f.name, f.size, f.blob FROM files f
                 JOIN posts p ON p.id = f.post_id
                 WHERE p.channel_id = ?1 ORDER BY f.post_id, f.create_at, f.id",
            )
            .ctx(&self.path, "read files")?;
        stmt.query_map([channel_id], |r| {
            let blob: Option<String> = r.get(4)?;
            Ok(PostFileRow {
                post_id: r.get(0)?,
                id: r.get(1)?,
                name: r.get(2)?,
                size: r.get(3)?,
                blob: blob.as_deref().and_then(BlobId::parse),
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "read files")
    }

    /// Users who wrote a live post in a channel or reacted to one (current reactions), by id.
    pub fn channel_participants(&self, channel_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT user_id FROM posts WHERE channel_id = ?1 AND seen_live = 1 AND delete_at = 0
                 UNION
                 SELECT r.user_id FROM reactions r JOIN posts p ON p.id = r.post_id
                 WHERE p.channel_id = ?1 AND p.seen_live = 1 AND p.delete_at = 0 AND r.removed_at IS NULL
                 ORDER BY 1",
            )
            .ctx(&self.path, "read participants")?;
        stmt.query_map([channel_id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "read participants")
    }

    /// Custom emojis the server still listed at the last sync, by name.
    pub fn live_emojis(&self) -> Result<Vec<ImageOwnerRow>> {
        self.image_owners(
            "SELECT id, name, json, image_blob, image_content_type FROM emojis WHERE removed_at IS NULL ORDER BY name, id",
        )
    }
}

/// A post with the columns a restore needs besides its stored JSON.
#[derive(Debug, Clone)]
pub struct ThreadPostRow {
    pub id: String,
    /// `''` for a root post.
    pub root_id: String,
    pub user_id: String,
    pub create_at: i64,
    pub edit_at: i64,
    /// > 0: deleted on the server.
    pub delete_at: i64,
    /// false: the post was already deleted when first seen.
    pub seen_live: bool,
    pub kind: String,
    /// The current (latest archived) text.
    pub message: String,
    pub json: String,
}

#[derive(Debug, Clone)]
pub struct PostFileRow {
    pub post_id: String,
    pub id: String,
    pub name: String,
    pub size: i64,
    pub blob: Option<BlobId>,
}
