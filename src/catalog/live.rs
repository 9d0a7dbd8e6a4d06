//! What live capture (`sync --follow`) writes as WebSocket events arrive: posts, edits,
//! deletions and reactions, a batch of events per transaction (plus the reads and the one
//! emoji row its targeted fetches need): a live write never touches `sync_cursors`, so the `since` watermark the incremental sync relies
//! on stays where polling put it (an event we missed is still found by the next sync).
//!
//! Invariants: writes apply in the order given (an edit after its post, a removal after its
//! addition); a post, reaction or deletion of a channel the catalog does not hold is skipped
//! (counted), never an error, since the caller only passes selected channels and a catch-up
//! sync brings new ones.

use rusqlite::{Connection, OptionalExtension, params};

use super::new_posts::{NewPosts, Stage};
use super::posts::{PageOutcome, upsert_post};
use super::{Catalog, Context, PendingFile, Result};
use crate::model::object::{self, Raw};
use crate::model::{ChannelId, EmojiId, FileId, PostId, TeamId, UserId};

/// One event's write, as `sync::live` decoded it.
#[derive(Debug)]
pub enum LiveWrite {
    /// `posted` or `post_edited`: the post as the server sent it (an edit becomes a version).
    Post(Raw<object::Post>),
    /// `post_deleted`: the post as it was before the delete (full message, file ids, props)
    /// and when we learnt of it (ms). A post never stored is stored with this content; the
    /// replies of a deleted root are deleted with it (the server sends one event).
    Deleted { post: Raw<object::Post>, at: i64 },
    /// `reaction_added`.
    ReactionAdded(Raw<object::Reaction>, PostId),
    /// `reaction_removed`: post id, user id, emoji name, and when (the event's `update_at`).
    ReactionRemoved {
        post_id: PostId,
        user_id: UserId,
        emoji_name: String,
        at: i64,
    },
}

/// What a batch of live writes did.
#[derive(Debug, Default)]
pub struct LiveOutcome {
    /// Posts inserted or changed (new, edited, deleted), replies deleted with their root
    /// included; reactions added or removed.
    pub posts_written: u64,
    pub reactions_written: u64,
    /// Files of stored posts whose bytes are not archived: download them now (a deleted
    /// post takes its files with it, API notes §15.8).
    pub files_to_fetch: Vec<PendingFile>,
    /// File ids of live (not deleted) posts that came without file infos.
    pub files_without_info: Vec<FileId>,
    /// Writes skipped because their channel or post is not in the catalog.
    pub skipped: u64,
}

impl Catalog {
    /// Applies a batch of live writes in one transaction, in order.
    ///
    /// New posts are queued and entered into `posts` together (see `NewPosts`: one statement
    /// per post made the search index flush a segment per post, most of a posted event's
    /// cost); a write that must see a queued post's row (an edit or deletion of it, a
    /// reaction to it) enters the queue first, so the order of the writes is kept.
    pub fn apply_live(&mut self, writes: &[LiveWrite]) -> Result<LiveOutcome> {
        let path = self.path.clone();
        let tx = self.conn.transaction().ctx(&path, "begin")?;
        let mut outcome = LiveOutcome::default();
        let mut page = PageOutcome::default();
        let mut queue = NewPosts::begin(&tx, &path)?;
        for write in writes {
            match write {
                LiveWrite::Post(post) => {
                    if !has_channel(&tx, &path, &post.value.channel_id)? {
                        outcome.skipped += 1;
                        continue;
                    }
                    if queue.contains(&post.value.id) {
                        flush(&tx, &path, &mut queue, &mut page)?;
                    }
                    upsert_post(&tx, &path, post, &mut queue, &mut page)?;
                }
                LiveWrite::Deleted { post, at } => {
                    if !has_channel(&tx, &path, &post.value.channel_id)? {
                        outcome.skipped += 1;
                        continue;
                    }
                    flush(&tx, &path, &mut queue, &mut page)?;
                    store_deleted(&tx, &path, post, &mut queue, &mut page)?;
                    // Then the deletion of it and its replies.
                    let deleted = tx
                        .prepare_cached(MARK_DELETED)
                        .and_then(|mut st| st.execute(params![post.value.id, at]))
                        .ctx(&path, "mark post deleted")?;
                    outcome.posts_written += deleted as u64;
                }
                LiveWrite::ReactionAdded(reaction, post_id) => {
                    if queue.contains(post_id) {
                        flush(&tx, &path, &mut queue, &mut page)?;
                    }
                    if !has_post(&tx, &path, post_id)? {
                        outcome.skipped += 1;
                        continue;
                    }
                    let r = &reaction.value;
                    tx.prepare_cached(
                        "INSERT INTO reactions (post_id, user_id, emoji_name, create_at, json) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (post_id, user_id, emoji_name) DO UPDATE SET create_at = excluded.create_at, json = excluded.json, removed_at = NULL",
                    )
                    .and_then(|mut st| st.execute(params![post_id, r.user_id, r.emoji_name, r.create_at, reaction.json()]))
                    .ctx(&path, "store reaction")?;
                    outcome.reactions_written += 1;
                }
                LiveWrite::ReactionRemoved {
                    post_id,
                    user_id,
                    emoji_name,
                    at,
                } => {
                    if queue.contains(post_id) {
                        flush(&tx, &path, &mut queue, &mut page)?;
                    }
                    let changed = tx
                        .prepare_cached(
                            "UPDATE reactions SET removed_at = ?4 WHERE post_id = ?1 AND user_id = ?2 AND emoji_name = ?3 AND removed_at IS NULL",
                        )
                        .and_then(|mut st| st.execute(params![post_id, user_id, emoji_name, at]))
                        .ctx(&path, "mark reaction removed")?;
                    if changed == 0 {
                        outcome.skipped += 1;
                    }
                    outcome.reactions_written += changed as u64;
                }
            }
        }
        flush(&tx, &path, &mut queue, &mut page)?;
        drop(queue);
        tx.commit().ctx(&path, "commit live events")?;
        outcome.posts_written += page.posts_written;
        outcome.files_to_fetch = page.files_to_fetch;
        outcome.files_without_info = page.files_without_info;
        Ok(outcome)
    }

    /// Sizes the writer connection for a follow session, which runs for days and applies
    /// a batch of events every few hundred milliseconds: a 16 MiB page cache (SQLite's
    /// default is 2 MiB) and room for every statement of its writes in the prepared
    /// statement cache. Why: with the default cache, half of the writer thread's time in
    /// `benches/follow_throughput.sh` was the kernel's (`pread` of index and WAL pages that
    /// had just left the cache); and the writes of a stream with reactions, edits and
    /// deletions use more than the 16 statements rusqlite caches by default, so some were
    /// compiled again for every batch. Both are fixed sizes, reached during the first
    /// catch-up: the follower's memory stays flat.
    pub fn prepare_for_live(&mut self) -> Result<()> {
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = -{LIVE_CACHE_KIB};"))
            .ctx(&self.path, "configure")?;
        self.conn
            .set_prepared_statement_cache_capacity(LIVE_STATEMENTS);
        Ok(())
    }

    /// A team as the catalog last listed it: `(id, name, display_name)`; None when unknown.
    /// Live capture applies `channels.json` to a channel of it.
    pub fn listed_team(&self, team_id: &TeamId) -> Result<Option<(TeamId, String, String)>> {
        self.conn
            .prepare_cached("SELECT id, name, display_name FROM teams WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([team_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .ctx(&self.path, "read team")
    }

    /// The team's channels as the catalog last listed them (selected or not), each as
    /// `(id, type, name, display_name)`: what `channels.json`'s team rules look at.
    pub fn listed_team_channels(
        &self,
        team_id: &TeamId,
    ) -> Result<Vec<(ChannelId, String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, type, name, display_name FROM channels WHERE team_id = ?1 ORDER BY id",
            )
            .ctx(&self.path, "list team channels")?;
        stmt.query_map([team_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "list team channels")
    }

    /// Stores one custom emoji (`emoji_added`), as [`Catalog::replace_emojis`] stores each
    /// of the list; returns `(id, update_at)` when its image is to be fetched.
    pub fn upsert_emoji(&mut self, emoji: &Raw<object::Emoji>) -> Result<Option<(EmojiId, i64)>> {
        let e = &emoji.value;
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        tx.prepare_cached(
            "INSERT INTO emojis (id, name, creator_id, create_at, update_at, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, creator_id = excluded.creator_id,
                create_at = excluded.create_at, update_at = excluded.update_at, json = excluded.json, removed_at = NULL",
        )
        .and_then(|mut st| super::execute_emoji(&mut st, emoji))
        .ctx(&self.path, "store emoji")?;
        let stale = tx
            .prepare_cached(
                "SELECT id, update_at FROM emojis WHERE id = ?1 AND (image_blob IS NULL OR image_update_at <> update_at)",
            )
            .and_then(|mut st| st.query_row([&e.id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .ctx(&self.path, "read emoji")?;
        tx.commit().ctx(&self.path, "commit emoji")?;
        Ok(stale)
    }

    /// Every channel the catalog holds, and whether `channels.json` selected it: the
    /// filter live events go through (an unknown channel is new since the last sync).
    pub fn channel_selection(&self) -> Result<std::collections::HashMap<ChannelId, bool>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, selected FROM channels")
            .ctx(&self.path, "list channels")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, ChannelId>(0)?, r.get::<_, bool>(1)?))
            })
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "list channels")?;
        Ok(rows)
    }
}

/// The follower's page cache, in KiB (`PRAGMA cache_size` takes a negative number for KiB).
const LIVE_CACHE_KIB: u32 = 16 * 1024;
/// Prepared statements the follower's connection keeps (rusqlite's default is 16).
const LIVE_STATEMENTS: usize = 64;

/// A deleted post and its replies. `root_id <> ''` is what lets SQLite use the partial index
/// `posts_root` for the reply half of the OR (without it the whole table was scanned on every
/// deletion: 430 us of follower CPU per event in a stream with deletions, found by
/// benches/follow_throughput.sh), and keeps an empty id from matching every root post.
const MARK_DELETED: &str = "UPDATE posts SET delete_at = ?2 \
     WHERE (id = ?1 OR (root_id = ?1 AND root_id <> '')) AND delete_at = 0";

/// Enters the queued posts, with their file infos and reactions.
fn flush(
    tx: &Connection,
    path: &std::path::Path,
    queue: &mut NewPosts<'_>,
    page: &mut PageOutcome,
) -> Result<()> {
    queue.flush(tx, path, |stage, post| match stage {
        Stage::Files => super::posts::store_files(tx, path, post, page),
        Stage::Reactions => super::posts::store_reactions(tx, path, post, page),
    })
}

/// The content a `post_deleted` event carries, before the deletion is marked. The server sends
/// the post without its metadata (API notes §15.7): no reactions or file infos, which says
/// nothing about them. A post we hold at the event's version keeps its row as it is, as a sync
/// that sees the deletion keeps it; a post never seen, or one whose edit we missed, is stored
/// through the merge a sync page uses, the reactions we hold staying as they were.
fn store_deleted<'a>(
    tx: &Connection,
    path: &std::path::Path,
    post: &'a Raw<object::Post>,
    queue: &mut NewPosts<'a>,
    page: &mut PageOutcome,
) -> Result<()> {
    let p = &post.value;
    let held_version: Option<i64> = tx
        .prepare_cached("SELECT edit_at FROM posts WHERE id = ?1")
        .and_then(|mut s| s.query_row([&p.id], |r| r.get(0)).optional())
        .ctx(path, "read post")?;
    if held_version == Some(p.edit_at) {
        return Ok(());
    }
    let reactions = super::posts::current_reactions(tx, path, &p.id)?;
    // The deletion is what this event writes (counted by the caller), not the content.
    let written = page.posts_written;
    upsert_post(tx, path, post, queue, page)?;
    flush(tx, path, queue, page)?;
    page.posts_written = written;
    for (user_id, emoji_name) in reactions {
        tx.prepare_cached(
            "UPDATE reactions SET removed_at = NULL WHERE post_id = ?1 AND user_id = ?2 AND emoji_name = ?3",
        )
        .and_then(|mut st| st.execute(params![p.id, user_id, emoji_name]))
        .ctx(path, "keep reaction")?;
    }
    Ok(())
}

fn has_channel(tx: &Connection, path: &std::path::Path, channel_id: &str) -> Result<bool> {
    tx.prepare_cached("SELECT 1 FROM channels WHERE id = ?1")
        .and_then(|mut s| s.exists([channel_id]))
        .ctx(path, "read channel")
}

fn has_post(tx: &Connection, path: &std::path::Path, post_id: &str) -> Result<bool> {
    tx.prepare_cached("SELECT 1 FROM posts WHERE id = ?1")
        .and_then(|mut s| s.exists([post_id]))
        .ctx(path, "read post")
}

#[cfg(test)]
mod tests {
    use super::MARK_DELETED;
    use crate::catalog::{Access, Catalog};

    /// Every step of the deletion's plan searches an index; none scans `posts`.
    #[test]
    fn marking_a_post_deleted_searches_indexes_only() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap();
        let mut st = catalog
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {MARK_DELETED}"))
            .unwrap();
        let plan: Vec<String> = st
            .query_map(rusqlite::params!["p", 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX posts_root")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{plan:?}"
        );
    }

    #[test]
    fn an_empty_id_marks_nothing_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap();
        let c = &catalog.conn;
        c.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO posts (id, channel_id, root_id, user_id, create_at, update_at, edit_at,
                                delete_at, type, message, seen_live, json)
             VALUES ('root1', 'c', '', 'u', 1, 1, 0, 0, '', 'a root', 1, '{}'),
                    ('reply1', 'c', 'root1', 'u', 2, 2, 0, 0, '', 'a reply', 1, '{}'),
                    ('root2', 'c', '', 'u', 3, 3, 0, 0, '', 'another root', 1, '{}');",
        )
        .unwrap();
        assert_eq!(
            c.execute(MARK_DELETED, rusqlite::params!["", 9]).unwrap(),
            0
        );
        assert_eq!(
            c.execute(MARK_DELETED, rusqlite::params!["root1", 9])
                .unwrap(),
            2
        );
        let left: i64 = c
            .query_row("SELECT count(*) FROM posts WHERE delete_at = 0", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(left, 1);
    }
}
