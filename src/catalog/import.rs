//! Writes for `matterbak import`: objects read from a backup merged into the catalog beside
//! what syncs stored. The rules, which make an import idempotent and several backups give the
//! same catalog in any order:
//! - an object the catalog already holds is replaced only by a strictly newer `update_at`
//!   (teams, channels, users, emojis); members, file infos and reactions the catalog lacks are
//!   added, never changed, and never revived once a sync marked them removed;
//! - a post the catalog lacks is inserted with `imported_from` naming the backup file; one it
//!   holds keeps the newer version by `update_at` and the other goes to `post_versions`, keyed
//!   like sync's own versions (by the `edit_at` of the version that replaced it);
//! - a blob is committed by the caller before the row that names it, and an image or file
//!   that already has bytes keeps them.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::new_posts::{self, NewPosts, Stage};
use super::posts::load_stored;
use super::{Catalog, Context, Result};
use crate::model::object::{self, Raw};
use crate::model::{BlobRef, ChannelId, FileId, PostId, TeamId};

/// What importing one page of posts did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Posts the catalog did not hold.
    pub posts_added: u64,
    /// Posts whose content changed: a newer version, or the content of a post the catalog
    /// only knew deleted (blanked).
    pub posts_updated: u64,
    /// Earlier versions added to `post_versions`.
    pub versions_added: u64,
}

/// A post of a backup and where it came from (`<backup>:<path inside it>`).
pub struct ImportedPost<'a> {
    pub post: &'a Raw<object::Post>,
    pub source: &'a str,
}

impl Catalog {
    /// Begins a run record for an import of `source` (a backup directory or zip).
    pub fn begin_import_run(
        &mut self,
        started_at: i64,
        tool_version: &str,
        source: &str,
    ) -> Result<i64> {
        // An import writes pages of thousands of posts per transaction. SQLite's default page
        // cache (2 MB) spilled such a page's changes to the WAL mid-transaction and read them
        // back, and its default checkpoint every 1,000 WAL pages ran after nearly every
        // commit; 32 MB each keep a page in memory and checkpoint a few pages at once. Both
        // are settings of this connection only (the `import` command's), and neither changes
        // what a commit guarantees.
        self.conn
            .execute_batch("PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 8192;")
            .ctx(&self.path, "configure for import")?;
        self.conn
            .execute(
                "INSERT INTO sync_runs (started_at, tool_version, source) VALUES (?1, ?2, ?3)",
                params![started_at, tool_version, source],
            )
            .ctx(&self.path, "record import run")?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn import_users(&mut self, users: &[Raw<object::User>]) -> Result<u64> {
        self.import_rows(
            "INSERT INTO users (id, username, update_at, delete_at, is_bot, last_picture_update, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET username = excluded.username, update_at = excluded.update_at,
                delete_at = excluded.delete_at, is_bot = excluded.is_bot,
                last_picture_update = excluded.last_picture_update, json = excluded.json
             WHERE excluded.update_at > users.update_at",
            users,
            super::execute_user,
        )
    }

    /// Teams of a backup were archived there, so they are selected here (whichever version
    /// of the team is newer).
    pub fn import_team(&mut self, team: &Raw<object::Team>) -> Result<u64> {
        let t = &team.value;
        let changed = self
            .conn
            .prepare_cached(
                "INSERT INTO teams (id, name, display_name, update_at, delete_at, last_team_icon_update, json, selected)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, display_name = excluded.display_name,
                    update_at = excluded.update_at, delete_at = excluded.delete_at,
                    last_team_icon_update = excluded.last_team_icon_update, json = excluded.json
                 WHERE excluded.update_at > teams.update_at",
            )
            .and_then(|mut s| {
                s.execute(params![t.id, t.name, t.display_name, t.update_at, t.delete_at, t.last_team_icon_update, team.json()])
            })
            .ctx(&self.path, "import team")?;
        let selected = self
            .conn
            .prepare_cached("UPDATE teams SET selected = 1 WHERE id = ?1 AND selected = 0")
            .and_then(|mut s| s.execute([&t.id]))
            .ctx(&self.path, "import team")?;
        Ok((changed + selected) as u64)
    }

    /// Channels of a backup were archived there, so they are selected here (whichever
    /// version is newer). `export_name` is the backup's name for a direct or group channel
    /// (other usernames); a name the catalog already holds wins, since a sync derived it
    /// from the server.
    pub fn import_channel(
        &mut self,
        channel: &Raw<object::Channel>,
        export_name: Option<&str>,
    ) -> Result<u64> {
        let c = &channel.value;
        let changed = self
            .conn
            .prepare_cached(
                "INSERT INTO channels (id, team_id, type, name, display_name, update_at, delete_at, json, selected, export_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9)
                 ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, type = excluded.type, name = excluded.name,
                    display_name = excluded.display_name, update_at = excluded.update_at, delete_at = excluded.delete_at,
                    json = excluded.json
                 WHERE excluded.update_at > channels.update_at",
            )
            .and_then(|mut s| {
                s.execute(params![c.id, c.team_id, c.kind, c.name, c.display_name, c.update_at, c.delete_at, channel.json(), export_name])
            })
            .ctx(&self.path, "import channel")?;
        let selected = self
            .conn
            .prepare_cached(
                "UPDATE channels SET selected = 1, export_name = coalesce(export_name, ?2)
                 WHERE id = ?1 AND (selected = 0 OR export_name IS NULL AND ?2 IS NOT NULL)",
            )
            .and_then(|mut s| s.execute(params![c.id, export_name]))
            .ctx(&self.path, "import channel")?;
        Ok((changed + selected) as u64)
    }

    /// Adds the members of a backup's list that the catalog lacks, after the ones it has.
    pub fn import_team_members(
        &mut self,
        team_id: &TeamId,
        members: &[Raw<object::TeamMember>],
    ) -> Result<u64> {
        self.import_members(
            "INSERT INTO team_members (team_id, user_id, position, json)
             VALUES (?1, ?2, (SELECT count(*) FROM team_members WHERE team_id = ?1), ?3)
             ON CONFLICT (team_id, user_id) DO NOTHING",
            team_id,
            members.iter().map(|m| (m.value.user_id.as_str(), m.json())),
        )
    }

    pub fn import_channel_members(
        &mut self,
        channel_id: &ChannelId,
        members: &[Raw<object::ChannelMember>],
    ) -> Result<u64> {
        self.import_members(
            "INSERT INTO channel_members (channel_id, user_id, position, json)
             VALUES (?1, ?2, (SELECT count(*) FROM channel_members WHERE channel_id = ?1), ?3)
             ON CONFLICT (channel_id, user_id) DO NOTHING",
            channel_id,
            members.iter().map(|m| (m.value.user_id.as_str(), m.json())),
        )
    }

    fn import_members<'a>(
        &mut self,
        sql: &'static str,
        owner: &str,
        members: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<u64> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        let mut added = 0;
        {
            let mut stmt = tx.prepare_cached(sql).ctx(&self.path, "import members")?;
            for (user_id, json) in members {
                added += stmt
                    .execute(params![owner, user_id, json])
                    .ctx(&self.path, "import member")? as u64;
            }
        }
        tx.commit().ctx(&self.path, "commit members")?;
        Ok(added)
    }

    pub fn import_emoji(&mut self, emoji: &Raw<object::Emoji>) -> Result<u64> {
        self.import_rows(
            "INSERT INTO emojis (id, name, creator_id, create_at, update_at, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, creator_id = excluded.creator_id,
                create_at = excluded.create_at, update_at = excluded.update_at, json = excluded.json
             WHERE excluded.update_at > emojis.update_at",
            std::slice::from_ref(emoji),
            super::execute_emoji,
        )
    }

    fn import_rows<T>(
        &mut self,
        sql: &'static str,
        rows: &[T],
        mut execute: impl FnMut(&mut rusqlite::CachedStatement<'_>, &T) -> rusqlite::Result<usize>,
    ) -> Result<u64> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        let mut changed = 0;
        {
            let mut stmt = tx.prepare_cached(sql).ctx(&self.path, "import")?;
            for row in rows {
                changed += execute(&mut stmt, row).ctx(&self.path, "import")? as u64;
            }
        }
        tx.commit().ctx(&self.path, "commit import")?;
        Ok(changed)
    }

    /// Whether the catalog holds a channel (a backup's posts need their channel's row).
    pub fn has_channel(&self, channel_id: &ChannelId) -> Result<bool> {
        Ok(self
            .exists_with(
                "SELECT 1 FROM channels WHERE id = ?1",
                channel_id,
                "read channel",
            )?
            .is_some())
    }

    /// Merges a page of a backup's posts of one channel, in one transaction. A post the
    /// catalog lacks although a sync walked the whole channel (its watermark is at or after
    /// the post's `create_at`) was gone from the server by then: it is stored deleted, with
    /// the watermark as `delete_at` (the true deletion time is unknown).
    pub fn import_posts(
        &mut self,
        channel_id: &ChannelId,
        posts: &[ImportedPost<'_>],
    ) -> Result<ImportOutcome> {
        let path = self.path.clone();
        let tx = self.conn.transaction().ctx(&path, "begin")?;
        let watermark: Option<i64> = tx
            .query_row(
                "SELECT watermark FROM sync_cursors WHERE channel_id = ?1",
                [channel_id],
                |r| r.get(0),
            )
            .optional()
            .ctx(&path, "read sync cursor")?
            .flatten();
        let mut outcome = ImportOutcome::default();
        let mut new_posts = NewPosts::begin(&tx, &path)?;
        // Files and reactions of the new posts: the catalog lacks all of them.
        let content = |stage, post: &Raw<object::Post>| match stage {
            Stage::Files => store_files(&tx, &path, post),
            Stage::Reactions => store_reactions(&tx, &path, post, None),
        };
        for imported in posts {
            if new_posts.contains(&imported.post.value.id) {
                // The same post twice in a page (a damaged or hand-made backup): the second
                // copy merges into the first, which must be a row for that.
                new_posts.flush(&tx, &path, content)?;
            }
            import_post(
                &tx,
                &path,
                imported,
                watermark,
                &mut new_posts,
                &mut outcome,
            )?;
        }
        new_posts.flush(&tx, &path, content)?;
        tx.commit().ctx(&path, "commit imported posts")?;
        Ok(outcome)
    }

    /// Whether a file's bytes are archived already (then a backup's copy costs nothing, and
    /// a download queued twice is not fetched again), and the size its file info states;
    /// None when the catalog has no info for the file.
    pub fn file_blob_state(&self, file_id: &FileId) -> Result<Option<(bool, i64)>> {
        self.conn
            .prepare_cached("SELECT blob IS NOT NULL, size FROM files WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([file_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx(&self.path, "read file")
    }

    /// Stores a file info the catalog lacks; returns whether it was new.
    pub fn import_file_info(&mut self, info: &Raw<object::FileInfo>) -> Result<bool> {
        insert_file_info(&self.conn, &self.path, info)
    }

    /// Points a file without bytes at a committed blob; a file that has bytes keeps them.
    pub fn import_file_blob(&mut self, file_id: &FileId, blob: &BlobRef, now: i64) -> Result<bool> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        Self::insert_blob(&tx, &self.path, blob, now)?;
        let set = tx
            .execute(
                "UPDATE files SET blob = ?2, fetch_error = NULL WHERE id = ?1 AND blob IS NULL",
                params![file_id, blob.id.as_str()],
            )
            .ctx(&self.path, "import file bytes")?;
        tx.commit().ctx(&self.path, "commit file")?;
        Ok(set > 0)
    }

    /// Whether an image owner lacks its image (a backup's image is then taken); None when
    /// the owner is not in the catalog.
    pub fn lacks_image(&self, owner: super::ImageOwner, id: &str) -> Result<Option<bool>> {
        let sql = match owner {
            super::ImageOwner::User => "SELECT avatar_blob IS NULL FROM users WHERE id = ?1",
            super::ImageOwner::Team => "SELECT icon_blob IS NULL FROM teams WHERE id = ?1",
            super::ImageOwner::Emoji => "SELECT image_blob IS NULL FROM emojis WHERE id = ?1",
        };
        self.exists_with(sql, id, "read image state")
    }

    fn exists_with(
        &self,
        sql: &'static str,
        id: &str,
        action: &'static str,
    ) -> Result<Option<bool>> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .ctx(&self.path, action)
    }

    pub fn has_team(&self, team_id: &TeamId) -> Result<bool> {
        Ok(self
            .exists_with("SELECT 1 FROM teams WHERE id = ?1", team_id, "read team")?
            .is_some())
    }

    pub fn has_post(&self, post_id: &PostId) -> Result<bool> {
        Ok(self
            .exists_with("SELECT 1 FROM posts WHERE id = ?1", post_id, "read post")?
            .is_some())
    }

    /// Posts whose row an import created (see `posts.imported_from`).
    pub fn imported_post_count(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM posts WHERE imported_from IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .ctx(&self.path, "count imported posts")
    }
}

fn import_post<'a>(
    tx: &Connection,
    path: &Path,
    imported: &ImportedPost<'a>,
    watermark: Option<i64>,
    new_posts: &mut NewPosts<'a>,
    outcome: &mut ImportOutcome,
) -> Result<()> {
    let post = imported.post;
    let p = &post.value;
    if !p.original_id.is_empty() {
        return Ok(()); // a server history row: backups hold none, and it has no content
    }
    let stored = load_stored(tx, path, &p.id)?;
    let has_content = p.delete_at == 0 || !p.message.is_empty();
    if stored.is_some() {
        // Of several backups holding a post, the first by name is named, whatever the order
        // they were imported in.
        tx.prepare_cached(
            "UPDATE posts SET imported_from = ?2 WHERE id = ?1 AND imported_from > ?2",
        )
        .and_then(|mut st| st.execute(params![p.id, imported.source]))
        .ctx(path, "import post")?;
    }
    let reactions_removed_at = match &stored {
        None => {
            let delete_at = match watermark {
                Some(w) if p.delete_at == 0 && p.create_at <= w => w,
                _ => p.delete_at,
            };
            let row = new_posts::Row {
                delete_at,
                seen_live: has_content,
                imported_from: Some(imported.source),
                has_content,
            };
            new_posts.queue(tx, path, post, row)?;
            outcome.posts_added += 1;
            return Ok(()); // its files and reactions follow the row (see NewPosts)
        }
        Some(s) if has_content && (!s.seen_live || p.update_at > s.update_at) => {
            if s.seen_live && s.edit_at != p.edit_at {
                // The catalog's content becomes an earlier version, as a sync would keep it.
                outcome.versions_added +=
                    store_version(tx, path, &p.id, p.edit_at, s.edit_at, &s.message, &s.json)?;
            }
            tx.prepare_cached(
                "UPDATE posts SET root_id = ?2, user_id = ?3, update_at = max(update_at, ?4), edit_at = ?5, type = ?6,
                    message = ?7, json = ?8, imported_from = CASE WHEN seen_live = 0 THEN coalesce(imported_from, ?9) ELSE imported_from END,
                    seen_live = 1
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![p.id, p.root_id, p.user_id, p.update_at, p.edit_at, p.kind, p.message, post.json(), imported.source])
            })
            .ctx(path, "import post")?;
            outcome.posts_updated += 1;
            None
        }
        Some(s) if has_content && p.update_at < s.update_at => {
            if p.edit_at < s.edit_at {
                outcome.versions_added += import_older_version(tx, path, post, s.edit_at)?;
            }
            // Reactions of an older version that the catalog never saw were gone by the
            // newer one.
            Some(s.update_at)
        }
        Some(_) => None,
    };
    if has_content {
        store_files_and_reactions(tx, path, post, reactions_removed_at)?;
    }
    Ok(())
}

/// Stores a version of a post older than the catalog's. Its key is the `edit_at` of its
/// successor: the smallest edit time known for the post above its own. A version stored
/// earlier under that key that turns out older than this one moves to this one's key, so
/// the chain comes out the same in whatever order backups arrive.
fn import_older_version(
    tx: &Connection,
    path: &Path,
    post: &Raw<object::Post>,
    current_edit_at: i64,
) -> Result<u64> {
    let p = &post.value;
    type Row = (i64, Option<i64>, Option<String>);
    let rows: Vec<Row> = tx
        .prepare_cached(
            "SELECT replaced_at, edit_at, message FROM post_versions WHERE post_id = ?1",
        )
        .and_then(|mut s| {
            s.query_map([&p.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .ctx(path, "read post versions")?;
    if rows
        .iter()
        .any(|(_, edit_at, message)| *edit_at == Some(p.edit_at) && message.is_some())
    {
        return Ok(0); // this version is known already
    }
    let successor = rows
        .iter()
        .flat_map(|(replaced_at, edit_at, _)| [Some(*replaced_at), *edit_at])
        .flatten()
        .chain([current_edit_at])
        .filter(|t| *t > p.edit_at)
        .min()
        .unwrap_or(current_edit_at);
    if let Some((_, Some(older), Some(_))) = rows.iter().find(|(key, _, _)| *key == successor)
        && *older < p.edit_at
    {
        tx.prepare_cached(
            "UPDATE post_versions SET replaced_at = ?3 WHERE post_id = ?1 AND replaced_at = ?2",
        )
        .and_then(|mut st| st.execute(params![p.id, successor, p.edit_at]))
        .ctx(path, "move post version")?;
    }
    store_version(
        tx,
        path,
        &p.id,
        successor,
        p.edit_at,
        &p.message,
        post.json(),
    )
}

/// Stores a version's content under its key, filling a row that only the server's blanked
/// history row made (content unknown); a row with content keeps it.
fn store_version(
    tx: &Connection,
    path: &Path,
    post_id: &str,
    replaced_at: i64,
    edit_at: i64,
    message: &str,
    json: &str,
) -> Result<u64> {
    tx.prepare_cached(
        "INSERT INTO post_versions (post_id, replaced_at, edit_at, message, json) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (post_id, replaced_at) DO UPDATE SET edit_at = excluded.edit_at, message = excluded.message, json = excluded.json
         WHERE post_versions.message IS NULL",
    )
    .and_then(|mut st| st.execute(params![post_id, replaced_at, edit_at, message, json]))
    .map(|n| n as u64)
    .ctx(path, "store post version")
}

fn insert_file_info(conn: &Connection, path: &Path, info: &Raw<object::FileInfo>) -> Result<bool> {
    let f = &info.value;
    conn.prepare_cached(
        "INSERT INTO files (id, post_id, channel_id, user_id, name, extension, size, mime_type, create_at, json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut st| {
        st.execute(params![f.id, f.post_id, f.channel_id, f.user_id, f.name, f.extension, f.size, f.mime_type, f.create_at, info.json()])
    })
    .map(|n| n > 0)
    .ctx(path, "import file info")
}

/// File infos and reactions of a backup's post that the catalog lacks. `removed_at`: set
/// on new reactions when the catalog's version of the post is newer than the backup's.
fn store_files_and_reactions(
    tx: &Connection,
    path: &Path,
    post: &Raw<object::Post>,
    removed_at: Option<i64>,
) -> Result<()> {
    store_files(tx, path, post)?;
    store_reactions(tx, path, post, removed_at)
}

fn store_files(tx: &Connection, path: &Path, post: &Raw<object::Post>) -> Result<()> {
    for raw in &post.value.metadata.files {
        if let Ok(info) = Raw::<object::FileInfo>::parse(raw.clone()) {
            insert_file_info(tx, path, &info)?;
        }
    }
    Ok(())
}

fn store_reactions(
    tx: &Connection,
    path: &Path,
    post: &Raw<object::Post>,
    removed_at: Option<i64>,
) -> Result<()> {
    let p = &post.value;
    for raw in &p.metadata.reactions {
        let Ok(reaction) = Raw::<object::Reaction>::parse(raw.clone()) else {
            continue;
        };
        let r = &reaction.value;
        tx.prepare_cached(
            "INSERT INTO reactions (post_id, user_id, emoji_name, create_at, json, removed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (post_id, user_id, emoji_name) DO NOTHING",
        )
        .and_then(|mut st| {
            st.execute(params![p.id, r.user_id, r.emoji_name, r.create_at, reaction.json(), removed_at])
        })
        .ctx(path, "import reaction")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::testing::{assert_search_index_is_as_defined, query_strings};
    use crate::catalog::{Access, LastOutcome};
    use serde_json::value::RawValue;

    fn raw<T: serde::de::DeserializeOwned>(json: &str) -> Raw<T> {
        Raw::parse(RawValue::from_string(json.to_owned()).unwrap()).unwrap()
    }

    /// A version of post p1: `edit_at` = `update_at` = the edit's time, text `v<edit>`.
    fn version(edit_at: i64) -> Raw<object::Post> {
        raw(&format!(
            r#"{{"id":"p1","channel_id":"c1","create_at":1,"update_at":{},"edit_at":{edit_at},"message":"v{edit_at}"}}"#,
            edit_at.max(1)
        ))
    }

    fn catalog_with_channel(dir: &Path) -> Catalog {
        let mut catalog = Catalog::open(&dir.join("catalog.sqlite"), Access::ReadWrite).unwrap();
        let channel = raw(r#"{"id":"c1","type":"O","name":"c","update_at":1}"#);
        catalog.import_channel(&channel, None).unwrap();
        catalog
    }

    fn import(catalog: &mut Catalog, post: &Raw<object::Post>, source: &str) -> ImportOutcome {
        let page = [ImportedPost { post, source }];
        catalog.import_posts(&"c1".into(), &page).unwrap()
    }

    fn state(catalog: &Catalog) -> Vec<String> {
        let mut rows = query_strings(catalog, "SELECT message, edit_at, imported_from FROM posts");
        rows.extend(query_strings(
            catalog,
            "SELECT replaced_at, edit_at, message FROM post_versions ORDER BY replaced_at",
        ));
        rows
    }

    #[test]
    fn versions_from_several_backups_form_the_same_chain_in_any_order() {
        // Versions edited at 0 (original), 10 and 20: each order of three backups.
        let orders = [
            [0, 10, 20],
            [0, 20, 10],
            [10, 0, 20],
            [10, 20, 0],
            [20, 0, 10],
            [20, 10, 0],
        ];
        let mut states = Vec::new();
        for order in orders {
            let dir = tempfile::tempdir().unwrap();
            let mut catalog = catalog_with_channel(dir.path());
            for edit_at in order {
                let source = format!("backup-{edit_at}");
                import(&mut catalog, &version(edit_at), &source);
            }
            let once = state(&catalog);
            // Importing any of them again changes nothing.
            for edit_at in order {
                let outcome = import(&mut catalog, &version(edit_at), "backup-z");
                assert_eq!(outcome, ImportOutcome::default());
            }
            assert_eq!(state(&catalog), once);
            states.push(once);
        }
        assert_eq!(
            states[0],
            [
                "v20|20|backup-0",
                "10|0|v0", // the original, replaced by the edit at 10
                "20|10|v10"
            ]
        );
        assert!(states.iter().all(|s| *s == states[0]), "{states:#?}");
    }

    #[test]
    fn a_post_a_sync_saw_only_deleted_gets_its_content_from_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = catalog_with_channel(dir.path());
        // What the server sends for a deleted post (blanked, delete_at set), as archives of
        // earlier versions hold it: syncs stored such posts until they stopped storing posts
        // first seen deleted.
        catalog
            .conn
            .execute(
                "INSERT INTO posts (id, channel_id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, seen_live, json)
                 VALUES ('p1', 'c1', '', '', 1, 50, 0, 50, '', '', 0, ?1)",
                [r#"{"id":"p1","channel_id":"c1","create_at":1,"update_at":50,"delete_at":50,"message":""}"#],
            )
            .unwrap();
        let outcome = import(&mut catalog, &version(10), "old");
        assert_eq!(outcome.posts_updated, 1);
        assert_eq!(
            query_strings(
                &catalog,
                "SELECT message, delete_at, update_at, seen_live, imported_from FROM posts"
            ),
            ["v10|50|50|1|old"]
        );
    }

    #[test]
    fn a_post_missing_from_a_complete_sync_of_its_channel_is_stored_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = catalog_with_channel(dir.path());
        let cursor = crate::catalog::ChannelCursor {
            watermark: Some(1000),
            walk: None,
        };
        catalog
            .store_cursor(&"c1".into(), &cursor, LastOutcome::Ok, 2000)
            .unwrap();
        import(&mut catalog, &version(0), "old");
        let later = raw::<object::Post>(
            r#"{"id":"p2","channel_id":"c1","create_at":1500,"update_at":1500,"message":"after the sync"}"#,
        );
        import(&mut catalog, &later, "new");
        assert_eq!(
            query_strings(&catalog, "SELECT id, delete_at FROM posts ORDER BY id"),
            ["p1|1000", "p2|0"]
        );
    }

    #[test]
    fn a_page_of_new_posts_is_indexed_with_its_files_and_reactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = catalog_with_channel(dir.path());
        let with_files = raw::<object::Post>(
            r#"{"id":"p2","channel_id":"c1","create_at":2,"update_at":2,"message":"report attached",
                "metadata":{"files":[{"id":"f1","post_id":"p2","channel_id":"c1","name":"q3 report.pdf","size":3},
                                     {"id":"f2","post_id":"p2","channel_id":"c1","name":"notes.txt","size":1}],
                            "reactions":[{"user_id":"u1","post_id":"p2","emoji_name":"tada","create_at":3}]}}"#,
        );
        let edited = raw::<object::Post>(
            r#"{"id":"p1","channel_id":"c1","create_at":1,"update_at":9,"edit_at":9,"message":"edited text"}"#,
        );
        // p1 twice in one page (a hand-made backup): the second, newer copy merges into the
        // first's row instead of failing on its id.
        let page = [
            ImportedPost {
                post: &version(0),
                source: "b:1",
            },
            ImportedPost {
                post: &with_files,
                source: "b:2",
            },
            ImportedPost {
                post: &edited,
                source: "b:3",
            },
        ];
        let outcome = catalog.import_posts(&"c1".into(), &page).unwrap();
        assert_eq!((outcome.posts_added, outcome.posts_updated), (2, 1));
        assert_eq!(
            query_strings(
                &catalog,
                "SELECT id, message, imported_from FROM posts ORDER BY rowid"
            ),
            ["p1|edited text|b:1", "p2|report attached|b:2"]
        );
        assert_eq!(
            query_strings(&catalog, "SELECT post_id, emoji_name FROM reactions"),
            ["p2|tada"]
        );
        assert_search_index_is_as_defined(&catalog);
        assert_eq!(
            query_strings(
                &catalog,
                "SELECT rowid FROM post_search WHERE post_search MATCH 'report AND notes'"
            ),
            query_strings(&catalog, "SELECT rowid FROM posts WHERE id = 'p2'")
        );
    }
}
