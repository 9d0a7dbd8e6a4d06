//! Integration tests: the sync engine against the mock Mattermost on loopback.

use crate::common;

use common::{content_snapshot, count, rows, start};
use matterbak::mock::Faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_archives_every_object_kind() {
    let env = start().await;
    let report = env.sync().await;
    common::assert_complete(&report);
    let c = env.catalog();
    let ws =
        |f: &dyn Fn(&matterbak::mock::Workspace) -> String| env.server.with_workspace(|w| f(w));

    // Teams: eng and ops selected (ops by display name), secret reported as not joined.
    assert_eq!(
        rows(
            &c,
            "SELECT name FROM teams WHERE selected = 1 ORDER BY name"
        ),
        ["eng", "ops"]
    );
    assert!(
        report.notes.iter().any(|n| n.contains("team \"secret\"")),
        "{:?}",
        report.notes
    );
    assert!(
        report.notes.iter().any(|n| n.contains("\"nobody\"")),
        "{:?}",
        report.notes
    );
    // Team icon only where one was uploaded.
    assert_eq!(
        rows(&c, "SELECT name FROM teams WHERE icon_blob IS NOT NULL"),
        ["eng"]
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM team_members WHERE team_id = (SELECT id FROM teams WHERE name = 'eng')"
        ),
        6
    );

    // Channels of all four types, archived included; ops town-square excluded by display name.
    let selected = rows(
        &c,
        "SELECT type || ':' || coalesce(export_name, name) FROM channels WHERE selected = 1 ORDER BY 1",
    );
    for expected in [
        "O:town-square",
        "O:dev",
        "O:off-topic",
        "P:eng-private",
        "O:old-project",
        "P:incidents",
        "D:bob",
        "D:alice",
        "D:dave",
        "D:helperbot",
        "G:bob__carol",
        "G:bob__carol__erin",
    ] {
        assert!(
            selected.contains(&expected.to_string()),
            "{expected} missing from {selected:?}"
        );
    }
    assert_eq!(selected.len(), 12, "{selected:?}");
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM channels WHERE selected = 1 AND delete_at > 0"
        ),
        1,
        "archived channel"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM channels WHERE name = 'no-access'"),
        0,
        "not a member"
    );
    // Every selected channel has its member list.
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM channels c WHERE selected = 1 AND NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel_id = c.id)"
        ),
        0
    );

    // Every live post of every selected channel, including the 450 of dev with a burst of
    // equal create_at across the page boundary.
    let dev = ws(&|w| w.channel_id("eng", "dev"));
    let dev_live = env.server.with_workspace(|w| w.post_ids(&dev));
    assert_eq!(dev_live.len(), 450);
    let stored: Vec<String> = rows(
        &c,
        &format!(
            "SELECT id FROM posts WHERE channel_id = '{dev}' AND delete_at = 0 ORDER BY create_at, id"
        ),
    );
    let mut expected = dev_live.clone();
    expected.sort();
    let mut got = stored.clone();
    got.sort();
    assert_eq!(got, expected);
    for channel in rows(&c, "SELECT id FROM channels WHERE selected = 1") {
        let live = env.server.with_workspace(|w| w.post_ids(&channel)).len() as i64;
        assert_eq!(
            count(
                &c,
                &format!("SELECT count(*) FROM posts WHERE channel_id = '{channel}'")
            ),
            live,
            "channel {channel}"
        );
    }

    // Raw JSON kept byte for byte: compare with what the server sends for one post.
    let some_post = &dev_live[10];
    let direct = reqwest_get_post(&env, some_post).await;
    assert_eq!(
        rows(
            &c,
            &format!("SELECT json FROM posts WHERE id = '{some_post}'")
        )[0],
        direct
    );

    // Threads, edits, reactions, files.
    assert!(count(&c, "SELECT count(*) FROM posts WHERE root_id <> ''") >= 5);
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM posts p WHERE root_id <> '' AND NOT EXISTS (SELECT 1 FROM posts r WHERE r.id = p.root_id)"
        ),
        0,
        "replies point at stored roots"
    );
    assert!(count(&c, "SELECT count(*) FROM posts WHERE edit_at > 0") >= 1);
    assert!(count(&c, "SELECT count(*) FROM reactions") >= 3);
    let file_count = env.server.with_workspace(|w| w.file_ids().len());
    let stored_files = count(&c, "SELECT count(*) FROM files WHERE blob IS NOT NULL") as usize;
    assert!(
        stored_files >= 6 && stored_files < file_count + 1,
        "{stored_files} of {file_count}"
    );
    // Equal bytes are one blob; odd names survive.
    assert_eq!(
        count(
            &c,
            "SELECT count(DISTINCT blob) FROM files WHERE name IN ('copy-a.bin', 'copy-b.bin')"
        ),
        1
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM files WHERE name IN ('copy-a.bin', 'copy-b.bin')"
        ),
        2
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM files WHERE name = 'Über Ümläute & ÿ.txt'"
        ),
        1
    );
    for row in rows(&c, "SELECT b.hash || '|' || b.size FROM blobs b") {
        let (hash, size) = row.split_once('|').unwrap();
        let path = env
            .archive
            .join("blobs")
            .join(&hash[0..2])
            .join(&hash[2..4])
            .join(hash);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len().to_string(), size);
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            hash,
            "blob named by its hash"
        );
    }

    // Users: me, members, bots, deactivated; pictures only where uploaded.
    let users = rows(&c, "SELECT username FROM users ORDER BY username");
    for name in ["alice", "bob", "carol", "dave", "erin", "helperbot"] {
        assert!(users.contains(&name.to_string()), "{name} in {users:?}");
    }
    assert_eq!(
        rows(
            &c,
            "SELECT username FROM users WHERE avatar_blob IS NOT NULL ORDER BY username"
        ),
        ["alice", "bob"]
    );
    assert_eq!(
        rows(
            &c,
            "SELECT delete_at > 0 FROM users WHERE username = 'dave'"
        ),
        ["1"]
    );
    assert_eq!(
        rows(&c, "SELECT is_bot FROM users WHERE username = 'helperbot'"),
        ["1"]
    );

    // Custom emojis with images of their own type; the deleted one is not listed.
    assert_eq!(
        rows(
            &c,
            "SELECT name || ':' || image_content_type FROM emojis ORDER BY name"
        ),
        ["dancing:image/gif", "thumbsup_custom:image/png"]
    );

    // The run is recorded.
    assert_eq!(
        rows(&c, "SELECT outcome || ':' || username FROM sync_runs"),
        ["ok:alice"]
    );
    assert!(count(&c, "SELECT requests FROM sync_runs") > 0);
    println!("first sync requests: {}", env.server.request_count());
}

async fn reqwest_get_post(env: &common::Env, post_id: &str) -> String {
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{}/api/v4/users/login", env.server.url()))
        .json(
            &serde_json::json!({"login_id": "alice", "password": matterbak::mock::SAMPLE_PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    let token = login.headers()["token"].to_str().unwrap().to_owned();
    let list = client
        .get(format!("{}/api/v4/posts/{post_id}", env.server.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    list.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sync_picks_up_every_kind_of_change() {
    let env = start().await;
    env.sync().await;
    let before = env.catalog();
    let posts_before = count(&before, "SELECT count(*) FROM posts");
    let bob_avatar_before = rows(
        &before,
        "SELECT avatar_blob FROM users WHERE username = 'bob'",
    )[0]
    .clone();
    drop(before);

    // Mutations, plus the standard update scenario.
    let (town, edited, deleted_root, reacted, unreacted) = env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        let root = w.create_post(&town, "bob", "brand new root", None);
        w.create_post(&town, "carol", "a new reply", Some(&root));
        let dev = w.channel_id("eng", "dev");
        let edited = w.post_ids(&dev)[5].clone();
        w.edit_post(&edited, "edited text");
        let private = w.channel_id("eng", "eng-private");
        let deleted_root = w.post_ids(&private)[0].clone();
        w.delete_post(&deleted_root);
        let reacted = w.post_ids(&dev)[7].clone();
        w.add_reaction(&reacted, "carol", "tada");
        let unreacted = w.post_ids(&dev)[8].clone();
        w.add_reaction(&unreacted, "bob", "smile");
        (town, edited, deleted_root, reacted, unreacted)
    });
    // The reaction removed must first be archived: sync, then remove it.
    env.sync().await;
    env.server.with_workspace(|w| {
        w.remove_reaction(&unreacted, "bob", "smile");
        w.set_avatar("carol", b"\x89PNG\r\n\x1a\nfirst carol picture".to_vec());
        w.add_emoji("party_parrot_2", "bob", b"GIF89a new emoji".to_vec(), "gif");
        w.create_channel("eng", "fresh", "Fresh Channel", 'O', &["alice", "bob"]);
        let off = w.channel_id("eng", "off-topic");
        w.archive_channel(&off);
        let dev = w.channel_id("eng", "dev");
        w.add_channel_member(&dev, "erin");
        w.apply_update_scenario();
    });
    let report = env.sync().await;
    common::assert_complete(&report);
    let c = env.catalog();

    assert!(count(&c, "SELECT count(*) FROM posts") > posts_before);
    assert_eq!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM posts WHERE channel_id = '{town}' AND message IN ('brand new root', 'a new reply')"
            )
        ),
        2
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM posts r JOIN posts p ON p.id = r.root_id WHERE r.message = 'a new reply' AND p.message = 'brand new root'"
        ),
        1
    );
    // Edit: newest text current, earlier text kept as a version.
    assert_eq!(
        rows(
            &c,
            &format!("SELECT message FROM posts WHERE id = '{edited}'")
        ),
        ["edited text"]
    );
    let versions = rows(
        &c,
        &format!(
            "SELECT message IS NOT NULL AND message <> 'edited text' FROM post_versions WHERE post_id = '{edited}'"
        ),
    );
    assert_eq!(versions, ["1"], "old version kept");
    // Deletion: marked, content kept, replies cascade.
    let deleted = rows(
        &c,
        &format!(
            "SELECT delete_at > 0, message <> '', seen_live FROM posts WHERE id = '{deleted_root}'"
        ),
    );
    assert_eq!(deleted, ["1|1|1"]);
    assert!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM posts WHERE root_id = '{deleted_root}' AND delete_at = 0"
            )
        ) == 0
    );
    // Reactions added and removed.
    assert_eq!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM reactions WHERE post_id = '{reacted}' AND emoji_name = 'tada' AND removed_at IS NULL"
            )
        ),
        1
    );
    assert_eq!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM reactions WHERE post_id = '{unreacted}' AND emoji_name = 'smile' AND removed_at IS NOT NULL"
            )
        ),
        1
    );
    // A first avatar and a changed one (the scenario changes bob's); old blobs stay stored.
    let carol_avatar =
        rows(&c, "SELECT avatar_blob FROM users WHERE username = 'carol'")[0].clone();
    assert_eq!(
        carol_avatar,
        blake3::hash(b"\x89PNG\r\n\x1a\nfirst carol picture")
            .to_hex()
            .to_string()
    );
    let bob_avatar = rows(&c, "SELECT avatar_blob FROM users WHERE username = 'bob'")[0].clone();
    assert_ne!(
        bob_avatar, bob_avatar_before,
        "bob's changed avatar fetched"
    );
    assert_eq!(
        count(
            &c,
            &format!("SELECT count(*) FROM blobs WHERE hash = '{bob_avatar_before}'")
        ),
        1,
        "old avatar kept"
    );
    // New emoji and new channel.
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM emojis WHERE name = 'party_parrot_2' AND image_blob IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM channels WHERE name = 'fresh' AND selected = 1"
        ),
        1
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM channel_members m JOIN channels c ON c.id = m.channel_id WHERE c.name = 'fresh'"
        ),
        2
    );
    // Archived channel: marked, its posts kept; a member added to dev appears.
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM channels WHERE name = 'off-topic' AND delete_at > 0 AND selected = 1"
        ),
        1
    );
    assert!(
        count(
            &c,
            "SELECT count(*) FROM posts p JOIN channels c ON c.id = p.channel_id WHERE c.name = 'off-topic'"
        ) >= 3
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM channel_members m JOIN channels c ON c.id = m.channel_id JOIN users u ON u.id = m.user_id WHERE c.name = 'dev' AND u.username = 'erin' AND m.removed_at IS NULL"
        ),
        1,
        "membership refreshed after the system_add_to_channel post"
    );
    // The update scenario's channel and emoji.
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM channels WHERE name = 'announcements' AND selected = 1"
        ),
        1
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM posts p JOIN channels c ON c.id = p.channel_id WHERE c.name = 'announcements'"
        ),
        3
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM emojis WHERE name = 'party_parrot'"
        ),
        1
    );

    // The incremental result equals a fresh full sync of the same server state.
    drop(c);
    let fresh = tempfile::tempdir().unwrap();
    let mut options = env.options();
    options.archive = fresh.path().join("archive");
    env.sync_with(options.clone()).await;
    let incremental = content_snapshot(&env.archive);
    let full = content_snapshot(&options.archive);
    for table in [
        "channels",
        "emojis",
        "files",
        "team_members",
        "channel_members",
    ] {
        assert_eq!(incremental[table], full[table], "table {table}");
    }
    // Posts: the fresh sync never saw deleted posts; every live post must match.
    let live = |snap: &std::collections::BTreeMap<&str, Vec<String>>| -> Vec<String> {
        snap["posts"]
            .iter()
            .filter(|r| r.split('|').nth(6) == Some("0"))
            .cloned()
            .collect()
    };
    assert_eq!(live(&incremental), live(&full));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_workspace_costs_one_posts_request_per_channel() {
    let env = start().await;
    env.sync().await;
    let first = env.server.request_count();
    let channels = count(
        &env.catalog(),
        "SELECT count(*) FROM channels WHERE selected = 1",
    ) as usize;
    env.server.reset_requests();
    let before = content_snapshot(&env.archive);
    // The `since` answer also carries posts deleted before the first sync (within its margin):
    // the first sync never saw them, so this one must not store them either.
    let report = env.sync().await;
    assert_eq!(
        report.summary.posts_written, 0,
        "an unchanged workspace writes no post"
    );
    assert_eq!(
        before["posts"],
        content_snapshot(&env.archive)["posts"],
        "the first sync and the next agree on what exists"
    );
    assert_eq!(
        env.posts_requests(),
        channels,
        "one since request per channel"
    );
    let noop = env.server.request_count();
    assert!(
        noop <= channels + 10,
        "no-op sync used {noop} requests for {channels} channels"
    );
    let mut by_route = std::collections::BTreeMap::new();
    for r in env.server.requests() {
        *by_route.entry(r.route).or_insert(0) += 1;
    }
    println!("requests: first sync {first}, no-op sync {noop}, channels {channels}: {by_route:#?}");
    let again = env.sync().await;
    assert_eq!(again.summary.posts_written, 0, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_old_posts_rereads_everything_and_finds_deletions_without_since() {
    let env = start().await;
    env.sync().await;
    let dev = env.server.with_workspace(|w| w.channel_id("eng", "dev"));
    env.server.reset_requests();
    let mut options = env.options();
    options.update_old_posts = true;
    env.sync_with(options).await;
    // 450 posts with 200 per page: at least 3 pages for dev alone.
    let dev_requests = env
        .server
        .requests()
        .iter()
        .filter(|r| r.route.ends_with("/posts") && r.path.contains(&dev))
        .count();
    assert!(dev_requests >= 3, "{dev_requests}");
    let posts_queries: Vec<String> = env
        .server
        .requests()
        .into_iter()
        .filter(|r| r.route.ends_with("/posts"))
        .map(|r| r.query)
        .collect();
    assert!(
        posts_queries.iter().all(|q| !q.contains("since=")),
        "a rescan does not use since: {posts_queries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_thousand_changes_are_recovered_by_a_walk() {
    let env = start().await;
    env.sync().await;
    let (dev, edited) = env.server.with_workspace(|w| {
        let dev = w.channel_id("eng", "dev");
        let ids = w.post_ids(&dev);
        // 450 edits make 900 changed rows (post + history row); 150 new posts pass the cap.
        for id in &ids {
            w.edit_post(id, &format!("bulk edit of {id}"));
        }
        for i in 0..150 {
            w.create_post(&dev, "bob", &format!("bulk new {i}"), None);
        }
        (dev, ids)
    });
    env.sync().await;
    let c = env.catalog();
    let stale = count(
        &c,
        &format!(
            "SELECT count(*) FROM posts WHERE channel_id = '{dev}' AND delete_at = 0 AND message NOT LIKE 'bulk %'"
        ),
    );
    assert_eq!(stale, 0, "every edit archived despite the silent cap");
    assert_eq!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM posts WHERE channel_id = '{dev}' AND message LIKE 'bulk new %'"
            )
        ),
        150
    );
    assert_eq!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM post_versions WHERE post_id IN (SELECT id FROM posts WHERE channel_id = '{dev}')"
            )
        ),
        edited.len() as i64
    );
}

/// A server without `GET /users/me/channels` (older releases): the channels are read team by
/// team instead, direct and group channels once, and the archive is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_read_team_by_team_where_the_one_request_form_is_missing() {
    let env = start().await;
    env.server.set_faults(Faults {
        missing_routes: vec!["/api/v4/users/{user_id}/channels"],
        ..Faults::default()
    });
    let report = env.sync().await;
    common::assert_complete(&report);
    let teams = count(&env.catalog(), "SELECT count(*) FROM teams");
    assert_eq!(
        env.server
            .count("GET /api/v4/users/{user_id}/teams/{team_id}/channels"),
        teams as usize,
        "one channel list per team"
    );
    common::assert_same_as_a_fresh_sync(&env, "team by team versus one request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_and_url_forms_reach_the_same_server() {
    let env = start().await;
    for suffix in ["", "/api", "/api/v4/"] {
        let mut credentials = env.credentials();
        credentials.auth = matterbak::config::Auth::Token(matterbak::config::Secret::new(
            matterbak::mock::SAMPLE_TOKEN,
        ));
        credentials.server =
            matterbak::config::normalize_server_url(&format!("{}{suffix}", env.server.url()))
                .unwrap();
        let report = matterbak::sync::run_sync(
            &credentials,
            &env.options(),
            &matterbak::progress::Silent,
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(report.user, "alice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_fast_with_a_clear_error_and_no_secret() {
    let env = start().await;
    let mut credentials = env.credentials();
    credentials.auth =
        matterbak::config::Auth::Password(matterbak::config::Secret::new("wrong-secret-value"));
    let err = matterbak::sync::run_sync(
        &credentials,
        &env.options(),
        &matterbak::progress::Silent,
        &Default::default(),
    )
    .await
    .unwrap_err();
    let text = format!("{err}");
    assert!(
        text.contains("401") && text.contains("password or token"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret-value"));
    // Refused before anything was written: the archive was not even created.
    assert!(
        !env.archive.exists(),
        "bad credentials left an archive behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_accounts_need_the_code() {
    use matterbak::config::{Auth, Secret};
    use matterbak::mock::{SAMPLE_MFA_CODE, SAMPLE_MFA_PASSWORD, SAMPLE_MFA_USER};
    let env = start().await;
    let mut credentials = env.credentials();
    credentials.user = SAMPLE_MFA_USER.into();
    credentials.auth = Auth::Password(Secret::new(SAMPLE_MFA_PASSWORD));
    let err = matterbak::sync::run_sync(
        &credentials,
        &env.options(),
        &matterbak::progress::Silent,
        &Default::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("--mfa-token"), "{err}");
    let mut options = env.options();
    options.mfa_token = Some(SAMPLE_MFA_CODE.into());
    let report = matterbak::sync::run_sync(
        &credentials,
        &options,
        &matterbak::progress::Silent,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.user, SAMPLE_MFA_USER);
}

/// `--rate-limit R` spaces requests at least 1/R apart. The rate is set from an unlimited run
/// of the same sync on this machine, so that the limited run must take three times as long:
/// a lower bound that a broken limiter misses however fast or slow the machine is (and no
/// upper bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rate_limit_spaces_requests() {
    let free = start().await;
    let mut options = free.options();
    options.client.rate_limit = None;
    options.client.concurrency = 4;
    let started = std::time::Instant::now();
    let report = free.sync_with(options).await;
    let unlimited = started.elapsed().as_secs_f64();
    let n = report.summary.requests as f64;
    let rate = (n - 1.0) / (3.0 * unlimited).max(1.0);

    let env = start().await;
    let mut options = env.options();
    options.client.concurrency = 4;
    options.client.rate_limit = Some(rate);
    let report = env.sync_with(options).await;
    common::assert_complete(&report);
    // As the server saw them: n requests at `rate` span at least (n - 1) / rate seconds.
    let requests = env.server.requests();
    let span = requests
        .last()
        .unwrap()
        .arrived
        .duration_since(requests[0].arrived)
        .as_secs_f64();
    let floor = (requests.len() - 1) as f64 / rate;
    assert!(
        span >= floor * 0.95,
        "{} requests in {span:.2} s at {rate:.1}/s (floor {floor:.2} s; {unlimited:.2} s unlimited)",
        requests.len()
    );
}

use crate::mock_support;

/// Group channels of `env`'s alice: 69 new ones (more than the 50 ids one
/// `POST /users/group_channels` reads) with a post each, and a `channels.json` selecting
/// each by its exact other members; returns (channel id, expected export name) pairs.
fn many_groups(env: &common::Env) -> (Vec<(String, String)>, matterbak::config::ChannelsConfig) {
    let groups: Vec<(String, String)> = env.server.with_workspace(|ws| {
        mock_support::create_groups(ws, 69)
            .into_iter()
            .map(|id| {
                ws.create_post(&id, "alice", "hello group", None);
                (id, String::new())
            })
            .collect()
    });
    let names: Vec<Vec<String>> = env.server.with_workspace(|ws| {
        groups
            .iter()
            .map(|(id, _)| ws.group_channel_usernames(id, "alice"))
            .collect()
    });
    let config = matterbak::config::ChannelsConfig {
        groups_exact: names.clone(),
        ..Default::default()
    };
    let groups = groups
        .into_iter()
        .zip(names)
        .map(|((id, _), names)| (id, names.join("__")))
        .collect();
    (groups, config)
}

/// Every one of the groups is selected under its members' names, holds its post, and is
/// exported under that name (`groups/<id>__<names>.json`).
fn assert_groups_archived(env: &common::Env, groups: &[(String, String)]) {
    let c = env.catalog();
    for (id, name) in groups {
        let row = rows(
            &c,
            &format!(
                "SELECT selected || ' ' || export_name || ' ' || \
                 (SELECT count(*) FROM posts WHERE channel_id = '{id}') \
                 FROM channels WHERE id = '{id}'"
            ),
        );
        assert_eq!(row, [format!("1 {name} 1")], "group channel {id}");
    }
    let data = env.dir.path().join("exported");
    matterbak::export::export_pylayout(&env.read(), &data, None, &Default::default())
        .expect("export");
    for (id, name) in groups {
        let posts = data.join("groups").join(format!("{id}__{name}.json"));
        assert!(posts.is_file(), "no {}", posts.display());
    }
}

/// 69 group channels: asked in batches of 50 (the server reads no more), all archived and
/// exported under their members' names (issue #11: 19 were lost with exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_fifty_group_channels_are_all_archived() {
    let env = start().await;
    let (groups, config) = many_groups(&env);
    let mut options = env.options();
    options.channels = config;
    let report = env.sync_with(options).await;
    common::assert_complete(&report);
    assert_eq!(
        env.server.count("POST /api/v4/users/group_channels"),
        2,
        "71 group channels: 50 + 21"
    );
    assert_eq!(
        env.server
            .count("GET /api/v4/channels/{channel_id}/members"),
        report.channels_selected,
        "each selected channel's member list, no fallback"
    );
    assert_groups_archived(&env, &groups);
}

/// A server where `POST /users/group_channels` answers 404: the members come from each
/// group's member list instead, and the result is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_channels_fall_back_to_member_lists_where_the_endpoint_is_missing() {
    let env = start().await;
    let (groups, config) = many_groups(&env);
    env.server.set_faults(Faults {
        missing_routes: vec!["/api/v4/users/group_channels"],
        ..Faults::default()
    });
    let mut options = env.options();
    options.channels = config;
    let report = env.sync_with(options).await;
    common::assert_complete(&report);
    assert!(
        env.server
            .count("GET /api/v4/channels/{channel_id}/members")
            >= 71
    );
    assert_groups_archived(&env, &groups);
}

/// A group channel whose members cannot be read at all is a failed item (listed, outcome
/// partial), never a silent skip; the next sync, with the server healed, archives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_channel_that_cannot_be_judged_is_a_failed_item_and_retried() {
    let env = start().await;
    let gm = env
        .server
        .with_workspace(|ws| ws.gm_channel_id(&["alice", "bob", "carol"]));
    env.server.set_faults(Faults {
        missing_routes: vec![
            "/api/v4/users/group_channels",
            "/api/v4/channels/{channel_id}/members",
        ],
        ..Faults::default()
    });
    let report = env.sync().await;
    assert_eq!(report.outcome, matterbak::model::Outcome::Partial);
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.item == format!("group channel {gm}") && f.error.contains("HTTP 404")),
        "{:?}",
        report.failures
    );
    env.server.set_faults(Faults::default());
    let report = env.sync().await;
    common::assert_complete(&report);
    let c = env.catalog();
    assert_eq!(
        rows(
            &c,
            &format!("SELECT selected || ' ' || export_name FROM channels WHERE id = '{gm}'")
        ),
        ["1 bob__carol"]
    );
}

/// Against the server's limiter (GCRA, 20/s, burst 5) with four workers and no client-side
/// limit: nothing fails, and pacing by the rate headers keeps 429s rare (issue #11: 117 of
/// 203 answers were 429 and 9 items failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_server_costs_time_not_items() {
    let env = start().await;
    env.server.set_faults(common::rate_limited(20, 5));
    let (_, statuses) = common::sync_against_the_limit(&env).await;
    let limited = statuses.iter().filter(|s| **s == 429).count();
    let total = statuses.len();
    // The pacer's mirror of the bucket is corrected by each answer, so an answer delayed on a
    // loaded machine can let one request through too early: at most 2 % of the requests
    // (the figure benches/rate_limit.sh holds on long runs), and at most one in a run this
    // short (about 50 requests). Seen once in ~30 suite runs at load average 13: 1 of 49.
    assert!(
        limited <= (total / 50).max(1),
        "{limited} of {total} answers were 429 (at most 2 %, at least one allowed)"
    );
    common::assert_same_as_a_fresh_sync(&env, "rate limited versus free").await;
}
