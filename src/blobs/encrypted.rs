//! [`Encrypted`]: a backend around any other that seals every object before the inner one
//! keeps it, and opens (authenticates, then decrypts) every object it hands back. Blobs are
//! kept under keyed names ([`Unlocked::object_name`]), catalog snapshots under their own
//! names; the object's name is the associated data of its sealing, so an object copied over
//! another's is detected. The inner backend only ever sees sealed bytes and keyed names.
//!
//! May import `model`, `blobs::crypto`, `blobs::keys` and the rest of `blobs`, nothing else.
//!
//! Invariants: every size this backend reports is the plaintext size (sealed lengths are a
//! function of it: [`crypto::plain_len`]); memory stays flat for any size (sealing and
//! opening stream in 1 MiB chunks, sealed bytes spool through a temp file beside the
//! plaintext one); a blob is durable under its keyed name before [`BlobBackend::put`]
//! returns, as the inner backend guarantees; nothing is written into the prefix before the
//! repository's own objects are there ([`Unlocked::ready`]: a repository this process is
//! creating writes them on a thread of its own).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::backend::{BlobBackend, Spooled};
use super::crypto;
use super::keys::Unlocked;
use super::{BlobError, BlobReader, Listed, io_err};
use crate::model::BlobId;

#[derive(Debug)]
pub struct Encrypted<B> {
    inner: B,
    keys: Arc<Unlocked>,
}

impl<B: BlobBackend> Encrypted<B> {
    pub fn new(inner: B, keys: Arc<Unlocked>) -> Encrypted<B> {
        Encrypted { inner, keys }
    }

    /// The keyed name the inner backend keeps blob `id` under.
    fn object(&self, id: &BlobId) -> BlobId {
        BlobId::parse(&self.keys.object_name(id.as_str())).expect("keyed names are BLAKE3 hex")
    }

    /// Seals the file `plain` as object `name` into the new file `sealed`; its length.
    fn seal_file(&self, name: &str, plain: &Path, sealed: &Path) -> Result<(File, u64), BlobError> {
        let mut input = File::open(plain).map_err(io_err("read", plain))?;
        let out = File::create_new(sealed).map_err(io_err("create", sealed))?;
        let mut writer = BufWriter::with_capacity(1 << 16, out);
        let written = self
            .keys
            .sealer()
            .seal(name, &mut input, &mut writer)
            .and_then(|plain_len| {
                writer.flush()?;
                Ok(plain_len)
            });
        let out = writer
            .into_inner()
            .map_err(|e| io_err("write", sealed)(e.into_error()));
        match (written, out) {
            (Ok(len), Ok(file)) => Ok((file, crypto::sealed_len(len))),
            (Err(e), _) | (_, Err(BlobError::Io { source: e, .. })) => {
                let _ = std::fs::remove_file(sealed);
                Err(io_err("seal into", sealed)(e))
            }
            (_, Err(other)) => Err(other),
        }
    }
}

/// The name of the sealed copy of the temp file `path`, beside it: ending in `.part`, so the
/// next lock holder removes it when a crash left it (as it removes the plaintext one).
fn sealed_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sealed.part");
    path.with_file_name(name)
}

/// The plaintext size of a sealed object of `sealed` bytes; for a length no plaintext seals
/// to (a truncated or padded object), the bytes it would hold were its chunks whole, so the
/// size differs from the recorded one and verify reads it.
fn plain_size(sealed: u64) -> u64 {
    crypto::plain_len(sealed).unwrap_or_else(|| {
        let body = sealed.saturating_sub(crypto::HEADER_LEN as u64);
        let chunks = body.div_ceil(crypto::CHUNK as u64 + 16).max(1);
        body.saturating_sub(chunks * 16)
    })
}

fn snapshot_name(name: &str) -> String {
    format!("catalogs/{name}")
}

impl<B: BlobBackend> BlobBackend for Encrypted<B> {
    fn create(&self) -> Result<(), BlobError> {
        self.inner.create()
    }

    fn put(&self, spooled: Spooled) -> Result<(), BlobError> {
        let Spooled { id, file, path, .. } = spooled;
        drop(file);
        if let Err(e) = self.keys.ready() {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let object = self.object(&id);
        let sealed = sealed_path(&path);
        let result = self
            .seal_file(object.as_str(), &path, &sealed)
            .and_then(|(file, size)| {
                let _ = std::fs::remove_file(&path);
                self.inner.put(Spooled {
                    id: object,
                    file,
                    path: sealed.clone(),
                    size,
                })
            });
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&sealed);
        result
    }

    fn open(&self, id: &BlobId) -> Result<BlobReader, BlobError> {
        let object = self.object(id);
        let sealed = self.inner.open(&object)?;
        let len = plain_size(sealed.len());
        let reader = self.keys.sealer().open(object.as_str(), sealed);
        Ok(BlobReader::new(reader, len))
    }

    fn size(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        Ok(self.inner.size(&self.object(id))?.map(plain_size))
    }

    /// Without the content hashes no object can be named: every object is listed unnamed.
    fn list(&self) -> Result<Vec<Listed>, BlobError> {
        self.list_known(&[])
    }

    fn list_known(&self, known: &[BlobId]) -> Result<Vec<Listed>, BlobError> {
        let by_object: HashMap<BlobId, &BlobId> =
            known.iter().map(|id| (self.object(id), id)).collect();
        Ok(self
            .inner
            .list()?
            .into_iter()
            .map(|listed| Listed {
                id: listed
                    .id
                    .as_ref()
                    .and_then(|object| by_object.get(object))
                    .map(|id| (*id).clone()),
                name: listed.name,
                size: plain_size(listed.size),
            })
            .collect())
    }

    fn quarantine(&self, id: &BlobId) -> Result<bool, BlobError> {
        self.keys.ready()?;
        self.inner.quarantine(&self.object(id))
    }

    fn name(&self, id: &BlobId) -> PathBuf {
        self.inner.name(&self.object(id))
    }

    fn abort_interrupted(&self) -> Result<usize, BlobError> {
        self.inner.abort_interrupted()
    }

    fn put_named(&self, name: &str, path: &Path) -> Result<(), BlobError> {
        self.keys.ready()?;
        let sealed = sealed_path(path);
        let result = self
            .seal_file(&snapshot_name(name), path, &sealed)
            .and_then(|(file, _)| {
                drop(file);
                self.inner.put_named(name, &sealed)
            });
        let _ = std::fs::remove_file(&sealed);
        result
    }

    fn list_named(&self) -> Result<Vec<String>, BlobError> {
        self.inner.list_named()
    }

    fn get_named(&self, name: &str, dest: &Path) -> Result<(), BlobError> {
        let sealed = sealed_path(dest);
        let _ = std::fs::remove_file(&sealed);
        self.inner.get_named(name, &sealed)?;
        let opened = (|| {
            let input = File::open(&sealed).map_err(io_err("read", &sealed))?;
            let mut reader = self.keys.sealer().open(&snapshot_name(name), input);
            let mut out = File::create_new(dest).map_err(io_err("create", dest))?;
            io::copy(&mut reader, &mut out).map_err(|e| BlobError::Sealed {
                name: self.inner_snapshot_url(name),
                source: crypto::crypto_error(e),
            })?;
            out.sync_all().map_err(io_err("fsync", dest))
        })();
        let _ = std::fs::remove_file(&sealed);
        if opened.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        opened
    }

    fn delete_named(&self, name: &str) -> Result<(), BlobError> {
        self.keys.ready()?;
        self.inner.delete_named(name)
    }

    fn put_meta(&self, name: &str, bytes: &[u8], create_only: bool) -> Result<(), BlobError> {
        self.keys.ready()?;
        self.inner.put_meta(name, bytes, create_only)
    }

    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, BlobError> {
        self.inner.get_meta(name)
    }

    fn list_meta(&self, dir: &str) -> Result<Vec<String>, BlobError> {
        self.inner.list_meta(dir)
    }

    fn delete_meta(&self, name: &str) -> Result<(), BlobError> {
        self.keys.ready()?;
        self.inner.delete_meta(name)
    }

    fn encryption(&self) -> Option<&Unlocked> {
        Some(&self.keys)
    }
}

impl<B: BlobBackend> Encrypted<B> {
    fn inner_snapshot_url(&self, name: &str) -> String {
        snapshot_name(name)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::blobs::crypto::MasterKey;
    use crate::blobs::local::Local;

    struct Fixture {
        dir: tempfile::TempDir,
        store: Encrypted<Local>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let inner = Local::new(dir.path().join("blobs"), dir.path().join("damaged"));
        inner.create().unwrap();
        let keys = Arc::new(Unlocked::for_test(MasterKey::generate()));
        Fixture {
            store: Encrypted::new(inner, keys),
            dir,
        }
    }

    fn put(f: &Fixture, bytes: &[u8]) -> BlobId {
        let path = f
            .dir
            .path()
            .join("tmp")
            .join(format!("{}.part", rand::random::<u32>()));
        let mut file = File::create_new(&path).unwrap();
        file.write_all(bytes).unwrap();
        let id = BlobId::from_hash(&blake3::hash(bytes));
        f.store
            .put(Spooled {
                id: id.clone(),
                file,
                path: path.clone(),
                size: bytes.len() as u64,
            })
            .unwrap();
        assert!(
            !path.exists() && !sealed_path(&path).exists(),
            "temp files gone"
        );
        id
    }

    fn read(f: &Fixture, id: &BlobId) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        f.store.open(id).unwrap().read_to_end(&mut out)?;
        Ok(out)
    }

    fn object_path(f: &Fixture, id: &BlobId) -> PathBuf {
        f.store.name(id)
    }

    #[test]
    fn blobs_are_sealed_under_keyed_names_and_read_back_with_their_own_size() {
        let f = fixture();
        let text = b"the launch date moves to the 14th, tell nobody yet".repeat(3);
        let id = put(&f, &text);
        let on_disk = std::fs::read(object_path(&f, &id)).unwrap();
        assert_eq!(on_disk.len() as u64, crypto::sealed_len(text.len() as u64));
        assert!(
            !on_disk
                .windows(12)
                .any(|w| text.windows(12).any(|t| t == w))
        );
        assert!(!object_path(&f, &id).to_string_lossy().contains(id.as_str()));
        assert_eq!(f.store.size(&id).unwrap(), Some(text.len() as u64));
        assert_eq!(f.store.open(&id).unwrap().len(), text.len() as u64);
        assert_eq!(read(&f, &id).unwrap(), text);
        // Dedup: the same bytes again are the same object.
        assert_eq!(put(&f, &text), id);
        let listed = f.store.list_known(std::slice::from_ref(&id)).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id.as_ref(), Some(&id));
        assert_eq!(listed[0].size, text.len() as u64);
        assert_eq!(f.store.list().unwrap()[0].id, None, "no hash, no name");
        assert_eq!(
            f.store
                .size(&BlobId::parse(&"0".repeat(64)).unwrap())
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_blob_of_several_chunks_streams_through() {
        let f = fixture();
        let big: Vec<u8> = (0..(2 * crypto::CHUNK + 12_345))
            .map(|i| (i % 253) as u8)
            .collect();
        let id = put(&f, &big);
        assert_eq!(read(&f, &id).unwrap(), big);
    }

    #[test]
    fn flipped_truncated_and_swapped_objects_fail_to_open() {
        let f = fixture();
        let a = put(&f, b"first object's bytes");
        let b = put(&f, b"second object's bytes, longer");
        let path = object_path(&f, &a);
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        flipped[40] ^= 0x01;
        std::fs::write(&path, &flipped).unwrap();
        assert!(
            read(&f, &a)
                .unwrap_err()
                .to_string()
                .contains("authentication failed"),
        );
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert_ne!(f.store.size(&a).unwrap(), Some(20), "size shows the cut");
        assert!(read(&f, &a).is_err());
        // b's bytes under a's name: each is authentic, but not as the other.
        std::fs::copy(object_path(&f, &b), &path).unwrap();
        assert!(
            read(&f, &a)
                .unwrap_err()
                .to_string()
                .contains("another name"),
        );
        std::fs::write(&path, &good).unwrap();
        assert_eq!(read(&f, &a).unwrap(), b"first object's bytes");
    }
}
