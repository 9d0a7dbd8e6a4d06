//! Catalog snapshots beside the blobs in object storage, and `pull`, which makes a new
//! directory a working archive from the newest of them: together, a new machine takes over
//! an archive with one command, and the bucket alone is a complete backup.
//!
//! Depends on `catalog` (a consistent copy by `VACUUM INTO`, taken in one read transaction
//! while a sync may go on) and `blobs` (upload, list, prune, download under
//! `<prefix>/catalogs/<UTC time>.sqlite`). Invariants: a snapshot is uploaded whole (a PUT or
//! completed multipart upload) before older ones are pruned, so the newest N always exist;
//! `pull` writes the catalog through a temp file renamed into place, so an interrupted pull
//! leaves no catalog that looks complete.

use std::path::{Path, PathBuf};

use crate::blobs::{BlobError, BlobLocation, BlobStore};
use crate::catalog::{Access, CATALOG_FILE, Catalog, CatalogError};
use crate::outdir::{self, OutputDirError, OutputKind};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    OutputDir(#[from] OutputDirError),
    #[error(
        "{location} holds no catalog snapshot (`matterbak snapshot` or a sync with --blobs there makes one)"
    )]
    NoSnapshot { location: BlobLocation },
    #[error("{} already holds an archive (catalog.sqlite); pull into a new or empty directory", dir.display())]
    AlreadyAnArchive { dir: PathBuf },
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The new snapshot's name (`<UTC time>.sqlite`).
    pub name: String,
    /// Snapshots deleted because more than `keep` existed.
    pub pruned: Vec<String>,
}

/// Copies the catalog and uploads it, then deletes all but the newest `keep` (at least 1)
/// snapshots.
pub fn take_snapshot(
    archive: &Path,
    blobs: &BlobLocation,
    keep: usize,
) -> Result<SnapshotReport, SnapshotError> {
    let store = BlobStore::open_existing_at(archive, blobs)?;
    // Local blobs: refused before any copy is made.
    store.catalog_snapshots()?;
    store.create_dirs()?;
    let name = format!(
        "{}.sqlite",
        chrono::Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ")
    );
    let copy = store
        .tmp_dir()
        .join(format!("snapshot-{}-{name}", std::process::id()));
    // Read-write only because SQLite refuses VACUUM INTO on a read-only connection; the copy
    // is one read transaction and writes nothing to the catalog.
    let uploaded = Catalog::open(archive, Access::ReadWrite)
        .and_then(|catalog| catalog.copy_into(&copy))
        .map_err(SnapshotError::from)
        .and_then(|()| Ok(store.put_catalog_snapshot(&copy, &name)?));
    let _ = std::fs::remove_file(&copy);
    uploaded?;
    let names = store.catalog_snapshots()?;
    let excess = names.len().saturating_sub(keep.max(1));
    let mut pruned = Vec::new();
    for old in names.into_iter().take(excess).filter(|old| *old != name) {
        store.delete_catalog_snapshot(&old)?;
        pruned.push(old);
    }
    Ok(SnapshotReport { name, pruned })
}

/// Makes `dir` (new or empty) an archive from the newest snapshot at `location`; its blobs
/// stay there, and the catalog remembers `location`. Returns the snapshot's name.
pub fn pull(location: &BlobLocation, dir: &Path) -> Result<String, SnapshotError> {
    if dir.join(CATALOG_FILE).exists() {
        return Err(SnapshotError::AlreadyAnArchive {
            dir: dir.to_owned(),
        });
    }
    let store = BlobStore::open_existing_at(dir, location)?;
    let newest = store
        .catalog_snapshots()?
        .pop()
        .ok_or_else(|| SnapshotError::NoSnapshot {
            location: location.clone(),
        })?;
    outdir::claim_dir(dir, OutputKind::Archive)?;
    store.create_dirs()?;
    let part = store.tmp_dir().join(format!("pull-{newest}"));
    let _ = std::fs::remove_file(&part);
    store.fetch_catalog_snapshot(&newest, &part)?;
    let catalog = dir.join(CATALOG_FILE);
    std::fs::rename(&part, &catalog).map_err(|source| SnapshotError::Io {
        action: "move the pulled catalog to",
        path: catalog.clone(),
        source,
    })?;
    // The bucket may have been copied or renamed since: the catalog follows `location`.
    Catalog::open(dir, Access::ReadWrite)?.remember_blob_location(&location.to_string())?;
    Ok(newest)
}
