//! Requests, wall time and peak memory of a first and a no-op `matterbak sync` of a generated
//! workspace served in-process with injected per-request latency. Runs the `matterbak`
//! binary under `/usr/bin/time` and reads the mock's request log.
//!
//! usage: perf_sync MATTERBAK_BINARY SIZES LATENCY_MS CONCURRENCY
//!        (SIZES as for `GenSpec`'s `FromStr`: `posts=20000,attachments=1000`)

use std::process::Command;
use std::time::Duration;

use matterbak::mock::{Faults, GenSpec, MockServer, SAMPLE_PASSWORD, SAMPLE_USER, Workspace};

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
            .args([
                "sync",
                "--quiet",
                "--rate-limit",
                "0",
                "--archive",
                "archive",
            ])
            .args(["--concurrency", &concurrency.to_string()])
            .current_dir(&cwd)
            .output()
            .expect("run /usr/bin/time")
    })
    .await
    .expect("sync task");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync failed: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    let mut parts = last.split_whitespace();
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let kb: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let cpu: f64 = parts.filter_map(|s| s.parse::<f64>().ok()).sum();
    (secs, kb / 1024, cpu)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, binary, sizes, latency_ms, concurrency] = args.as_slice() else {
        eprintln!("usage: perf_sync MATTERBAK_BINARY SIZES LATENCY_MS CONCURRENCY");
        std::process::exit(2);
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
    let (secs, rss, cpu) = timed_sync(&binary, dir.path(), concurrency).await;
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
    let mut by_route = std::collections::BTreeMap::<String, usize>::new();
    for record in server.requests() {
        *by_route.entry(record.route).or_default() += 1;
    }
    println!("  by route: {by_route:?}");

    server.reset_requests();
    let (secs, rss, _) = timed_sync(&binary, dir.path(), concurrency).await;
    let requests = server.request_count();
    println!(
        "  no-op sync: {requests} requests (target ≤ channels + 10 = {}), {secs:.2} s, peak RSS {rss} MB",
        spec.channels + 10
    );
    server.shutdown().await;
}
