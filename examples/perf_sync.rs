//! Requests, wall time and peak memory of a first and a no-op `matterbak sync` of a generated
//! workspace served in-process with injected per-request latency. Runs the `matterbak`
//! binary under `/usr/bin/time` and reads the mock's request log.
//!
//! usage: perf_sync MATTERBAK_BINARY SIZES LATENCY_MS CONCURRENCY [RUNS]
//!        (SIZES as for `GenSpec`'s `FromStr`: `posts=20000,attachments=1000`; RUNS first
//!        syncs, median reported, default 1)
//!
//! Besides the totals it prints where request slots sat idle: requests in flight per tenth
//! of the run, each route's busy window and time at the server, at concurrency 1 the
//! client's own time between an answer and the next request, and with `PERF_SYNC_FIRST` set
//! the first 60 requests as they arrived. `BENCH_SYNC_ARGS` adds arguments to each sync
//! (`--encrypt`).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use matterbak::mock::{
    Faults, GenSpec, MockServer, RequestRecord, SAMPLE_PASSWORD, SAMPLE_USER, Workspace,
};

mod sync_run;

/// Runs one sync; returns (seconds, peak RSS in MB, CPU seconds user + system).
async fn timed_sync(
    binary: &std::path::Path,
    cwd: &std::path::Path,
    concurrency: usize,
) -> (f64, u64, f64) {
    let (binary, cwd) = (binary.to_owned(), cwd.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/time")
            .args(["-f", "%e %M %U %S"])
            .arg(&binary)
            .args(sync_run::QUICK_SYNC)
            .args(["--concurrency", &concurrency.to_string()])
            .args(
                std::env::var("BENCH_SYNC_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .current_dir(&cwd)
            .output()
            .expect("run /usr/bin/time")
    })
    .await
    .expect("sync task");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync failed: {stderr}");
    let figures = sync_run::time_figures(&stderr);
    let figure = |i: usize| figures.get(i).copied().unwrap_or(0.0);
    let (secs, kb) = (figure(0), figure(1) as u64);
    let cpu: f64 = figures.iter().skip(2).sum();
    (secs, kb / 1024, cpu)
}

/// Where the request slots sat idle: requests in flight at the server, on average over the
/// run and per tenth of it, and when each route was busy. Time spent with fewer than
/// `concurrency` requests in flight is time above the floor.
fn print_timeline(records: &[RequestRecord], concurrency: usize) {
    let Some(start) = records.iter().map(|r| r.arrived).min() else {
        return;
    };
    let end = records.iter().map(|r| r.answered).max().unwrap_or(start);
    let span = (end - start).as_secs_f64().max(1e-9);
    let busy: f64 = records
        .iter()
        .map(|r| (r.answered - r.arrived).as_secs_f64())
        .sum();
    println!(
        "  server-side span {span:.2} s; mean requests in flight {:.2} of {concurrency}",
        busy / span
    );
    const BUCKETS: usize = 10;
    let mut in_bucket = [0.0f64; BUCKETS];
    let width = span / BUCKETS as f64;
    for r in records {
        let (a, b) = (
            (r.arrived - start).as_secs_f64(),
            (r.answered - start).as_secs_f64(),
        );
        for (i, slot) in in_bucket.iter_mut().enumerate() {
            let (lo, hi) = (i as f64 * width, (i + 1) as f64 * width);
            *slot += (b.min(hi) - a.max(lo)).max(0.0);
        }
    }
    let tenths: Vec<String> = in_bucket
        .iter()
        .map(|t| format!("{:.1}", t / width))
        .collect();
    println!("  in flight per tenth of the run: {}", tenths.join(" "));
    if concurrency == 1 {
        // One request at a time: the time between an answer and the next request is the
        // client's own (reading, storing, deciding), by the route of the answered request.
        let mut sorted: Vec<&RequestRecord> = records.iter().collect();
        sorted.sort_by_key(|r| r.arrived);
        let mut gaps = BTreeMap::<&str, (usize, f64)>::new();
        for pair in sorted.windows(2) {
            let gap = pair[1].arrived.saturating_duration_since(pair[0].answered);
            let e = gaps.entry(&pair[0].route).or_default();
            *e = (e.0 + 1, e.1 + gap.as_secs_f64());
        }
        for (route, (n, total)) in gaps {
            println!(
                "    after {route:<48} {:>6.2} ms mean gap over {n}",
                total * 1000.0 / n as f64
            );
        }
    }
    if std::env::var_os("PERF_SYNC_FIRST").is_some() {
        let mut sorted: Vec<&RequestRecord> = records.iter().collect();
        sorted.sort_by_key(|r| r.arrived);
        for r in sorted.iter().take(60) {
            println!(
                "      {:>7.3} {:>7.3} {}",
                (r.arrived - start).as_secs_f64(),
                (r.answered - start).as_secs_f64(),
                r.route
            );
        }
    }
    let mut by_route = BTreeMap::<&str, (usize, f64, f64, f64)>::new();
    for r in records {
        let (a, b) = (
            (r.arrived - start).as_secs_f64(),
            (r.answered - start).as_secs_f64(),
        );
        let e = by_route.entry(&r.route).or_insert((0, f64::MAX, 0.0, 0.0));
        *e = (e.0 + 1, e.1.min(a), e.2.max(b), e.3 + (b - a));
    }
    println!("    requests × route, first arrival – last answer, mean time at the server");
    for (route, (n, first, last, total)) in by_route {
        println!(
            "    {n:>6} × {route:<48} {first:>6.2} s – {last:>6.2} s  {:>6.1} ms",
            total * 1000.0 / n as f64
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (binary, sizes, latency_ms, concurrency, runs) = match args.as_slice() {
        [_, b, s, l, c] => (b, s, l, c, 1),
        [_, b, s, l, c, r] => (b, s, l, c, r.parse().expect("RUNS")),
        _ => {
            eprintln!("usage: perf_sync MATTERBAK_BINARY SIZES LATENCY_MS CONCURRENCY [RUNS]");
            std::process::exit(2);
        }
    };
    let spec: GenSpec = sizes.parse().expect("SIZES");
    let latency = Duration::from_millis(latency_ms.parse().expect("LATENCY_MS"));
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY");
    let binary = std::fs::canonicalize(binary).expect("binary path");

    let server = MockServer::start(Workspace::generated(&spec))
        .await
        .expect("mock starts");
    server.set_faults(Faults {
        latency,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let creds =
        serde_json::json!({"user": SAMPLE_USER, "password": SAMPLE_PASSWORD, "url": server.url()});
    std::fs::write(dir.path().join("credentials.json"), creds.to_string()).unwrap();
    std::fs::write(dir.path().join("channels.json"), spec.channels_json()).unwrap();

    let min = spec.minimum_requests();
    // The machine is noisy: with RUNS > 1 the first sync runs that often, each into a fresh
    // archive, and the median time is reported (the details are the last run's).
    let mut times = Vec::new();
    let (mut rss, mut cpu) = (0, 0.0);
    for run in 0..runs {
        if run > 0 {
            std::fs::remove_dir_all(dir.path().join("archive")).expect("remove archive");
            server.reset_requests();
        }
        let (secs, run_rss, run_cpu) = timed_sync(&binary, dir.path(), concurrency).await;
        (rss, cpu) = (run_rss, run_cpu);
        times.push(secs);
    }
    if runs > 1 {
        println!("  first sync runs (s): {times:?}");
    }
    times.sort_by(f64::total_cmp);
    let secs = times[times.len() / 2];
    let requests = server.request_count();
    let floor = min.total() as f64 * latency.as_secs_f64() / concurrency as f64;
    println!(
        "spec {sizes}; latency {latency_ms} ms; concurrency {concurrency}\n  \
         minimum = {min}\n  \
         first sync: {requests} requests ({:.3}× minimum), {secs:.2} s, floor min×L/C = {floor:.2} s \
         ({:.2}× floor), peak RSS {rss} MB, CPU {cpu:.2} s",
        requests as f64 / min.total() as f64,
        if floor > 0.0 { secs / floor } else { f64::NAN },
    );
    // The run did what it claims: every post of the workspace is in the archive.
    let out = Command::new(&binary)
        .args(["sql", "--archive", "archive", "--format", "csv"])
        .arg("SELECT count(*) FROM posts")
        .current_dir(dir.path())
        .output()
        .expect("run matterbak sql");
    let archived: usize = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    if archived != spec.posts {
        eprintln!(
            "perf_sync: the archive holds {archived} posts, the workspace {}",
            spec.posts
        );
        std::process::exit(1);
    }
    println!("  posts archived: {archived} (checked in the catalog)");
    let records = server.requests();
    print_timeline(&records, concurrency);

    server.reset_requests();
    let (secs, rss, _) = timed_sync(&binary, dir.path(), concurrency).await;
    let requests = server.request_count();
    println!(
        "  no-op sync: {requests} requests (target ≤ channels + 10 = {}), {secs:.2} s, peak RSS {rss} MB",
        spec.channels + 10
    );
    server.shutdown().await;
}
