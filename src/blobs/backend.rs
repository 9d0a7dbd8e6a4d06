//! The seam between the blob store and where bytes are kept: [`BlobBackend`], after rustic's
//! `ReadBackend`/`WriteBackend`. The store ([`super::BlobStore`]) spools and hashes bytes,
//! limits space in tests and lists `tmp/`; a backend only keeps, finds and hands back
//! blobs by id, plus a few named objects (catalog snapshots). Backends sit beside each other
//! (`local`, `s3`); a wrapper around any of them (encryption) is one more implementation that
//! holds an inner backend.
//!
//! May import `model` and the rest of `blobs`, nothing else.
//!
//! Invariants every implementation keeps: a blob is complete and named by the hash of its
//! bytes, and is durable before [`BlobBackend::put`] returns; every size is the blob's own
//! size (the bytes its hash was taken over), never the size of a transformed copy; a
//! quarantined blob is moved aside, never deleted.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{BlobError, BlobReader, Listed};
use crate::model::BlobId;

/// Bytes spooled to a temp file in the archive's `tmp/` and hashed while written, ready to
/// be kept as blob `id`.
#[derive(Debug)]
pub struct Spooled {
    pub id: BlobId,
    /// The temp file, open for writing (a backend that keeps files fsyncs it).
    pub file: File,
    pub path: PathBuf,
    /// The blob's own size in bytes.
    pub size: u64,
}

/// Where blobs are kept: a directory, a bucket, or a wrapper around either.
pub trait BlobBackend: Send + Sync + std::fmt::Debug {
    /// Prepares to be written to (the local backend creates its directory). Idempotent.
    fn create(&self) -> Result<(), BlobError> {
        Ok(())
    }

    /// Keeps the spooled bytes as blob `spooled.id`, unless that blob is kept already (equal
    /// bytes: the existing one is the blob). Returns once the blob is durable; the temp file
    /// is gone then. Blocks: call it off the async workers.
    fn put(&self, spooled: Spooled) -> Result<(), BlobError>;

    /// The blob's bytes, streamed, with its own size. A blob that is not kept is an error for
    /// which [`BlobError::is_missing`] holds.
    fn open(&self, id: &BlobId) -> Result<BlobReader, BlobError>;

    /// The blob's own size; `None` when it is not kept. A failure to look is an error, never
    /// "absent".
    fn size(&self, id: &BlobId) -> Result<Option<u64>, BlobError>;

    /// Every object kept (blobs and strays; not named objects nor quarantined blobs), each
    /// with its own size.
    fn list(&self) -> Result<Vec<Listed>, BlobError>;

    /// Moves a damaged blob aside (never deleted: its bytes may be all that is left). False
    /// when there was no such blob.
    fn quarantine(&self, id: &BlobId) -> Result<bool, BlobError>;

    /// Where the blob is or would be (a path, or `s3://bucket/key`), for messages.
    fn name(&self, id: &BlobId) -> PathBuf;

    /// Puts a hard link to the blob's bytes at the new path `dest`, when this backend keeps
    /// them as a plain file on `dest`'s file system. False otherwise: the caller copies from
    /// [`BlobBackend::open`] instead (the only right thing for a wrapper that transforms
    /// bytes, hence the default).
    fn hard_link(&self, _id: &BlobId, _dest: &Path) -> bool {
        false
    }

    /// Undoes what a killed writer left half-done outside `tmp/` (multipart uploads in a
    /// bucket); returns how many. Only the archive's lock holder may call this.
    fn abort_interrupted(&self) -> Result<usize, BlobError> {
        Ok(0)
    }

    /// Keeps the file `path` as the named object `name` (a catalog snapshot).
    fn put_named(&self, name: &str, path: &Path) -> Result<(), BlobError>;

    /// Names of the named objects, sorted.
    fn list_named(&self) -> Result<Vec<String>, BlobError>;

    /// Writes the named object `name` into the new file `dest`.
    fn get_named(&self, name: &str, dest: &Path) -> Result<(), BlobError>;

    fn delete_named(&self, name: &str) -> Result<(), BlobError>;

    /// Every object kept, like [`BlobBackend::list`], with `id` resolved against the blobs
    /// the caller knows (`known`): a backend whose object names are not the content hashes
    /// (the encrypted one: keyed names) can only tell which object is which blob this way.
    fn list_known(&self, _known: &[BlobId]) -> Result<Vec<Listed>, BlobError> {
        self.list()
    }

    /// A small object of the repository's own below the prefix (`config`, `keyring`,
    /// `keys/<id>`): the encryption marker and key objects, kept as given. `create_only`
    /// refuses to overwrite ([`BlobError::Exists`]). Only a bucket has them.
    fn put_meta(&self, _name: &str, _bytes: &[u8], _create_only: bool) -> Result<(), BlobError> {
        Err(BlobError::EncryptionNeedsBucket)
    }

    /// The repository object `name`; `None` when there is none (always, on local disk).
    fn get_meta(&self, _name: &str) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(None)
    }

    /// Names (below `dir`, without it) of the repository objects in `dir`, sorted.
    fn list_meta(&self, _dir: &str) -> Result<Vec<String>, BlobError> {
        Ok(Vec::new())
    }

    fn delete_meta(&self, _name: &str) -> Result<(), BlobError> {
        Err(BlobError::EncryptionNeedsBucket)
    }

    /// The encrypted repository this backend reads and writes, once opened with a key; None
    /// for plain storage.
    fn encryption(&self) -> Option<&super::keys::Unlocked> {
        None
    }
}
