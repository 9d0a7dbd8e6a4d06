//! `sync --follow` (live capture) through the library against the mock's REST API and
//! WebSocket on loopback: posts with their files, edits as versions, deletions keeping
//! content, reactions, resume after a drop, a catch-up sync when the server cannot resume,
//! the channels.json selection. Every wait is for observed progress (a committed row, a
//! state the follower reports), never a delay.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    Env, assert_same_content, content_snapshot, count, delete_and_wait, post_and_wait, rows, start,
    wait_for, wait_for_post,
};
use matterbak::mm::StopSignal;
use matterbak::mm::ws::WsOptions;
use matterbak::mock::{self, NewFile, SEND_QUEUE_SIZE};
use matterbak::progress::{Level, LiveState, Observer, Progress};
use matterbak::sync::{self, FollowOptions, FollowReport};
use tokio::sync::watch;

/// Records notes and counts how often the follower became live (caught up).
struct Watcher {
    notes: Mutex<Vec<String>>,
    live: watch::Sender<u64>,
    polls: watch::Sender<u64>,
}

impl Watcher {
    fn new() -> Arc<Watcher> {
        Arc::new(Watcher {
            notes: Mutex::new(Vec::new()),
            live: watch::channel(0).0,
            polls: watch::channel(0).0,
        })
    }

    /// Waits until the follower has been live (caught up) `n` times in all.
    async fn live_times(&self, n: u64) {
        let mut rx = self.live.subscribe();
        rx.wait_for(|&times| times >= n)
            .await
            .expect("follower alive");
    }

    /// Waits until the follower has polled `n` times in all.
    async fn polls(&self, n: u64) {
        let mut rx = self.polls.subscribe();
        rx.wait_for(|&polls| polls >= n)
            .await
            .expect("follower alive");
    }

    fn times_live(&self) -> u64 {
        *self.live.borrow()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }
}

impl Observer for Watcher {
    fn note(&self, level: Level, text: &str) {
        self.notes.lock().unwrap().push(level.line(text));
    }

    fn progress(&self, event: Progress) {
        if event == Progress::Live(LiveState::Live) {
            self.live.send_modify(|n| *n += 1);
        }
        if matches!(event, Progress::Polled { .. }) {
            self.polls.send_modify(|n| *n += 1);
        }
    }
}

struct Following {
    stop: StopSignal,
    task: tokio::task::JoinHandle<Result<FollowReport, sync::SyncError>>,
    watcher: Arc<Watcher>,
}

impl Following {
    async fn stop(self) -> FollowReport {
        self.stop.request();
        self.task
            .await
            .expect("follow task")
            .expect("follow ends cleanly")
    }
}

fn follow_options() -> FollowOptions {
    follow_options_polling(Duration::from_secs(24 * 3600))
}

fn follow_options_polling(poll_interval: Duration) -> FollowOptions {
    FollowOptions {
        poll_interval,
        ws: WsOptions {
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            ..WsOptions::default()
        },
    }
}

/// Starts following and waits until the first catch-up sync is done.
async fn follow(env: &Env) -> Following {
    follow_with(env, follow_options()).await
}

async fn follow_with(env: &Env, follow: FollowOptions) -> Following {
    follow_as(env, env.options(), follow).await
}

async fn follow_as(env: &Env, options: sync::SyncOptions, follow: FollowOptions) -> Following {
    let stop = StopSignal::default();
    let watcher = Watcher::new();
    let credentials = env.credentials();
    let task = {
        let (stop, watcher) = (stop.clone(), watcher.clone());
        tokio::spawn(async move {
            sync::run_follow(&credentials, &options, &follow, watcher.as_ref(), &stop).await
        })
    };
    watcher.live_times(1).await;
    Following {
        stop,
        task,
        watcher,
    }
}

fn channel(env: &Env, team: &str, name: &str) -> String {
    env.server.with_workspace(|w| w.channel_id(team, name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_deleted_right_after_it_was_written_keeps_its_text_and_attachment() {
    let env = start().await;
    let following = follow(&env).await;
    let dev = channel(&env, "eng", "dev");
    let bytes = b"quarterly numbers, do not lose".to_vec();
    let post_id = env.server.with_workspace(|w| {
        w.create_post_with_files(
            &dev,
            "bob",
            "the numbers, deleted soon",
            None,
            vec![NewFile {
                name: "numbers.txt".into(),
                bytes: bytes.clone(),
                mime_type: "text/plain".into(),
            }],
        )
    });
    // The bytes are fetched when `posted` arrives; then the post goes, and its file with it.
    wait_for(
        &env,
        &format!("SELECT count(*) FROM files WHERE post_id = '{post_id}' AND blob IS NOT NULL"),
        "1",
    )
    .await;
    delete_and_wait(&env, &post_id).await;
    let report = following.stop().await;
    assert!(report.events >= 2, "{report:?}");

    let c = env.catalog();
    assert_eq!(
        rows(
            &c,
            &format!("SELECT message, seen_live FROM posts WHERE id = '{post_id}'")
        ),
        ["the numbers, deleted soon|1"]
    );
    let blob = rows(
        &c,
        &format!("SELECT blob FROM files WHERE post_id = '{post_id}'"),
    );
    assert_eq!(blob.len(), 1);
    // The server no longer serves the file (§15.8): only the archive has it.
    let archive = env.read();
    let blob = matterbak::model::BlobId::parse(&blob[0]).expect("a blob hash");
    let mut stored = Vec::new();
    std::io::Read::read_to_end(
        &mut archive.blobs().unwrap().open_blob(&blob).unwrap(),
        &mut stored,
    )
    .unwrap();
    assert_eq!(stored, bytes);
    // A later sync (the server now says "deleted") keeps the text and the bytes.
    common::assert_complete(&env.sync().await);
    assert_eq!(
        rows(
            &env.catalog(),
            &format!("SELECT message, delete_at > 0 FROM posts WHERE id = '{post_id}'")
        ),
        ["the numbers, deleted soon|1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_post_keeps_its_reactions_as_a_sync_records_them() {
    let env = start().await;
    let following = follow(&env).await;
    let dev = channel(&env, "eng", "dev");
    let post_id = env
        .server
        .with_workspace(|w| w.create_post(&dev, "bob", "reacted to, then deleted", None));
    env.server
        .with_workspace(|w| w.add_reaction(&post_id, "carol", "tada"));
    env.server
        .with_workspace(|w| w.add_reaction(&post_id, "dave", "smile"));
    env.server
        .with_workspace(|w| w.remove_reaction(&post_id, "dave", "smile"));
    // `post_deleted` carries the post without its metadata (no reactions): that removes none.
    delete_and_wait(&env, &post_id).await;
    following.stop().await;
    let reactions = format!(
        "SELECT emoji_name, removed_at IS NULL FROM reactions WHERE post_id = '{post_id}' ORDER BY emoji_name"
    );
    assert_eq!(rows(&env.catalog(), &reactions), ["smile|0", "tada|1"]);
    assert_eq!(
        rows(
            &env.catalog(),
            &format!("SELECT message FROM posts WHERE id = '{post_id}'")
        ),
        ["reacted to, then deleted"]
    );
    // The sync that follows (the server now blanks the post) agrees.
    common::assert_complete(&env.sync().await);
    assert_eq!(rows(&env.catalog(), &reactions), ["smile|0", "tada|1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_edits_make_five_versions_and_reactions_are_recorded_as_a_sync_would() {
    let env = start().await;
    let following = follow(&env).await;
    let dev = channel(&env, "eng", "dev");
    let post_id = env
        .server
        .with_workspace(|w| w.create_post(&dev, "bob", "draft 0", None));
    for n in 1..=5 {
        env.server
            .with_workspace(|w| w.edit_post(&post_id, &format!("draft {n}")));
    }
    env.server
        .with_workspace(|w| w.add_reaction(&post_id, "carol", "tada"));
    env.server
        .with_workspace(|w| w.add_reaction(&post_id, "dave", "smile"));
    env.server
        .with_workspace(|w| w.remove_reaction(&post_id, "dave", "smile"));
    wait_for(
        &env,
        &format!(
            "SELECT count(*) FROM reactions WHERE post_id = '{post_id}' AND removed_at IS NOT NULL"
        ),
        "1",
    )
    .await;
    following.stop().await;

    let c = env.catalog();
    assert_eq!(
        rows(
            &c,
            &format!("SELECT message FROM posts WHERE id = '{post_id}'")
        ),
        ["draft 5"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT message FROM post_versions WHERE post_id = '{post_id}' ORDER BY replaced_at"
            )
        ),
        ["draft 0", "draft 1", "draft 2", "draft 3", "draft 4"]
    );
    let reactions = format!(
        "SELECT emoji_name, removed_at IS NULL FROM reactions WHERE post_id = '{post_id}' ORDER BY emoji_name"
    );
    assert_eq!(rows(&c, &reactions), ["smile|0", "tada|1"]);
    // The sync that follows agrees: nothing about the reactions or versions changes.
    // (It adds the server's history row ids to the versions we already hold.)
    let versions = format!(
        "SELECT replaced_at, edit_at, message, json FROM post_versions WHERE post_id = '{post_id}' ORDER BY replaced_at"
    );
    let before = rows(&env.catalog(), &versions);
    common::assert_complete(&env.sync().await);
    assert_eq!(rows(&env.catalog(), &reactions), ["smile|0", "tada|1"]);
    assert_eq!(rows(&env.catalog(), &versions), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_without_a_catch_up_sync() {
    let env = start().await;
    let following = follow(&env).await;
    let runs = count(&env.catalog(), "SELECT count(*) FROM sync_runs");
    let town = channel(&env, "eng", "town-square");
    env.server
        .wait_for_websockets(|c| c.iter().any(|c| c.active))
        .await;
    env.server.drop_websockets();
    post_and_wait(&env, &town, "bob", "sent while we were away").await;
    let times_live = following.watcher.times_live();
    let notes = following.watcher.notes();
    following.stop().await;
    assert_eq!(
        count(&env.catalog(), "SELECT count(*) FROM sync_runs"),
        runs,
        "{notes:?}"
    );
    assert_eq!(
        times_live, 2,
        "caught up once, then live again after the resume: {notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("resumed")), "{notes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_changes_than_the_server_queues_while_away_are_caught_up_by_a_sync() {
    let env = start().await;
    let following = follow(&env).await;
    let town = channel(&env, "eng", "town-square");
    let dev = channel(&env, "eng", "dev");
    env.server
        .wait_for_websockets(|c| c.iter().any(|c| c.active))
        .await;
    // The reconnect waits (held) until the burst is over.
    env.server.hold_requests();
    env.server.drop_websockets();
    // More events than the send queue keeps: the server forgets the connection.
    let mut last = String::new();
    for n in 0..SEND_QUEUE_SIZE + 10 {
        let channel = if n % 2 == 0 { &town } else { &dev };
        last = env
            .server
            .with_workspace(|w| w.create_post(channel, "bob", &format!("burst {n}"), None));
    }
    // And changes no event tells about at all.
    let silent = env.server.with_workspace(|w| {
        w.without_events(|w| w.create_post(&dev, "carol", "published silently", None))
    });
    env.server
        .wait_for_websockets(|c| c.iter().all(|c| !c.active))
        .await;
    env.server.release_requests();
    // Live again: the catch-up sync is complete (it commits channel by channel).
    following.watcher.live_times(2).await;
    assert_eq!(
        count(
            &env.catalog(),
            &format!("SELECT count(*) FROM posts WHERE id IN ('{last}', '{silent}')")
        ),
        2
    );
    let notes = following.watcher.notes();
    following.stop().await;
    assert!(
        notes.iter().any(|n| n.contains("could not resume")),
        "{notes:?}"
    );
    // Nothing missing: the archive holds what a fresh full sync of the server holds.
    let fresh = common::start_with(env.server.with_workspace(|w| w.clone())).await;
    common::assert_complete(&fresh.sync().await);
    let mut got = content_snapshot(&env.archive);
    let mut want = content_snapshot(&fresh.archive);
    // Watermarks are server times of when each sync ran.
    got.remove("sync_cursors");
    want.remove("sync_cursors");
    assert_same_content(&got, &want, "followed vs fresh full sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_excluded_channels_write_nothing_and_new_channels_are_followed() {
    let env = start().await;
    let following = follow(&env).await;
    let excluded = channel(&env, "ops", "town-square");
    assert_eq!(
        count(
            &env.catalog(),
            &format!("SELECT count(*) FROM channels WHERE id = '{excluded}' AND selected = 0")
        ),
        1
    );
    let dropped = env
        .server
        .with_workspace(|w| w.create_post(&excluded, "alice", "not for the archive", None));
    // A channel created while following, in a selected team: followed as a sync would.
    let created = env
        .server
        .with_workspace(|w| w.create_channel("eng", "launch", "Launch", 'O', &["alice", "bob"]));
    post_and_wait(&env, &created, "bob", "first in launch").await;
    let report = following.stop().await;
    let c = env.catalog();
    assert_eq!(
        count(
            &c,
            &format!("SELECT count(*) FROM posts WHERE id = '{dropped}'")
        ),
        0
    );
    assert_eq!(
        rows(
            &c,
            &format!("SELECT selected FROM channels WHERE id = '{created}'")
        ),
        ["1"]
    );
    assert!(report.events_not_selected >= 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_posts_leave_the_since_watermark_alone() {
    let env = start().await;
    let following = follow(&env).await;
    let watermarks = "SELECT group_concat(channel_id || '=' || watermark, ',') FROM (SELECT * FROM sync_cursors ORDER BY channel_id)";
    let before = rows(&env.catalog(), watermarks);
    let dev = channel(&env, "eng", "dev");
    let post_id = env
        .server
        .with_workspace(|w| w.create_post(&dev, "bob", "live only", None));
    wait_for_post(&env, &post_id).await;
    following.stop().await;
    assert_eq!(rows(&env.catalog(), watermarks), before);
}

/// The archive's rows of channels, members, users and emojis, as a fresh sync writes them
/// (`content_snapshot`'s literal columns); member rows of people who left (a fresh sync never
/// saw them) aside.
fn entity_rows(archive: &std::path::Path) -> std::collections::BTreeMap<&'static str, Vec<String>> {
    let mut snapshot = content_snapshot(archive);
    snapshot.retain(|table, _| {
        matches!(
            *table,
            "channels" | "channel_members" | "users" | "emojis" | "posts" | "files"
        )
    });
    if let Some(members) = snapshot.get_mut("channel_members") {
        members.retain(|row| row.ends_with("|1"));
    }
    snapshot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_member_user_and_emoji_events_fetch_only_their_rows_as_a_sync_writes_them() {
    let env = start().await;
    let following = follow(&env).await;
    env.server.reset_requests();
    let dev = channel(&env, "eng", "dev");
    let off = channel(&env, "eng", "off-topic");
    let private = channel(&env, "eng", "eng-private");
    let ops_incidents = channel(&env, "ops", "incidents");
    let (launch, excluded, dm, gm) = env.server.with_workspace(|w| {
        // channel_created (to alice, its creator) and user_added: selected (eng: all).
        let launch = w.create_channel("eng", "launch", "Launch", 'O', &["alice", "bob"]);
        w.create_post(&launch, "bob", "first in launch", None);
        // In ops, "Town Square" is excluded: a channel named so elsewhere is not; this one is.
        let excluded = w.create_channel("ops", "town-square-2", "Town Square", 'O', &["alice"]);
        // channel_updated, channel_converted, channel_deleted, channel_restored.
        w.update_channel(&dev, "display_name", "Development (renamed)");
        w.convert_channel_to_private(&off);
        w.archive_channel(&private);
        w.archive_channel(&ops_incidents);
        w.restore_channel(&ops_incidents);
        // user_added (with its system post) and user_removed of other people.
        w.add_channel_member(&dev, "erin");
        w.remove_channel_member(&dev, "carol");
        // direct_added: alice and erin (selected: "direct" lists neither... erin is in a
        // group rule only); group_added: alice, dave, erin (subset rule ["erin"]: selected).
        let dm = w.create_direct_channel("erin", "alice");
        let gm = w.create_group_channel(&["dave", "alice", "erin"]);
        w.create_post(&gm, "dave", "a new group", None);
        // user_updated: a new picture, a new nickname.
        w.set_avatar("carol", mock::sample_png("carol-live-avatar"));
        w.set_user_field("dave", "nickname", serde_json::json!("Davey"));
        (launch, excluded, dm, gm)
    });
    // emoji_added last: its image is the last row written.
    env.server
        .with_workspace(|w| w.add_emoji("launched", "bob", mock::sample_png("launched"), "png"));
    wait_for(
        &env,
        "SELECT count(*) FROM emojis WHERE name = 'launched' AND image_blob IS NOT NULL",
        "1",
    )
    .await;
    let report = following.stop().await;
    assert_eq!(report.catch_ups, 1, "only the start's sync: {report:?}");
    assert!(report.targeted_fetches >= 10, "{report:?}");
    // No whole sync: the channel list was never asked for again.
    let requests = env.server.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.route == "GET /api/v4/users/{user_id}/channels"),
        "{:#?}",
        requests.iter().map(|r| &r.route).collect::<Vec<_>>()
    );
    let c = env.catalog();
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT id, selected FROM channels WHERE id IN ('{launch}', '{excluded}', '{dm}', '{gm}') ORDER BY id = '{launch}' DESC, id = '{excluded}' DESC, id = '{dm}' DESC"
            )
        ),
        [
            format!("{launch}|1"),
            format!("{excluded}|0"),
            format!("{dm}|0"),
            format!("{gm}|1")
        ]
    );
    assert_eq!(
        rows(
            &c,
            &format!("SELECT message FROM posts WHERE channel_id = '{gm}'")
        ),
        ["a new group"]
    );
    // The rows equal those of a fresh full sync of the same server.
    let fresh = common::start_with(env.server.with_workspace(|w| w.clone())).await;
    common::assert_complete(&fresh.sync().await);
    assert_same_content(
        &entity_rows(&env.archive),
        &entity_rows(&fresh.archive),
        "after targeted fetches vs a fresh full sync",
    );
}

/// [`entity_rows`] and the teams with their current members. A channel's post counters
/// (`last_post_at`, `total_msg_count`…) move with every post and live capture reads a
/// channel again only when an event says it changed, not per post: they are left out.
fn team_and_entity_rows(
    archive: &std::path::Path,
) -> std::collections::BTreeMap<&'static str, Vec<String>> {
    let mut rows = entity_rows(archive);
    let catalog = matterbak::catalog::Catalog::open(
        &archive.join("catalog.sqlite"),
        matterbak::catalog::Access::ReadOnly,
    )
    .unwrap();
    rows.insert(
        "channels",
        common::rows(
            &catalog,
            "SELECT id, json_remove(json, '$.last_post_at', '$.last_root_post_at', \
             '$.total_msg_count', '$.total_msg_count_root'), selected, export_name \
             FROM channels ORDER BY id",
        ),
    );
    let mut snapshot = content_snapshot(archive);
    rows.insert("teams", snapshot.remove("teams").unwrap());
    let mut members = snapshot.remove("team_members").unwrap();
    members.retain(|row| row.ends_with("|1"));
    rows.insert("team_members", members);
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_events_fetch_only_their_rows_as_a_sync_writes_them() {
    let env = start().await;
    let following = follow(&env).await;
    let secret = env.server.with_workspace(|w| w.team_id("secret"));
    env.server.reset_requests();
    env.server.with_workspace(|w| {
        // update_team: a selected team renamed ("eng" names it by its name: still selected).
        w.rename_team("eng", "Engineering (renamed)");
        // leave_team of someone else: bob leaves ops, and its channels without an event.
        w.remove_team_member("ops", "bob");
        // added_to_team (after user_added of its town-square): alice joins "secret", which
        // channels.json names (every channel of it).
        w.add_team_member("secret", "alice");
    });
    // emoji_added last: its image is the last row written.
    env.server
        .with_workspace(|w| w.add_emoji("joined", "bob", mock::sample_png("joined"), "png"));
    wait_for(
        &env,
        "SELECT count(*) FROM emojis WHERE name = 'joined' AND image_blob IS NOT NULL",
        "1",
    )
    .await;
    let report = following.stop().await;
    assert_eq!(report.catch_ups, 1, "only the start's sync: {report:?}");
    // No whole sync: no walk of every channel; the one team channel list is the joined
    // team's.
    let requests = env.server.requests();
    let routes: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.route.as_str(), r.path.as_str()))
        .collect();
    assert!(
        !routes
            .iter()
            .any(|(route, _)| *route == "GET /api/v4/users/{user_id}/channels"),
        "{routes:#?}"
    );
    let team_lists: Vec<&str> = routes
        .iter()
        .filter(|(route, _)| *route == "GET /api/v4/users/{user_id}/teams/{team_id}/channels")
        .map(|(_, path)| *path)
        .collect();
    assert_eq!(
        team_lists,
        [format!("/api/v4/users/me/teams/{secret}/channels")],
        "{routes:#?}"
    );
    let c = env.catalog();
    assert_eq!(
        rows(
            &c,
            "SELECT t.name, t.selected, c.name, c.selected FROM channels c JOIN teams t ON t.id = c.team_id WHERE t.name = 'secret'"
        ),
        ["secret|1|town-square|1"]
    );
    assert_eq!(
        rows(
            &c,
            &format!(
                "SELECT message FROM posts p JOIN channels c ON c.id = p.channel_id WHERE c.team_id = '{secret}' ORDER BY p.create_at"
            )
        ),
        ["Nobody else is here", "@alice joined the team."]
    );
    // The rows equal those of a fresh full sync of the same server.
    let fresh = common::start_with(env.server.with_workspace(|w| w.clone())).await;
    common::assert_complete(&fresh.sync().await);
    assert_same_content(
        &team_and_entity_rows(&env.archive),
        &team_and_entity_rows(&fresh.archive),
        "after team events vs a fresh full sync",
    );
}

/// The REST requests events need go through the sync's pacing: with `--rate-limit` R, the
/// server sees them at least 1/R apart (a lower bound only; the loopback's own jitter is
/// allowed 5 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_calls_made_for_events_are_paced_like_a_sync() {
    const RATE: f64 = 8.0;
    let env = start().await;
    // The archive exists: the follower's catch-up is incremental (few requests at 8/s).
    common::assert_complete(&env.sync().await);
    let mut options = env.options();
    options.client.rate_limit = Some(RATE);
    let following = follow_as(&env, options, follow_options()).await;
    env.server.reset_requests();
    // A burst of events that each need a fetch: six channels given a new header
    // (`channel_updated`, `GET /channels/{id}` each).
    let names = [
        ("eng", "town-square"),
        ("eng", "off-topic"),
        ("eng", "dev"),
        ("eng", "eng-private"),
        ("ops", "town-square"),
        ("ops", "incidents"),
    ];
    env.server.with_workspace(|w| {
        for (team, name) in names {
            let id = w.channel_id(team, name);
            w.update_channel(&id, "header", &format!("{team}/{name}, paced"));
        }
    });
    env.server
        .wait_for_count("GET /api/v4/channels/{channel_id}", names.len())
        .await;
    following.stop().await;
    let arrivals: Vec<std::time::Instant> = env
        .server
        .requests()
        .iter()
        .filter(|r| r.route == "GET /api/v4/channels/{channel_id}")
        .map(|r| r.arrived)
        .collect();
    assert_eq!(arrivals.len(), names.len());
    let period = Duration::from_secs_f64(1.0 / RATE);
    for pair in arrivals.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap + Duration::from_millis(5) >= period,
            "requests {gap:?} apart, the rate limit allows one every {period:?}"
        );
    }
}

/// `user_updated` carries the user as the server prepared it for each receiver
/// (`app/user.go` sendUpdatedUserEvent): others get a profile sanitized by `SanitizeProfile`,
/// the user themself the unsanitized record (password hash, MFA secret, notification
/// settings). The archive stores what a sync stores (`GET /users/me`, `POST /users/ids`),
/// never those private fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_updated_event_stores_what_a_sync_stores() {
    let env = start().await;
    let following = follow(&env).await;
    env.server.with_workspace(|w| {
        w.set_user_field("alice", "nickname", serde_json::json!("Al"));
        w.set_user_field("bob", "position", serde_json::json!("Lead"));
    });
    wait_for(
        &env,
        "SELECT count(*) FROM users WHERE (username = 'alice' AND json ->> 'nickname' = 'Al') \
         OR (username = 'bob' AND json ->> 'position' = 'Lead')",
        "2",
    )
    .await;
    let report = following.stop().await;
    assert_eq!(report.catch_ups, 1, "{report:?}");
    let private = "SELECT username FROM users WHERE json LIKE '%password%' \
                   OR json LIKE '%mfa_secret%' OR json LIKE '%notify_props%'";
    assert_eq!(rows(&env.catalog(), private), Vec::<String>::new());
    let fresh = common::start_with(env.server.with_workspace(|w| w.clone())).await;
    common::assert_complete(&fresh.sync().await);
    let users = "SELECT id, username, update_at, json FROM users \
                 WHERE username IN ('alice', 'bob') ORDER BY username";
    assert_eq!(rows(&env.catalog(), users), rows(&fresh.catalog(), users));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_follower_polls_only_the_archived_channels_whose_events_reach_nobody() {
    let env = start().await;
    let old = channel(&env, "eng", "old-project");
    let following = follow_with(&env, follow_options_polling(Duration::from_millis(50))).await;
    assert_eq!(
        rows(
            &env.catalog(),
            "SELECT name FROM channels WHERE delete_at > 0 AND selected = 1"
        ),
        ["old-project"],
        "the sample's one archived channel"
    );
    env.server.reset_requests();
    let polled = following.watcher.polls.borrow().to_owned();
    following.watcher.polls(polled + 3).await;
    // Idle: nothing but the polls, each one `since` request for old-project.
    let requests = env.server.requests();
    assert!(requests.len() >= 3, "{requests:#?}");
    for r in &requests {
        assert_eq!(
            (r.route.as_str(), r.path.as_str()),
            (
                "GET /api/v4/channels/{channel_id}/posts",
                format!("/api/v4/channels/{old}/posts").as_str()
            ),
            "{r:#?}"
        );
        assert!(r.query.contains("since="), "{r:#?}");
    }
    // A post deleted in the archived channel (by an admin or a retention job) reaches no
    // one live; the next poll finds it.
    let post_id = env
        .server
        .with_workspace(|w| w.find_post(&old, "Project wrapped up"));
    delete_and_wait(&env, &post_id).await;
    let report = following.stop().await;
    assert_eq!(report.catch_ups, 1, "{report:?}");
    assert!(report.polls >= 4, "{report:?}");
}

/// Runs `matterbak export` on `archive` with `args`; stdout, failing on a non-zero exit.
fn export(archive: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .env("TZ", "UTC")
        .args(["export", "--archive"])
        .arg(archive)
        .args(args)
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "export {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_show_a_post_captured_live_and_then_deleted_as_deleted_with_its_text() {
    let env = start().await;
    let following = follow(&env).await;
    let dev = channel(&env, "eng", "dev");
    let text = "Said live, then unsaid: the merger is off";
    let post_id = env
        .server
        .with_workspace(|w| w.create_post(&dev, "bob", text, None));
    wait_for_post(&env, &post_id).await;
    delete_and_wait(&env, &post_id).await;
    following.stop().await;
    let out = env.dir.path();

    // Markdown, full flavor (the default): the text, marked deleted.
    let md = export(&env.archive, &["--format", "markdown", "-c", &dev]);
    let lines: Vec<&str> = md.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == format!("> {text}"))
        .unwrap_or_else(|| panic!("the text is shown:\n{md}"));
    let mark = lines[..at]
        .iter()
        .rev()
        .find(|l| !l.is_empty())
        .expect("a line above the text");
    assert!(
        mark.starts_with("*Deleted 20") && mark.ends_with(" +00:00 (last archived text shown)*"),
        "{mark}"
    );

    // HGF (JSON, full flavor): the post with its text and its delete_at.
    let zip_path = out.join("dev.zip");
    export(
        &env.archive,
        &[
            "--format",
            "hgf",
            "-c",
            &dev,
            "-o",
            zip_path.to_str().unwrap(),
        ],
    );
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut posts = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("posts.json").unwrap(), &mut posts).unwrap();
    let posts: serde_json::Value = serde_json::from_str(&posts).unwrap();
    let post = posts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == post_id.as_str())
        .expect("the deleted post is in posts.json");
    assert_eq!(post["message"], text);
    assert!(post["delete_at"].as_i64().unwrap() > 0, "{post}");

    // The website: shown with its text, struck through and badged.
    let site = out.join("site");
    export(
        &env.archive,
        &["--format", "html", "-o", site.to_str().unwrap()],
    );
    let page = walk(&site)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|html| html.contains("the merger is off"))
        .expect("a page shows the text");
    let start = page.find("the merger is off").unwrap();
    let article = &page[page[..start].rfind("<article ").unwrap()..];
    let article = &article[..article.find("</article>").unwrap()];
    assert!(article.starts_with("<article id=\""), "{article}");
    assert!(article.contains("class=\"post deleted\""), "{article}");
    assert!(
        article.contains("<span class=\"badge del\">message deleted</span>"),
        "{article}"
    );
    assert!(
        article.contains("Said live, then unsaid: the merger is off"),
        "{article}"
    );

    // The Python layout keeps its rules: a deleted post keeps the last text archived.
    let data = out.join("data");
    export(
        &env.archive,
        &["--format", "json", "--no-zip", "-d", data.to_str().unwrap()],
    );
    let exported: Vec<serde_json::Value> = walk(&data)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).ok())
        .filter(|v: &serde_json::Value| v["id"] == post_id.as_str())
        .collect();
    assert_eq!(exported.len(), 1, "{exported:#?}");
    assert_eq!(exported[0]["message"], text);
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

// ----- the binary: `sync --follow` as a user (or systemd) runs it -----

#[cfg(unix)]
fn spawn_follow(env: &Env, flags: &[&str]) -> std::process::Child {
    let dir = env.dir.path();
    std::process::Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(["sync", "--follow", "--archive"])
        .arg(&env.archive)
        .arg("--credentials")
        .arg(dir.join("credentials.json"))
        .arg("--channels")
        .arg(dir.join("channels.json"))
        .args(flags)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// Runs a reader command of the binary on `archive`; its exit code and stdout.
#[cfg(unix)]
fn reader(args: &[&str], archive: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(args)
        .arg("--archive")
        .arg(archive)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// What the server and the archive hold before a follower starts: the follower that starts
/// next counts as following only once it has added to both. (Counting absolute numbers let a
/// restart pass for "following" on the earlier run's `ok` row and the killed run's connection,
/// which the mock had not yet seen close: the SIGTERM then reached a process that had not
/// installed its handler yet.)
#[cfg(unix)]
struct Before {
    ok_runs: i64,
    connections: Vec<String>,
}

#[cfg(unix)]
fn ok_runs(env: &Env) -> i64 {
    // The catalog may be half-created yet: an error only means "none yet".
    rusqlite::Connection::open_with_flags(
        env.archive.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|c| {
        c.query_row(
            "SELECT count(*) FROM sync_runs WHERE outcome = 'ok'",
            [],
            |r| r.get::<_, i64>(0),
        )
    })
    .unwrap_or(0)
}

#[cfg(unix)]
fn before_start(env: &Env) -> Before {
    Before {
        ok_runs: ok_runs(env),
        connections: env
            .server
            .websocket_connections()
            .into_iter()
            .map(|c| c.connection_id)
            .collect(),
    }
}

/// Starts `sync --follow` and returns once it has finished its catch-up sync and holds a
/// WebSocket connection of its own.
#[cfg(unix)]
async fn start_following(env: &Env, flags: &[&str]) -> std::process::Child {
    let before = before_start(env);
    let mut child = spawn_follow(env, flags);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the follower ended early"
        );
        let caught_up = ok_runs(env) > before.ok_runs;
        let connected = env
            .server
            .websocket_connections()
            .iter()
            .any(|c| c.active && !before.connections.contains(&c.connection_id));
        if caught_up && connected {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_follows_with_readers_beside_it_and_stops_within_two_seconds_on_sigterm() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    let child = start_following(&env, &["--quiet", "--poll-interval", "3600"]).await;
    let dev = channel(&env, "eng", "dev");
    let post_id = post_and_wait(&env, &dev, "bob", "captured live by the binary").await;
    // Readers work on the live archive while the follower holds the lock.
    let (code, out) = reader(
        &[
            "sql",
            &format!("SELECT message FROM posts WHERE id = '{post_id}'"),
        ],
        &env.archive,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("captured live by the binary"), "{out}");
    let (code, out) = reader(&["search", "captured"], &env.archive);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&post_id), "{out}");
    let (code, out) = reader(&["stats"], &env.archive);
    assert_eq!(code, 0, "{out}");
    let (code, out) = reader(&["verify"], &env.archive);
    assert_eq!(code, 0, "{out}");
    let site = env.dir.path().join("site");
    let (code, out) = reader(
        &["export", "--format", "html", "-o", site.to_str().unwrap()],
        &env.archive,
    );
    assert_eq!(code, 0, "{out}");

    let sent = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(took < Duration::from_secs(2), "stopped in {took:?}: {err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("follow stopped: "), "{err}");
    // --quiet: no informational lines (a journal gets state changes that matter only).
    assert!(!err.contains("caught up"), "{err}");
    assert!(!err.contains("channel(s) selected"), "{err}");
    let (code, out) = reader(&["verify"], &env.archive);
    assert_eq!(code, 0, "{out}");
}

/// kill -9 while events stream in (at observed progress: after some of them are committed),
/// then a restart: nothing the server still has is missing, and the posts deleted while the
/// first follower watched are kept, marked deleted; verify is clean.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_event_stream_loses_nothing_a_restart_cannot_fetch() {
    let env = start().await;
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    let town = channel(&env, "eng", "town-square");
    for kill_after in [1usize, 7, 19] {
        let mut child = start_following(&env, &["--quiet", "--poll-interval", "3600"]).await;
        let mut ids = Vec::new();
        for n in 0..30 {
            let id = env.server.with_workspace(|w| {
                w.create_post(&town, "bob", &format!("stream {kill_after}/{n}"), None)
            });
            ids.push(id);
        }
        // One of the stream, deleted: seen live (if the follower got that far) or never.
        env.server.with_workspace(|w| w.delete_post(&ids[0]));
        wait_for(
            &env,
            &format!(
                "SELECT count(*) >= {kill_after} FROM posts WHERE message LIKE 'stream {kill_after}/%'"
            ),
            "1",
        )
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // The restart catches up, then stops.
    let mut child = start_following(&env, &["--quiet", "--poll-interval", "3600"]).await;
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let (code, out) = reader(&["verify"], &env.archive);
    assert_eq!(code, 0, "{out}");
    // Every post the server has is archived as a fresh full sync archives it.
    let fresh = common::start_with(env.server.with_workspace(|w| w.clone())).await;
    common::assert_complete(&fresh.sync().await);
    let live_posts = "SELECT id, channel_id, root_id, create_at, update_at, edit_at, message, json FROM posts WHERE delete_at = 0 ORDER BY id";
    assert_eq!(
        rows(&env.catalog(), live_posts),
        rows(&fresh.catalog(), live_posts)
    );
    // What we hold beyond it: only posts deleted on the server, with their text.
    let extra = rows(
        &env.catalog(),
        "SELECT count(*) FROM posts WHERE delete_at > 0 AND message LIKE 'stream %'",
    );
    assert!(extra[0].parse::<i64>().unwrap() <= 3, "{extra:?}");
}

/// Turns the archive's catalog into one of schema version 4, as a matterbak before live
/// capture's record left it: schema 0005 only adds `follow_runs`, `follow_connections` and
/// an index, so dropping them is that catalog (checked against one built from files
/// 0001–0004).
#[cfg(unix)]
fn downgrade_to_schema_4(archive: &std::path::Path) {
    use matterbak::catalog::MIGRATIONS;
    let schema = |conn: &rusqlite::Connection| -> Vec<String> {
        let mut st = conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        st.query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?.unwrap_or_default()
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let conn = rusqlite::Connection::open(archive.join("catalog.sqlite")).unwrap();
    conn.execute_batch(
        "DROP INDEX follow_connections_run; DROP TABLE follow_connections; DROP TABLE follow_runs;
         PRAGMA user_version = 4;",
    )
    .unwrap();
    let four = rusqlite::Connection::open_in_memory().unwrap();
    for (_, sql) in &MIGRATIONS[..4] {
        four.execute_batch(sql).unwrap();
    }
    assert_eq!(schema(&conn), schema(&four), "a schema 4 catalog");
}

/// Stops a follower with SIGTERM; its exit code and stderr.
#[cfg(unix)]
fn sigterm(child: std::process::Child) -> (Option<i32>, String) {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `stats` after a follow session: the server time of its last event and its three
/// connections: the first (fresh) dropped and resumed, the resumed one dropped beyond the
/// server's send queue (a fresh connection and a catch-up), the last stopped by SIGTERM. The
/// archive was made by a matterbak of schema version 4: the follower upgrades it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_shows_the_last_event_time_and_the_connections_of_the_last_follow() {
    let env = start().await;
    common::assert_complete(&env.sync().await);
    downgrade_to_schema_4(&env.archive);
    common::write_inputs(env.dir.path(), &env.server.url(), 0o600);
    let town = channel(&env, "eng", "town-square");
    let dev = channel(&env, "eng", "dev");
    let connections = "SELECT count(*) FROM follow_connections";
    let child = start_following(&env, &["--quiet", "--poll-interval", "3600"]).await;
    wait_for(&env, connections, "1").await;
    let first = env.server.websocket_connections();
    assert_eq!(first.len(), 1, "{first:?}");
    let first = first[0].connection_id.clone();

    // A drop the server resumes.
    let before = env
        .server
        .with_workspace(|w| w.create_post(&town, "bob", "before the drop", None));
    wait_for_post(&env, &before).await;
    env.server.drop_websockets();
    let away = env
        .server
        .with_workspace(|w| w.create_post(&town, "bob", "while away", None));
    wait_for(&env, connections, "2").await;
    wait_for_post(&env, &away).await;

    // A drop with more events meanwhile than the server queues: a fresh connection.
    let ok_runs_before = ok_runs(&env);
    env.server.hold_requests();
    env.server.drop_websockets();
    for n in 0..SEND_QUEUE_SIZE + 10 {
        env.server
            .with_workspace(|w| w.create_post(&dev, "bob", &format!("burst {n}"), None));
    }
    env.server
        .wait_for_websockets(|c| c.iter().all(|c| !c.active))
        .await;
    env.server.release_requests();
    wait_for(&env, connections, "3").await;
    while ok_runs(&env) == ok_runs_before {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third: Vec<String> = env
        .server
        .websocket_connections()
        .into_iter()
        .filter(|c| c.active)
        .map(|c| c.connection_id)
        .collect();
    assert_eq!(third.len(), 1, "{third:?}");
    assert_ne!(third[0], first);

    // The last event: a post the server stamps 2033-05-18T03:33:20Z.
    let last = env.server.with_workspace(|w| {
        w.advance_clock_to(1_999_999_999_000);
        w.create_post(&dev, "bob", "the last event", None)
    });
    wait_for(
        &env,
        &format!("SELECT create_at FROM posts WHERE id = '{last}'"),
        "2000000000000",
    )
    .await;
    let (code, err) = sigterm(child);
    assert_eq!(code, Some(0), "{err}");

    let (code, out) = reader(&["stats"], &env.archive);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("last follow: started "))
        .unwrap_or_else(|| panic!("a last follow line:\n{out}"));
    assert!(
        lines[at].ends_with(", last event 2033-05-18T03:33:20Z (server time)"),
        "{}",
        lines[at]
    );
    assert!(!lines[at].contains("never"), "{}", lines[at]);
    let header: Vec<&str> = lines[at + 1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "connection",
            "kind",
            "opened (UTC)",
            "closed (UTC)",
            "ended",
            "events"
        ]
    );
    let table: Vec<(String, String, String)> = lines[at + 3..]
        .iter()
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cells.len(), 6, "{l}");
            (cells[0].into(), cells[1].into(), cells[4].into())
        })
        .collect();
    let row =
        |id: &str, kind: &str, ended: &str| (id.to_owned(), kind.to_owned(), ended.to_owned());
    assert_eq!(
        table,
        [
            row(&first, "fresh", "dropped"),
            row(&first, "resumed", "dropped"),
            row(&third[0], "fresh", "stopped"),
        ],
        "{out}"
    );
    // The same as JSON.
    let (code, out) = reader(&["stats", "--json"], &env.archive);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let follow = &json["last_follow"];
    assert_eq!(follow["last_event"], "2033-05-18T03:33:20Z", "{follow}");
    let states: Vec<String> = follow["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["ended"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        states,
        ["fresh dropped", "resumed dropped", "fresh stopped"],
        "{follow}"
    );
    // The last connection heard one event: the last post.
    assert_eq!(follow["connections"][2]["events"], 1, "{follow}");
}
