//! `export --format markdown|hgf` through the binary, on an archive synced from the mock:
//! what the full flavor adds over `matterexport` (edits with earlier versions, deletions,
//! system and bot posts, pins, missing attachments, grouped reactions, zones, escaping), a
//! Markdown structure no message can break (checked with comrak), the HGF zip with its
//! skipped attachments, and the `-c` lookup and its errors. Byte parity of `--flavor py`
//! with the Python tool is `tests/conformance/markdown.sh`.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::start;
use comrak::nodes::{AstNode, NodeValue};
use comrak::{Arena, Options, parse_document};
use serde_json::{Map, Value, json};

fn export(archive: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .env("TZ", "Europe/Berlin")
        .args(["export", "--archive"])
        .arg(archive)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const HOSTILE: &str = "# not a heading\n\n<div>\n\n```\nan unclosed fence";

/// Syncs the sample after giving off-topic one post of every kind the sample lacks.
async fn prepared() -> (common::Env, Vec<String>) {
    let env = start().await;
    let ids = env.server.with_workspace(|w| {
        let off = w.channel_id("eng", "off-topic");
        let hostile = w.create_post(&off, "bob", HOSTILE, None);
        let after = w.create_post(&off, "carol", "after the hostile one", None);
        let edited = w.create_post(&off, "alice", "first words", None);
        let join = w.create_post(&off, "dave", "dave joined the channel.", None);
        w.set_post_kind(&join, "system_join_channel", Map::new(), false);
        let bot = w.create_post(&off, "helperbot", "", None);
        let props = json!({"attachments": [{"title": "Build 7", "text": "all green",
            "fields": [{"title": "branch", "value": "main"}]}], "override_username": "CI"});
        w.set_post_kind(&bot, "", props.as_object().unwrap().clone(), true);
        let gone = w.create_post_with_files(
            &off,
            "erin",
            "a file that got lost",
            None,
            vec![matterbak::mock::NewFile {
                name: "lost [1].txt".into(),
                bytes: b"lost".to_vec(),
                mime_type: "text/plain".into(),
            }],
        );
        let lost_file = w.post_file_ids(&gone)[0].clone();
        w.set_file_bytes_lost(&lost_file, true);
        for user in ["alice", "bob"] {
            w.add_reaction(&after, user, "+1");
        }
        w.add_reaction(&after, "carol", "smile");
        w.set_user_field("carol", "nickname", json!("*Caro* [lina]"));
        vec![hostile, after, edited, join, bot, gone, lost_file]
    });
    env.sync().await;
    env.server.with_workspace(|w| {
        w.edit_post(&ids[2], "second words");
        w.delete_post(&ids[0]);
    });
    env.sync().await;
    (env, ids)
}

fn collect_headings<'a>(node: &'a AstNode<'a>, depth: usize, out: &mut Vec<(usize, u8, String)>) {
    for child in node.children() {
        if let NodeValue::Heading(h) = &child.data.borrow().value {
            let mut text = String::new();
            for d in child.descendants() {
                if let NodeValue::Text(t) = &d.data.borrow().value {
                    text.push_str(t);
                }
            }
            out.push((depth, h.level, text));
        }
        collect_headings(child, depth + 1, out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flavor_shows_what_matterexport_hides_and_renders_cleanly() {
    let (env, _) = prepared().await;
    let archive = env.archive.clone();
    env.server.shutdown().await;
    let md = ok(&export(
        &archive,
        &["--format", "markdown", "-c", "off-topic"],
    ));

    assert!(md.contains("*Edited 20"), "edit marked:\n{md}");
    assert!(md.contains("Earlier versions:") && md.contains("> first words"));
    assert!(md.contains("> second words"));
    assert!(md.contains("Deleted 20") && md.contains("last archived text shown"));
    assert!(md.contains("System message `system_join_channel`"));
    assert!(
        md.contains("CI (posted by helperbot)"),
        "override name shown"
    );
    assert!(
        md.contains("**Build 7**") && md.contains("all green") && md.contains("**branch**: main")
    );
    assert!(md.contains("*Pinned*"));
    assert!(
        md.contains(r"- lost \[1\].txt (4 bytes): **missing**, its content is not in the archive"),
        "missing attachment named:\n{md}"
    );
    assert!(md.contains("- `:+1:` ×2: "), "reactions grouped:\n{md}");
    assert!(md.contains(r"\*Caro\* \[lina\] (@carol)"), "names escaped");
    assert!(md.contains("the exporting machine's time zone") && md.contains(" +01:00"));

    // Structure: exactly one h1 and one h2 at the top level, one h3 per archived post, all
    // at the top level (so the unclosed fence swallowed no later post); the hostile
    // message's heading stays inside its quote.
    let count: usize = md
        .lines()
        .find_map(|l| l.strip_prefix("- Messages: "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let arena = Arena::new();
    let root = parse_document(&arena, &md, &Options::default());
    let mut headings = Vec::new();
    collect_headings(root, 0, &mut headings);
    let top = |level| headings.iter().filter(|h| h.0 == 0 && h.1 == level).count();
    assert_eq!((top(1), top(2), top(3)), (1, 1, count), "{headings:?}");
    let nested: Vec<_> = headings.iter().filter(|h| h.0 > 0).collect();
    assert_eq!(nested.len(), 1, "{nested:?}");
    assert_eq!(nested[0].2, "not a heading");

    // The threaded form keeps the same structure: one h3 per thread, one h4 per post.
    let threaded = ok(&export(
        &archive,
        &["--format", "markdown", "-c", "off-topic", "--threads"],
    ));
    let root = parse_document(&arena, &threaded, &Options::default());
    let mut headings = Vec::new();
    collect_headings(root, 0, &mut headings);
    let h4 = headings.iter().filter(|h| h.0 == 0 && h.1 == 4).count();
    assert_eq!(h4, count, "{headings:?}");

    // The py flavor hides all of that, as matterexport does.
    let py = ok(&export(
        &archive,
        &["--format", "markdown", "--flavor", "py", "-c", "off-topic"],
    ));
    assert!(py.contains("* lost [1].txt: `None`"), "{py}");
    assert!(py.contains(HOSTILE), "py flavor keeps messages raw");
    assert!(!py.contains("Edited") && !py.contains("first words"));
    assert!(py.contains("* Bob Builder: `+1`"), "one line per reaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hgf_writes_the_zip_and_lists_missing_attachments() {
    let (env, ids) = prepared().await;
    let archive = env.archive.clone();
    let off = env
        .server
        .with_workspace(|w| w.channel_id("eng", "off-topic"));
    env.server.shutdown().await;
    let zip_path = env.dir.path().join("off.zip");
    let out = export(
        &archive,
        &[
            "--format",
            "hgf",
            "-c",
            &off,
            "-o",
            zip_path.to_str().unwrap(),
        ],
    );
    ok(&out);
    assert!(
        stderr(&out).contains(&ids[6]),
        "skipped attachment reported"
    );

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let read = |zip: &mut zip::ZipArchive<std::fs::File>, name: &str| -> Value {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        assert!(!text.ends_with('\n'), "no trailing newline, as json.dump");
        serde_json::from_str(&text).unwrap()
    };
    for name in [
        "channel.json",
        "posts.json",
        "threads.json",
        "skipped_attachments.json",
    ] {
        assert!(names.contains(&name.to_owned()), "{names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with('/') || n.contains(&ids[6])),
        "no directory entries, no missing file: {names:?}"
    );
    let skipped = read(&mut zip, "skipped_attachments.json");
    assert_eq!(skipped["omitted_count"], 1);
    assert_eq!(skipped["attachments"][0]["file_id"], ids[6].as_str());
    assert_eq!(skipped["attachments"][0]["name"], "lost [1].txt");
    let posts = read(&mut zip, "posts.json");
    let posts = posts.as_array().unwrap();
    let times: Vec<i64> = posts
        .iter()
        .map(|p| p["create_at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let keys: Vec<&str> = posts[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys[..5],
        [
            "id",
            "channel_id",
            "user_id",
            "user_username",
            "user_display_name"
        ]
    );
    assert_eq!(keys.len(), 14);
    let threads = read(&mut zip, "threads.json");
    let total: usize = threads
        .as_array()
        .unwrap()
        .iter()
        .map(|t| 1 + t.get("replies").map_or(0, |r| r.as_array().unwrap().len()))
        .sum();
    assert_eq!(total, posts.len(), "every post once in the threads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_lookup_as_matterexport_with_clear_errors() {
    let env = start().await;
    env.sync().await;
    let (dev, dm) = env
        .server
        .with_workspace(|w| (w.channel_id("eng", "dev"), w.dm_channel_id("alice", "dave")));
    let archive = env.archive.clone();
    env.server.shutdown().await;
    let title = |args: &[&str]| -> String {
        let mut all = vec!["--format", "markdown", "--flavor", "py"];
        all.extend_from_slice(args);
        ok(&export(&archive, &all))
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    // By id, by name, by folder path, by a DM's other username, by pattern.
    assert_eq!(title(&["-c", &dev]), "# Development");
    assert_eq!(title(&["-c", "dev"]), "# Development");
    let path = format!("data/teams/whatever/{dev}__dev/");
    assert_eq!(title(&["-c", &path]), "# Development");
    assert_eq!(title(&["-c", &format!("{dev}__dev")]), "# Development");
    assert_eq!(title(&["-c", "dave"]), "# Direct channel");
    assert_eq!(
        title(&["-c", &format!("{}*", &dm[..6])]),
        "# Direct channel"
    );

    let ambiguous = export(&archive, &["--format", "markdown", "-c", "o*"]);
    assert_eq!(ambiguous.status.code(), Some(2));
    let err = stderr(&ambiguous);
    assert!(
        err.contains("\"o*\" matches 2 channels")
            && err.contains("__off-topic")
            && err.contains("__old-project"),
        "{err}"
    );
    let missing = export(&archive, &["--format", "markdown", "-c", "nosuch"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no channel matches \"nosuch\""));
    let no_output = export(&archive, &["--format", "hgf", "-c", "dev"]);
    assert_eq!(no_output.status.code(), Some(2));
    assert!(stderr(&no_output).contains("needs -o"));
    let json_flags = export(&archive, &["--format", "json", "-c", "dev"]);
    assert_eq!(json_flags.status.code(), Some(2));

    // Without -c: every channel into a directory we claim, and only into such a one.
    let dir = env.dir.path().join("md");
    let listed = ok(&export(
        &archive,
        &["--format", "markdown", "-o", dir.to_str().unwrap()],
    ));
    assert_eq!(listed.lines().count(), 12, "{listed}");
    assert!(dir.join(".matterbak-output").is_file());
    for line in listed.lines() {
        assert!(std::fs::read_to_string(line).unwrap().starts_with("# "));
    }
    ok(&export(
        &archive,
        &["--format", "markdown", "-o", dir.to_str().unwrap()],
    ));
    let foreign = env.dir.path().join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "keep").unwrap();
    let refused = export(
        &archive,
        &["--format", "markdown", "-o", foreign.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing written"
    );
}

/// Issue #26: every kind of attachment name the server allows (the mock's file-name
/// scenario, whose module names the server source), in an archive that holds every file.
/// `--flavor py` gives the Python backup's path (`files/<id>__<name>`, the name as it is;
/// byte parity with matterexport is `tests/conformance/markdown.sh`), never `None`; the full
/// flavor names each file readably with its path in our layout; the HGF zip holds each as
/// `files/<id>-<name>`, except the names a Windows extractor would read as a path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_name_the_server_allows_is_found_in_every_flavor() {
    use matterbak::mock::{FILE_NAME_CASES, FILE_NAME_CASES_BEYOND_PYTHON};

    let env = start().await;
    let (team, channel, files) = env.server.with_workspace(|w| {
        let channel = w.add_file_name_cases();
        w.add_file_name_cases_beyond_python(&channel);
        let files: Vec<(String, String)> = w
            .post_ids(&channel)
            .iter()
            .flat_map(|p| w.post_file_ids(p))
            .map(|f| {
                let name = w.file_name(&f);
                (f, name)
            })
            .collect();
        (w.team_id("eng"), channel, files)
    });
    env.sync().await;
    let archive = env.archive.clone();
    env.server.shutdown().await;
    // The table, two long names, two of one name, and the names beyond Python with the
    // server's longest (256 characters).
    let expected_files = FILE_NAME_CASES.len() + 2 + 2 + FILE_NAME_CASES_BEYOND_PYTHON.len() + 1;
    assert_eq!(files.len(), expected_files);
    assert!(files.iter().any(|(_, n)| n == "tab\there (1).txt"));
    assert_eq!(
        files.iter().filter(|(_, n)| n == "same name.txt").count(),
        2
    );

    let py = ok(&export(
        &archive,
        &[
            "--format",
            "markdown",
            "--flavor",
            "py",
            "-d",
            "data",
            "-c",
            "file-names",
        ],
    ));
    for (id, name) in &files {
        let line = format!(
            "* {name}: `data/teams/{team}__eng/{channel}__file-names/files/{id}__{name}`\n"
        );
        assert!(py.contains(&line), "{line:?} missing from\n{py}");
    }
    assert!(!py.contains("`None`"), "{py}");

    let full = ok(&export(
        &archive,
        &["--format", "markdown", "-d", "data", "-c", "file-names"],
    ));
    assert!(!full.contains("**missing**"), "{full}");
    let file_lines: Vec<&str> = full
        .lines()
        .filter(|l| l.starts_with("- ") && l.contains(" bytes): `"))
        .collect();
    assert_eq!(file_lines.len(), files.len(), "one line each:\n{full}");
    for shown in [
        "- tab\u{2409}here (1).txt (",
        "- line\u{240a}break.txt (",
        "- carriage\u{240d}\u{240a}return.txt (",
        r"- back\\slash.txt (",
        r"- invoice\<U+202E\>fdp.exe (",
        "- .. (",
        "- .hidden (",
    ] {
        assert!(
            file_lines.iter().any(|l| l.starts_with(shown)),
            "{shown:?} in\n{full}"
        );
    }
    // Our layout's safe name: the control becomes `_`.
    assert!(full.contains(&format!(
        "/files/{}__tab_here (1).txt`",
        id_of(&files, "tab\there (1).txt")
    )));

    let zip_path = env.dir.path().join("names.zip");
    ok(&export(
        &archive,
        &[
            "--format",
            "hgf",
            "-c",
            "file-names",
            "-o",
            zip_path.to_str().unwrap(),
        ],
    ));
    let members: std::collections::BTreeMap<String, Vec<u8>> =
        common::read_zip(&zip_path).into_iter().collect();
    let not_in_zip = ["..\\..\\escape.txt", "trailing\\"];
    for (id, name) in &files {
        let member = format!("files/{id}-{name}");
        if not_in_zip.contains(&name.as_str()) {
            assert!(!members.contains_key(&member), "{member:?}");
        } else {
            let bytes = members.get(&member).unwrap_or_else(|| {
                panic!("{member:?} not in {:?}", members.keys().collect::<Vec<_>>())
            });
            // The mock's content of each file names it.
            assert!(
                bytes.ends_with(format!("{name:?}\n").as_bytes()),
                "{member:?}"
            );
        }
    }
    let skipped: Value = serde_json::from_slice(&members["skipped_attachments.json"]).unwrap();
    let mut listed: Vec<(&str, &str)> = skipped["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["reason"].as_str().unwrap()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("..\\..\\escape.txt", "file name not usable in a zip"),
            ("trailing\\", "file name not usable in a zip"),
        ]
    );
}

fn id_of<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
    &files.iter().find(|(_, n)| n == name).unwrap().0
}
