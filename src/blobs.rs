//! The content-addressed blob store: every binary the archive holds (attachments, avatars,
//! team icons, emoji images) lives once, under its BLAKE3 hash, at `<h[0..2]>/<h[2..4]>/<h>`
//! below its root: the archive's `blobs/` directory, or a prefix in an S3-compatible bucket
//! ([`BlobLocation`]). One interface, two backends: only this module knows which is in use.
//!
//! Invariants: a blob is complete and named by the hash of its bytes; bytes stream in
//! through a temp file in `tmp/` that is hashed while written, then made durable under their
//! hash (fsync and rename on disk; a PUT or multipart upload in a bucket, see `remote`), so a
//! crash leaves at most a stray temp file or an unreferenced object, never a partial blob. The
//! catalog row that points at a blob is committed only after `BlobWriter::commit` returned.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::BlobId;

mod aws_config;
mod remote;

pub use aws_config::AwsConfigError;

pub use remote::redact;

/// Where an archive keeps its blobs. Remembered in the catalog by its text form (Display),
/// which never holds a secret: credentials come from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BlobLocation {
    /// The archive's own `blobs/` directory.
    #[default]
    Local,
    /// `s3://bucket/prefix`: endpoint, region and credentials from the `AWS_*` variables or
    /// the AWS files.
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobLocation::Local => f.write_str("local"),
            BlobLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            BlobLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("blob location {value:?}: {reason}")]
pub struct BadLocation {
    value: String,
    reason: &'static str,
}

impl std::str::FromStr for BlobLocation {
    type Err = BadLocation;

    fn from_str(value: &str) -> Result<BlobLocation, BadLocation> {
        let bad = |reason| BadLocation {
            value: value.to_owned(),
            reason,
        };
        if value == "local" {
            return Ok(BlobLocation::Local);
        }
        let Some(rest) = value.strip_prefix("s3://") else {
            return Err(bad(
                "expected `local` or s3://bucket/prefix (an S3-compatible store)",
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(bad(
                "the bucket name must be 3 to 63 lowercase letters, digits, '-' or '.'",
            ));
        }
        let prefix_ok = prefix.is_empty()
            || prefix.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !prefix_ok {
            return Err(bad(
                "the prefix must be /-separated names of letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(BlobLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// One object found by [`BlobStore::inventory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// A path on disk, or `s3://bucket/key`.
    pub name: PathBuf,
    /// Set when the name is a hash and the object sits where that hash belongs.
    pub id: Option<BlobId>,
    pub size: u64,
}

/// What the store holds, listed once (cheap on a bucket: one request per 1,000 objects).
#[derive(Debug, Default)]
pub struct Inventory {
    pub objects: Vec<Listed>,
    /// Temp files of interrupted downloads in `tmp/`.
    pub temps: Vec<PathBuf>,
}

/// The bytes of a stored blob, from either backend.
pub struct BlobReader {
    inner: ReaderKind,
    len: u64,
}

enum ReaderKind {
    File(File),
    Remote(remote::RemoteReader),
}

impl BlobReader {
    /// The blob's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            ReaderKind::File(file) => file.read(buf),
            ReaderKind::Remote(reader) => reader.read(buf),
        }
    }
}

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
    #[error(
        "catalog snapshots live beside blobs in object storage; this archive keeps its blobs on local disk (copy catalog.sqlite with `sqlite3 catalog.sqlite \".backup FILE\"` instead)"
    )]
    SnapshotsNeedBucket,
    /// The bucket has no object for the blob (its GET answered 404).
    #[error("blob store: no object {key}")]
    Missing { key: String },
    #[error(transparent)]
    Location(#[from] BadLocation),
    #[error(transparent)]
    AwsConfig(#[from] AwsConfigError),
    /// The server's reason, credentials redacted (hence text, not a source).
    #[error("blob store: cannot {action} {key}: {reason}")]
    Remote {
        action: &'static str,
        key: String,
        reason: String,
    },
}

impl BlobError {
    /// Whether the blob is simply not in the store, which exports list and go on from; any
    /// other failure (a bucket that keeps failing after retries) stops them instead of
    /// leaving bytes out.
    pub fn is_missing(&self) -> bool {
        match self {
            BlobError::Missing { .. } => true,
            BlobError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
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
    /// The bucket, when blobs live in object storage (`tmp/` still spools the bytes).
    remote: Option<Arc<remote::Remote>>,
}

/// A blob that is durably on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub id: BlobId,
    pub size: u64,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Below `tmp/`: records of multipart uploads in flight (see `remote`).
const UPLOADS_DIR: &str = "uploads";

/// What [`BlobStore::clean_tmp`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cleaned {
    /// Temp files of interrupted downloads.
    pub temps: usize,
    /// Multipart uploads a killed process left in the bucket, aborted.
    pub uploads: usize,
}

impl BlobStore {
    /// Opens (creating if needed) the local store inside an archive directory.
    pub fn open(archive: &Path) -> Result<BlobStore, BlobError> {
        BlobStore::open_at(archive, &BlobLocation::Local)
    }

    /// Opens the store at `location` for writing: creates `blobs/` (local) and `tmp/`; for a
    /// bucket, first proves it is reachable, so a wrong setup fails before anything is
    /// created.
    pub fn open_at(archive: &Path, location: &BlobLocation) -> Result<BlobStore, BlobError> {
        let store = BlobStore::open_existing_at(archive, location)?;
        store.create_dirs()?;
        Ok(store)
    }

    /// Creates the directories a writer needs (`blobs/` for the local backend, `tmp/`).
    pub fn create_dirs(&self) -> Result<(), BlobError> {
        if self.remote.is_none() {
            fs::create_dir_all(&self.blobs).map_err(io_err("create", &self.blobs))?;
        }
        fs::create_dir_all(&self.tmp).map_err(io_err("create", &self.tmp))
    }

    /// Opens an existing local store without creating anything (readers must not write).
    pub fn open_existing(archive: &Path) -> BlobStore {
        BlobStore {
            blobs: archive.join("blobs"),
            tmp: archive.join("tmp"),
            space: None,
            remote: None,
        }
    }

    /// Opens the store at `location` for reading, creating nothing.
    pub fn open_existing_at(
        archive: &Path,
        location: &BlobLocation,
    ) -> Result<BlobStore, BlobError> {
        let mut store = BlobStore::open_existing(archive);
        if let BlobLocation::S3 { bucket, prefix } = location {
            let uploads = store.tmp.join(UPLOADS_DIR);
            store.remote = Some(Arc::new(remote::Remote::connect(bucket, prefix, uploads)?));
        }
        Ok(store)
    }

    /// Opens, for reading, the store where the catalog says the archive's blobs are
    /// (`remembered`, from `Catalog::blob_location`; None: local). Readers follow the catalog;
    /// the command layer has already refused a `--blobs` that contradicts it.
    pub fn open_remembered(
        archive: &Path,
        remembered: Option<String>,
    ) -> Result<BlobStore, BlobError> {
        let location = remembered
            .as_deref()
            .map(str::parse::<BlobLocation>)
            .transpose()?
            .unwrap_or_default();
        BlobStore::open_existing_at(archive, &location)
    }

    /// Test seam (`--simulate-disk-full blobs:BYTES`): after `bytes` more bytes, every write
    /// fails with ENOSPC, as on a full disk.
    pub fn with_space_limit(mut self, bytes: u64) -> BlobStore {
        self.space = Some(Arc::new(AtomicU64::new(bytes)));
        self
    }

    /// Where the blob's file is in the local layout (meaningful for the local backend only;
    /// see [`BlobStore::local_path`]).
    pub fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.as_str();
        self.blobs.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// The blob's file when blobs are on local disk (to hard-link or map it); None for a
    /// bucket, where [`BlobStore::open_blob`] streams the bytes instead.
    pub fn local_path(&self, id: &BlobId) -> Option<PathBuf> {
        self.remote.is_none().then(|| self.path(id))
    }

    /// Whether the blob is stored (a HEAD request for a bucket). A bucket that cannot answer
    /// is an error, never "absent": an export must not leave a file out because of a
    /// network fault.
    pub fn contains(&self, id: &BlobId) -> Result<bool, BlobError> {
        Ok(self.stored_size(id)?.is_some())
    }

    /// The stored blob's size (a HEAD request for a bucket); `None` when it is absent. As
    /// with [`BlobStore::contains`], a failure to look is an error, not an absence.
    pub fn stored_size(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        match &self.remote {
            None => {
                let path = self.path(id);
                match fs::metadata(&path) {
                    Ok(meta) => Ok(Some(meta.len())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("look up", &path)(e)),
                }
            }
            Some(remote) => remote.size(id),
        }
    }

    /// The blob's bytes, streamed (never held whole in memory).
    pub fn open_blob(&self, id: &BlobId) -> Result<BlobReader, BlobError> {
        match &self.remote {
            None => {
                let path = self.path(id);
                let file = File::open(&path).map_err(io_err("open", &path))?;
                let len = file.metadata().map_err(io_err("open", &path))?.len();
                Ok(BlobReader {
                    inner: ReaderKind::File(file),
                    len,
                })
            }
            Some(remote) => {
                let reader = remote.open(id)?;
                Ok(BlobReader {
                    len: reader.size,
                    inner: ReaderKind::Remote(reader),
                })
            }
        }
    }

    /// Re-reads a stored blob and hashes it; used by verification.
    pub fn hash_blob(&self, id: &BlobId) -> io::Result<(BlobId, u64)> {
        let mut reader = self.open_blob(id).map_err(io::Error::other)?;
        let mut hasher = blake3::Hasher::new();
        let size = io::copy(&mut reader, &mut hasher)?;
        Ok((BlobId::from_hash(&hasher.finalize()), size))
    }

    /// Lists every stored object with its size, and the temp files in `tmp/`.
    pub fn inventory(&self) -> Result<Inventory, BlobError> {
        let objects = match &self.remote {
            None => {
                let mut files = Vec::new();
                collect_files(&self.blobs, 3, &mut files)?;
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
                objects
            }
            Some(remote) => remote.list()?,
        };
        let mut temps = Vec::new();
        collect_files(&self.tmp, 1, &mut temps)?;
        let mut inventory = Inventory { objects, temps };
        inventory.objects.sort_by(|a, b| a.name.cmp(&b.name));
        inventory.temps.sort();
        Ok(inventory)
    }

    fn bucket(&self) -> Result<&remote::Remote, BlobError> {
        self.remote.as_deref().ok_or(BlobError::SnapshotsNeedBucket)
    }

    /// Uploads the catalog copy `file` as snapshot `name` (`<prefix>/catalogs/<name>`).
    pub fn put_catalog_snapshot(&self, file: &Path, name: &str) -> Result<(), BlobError> {
        self.bucket()?.put_catalog(file, name)
    }

    /// Names of the catalog snapshots, oldest first.
    pub fn catalog_snapshots(&self) -> Result<Vec<String>, BlobError> {
        self.bucket()?.catalogs()
    }

    pub fn delete_catalog_snapshot(&self, name: &str) -> Result<(), BlobError> {
        self.bucket()?.delete_catalog(name)
    }

    /// Downloads snapshot `name` into the new file `dest`.
    pub fn fetch_catalog_snapshot(&self, name: &str, dest: &Path) -> Result<(), BlobError> {
        self.bucket()?.get_catalog(name, dest)
    }

    /// Where in-flight files go (`tmp/` of the archive).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Moves a damaged blob out of the store (to `damaged_dir` on disk, or to
    /// `<prefix>/damaged/` in a bucket); its bytes may be all that is left, so it is never
    /// deleted. False when there was nothing to move.
    pub fn quarantine(&self, id: &BlobId, damaged_dir: &Path) -> Result<bool, BlobError> {
        if let Some(remote) = &self.remote {
            return remote.quarantine(id);
        }
        let from = self.path(id);
        if !from.exists() {
            return Ok(false);
        }
        fs::create_dir_all(damaged_dir).map_err(io_err("create", damaged_dir))?;
        let to = damaged_dir.join(id.as_str());
        fs::rename(&from, &to).map_err(io_err("move damaged blob", &from))?;
        Ok(true)
    }

    /// Aborts the multipart uploads that a killed process left in the bucket (recorded in
    /// `tmp/uploads/`); 0 for local blobs. Only the lock holder may call this, since another
    /// writer's uploads would be in flight.
    pub fn abort_interrupted_uploads(&self) -> Result<usize, BlobError> {
        self.remote
            .as_ref()
            .map_or(Ok(0), |remote| remote.abort_recorded_uploads())
    }

    /// Removes temp files of downloads that a crash interrupted, and aborts its multipart
    /// uploads. Only the lock holder may call this, since another writer's temp files would
    /// be in flight.
    pub fn clean_tmp(&self) -> Result<Cleaned, BlobError> {
        let uploads = self.abort_interrupted_uploads()?;
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp).map_err(io_err("list", &self.tmp))? {
            let entry = entry.map_err(io_err("list", &self.tmp))?;
            if entry.file_name().to_string_lossy().ends_with(".part") {
                fs::remove_file(entry.path()).map_err(io_err("remove", &entry.path()))?;
                removed += 1;
            }
        }
        Ok(Cleaned {
            temps: removed,
            uploads,
        })
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
    /// dropped and the existing blob is returned (dedup). Blocks (disk flush, or upload to a
    /// bucket): call it off the async workers.
    pub fn commit(mut self) -> Result<StoredBlob, BlobError> {
        let file = self.file.take().expect("commit consumes the writer once");
        let id = BlobId::from_hash(&self.hasher.finalize());
        if let Some(remote) = &self.store.remote {
            drop(file);
            let uploaded = remote.put_file(&id, &self.temp, self.size);
            let _ = fs::remove_file(&self.temp);
            uploaded?;
            return Ok(StoredBlob {
                id,
                size: self.size,
            });
        }
        file.sync_all().map_err(io_err("fsync", &self.temp))?;
        drop(file);
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

/// Regular files up to `depth` levels below `dir` (which may not exist).
fn collect_files(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) -> Result<(), BlobError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let kind = entry.file_type().map_err(io_err("list", dir))?;
        if kind.is_dir() && depth > 1 {
            collect_files(&entry.path(), depth - 1, out)?;
        } else if !kind.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Re-hashes a file; used by verification.
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
        assert!(
            !store
                .contains(&BlobId::from_hash(&blake3::hash(b"partial")))
                .unwrap()
        );
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
    fn blob_locations_parse_print_and_refuse_bad_urls() {
        for text in ["local", "s3://bucket1", "s3://my.bucket-2/team/backups_1"] {
            let parsed: BlobLocation = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(
            "s3://b12/p/q/".parse::<BlobLocation>().unwrap(),
            BlobLocation::S3 {
                bucket: "b12".into(),
                prefix: "p/q".into()
            }
        );
        for (bad, reason) in [
            ("/srv/blobs", "expected `local` or s3://"),
            ("s3://Upper/x", "bucket name"),
            ("s3://ab", "bucket name"),
            ("s3://bucket/a//b", "prefix"),
            ("s3://bucket/../x", "prefix"),
            ("s3://bucket/a b", "prefix"),
        ] {
            let err = bad.parse::<BlobLocation>().unwrap_err().to_string();
            assert!(err.contains(reason) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn the_local_inventory_lists_blobs_strays_and_temps() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.ingest_bytes(b"a blob").unwrap();
        fs::write(dir.path().join("blobs/stray"), b"xyz").unwrap();
        fs::write(dir.path().join("tmp/1-0-00000000.part"), b"x").unwrap();
        let inventory = store.inventory().unwrap();
        let found: Vec<(Option<BlobId>, u64)> = inventory
            .objects
            .iter()
            .map(|o| (o.id.clone(), o.size))
            .collect();
        assert!(found.contains(&(Some(a.id.clone()), 6)), "{found:?}");
        assert!(found.contains(&(None, 3)), "{found:?}");
        assert_eq!(inventory.temps.len(), 1);
        assert_eq!(store.local_path(&a.id), Some(store.path(&a.id)));
        let mut bytes = Vec::new();
        let mut reader = store.open_blob(&a.id).unwrap();
        assert_eq!(reader.len(), 6);
        reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"a blob");
        assert!(matches!(
            store.catalog_snapshots(),
            Err(BlobError::SnapshotsNeedBucket)
        ));
    }

    #[test]
    fn clean_tmp_removes_crash_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("tmp/123-0-deadbeef.part"), b"x").unwrap();
        assert_eq!(store.clean_tmp().unwrap().temps, 1);
    }
}
