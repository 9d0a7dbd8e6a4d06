//! The content-addressed blob store: every binary the archive holds (attachments, avatars,
//! team icons, emoji images) lives once, under its BLAKE3 hash, in
//! `blobs/<h[0..2]>/<h[2..4]>/<h>`.
//!
//! Invariants: a blob file is complete and named by the hash of its bytes; bytes stream in
//! through a temp file in `tmp/` that is hashed while written, fsynced and renamed into place,
//! so a crash leaves at most a stray temp file, never a partial blob. The catalog row that
//! points at a blob is committed only after `BlobWriter::commit` returned.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::BlobId;

/// Appended to storage errors caused by a full disk (before the OS's cause, which the error
/// chain prints next).
pub const DISK_FULL_HINT: &str = " (the disk holding the archive is full: free space, then run `matterbak sync` again; everything committed so far is kept and consistent)";

fn disk_full_hint(error: &io::Error) -> &'static str {
    if error.kind() == io::ErrorKind::StorageFull {
        DISK_FULL_HINT
    } else {
        ""
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: cannot {action} {}{}", path.display(), disk_full_hint(.source))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    /// Test seam: bytes that may still be written before writes fail as on a full disk.
    space: Option<Arc<AtomicU64>>,
}

/// A blob that is durably on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub id: BlobId,
    pub size: u64,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BlobStore {
    /// Opens (creating if needed) the store inside an archive directory.
    pub fn open(archive: &Path) -> Result<BlobStore, BlobError> {
        let blobs = archive.join("blobs");
        let tmp = archive.join("tmp");
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        Ok(BlobStore {
            blobs,
            tmp,
            space: None,
        })
    }

    /// Opens an existing store without creating anything (readers must not write).
    pub fn open_existing(archive: &Path) -> BlobStore {
        BlobStore {
            blobs: archive.join("blobs"),
            tmp: archive.join("tmp"),
            space: None,
        }
    }

    /// Test seam (`--simulate-disk-full blobs:BYTES`): after `bytes` more bytes, every write
    /// fails with ENOSPC, as on a full disk.
    pub fn with_space_limit(mut self, bytes: u64) -> BlobStore {
        self.space = Some(Arc::new(AtomicU64::new(bytes)));
        self
    }

    pub fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.as_str();
        self.blobs.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.path(id).is_file()
    }

    pub fn open_blob(&self, id: &BlobId) -> Result<File, BlobError> {
        let path = self.path(id);
        File::open(&path).map_err(io_err("open", &path))
    }

    /// Removes temp files of downloads that a crash interrupted. Only the lock holder may
    /// call this, since another writer's temp files would be in flight.
    pub fn clean_tmp(&self) -> Result<usize, BlobError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp).map_err(io_err("list", &self.tmp))? {
            let entry = entry.map_err(io_err("list", &self.tmp))?;
            if entry.file_name().to_string_lossy().ends_with(".part") {
                fs::remove_file(entry.path()).map_err(io_err("remove", &entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts a new blob. Write the bytes, then `commit`; dropping the writer discards them.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!(
            "{}-{}-{:08x}.part",
            std::process::id(),
            n,
            rand::random::<u32>()
        ));
        let file = File::create_new(&path).map_err(io_err("create", &path))?;
        Ok(BlobWriter {
            file: Some(file),
            temp: path,
            hasher: blake3::Hasher::new(),
            size: 0,
            store: self.clone(),
        })
    }

    /// Stores a small in-memory value (icons, avatars, emoji images).
    pub fn ingest_bytes(&self, bytes: &[u8]) -> Result<StoredBlob, BlobError> {
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(io_err("write", &writer.temp.clone()))?;
        writer.commit()
    }
}

/// A blob being written. Hashes what passes through `write`.
pub struct BlobWriter {
    file: Option<File>,
    temp: PathBuf,
    hasher: blake3::Hasher,
    size: u64,
    store: BlobStore,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        if let Some(space) = &self.store.space {
            let wanted = buf.len() as u64;
            if space
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(wanted)
                })
                .is_err()
            {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device (simulated)",
                ));
            }
        }
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), File::flush)
    }
}

impl BlobWriter {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temp file the bytes go to until `commit`.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Makes the bytes durable under their hash. Equal bytes already stored: the temp copy is
    /// dropped and the existing blob is returned (dedup).
    pub fn commit(mut self) -> Result<StoredBlob, BlobError> {
        let file = self.file.take().expect("commit consumes the writer once");
        file.sync_all().map_err(io_err("fsync", &self.temp))?;
        drop(file);
        let id = BlobId::from_hash(&self.hasher.finalize());
        let target = self.store.path(&id);
        if target.is_file() {
            fs::remove_file(&self.temp).map_err(io_err("remove", &self.temp))?;
        } else {
            let parent = target.parent().expect("blob paths have parents");
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            fs::rename(&self.temp, &target).map_err(io_err("rename into", &target))?;
            // The rename is durable only once the directory entry is.
            File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(io_err("fsync", parent))?;
        }
        Ok(StoredBlob {
            id,
            size: self.size,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Re-hashes a stored blob; used by verification.
pub fn hash_file(path: &Path) -> io::Result<(BlobId, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((BlobId::from_hash(&hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bytes_are_stored_once_and_named_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.ingest_bytes(b"same bytes").unwrap();
        let b = store.ingest_bytes(b"same bytes").unwrap();
        let c = store.ingest_bytes(b"other").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.id, c.id);
        assert_eq!(a.id.as_str(), blake3::hash(b"same bytes").to_hex().as_str());
        assert_eq!(fs::read(store.path(&a.id)).unwrap(), b"same bytes");
        assert_eq!(hash_file(&store.path(&c.id)).unwrap(), (c.id.clone(), 5));
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no temp files left"
        );
    }

    #[test]
    fn dropped_writer_leaves_no_blob_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(!store.contains(&BlobId::from_hash(&blake3::hash(b"partial"))));
    }

    #[test]
    fn a_full_disk_fails_the_write_and_leaves_no_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap().with_space_limit(10);
        store.ingest_bytes(b"0123456789").unwrap();
        let err = store.ingest_bytes(b"x").unwrap_err();
        assert!(
            err.to_string()
                .contains("the disk holding the archive is full"),
            "{err}"
        );
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn clean_tmp_removes_crash_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("tmp/123-0-deadbeef.part"), b"x").unwrap();
        assert_eq!(store.clean_tmp().unwrap(), 1);
    }
}
