//! Aggregates over a channel's rows: how many posts each channel has and when the first and
//! last were written, sums that change whenever a row a channel's pages show changes (so a
//! website rebuild reads no post of an unchanged channel), posts per author, and who took
//! part in a channel. Each is one fixed query; no post content reaches Rust. Imports
//! `model`'s ids and the catalog's own helpers.

use std::collections::HashMap;

use crate::model::{ChannelId, UserId};

use super::{Catalog, Context, Result};

/// A channel's posts with content (seen alive, deleted ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostSpan {
    pub posts: u64,
    /// `create_at` of the first and last such post (ms); 0 when there is none.
    pub first_at: i64,
    pub last_at: i64,
}

impl Catalog {
    /// Per channel that has posts seen alive: their count and first and last times.
    pub fn load_post_spans(&self) -> Result<HashMap<ChannelId, PostSpan>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT channel_id, count(*), min(create_at), max(create_at) FROM posts
                 WHERE seen_live = 1 GROUP BY channel_id",
            )
            .ctx(&self.path, "count posts by channel")?;
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, ChannelId>(0)?,
                PostSpan {
                    posts: r.get::<_, i64>(1)? as u64,
                    first_at: r.get(2)?,
                    last_at: r.get(3)?,
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "count posts by channel")
    }
}

/// Sums of a channel's rows that change whenever a row its pages show changes (see
/// [`Catalog::load_channel_sums`]).
pub type ChannelSums = Vec<i64>;

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
    pub fn load_channel_sums(&self) -> Result<HashMap<ChannelId, ChannelSums>> {
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
        let mut out: HashMap<ChannelId, ChannelSums> = HashMap::new();
        let rows = stmt
            .query_map([], |r| {
                let mut sums = Vec::with_capacity(11);
                for i in 1..12 {
                    sums.push(r.get::<_, Option<i64>>(i)?.unwrap_or(0));
                }
                Ok((r.get::<_, ChannelId>(0)?, sums))
            })
            .ctx(&self.path, "sum channel rows")?;
        for row in rows {
            let (channel, sums) = row.ctx(&self.path, "sum channel rows")?;
            out.entry(channel).or_default().extend(sums);
        }
        Ok(out)
    }

    /// Users who wrote a post of a channel that is still there, or reacted to one
    /// (current reactions), by id.
    pub fn load_participants(&self, channel_id: &ChannelId) -> Result<Vec<UserId>> {
        self.channel_rows(
            "SELECT user_id FROM posts WHERE channel_id = ?1 AND seen_live = 1 AND delete_at = 0
             UNION
             SELECT r.user_id FROM reactions r JOIN posts p ON p.id = r.post_id
             WHERE p.channel_id = ?1 AND p.seen_live = 1 AND p.delete_at = 0 AND r.removed_at IS NULL
             ORDER BY 1",
            channel_id,
            "read participants",
            |r| r.get(0),
        )
    }

    /// Visible posts per author over the selected channels (what user pages count).
    pub fn load_post_counts_by_author(&self, hide_deleted: bool) -> Result<HashMap<UserId, u64>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.user_id, count(*) FROM posts p JOIN channels c ON c.id = p.channel_id
                 WHERE c.selected = 1 AND p.seen_live = 1 AND (?1 = 0 OR p.delete_at = 0) GROUP BY p.user_id",
            )
            .ctx(&self.path, "count posts by author")?;
        stmt.query_map([hide_deleted], |r| {
            Ok((r.get::<_, UserId>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "count posts by author")
    }
}
