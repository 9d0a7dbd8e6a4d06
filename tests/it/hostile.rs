//! A hostile or broken server: names with path separators, `..`, control characters and
//! 10 kB length; a non-UTF-8 `Content-Disposition`; a file whose bytes differ in size from
//! its info; fields of unexpected types inside objects. The sync must not crash, the
//! archive must verify clean, and nothing may be written outside the target directories.
//! Secrets must not appear in any output, log, report or the catalog.

use crate::common;

use std::path::{Path, PathBuf};

use common::start_with;
use matterbak::mock::{NewFile, SAMPLE_PASSWORD, SAMPLE_TOKEN, Workspace, sample_png};

fn file(name: impl Into<String>, bytes: &[u8]) -> NewFile {
    NewFile {
        name: name.into(),
        bytes: bytes.to_vec(),
        mime_type: "application/octet-stream".into(),
    }
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    common::outcome(&common::matterbak_in(dir).args(args).output().unwrap())
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        assert!(
            !kind.is_symlink(),
            "symlink written: {}",
            entry.path().display()
        );
        if kind.is_dir() {
            all_files(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

fn hostile_workspace() -> (Workspace, String, String) {
    let mut ws = Workspace::sample();
    let long = "x".repeat(10_000);
    let channel = ws.create_channel(
        "eng",
        "../../escape",
        &format!("a/b\\c\u{7}..{long}"),
        'O',
        &["alice", "bob"],
    );
    let post = ws.create_post_with_files(
        &channel,
        "bob",
        "hostile attachments",
        None,
        vec![
            file("../../../outside.txt", b"one"),
            file(format!("ctl\u{1}\u{7f}\n/..\\{long}.bin"), b"two"),
            file("..", b"three"),
            file("short.bin", b"four"),
            file("latin1.bin", b"five"),
        ],
    );
    let ids = ws.post_file_ids(&post);
    // Bytes that disagree with the file info's size (4 bytes announced).
    ws.replace_file_bytes(&ids[3], vec![7u8; 5000]);
    // A Content-Disposition that is not UTF-8 (Latin-1 "é") and tries to climb out.
    ws.set_file_disposition(&ids[4], b"attachment; filename=\"../caf\xe9.bin\"".to_vec());
    ws.set_user_field("bob", "nickname", serde_json::json!("../\u{0}nick"));
    ws.set_user_field(
        "bob",
        "props.weird",
        serde_json::json!([1, {"a": null}, "x", true, 1.5e300]),
    );
    ws.add_emoji("..", "alice", sample_png("emoji-dots"), "png");
    ws.add_emoji("a/../../b", "alice", sample_png("emoji-slash"), "png");
    let short = ids[3].clone();
    (ws, channel, short)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_server_data_neither_crashes_nor_escapes_nor_leaks() {
    let (ws, channel, short_file) = hostile_workspace();
    let env = start_with(ws).await;
    let dir = env.dir.path();
    // Readable by others on purpose: the sync must warn about it.
    common::write_inputs(dir, &env.server.url(), 0o644);

    let (code, stdout, stderr) = run(
        dir,
        &[
            "backup",
            "--rate-limit",
            "0",
            "--archive",
            "archive",
            "--report",
            "report.json",
            "-d",
            "data",
            "-o",
            "out.zip",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    #[cfg(unix)]
    assert!(stderr.contains("can be read by other users"), "{stderr}");
    let (code, verify_out, verify_err) =
        run(dir, &["verify", "--read-data", "--archive", "archive"]);
    assert_eq!(code, 0, "{verify_out}{verify_err}");

    // The hostile channel and its files are archived, the short file with the bytes served.
    let catalog = env_catalog(&dir.join("archive"));
    let blob = common::rows(
        &catalog,
        &format!(
            "SELECT f.size, b.size FROM files f JOIN blobs b ON b.hash = f.blob WHERE f.id = '{short_file}'"
        ),
    );
    assert_eq!(blob, ["4|5000"], "file info kept as sent, blob as served");
    assert_eq!(
        common::count(
            &catalog,
            &format!(
                "SELECT count(*) FROM files WHERE channel_id = '{channel}' AND blob IS NOT NULL"
            )
        ),
        5
    );
    drop(catalog);

    // Nothing outside the directories we named.
    let mut top: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [
            "archive",
            "channels.json",
            "credentials.json",
            "data",
            "out.zip",
            "report.json"
        ]
    );
    assert!(!dir.parent().unwrap().join("outside.txt").exists());
    let mut files = Vec::new();
    all_files(&dir.join("data"), &mut files);
    let data = dir.join("data").canonicalize().unwrap();
    for path in &files {
        assert!(
            path.canonicalize().unwrap().starts_with(&data),
            "{}",
            path.display()
        );
        for component in path.strip_prefix(dir).unwrap().components() {
            let name = component.as_os_str().to_string_lossy();
            assert!(name.len() <= 255, "component too long: {}", name.len());
            assert!(
                !name.chars().any(|c| c.is_control()),
                "control char in {name:?}"
            );
        }
    }
    let mut zip = zip::ZipArchive::new(std::fs::File::open(dir.join("out.zip")).unwrap()).unwrap();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).unwrap();
        assert!(
            entry.enclosed_name().is_some() && !entry.name().contains('\\'),
            "zip entry climbs out: {:?}",
            entry.name()
        );
    }

    // A second sync with a personal access token (from the file), for the secret check.
    let creds =
        serde_json::json!({"user": "alice", "token": SAMPLE_TOKEN, "url": env.server.url()});
    std::fs::write(dir.join("credentials.json"), creds.to_string()).unwrap();
    let (code, token_out, token_err) = run(
        dir,
        &[
            "sync",
            "--rate-limit",
            "0",
            "--archive",
            "archive",
            "--report",
            "report.json",
        ],
    );
    assert_eq!(code, 0, "{token_err}");

    // No secret anywhere: outputs, report, catalog (with its WAL), every archive file.
    let mut everything = vec![stdout, stderr, verify_out, verify_err, token_out, token_err];
    everything.push(std::fs::read_to_string(dir.join("report.json")).unwrap());
    let mut archive_files = Vec::new();
    all_files(&dir.join("archive"), &mut archive_files);
    all_files(&dir.join("data"), &mut archive_files);
    for path in archive_files.iter().chain([&dir.join("out.zip")]) {
        everything.push(String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned());
    }
    for text in &everything {
        assert!(
            !text.contains(SAMPLE_PASSWORD),
            "password found in output or archive"
        );
        assert!(
            !text.contains(SAMPLE_TOKEN),
            "token found in output or archive"
        );
    }
}

fn env_catalog(archive: &Path) -> matterbak::catalog::Catalog {
    matterbak::catalog::Catalog::open(
        &archive.join("catalog.sqlite"),
        matterbak::catalog::Access::ReadOnly,
    )
    .unwrap()
}

/// Fields of unexpected types (a number sent as text, null where a number belongs) cost
/// nothing: the users are archived with the server's bytes as they came, even the one whose
/// `users/me` answer carries them, and the run is ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_of_unexpected_types_do_not_cost_the_object() {
    let mut ws = Workspace::sample();
    ws.set_user_raw_field("alice", "update_at", serde_json::Value::Null);
    ws.set_user_raw_field("bob", "last_picture_update", serde_json::json!("soon"));
    let env = start_with(ws).await;
    let report = env.sync().await;
    common::assert_complete(&report);
    let catalog = env.catalog();
    let bob = common::rows(&catalog, "SELECT json FROM users WHERE username = 'bob'");
    assert!(
        bob.len() == 1 && bob[0].contains(r#""last_picture_update":"soon""#),
        "{bob:?}"
    );
    let alice = common::rows(&catalog, "SELECT json FROM users WHERE username = 'alice'");
    assert!(
        alice.len() == 1 && alice[0].contains(r#""update_at":null"#),
        "{alice:?}"
    );
    let clean = common::start().await;
    clean.sync().await;
    let users = |c: &matterbak::catalog::Catalog| common::count(c, "SELECT count(*) FROM users");
    assert_eq!(users(&catalog), users(&clean.catalog()));
}
