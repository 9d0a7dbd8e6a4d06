//! Shared test harness: a mock Mattermost on loopback, a temp archive, and a way to compare
//! two archives' content regardless of local clock values.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use matterbak::archive::{Archive, ReadArchive};
use matterbak::catalog::{Access, Catalog};
use matterbak::config::{Auth, ChannelsConfig, Credentials, Secret};
use matterbak::mm::StopSignal;
use matterbak::mm::retry::RetryPolicy;
use matterbak::mock::{self, MockServer, Workspace};
use matterbak::progress::Silent;
use matterbak::sync::{self, SyncOptions, SyncReport};

pub struct Env {
    pub server: MockServer,
    pub dir: tempfile::TempDir,
    pub archive: PathBuf,
}

pub async fn start() -> Env {
    start_with(Workspace::sample()).await
}

pub async fn start_with(workspace: Workspace) -> Env {
    let server = MockServer::start(workspace)
        .await
        .expect("mock server starts");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    Env {
        server,
        dir,
        archive,
    }
}

impl Env {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            user: mock::SAMPLE_USER.into(),
            auth: Auth::Password(Secret::new(mock::SAMPLE_PASSWORD)),
            server: self.server.url(),
        }
    }

    pub fn options(&self) -> SyncOptions {
        let mut options = SyncOptions::new(self.archive.clone(), sample_channels());
        options.client.rate_limit = None;
        options.client.retry = fast_retries();
        options
    }

    pub async fn sync(&self) -> SyncReport {
        self.sync_with(self.options()).await
    }

    pub async fn sync_with(&self, options: SyncOptions) -> SyncReport {
        sync::run_sync(
            &self.credentials(),
            &options,
            &Silent,
            &StopSignal::default(),
        )
        .await
        .expect("sync succeeds")
    }

    /// The archive opened for reading, as the commands open it.
    pub fn read(&self) -> ReadArchive {
        read_archive(&self.archive)
    }

    pub fn catalog(&self) -> Catalog {
        Catalog::open(&self.archive.join("catalog.sqlite"), Access::ReadOnly)
            .expect("catalog opens")
    }

    pub fn posts_requests(&self) -> usize {
        self.server.count("GET /api/v4/channels/{channel_id}/posts")
    }
}

/// A complete sync of `env` with four workers, more than the rate limit the test set lets
/// through: its report and the status of every answer. Fails unless the limiter engaged (a 429, or a bucket
/// down to its last token: the pacer keeps one in reserve), without which nothing was tested.
pub async fn sync_against_the_limit(env: &Env) -> (SyncReport, Vec<u16>) {
    let mut options = env.options();
    options.client.concurrency = 4;
    let report = env.sync_with(options).await;
    assert_complete(&report);
    let requests = env.server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.status == 429 || r.rate_remaining.is_some_and(|n| n <= 1)),
        "the limiter never engaged (lowest Remaining {:?} in {} requests): nothing was tested",
        requests.iter().filter_map(|r| r.rate_remaining).min(),
        requests.len()
    );
    (report, requests.iter().map(|r| r.status).collect())
}

/// The archive in `dir` opened for reading, as the commands open it.
pub fn read_archive(dir: &Path) -> ReadArchive {
    Archive::at(dir).open_read(None).expect("the archive opens")
}

/// Retries without real waiting, so fault tests stay fast.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: std::time::Duration::from_millis(2),
        max_delay: std::time::Duration::from_millis(50),
        max_limited_wait: std::time::Duration::from_secs(60),
    }
}

pub fn sample_channels() -> ChannelsConfig {
    let value: serde_json::Value = serde_json::from_str(mock::SAMPLE_CHANNELS_JSON).unwrap();
    matterbak::config::parse_channels(Path::new("channels.json"), &value)
        .unwrap()
        .value
}

/// Waits until `sql` (one value) reads `want` in `env`'s archive, which something else (a
/// follower) is writing: polled, for as long as it takes (tests wait for observed progress,
/// never for a time).
pub async fn wait_for(env: &Env, sql: &str, want: &str) {
    loop {
        let got = rows(&env.catalog(), sql);
        if got.first().map(String::as_str) == Some(want) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits until the post `post_id` is in `env`'s archive.
pub async fn wait_for_post(env: &Env, post_id: &str) {
    wait_for(
        env,
        &format!("SELECT count(*) FROM posts WHERE id = '{post_id}'"),
        "1",
    )
    .await;
}

/// Posts `message` as `user` into `channel` on the server, then waits until `env`'s archive
/// holds it with that text; returns the post's id.
pub async fn post_and_wait(env: &Env, channel: &str, user: &str, message: &str) -> String {
    let post_id = env
        .server
        .with_workspace(|w| w.create_post(channel, user, message, None));
    wait_for(
        env,
        &format!("SELECT message FROM posts WHERE id = '{post_id}'"),
        message,
    )
    .await;
    post_id
}

/// Deletes the post `post_id` on the server, then waits until `env`'s archive has it
/// marked deleted.
pub async fn delete_and_wait(env: &Env, post_id: &str) {
    env.server.with_workspace(|w| w.delete_post(post_id));
    wait_for(
        env,
        &format!("SELECT delete_at > 0 FROM posts WHERE id = '{post_id}'"),
        "1",
    )
    .await;
}

/// One SQL query's rows, each row rendered as text.
pub fn rows(catalog: &Catalog, sql: &str) -> Vec<String> {
    matterbak::catalog::testing::query_strings(catalog, sql)
}

pub fn count(catalog: &Catalog, sql: &str) -> i64 {
    rows(catalog, sql)[0].parse().unwrap()
}

/// The tables that hold what the server sent and the sync state (every table of schema
/// version 1 but the run records).
pub const SERVER_TABLES: &[&str] = &[
    "blobs",
    "users",
    "teams",
    "team_members",
    "channels",
    "channel_members",
    "posts",
    "post_versions",
    "reactions",
    "files",
    "emojis",
    "sync_cursors",
];

/// The archive's content: every table that holds server data, without columns that record
/// local time (when we fetched), so two syncs of the same workspace compare equal.
pub fn content_snapshot(archive: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let catalog = Catalog::open(&archive.join("catalog.sqlite"), Access::ReadOnly).unwrap();
    let queries: &[(&str, &str)] = &[
        ("blobs", "SELECT hash, size FROM blobs ORDER BY hash"),
        (
            "users",
            "SELECT id, username, update_at, json, avatar_blob, avatar_content_type, avatar_picture_update FROM users ORDER BY id",
        ),
        (
            "teams",
            "SELECT id, name, json, selected, icon_blob, icon_update FROM teams ORDER BY id",
        ),
        (
            "team_members",
            "SELECT team_id, user_id, position, json, removed_at IS NULL FROM team_members ORDER BY 1, 2",
        ),
        (
            "channels",
            "SELECT id, json, selected, export_name FROM channels ORDER BY id",
        ),
        // Read state moves with every post and is refreshed only daily (README, Differences):
        // who is a member, with which roles and settings, is the content.
        (
            "channel_members",
            "SELECT channel_id, user_id, position, json_remove(json, '$.last_viewed_at', \
             '$.last_update_at', '$.msg_count', '$.msg_count_root', '$.mention_count', \
             '$.mention_count_root', '$.urgent_mention_count'), removed_at IS NULL \
             FROM channel_members ORDER BY 1, 2",
        ),
        (
            "posts",
            "SELECT id, channel_id, root_id, create_at, update_at, edit_at, delete_at, message, seen_live, json FROM posts ORDER BY id",
        ),
        (
            "post_versions",
            "SELECT post_id, replaced_at, history_id, edit_at, message, json FROM post_versions ORDER BY 1, 2",
        ),
        (
            "reactions",
            "SELECT post_id, user_id, emoji_name, json, removed_at FROM reactions ORDER BY 1, 2, 3",
        ),
        (
            "files",
            "SELECT id, post_id, json, blob, fetch_error FROM files ORDER BY id",
        ),
        (
            "emojis",
            "SELECT id, json, image_blob, image_content_type, removed_at IS NULL FROM emojis ORDER BY id",
        ),
        (
            "sync_cursors",
            "SELECT channel_id, watermark, walk_watermark, walk_before FROM sync_cursors ORDER BY channel_id",
        ),
    ];
    queries
        .iter()
        .map(|(name, sql)| (*name, rows(&catalog, sql)))
        .collect()
}

/// Asserts that `env`'s archive holds what a fresh full sync of the same server state
/// would (a new workspace from [`start`], synced once).
pub async fn assert_same_as_a_fresh_sync(env: &Env, context: &str) {
    let clean = start().await;
    clean.sync().await;
    assert_same_content(
        &content_snapshot(&env.archive),
        &content_snapshot(&clean.archive),
        context,
    );
}

/// The mock's rate limiter at `per_sec` requests a second with a bucket of `burst`, and no
/// other fault.
pub fn rate_limited(per_sec: u32, burst: u32) -> mock::Faults {
    mock::Faults {
        rate_limit: Some(mock::RateLimit { per_sec, burst }),
        ..mock::Faults::default()
    }
}

/// Asserts two content snapshots are equal, showing only the rows that differ.
pub fn assert_same_content(
    got: &BTreeMap<&'static str, Vec<String>>,
    want: &BTreeMap<&'static str, Vec<String>>,
    context: &str,
) {
    for (table, want_rows) in want {
        let got_rows = &got[table];
        let missing: Vec<&String> = want_rows.iter().filter(|r| !got_rows.contains(r)).collect();
        let extra: Vec<&String> = got_rows.iter().filter(|r| !want_rows.contains(r)).collect();
        assert!(
            missing.is_empty() && extra.is_empty() && got_rows == want_rows,
            "{context}: table {table} differs\n  missing: {missing:#?}\n  unexpected: {extra:#?}"
        );
    }
}

/// Writes `credentials.json` (alice's password, the given server URL, file mode `mode`) and the
/// sample `channels.json` into `dir`, as a user of the binary would.
pub fn write_inputs(dir: &Path, url: &str, mode: u32) {
    let creds = serde_json::json!({"user": "alice", "password": mock::SAMPLE_PASSWORD, "url": url});
    std::fs::write(dir.join("credentials.json"), creds.to_string()).unwrap();
    std::fs::write(dir.join("channels.json"), mock::SAMPLE_CHANNELS_JSON).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("credentials.json"),
            std::fs::Permissions::from_mode(mode),
        )
        .unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

/// The run archived everything it selected; the failures are shown when it did not.
pub fn assert_complete(report: &SyncReport) {
    assert_eq!(
        report.outcome,
        matterbak::model::Outcome::Ok,
        "{:?}",
        report.failures
    );
}

/// The zip's entries in order (name, bytes).
pub fn read_zip(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (entry.name().to_owned(), bytes)
        })
        .collect()
}

/// Set in the child that `alone_in_child` starts: the name of the one test it runs.
const ALONE_ENV: &str = "MATTERBAK_TEST_ALONE";

/// For a test that measures this process itself (peak memory, threads, open files): every
/// integration test shares one process, so such a test runs again alone in a child, this
/// test binary filtered to that one test. Returns true in that child, which then measures;
/// in the parent it runs the child, fails unless the child ran the test and passed, and
/// returns false. `test` is the test's path inside this binary (`module_path!()` without
/// the crate name, then `::` and the function's name).
pub fn alone_in_child(test: &str) -> bool {
    if std::env::var_os(ALONE_ENV).is_some_and(|v| v == test) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1"])
        .env(ALONE_ENV, test)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} alone in a child process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// The product binary run in `dir`, with none of the credentials or the archive the test
/// runner's own environment may hold (a test says what it passes).
pub fn matterbak_in(dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_matterbak"));
    command
        .current_dir(dir)
        .env_remove("MATTERBAK_TOKEN")
        .env_remove("MATTERBAK_PASSWORD")
        .env_remove("MATTERBAK_ARCHIVE");
    command
}

/// Exit code (-1 when killed by a signal), stdout and stderr of a finished run, as text.
pub fn outcome(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `matterbak verify --read-data` of `archive`: exit code and stdout (the findings).
pub fn verify_read_data(archive: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(["verify", "--read-data", "--archive"])
        .arg(archive)
        .output()
        .unwrap();
    let (code, stdout, _) = outcome(&out);
    (code, stdout)
}
