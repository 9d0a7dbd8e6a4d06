//! Reads for the offline website (`export --format html`): channels with their counts, posts
//! of a channel in time order with the columns a page needs, and the files, reactions, earlier
//! versions and members that go with them. Each read is one fixed query; callers group rows
//! per channel, so memory is bounded by the largest channel, never by the archive. A rebuild
//! first asks [`Catalog::site_fingerprints`] which channels changed at all, an aggregate that
//! reads no post text, so an unchanged channel's posts are never read.

use std::collections::HashMap;

use super::{Catalog, Context, Result};
use crate::model::BlobId;

/// A channel as the website lists it.
#[derive(Debug, Clone)]
pub struct SiteChannel {
    pub id: String,
    pub team_id: String,
    pub kind: String,
    pub name: String,
    pub display_name: String,
    /// > 0: archived on the server.
    pub delete_at: i64,
    /// Direct: the other username; group: the other usernames joined by `__`.
    pub export_name: Option<String>,
    pub json: String,
    /// Posts with content (seen alive), deleted ones included.
    pub posts: u64,
    /// `create_at` of the first and last such post (ms); 0 when there is none.
    pub first_at: i64,
    pub last_at: i64,
}

/// A post with the columns a page shows. Posts first seen already deleted (the server sent a
/// blanked row) have no content and are never read here.
#[derive(Debug, Clone)]
pub struct SitePost {
    pub id: String,
    pub root_id: String,
    pub user_id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub edit_at: i64,
    pub delete_at: i64,
    /// '' for normal posts, `system_*` for system messages.
    pub kind: String,
    pub message: String,
    pub json: String,
}

/// An attachment of a post.
#[derive(Debug, Clone)]
pub struct SiteFile {
    pub id: String,
    pub post_id: String,
    pub name: String,
    pub size: i64,
    pub mime_type: String,
    pub blob: Option<BlobId>,
}

/// A reaction still present on the server.
#[derive(Debug, Clone)]
pub struct SiteReaction {
    pub post_id: String,
    pub user_id: String,
    pub emoji_name: String,
}

/// An earlier version of an edited post whose text we kept.
#[derive(Debug, Clone)]
pub struct SiteVersion {
    pub post_id: String,
    /// When this version stopped being current (ms).
    pub replaced_at: i64,
    pub message: String,
}

impl Catalog {
    /// Archived channels with post counts and first/last post times, by team, type, name.
    pub fn site_channels(&self) -> Result<Vec<SiteChannel>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.team_id, c.type, c.name, c.display_name, c.delete_at, c.export_name, c.json,
                        count(p.id), coalesce(min(p.create_at), 0), coalesce(max(p.create_at), 0)
                 FROM channels c LEFT JOIN posts p ON p.channel_id = c.id AND p.seen_live = 1
                 WHERE c.selected = 1
                 GROUP BY c.id ORDER BY c.team_id, c.type, c.name, c.id",
            )
            .ctx(&self.path, "list channels")?;
        stmt.query_map([], |r| {
            Ok(SiteChannel {
                id: r.get(0)?,
                team_id: r.get(1)?,
                kind: r.get(2)?,
                name: r.get(3)?,
                display_name: r.get(4)?,
                delete_at: r.get(5)?,
                export_name: r.get(6)?,
                json: r.get(7)?,
                posts: r.get::<_, i64>(8)? as u64,
                first_at: r.get(9)?,
                last_at: r.get(10)?,
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "list channels")
    }

    /// Posts of a channel with content (seen alive; deleted ones included), oldest first.
    pub fn site_posts(&self, channel_id: &str) -> Result<Vec<SitePost>> {
        self.channel_rows(
            "SELECT id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, json
             FROM posts WHERE channel_id = ?1 AND seen_live = 1 ORDER BY create_at, id",
            channel_id,
            "read posts",
            |r| {
                Ok(SitePost {
                    id: r.get(0)?,
                    root_id: r.get(1)?,
                    user_id: r.get(2)?,
                    create_at: r.get(3)?,
                    update_at: r.get(4)?,
                    edit_at: r.get(5)?,
                    delete_at: r.get(6)?,
                    kind: r.get(7)?,
                    message: r.get(8)?,
                    json: r.get(9)?,
                })
            },
        )
    }

    /// Attachments of a channel's posts, by post then file id.
    pub fn site_files(&self, channel_id: &str) -> Result<Vec<SiteFile>> {
        self.channel_rows(
            "SELECT id, post_id, name, size, mime_type, blob FROM files WHERE channel_id = ?1 ORDER BY post_id, create_at, id",
            channel_id,
            "read files",
            |r| {
                let blob: Option<String> = r.get(5)?;
                Ok(SiteFile {
                    id: r.get(0)?,
                    post_id: r.get(1)?,
                    name: r.get(2)?,
                    size: r.get(3)?,
                    mime_type: r.get(4)?,
                    blob: blob.as_deref().and_then(BlobId::parse),
                })
            },
        )
    }

    /// Present reactions on a channel's posts, by post, then in the order they were made.
    pub fn site_reactions(&self, channel_id: &str) -> Result<Vec<SiteReaction>> {
        self.channel_rows(
            "SELECT r.post_id, r.user_id, r.emoji_name FROM reactions r JOIN posts p ON p.id = r.post_id
             WHERE p.channel_id = ?1 AND r.removed_at IS NULL ORDER BY r.post_id, r.create_at, r.user_id",
            channel_id,
            "read reactions",
            |r| {
                Ok(SiteReaction {
                    post_id: r.get(0)?,
                    user_id: r.get(1)?,
                    emoji_name: r.get(2)?,
                })
            },
        )
    }

    /// Earlier versions (with known text) of a channel's edited posts, oldest first.
    pub fn site_versions(&self, channel_id: &str) -> Result<Vec<SiteVersion>> {
        self.channel_rows(
            "SELECT v.post_id, v.replaced_at, v.message FROM post_versions v JOIN posts p ON p.id = v.post_id
             WHERE p.channel_id = ?1 AND v.message IS NOT NULL ORDER BY v.post_id, v.replaced_at",
            channel_id,
            "read versions",
            |r| {
                Ok(SiteVersion {
                    post_id: r.get(0)?,
                    replaced_at: r.get(1)?,
                    message: r.get(2)?,
                })
            },
        )
    }

    /// User ids of a channel's current members, in the server's order.
    pub fn site_members(&self, channel_id: &str) -> Result<Vec<String>> {
        self.channel_rows(
            "SELECT user_id FROM channel_members WHERE channel_id = ?1 AND removed_at IS NULL ORDER BY position, user_id",
            channel_id,
            "read members",
            |r| r.get(0),
        )
    }
}

/// Sums of a channel's rows that change whenever a row its pages show changes (see
/// [`Catalog::site_fingerprints`]).
pub type SiteFingerprint = Vec<i64>;

impl Catalog {
    /// Per channel, aggregates over every row its pages are made of: posts (all of them, so
    /// a post filled in by an import counts), attachments, reactions and earlier versions.
    /// Sync and import only rewrite a post's content together with a higher `update_at` or
    /// `seen_live` going to 1, mark a reaction removed by setting `removed_at`, fill a version's
    /// text or move it, and fetch a file's bytes by setting `blob`; each of these moves a
    /// count or a sum here, and the byte lengths of the texts catch an edit that keeps its
    /// times. Times are summed modulo 2^32 so a sum cannot overflow. One scan of the posts
    /// (without reading their text: `octet_length` takes the size from the record header),
    /// files, reactions and versions; no row content reaches Rust.
    pub fn site_fingerprints(&self) -> Result<HashMap<String, SiteFingerprint>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT channel_id, 1, count(*), sum(seen_live), max(update_at), sum(create_at & 4294967295),
                        sum(update_at & 4294967295), sum(edit_at & 4294967295), sum(delete_at & 4294967295),
                        sum(octet_length(message)), sum(octet_length(json)), sum(octet_length(root_id) + octet_length(user_id) + octet_length(type))
                 FROM posts GROUP BY channel_id
                 UNION ALL
                 SELECT channel_id, 2, count(*), count(blob), sum(size & 4294967295), sum(create_at & 4294967295),
                        sum(octet_length(name)), sum(octet_length(mime_type)), sum(octet_length(post_id)), 0, 0, 0
                 FROM files GROUP BY channel_id
                 UNION ALL
                 SELECT p.channel_id, 3, count(*), count(r.removed_at), sum(r.create_at & 4294967295),
                        sum(coalesce(r.removed_at, 0) & 4294967295), sum(octet_length(r.emoji_name) + octet_length(r.user_id)), 0, 0, 0, 0, 0
                 FROM reactions r CROSS JOIN posts p ON p.id = r.post_id GROUP BY p.channel_id
                 UNION ALL
                 SELECT p.channel_id, 4, count(*), count(v.message), sum(v.replaced_at & 4294967295),
                        sum(coalesce(octet_length(v.message), 0)), 0, 0, 0, 0, 0, 0
                 FROM post_versions v CROSS JOIN posts p ON p.id = v.post_id GROUP BY p.channel_id",
            )
            .ctx(&self.path, "sum channel rows")?;
        let mut out: HashMap<String, SiteFingerprint> = HashMap::new();
        let rows = stmt
            .query_map([], |r| {
                let mut sums = Vec::with_capacity(11);
                for i in 1..12 {
                    sums.push(r.get::<_, Option<i64>>(i)?.unwrap_or(0));
                }
                Ok((r.get::<_, String>(0)?, sums))
            })
            .ctx(&self.path, "sum channel rows")?;
        for row in rows {
            let (channel, sums) = row.ctx(&self.path, "sum channel rows")?;
            out.entry(channel).or_default().extend(sums);
        }
        Ok(out)
    }

    /// Visible posts per author over the selected channels (what user pages count).
    pub fn site_post_counts(&self, hide_deleted: bool) -> Result<HashMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.user_id, count(*) FROM posts p JOIN channels c ON c.id = p.channel_id
                 WHERE c.selected = 1 AND p.seen_live = 1 AND (?1 = 0 OR p.delete_at = 0) GROUP BY p.user_id",
            )
            .ctx(&self.path, "count posts by author")?;
        stmt.query_map([hide_deleted], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "count posts by author")
    }
}
