//! `matterbak import` against the real binary: our own `export` output stands in for an old
//! Python matterbak backup (the same layout, file for file; the conformance script does the
//! same with the real Python tool). Round trip, merge with a later sync, idempotence, order
//! independence, and damaged input.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_same_content, content_snapshot, count, rows, start};
use matterbak::catalog::{Access, Catalog};

fn bin(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .env("TZ", "UTC")
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Exports an archive into `<dir>/<name>` and `<dir>/<name>.zip`.
fn export(archive: &Path, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (data, zip) = (dir.join(name), dir.join(format!("{name}.zip")));
    let out = bin(
        &["export", "--archive"],
        &[archive, Path::new("-d"), &data, Path::new("-o"), &zip],
    );
    assert!(out.status.success(), "{}", text(&out));
    (data, zip)
}

fn import(archive: &Path, backups: &[&Path]) -> Output {
    let mut paths = vec![archive];
    paths.extend_from_slice(backups);
    bin(&["import", "--archive"], &paths)
}

/// Every file under `root` with its bytes, by relative path.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn catalog(archive: &Path) -> Catalog {
    Catalog::open(&archive.join("catalog.sqlite"), Access::ReadOnly).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_imported_into_an_empty_archive_exports_file_for_file() {
    let env = start().await;
    env.sync().await;
    let dir = env.dir.path();
    let (data, zip) = export(&env.archive, dir, "backup");
    let posts = count(
        &env.catalog(),
        "SELECT count(*) FROM posts WHERE seen_live = 1",
    );

    for (name, backup) in [("from-dir", &data), ("from-zip", &zip)] {
        let archive = dir.join(format!("{name}-archive"));
        let out = import(&archive, &[backup]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let (again, _) = export(&archive, dir, &format!("{name}-export"));
        let (want, got) = (tree(&data), tree(&again));
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "{name}: same files");
        for ((path, a), (_, b)) in want.iter().zip(&got) {
            assert!(a == b, "{name}: {path} differs after the round trip");
        }
        // Every post exists only thanks to the import, and the run is recorded as one.
        let c = catalog(&archive);
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM posts WHERE imported_from IS NOT NULL"
            ),
            posts
        );
        let source = backup.display().to_string();
        assert_eq!(
            rows(&c, "SELECT source, outcome, posts_written FROM sync_runs"),
            [format!("{source}|ok|{posts}")]
        );
        // Search finds imported posts like synced ones.
        let search = bin(
            &["search", "--json", "--archive"],
            &[&archive, Path::new("lunch")],
        );
        let hits: serde_json::Value = serde_json::from_slice(&search.stdout).unwrap();
        assert!(!hits.as_array().unwrap().is_empty(), "{}", text(&search));
        let stats = bin(&["stats", "--archive"], &[&archive]);
        let stdout = String::from_utf8_lossy(&stats.stdout);
        assert!(
            stdout.contains(&format!("posts only from imported backups: {posts}")),
            "{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_backup_brings_back_deleted_posts_and_earlier_versions() {
    let env = start().await;
    env.sync().await;
    let dir = env.dir.path().to_path_buf();
    let (old_backup, old_zip) = export(&env.archive, &dir, "old");

    // On the server: a post deleted, one edited, a channel archived.
    let (deleted, edited, archived) = env.server.with_workspace(|w| {
        let off = w.channel_id("eng", "off-topic");
        let deleted = w.post_ids(&off)[0].clone();
        let edited = w.post_ids(&w.channel_id("eng", "dev"))[0].clone();
        w.delete_post(&deleted);
        w.edit_post(&edited, "edited after the backup");
        let archived = w.channel_id("eng", "town-square");
        w.archive_channel(&archived);
        (deleted, edited, archived)
    });
    let c = env.catalog();
    let old_message = rows(
        &c,
        &format!("SELECT message FROM posts WHERE id = '{edited}'"),
    );
    let deleted_message = rows(
        &c,
        &format!("SELECT message FROM posts WHERE id = '{deleted}'"),
    );
    drop(c);

    // A new archive that never saw the deleted post, then the old backup.
    let mut options = env.options();
    options.archive = dir.join("later");
    env.sync_with(options.clone()).await;
    let later = &options.archive;
    let c = catalog(later);
    assert!(rows(&c, &format!("SELECT 1 FROM posts WHERE id = '{deleted}'")).is_empty());
    let ids = "SELECT id FROM posts ORDER BY id";
    let gone: Vec<String> = rows(&env.catalog(), ids)
        .into_iter()
        .filter(|id| !rows(&c, ids).contains(id))
        .collect();
    assert!(gone.contains(&deleted), "{gone:?}"); // with its replies
    drop(c);
    let out = import(later, &[&old_backup]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let c = catalog(later);
    // The deleted post is back, with its content, marked deleted and imported.
    let back = rows(
        &c,
        &format!(
            "SELECT message, delete_at > 0, seen_live, imported_from FROM posts WHERE id = '{deleted}'"
        ),
    );
    assert_eq!(back.len(), 1, "{back:?}");
    let fields: Vec<&str> = back[0].split('|').collect();
    assert_eq!(fields[..3], [deleted_message[0].as_str(), "1", "1"]);
    assert!(
        fields[3].starts_with(&old_backup.display().to_string())
            && fields[3].ends_with(&format!("__{deleted}.json")),
        "{fields:?}"
    );
    // The edit keeps both versions: the new one current, the old one in the history.
    assert_eq!(
        rows(
            &c,
            &format!("SELECT message, imported_from IS NULL FROM posts WHERE id = '{edited}'")
        ),
        ["edited after the backup|1"]
    );
    assert_eq!(
        rows(
            &c,
            &format!("SELECT message FROM post_versions WHERE post_id = '{edited}'")
        ),
        old_message
    );
    // The archived channel stays archived (the server's newer version wins).
    assert_eq!(
        count(
            &c,
            &format!("SELECT delete_at > 0 FROM channels WHERE id = '{archived}'")
        ),
        1
    );
    let imported =
        "SELECT id FROM posts WHERE imported_from IS NOT NULL AND delete_at > 0 ORDER BY id";
    assert_eq!(rows(&c, imported), gone);
    let imported = "SELECT count(*) FROM posts WHERE imported_from IS NOT NULL";
    assert_eq!(count(&c, imported), gone.len() as i64);
    drop(c);

    // Importing again, or the zip of the same backup, changes nothing.
    let before = content_snapshot(later);
    for again in [&old_backup, &old_zip] {
        let out = import(later, &[again]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_same_content(&content_snapshot(later), &before, "second import");
    }

    // Export shows the union: the deleted post and the edited post's newest text.
    let (union, _) = export(later, &dir, "union");
    let files = tree(&union);
    assert!(
        files
            .iter()
            .any(|(p, _)| p.ends_with(&format!("__{deleted}.json")))
    );
    let (_, edited_json) = files
        .iter()
        .find(|(p, _)| p.ends_with(&format!("__{edited}.json")))
        .unwrap();
    assert!(String::from_utf8_lossy(edited_json).contains("edited after the backup"));

    // Two backups (before and after the changes), in either order, give the same archive.
    let (new_backup, _) = export(later, &dir, "new");
    let mut snapshots = Vec::new();
    for (name, order) in [
        ("ab", [&old_backup, &new_backup]),
        ("ba", [&new_backup, &old_backup]),
    ] {
        let archive = dir.join(name);
        let out = import(&archive, &[order[0], order[1]]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let mut snapshot = content_snapshot(&archive);
        let provenance = "SELECT id, imported_from FROM posts ORDER BY id";
        snapshot.insert("imported_from", rows(&catalog(&archive), provenance));
        snapshots.push(snapshot);
    }
    assert_same_content(&snapshots[0], &snapshots[1], "backups in either order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_backups_fail_items_and_foreign_paths_are_refused() {
    let env = start().await;
    env.sync().await;
    let dir = env.dir.path().to_path_buf();
    let (backup, _) = export(&env.archive, &dir, "backup");
    let posts = count(
        &env.catalog(),
        "SELECT count(*) FROM posts WHERE seen_live = 1",
    );

    // A post file cut off mid-write: that item fails, naming its path; the rest is imported.
    let (victim, bytes) = tree(&backup)
        .into_iter()
        .find(|(p, _)| p.contains("__off-topic/") && p.ends_with(".json") && !p.contains("/files/"))
        .unwrap();
    std::fs::write(backup.join(&victim), &bytes[..bytes.len() / 2]).unwrap();
    // A threads file of a matterbak before 0.4 (a list of lists) is recognised, not failed.
    let (threads, _) = tree(&backup)
        .into_iter()
        .find(|(p, _)| p.ends_with("__threads.json"))
        .unwrap();
    std::fs::write(backup.join(&threads), r#"[["a", "b"]]"#).unwrap();
    // An attachment cut off mid-write: a failed item, its bytes not taken.
    let (attachment, bytes) = tree(&backup)
        .into_iter()
        .find(|(p, _)| p.contains("/files/") && !p.ends_with(".json"))
        .unwrap();
    std::fs::write(backup.join(&attachment), &bytes[..bytes.len() / 2]).unwrap();
    let archive = dir.join("damaged");
    let out = import(&archive, &[&backup]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "failed: {}: {victim}: invalid JSON",
            backup.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "note: {}: {threads}: threads file of a matterbak older than 0.4",
            backup.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "failed: {}: {attachment}: {} bytes, but its file info says {}: truncated or damaged",
            backup.display(),
            bytes.len() / 2,
            bytes.len()
        )),
        "{stderr}"
    );
    let c = catalog(&archive);
    assert_eq!(count(&c, "SELECT count(*) FROM posts"), posts - 1);
    assert_eq!(
        rows(&c, "SELECT outcome, failures FROM sync_runs"),
        ["partial|2"]
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM files WHERE blob IS NULL"),
        1
    );
    drop(c);

    // Paths that are no backup at all: exit 2, the archive byte for byte unchanged (or,
    // for a new archive, not even created).
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(foreign.join("teams")).unwrap();
    std::fs::write(foreign.join("notes.txt"), "hello").unwrap();
    let not_zip = dir.join("broken.zip");
    std::fs::write(&not_zip, b"PK\x03\x04 this is no zip").unwrap();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let cases: [(&Path, &str); 5] = [
        (
            &foreign,
            "is not a matterbak backup: it holds \"notes.txt\"",
        ),
        (&not_zip, "cannot read zip"),
        (
            &env.archive,
            "is not a matterbak backup: it holds \"blobs\"",
        ),
        (&empty, "is not a matterbak backup: it holds no files"),
        (&dir.join("missing"), "cannot read backup"),
    ];
    let before = tree(&archive);
    for (path, message) in cases {
        // Alone, and after a good backup: nothing is written either way.
        for paths in [vec![path], vec![backup.as_path(), path]] {
            let out = import(&archive, &paths);
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&path.display().to_string()) && stderr.contains(message),
                "{stderr}"
            );
            assert!(
                tree(&archive) == before,
                "{}: archive changed",
                path.display()
            );
            let fresh = dir.join("never-created");
            let out = import(&fresh, &paths);
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            assert!(
                !fresh.exists(),
                "{}: a new archive was created",
                path.display()
            );
        }
    }
}

/// Short and truncated zips (issue 24 §5: `matterbak import empty.zip` panicked on 0-3 bytes
/// and on 4-21 bytes starting `PK\5\6`): each is a clear error naming the file, exit 2, no
/// panic, and no archive is created.
#[test]
fn short_and_truncated_zips_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A real one-entry zip from another writer (the `zip` crate), to cut.
    let whole = {
        use std::io::Write;
        let mut bytes = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut bytes);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("users/u1.json", stored).unwrap();
        zip.write_all(b"{\"id\": \"u1\"}").unwrap();
        zip.finish().unwrap();
        bytes.into_inner()
    };
    let eocd = |tail: &[u8]| [b"PK\x05\x06".as_slice(), tail].concat();
    let short = "shorter than a zip's end of central directory record (22 bytes)";
    // A ZIP64 locator pointing at offset 1000 of a 42-byte file, then an end record.
    let mut zip64 = b"PK\x06\x07\0\0\0\0".to_vec();
    zip64.extend_from_slice(&1000u64.to_le_bytes());
    zip64.extend_from_slice(&1u32.to_le_bytes());
    zip64.extend_from_slice(&eocd(&[0; 18]));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], short),
        ("one byte", b"P".to_vec(), short),
        ("three bytes", b"PK\x05".to_vec(), short),
        ("a bare end signature", eocd(&[]), short),
        ("an end record cut by one byte", eocd(&[0; 17]), short),
        ("21 bytes of something else", vec![b'x'; 21], short),
        (
            "an empty zip (a whole end record)",
            eocd(&[0; 18]),
            "is not a matterbak backup: it holds no files",
        ),
        (
            "a zip cut inside its end record",
            whole[..whole.len() - 5].to_vec(),
            "no end of central directory record: not a zip, or truncated",
        ),
        (
            "a zip's end record alone",
            whole[whole.len() - 22..].to_vec(),
            "central directory outside the file: truncated or damaged",
        ),
        (
            "a ZIP64 locator pointing outside the file",
            zip64,
            "ZIP64 end record outside the file: truncated",
        ),
    ];
    for (what, bytes, message) in cases {
        let path = dir.path().join("backup.zip");
        std::fs::write(&path, &bytes).unwrap();
        let archive = dir.path().join("archive");
        let out = import(&archive, &[&path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{what}: {}", text(&out));
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
        assert!(
            stderr.contains(&format!("cannot read zip {}", path.display()))
                || stderr.contains(&format!("{} is not a matterbak backup", path.display())),
            "{what}: {}",
            text(&out)
        );
        assert!(stderr.contains(message), "{what}: {}", text(&out));
        assert!(!archive.exists(), "{what}: an archive was created");
    }
}
