//! Blobs in object storage (`--blobs s3://bucket/prefix`), against a real S3-compatible server
//! on loopback: moto's server mode (`moto_server`, from PyPI), started per test. The binary
//! is driven as a user would, with the standard `AWS_*` variables.
//!
//! The server is found through `MATTERBAK_TEST_S3_SERVER` (set by `scripts/test-deps`, which
//! `.ci/run` and the README's test command use) or `moto_server` on PATH. Without one every
//! test fails, naming what to install: a test that did not run its check never passes.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_content, content_snapshot, write_inputs};
use matterbak::mock::NewFile;

const ACCESS_KEY: &str = "AKIAMATTERBAKTEST01";
const SECRET_KEY: &str = "matterbak-test-secret-do-not-print";

/// A moto server on a free loopback port; killed on drop.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MATTERBAK_TEST_S3_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}

impl S3Server {
    /// Starts the server, with `env` added to its environment; fails the test, naming what to
    /// install, when no server is installed.
    fn start(env: &[(&str, &str)]) -> S3Server {
        let program = server_program().unwrap_or_else(|| {
            panic!(
                "no S3 server for the object-storage tests: run `scripts/test-deps cargo test` \
                 (installs moto[server] into a throwaway virtualenv), or set \
                 MATTERBAK_TEST_S3_SERVER to a moto_server"
            )
        });
        let mut child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        // Flask prints its address on stderr; keep draining both pipes so it never blocks.
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        let deadline = Instant::now() + Duration::from_secs(120);
        let endpoint = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("moto_server prints `Running on http://127.0.0.1:PORT`");
            if let Some(at) = line.find("http://127.0.0.1:") {
                break line[at..].trim().to_owned();
            }
        };
        S3Server { child, endpoint }
    }

    /// The environment a user of an S3-compatible store sets.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("MATTERBAK_S3_RETRIES", "2".into()),
        ]
    }

    /// moto checks no signature unless asked to, but treats a request without one as
    /// anonymous (refused writes to private buckets): a well-formed unsigned header will do.
    async fn request(&self, method: reqwest::Method, key: &str, body: Vec<u8>) -> Vec<u8> {
        let response = reqwest::Client::new()
            .request(method, format!("{}/{key}", self.endpoint))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIATEST/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{key}: {}",
            response.status()
        );
        response.bytes().await.unwrap().to_vec()
    }
}

/// A moto server with `bucket` created, and the sample workspace served, its inputs
/// (credentials.json, channels.json) written into the test's directory.
async fn bucket_and_workspace(bucket: &str) -> (S3Server, common::Env) {
    let s3 = S3Server::start(&[]);
    s3.request(reqwest::Method::PUT, bucket, Vec::new()).await;
    let env = common::start().await;
    write_inputs(env.dir.path(), &env.server.url(), 0o600);
    (s3, env)
}

/// The variables and files that configure an S3 client; a test sets what it means to.
const AWS_VARS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
];

/// `matterbak ARGS` in `dir`, with only the variables the test sets (`env`), no AWS or
/// `MATTERBAK_BLOBS` variable of the test's own environment, and a HOME of its own.
fn command(dir: &Path, env: &[(&'static str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_matterbak"));
    for var in AWS_VARS {
        command.env_remove(var);
    }
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("MATTERBAK_BLOBS")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args);
    command
}

fn matterbak(dir: &Path, env: &[(&'static str, String)], args: &[&str]) -> Output {
    command(dir, env, args).output().unwrap()
}

/// Exit code and stdout+stderr; asserts no credential appears in either.
fn run(dir: &Path, env: &[(&'static str, String)], args: &[&str]) -> (i32, String) {
    let out = matterbak(dir, env, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(SECRET_KEY) && !text.contains(ACCESS_KEY),
        "a credential leaked into the output of {args:?}: {text}"
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `matterbak export --archive ARCHIVE EXTRA…`, which must succeed.
fn export_ok(dir: &Path, env: &[(&'static str, String)], archive: &str, extra: &[&str]) {
    let mut args = vec!["export", "--archive", archive];
    args.extend_from_slice(extra);
    let (code, out) = run(dir, env, &args);
    assert_eq!(code, 0, "{args:?}: {out}");
}

/// The arguments of `matterbak sync` into `archive` (unlimited rate, quiet), with `--blobs`
/// when given, and `--encrypt`.
fn sync_args<'a>(archive: &'a str, blobs: Option<&'a str>, encrypt: bool) -> Vec<&'a str> {
    let mut args = vec!["sync", "--archive", archive, "--rate-limit", "0", "-q"];
    args.extend(blobs.iter().flat_map(|b| ["--blobs", *b]));
    args.extend(encrypt.then_some("--encrypt"));
    args
}

/// `matterbak sync` into `archive` (unlimited rate, quiet), with `--blobs` when given.
fn sync(
    dir: &Path,
    env: &[(&'static str, String)],
    archive: &str,
    blobs: Option<&str>,
) -> (i32, String) {
    run(dir, env, &sync_args(archive, blobs, false))
}

/// Syncs `archive`, then the disk archive `local` to the same moment of the (changing) sample
/// workspace, and asserts both hold the same content.
fn sync_and_compare(dir: &Path, env: &[(&'static str, String)], archive: &str, context: &str) {
    for name in [archive, "local"] {
        let (code, out) = sync(dir, env, name, None);
        assert_eq!(code, 0, "{name}: {out}");
    }
    assert_same_content(
        &content_snapshot(&dir.join(archive)),
        &content_snapshot(&dir.join("local")),
        context,
    );
}

/// A new post in eng/town-square with the attachments of [`new_files`].
fn post_files(server: &matterbak::mock::MockServer, message: &str, seed: &str) {
    server.with_workspace(|w| {
        let channel = w.channel_id("eng", "town-square");
        w.create_post_with_files(&channel, "bob", message, None, new_files(seed));
    });
}

/// Relative path → bytes of every file below `dir`.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn blob_hashes(archive: &Path) -> Vec<(String, usize)> {
    let catalog = matterbak::catalog::Catalog::open(
        &archive.join("catalog.sqlite"),
        matterbak::catalog::Access::ReadOnly,
    )
    .unwrap();
    common::rows(&catalog, "SELECT hash, size FROM blobs ORDER BY hash")
        .iter()
        .map(|row| {
            let (hash, size) = row.split_once('|').unwrap();
            (hash.to_owned(), size.parse().unwrap())
        })
        .collect()
}

fn key(prefix: &str, hash: &str) -> String {
    format!("{prefix}/{}/{}/{hash}", &hash[0..2], &hash[2..4])
}

/// Bytes no other test makes: a 9 MiB attachment (two multipart parts) and a small one.
fn new_files(seed: &str) -> Vec<NewFile> {
    let mut big = vec![0u8; 9 * 1024 * 1024 + 123];
    let mut hasher = blake3::Hasher::new();
    hasher.update(seed.as_bytes());
    hasher.finalize_xof().fill(&mut big);
    vec![
        NewFile {
            name: "recording.bin".into(),
            bytes: big,
            mime_type: "application/octet-stream".into(),
        },
        NewFile {
            name: "notes.txt".into(),
            bytes: format!("notes {seed}").into_bytes(),
            mime_type: "text/plain".into(),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_with_blobs_in_a_bucket_syncs_exports_and_verifies_like_a_local_one() {
    let (s3, env) = bucket_and_workspace("bucket1").await;
    let dir = env.dir.path();
    let aws = s3.env();
    let prefix = "bucket1/team/backup";

    let (code, out) = sync(dir, &aws, "local", None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = sync(dir, &aws, "remote", Some("s3://bucket1/team/backup"));
    assert_eq!(code, 0, "{out}");
    let (local, remote) = (dir.join("local"), dir.join("remote"));
    assert_same_content(
        &content_snapshot(&remote),
        &content_snapshot(&local),
        "first sync, bucket vs disk",
    );
    assert!(
        !remote.join("blobs").exists(),
        "no local blob directory for an archive whose blobs are in a bucket"
    );
    let hashes = blob_hashes(&remote);
    assert!(hashes.len() > 3, "the sample has attachments and images");
    for (hash, _) in &hashes {
        let in_bucket = s3
            .request(reqwest::Method::GET, &key(prefix, hash), Vec::new())
            .await;
        let on_disk = std::fs::read(local.join(key("blobs", hash))).unwrap();
        assert!(in_bucket == on_disk, "blob {hash} differs in the bucket");
    }

    // Incremental: a new post with a multipart-sized attachment; --blobs is remembered.
    post_files(&env.server, "the recording", "one");
    sync_and_compare(dir, &aws, "remote", "incremental sync, bucket vs disk");
    assert!(!remote.join("blobs").exists());
    assert_eq!(
        tree(&remote.join("tmp")).len(),
        0,
        "no spooled bytes and no upload records are kept"
    );
    let big = blob_hashes(&remote)
        .into_iter()
        .find(|(_, size)| *size > 9 * 1024 * 1024)
        .expect("the big attachment is recorded");
    let in_bucket = s3
        .request(reqwest::Method::GET, &key(prefix, &big.0), Vec::new())
        .await;
    assert_eq!(blake3::hash(&in_bucket).to_hex().as_str(), big.0);

    // Verify by listing, then by re-reading every object.
    let (code, out) = run(dir, &aws, &["verify", "--archive", "remote"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dir, &aws, &["verify", "--archive", "remote", "--read-data"]);
    assert_eq!(code, 0, "{out}");
    let total = blob_hashes(&remote).len();
    assert!(
        out.contains(&format!("{total} blob(s) checked, {total} re-hashed")),
        "{out}"
    );

    // Export from the bucket equals export from disk.
    let (code, out) = run(
        dir,
        &aws,
        &[
            "export",
            "--archive",
            "local",
            "-d",
            "data-local",
            "--no-zip",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(
        dir,
        &aws,
        &[
            "export",
            "--archive",
            "remote",
            "-d",
            "data-remote",
            "--no-zip",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (from_disk, from_bucket) = (
        tree(&dir.join("data-local")),
        tree(&dir.join("data-remote")),
    );
    assert!(from_disk.len() > 10);
    assert!(
        from_disk == from_bucket,
        "exports differ: {:?} vs {:?}",
        from_disk.keys().collect::<Vec<_>>(),
        from_bucket.keys().collect::<Vec<_>>()
    );

    // Another location than the remembered one is refused, naming both.
    let (code, out) = run(
        dir,
        &aws,
        &["verify", "--archive", "remote", "--blobs", "local"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("keeps its blobs in s3://bucket1/team/backup"),
        "{out}"
    );

    // A corrupted object is found by --read-data, moved aside, and fetched again by sync.
    let (victim, size) = blob_hashes(&remote)
        .into_iter()
        .find(|(_, size)| *size > 16 && *size < 1024 * 1024)
        .unwrap();
    s3.request(
        reqwest::Method::PUT,
        &key(prefix, &victim),
        vec![b'x'; size],
    )
    .await;
    let (code, out) = run(dir, &aws, &["verify", "--archive", "remote", "--read-data"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&victim), "{out}");
    sync_and_compare(dir, &aws, "remote", "after repair, bucket vs disk");
    let (code, out) = run(dir, &aws, &["verify", "--archive", "remote", "--read-data"]);
    assert_eq!(code, 0, "{out}");

    // Each sync left a catalog snapshot; `snapshot` prunes to the newest N.
    assert_eq!(
        snapshots(&s3, "bucket1", "team/backup").await.len(),
        3,
        "one per sync"
    );
    let (code, out) = run(
        dir,
        &aws,
        &["snapshot", "--archive", "remote", "--keep-snapshots", "2"],
    );
    assert_eq!(code, 0, "{out}");
    let kept = snapshots(&s3, "bucket1", "team/backup").await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        out.contains(kept.last().unwrap()),
        "the newest is the one just taken: {out}"
    );

    // A new machine: pull, then an incremental sync there.
    let (code, out) = run(dir, &aws, &["pull", "s3://bucket1/team/backup", "pulled"]);
    assert_eq!(code, 0, "{out}");
    let pulled = dir.join("pulled");
    assert_same_content(
        &content_snapshot(&pulled),
        &content_snapshot(&remote),
        "pulled vs original",
    );
    let (code, out) = run(dir, &aws, &["pull", "s3://bucket1/team/backup", "pulled"]);
    assert_eq!(code, 2, "pulling over an archive is refused: {out}");
    post_files(&env.server, "after the move", "two");
    sync_and_compare(dir, &aws, "pulled", "pulled and synced vs disk");
    assert!(!pulled.join("blobs").exists(), "blobs stay in the bucket");
    let (code, out) = run(dir, &aws, &["verify", "--archive", "pulled", "--read-data"]);
    assert_eq!(code, 0, "{out}");
}

/// The text of every `<tag>` element in the answer to an unsigned GET of `query` (a bucket
/// listing).
async fn listed(s3: &S3Server, query: &str, tag: &str) -> Vec<String> {
    let listing = s3.request(reqwest::Method::GET, query, Vec::new()).await;
    let listing = String::from_utf8(listing).unwrap();
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    listing
        .split(open.as_str())
        .skip(1)
        .map(|rest| rest.split(close.as_str()).next().unwrap().to_owned())
        .collect()
}

/// Ids of the multipart uploads in progress in `bucket` (ListMultipartUploads).
async fn multipart_uploads(s3: &S3Server, bucket: &str) -> Vec<String> {
    listed(s3, &format!("{bucket}?uploads"), "UploadId").await
}

/// Ids of the multipart uploads in `bucket` that hold at least one part (ListParts for each).
/// A sync killed between starting an upload and recording it (its first part always comes
/// after the record) can leave only an empty upload, which holds no bytes.
async fn multipart_uploads_with_parts(s3: &S3Server, bucket: &str) -> Vec<String> {
    let mut with_parts = Vec::new();
    for upload in listed(s3, &format!("{bucket}?uploads"), "Upload").await {
        let field = |tag: &str| {
            let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
            let rest = upload.split(open.as_str()).nth(1).expect("listed field");
            rest.split(close.as_str()).next().unwrap().to_owned()
        };
        let (key, id) = (field("Key"), field("UploadId"));
        let parts = listed(s3, &format!("{bucket}/{key}?uploadId={id}"), "PartNumber").await;
        if !parts.is_empty() {
            with_parts.push(id);
        }
    }
    with_parts
}

/// Names under `<prefix>/catalogs/` (ListObjectsV2).
async fn snapshots(s3: &S3Server, bucket: &str, prefix: &str) -> Vec<String> {
    let query = format!("{bucket}?list-type=2&prefix={prefix}/catalogs/");
    listed(s3, &query, "Key").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_unreachable_endpoint_fails_with_exit_2_and_touches_nothing() {
    let (s3, env) = bucket_and_workspace("kept").await;
    let dir = env.dir.path();
    let aws = s3.env();
    let sync_to = |archive: &str, blobs: &str| sync(dir, &aws, archive, Some(blobs));

    let (code, out) = sync_to("fresh", "s3://no-such-bucket/x");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("s3://no-such-bucket/x"), "{out}");
    assert!(out.to_lowercase().contains("bucket"), "{out}");
    assert!(!dir.join("fresh").exists(), "nothing created: {out}");

    let (code, out) = sync_to("kept", "s3://kept/p");
    assert_eq!(code, 0, "{out}");
    let before = content_snapshot(&dir.join("kept"));
    let catalog_before = std::fs::read(dir.join("kept/catalog.sqlite")).unwrap();

    // The same archive, its server gone: the remembered bucket cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut unreachable = aws.clone();
    unreachable[0].1 = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let (code, out) = sync(dir, &unreachable, "kept", None);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("s3://kept/p"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(60), "fails fast");
    assert_eq!(
        std::fs::read(dir.join("kept/catalog.sqlite")).unwrap(),
        catalog_before,
        "catalog untouched"
    );
    assert_same_content(&content_snapshot(&dir.join("kept")), &before, "untouched");
    let (code, out) = run(
        dir,
        &unreachable,
        &["export", "--archive", "kept", "-d", "data", "--no-zip"],
    );
    assert_eq!(code, 2, "{out}");

    let (code, out) = sync_to("bad-url", "s3://UPPER/x");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bucket name"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_with_exit_2_without_showing_them() {
    // With IAM checks on from the first request, moto knows no access key at all.
    let s3 = S3Server::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let env = common::start().await;
    let dir = env.dir.path();
    write_inputs(dir, &env.server.url(), 0o600);
    let (code, out) = sync(dir, &s3.env(), "a", Some("s3://bucket1/x"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("InvalidAccessKeyId"), "{out}");
    assert!(!dir.join("a").exists(), "{out}");
}

/// For the kill tests: [`bucket_and_workspace`] with `posts` new posts of big attachments
/// (seeded with `bucket`), the bucket behind a [`FaultProxy`] that delays every request by
/// 40 ms, so kills land while uploads are in flight, and the variables that reach it there
/// (with the archive password when one is given).
async fn slow_bucket_and_big_files(
    bucket: &str,
    posts: usize,
    password: Option<&str>,
) -> (
    S3Server,
    common::Env,
    FaultProxy,
    Vec<(&'static str, String)>,
) {
    let (s3, env) = bucket_and_workspace(bucket).await;
    let proxy = FaultProxy::start(&s3.endpoint, 0, Duration::from_millis(40)).await;
    for i in 0..posts {
        post_files(&env.server, &format!("big {i}"), &format!("{bucket} {i}"));
    }
    let mut aws = match password {
        Some(password) => with_password(&s3.env(), password),
        None => s3.env(),
    };
    aws[0].1 = proxy.endpoint.clone();
    (s3, env, proxy, aws)
}

/// Waits until `due` (observed progress of the run `child` is), asserting that the run goes
/// on meanwhile, then kills it (SIGKILL) while it still runs.
async fn kill_when(child: &mut std::process::Child, due: impl Fn() -> bool, moment: &str) {
    while !due() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{moment}: the run ended before its moment"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "{moment}: the run still goes on when it is killed"
    );
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

/// A loopback proxy in front of the S3 server that answers 503 SlowDown and 500, alternately,
/// to the first `faults` requests it sees, delays every request by `latency`, and counts
/// multipart part uploads.
struct FaultProxy {
    endpoint: String,
    shared: ProxyShared,
}

/// What the proxy's handler and the test both hold: counters, and the switch of `fail_gets`.
#[derive(Clone, Default)]
struct ProxyShared {
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    parts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Access key ids the requests were signed with, and `token T` for the session tokens
    /// they carried.
    keys: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// While set, every GET or HEAD of an object (not a listing, not the `config` marker or
    /// the `keyring`) is answered 500.
    fail_gets: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// While set, every PUT of a key object (`<prefix>/keys/<id>`) is answered 403
    /// AccessDenied, as a bucket policy that denies it would.
    deny_key_puts: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Requests taken in and not yet answered by the bucket: after a kill, a request the
    /// proxy still holds (its latency) may yet start or finish an upload in the bucket.
    in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts one request in flight until dropped (on every way out of `forward`).
struct InFlight(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    faults: usize,
    latency: Duration,
    shared: ProxyShared,
}

impl FaultProxy {
    /// Waits until every request the proxy took in has had its answer from the bucket, so
    /// what a killed client sent has all landed before the bucket is looked at.
    async fn settle(&self) {
        while self
            .shared
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn start(upstream: &str, faults: usize, latency: Duration) -> FaultProxy {
        use axum::extract::{Request, State};
        use std::sync::atomic::Ordering;
        let state = ProxyState {
            upstream: upstream.to_owned(),
            client: reqwest::Client::new(),
            faults,
            latency,
            shared: ProxyShared::default(),
        };
        let shared = state.shared.clone();
        async fn forward(
            State(state): State<ProxyState>,
            request: Request,
        ) -> axum::response::Response {
            let shared = &state.shared;
            shared.in_flight.fetch_add(1, Ordering::SeqCst);
            let _in_flight = InFlight(shared.in_flight.clone());
            tokio::time::sleep(state.latency).await;
            let query = request.uri().query().unwrap_or("").to_owned();
            let signed_by = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split("Credential=").nth(1))
                .and_then(|v| v.split('/').next())
                .map(str::to_owned);
            let token = request
                .headers()
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("token {v}"));
            shared
                .keys
                .lock()
                .unwrap()
                .extend(signed_by.into_iter().chain(token));
            let n = shared.requests.fetch_add(1, Ordering::SeqCst);
            // Blobs only: the repository objects read when the bucket is opened (`config`,
            // and `keyring` of a prefix without a marker) are answered, so the failure lands
            // where the test looks for it.
            let path = request.uri().path();
            let object_get = (request.method() == axum::http::Method::GET
                || request.method() == axum::http::Method::HEAD)
                && query.is_empty()
                && !path.ends_with("/config")
                && !path.ends_with("/keyring");
            if n < state.faults || (object_get && shared.fail_gets.load(Ordering::SeqCst)) {
                let (status, body) = if n % 2 == 0 {
                    (
                        503,
                        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
                    )
                } else {
                    (
                        500,
                        "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
                    )
                };
                return axum::response::Response::builder()
                    .status(status)
                    .body(axum::body::Body::from(body))
                    .unwrap();
            }
            if request.method() == axum::http::Method::PUT
                && path.contains("/keys/")
                && shared.deny_key_puts.load(Ordering::SeqCst)
            {
                return axum::response::Response::builder()
                    .status(403)
                    .body(axum::body::Body::from(
                        "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                    ))
                    .unwrap();
            }
            if query.contains("partNumber=") {
                shared.parts.fetch_add(1, Ordering::SeqCst);
            }
            let url = format!("{}{}", state.upstream, request.uri());
            let method = request.method().clone();
            let headers = request.headers().clone();
            let body = reqwest::Body::wrap_stream(request.into_body().into_data_stream());
            let request = state
                .client
                .request(method, url)
                .headers(headers)
                .body(body);
            // A task of its own, so the request to the bucket runs to its answer (and stays
            // counted in flight until then) even when the killed client's connection ends
            // this handler.
            let sent = tokio::spawn(async move {
                let _in_flight = _in_flight;
                request.send().await
            })
            .await
            .unwrap();
            // A client killed mid-request: nothing to answer.
            let Ok(upstream) = sent else {
                return axum::response::Response::builder()
                    .status(502)
                    .body(axum::body::Body::empty())
                    .unwrap();
            };
            let mut response =
                axum::response::Response::builder().status(upstream.status().as_u16());
            for (name, value) in upstream.headers() {
                response = response.header(name, value);
            }
            response
                .body(axum::body::Body::from_stream(upstream.bytes_stream()))
                .unwrap()
        }
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy { endpoint, shared }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_and_server_errors_are_retried_and_nothing_is_lost() {
    let (s3, env) = bucket_and_workspace("flaky").await;
    let proxy = FaultProxy::start(&s3.endpoint, 8, Duration::ZERO).await;
    post_files(&env.server, "big one", "flaky");
    let dir = env.dir.path();
    let mut aws = s3.env();
    aws[0].1 = proxy.endpoint.clone();
    aws[4].1 = "10".into();
    let (code, out) = sync(dir, &aws, "remote", Some("s3://flaky/p"));
    assert_eq!(code, 0, "{out}");
    let (code, out) = sync(dir, &aws, "local", None);
    assert_eq!(code, 0, "{out}");
    let seen = proxy
        .shared
        .requests
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        seen > 8,
        "all 8 faults were served, then real answers: {seen} requests"
    );
    assert_same_content(
        &content_snapshot(&dir.join("remote")),
        &content_snapshot(&dir.join("local")),
        "through faults, bucket vs disk",
    );
    let (code, out) = run(dir, &aws, &["verify", "--archive", "remote", "--read-data"]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_during_uploads_leaves_a_clean_archive_and_the_next_sync_completes() {
    let (s3, env, proxy, aws) = slow_bucket_and_big_files("killed", 3, None).await;
    let dir = env.dir.path();
    let args = sync_args("remote", Some("s3://killed/p"), false);
    let (code, out) = sync(dir, &aws, "local", None);
    assert_eq!(code, 0, "{out}");
    let parts = || proxy.shared.parts.load(std::sync::atomic::Ordering::SeqCst);
    let requests = || {
        proxy
            .shared
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    // Trials, each at observed progress of the run: early (its first request to the bucket),
    // mid-multipart (after the first part went up), later (after a second part), and
    // mid-multipart again (a new big attachment) to be cleaned up by the next sync rather
    // than by verify. Every request to the bucket takes 40 ms and each trial's run has more
    // to upload than its moment, so the run is still going when the kill lands (asserted).
    for trial in 0..4 {
        if trial == 3 {
            post_files(&env.server, "big 3", "kill 3");
        }
        let mut child = command(dir, &aws, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (before_parts, before_requests) = (parts(), requests());
        let due = || match trial {
            0 => requests() > before_requests,
            1 | 3 => parts() > before_parts,
            _ => parts() > before_parts + 1,
        };
        kill_when(&mut child, due, &format!("trial {trial}")).await;
        // What the killed sync sent and the proxy still held reaches the bucket first.
        proxy.settle().await;
        let left = multipart_uploads(&s3, "killed").await;
        if matches!(trial, 1 | 3) {
            assert!(
                !left.is_empty(),
                "killed mid-multipart: the upload is incomplete in the bucket"
            );
        }
        if trial != 3 && dir.join("remote/catalog.sqlite").exists() {
            let (code, out) = run(dir, &aws, &["verify", "--archive", "remote", "--read-data"]);
            assert_eq!(code, 0, "trial {trial}: {out}");
            // A kill between starting an upload and recording it leaves an empty upload that
            // nothing here can find (see README); every other one is aborted.
            let after = multipart_uploads(&s3, "killed").await;
            // Not an exact count: a request of the killed sync that the fault proxy still
            // held when `left` was listed may complete or start an upload afterwards (seen
            // under load), so the count verify reports may differ from `left - after`. What
            // is guaranteed is below: no upload holding parts is left.
            if left.len() > after.len() {
                assert!(
                    out.contains("incomplete multipart upload(s)"),
                    "trial {trial}: {out}"
                );
            }
            assert_eq!(
                multipart_uploads_with_parts(&s3, "killed").await,
                Vec::<String>::new(),
                "trial {trial}: verify aborted every upload holding parts that the killed sync left"
            );
            if matches!(trial, 1) {
                assert!(after.len() < left.len(), "trial {trial}: {out}");
            }
        }
    }
    // The next sync completes (the bucket is remembered), as the disk archive's does, and
    // aborts the upload the last kill left.
    sync_and_compare(dir, &aws, "remote", "after kills, bucket vs disk");
    assert_eq!(
        multipart_uploads_with_parts(&s3, "killed").await,
        Vec::<String>::new(),
        "the sync aborted what the killed one left"
    );
    let (code, out) = run(dir, &aws, &["verify", "--archive", "remote", "--read-data"]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_export_format_stats_and_import_use_the_bucket() {
    let (s3, env) = bucket_and_workspace("every").await;
    post_files(&env.server, "the recording", "every");
    let dir = env.dir.path();
    let aws = s3.env();
    let (code, out) = sync(dir, &aws, "local", None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = sync(dir, &aws, "remote", Some("s3://every/p"));
    assert_eq!(code, 0, "{out}");
    let hashes = blob_hashes(&dir.join("remote"));
    let big = hashes
        .iter()
        .find(|(_, size)| *size > 9 * 1024 * 1024)
        .expect("the big attachment is archived")
        .clone();
    let big_bytes = std::fs::read(dir.join("local").join(key("blobs", &big.0))).unwrap();

    // stats lists the bucket: every blob, at its recorded size.
    let (code, out) = run(dir, &aws, &["stats", "--archive", "remote", "--json"]);
    assert_eq!(code, 0, "{out}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let total: usize = hashes.iter().map(|(_, size)| size).sum();
    assert_eq!(stats["bucket"]["location"], "s3://every/p", "{out}");
    assert_eq!(stats["bucket"]["objects"], hashes.len(), "{out}");
    assert_eq!(stats["bucket"]["bytes"], total, "{out}");
    let (code, out) = run(dir, &aws, &["stats", "--archive", "remote"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("bucket s3://every/p: {} objects, ", hashes.len()))
            && out.contains(&format!("({total} bytes)")),
        "{out}"
    );
    let (code, out) = run(dir, &aws, &["stats", "--archive", "local"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("bucket "), "{out}");
    let (code, out) = run(
        dir,
        &aws,
        &["stats", "--archive", "remote", "--blobs", "local"],
    );
    assert_eq!(code, 2, "a contradicting --blobs is refused: {out}");

    // Each format writes the same bytes from the bucket as from disk.
    let export = |archive: &str, extra: &[&str]| export_ok(dir, &aws, archive, extra);
    for archive in ["local", "remote"] {
        export(
            archive,
            &["--format", "html", "-o", &format!("site-{archive}")],
        );
    }
    let (site_local, site_remote) = (
        tree(&dir.join("site-local")),
        tree(&dir.join("site-remote")),
    );
    assert!(
        site_remote.values().any(|bytes| *bytes == big_bytes),
        "the site holds the attachment's bytes"
    );
    assert!(
        site_local == site_remote,
        "sites differ: {:?}",
        site_remote
            .iter()
            .filter(|(path, bytes)| site_local.get(*path) != Some(*bytes))
            .map(|(path, _)| path)
            .collect::<Vec<_>>()
    );
    let channel = env
        .server
        .with_workspace(|w| w.channel_id("eng", "town-square"));
    for archive in ["local", "remote"] {
        let zip = format!("{archive}.hgf.zip");
        export(archive, &["--format", "hgf", "-c", &channel, "-o", &zip]);
        let zip = format!("{archive}.bulk.zip");
        export(
            archive,
            &[
                "--format",
                "bulk-import",
                "--existing-users",
                "none",
                "-o",
                &zip,
            ],
        );
    }
    for kind in ["hgf", "bulk"] {
        // The hgf skip list states when it was written, the one field that may differ.
        let read = |archive: &str| {
            let mut entries = common::read_zip(&dir.join(format!("{archive}.{kind}.zip")));
            for (name, bytes) in &mut entries {
                if name.ends_with("skipped_attachments.json") {
                    let mut json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                    json["generated_at"] = serde_json::Value::Null;
                    *bytes = serde_json::to_vec(&json).unwrap();
                }
            }
            entries
        };
        let (from_disk, from_bucket) = (read("local"), read("remote"));
        assert!(
            from_bucket.iter().any(|(_, bytes)| *bytes == big_bytes),
            "{kind}: the zip holds the attachment's bytes"
        );
        let names = |entries: &[(String, Vec<u8>)]| -> Vec<String> {
            entries.iter().map(|(n, _)| n.clone()).collect()
        };
        assert_eq!(names(&from_disk), names(&from_bucket), "{kind}: entries");
        for ((name, disk), (_, bucket)) in from_disk.iter().zip(&from_bucket) {
            assert!(
                disk == bucket,
                "{kind}: {name} differs:\n{}\nvs\n{}",
                String::from_utf8_lossy(&disk[..disk.len().min(4000)]),
                String::from_utf8_lossy(&bucket[..bucket.len().min(4000)])
            );
        }
    }

    // Import of a backup into a new archive puts its binaries into the bucket.
    export("local", &["-d", "backup", "--no-zip"]);
    let (code, out) = run(
        dir,
        &aws,
        &[
            "import",
            "--archive",
            "imported",
            "--blobs",
            "s3://every/imported",
            "backup",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let imported = blob_hashes(&dir.join("imported"));
    assert!(
        imported.iter().any(|(hash, _)| *hash == big.0),
        "the big attachment is imported: {imported:?}"
    );
    assert!(!dir.join("imported/blobs").exists(), "no local blobs");
    for (hash, size) in &imported {
        let object = s3
            .request(
                reqwest::Method::GET,
                &key("every/imported", hash),
                Vec::new(),
            )
            .await;
        assert_eq!(object.len(), *size, "{hash}");
        assert_eq!(blake3::hash(&object).to_hex().as_str(), hash);
    }
    // Remembered: verify and a second import need no flag.
    let (code, out) = run(
        dir,
        &aws,
        &["verify", "--archive", "imported", "--read-data"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dir, &aws, &["import", "--archive", "imported", "backup"]);
    assert_eq!(code, 0, "{out}");
    assert!(!dir.join("imported/blobs").exists(), "no local blobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_region_and_endpoint_come_from_the_aws_files_of_a_profile() {
    let (s3, env) = bucket_and_workspace("profiled").await;
    let proxy = FaultProxy::start(&s3.endpoint, 0, Duration::ZERO).await;
    let dir = env.dir.path();
    let files = tempfile::tempdir().unwrap();
    let credentials = files.path().join("credentials");
    let config = files.path().join("config");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = wrong\n\n[backup]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[profile backup]\nregion = us-east-1\nendpoint_url = {}\ns3 =\n    addressing_style = path\n",
            proxy.endpoint
        ),
    )
    .unwrap();
    // Nothing in the environment but the profile and where its files are, and a stray
    // session token that must not travel with the profile's keys.
    let mut aws = vec![
        ("AWS_SESSION_TOKEN", "stray-token-of-another-key".to_owned()),
        ("AWS_PROFILE", "backup".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials.display().to_string(),
        ),
        ("AWS_CONFIG_FILE", config.display().to_string()),
        ("MATTERBAK_S3_RETRIES", "2".to_owned()),
    ];
    let (code, out) = sync(dir, &aws, "archive", Some("s3://profiled/p"));
    assert_eq!(code, 0, "{out}");
    let keys = proxy.shared.keys.lock().unwrap().clone();
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        vec![ACCESS_KEY.to_owned()],
        "every request signed with the profile's key"
    );
    let hashes = blob_hashes(&dir.join("archive"));
    assert!(!hashes.is_empty());
    let object = s3
        .request(
            reqwest::Method::GET,
            &key("profiled/p", &hashes[0].0),
            Vec::new(),
        )
        .await;
    assert_eq!(object.len(), hashes[0].1);
    assert!(!dir.join("archive/blobs").exists());
    let (code, out) = run(
        dir,
        &aws,
        &["verify", "--archive", "archive", "--read-data"],
    );
    assert_eq!(code, 0, "{out}");

    // A profile that neither file has: exit 2 naming it, nothing touched.
    let catalog_before = std::fs::read(dir.join("archive/catalog.sqlite")).unwrap();
    aws[1].1 = "no-such-profile".into();
    for args in [
        &["sync", "--archive", "archive", "--rate-limit", "0", "-q"][..],
        &["verify", "--archive", "archive"][..],
    ] {
        let (code, out) = run(dir, &aws, args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains("\"no-such-profile\""), "{out}");
    }
    assert_eq!(
        std::fs::read(dir.join("archive/catalog.sqlite")).unwrap(),
        catalog_before
    );
    let (code, out) = sync(dir, &aws, "fresh", Some("s3://profiled/q"));
    assert_eq!(code, 2, "{out}");
    assert!(!dir.join("fresh").exists(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_stops_when_the_bucket_keeps_failing_and_lists_an_object_that_is_gone() {
    let (s3, env) = bucket_and_workspace("failing").await;
    let proxy = FaultProxy::start(&s3.endpoint, 0, Duration::ZERO).await;
    let dir = env.dir.path();
    let mut aws = s3.env();
    aws[0].1 = proxy.endpoint.clone();
    let (code, out) = sync(dir, &aws, "remote", Some("s3://failing/p"));
    assert_eq!(code, 0, "{out}");
    let export = |data: &str| {
        run(
            dir,
            &aws,
            &["export", "--archive", "remote", "-d", data, "--no-zip"],
        )
    };

    // Downloads that fail through every retry stop the export: no bytes are left out quietly.
    // (The proxy answers 503 and 500 in turn, by request count: either is the failure.)
    proxy
        .shared
        .fail_gets
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (code, out) = export("data-failing");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot download s3://failing/p/")
            && (out.contains("500") || out.contains("503")),
        "{out}"
    );
    assert!(!out.contains("not in the archive"), "{out}");
    // The same for the bulk-import writer, which asks the bucket for sizes (HEAD) first.
    let bulk = |zip: &str| {
        run(
            dir,
            &aws,
            &[
                "export",
                "--archive",
                "remote",
                "--format",
                "bulk-import",
                "--existing-users",
                "none",
                "-o",
                zip,
            ],
        )
    };
    let (code, out) = bulk("bulk-failing.zip");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot look up s3://failing/p/")
            && (out.contains("500") || out.contains("503")),
        "{out}"
    );
    assert!(!out.contains("not in the archive"), "{out}");

    // An object that is gone is listed, and the export completes.
    proxy
        .shared
        .fail_gets
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (gone, _) = blob_hashes(&dir.join("remote")).remove(0);
    s3.request(
        reqwest::Method::DELETE,
        &key("failing/p", &gone),
        Vec::new(),
    )
    .await;
    let (code, out) = export("data-gone");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("blob {gone} missing from the store")),
        "{out}"
    );
}

// Encrypted archives (issue 22): everything the bucket holds is sealed, names are keyed, and
// the bucket alone reveals nothing of the workspace.

const PASSWORD: &str = "correct horse battery staple";

/// `aws` plus `MATTERBAK_ARCHIVE_PASSWORD`.
fn with_password(aws: &[(&'static str, String)], password: &str) -> Vec<(&'static str, String)> {
    let mut env = aws.to_vec();
    env.push(("MATTERBAK_ARCHIVE_PASSWORD", password.into()));
    env
}

/// `matterbak sync --encrypt` of `archive` into the empty prefix `blobs`.
fn sync_encrypted(
    dir: &Path,
    env: &[(&'static str, String)],
    archive: &str,
    blobs: &str,
) -> (i32, String) {
    run(dir, env, &sync_args(archive, Some(blobs), true))
}

/// `bucket/key` of every object below `prefix/` in `bucket` (ListObjectsV2; the sample's
/// objects fit one page).
async fn objects(s3: &S3Server, bucket: &str, prefix: &str) -> Vec<String> {
    listed(s3, &format!("{bucket}?list-type=2&prefix={prefix}/"), "Key")
        .await
        .into_iter()
        .map(|key| format!("{bucket}/{key}"))
        .collect()
}

/// Texts of the workspace that must not appear in any object: messages, user names, channel
/// names, file names, as the plain local archive holds them (the server's own data). Short
/// ones are left out: random bytes contain any 3-byte string now and then.
fn known_plaintexts(local: &Path) -> Vec<Vec<u8>> {
    let catalog = matterbak::catalog::Catalog::open(
        &local.join("catalog.sqlite"),
        matterbak::catalog::Access::ReadOnly,
    )
    .unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT message FROM posts WHERE type = ''",
        "SELECT username FROM users",
        "SELECT name FROM channels",
        "SELECT display_name FROM channels",
        "SELECT name FROM files",
    ] {
        for text in common::rows(&catalog, sql) {
            // At most 40 bytes from the start: a long message is still caught by its start.
            let bytes = text.as_bytes();
            if bytes.len() >= 6 {
                out.push(bytes[..bytes.len().min(40)].to_vec());
            }
        }
    }
    // File contents: 32 bytes from the start of each blob on disk.
    for (hash, size) in blob_hashes(local) {
        if size >= 8 {
            let bytes = std::fs::read(local.join(key("blobs", &hash))).unwrap();
            out.push(bytes[..bytes.len().min(32)].to_vec());
        }
    }
    out.push(b"SQLite format 3".to_vec());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_bucket_reveals_nothing_and_reads_back_like_a_local_archive() {
    let (s3, env) = bucket_and_workspace("sealed").await;
    post_files(&env.server, "the recording", "sealed");
    let dir = env.dir.path();
    let aws = s3.env();
    let keyed = with_password(&aws, PASSWORD);
    let (code, out) = sync(dir, &aws, "local", None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = sync_encrypted(dir, &keyed, "remote", "s3://sealed/enc");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("created encrypted repository"), "{out}");
    assert!(!out.contains(PASSWORD), "{out}");
    let (local, remote) = (dir.join("local"), dir.join("remote"));
    assert_same_content(
        &content_snapshot(&remote),
        &content_snapshot(&local),
        "encrypted bucket vs disk",
    );

    // No object holds a known plaintext; no object is named by a file's hash.
    let names = objects(&s3, "sealed", "enc").await;
    let hashes = blob_hashes(&local);
    assert!(
        names.len() >= hashes.len() + 3,
        "blobs, snapshot, config, key: {names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("sealed/enc/keys/")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("sealed/enc/catalogs/")),
        "{names:?}"
    );
    let plaintexts = known_plaintexts(&local);
    assert!(plaintexts.len() > 20, "{}", plaintexts.len());
    let mut by_start: std::collections::HashMap<&[u8], Vec<&Vec<u8>>> = Default::default();
    for text in &plaintexts {
        by_start.entry(&text[..6]).or_default().push(text);
    }
    for name in &names {
        for (hash, _) in &hashes {
            assert!(
                !name.contains(hash.as_str()),
                "{name} is named by a file's BLAKE3 hash"
            );
        }
        let body = s3.request(reqwest::Method::GET, name, Vec::new()).await;
        // One pass over the object: a window whose first 6 bytes start a plaintext is
        // compared in full.
        for (at, window) in body.windows(6).enumerate() {
            let Some(texts) = by_start.get(window) else {
                continue;
            };
            for text in texts {
                assert!(
                    !body[at..].starts_with(text),
                    "{name} holds the plaintext {:?}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    // Incremental sync, verify reading every object, stats in plaintext sizes.
    post_files(&env.server, "another recording", "sealed 2");
    for name in ["remote", "local"] {
        let (code, out) = sync(dir, &keyed, name, None);
        assert_eq!(code, 0, "{name}: {out}");
    }
    assert_same_content(
        &content_snapshot(&remote),
        &content_snapshot(&local),
        "incremental, encrypted bucket vs disk",
    );
    let total = blob_hashes(&remote).len();
    let (code, out) = run(
        dir,
        &keyed,
        &["verify", "--archive", "remote", "--read-data"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{total} blob(s) checked, {total} re-hashed")),
        "{out}"
    );
    let (code, out) = run(dir, &keyed, &["stats", "--archive", "remote", "--json"]);
    assert_eq!(code, 0, "{out}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bytes: usize = blob_hashes(&local).iter().map(|(_, size)| size).sum();
    assert_eq!(stats["bucket"]["objects"], total, "{out}");
    assert_eq!(stats["bucket"]["bytes"], bytes, "plaintext sizes: {out}");

    // Every export from the encrypted bucket equals the one from disk, byte for byte.
    let export = |archive: &str, extra: &[&str]| export_ok(dir, &keyed, archive, extra);
    for archive in ["local", "remote"] {
        export(
            archive,
            &[
                "-d",
                &format!("data-{archive}"),
                "-o",
                &format!("{archive}.zip"),
            ],
        );
        export(
            archive,
            &["--format", "html", "-o", &format!("site-{archive}")],
        );
        export(
            archive,
            &["--format", "markdown", "-o", &format!("md-{archive}")],
        );
        export(
            archive,
            &[
                "--format",
                "bulk-import",
                "--existing-users",
                "none",
                "-o",
                &format!("{archive}.bulk.zip"),
            ],
        );
    }
    for (a, b) in [
        ("data-local", "data-remote"),
        ("site-local", "site-remote"),
        ("md-local", "md-remote"),
    ] {
        let (from_disk, from_bucket) = (tree(&dir.join(a)), tree(&dir.join(b)));
        assert!(from_disk.len() > 3, "{a}");
        assert!(from_disk == from_bucket, "{a} and {b} differ");
    }
    assert_eq!(
        common::read_zip(&dir.join("local.zip")),
        common::read_zip(&dir.join("remote.zip"))
    );
    assert_eq!(
        common::read_zip(&dir.join("local.bulk.zip")),
        common::read_zip(&dir.join("remote.bulk.zip"))
    );

    // A new machine: pull decrypts the snapshot into a plain local catalog.
    let (code, out) = run(dir, &keyed, &["pull", "s3://sealed/enc", "pulled"]);
    assert_eq!(code, 0, "{out}");
    assert_same_content(
        &content_snapshot(&dir.join("pulled")),
        &content_snapshot(&remote),
        "pulled vs original",
    );
    let (code, out) = run(
        dir,
        &keyed,
        &["verify", "--archive", "pulled", "--read-data"],
    );
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_passwords_and_mismatches_exit_2_and_write_nothing() {
    let (s3, env) = bucket_and_workspace("locks").await;
    let dir = env.dir.path();
    let aws = s3.env();
    let keyed = with_password(&aws, PASSWORD);
    let args = |archive: &'static str, blobs: &'static str| sync_args(archive, Some(blobs), false);
    let (code, out) = sync_encrypted(dir, &keyed, "enc", "s3://locks/enc");
    assert_eq!(code, 0, "{out}");
    let (code, out) = sync(dir, &aws, "plain", Some("s3://locks/plain"));
    assert_eq!(code, 0, "{out}");
    let before = {
        let mut all = objects(&s3, "locks", "enc").await;
        all.extend(objects(&s3, "locks", "plain").await);
        all
    };

    // Into a new archive directory and into the existing ones: refused, nothing written.
    let wrong = with_password(&aws, "Tr0ub4dor&3");
    type Env = Vec<(&'static str, String)>;
    let cases: Vec<(Env, Vec<&str>, &str)> = vec![
        (
            wrong.clone(),
            args("new1", "s3://locks/enc"),
            "no key in the bucket opens with this password",
        ),
        (
            wrong.clone(),
            vec!["verify", "--archive", "enc"],
            "no key in the bucket opens with this password",
        ),
        (
            wrong.clone(),
            vec!["pull", "s3://locks/enc", "new2"],
            "no key in the bucket opens with this password",
        ),
        (
            aws.clone(),
            args("new3", "s3://locks/enc"),
            "is an encrypted repository: give its password",
        ),
        (
            aws.clone(),
            vec!["export", "--archive", "enc", "-d", "out1", "--no-zip"],
            "is an encrypted repository: give its password",
        ),
        (
            keyed.clone(),
            args("new4", "s3://locks/plain"),
            "is not encrypted",
        ),
        (
            keyed.clone(),
            vec!["verify", "--archive", "plain"],
            "is not encrypted",
        ),
        (
            aws.clone(),
            {
                let mut a = sync_args("new5", Some("s3://locks/plain"), true);
                a.push("--password-file");
                a.push("pw.txt");
                a
            },
            "--encrypt creates an encrypted repository only in an empty prefix",
        ),
    ];
    std::fs::write(dir.join("pw.txt"), format!("{PASSWORD}\n")).unwrap();
    for (env, args, says) in &cases {
        let (code, out) = run(dir, env, args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
        assert!(
            !out.contains(PASSWORD) && !out.contains("Tr0ub4dor"),
            "{out}"
        );
    }
    for new in ["new1", "new2", "new3", "new4", "new5", "out1"] {
        assert!(!dir.join(new).exists(), "{new} was created");
    }
    let after = {
        let mut all = objects(&s3, "locks", "enc").await;
        all.extend(objects(&s3, "locks", "plain").await);
        all
    };
    assert_eq!(before, after, "nothing written to the bucket");

    // The catalog remembers the repository: a plain prefix where it was is refused.
    for name in objects(&s3, "locks", "enc").await {
        s3.request(reqwest::Method::DELETE, &name, Vec::new()).await;
    }
    let (code, out) = run(dir, &aws, &["verify", "--archive", "enc"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("but the catalog remembers encrypted repository"),
        "{out}"
    );
    // The password from a file or a command works as the variable does.
    let (code, out) = run(dir, &aws, &{
        let mut a = args("viafile", "s3://locks/again");
        a.extend(["--encrypt", "--password-file", "pw.txt"]);
        a
    });
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(
        dir,
        &aws,
        &[
            "verify",
            "--archive",
            "viafile",
            "--password-command",
            "cat pw.txt",
        ],
    );
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_added_changed_and_removed_and_a_killed_key_add_leaves_the_bucket_usable() {
    let (s3, env) = bucket_and_workspace("keys").await;
    let dir = env.dir.path();
    let aws = s3.env();
    let first = with_password(&aws, PASSWORD);
    let (code, out) = sync_encrypted(dir, &first, "a", "s3://keys/p");
    assert_eq!(code, 0, "{out}");
    let readable = |env: &[(&'static str, String)]| {
        let (code, out) = run(dir, env, &["verify", "--archive", "a", "--read-data"]);
        (code, out)
    };
    let key_ids = |env: &[(&'static str, String)]| -> Vec<String> {
        let (code, out) = run(dir, env, &["key", "list", "--archive", "a", "--json"]);
        assert_eq!(code, 0, "{out}");
        let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
        keys.as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(key_ids(&first).len(), 1);
    // The last key is never removed.
    let only = key_ids(&first)[0].clone();
    let (code, out) = run(dir, &first, &["key", "remove", "--archive", "a", &only]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("it is the last key"), "{out}");

    // add: both passwords open the archive.
    let mut adding = first.clone();
    adding.push(("MATTERBAK_ARCHIVE_NEW_PASSWORD", "second password".into()));
    let (code, out) = run(dir, &adding, &["key", "add", "--archive", "a"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("second password"), "{out}");
    let second = with_password(&aws, "second password");
    assert_eq!(readable(&first).0, 0);
    assert_eq!(readable(&second).0, 0);
    assert_eq!(key_ids(&second).len(), 2);

    // passwd: the new one works, the old one stops working, data readable throughout.
    let mut changing = first.clone();
    changing.push(("MATTERBAK_ARCHIVE_NEW_PASSWORD", "third password".into()));
    let (code, out) = run(dir, &changing, &["key", "passwd", "--archive", "a"]);
    assert_eq!(code, 0, "{out}");
    let third = with_password(&aws, "third password");
    let (code, out) = readable(&first);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("no key in the bucket opens with this password"),
        "{out}"
    );
    assert_eq!(readable(&third).0, 0);
    assert_eq!(readable(&second).0, 0);

    // remove: the second password stops working.
    let ids = key_ids(&third);
    let (code, out) = run(dir, &third, &["key", "list", "--archive", "a"]);
    assert_eq!(code, 0, "{out}");
    let current = out.lines().find(|l| l.starts_with('*')).unwrap().to_owned();
    let other = ids
        .iter()
        .find(|id| !current.contains(id.as_str()))
        .unwrap();
    let (code, out) = run(dir, &third, &["key", "remove", "--archive", "a", other]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(readable(&second).0, 2);
    assert_eq!(readable(&third).0, 0);

    // kill -9 during `key add`, once its key object is written (observed on stderr): the
    // bucket stays usable with the old password, and verify finds no damage.
    let mut child = command(dir, &third, &["key", "add", "--archive", "a"])
        .env("MATTERBAK_ARCHIVE_NEW_PASSWORD", "fourth password")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        let written = line.starts_with("wrote key object");
        seen.push(line);
        if written {
            let _ = child.kill(); // SIGKILL
            break;
        }
    }
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.starts_with("wrote key object")),
        "{seen:?}"
    );
    let (code, out) = readable(&third);
    assert_eq!(code, 0, "{out}");
    let (code, out) = sync(dir, &third, "a", None);
    assert_eq!(code, 0, "{out}");
}

/// The first `sync --encrypt` creates the repository beside the sync: when its key object
/// cannot be written (the bucket denies it), the run fails naming the creation and leaves no
/// object in the prefix, and the next `sync --encrypt` creates it and the archive verifies
/// clean. (The catalog used to remember the repository from the start of the run, so every
/// later run was refused as a bucket that changed under the archive.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_encrypted_sync_whose_key_creation_fails_leaves_the_archive_usable() {
    use std::sync::atomic::Ordering;
    let (s3, env) = bucket_and_workspace("creation").await;
    let dir = env.dir.path();
    let proxy = FaultProxy::start(&s3.endpoint, 0, Duration::ZERO).await;
    let mut aws = with_password(&s3.env(), PASSWORD);
    aws[0].1 = proxy.endpoint.clone();
    proxy.shared.deny_key_puts.store(true, Ordering::SeqCst);
    let (code, out) = sync_encrypted(dir, &aws, "a", "s3://creation/p");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot create an encrypted repository in s3://creation/p"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");
    proxy.settle().await;
    assert_eq!(objects(&s3, "creation", "p").await, Vec::<String>::new());

    proxy.shared.deny_key_puts.store(false, Ordering::SeqCst);
    let (code, out) = sync_encrypted(dir, &aws, "a", "s3://creation/p");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("created encrypted repository"), "{out}");
    let (code, out) = run(dir, &aws, &["verify", "--archive", "a", "--read-data"]);
    assert_eq!(code, 0, "{out}");
    // The catalog remembers the repository now (its id, 32 hex digits), as its config
    // marker names it.
    let (code, out) = run(
        dir,
        &aws,
        &[
            "sql",
            "--archive",
            "a",
            "SELECT value FROM archive_settings WHERE key = 'encryption'",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let config = s3
        .request(reqwest::Method::GET, "creation/p/config", Vec::new())
        .await;
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    let repository = config["repository"].as_str().unwrap();
    assert_eq!(repository.len(), 32, "{config}");
    assert!(out.contains(repository), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_flipped_truncated_swapped_and_deleted_objects_and_sync_repairs_blobs() {
    let (s3, env) = bucket_and_workspace("tamper").await;
    post_files(&env.server, "the recording", "tamper");
    let dir = env.dir.path();
    let aws = with_password(&s3.env(), PASSWORD);
    let (code, out) = sync_encrypted(dir, &aws, "a", "s3://tamper/p");
    assert_eq!(code, 0, "{out}");
    let mut adding = aws.clone();
    adding.push(("MATTERBAK_ARCHIVE_NEW_PASSWORD", "spare password".into()));
    let (code, out) = run(dir, &adding, &["key", "add", "--archive", "a"]);
    assert_eq!(code, 0, "{out}");
    let blob_objects: Vec<String> = objects(&s3, "tamper", "p")
        .await
        .into_iter()
        .filter(|n| {
            let rest = &n["tamper/p/".len()..];
            rest.len() == 70 && rest.as_bytes()[2] == b'/'
        })
        .collect();
    assert!(blob_objects.len() >= 4, "{blob_objects:?}");
    let get = |name: String| {
        let s3 = &s3;
        async move { s3.request(reqwest::Method::GET, &name, Vec::new()).await }
    };
    let put = |name: String, body: Vec<u8>| {
        let s3 = &s3;
        async move { s3.request(reqwest::Method::PUT, &name, body).await }
    };
    let verify = || run(dir, &aws, &["verify", "--archive", "a", "--read-data"]);

    // One at a time: damage → verify names it, exit 1 → sync refetches → clean.
    let flip = blob_objects[0].clone();
    let mut bytes = get(flip.clone()).await;
    let at = bytes.len() - 5;
    bytes[at] ^= 0x40;
    put(flip.clone(), bytes).await;
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("authentication failed") && out.contains("altered"),
        "{out}"
    );
    let (code, out) = sync(dir, &aws, "a", None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify();
    assert_eq!(code, 0, "after the repair: {out}");

    let big = {
        let mut sized = Vec::new();
        for name in &blob_objects {
            sized.push((get(name.clone()).await.len(), name.clone()));
        }
        sized.sort();
        sized.pop().unwrap().1
    };
    let bytes = get(big.clone()).await;
    put(big.clone(), bytes[..bytes.len() / 2].to_vec()).await;
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("truncated"), "{out}");
    let (code, out) = sync(dir, &aws, "a", None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(verify().0, 0);

    let (a, b) = (blob_objects[1].clone(), blob_objects[2].clone());
    let other = get(b).await;
    put(a, other).await;
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("stored under another name"), "{out}");
    let (code, out) = sync(dir, &aws, "a", None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(verify().0, 0);

    // A deleted key object: named, exit 1; its id is removed from the keyring by `key remove`.
    let keys = objects(&s3, "tamper", "p/keys").await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let spare = with_password(&s3.env(), "spare password");
    let (code, out) = run(dir, &spare, &["key", "list", "--archive", "a"]);
    assert_eq!(code, 0, "{out}");
    let spare_id = out.lines().find(|l| l.starts_with('*')).unwrap()[2..18].to_owned();
    s3.request(
        reqwest::Method::DELETE,
        &format!("tamper/p/keys/{spare_id}"),
        Vec::new(),
    )
    .await;
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "key object s3://tamper/p/keys/{spare_id} is missing"
        )),
        "{out}"
    );
    let (code, out) = run(dir, &aws, &["key", "remove", "--archive", "a", &spare_id]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(verify().0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_sync_killed_during_a_multipart_upload_leaves_a_clean_archive() {
    let (s3, env, proxy, aws) = slow_bucket_and_big_files("killenc", 2, Some(PASSWORD)).await;
    let dir = env.dir.path();
    let parts = || proxy.shared.parts.load(std::sync::atomic::Ordering::SeqCst);
    let mut child = command(dir, &aws, &sync_args("a", Some("s3://killenc/p"), true))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let before = parts();
    kill_when(&mut child, || parts() > before, "at its first part").await;
    assert!(
        !multipart_uploads(&s3, "killenc").await.is_empty(),
        "killed mid-upload"
    );
    let (code, out) = sync(dir, &aws, "a", None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        multipart_uploads_with_parts(&s3, "killenc").await,
        Vec::<String>::new(),
        "the next sync aborted what the killed one left"
    );
    let (code, out) = run(dir, &aws, &["verify", "--archive", "a", "--read-data"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 damaged, 0 notice(s)"), "{out}");
}

/// Every object below `prefix/` with its ETag: what a run wrote to the bucket shows here.
async fn objects_and_etags(s3: &S3Server, bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let query = format!("{bucket}?list-type=2&prefix={prefix}/");
    let keys = listed(s3, &query, "Key").await;
    let etags = listed(s3, &query, "ETag").await;
    assert_eq!(keys.len(), etags.len(), "a listing pairs keys and ETags");
    keys.into_iter().zip(etags).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_removed_config_marker_exits_2_naming_it_and_writes_nothing() {
    let (s3, env) = bucket_and_workspace("marks").await;
    let dir = env.dir.path();
    let aws = s3.env();
    let keyed = with_password(&aws, PASSWORD);
    // Two repositories opened by the same password: a marker copied from the other one is
    // well-formed and carries a MAC, just not this repository's.
    for (archive, blobs) in [("enc", "s3://marks/enc"), ("other", "s3://marks/other")] {
        let (code, out) = sync_encrypted(dir, &keyed, archive, blobs);
        assert_eq!(code, 0, "{archive}: {out}");
    }
    let get = |name: &'static str| s3.request(reqwest::Method::GET, name, Vec::new());
    let config = get("marks/enc/config").await;
    let other_config = get("marks/other/config").await;
    let marker: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(marker["repository"].as_str().unwrap().len(), 32, "{marker}");
    assert_eq!(marker["mac"].as_str().unwrap().len(), 64, "{marker}");
    let edited = |field: &str, value: serde_json::Value| {
        let mut m = marker.clone();
        match value {
            serde_json::Value::Null => {
                m.as_object_mut().unwrap().remove(field);
            }
            v => m[field] = v,
        }
        serde_json::to_vec_pretty(&m).unwrap()
    };
    let keyring = get("marks/enc/keyring").await;
    let key_objects: Vec<(String, Vec<u8>)> = {
        let mut out = Vec::new();
        for name in listed(&s3, "marks?list-type=2&prefix=enc/keys/", "Key").await {
            let body = s3
                .request(reqwest::Method::GET, &format!("marks/{name}"), Vec::new())
                .await;
            out.push((name, body));
        }
        out
    };
    assert_eq!(key_objects.len(), 1);
    let catalog_before = content_snapshot(&dir.join("enc"));
    let settings = |archive: &str| {
        let (code, out) = run(
            dir,
            &aws,
            &[
                "sql",
                "--archive",
                archive,
                "--format",
                "csv",
                "SELECT key, value FROM archive_settings ORDER BY key",
            ],
        );
        assert_eq!(code, 0, "{out}");
        out
    };
    let settings_before = settings("enc");
    assert!(
        settings_before.contains(&format!(
            "encryption,{}",
            marker["repository"].as_str().unwrap()
        )),
        "the catalog remembers the repository: {settings_before}"
    );

    // What a writer of the bucket might do, and what each run must say about it.
    enum Change {
        Marker(Vec<u8>),
        NoMarker,
        NoMarkerNoKeys,
    }
    let not_authentic = "enc/config, the marker of the encrypted repository, is not authentic";
    let removed = "enc/config, the marker of an encrypted repository, is missing";
    // A change, then each run against it: environment, arguments, what it must say.
    type Runs<'a> = Vec<(&'a [(&'static str, String)], Vec<&'a str>, &'a str)>;
    let cases: Vec<(&str, Change, Runs<'_>)> = vec![
        (
            "another repository id",
            Change::Marker(edited(
                "repository",
                "0123456789abcdef0123456789abcdef".into(),
            )),
            vec![
                (&keyed, vec!["verify", "--archive", "enc"], not_authentic),
                (
                    &keyed,
                    vec!["pull", "s3://marks/enc", "new1"],
                    not_authentic,
                ),
            ],
        ),
        (
            "another format",
            Change::Marker(edited("format", "plain".into())),
            vec![(
                &keyed,
                vec!["sync", "--archive", "enc", "-q"],
                not_authentic,
            )],
        ),
        (
            "no MAC",
            Change::Marker(edited("mac", serde_json::Value::Null)),
            vec![(
                &keyed,
                vec!["sync", "--archive", "enc", "-q"],
                not_authentic,
            )],
        ),
        (
            "the other repository's marker",
            Change::Marker(other_config.clone()),
            vec![
                (
                    &keyed,
                    vec!["sync", "--archive", "enc", "-q"],
                    not_authentic,
                ),
                (
                    &keyed,
                    vec!["pull", "s3://marks/enc", "new2"],
                    not_authentic,
                ),
            ],
        ),
        (
            "the marker removed",
            Change::NoMarker,
            vec![
                (&aws, vec!["sync", "--archive", "enc", "-q"], removed),
                (&keyed, vec!["sync", "--archive", "enc", "-q"], removed),
                (&aws, vec!["pull", "s3://marks/enc", "new3"], removed),
                (
                    &aws,
                    vec!["export", "--archive", "enc", "-d", "out1", "--no-zip"],
                    removed,
                ),
            ],
        ),
        (
            "the marker, key objects and keyring removed",
            Change::NoMarkerNoKeys,
            vec![
                (
                    &aws,
                    vec!["sync", "--archive", "enc", "-q"],
                    "the bucket holds plain storage (not encrypted: no `config` marker), but the catalog remembers encrypted repository",
                ),
                (
                    &aws,
                    vec!["pull", "s3://marks/enc", "new4"],
                    "is an encrypted object, but s3://marks/enc has no `config` marker",
                ),
            ],
        ),
    ];
    for (what, change, runs) in cases {
        match &change {
            Change::Marker(bytes) => {
                s3.request(reqwest::Method::PUT, "marks/enc/config", bytes.clone())
                    .await;
            }
            Change::NoMarker | Change::NoMarkerNoKeys => {
                s3.request(reqwest::Method::DELETE, "marks/enc/config", Vec::new())
                    .await;
            }
        }
        if let Change::NoMarkerNoKeys = change {
            s3.request(reqwest::Method::DELETE, "marks/enc/keyring", Vec::new())
                .await;
            for (name, _) in &key_objects {
                s3.request(
                    reqwest::Method::DELETE,
                    &format!("marks/{name}"),
                    Vec::new(),
                )
                .await;
            }
        }
        let bucket_before = objects_and_etags(&s3, "marks", "enc").await;
        for (env, args, says) in runs {
            let (code, out) = run(dir, env, &args);
            assert_eq!(code, 2, "{what}: {args:?}: {out}");
            assert!(out.contains(says), "{what}: {args:?}: {out}");
            assert!(!out.contains(PASSWORD), "{out}");
        }
        assert_eq!(
            objects_and_etags(&s3, "marks", "enc").await,
            bucket_before,
            "{what}: nothing written to the bucket"
        );
        assert_same_content(&content_snapshot(&dir.join("enc")), &catalog_before, what);
        assert_eq!(settings("enc"), settings_before, "{what}");
        for new in ["new1", "new2", "new3", "out1"] {
            assert!(!dir.join(new).exists(), "{what}: {new} was created");
        }
        assert!(
            !dir.join("new4").join("catalog.sqlite").exists(),
            "{what}: a sealed snapshot was pulled as a catalog"
        );
        // Put the repository back as it was.
        s3.request(reqwest::Method::PUT, "marks/enc/config", config.clone())
            .await;
        s3.request(reqwest::Method::PUT, "marks/enc/keyring", keyring.clone())
            .await;
        for (name, body) in &key_objects {
            s3.request(reqwest::Method::PUT, &format!("marks/{name}"), body.clone())
                .await;
        }
        let (code, out) = run(dir, &keyed, &["verify", "--archive", "enc", "--read-data"]);
        assert_eq!(code, 0, "{what}, restored: {out}");
    }
}

/// util-linux `script`, which runs a command on a new pseudo-terminal; the test fails naming
/// it when it is missing.
fn script_program() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("script"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the terminal prompt test needs `script` from util-linux on PATH (Debian/Ubuntu: \
                 apt-get install bsdutils; Fedora: util-linux-script), which runs a command on a \
                 pseudo-terminal"
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_asked_on_a_terminal_opens_the_archive_and_is_not_echoed() {
    use std::io::{Read, Write};
    let script = script_program();
    let (s3, env) = bucket_and_workspace("tty").await;
    let dir = env.dir.path();
    let aws = s3.env();
    let (code, out) = sync_encrypted(dir, &with_password(&aws, PASSWORD), "enc", "s3://tty/enc");
    assert_eq!(code, 0, "{out}");

    // `verify` with no password given, on a pseudo-terminal whose echo is on (as a terminal's
    // is): it must ask, turn echo off, and open the archive with what is typed.
    let command = format!("'{}' verify --archive enc", env!("CARGO_BIN_EXE_matterbak"));
    let mut child = Command::new(&script)
        .args([
            "--quiet",
            "--return",
            "--echo",
            "always",
            "--command",
            &command,
        ])
        .arg("/dev/null")
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("MATTERBAK_BLOBS")
        .env_remove("MATTERBAK_ARCHIVE_PASSWORD")
        .envs(aws.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let prompt = b"password for s3://tty/enc: ";
    let mut seen = Vec::new();
    while !seen.windows(prompt.len()).any(|w| w == prompt) {
        match rx.recv() {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!(
                "the run ended without asking for the password: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    // Typed at once, as a person typing ahead would.
    stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    for chunk in rx {
        seen.extend(chunk);
    }
    let status = child.wait().unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&seen);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {text}{stderr}");
    assert!(text.contains("; 0 damaged"), "verify ran: {text}");
    assert!(!text.contains(PASSWORD), "the password was echoed: {text}");
    assert!(
        !text.contains("correct horse"),
        "part of it was echoed: {text}"
    );
}
