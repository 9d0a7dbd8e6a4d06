//! Wire shapes: stored rows → JSON exactly as the server renders them.
//!
//! Field order follows the Go structs; omit-empty rules follow their `json` tags. Posts
//! get their derived fields (reply counts, metadata) here, and deleted or history rows
//! are blanked like `PreparePostForClient` does.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::model::{Channel, Emoji, FileInfo, Post, Reaction, Team, User};
use super::postlist::PostListIds;
use super::workspace::Workspace;

#[derive(Serialize)]
struct Timezone {
    #[serde(rename = "automaticTimezone")]
    automatic: &'static str,
    #[serde(rename = "manualTimezone")]
    manual: &'static str,
    #[serde(rename = "useAutomaticTimezone")]
    use_automatic: &'static str,
}

#[derive(Serialize)]
struct UserView<'a> {
    id: &'a str,
    create_at: i64,
    update_at: i64,
    delete_at: i64,
    username: &'a str,
    auth_service: &'a str,
    email: &'a str,
    nickname: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    position: &'a str,
    roles: &'a str,
    props: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "is_zero")]
    last_picture_update: i64,
    locale: &'a str,
    timezone: Timezone,
    #[serde(skip_serializing_if = "is_false")]
    is_bot: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    bot_description: &'a str,
    disable_welcome_email: bool,
}

pub fn user(u: &User) -> Value {
    let mut value = to_value(&UserView {
        id: &u.id,
        create_at: u.create_at,
        update_at: u.update_at,
        delete_at: u.delete_at,
        username: &u.username,
        auth_service: "",
        email: &u.email,
        nickname: &u.nickname,
        first_name: &u.first_name,
        last_name: &u.last_name,
        position: &u.position,
        roles: &u.roles,
        props: &u.props,
        last_picture_update: u.last_picture_update,
        locale: &u.locale,
        timezone: Timezone {
            automatic: "",
            manual: "",
            use_automatic: "true",
        },
        is_bot: u.is_bot,
        bot_description: &u.bot_description,
        disable_welcome_email: false,
    });
    if let Value::Object(fields) = &mut value {
        fields.extend(u.raw_fields.clone());
    }
    value
}

#[derive(Serialize)]
struct TeamView<'a> {
    id: &'a str,
    create_at: i64,
    update_at: i64,
    delete_at: i64,
    display_name: &'a str,
    name: &'a str,
    description: &'a str,
    email: &'a str,
    #[serde(rename = "type")]
    kind: String,
    company_name: &'a str,
    allowed_domains: &'a str,
    invite_id: &'a str,
    allow_open_invite: bool,
    #[serde(skip_serializing_if = "is_zero")]
    last_team_icon_update: i64,
    scheme_id: Option<&'a str>,
    group_constrained: Option<bool>,
    policy_id: Option<&'a str>,
    cloud_limits_archived: bool,
}

pub fn team(t: &Team) -> Value {
    to_value(&TeamView {
        id: &t.id,
        create_at: t.create_at,
        update_at: t.update_at,
        delete_at: t.delete_at,
        display_name: &t.display_name,
        name: &t.name,
        description: &t.description,
        email: "",
        kind: t.kind.to_string(),
        company_name: &t.company_name,
        allowed_domains: &t.allowed_domains,
        invite_id: "",
        allow_open_invite: t.allow_open_invite,
        last_team_icon_update: t.last_team_icon_update,
        scheme_id: None,
        group_constrained: None,
        policy_id: None,
        cloud_limits_archived: false,
    })
}

#[derive(Serialize)]
struct ChannelView<'a> {
    id: &'a str,
    create_at: i64,
    update_at: i64,
    delete_at: i64,
    team_id: &'a str,
    #[serde(rename = "type")]
    kind: String,
    display_name: &'a str,
    name: &'a str,
    header: &'a str,
    purpose: &'a str,
    last_post_at: i64,
    total_msg_count: i64,
    extra_update_at: i64,
    creator_id: &'a str,
    scheme_id: Option<&'a str>,
    props: Option<Value>,
    group_constrained: Option<bool>,
    shared: Option<bool>,
    total_msg_count_root: i64,
    policy_id: Option<&'a str>,
    last_root_post_at: i64,
}

pub fn channel(c: &Channel) -> Value {
    to_value(&ChannelView {
        id: &c.id,
        create_at: c.create_at,
        update_at: c.update_at,
        delete_at: c.delete_at,
        team_id: &c.team_id,
        kind: c.kind.to_string(),
        display_name: &c.display_name,
        name: &c.name,
        header: &c.header,
        purpose: &c.purpose,
        last_post_at: c.last_post_at,
        total_msg_count: c.total_msg_count,
        extra_update_at: 0,
        creator_id: &c.creator_id,
        scheme_id: None,
        props: None,
        group_constrained: None,
        shared: None,
        total_msg_count_root: c.total_msg_count_root,
        policy_id: None,
        last_root_post_at: c.last_root_post_at,
    })
}

#[derive(Serialize, Default)]
struct Metadata<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    emojis: Vec<&'a Emoji>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<&'a FileInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reactions: Vec<&'a Reaction>,
}

#[derive(Serialize)]
struct PostView<'a> {
    id: &'a str,
    create_at: i64,
    update_at: i64,
    edit_at: i64,
    delete_at: i64,
    is_pinned: bool,
    user_id: &'a str,
    channel_id: &'a str,
    root_id: &'a str,
    original_id: &'a str,
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    props: &'a Map<String, Value>,
    hashtags: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_ids: Option<&'a [String]>,
    pending_post_id: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    has_reactions: bool,
    reply_count: i64,
    last_reply_at: i64,
    participants: Option<Vec<Value>>,
    metadata: Metadata<'a>,
}

/// Live replies of the post's thread: (count, newest create_at).
fn thread_stats(ws: &Workspace, post: &Post) -> (i64, i64) {
    let root = post.thread_root_id();
    ws.thread_posts(root)
        .filter(|p| p.is_live() && p.channel_id == post.channel_id)
        .fold((0, 0), |(n, last), p| (n + 1, last.max(p.create_at)))
}

fn metadata<'a>(ws: &'a Workspace, post: &'a Post) -> Metadata<'a> {
    let mut reactions: Vec<&Reaction> = post.reactions.iter().collect();
    reactions.sort_by_key(|r| r.create_at);
    let mut emojis: Vec<&Emoji> = Vec::new();
    for reaction in &reactions {
        let custom = ws
            .emojis
            .values()
            .find(|e| e.name == reaction.emoji_name && e.delete_at == 0);
        if let Some(emoji) = custom.filter(|e| !emojis.iter().any(|seen| seen.id == e.id)) {
            emojis.push(emoji);
        }
    }
    let files = post
        .file_ids
        .iter()
        .filter_map(|id| ws.files.get(id))
        .collect();
    Metadata {
        emojis,
        files,
        reactions,
    }
}

pub fn post(ws: &Workspace, p: &Post) -> Value {
    post_with_stats(ws, p, thread_stats(ws, p))
}

/// A post whose thread's `(reply count, newest reply create_at)` is already known.
fn post_with_stats(ws: &Workspace, p: &Post, (reply_count, last_reply_at): (i64, i64)) -> Value {
    let blanked = !p.is_live();
    to_value(&PostView {
        id: &p.id,
        create_at: p.create_at,
        update_at: p.update_at,
        edit_at: p.edit_at,
        delete_at: p.delete_at,
        is_pinned: p.is_pinned,
        user_id: &p.user_id,
        channel_id: &p.channel_id,
        root_id: &p.root_id,
        original_id: &p.original_id,
        message: if blanked { "" } else { &p.message },
        kind: &p.kind,
        props: &p.props,
        hashtags: "",
        file_ids: (ws.file_ids_always || !p.file_ids.is_empty()).then_some(&p.file_ids[..]),
        pending_post_id: "",
        has_reactions: !p.reactions.is_empty(),
        reply_count,
        last_reply_at,
        participants: None,
        metadata: if blanked {
            Metadata::default()
        } else {
            metadata(ws, p)
        },
    })
}

/// Whether a post list carries each thread's live `reply_count` or 0: it depends on the
/// request mode (§14.2), because the server's queries compute it in some modes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyCounts {
    Live,
    Zero,
}

/// A PostList; `posts` keys come out sorted like Go's map encoding.
pub fn post_list(ws: &Workspace, list: &PostListIds, reply_counts: ReplyCounts) -> Value {
    // Thread stats of every thread on the page in one pass over the posts (not one per post:
    // generated workspaces hold hundreds of thousands).
    let rows: Vec<&Post> = list
        .posts
        .iter()
        .filter_map(|id| ws.posts.get(id))
        .collect();
    let mut stats: HashMap<&str, (i64, i64)> =
        rows.iter().map(|p| (p.thread_root_id(), (0, 0))).collect();
    let channels: BTreeSet<&str> = rows.iter().map(|p| p.channel_id.as_str()).collect();
    for p in channels.iter().flat_map(|c| ws.live_posts_of(c)) {
        if let Some((n, last)) = stats.get_mut(p.root_id.as_str()) {
            *n += 1;
            *last = (*last).max(p.create_at);
        }
    }
    let posts: Map<String, Value> = rows
        .iter()
        .map(|p| {
            let (count, last) = stats.get(p.thread_root_id()).copied().unwrap_or((0, 0));
            let count = match reply_counts {
                ReplyCounts::Live => count,
                ReplyCounts::Zero => 0,
            };
            (p.id.clone(), post_with_stats(ws, p, (count, last)))
        })
        .collect();
    json!({
        "order": list.order,
        "posts": posts,
        "next_post_id": list.next_post_id,
        "prev_post_id": list.prev_post_id,
        "first_inaccessible_post_time": 0,
    })
}

/// Serialising these view types cannot fail (string keys, no custom serialisers).
fn to_value(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}
