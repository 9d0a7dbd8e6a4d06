//! Reads for the website's build of a channel that never holds the channel's content: the
//! light rows its pages are planned from ([`PostOutline`]: ids, times, sizes, no text), the
//! full rows of a few posts (one page's) with their files, reactions and versions, and the
//! texts that may hold permalinks (`…/pl/<id>`). Memory then follows one page, not one
//! channel: a channel of 200,000 posts carries 150 MB of post JSON. Each read is one fixed
//! query; ids go in as one JSON array (`json_each`), so a page costs four queries. Imports
//! `model`'s ids and the catalog's own records and helpers.

use rusqlite::params;

use super::read::{FileRecord, PostRecord, ReactionRecord, VersionRecord};
use super::{Catalog, Context, Result};
use crate::model::{ChannelId, PostId};

/// What a page plan needs of a post seen alive: where it goes (its thread and time) and how
/// big it is, without its text or JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostOutline {
    pub id: PostId,
    /// `''` for a root post.
    pub root_id: PostId,
    pub create_at: i64,
    /// 0 = not deleted.
    pub delete_at: i64,
    /// The current message's length in bytes (UTF-8).
    pub message_bytes: usize,
    /// The post has at least one attachment.
    pub has_files: bool,
}

/// Some posts with their rows: each post's attachments (by file id), current reactions (by
/// post, then time) and earlier versions (by post, oldest first).
#[derive(Debug, Clone, Default)]
pub struct PostsContent {
    /// Oldest first, then by id.
    pub posts: Vec<PostRecord>,
    pub files: Vec<FileRecord>,
    pub reactions: Vec<ReactionRecord>,
    pub versions: Vec<VersionRecord>,
}

impl Catalog {
    /// The outlines of a channel's posts seen alive, oldest first, then by id (the order of
    /// [`Catalog::load_posts`]). Reads no message nor JSON (`octet_length` takes the size
    /// from the row's header).
    pub fn load_post_outlines(&self, channel_id: &ChannelId) -> Result<Vec<PostOutline>> {
        self.channel_rows(
            "SELECT id, root_id, create_at, delete_at, octet_length(message),
                    EXISTS (SELECT 1 FROM files f WHERE f.post_id = posts.id)
             FROM posts WHERE channel_id = ?1 AND seen_live = 1 ORDER BY create_at, id",
            channel_id,
            "read post outlines",
            |r| {
                Ok(PostOutline {
                    id: r.get(0)?,
                    root_id: r.get(1)?,
                    create_at: r.get(2)?,
                    delete_at: r.get(3)?,
                    message_bytes: r.get::<_, i64>(4)?.max(0) as usize,
                    has_files: r.get(5)?,
                })
            },
        )
    }

    /// The posts of `ids` (those the catalog has), with their attachments, current
    /// reactions and earlier versions.
    pub fn load_posts_content(&self, ids: &[&PostId]) -> Result<PostsContent> {
        let action = "read posts by id";
        let list = serde_json::to_string(ids).expect("ids serialize");
        let list: &dyn rusqlite::ToSql = &list;
        Ok(PostsContent {
            posts: self.rows(
                "SELECT id, root_id, user_id, create_at, update_at, edit_at, delete_at, seen_live, type, message, json
                 FROM posts WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY create_at, id",
                list,
                action,
                super::read::post_record,
            )?,
            files: self.rows(
                "SELECT id, post_id, name, size, mime_type, create_at, json, blob FROM files
                 WHERE post_id IN (SELECT value FROM json_each(?1)) ORDER BY id",
                list,
                action,
                super::read::file_record,
            )?,
            reactions: self.rows(
                "SELECT post_id, user_id, emoji_name, create_at FROM reactions
                 WHERE post_id IN (SELECT value FROM json_each(?1)) AND removed_at IS NULL
                 ORDER BY post_id, create_at, user_id, emoji_name",
                list,
                action,
                super::read::reaction_record,
            )?,
            versions: self.rows(
                "SELECT post_id, replaced_at, message FROM post_versions
                 WHERE post_id IN (SELECT value FROM json_each(?1)) ORDER BY post_id, replaced_at",
                list,
                action,
                super::read::version_record,
            )?,
        })
    }

    /// Every stored text holding `needle` that the website renders or scans for permalinks:
    /// posts' messages and JSON (a post's two texts when either holds it: one pass over the
    /// table), earlier versions' messages, channels' JSON (for the header). Texts without
    /// it are not read into Rust.
    pub fn load_texts_holding<E: From<super::CatalogError>>(
        &self,
        needle: &str,
        mut each: impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), E> {
        let action = "read texts";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT message, json FROM posts WHERE instr(message, ?1) > 0 OR instr(json, ?1) > 0
                 UNION ALL SELECT message, '' FROM post_versions
                     WHERE message IS NOT NULL AND instr(message, ?1) > 0
                 UNION ALL SELECT json, '' FROM channels WHERE instr(json, ?1) > 0",
            )
            .ctx(&self.path, action)?;
        let mut rows = stmt.query(params![needle]).ctx(&self.path, action)?;
        while let Some(row) = rows.next().ctx(&self.path, action)? {
            for column in 0..2 {
                let text: String = row.get(column).ctx(&self.path, action)?;
                each(&text)?;
            }
        }
        Ok(())
    }
}
