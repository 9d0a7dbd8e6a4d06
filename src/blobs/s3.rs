//! The object-store backend of the blob store ([`S3`]): each blob is the object
//! `<prefix>/ab/cd/<hash>` of an S3-compatible bucket, reached through the `object_store`
//! crate (request signing, retries with capped backoff on 5xx, 429 and 503 SlowDown,
//! multipart uploads). Catalog snapshots are the named objects `<prefix>/catalogs/<name>`;
//! damaged blobs move to `<prefix>/damaged/<hash>`.
//!
//! Invariants, as on disk: an object is named by the BLAKE3 hash of its bytes, and it is
//! durable in the bucket (the PUT or the multipart completion returned) before `commit`
//! returns, so before the catalog row that names it. Bytes are hashed while they spool
//! through the archive's `tmp/` (the key is only known once the hash is), then uploaded from
//! that file in parts of [`PART_BYTES`] (flat memory) and the file is removed. An existing
//! object is never written twice: small blobs go up as a conditional PUT (`If-None-Match: *`),
//! large ones only after a HEAD found no object of their size.
//!
//! `object_store` is async and the blob-store interface is not (`std::io::Write`/`Read`, used
//! from blocking threads and from the synchronous export). The backend therefore owns a small
//! runtime of its own and every call blocks on a future spawned there, which works from any
//! thread, inside another runtime or not.
//!
//! Secrets: configuration comes from the standard `AWS_*` environment variables, then from
//! the profile in the AWS files (`aws_config`); error texts from the server or the client
//! pass through [`redact`] before they reach an error, so an access key or secret from
//! either never appears in output.
//!
//! Multipart uploads are recorded in the archive's `tmp/uploads/` before their first part
//! (S3 lists incomplete uploads only bucket-wide, and `object_store` not at all), so the
//! next lock holder aborts the ones a killed process left.

use std::io::{self, Read};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};
use tokio::io::AsyncReadExt;

use super::backend::{BlobBackend, Spooled};
use super::{BlobError, BlobId, BlobReader, Listed};

/// Size of one multipart part, and the size above which uploads are multipart: S3 wants parts
/// of at least 5 MiB; 8 MiB keeps memory flat and the request count low.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// How long the request completing a multipart upload may take. The server joins the parts
/// while the request waits: S3 documents that this can take minutes, and moto, which copies
/// a 1 GB object twice in memory, took over 30 s (object_store's default, for every other
/// request here) on a loaded machine. A completion cut off by the client's timeout is sent
/// again by its retries, which moto answers 500 (the upload is gone) and S3 NoSuchUpload.
const COMPLETE_TIMEOUT: &str = "10m";

/// The environment variables whose values must never be shown.
const SECRET_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Credential values read from the AWS files (see `aws_config`), redacted like the
/// environment's.
static FILE_SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Replaces every credential value from the environment or the AWS files in `text` with `***`.
pub fn redact(text: &str) -> String {
    let mut secrets: Vec<String> = SECRET_VARS
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .collect();
    secrets.extend(
        FILE_SECRETS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned(),
    );
    redact_values(text, &secrets)
}

/// Values shorter than 4 bytes are left alone: they would match ordinary text.
fn redact_values(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

fn remote_err(action: &'static str, key: &str, e: &object_store::Error) -> BlobError {
    // object_store's message carries the server's reason (NoSuchBucket, InvalidAccessKeyId,
    // connection refused); it is redacted, so it travels as text rather than as a source.
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let text = inner.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        source = inner.source();
    }
    BlobError::Remote {
        action,
        key: key.to_owned(),
        reason: redact(&reason),
    }
}

/// A connection to one bucket and prefix.
pub struct Remote {
    store: Arc<AmazonS3>,
    /// The same bucket with [`COMPLETE_TIMEOUT`], for multipart completions only.
    completer: Arc<AmazonS3>,
    bucket: String,
    /// Records of multipart uploads in flight (`tmp/uploads/` of the archive).
    uploads: PathBuf,
    prefix: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote(s3://{}/{})", self.bucket, self.prefix)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // A runtime may not be dropped (blocking) inside another runtime's worker.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Remote {
    /// Connects and proves the bucket is reachable with these credentials (one listing
    /// request), so a wrong setup fails before anything is written.
    pub fn connect(bucket: &str, prefix: &str, uploads: PathBuf) -> Result<Remote, BlobError> {
        // What the environment leaves open comes from the profile in the AWS files.
        let profile = super::aws_config::resolve(&|name| std::env::var(name).ok())?;
        FILE_SECRETS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(profile.secrets());
        let mut builder = from_env_except(if profile.access_key_id.is_some() {
            // Keys travel as a set: no secret or token of the environment beside a file's
            // key id.
            &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_TOKEN"]
        } else {
            &[]
        })
        .with_bucket_name(bucket)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: retry_count(),
            retry_timeout: Duration::from_secs(120),
        });
        if let (Some(key), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        if let Some(token) = &profile.session_token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = &profile.endpoint_url {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(virtual_hosted) = profile.virtual_hosted {
            builder = builder.with_virtual_hosted_style_request(virtual_hosted);
        }
        // An explicit http:// endpoint (MinIO, a loopback server) is the user's choice.
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .ok()
            .or(profile.endpoint_url)
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        match profile.region {
            Some(region) => builder = builder.with_region(region),
            None if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none() =>
            {
                builder = builder.with_region("us-east-1");
            }
            None => {}
        }
        let location = format!("s3://{bucket}/{prefix}");
        let completer = builder
            .clone()
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                COMPLETE_TIMEOUT,
            )
            .build()
            .map_err(|e| remote_err("configure", &location, &e))?;
        let store = builder
            .build()
            .map_err(|e| remote_err("configure", &location, &e))?;
        // Built last: a runtime may not be dropped inside another runtime, as an early
        // return above would.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("matterbak-s3")
            .enable_all()
            .build()
            .map_err(|source| BlobError::Io {
                action: "start the object-store runtime for",
                path: PathBuf::from(format!("s3://{bucket}/{prefix}")),
                source,
            })?;
        let remote = Remote {
            store: Arc::new(store),
            completer: Arc::new(completer),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            uploads,
            runtime: Some(runtime),
        };
        let store = remote.store.clone();
        let probe = remote.key_of(&["catalogs"]);
        remote
            .run(async move { store.list_with_delimiter(Some(&probe)).await.map(drop) })
            .map_err(|e| remote_err("reach", &location, &e))?;
        Ok(remote)
    }

    /// Runs `future` on the backend's runtime and waits for it, from any thread.
    fn run<T: Send + 'static>(
        &self,
        future: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the backend")
            .spawn(async move {
                let _ = tx.send(future.await);
            });
        rx.recv()
            .expect("the backend's runtime finishes what it started")
    }

    fn key_of(&self, parts: &[&str]) -> Key {
        let mut text = self.prefix.clone();
        for part in parts {
            if !text.is_empty() {
                text.push('/');
            }
            text.push_str(part);
        }
        Key::from(text)
    }

    pub fn key(&self, id: &BlobId) -> Key {
        let hex = id.as_str();
        self.key_of(&[&hex[0..2], &hex[2..4], hex])
    }

    /// `s3://bucket/key`, for messages and findings.
    pub fn url(&self, key: &Key) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    /// Size of the object, None when there is none.
    pub fn size(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        let key = self.key(id);
        let store = self.store.clone();
        let head_key = key.clone();
        match self.run(async move { store.head(&head_key).await }) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote_err("look up", &self.url(&key), &e)),
        }
    }

    /// Uploads the spooled file `path` (`size` bytes) as blob `id`, unless the bucket already
    /// holds it. Returns once the object is durable.
    pub fn put_file(&self, id: &BlobId, path: &FsPath, size: u64) -> Result<(), BlobError> {
        // Small blobs go up in one conditional PUT (the store refuses to overwrite), which
        // saves a HEAD round trip per new blob; large ones are looked up first, so their
        // bytes are not sent again.
        if size > PART_BYTES as u64 && self.size(id)? == Some(size) {
            return Ok(());
        }
        let key = self.key(id);
        self.upload_file(key, path, size)
    }

    /// Uploads the file at `path` (`size` bytes) as `key`; returns once the object is durable.
    fn upload_file(&self, key: Key, path: &FsPath, size: u64) -> Result<(), BlobError> {
        let url = self.url(&key);
        let stores = (self.store.clone(), self.completer.clone());
        let path = path.to_owned();
        let uploads = self.uploads.clone();
        self.run(async move { upload(stores, &uploads, key, path, size).await })
            .map_err(|failure| failure.into_error("read", "upload", &url))
    }

    /// A reader of the object's bytes, and its size.
    pub fn open(self: &Arc<Self>, id: &BlobId) -> Result<RemoteReader, BlobError> {
        let key = self.key(id);
        let store = self.store.clone();
        let get_key = key.clone();
        let got = self.run(async move {
            let result = store.get(&get_key).await?;
            let size = result.meta.size;
            Ok::<_, object_store::Error>((size, result.into_stream()))
        });
        let (size, stream) = got.map_err(|e| match e {
            object_store::Error::NotFound { .. } => BlobError::Missing {
                key: self.url(&key),
            },
            e => remote_err("download", &self.url(&key), &e),
        })?;
        Ok(RemoteReader {
            remote: self.clone(),
            url: self.url(&key),
            stream: Some(stream),
            chunk: Bytes::new(),
            size,
        })
    }

    /// Every object under the prefix except snapshots and quarantined blobs, with its size;
    /// `id` is set for objects at the place their hash name says.
    pub fn list(&self) -> Result<Vec<Listed>, BlobError> {
        let store = self.store.clone();
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        let listed = self.run(async move {
            let mut stream = store.list(prefix.as_ref());
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                let meta = meta?;
                out.push((meta.location, meta.size));
            }
            Ok::<_, object_store::Error>(out)
        });
        let listed = listed.map_err(|e| {
            remote_err("list", &format!("s3://{}/{}", self.bucket, self.prefix), &e)
        })?;
        let mut out = Vec::new();
        for (key, size) in listed {
            let text = key.as_ref();
            let relative = text
                .strip_prefix(self.prefix.as_str())
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(text);
            if relative.starts_with(&format!("{SNAPSHOT_DIR}/"))
                || relative.starts_with("damaged/")
                || is_repository_object(relative)
            {
                continue;
            }
            let id = relative
                .rsplit('/')
                .next()
                .and_then(BlobId::parse)
                .filter(|id| self.key(id) == key);
            out.push(Listed {
                name: PathBuf::from(self.url(&key)),
                id,
                size,
            });
        }
        Ok(out)
    }

    /// Moves a damaged object to `<prefix>/damaged/<hash>` (copy, then delete): never
    /// deleted outright, its bytes may be all that is left. False when there is no object.
    pub fn quarantine(&self, id: &BlobId) -> Result<bool, BlobError> {
        if self.size(id)?.is_none() {
            return Ok(false);
        }
        let from = self.key(id);
        let to = self.key_of(&["damaged", id.as_str()]);
        let store = self.store.clone();
        let url = self.url(&from);
        self.run(async move {
            store.copy(&from, &to).await?;
            store.delete(&from).await
        })
        .map_err(|e| remote_err("quarantine", &url, &e))?;
        Ok(true)
    }
}

impl Remote {
    /// Aborts the multipart uploads recorded in `tmp/uploads/` (left by a killed process:
    /// only the archive's lock holder may call this) and removes their records. Returns how
    /// many were aborted; an upload the store no longer knows counts as done.
    pub fn abort_recorded_uploads(&self) -> Result<usize, BlobError> {
        let io_err = |path: &FsPath| {
            let path = path.to_owned();
            move |source| BlobError::Io {
                action: "clean up",
                path,
                source,
            }
        };
        let entries = match std::fs::read_dir(&self.uploads) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(&self.uploads)(e)),
        };
        let mut aborted = 0;
        for entry in entries {
            let path = entry.map_err(io_err(&self.uploads))?.path();
            let text = std::fs::read(&path).map_err(io_err(&path))?;
            // A record cut short by a crash names no upload that could be aborted.
            let Ok(record) = serde_json::from_slice::<UploadRecord>(&text) else {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            };
            let key = Key::from(record.key.as_str());
            let url = self.url(&key);
            let store = self.store.clone();
            match self.run(async move { store.abort_multipart(&key, &record.upload_id).await }) {
                Ok(()) => aborted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote_err("abort the multipart upload of", &url, &e)),
            }
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(aborted)
    }

    fn catalog_key(&self, name: &str) -> Key {
        self.key_of(&[SNAPSHOT_DIR, name])
    }

    /// Uploads a catalog snapshot file as `<prefix>/catalogs/<name>`.
    pub fn put_catalog(&self, path: &FsPath, name: &str) -> Result<(), BlobError> {
        let size = std::fs::metadata(path)
            .map_err(|source| BlobError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })?
            .len();
        let key = self.catalog_key(name);
        self.upload_file(key, path, size)
    }

    /// Names of the catalog snapshots, oldest first (names are UTC times, so they sort).
    pub fn catalogs(&self) -> Result<Vec<String>, BlobError> {
        let mut names = self.names_in(SNAPSHOT_DIR)?;
        names.retain(|name| name.ends_with(".sqlite"));
        Ok(names)
    }

    /// The file names of the objects below `dir` (below the prefix), sorted.
    fn names_in(&self, dir: &str) -> Result<Vec<String>, BlobError> {
        let store = self.store.clone();
        let prefix = self.key_of(&[dir]);
        let url = self.url(&prefix);
        let listed = self.run(async move {
            let mut stream = store.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                out.push(meta?.location);
            }
            Ok::<_, object_store::Error>(out)
        });
        let mut names: Vec<String> = listed
            .map_err(|e| remote_err("list", &url, &e))?
            .iter()
            .filter_map(|key| key.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn delete_catalog(&self, name: &str) -> Result<(), BlobError> {
        let key = self.catalog_key(name);
        let url = self.url(&key);
        let store = self.store.clone();
        self.run(async move { store.delete(&key).await })
            .map_err(|e| remote_err("delete", &url, &e))
    }

    /// Downloads snapshot `name` into the file `dest` (created new, streamed, fsynced).
    pub fn get_catalog(&self, name: &str, dest: &FsPath) -> Result<(), BlobError> {
        let key = self.catalog_key(name);
        let url = self.url(&key);
        let store = self.store.clone();
        let dest = dest.to_owned();
        let got = self.run(async move {
            use tokio::io::AsyncWriteExt;
            let result = store.get(&key).await.map_err(Failure::Remote)?;
            let local = |e| Failure::Local(dest.clone(), e);
            let mut file = tokio::fs::File::create_new(&dest).await.map_err(local)?;
            let mut stream = result.into_stream();
            while let Some(chunk) = stream.next().await {
                file.write_all(&chunk.map_err(Failure::Remote)?)
                    .await
                    .map_err(local)?;
            }
            file.sync_all().await.map_err(local)
        });
        got.map_err(|failure| failure.into_error("write", "download", &url))
    }
}

impl Remote {
    /// Writes the small repository object `name` (below the prefix) in one PUT; with
    /// `create_only`, refuses to overwrite an existing one.
    pub fn put_meta(&self, name: &str, bytes: &[u8], create_only: bool) -> Result<(), BlobError> {
        let key = self.key_of(&[name]);
        let url = self.url(&key);
        let store = self.store.clone();
        let options = PutOptions {
            mode: if create_only {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..PutOptions::default()
        };
        let payload = PutPayload::from(bytes.to_vec());
        match self.run(async move { store.put_opts(&key, payload, options).await }) {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(BlobError::Exists { key: url }),
            Err(e) => Err(remote_err("upload", &url, &e)),
        }
    }

    /// The repository object `name`, None when there is none.
    pub fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let key = self.key_of(&[name]);
        let url = self.url(&key);
        let store = self.store.clone();
        let got = self.run(async move {
            let result = store.get(&key).await?;
            result.bytes().await
        });
        match got {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote_err("download", &url, &e)),
        }
    }

    /// Names of the repository objects in `dir`, sorted.
    pub fn list_meta(&self, dir: &str) -> Result<Vec<String>, BlobError> {
        self.names_in(dir)
    }

    pub fn delete_meta(&self, name: &str) -> Result<(), BlobError> {
        let key = self.key_of(&[name]);
        let url = self.url(&key);
        let store = self.store.clone();
        self.run(async move { store.delete(&key).await })
            .map_err(|e| remote_err("delete", &url, &e))
    }
}

/// Whether `relative` (a key below the prefix) is one of the repository's own objects
/// (encryption marker, keyring, key objects), never a blob.
fn is_repository_object(relative: &str) -> bool {
    relative == super::keys::CONFIG
        || relative == super::keys::KEYRING
        || relative.starts_with(&format!("{}/", super::keys::KEYS_DIR))
}

/// The bucket as a [`BlobBackend`]; its readers share the connection.
#[derive(Debug)]
pub struct S3(Arc<Remote>);

impl S3 {
    /// Connects and proves the bucket is reachable (see [`Remote::connect`]); multipart
    /// uploads in flight are recorded in `uploads`.
    pub fn connect(bucket: &str, prefix: &str, uploads: PathBuf) -> Result<S3, BlobError> {
        Ok(S3(Arc::new(Remote::connect(bucket, prefix, uploads)?)))
    }
}

impl BlobBackend for S3 {
    fn put(&self, spooled: Spooled) -> Result<(), BlobError> {
        let Spooled {
            id,
            file,
            path,
            size,
        } = spooled;
        drop(file);
        let uploaded = self.0.put_file(&id, &path, size);
        let _ = std::fs::remove_file(&path);
        uploaded
    }

    fn open(&self, id: &BlobId) -> Result<BlobReader, BlobError> {
        let reader = self.0.open(id)?;
        let len = reader.size;
        Ok(BlobReader::new(reader, len))
    }

    fn size(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        self.0.size(id)
    }

    fn list(&self) -> Result<Vec<Listed>, BlobError> {
        self.0.list()
    }

    fn quarantine(&self, id: &BlobId) -> Result<bool, BlobError> {
        self.0.quarantine(id)
    }

    fn name(&self, id: &BlobId) -> PathBuf {
        PathBuf::from(self.0.url(&self.0.key(id)))
    }

    fn abort_interrupted(&self) -> Result<usize, BlobError> {
        self.0.abort_recorded_uploads()
    }

    fn put_named(&self, name: &str, path: &FsPath) -> Result<(), BlobError> {
        self.0.put_catalog(path, name)
    }

    fn list_named(&self) -> Result<Vec<String>, BlobError> {
        self.0.catalogs()
    }

    fn get_named(&self, name: &str, dest: &FsPath) -> Result<(), BlobError> {
        self.0.get_catalog(name, dest)
    }

    fn delete_named(&self, name: &str) -> Result<(), BlobError> {
        self.0.delete_catalog(name)
    }

    fn put_meta(&self, name: &str, bytes: &[u8], create_only: bool) -> Result<(), BlobError> {
        self.0.put_meta(name, bytes, create_only)
    }

    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, BlobError> {
        self.0.get_meta(name)
    }

    fn list_meta(&self, dir: &str) -> Result<Vec<String>, BlobError> {
        self.0.list_meta(dir)
    }

    fn delete_meta(&self, name: &str) -> Result<(), BlobError> {
        self.0.delete_meta(name)
    }
}

/// Folder of catalog snapshots below the prefix (never a blob: blob folders are two hex
/// digits).
pub const SNAPSHOT_DIR: &str = "catalogs";

/// `AmazonS3Builder::from_env` (every `AWS_*` variable it knows), leaving out `skip`.
fn from_env_except(skip: &[&str]) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new();
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        if !name.starts_with("AWS_") || skip.contains(&name) {
            continue;
        }
        if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    builder
}

/// Retries per request; `MATTERBAK_S3_RETRIES` lets tests make an unreachable endpoint fail
/// fast.
fn retry_count() -> usize {
    std::env::var("MATTERBAK_S3_RETRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// A transfer between a local file and the bucket failed on one side or the other.
enum Failure {
    Local(PathBuf, io::Error),
    Remote(object_store::Error),
}

impl Failure {
    fn into_error(self, local: &'static str, remote: &'static str, url: &str) -> BlobError {
        match self {
            Failure::Local(path, source) => BlobError::Io {
                action: local,
                path,
                source,
            },
            Failure::Remote(e) => remote_err(remote, url, &e),
        }
    }
}

/// One PUT up to [`PART_BYTES`], a multipart upload above. A multipart upload is recorded
/// in `uploads` before its first part and the record removed once it completed or was
/// aborted (as it is on any failure), so one a killed process left is found and aborted by
/// [`Remote::abort_recorded_uploads`].
async fn upload(
    (store, completer): (Arc<AmazonS3>, Arc<AmazonS3>),
    uploads: &FsPath,
    key: Key,
    path: PathBuf,
    size: u64,
) -> Result<(), Failure> {
    let local = |e| Failure::Local(path.clone(), e);
    let mut file = tokio::fs::File::open(&path).await.map_err(local)?;
    if size <= PART_BYTES as u64 {
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes).await.map_err(local)?;
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        return match store.put_opts(&key, PutPayload::from(bytes), create).await {
            // Same key, same bytes: content addressing makes the existing object the blob.
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(Failure::Remote(e)),
        };
    }
    let id = store
        .create_multipart(&key)
        .await
        .map_err(Failure::Remote)?;
    let record = match record_upload(uploads, &key, &id) {
        Ok(record) => record,
        Err(e) => {
            let _ = store.abort_multipart(&key, &id).await;
            return Err(Failure::Local(uploads.to_owned(), e));
        }
    };
    let parts = async {
        let mut parts: Vec<PartId> = Vec::new();
        loop {
            let mut part = Vec::with_capacity(PART_BYTES);
            (&mut file)
                .take(PART_BYTES as u64)
                .read_to_end(&mut part)
                .await
                .map_err(local)?;
            if part.is_empty() {
                break;
            }
            let part = store
                .put_part(&key, &id, parts.len(), PutPayload::from(part))
                .await
                .map_err(Failure::Remote)?;
            parts.push(part);
        }
        match completer.complete_multipart(&key, &id, parts).await {
            Ok(_) => Ok(()),
            // A retry of a completion that did complete (the answer was lost) fails, as the
            // upload is gone: the object of the whole size in the bucket is the answer.
            Err(e) => match store.head(&key).await {
                Ok(meta) if meta.size == size => Ok(()),
                _ => Err(Failure::Remote(e)),
            },
        }
    }
    .await;
    if parts.is_err() && store.abort_multipart(&key, &id).await.is_err() {
        // The record stays: the next sync or verify aborts the upload.
        return parts;
    }
    let _ = std::fs::remove_file(&record);
    parts
}

/// A multipart upload in flight, as recorded in `tmp/uploads/`.
#[derive(serde::Serialize, serde::Deserialize)]
struct UploadRecord {
    key: String,
    upload_id: String,
}

static RECORD_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes the record of upload `id` durably (file and directory entry synced).
fn record_upload(dir: &FsPath, key: &Key, id: &str) -> io::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let n = RECORD_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(
        "{}-{n}-{:08x}.json",
        std::process::id(),
        rand::random::<u32>()
    ));
    let record = UploadRecord {
        key: key.to_string(),
        upload_id: id.to_owned(),
    };
    let mut file = std::fs::File::create_new(&path)?;
    file.write_all(&serde_json::to_vec(&record).map_err(io::Error::other)?)?;
    file.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

/// Streams an object's bytes to a synchronous reader.
pub struct RemoteReader {
    remote: Arc<Remote>,
    url: String,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    chunk: Bytes,
    pub size: u64,
}

impl Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            let Some(mut stream) = self.stream.take() else {
                return Ok(0);
            };
            let (next, stream) = self
                .remote
                .run(async move { (stream.next().await, stream) });
            match next {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.stream = Some(stream);
                }
                Some(Err(e)) => {
                    return Err(io::Error::other(remote_err("download", &self.url, &e)));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_from_server_messages() {
        let secrets = vec![
            "AKIAEXAMPLE123".to_owned(),
            "s3cr3t/value+x".to_owned(),
            "ab".to_owned(),
        ];
        let text = "InvalidAccessKeyId: AKIAEXAMPLE123 (signature with s3cr3t/value+x) ab";
        assert_eq!(
            redact_values(text, &secrets),
            "InvalidAccessKeyId: *** (signature with ***) ab"
        );
    }
}
