//! Sync over bad networks: injected 5xx, dropped connections and 429 storms change nothing in
//! the result; concurrency changes nothing; a dead server ends the run in bounded time;
//! progress bars only on a terminal.

use crate::common;

use std::time::{Duration, Instant};

use common::{content_snapshot, start};
use matterbak::mm::MmError;
use matterbak::mock::{Faults, GenSpec, RateLimit, Workspace};
use matterbak::model::Outcome;
use matterbak::progress::Silent;
use matterbak::sync::SyncError;

/// Tables whose content must match between two syncs of one workspace state.
const TABLES: &[&str] = common::SERVER_TABLES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_rate_limit_storms_leave_the_result_unchanged() {
    let clean = start().await;
    clean.sync().await;
    let reference = content_snapshot(&clean.archive);

    let env = start().await;
    env.server.set_faults(Faults {
        error_permille: 50,
        drop_permille: 20,
        // Low enough that any machine's four workers outrun it: the limiter must engage.
        rate_limit: Some(RateLimit {
            per_sec: 20,
            burst: 4,
        }),
        seed: 42,
        ..Faults::default()
    });
    let (report, statuses) = common::sync_against_the_limit(&env).await;
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        limited * 50 <= statuses.len(),
        "paced by the rate headers, 429s stay rare: {limited} of {}",
        statuses.len()
    );
    assert!(
        statuses.iter().any(|s| *s == 502 || *s == 503),
        "errors were injected"
    );
    assert!(
        report.summary.requests > clean.server.request_count() as u64,
        "retries happened"
    );
    let got = content_snapshot(&env.archive);
    for table in TABLES {
        assert_eq!(got[table], reference[table], "table {table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_eight_equals_concurrency_one() {
    let one = start().await;
    let mut options = one.options();
    options.client.concurrency = 1;
    one.sync_with(options).await;
    let eight = start().await;
    let mut options = eight.options();
    options.client.concurrency = 8;
    eight.server.set_faults(Faults {
        latency: Duration::from_millis(3),
        ..Faults::default()
    });
    eight.sync_with(options).await;
    let (a, b) = (
        content_snapshot(&one.archive),
        content_snapshot(&eight.archive),
    );
    for table in TABLES {
        assert_eq!(a[table], b[table], "table {table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_down_mid_run_ends_the_run_with_a_clear_error() {
    let env = start().await;
    let options = env.options();
    let credentials = env.credentials();
    let started = Instant::now();
    let run = tokio::spawn(async move {
        matterbak::sync::run_sync(&credentials, &options, &Silent, &Default::default()).await
    });
    while env.server.request_count() < 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    env.server.set_faults(Faults {
        error_permille: 1000,
        ..Faults::default()
    });
    let err = run.await.unwrap().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, SyncError::Server(MmError::ServerDown { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("requests in a row failed")
            && text.contains("/api/v4/")
            && text.contains("HTTP 50"),
        "{text}"
    );
    let c = env.catalog();
    assert_eq!(
        common::rows(&c, "SELECT outcome FROM sync_runs"),
        ["failed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_bars_on_a_terminal_plain_lines_in_a_pipe() {
    let env = start().await;
    let dir = env.dir.path();
    common::write_inputs(dir, &env.server.url(), 0o600);
    let bin = env!("CARGO_BIN_EXE_matterbak");
    let args = format!(
        "sync --rate-limit 0 --credentials {0}/credentials.json --channels {0}/channels.json",
        dir.display()
    );

    let piped = std::process::Command::new(bin)
        .args(args.split(' '))
        .arg("--archive")
        .arg(dir.join("a"))
        .output()
        .unwrap();
    let piped_err = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{piped_err}");
    assert!(piped_err.contains("post(s) written"), "{piped_err}");
    assert!(
        !piped_err.contains("channels 0/") && !piped_err.contains('\u{1b}'),
        "no bars in a pipe: {piped_err}"
    );

    // `script` gives the command a terminal.
    let tty = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{bin} {args} --archive {}/b", dir.display()),
            "/dev/null",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `script` ({e}), which gives the sync a terminal: install it \
                 (apt-get install bsdutils, or run `scripts/test-deps cargo test`)"
            )
        });
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{tty_out}");
    assert!(
        tty_out.contains("channels ") && tty_out.contains('\u{1b}'),
        "bars on a terminal: {tty_out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_file_is_recorded_the_rest_continues_and_the_next_sync_retries_it() {
    let env = start().await;
    let (post, file) = env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        let post = w.create_post_with_files(
            &town,
            "bob",
            "attachment whose bytes the server lost",
            None,
            vec![matterbak::mock::NewFile {
                name: "lost.txt".into(),
                bytes: b"lost bytes".to_vec(),
                mime_type: "text/plain".into(),
            }],
        );
        let file = w
            .file_ids()
            .into_iter()
            .find(|id| w.file_name(id) == "lost.txt")
            .unwrap();
        w.set_file_bytes_lost(&file, true);
        (post, file)
    });
    let report = env.sync().await;
    assert_eq!(report.outcome, Outcome::Partial);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0].item.contains(&file) && report.failures[0].error.contains("404"),
        "{:?}",
        report.failures
    );
    let c = env.catalog();
    assert_eq!(
        common::rows(
            &c,
            &format!(
                "SELECT fetch_error LIKE '%404%', blob IS NULL FROM files WHERE id = '{file}'"
            )
        ),
        ["1|1"]
    );
    assert_eq!(
        common::count(
            &c,
            &format!("SELECT count(*) FROM posts WHERE id = '{post}'")
        ),
        1,
        "the post itself is archived"
    );
    assert!(
        common::count(&c, "SELECT count(*) FROM files WHERE blob IS NOT NULL") >= 6,
        "the other files were fetched"
    );
    assert_eq!(
        common::rows(&c, "SELECT outcome FROM sync_runs"),
        ["partial"]
    );
    drop(c);

    env.server
        .with_workspace(|w| w.set_file_bytes_lost(&file, false));
    let report = env.sync().await;
    common::assert_complete(&report);
    let c = env.catalog();
    assert_eq!(
        common::rows(
            &c,
            &format!("SELECT fetch_error IS NULL, blob IS NOT NULL FROM files WHERE id = '{file}'")
        ),
        ["1|1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_from_the_environment_are_used_and_no_proxy_is_honoured() {
    let env = start().await;
    let dir = env.dir.path();
    // A host that cannot resolve: only the proxy (the mock, which serves by path) reaches it.
    let creds = serde_json::json!({"user": "alice", "password": matterbak::mock::SAMPLE_PASSWORD, "url": "http://mattermost.invalid"});
    std::fs::write(dir.join("credentials.json"), creds.to_string()).unwrap();
    std::fs::write(dir.join("channels.json"), r#"{"direct": ["bob"]}"#).unwrap();
    let run = |archive: &str, no_proxy: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_matterbak"));
        cmd.current_dir(dir)
            .args(["sync", "--rate-limit", "0", "--quiet", "--archive", archive])
            .env("HTTP_PROXY", env.server.url())
            .env_remove("http_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        if let Some(hosts) = no_proxy {
            cmd.env("NO_PROXY", hosts);
        }
        cmd.output().unwrap()
    };
    let proxied = run("a", None);
    assert!(
        proxied.status.success(),
        "{}",
        String::from_utf8_lossy(&proxied.stderr)
    );
    assert!(env.server.request_count() > 0);
    let direct = run("b", Some("mattermost.invalid"));
    assert_eq!(
        direct.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
}

/// Request slots stay busy: a channel's files download while its walk goes on (not after
/// it), and what waits for the channels (team members, users) runs while files are still
/// downloading (not after them). Seen at the server as the order in which requests arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_download_while_the_walk_goes_on_and_teams_do_not_wait_for_files() {
    const POSTS: &str = "GET /api/v4/channels/{channel_id}/posts";
    const FILES: &str = "GET /api/v4/files/{file_id}";
    const TEAM_MEMBERS: &str = "GET /api/v4/teams/{team_id}/members";
    // One channel of 1,000 posts (six pages) with a file on every tenth post.
    let spec = GenSpec {
        teams: 1,
        channels: 1,
        posts: 1000,
        attachments: 100,
        users: 8,
        ..GenSpec::default()
    };
    let env = common::start_with(Workspace::generated(&spec)).await;
    env.server.set_faults(Faults {
        latency: Duration::from_millis(5),
        ..Faults::default()
    });
    let mut options = env.options();
    let value: serde_json::Value = serde_json::from_str(&spec.channels_json()).unwrap();
    options.channels =
        matterbak::config::parse_channels(std::path::Path::new("channels.json"), &value)
            .unwrap()
            .value;
    options.client.concurrency = 4;
    let report = env.sync_with(options).await;
    common::assert_complete(&report);
    assert_eq!(report.summary.files_fetched, 100);

    let records = env.server.requests();
    let arrivals = |route: &str| -> Vec<Instant> {
        records
            .iter()
            .filter(|r| r.route == route)
            .map(|r| r.arrived)
            .collect()
    };
    let last_page = *arrivals(POSTS).iter().max().expect("posts were read");
    let files = arrivals(FILES);
    let early = files.iter().filter(|at| **at < last_page).count();
    // Five pages after the first, each a round trip: three free slots fetch files meanwhile.
    assert!(
        early >= 5,
        "only {early} of {} file downloads began before the walk's last page",
        files.len()
    );
    let last_file = *files.iter().max().expect("files were fetched");
    let team_members = *arrivals(TEAM_MEMBERS)
        .iter()
        .min()
        .expect("team members read");
    assert!(
        team_members < last_file,
        "team members were read only after every file was downloaded"
    );
}
