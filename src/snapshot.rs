//! Catalog snapshots beside the blobs in object storage, and `pull`, which makes a new
//! directory a working archive from the newest of them: together, a new machine takes over
//! an archive with one command, and the bucket alone is a complete backup.
//!
//! May import `archive` (opening; a consistent copy of the catalog by `VACUUM INTO`, taken in
//! one read transaction while a sync may go on) and `blobs` (upload, list, prune, download
//! under `<prefix>/catalogs/<UTC time>.sqlite`). Invariants: a snapshot is uploaded whole (a
//! PUT or completed multipart upload) before older ones are pruned, so the newest N always
//! exist; `pull` holds the new archive's lock and writes the catalog through a temp file
//! renamed into place, so an interrupted pull leaves no catalog that looks complete.

use std::path::{Path, PathBuf};

use crate::archive::{Archive, ArchiveError, CATALOG_FILE, Claim, ReadArchive};
use crate::blobs::{BlobError, BlobLocation};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(
        "{location} holds no catalog snapshot (`matterbak snapshot` or a sync with --blobs there makes one)"
    )]
    NoSnapshot { location: BlobLocation },
    #[error(
        "{location}/catalogs/{name} is an encrypted object, but {location} has no `config` marker: the marker of its encrypted repository was removed in the bucket; nothing pulled (restore the marker from a copy of the bucket)"
    )]
    SealedInPlainPrefix {
        location: BlobLocation,
        name: String,
    },
    #[error("{} already holds an archive ({CATALOG_FILE}); pull into a new or empty directory", dir.display())]
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

/// Copies the catalog and uploads it beside the archive's blobs, then deletes all but the
/// newest `keep` (at least 1) snapshots.
pub fn take_snapshot(archive: &ReadArchive, keep: usize) -> Result<SnapshotReport, SnapshotError> {
    let store = archive.blobs()?;
    // Local blobs: refused before any copy is made.
    store.catalog_snapshots()?;
    let name = format!(
        "{}.sqlite",
        chrono::Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ")
    );
    let copy = archive.temp_path(&format!("snapshot-{}-{name}", std::process::id()))?;
    let uploaded = archive
        .copy_catalog_into(&copy)
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
    let archive = Archive::at(dir);
    let catalog = archive.catalog_path();
    if catalog.exists() {
        return Err(SnapshotError::AlreadyAnArchive {
            dir: dir.to_owned(),
        });
    }
    let store = archive.blobs(location)?;
    let newest = store
        .catalog_snapshots()?
        .pop()
        .ok_or_else(|| SnapshotError::NoSnapshot {
            location: location.clone(),
        })?;
    let locked = archive.lock(store, Claim::NewOrArchive)?;
    locked.blobs().create_dirs()?;
    let part = locked.blobs().tmp_dir().join(format!("pull-{newest}"));
    let _ = std::fs::remove_file(&part);
    locked.blobs().fetch_catalog_snapshot(&newest, &part)?;
    if locked.blobs().encryption().is_none() && starts_sealed(&part) {
        let _ = std::fs::remove_file(&part);
        return Err(SnapshotError::SealedInPlainPrefix {
            location: location.clone(),
            name: newest,
        });
    }
    std::fs::rename(&part, &catalog).map_err(|source| SnapshotError::Io {
        action: "move the pulled catalog to",
        path: catalog.clone(),
        source,
    })?;
    // The bucket may have been copied or renamed since: the catalog follows `location`.
    locked.open_write()?.relocate_blobs()?;
    Ok(newest)
}

/// Whether the downloaded snapshot at `path` begins like a sealed object.
fn starts_sealed(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| crate::blobs::crypto::looks_sealed(&head))
}
