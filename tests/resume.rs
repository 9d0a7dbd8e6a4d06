//! The real binary, killed mid-sync and resumed, ends with the same catalog as an
//! uninterrupted sync; a SIGTERM stops it after the current transaction.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{content_snapshot, rows, start};
use matterbak::catalog::{Access, Catalog};
use matterbak::mock::Faults;

fn write_inputs(dir: &Path, url: &str) {
    let creds = serde_json::json!({"user": "alice", "password": matterbak::mock::SAMPLE_PASSWORD, "url": url});
    std::fs::write(dir.join("credentials.json"), creds.to_string()).unwrap();
    std::fs::write(
        dir.join("channels.json"),
        matterbak::mock::SAMPLE_CHANNELS_JSON,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("credentials.json"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
}

fn spawn_sync(dir: &Path, archive: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(["sync", "--rate-limit", "0", "--quiet", "--archive"])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_syncs_resume_to_the_catalog_of_an_uninterrupted_one() {
    let env = start().await;
    write_inputs(env.dir.path(), &env.server.url());
    // Slow answers so the kills land inside the run: during walks, downloads and commits.
    env.server.set_faults(Faults {
        latency: Duration::from_millis(60),
        ..Faults::default()
    });

    // Reference: an uninterrupted sync, then a no-op sync (which also records posts that were
    // deleted before the first sync could see them, as every later sync does).
    let reference = env.dir.path().join("reference");
    for _ in 0..2 {
        let (code, err) = finish(spawn_sync(env.dir.path(), &reference));
        assert_eq!(code, 0, "{err}");
    }

    let archive = env.dir.path().join("killed");
    let mut kills = 0;
    for delay_ms in [120u64, 330, 520, 760, 990] {
        let mut child = spawn_sync(env.dir.path(), &archive);
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
        if archive.join("catalog.sqlite").exists() {
            let catalog =
                Catalog::open(&archive, Access::ReadOnly).expect("catalog readable after a kill");
            let check =
                matterbak::catalog::testing::query_strings(&catalog, "PRAGMA integrity_check");
            assert_eq!(check, ["ok"], "after kill at {delay_ms} ms");
        }
    }
    assert!(kills >= 3, "only {kills} kills landed inside a run");

    // Channels finished before the last kill are not walked again.
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

    let got = content_snapshot(&archive);
    let want = content_snapshot(&reference);
    for table in want.keys() {
        assert_eq!(
            got[table], want[table],
            "table {table} differs after {kills} kills"
        );
    }
    // No partial download survives as a blob or a temp file.
    assert_eq!(std::fs::read_dir(archive.join("tmp")).unwrap().count(), 0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_after_the_current_step_and_records_an_interrupted_run() {
    let env = start().await;
    write_inputs(env.dir.path(), &env.server.url());
    env.server.set_faults(Faults {
        latency: Duration::from_millis(25),
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
    let catalog = Catalog::open(&archive, Access::ReadOnly).unwrap();
    assert_eq!(
        rows(&catalog, "SELECT outcome FROM sync_runs"),
        ["interrupted"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_on_the_same_archive_is_refused_while_one_runs() {
    let env = start().await;
    write_inputs(env.dir.path(), &env.server.url());
    env.server.set_faults(Faults {
        latency: Duration::from_millis(25),
        ..Faults::default()
    });
    let archive = env.dir.path().join("archive");
    let first = spawn_sync(env.dir.path(), &archive);
    std::thread::sleep(Duration::from_millis(300));
    let (code, err) = finish(spawn_sync(env.dir.path(), &archive));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "names the running process: {err}"
    );
    let (code, err) = finish(first);
    assert_eq!(code, 0, "{err}");
}
