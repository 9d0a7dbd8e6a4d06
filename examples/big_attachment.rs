//! Peak memory of a sync that downloads one big attachment: serves the sample workspace plus
//! a post with a MB-sized file on loopback, runs the `matterbak` binary under
//! `/usr/bin/time`, and prints its maximum resident set size.
//!
//! usage: big_attachment MATTERBAK_BINARY SIZE_MB
//!
//! `BENCH_SYNC_ARGS` adds arguments to the sync (`--encrypt`); with `BENCH_KEEP_DIR` set the
//! sync runs there and the archive is kept (to measure `verify` and `export` of it after).
//! Prints the SHA-1 of the attachment's bytes (`sha1 <hex>`), for a script to compare an
//! exported copy with `sha1sum`.

use std::process::Command;

use matterbak::mock::{MockServer, NewFile, Workspace};

mod sync_run;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (binary, size_mb): (&str, usize) = match args.as_slice() {
        [_, binary, size] => (binary, size.parse().expect("SIZE_MB")),
        _ => {
            eprintln!("usage: big_attachment MATTERBAK_BINARY SIZE_MB");
            std::process::exit(2);
        }
    };
    let mut workspace = Workspace::sample();
    let dm = workspace.dm_channel_id("alice", "bob");
    let mut bytes = vec![0u8; size_mb << 20];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for chunk in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let sha1 = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(&bytes))
    };
    workspace.create_post_with_files(
        &dm,
        "bob",
        "a big one",
        None,
        vec![NewFile {
            name: "big.bin".into(),
            bytes,
            mime_type: "application/octet-stream".into(),
        }],
    );
    let server = MockServer::start(workspace).await.expect("mock starts");
    let temp = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("BENCH_KEEP_DIR").map(std::path::PathBuf::from);
    let dir_path = kept.unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir_path).expect("BENCH_KEEP_DIR");
    let extra: Vec<String> = std::env::var("BENCH_SYNC_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let creds = serde_json::json!({"user": "alice", "password": matterbak::mock::SAMPLE_PASSWORD, "url": server.url()});
    std::fs::write(dir_path.join("credentials.json"), creds.to_string()).unwrap();
    std::fs::write(
        dir_path.join("channels.json"),
        matterbak::mock::SAMPLE_CHANNELS_JSON,
    )
    .unwrap();
    let binary = std::fs::canonicalize(binary).expect("binary path");
    let cwd = dir_path.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/time")
            .args(["-f", "%e %M"])
            .arg(&binary)
            .args(sync_run::QUICK_SYNC)
            .args(&extra)
            .current_dir(&cwd)
            .output()
            .expect("run /usr/bin/time")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let figures = sync_run::time_figures(&stderr);
    let figure = |i: usize| figures.get(i).copied().unwrap_or(0.0);
    let (secs, kb) = (figure(0), figure(1) as u64);
    assert!(out.status.success(), "sync failed: {stderr}");
    println!(
        "attachment {size_mb} MB: sync took {secs:.1} s, peak RSS {} MB",
        kb / 1024
    );
    println!("sha1 {sha1}");
    server.shutdown().await;
}
