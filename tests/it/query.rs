//! Reading the archive: the views on the sample workspace, `matterbak sql` (read-only,
//! formats), full-text search (ranking, filters, edits, deletions), stats, upgrading an
//! archive made with the first schema, refusing a newer one, and the README's queries.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{count, rows, start};
use matterbak::catalog::{
    Access, Catalog, CatalogError, DeletedPosts, MIGRATIONS, QueryError, RowSink, SCHEMA_VERSION,
    SearchHit, SearchQuery,
};

/// Runs the binary; returns (exit code, stdout, stderr).
fn matterbak(archive: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .env_remove("MATTERBAK_ARCHIVE")
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--archive")
        .arg(archive)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn query(words: &[&str]) -> SearchQuery {
    SearchQuery {
        words: words.iter().map(|w| w.to_string()).collect(),
        channel: None,
        team: None,
        from: None,
        created_from: None,
        created_before: None,
        deleted: DeletedPosts::Exclude,
        limit: 20,
        highlight: ("[".into(), "]".into()),
    }
}

fn search(catalog: &Catalog, q: &SearchQuery) -> Vec<SearchHit> {
    catalog.search_posts(q).expect("search runs")
}

fn snippets(hits: &[SearchHit]) -> Vec<String> {
    let mut s: Vec<String> = hits.iter().map(|h| h.snippet.clone()).collect();
    s.sort();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_show_the_sample_workspace() {
    let env = start().await;
    env.sync().await;
    let c = env.catalog();
    assert_eq!(c.schema_version().unwrap(), SCHEMA_VERSION);

    // messages: one row per post, names instead of ids, ISO time in UTC.
    assert_eq!(
        count(&c, "SELECT count(*) FROM messages"),
        count(&c, "SELECT count(*) FROM posts")
    );
    assert_eq!(
        rows(
            &c,
            "SELECT time, team, channel, channel_type, author, message, root_id IS NULL, reply_count, edited, deleted, attachment_count
             FROM messages WHERE message LIKE 'Standup moved%'"
        ),
        ["2023-11-15T06:37:20Z|eng|town-square|O|erin|Standup moved to 10:00, report attached|1|0|0|0|1"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT team IS NULL, channel, channel_type, author, reply_count FROM messages WHERE message = 'Hey Alice, got a minute?'"
        ),
        ["1|bob|D|bob|2"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT m.author, r.author FROM messages m JOIN messages r ON r.id = m.root_id WHERE m.message = 'Count me in'"
        ),
        ["alice|carol"]
    );
    // The lunch reply was edited before the first sync; the welcome post has two replies.
    assert_eq!(
        rows(
            &c,
            "SELECT message, edited FROM messages WHERE edited = 1 ORDER BY create_at"
        ),
        [
            "Dev update 50: refactored the sync loop (edited)|1",
            "Sure, 12:45 works better|1"
        ]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT reply_count FROM messages WHERE message = 'Welcome to Engineering!'"
        ),
        ["2"]
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM messages WHERE team = 'eng' AND channel = 'dev'"
        ),
        450
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM messages WHERE time NOT GLOB '2023-11-1[45]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z'"
        ),
        0
    );

    // attachments: every file, its channel, and its bytes' path inside the archive.
    assert_eq!(
        rows(
            &c,
            "SELECT coalesce(team, '-'), channel, author, file_name, size, mime_type, post_deleted FROM attachments ORDER BY file_name"
        ),
        [
            "eng|dev|alice|copy-a.bin|512|application/octet-stream|0",
            "-|bob|bob|copy-b.bin|512|application/octet-stream|0",
            "eng|dev|alice|diagram.png|12420|image/png|0",
            "eng|off-topic|erin|notes.md|372|text/markdown|0",
            "eng|town-square|erin|report final (v2).pdf|2057|application/pdf|0",
            "eng|off-topic|erin|Über Ümläute & ÿ.txt|496|text/plain|0",
        ]
    );
    for (path, size) in rows(&c, "SELECT blob_path, size FROM attachments")
        .iter()
        .map(|r| r.split_once('|').unwrap())
    {
        assert!(path.starts_with("blobs/"), "{path}");
        let on_disk = std::fs::metadata(env.archive.join(path)).unwrap().len();
        assert_eq!(on_disk.to_string(), size, "{path}");
    }
    assert_eq!(
        count(
            &c,
            "SELECT count(DISTINCT blob_path) FROM attachments WHERE file_name LIKE 'copy-_.bin'"
        ),
        1,
        "identical bytes stored once"
    );

    // threads: one row per root with replies.
    assert_eq!(
        rows(
            &c,
            "SELECT coalesce(team, '-'), channel, root_author, root_message, replies, repliers, started, last_reply
             FROM threads WHERE root_message IN ('Welcome to Engineering!', 'Group chat for the launch', 'Hey Alice, got a minute?')
             ORDER BY started"
        ),
        [
            "eng|town-square|alice|Welcome to Engineering!|2|2|2023-11-15T06:34:20Z|2023-11-15T06:36:20Z",
            "-|bob|bob|Hey Alice, got a minute?|2|1|2023-11-15T06:55:20Z|2023-11-15T06:58:20Z",
            "-|bob__carol|carol|Group chat for the launch|3|3|2023-11-15T07:04:20Z|2023-11-15T07:07:20Z",
        ]
    );
    assert_eq!(
        count(&c, "SELECT sum(replies) FROM threads"),
        count(&c, "SELECT count(*) FROM posts WHERE root_id <> ''")
    );

    // channel_stats: the 12 archived channels.
    assert_eq!(count(&c, "SELECT count(*) FROM channel_stats"), 12);
    assert_eq!(
        rows(
            &c,
            "SELECT posts, deleted_posts, files, file_bytes, last_outcome, last_sync IS NOT NULL FROM channel_stats WHERE team = 'eng' AND channel = 'dev'"
        ),
        ["450|0|2|12932|ok|1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_is_read_only_and_leaves_the_archive_untouched() {
    let env = start().await;
    env.sync().await;
    let catalog_file = env.archive.join("catalog.sqlite");
    let bytes_before = std::fs::read(&catalog_file).unwrap();
    let mtime_before = std::fs::metadata(&catalog_file)
        .unwrap()
        .modified()
        .unwrap();
    let posts_before = count(&env.catalog(), "SELECT count(*) FROM posts");

    for (statement, kind) in [
        ("DELETE FROM posts", "DELETE"),
        ("  insert into teams (id) values ('x')", "INSERT"),
        ("UPDATE posts SET message = 'gone'", "UPDATE"),
        ("DROP VIEW messages", "DROP"),
        ("CREATE TABLE notes (x)", "CREATE"),
        ("-- sneaky\nPRAGMA user_version = 99", "PRAGMA"),
        ("VACUUM", "VACUUM"),
        (
            "INSERT INTO post_search (post_search) VALUES ('delete-all')",
            "INSERT",
        ),
        (
            "WITH doomed AS (SELECT id FROM posts) DELETE FROM posts WHERE id IN doomed",
            "WITH",
        ),
    ] {
        let (code, stdout, stderr) = matterbak(&env.archive, &["sql", statement]);
        assert_eq!(code, 2, "{statement}: {stderr}");
        assert!(stdout.is_empty(), "{statement}: {stdout}");
        assert!(
            stderr.contains(&format!(
                "refused: this {kind} statement would change the archive"
            )),
            "{statement}: {stderr}"
        );
    }
    // The library refuses the same way.
    let c = env.catalog();
    struct Nothing;
    impl RowSink for Nothing {
        fn columns(&mut self, _: &[&str]) -> std::io::Result<()> {
            Ok(())
        }
        fn row(&mut self, _: &[matterbak::catalog::Cell<'_>]) -> std::io::Result<()> {
            panic!("no rows expected")
        }
    }
    let err = c.run_sql("DELETE FROM posts", &mut Nothing).unwrap_err();
    assert!(
        matches!(&err, QueryError::WouldWrite { kind } if kind == "DELETE"),
        "{err}"
    );
    let err = c
        .run_sql("SELECT 1; DELETE FROM posts", &mut Nothing)
        .unwrap_err();
    assert!(matches!(err, QueryError::SeveralStatements), "{err}");
    drop(c);

    // Invalid SQL: SQLite's message, exit 2.
    let (code, _, stderr) = matterbak(&env.archive, &["sql", "SELEC 1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("syntax error"), "{stderr}");

    assert_eq!(
        count(&env.catalog(), "SELECT count(*) FROM posts"),
        posts_before
    );
    assert_eq!(std::fs::read(&catalog_file).unwrap(), bytes_before);
    assert_eq!(
        std::fs::metadata(&catalog_file)
            .unwrap()
            .modified()
            .unwrap(),
        mtime_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prints_table_csv_and_json() {
    let env = start().await;
    env.sync().await;
    let statement = "SELECT file_name, size, blob_path IS NULL AS missing, NULL AS absent FROM attachments WHERE channel = 'town-square' OR file_name LIKE 'Über%' ORDER BY size DESC";

    let (code, csv, stderr) = matterbak(&env.archive, &["sql", "--format", "csv", statement]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        csv,
        "file_name,size,missing,absent\nreport final (v2).pdf,2057,0,\nÜber Ümläute & ÿ.txt,496,0,\n"
    );

    let (code, json, _) = matterbak(&env.archive, &["sql", "--format", "json", statement]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value,
        serde_json::json!([
            {"file_name": "report final (v2).pdf", "size": 2057, "missing": 0, "absent": null},
            {"file_name": "Über Ümläute & ÿ.txt", "size": 496, "missing": 0, "absent": null}
        ])
    );

    let (code, table, _) = matterbak(&env.archive, &["sql", statement]);
    assert_eq!(code, 0);
    assert_eq!(
        table,
        "file_name              size  missing  absent\n\
         ---------------------  ----  -------  ------\n\
         report final (v2).pdf  2057        0  NULL\n\
         Über Ümläute & ÿ.txt    496        0  NULL\n"
    );

    // A comma and a quote in a message are quoted in CSV.
    let (_, csv, _) = matterbak(
        &env.archive,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT message FROM messages WHERE message LIKE 'Hey Alice%'",
        ],
    );
    assert_eq!(csv, "message\n\"Hey Alice, got a minute?\"\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_filters_and_highlights() {
    let env = start().await;
    env.sync().await;
    let c = env.catalog();

    // One word, one post: channel, author, time, snippet.
    let hits = search(&c, &query(&["standup"]));
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(
        (
            hit.team.as_deref(),
            hit.channel.as_str(),
            hit.author.as_deref(),
            hit.create_at,
            hit.snippet.as_str(),
            hit.deleted
        ),
        (
            Some("eng"),
            "town-square",
            Some("erin"),
            1_700_030_240_000,
            "[Standup] moved to 10:00, report attached",
            false
        )
    );

    // File names are searchable; diacritics and case are folded.
    let hits = search(&c, &query(&["PDF"]));
    assert_eq!(snippets(&hits), ["report final (v2).[pdf]"]);
    let hits = search(&c, &query(&["umlaute"]));
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].snippet, "notes.md Über [Ümläute] & ÿ.txt");

    // Punctuation needs no escaping; phrases and prefixes work.
    assert_eq!(search(&c, &query(&["10:00"])).len(), 1);
    assert_eq!(search(&c, &query(&["\"got a minute\""])).len(), 1);
    assert_eq!(search(&c, &query(&["got a minute"])).len(), 1);
    assert_eq!(
        search(&c, &query(&["minute got"])).len(),
        0,
        "a phrase keeps its order"
    );
    assert_eq!(
        snippets(&search(&c, &query(&["kickof*"]))),
        ["Great, [kickoff] tomorrow", "[Kickoff] for the old project"]
    );
    assert!(matches!(
        c.search_posts(&query(&["  "])),
        Err(QueryError::NoWords)
    ));

    // Ranking: best (lowest bm25) first.
    let hits = search(&c, &query(&["thanks"]));
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(hits.windows(2).all(|w| w[0].rank <= w[1].rank));

    // Limit: 30 burst posts, 20 by default, as asked otherwise.
    assert_eq!(search(&c, &query(&["deploy", "burst"])).len(), 20);
    let mut q = query(&["deploy", "burst"]);
    q.limit = 100;
    assert_eq!(search(&c, &q).len(), 30);
    q.limit = 3;
    assert_eq!(search(&c, &q).len(), 3);

    // --from, --channel (name, display name, team/channel, direct by username).
    let mut q = query(&["thanks"]);
    q.from = Some("alice".into());
    let hits = search(&c, &q);
    assert_eq!(
        snippets(&hits),
        ["Got it, [thanks]", "[Thanks] Dave, good luck!"]
    );
    q.from = Some("@Alice".into());
    assert_eq!(search(&c, &q).len(), 2);
    let mut q = query(&["thanks"]);
    q.channel = Some("bob".into());
    assert_eq!(snippets(&search(&c, &q)), ["Got it, [thanks]"]);
    let mut q = query(&["update"]);
    q.limit = 1000;
    q.channel = Some("Development".into());
    assert_eq!(search(&c, &q).len(), 420);
    q.channel = Some("town-square".into());
    q.team = Some("ops".into());
    assert_eq!(search(&c, &q).len(), 0, "ops town-square is not archived");
    let mut q = query(&["thanks"]);
    q.channel = Some("town-square".into());
    q.team = Some("Engineering".into());
    assert_eq!(snippets(&search(&c, &q)), ["[Thanks]! Glad to be here."]);

    // Dates: UTC, as ms bounds (the CLI maps --after/--before days to these).
    let midnight = 1_700_006_400_000; // 2023-11-15T00:00:00Z
    let mut q = query(&["dev", "update"]);
    q.limit = 1000;
    q.created_before = Some(midnight);
    let before = search(&c, &q).len() as i64;
    assert_eq!(
        before,
        count(
            &c,
            &format!(
                "SELECT count(*) FROM posts WHERE message LIKE 'Dev update%' AND create_at < {midnight}"
            )
        )
    );
    assert!(before > 0 && before < 420, "{before}");
    q.created_before = None;
    q.created_from = Some(midnight);
    assert_eq!(search(&c, &q).len() as i64, 420 - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_cli_prints_hits_and_validates_flags() {
    let env = start().await;
    env.sync().await;
    let dave = [
        "search",
        "thanks",
        "--from",
        "alice",
        "--channel",
        "direct/dave",
    ];
    let (code, out, stderr) = matterbak(&env.archive, &dave);
    assert_eq!(code, 0, "{stderr}");
    let post = rows(
        &env.catalog(),
        "SELECT id FROM posts WHERE message = 'Thanks Dave, good luck!'",
    )[0]
    .clone();
    assert_eq!(
        out,
        format!(
            "2023-11-15 07:01 UTC  direct/dave  @alice  post {post}\n    [Thanks] Dave, good luck!\n"
        )
    );
    // The same hit as JSON, for scripts.
    let (code, out, stderr) = matterbak(&env.archive, &[&dave[..], &["--json"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let hits: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let hits = hits.as_array().expect("an array");
    assert_eq!(hits.len(), 1, "{out}");
    let hit = &hits[0];
    assert_eq!(hit["post_id"], post.as_str());
    assert_eq!(
        (
            &hit["team"],
            &hit["channel"],
            &hit["channel_type"],
            &hit["author"]
        ),
        (
            &serde_json::Value::Null,
            &serde_json::json!("dave"),
            &serde_json::json!("D"),
            &serde_json::json!("alice")
        )
    );
    assert_eq!(hit["snippet"], "[Thanks] Dave, good luck!");
    assert_eq!(hit["deleted"], false);
    let (code, out, _) = matterbak(&env.archive, &["search", "nosuchword", "--json"]);
    assert_eq!((code, out.trim()), (0, "[]"));

    let (code, out, _) = matterbak(
        &env.archive,
        &["search", "thanks", "--channel", "eng/town-square"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("eng/town-square  @bob  post "), "{out}");
    assert!(out.contains("(reply)"), "{out}");

    // Days are UTC and exclusive, as in Mattermost: nothing is after the 15th.
    let (code, out, stderr) =
        matterbak(&env.archive, &["search", "update", "--after", "2023-11-15"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(stderr.contains("no posts found"), "{stderr}");
    let (_, out, _) = matterbak(
        &env.archive,
        &[
            "search",
            "update",
            "--after",
            "2023-11-13",
            "--before",
            "2023-11-15",
            "--limit",
            "500",
        ],
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("2023-11-14 ")).count() as i64,
        count(
            &env.catalog(),
            "SELECT count(*) FROM posts WHERE message LIKE '%update%' AND create_at < 1700006400000"
        )
    );

    let (code, _, stderr) = matterbak(&env.archive, &["search", "x", "--after", "15.11.2023"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--after must be a date like 2024-03-01"),
        "{stderr}"
    );
    let (code, _, stderr) = matterbak(&env.archive, &["search", "x", "--limit", "0"]);
    assert_eq!(code, 2, "{stderr}");

    // Cut at --limit: says how many match in all.
    let all = env
        .catalog()
        .count_search_matches(&query(&["update"]))
        .unwrap();
    assert!(all > 3, "{all}");
    let (code, out, stderr) = matterbak(&env.archive, &["search", "update", "--limit", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" UTC  ")).count(),
        3,
        "{out}"
    );
    assert!(
        stderr.contains(&format!(
            "3 of {all} matching posts shown, best first; --limit N shows more"
        )),
        "{stderr}"
    );
    // Equal ranks (many posts say just "update …"): newest first, the same on every run.
    let (_, out, _) = matterbak(
        &env.archive,
        &["search", "update", "--limit", "500", "--json"],
    );
    let hits: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let ties: Vec<_> = hits
        .windows(2)
        .filter(|w| w[0]["rank"] == w[1]["rank"])
        .collect();
    assert!(!ties.is_empty(), "the sample has equal ranks");
    for w in ties {
        assert!(
            w[0]["create_at"].as_i64() >= w[1]["create_at"].as_i64(),
            "{w:?}"
        );
    }
    // Nothing on stderr with --json, even without hits.
    let (code, out, stderr) = matterbak(&env.archive, &["search", "nosuchword", "--json"]);
    assert_eq!((code, out.trim(), stderr.as_str()), (0, "[]", ""));
    // An unknown channel or user is named, not "no posts found".
    for (flag, what) in [("--channel", "channel"), ("--from", "user")] {
        let (code, _, stderr) = matterbak(&env.archive, &["search", "update", flag, "nosuch"]);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(
            stderr.trim(),
            format!("error: no {what} named `nosuch` in the archive")
        );
    }
    let (code, _, stderr) = matterbak(
        &env.archive,
        &["search", "update", "--channel", "nosuch/dev"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no team named `nosuch`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_follows_edits_new_posts_and_deletions() {
    let env = start().await;
    env.sync().await;
    let (edited, deleted) = env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        let build = w.find_post(&town, "Build #1024 passed");
        w.edit_post(&build, "Build #1025 zeppelin green");
        w.create_post(&town, "carol", "The zeppelin has landed", None);
        let private = w.channel_id("eng", "eng-private");
        let plan = w.find_post(&private, "Private plan");
        w.delete_post(&plan);
        (build, plan)
    });
    // A reaction rewrites the post row without changing its text.
    env.server
        .with_workspace(|w| w.add_reaction(&edited, "carol", "smile"));
    env.sync().await;
    let c = env.catalog();

    let hits = search(&c, &query(&["zeppelin"]));
    assert_eq!(
        snippets(&hits),
        ["Build #1025 [zeppelin] green", "The [zeppelin] has landed"]
    );
    assert!(hits.iter().any(|h| h.post_id == edited));
    assert!(
        search(&c, &query(&["1024"])).is_empty(),
        "old text no longer indexed"
    );
    assert_eq!(search(&c, &query(&["1025"])).len(), 1);

    // The deleted root (and its reply, deleted with it) keep their text in the archive:
    // hidden by default, found when asked.
    assert!(search(&c, &query(&["friday"])).is_empty());
    let mut q = query(&["friday"]);
    q.deleted = DeletedPosts::Include;
    let hits = search(&c, &q);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (
            hits[0].post_id.as_str(),
            hits[0].deleted,
            hits[0].snippet.as_str()
        ),
        (deleted.as_str(), true, "Private plan: ship v2 on [Friday]")
    );
    let (_, out, _) = matterbak(&env.archive, &["search", "friday", "--include-deleted"]);
    assert!(
        out.contains("eng/eng-private  @alice  post") && out.contains("(deleted)"),
        "{out}"
    );

    // The index holds exactly one row per post, and FTS5 finds it consistent.
    drop(c);
    assert_eq!(
        count(&env.catalog(), "SELECT count(*) FROM post_search"),
        count(&env.catalog(), "SELECT count(*) FROM posts")
    );
    let conn = rusqlite::Connection::open(env.archive.join("catalog.sqlite")).unwrap();
    conn.execute(
        "INSERT INTO post_search (post_search) VALUES ('integrity-check')",
        [],
    )
    .expect("full-text index consistent with its content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_per_team_and_channel_and_show_dedup() {
    let env = start().await;
    env.sync().await;
    let stats = env.catalog().archive_stats().unwrap();
    let eng = stats
        .teams
        .iter()
        .find(|t| t.team.as_deref() == Some("eng"))
        .unwrap();
    assert_eq!(
        (eng.channels, eng.posts, eng.files, eng.file_bytes),
        (5, 463, 5, 15857)
    );
    let direct = stats.teams.iter().find(|t| t.team.is_none()).unwrap();
    assert_eq!(
        (
            direct.channels,
            direct.posts,
            direct.files,
            direct.file_bytes
        ),
        (6, 13, 1, 512)
    );
    assert_eq!(stats.channels.len(), 12);
    assert!(
        stats
            .channels
            .iter()
            .all(|c| c.last_outcome.as_deref() == Some("ok"))
    );
    assert_eq!(stats.attachments_stored, 6);
    assert_eq!(stats.attachment_bytes, 16369);
    assert_eq!(
        stats.dedup_saved(),
        512,
        "copy-a.bin and copy-b.bin share a blob"
    );
    assert_eq!(stats.attachments_missing, 0);
    let on_disk: u64 = walk_files(&env.archive.join("blobs"));
    assert_eq!(stats.blob_bytes as u64, on_disk);
    let run = stats.last_run.as_ref().unwrap();
    assert_eq!(
        (run.outcome.as_deref(), run.username.as_deref()),
        (Some("ok"), Some("alice"))
    );

    let (code, out, stderr) = matterbak(&env.archive, &["stats"]);
    assert_eq!(code, 0, "{stderr}");
    let dev_line = out.lines().find(|l| l.starts_with("eng/dev ")).unwrap();
    let cells: Vec<&str> = dev_line.split_whitespace().collect();
    assert_eq!(&cells[..5], ["eng/dev", "450", "0", "2", "12932"]);
    assert_eq!(cells[6], "ok");
    assert!(out.contains("dedup saved 512 B (512 bytes)"), "{out}");
    assert!(out.contains("last sync: started "), "{out}");
    let (_, json, _) = matterbak(&env.archive, &["stats", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["attachment_bytes"], 16369);
}

fn walk_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk_files(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Tables of schema version 1, copied row for row to fake an archive of that version.
const SCHEMA_1_TABLES: [&[&str]; 2] = [common::SERVER_TABLES, &["sync_runs"]];

/// Writes `archive` as the first matterbak version would have: schema 1 only, holding the
/// same rows as `source`.
fn make_schema_1_archive(source: &Path, archive: &Path) {
    std::fs::create_dir_all(archive).unwrap();
    let conn = rusqlite::Connection::open(archive.join("catalog.sqlite")).unwrap();
    conn.execute_batch(MIGRATIONS[0].1).unwrap();
    conn.execute_batch("PRAGMA user_version = 1").unwrap();
    conn.execute(
        "ATTACH DATABASE ?1 AS source",
        [source.join("catalog.sqlite").to_str().unwrap()],
    )
    .unwrap();
    for table in SCHEMA_1_TABLES.concat() {
        // Schema 1's columns only: later migrations add columns to some tables.
        let columns: String = conn
            .query_row(
                "SELECT group_concat(name, ', ') FROM pragma_table_info(?1, 'main')",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        // Table and column names are our own; ATTACHed copies take no parameters for names.
        conn.execute_batch(&format!(
            "INSERT INTO main.{table} ({columns}) SELECT {columns} FROM source.{table}"
        ))
        .unwrap();
    }
    conn.execute_batch("DETACH DATABASE source").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_made_with_the_first_schema_is_upgraded_in_place() {
    let env = start().await;
    env.sync().await;
    let old = env.dir.path().join("old-archive");
    make_schema_1_archive(&env.archive, &old);
    {
        let conn = rusqlite::Connection::open(old.join("catalog.sqlite")).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('messages', 'post_search')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "really the first schema");
    }

    // A read command upgrades it (under the archive lock) and then reads it.
    let (code, out, stderr) = matterbak(&old, &["search", "standup"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "upgraded the catalog of {} from schema version 1 to {SCHEMA_VERSION}",
            old.display()
        )),
        "{stderr}"
    );
    assert!(out.contains("[Standup] moved to 10:00"), "{out}");
    let (_, _, stderr) = matterbak(&old, &["stats"]);
    assert!(!stderr.contains("upgraded"), "only once: {stderr}");

    // Upgraded and fresh archives read the same: views, search, stats.
    let fresh = env.catalog();
    let upgraded = Catalog::open(&old.join("catalog.sqlite"), Access::ReadOnly).unwrap();
    assert_eq!(upgraded.schema_version().unwrap(), SCHEMA_VERSION);
    for sql in [
        "SELECT id, time, team, channel, author, message, root_id, reply_count, edited, deleted, attachment_count FROM messages ORDER BY id",
        "SELECT * FROM attachments ORDER BY id",
        "SELECT * FROM threads ORDER BY root_id",
        "SELECT * FROM channel_stats ORDER BY channel_id",
        "SELECT p.id, s.message, s.file_names FROM post_search s JOIN posts p ON p.rowid = s.rowid ORDER BY p.id",
    ] {
        assert_eq!(rows(&upgraded, sql), rows(&fresh, sql), "{sql}");
    }
    for words in [
        &["deploy", "burst"][..],
        &["pdf"],
        &["thanks"],
        &["ümläute"],
    ] {
        let mut q = query(words);
        q.limit = 100;
        let ids = |c: &Catalog| {
            let mut ids: Vec<String> = search(c, &q)
                .into_iter()
                .map(|h| h.post_id.into())
                .collect();
            ids.sort();
            ids
        };
        assert!(!ids(&fresh).is_empty());
        assert_eq!(ids(&upgraded), ids(&fresh), "{words:?}");
    }
    assert_eq!(
        upgraded.archive_stats().unwrap(),
        fresh.archive_stats().unwrap()
    );
    drop(upgraded);

    // And a sync carries on in the upgraded archive, keeping the index in step.
    env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        w.create_post(&town, "bob", "Upgraded archives index new posts", None);
    });
    let mut options = env.options();
    options.archive = old.clone();
    env.sync_with(options).await;
    let upgraded = Catalog::open(&old.join("catalog.sqlite"), Access::ReadOnly).unwrap();
    assert_eq!(search(&upgraded, &query(&["upgraded"])).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_from_a_newer_version_is_refused_and_untouched() {
    let env = start().await;
    env.sync().await;
    let catalog_file = env.archive.join("catalog.sqlite");
    {
        let conn = rusqlite::Connection::open(&catalog_file).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
            .unwrap();
    }
    let before = std::fs::read(&catalog_file).unwrap();
    let newer = format!(
        "schema version {}, newer than this matterbak understands ({SCHEMA_VERSION}); use a newer matterbak",
        SCHEMA_VERSION + 1
    );
    for args in [&["sql", "SELECT 1"][..], &["search", "standup"], &["stats"]] {
        let (code, out, stderr) = matterbak(&env.archive, args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{out}");
        assert!(stderr.contains(&newer), "{args:?}: {stderr}");
    }
    for access in [Access::ReadOnly, Access::ReadWrite] {
        let err = Catalog::open(&env.archive.join("catalog.sqlite"), access)
            .err()
            .unwrap();
        assert!(
            matches!(err, CatalogError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&catalog_file).unwrap(), before);
}

/// The queries between the README's `readme-queries` markers, in order.
fn readme_queries() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, rest) = readme
        .split_once("<!-- readme-queries:begin -->")
        .expect("begin marker");
    let (block, _) = rest
        .split_once("<!-- readme-queries:end -->")
        .expect("end marker");
    block
        .split("```sql\n")
        .skip(1)
        .map(|part| {
            part.split_once("```")
                .expect("closing fence")
                .0
                .trim()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_queries_run_and_answer() {
    let env = start().await;
    env.sync().await;
    let queries = readme_queries();
    assert_eq!(queries.len(), 5, "the README promises five queries");
    let results: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            let (code, out, stderr) = matterbak(&env.archive, &["sql", "--format", "csv", q]);
            assert_eq!(code, 0, "{q}: {stderr}");
            out.lines().map(String::from).collect()
        })
        .collect();
    // Busiest channels.
    assert_eq!(results[0][0], "team,channel,posts,deleted");
    assert_eq!(results[0][1..3], ["eng,dev,450,0", "eng,town-square,6,0"]);
    assert_eq!(results[0].len(), 11);
    // Posts per month and author.
    assert_eq!(
        results[1],
        [
            "month,author,posts",
            "2023-11,helperbot,136",
            "2023-11,alice,115",
            "2023-11,bob,112",
            "2023-11,carol,109",
            "2023-11,erin,3",
            "2023-11,dave,2",
            "2023-11,frank,1"
        ]
    );
    // Largest attachments, with their place in the blob store.
    assert_eq!(results[2][0], "channel,file_name,size,mime_type,blob_path");
    assert!(
        results[2][1].starts_with("dev,diagram.png,12420,image/png,blobs/"),
        "{:?}",
        results[2]
    );
    assert!(
        results[2][2].starts_with("town-square,report final (v2).pdf,2057,application/pdf,blobs/")
    );
    assert_eq!(results[2].len(), 7);
    // Longest threads.
    assert_eq!(
        results[3][..3],
        [
            "channel,root_author,replies,repliers,last_reply,root",
            "bob__carol,carol,3,3,2023-11-15T07:07:20Z,Group chat for the launch",
            "bob,bob,2,1,2023-11-15T06:58:20Z,\"Hey Alice, got a minute?\"",
        ]
    );
    // Full-text search in SQL.
    assert_eq!(results[4][0], "time,channel,author,snippet");
    assert_eq!(results[4].len(), 11);
    assert!(
        results[4][1..]
            .iter()
            .all(|l| l.contains(",dev,") && l.ends_with("reviewed the [schema] [migration]")),
        "{:?}",
        results[4]
    );
}

/// The archive reads in the stock sqlite3 shell (no custom functions). Without the shell the
/// test fails, naming what to install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_sqlite3_shell_reads_views_and_the_index() {
    let probe = Command::new("sqlite3")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the sqlite3 shell ({e}): install it (apt-get install sqlite3, or run \
                 `scripts/test-deps cargo test`)"
            )
        });
    assert!(probe.status.success());
    let env = start().await;
    env.sync().await;
    let out = Command::new("sqlite3")
        .arg("-readonly")
        .arg(env.archive.join("catalog.sqlite"))
        .arg("SELECT author || ': ' || message FROM messages WHERE id = (SELECT p.id FROM post_search JOIN posts p ON p.rowid = post_search.rowid WHERE post_search MATCH 'standup'); SELECT count(*) FROM threads; SELECT channel FROM attachments WHERE file_name = 'copy-b.bin'; SELECT posts FROM channel_stats WHERE channel = 'dev';")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let threads = count(&env.catalog(), "SELECT count(*) FROM threads");
    assert_eq!(
        stdout,
        format!("erin: Standup moved to 10:00, report attached\n{threads}\nbob\n450\n")
    );
}

/// The views stay linear on big archives: no per-row (correlated) subquery scans a table
/// (a `reply_count` that scanned every post per row took hours on a million posts).
#[test]
fn views_look_rows_up_by_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap());
    let c = Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadOnly).unwrap();
    for view in ["messages", "attachments", "threads", "channel_stats"] {
        let plan = rows(&c, &format!("EXPLAIN QUERY PLAN SELECT * FROM {view}"));
        // Each row: id|parent|notused|detail.
        let nodes: Vec<(String, String, String)> = plan
            .iter()
            .map(|r| {
                let mut parts = r.splitn(4, '|');
                let id = parts.next().unwrap().to_owned();
                let parent = parts.next().unwrap().to_owned();
                let detail = parts.nth(1).unwrap().to_owned();
                (id, parent, detail)
            })
            .collect();
        let in_correlated = |start: &String| {
            let mut parent = start.clone();
            while let Some((_, up, detail)) = nodes.iter().find(|(id, _, _)| *id == parent) {
                if detail.contains("CORRELATED") {
                    return true;
                }
                parent = up.clone();
            }
            false
        };
        for (_, parent, detail) in &nodes {
            assert!(
                !(detail.starts_with("SCAN") && in_correlated(parent)),
                "{view}: a per-row subquery scans a table:\n{}",
                plan.join("\n")
            );
        }
        if view == "messages" {
            let plan = plan.join("\n");
            assert!(
                plan.contains("posts_root") && plan.contains("files_post"),
                "{plan}"
            );
        }
    }
}
