//! The channel post stream: modes, cursors, traps, since, ETags.

use crate::mock_support;

use std::collections::HashSet;

use matterbak::mock::SINCE_LIMIT;
use mock_support::{Ctx, create_at, error_id, order};
use reqwest::header::{ETAG, IF_NONE_MATCH};

fn posts_path(channel: &str, query: &str) -> String {
    format!("/channels/{channel}/posts?{query}")
}

#[tokio::test]
async fn per_page_defaults_and_clamps() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let default = ctx.get_json(&posts_path(&dev, "")).await;
    assert_eq!(order(&default).len(), 60);
    let clamped = ctx.get_json(&posts_path(&dev, "per_page=1000")).await;
    assert_eq!(order(&clamped).len(), 200);
    let empty = ctx.get_json(&posts_path(&dev, "per_page=0")).await;
    assert!(order(&empty).is_empty());
    let junk = ctx
        .get_json(&posts_path(&dev, "per_page=abc&page=-4"))
        .await;
    assert_eq!(order(&junk).len(), 60);
}

#[tokio::test]
async fn page_mode_is_newest_first_with_both_cursors() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let ids = ctx.ws(|ws| ws.post_ids(&dev));
    assert_eq!(ids.len(), 450);

    let page0 = ctx.get_json(&posts_path(&dev, "per_page=200")).await;
    let o = order(&page0);
    assert_eq!(o.len(), 200);
    assert_eq!(o[0], ids[449]);
    assert!(
        o.windows(2)
            .all(|w| create_at(&page0, &w[0]) >= create_at(&page0, &w[1]))
    );
    assert_eq!(page0["next_post_id"], "");
    // The page ends inside the burst; the cursor skips the rest of it (strict `<`).
    assert_eq!(page0["prev_post_id"], ids[234].as_str());
    assert_eq!(page0["first_inaccessible_post_time"], 0);
    // `posts` is a superset: it contains every id of `order`.
    let posts = page0["posts"].as_object().expect("posts");
    assert!(o.iter().all(|id| posts.contains_key(id)));

    let page1 = ctx.get_json(&posts_path(&dev, "per_page=200&page=1")).await;
    let o1 = order(&page1);
    assert_eq!(o1.len(), 200);
    assert!(!o1.iter().any(|id| o.contains(id)));
    assert_eq!(page1["next_post_id"], ids[265].as_str());
    assert_eq!(page1["prev_post_id"], ids[49].as_str());
}

#[tokio::test]
async fn replies_bring_their_thread_as_context() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let ids = ctx.ws(|ws| ws.post_ids(&dev));
    // Post 271 replies to root 270 and 272 also does; after=270 per_page=1 → only 271.
    let path = posts_path(&dev, &format!("after={}&per_page=1", ids[270]));
    let list = ctx.get_json(&path).await;
    assert_eq!(order(&list), vec![ids[271].clone()]);
    let posts = list["posts"].as_object().expect("posts");
    assert!(posts.contains_key(&ids[270]), "root as context");
    assert!(posts.contains_key(&ids[272]), "rest of the thread");
    assert_eq!(list["posts"][&ids[270]]["reply_count"], 2);
    let skip = ctx.get_json(&format!("{path}&skipFetchThreads=true")).await;
    let posts = skip["posts"].as_object().expect("posts");
    assert!(posts.contains_key(&ids[270]));
    assert!(!posts.contains_key(&ids[272]));
}

#[tokio::test]
async fn before_cursor_rules_and_equal_create_at_skip() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let ids = ctx.ws(|ws| ws.post_ids(&dev));
    let page0 = ctx.get_json(&posts_path(&dev, "per_page=200")).await;
    let cursor = order(&page0).last().cloned().expect("cursor");

    let mut seen: HashSet<String> = order(&page0).into_iter().collect();
    let older = ctx
        .get_json(&posts_path(&dev, &format!("before={cursor}&per_page=200")))
        .await;
    let o = order(&older);
    assert_eq!(o.len(), 200);
    assert_eq!(o[0], ids[234], "burst siblings of the cursor are skipped");
    assert_eq!(older["next_post_id"], cursor.as_str());
    assert_eq!(older["prev_post_id"], ids[34].as_str());
    seen.extend(o);
    let rest = ctx
        .get_json(&posts_path(
            &dev,
            &format!("before={}&per_page=200", ids[35]),
        ))
        .await;
    assert_eq!(order(&rest).len(), 35);
    assert_eq!(rest["prev_post_id"], "", "short page reached the beginning");
    seen.extend(order(&rest));
    // The naive walk lost exactly the 15 burst posts beyond the page boundary.
    assert_eq!(seen.len(), 435);

    let none = ctx
        .get_json(&posts_path(&dev, &format!("before={}", ids[0])))
        .await;
    assert!(order(&none).is_empty());
    assert_eq!(none["next_post_id"], ids[0].as_str());
    assert_eq!(none["prev_post_id"], "");

    // page with before is an offset from the cursor.
    let offset = ctx
        .get_json(&posts_path(
            &dev,
            &format!("before={}&per_page=10&page=1", ids[100]),
        ))
        .await;
    assert_eq!(order(&offset)[0], ids[89]);
    assert_eq!(offset["next_post_id"], ids[90].as_str());
}

#[tokio::test]
async fn after_cursor_rules() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let ids = ctx.ws(|ws| ws.post_ids(&dev));
    let tail = ctx
        .get_json(&posts_path(
            &dev,
            &format!("after={}&per_page=200", ids[440]),
        ))
        .await;
    let expected: Vec<String> = ids[441..].iter().rev().cloned().collect();
    assert_eq!(order(&tail), expected);
    assert_eq!(tail["prev_post_id"], ids[440].as_str());
    assert_eq!(tail["next_post_id"], "");

    let three = ctx
        .get_json(&posts_path(&dev, &format!("after={}&per_page=3", ids[440])))
        .await;
    assert_eq!(
        order(&three),
        vec![ids[443].clone(), ids[442].clone(), ids[441].clone()]
    );
    assert_eq!(three["next_post_id"], ids[444].as_str());

    // A cursor inside the burst skips every other burst post (strict `>`).
    let after_burst = ctx
        .get_json(&posts_path(&dev, &format!("after={}&per_page=1", ids[240])))
        .await;
    assert_eq!(order(&after_burst), vec![ids[265].clone()]);

    // Unknown but well-formed cursor → empty list; malformed → 400.
    let unknown = ctx
        .get_json(&posts_path(&dev, "after=aaaaaaaaaaaaaaaaaaaaaaaaaa"))
        .await;
    assert!(order(&unknown).is_empty());
    let bad = ctx.get(&posts_path(&dev, "after=not-an-id")).await;
    assert_eq!(
        error_id(bad, 400).await,
        "api.context.invalid_url_param.app_error"
    );
    let bad_since = ctx.get(&posts_path(&dev, "since=yesterday")).await;
    assert_eq!(bad_since.status(), 400);
    let bad_channel = ctx.get("/channels/nope/posts").await;
    assert_eq!(bad_channel.status(), 400);
}

#[tokio::test]
async fn mode_precedence_is_since_after_before_page() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let ids = ctx.ws(|ws| ws.post_ids(&dev));
    let both = ctx
        .get_json(&posts_path(
            &dev,
            &format!("after={}&before={}&per_page=2", ids[10], ids[20]),
        ))
        .await;
    assert_eq!(order(&both), vec![ids[12].clone(), ids[11].clone()]);
    let now = ctx.ws(|ws| ws.now());
    let since = ctx
        .get_json(&posts_path(&dev, &format!("since={now}&after={}", ids[10])))
        .await;
    assert!(order(&since).is_empty());
    assert_eq!(since["prev_post_id"], "");
}

#[tokio::test]
async fn since_returns_deleted_and_history_rows_blanked() {
    let ctx = Ctx::sample().await;
    let off = ctx.channel("eng", "off-topic");
    let (lunch, reply) = ctx.ws(|ws| {
        let lunch = ws.find_post(&off, "Anyone up for lunch?");
        (lunch, ws.find_post(&off, "Sure, 12:45"))
    });
    let list = ctx.get_json(&posts_path(&off, "since=1")).await;
    let o = order(&list);
    assert_eq!(o.len(), 6, "3 live + 2 deleted + 1 history row");
    let posts = list["posts"].as_object().expect("posts");
    let deleted: Vec<&serde_json::Value> = posts
        .values()
        .filter(|p| p["delete_at"].as_i64() > Some(0) && p["original_id"] == "")
        .collect();
    assert_eq!(deleted.len(), 2);
    for post in &deleted {
        assert_eq!(post["message"], "");
        assert_eq!(post["metadata"], serde_json::json!({}));
        assert!(post["props"]["deleteBy"].is_string());
    }
    assert!(
        deleted
            .iter()
            .any(|p| p["file_ids"].as_array().map(Vec::len) == Some(1))
    );
    let history: Vec<&serde_json::Value> = posts
        .values()
        .filter(|p| p["original_id"] == reply.as_str())
        .collect();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["message"], "");
    assert!(history[0]["delete_at"].as_i64() > Some(0));
    assert_eq!(list["posts"][&reply]["message"], "Sure, 12:45 works better");
    assert!(list["posts"][&reply]["edit_at"].as_i64() > Some(0));

    // Only rows changed after `since` are in `order`; their old roots are context.
    let mark = ctx.ws(|ws| ws.now());
    ctx.ws(|ws| ws.add_reaction(&reply, "bob", "smile"));
    let later = ctx
        .get_json(&posts_path(&off, &format!("since={mark}")))
        .await;
    assert_eq!(order(&later), vec![reply.clone()]);
    assert!(
        later["posts"]
            .as_object()
            .expect("posts")
            .contains_key(&lunch)
    );
    assert_eq!(later["posts"][&reply]["has_reactions"], true);
}

#[tokio::test]
async fn since_caps_at_1000_rows_not_by_update_at() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let before = ctx.ws(|ws| ws.now());
    let created: Vec<String> = ctx.ws(|ws| {
        (0..1100)
            .map(|n| ws.create_post(&town, "bob", &format!("flood {n}"), None))
            .collect()
    });
    let list = ctx
        .get_json(&posts_path(&town, &format!("since={before}")))
        .await;
    let o = order(&list);
    assert_eq!(o.len(), SINCE_LIMIT);
    let newest: HashSet<&String> = created.iter().rev().take(SINCE_LIMIT).collect();
    let got: HashSet<&String> = o.iter().collect();
    assert_ne!(got, newest, "the cap must not keep the newest rows");
    assert!(
        o.windows(2)
            .all(|w| create_at(&list, &w[0]) >= create_at(&list, &w[1]))
    );
}

#[tokio::test]
async fn page_etag_and_304() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let path = posts_path(&dev, "per_page=1");
    let first = ctx.get(&path).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()[ETAG].to_str().expect("etag").to_owned();
    assert!(etag.starts_with("9.11.0."), "{etag}");
    let again = ctx
        .request(reqwest::Method::GET, &path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 304);
    // A reaction on an old post changes the channel's max update_at.
    let old = ctx.ws(|ws| ws.post_ids(&dev)[3].clone());
    ctx.ws(|ws| ws.add_reaction(&old, "alice", "smile"));
    let changed = ctx
        .request(reqwest::Method::GET, &path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(changed.status(), 200);
    let now = ctx.ws(|ws| ws.now());
    assert_eq!(changed.headers()[ETAG], format!("9.11.0.{now}").as_str());
}

#[tokio::test]
async fn include_deleted_and_unreadable_channels_are_403() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    let r = ctx.get(&posts_path(&dev, "include_deleted=true")).await;
    assert_eq!(error_id(r, 403).await, "api.context.permissions.app_error");
    let no_access = ctx.channel("eng", "no-access");
    assert_eq!(ctx.get(&posts_path(&no_access, "")).await.status(), 403);
    let secret = ctx.channel("secret", "town-square");
    assert_eq!(ctx.get(&posts_path(&secret, "")).await.status(), 403);
    let bob_carol = ctx.ws(|ws| ws.dm_channel_id("bob", "carol"));
    assert_eq!(ctx.get(&posts_path(&bob_carol, "")).await.status(), 403);
    // Archived channels stay readable.
    let old = ctx.channel("eng", "old-project");
    assert_eq!(order(&ctx.get_json(&posts_path(&old, "")).await).len(), 2);
}

#[tokio::test]
async fn single_post_and_metadata() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let build = ctx.ws(|ws| ws.find_post(&town, "Build #1024"));
    let post = ctx.get_json(&format!("/posts/{build}")).await;
    assert_eq!(post["has_reactions"], true);
    let reactions = post["metadata"]["reactions"].as_array().expect("reactions");
    assert_eq!(reactions.len(), 2);
    assert_eq!(post["metadata"]["emojis"][0]["name"], "thumbsup_custom");
    let keys: Vec<&String> = post.as_object().expect("object").keys().collect();
    assert_eq!(keys[0], "id");
    assert_eq!(keys.last().map(|k| k.as_str()), Some("metadata"));
    assert!(!keys.iter().any(|k| *k == "file_ids"), "omitted when empty");

    ctx.ws(|ws| ws.delete_post(&build));
    let gone = ctx.get(&format!("/posts/{build}")).await;
    assert_eq!(error_id(gone, 404).await, "app.post.get.app_error");
}

/// `reply_count` by request mode (§14.2): the live count of the thread in before/after mode
/// and, with `skipFetchThreads=true`, in page and since mode; 0 in page and since mode
/// without it.
#[tokio::test]
async fn reply_count_depends_on_the_request_mode() {
    let ctx = Ctx::sample().await;
    let (channel, first, root, reply, newest, mark) = ctx.ws(|ws| {
        let channel = ws.create_channel("eng", "threads", "Threads", 'O', &["alice", "bob"]);
        let first = ws.create_post(&channel, "alice", "first", None);
        let mark = ws.now();
        let root = ws.create_post(&channel, "alice", "a thread", None);
        let reply = ws.create_post(&channel, "bob", "reply one", Some(&root));
        ws.create_post(&channel, "alice", "reply two", Some(&root));
        let newest = ws.create_post(&channel, "bob", "last", None);
        (channel, first, root, reply, newest, mark)
    });
    let counts = |list: &serde_json::Value| -> (i64, i64) {
        (
            list["posts"][&root]["reply_count"].as_i64().expect("root"),
            list["posts"][&reply]["reply_count"]
                .as_i64()
                .expect("reply"),
        )
    };
    for (query, expected) in [
        ("per_page=10", (0, 0)),
        ("per_page=10&skipFetchThreads=true", (2, 2)),
        (&format!("before={newest}") as &str, (2, 2)),
        (&format!("before={newest}&skipFetchThreads=true"), (2, 2)),
        (&format!("after={first}"), (2, 2)),
        (&format!("since={mark}"), (0, 0)),
        (&format!("since={mark}&skipFetchThreads=true"), (2, 2)),
    ] {
        let list = ctx.get_json(&posts_path(&channel, query)).await;
        assert_eq!(counts(&list), expected, "{query}");
    }
}

/// A member's read state moves when they post, and a mention counts for the one named
/// (§14.3), so a member list read earlier differs from today's.
#[tokio::test]
async fn member_read_state_changes_when_a_member_posts() {
    let ctx = Ctx::sample().await;
    let channel = ctx.ws(|ws| ws.create_channel("eng", "chat", "Chat", 'O', &["alice", "bob"]));
    let (alice, bob) = ctx.ws(|ws| (ws.user_id("alice"), ws.user_id("bob")));
    let member = |members: &serde_json::Value, user: &str| -> serde_json::Value {
        members
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["user_id"] == user)
            .cloned()
            .expect("member row")
    };
    let before = ctx.get_json(&format!("/channels/{channel}/members")).await;
    let at = ctx.ws(|ws| {
        ws.create_post(&channel, "alice", "hello", None);
        ws.create_post(&channel, "bob", "hi @alice", None);
        ws.now()
    });
    let after = ctx.get_json(&format!("/channels/{channel}/members")).await;
    let (b0, b1) = (member(&before, &bob), member(&after, &bob));
    assert_eq!(b1["last_viewed_at"], at);
    assert_eq!(b1["last_update_at"], at);
    assert_eq!(b1["msg_count"], 2, "caught up with both posts");
    assert_eq!(b1["msg_count_root"], 2);
    assert_ne!(b0["last_viewed_at"], b1["last_viewed_at"]);
    let a1 = member(&after, &alice);
    assert_eq!(a1["msg_count"], 1, "alice has not read bob's post");
    assert_eq!(a1["mention_count"], 1, "bob mentioned her");
    assert_eq!(a1["mention_count_root"], 1);
    assert_eq!(a1["last_update_at"], at);
}
