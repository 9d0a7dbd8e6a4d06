//! Export: deterministic bytes, hostile names contained, local time zone, no network.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::start;
use matterbak::export::{PyLayoutOptions, export_pylayout};
use matterbak::mock::NewFile;

fn tree(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.push((rel, None));
                stack.push(path);
            } else {
                out.push((rel, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    out.sort();
    out
}

fn export_bin(archive: &Path, data: &Path, zip: &Path, tz: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .env("TZ", tz)
        .args(["export", "--archive"])
        .arg(archive)
        .arg("-d")
        .arg(data)
        .arg("-o")
        .arg(zip)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_deterministic_offline_and_complete() {
    let env = start().await;
    env.sync().await;
    env.server.with_workspace(|w| {
        let off = w.channel_id("eng", "off-topic");
        let first = w.post_ids(&off)[0].clone();
        w.delete_post(&first);
    });
    env.sync().await;
    // Export needs no server.
    let env_dir = env.dir.path().to_path_buf();
    let archive = env.archive.clone();
    env.server.shutdown().await;

    let run = |n: u32| -> (PathBuf, PathBuf) {
        let data = env_dir.join(format!("data{n}"));
        let zip = env_dir.join(format!("out{n}.zip"));
        let out = export_bin(&archive, &data, &zip, "UTC");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (data, zip)
    };
    let (d1, z1) = run(1);
    let (d2, z2) = run(2);
    assert_eq!(tree(&d1), tree(&d2), "same files, same bytes");
    assert_eq!(
        std::fs::read(&z1).unwrap(),
        std::fs::read(&z2).unwrap(),
        "same zip bytes"
    );

    // The zip holds exactly the data dir.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&z1).unwrap()).unwrap();
    let mut members: Vec<String> = (0..zip.len())
        .map(|i| {
            zip.by_index(i)
                .unwrap()
                .name()
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    members.sort();
    let mut paths: Vec<String> = tree(&d1).into_iter().map(|(p, _)| p).collect();
    paths.sort();
    assert_eq!(members, paths);

    // Python-style JSON: ", " and ": " separators, ASCII only, no trailing newline.
    let users = d1.join("users");
    let bob = std::fs::read_dir(&users)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("__bob.json"))
        .unwrap();
    let text = std::fs::read_to_string(bob).unwrap();
    assert!(text.starts_with("{\"id\": \""), "{text}");
    assert!(text.is_ascii() && !text.ends_with('\n'));
    assert!(text.contains("\\u003c") || text.contains("<b>"), "{text}");

    // A deleted post is exported with the last content the archive holds.
    let (rel, _) = tree(&d1)
        .into_iter()
        .find(|(p, bytes)| bytes.is_none() && p.ends_with("__off-topic"))
        .unwrap();
    let deleted_dir = d1.join(rel);
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(&deleted_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let post: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            messages.push(post["message"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        !messages.is_empty() && messages.iter().all(|m| !m.is_empty()),
        "{messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_file_names_follow_the_local_time_zone() {
    let env = start().await;
    env.sync().await;
    let (utc, tokyo) = (env.dir.path().join("utc"), env.dir.path().join("tokyo"));
    assert!(
        export_bin(&env.archive, &utc, &env.dir.path().join("a.zip"), "UTC")
            .status
            .success()
    );
    assert!(
        export_bin(
            &env.archive,
            &tokyo,
            &env.dir.path().join("b.zip"),
            "Asia/Tokyo"
        )
        .status
        .success()
    );
    let names = |root: &Path| -> Vec<String> {
        tree(root)
            .into_iter()
            .filter_map(|(p, _)| p.rsplit('/').next().map(str::to_owned))
            .filter(|n| n.starts_with("2023"))
            .collect()
    };
    let (u, t) = (names(&utc), names(&tokyo));
    assert_eq!(u.len(), t.len());
    // Same post ids, times nine hours apart.
    let first_utc = u.iter().min().unwrap();
    let id = first_utc.split("__").nth(1).unwrap();
    let in_tokyo = t.iter().find(|n| n.ends_with(id)).unwrap();
    let hour = |n: &str| n[9..11].parse::<u32>().unwrap();
    assert_eq!(
        (hour(first_utc) + 9) % 24,
        hour(in_tokyo),
        "{first_utc} vs {in_tokyo}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_never_leave_the_data_dir() {
    let env = start().await;
    env.server.with_workspace(|w| {
        let evil = w.create_channel(
            "eng",
            "../../escape",
            "Evil/../Channel",
            'O',
            &["alice", "bob"],
        );
        let files = vec![
            NewFile {
                name: "../../../etc/passwd".into(),
                bytes: b"not really".to_vec(),
                mime_type: "text/plain".into(),
            },
            NewFile {
                name: "a/b\\c\u{0}d\nnewline.txt".into(),
                bytes: b"odd".to_vec(),
                mime_type: "text/plain".into(),
            },
            NewFile {
                name: "..".into(),
                bytes: b"dots".to_vec(),
                mime_type: "text/plain".into(),
            },
            NewFile {
                name: "x".repeat(10_000),
                bytes: b"long".to_vec(),
                mime_type: "text/plain".into(),
            },
        ];
        w.create_post_with_files(&evil, "bob", "hostile files", None, files);
        w.add_emoji("../../emoji", "bob", b"GIF89a".to_vec(), "gif");
    });
    env.sync().await;
    let sandbox = env.dir.path().join("sandbox");
    std::fs::create_dir(&sandbox).unwrap(); // the zip's folder must exist (`-o` never creates one)
    let data = sandbox.join("data");
    let out = export_bin(&env.archive, &data, &sandbox.join("out.zip"), "UTC");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was written beside data/ and the zip.
    let mut top: Vec<String> = std::fs::read_dir(&sandbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["data", "out.zip"]);
    assert!(!env.dir.path().join("escape").exists() && !env.dir.path().join("etc").exists());
    let entries = tree(&data);
    for (path, _) in &entries {
        assert!(
            !path.split('/').any(|c| c == ".." || c.is_empty()),
            "{path}"
        );
        assert!(path.split('/').all(|c| c.len() <= 255), "{path}");
    }
    // Each hostile file is its own entry, with the documented replacements.
    let names: Vec<&str> = entries
        .iter()
        .filter_map(|(p, _)| p.rsplit('/').next())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("__.._.._.._etc_passwd")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("__a_b_c_d_newline.txt")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("____")),
        "'..' becomes '__': {names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("__.._.._escape")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("__.._.._emoji")),
        "{names:?}"
    );
    // The 10 kB name is cut to fit one path component, with a hash keeping it distinct.
    let long: Vec<&&str> = names.iter().filter(|n| n.contains("xxxxxxxx")).collect();
    assert_eq!(long.len(), 1, "{long:?}");
    assert!(long[0].len() <= 255 && long[0].contains('~'), "{long:?}");
}

#[test]
fn export_of_a_missing_archive_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = matterbak::archive::Archive::at(dir.path().join("nope"))
        .open_read(None)
        .and_then(|archive| {
            export_pylayout(
                &archive,
                &dir.path().join("data"),
                None,
                &PyLayoutOptions::default(),
            )
            .map_err(|e| panic!("{e}"))
        })
        .err()
        .unwrap();
    assert!(err.to_string().contains("no archive at"), "{err}");
    assert!(
        !dir.path().join("data").exists()
            || std::fs::read_dir(dir.path().join("data")).unwrap().count() == 0
    );
}
