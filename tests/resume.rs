//! The real binary, killed mid-sync and resumed, ends with the same catalog as an
//! uninterrupted sync; a SIGTERM stops it after the current transaction.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_content, content_snapshot, rows, start, start_with};
use matterbak::catalog::{Access, Catalog};
use matterbak::mock::Faults;
use matterbak::mock::{NewFile, Workspace};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn spawn_sync(dir: &Path, archive: &Path) -> Child {
    spawn_sync_with(dir, archive, &["--rate-limit", "0"])
}

fn spawn_sync_with(dir: &Path, archive: &Path, flags: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .arg("sync")
        .args(flags)
        .args(["--quiet", "--archive"])
        .arg(archive)
        .arg("--credentials")
        .arg(dir.join("credentials.json"))
        .arg("--channels")
        .arg(dir.join("channels.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Attachments big enough that, on the mock's slowed-down link, downloading them takes a
/// good share of a run (so kills land inside downloads).
const BIG_FILES: usize = 4;
const BIG_FILE_BYTES: usize = 768 * 1024;

fn workspace_with_big_files() -> Workspace {
    let mut ws = Workspace::sample();
    let channel = ws.channel_id("eng", "town-square");
    for i in 0..BIG_FILES {
        let mut bytes = vec![0u8; BIG_FILE_BYTES];
        let mut hasher = blake3::Hasher::new();
        hasher.update(format!("big file {i}").as_bytes());
        hasher.finalize_xof().fill(&mut bytes);
        ws.create_post_with_files(
            &channel,
            "bob",
            &format!("recording {i}"),
            None,
            vec![NewFile {
                name: format!("recording-{i}.bin"),
                bytes,
                mime_type: "application/octet-stream".into(),
            }],
        );
    }
    ws
}

/// When a trial's signal is sent.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// A fixed delay after start.
    After(Duration),
    /// Right after the server answered the n-th posts request: while the client parses the
    /// page and commits it with its cursor.
    PostsPage(usize),
    /// As `PostsPage`, a little later (sweeping the page's commit).
    PostsPageThen(usize, Duration),
    /// A while into the n-th download of a big attachment.
    Download(usize, Duration),
}

/// Waits for `moment` while the child runs; false when the child ended first.
fn wait_for(moment: Moment, child: &mut Child, server: &matterbak::mock::MockServer) -> bool {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            return false;
        }
        let reached = match moment {
            Moment::After(delay) => started.elapsed() >= delay,
            Moment::PostsPage(n) | Moment::PostsPageThen(n, _) => {
                server.count("GET /api/v4/channels/{channel_id}/posts") >= n
            }
            Moment::Download(n, _) => {
                server
                    .requests()
                    .iter()
                    .filter(|r| r.route == "GET /api/v4/files/{file_id}")
                    .count()
                    >= n
            }
        };
        if reached {
            if let Moment::Download(_, extra) | Moment::PostsPageThen(_, extra) = moment {
                std::thread::sleep(extra);
            }
            return true;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

/// Whether the catalog's WAL ends in frames of a transaction that never committed: the
/// kill landed while a commit was being written. (WAL format: 32-byte header with page size
/// and salts; frames of 24-byte header + page, a commit frame has a non-zero db size.)
fn wal_has_uncommitted_tail(archive: &Path) -> bool {
    let Ok(wal) = std::fs::read(archive.join("catalog.sqlite-wal")) else {
        return false;
    };
    if wal.len() < 32 {
        return false;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let page = be(&wal[8..12]) as usize;
    let salts = &wal[16..24];
    let mut last_commit = None;
    let mut offset = 32;
    while offset + 24 + page <= wal.len() {
        let header = &wal[offset..offset + 24];
        if &header[8..16] != salts {
            break;
        }
        last_commit = Some(be(&header[4..8]) != 0);
        offset += 24 + page;
    }
    last_commit == Some(false)
}

fn verify_read_data(archive: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(["verify", "--read-data", "--archive"])
        .arg(archive)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[derive(Default, Debug)]
struct Tally {
    trials: usize,
    killed: usize,
    finished_first: usize,
    by_moment: std::collections::BTreeMap<&'static str, usize>,
    mid_download: usize,
    commit_in_flight: usize,
}

/// Stops runs of the real binary at many moments (SIGKILL, or SIGINT/SIGTERM with the
/// 2-second promise); after each one the archive must verify clean (`--read-data`), and
/// after each series a final sync must produce the catalog of an uninterrupted run.
#[cfg(unix)]
fn interrupted_series(
    env: &common::Env,
    reference: &Path,
    signal: &str,
    moments: &[Vec<Moment>],
    tally: &mut Tally,
) {
    for (series, plan) in moments.iter().enumerate() {
        let archive = env.dir.path().join(format!("{signal}-series-{series}"));
        for &moment in plan {
            env.server.reset_requests();
            let mut child = spawn_sync(env.dir.path(), &archive);
            tally.trials += 1;
            if !wait_for(moment, &mut child, &env.server) {
                tally.finished_first += 1;
                let (code, err) = finish(child);
                assert_eq!(code, 0, "{err}");
                continue;
            }
            let sent = Instant::now();
            Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap();
            let (code, err) = finish(child);
            let label = match moment {
                Moment::After(_) => "timed",
                Moment::PostsPage(_) | Moment::PostsPageThen(..) => "after a posts page",
                Moment::Download(..) => "during a download",
            };
            *tally.by_moment.entry(label).or_default() += 1;
            tally.killed += 1;
            if signal == "KILL" {
                let tmp = archive.join("tmp");
                if std::fs::read_dir(&tmp).is_ok_and(|mut d| d.next().is_some()) {
                    tally.mid_download += 1;
                }
                if wal_has_uncommitted_tail(&archive) {
                    tally.commit_in_flight += 1;
                }
            } else {
                assert!(
                    sent.elapsed() < Duration::from_secs(2),
                    "{signal} at {moment:?}: stopped after {:?}",
                    sent.elapsed()
                );
                assert!(matches!(code, 0 | 1), "{signal} at {moment:?}: {err}");
            }
            if archive.join("catalog.sqlite").exists() {
                let (code, out) = verify_read_data(&archive);
                assert_eq!(code, 0, "{signal} at {moment:?}: verify: {out}");
            }
        }
        // Channels finished before the last stop are not walked again.
        let finished: Vec<String> = if archive.join("catalog.sqlite").exists() {
            rows(
                &Catalog::open(&archive, Access::ReadOnly).unwrap(),
                "SELECT channel_id FROM sync_cursors WHERE watermark IS NOT NULL AND walk_watermark IS NULL",
            )
        } else {
            Vec::new()
        };
        env.server.reset_requests();
        let (code, err) = finish(spawn_sync(env.dir.path(), &archive));
        assert_eq!(code, 0, "{err}");
        for channel in &finished {
            let posts: Vec<_> = env
                .server
                .requests()
                .into_iter()
                .filter(|r| r.route.ends_with("/posts") && r.path.contains(channel.as_str()))
                .collect();
            assert_eq!(
                posts.len(),
                1,
                "finished channel {channel} re-read: {posts:?}"
            );
            assert!(posts[0].query.contains("since="));
        }
        let (code, err) = finish(spawn_sync(env.dir.path(), &archive));
        assert_eq!(code, 0, "{err}");
        let (code, out) = verify_read_data(&archive);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("0 damaged, 0 notice(s)"),
            "leftovers after a clean sync: {out}"
        );
        assert_same_content(
            &content_snapshot(&archive),
            &content_snapshot(reference),
            &format!("{signal} series {series}"),
        );
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_syncs_verify_clean_and_resume_to_the_catalog_of_an_uninterrupted_one() {
    let env = start_with(workspace_with_big_files()).await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    // Slow answers and a slow link for attachments, so stops land inside the run: during
    // walks, downloads and commits.
    env.server.set_faults(Faults {
        latency: Duration::from_millis(8),
        download_chunk_delay: Duration::from_millis(8),
        ..Faults::default()
    });

    // Reference: an uninterrupted sync, then a no-op sync.
    let reference = env.dir.path().join("reference");
    let started = Instant::now();
    let (code, err) = finish(spawn_sync(env.dir.path(), &reference));
    assert_eq!(code, 0, "{err}");
    let full_run = started.elapsed();
    let (code, err) = finish(spawn_sync(env.dir.path(), &reference));
    assert_eq!(code, 0, "{err}");

    // Moments: spread over a full run by a seeded RNG, right after posts pages, and inside
    // big downloads; each series continues one archive until its plan is used up.
    let mut rng = StdRng::seed_from_u64(7);
    let mut timed = |n: usize| -> Vec<Moment> {
        (0..n)
            .map(|_| {
                let ms = rng.random_range(20..(full_run.as_millis() as u64 * 7 / 10).max(40));
                Moment::After(Duration::from_millis(ms))
            })
            .collect()
    };
    let kill_plans = vec![
        timed(6),
        vec![
            Moment::PostsPage(1),
            Moment::PostsPage(3),
            Moment::PostsPage(2),
            Moment::PostsPage(5),
            Moment::PostsPage(4),
            Moment::PostsPage(6),
        ],
        vec![
            Moment::Download(1, Duration::from_millis(10)),
            Moment::Download(1, Duration::from_millis(30)),
            Moment::Download(2, Duration::from_millis(5)),
            Moment::Download(1, Duration::from_millis(50)),
            Moment::Download(1, Duration::from_millis(20)),
        ],
        timed(5),
        (0..6)
            .map(|i| Moment::PostsPageThen(1 + i % 2, Duration::from_micros(500 + 400 * i as u64)))
            .collect(),
    ];
    let mut kills = Tally::default();
    interrupted_series(&env, &reference, "KILL", &kill_plans, &mut kills);

    let mut stops = Tally::default();
    let stop_plans = vec![
        vec![
            Moment::PostsPage(2),
            Moment::Download(1, Duration::from_millis(20)),
        ],
        timed(2),
    ];
    interrupted_series(&env, &reference, "TERM", &stop_plans, &mut stops);
    let int_plans = vec![vec![
        Moment::PostsPage(3),
        Moment::Download(1, Duration::from_millis(15)),
        Moment::After(Duration::from_millis(60)),
    ]];
    interrupted_series(&env, &reference, "INT", &int_plans, &mut stops);

    eprintln!("SIGKILL trials: {kills:?}\nSIGTERM/SIGINT trials: {stops:?}");
    assert!(
        kills.killed >= 20,
        "only {} kills landed inside a run: {kills:?}",
        kills.killed
    );
    assert!(
        kills.mid_download >= 3,
        "too few kills inside a download: {kills:?}"
    );
    assert!(
        stops.killed >= 5,
        "too few signals landed inside a run: {stops:?}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_after_the_current_step_and_records_an_interrupted_run() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    env.server.set_faults(Faults {
        latency: Duration::from_millis(25),
        ..Faults::default()
    });
    let archive = env.dir.path().join("archive");
    let child = spawn_sync(env.dir.path(), &archive);
    std::thread::sleep(Duration::from_millis(400));
    assert_stops_within_two_seconds(child, "-TERM", &archive);
}

/// Sends `signal` and checks the run ends within 2 s as interrupted (exit 1, recorded), with
/// no file marked as failed.
fn assert_stops_within_two_seconds(child: Child, signal: &str, archive: &Path) {
    let sent = Instant::now();
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let (code, err) = finish(child);
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let catalog = Catalog::open(archive, Access::ReadOnly).unwrap();
    assert_eq!(
        rows(&catalog, "SELECT outcome FROM sync_runs"),
        ["interrupted"]
    );
    assert_eq!(
        rows(
            &catalog,
            "SELECT count(*) FROM files WHERE fetch_error IS NOT NULL"
        ),
        ["0"],
        "requests not sent because of the stop are not failures"
    );
}

/// A stop does not wait for the rate limiter or a back-off (issue #12: with `--rate-limit 1`
/// SIGINT took 4.7 s): requests waiting for their turn are not sent, the run ends within 2 s
/// as interrupted.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_within_two_seconds_under_a_slow_rate_limit() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    let archive = env.dir.path().join("archive");
    let child = spawn_sync_with(
        env.dir.path(),
        &archive,
        &["--rate-limit", "1", "--concurrency", "4"],
    );
    // Past login, with workers queued on the limiter (one request a second).
    std::thread::sleep(Duration::from_millis(3500));
    let before = env.server.request_count();
    assert!(before >= 2, "the run is under way: {before} requests");
    assert_stops_within_two_seconds(child, "-INT", &archive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_on_the_same_archive_is_refused_while_one_runs() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    // Slow enough that three rounds of verify + export (about 1 s each on a busy machine:
    // the export creates ~550 files) fit inside the sync.
    env.server.set_faults(Faults {
        latency: Duration::from_millis(150),
        ..Faults::default()
    });
    let archive = env.dir.path().join("archive");
    let mut first = spawn_sync(env.dir.path(), &archive);
    std::thread::sleep(Duration::from_millis(300));
    let (code, err) = finish(spawn_sync(env.dir.path(), &archive));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "names the running process: {err}"
    );
    // Readers are not blocked and see a consistent snapshot while the sync writes (once the
    // sync has created the catalog).
    let started = std::time::Instant::now();
    while !archive.join("catalog.sqlite").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the sync made no catalog"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for round in 0..3 {
        let verify = Command::new(env!("CARGO_BIN_EXE_matterbak"))
            .args(["verify", "--read-data", "--archive"])
            .arg(&archive)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&verify.stdout);
        assert_eq!(verify.status.code(), Some(0), "verify during a sync: {out}");
        assert!(out.contains(" 0 damaged"), "{out}");
        let data = env.dir.path().join(format!("data-{round}"));
        let export = Command::new(env!("CARGO_BIN_EXE_matterbak"))
            .args(["export", "--no-zip", "--archive"])
            .arg(&archive)
            .arg("-d")
            .arg(&data)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&export.stderr);
        assert_eq!(export.status.code(), Some(0), "export during a sync: {err}");
        // Files whose bytes the sync has not fetched yet are fine ("never fetched"); a row
        // naming a blob that is not on disk would be an inconsistent snapshot.
        assert!(!err.contains("missing from the store"), "{err}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "the sync ended before the readers ran; slow the mock down"
    );
    let (code, err) = finish(first);
    assert_eq!(code, 0, "{err}");
}

/// A stop that lands while matterbak logs in (found by a SIGTERM 25 ms into a run): the run
/// is interrupted (exit 1) like any other, not failed, and nothing was written.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_logging_in_is_an_interruption() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    env.server.set_faults(Faults {
        latency: Duration::from_millis(1500),
        ..Faults::default()
    });
    let archive = env.dir.path().join("archive");
    let child = spawn_sync(env.dir.path(), &archive);
    std::thread::sleep(Duration::from_millis(400));
    let sent = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let (code, err) = finish(child);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        sent.elapsed()
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!err.contains("error:"), "{err}");
    assert!(
        !archive.join("catalog.sqlite").exists(),
        "nothing was written"
    );
}
