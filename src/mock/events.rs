//! WebSocket events published by the workspace's mutations (API notes §15.2, §15.7).
//!
//! A mutation that the real server announces appends an [`Event`] to the workspace's outbox;
//! the server hands the outbox to the hub (`hub`) when the workspace lock is released, so an
//! event always leaves after the state it describes is visible over REST. Each event knows
//! its wire form (the server's pre-serialised `{"event": …, "data": …, "broadcast": …,
//! "seq": N}`, with spaces) and its audience, resolved when it is published from the
//! membership of that moment (`ShouldSendEvent`, §15.6): the members of a channel that is not
//! archived for channel-scoped events, team members for team-scoped ones, one user, or everyone.
//!
//! Invariants: `data` keys are sorted like Go's map encoding; values the server sends as
//! JSON strings (`post`, `reaction`, `channel`, `emoji`, `team`, `teammate_ids`,
//! `mentions`) are strings here too. No event while the outbox is disabled (before the
//! server starts, so building big workspaces costs nothing) or muted (tests that change
//! state silently, like a bulk import or a permanent delete does).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::model::{Channel, Post, Reaction};
use super::render;
use super::workspace::Workspace;

/// `model.WebsocketBroadcast`, fields in the Go struct's order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Broadcast {
    pub omit_users: Option<BTreeMap<String, bool>>,
    pub user_id: String,
    pub channel_id: String,
    pub team_id: String,
    pub connection_id: String,
    pub omit_connection_id: String,
    #[serde(skip_serializing_if = "is_false")]
    pub contains_sanitized_data: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub contains_sensitive_data: bool,
}

impl Broadcast {
    fn channel(channel_id: &str) -> Broadcast {
        Broadcast {
            channel_id: channel_id.to_owned(),
            ..Broadcast::default()
        }
    }

    fn team(team_id: &str) -> Broadcast {
        Broadcast {
            team_id: team_id.to_owned(),
            ..Broadcast::default()
        }
    }

    fn user(user_id: &str) -> Broadcast {
        Broadcast {
            user_id: user_id.to_owned(),
            ..Broadcast::default()
        }
    }
}

/// Who receives an event.
#[derive(Clone, Debug)]
pub enum Audience {
    Everyone,
    Users(BTreeSet<String>),
}

impl Audience {
    pub fn includes(&self, user_id: &str) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Users(users) => users.contains(user_id),
        }
    }
}

/// One published event, ready to be numbered and written to any number of connections.
#[derive(Clone, Debug)]
pub struct Event {
    pub name: &'static str,
    data: BTreeMap<String, Value>,
    broadcast: Broadcast,
    /// The pre-serialised form up to the sequence number: `{"event": "…", "data": {…},
    /// "broadcast": {…}, "seq": ` (the hub appends the number and `}`).
    prefix: String,
    pub audience: Audience,
    /// Data a single recipient gets on top (`posted`'s `mentions` on newest servers): that
    /// recipient's copy is re-encoded compactly with a trailing newline, as the server does
    /// for events it modifies per connection.
    personal: BTreeMap<String, (&'static str, Value)>,
}

/// The `{"event","data","broadcast","seq"}` struct the server encodes non-precomputed
/// events with (`webSocketEventJSON`).
#[derive(Serialize)]
struct Encoded<'a> {
    event: &'a str,
    data: &'a BTreeMap<String, Value>,
    broadcast: &'a Broadcast,
    seq: i64,
}

/// Serialising maps of JSON values with string keys cannot fail.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl Event {
    fn new(
        name: &'static str,
        data: BTreeMap<String, Value>,
        broadcast: Broadcast,
        audience: Audience,
    ) -> Event {
        let prefix = format!(
            "{{\"event\": {}, \"data\": {}, \"broadcast\": {}, \"seq\": ",
            to_json(&name),
            to_json(&data),
            to_json(&broadcast)
        );
        Event {
            name,
            data,
            broadcast,
            prefix,
            audience,
            personal: BTreeMap::new(),
        }
    }

    /// The text frame `user_id`'s connection receives with sequence number `seq`.
    pub fn encode(&self, seq: i64, user_id: &str) -> String {
        match self.personal.get(user_id) {
            None => format!("{}{seq}}}", self.prefix),
            Some((key, value)) => {
                let mut data = self.data.clone();
                data.insert((*key).to_owned(), value.clone());
                let mut text = to_json(&Encoded {
                    event: self.name,
                    data: &data,
                    broadcast: &self.broadcast,
                    seq,
                });
                text.push('\n');
                text
            }
        }
    }
}

/// The `hello` a fresh connection starts with (seq 0, compact JSON plus a newline like
/// every event the server does not pre-serialise; `createHelloMessage`).
pub fn hello(user_id: &str, connection_id: &str, server_version: &str) -> String {
    let data: BTreeMap<String, Value> = [
        ("connection_id", connection_id),
        ("server_hostname", "mock"),
        ("server_version", server_version),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
    .collect();
    let mut text = to_json(&Encoded {
        event: "hello",
        data: &data,
        broadcast: &Broadcast::user(user_id),
        seq: 0,
    });
    text.push('\n');
    text
}

/// The outbox the workspace fills and the server drains.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    enabled: bool,
    muted: bool,
    events: Vec<Event>,
}

fn data<const N: usize>(pairs: [(&str, Value); N]) -> BTreeMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl Workspace {
    /// Starts recording events (the server calls it when it starts serving).
    pub(crate) fn enable_events(&mut self) {
        self.outbox.enabled = true;
        self.outbox.events.clear();
    }

    /// Runs `change` without publishing any event: state changes the server makes silently
    /// (bulk import, data retention, a custom emoji's deletion taking its reactions along)
    /// or changes made while a client could not have heard them.
    pub fn without_events<R>(&mut self, change: impl FnOnce(&mut Workspace) -> R) -> R {
        let was = std::mem::replace(&mut self.outbox.muted, true);
        let result = change(self);
        self.outbox.muted = was;
        result
    }

    /// The events published since the last call, oldest first.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.outbox.events)
    }

    fn recording(&self) -> bool {
        self.outbox.enabled && !self.outbox.muted
    }

    /// Resolves the audience of a broadcast as `ShouldSendEvent` does (§15.6).
    fn audience(&self, broadcast: &Broadcast) -> Audience {
        let mut users: BTreeSet<String> = if !broadcast.user_id.is_empty() {
            [broadcast.user_id.clone()].into()
        } else if !broadcast.channel_id.is_empty() {
            // `ShouldSendEvent` asks `GetAllChannelMembersForUser(user, false, false)`:
            // members of channels that are not archived (`includeDeleted` false adds
            // `Channels.DeleteAt = 0`, `sqlstore/channel_store.go`). The server caches that
            // set per connection for a while; the mock applies the rule at once.
            if self
                .channels
                .get(&broadcast.channel_id)
                .is_some_and(|c| c.delete_at != 0)
            {
                BTreeSet::new()
            } else {
                self.channel_members_of(&broadcast.channel_id)
                    .map(|m| m.user_id.clone())
                    .collect()
            }
        } else if !broadcast.team_id.is_empty() {
            self.team_members
                .iter()
                .filter(|m| m.team_id == broadcast.team_id && m.delete_at == 0)
                .map(|m| m.user_id.clone())
                .collect()
        } else if broadcast.contains_sanitized_data || broadcast.contains_sensitive_data {
            self.users.keys().cloned().collect()
        } else if broadcast.omit_users.is_none() {
            return Audience::Everyone;
        } else {
            self.users.keys().cloned().collect()
        };
        if let Some(omit) = &broadcast.omit_users {
            users.retain(|u| !omit.contains_key(u));
        }
        // The sanitized copy goes to those without `manage_system`, the sensitive one to
        // those with it (a user sees exactly one of the two).
        if broadcast.contains_sanitized_data || broadcast.contains_sensitive_data {
            let want_admin = broadcast.contains_sensitive_data;
            users.retain(|u| self.is_system_admin(u) == want_admin);
        }
        Audience::Users(users)
    }

    fn is_system_admin(&self, user_id: &str) -> bool {
        self.users
            .get(user_id)
            .is_some_and(|u| u.roles.split_whitespace().any(|r| r == "system_admin"))
    }

    fn publish(&mut self, name: &'static str, data: BTreeMap<String, Value>, b: Broadcast) {
        let audience = self.audience(&b);
        self.publish_to(name, data, b, audience);
    }

    fn publish_to(
        &mut self,
        name: &'static str,
        data: BTreeMap<String, Value>,
        b: Broadcast,
        audience: Audience,
    ) {
        if !self.recording() {
            return;
        }
        self.outbox.events.push(Event::new(name, data, b, audience));
    }

    /// `posted` (`publishWebsocketEventForPost`): the prepared post as a JSON string plus
    /// the channel's names, `otherFile`/`image` when it has files, and each mentioned
    /// member's own `mentions`.
    pub(crate) fn publish_posted(&mut self, post_id: &str) {
        if !self.recording() {
            return;
        }
        let Some(post) = self.posts.get(post_id) else {
            return;
        };
        let Some(channel) = self.channels.get(&post.channel_id) else {
            return;
        };
        let sender = self
            .users
            .get(&post.user_id)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        let display_name = match channel.kind {
            'D' => format!("@{sender}"),
            _ => channel.display_name.clone(),
        };
        let sender_name = if post.kind.starts_with("system_") {
            "System".to_owned()
        } else {
            format!("@{sender}")
        };
        let mut d = data([
            ("channel_display_name", text(display_name)),
            ("channel_name", text(channel.name.clone())),
            ("channel_type", text(channel.kind.to_string())),
            ("post", text(render::post(self, post).to_string())),
            ("sender_name", text(sender_name)),
            ("set_online", Value::Bool(true)),
            ("team_id", text(channel.team_id.clone())),
        ]);
        if !post.file_ids.is_empty() {
            d.insert("otherFile".to_owned(), text("true"));
            let image = post
                .file_ids
                .iter()
                .filter_map(|id| self.files.get(id))
                .any(|f| f.mime_type.starts_with("image/") || f.width > 0);
            if image {
                d.insert("image".to_owned(), text("true"));
            }
        }
        let mentioned: Vec<String> = if post.message.contains('@') {
            self.channel_members_of(&post.channel_id)
                .filter(|m| m.user_id != post.user_id)
                .filter_map(|m| self.users.get(&m.user_id))
                .filter(|u| super::workspace::mentions(&post.message, &u.username))
                .map(|u| u.id.clone())
                .collect()
        } else {
            Vec::new()
        };
        let b = Broadcast::channel(&channel.id);
        let audience = self.audience(&b);
        let mut event = Event::new("posted", d, b, audience);
        for user_id in mentioned {
            let own = text(to_json(&[&user_id]));
            event.personal.insert(user_id, ("mentions", own));
        }
        self.outbox.events.push(event);
    }

    /// `post_edited`: the whole prepared post after the change (message, props, pin).
    pub(crate) fn publish_post_edited(&mut self, post_id: &str) {
        if !self.recording() {
            return;
        }
        let Some(post) = self.posts.get(post_id) else {
            return;
        };
        let d = data([("post", text(render::post(self, post).to_string()))]);
        let b = Broadcast::channel(&post.channel_id);
        self.publish("post_edited", d, b);
    }

    /// The `post` of a `post_deleted`, rendered before the delete is applied (`GetSingle`
    /// then `json.Marshal`: full message, `file_ids`, props, `delete_at` 0, the thread's
    /// live reply count, no metadata). None while no event is recorded.
    pub(crate) fn deleted_post_payload(&self, post: &Post) -> Option<String> {
        if !self.recording() {
            return None;
        }
        let mut value = render::post(self, post);
        if let Value::Object(fields) = &mut value {
            fields.remove("metadata");
        }
        Some(value.to_string())
    }

    /// `post_deleted`: non-admins get `{post}`, admins `{post, delete_by}`.
    pub(crate) fn publish_post_deleted(
        &mut self,
        payload: String,
        channel_id: &str,
        deleter: &str,
    ) {
        let post = text(payload);
        let sanitized = Broadcast {
            contains_sanitized_data: true,
            ..Broadcast::channel(channel_id)
        };
        self.publish("post_deleted", data([("post", post.clone())]), sanitized);
        let sensitive = Broadcast {
            contains_sensitive_data: true,
            ..Broadcast::channel(channel_id)
        };
        let d = data([("delete_by", text(deleter)), ("post", post)]);
        self.publish("post_deleted", d, sensitive);
    }

    /// `reaction_added` (the stored reaction) or `reaction_removed` (the object the delete
    /// request built: `create_at` and `delete_at` 0, `channel_id` empty, `update_at` now).
    pub(crate) fn publish_reaction(&mut self, added: bool, reaction: &Reaction, channel_id: &str) {
        if !self.recording() {
            return;
        }
        let (name, value) = if added {
            ("reaction_added", to_json(reaction))
        } else {
            let removed = Reaction {
                create_at: 0,
                delete_at: 0,
                channel_id: String::new(),
                ..reaction.clone()
            };
            ("reaction_removed", to_json(&removed))
        };
        let d = data([("reaction", text(value))]);
        self.publish(name, d, Broadcast::channel(channel_id));
    }

    /// `channel_created`, to its creator only.
    pub(crate) fn publish_channel_created(&mut self, channel_id: &str) {
        let Some(channel) = self.channels.get(channel_id) else {
            return;
        };
        let (team_id, creator) = (channel.team_id.clone(), channel.creator_id.clone());
        let d = data([("channel_id", text(channel_id)), ("team_id", text(team_id))]);
        self.publish("channel_created", d, Broadcast::user(&creator));
    }

    /// `channel_updated`, to the channel's members, with the channel as a JSON string.
    pub(crate) fn publish_channel_updated(&mut self, channel_id: &str) {
        let Some(channel) = self.channels.get(channel_id) else {
            return;
        };
        let d = data([("channel", text(render::channel(channel).to_string()))]);
        self.publish("channel_updated", d, Broadcast::channel(channel_id));
    }

    /// `channel_deleted` (archived) or `channel_restored`: the team for a public channel,
    /// the members for a private one (newest servers, MM-54757).
    pub(crate) fn publish_channel_archive_state(&mut self, channel_id: &str) {
        let Some(channel) = self.channels.get(channel_id) else {
            return;
        };
        let b = scope_of_archive(channel);
        if channel.delete_at != 0 {
            let d = data([
                ("channel_id", text(channel_id)),
                ("delete_at", Value::from(channel.delete_at)),
            ]);
            // A private channel's members still hear of its archiving: their connections'
            // member sets were read while it was live (the server caches them).
            let audience = if channel.kind == 'P' {
                Audience::Users(
                    self.channel_members_of(channel_id)
                        .map(|m| m.user_id.clone())
                        .collect(),
                )
            } else {
                self.audience(&b)
            };
            self.publish_to("channel_deleted", d, b, audience);
        } else {
            let d = data([("channel_id", text(channel_id))]);
            self.publish("channel_restored", d, b);
        }
    }

    /// `channel_converted`, to the team.
    pub(crate) fn publish_channel_converted(&mut self, channel_id: &str) {
        let Some(channel) = self.channels.get(channel_id) else {
            return;
        };
        let b = Broadcast::team(&channel.team_id);
        self.publish(
            "channel_converted",
            data([("channel_id", text(channel_id))]),
            b,
        );
    }

    /// `user_added`, to the channel (the added user included); the channel id is only in
    /// the broadcast.
    pub(crate) fn publish_user_added(&mut self, channel_id: &str, user_id: &str) {
        let team_id = self
            .channels
            .get(channel_id)
            .map(|c| c.team_id.clone())
            .unwrap_or_default();
        let d = data([("team_id", text(team_id)), ("user_id", text(user_id))]);
        self.publish("user_added", d, Broadcast::channel(channel_id));
    }

    /// `user_added` of `JoinDefaultChannels` (a user joining a team enters its default
    /// channels, `app/channel.go`): the user as an object and the team id, no `user_id`; the
    /// channel is in the broadcast.
    pub(crate) fn publish_user_joined_default_channel(&mut self, channel_id: &str, user_id: &str) {
        let Some(user) = self.users.get(user_id) else {
            return;
        };
        let team_id = self
            .channels
            .get(channel_id)
            .map(|c| c.team_id.clone())
            .unwrap_or_default();
        let d = data([("team_id", text(team_id)), ("user", render::user(user))]);
        self.publish("user_added", d, Broadcast::channel(channel_id));
    }

    /// `added_to_team`, to the added user alone (`app/team.go` JoinUserToTeam).
    pub(crate) fn publish_added_to_team(&mut self, team_id: &str, user_id: &str) {
        let d = data([("team_id", text(team_id)), ("user_id", text(user_id))]);
        self.publish("added_to_team", d, Broadcast::user(user_id));
    }

    /// `leave_team`, to the team's members (`app/team.go` RemoveTeamMemberFromTeam).
    pub(crate) fn publish_leave_team(&mut self, team_id: &str, user_id: &str) {
        let d = data([("team_id", text(team_id)), ("user_id", text(user_id))]);
        self.publish("leave_team", d, Broadcast::team(team_id));
    }

    /// `user_removed`: one to the remaining members, one to the removed user.
    pub(crate) fn publish_user_removed(&mut self, channel_id: &str, user_id: &str, remover: &str) {
        let d = data([("remover_id", text(remover)), ("user_id", text(user_id))]);
        self.publish("user_removed", d, Broadcast::channel(channel_id));
        let d = data([
            ("channel_id", text(channel_id)),
            ("remover_id", text(remover)),
        ]);
        self.publish("user_removed", d, Broadcast::user(user_id));
    }

    /// `direct_added` when a DM is first created.
    pub(crate) fn publish_direct_added(&mut self, channel_id: &str, creator: &str, teammate: &str) {
        let d = data([
            ("creator_id", text(creator)),
            ("teammate_id", text(teammate)),
        ]);
        self.publish("direct_added", d, Broadcast::channel(channel_id));
    }

    /// `group_added` when a GM is first created: every member's id, as a JSON string.
    pub(crate) fn publish_group_added(&mut self, channel_id: &str, user_ids: &[String]) {
        let d = data([("teammate_ids", text(to_json(&user_ids)))]);
        self.publish("group_added", d, Broadcast::channel(channel_id));
    }

    /// `user_updated` as `sendUpdatedUserEvent` sends it (`app/user.go`): the user as an
    /// object, three ways. Everyone but the user gets a profile sanitized by
    /// `SanitizeProfile` (admins the sensitive copy, others the sanitized one; the mock's
    /// server settings show emails and full names, so both carry what `POST /users/ids`
    /// answers); the user themself gets the unsanitized record, private fields included
    /// (password hash, MFA secret, notification settings), which no REST answer holds.
    pub(crate) fn publish_user_updated(&mut self, user_id: &str) {
        let Some(user) = self.users.get(user_id) else {
            return;
        };
        let value = render::user(user);
        let (username, created) = (user.username.clone(), user.create_at);
        let omit: BTreeMap<String, bool> = [(user_id.to_owned(), true)].into();
        for sensitive in [true, false] {
            let b = Broadcast {
                omit_users: Some(omit.clone()),
                contains_sanitized_data: !sensitive,
                contains_sensitive_data: sensitive,
                ..Broadcast::default()
            };
            self.publish("user_updated", data([("user", value.clone())]), b);
        }
        let mut unsanitized = value;
        if let Value::Object(fields) = &mut unsanitized {
            let private = serde_json::json!({
                "password": format!("$2a$10$mock.hash.of.{username}.password"),
                "auth_data": "",
                "mfa_active": false,
                "mfa_secret": "MOCKMFASECRETNOTFORARCHIVES",
                "email_verified": true,
                "last_password_update": created,
                "failed_attempts": 0,
                "notify_props": {"desktop": "mention", "email": "true", "push": "mention"},
            });
            if let Value::Object(private) = private {
                fields.extend(private);
            }
        }
        self.publish(
            "user_updated",
            data([("user", unsanitized)]),
            Broadcast::user(user_id),
        );
    }

    /// `emoji_added`, to everyone, with the emoji as a JSON string.
    pub(crate) fn publish_emoji_added(&mut self, emoji_id: &str) {
        let Some(emoji) = self.emojis.get(emoji_id) else {
            return;
        };
        let d = data([("emoji", text(to_json(emoji)))]);
        self.publish("emoji_added", d, Broadcast::default());
    }

    /// `update_team`, to the team's members, with the team as a JSON string.
    pub(crate) fn publish_team_updated(&mut self, team_id: &str) {
        let Some(team) = self.teams.get(team_id) else {
            return;
        };
        let d = data([("team", text(render::team(team).to_string()))]);
        self.publish("update_team", d, Broadcast::team(team_id));
    }
}

fn scope_of_archive(channel: &Channel) -> Broadcast {
    if channel.kind == 'P' {
        Broadcast::channel(&channel.id)
    } else {
        Broadcast::team(&channel.team_id)
    }
}
