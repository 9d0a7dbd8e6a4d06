//! The content-addressed blob store: every binary the archive holds (attachments, avatars,
//! team icons, emoji images) lives once, under its BLAKE3 hash, at `<h[0..2]>/<h[2..4]>/<h>`
//! below its root: the archive's `blobs/` directory, or a prefix in an S3-compatible bucket
//! ([`BlobLocation`]). [`BlobStore`] is the one interface; where the bytes go is a
//! [`BlobBackend`] (`local`, `s3`, beside each other; parsing a location chooses one), so
//! nothing outside this module knows where or how bytes are kept. A bucket prefix holding an
//! encrypted repository (`keys`) is opened with its password and wrapped in [`Encrypted`],
//! which seals every object before the bucket sees it; callers see plaintext and its sizes.
//!
//! May import `model`, nothing else of the crate.
//!
//! Invariants: a blob is complete and named by the hash of its bytes; bytes stream in
//! through a temp file in `tmp/` that is hashed while written, then handed to the backend,
//! which makes them durable under their hash (fsync and rename on disk; a PUT or multipart
//! upload in a bucket), so a crash leaves at most a stray temp file or an unreferenced
//! object, never a partial blob. The catalog row that points at a blob is committed only
//! after `BlobWriter::commit` returned. Every size is the blob's own size.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{BlobId, BlobRef, DISK_FULL_HINT};

mod aws_config;
mod backend;
pub mod crypto;
mod encrypted;
pub mod keys;
mod local;
mod location;
mod s3;

pub use aws_config::AwsConfigError;
pub use backend::{BlobBackend, Spooled};
pub use encrypted::Encrypted;
pub use keys::{KeyError, KeyInfo, KeyProblem, Passwords};
pub use location::{BadLocation, BlobLocation, StoreDirs};
pub use s3::redact;

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

/// The bytes of a stored blob, from any backend.
pub struct BlobReader {
    inner: Box<dyn Read + Send>,
    len: u64,
}

impl BlobReader {
    /// `len` is the blob's own size, the number of bytes `inner` yields.
    pub fn new(inner: impl Read + Send + 'static, len: u64) -> BlobReader {
        BlobReader {
            inner: Box::new(inner),
            len,
        }
    }

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
        self.inner.read(buf)
    }
}

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
    Key(#[from] KeyError),
    /// A repository object that must not be overwritten exists.
    #[error("blob store: {key} exists already")]
    Exists { key: String },
    #[error(
        "encrypted archives live in object storage (--blobs s3://…); for the local archive use disk encryption"
    )]
    EncryptionNeedsBucket,
    #[error("{location} is not an encrypted repository (its prefix has no `config` marker)")]
    NotEncrypted { location: String },
    /// A sealed object failed to open.
    #[error("blob store: {name}: {source}")]
    Sealed {
        name: String,
        #[source]
        source: crypto::CryptoError,
    },
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

pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Arc<dyn BlobBackend>,
    location: BlobLocation,
    tmp: PathBuf,
    /// Test seam: bytes that may still be written before writes fail as on a full disk.
    space: Option<Arc<AtomicU64>>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Below `tmp/`: records of multipart uploads in flight (see `s3`).
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
    /// The store at `location` (which chooses the backend), using the archive's `dirs`.
    /// Creates nothing; a bucket is reached first, so a wrong setup fails early.
    pub fn new(location: &BlobLocation, dirs: &StoreDirs) -> Result<BlobStore, BlobError> {
        Ok(BlobStore {
            backend: location.backend(dirs)?,
            location: location.clone(),
            tmp: dirs.tmp.clone(),
            space: None,
        })
    }

    /// Creates what a writer needs (the backend's own, e.g. `blobs/`, and `tmp/`).
    pub fn create_dirs(&self) -> Result<(), BlobError> {
        self.backend.create()?;
        fs::create_dir_all(&self.tmp).map_err(io_err("create", &self.tmp))
    }

    /// Where the blobs are.
    pub fn location(&self) -> &BlobLocation {
        &self.location
    }

    /// Test seam (`--simulate-disk-full blobs:BYTES`): after `bytes` more bytes, every write
    /// fails with ENOSPC, as on a full disk.
    pub fn with_space_limit(mut self, bytes: u64) -> BlobStore {
        self.space = Some(Arc::new(AtomicU64::new(bytes)));
        self
    }

    /// Where the blob is or would be (a path, or `s3://bucket/key`), for messages.
    pub fn name(&self, id: &BlobId) -> PathBuf {
        self.backend.name(id)
    }

    /// Whether the blob is stored (a HEAD request for a bucket). A bucket that cannot answer
    /// is an error, never "absent": an export must not leave a file out because of a
    /// network fault.
    pub fn contains(&self, id: &BlobId) -> Result<bool, BlobError> {
        Ok(self.stored_size(id)?.is_some())
    }

    /// The stored blob's own size (a HEAD request for a bucket); `None` when it is absent.
    /// As with [`BlobStore::contains`], a failure to look is an error, not an absence.
    pub fn stored_size(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        self.backend.size(id)
    }

    /// The blob's bytes, streamed (never held whole in memory).
    pub fn open_blob(&self, id: &BlobId) -> Result<BlobReader, BlobError> {
        self.backend.open(id)
    }

    /// Puts a hard link to the blob at the new path `dest` when the backend keeps it as a
    /// file there (local blobs on the same file system); false when the caller should copy
    /// from [`BlobStore::open_blob`] instead.
    pub fn hard_link(&self, id: &BlobId, dest: &Path) -> bool {
        self.backend.hard_link(id, dest)
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
        self.inventory_of(&[])
    }

    /// [`BlobStore::inventory`], naming the objects of the blobs in `known` (an encrypted
    /// store's object names are keyed: only the content hashes tell which object is which).
    pub fn inventory_of(&self, known: &[BlobId]) -> Result<Inventory, BlobError> {
        let objects = self.backend.list_known(known)?;
        let mut temps = Vec::new();
        collect_files(&self.tmp, 1, &mut temps)?;
        let mut inventory = Inventory { objects, temps };
        inventory.objects.sort_by(|a, b| a.name.cmp(&b.name));
        inventory.temps.sort();
        Ok(inventory)
    }

    /// Uploads the catalog copy `file` as snapshot `name` (`<prefix>/catalogs/<name>`).
    pub fn put_catalog_snapshot(&self, file: &Path, name: &str) -> Result<(), BlobError> {
        self.backend.put_named(name, file)
    }

    /// Names of the catalog snapshots, oldest first.
    pub fn catalog_snapshots(&self) -> Result<Vec<String>, BlobError> {
        self.backend.list_named()
    }

    pub fn delete_catalog_snapshot(&self, name: &str) -> Result<(), BlobError> {
        self.backend.delete_named(name)
    }

    /// Downloads snapshot `name` into the new file `dest`.
    pub fn fetch_catalog_snapshot(&self, name: &str, dest: &Path) -> Result<(), BlobError> {
        self.backend.get_named(name, dest)
    }

    /// The id of the encrypted repository the store reads and writes; None for plain
    /// storage.
    pub fn encryption(&self) -> Option<&str> {
        self.backend.encryption().map(keys::Unlocked::repository)
    }

    /// True while the encrypted repository this store writes is still being created (its
    /// key object, keyring and marker not yet in the bucket), or its creation failed.
    pub fn encryption_pending(&self) -> bool {
        self.backend
            .encryption()
            .is_some_and(|unlocked| !unlocked.is_in_bucket())
    }

    fn unlocked(&self) -> Result<&keys::Unlocked, BlobError> {
        self.backend
            .encryption()
            .ok_or_else(|| BlobError::NotEncrypted {
                location: self.location.to_string(),
            })
    }

    /// The key objects of the encrypted repository.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>, BlobError> {
        self.unlocked()?.list_keys(self.backend.as_ref())
    }

    /// Adds a key object for `password` (Argon2id calibrated on this machine); `written`
    /// hears of the key object once it is stored, before the keyring lists it.
    pub fn add_key(
        &self,
        password: &[u8],
        host: &str,
        now_ms: i64,
        written: &mut dyn FnMut(&str),
    ) -> Result<keys::Created, BlobError> {
        self.unlocked()?
            .add_key(self.backend.as_ref(), password, host, now_ms, written)
    }

    /// Removes key object `id`; the last one is refused.
    pub fn remove_key(&self, id: &str) -> Result<(), BlobError> {
        self.unlocked()?.remove_key(self.backend.as_ref(), id)
    }

    /// The id of the key object this run's password opened.
    pub fn current_key(&self) -> Result<&str, BlobError> {
        Ok(self.unlocked()?.key_id())
    }

    /// Problems of the encrypted repository's own objects (key objects, keyring); none for
    /// plain storage.
    pub fn audit_keys(&self) -> Result<Vec<KeyProblem>, BlobError> {
        match self.backend.encryption() {
            Some(unlocked) => unlocked.audit(self.backend.as_ref()),
            None => Ok(Vec::new()),
        }
    }

    /// Where in-flight files go (`tmp/` of the archive).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Moves a damaged blob out of the store (to the archive's `damaged/`, or to
    /// `<prefix>/damaged/` in a bucket); its bytes may be all that is left, so it is never
    /// deleted. False when there was nothing to move.
    pub fn quarantine(&self, id: &BlobId) -> Result<bool, BlobError> {
        self.backend.quarantine(id)
    }

    /// Aborts the multipart uploads that a killed process left in the bucket (recorded in
    /// `tmp/uploads/`); 0 for local blobs. Only the lock holder may call this, since another
    /// writer's uploads would be in flight.
    pub fn abort_interrupted_uploads(&self) -> Result<usize, BlobError> {
        self.backend.abort_interrupted()
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
    pub fn commit(mut self) -> Result<BlobRef, BlobError> {
        let file = self.file.take().expect("commit consumes the writer once");
        let id = BlobId::from_hash(&self.hasher.finalize());
        self.store.backend.put(Spooled {
            id: id.clone(),
            file,
            path: self.temp.clone(),
            size: self.size,
        })?;
        Ok(BlobRef {
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
pub(crate) fn collect_files(
    dir: &Path,
    depth: u32,
    out: &mut Vec<PathBuf>,
) -> Result<(), BlobError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A local store in `dir`, laid out as an archive lays it out, ready for writing.
    fn local_store(dir: &Path) -> BlobStore {
        let dirs = StoreDirs {
            blobs: dir.join("blobs"),
            tmp: dir.join("tmp"),
            damaged: dir.join("damaged"),
        };
        let store = BlobStore::new(&BlobLocation::Local, &dirs).unwrap();
        store.create_dirs().unwrap();
        store
    }

    fn ingest(store: &BlobStore, bytes: &[u8]) -> Result<BlobRef, BlobError> {
        let mut writer = store.writer()?;
        writer.write_all(bytes).map_err(|source| BlobError::Io {
            action: "write",
            path: writer.temp_path().to_owned(),
            source,
        })?;
        writer.commit()
    }

    /// Where the local backend keeps a blob: `blobs/<h[0..2]>/<h[2..4]>/<h>`.
    fn layout_path(dir: &Path, id: &BlobId) -> PathBuf {
        let h = id.as_str();
        dir.join("blobs").join(&h[0..2]).join(&h[2..4]).join(h)
    }

    #[test]
    fn equal_bytes_are_stored_once_and_named_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = local_store(dir.path());
        let a = ingest(&store, b"same bytes").unwrap();
        let b = ingest(&store, b"same bytes").unwrap();
        let c = ingest(&store, b"other").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.id, c.id);
        assert_eq!(a.id.as_str(), blake3::hash(b"same bytes").to_hex().as_str());
        assert_eq!(
            fs::read(layout_path(dir.path(), &a.id)).unwrap(),
            b"same bytes"
        );
        assert_eq!(store.hash_blob(&c.id).unwrap(), (c.id.clone(), 5));
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no temp files left"
        );
    }

    #[test]
    fn dropped_writer_leaves_no_blob_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let store = local_store(dir.path());
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
        let store = local_store(dir.path()).with_space_limit(10);
        ingest(&store, b"0123456789").unwrap();
        let err = ingest(&store, b"x").unwrap_err();
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
        let store = local_store(dir.path());
        let a = ingest(&store, b"a blob").unwrap();
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
        assert_eq!(store.name(&a.id), layout_path(dir.path(), &a.id));
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
    fn local_blobs_are_hard_linked_and_quarantined_into_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let store = local_store(dir.path());
        let a = ingest(&store, b"linked").unwrap();
        let dest = dir.path().join("out");
        assert!(store.hard_link(&a.id, &dest));
        assert_eq!(fs::read(&dest).unwrap(), b"linked");
        assert!(
            !store.hard_link(&a.id, &dest),
            "dest exists: the caller copies"
        );
        assert!(store.quarantine(&a.id).unwrap());
        assert_eq!(
            fs::read(dir.path().join("damaged").join(a.id.as_str())).unwrap(),
            b"linked"
        );
        assert_eq!(store.stored_size(&a.id).unwrap(), None);
        assert!(!store.quarantine(&a.id).unwrap());
        assert!(store.open_blob(&a.id).err().unwrap().is_missing());
    }

    #[test]
    fn clean_tmp_removes_crash_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = local_store(dir.path());
        fs::write(dir.path().join("tmp/123-0-deadbeef.part"), b"x").unwrap();
        assert_eq!(store.clean_tmp().unwrap().temps, 1);
    }
}
