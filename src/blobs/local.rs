//! The local backend: each blob is the file `<root>/ab/cd/<hash>` (two levels of fan-out by
//! hash), `root` being the archive's `blobs/` directory; damaged blobs move to the archive's
//! `damaged/`. Catalog snapshots are not kept here (they live beside blobs in a bucket; a
//! local archive is copied with `sqlite3 .backup`).
//!
//! Invariant: a blob file appears only by renaming a complete, fsynced temp file into place,
//! followed by an fsync of its directory, so a crash leaves a stray temp file at worst.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::backend::{BlobBackend, Spooled};
use super::{BlobError, BlobReader, Listed, collect_files, io_err};
use crate::model::BlobId;

#[derive(Debug)]
pub struct Local {
    root: PathBuf,
    damaged: PathBuf,
}

impl Local {
    /// Blobs below `root`; damaged ones moved to `damaged`. Creates nothing.
    pub fn new(root: PathBuf, damaged: PathBuf) -> Local {
        Local { root, damaged }
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.as_str();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }
}

impl BlobBackend for Local {
    fn create(&self) -> Result<(), BlobError> {
        fs::create_dir_all(&self.root).map_err(io_err("create", &self.root))
    }

    fn put(&self, spooled: Spooled) -> Result<(), BlobError> {
        let Spooled { id, file, path, .. } = spooled;
        file.sync_all().map_err(io_err("fsync", &path))?;
        drop(file);
        let target = self.path(&id);
        if target.is_file() {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        } else {
            let parent = target.parent().expect("blob paths have parents");
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            fs::rename(&path, &target).map_err(io_err("rename into", &target))?;
            // The rename is durable only once the directory entry is.
            File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(io_err("fsync", parent))?;
        }
        Ok(())
    }

    fn open(&self, id: &BlobId) -> Result<BlobReader, BlobError> {
        let path = self.path(id);
        let file = File::open(&path).map_err(io_err("open", &path))?;
        let len = file.metadata().map_err(io_err("open", &path))?.len();
        Ok(BlobReader::new(file, len))
    }

    fn size(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        let path = self.path(id);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("look up", &path)(e)),
        }
    }

    fn list(&self) -> Result<Vec<Listed>, BlobError> {
        let mut files = Vec::new();
        collect_files(&self.root, 3, &mut files)?;
        let mut objects = Vec::with_capacity(files.len());
        for path in files {
            let size = fs::metadata(&path).map_err(io_err("list", &path))?.len();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(BlobId::parse)
                .filter(|id| self.path(id) == path);
            objects.push(Listed {
                name: path,
                id,
                size,
            });
        }
        Ok(objects)
    }

    fn quarantine(&self, id: &BlobId) -> Result<bool, BlobError> {
        let from = self.path(id);
        if !from.exists() {
            return Ok(false);
        }
        fs::create_dir_all(&self.damaged).map_err(io_err("create", &self.damaged))?;
        let to = self.damaged.join(id.as_str());
        fs::rename(&from, &to).map_err(io_err("move damaged blob", &from))?;
        Ok(true)
    }

    fn name(&self, id: &BlobId) -> PathBuf {
        self.path(id)
    }

    fn hard_link(&self, id: &BlobId, dest: &Path) -> bool {
        fs::hard_link(self.path(id), dest).is_ok()
    }

    fn put_named(&self, _name: &str, _path: &Path) -> Result<(), BlobError> {
        Err(BlobError::SnapshotsNeedBucket)
    }

    fn list_named(&self) -> Result<Vec<String>, BlobError> {
        Err(BlobError::SnapshotsNeedBucket)
    }

    fn get_named(&self, _name: &str, _dest: &Path) -> Result<(), BlobError> {
        Err(BlobError::SnapshotsNeedBucket)
    }

    fn delete_named(&self, _name: &str) -> Result<(), BlobError> {
        Err(BlobError::SnapshotsNeedBucket)
    }
}
