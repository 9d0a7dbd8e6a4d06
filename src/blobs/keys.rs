//! The encrypted repository in a bucket prefix: its marker, its keys and how a password
//! opens it. Layout below the prefix (beside the blobs and `catalogs/`):
//!
//! - `config`: the marker, in plain JSON (no secret in it): that the prefix is an encrypted
//!   repository, its random id, the format, and a MAC of these under a key derived from the
//!   master key. Written last by [`create`], so a prefix without it is plain storage, and
//!   encryption is a property of the bucket, not a flag to repeat. It is plain (it must be
//!   read before a password is asked), so whoever can write to the bucket can change it:
//!   its MAC is checked as soon as a password has opened the master key (another repository
//!   id or format is refused), and a prefix without it that still holds key objects or a
//!   keyring beside data is refused as a removed marker, not read as plain storage. The
//!   catalog remembers the repository id (or that the bucket is plain) and the archive
//!   refuses a bucket that differs, which also catches a marker removed with every key.
//! - `keys/<id>`: one [`KeyObject`] per password, each wrapping the master key under a key
//!   derived by Argon2id (parameters stored in it).
//! - `keyring`: the ids of the key objects there should be, sealed under the master key, so
//!   a deleted key object is noticed ([`Unlocked::audit`]). A key is added by writing its key
//!   object, then the keyring; removed by rewriting the keyring, then deleting the object:
//!   a process killed in between leaves every listed key usable.
//!
//! Passwords come from a [`Passwords`] source the CLI registers ([`set_passwords`]):
//! environment, file, command or terminal; without one, only `MATTERBAK_ARCHIVE_PASSWORD`. A password
//! is never stored, printed or logged; an opened repository is remembered for the process
//! (one Argon2id derivation per location, however many times a command opens its store).
//!
//! May import `model`, `blobs::crypto` and the rest of `blobs`, nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::BlobError;
use super::backend::BlobBackend;
use super::crypto::{CryptoError, KdfParams, KeyObject, MasterKey, Sealer};

/// The marker object.
pub const CONFIG: &str = "config";
/// The sealed list of key ids.
pub const KEYRING: &str = "keyring";
/// The folder of key objects.
pub const KEYS_DIR: &str = "keys";
/// Where the password comes from when no source is registered.
pub const PASSWORD_VAR: &str = "MATTERBAK_ARCHIVE_PASSWORD";

/// How long one password check should take (Argon2id, calibrated when a key is added).
pub const KDF_TARGET: Duration = Duration::from_millis(500);

/// How the catalog remembers a bucket without encryption.
pub const NOT_ENCRYPTED: &str = "none";

/// Describes a remembered or found encryption setting for [`KeyError::Mismatch`].
pub fn describe(setting: &str) -> String {
    if setting == NOT_ENCRYPTED {
        format!("plain storage (not encrypted: no `{CONFIG}` marker)")
    } else {
        format!("encrypted repository {setting}")
    }
}

/// A password, zeroed when dropped.
pub type Password = Zeroizing<Vec<u8>>;

/// Where passwords come from; the CLI registers one ([`set_passwords`]).
pub trait Passwords: Send + Sync {
    /// Whether a password was given without asking (environment, file, command): a run "with
    /// a key", refused against plain storage.
    fn given(&self) -> bool;
    /// The password to open the repository at `location`, asking on a terminal if need be;
    /// None when there is no way to get one.
    fn password(&self, location: &str) -> Result<Option<Password>, KeyError>;
}

/// Without a registered source: `MATTERBAK_ARCHIVE_PASSWORD` only.
struct FromEnv;

impl Passwords for FromEnv {
    fn given(&self) -> bool {
        std::env::var_os(PASSWORD_VAR).is_some()
    }

    fn password(&self, _location: &str) -> Result<Option<Password>, KeyError> {
        Ok(std::env::var_os(PASSWORD_VAR).map(|v| Zeroizing::new(v.into_encoded_bytes())))
    }
}

static PASSWORDS: OnceLock<Box<dyn Passwords>> = OnceLock::new();

/// Registers where passwords come from, once per process (later calls are ignored).
pub fn set_passwords(source: Box<dyn Passwords>) {
    let _ = PASSWORDS.set(source);
}

fn passwords() -> &'static dyn Passwords {
    PASSWORDS.get_or_init(|| Box::new(FromEnv)).as_ref()
}

/// Repositories opened in this process, by location.
static OPENED: Mutex<Option<HashMap<String, Arc<Unlocked>>>> = Mutex::new(None);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{location} is an encrypted repository: give its password in {PASSWORD_VAR}, with --password-file FILE or --password-command CMD, or on a terminal"
    )]
    NoPassword { location: String },
    #[error("no key in the bucket opens with this password ({location})")]
    WrongPassword { location: String },
    #[error(
        "{location} is an encrypted repository but holds no key object ({KEYS_DIR}/ is empty): it cannot be opened"
    )]
    NoKeys { location: String },
    #[error(
        "{location} is not encrypted (no `{CONFIG}` marker), but a password was given; drop the password, or use an empty prefix with `sync --encrypt`"
    )]
    PlainWithPassword { location: String },
    #[error(
        "{location} already holds {what}: --encrypt creates an encrypted repository only in an empty prefix"
    )]
    NotEmpty { location: String, what: String },
    #[error(
        "refusing to remove key {id}: it is the last key, and without a key the archive cannot be read"
    )]
    LastKey { id: String },
    #[error("{location} has no key {id} (`matterbak key list` shows them)")]
    NoSuchKey { location: String, id: String },
    #[error(
        "{location}: {found}, but the catalog remembers {remembered}; this archive and this bucket prefix do not belong together"
    )]
    Mismatch {
        location: String,
        remembered: String,
        found: String,
    },
    #[error("{what}: {reason}")]
    Source { what: String, reason: String },
    #[error("{location}: {what}: {source}")]
    Crypto {
        location: String,
        what: String,
        #[source]
        source: CryptoError,
    },
    #[error(
        "{location}/{CONFIG}, the marker of the encrypted repository, is not authentic: its MAC does not match the master key the password opened, so it was changed in the bucket (repository id, format or MAC); refusing to use the prefix, nothing written"
    )]
    ConfigTampered { location: String },
    #[error(
        "{location}/{CONFIG}, the marker of an encrypted repository, is missing, but the prefix still holds {what} beside the archive's data: the marker was removed in the bucket; refusing to treat the prefix as plain storage, nothing written (restore the marker from a copy of the bucket)"
    )]
    ConfigMissing { location: String, what: String },
    #[error(
        "{location}: the encrypted repository could not be created ({reason}); nothing of the archive was written into the prefix"
    )]
    CreateFailed { location: String, reason: String },
    #[error("{location}: {what} is not valid ({reason})")]
    BadObject {
        location: String,
        what: String,
        reason: String,
    },
}

/// The marker's content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    pub version: u32,
    /// Random id of the repository; the catalog remembers it.
    pub repository: String,
    /// The object format, for humans and for a future version.
    pub format: String,
    /// [`MasterKey::config_mac`] of the fields above ([`Config::authenticated`]), hex. A
    /// marker without one is refused like a wrong one: only the master key makes it.
    #[serde(default)]
    pub mac: String,
}

impl Config {
    /// The bytes the MAC covers: every other field, in a fixed order (JSON of a tuple).
    fn authenticated(&self) -> Vec<u8> {
        serde_json::to_vec(&(self.version, &self.repository, &self.format))
            .expect("a tuple of strings serializes")
    }

    fn sign(&mut self, master: &MasterKey) {
        self.mac = master
            .config_mac(&self.authenticated())
            .to_hex()
            .to_string();
    }

    /// Whether the MAC is the one `master` makes (compared in constant time).
    fn authentic(&self, master: &MasterKey) -> bool {
        blake3::Hash::from_hex(&self.mac)
            .is_ok_and(|mac| mac == master.config_mac(&self.authenticated()))
    }
}

/// The sealed keyring's content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Keyring {
    repository: String,
    keys: Vec<String>,
}

/// An opened repository: what the encrypted backend needs, and the key administration.
pub struct Unlocked {
    location: String,
    repository: String,
    master: MasterKey,
    sealer: Sealer,
    /// The key object the password opened.
    key_id: String,
    /// The repository's own objects, while [`create`] still writes them.
    creation: Mutex<Creation>,
}

/// Where the writing of a new repository's own objects (key object, keyring, marker) stands.
enum Creation {
    /// Written (or the repository was opened, not created).
    Done(Option<Created>),
    /// Being derived and written on its own thread.
    Running(std::thread::JoinHandle<Result<Created, BlobError>>),
    /// The thread failed (its error went to the first to wait; later waiters get its text).
    Failed(String),
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unlocked({}, key {})", self.location, self.key_id)
    }
}

/// One key object, as `key list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub created_ms: i64,
    pub host: String,
    pub m_cost_kib: u32,
    pub t_cost: u32,
    /// The key this run's password opened.
    pub current: bool,
    /// Listed in the keyring (false: a `key add` was interrupted before the keyring).
    pub in_keyring: bool,
}

/// A problem of the repository's own objects, found by [`Unlocked::audit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProblem {
    /// Damage (a key object the keyring lists is gone or unreadable) or a notice.
    pub damage: bool,
    pub text: String,
}

fn bad(location: &str, what: &str, reason: impl ToString) -> KeyError {
    KeyError::BadObject {
        location: location.to_owned(),
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

fn key_name(id: &str) -> String {
    format!("{KEYS_DIR}/{id}")
}

/// Reads the marker; None for plain storage.
pub fn read_config(backend: &dyn BlobBackend, location: &str) -> Result<Option<Config>, BlobError> {
    let Some(bytes) = backend.get_meta(CONFIG)? else {
        return Ok(None);
    };
    let config: Config =
        serde_json::from_slice(&bytes).map_err(|e| bad(location, "the `config` marker", e))?;
    if config.version != 1 {
        return Err(bad(
            location,
            "the `config` marker",
            format!("version {} is not known to this matterbak", config.version),
        )
        .into());
    }
    Ok(Some(config))
}

/// Opens the repository at `location` when the prefix holds one (asking [`Passwords`] for
/// its password), else None; a password given for plain storage is refused. Remembered for
/// the process.
pub fn open(backend: &dyn BlobBackend, location: &str) -> Result<Option<Arc<Unlocked>>, BlobError> {
    if let Some(opened) = OPENED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(location)
    {
        return Ok(Some(opened.clone()));
    }
    let Some(config) = read_config(backend, location)? else {
        refuse_removed_marker(backend, location)?;
        if passwords().given() {
            return Err(KeyError::PlainWithPassword {
                location: location.to_owned(),
            }
            .into());
        }
        return Ok(None);
    };
    let password = passwords()
        .password(location)?
        .ok_or_else(|| KeyError::NoPassword {
            location: location.to_owned(),
        })?;
    let unlocked = Arc::new(unlock(backend, location, &config, &password)?);
    remember(location, unlocked.clone());
    Ok(Some(unlocked))
}

fn remember(location: &str, unlocked: Arc<Unlocked>) {
    OPENED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(location.to_owned(), unlocked);
}

/// A prefix without the marker is plain storage, unless it still holds the repository's key
/// objects or keyring beside data (blobs or catalog snapshots): then the marker was removed,
/// and reading or writing the prefix as plain storage would turn the encrypted repository
/// into a plain one. Key objects alone are what a `sync --encrypt` killed before its marker
/// leaves ([`create`] removes them). Costs a plain prefix one listing and one GET.
fn refuse_removed_marker(backend: &dyn BlobBackend, location: &str) -> Result<(), BlobError> {
    let keys = backend.list_meta(KEYS_DIR)?;
    let what = match (keys.first(), backend.get_meta(KEYRING)?.is_some()) {
        (Some(id), _) => format!("key object {}", key_name(id)),
        (None, true) => format!("its keyring ({KEYRING})"),
        (None, false) => return Ok(()),
    };
    match contents(backend)? {
        Some(_) => Err(KeyError::ConfigMissing {
            location: location.to_owned(),
            what,
        }
        .into()),
        None => Ok(()),
    }
}

/// Tries `password` on every key object; the marker must be authentic under the master key
/// the password opens.
fn unlock(
    backend: &dyn BlobBackend,
    location: &str,
    config: &Config,
    password: &[u8],
) -> Result<Unlocked, BlobError> {
    let ids = backend.list_meta(KEYS_DIR)?;
    if ids.is_empty() {
        return Err(KeyError::NoKeys {
            location: location.to_owned(),
        }
        .into());
    }
    for id in ids {
        let Some(key) = read_key(backend, location, &id)? else {
            continue;
        };
        match key.unwrap(password) {
            Ok(master) => {
                if !config.authentic(&master) {
                    return Err(KeyError::ConfigTampered {
                        location: location.to_owned(),
                    }
                    .into());
                }
                return Ok(Unlocked {
                    location: location.to_owned(),
                    repository: config.repository.clone(),
                    sealer: master.sealer(),
                    master,
                    key_id: id,
                    creation: Mutex::new(Creation::Done(None)),
                });
            }
            Err(CryptoError::WrongPassword) => {}
            Err(source) => {
                return Err(KeyError::Crypto {
                    location: location.to_owned(),
                    what: format!("key object {}", key_name(&id)),
                    source,
                }
                .into());
            }
        }
    }
    Err(KeyError::WrongPassword {
        location: location.to_owned(),
    }
    .into())
}

fn read_key(
    backend: &dyn BlobBackend,
    location: &str,
    id: &str,
) -> Result<Option<KeyObject>, BlobError> {
    let name = key_name(id);
    let Some(bytes) = backend.get_meta(&name)? else {
        return Ok(None);
    };
    let key: KeyObject = serde_json::from_slice(&bytes)
        .map_err(|e| bad(location, &format!("key object {name}"), e))?;
    if key.id != id {
        return Err(bad(
            location,
            &format!("key object {name}"),
            "it names another id",
        )
        .into());
    }
    Ok(Some(key))
}

/// What a prefix holds, for the emptiness check of [`create`] (the first thing found).
fn contents(backend: &dyn BlobBackend) -> Result<Option<String>, BlobError> {
    if let Some(object) = backend.list()?.into_iter().next() {
        return Ok(Some(format!("objects such as {}", object.name.display())));
    }
    if let Some(name) = backend.list_named()?.into_iter().next() {
        return Ok(Some(format!("catalog snapshot {name}")));
    }
    Ok(None)
}

/// What [`create`] did.
#[derive(Clone, Debug)]
pub struct Created {
    pub repository: String,
    pub key_id: String,
    pub params: KdfParams,
    /// How long one password check takes with `params` here (the wrap's derivation, timed).
    pub check_time: Duration,
}

/// Makes the empty prefix at `location` an encrypted repository: a new master key, wrapped
/// under `password` (Argon2id calibrated here), the keyring, then the marker. A prefix that
/// holds anything else is refused before anything is written. Key objects of an earlier
/// `create` killed before its marker are removed first.
///
/// The checks run here; the Argon2id derivation (about [`KDF_TARGET`] of CPU time) and the
/// writing of the repository's own objects run on a thread of their own, so a sync goes on
/// with its requests meanwhile. The repository is usable at once (its master key is new and
/// random, the password only wraps it): it is remembered for the process, and every write of
/// the encrypted backend into the prefix waits for that thread first ([`Unlocked::ready`]),
/// so no object lands in the bucket before the key object, keyring and marker are there
/// (a process killed before leaves a prefix the next `create` takes). [`Creating::wait`]
/// waits for the thread and tells what it did.
pub fn create(
    backend: Box<dyn BlobBackend>,
    location: &str,
    password: Password,
    host: &str,
    now_ms: i64,
) -> Result<Creating, BlobError> {
    if read_config(backend.as_ref(), location)?.is_some() {
        return Err(KeyError::NotEmpty {
            location: location.to_owned(),
            what: "an encrypted repository".into(),
        }
        .into());
    }
    if let Some(what) = contents(backend.as_ref())? {
        return Err(KeyError::NotEmpty {
            location: location.to_owned(),
            what,
        }
        .into());
    }
    for stale in backend.list_meta(KEYS_DIR)? {
        backend.delete_meta(&key_name(&stale))?;
    }
    let master = MasterKey::generate();
    let repository = hex::encode(rand::random::<[u8; 16]>());
    let key_id = KeyObject::new_id();
    let mut config = Config {
        version: 1,
        repository: repository.clone(),
        format: "XChaCha20-Poly1305 STREAM, sealed-object format 2 (1 MiB chunks, name in the associated data); keyed BLAKE3 names; Argon2id key objects".into(),
        mac: String::new(),
    };
    config.sign(&master);
    let sealer = master.sealer();
    let writes = {
        let (master, sealer) = (master.clone(), sealer.clone());
        let (location, repository, key_id) =
            (location.to_owned(), repository.clone(), key_id.clone());
        let host = host.to_owned();
        move || -> Result<Created, BlobError> {
            let backend = backend.as_ref();
            let (key, check_time) =
                KeyObject::wrap_calibrated(&master, &password, KDF_TARGET, key_id, &host, now_ms)
                    .map_err(|source| wrap_error(&location, source))?;
            drop(password);
            write_key(backend, &key)?;
            write_keyring(backend, &sealer, &repository, std::slice::from_ref(&key.id))?;
            let text = serde_json::to_vec_pretty(&config).expect("a config serializes");
            backend.put_meta(CONFIG, &text, true)?;
            Ok(Created {
                repository,
                key_id: key.id,
                params: key.params,
                check_time,
            })
        }
    };
    let thread = std::thread::Builder::new()
        .name("key-creation".into())
        .spawn(writes)
        .map_err(|e| KeyError::CreateFailed {
            location: location.to_owned(),
            reason: format!("cannot start its thread: {e}"),
        })?;
    let unlocked = Arc::new(Unlocked {
        location: location.to_owned(),
        repository,
        sealer,
        master,
        key_id,
        creation: Mutex::new(Creation::Running(thread)),
    });
    remember(location, unlocked.clone());
    Ok(Creating(unlocked))
}

/// A repository [`create`] is making; see there.
#[derive(Debug)]
pub struct Creating(Arc<Unlocked>);

impl Creating {
    /// The new repository's id.
    pub fn repository(&self) -> &str {
        &self.0.repository
    }

    /// Waits until the repository's own objects are in the bucket: what was made, or why not.
    pub fn wait(&self) -> Result<Created, BlobError> {
        self.0.ready()?;
        match &*self.0.creation.lock().unwrap_or_else(|p| p.into_inner()) {
            Creation::Done(Some(created)) => Ok(created.clone()),
            _ => Err(bad(&self.0.location, "the new repository", "not created here").into()),
        }
    }
}

fn wrap_error(location: &str, source: CryptoError) -> KeyError {
    KeyError::Crypto {
        location: location.to_owned(),
        what: "wrapping the master key".into(),
        source,
    }
}

fn write_keyring(
    backend: &dyn BlobBackend,
    sealer: &Sealer,
    repository: &str,
    keys: &[String],
) -> Result<(), BlobError> {
    let ring = Keyring {
        repository: repository.to_owned(),
        keys: keys.to_vec(),
    };
    let plain = serde_json::to_vec(&ring).expect("a keyring serializes");
    backend.put_meta(KEYRING, &sealer.seal_bytes(KEYRING, &plain), false)
}

fn write_key(backend: &dyn BlobBackend, key: &KeyObject) -> Result<(), BlobError> {
    let text = serde_json::to_vec_pretty(key).expect("a key object serializes");
    backend.put_meta(&key_name(&key.id), &text, true)
}

impl Unlocked {
    /// The repository's id (the catalog remembers it).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Whether the repository's own objects are in the bucket: false while [`create`]'s
    /// thread runs or after it failed. A catalog must not remember a repository before then,
    /// or a creation that never finished would make the archive refuse its next run.
    pub fn is_in_bucket(&self) -> bool {
        matches!(
            *self.creation.lock().unwrap_or_else(|p| p.into_inner()),
            Creation::Done(_)
        )
    }

    /// The id of the key object this run's password opened.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The keyed object name of the blob with this content hash.
    pub fn object_name(&self, content_hash: &str) -> String {
        self.master.object_name(content_hash)
    }

    fn read_keyring(&self, backend: &dyn BlobBackend) -> Result<Option<Vec<String>>, BlobError> {
        let Some(sealed) = backend.get_meta(KEYRING)? else {
            return Ok(None);
        };
        let plain =
            self.sealer
                .open_bytes(KEYRING, &sealed)
                .map_err(|source| KeyError::Crypto {
                    location: self.location.clone(),
                    what: "the keyring".into(),
                    source,
                })?;
        let ring: Keyring =
            serde_json::from_slice(&plain).map_err(|e| bad(&self.location, "the keyring", e))?;
        if ring.repository != self.repository {
            return Err(bad(
                &self.location,
                "the keyring",
                "it belongs to another repository",
            )
            .into());
        }
        Ok(Some(ring.keys))
    }

    fn write_keyring(&self, backend: &dyn BlobBackend, keys: &[String]) -> Result<(), BlobError> {
        write_keyring(backend, &self.sealer, &self.repository, keys)
    }

    /// Waits until the repository's own objects are in the bucket, when this process is
    /// creating it ([`create`]); at once otherwise. Every write into the prefix calls this
    /// first, so nothing lands there before the key object, keyring and marker. The error of
    /// a failed creation goes to every caller.
    pub fn ready(&self) -> Result<(), BlobError> {
        let mut creation = self.creation.lock().unwrap_or_else(|p| p.into_inner());
        let thread = match std::mem::replace(&mut *creation, Creation::Done(None)) {
            Creation::Running(thread) => thread,
            Creation::Failed(reason) => {
                let error = KeyError::CreateFailed {
                    location: self.location.clone(),
                    reason: reason.clone(),
                };
                *creation = Creation::Failed(reason);
                return Err(error.into());
            }
            done => {
                *creation = done;
                return Ok(());
            }
        };
        let outcome = thread.join().unwrap_or_else(|_| {
            Err(KeyError::CreateFailed {
                location: self.location.clone(),
                reason: "its thread panicked".into(),
            }
            .into())
        });
        match outcome {
            Ok(created) => {
                *creation = Creation::Done(Some(created));
                Ok(())
            }
            Err(e) => {
                *creation = Creation::Failed(e.to_string());
                Err(e)
            }
        }
    }

    /// The key objects in the bucket.
    pub fn list_keys(&self, backend: &dyn BlobBackend) -> Result<Vec<KeyInfo>, BlobError> {
        let ring = self.read_keyring(backend)?.unwrap_or_default();
        let mut out = Vec::new();
        for id in backend.list_meta(KEYS_DIR)? {
            let Some(key) = read_key(backend, &self.location, &id)? else {
                continue;
            };
            out.push(KeyInfo {
                current: id == self.key_id,
                in_keyring: ring.contains(&id),
                id,
                created_ms: key.created_ms,
                host: key.host,
                m_cost_kib: key.params.m_cost,
                t_cost: key.params.t_cost,
            });
        }
        Ok(out)
    }

    /// Adds a key object for `password` (Argon2id calibrated here), then lists it in the
    /// keyring; `written` hears of the key object once it is in the bucket. Returns its id
    /// and parameters.
    pub fn add_key(
        &self,
        backend: &dyn BlobBackend,
        password: &[u8],
        host: &str,
        now_ms: i64,
        written: &mut dyn FnMut(&str),
    ) -> Result<Created, BlobError> {
        let (key, check_time) = KeyObject::wrap_calibrated(
            &self.master,
            password,
            KDF_TARGET,
            KeyObject::new_id(),
            host,
            now_ms,
        )
        .map_err(|source| wrap_error(&self.location, source))?;
        let params = key.params;
        write_key(backend, &key)?;
        written(&key_name(&key.id));
        let mut ring = self.keyring_or_listing(backend)?;
        ring.push(key.id.clone());
        ring.sort();
        ring.dedup();
        self.write_keyring(backend, &ring)?;
        Ok(Created {
            repository: self.repository.clone(),
            key_id: key.id,
            params,
            check_time,
        })
    }

    /// The keyring's ids, or (a keyring lost) the key objects listed now.
    fn keyring_or_listing(&self, backend: &dyn BlobBackend) -> Result<Vec<String>, BlobError> {
        Ok(match self.read_keyring(backend)? {
            Some(ring) => ring,
            None => backend.list_meta(KEYS_DIR)?,
        })
    }

    /// Removes key `id`: out of the keyring first, then its object (if it is still there: a
    /// key object deleted behind matterbak's back leaves its id in the keyring). The last key
    /// is refused.
    pub fn remove_key(&self, backend: &dyn BlobBackend, id: &str) -> Result<(), BlobError> {
        let present = backend.list_meta(KEYS_DIR)?;
        let ring = self.keyring_or_listing(backend)?;
        let is_present = present.iter().any(|k| k == id);
        if !is_present && !ring.iter().any(|k| k == id) {
            return Err(KeyError::NoSuchKey {
                location: self.location.clone(),
                id: id.to_owned(),
            }
            .into());
        }
        if !present.iter().any(|k| k != id) {
            return Err(KeyError::LastKey { id: id.to_owned() }.into());
        }
        let ring: Vec<String> = ring.into_iter().filter(|k| k != id).collect();
        self.write_keyring(backend, &ring)?;
        if is_present {
            backend.delete_meta(&key_name(id))?;
        }
        Ok(())
    }

    /// Checks the repository's own objects: every key the keyring lists exists and is a key
    /// object; keys it does not list (an interrupted `key add`) are notices.
    pub fn audit(&self, backend: &dyn BlobBackend) -> Result<Vec<KeyProblem>, BlobError> {
        let mut problems = Vec::new();
        let present = backend.list_meta(KEYS_DIR)?;
        let ring = match self.read_keyring(backend) {
            Ok(Some(ring)) => ring,
            Ok(None) => {
                problems.push(KeyProblem {
                    damage: true,
                    text: format!("the keyring ({}/{KEYRING}) is missing", self.location),
                });
                present.clone()
            }
            Err(e) => {
                problems.push(KeyProblem {
                    damage: true,
                    text: format!("the keyring cannot be read: {e}"),
                });
                present.clone()
            }
        };
        for id in &ring {
            if !present.contains(id) {
                problems.push(KeyProblem {
                    damage: true,
                    text: format!(
                        "key object {}/{} is missing (the keyring lists it): its password no longer opens the archive",
                        self.location,
                        key_name(id)
                    ),
                });
            } else if let Err(e) = read_key(backend, &self.location, id) {
                problems.push(KeyProblem {
                    damage: true,
                    text: e.to_string(),
                });
            }
        }
        for id in present.iter().filter(|id| !ring.contains(id)) {
            problems.push(KeyProblem {
                damage: false,
                text: format!(
                    "key object {}/{} is not in the keyring (a `key add` was interrupted; `key remove {id}` removes it)",
                    self.location,
                    key_name(id)
                ),
            });
        }
        Ok(problems)
    }
}

/// Forgets the repositories opened in this process (after `key passwd` removed the key that
/// opened one, say).
pub fn forget_opened() {
    if let Some(map) = OPENED.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        map.clear();
    }
}

#[cfg(test)]
impl Unlocked {
    /// An opened repository around `master`, for tests of the encrypted backend.
    pub(crate) fn for_test(master: MasterKey) -> Unlocked {
        Unlocked {
            location: "test".into(),
            repository: "0".repeat(32),
            sealer: master.sealer(),
            master,
            key_id: "k".into(),
            creation: Mutex::new(Creation::Done(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_mac_covers_every_field_under_the_master_key() {
        let master = MasterKey::generate();
        let mut config = Config {
            version: 1,
            repository: "ab".repeat(16),
            format: "XChaCha20-Poly1305".into(),
            mac: String::new(),
        };
        assert!(!config.authentic(&master), "a marker without a MAC");
        config.sign(&master);
        assert_eq!(config.mac.len(), 64);
        assert!(config.authentic(&master));
        assert!(
            !config.authentic(&MasterKey::generate()),
            "another repository's key"
        );
        let edits: [fn(&mut Config); 4] = [
            |c| c.repository = "cd".repeat(16),
            |c| c.format = "plain".into(),
            |c| c.version = 2,
            |c| c.mac = "0".repeat(64),
        ];
        for edit in edits {
            let mut changed = config.clone();
            edit(&mut changed);
            assert!(!changed.authentic(&master), "{changed:?}");
        }
    }
}
