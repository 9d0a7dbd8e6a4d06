//! `matterbak verify` finds each kind of damage (corrupt blob, missing blob, truncated catalog,
//! a row pointing at a temp file), lists orphans without calling them damage, and marks
//! damaged blobs so that the next sync fetches them again and the archive ends as it was.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{assert_same_content, content_snapshot, rows, start};

fn verify(archive: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .arg("verify")
        .arg("--archive")
        .arg(archive)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// A blob of an attachment: (hash, size, file id).
fn some_file_blob(archive: &Path) -> (String, i64, String) {
    let catalog = matterbak::catalog::Catalog::open(
        &archive.join("catalog.sqlite"),
        matterbak::catalog::Access::ReadOnly,
    )
    .unwrap();
    let row = rows(
        &catalog,
        "SELECT b.hash, b.size, f.id FROM files f JOIN blobs b ON b.hash = f.blob ORDER BY b.size DESC, f.id LIMIT 1",
    );
    let parts: Vec<&str> = row[0].split('|').collect();
    (
        parts[0].to_owned(),
        parts[1].parse().unwrap(),
        parts[2].to_owned(),
    )
}

fn blob_path(archive: &Path, hash: &str) -> std::path::PathBuf {
    archive
        .join("blobs")
        .join(&hash[0..2])
        .join(&hash[2..4])
        .join(hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_archive_verifies_clean_with_read_data() {
    let env = start().await;
    env.sync().await;
    let (code, out) = verify(&env.archive, &["--read-data"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 damaged"), "{out}");
    assert!(out.contains("no damage found"), "{out}");
    let (code, out) = verify(&env.archive, &["--read-data-subset", "50"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify(&env.archive, &["--read-data-subset", "0"]);
    assert_eq!(code, 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_is_found_by_read_data_and_fetched_again() {
    let env = start().await;
    // A second, no-op sync records what every later sync records (see tests/it/resume.rs).
    env.sync().await;
    env.sync().await;
    let before = content_snapshot(&env.archive);
    let (hash, _, file_id) = some_file_blob(&env.archive);
    let path = blob_path(&env.archive, &hash);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff; // same size, other content: only re-hashing sees it
    std::fs::write(&path, &bytes).unwrap();

    let (code, out) = verify(&env.archive, &[]);
    assert_eq!(code, 0, "sizes alone cannot see it: {out}");
    let (code, out) = verify(&env.archive, &["--read-data"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("damage: blob {hash} is corrupt")),
        "{out}"
    );
    assert!(
        out.contains("marked 1 item(s) to be fetched again"),
        "{out}"
    );
    assert!(env.archive.join("damaged").join(&hash).is_file());
    assert_eq!(
        rows(
            &env.catalog(),
            &format!("SELECT blob IS NULL FROM files WHERE id = '{file_id}'")
        ),
        ["1"]
    );

    let report = env.sync().await;
    assert_eq!(report.summary.files_fetched, 1, "{report:?}");
    let (code, out) = verify(&env.archive, &["--read-data"]);
    assert_eq!(code, 0, "{out}");
    assert_same_content(&content_snapshot(&env.archive), &before, "after re-fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blobs_of_every_kind_are_found_and_fetched_again() {
    let env = start().await;
    // A second, no-op sync records what every later sync records (see tests/it/resume.rs).
    env.sync().await;
    env.sync().await;
    let before = content_snapshot(&env.archive);
    // One attachment, one profile picture, one emoji image, one team icon (if any).
    let catalog = env.catalog();
    let mut victims = rows(
        &catalog,
        "SELECT blob FROM (SELECT blob FROM files WHERE blob IS NOT NULL ORDER BY id LIMIT 1)
         UNION SELECT avatar_blob FROM (SELECT avatar_blob FROM users WHERE avatar_blob IS NOT NULL ORDER BY id LIMIT 1)
         UNION SELECT image_blob FROM (SELECT image_blob FROM emojis WHERE image_blob IS NOT NULL ORDER BY id LIMIT 1)
         UNION SELECT icon_blob FROM (SELECT icon_blob FROM teams WHERE icon_blob IS NOT NULL ORDER BY id LIMIT 1)",
    );
    drop(catalog);
    victims.sort();
    victims.dedup();
    assert!(victims.len() >= 3, "{victims:?}");
    for hash in &victims {
        std::fs::remove_file(blob_path(&env.archive, hash)).unwrap();
    }
    let (code, out) = verify(&env.archive, &[]);
    assert_eq!(code, 1, "{out}");
    for hash in &victims {
        assert!(
            out.contains(&format!("damage: blob {hash} is missing")),
            "{out}"
        );
    }
    env.sync().await;
    let (code, out) = verify(&env.archive, &["--read-data"]);
    assert_eq!(code, 0, "{out}");
    assert_same_content(&content_snapshot(&env.archive), &before, "after re-fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_catalog_is_damage() {
    let env = start().await;
    env.sync().await;
    let catalog = env.archive.join("catalog.sqlite");
    assert!(
        !env.archive.join("catalog.sqlite-wal").exists()
            || std::fs::metadata(env.archive.join("catalog.sqlite-wal"))
                .unwrap()
                .len()
                == 0,
        "the closed catalog was checkpointed"
    );
    let len = std::fs::metadata(&catalog).unwrap().len();
    // Cut off the last pages, and half of the one before.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&catalog)
        .unwrap();
    file.set_len(len - 4096 * 3 - 2048).unwrap();
    drop(file);
    let (code, out) = verify(&env.archive, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("damage: catalog"), "{out}");
    assert!(out.contains("the catalog itself is damaged"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_and_temp_files_are_listed_but_not_damage() {
    let env = start().await;
    env.sync().await;
    let hash = blake3::hash(b"nobody points at me").to_hex().to_string();
    let orphan = blob_path(&env.archive, &hash);
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"nobody points at me").unwrap();
    std::fs::write(env.archive.join("tmp/1-2-deadbeef.part"), b"half").unwrap();
    let (code, out) = verify(&env.archive, &["--read-data"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("notice: orphan blob {}", orphan.display())),
        "{out}"
    );
    assert!(
        out.contains("1-2-deadbeef.part of an interrupted download"),
        "{out}"
    );
    assert!(out.contains("0 damaged, 2 notice(s)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_pointing_at_a_temp_file_is_damage_and_fetched_again() {
    let env = start().await;
    // A second, no-op sync records what every later sync records (see tests/it/resume.rs).
    env.sync().await;
    env.sync().await;
    let before = content_snapshot(&env.archive);
    let (hash, _, file_id) = some_file_blob(&env.archive);
    {
        let conn = rusqlite::Connection::open(env.archive.join("catalog.sqlite")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn.execute(
            "UPDATE files SET blob = 'tmp/123-0-deadbeef.part' WHERE id = ?1",
            [&file_id],
        )
        .unwrap();
    }
    let (code, out) = verify(&env.archive, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "damage: files {file_id} points at \"tmp/123-0-deadbeef.part\", which is not a blob hash"
        )),
        "{out}"
    );
    assert!(out.contains("marked 1 item(s)"), "{out}");
    // The blob itself was fine and is now an orphan until the next sync uses it again.
    let (code, out) = verify(&env.archive, &[]);
    assert_eq!(code, 0, "{out}");
    env.sync().await;
    let (code, out) = verify(&env.archive, &["--read-data"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("orphan"), "{out}");
    assert_same_content(&content_snapshot(&env.archive), &before, "after re-fetch");
    let _ = hash;
}
