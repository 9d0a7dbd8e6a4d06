//! Posts, their versions, reactions and file infos, and the per-channel sync cursor — written
//! together, one page per transaction, so a crash repeats at most one page.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::new_posts::{self, NewPosts, Stage};
use super::{Catalog, Context, PendingFile, Result};
use crate::model::object::{self, Raw};
use crate::model::{ChannelId, FileId, PostId, UserId};

/// A cursor walk over a channel's history (first backfill, truncation recovery, forced
/// rescan), persisted so an interrupted walk resumes where it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The watermark to adopt once the walk is complete (server time taken before it began).
    pub watermark: i64,
    /// Page older than this post; None = the newest page.
    pub before: Option<PostId>,
    /// Offset in pages from `before` (runs of posts sharing one create_at).
    pub page: u32,
    /// Local time the walk began; posts not seen since then were deleted (truncation recovery).
    pub started_at: i64,
}

/// Per-channel sync state (`sync_cursors`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelCursor {
    /// Every change with `update_at` ≤ watermark is archived. None: never fully backfilled.
    pub watermark: Option<i64>,
    pub walk: Option<Walk>,
}

/// How a channel's last sync went, as `sync_cursors.last_outcome` keeps it: `ok`, or the
/// error that ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastOutcome<'a> {
    Ok,
    Failed(&'a str),
}

impl LastOutcome<'_> {
    fn as_text(&self) -> &str {
        match self {
            LastOutcome::Ok => "ok",
            LastOutcome::Failed(error) => error,
        }
    }
}

/// What a page did to the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageOutcome {
    /// Posts inserted or updated (new content, deletion, new version).
    pub posts_written: u64,
    /// File ids referenced by posts that came without `metadata.files`.
    pub files_without_info: Vec<FileId>,
    /// Files of this page whose bytes are not archived yet: downloads can start while the
    /// walk goes on.
    pub files_to_fetch: Vec<PendingFile>,
    /// Users who wrote or reacted to the posts of this page.
    pub user_ids: HashSet<UserId>,
    /// Channel membership changed (system join/leave/add/remove posts): refresh its list.
    pub channel_membership_changed: bool,
    /// Team membership changed (system join/leave team posts): refresh the team's list.
    pub team_membership_changed: bool,
}

const CHANNEL_MEMBERSHIP_POSTS: &[&str] = &[
    "system_join_channel",
    "system_leave_channel",
    "system_add_to_channel",
    "system_remove_from_channel",
];
const TEAM_MEMBERSHIP_POSTS: &[&str] = &[
    "system_join_team",
    "system_leave_team",
    "system_add_to_team",
    "system_remove_from_team",
];

impl Catalog {
    pub fn load_cursor(&self, channel_id: &ChannelId) -> Result<ChannelCursor> {
        type Row = (Option<i64>, Option<i64>, Option<PostId>, i64, Option<i64>);
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT watermark, walk_watermark, walk_before, walk_page, walk_started_at FROM sync_cursors WHERE channel_id = ?1",
                [channel_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .ctx(&self.path, "read sync cursor")?;
        Ok(match row {
            None => ChannelCursor::default(),
            Some((watermark, walk_watermark, before, page, started_at)) => ChannelCursor {
                watermark,
                walk: match (walk_watermark, started_at) {
                    (Some(watermark), Some(started_at)) => Some(Walk {
                        watermark,
                        before,
                        page: page as u32,
                        started_at,
                    }),
                    _ => None,
                },
            },
        })
    }

    /// Applies one page of posts (any mode) and stores the channel's new cursor, atomically.
    pub fn apply_posts_page(
        &mut self,
        channel_id: &ChannelId,
        posts: &[Raw<object::Post>],
        cursor: &ChannelCursor,
        last: LastOutcome<'_>,
        now: i64,
    ) -> Result<PageOutcome> {
        let path = self.path.clone();
        let tx = self.conn.transaction().ctx(&path, "begin")?;
        let mut outcome = PageOutcome::default();
        // Live and deleted posts first, so history rows find the post they belong to.
        let (history, current): (Vec<_>, Vec<_>) =
            posts.iter().partition(|p| !p.value.original_id.is_empty());
        let mut new_posts = NewPosts::begin(&tx, &path)?;
        for post in current {
            if new_posts.contains(&post.value.id) {
                // The same post twice in a page: the second copy merges into the first.
                flush_new_posts(&tx, &path, &mut new_posts, &mut outcome)?;
            }
            upsert_post(&tx, &path, post, &mut new_posts, &mut outcome)?;
        }
        flush_new_posts(&tx, &path, &mut new_posts, &mut outcome)?;
        for row in history {
            record_history_row(&tx, &path, &row.value)?;
        }
        store_cursor(&tx, &path, channel_id, cursor, last, now)?;
        tx.commit().ctx(&path, "commit posts")?;
        Ok(outcome)
    }

    /// Stores a cursor without posts (e.g. an empty channel, or a finished walk).
    pub fn store_cursor(
        &mut self,
        channel_id: &ChannelId,
        cursor: &ChannelCursor,
        last: LastOutcome<'_>,
        now: i64,
    ) -> Result<()> {
        store_cursor(&self.conn, &self.path, channel_id, cursor, last, now)
    }

    /// Live posts of a channel that a completed full walk (started at `walk_started_at`) did
    /// not touch; they are candidates for deletion.
    pub fn posts_not_seen_since(
        &self,
        channel_id: &ChannelId,
        seen: &HashSet<PostId>,
    ) -> Result<Vec<PostId>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM posts WHERE channel_id = ?1 AND delete_at = 0 ORDER BY create_at",
            )
            .ctx(&self.path, "list posts")?;
        let ids: Vec<PostId> = stmt
            .query_map([channel_id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "list posts")?;
        Ok(ids.into_iter().filter(|id| !seen.contains(id)).collect())
    }

    /// Marks a post deleted (confirmed gone with a 404), keeping its content.
    pub fn mark_post_deleted(&mut self, post_id: &PostId, deleted_at: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE posts SET delete_at = ?2 WHERE id = ?1 AND delete_at = 0",
                params![post_id, deleted_at],
            )
            .ctx(&self.path, "mark post deleted")?;
        Ok(())
    }
}

fn store_cursor(
    conn: &Connection,
    path: &Path,
    channel_id: &str,
    cursor: &ChannelCursor,
    last: LastOutcome<'_>,
    now: i64,
) -> Result<()> {
    let walk = cursor.walk.as_ref();
    conn.prepare_cached(
        "INSERT INTO sync_cursors (channel_id, watermark, walk_watermark, walk_before, walk_page, walk_started_at, last_sync_at, last_outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (channel_id) DO UPDATE SET watermark = excluded.watermark, walk_watermark = excluded.walk_watermark,
            walk_before = excluded.walk_before, walk_page = excluded.walk_page, walk_started_at = excluded.walk_started_at,
            last_sync_at = excluded.last_sync_at, last_outcome = excluded.last_outcome",
    )
    .and_then(|mut s| {
        s.execute(params![
            channel_id,
            cursor.watermark,
            walk.map(|w| w.watermark),
            walk.and_then(|w| w.before.as_deref()),
            walk.map_or(0, |w| w.page as i64),
            walk.map(|w| w.started_at),
            now,
            last.as_text()
        ])
    })
    .ctx(path, "store sync cursor")?;
    Ok(())
}

/// What the catalog holds of a post, for merging a newer or older copy into it.
pub(super) struct Stored {
    pub(super) update_at: i64,
    pub(super) edit_at: i64,
    pub(super) seen_live: bool,
    pub(super) message: String,
    pub(super) json: String,
}

pub(super) fn load_stored(tx: &Connection, path: &Path, post_id: &str) -> Result<Option<Stored>> {
    tx.prepare_cached(
        "SELECT update_at, edit_at, seen_live, message, json FROM posts WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([post_id], |r| {
            Ok(Stored {
                update_at: r.get(0)?,
                edit_at: r.get(1)?,
                seen_live: r.get(2)?,
                message: r.get(3)?,
                json: r.get(4)?,
            })
        })
        .optional()
    })
    .ctx(path, "read post")
}

/// Enters the queued new posts with their file infos and reactions.
fn flush_new_posts(
    tx: &Connection,
    path: &Path,
    new_posts: &mut NewPosts<'_>,
    outcome: &mut PageOutcome,
) -> Result<()> {
    new_posts.flush(tx, path, |stage, post| match stage {
        Stage::Files => store_files(tx, path, post, outcome),
        Stage::Reactions => store_reactions(tx, path, post, outcome),
    })
}

pub(super) fn upsert_post<'a>(
    tx: &Connection,
    path: &Path,
    post: &'a Raw<object::Post>,
    new_posts: &mut NewPosts<'a>,
    outcome: &mut PageOutcome,
) -> Result<()> {
    let p = &post.value;
    if !p.user_id.is_empty() {
        outcome.user_ids.insert(p.user_id.clone());
    }
    outcome.channel_membership_changed |= CHANNEL_MEMBERSHIP_POSTS.contains(&p.kind.as_str());
    outcome.team_membership_changed |= TEAM_MEMBERSHIP_POSTS.contains(&p.kind.as_str());
    let stored = load_stored(tx, path, &p.id)?;

    if p.delete_at > 0 {
        // The server blanks deleted posts: keep what we hold, only record the deletion. A post
        // deleted before we ever saw it is not stored: there is nothing to keep, and only
        // `since` answers carry such posts (a walk skips deleted ones), so storing them would
        // make a first sync and the next disagree on what exists and a no-op sync write.
        if stored.is_some() {
            let changed = tx
                .prepare_cached(
                    "UPDATE posts SET delete_at = ?2, update_at = max(update_at, ?3) WHERE id = ?1 AND (delete_at <> ?2 OR update_at < ?3)",
                )
                .and_then(|mut st| st.execute(params![p.id, p.delete_at, p.update_at]))
                .ctx(path, "mark post deleted")?;
            outcome.posts_written += changed as u64;
        }
        return Ok(());
    }

    match stored {
        None => {
            let row = new_posts::Row {
                delete_at: p.delete_at,
                seen_live: true,
                imported_from: None,
                has_content: true,
            };
            new_posts.queue(tx, path, post, row)?;
            outcome.posts_written += 1;
            return Ok(()); // its files and reactions follow with the row (see NewPosts)
        }
        Some(s) if p.update_at > s.update_at || !s.seen_live => {
            if s.seen_live && p.edit_at != s.edit_at {
                // Our copy of the replaced version; merges with the server's history row.
                tx.prepare_cached(
                    "INSERT INTO post_versions (post_id, replaced_at, edit_at, message, json) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (post_id, replaced_at) DO UPDATE SET edit_at = excluded.edit_at, message = excluded.message, json = excluded.json",
                )
                .and_then(|mut st| st.execute(params![p.id, p.edit_at, s.edit_at, s.message, s.json]))
                .ctx(path, "store post version")?;
            }
            tx.prepare_cached(
                "UPDATE posts SET channel_id = ?2, root_id = ?3, user_id = ?4, create_at = ?5, update_at = ?6, edit_at = ?7,
                    type = ?8, message = ?9, seen_live = 1, json = ?10 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![p.id, p.channel_id, p.root_id, p.user_id, p.create_at, p.update_at, p.edit_at, p.kind, p.message, post.json()])
            })
            .ctx(path, "update post")?;
        }
        Some(_) => return Ok(()),
    }
    outcome.posts_written += 1;
    store_files_and_reactions(tx, path, post, outcome)
}

fn store_files_and_reactions(
    tx: &Connection,
    path: &Path,
    post: &Raw<object::Post>,
    outcome: &mut PageOutcome,
) -> Result<()> {
    store_files(tx, path, post, outcome)?;
    store_reactions(tx, path, post, outcome)
}

/// The post's file infos; files whose bytes are not archived go to `outcome`.
pub(super) fn store_files(
    tx: &Connection,
    path: &Path,
    post: &Raw<object::Post>,
    outcome: &mut PageOutcome,
) -> Result<()> {
    let p = &post.value;
    let mut described = HashSet::new();
    for raw in &p.metadata.files {
        let info: Raw<object::FileInfo> = match Raw::parse(raw.clone()) {
            Ok(info) => info,
            Err(_) => continue, // a malformed file info: the post JSON still holds it
        };
        described.insert(info.value.id.clone());
        outcome.files_to_fetch.extend(upsert_file(tx, path, &info)?);
    }
    outcome.files_without_info.extend(
        p.file_ids
            .iter()
            .filter(|id| !described.contains(*id))
            .cloned(),
    );
    Ok(())
}

/// The reactions a post has now (not removed): `(user id, emoji name)`.
pub(super) fn current_reactions(
    tx: &Connection,
    path: &Path,
    post_id: &PostId,
) -> Result<Vec<(UserId, String)>> {
    tx.prepare_cached(
        "SELECT user_id, emoji_name FROM reactions WHERE post_id = ?1 AND removed_at IS NULL",
    )
    .and_then(|mut st| {
        st.query_map([post_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })
    .ctx(path, "read reactions")
}

/// The post's reactions as the server lists them now; one it no longer lists is marked
/// removed (at the post's `update_at`).
pub(super) fn store_reactions(
    tx: &Connection,
    path: &Path,
    post: &Raw<object::Post>,
    outcome: &mut PageOutcome,
) -> Result<()> {
    let p = &post.value;
    let mut current = HashSet::new();
    for raw in &p.metadata.reactions {
        let Ok(reaction) = Raw::<object::Reaction>::parse(raw.clone()) else {
            continue;
        };
        let r = &reaction.value;
        outcome.user_ids.insert(r.user_id.clone());
        current.insert((r.user_id.clone(), r.emoji_name.clone()));
        tx.prepare_cached(
            "INSERT INTO reactions (post_id, user_id, emoji_name, create_at, json) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (post_id, user_id, emoji_name) DO UPDATE SET create_at = excluded.create_at, json = excluded.json, removed_at = NULL",
        )
        .and_then(|mut st| st.execute(params![p.id, r.user_id, r.emoji_name, r.create_at, reaction.json()]))
        .ctx(path, "store reaction")?;
    }
    let live = current_reactions(tx, path, &p.id)?;
    for (user_id, emoji_name) in live.into_iter().filter(|k| !current.contains(k)) {
        tx.prepare_cached("UPDATE reactions SET removed_at = ?4 WHERE post_id = ?1 AND user_id = ?2 AND emoji_name = ?3")
            .and_then(|mut st| st.execute(params![p.id, user_id, emoji_name, p.update_at]))
            .ctx(path, "mark reaction removed")?;
    }
    Ok(())
}

/// Stores a file's info (never its bytes); returns it when its bytes are still to fetch.
pub(super) fn upsert_file(
    conn: &Connection,
    path: &Path,
    info: &Raw<object::FileInfo>,
) -> Result<Option<PendingFile>> {
    let f = &info.value;
    let pending: bool = conn
        .prepare_cached(
            "INSERT INTO files (id, post_id, channel_id, user_id, name, extension, size, mime_type, create_at, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET post_id = excluded.post_id, channel_id = excluded.channel_id, name = excluded.name,
                extension = excluded.extension, size = excluded.size, mime_type = excluded.mime_type, json = excluded.json
             RETURNING blob IS NULL",
        )
        .and_then(|mut st| {
            st.query_row(
                params![f.id, f.post_id, f.channel_id, f.user_id, f.name, f.extension, f.size, f.mime_type, f.create_at, info.json()],
                |r| r.get(0),
            )
        })
        .ctx(path, "store file info")?;
    Ok(pending.then(|| PendingFile {
        id: f.id.clone(),
        channel_id: f.channel_id.clone(),
        name: f.name.clone(),
        size: f.size,
    }))
}

/// A server edit-history row (`original_id` set): a version of its post whose content the
/// server no longer sends (it is blanked); our own copy, if any, carries the text.
fn record_history_row(tx: &Connection, path: &Path, row: &object::Post) -> Result<()> {
    let known: bool = tx
        .prepare_cached("SELECT 1 FROM posts WHERE id = ?1")
        .and_then(|mut s| s.exists([&row.original_id]))
        .ctx(path, "read post")?;
    if !known {
        return Ok(()); // history of a post we never saw: nothing to attach it to
    }
    tx.prepare_cached(
        "INSERT INTO post_versions (post_id, replaced_at, history_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (post_id, replaced_at) DO UPDATE SET history_id = excluded.history_id",
    )
    .and_then(|mut st| st.execute(params![row.original_id, row.update_at, row.id]))
    .ctx(path, "store post history")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Access;
    use crate::catalog::testing::{assert_search_index_is_as_defined, query_strings};
    use serde_json::value::RawValue;

    fn raw<T: serde::de::DeserializeOwned>(json: &str) -> Raw<T> {
        Raw::parse(RawValue::from_string(json.to_owned()).unwrap()).unwrap()
    }

    /// A page of new posts enters `posts` at once (see `new_posts`): the rows, their file
    /// infos, reactions and search index must be what one write per post gave.
    #[test]
    fn a_page_of_new_posts_is_stored_and_indexed_with_its_files_and_reactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog =
            Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap();
        let channel = raw(r#"{"id":"c1","type":"O","name":"c","update_at":1}"#);
        catalog.upsert_channel(&channel, true, None).unwrap();
        let page = [
            raw::<object::Post>(
                r#"{"id":"p1","channel_id":"c1","user_id":"u1","create_at":1,"update_at":1,"message":"first text"}"#,
            ),
            raw(
                r#"{"id":"p2","channel_id":"c1","user_id":"u2","create_at":2,"update_at":2,"message":"report attached","file_ids":["f1","f2","f3"],
                    "metadata":{"files":[{"id":"f1","post_id":"p2","channel_id":"c1","name":"q3 report.pdf","size":3},
                                         {"id":"f2","post_id":"p2","channel_id":"c1","name":"notes.txt","size":1}],
                                "reactions":[{"user_id":"u3","post_id":"p2","emoji_name":"tada","create_at":3}]}}"#,
            ),
            // p1 again, edited: it merges into the first copy's row, which becomes a version.
            raw(
                r#"{"id":"p1","channel_id":"c1","user_id":"u1","create_at":1,"update_at":9,"edit_at":9,"message":"edited text"}"#,
            ),
            // A history row of p1 (the server's copy of the replaced text).
            raw(
                r#"{"id":"h1","original_id":"p1","channel_id":"c1","user_id":"u1","create_at":1,"update_at":9,"delete_at":9,"message":"first text"}"#,
            ),
        ];
        let outcome = catalog
            .apply_posts_page(
                &"c1".into(),
                &page,
                &ChannelCursor::default(),
                LastOutcome::Ok,
                10,
            )
            .unwrap();
        assert_eq!(outcome.posts_written, 3);
        assert_eq!(outcome.files_without_info, ["f3"]);
        let mut fetch: Vec<_> = outcome.files_to_fetch.iter().map(|f| &f.id).collect();
        fetch.sort();
        assert_eq!(fetch, ["f1", "f2"]);
        let mut users: Vec<_> = outcome.user_ids.into_iter().collect();
        users.sort();
        assert_eq!(users, ["u1", "u2", "u3"]);
        assert_eq!(
            query_strings(
                &catalog,
                "SELECT id, message, seen_live, imported_from FROM posts ORDER BY rowid"
            ),
            ["p1|edited text|1|NULL", "p2|report attached|1|NULL"]
        );
        assert_eq!(
            query_strings(
                &catalog,
                "SELECT post_id, replaced_at, message, history_id FROM post_versions"
            ),
            ["p1|9|first text|h1"]
        );
        assert_eq!(
            query_strings(
                &catalog,
                "SELECT post_id, emoji_name, removed_at FROM reactions"
            ),
            ["p2|tada|NULL"]
        );
        assert_search_index_is_as_defined(&catalog);
        assert_eq!(
            query_strings(
                &catalog,
                "SELECT p.id FROM post_search s JOIN posts p ON p.rowid = s.rowid WHERE post_search MATCH 'report AND notes'"
            ),
            ["p2"]
        );
    }
}
