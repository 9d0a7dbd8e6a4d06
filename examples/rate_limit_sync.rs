//! A first `matterbak sync` of a generated workspace against the mock with the server's rate
//! limiter on (GCRA, per IP): failed items, the share of 429 answers and the wall time
//! against what the limit allows (`requests / per_sec`). Runs the `matterbak` binary with
//! `--rate-limit 0`, so the client learns the limit from the answers alone.
//!
//! usage: rate_limit_sync MATTERBAK_BINARY SIZES PER_SEC BURST CONCURRENCY
//!        (SIZES as for `GenSpec`'s `FromStr`: `posts=20000,attachments=1000`)
//!
//! Prints one table row: limit, C, requests, 429s (and their share), failed items, wall
//! time, `requests / per_sec`, and their ratio. Exits 1 when a target of issue #11 is missed
//! (0 failed items, 429s ≤ 2 % of requests, wall time ≤ 1.15 × requests / per_sec).

use std::process::Command;
use std::time::Instant;

use matterbak::mock::{Faults, GenSpec, MockServer, RateLimit, SAMPLE_PASSWORD, SAMPLE_USER};

mod sync_run;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, binary, sizes, per_sec, burst, concurrency] = args.as_slice() else {
        eprintln!("usage: rate_limit_sync MATTERBAK_BINARY SIZES PER_SEC BURST CONCURRENCY");
        std::process::exit(2);
    };
    let spec: GenSpec = sizes.parse().expect("SIZES");
    let limit = RateLimit {
        per_sec: per_sec.parse().expect("PER_SEC"),
        burst: burst.parse().expect("BURST"),
    };
    let binary = std::fs::canonicalize(binary).expect("binary path");
    let server = MockServer::start(matterbak::mock::Workspace::generated(&spec))
        .await
        .expect("mock starts");
    server.set_faults(Faults {
        rate_limit: Some(limit),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let creds =
        serde_json::json!({"user": SAMPLE_USER, "password": SAMPLE_PASSWORD, "url": server.url()});
    std::fs::write(dir.path().join("credentials.json"), creds.to_string()).unwrap();
    std::fs::write(dir.path().join("channels.json"), spec.channels_json()).unwrap();
    let report = dir.path().join("report.json");

    let started = Instant::now();
    let cwd = dir.path().to_owned();
    let (binary2, report2, c) = (binary.clone(), report.clone(), concurrency.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(binary2)
            .args(sync_run::QUICK_SYNC)
            .args(["--concurrency", &c])
            .arg("--report")
            .arg(report2)
            .current_dir(cwd)
            .output()
            .expect("run matterbak")
    })
    .await
    .expect("sync task");
    let secs = started.elapsed().as_secs_f64();
    let report: serde_json::Value = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("no report: {}", String::from_utf8_lossy(&out.stderr)));
    let failed = report["failures"].as_array().map_or(usize::MAX, Vec::len);
    let records = server.requests();
    let requests = records.len();
    let limited = records.iter().filter(|r| r.status == 429).count();
    let share = limited as f64 / requests.max(1) as f64;
    let floor = requests as f64 / f64::from(limit.per_sec);
    let ratio = secs / floor;
    println!(
        "| {}/s burst {} | {concurrency} | {requests} | {limited} ({:.2} %) | {failed} | {secs:.1} s | {floor:.1} s | {ratio:.3} |",
        limit.per_sec,
        limit.burst,
        share * 100.0
    );
    let met = out.status.code() == Some(0) && failed == 0 && share <= 0.02 && ratio <= 1.15;
    if !met {
        eprintln!(
            "target missed (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(1);
    }
}
