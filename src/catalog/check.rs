//! The catalog's part of `matterbak verify`: SQLite's own consistency checks, the list of blob
//! references, and forgetting damaged blobs so the next sync fetches them again.
//!
//! Reads run inside the caller's snapshot (`begin_snapshot`); `forget_blobs` is the only
//! write and runs in one transaction, by the holder of the archive lock.

use rusqlite::params;

use super::{Catalog, Context, Result};

/// A row that points at a blob: which table and row, and the stored value (normally a hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobReference {
    pub table: &'static str,
    pub row_id: String,
    pub value: String,
}

/// A row of `blobs`: hash and recorded size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRecord {
    pub hash: String,
    pub size: i64,
}

/// Each table column that points at a blob, with the query listing its references.
const REFERENCES: &[(&str, &str)] = &[
    (
        "files",
        "SELECT id, blob FROM files WHERE blob IS NOT NULL ORDER BY id",
    ),
    (
        "users",
        "SELECT id, avatar_blob FROM users WHERE avatar_blob IS NOT NULL ORDER BY id",
    ),
    (
        "teams",
        "SELECT id, icon_blob FROM teams WHERE icon_blob IS NOT NULL ORDER BY id",
    ),
    (
        "emojis",
        "SELECT id, image_blob FROM emojis WHERE image_blob IS NOT NULL ORDER BY id",
    ),
];

impl Catalog {
    /// `PRAGMA integrity_check`: empty when the database is sound, else SQLite's findings
    /// (at most `limit`).
    pub fn integrity_problems(&self, limit: u32) -> Result<Vec<String>> {
        // PRAGMA arguments cannot be bound; `limit` is a number we format ourselves.
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA integrity_check({limit})"))
            .ctx(&self.path, "check integrity")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "check integrity")?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// `PRAGMA foreign_key_check`: rows whose parent row is missing, as
    /// `(table, rowid, parent table)`.
    pub fn foreign_key_problems(&self) -> Result<Vec<(String, Option<i64>, String)>> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA foreign_key_check")
            .ctx(&self.path, "check foreign keys")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "check foreign keys")
    }

    /// Every row that points at a blob, table by table.
    pub fn blob_references(&self) -> Result<Vec<BlobReference>> {
        let mut all = Vec::new();
        for (table, sql) in REFERENCES {
            let mut stmt = self
                .conn
                .prepare_cached(sql)
                .ctx(&self.path, "list blob references")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(BlobReference {
                        table,
                        row_id: r.get(0)?,
                        value: r.get(1)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .ctx(&self.path, "list blob references")?;
            all.extend(rows);
        }
        Ok(all)
    }

    /// Every row of `blobs`, by hash.
    pub fn blob_records(&self) -> Result<Vec<BlobRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash, size FROM blobs ORDER BY hash")
            .ctx(&self.path, "list blobs")?;
        stmt.query_map([], |r| {
            Ok(BlobRecord {
                hash: r.get(0)?,
                size: r.get(1)?,
            })
        })
        .and_then(|rows| rows.collect())
        .ctx(&self.path, "list blobs")
    }

    /// Forgets blobs whose bytes are gone or wrong, in one transaction: every row pointing at
    /// one loses the pointer and the "fetched for version X" marker, so the next sync fetches
    /// it again (files: `blob IS NULL`; pictures, icons and emoji images: version 0), and the
    /// `blobs` row goes. `values` may also hold references that are not hashes at all.
    /// Returns how many rows will be fetched again.
    pub fn forget_blobs(&mut self, values: &[String]) -> Result<usize> {
        let tx = self.conn.transaction().ctx(&self.path, "begin")?;
        let mut marked = 0;
        for value in values {
            marked += tx
                .execute(
                    "UPDATE files SET blob = NULL WHERE blob = ?1",
                    params![value],
                )
                .ctx(&self.path, "mark file for re-fetch")?;
            marked += tx
                .execute(
                    "UPDATE users SET avatar_blob = NULL, avatar_picture_update = 0 WHERE avatar_blob = ?1",
                    params![value],
                )
                .ctx(&self.path, "mark picture for re-fetch")?;
            marked += tx
                .execute(
                    "UPDATE teams SET icon_blob = NULL, icon_update = 0 WHERE icon_blob = ?1",
                    params![value],
                )
                .ctx(&self.path, "mark team icon for re-fetch")?;
            marked += tx
                .execute(
                    "UPDATE emojis SET image_blob = NULL, image_update_at = 0 WHERE image_blob = ?1",
                    params![value],
                )
                .ctx(&self.path, "mark emoji image for re-fetch")?;
            tx.execute("DELETE FROM blobs WHERE hash = ?1", params![value])
                .ctx(&self.path, "forget blob")?;
        }
        tx.commit().ctx(&self.path, "commit re-fetch marks")?;
        Ok(marked)
    }
}
