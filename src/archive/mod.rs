//! The archive directory as a whole: it names everything in it ([`CATALOG_FILE`],
//! [`BLOBS_DIR`], [`TMP_DIR`], [`DAMAGED_DIR`], [`LOCK_FILE`]) and opens it, the way rustic's
//! `Repository` does, so that no command opens the catalog or the blob store itself:
//!
//! - for reading, [`Archive::open_read`] gives a [`ReadArchive`]: a read-only catalog (one
//!   written by an older matterbak upgraded first, under the lock), and the blobs where the
//!   catalog remembers them (a `--blobs` that contradicts it is refused);
//! - for writing, [`Archive::open_write`] (or [`Archive::lock`], then
//!   [`LockedArchive::open_write`] when a sync logs in between) gives a [`WriteArchive`]: the
//!   lock, the catalog opened to write (created and migrated), the blobs. Only this type
//!   offers writes; [`WriteArchive::into_writer`] hands its catalog to the one writer thread.
//!
//! May import `catalog`, `blobs` and `model`, nothing else of the crate.
//!
//! Invariants: nothing writes the archive without holding its lock; a catalog is upgraded
//! only by the lock holder; the blob location the catalog remembers is never silently
//! changed (only `pull`, which makes a new archive from a snapshot, re-points it); a
//! directory of other files never becomes an archive ([`Claim::NewOrArchive`]).

mod lock;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread::JoinHandle;

use crate::blobs::{
    BadLocation, BlobError, BlobLocation, BlobStore, Cleaned, KeyError, StoreDirs, keys,
};
use crate::catalog::{Access, BlobSetting, Catalog, CatalogError, CatalogWriter, SCHEMA_VERSION};

pub use lock::{ArchiveLock, LockError};

/// The SQLite catalog (with SQLite's `-wal` and `-shm` files beside it).
pub const CATALOG_FILE: &str = "catalog.sqlite";
/// The local blob store (`blobs/ab/cd/<hash>`).
pub const BLOBS_DIR: &str = "blobs";
/// Bytes in flight: downloads being hashed, catalog copies, records of multipart uploads.
pub const TMP_DIR: &str = "tmp";
/// Where verify moves damaged local blobs.
pub const DAMAGED_DIR: &str = "damaged";
/// The lock file (holds the holder's pid, for the message a second writer gets).
pub const LOCK_FILE: &str = "lock";

/// Every top-level name an archive directory may hold.
pub const NAMES: [&str; 7] = [
    CATALOG_FILE,
    "catalog.sqlite-wal",
    "catalog.sqlite-shm",
    BLOBS_DIR,
    TMP_DIR,
    DAMAGED_DIR,
    LOCK_FILE,
];

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("no archive at {}: it holds no {CATALOG_FILE} (run `matterbak sync` first, or give --archive DIR)", dir.display())]
    Missing { dir: PathBuf },
    #[error(
        "refusing to write into {}: it is not empty and not an archive matterbak wrote ({} entr{} such as {first:?}); choose a new or empty directory",
        dir.display(),
        count,
        if *count == 1 { "y" } else { "ies" }
    )]
    Foreign {
        dir: PathBuf,
        count: usize,
        first: String,
    },
    /// `--blobs` names another store than the catalog remembers.
    #[error(
        "archive {} keeps its blobs in {kept}, but --blobs (or MATTERBAK_BLOBS) says {given}; drop the flag, or use a separate archive directory for another store",
        dir.display()
    )]
    OtherBlobs {
        dir: PathBuf,
        kept: BlobLocation,
        given: BlobLocation,
    },
    /// A writer found another location remembered once it held the lock.
    #[error(
        "archive keeps its blobs in {kept}, not {given}; a sync never splits an archive's blobs over two stores"
    )]
    BlobsElsewhere { kept: String, given: String },
    #[error("the catalog of {} names its blob store", dir.display())]
    RememberedLocation {
        dir: PathBuf,
        #[source]
        source: BadLocation,
    },
    #[error("the catalog has schema version {found} and needs upgrading to {SCHEMA_VERSION} first")]
    UpgradeNeedsLock {
        found: i64,
        #[source]
        source: LockError,
    },
    #[error("cannot upgrade the catalog from schema version {found} to {SCHEMA_VERSION}")]
    Upgrade {
        found: i64,
        #[source]
        source: CatalogError,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl ArchiveError {
    /// The holder's description when another process holds the lock.
    pub fn busy_holder(&self) -> Option<&str> {
        match self {
            ArchiveError::Lock(LockError::Busy { holder, .. }) => Some(holder),
            _ => None,
        }
    }
}

/// What [`Archive::lock`] may turn into an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A new or empty directory, or an archive (by its catalog, or by holding only an
    /// archive's names: a first sync stopped before the catalog existed). A mistyped
    /// `--archive ~` must not scatter an archive among a user's files.
    NewOrArchive,
    /// Any directory (import and verify write only an archive's own names into it).
    AnyDirectory,
}

/// An archive directory, not opened yet: its names and the ways to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archive {
    dir: PathBuf,
}

impl Archive {
    pub fn at(dir: impl Into<PathBuf>) -> Archive {
        Archive { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn catalog_path(&self) -> PathBuf {
        self.dir.join(CATALOG_FILE)
    }

    pub fn damaged_dir(&self) -> PathBuf {
        self.dir.join(DAMAGED_DIR)
    }

    fn store_dirs(&self) -> StoreDirs {
        StoreDirs {
            blobs: self.dir.join(BLOBS_DIR),
            tmp: self.dir.join(TMP_DIR),
            damaged: self.damaged_dir(),
        }
    }

    /// The blob store at `location`, reached (a bucket answers one listing) but nothing
    /// created, no lock taken: for a writer to reach the bucket before it touches the
    /// directory.
    pub fn blobs(&self, location: &BlobLocation) -> Result<BlobStore, BlobError> {
        BlobStore::new(location, &self.store_dirs())
    }

    /// Makes the empty bucket prefix at `location` an encrypted repository opened by
    /// `password` (see `blobs::keys::create`: its key object is derived and written on a
    /// thread of its own). Writes nothing to the archive directory.
    pub fn create_encrypted(
        &self,
        location: &BlobLocation,
        password: crate::blobs::keys::Password,
        host: &str,
        now_ms: i64,
    ) -> Result<crate::blobs::keys::Creating, BlobError> {
        location.create_encrypted(&self.store_dirs(), password, host, now_ms)
    }

    /// Where the archive's blobs are: `given` (`--blobs`), else what the catalog remembers,
    /// else local disk. A `given` that contradicts the catalog is refused: the blobs would
    /// seem missing (or, for a writer, be split across two stores). A catalog that cannot be
    /// read remembers nothing here (verify reports it as damage).
    pub fn blob_location(
        &self,
        given: Option<&BlobLocation>,
    ) -> Result<BlobLocation, ArchiveError> {
        let setting = Catalog::open(&self.catalog_path(), Access::ReadOnly)
            .and_then(|catalog| catalog.blob_setting())
            .unwrap_or(BlobSetting::Nothing);
        self.resolve(given, setting)
    }

    fn resolve(
        &self,
        given: Option<&BlobLocation>,
        setting: BlobSetting,
    ) -> Result<BlobLocation, ArchiveError> {
        let kept = match setting {
            BlobSetting::Remembered(text) => {
                Some(text.parse::<BlobLocation>().map_err(|source| {
                    ArchiveError::RememberedLocation {
                        dir: self.dir.clone(),
                        source,
                    }
                })?)
            }
            BlobSetting::Unnamed => Some(BlobLocation::Local),
            BlobSetting::Nothing => None,
        };
        match (given, kept) {
            (Some(given), Some(kept)) if *given != kept => Err(ArchiveError::OtherBlobs {
                dir: self.dir.clone(),
                kept,
                given: given.clone(),
            }),
            (Some(given), _) => Ok(given.clone()),
            (None, Some(kept)) => Ok(kept),
            (None, None) => Ok(BlobLocation::Local),
        }
    }

    /// Opens the archive for reading: the catalog read-only, upgraded first when an older
    /// matterbak wrote it (under the lock, so never during a sync; a catalog of a newer one is
    /// refused), and the blobs at `given` or where the catalog remembers them
    /// ([`Archive::blob_location`]; reached on first use, [`ReadArchive::blobs`]).
    pub fn open_read(&self, given: Option<&BlobLocation>) -> Result<ReadArchive, ArchiveError> {
        let (catalog, upgraded_from) = self.open_catalog_upgraded()?;
        let location = self.resolve(given, catalog.blob_setting()?)?;
        Ok(ReadArchive {
            archive: self.clone(),
            catalog,
            location,
            blobs: OnceLock::new(),
            upgraded_from,
        })
    }

    /// Opens the archive as found, for checking it: the catalog read-only and never upgraded
    /// (verify must not write to a catalog that may be damaged), the blobs at `location`
    /// (resolved beforehand with [`Archive::blob_location`], which tolerates a damaged
    /// catalog). A catalog SQLite cannot open is a [`CatalogError`], for the caller to report.
    pub fn inspect(&self, location: &BlobLocation) -> Result<ReadArchive, ArchiveError> {
        let catalog = self.open_catalog_read_only()?;
        Ok(ReadArchive {
            archive: self.clone(),
            catalog,
            location: location.clone(),
            blobs: OnceLock::new(),
            upgraded_from: None,
        })
    }

    fn open_catalog_read_only(&self) -> Result<Catalog, ArchiveError> {
        let path = self.catalog_path();
        if !path.is_file() {
            return Err(ArchiveError::Missing {
                dir: self.dir.clone(),
            });
        }
        Ok(Catalog::open(&path, Access::ReadOnly)?)
    }

    /// The read-only catalog, upgraded in place first when it is older than this build;
    /// with the version it had then.
    fn open_catalog_upgraded(&self) -> Result<(Catalog, Option<i64>), ArchiveError> {
        let catalog = self.open_catalog_read_only()?;
        let found = catalog.schema_version()?;
        if found >= SCHEMA_VERSION {
            return Ok((catalog, None));
        }
        drop(catalog);
        let _lock = ArchiveLock::acquire(&self.dir)
            .map_err(|source| ArchiveError::UpgradeNeedsLock { found, source })?;
        Catalog::open(&self.catalog_path(), Access::ReadWrite)
            .map_err(|source| ArchiveError::Upgrade { found, source })?;
        Ok((self.open_catalog_read_only()?, Some(found)))
    }

    /// Takes the archive for writing, in one step: [`Archive::blobs`], [`Archive::lock`],
    /// [`LockedArchive::open_write`]. The lock is not waited for: a holder is an error for
    /// which [`ArchiveError::busy_holder`] names it.
    pub fn open_write(
        &self,
        location: &BlobLocation,
        claim: Claim,
    ) -> Result<WriteArchive, ArchiveError> {
        self.lock(self.blobs(location)?, claim)?.open_write()
    }

    /// Makes the directory (refusing what `claim` does not allow) and takes the lock without
    /// waiting, for the blob store `blobs` (from [`Archive::blobs`]). Nothing else is written.
    /// A directory created here is removed again when the lock cannot be taken.
    pub fn lock(&self, blobs: BlobStore, claim: Claim) -> Result<LockedArchive, ArchiveError> {
        let created = !self.dir.exists();
        if !created && !self.dir.is_dir() {
            return Err(LockError::NotADirectory {
                path: self.dir.clone(),
            }
            .into());
        }
        if claim == Claim::NewOrArchive {
            self.refuse_foreign()?;
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| LockError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let lock = ArchiveLock::acquire(&self.dir).inspect_err(|_| {
            if created {
                let _ = std::fs::remove_dir(&self.dir);
            }
        })?;
        Ok(LockedArchive {
            archive: self.clone(),
            blobs,
            created,
            lock,
        })
    }

    /// Refuses an existing directory that is neither empty nor an archive (see
    /// [`Claim::NewOrArchive`]). Writes nothing.
    fn refuse_foreign(&self) -> Result<(), ArchiveError> {
        let io = |source| LockError::Io {
            path: self.dir.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e).into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            names.push(
                entry
                    .map_err(io)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        let own = |name: &String| NAMES.contains(&name.as_str());
        if names.iter().any(|n| n == CATALOG_FILE) || names.iter().all(own) {
            return Ok(());
        }
        names.sort();
        let foreign: Vec<&String> = names.iter().filter(|n| !own(n)).collect();
        Err(ArchiveError::Foreign {
            dir: self.dir.clone(),
            count: foreign.len(),
            first: foreign[0].clone(),
        })
    }
}

/// An archive opened for reading ([`Archive::open_read`], [`Archive::inspect`]).
pub struct ReadArchive {
    archive: Archive,
    catalog: Catalog,
    location: BlobLocation,
    blobs: OnceLock<BlobStore>,
    upgraded_from: Option<i64>,
}

impl ReadArchive {
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    pub fn dir(&self) -> &Path {
        &self.archive.dir
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Where the blobs are, as resolved when the archive was opened.
    pub fn blob_location(&self) -> &BlobLocation {
        &self.location
    }

    /// The blob store, reached on first use: a command that reads only the catalog (`sql`,
    /// `search`) never contacts a bucket.
    pub fn blobs(&self) -> Result<&BlobStore, BlobError> {
        if let Some(blobs) = self.blobs.get() {
            return Ok(blobs);
        }
        let blobs = self.archive.blobs(&self.location)?;
        check_encryption(&self.catalog, &blobs)?;
        Ok(self.blobs.get_or_init(|| blobs))
    }

    /// The schema version the catalog had when opening it upgraded it (for a note), else None.
    pub fn upgraded_from(&self) -> Option<i64> {
        self.upgraded_from
    }

    /// A path in the archive's `tmp/` (created if needed) for a file in flight, such as a
    /// catalog copy.
    pub fn temp_path(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        let tmp = self.archive.dir.join(TMP_DIR);
        std::fs::create_dir_all(&tmp).map_err(|source| BlobError::Io {
            action: "create",
            path: tmp.clone(),
            source,
        })?;
        Ok(tmp.join(name))
    }

    /// Writes a consistent copy of the catalog to the new file `dest` (one read transaction:
    /// a running sync goes on). Its own connection is read-write only because SQLite refuses
    /// `VACUUM INTO` on a read-only one; the copy writes nothing to the catalog (opening it
    /// upgraded it already).
    pub fn copy_catalog_into(&self, dest: &Path) -> Result<(), ArchiveError> {
        Ok(Catalog::open(&self.archive.catalog_path(), Access::ReadWrite)?.copy_into(dest)?)
    }
}

/// The archive's lock held and its blob store reached; the catalog not opened yet (a sync
/// logs in now, so that bad credentials leave the archive as it was).
pub struct LockedArchive {
    archive: Archive,
    blobs: BlobStore,
    /// The directory did not exist before [`Archive::lock`].
    created: bool,
    lock: ArchiveLock,
}

impl LockedArchive {
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn catalog_path(&self) -> PathBuf {
        self.archive.catalog_path()
    }

    /// Releases the lock; in a directory [`Archive::lock`] created, removes the lock file and
    /// the directory again (when nothing else is in it), for a run that ended before writing.
    pub fn abandon(self) {
        if self.created {
            self.lock.remove(&self.archive.dir);
        }
    }

    /// Opens the catalog to write (creating it, and migrating it to this build's schema).
    pub fn open_write(self) -> Result<WriteArchive, ArchiveError> {
        let catalog = Catalog::open(&self.archive.catalog_path(), Access::ReadWrite)?;
        Ok(WriteArchive {
            archive: self.archive,
            blobs: self.blobs,
            catalog,
            lock: self.lock,
        })
    }
}

/// An archive opened for writing: the lock held for as long as this (or its
/// [`Writing`]) lives.
pub struct WriteArchive {
    archive: Archive,
    blobs: BlobStore,
    catalog: Catalog,
    lock: ArchiveLock,
}

impl WriteArchive {
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    pub fn catalog(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The catalog to write and the blobs at once, for a run that stores both.
    pub fn catalog_and_blobs(&mut self) -> (&mut Catalog, &BlobStore) {
        (&mut self.catalog, &self.blobs)
    }

    /// Readies the blob store for new blobs: creates its directories, and removes what an
    /// interrupted writer left (temp files in `tmp/`, multipart uploads in a bucket).
    pub fn prepare_blobs(&self) -> Result<Cleaned, ArchiveError> {
        self.blobs.create_dirs()?;
        Ok(self.blobs.clean_tmp()?)
    }

    /// Remembers the blob store's location in the catalog, so later commands need not repeat
    /// `--blobs`. Refuses when the catalog remembers another one: an archive's blobs are never
    /// split over two stores.
    pub fn remember_blob_location(&mut self) -> Result<(), ArchiveError> {
        let given = self.blobs.location().to_string();
        let kept = match self.catalog.blob_setting()? {
            BlobSetting::Remembered(text) => Some(text),
            BlobSetting::Unnamed => Some(BlobLocation::Local.to_string()),
            BlobSetting::Nothing => None,
        };
        match kept {
            Some(kept) if kept != given => Err(ArchiveError::BlobsElsewhere { kept, given }),
            _ => {
                check_encryption(&self.catalog, &self.blobs)?;
                self.catalog.remember_blob_location(&given)?;
                self.remember_encryption()
            }
        }
    }

    /// Points the catalog at the blob store's location, whatever it remembered: for a
    /// catalog pulled from a bucket that was copied or renamed since its snapshot. The
    /// encryption is the bucket's, checked like any other open.
    pub fn relocate_blobs(&mut self) -> Result<(), ArchiveError> {
        let location = self.blobs.location().to_string();
        self.catalog.remember_blob_location(&location)?;
        check_encryption(&self.catalog, &self.blobs)?;
        self.remember_encryption()
    }

    /// Remembers whether the bucket is encrypted (the repository's id), for later opens to
    /// refuse a bucket that changed under the archive. Not while the repository is being
    /// created: a creation that fails or is killed leaves no repository in the bucket, and a
    /// remembered id would then refuse the next `sync --encrypt` that creates it again (the
    /// caller remembers it once the creation is done, see `cli::sync`).
    fn remember_encryption(&mut self) -> Result<(), ArchiveError> {
        if *self.blobs.location() == BlobLocation::Local || self.blobs.encryption_pending() {
            return Ok(());
        }
        let found = self.blobs.encryption().unwrap_or(keys::NOT_ENCRYPTED);
        Ok(self.catalog.remember_encryption(found)?)
    }

    /// Test seam (`--simulate-disk-full blobs:BYTES`): blob writes fail as on a full disk
    /// after `bytes` more bytes.
    pub fn limit_blob_space(&mut self, bytes: u64) {
        self.blobs = self.blobs.clone().with_space_limit(bytes);
    }

    /// Moves the catalog onto the one writer thread for a run.
    pub fn into_writer(self) -> Writing {
        let (writer, thread) = CatalogWriter::spawn(self.catalog);
        Writing {
            writer,
            blobs: self.blobs,
            thread,
            lock: self.lock,
        }
    }
}

/// A run's handle on an archive opened for writing: the catalog's writer thread, the blobs,
/// the lock.
pub struct Writing {
    pub writer: CatalogWriter,
    pub blobs: BlobStore,
    thread: JoinHandle<()>,
    lock: ArchiveLock,
}

impl Writing {
    /// Waits for the writer thread to finish every job sent (once every clone of the writer
    /// is dropped), then releases the lock.
    pub fn finish(self) {
        let Writing {
            writer,
            blobs,
            thread,
            lock,
        } = self;
        drop(writer);
        let _ = thread.join();
        drop(blobs);
        drop(lock);
    }
}

/// Refuses a bucket whose encryption is not what the catalog remembers (a plain prefix where
/// an encrypted repository was, another repository, or the reverse): its blobs would seem
/// damaged, or new ones be written in the other form.
fn check_encryption(catalog: &Catalog, blobs: &BlobStore) -> Result<(), BlobError> {
    if *blobs.location() == BlobLocation::Local {
        return Ok(());
    }
    let Some(remembered) = catalog
        .encryption_setting()
        .map_err(|e| KeyError::BadObject {
            location: blobs.location().to_string(),
            what: "the catalog's encryption setting".into(),
            reason: e.to_string(),
        })?
    else {
        return Ok(());
    };
    let found = blobs.encryption().unwrap_or(keys::NOT_ENCRYPTED);
    if remembered == found {
        return Ok(());
    }
    Err(KeyError::Mismatch {
        location: blobs.location().to_string(),
        remembered: keys::describe(&remembered),
        found: format!("the bucket holds {}", keys::describe(found)),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_that_contradicts_the_remembered_location_is_refused() {
        let archive = Archive::at("/srv/a");
        let bucket: BlobLocation = "s3://bucket1/p".parse().unwrap();
        let remembered = || BlobSetting::Remembered("s3://bucket1/p".into());
        assert_eq!(archive.resolve(None, remembered()).unwrap(), bucket);
        assert_eq!(
            archive.resolve(Some(&bucket), remembered()).unwrap(),
            bucket
        );
        let err = archive
            .resolve(Some(&BlobLocation::Local), remembered())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "archive /srv/a keeps its blobs in s3://bucket1/p, but --blobs (or MATTERBAK_BLOBS) says local; drop the flag, or use a separate archive directory for another store"
        );
        // Older archives remember nothing but hold local blobs.
        assert!(
            archive
                .resolve(Some(&bucket), BlobSetting::Unnamed)
                .is_err()
        );
        assert_eq!(
            archive
                .resolve(Some(&bucket), BlobSetting::Nothing)
                .unwrap(),
            bucket
        );
        assert_eq!(
            archive.resolve(None, BlobSetting::Nothing).unwrap(),
            BlobLocation::Local
        );
    }

    #[test]
    fn a_directory_of_other_files_is_not_claimed_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let archive = Archive::at(dir.path());
        let err = archive
            .lock(
                archive.blobs(&BlobLocation::Local).unwrap(),
                Claim::NewOrArchive,
            )
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("not an archive matterbak wrote (1 entry such as \"notes.txt\")"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Import and verify take any directory.
        let locked = archive
            .lock(
                archive.blobs(&BlobLocation::Local).unwrap(),
                Claim::AnyDirectory,
            )
            .unwrap();
        assert!(dir.path().join(LOCK_FILE).is_file());
        locked.abandon();
        // An archive is recognised by its catalog, whatever else is beside it.
        std::fs::write(dir.path().join(CATALOG_FILE), "").unwrap();
        archive.refuse_foreign().unwrap();
        // A first sync stopped before the catalog existed leaves only an archive's names.
        let early = tempfile::tempdir().unwrap();
        std::fs::create_dir(early.path().join(TMP_DIR)).unwrap();
        std::fs::write(early.path().join(LOCK_FILE), "pid 1").unwrap();
        Archive::at(early.path()).refuse_foreign().unwrap();
    }

    #[test]
    fn a_new_directory_is_removed_again_when_the_run_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::at(dir.path().join("new"));
        let locked = archive
            .lock(
                archive.blobs(&BlobLocation::Local).unwrap(),
                Claim::NewOrArchive,
            )
            .unwrap();
        assert!(archive.dir().join(LOCK_FILE).is_file());
        locked.abandon();
        assert!(!archive.dir().exists());
    }

    #[test]
    fn reading_a_directory_without_a_catalog_names_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let err = Archive::at(dir.path()).open_read(None).err().unwrap();
        assert!(matches!(err, ArchiveError::Missing { .. }), "{err}");
        assert!(err.to_string().starts_with("no archive at "), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_older_catalog_is_upgraded_before_reading_and_a_held_lock_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::at(dir.path());
        let path = archive.catalog_path();
        // A catalog of schema version 3, as a matterbak before the settings table wrote it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (_, sql) in &crate::catalog::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 3").unwrap();
        drop(conn);
        let held = ArchiveLock::acquire(dir.path()).unwrap();
        let err = archive.open_read(None).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("the catalog has schema version 3 and needs upgrading to"),
            "{err}"
        );
        assert!(err.busy_holder().is_none(), "the busy lock is the source");
        drop(held);
        let read = archive.open_read(None).unwrap();
        assert_eq!(read.upgraded_from(), Some(3));
        assert_eq!(read.catalog().schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(*read.blob_location(), BlobLocation::Local);
        let again = archive.open_read(None).unwrap();
        assert_eq!(again.upgraded_from(), None);
    }
}
