//! The real binary, killed mid-sync and resumed, ends with the same catalog as an
//! uninterrupted sync; a SIGTERM stops it after the current transaction.

use crate::common;

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
    let (code, _, stderr) = common::outcome(&child.wait_with_output().unwrap());
    (code, stderr)
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

/// When a trial's signal is sent: each at observed progress of the run, never after a delay,
/// and each reached by every run of its series (see the plans).
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// Once the server has answered this many requests of the run (spread over the first
    /// requests, which every run makes: even a no-op sync makes that many).
    Requests(usize),
    /// Right after the server answered the n-th posts request: while the client parses the
    /// page and commits it with its cursor.
    PostsPage(usize),
    /// As `PostsPage`, a little later (sweeping the page's commit).
    PostsPageThen(usize, Duration),
    /// A while into the n-th download of a big attachment (whose later chunks the server
    /// then holds: the signal lands half-way through it).
    Download(usize, Duration),
}

fn is_posts_request(path: &str) -> bool {
    path.starts_with("/api/v4/channels/") && path.ends_with("/posts")
}

/// Starts a sync of `env`'s server into `archive` whose requests the server holds once its
/// `n`th posts page is answered, and waits until it is: the run is then certainly still
/// going, however slow the machine.
fn sync_held_after_posts_page(env: &common::Env, archive: &Path, n: u64) -> Child {
    env.server.hold_after(n, is_posts_request);
    let mut child = spawn_sync(env.dir.path(), archive);
    while env.server.count("GET /api/v4/channels/{channel_id}/posts") < n as usize {
        assert!(child.try_wait().unwrap().is_none(), "the sync ended early");
        std::thread::sleep(Duration::from_millis(1));
    }
    child
}

/// Ids of the big attachments (those of the `recording-N.bin` files).
fn big_file_ids(server: &matterbak::mock::MockServer) -> Vec<String> {
    server.with_workspace(|w| {
        w.file_ids()
            .into_iter()
            .filter(|id| w.file_name(id).starts_with("recording-"))
            .collect()
    })
}

fn is_big_download(path: &str, big: &[String]) -> bool {
    path.strip_prefix("/api/v4/files/")
        .is_some_and(|id| big.iter().any(|b| b == id))
}

fn big_downloads_answered(server: &matterbak::mock::MockServer, big: &[String]) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| is_big_download(&r.path, big))
        .count()
}

/// Sets the server to hold every request after the one that makes `moment` (before the run
/// starts, so that however fast the run goes, it cannot get past the moment).
fn arm(moment: Moment, server: &matterbak::mock::MockServer) {
    match moment {
        Moment::Requests(n) => server.hold_after(n as u64, |_| true),
        Moment::PostsPage(n) | Moment::PostsPageThen(n, _) => {
            server.hold_after(n as u64, is_posts_request)
        }
        Moment::Download(n, _) => {
            let big = big_file_ids(server);
            server.hold_after(n as u64, move |path| is_big_download(path, &big))
        }
    }
}

/// Waits for `moment` (armed with [`arm`]) while the child runs; false when the child ended
/// first. From the moment on every request is held, and downloads stop between chunks: the
/// run cannot end before the caller's signal, which then lands inside the run.
fn wait_for(moment: Moment, child: &mut Child, server: &matterbak::mock::MockServer) -> bool {
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let reached = match moment {
            Moment::Requests(n) => server.request_count() >= n,
            Moment::PostsPage(n) | Moment::PostsPageThen(n, _) => {
                server.count("GET /api/v4/channels/{channel_id}/posts") >= n
            }
            Moment::Download(n, _) => big_downloads_answered(server, &big_file_ids(server)) >= n,
        };
        if reached {
            if let Moment::Download(_, extra) = moment {
                server.hold_requests();
                std::thread::sleep(extra);
            }
            if let Moment::PostsPageThen(_, extra) = moment {
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

#[derive(Default, Debug)]
struct Tally {
    trials: usize,
    killed: usize,
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
            arm(moment, &env.server);
            let mut child = spawn_sync(env.dir.path(), &archive);
            tally.trials += 1;
            let reached = wait_for(moment, &mut child, &env.server);
            assert!(
                reached,
                "{signal} at {moment:?} (series {series}): the run ended before its moment: {}",
                finish(child).1
            );
            // Requests are held: the run cannot have ended since the moment.
            assert!(child.try_wait().unwrap().is_none(), "still running");
            let sent = Instant::now();
            Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap();
            // A stop waits for the answers of requests in flight: let them come.
            env.server.release_requests();
            let (code, err) = finish(child);
            let label = match moment {
                Moment::Requests(_) => "after some requests",
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
                let (code, out) = common::verify_read_data(&archive);
                assert_eq!(code, 0, "{signal} at {moment:?}: verify: {out}");
            }
        }
        // Channels finished before the last stop are not walked again.
        let finished: Vec<String> = if archive.join("catalog.sqlite").exists() {
            rows(
                &Catalog::open(&archive.join("catalog.sqlite"), Access::ReadOnly).unwrap(),
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
        let (code, out) = common::verify_read_data(&archive);
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

    // Reference: an uninterrupted sync, then a no-op sync: the fewest requests (and posts
    // requests) any run makes, so every moment below is reached by every run of its series.
    let reference = env.dir.path().join("reference");
    let (code, err) = finish(spawn_sync(env.dir.path(), &reference));
    assert_eq!(code, 0, "{err}");
    env.server.reset_requests();
    let (code, err) = finish(spawn_sync(env.dir.path(), &reference));
    assert_eq!(code, 0, "{err}");
    let fewest = env.server.request_count();
    let posts_requests = env.server.count("GET /api/v4/channels/{channel_id}/posts");
    assert!(
        fewest > 10 && posts_requests >= 6,
        "a no-op sync makes {fewest} requests, {posts_requests} of posts: the plans need more"
    );

    // Moments: spread over the requests every run makes by a seeded RNG, right after posts
    // pages, and inside big downloads; each series continues one archive until its plan is
    // used up.
    let mut rng = StdRng::seed_from_u64(7);
    let mut timed = |n: usize| -> Vec<Moment> {
        (0..n)
            .map(|_| Moment::Requests(rng.random_range(1..fewest)))
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
        Moment::Requests(fewest / 2),
    ]];
    interrupted_series(&env, &reference, "INT", &int_plans, &mut stops);

    // Every planned signal landed inside a run (a run that ended first failed the test).
    assert_eq!((kills.trials, kills.killed), (28, 28), "{kills:?}");
    assert_eq!((stops.trials, stops.killed), (7, 7), "{stops:?}");
    assert!(
        kills.mid_download >= 5,
        "each of the 5 download moments stops a download half-way: {kills:?}"
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
    // Stopped once the first posts page is answered (the server holds every later request,
    // so the run is certainly still going when the signal arrives).
    let child = sync_held_after_posts_page(&env, &archive, 1);
    assert_stops_within_two_seconds(child, "-TERM", &archive, &env.server, Held::Release);
}

/// A stop does not wait for a request on the wire: against a server that never answers it
/// (held until after the run ended) the run still ends within 2 s as interrupted. Before the
/// fix it waited for the read timeout (120 s).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_for_a_request_the_server_stalls() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    let archive = env.dir.path().join("archive");
    let mut child = sync_held_after_posts_page(&env, &archive, 1);
    // A request that arrives from now on is held: once one has, it is certainly in flight.
    let answered = env.server.arrivals();
    while env.server.arrivals() <= answered {
        assert!(child.try_wait().unwrap().is_none(), "the sync ended early");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_stops_within_two_seconds(child, "-TERM", &archive, &env.server, Held::Keep);
    env.server.release_requests();
}

/// What a stop test does with the requests the server holds once the signal is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Answer them: the run may use what comes back.
    Release,
    /// Keep holding them until the run ended: it must not wait for them.
    Keep,
}

/// Sends `signal`, lets requests the server held go on or not (`held`), and checks the run ends within 2 s as interrupted (exit 1,
/// recorded), with no file marked as failed.
fn assert_stops_within_two_seconds(
    child: Child,
    signal: &str,
    archive: &Path,
    server: &matterbak::mock::MockServer,
    held: Held,
) {
    let sent = Instant::now();
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    if held == Held::Release {
        server.release_requests();
    }
    let (code, err) = finish(child);
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let catalog = Catalog::open(&archive.join("catalog.sqlite"), Access::ReadOnly).unwrap();
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
    // Past login and the first reads, with workers queued on the limiter (one request a
    // second, and many more to make).
    let mut child = child;
    while env.server.request_count() < 3 {
        assert!(child.try_wait().unwrap().is_none(), "the sync ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_stops_within_two_seconds(child, "-INT", &archive, &env.server, Held::Release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_on_the_same_archive_is_refused_while_one_runs() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    let archive = env.dir.path().join("archive");
    // The run is stopped (its requests held at the server) once its second posts page is
    // answered: by then it has made its catalog and written posts, and it cannot end while
    // the second sync and the readers below run, however slow they are.
    let mut first = sync_held_after_posts_page(&env, &archive, 2);
    let (code, err) = finish(spawn_sync(env.dir.path(), &archive));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "names the running process: {err}"
    );
    // Readers are not blocked and see a consistent snapshot of a sync under way, before and
    // after it writes more (a round while held, then the sync goes on for a while).
    assert!(
        archive.join("catalog.sqlite").exists(),
        "the sync made its catalog"
    );
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
        assert!(
            first.try_wait().unwrap().is_none(),
            "the sync is still running (its requests are held)"
        );
        // Let the sync go on to its next posts page, then hold it again.
        let seen = env.server.count("GET /api/v4/channels/{channel_id}/posts");
        env.server.hold_after(1, is_posts_request);
        env.server.release_held();
        while env.server.count("GET /api/v4/channels/{channel_id}/posts") < seen + 1
            && first.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    env.server.release_requests();
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
    let mut child = spawn_sync(env.dir.path(), &archive);
    // The login request has arrived (and waits out the latency): the run is logging in.
    while env.server.arrivals() < 1 {
        assert!(child.try_wait().unwrap().is_none(), "the sync ended early");
        std::thread::sleep(Duration::from_millis(1));
    }
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
