//! `export --format bulk-import`: the zip passes the §7 validator, carries every live post,
//! reply, reaction, attachment (by bytes) and membership of the archive, reports what it
//! changed or left out, never writes a line for an existing account, and works around each
//! server rule the archive can break.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{read_zip, start};
use matterbak::archive::{Archive, Claim};
use matterbak::blobs::BlobLocation;
use matterbak::catalog::{Catalog, ChannelCursor, ImageOwner, LastOutcome};
use matterbak::export::bulk_import::{self, BulkOptions, Level, Validator, rules};
use matterbak::model::emoji;
use matterbak::model::object::{self, Raw};
use serde_json::{Value, json};

struct Restore {
    lines: Vec<Value>,
    entries: HashMap<String, Vec<u8>>,
    findings: Vec<bulk_import::Finding>,
}

/// Reads the zip and runs the validator over it, as an administrator's check would.
fn check_zip(path: &Path, existing: &[&str]) -> Restore {
    let entries = read_zip(path);
    assert_eq!(entries[0].0, "import.jsonl", "the JSONL is the first entry");
    let text = String::from_utf8(entries[0].1.clone()).unwrap();
    assert!(text.ends_with('\n'));
    let mut validator = Validator::new(
        rules::MAX_POST_RUNES,
        existing.iter().map(|s| s.to_string()),
    );
    let mut lines = Vec::new();
    for line in text.lines() {
        validator.check_line(line);
        lines.push(serde_json::from_str(line).unwrap());
    }
    let sizes = entries
        .iter()
        .map(|(n, b)| (n.clone(), b.len() as u64))
        .collect();
    let findings = validator.finish(&sizes);
    Restore {
        lines,
        entries: entries.into_iter().collect(),
        findings,
    }
}

impl Restore {
    fn errors(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .map(ToString::to_string)
            .collect()
    }

    fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["type"] == kind)
            .map(|l| &l[kind])
            .collect()
    }

    fn user(&self, name: &str) -> Option<&Value> {
        self.of_type("user")
            .into_iter()
            .find(|u| u["username"] == name)
    }

    /// Every post and reply as `(channel key, root message or "", object)`.
    fn messages(&self) -> Vec<(String, String, &Value)> {
        let mut out = Vec::new();
        for l in &self.lines {
            let (post, key) = match l["type"].as_str() {
                Some("post") => (
                    &l["post"],
                    format!(
                        "{}/{}",
                        l["post"]["team"].as_str().unwrap(),
                        l["post"]["channel"].as_str().unwrap()
                    ),
                ),
                Some("direct_post") => {
                    let mut members: Vec<&str> = l["direct_post"]["channel_members"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m.as_str().unwrap())
                        .collect();
                    members.sort();
                    members.dedup();
                    (&l["direct_post"], members.join(","))
                }
                _ => continue,
            };
            out.push((key.clone(), String::new(), post));
            for reply in post["replies"].as_array().into_iter().flatten() {
                out.push((
                    key.clone(),
                    post["message"].as_str().unwrap().to_owned(),
                    reply,
                ));
            }
        }
        out
    }
}

fn bulk_bin(archive: &Path, zip: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(["export", "--format", "bulk-import", "--archive"])
        .arg(archive)
        .arg("-o")
        .arg(zip)
        .args(extra)
        .output()
        .unwrap()
}

fn json_rows(catalog: &Catalog, sql: &str) -> Vec<Value> {
    common::rows(catalog, sql)
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_workspace_round_trips_through_the_zip() {
    let env = start().await;
    env.sync().await;
    let (deleted, edited) = env.server.with_workspace(|w| {
        let off = w.channel_id("eng", "off-topic");
        let dev = w.channel_id("eng", "dev");
        let deleted = w.post_ids(&off)[0].clone();
        w.delete_post(&deleted);
        let edited = w.post_ids(&dev)[1].clone();
        w.edit_post(&edited, "edited text, the current one");
        w.add_reaction(&edited, "carol", "tada");
        (deleted, edited)
    });
    env.sync().await;
    let zip = env.dir.path().join("restore.zip");
    let out = bulk_bin(&env.archive, &zip, &["--existing-users", "none"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("posts,"), "summary printed: {stderr}");

    let restore = check_zip(&zip, &[]);
    assert_eq!(restore.errors(), Vec::<String>::new());

    let catalog = env.catalog();
    // Every live post and reply: same text, time, author, channel and thread.
    let posts = json_rows(
        &catalog,
        "SELECT json_object('id', p.id, 'type', c.type, 'team', coalesce(t.name, ''), 'channel', c.name,
                'channel_id', c.id, 'user', u.username, 'create_at', p.create_at, 'message', p.message,
                'root', coalesce(r.message, ''))
         FROM posts p JOIN channels c ON c.id = p.channel_id LEFT JOIN teams t ON t.id = c.team_id
         JOIN users u ON u.id = p.user_id LEFT JOIN posts r ON r.id = p.root_id
         WHERE p.seen_live = 1 AND p.delete_at = 0 AND c.selected = 1",
    );
    assert!(posts.len() > 400, "the sample has hundreds of posts");
    let members_of = |channel_id: &str| -> String {
        let mut names = common::rows(
            &catalog,
            &format!(
                "SELECT u.username FROM channel_members m JOIN users u ON u.id = m.user_id WHERE m.channel_id = '{channel_id}' AND m.removed_at IS NULL"
            ),
        );
        if names.is_empty() {
            // A DM's members are in its name.
            let name = common::rows(
                &catalog,
                &format!("SELECT name FROM channels WHERE id = '{channel_id}'"),
            )[0]
            .clone();
            names = name
                .split("__")
                .map(|id| {
                    common::rows(
                        &catalog,
                        &format!("SELECT username FROM users WHERE id = '{id}'"),
                    )[0]
                    .clone()
                })
                .collect();
        }
        names.sort();
        names.dedup();
        names.join(",")
    };
    let written = restore.messages();
    let mut index: HashSet<(String, String, String, i64, String)> = HashSet::new();
    for (key, root, post) in &written {
        index.insert((
            key.clone(),
            root.clone(),
            post["user"].as_str().unwrap().to_owned(),
            post["create_at"].as_i64().unwrap(),
            post["message"].as_str().unwrap().to_owned(),
        ));
    }
    for p in &posts {
        let key = match p["type"].as_str().unwrap() {
            "D" | "G" => members_of(p["channel_id"].as_str().unwrap()),
            _ => format!(
                "{}/{}",
                p["team"].as_str().unwrap(),
                p["channel"].as_str().unwrap()
            ),
        };
        let wanted = (
            key,
            p["root"].as_str().unwrap().to_owned(),
            p["user"].as_str().unwrap().to_owned(),
            p["create_at"].as_i64().unwrap(),
            p["message"].as_str().unwrap().to_owned(),
        );
        assert!(
            index.contains(&wanted),
            "post {} not in the JSONL as {wanted:?}",
            p["id"]
        );
    }
    assert_eq!(
        written.len(),
        posts.len(),
        "nothing more than the live posts"
    );
    assert!(
        written
            .iter()
            .any(|(_, _, p)| p["message"] == "edited text, the current one"
                && p["edit_at"].as_i64().unwrap() > 0)
    );

    // Every current reaction, on its post.
    let reactions = json_rows(
        &catalog,
        "SELECT json_object('message', p.message, 'create_at', p.create_at, 'user', u.username, 'emoji', r.emoji_name)
         FROM reactions r JOIN posts p ON p.id = r.post_id JOIN users u ON u.id = r.user_id
         JOIN channels c ON c.id = p.channel_id
         WHERE r.removed_at IS NULL AND p.seen_live = 1 AND p.delete_at = 0 AND c.selected = 1",
    );
    assert!(!reactions.is_empty());
    for r in &reactions {
        let found = written.iter().any(|(_, _, p)| {
            p["message"] == r["message"]
                && p["create_at"] == r["create_at"]
                && p["reactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["user"] == r["user"] && x["emoji_name"] == r["emoji"])
        });
        assert!(found, "reaction {r} not carried");
    }

    // Every attachment, by bytes, under its original name.
    let archive = env.read();
    let blobs = archive.blobs().unwrap();
    let files = json_rows(
        &catalog,
        "SELECT json_object('name', f.name, 'blob', f.blob, 'message', p.message, 'create_at', p.create_at)
         FROM files f JOIN posts p ON p.id = f.post_id JOIN channels c ON c.id = p.channel_id
         WHERE f.blob IS NOT NULL AND p.seen_live = 1 AND p.delete_at = 0 AND c.selected = 1",
    );
    assert!(!files.is_empty());
    for f in &files {
        let blob = matterbak::model::BlobId::parse(f["blob"].as_str().unwrap()).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut blobs.open_blob(&blob).unwrap(), &mut bytes).unwrap();
        let post = written
            .iter()
            .map(|(_, _, p)| p)
            .find(|p| p["message"] == f["message"] && p["create_at"] == f["create_at"])
            .expect("the file's post");
        let carried = post["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| {
                let path = format!("data/{}", a["path"].as_str().unwrap());
                path.rsplit('/').next()
                    == Some(rules::plan_file_name(f["name"].as_str().unwrap()).as_str())
                    && restore.entries.get(&path) == Some(&bytes)
            });
        assert!(carried, "attachment {} not carried by bytes", f["name"]);
    }

    // Every current membership of the archived team channels.
    let memberships = json_rows(
        &catalog,
        "SELECT json_object('team', t.name, 'channel', c.name, 'user', u.username)
         FROM channel_members m JOIN channels c ON c.id = m.channel_id JOIN teams t ON t.id = c.team_id
         JOIN users u ON u.id = m.user_id WHERE m.removed_at IS NULL AND c.selected = 1 AND c.type IN ('O', 'P')",
    );
    assert!(!memberships.is_empty());
    let script = std::fs::read_to_string(env.dir.path().join("restore.mmctl.sh")).unwrap();
    for m in &memberships {
        let user = m["user"].as_str().unwrap();
        let in_line = restore.user(user).is_some_and(|u| {
            u["teams"].as_array().into_iter().flatten().any(|t| {
                t["name"] == m["team"]
                    && t["channels"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["name"] == m["channel"])
            })
        });
        let in_script = script.contains(&format!(
            "mmctl channel users add '{}:{}' '{user}'",
            m["team"].as_str().unwrap(),
            m["channel"].as_str().unwrap()
        ));
        assert!(in_line || in_script, "membership {m} not carried");
    }
    // Direct and group channels, the self-DM included.
    let dms = restore.of_type("direct_channel");
    assert!(
        dms.iter()
            .any(|d| d["members"] == json!(["alice", "alice"])),
        "{dms:?}"
    );
    assert!(
        dms.iter()
            .any(|d| d["members"].as_array().unwrap().len() >= 3)
    );

    // The report names the deleted post.
    let report = std::fs::read_to_string(env.dir.path().join("restore.report.txt")).unwrap();
    assert!(
        report.contains(&format!(
            "omitted: post {deleted} in eng/off-topic: deleted on the server"
        )),
        "{report}"
    );
    assert!(!report.contains(&edited));

    // Same archive, same bytes: importing twice matches the same posts.
    let again = env.dir.path().join("again.zip");
    assert!(
        bulk_bin(&env.archive, &again, &["--existing-users", "none"])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&zip).unwrap(), std::fs::read(&again).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_accounts_get_no_user_line_but_a_script() {
    let env = start().await;
    env.sync().await;
    let existing = env.dir.path().join("users.json");
    std::fs::write(
        &existing,
        r#"[{"id":"x1","username":"bob"},{"id":"x2","username":"Carol"},{"id":"x3","username":"other","email":"Alice@example.com"}]"#,
    )
    .unwrap();
    let zip = env.dir.path().join("r.zip");
    let out = bulk_bin(
        &env.archive,
        &zip,
        &[
            "--existing-users",
            existing.to_str().unwrap(),
            "--no-profile-images",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restore = check_zip(&zip, &["bob", "carol", "other"]);
    assert_eq!(restore.errors(), Vec::<String>::new());
    for name in ["bob", "carol"] {
        assert!(
            restore.user(name).is_none(),
            "a user line for existing {name}"
        );
        assert!(!restore.lines.iter().any(|l| l["bot"]["username"] == name));
    }
    // alice is new, but her archived address belongs to an account of the target.
    assert_eq!(
        restore.user("alice").unwrap()["email"],
        "alice@restored.invalid"
    );
    // Their posts are still there, and their memberships are in the script.
    assert!(
        restore
            .messages()
            .iter()
            .any(|(_, _, p)| p["user"] == "bob")
    );
    let script = std::fs::read_to_string(env.dir.path().join("r.mmctl.sh")).unwrap();
    assert!(
        script.contains("mmctl team users add 'eng' 'bob'"),
        "{script}"
    );
    assert!(
        script.contains("mmctl channel users add 'eng:dev' 'carol'"),
        "{script}"
    );
    assert!(
        !script.contains("'alice'"),
        "new users get memberships from their line"
    );
    // --no-profile-images: no picture anywhere.
    assert!(!restore.entries.keys().any(|n| n.starts_with("data/users/")));
    assert!(
        !restore
            .lines
            .iter()
            .any(|l| l["user"].get("profile_image").is_some())
    );

    // A narrower --channels: only eng/dev of the teams.
    let channels = env.dir.path().join("only-dev.json");
    std::fs::write(&channels, r#"{"teams": {"eng": {"include": ["dev"]}}}"#).unwrap();
    let narrow = env.dir.path().join("narrow.zip");
    let out = bulk_bin(
        &env.archive,
        &narrow,
        &[
            "--existing-users",
            "none",
            "--channels",
            channels.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restore = check_zip(&narrow, &[]);
    assert_eq!(restore.errors(), Vec::<String>::new());
    let channels: Vec<&Value> = restore.of_type("channel");
    assert_eq!(channels.len(), 1, "{channels:?}");
    assert_eq!(channels[0]["name"], "dev");
    assert!(restore.of_type("direct_post").is_empty());
    assert!(
        restore
            .messages()
            .iter()
            .all(|(key, _, _)| key == "eng/dev")
    );
}

#[test]
fn refuses_without_existing_users_and_names_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("r.zip");
    let out = bulk_bin(&dir.path().join("archive"), &zip, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--existing-users"), "{stderr}");
    assert!(!zip.exists());
    let out = bulk_bin(
        &dir.path().join("archive"),
        &zip,
        &["--existing-users", "none", "--email-domain", "not a domain"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--email-domain \"not a domain\""));
}

// ----- an archive written through the catalog API with everything the server refuses ----

fn raw<T: serde::de::DeserializeOwned>(value: Value) -> Raw<T> {
    Raw::parse(serde_json::value::RawValue::from_string(value.to_string()).unwrap()).unwrap()
}

fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 26 - prefix.len())
}

const T0: i64 = 1_700_000_000_000;

fn post(
    n: usize,
    channel: &str,
    user: &str,
    root: &str,
    at: i64,
    message: &str,
    extra: Value,
) -> Raw<object::Post> {
    let mut p = json!({
        "id": id("p", n), "create_at": at, "update_at": at, "edit_at": 0, "delete_at": 0,
        "is_pinned": false, "user_id": user, "channel_id": channel, "root_id": root,
        "message": message, "type": "", "props": {}, "metadata": {}
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    raw(p)
}

/// Writes the hostile archive; returns its directory.
fn hostile_archive(dir: &Path) -> PathBuf {
    let archive = dir.join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let mut writing = Archive::at(&archive)
        .open_write(&BlobLocation::Local, Claim::AnyDirectory)
        .unwrap();
    writing.prepare_blobs().unwrap();
    let (catalog, blobs) = writing.catalog_and_blobs();
    let run = catalog.begin_run(0, "test").unwrap();
    let users: Vec<String> = (0..10).map(|n| id("u", n)).collect();
    catalog
        .set_run_user(run, &users[0].as_str().into(), "owner")
        .unwrap();
    let user_rows: Vec<Raw<object::User>> = users
        .iter()
        .enumerate()
        .map(|(n, u)| {
            // user 1 has no e-mail, user 2 a capitalised username.
            let (name, email) = match n {
                0 => ("owner".to_owned(), "owner@example.org".to_owned()),
                1 => ("noemail".to_owned(), String::new()),
                2 => ("MixedCase".to_owned(), "mixed@example.org".to_owned()),
                n => (format!("user{n}"), format!("user{n}@example.org")),
            };
            raw(json!({"id": u, "username": name, "email": email, "roles": "system_user", "locale": "en"}))
        })
        .collect();
    catalog.upsert_users(&user_rows).unwrap();
    let teams = [("Eng", id("t", 0)), ("helpdesk", id("t", 1))];
    for (name, team) in &teams {
        catalog
            .upsert_team(&raw(json!({"id": team, "name": name, "display_name": name, "type": "O", "update_at": 1})), true)
            .unwrap();
        let members: Vec<Raw<object::TeamMember>> = users[..3]
            .iter()
            .map(|u| raw(json!({"team_id": team, "user_id": u, "roles": "team_user"})))
            .collect();
        catalog
            .replace_team_members(&team.as_str().into(), &members, 1)
            .unwrap();
    }
    let channel = id("c", 0);
    catalog
        .upsert_channel(&raw(json!({"id": channel, "team_id": teams[0].1, "type": "O", "name": "General", "display_name": "General"})), true, None)
        .unwrap();
    let members: Vec<Raw<object::ChannelMember>> = users[..3]
        .iter()
        .map(|u| raw(json!({"channel_id": channel, "user_id": u, "roles": "channel_user"})))
        .collect();
    catalog
        .replace_channel_members(&channel.as_str().into(), &members, 1)
        .unwrap();
    // A group of nine.
    let group = id("g", 0);
    catalog
        .upsert_channel(&raw(json!({"id": group, "team_id": "", "type": "G", "name": "0123456789abcdef0123456789abcdef01234567", "display_name": "nine"})), true, Some("nine"))
        .unwrap();
    let members: Vec<Raw<object::ChannelMember>> = users[..9]
        .iter()
        .map(|u| raw(json!({"channel_id": group, "user_id": u})))
        .collect();
    catalog
        .replace_channel_members(&group.as_str().into(), &members, 1)
        .unwrap();

    let mut files = Vec::new();
    let mut file_meta = Vec::new();
    for (n, name) in ["../../x", "a/b"].iter().enumerate() {
        let file = id("f", n);
        let mut w = blobs.writer().unwrap();
        std::io::Write::write_all(&mut w, format!("bytes of {name}").as_bytes()).unwrap();
        files.push((file.clone(), w.commit().unwrap()));
        file_meta.push(json!({"id": file, "user_id": users[0], "post_id": id("p", 5), "channel_id": channel, "create_at": T0 + 5000, "name": name, "extension": "", "size": 11, "mime_type": "text/plain"}));
    }
    // Twelve files on one post; the last one's bytes were never fetched.
    let mut many_meta = Vec::new();
    for n in 10..22 {
        let file = id("f", n);
        if n < 21 {
            let mut w = blobs.writer().unwrap();
            std::io::Write::write_all(&mut w, format!("file {n}").as_bytes()).unwrap();
            files.push((file.clone(), w.commit().unwrap()));
        }
        many_meta.push(json!({"id": file, "user_id": users[0], "post_id": id("p", 7), "channel_id": channel, "create_at": T0 + 7000, "name": format!("f{n}.txt"), "extension": "txt", "size": 7, "mime_type": "text/plain"}));
    }
    let long = "long words ".repeat(2000); // 22,000 characters
    let page = [
        post(0, &channel, &users[0], "", T0, &long, json!({})),
        post(
            1,
            &channel,
            &users[1],
            "",
            T0 + 1000,
            "root",
            json!({"props": {"addedUserId": users[2], "attachments": [{"text": "bot"}]},
                   "metadata": {"reactions": [{"user_id": users[2], "post_id": id("p", 1), "emoji_name": "👍", "create_at": T0 + 1500}]}}),
        ),
        post(
            2,
            &channel,
            &users[2],
            &id("p", 1),
            T0 + 2000,
            "reply a",
            json!({}),
        ),
        post(
            3,
            &channel,
            &users[0],
            &id("p", 1),
            T0 + 2000,
            "reply b",
            json!({"metadata": {"reactions": [{"user_id": users[1], "post_id": id("p", 3), "emoji_name": "+1", "create_at": T0 + 2000}]}}),
        ),
        post(
            4,
            &channel,
            &users[0],
            "",
            T0 + 4000,
            "to be deleted",
            json!({}),
        ),
        post(
            5,
            &channel,
            &users[0],
            "",
            T0 + 5000,
            "files",
            json!({"metadata": {"files": file_meta}}),
        ),
        post(
            7,
            &channel,
            &users[0],
            "",
            T0 + 7000,
            "many files",
            json!({"metadata": {"files": many_meta}}),
        ),
        post(
            8,
            &channel,
            &users[0],
            "",
            T0 + 8000,
            "ephemeral",
            json!({"type": "system_ephemeral"}),
        ),
        post(9, &channel, &users[0], "", T0 + 10_000, "same", json!({})),
        post(10, &channel, &users[1], "", T0 + 10_000, "same", json!({})),
        post(6, &group, &users[3], "", T0 + 6000, "hello nine", json!({})),
    ];
    catalog
        .apply_posts_page(
            &channel.as_str().into(),
            &page[..10],
            &ChannelCursor::default(),
            LastOutcome::Ok,
            0,
        )
        .unwrap();
    catalog
        .apply_posts_page(
            &group.as_str().into(),
            &page[10..],
            &ChannelCursor::default(),
            LastOutcome::Ok,
            0,
        )
        .unwrap();
    for (file, blob) in &files {
        catalog
            .set_file_blob(&file.as_str().into(), blob, 0)
            .unwrap();
    }
    catalog
        .mark_post_deleted(&id("p", 4).into(), T0 + 9000)
        .unwrap();
    // Custom emojis whose names a newer target keeps for system emojis (`mattermost` is the
    // server's own, a skin tone is a variant), and a plain one.
    let emojis: Vec<Raw<object::Emoji>> = ["smile", "party-parrot", "mattermost", "+1_dark_skin_tone"]
        .iter()
        .enumerate()
        .map(|(n, name)| raw(json!({"id": id("e", n), "creator_id": users[0], "name": name, "create_at": 1, "update_at": 1})))
        .collect();
    catalog.replace_emojis(&emojis, 1).unwrap();
    let mut writer = blobs.writer().unwrap();
    std::io::Write::write_all(&mut writer, b"GIF89a emoji").unwrap();
    let image = writer.commit().unwrap();
    for n in 0..4 {
        catalog
            .set_image(ImageOwner::Emoji, &id("e", n), &image, "image/gif", 1, 1)
            .unwrap();
    }
    archive
}

#[test]
fn each_server_rule_is_worked_around_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let archive = hostile_archive(dir.path());
    let zip = dir.path().join("out.zip");
    let options = BulkOptions {
        email_domain: "restore.example".into(),
        ..BulkOptions::default()
    };
    let report =
        bulk_import::export_bulk_import(&common::read_archive(&archive), &zip, &options).unwrap();
    let restore = check_zip(&zip, &[]);
    assert_eq!(restore.errors(), Vec::<String>::new());
    let changes: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
    let has = |needle: &str| {
        assert!(
            changes.iter().any(|c| c.contains(needle)),
            "no change {needle:?} in {changes:#?}"
        );
    };

    // Capitalised team name, reserved prefix.
    let teams: Vec<&str> = restore
        .of_type("team")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(teams, ["eng", "team-helpdesk"]);
    // A custom emoji named like a system emoji: left out and reported (the server would skip
    // it without a word); the other one is written.
    let emoji_names: Vec<&str> = restore
        .of_type("emoji")
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(emoji_names, ["party-parrot"]);
    has("emoji smile");
    has("emoji mattermost");
    has("emoji +1_dark_skin_tone");
    has("system emoji of that name");
    has("changed: team Eng: written as \"eng\"");
    has("changed: team helpdesk: written as \"team-helpdesk\"");
    // Channel name lower-cased; posts refer to the written names.
    assert!(
        restore
            .of_type("channel")
            .iter()
            .any(|c| c["name"] == "general" && c["team"] == "eng")
    );
    // User without e-mail: a placeholder under --email-domain; capitalised username.
    assert_eq!(
        restore.user("noemail").unwrap()["email"],
        "noemail@restore.example"
    );
    has("changed: user noemail: e-mail written as placeholder noemail@restore.example");
    assert!(restore.user("mixedcase").is_some());
    // Over-long message: split into a thread within the limit, text intact.
    let messages = restore.messages();
    let (_, _, first) = messages
        .iter()
        .find(|(_, _, p)| p["message"].as_str().unwrap().starts_with("long words"))
        .unwrap();
    let mut text = first["message"].as_str().unwrap().to_owned();
    for reply in first["replies"].as_array().unwrap() {
        assert!(rules::rune_len(reply["message"].as_str().unwrap()) <= rules::MAX_POST_RUNES);
        text.push_str(reply["message"].as_str().unwrap());
    }
    assert_eq!(text, "long words ".repeat(2000));
    has("split into 2 posts");
    // Two replies with one create_at: the second moves by 1 ms, its reaction with it.
    let (_, _, root) = messages
        .iter()
        .find(|(_, r, p)| r.is_empty() && p["message"] == "root")
        .unwrap();
    let replies = root["replies"].as_array().unwrap();
    assert_eq!(replies[0]["create_at"], T0 + 2000);
    assert_eq!(replies[1]["create_at"], T0 + 2001);
    assert_eq!(replies[1]["reactions"][0]["create_at"], T0 + 2001);
    has(&format!(
        "reply {} in eng/general: create_at moved from {} to {}",
        id("p", 3),
        T0 + 2000,
        T0 + 2001
    ));
    // Props: source ids removed, bot attachments kept.
    assert_eq!(root["props"], json!({"attachments": [{"text": "bot"}]}));
    has("props addedUserId removed");
    // Deleted post: left out, reported.
    assert!(
        !messages
            .iter()
            .any(|(_, _, p)| p["message"] == "to be deleted")
    );
    has(&format!(
        "omitted: post {} in eng/general: deleted on the server",
        id("p", 4)
    ));
    // Nine members: a private channel of the first team with all nine as members.
    let converted = restore
        .of_type("channel")
        .into_iter()
        .find(|c| c["type"] == "P")
        .expect("group as private channel");
    assert_eq!(converted["team"], "eng");
    let in_it = restore
        .of_type("user")
        .iter()
        .filter(|u| {
            u["teams"].as_array().into_iter().flatten().any(|t| {
                t["channels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["name"] == converted["name"])
            })
        })
        .count();
    assert_eq!(in_it, 9);
    assert!(restore.of_type("direct_channel").is_empty());
    assert!(messages.iter().any(|(k, _, p)| k
        == &format!("eng/{}", converted["name"].as_str().unwrap())
        && p["message"] == "hello nine"));
    has("9 members (a group channel holds 3 to 8)");
    // Hostile file names: one safe component each, bytes intact.
    let (_, _, with_files) = messages
        .iter()
        .find(|(_, _, p)| p["message"] == "files")
        .unwrap();
    let mut names = Vec::new();
    for a in with_files["attachments"].as_array().unwrap() {
        let path = format!("data/{}", a["path"].as_str().unwrap());
        let name = path.rsplit('/').next().unwrap().to_owned();
        let original = if name == ".._.._x" { "../../x" } else { "a/b" };
        assert_eq!(
            restore.entries[&path],
            format!("bytes of {original}").as_bytes()
        );
        assert_eq!(
            path.matches('/').count(),
            3,
            "data/files/<dir>/<name>: {path}"
        );
        names.push(name);
    }
    names.sort();
    assert_eq!(names, [".._.._x", "a_b"]);
    has("file name written as \".._.._x\"");
    // More than 10 attachments: 10 on the post, the rest on a following reply; one never
    // fetched is left out.
    let (_, _, many) = messages
        .iter()
        .find(|(_, r, p)| r.is_empty() && p["message"] == "many files")
        .unwrap();
    assert_eq!(many["attachments"].as_array().unwrap().len(), 10);
    assert_eq!(
        many["replies"][0]["attachments"].as_array().unwrap().len(),
        1
    );
    assert_eq!(many["replies"][0]["user"], "owner");
    has("11 attachments spread over 2 posts");
    has(&format!(
        "omitted: attachment \"f21.txt\" of post {}",
        id("p", 7)
    ));
    // A type the server refuses: a normal post with the same text.
    let (_, _, ephemeral) = messages
        .iter()
        .find(|(_, _, p)| p["message"] == "ephemeral")
        .unwrap();
    assert_eq!(ephemeral["type"], "");
    has("type \"system_ephemeral\" is not importable");
    // Two roots with one time and text: the second moves by 1 ms.
    let mut same: Vec<i64> = messages
        .iter()
        .filter(|(_, _, p)| p["message"] == "same")
        .map(|(_, _, p)| p["create_at"].as_i64().unwrap())
        .collect();
    same.sort();
    assert_eq!(same, [T0 + 10_000, T0 + 10_001]);
    has("create_at moved to");
    // A unicode reaction: left out, reported; the post keeps no reaction.
    assert!(root.get("reactions").is_none());
    has("omitted: reaction \"👍\" of mixedcase");
    // The report file lists every change.
    let text = std::fs::read_to_string(&report.report).unwrap();
    for change in &changes {
        assert!(text.contains(change.as_str()));
    }
}

/// Expands `{"$repeat": [S, N]}` (the server tests' `strings.Repeat(S, N)`) anywhere in a value.
fn expand_repeats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(args)) = map.get("$repeat") {
                let (text, times) = (args[0].as_str().unwrap(), args[1].as_u64().unwrap());
                *value = Value::String(text.repeat(times as usize));
                return;
            }
            map.values_mut().for_each(expand_repeats);
        }
        Value::Array(items) => items.iter_mut().for_each(expand_repeats),
        _ => {}
    }
}

/// Golden cases from the server's own tests (`import_validators_test.go` of
/// mattermost/mattermost, tests/data/server-import-cases.json names the commit): our validator,
/// and with it the writer's rules (rules.rs), must refuse every line the server refuses, and
/// accept every line it accepts, except where marked stricter (with why that is harmless).
#[test]
fn the_validator_agrees_with_the_servers_own_import_tests() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/server-import-cases.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["source"]["repo"], "mattermost/mattermost");
    let max_post_size = doc["max_post_size"].as_u64().unwrap() as usize;
    // What the server's test cases take for granted: a team, a channel and users defined
    // earlier in the file.
    let mut context = vec![
        json!({"type": "version", "version": 1}),
        json!({"type": "team", "team": {"name": "teamname", "display_name": "Display Name", "type": "O"}}),
        json!({"type": "channel", "channel": {"team": "teamname", "name": "channelname", "display_name": "Display Name", "type": "O"}}),
    ];
    for name in ["username", "owner"]
        .into_iter()
        .map(String::from)
        .chain((1..=9).map(|i| format!("member{i}")))
    {
        context.push(json!({"type": "user", "user": {"username": name, "email": format!("{name}@example.com")}}));
    }
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let mut disagreements = Vec::new();
    for case in cases {
        let mut line = case["line"].clone();
        expand_repeats(&mut line);
        // Each line after the context it needs (a team line needs none, a channel its team).
        let needs = match line["type"].as_str().unwrap() {
            "team" | "emoji" => 1,
            "channel" => 2,
            "user" | "bot" => 3,
            _ => context.len(),
        };
        let mut validator = Validator::new(max_post_size, Vec::new());
        for value in &context[..needs] {
            validator.check_line(&value.to_string());
        }
        assert_eq!(validator.errors().count(), 0, "the context is valid");
        validator.check_line(&line.to_string());
        let errors: Vec<String> = validator.errors().map(ToString::to_string).collect();
        let server_accepts = case["valid"].as_bool().unwrap();
        let stricter = case["ours"] == "stricter";
        let agrees = if stricter {
            assert!(server_accepts, "{case}");
            !errors.is_empty()
        } else {
            errors.is_empty() == server_accepts
        };
        if !agrees {
            disagreements.push(format!(
                "{} {}: server {}, ours {errors:?}",
                case["test"],
                case["what"],
                if server_accepts { "accepts" } else { "refuses" }
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

/// The system emoji names are the server's `model.SystemEmojis`: its size, its first and last
/// entries (server/public/model/emoji_data.go), and the names the server's own tests use as
/// system emojis (`smiley` in import_validators_test.go) or as custom ones (`parrot2`).
#[test]
fn the_system_emoji_names_are_the_servers() {
    let names: Vec<&str> = emoji::system_emoji_names().collect();
    assert_eq!(names.len(), 4465);
    assert_eq!(
        names.iter().collect::<HashSet<_>>().len(),
        4465,
        "no name twice"
    );
    assert_eq!(names[..4], ["grinning", "smiley", "smile", "grin"]);
    assert_eq!(
        names[names.len() - 3..],
        [
            "writing_hand_medium_dark_skin_tone",
            "writing_hand_dark_skin_tone",
            "mattermost"
        ]
    );
    for name in [
        "smiley",
        "+1",
        "-1",
        "100",
        "thumbsup",
        "thank you",
        "mattermost",
        "rowing_woman_dark_skin_tone",
    ] {
        assert!(emoji::is_system_emoji_name(name), "{name}");
    }
    for name in ["parrot2", "party-parrot", "Smiley", "smiley ", ""] {
        assert!(!emoji::is_system_emoji_name(name), "{name:?}");
    }
}
