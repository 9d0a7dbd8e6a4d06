//! Client-side encryption of what an archive writes into object storage: the sealed object
//! format, the master key and the password-wrapped key objects. Pure functions over
//! `Read`/`Write` and byte slices: no network and no disk here (the encrypted backend does the
//! I/O), so every property below is tested on literals and in memory.
//!
//! May import: nothing of the crate (it is a leaf below `blobs`).
//!
//! Choices, and why:
//! - **AEAD: XChaCha20-Poly1305** (RustCrypto `chacha20poly1305`). Its 192-bit nonce lets every
//!   object take a random nonce prefix with no collision risk however many objects a bucket
//!   holds (AES-GCM's 96-bit nonce leaves 56 random bits after STREAM's counter: a birthday
//!   collision becomes thinkable at millions of objects). It runs at over 1 GB/s on one core
//!   with AVX2, measured by `benches/crypto.sh` and `benches/s3_encrypted.sh`, and needs no AES-NI.
//! - **Chunks of 1 MiB in the STREAM construction** (`aead::stream`, big-endian 32-bit counter
//!   and a last-chunk flag): memory stays flat for a blob of any size, a chunk dropped,
//!   reordered or cut off at the end fails to open, and a reader can stop after any chunk.
//! - **The object's name and the header are the associated data of every chunk**, so an object
//!   copied over another's name, or a header edited in place, fails to open.
//! - **Names are a keyed BLAKE3 hash of the content hash** (key derived from the master key):
//!   the bucket does not reveal which known files it holds, and equal contents still get one
//!   name, so dedup keeps working. The catalog keeps the plain content hash.
//! - **Sizes**: a sealed object's length is a function of the plaintext length alone
//!   ([`sealed_len`], [`plain_len`]), so the blob's own size comes from a HEAD or a listing
//!   without reading the object.
//! - **Keys**: a random 256-bit master key, stored only wrapped, once per password, under a
//!   key derived with Argon2id whose parameters travel in the key object. [`KeyObject::wrap_calibrated`] picks
//!   the cost for about half a second on the machine that adds the key, never below OWASP's
//!   minimum (m = 19 MiB, t = 2, p = 1).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1 << 20;
/// Bytes the AEAD adds to each chunk.
const TAG: usize = 16;
/// `MBKE`, format version, chunk size as a power of two, two reserved bytes, the 19-byte
/// nonce prefix of the STREAM construction.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 2 + NONCE_PREFIX;
const MAGIC: &[u8; 4] = b"MBKE";
/// 2: the associated data is length-prefixed and padded ([`aad`]); 1 (never released) had
/// the header and name only.
const VERSION: u8 = 2;
const CHUNK_LOG2: u8 = 20;
const NONCE_PREFIX: usize = 19;

/// Why a sealed object or a key object could not be opened. Never carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("not an encrypted matterbak object (bad header)")]
    BadHeader,
    #[error(
        "authentication failed in chunk {chunk}: the object was altered, or stored under another name"
    )]
    Tampered { chunk: u64 },
    #[error("the object ends before its last chunk: it was truncated")]
    Truncated,
    #[error("the object has bytes after its last chunk")]
    TrailingBytes,
    #[error("the password does not open this key")]
    WrongPassword,
    #[error("key object: {0}")]
    BadKeyObject(String),
}

impl From<CryptoError> for io::Error {
    fn from(e: CryptoError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// The archive's master key. Zeroed when dropped; its Debug form shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; 32]);

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source works");
    bytes
}

impl MasterKey {
    /// A new random key from the operating system's random source.
    pub fn generate() -> MasterKey {
        MasterKey(random())
    }

    fn subkey(&self, purpose: &str) -> [u8; 32] {
        blake3::derive_key(purpose, &self.0)
    }

    /// The name under which a blob with this content hash is stored: a keyed hash, so the
    /// bucket does not tell which known files it holds.
    pub fn object_name(&self, content_hash: &str) -> String {
        let key = self.subkey("matterbak 2026-12 object names");
        blake3::keyed_hash(&key, content_hash.as_bytes())
            .to_hex()
            .to_string()
    }

    /// The authentication tag of the repository's plain `config` marker: a keyed BLAKE3 hash
    /// of `message` under a key derived from the master key. Only a holder of the master key
    /// can make one, so a marker edited in the bucket is noticed once a password has opened
    /// the master key. Compare with `==` on [`blake3::Hash`] (constant time).
    pub fn config_mac(&self, message: &[u8]) -> blake3::Hash {
        let key = self.subkey("matterbak 2026-12 config marker");
        blake3::keyed_hash(&key, message)
    }

    /// The sealer for objects under this key.
    pub fn sealer(&self) -> Sealer {
        let key = self.subkey("matterbak 2026-12 object data");
        Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }
}

/// Seals and opens objects. Cheap to clone; holds the derived data key only.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

/// The sealed length of `plain` plaintext bytes: header plus one tag per chunk (an empty
/// plaintext is one empty last chunk).
pub fn sealed_len(plain: u64) -> u64 {
    let chunks = plain.div_ceil(CHUNK as u64).max(1);
    HEADER_LEN as u64 + plain + chunks * TAG as u64
}

/// Whether `bytes` begin like a sealed object (its magic): for naming an encrypted object
/// found where plain storage was expected, not for any decision about trust.
pub fn looks_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The plaintext length of a sealed object of `sealed` bytes, or `None` when no plaintext
/// seals to that length (the object is truncated or padded).
pub fn plain_len(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(HEADER_LEN as u64)?;
    let full = (CHUNK + TAG) as u64;
    let chunks = body.div_ceil(full).max(1);
    let plain = body.checked_sub(chunks * TAG as u64)?;
    (sealed_len(plain) == sealed).then_some(plain)
}

/// The associated data of every chunk of the object `name` with this header: the header,
/// the name's length (4 bytes, big-endian) and the name, zero-padded to a multiple of
/// [`AAD_ALIGN`] bytes. The lengths make it unambiguous; the padding keeps Poly1305 fast:
/// its AVX2 backend takes four 16-byte blocks at a time, and associated data that leaves it
/// between groups of four sends every block of the chunk after it down its one-block path
/// (about 20 % slower seal and open, measured by `benches/crypto.sh` on this project's
/// machine: RustCrypto `poly1305` 0.8 with `universal-hash` 0.5.1).
fn aad(header: &[u8], name: &str) -> Vec<u8> {
    let len = header.len() + 4 + name.len();
    let mut aad = Vec::with_capacity(len.next_multiple_of(AAD_ALIGN));
    aad.extend_from_slice(header);
    // Object names are at most 1,024 bytes (S3's limit on keys).
    aad.extend_from_slice(&(name.len() as u32).to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad.resize(len.next_multiple_of(AAD_ALIGN), 0);
    aad
}

/// See [`aad`]: four Poly1305 blocks.
const AAD_ALIGN: usize = 64;

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Sealer {
    fn stream(&self, prefix: &[u8]) -> StreamBE32<XChaCha20Poly1305> {
        StreamBE32::from_aead(self.cipher.clone(), prefix.into())
    }

    /// Seals everything `plain` yields into `out` as the object `name`; returns the plaintext
    /// length. Holds two chunks in memory (the next one is read before the current one is
    /// sealed, to know which chunk is the last).
    pub fn seal(&self, name: &str, plain: &mut impl Read, out: &mut impl Write) -> io::Result<u64> {
        let prefix: [u8; NONCE_PREFIX] = random();
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&[VERSION, CHUNK_LOG2, 0, 0]);
        header.extend_from_slice(&prefix);
        out.write_all(&header)?;
        let aad = aad(&header, name);
        let stream = self.stream(&prefix);
        let mut current = Vec::with_capacity(CHUNK + TAG);
        let mut next = Vec::with_capacity(CHUNK + TAG);
        fill_chunk(plain, &mut current)?;
        let mut total = 0u64;
        let mut position: u32 = 0;
        loop {
            total += current.len() as u64;
            let last = current.len() < CHUNK || {
                fill_chunk(plain, &mut next)?;
                next.is_empty()
            };
            stream
                .encrypt_in_place(position, last, &aad, &mut current)
                .map_err(|_| io::Error::other("sealing failed"))?;
            out.write_all(&current)?;
            if last {
                return Ok(total);
            }
            position = position
                .checked_add(1)
                .ok_or_else(|| io::Error::other("object too large to seal (4 PiB)"))?;
            std::mem::swap(&mut current, &mut next);
        }
    }

    /// Seals a small object held in memory.
    pub fn seal_bytes(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(sealed_len(plain.len() as u64) as usize);
        self.seal(name, &mut &plain[..], &mut out)
            .expect("writing into memory cannot fail");
        out
    }

    /// A reader of the plaintext of the sealed object `name` read from `sealed`. Every chunk is
    /// authenticated before any of its bytes are returned; an altered, renamed, reordered or
    /// truncated object is an `InvalidData` error carrying a [`CryptoError`].
    pub fn open<R: Read>(&self, name: &str, sealed: R) -> OpenReader<R> {
        OpenReader {
            sealer: self.clone(),
            name: name.to_owned(),
            inner: sealed,
            stream: None,
            position: 0,
            buf: Vec::with_capacity(CHUNK + TAG + 1),
            carry: None,
            pos: 0,
            done: false,
        }
    }

    /// Opens a small sealed object held in memory.
    pub fn open_bytes(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        match self.open(name, sealed).read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(e) => Err(crypto_error(e)),
        }
    }
}

/// The [`CryptoError`] inside an error of [`OpenReader`], or `BadHeader` for another cause.
pub fn crypto_error(e: io::Error) -> CryptoError {
    e.into_inner()
        .and_then(|inner| inner.downcast::<CryptoError>().ok())
        .map(|b| *b)
        .unwrap_or(CryptoError::BadHeader)
}

/// Clears `buf` and reads up to one chunk of plaintext into it.
fn fill_chunk(reader: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    reader.take(CHUNK as u64).read_to_end(buf)?;
    Ok(())
}

/// See [`Sealer::open`].
pub struct OpenReader<R> {
    sealer: Sealer,
    name: String,
    inner: R,
    stream: Option<(StreamBE32<XChaCha20Poly1305>, Vec<u8>)>,
    position: u32,
    /// The current chunk's plaintext, `pos` bytes of it already returned.
    buf: Vec<u8>,
    /// A byte read ahead of the current chunk: the first of the next one.
    carry: Option<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> OpenReader<R> {
    /// Reads, authenticates and decrypts the next chunk into `buf`.
    fn next_chunk(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let mut header = [0u8; HEADER_LEN];
            if read_full(&mut self.inner, &mut header)? < HEADER_LEN
                || &header[..4] != MAGIC
                || header[4] != VERSION
                || header[5] != CHUNK_LOG2
            {
                return Err(CryptoError::BadHeader.into());
            }
            let stream = self.sealer.stream(&header[8..]);
            self.stream = Some((stream, aad(&header, &self.name)));
        }
        // One byte beyond a full sealed chunk tells whether another chunk follows.
        self.buf.clear();
        self.buf.extend(self.carry.take());
        let want = (CHUNK + TAG + 1 - self.buf.len()) as u64;
        (&mut self.inner).take(want).read_to_end(&mut self.buf)?;
        let (stream, aad) = self.stream.as_ref().expect("opened above");
        let position = self.position;
        let last = self.buf.len() <= CHUNK + TAG;
        if !last {
            self.carry = self.buf.pop();
        }
        if self.buf.len() < TAG {
            return Err(CryptoError::Truncated.into());
        }
        // Only an exact multiple of the chunk size can have been cut at a chunk boundary:
        // keep the bytes to tell that cut from tampering.
        let full_last = (last && self.buf.len() == CHUNK + TAG).then(|| self.buf.clone());
        if stream
            .decrypt_in_place(position, last, aad, &mut self.buf)
            .is_err()
        {
            let cut_here = full_last.is_some_and(|mut probe| {
                stream
                    .decrypt_in_place(position, false, aad, &mut probe)
                    .is_ok()
            });
            return Err(if cut_here {
                CryptoError::Truncated
            } else {
                CryptoError::Tampered {
                    chunk: u64::from(position),
                }
            }
            .into());
        }
        self.done = last;
        self.position = position.wrapping_add(1);
        self.pos = 0;
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Argon2id cost parameters, stored in each key object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// OWASP's minimum for Argon2id (Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1).
    pub const OWASP_MIN: KdfParams = KdfParams {
        m_cost: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    fn at_least_owasp(self) -> bool {
        self.m_cost >= Self::OWASP_MIN.m_cost && self.t_cost >= Self::OWASP_MIN.t_cost
    }

    fn derive(&self, password: &[u8], salt: &[u8]) -> Result<[u8; 32], CryptoError> {
        let params = argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| CryptoError::BadKeyObject(format!("argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(password, salt, &mut out)
            .map_err(|e| CryptoError::BadKeyObject(format!("argon2: {e}")))?;
        Ok(out)
    }
}

/// Memory of the Argon2id derivation, KiB: 32 MiB, above OWASP's minimum (19 MiB) and low
/// enough that a command on an encrypted archive stays under 64 MB of memory at its peak
/// (the derivation's memory is freed before the command's own work starts; in the first
/// `sync --encrypt` it overlaps the sync's first requests, while uploads wait for the key
/// object); the passes make up the time.
pub const KDF_MEMORY_KIB: u32 = 32 * 1024;

/// Calibrates Argon2id on this machine with the real derivation: [`KDF_MEMORY_KIB`], one
/// lane, and as many passes as take about `target` of CPU time ([`work_time`]), never fewer
/// than OWASP's minimum of 2. The first trial runs OWASP's 2 passes with the key's own salt;
/// from its time the passes for `target` are estimated and derived, again with that salt, and
/// a trial whose time lands within [`CALIBRATION_BAND`] of `target` is the key (no separate
/// probes, no derivation run twice for the same result). A machine slow enough that 2 passes
/// already take the target keeps the first trial. A third trial, estimated from the first
/// two (fixed cost and cost per pass), is the last: it is kept whatever it took.
///
/// Returns the parameters, the derived key and the time of its derivation (the cost of one
/// password check with these parameters here).
fn derive_calibrated(
    password: &[u8],
    salt: &[u8],
    target: Duration,
) -> Result<(KdfParams, [u8; 32], Duration), CryptoError> {
    let goal = target.as_secs_f64();
    let (low, high) = (goal * CALIBRATION_BAND.0, goal * CALIBRATION_BAND.1);
    let mut params = KdfParams {
        m_cost: KDF_MEMORY_KIB,
        t_cost: KdfParams::OWASP_MIN.t_cost,
        p_cost: 1,
    };
    let mut earlier: Option<(u32, f64)> = None;
    let mut trial = 1;
    loop {
        let mut derived = Err(CryptoError::BadKeyObject("not derived".into()));
        let took = work_time(|| derived = params.derive(password, salt));
        let mut key = derived?;
        let secs = took.as_secs_f64();
        let next = passes_for(goal, (params.t_cost, secs), earlier);
        if trial == 3 || (low..=high).contains(&secs) || next == params.t_cost {
            return Ok((params, key, took));
        }
        key.zeroize();
        earlier = Some((params.t_cost, secs));
        params.t_cost = next;
        trial += 1;
    }
}

/// The passes that take `goal` seconds, from the last calibration trial (passes, seconds) and
/// the one before it, if any. From two trials: their fixed cost (allocating the memory) and
/// cost per pass. From one: the fixed cost taken as half a pass; counting it as nothing made
/// the second trial land low (0.33 s for 0.5 s, a third trial needed: `benches/crypto.sh`
/// under load), counting it whole errs high as far when there is none. Never below OWASP's
/// minimum, never above [`MAX_PASSES`].
fn passes_for(goal: f64, last: (u32, f64), earlier: Option<(u32, f64)>) -> u32 {
    let (t, secs) = (f64::from(last.0), last.1);
    let passes = match earlier {
        Some((t0, s0)) if t0 != last.0 => {
            let pass = ((secs - s0) / (t - f64::from(t0))).max(1e-6);
            (goal - (s0 - f64::from(t0) * pass).max(0.0)) / pass
        }
        _ => goal / (secs / (t + 0.5)).max(1e-6),
    };
    (passes.round() as u32).clamp(KdfParams::OWASP_MIN.t_cost, MAX_PASSES)
}

/// How close to the target a calibration trial must land to be kept: from 70 % to 150 %.
pub const CALIBRATION_BAND: (f64, f64) = (0.7, 1.5);
/// The most passes calibration picks (a machine 30 times faster than this one).
const MAX_PASSES: u32 = 64;

/// How long `f` worked: this thread's time on a CPU where Linux tells it
/// (`/proc/thread-self/schedstat`), so a machine busy with other work does not make the
/// calibration pick fewer passes; elsewhere the wall time.
pub fn work_time(f: impl FnOnce()) -> Duration {
    fn on_cpu() -> Option<Duration> {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        Some(Duration::from_nanos(
            stat.split_whitespace().next()?.parse().ok()?,
        ))
    }
    let (wall, cpu) = (Instant::now(), on_cpu());
    f();
    match (cpu, on_cpu()) {
        (Some(before), Some(after)) if after > before => after - before,
        _ => wall.elapsed(),
    }
}

/// A password-wrapped copy of the master key: what `keys/<id>` holds in the bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyObject {
    /// Format version of this object.
    pub version: u32,
    /// Random id; the object's name is `keys/<id>`.
    pub id: String,
    /// When the key was added (ms since the epoch).
    pub created_ms: i64,
    /// Which machine added it (for `key list`).
    pub host: String,
    pub kdf: String,
    pub params: KdfParams,
    /// Hex: the Argon2id salt.
    pub salt: String,
    /// Hex: the XChaCha20-Poly1305 nonce of the wrapping.
    pub nonce: String,
    /// Hex: the master key sealed under the password-derived key, the id as associated data.
    pub wrapped: String,
}

impl KeyObject {
    /// A new random key id (the object's name is `keys/<id>`).
    pub fn new_id() -> String {
        hex::encode(random::<8>())
    }

    /// Wraps `master` under `password` with `params`, refusing parameters below OWASP's minimum.
    pub fn wrap(
        master: &MasterKey,
        password: &[u8],
        params: KdfParams,
        host: &str,
        created_ms: i64,
    ) -> Result<KeyObject, CryptoError> {
        if !params.at_least_owasp() {
            return Err(CryptoError::BadKeyObject(format!(
                "Argon2id parameters {params:?} are below OWASP's minimum"
            )));
        }
        let salt = random::<16>();
        let kek = params.derive(password, &salt)?;
        Self::seal_master(master, kek, params, salt, Self::new_id(), host, created_ms)
    }

    /// Wraps `master` under `password` as key `id`, Argon2id calibrated on this machine to
    /// take about `target` of CPU time per password check ([`derive_calibrated`]: the
    /// calibration's last trial is the wrapping key). Returns the key object and the time one
    /// password check takes with its parameters here.
    pub fn wrap_calibrated(
        master: &MasterKey,
        password: &[u8],
        target: Duration,
        id: String,
        host: &str,
        created_ms: i64,
    ) -> Result<(KeyObject, Duration), CryptoError> {
        let salt = random::<16>();
        let (params, kek, check) = derive_calibrated(password, &salt, target)?;
        let key = Self::seal_master(master, kek, params, salt, id, host, created_ms)?;
        Ok((key, check))
    }

    /// The key object holding `master` sealed under `kek` (zeroed here).
    fn seal_master(
        master: &MasterKey,
        mut kek: [u8; 32],
        params: KdfParams,
        salt: [u8; 16],
        id: String,
        host: &str,
        created_ms: i64,
    ) -> Result<KeyObject, CryptoError> {
        let nonce = random::<24>();
        let cipher = XChaCha20Poly1305::new(&kek.into());
        kek.zeroize();
        let wrapped = chacha20poly1305::aead::Aead::encrypt(
            &cipher,
            (&nonce).into(),
            chacha20poly1305::aead::Payload {
                msg: &master.0,
                aad: id.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::BadKeyObject("wrapping failed".into()))?;
        Ok(KeyObject {
            version: 1,
            id,
            created_ms,
            host: host.to_owned(),
            kdf: "argon2id".into(),
            params,
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            wrapped: hex::encode(wrapped),
        })
    }

    /// The master key, if `password` opens this key object.
    pub fn unwrap(&self, password: &[u8]) -> Result<MasterKey, CryptoError> {
        if self.version != 1 || self.kdf != "argon2id" {
            return Err(CryptoError::BadKeyObject(format!(
                "unknown key format {} / {}",
                self.version, self.kdf
            )));
        }
        if !self.params.at_least_owasp() || self.params.m_cost > 4 * 1024 * 1024 {
            return Err(CryptoError::BadKeyObject(format!(
                "Argon2id parameters {:?} out of range",
                self.params
            )));
        }
        let bad = |what: &str| CryptoError::BadKeyObject(format!("{what} is not valid hex"));
        let salt = hex::decode(&self.salt).map_err(|_| bad("salt"))?;
        let nonce: [u8; 24] = hex::decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| bad("nonce"))?;
        let wrapped = hex::decode(&self.wrapped).map_err(|_| bad("wrapped"))?;
        let mut kek = self.params.derive(password, &salt)?;
        let cipher = XChaCha20Poly1305::new(&kek.into());
        kek.zeroize();
        let mut plain = chacha20poly1305::aead::Aead::decrypt(
            &cipher,
            (&nonce).into(),
            chacha20poly1305::aead::Payload {
                msg: &wrapped,
                aad: self.id.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::WrongPassword)?;
        let key: Result<[u8; 32], _> = plain.as_slice().try_into();
        plain.zeroize();
        key.map(MasterKey)
            .map_err(|_| CryptoError::BadKeyObject("wrapped key has the wrong length".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        MasterKey::generate().sealer()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn lengths_round_trip_and_match_what_is_written() {
        let s = sealer();
        for len in [
            0,
            1,
            15,
            16,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            3 * CHUNK + 7,
        ] {
            let sealed = s.seal_bytes("n", &pattern(len));
            assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
            assert_eq!(
                plain_len(sealed.len() as u64),
                Some(len as u64),
                "len {len}"
            );
            assert_eq!(
                s.open_bytes("n", &sealed).unwrap(),
                pattern(len),
                "len {len}"
            );
        }
        // Literal lengths: 27-byte header, 16 bytes per chunk.
        assert_eq!(sealed_len(0), 43);
        assert_eq!(sealed_len(1 << 20), 27 + (1 << 20) + 16);
        assert_eq!(sealed_len((1 << 20) + 1), 27 + (1 << 20) + 1 + 32);
        assert_eq!(plain_len(42), None);
        assert_eq!(
            plain_len(27 + (1 << 20) + 16 + 16),
            None,
            "an empty chunk after a full one"
        );
    }

    #[test]
    fn a_flipped_byte_anywhere_fails_to_open() {
        let s = sealer();
        let sealed = s.seal_bytes("obj", &pattern(CHUNK + 100));
        for at in [
            0,
            5,
            8,
            HEADER_LEN,
            HEADER_LEN + 10,
            HEADER_LEN + CHUNK + TAG + 3,
            sealed.len() - 1,
        ] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(s.open_bytes("obj", &bad).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn truncation_renaming_reordering_and_another_key_are_named() {
        let s = sealer();
        let sealed = s.seal_bytes("obj", &pattern(2 * CHUNK + 5));
        let cut = HEADER_LEN + CHUNK + TAG;
        assert_eq!(
            s.open_bytes("obj", &sealed[..cut]),
            Err(CryptoError::Truncated)
        );
        assert_eq!(
            s.open_bytes("obj", &sealed[..cut + 5]),
            Err(CryptoError::Truncated)
        );
        // Cut inside a chunk, past its tag's length: it cannot open as the last chunk either.
        assert_eq!(
            s.open_bytes("obj", &sealed[..cut + 100]),
            Err(CryptoError::Tampered { chunk: 1 })
        );
        assert_eq!(
            s.open_bytes("obj", &sealed[..10]),
            Err(CryptoError::BadHeader)
        );
        assert_eq!(
            s.open_bytes("other", &sealed),
            Err(CryptoError::Tampered { chunk: 0 })
        );
        let mut swapped = sealed[..HEADER_LEN].to_vec();
        swapped
            .extend_from_slice(&sealed[HEADER_LEN + CHUNK + TAG..HEADER_LEN + 2 * (CHUNK + TAG)]);
        swapped.extend_from_slice(&sealed[HEADER_LEN..HEADER_LEN + CHUNK + TAG]);
        swapped.extend_from_slice(&sealed[HEADER_LEN + 2 * (CHUNK + TAG)..]);
        assert_eq!(
            s.open_bytes("obj", &swapped),
            Err(CryptoError::Tampered { chunk: 0 })
        );
        let mut extra = sealed.clone();
        extra.extend_from_slice(&[0; 20]);
        assert!(s.open_bytes("obj", &extra).is_err());
        assert!(sealer().open_bytes("obj", &sealed).is_err(), "another key");
    }

    #[test]
    fn the_same_plaintext_seals_differently_and_shows_no_plaintext() {
        let s = sealer();
        let text = b"the quarterly numbers are in the usual place".repeat(100);
        let a = s.seal_bytes("n", &text);
        let b = s.seal_bytes("n", &text);
        assert_ne!(a, b, "random nonce per object");
        assert!(!a.windows(16).any(|w| text.windows(16).any(|t| t == w)));
    }

    #[test]
    fn object_names_are_keyed_and_stable() {
        let key = MasterKey::generate();
        let hash = blake3::hash(b"x").to_hex().to_string();
        assert_eq!(key.object_name(&hash), key.object_name(&hash));
        assert_ne!(key.object_name(&hash), hash);
        assert_ne!(
            key.object_name(&hash),
            MasterKey::generate().object_name(&hash)
        );
        assert_eq!(key.object_name(&hash).len(), 64);
    }

    #[test]
    fn a_key_object_opens_with_its_password_only() {
        let master = MasterKey::generate();
        let key = KeyObject::wrap(&master, b"correct horse", KdfParams::OWASP_MIN, "h", 1).unwrap();
        let text = serde_json::to_string(&key).unwrap();
        assert!(!text.contains(&hex::encode(master.0)));
        let back: KeyObject = serde_json::from_str(&text).unwrap();
        assert_eq!(back.unwrap(b"correct horse").unwrap(), master);
        assert_eq!(back.unwrap(b"wrong"), Err(CryptoError::WrongPassword));
        let weak = KdfParams {
            m_cost: 1024,
            t_cost: 1,
            p_cost: 1,
        };
        assert!(KeyObject::wrap(&master, b"p", weak, "h", 1).is_err());
        let mut lowered = back.clone();
        lowered.params = weak;
        assert!(matches!(
            lowered.unwrap(b"correct horse"),
            Err(CryptoError::BadKeyObject(_))
        ));
        let mut moved = back;
        moved.id = "another".into();
        assert_eq!(
            moved.unwrap(b"correct horse"),
            Err(CryptoError::WrongPassword)
        );
    }

    #[test]
    fn calibration_estimates_the_passes_for_the_target() {
        // One trial: 2 passes in 0.125 s, the fixed cost taken as half a pass: 0.05 s a pass,
        // 10 for 0.5 s.
        assert_eq!(passes_for(0.5, (2, 0.125), None), 10);
        // Two trials: 2 passes 0.1 s, 10 passes 0.42 s: 0.04 s a pass, 0.02 s fixed.
        assert_eq!(passes_for(0.5, (10, 0.42), Some((2, 0.1))), 12);
        // A machine on which OWASP's 2 passes already take 1 s keeps them; never more than 64.
        assert_eq!(passes_for(0.5, (2, 1.0), None), 2);
        assert_eq!(passes_for(0.5, (2, 0.0), None), 64);
    }

    #[test]
    fn a_calibrated_key_keeps_owasps_minimum_and_opens_with_its_password() {
        let master = MasterKey::generate();
        // A target no derivation meets quickly enough: the first trial (OWASP's passes) is
        // kept as it is, at 32 MiB.
        let (key, check) = KeyObject::wrap_calibrated(
            &master,
            b"pw",
            Duration::ZERO,
            "0123456789abcdef".into(),
            "h",
            1,
        )
        .unwrap();
        assert_eq!(
            key.params,
            KdfParams {
                m_cost: 32 * 1024,
                t_cost: 2,
                p_cost: 1
            }
        );
        assert_eq!(key.id, "0123456789abcdef");
        assert!(check > Duration::ZERO);
        assert_eq!(key.unwrap(b"pw").unwrap(), master);
        assert_eq!(key.unwrap(b"other"), Err(CryptoError::WrongPassword));
    }

    #[test]
    fn associated_data_is_padded_to_whole_groups_of_poly1305_blocks_and_unambiguous() {
        let header = [7u8; HEADER_LEN];
        for name in [
            "",
            "keyring",
            "catalogs/20261207T135500Z.sqlite",
            &"ab".repeat(32),
        ] {
            let aad = aad(&header, name);
            assert_eq!(aad.len() % 64, 0, "{name}");
            assert!(aad.len() >= HEADER_LEN + 4 + name.len());
        }
        // A name's trailing zero byte is not the padding.
        assert_ne!(aad(&header, "x"), aad(&header, "x\0"));
        // The header's version byte is 2: a version 1 object does not open.
        let s = sealer();
        let mut sealed = s.seal_bytes("n", b"text");
        assert_eq!(sealed[4], 2);
        sealed[4] = 1;
        assert_eq!(s.open_bytes("n", &sealed), Err(CryptoError::BadHeader));
    }
}
