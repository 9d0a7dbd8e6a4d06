//! Posts new to the catalog, gathered over one transaction and entered into `posts` in one
//! statement. Sync and import both write through it.
//!
//! Why: each statement that writes to `posts` fires `posts_search_insert`, which writes to the
//! FTS5 table, so SQLite opens a statement savepoint around it; FTS5 flushes its pending index
//! to a new segment at every savepoint, and the savepoint journals every page it touches. One
//! row per statement made half of an import's CPU (a profile of 200,000 posts) and held the
//! catalog ingest bench of sync's pages at a sixth of its target; one statement per page pays
//! it once per page. The index comes out the same: the trigger still indexes every row.
//!
//! Invariants: queued rows live in the connection's `temp.new_posts` table, inside the
//! caller's transaction (a rollback drops them with everything else); [`NewPosts::flush`]
//! enters them in queue order, so rowids follow the order one insert per post gave them. A
//! post must not be queued twice: a caller that meets a queued id again flushes first, so the
//! second copy merges into a row like any stored post.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, params};

use super::{Context, Result};
use crate::model::object::{self, Raw};

const NEW_POSTS_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS new_posts (
    id TEXT, channel_id TEXT, root_id TEXT, user_id TEXT, create_at INTEGER, update_at INTEGER,
    edit_at INTEGER, delete_at INTEGER, type TEXT, message TEXT, seen_live INTEGER, json TEXT,
    imported_from TEXT
)";

/// What a queued post's file infos and reactions are written at: file infos before the post
/// rows (their trigger then finds no pending index to flush, and `posts_search_insert`
/// indexes each post with its file names in one go), reactions after (they reference their
/// post).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Files,
    Reactions,
}

/// The posts of the current transaction queued in `temp.new_posts`, not yet in `posts`.
pub(super) struct NewPosts<'a> {
    ids: HashSet<&'a str>,
    /// Posts whose file infos and reactions are written with their rows.
    with_content: Vec<&'a Raw<object::Post>>,
}

/// The columns of a queued post that are not taken from the server's object as it is.
pub(super) struct Row<'s> {
    pub(super) delete_at: i64,
    pub(super) seen_live: bool,
    pub(super) imported_from: Option<&'s str>,
    /// Whether [`NewPosts::flush`] calls back for its file infos and reactions.
    pub(super) has_content: bool,
}

impl<'a> NewPosts<'a> {
    /// An empty queue, its table created in `tx` when this connection has none yet.
    pub(super) fn begin(tx: &Connection, path: &Path) -> Result<Self> {
        tx.execute_batch(NEW_POSTS_TABLE)
            .ctx(path, "create temporary table")?;
        Ok(NewPosts {
            ids: HashSet::new(),
            with_content: Vec::new(),
        })
    }

    pub(super) fn contains(&self, post_id: &str) -> bool {
        self.ids.contains(post_id)
    }

    pub(super) fn queue(
        &mut self,
        tx: &Connection,
        path: &Path,
        post: &'a Raw<object::Post>,
        row: Row<'_>,
    ) -> Result<()> {
        let p = &post.value;
        tx.prepare_cached(
            "INSERT INTO temp.new_posts (id, channel_id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, seen_live, json, imported_from)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .and_then(|mut st| {
            st.execute(params![
                p.id, p.channel_id, p.root_id, p.user_id, p.create_at, p.update_at, p.edit_at, row.delete_at, p.kind, p.message, row.seen_live, post.json(), row.imported_from
            ])
        })
        .ctx(path, "queue new post")?;
        self.ids.insert(&p.id);
        if row.has_content {
            self.with_content.push(post);
        }
        Ok(())
    }

    /// Moves the queued posts into `posts`, calling `content` for each one's file infos
    /// (before) and reactions (after).
    pub(super) fn flush(
        &mut self,
        tx: &Connection,
        path: &Path,
        mut content: impl FnMut(Stage, &Raw<object::Post>) -> Result<()>,
    ) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        for post in &self.with_content {
            content(Stage::Files, post)?;
        }
        tx.prepare_cached(
            "INSERT INTO posts (id, channel_id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, seen_live, json, imported_from)
             SELECT id, channel_id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, seen_live, json, imported_from
             FROM temp.new_posts ORDER BY rowid",
        )
        .and_then(|mut st| st.execute([]))
        .ctx(path, "insert new posts")?;
        tx.prepare_cached("DELETE FROM temp.new_posts")
            .and_then(|mut st| st.execute([]))
            .ctx(path, "insert new posts")?;
        for post in self.with_content.drain(..) {
            content(Stage::Reactions, post)?;
        }
        self.ids.clear();
        Ok(())
    }
}
