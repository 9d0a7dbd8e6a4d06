//! Live capture (`matterbak sync --follow`) against the mock in this process: the mock serves a
//! generated workspace, the `matterbak` binary follows it, and a stream of changes shaped like
//! a real workspace (`mock::ChangeStream`: posts with Markdown, code, mentions, hashtags,
//! threads, attachments, messages up to 16,383 characters; reactions added and removed, edits,
//! deletions) is made at a given rate or as fast as the mock makes it. Each change publishes
//! its WebSocket event when the workspace lock is released; its send time is taken then.
//!
//! When is an event's row committed: a reader polls the live catalog every 2 ms for new post
//! rows (`SELECT rowid, id FROM posts WHERE rowid > ?`, a read-only connection, as `matterbak
//! sql` reads beside a follower) and notes when each post id first shows. A `posted` event's
//! latency is that moment minus its send time (2 ms resolution). The follower applies events in
//! order, a batch per transaction, so any other event is committed at the latest with the next
//! post after it: its latency is bounded by that post's commit time minus its own send time.
//! The run ends with a post, so every event has such a bound. Nothing in the follower is
//! instrumented; its stderr is read only for the "caught up" and "polling" lines.
//!
//! Every mode checks at the end that the catalog holds what the stream did (every post, each
//! deletion, each edit's version, each reaction added or removed), counted by the mock, and
//! exits non-zero otherwise.
//!
//! usage: follow_bench MATTERBAK_BINARY MODE ARGS…
//!   latency RATE SECONDS   the full mix at RATE events/s for SECONDS: latency percentiles
//!   throughput POSTS       POSTS posts only, as fast as the mock makes them: posts/s committed
//!   memory EVENTS          the full mix, at most 10,000 events ahead of the catalog:
//!                          the follower's RSS after 10,000 events and after EVENTS
//!   idle SECONDS POLL      nothing changes for SECONDS, `--poll-interval POLL`: REST requests
//!
//! The workspace followed: `FOLLOW_BENCH_WORKSPACE` sizes (`GenSpec`; default
//! `posts=20000,attachments=1000`), 20 channels, 50 users; the stream's attachments are 2 KiB.
//! Scratch files go to a temporary directory in `$TMPDIR`, removed at the end (kept, and
//! named, with `FOLLOW_BENCH_KEEP` set).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use matterbak::mock::{
    ChangeKind, ChangeStream, GenSpec, Mix, MockServer, RequestRecord, SAMPLE_PASSWORD,
    SAMPLE_USER, Workspace,
};
use rusqlite::{Connection, OpenFlags};

/// The scratch directory and the running follower, for [`fail`] to clean up.
static SCRATCH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
static FOLLOWER_PID: AtomicU32 = AtomicU32::new(0);

/// Events the sender may be ahead of the catalog in the memory mode.
const WINDOW: usize = 10_000;
/// The early point of the memory comparison.
const EARLY: usize = 10_000;
/// How long after the last change every row must be committed.
const COMMIT_DEADLINE: Duration = Duration::from_secs(300);

fn fail(message: &str) -> ! {
    eprintln!("follow_bench: {message}");
    // exit() runs no destructors: stop the follower and remove the scratch directory here.
    let pid = FOLLOWER_PID.load(Ordering::SeqCst);
    if pid != 0 {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    if let Some(dir) = SCRATCH.get() {
        if std::env::var_os("FOLLOW_BENCH_KEEP").is_some() {
            eprintln!("follow_bench: scratch directory kept: {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    std::process::exit(1);
}

/// The follower process and its stderr lines, each with the moment it was read.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    caught_up: mpsc::Receiver<()>,
}

impl Follower {
    fn start(binary: &Path, dir: &Path, poll_interval: u64) -> Follower {
        let mut child = Command::new(binary)
            .args([
                "sync",
                "--follow",
                "--rate-limit",
                "0",
                "--archive",
                "archive",
            ])
            .args(["--poll-interval", &poll_interval.to_string()])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", binary.display())));
        FOLLOWER_PID.store(child.id(), Ordering::SeqCst);
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, caught_up) = mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("following: caught up") {
                    let _ = tx.send(());
                }
                kept.lock().unwrap().push((Instant::now(), line));
            }
        });
        Follower {
            child,
            lines,
            caught_up,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next "caught up" line; fails when the follower ends first.
    fn wait_caught_up(&mut self) {
        loop {
            match self.caught_up.recv_timeout(Duration::from_millis(200)) {
                Ok(()) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        self.dump();
                        fail(&format!("the follower ended ({status}) before catching up"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.dump();
                    fail("the follower closed stderr before catching up");
                }
            }
        }
    }

    fn dump(&self) {
        for (_, line) in self.lines.lock().unwrap().iter() {
            eprintln!("  follower: {line}");
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits; the follower must exit 0 (it commits what it received).
    fn stop(mut self) -> Vec<(Instant, String)> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("wait for the follower");
        FOLLOWER_PID.store(0, Ordering::SeqCst);
        if !status.success() {
            self.dump();
            fail(&format!("the follower exited with {status} after SIGTERM"));
        }
        // The reader thread ends at EOF; give it the last lines.
        std::thread::sleep(Duration::from_millis(50));
        self.lines.lock().unwrap().clone()
    }
}

/// `VmHWM` and `VmRSS` of a process, in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn open_catalog(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| fail(&format!("cannot open {}: {e}", path.display())));
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

/// What the sender did: each change's kind, post and send time, in order.
#[derive(Default)]
struct Sent {
    changes: Vec<(ChangeKind, usize, Instant)>,
    /// Post ids by number (changes name their post by it), and numbers by id.
    post_ids: Vec<String>,
    post_number: HashMap<String, usize>,
    /// The change that wrote each post (by post number).
    posted_at_step: Vec<usize>,
    /// (post number, username, emoji) of reactions added, and of those removed.
    reactions_added: Vec<(usize, String, &'static str)>,
    reactions_removed: Vec<(usize, String, &'static str)>,
}

/// The reader's view: when each post id first showed in the catalog, and how many changes
/// are committed for certain (those up to the last post seen, in stream order).
struct Seen {
    at: Mutex<HashMap<String, Instant>>,
    committed_steps: AtomicUsize,
    done: AtomicBool,
}

/// Polls the catalog for new post rows every 2 ms until `seen.done`.
fn poll_catalog(catalog: PathBuf, seen: Arc<Seen>, sent: Arc<Mutex<Sent>>) {
    let conn = open_catalog(&catalog);
    let mut last: i64 = conn
        .query_row("SELECT coalesce(max(rowid), 0) FROM posts", [], |r| {
            r.get(0)
        })
        .expect("max rowid");
    let mut unmatched: Vec<String> = Vec::new();
    while !seen.done.load(Ordering::SeqCst) {
        let mut rows: Vec<(i64, String)> = Vec::new();
        {
            let mut st = conn
                .prepare_cached("SELECT rowid, id FROM posts WHERE rowid > ?1 ORDER BY rowid")
                .expect("prepare");
            let found = st
                .query_map([last], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
            match found {
                Ok(found) => rows = found,
                Err(e) => eprintln!("follow_bench: reading the catalog: {e}"),
            }
        }
        let now = Instant::now();
        if let Some((rowid, _)) = rows.last() {
            last = *rowid;
        }
        {
            let mut at = seen.at.lock().unwrap();
            for (_, id) in &rows {
                at.entry(id.clone()).or_insert(now);
            }
        }
        unmatched.extend(rows.into_iter().map(|(_, id)| id));
        if !unmatched.is_empty() {
            let sent = sent.lock().unwrap();
            let mut latest = seen.committed_steps.load(Ordering::SeqCst);
            unmatched.retain(|id| match sent.post_number.get(id) {
                Some(&n) => {
                    latest = latest.max(sent.posted_at_step[n] + 1);
                    false
                }
                None => true,
            });
            seen.committed_steps.store(latest, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How the sender paces the stream.
struct Pace {
    /// Changes per second; 0: as fast as the mock makes them.
    rate: f64,
    /// Changes in all, at most; the stream may end first.
    limit: usize,
    /// At most this many changes ahead of what the catalog shows committed (0: no limit).
    window: usize,
    /// Called with the number of changes committed for certain and the follower's pid,
    /// before each change.
    on_committed: Option<Box<dyn FnMut(usize, u32) + Send>>,
}

/// Makes the stream's changes, then one last post (so every change is followed by a post).
fn send(
    server: &MockServer,
    stream: &mut ChangeStream,
    pace: &mut Pace,
    sent: &Arc<Mutex<Sent>>,
    seen: &Seen,
    follower_pid: u32,
) {
    let start = Instant::now();
    let mut k = 0usize;
    let mut last_post = false;
    loop {
        if pace.rate > 0.0 {
            let due = start + Duration::from_secs_f64(k as f64 / pace.rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        if pace.window > 0 {
            while k > seen.committed_steps.load(Ordering::SeqCst) + pace.window {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if let Some(on) = pace.on_committed.as_mut() {
            on(seen.committed_steps.load(Ordering::SeqCst), follower_pid);
        }
        let change = if k + 1 >= pace.limit {
            // The last change is a post.
            last_post = true;
            server.with_workspace(|ws| {
                let channel = ws.channel_id("team-0", "channel-0");
                let id = ws.create_post(&channel, SAMPLE_USER, "end of the stream", None);
                matterbak::mock::Change {
                    kind: ChangeKind::Posted,
                    post_id: id,
                    reaction: None,
                }
            })
        } else {
            match server.with_workspace(|ws| stream.apply_next(ws)) {
                Some(change) => change,
                None => {
                    pace.limit = k + 1;
                    continue;
                }
            }
        };
        let at = Instant::now();
        let mut s = sent.lock().unwrap();
        let number = match s.post_number.get(&change.post_id) {
            Some(&n) => n,
            None => {
                let n = s.post_ids.len();
                s.post_ids.push(change.post_id.clone());
                s.post_number.insert(change.post_id.clone(), n);
                s.posted_at_step.push(k);
                n
            }
        };
        match (change.kind, change.reaction) {
            (ChangeKind::ReactionAdded, Some((user, emoji))) => {
                s.reactions_added.push((number, user, emoji))
            }
            (ChangeKind::ReactionRemoved, Some((user, emoji))) => {
                s.reactions_removed.push((number, user, emoji))
            }
            _ => {}
        }
        s.changes.push((change.kind, number, at));
        drop(s);
        k += 1;
        if last_post {
            return;
        }
    }
}

/// Waits until every post the stream wrote shows in the catalog.
fn wait_committed(sent: &Mutex<Sent>, seen: &Seen, follower: &mut Follower) -> Instant {
    let total = sent.lock().unwrap().changes.len();
    let deadline = Instant::now() + COMMIT_DEADLINE;
    while seen.committed_steps.load(Ordering::SeqCst) < total {
        if Instant::now() > deadline {
            fail(&format!(
                "{} of {total} changes committed {} s after the last one",
                seen.committed_steps.load(Ordering::SeqCst),
                COMMIT_DEADLINE.as_secs()
            ));
        }
        if !follower.alive() {
            follower.dump();
            fail("the follower ended during the stream");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = sent.lock().unwrap();
    let at = seen.at.lock().unwrap();
    sent.post_ids
        .iter()
        .filter_map(|id| at.get(id).copied())
        .max()
        .expect("posts seen")
}

/// Checks the catalog against what the stream did; prints a line of counts.
fn check_catalog(catalog: &Path, server: &MockServer, sent: &Sent) {
    let conn = open_catalog(catalog);
    let count = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> i64 {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.query_row(args, |r| r.get(0)))
            .unwrap_or_else(|e| fail(&format!("{sql}: {e}")))
    };
    let mut tally: BTreeMap<ChangeKind, usize> = BTreeMap::new();
    for (kind, ..) in &sent.changes {
        *tally.entry(*kind).or_default() += 1;
    }
    let mut missing = Vec::new();
    let mut edits_per_post: HashMap<usize, i64> = HashMap::new();
    for (kind, number, _) in &sent.changes {
        let id = &sent.post_ids[*number];
        match kind {
            ChangeKind::Posted => {
                if count("SELECT count(*) FROM posts WHERE id = ?1", &[id]) != 1 {
                    missing.push(format!("post {id}"));
                }
            }
            ChangeKind::Deleted => {
                if count(
                    "SELECT count(*) FROM posts WHERE id = ?1 AND delete_at > 0",
                    &[id],
                ) != 1
                {
                    missing.push(format!("deletion of {id}"));
                }
            }
            ChangeKind::Edited => *edits_per_post.entry(*number).or_default() += 1,
            ChangeKind::ReactionAdded | ChangeKind::ReactionRemoved => {}
        }
    }
    for (number, edits) in &edits_per_post {
        let id = &sent.post_ids[*number];
        let versions = count(
            "SELECT count(*) FROM post_versions WHERE post_id = ?1",
            &[id],
        );
        if versions != *edits {
            missing.push(format!("{id}: {versions} versions for {edits} edits"));
        }
    }
    let user_ids: HashMap<String, String> = server.with_workspace(|ws| {
        (0..50)
            .map(matterbak::mock::generated_username)
            .map(|name| (name.clone(), ws.user_id(&name)))
            .collect()
    });
    let removed: std::collections::HashSet<_> = sent.reactions_removed.iter().collect();
    for reaction in &sent.reactions_added {
        let (number, user, emoji) = reaction;
        let id = &sent.post_ids[*number];
        let gone = removed.contains(reaction);
        let sql = if gone {
            "SELECT count(*) FROM reactions WHERE post_id = ?1 AND user_id = ?2 AND emoji_name = ?3 AND removed_at IS NOT NULL"
        } else {
            "SELECT count(*) FROM reactions WHERE post_id = ?1 AND user_id = ?2 AND emoji_name = ?3 AND removed_at IS NULL"
        };
        if count(sql, &[id, &user_ids[user], emoji]) != 1 {
            missing.push(format!(
                "reaction :{emoji}: of {user} on {id}{}",
                if gone { " (removed)" } else { "" }
            ));
        }
    }
    if !missing.is_empty() {
        let shown: Vec<_> = missing.iter().take(10).cloned().collect();
        fail(&format!(
            "{} change(s) not in the catalog, e.g. {}",
            missing.len(),
            shown.join("; ")
        ));
    }
    let kinds: Vec<String> = tally
        .iter()
        .map(|(kind, n)| format!("{n} {}", kind.event()))
        .collect();
    println!(
        "  checked in the catalog: {} events = {}",
        sent.changes.len(),
        kinds.join(", ")
    );
}

/// Latencies (ms) of every change: exact for posts, bounded by the next post for the rest.
fn latencies(sent: &Sent, seen: &Seen) -> (Vec<f64>, Vec<f64>) {
    let at = seen.at.lock().unwrap();
    let mut posts = Vec::new();
    let mut all = vec![0.0; sent.changes.len()];
    let mut next_commit: Option<Instant> = None;
    for (i, (kind, number, sent_at)) in sent.changes.iter().enumerate().rev() {
        if *kind == ChangeKind::Posted
            && let Some(&t) = at.get(&sent.post_ids[*number])
        {
            next_commit = Some(next_commit.map_or(t, |n| n.min(t)));
            posts.push(t.saturating_duration_since(*sent_at).as_secs_f64() * 1000.0);
        }
        let commit = next_commit.unwrap_or_else(|| fail("a change after the last post"));
        all[i] = commit.saturating_duration_since(*sent_at).as_secs_f64() * 1000.0;
    }
    posts.sort_by(f64::total_cmp);
    all.sort_by(f64::total_cmp);
    (posts, all)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn summary(sorted: &[f64]) -> String {
    format!(
        "p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(sorted, 0.50),
        percentile(sorted, 0.90),
        percentile(sorted, 0.99),
        sorted.last().copied().unwrap_or(0.0)
    )
}

struct Bench {
    server: MockServer,
    spec: GenSpec,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Bench {
    fn catalog(&self) -> PathBuf {
        self.dir.path().join("archive").join("catalog.sqlite")
    }

    /// A stream of `posts` new posts (seed 2) over the workspace's channels and users.
    fn stream(&self, posts: usize, mix: Mix) -> ChangeStream {
        let spec = GenSpec {
            posts,
            attachments: posts / 20,
            attachment_bytes: 2048,
            seed: self.spec.seed + 1,
            ..self.spec.clone()
        };
        self.server
            .with_workspace(|ws| ChangeStream::new(ws, &spec, mix))
    }

    /// Follows, makes the stream's changes as `pace` says, waits until all are committed
    /// and checks them; returns the follower (still running), what was sent and seen, and
    /// the follower's CPU seconds over the stream.
    fn run_stream(
        &self,
        mut stream: ChangeStream,
        mut pace: Pace,
    ) -> (Follower, Arc<Mutex<Sent>>, Arc<Seen>, Instant, f64) {
        let mut follower = Follower::start(&self.binary, self.dir.path(), 3600);
        follower.wait_caught_up();
        let sent = Arc::new(Mutex::new(Sent::default()));
        let seen = Arc::new(Seen {
            at: Mutex::new(HashMap::new()),
            committed_steps: AtomicUsize::new(0),
            done: AtomicBool::new(false),
        });
        let reader = {
            let (catalog, seen, sent) = (self.catalog(), seen.clone(), sent.clone());
            std::thread::spawn(move || poll_catalog(catalog, seen, sent))
        };
        // The reader starts from the rows the catch-up wrote.
        std::thread::sleep(Duration::from_millis(100));
        let cpu_before = cpu_seconds(follower.pid());
        send(
            &self.server,
            &mut stream,
            &mut pace,
            &sent,
            &seen,
            follower.pid(),
        );
        let last_commit = wait_committed(&sent, &seen, &mut follower);
        let cpu = cpu_seconds(follower.pid()) - cpu_before;
        seen.done.store(true, Ordering::SeqCst);
        reader.join().expect("reader");
        (follower, sent, seen, last_commit, cpu)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: follow_bench MATTERBAK_BINARY latency RATE SECONDS | throughput POSTS | memory EVENTS | idle SECONDS POLL";
    if args.len() < 3 {
        fail(usage);
    }
    let number = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| fail(usage))
    };
    let spec: GenSpec = std::env::var("FOLLOW_BENCH_WORKSPACE")
        .unwrap_or_else(|_| "posts=20000,attachments=1000".into())
        .parse()
        .unwrap_or_else(|e| fail(&format!("FOLLOW_BENCH_WORKSPACE: {e}")));
    let binary =
        std::fs::canonicalize(&args[1]).unwrap_or_else(|e| fail(&format!("{}: {e}", args[1])));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let server = runtime
        .block_on(MockServer::start(Workspace::generated(&spec)))
        .expect("mock starts");
    let dir = tempfile::Builder::new()
        .prefix("followbench-")
        .tempdir()
        .expect("temp dir");
    let creds =
        serde_json::json!({"user": SAMPLE_USER, "password": SAMPLE_PASSWORD, "url": server.url()});
    std::fs::write(dir.path().join("credentials.json"), creds.to_string()).expect("write");
    let _ = SCRATCH.set(dir.path().to_owned());
    std::fs::write(dir.path().join("channels.json"), spec.channels_json()).expect("write");
    let bench = Bench {
        server,
        spec,
        dir,
        binary,
    };
    println!(
        "workspace followed: {:?}; load average {}",
        bench.spec,
        load_average()
    );
    match args[2].as_str() {
        "latency" => latency(&bench, number(3) as f64, number(4)),
        "throughput" => throughput(&bench, number(3) as usize),
        "memory" => memory(&bench, number(3) as usize),
        "idle" => idle(&bench, number(3), number(4)),
        _ => fail(usage),
    }
    println!("load average at the end {}", load_average());
    if std::env::var_os("FOLLOW_BENCH_KEEP").is_some() {
        let kept = bench.dir.keep();
        println!("kept {}", kept.display());
    }
    drop(runtime);
}

fn latency(bench: &Bench, rate: f64, seconds: u64) {
    let events = (rate * seconds as f64) as usize;
    let pace = Pace {
        rate,
        limit: events,
        window: 0,
        on_committed: None,
    };
    let (follower, sent, seen, _, cpu) =
        bench.run_stream(bench.stream(events, Mix::Everything), pace);
    follower.stop();
    let sent = sent.lock().unwrap();
    let first = sent.changes.first().map(|c| c.2).expect("changes");
    let last = sent.changes.last().map(|c| c.2).expect("changes");
    let achieved = (sent.changes.len() - 1) as f64 / (last - first).as_secs_f64();
    check_catalog(&bench.catalog(), &bench.server, &sent);
    if achieved < 0.97 * rate {
        fail(&format!(
            "the mock sent {achieved:.0} events/s, not the {rate:.0} asked for: no figure"
        ));
    }
    let (posts, all) = latencies(&sent, &seen);
    println!(
        "latency at {achieved:.0} events/s sustained for {:.1} s ({} events; follower CPU {cpu:.1} s):",
        (last - first).as_secs_f64(),
        sent.changes.len()
    );
    println!(
        "  posted events ({}), event to committed row: {}",
        posts.len(),
        summary(&posts)
    );
    println!(
        "  every event (bounded by the next post's commit): {} (target p99 <= 1000 ms)",
        summary(&all)
    );
}

fn throughput(bench: &Bench, posts: usize) {
    let pace = Pace {
        rate: 0.0,
        limit: posts,
        window: 0,
        on_committed: None,
    };
    let (follower, sent, _, last_commit, cpu) =
        bench.run_stream(bench.stream(posts, Mix::Posts), pace);
    let (hwm, _) = memory_kb(follower.pid());
    follower.stop();
    let sent = sent.lock().unwrap();
    check_catalog(&bench.catalog(), &bench.server, &sent);
    let first = sent.changes.first().map(|c| c.2).expect("changes");
    let last = sent.changes.last().map(|c| c.2).expect("changes");
    let n = sent.changes.len();
    let secs = (last_commit - first).as_secs_f64();
    println!(
        "throughput: {n} posted events committed in {secs:.2} s = {:.0} posts/s (target >= 5000); \
         the mock sent them in {:.2} s ({:.0}/s); follower CPU {cpu:.1} s ({:.0} µs per post), peak RSS {} MB",
        n as f64 / secs,
        (last - first).as_secs_f64(),
        n as f64 / (last - first).as_secs_f64(),
        cpu * 1e6 / n as f64,
        hwm / 1024
    );
}

fn memory(bench: &Bench, events: usize) {
    if events <= EARLY {
        fail(&format!("memory needs more than {EARLY} events"));
    }
    let early: Arc<Mutex<Option<(u64, u64)>>> = Arc::default();
    let pace = Pace {
        rate: 0.0,
        limit: events,
        window: WINDOW,
        on_committed: Some(Box::new({
            let early = early.clone();
            move |committed, pid| {
                let mut early = early.lock().unwrap();
                if committed >= EARLY && early.is_none() {
                    *early = Some(memory_kb(pid));
                }
            }
        })),
    };
    let (follower, sent, _, last_commit, cpu) =
        bench.run_stream(bench.stream(events, Mix::Everything), pace);
    let (hwm_end, rss_end) = memory_kb(follower.pid());
    follower.stop();
    let sent = sent.lock().unwrap();
    check_catalog(&bench.catalog(), &bench.server, &sent);
    let (hwm_early, rss_early) = early
        .lock()
        .unwrap()
        .unwrap_or_else(|| fail("no memory sample after the early events"));
    let first = sent.changes.first().map(|c| c.2).expect("changes");
    let secs = (last_commit - first).as_secs_f64();
    println!(
        "memory: after {EARLY} events peak RSS {:.1} MB (RSS {:.1} MB); after {} events peak RSS {:.1} MB (RSS {:.1} MB): \
         peak {:.3}×, RSS {:.3}× (target <= 1.10×); {secs:.0} s, {:.0} events/s, follower CPU {cpu:.0} s",
        hwm_early as f64 / 1024.0,
        rss_early as f64 / 1024.0,
        sent.changes.len(),
        hwm_end as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        hwm_end as f64 / hwm_early as f64,
        rss_end as f64 / rss_early as f64,
        sent.changes.len() as f64 / secs
    );
}

/// Requests the server answered while nothing changed: outside polls (the target: none), and
/// per poll by route. A poll runs from the follower's "polling" line to its next "caught up".
fn idle(bench: &Bench, seconds: u64, poll: u64) {
    let mut follower = Follower::start(&bench.binary, bench.dir.path(), poll);
    follower.wait_caught_up();
    let start = Instant::now();
    bench.server.reset_requests();
    let connections_before = bench.server.websocket_connections().len();
    std::thread::sleep(Duration::from_secs(seconds));
    let end = Instant::now();
    let connections_after = bench.server.websocket_connections().len();
    // A poll in progress at the end is waited for, so that its requests are attributed.
    let poll_open = |lines: &[(Instant, String)]| {
        let started = lines.iter().rposition(|(_, l)| l.starts_with("polling"));
        let ended = lines
            .iter()
            .rposition(|(_, l)| l.starts_with("following: caught up"));
        matches!((started, ended), (Some(s), e) if e.is_none_or(|e| e < s))
    };
    while poll_open(&follower.lines.lock().unwrap()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let requests: Vec<RequestRecord> = bench.server.requests();
    let lines = follower.stop();
    let mut windows: Vec<(Instant, Instant)> = Vec::new();
    let mut open: Option<Instant> = None;
    for (at, line) in &lines {
        if *at < start || (*at > end && open.is_none()) {
            continue;
        }
        if line.starts_with("polling") {
            open = Some(*at);
        } else if line.starts_with("following: caught up")
            && let Some(from) = open.take()
        {
            windows.push((from, *at));
        }
    }
    let in_poll = |r: &RequestRecord| {
        windows
            .iter()
            .any(|(from, to)| r.arrived >= *from - Duration::from_millis(5) && r.arrived <= *to)
    };
    // A poll that began before the end is counted whole.
    let (polled, outside): (Vec<&RequestRecord>, Vec<&RequestRecord>) = requests
        .iter()
        .filter(|r| r.arrived <= end || in_poll(r))
        .partition(|r| in_poll(r));
    let expected_polls = seconds / poll;
    // Since the follower polls only the archived channels (whose events reach nobody), a poll
    // of a workspace without any makes no request and logs no "polling" line: then every
    // request the server answered is one outside a poll, and the target is none at all.
    let archived: i64 = open_catalog(&bench.catalog())
        .query_row(
            "SELECT count(*) FROM channels WHERE selected AND delete_at > 0",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| fail(&format!("reading the catalog: {e}")));
    if archived == 0 && windows.is_empty() {
        println!("idle: the workspace has no archived channel: nothing is polled over REST");
    } else if (windows.len() as u64) + 1 < expected_polls
        || windows.len() as u64 > expected_polls + 1
    {
        fail(&format!(
            "{} polls in {seconds} s at --poll-interval {poll}, expected about {expected_polls}",
            windows.len()
        ));
    }
    if connections_before != 1 || connections_after != 1 {
        fail(&format!(
            "WebSocket connections: {connections_before} before, {connections_after} after (expected 1)"
        ));
    }
    println!(
        "idle: {seconds} s with --poll-interval {poll}: {} REST requests outside polls (target 0); \
         {} polls, {} requests in them; 1 WebSocket connection throughout",
        outside.len(),
        windows.len(),
        polled.len()
    );
    let mut routes: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &polled {
        *routes.entry(r.route.as_str()).or_default() += 1;
    }
    for (route, n) in &routes {
        println!(
            "  per poll: {:.1} × {route}",
            *n as f64 / windows.len().max(1) as f64
        );
    }
    for r in outside.iter().take(10) {
        println!("  outside a poll: {} {}", r.route, r.query);
    }
}
