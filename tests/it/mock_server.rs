//! Auth, users, teams, channels, files, emojis, faults, counting and control endpoints.

use crate::mock_support;

use std::time::Duration;

use matterbak::mock::{
    Faults, NewFile, SAMPLE_MFA_CODE, SAMPLE_MFA_PASSWORD, SAMPLE_MFA_USER, SAMPLE_PASSWORD,
    SAMPLE_USER, sample_png,
};
use mock_support::{Ctx, error_id, order};
use reqwest::Method;
use reqwest::header::{
    CONTENT_DISPOSITION, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RANGE,
};
use serde_json::{Value, json};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

async fn login(ctx: &Ctx, body: Value) -> reqwest::Response {
    ctx.http
        .post(ctx.url("/users/login"))
        .json(&body)
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn login_logout_and_failures() {
    let ctx = Ctx::sample().await;
    let ok = login(
        &ctx,
        json!({"login_id": SAMPLE_USER, "password": SAMPLE_PASSWORD, "token": null, "extra": 1}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let token = ok.headers()["Token"].to_str().expect("token").to_owned();
    let me: Value = ok.json().await.expect("user");
    assert_eq!(me["username"], "alice");
    assert!(me.get("password").is_none());

    let session = |path: &str| ctx.http.get(ctx.url(path)).bearer_auth(&token).send();
    assert_eq!(session("/users/me").await.expect("send").status(), 200);
    let out = ctx
        .http
        .post(ctx.url("/users/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(
        out.json::<Value>().await.expect("json"),
        json!({"status": "OK"})
    );
    let expired = session("/users/me").await.expect("send");
    assert_eq!(
        error_id(expired, 401).await,
        "api.context.session_expired.app_error"
    );

    let bad = login(&ctx, json!({"login_id": "alice", "password": "nope"})).await;
    assert_eq!(
        error_id(bad, 401).await,
        "api.user.login.invalid_credentials_email_username"
    );
    let unknown = login(&ctx, json!({"login_id": "nobody", "password": "x"})).await;
    assert_eq!(
        error_id(unknown, 401).await,
        "api.user.login.invalid_credentials_email_username"
    );
    let blank = login(&ctx, json!({"login_id": "alice", "password": ""})).await;
    assert_eq!(
        error_id(blank, 400).await,
        "api.user.login.blank_pwd.app_error"
    );
    let dave = login(
        &ctx,
        json!({"login_id": "dave", "password": "dave-password"}),
    )
    .await;
    assert_eq!(dave.status(), 401);
    let by_email = login(
        &ctx,
        json!({"login_id": "alice@example.com", "password": SAMPLE_PASSWORD}),
    )
    .await;
    assert_eq!(by_email.status(), 200);

    let mfa = json!({"login_id": SAMPLE_MFA_USER, "password": SAMPLE_MFA_PASSWORD});
    let missing = login(&ctx, mfa.clone()).await;
    assert_eq!(
        error_id(missing, 401).await,
        "mfa.validate_token.authenticate.app_error"
    );
    let wrong = login(
        &ctx,
        json!({"login_id": SAMPLE_MFA_USER, "password": SAMPLE_MFA_PASSWORD, "token": "000000"}),
    )
    .await;
    assert_eq!(
        error_id(wrong, 401).await,
        "mfa.validate_token.authenticate.app_error"
    );
    let right = login(&ctx, json!({"login_id": SAMPLE_MFA_USER, "password": SAMPLE_MFA_PASSWORD, "token": SAMPLE_MFA_CODE})).await;
    assert_eq!(right.status(), 200);
    assert!(right.headers().contains_key("Token"));

    // Logging out with the personal access token does not revoke it.
    let pat_out = ctx
        .request(Method::POST, "/users/logout")
        .send()
        .await
        .expect("send");
    assert_eq!(pat_out.status(), 200);
    assert_eq!(ctx.get("/users/me").await.status(), 200);
}

#[tokio::test]
async fn missing_token_is_401_with_headers() {
    let ctx = Ctx::sample().await;
    let r = ctx
        .http
        .get(ctx.url("/users/me"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["X-Version-Id"], "9.11.0.mock.0.false");
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    let request_id = r.headers()["X-Request-Id"].to_str().expect("id").to_owned();
    assert_eq!(request_id.len(), 26);
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["id"], "api.context.session_expired.app_error");
    assert_eq!(body["request_id"], request_id.as_str());
    assert_eq!(body["detailed_error"], "");
    let wrong = ctx
        .http
        .get(ctx.url("/users/me"))
        .bearer_auth("notatoken")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    let ping = ctx
        .http
        .get(ctx.url("/system/ping"))
        .send()
        .await
        .expect("send");
    assert_eq!(ping.json::<Value>().await.expect("json")["status"], "OK");
    let unknown = ctx.get("/no/such/route").await;
    assert_eq!(error_id(unknown, 404).await, "api.context.404.app_error");
}

#[tokio::test]
async fn users_lookup_and_ids_since() {
    let ctx = Ctx::sample().await;
    let me = ctx.get_json("/users/me").await;
    let keys: Vec<&str> = me
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        &keys[..5],
        ["id", "create_at", "update_at", "delete_at", "username"]
    );
    assert_eq!(keys.last(), Some(&"disable_welcome_email"));
    let bob = ctx.get_json("/users/username/bob").await;
    assert_eq!(bob["position"], "Lead <b>&\"quotes\"</b>");
    assert_eq!(ctx.get("/users/username/nobody").await.status(), 404);
    let bot = ctx.get_json("/users/username/helperbot").await;
    assert_eq!(bot["is_bot"], true);
    assert!(bot["bot_description"].is_string());

    let ids = ctx.ws(|ws| {
        ["zed", "carol", "dave", "bob"]
            .map(|u| ws.user_id(u))
            .to_vec()
    });
    let mut body = ids.clone();
    body.push("aaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned());
    let users: Value = ctx
        .request(Method::POST, "/users/ids")
        .json(&body)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = users
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["bob", "carol", "dave", "zed"]);
    assert!(users[2]["delete_at"].as_i64() > Some(0));

    let mark = ctx.ws(|ws| ws.now());
    ctx.ws(|ws| ws.set_user_field("carol", "nickname", json!("Caz")));
    let since: Value = ctx
        .request(Method::POST, &format!("/users/ids?since={mark}"))
        .json(&ids)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(since.as_array().map(Vec::len), Some(1));
    assert_eq!(since[0]["nickname"], "Caz");
    let empty = ctx
        .request(Method::POST, "/users/ids")
        .json(&json!([]))
        .send()
        .await
        .expect("send");
    assert_eq!(empty.status(), 400);
    let garbage = ctx
        .request(Method::POST, "/users/ids")
        .body("{")
        .send()
        .await
        .expect("send");
    assert_eq!(garbage.status(), 400);
}

/// `POST /users/group_channels` as the server answers it (§14.1): sorted ids, only the first
/// 50 read, 400 on an empty or malformed body, the caller left out, users by username, only
/// group channels the caller is in, a group without other members absent.
#[tokio::test]
async fn group_channels_answers_like_the_server() {
    let ctx = Ctx::sample().await;
    let post = |body: Value| {
        ctx.request(Method::POST, "/users/group_channels")
            .json(&body)
            .send()
    };
    for bad in [
        json!([]),
        json!({"ids": ["x"]}),
        json!([1, 2]),
        json!("abc"),
    ] {
        let response = post(bad.clone()).await.expect("send");
        assert_eq!(
            error_id(response, 400).await,
            "api.context.invalid_body_param.app_error",
            "{bad}"
        );
    }

    let (gm, foreign, town) = ctx.ws(|ws| {
        (
            ws.gm_channel_id(&["alice", "bob", "carol"]),
            ws.create_group_channel(&["bob", "carol", "dave"]),
            ws.channel_id("eng", "town-square"),
        )
    });
    let answer: Value = post(json!([gm, foreign, town, gm]))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let keys: Vec<&String> = answer.as_object().expect("object").keys().collect();
    assert_eq!(keys, [&gm], "only group channels alice is in");
    let names: Vec<&str> = answer[&gm]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["bob", "carol"], "alice left out, by username");
    assert!(answer[&gm][0].get("password").is_none());

    // 60 group channels: the answer covers the 50 lowest-sorting ids, with a 200.
    let mut ids = ctx.ws(|ws| mock_support::create_groups(ws, 60));
    let response = post(json!(ids)).await.expect("send");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    let mut keys: Vec<String> = answer
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    ids.sort();
    assert_eq!(keys.len(), 50);
    keys.sort();
    assert_eq!(keys, ids[..50], "the first 50 after sorting");

    // A group whose other members all left answers nothing for it.
    let lonely = ctx.ws(|ws| {
        let id = ws.create_group_channel(&["alice", "dave", "zed"]);
        ws.remove_channel_member(&id, "dave");
        ws.remove_channel_member(&id, "zed");
        id
    });
    let answer: Value = post(json!([lonely]))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(answer, json!({}));
}

#[tokio::test]
async fn avatars_default_and_uploaded() {
    let ctx = Ctx::sample().await;
    let (alice, carol) = ctx.ws(|ws| (ws.user_id("alice"), ws.user_id("carol")));
    let carol_json = ctx.get_json(&format!("/users/{carol}")).await;
    assert!(carol_json.get("last_picture_update").is_none());
    let default = ctx.get(&format!("/users/{carol}/image")).await;
    assert_eq!(default.status(), 200);
    assert_eq!(default.headers()[CONTENT_TYPE], "image/png");
    let default_bytes = default.bytes().await.expect("bytes");
    assert!(default_bytes.starts_with(PNG_SIGNATURE));

    let alice_json = ctx.get_json(&format!("/users/{alice}")).await;
    let lpu = alice_json["last_picture_update"]
        .as_i64()
        .expect("uploaded");
    let uploaded = ctx.get(&format!("/users/{alice}/image")).await;
    assert_eq!(uploaded.headers()[ETAG], lpu.to_string().as_str());
    assert_eq!(
        uploaded.bytes().await.expect("bytes"),
        sample_png("alice-uploaded")
    );

    let fresh = sample_png("carol-new");
    ctx.ws(|ws| ws.set_avatar("carol", fresh.clone()));
    let now = ctx
        .get(&format!("/users/{carol}/image"))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(now, fresh);
    assert_eq!(
        ctx.get("/users/aaaaaaaaaaaaaaaaaaaaaaaaaa/image")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn teams_members_and_icons() {
    let ctx = Ctx::sample().await;
    let teams = ctx.get_json("/users/me/teams").await;
    let names: Vec<&str> = teams
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["eng", "ops"]);
    assert!(teams[0]["last_team_icon_update"].as_i64() > Some(0));
    assert!(teams[1].get("last_team_icon_update").is_none());
    assert_eq!(teams[0]["scheme_id"], Value::Null);

    let (eng, ops, secret, bob) = ctx.ws(|ws| {
        (
            ws.team_id("eng"),
            ws.team_id("ops"),
            ws.team_id("secret"),
            ws.user_id("bob"),
        )
    });
    let icon = ctx.get(&format!("/teams/{eng}/image")).await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()[CONTENT_TYPE], "image/png");
    let missing = ctx.get(&format!("/teams/{ops}/image")).await;
    assert_eq!(
        error_id(missing, 404).await,
        "api.team.get_team_icon.read_file.app_error"
    );

    let members = ctx
        .get_json(&format!("/teams/{eng}/members?per_page=4"))
        .await;
    let ids: Vec<&str> = members
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["user_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let rest = ctx
        .get_json(&format!("/teams/{eng}/members?per_page=4&page=1"))
        .await;
    assert_eq!(rest.as_array().map(Vec::len), Some(2));
    assert_eq!(
        ctx.get(&format!("/teams/{secret}/members")).await.status(),
        403
    );
    assert_eq!(ctx.get(&format!("/users/{bob}/teams")).await.status(), 403);
    let rows = ctx.get_json("/users/me/teams/members").await;
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn channel_lists_and_members() {
    let ctx = Ctx::sample().await;
    let all = ctx.get_json("/users/me/channels").await;
    let list = all.as_array().expect("array");
    let kinds = |t: &str| list.iter().filter(|c| c["type"] == t).count();
    assert_eq!(
        (kinds("O"), kinds("P"), kinds("D"), kinds("G")),
        (4, 2, 4, 2)
    );
    let with_deleted = ctx
        .get_json("/users/me/channels?include_deleted=true")
        .await;
    assert_eq!(with_deleted.as_array().map(Vec::len), Some(list.len() + 1));
    assert_eq!(
        ctx.get("/users/me/channels?last_delete_at=-1")
            .await
            .status(),
        400
    );

    let (eng, ops, self_dm, alice) = ctx.ws(|ws| {
        (
            ws.team_id("eng"),
            ws.team_id("ops"),
            ws.dm_channel_id("alice", "alice"),
            ws.user_id("alice"),
        )
    });
    assert!(
        list.iter()
            .any(|c| c["id"] == self_dm.as_str() && c["name"] == format!("{alice}__{alice}"))
    );
    let path = format!("/users/me/teams/{eng}/channels");
    let first = ctx.get(&path).await;
    let etag = first.headers()[ETAG].to_str().expect("etag").to_owned();
    let per_team: Value = first.json().await.expect("json");
    let names: Vec<&str> = per_team
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["display_name"].as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 4 + 6);
    let ops_list = ctx
        .get_json(&format!("/users/me/teams/{ops}/channels"))
        .await;
    assert_eq!(
        ops_list.as_array().map(Vec::len),
        Some(2 + 6),
        "DMs/GMs repeat per team"
    );
    let cached = ctx
        .request(Method::GET, &path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(cached.status(), 304);

    let dev = ctx.channel("eng", "dev");
    let members = ctx.get_json(&format!("/channels/{dev}/members")).await;
    assert_eq!(members.as_array().map(Vec::len), Some(4));
    assert_eq!(members[0]["user_id"], alice.as_str());
    let no_access = ctx.channel("eng", "no-access");
    assert_eq!(
        ctx.get(&format!("/channels/{no_access}/members"))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn files_ranges_disposition_and_deletion() {
    let ctx = Ctx::sample().await;
    let town = ctx.channel("eng", "town-square");
    let post = ctx.ws(|ws| ws.find_post(&town, "Standup moved"));
    let json = ctx.get_json(&format!("/posts/{post}")).await;
    let info = &json["metadata"]["files"][0];
    assert_eq!(info["name"], "report final (v2).pdf");
    let file_id = info["id"].as_str().expect("id").to_owned();
    let size = info["size"].as_u64().expect("size");

    let full = ctx.get(&format!("/files/{file_id}")).await;
    assert_eq!(full.headers()[CONTENT_TYPE], "application/pdf");
    assert_eq!(
        full.headers()[CONTENT_DISPOSITION],
        "attachment;filename=\"report%20final%20%28v2%29.pdf\"; filename*=UTF-8''report%20final%20%28v2%29.pdf"
    );
    let full_bytes = full.bytes().await.expect("bytes");
    assert_eq!(full_bytes.len() as u64, size);
    assert!(full_bytes.starts_with(b"%PDF"));

    let part = ctx
        .request(Method::GET, &format!("/files/{file_id}"))
        .header(RANGE, "bytes=0-9")
        .send()
        .await
        .expect("send");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()[CONTENT_RANGE],
        format!("bytes 0-9/{size}").as_str()
    );
    assert_eq!(part.bytes().await.expect("bytes"), full_bytes.slice(0..10));
    let tail = ctx
        .request(Method::GET, &format!("/files/{file_id}"))
        .header(RANGE, "bytes=100-")
        .send()
        .await
        .expect("send");
    assert_eq!(tail.bytes().await.expect("bytes"), full_bytes.slice(100..));
    let info_json = ctx.get_json(&format!("/files/{file_id}/info")).await;
    assert_eq!(info_json["extension"], "pdf");

    let files_after = ctx.ws(|ws| {
        let dev = ws.channel_id("eng", "dev");
        let id = ws.create_post_with_files(
            &dev,
            "alice",
            "pic",
            None,
            vec![NewFile {
                name: "diagram copy.png".into(),
                bytes: sample_png("x"),
                mime_type: "image/png".into(),
            }],
        );
        ws.delete_post(&id);
        ws.file_ids()
    });
    assert_eq!(
        files_after.len(),
        8,
        "7 sample files + 1 (deleted files stay listed)"
    );
    let dev_diagram = ctx.ws(|ws| {
        let dev = ws.channel_id("eng", "dev");
        ws.find_post(&dev, "Dev update 440")
    });
    let diagram = ctx.get_json(&format!("/posts/{dev_diagram}")).await;
    let diagram_id = diagram["file_ids"][0].as_str().expect("file").to_owned();
    assert_eq!(diagram["metadata"]["files"][0]["width"], 64);
    let inline = ctx.get(&format!("/files/{diagram_id}")).await;
    assert!(
        inline.headers()[CONTENT_DISPOSITION]
            .to_str()
            .expect("cd")
            .starts_with("inline;")
    );

    ctx.ws(|ws| ws.delete_post(&post));
    let gone = ctx.get(&format!("/files/{file_id}")).await;
    assert_eq!(error_id(gone, 404).await, "app.file_info.get.app_error");
    assert_eq!(
        ctx.get(&format!("/files/{file_id}/info")).await.status(),
        404
    );

    let hidden = ctx.ws(|ws| {
        let no_access = ws.channel_id("eng", "no-access");
        let before = ws.file_ids();
        ws.create_post_with_files(
            &no_access,
            "bob",
            "secret file",
            None,
            vec![NewFile {
                name: "s.txt".into(),
                bytes: b"s".to_vec(),
                mime_type: String::new(),
            }],
        );
        ws.file_ids()
            .into_iter()
            .find(|f| !before.contains(f))
            .expect("new file")
    });
    assert_eq!(ctx.get(&format!("/files/{hidden}")).await.status(), 403);
}

#[tokio::test]
async fn emojis_sorted_and_typed() {
    let ctx = Ctx::sample().await;
    let list = ctx.get_json("/emoji?sort=name").await;
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["dancing", "thumbsup_custom"]);
    let dancing = list[0]["id"].as_str().expect("id");
    let image = ctx.get(&format!("/emoji/{dancing}/image")).await;
    assert_eq!(image.headers()[CONTENT_TYPE], "image/gif");
    assert!(image.bytes().await.expect("bytes").starts_with(b"GIF89a"));
    let png_id = list[1]["id"].as_str().expect("id");
    let png = ctx.get(&format!("/emoji/{png_id}/image")).await;
    assert_eq!(png.headers()[CONTENT_TYPE], "image/png");
    let paged = ctx.get_json("/emoji?sort=name&per_page=1&page=1").await;
    assert_eq!(paged[0]["name"], "thumbsup_custom");
    ctx.ws(|ws| ws.delete_emoji("dancing"));
    assert_eq!(
        ctx.get(&format!("/emoji/{dancing}/image")).await.status(),
        404
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let ctx = Ctx::sample().await;
    ctx.server.set_faults(crate::common::rate_limited(1, 2));
    // The limiter's clock stands still until moved: the counts below hold however slowly the
    // requests arrive.
    ctx.server.freeze_rate_clock();
    for expected_remaining in ["2", "1", "0"] {
        let r = ctx.get("/users/me").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["X-Ratelimit-Limit"], "3");
        assert_eq!(r.headers()["X-Ratelimit-Remaining"], expected_remaining);
    }
    let limited = ctx.get("/users/me").await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["Retry-After"]
        .to_str()
        .expect("ra")
        .parse()
        .expect("secs");
    assert!(retry >= 1);
    assert_eq!(limited.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(limited.text().await.expect("text"), "limit exceeded\n");
    assert_eq!(ctx.server.requests().last().map(|r| r.status), Some(429));
    ctx.server.advance_rate_clock(Duration::from_millis(999));
    assert_eq!(ctx.get("/users/me").await.status(), 429, "not yet refilled");
    ctx.server.advance_rate_clock(Duration::from_millis(1));
    let refilled = ctx.get("/users/me").await;
    assert_eq!(refilled.status(), 200, "one token back after a second");
    assert_eq!(refilled.headers()["X-Ratelimit-Remaining"], "0");
}

/// The limiter is keyed by client IP (`VaryByRemoteAddr`): a client that used up its bucket
/// does not limit another, and every answer carries the rate headers.
#[tokio::test]
async fn rate_limit_buckets_are_per_client_ip() {
    let ctx = Ctx::sample().await;
    ctx.server.set_faults(crate::common::rate_limited(1, 1));
    ctx.server.freeze_rate_clock();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = ctx.get("/users/me").await;
        for name in [
            "X-Ratelimit-Limit",
            "X-Ratelimit-Remaining",
            "X-Ratelimit-Reset",
        ] {
            assert!(r.headers().contains_key(name), "{name}");
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let answer = other
        .get(ctx.url("/users/me"))
        .bearer_auth(&ctx.token)
        .send()
        .await
        .expect("send from 127.0.0.2");
    assert_eq!(answer.status(), 200, "another IP, another bucket");
    assert_eq!(answer.headers()["X-Ratelimit-Remaining"], "1");
}

#[tokio::test]
async fn injected_errors_and_latency() {
    let ctx = Ctx::sample().await;
    ctx.server.set_faults(Faults {
        error_permille: 1000,
        latency: Duration::from_millis(30),
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let r = ctx.get("/users/me").await;
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert!(matches!(r.status().as_u16(), 502 | 503));
    assert!(r.text().await.expect("text").starts_with("<html>"));
    // Control endpoints are never faulted.
    let c = ctx
        .http
        .get(format!("{}/__mock/requests", ctx.server.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(c.status(), 200);
}

#[tokio::test]
async fn requests_are_counted_by_route() {
    let ctx = Ctx::sample().await;
    let dev = ctx.channel("eng", "dev");
    ctx.get("/users/me").await;
    ctx.server.reset_requests();
    for _ in 0..3 {
        ctx.get(&format!("/channels/{dev}/posts?per_page=5")).await;
    }
    ctx.get("/users/me").await;
    ctx.get("/nope").await;
    assert_eq!(ctx.server.request_count(), 5);
    assert_eq!(
        ctx.server.count("GET /api/v4/channels/{channel_id}/posts"),
        3
    );
    assert_eq!(ctx.server.count("GET /api/v4/users/{user_id}"), 1);
    let records = ctx.server.requests();
    assert_eq!(records[0].path, format!("/api/v4/channels/{dev}/posts"));
    assert_eq!(records[0].query, "per_page=5");
    assert_eq!(records[4].status, 404);

    let base = ctx.server.url();
    let summary: Value = ctx
        .http
        .get(format!("{base}/__mock/requests"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(summary["total"], 5);
    assert_eq!(
        summary["by_route"]["GET /api/v4/channels/{channel_id}/posts"],
        3
    );
    let reset = ctx
        .http
        .post(format!("{base}/__mock/requests/reset"))
        .send()
        .await
        .expect("send");
    assert_eq!(reset.status(), 200);
    assert_eq!(ctx.server.request_count(), 0);
}

#[tokio::test]
async fn update_scenario_via_control_endpoint() {
    let ctx = Ctx::sample().await;
    let base = ctx.server.url();
    let town = ctx.channel("eng", "town-square");
    let mark = ctx.ws(|ws| ws.now());
    let applied = ctx
        .http
        .post(format!("{base}/__mock/scenario/update"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        applied.json::<Value>().await.expect("json"),
        json!({"ok": true})
    );
    let again = ctx
        .http
        .post(format!("{base}/__mock/scenario/update"))
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 409);
    assert_eq!(
        ctx.server.request_count(),
        0,
        "control calls are not recorded"
    );

    let changed = ctx
        .get_json(&format!("/channels/{town}/posts?since={mark}"))
        .await;
    // new root, its reply, and the build post whose reaction was removed
    assert_eq!(order(&changed).len(), 3);
    let channels = ctx.get_json("/users/me/channels").await;
    assert!(
        channels
            .as_array()
            .expect("array")
            .iter()
            .any(|c| c["name"] == "announcements")
    );
    let announcements = ctx.channel("eng", "announcements");
    let posts = ctx
        .get_json(&format!("/channels/{announcements}/posts"))
        .await;
    assert_eq!(order(&posts).len(), 3);
    let emojis = ctx.get_json("/emoji?sort=name").await;
    assert!(
        emojis
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["name"] == "party_parrot")
    );
}
