//! The whole server state as plain data, plus lookups and mutations.
//!
//! Invariants:
//! - no I/O and no wall clock: time is the logical `clock` (ms), so runs are reproducible;
//! - every public mutation advances the clock by 1000 ms first and stamps with it,
//!   reproducing the server's `update_at` bookkeeping (§2.6/§2.7 of the API notes);
//! - ids come from counters ([`IdGen`]), so the same calls give the same ids;
//! - public lookups panic on unknown names (they are test helpers); the HTTP layer
//!   only uses the `Option`-returning accessors.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use super::events::Outbox;
use super::ids::IdGen;
use super::model::{
    Channel, ChannelMember, Emoji, FileInfo, NewFile, NotifyProps, Post, Reaction, Team,
    TeamMember, Token, TokenKind, User,
};

const MS_PER_TICK: i64 = 1000;

#[derive(Clone, Debug)]
pub struct Workspace {
    pub(crate) clock: i64,
    ids: IdGen,
    token_ids: IdGen,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) teams: BTreeMap<String, Team>,
    pub(crate) team_members: Vec<TeamMember>,
    pub(crate) channels: BTreeMap<String, Channel>,
    /// In join order, which the members endpoint reproduces.
    pub(crate) channel_members: Vec<ChannelMember>,
    /// Keyed by id; iteration order (by id) is the "arbitrary" order of the since cap.
    pub(crate) posts: BTreeMap<String, Post>,
    /// Ids of every post row (history rows too) by channel, in id order: the post queries
    /// of one channel stay cheap in generated workspaces of hundreds of thousands of posts.
    channel_post_ids: HashMap<String, BTreeSet<String>>,
    /// Ids of every post row with a `root_id` (history rows too) by that root, in id order:
    /// a thread's reply count and a root's deletion stay cheap in threads of long streams.
    thread_post_ids: HashMap<String, BTreeSet<String>>,
    pub(crate) files: BTreeMap<String, FileInfo>,
    pub(crate) emojis: BTreeMap<String, Emoji>,
    pub(crate) tokens: BTreeMap<String, Token>,
    pub(crate) update_scenario_applied: bool,
    /// Posts carry `file_ids` even when empty, as servers since 5.x do; off by default (an
    /// older server's `omitempty`, which the Python tools trip over).
    pub file_ids_always: bool,
    /// WebSocket events of the mutations, until the server hands them to its hub.
    pub(crate) outbox: Outbox,
}

/// Name of a DM channel: both ids sorted, joined by `__`.
pub fn dm_channel_name(a: &str, b: &str) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}__{hi}")
}

/// Name of a GM channel: hex SHA-1 of the sorted member ids concatenated.
pub fn gm_channel_name(user_ids: &[&str]) -> String {
    let mut sorted = user_ids.to_vec();
    sorted.sort_unstable();
    let digest = Sha1::digest(sorted.concat().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn extension_of(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, ext)| ext.to_lowercase())
        .unwrap_or_default()
}

/// Width and height from a PNG's IHDR, when `bytes` is one.
fn png_size(bytes: &[u8]) -> Option<(i64, i64)> {
    if bytes.len() < 24 || !bytes.starts_with(b"\x89PNG") {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((i64::from(w), i64::from(h)))
}

impl Workspace {
    /// An empty server whose clock starts at `start_ms`.
    pub fn empty(start_ms: i64) -> Workspace {
        Workspace {
            clock: start_ms,
            ids: IdGen::new(0x6d61_7474_6572),
            token_ids: IdGen::new(0x746f_6b65_6e73),
            users: BTreeMap::new(),
            teams: BTreeMap::new(),
            team_members: Vec::new(),
            channels: BTreeMap::new(),
            channel_members: Vec::new(),
            posts: BTreeMap::new(),
            channel_post_ids: HashMap::new(),
            thread_post_ids: HashMap::new(),
            files: BTreeMap::new(),
            emojis: BTreeMap::new(),
            tokens: BTreeMap::new(),
            update_scenario_applied: false,
            file_ids_always: false,
            outbox: Outbox::default(),
        }
    }

    /// Logical clock, ms since the epoch.
    pub fn now(&self) -> i64 {
        self.clock
    }

    /// Moves the logical clock forward to `ms` (never back), so that what is made next is
    /// dated `ms` and later: tests that need posts on given days.
    pub fn advance_clock_to(&mut self, ms: i64) {
        assert!(ms >= self.clock, "the clock only moves forward");
        self.clock = ms;
    }

    fn tick(&mut self) -> i64 {
        self.clock += MS_PER_TICK;
        self.clock
    }

    pub(crate) fn new_id(&mut self) -> String {
        self.ids.next_id()
    }

    // ----- Option-returning accessors (safe for client input) -----

    pub(crate) fn user_by_name(&self, username: &str) -> Option<&User> {
        self.users.values().find(|u| u.username == username)
    }

    pub(crate) fn team_by_name(&self, name: &str) -> Option<&Team> {
        self.teams.values().find(|t| t.name == name)
    }

    /// Every post row of the channel (deleted and history rows included), in id order.
    pub(crate) fn posts_of<'a>(&'a self, channel_id: &str) -> impl Iterator<Item = &'a Post> {
        self.channel_post_ids
            .get(channel_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.posts.get(id))
    }

    pub(crate) fn live_posts_of<'a>(
        &'a self,
        channel_id: &'a str,
    ) -> impl Iterator<Item = &'a Post> {
        self.posts_of(channel_id).filter(|p| p.is_live())
    }

    /// Every post row whose `root_id` is `root_id` (deleted and history rows included), in
    /// id order.
    pub(crate) fn thread_posts<'a>(&'a self, root_id: &str) -> impl Iterator<Item = &'a Post> {
        self.thread_post_ids
            .get(root_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.posts.get(id))
    }

    /// Stores a new post row and indexes it by channel and thread.
    fn insert_post_row(&mut self, post: Post) {
        self.channel_post_ids
            .entry(post.channel_id.clone())
            .or_default()
            .insert(post.id.clone());
        if !post.root_id.is_empty() {
            self.thread_post_ids
                .entry(post.root_id.clone())
                .or_default()
                .insert(post.id.clone());
        }
        self.posts.insert(post.id.clone(), post);
    }

    // ----- public lookups (test helpers: panic on unknown) -----

    pub fn user_id(&self, username: &str) -> String {
        match self.user_by_name(username) {
            Some(u) => u.id.clone(),
            None => panic!("unknown user {username:?}"),
        }
    }

    pub fn team_id(&self, team_name: &str) -> String {
        match self.team_by_name(team_name) {
            Some(t) => t.id.clone(),
            None => panic!("unknown team {team_name:?}"),
        }
    }

    pub fn channel_id(&self, team_name: &str, channel_name: &str) -> String {
        let team_id = self.team_id(team_name);
        self.channels
            .values()
            .find(|c| c.team_id == team_id && c.name == channel_name)
            .map(|c| c.id.clone())
            .unwrap_or_else(|| panic!("unknown channel {team_name}/{channel_name}"))
    }

    fn channel_by_name(&self, kind: char, name: &str) -> String {
        self.channels
            .values()
            .find(|c| c.kind == kind && c.name == name)
            .map(|c| c.id.clone())
            .unwrap_or_else(|| panic!("no {kind} channel named {name}"))
    }

    pub fn dm_channel_id(&self, user_a: &str, user_b: &str) -> String {
        let name = dm_channel_name(&self.user_id(user_a), &self.user_id(user_b));
        self.channel_by_name('D', &name)
    }

    pub fn gm_channel_id(&self, usernames: &[&str]) -> String {
        let ids: Vec<String> = usernames.iter().map(|u| self.user_id(u)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.channel_by_name('G', &gm_channel_name(&refs))
    }

    /// Live posts of the channel, oldest first.
    pub fn post_ids(&self, channel_id: &str) -> Vec<String> {
        let mut posts: Vec<&Post> = self.live_posts_of(channel_id).collect();
        posts.sort_by(|a, b| (a.create_at, &a.id).cmp(&(b.create_at, &b.id)));
        posts.into_iter().map(|p| p.id.clone()).collect()
    }

    /// The live post of the channel whose message starts with `message_prefix`.
    pub fn find_post(&self, channel_id: &str, message_prefix: &str) -> String {
        self.live_posts_of(channel_id)
            .find(|p| p.message.starts_with(message_prefix))
            .map(|p| p.id.clone())
            .unwrap_or_else(|| panic!("no live post starting with {message_prefix:?}"))
    }

    pub fn live_post_count(&self) -> usize {
        self.posts.values().filter(|p| p.is_live()).count()
    }

    /// Every file id, including files of deleted posts.
    pub fn file_ids(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// The name of an uploaded file.
    pub fn file_name(&self, file_id: &str) -> String {
        self.files
            .get(file_id)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| panic!("unknown file {file_id}"))
    }

    pub fn update_scenario_applied(&self) -> bool {
        self.update_scenario_applied
    }

    /// The latest timestamp stored anywhere; the sample sets its clock past it.
    pub(crate) fn latest_timestamp(&self) -> i64 {
        let posts = self
            .posts
            .values()
            .flat_map(|p| [p.create_at, p.update_at, p.delete_at]);
        let users = self.users.values().map(|u| u.update_at.max(u.delete_at));
        let teams = self.teams.values().map(|t| t.update_at);
        let channels = self.channels.values().map(|c| c.update_at.max(c.delete_at));
        let emojis = self.emojis.values().map(|e| e.update_at);
        posts
            .chain(users)
            .chain(teams)
            .chain(channels)
            .chain(emojis)
            .max()
            .unwrap_or(self.clock)
    }

    pub(crate) fn set_clock(&mut self, ms: i64) {
        self.clock = ms;
    }

    // ----- tokens -----

    pub(crate) fn issue_token(&mut self, user_id: &str, kind: TokenKind) -> String {
        let token = self.token_ids.next_id();
        self.tokens.insert(
            token.clone(),
            Token {
                user_id: user_id.to_owned(),
                kind,
            },
        );
        token
    }

    pub(crate) fn add_token(&mut self, token: &str, user_id: &str, kind: TokenKind) {
        let token_row = Token {
            user_id: user_id.to_owned(),
            kind,
        };
        self.tokens.insert(token.to_owned(), token_row);
    }

    /// Revokes a session token; personal access tokens survive logout.
    pub(crate) fn revoke_session(&mut self, token: &str) {
        if self
            .tokens
            .get(token)
            .is_some_and(|t| t.kind == TokenKind::Session)
        {
            self.tokens.remove(token);
        }
    }

    // ----- builders with explicit timestamps (sample and mutations share them) -----

    pub(crate) fn insert_user(&mut self, mut user: User) -> String {
        user.id = self.new_id();
        let id = user.id.clone();
        self.users.insert(id.clone(), user);
        id
    }

    pub(crate) fn insert_team(&mut self, mut team: Team) -> String {
        team.id = self.new_id();
        let id = team.id.clone();
        self.teams.insert(id.clone(), team);
        id
    }

    pub(crate) fn join_team(&mut self, team_id: &str, user_id: &str, at: i64) {
        self.team_members.push(TeamMember {
            team_id: team_id.to_owned(),
            user_id: user_id.to_owned(),
            roles: "team_user".to_owned(),
            delete_at: 0,
            scheme_guest: false,
            scheme_user: true,
            scheme_admin: false,
            explicit_roles: String::new(),
            create_at: at,
        });
    }

    pub(crate) fn insert_channel(&mut self, mut channel: Channel) -> String {
        channel.id = self.new_id();
        let id = channel.id.clone();
        self.channels.insert(id.clone(), channel);
        id
    }

    pub(crate) fn join_channel(&mut self, channel_id: &str, user_id: &str, at: i64) {
        self.channel_members.push(ChannelMember {
            channel_id: channel_id.to_owned(),
            user_id: user_id.to_owned(),
            roles: "channel_user".to_owned(),
            last_viewed_at: at,
            msg_count: 0,
            mention_count: 0,
            mention_count_root: 0,
            urgent_mention_count: 0,
            msg_count_root: 0,
            notify_props: NotifyProps::default(),
            last_update_at: at,
            scheme_guest: false,
            scheme_user: true,
            scheme_admin: false,
            explicit_roles: String::new(),
        });
    }

    /// Opens a DM (or self-DM) between two user ids.
    pub(crate) fn open_dm(&mut self, a: &str, b: &str, at: i64) -> String {
        let channel = Channel {
            name: dm_channel_name(a, b),
            ..Channel::blank('D', "", "", at)
        };
        let id = self.insert_channel(channel);
        self.join_channel(&id, a, at);
        if a != b {
            self.join_channel(&id, b, at);
        }
        id
    }

    /// Opens a group channel between user ids.
    pub(crate) fn open_gm(&mut self, user_ids: &[&str], at: i64) -> String {
        let mut names: Vec<String> = user_ids
            .iter()
            .filter_map(|id| self.users.get(*id).map(|u| u.username.clone()))
            .collect();
        names.sort();
        let channel = Channel {
            name: gm_channel_name(user_ids),
            display_name: names.join(", "),
            ..Channel::blank('G', "", "", at)
        };
        let id = self.insert_channel(channel);
        for user_id in user_ids {
            self.join_channel(&id, user_id, at);
        }
        id
    }

    fn insert_file(&mut self, post: &Post, file: NewFile) -> String {
        let id = self.new_id();
        let (width, height) = png_size(&file.bytes).unwrap_or((0, 0));
        let info = FileInfo {
            id: id.clone(),
            user_id: post.user_id.clone(),
            post_id: post.id.clone(),
            channel_id: post.channel_id.clone(),
            create_at: post.create_at,
            update_at: post.create_at,
            delete_at: 0,
            extension: extension_of(&file.name),
            name: file.name,
            size: file.bytes.len() as i64,
            mime_type: file.mime_type,
            width,
            height,
            has_preview_image: width > 0,
            mini_preview: None,
            remote_id: String::new(),
            archived: false,
            bytes: file.bytes,
            bytes_lost: false,
            raw_disposition: None,
        };
        self.files.insert(id.clone(), info);
        id
    }

    /// Inserts a post created at `at`, with the server's side effects on the root
    /// post and the channel counters.
    pub(crate) fn insert_post_at(
        &mut self,
        channel_id: &str,
        user_id: &str,
        message: &str,
        root_id: Option<&str>,
        files: Vec<NewFile>,
        at: i64,
    ) -> String {
        let mut post = Post {
            id: self.new_id(),
            create_at: at,
            update_at: at,
            edit_at: 0,
            delete_at: 0,
            is_pinned: false,
            user_id: user_id.to_owned(),
            channel_id: channel_id.to_owned(),
            root_id: root_id.unwrap_or_default().to_owned(),
            original_id: String::new(),
            message: message.to_owned(),
            kind: String::new(),
            props: Map::new(),
            file_ids: Vec::new(),
            reactions: Vec::new(),
        };
        for file in files {
            let file_id = self.insert_file(&post, file);
            post.file_ids.push(file_id);
        }
        if let Some(root) = root_id.and_then(|r| self.posts.get_mut(r)) {
            root.update_at = root.update_at.max(at);
        }
        if let Some(channel) = self.channels.get_mut(channel_id) {
            channel.last_post_at = channel.last_post_at.max(at);
            channel.total_msg_count += 1;
            if root_id.is_none() {
                channel.total_msg_count_root += 1;
                channel.last_root_post_at = channel.last_root_post_at.max(at);
            }
        }
        self.update_read_state(channel_id, user_id, message, root_id.is_none(), at);
        let id = post.id.clone();
        self.insert_post_row(post);
        self.publish_posted(&id);
        id
    }

    /// The member rows' read state after a post (§14.3): the poster has viewed the channel
    /// (`UpdateLastViewedAt`: counts caught up, mentions cleared), and each member named
    /// `@username` in the message gets a mention (`IncrementMentionCount`).
    fn update_read_state(
        &mut self,
        channel_id: &str,
        poster: &str,
        message: &str,
        is_root: bool,
        at: i64,
    ) {
        let Some(channel) = self.channels.get(channel_id) else {
            return;
        };
        let (total, total_root) = (channel.total_msg_count, channel.total_msg_count_root);
        let mentioned: Vec<String> = if message.contains('@') {
            self.users
                .values()
                .filter(|u| u.id != poster && mentions(message, &u.username))
                .map(|u| u.id.clone())
                .collect()
        } else {
            Vec::new()
        };
        for member in self
            .channel_members
            .iter_mut()
            .filter(|m| m.channel_id == channel_id)
        {
            if member.user_id == poster {
                member.last_viewed_at = at;
                member.msg_count = total;
                member.msg_count_root = total_root;
                member.mention_count = 0;
                member.mention_count_root = 0;
                member.urgent_mention_count = 0;
                member.last_update_at = at;
            } else if mentioned.contains(&member.user_id) {
                member.mention_count += 1;
                if is_root {
                    member.mention_count_root += 1;
                }
                member.last_update_at = at;
            }
        }
    }

    pub(crate) fn edit_post_at(&mut self, post_id: &str, message: &str, at: i64) {
        let Some(old) = self.posts.get(post_id).cloned() else {
            panic!("unknown post {post_id}");
        };
        let history = Post {
            id: self.new_id(),
            update_at: at,
            delete_at: at,
            original_id: old.id.clone(),
            reactions: Vec::new(),
            ..old.clone()
        };
        self.insert_post_row(history);
        if let Some(post) = self.posts.get_mut(post_id) {
            post.message = message.to_owned();
            post.update_at = at;
            post.edit_at = at;
        }
        if !old.root_id.is_empty() {
            self.touch_post(&old.root_id, at);
            if let Some(channel) = self.channels.get_mut(&old.channel_id) {
                channel.last_post_at = channel.last_post_at.max(at);
            }
        }
        self.publish_post_edited(post_id);
    }

    fn touch_post(&mut self, post_id: &str, at: i64) {
        if let Some(post) = self.posts.get_mut(post_id) {
            post.update_at = at;
        }
    }

    /// Soft-deletes a post and its replies (and their files) as `deleter`.
    pub(crate) fn delete_post_at(&mut self, post_id: &str, deleter: &str, at: i64) {
        let Some(target) = self.posts.get(post_id) else {
            panic!("unknown post {post_id}");
        };
        let root_of_target = target.root_id.clone();
        // One event, the target's as it was: its replies go silently with it (§15.7).
        let channel_id = target.channel_id.clone();
        let payload = if target.is_live() {
            self.deleted_post_payload(target)
        } else {
            None
        };
        let mut deleted_files = Vec::new();
        let mut hits: Vec<String> = self
            .thread_post_ids
            .get(post_id)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        hits.push(post_id.to_owned());
        for id in hits {
            let Some(post) = self.posts.get_mut(&id) else {
                continue;
            };
            if post.is_live() && post.original_id.is_empty() {
                post.delete_at = at;
                post.update_at = at;
                post.props
                    .insert("deleteBy".to_owned(), Value::String(deleter.to_owned()));
                deleted_files.extend(post.file_ids.iter().cloned());
            }
        }
        for file_id in deleted_files {
            if let Some(file) = self.files.get_mut(&file_id) {
                file.delete_at = at;
                file.update_at = at;
            }
        }
        if !root_of_target.is_empty() {
            self.touch_post(&root_of_target, at);
        }
        if let Some(payload) = payload {
            self.publish_post_deleted(payload, &channel_id, deleter);
        }
    }

    pub(crate) fn add_reaction_at(&mut self, post_id: &str, user_id: &str, emoji: &str, at: i64) {
        let Some(post) = self.posts.get_mut(post_id) else {
            panic!("unknown post {post_id}");
        };
        let exists = post
            .reactions
            .iter()
            .any(|r| r.user_id == user_id && r.emoji_name == emoji);
        let reaction = Reaction {
            user_id: user_id.to_owned(),
            post_id: post_id.to_owned(),
            emoji_name: emoji.to_owned(),
            create_at: at,
            update_at: at,
            delete_at: 0,
            remote_id: String::new(),
            channel_id: post.channel_id.clone(),
        };
        if !exists {
            post.reactions.push(reaction.clone());
        }
        post.update_at = at;
        if !exists {
            let channel_id = reaction.channel_id.clone();
            self.publish_reaction(true, &reaction, &channel_id);
        }
    }

    pub(crate) fn insert_emoji_at(
        &mut self,
        name: &str,
        creator_id: &str,
        bytes: Vec<u8>,
        format: &str,
        at: i64,
    ) -> String {
        let id = self.new_id();
        let emoji = Emoji {
            id: id.clone(),
            creator_id: creator_id.to_owned(),
            name: name.to_owned(),
            create_at: at,
            update_at: at,
            delete_at: 0,
            format: format.to_owned(),
            bytes,
        };
        self.emojis.insert(id.clone(), emoji);
        self.publish_emoji_added(&id);
        id
    }

    // ----- public mutations: each advances the clock and stamps with it -----

    pub fn create_post(
        &mut self,
        channel_id: &str,
        username: &str,
        message: &str,
        root_id: Option<&str>,
    ) -> String {
        self.create_post_with_files(channel_id, username, message, root_id, Vec::new())
    }

    pub fn create_post_with_files(
        &mut self,
        channel_id: &str,
        username: &str,
        message: &str,
        root_id: Option<&str>,
        files: Vec<NewFile>,
    ) -> String {
        let at = self.tick();
        let user_id = self.user_id(username);
        assert!(
            self.channels.contains_key(channel_id),
            "unknown channel {channel_id}"
        );
        self.insert_post_at(channel_id, &user_id, message, root_id, files, at)
    }

    /// Changes the message; the old version becomes a history row.
    pub fn edit_post(&mut self, post_id: &str, message: &str) {
        let at = self.tick();
        self.edit_post_at(post_id, message, at);
    }

    /// Deletes the post and its replies, as the post's author.
    /// Makes a file's bytes unreadable (404) or readable again, as when the server's storage
    /// loses and regains a blob; its info and post are unchanged.
    pub fn set_file_bytes_lost(&mut self, file_id: &str, lost: bool) {
        self.files
            .get_mut(file_id)
            .unwrap_or_else(|| panic!("unknown file {file_id}"))
            .bytes_lost = lost;
    }

    /// Turns a post into a system message or a bot's post: its `type`, `props` and pinned
    /// flag as given (the sample has none of these).
    pub fn set_post_kind(
        &mut self,
        post_id: &str,
        kind: &str,
        props: Map<String, Value>,
        pinned: bool,
    ) {
        let at = self.tick();
        let post = self
            .posts
            .get_mut(post_id)
            .unwrap_or_else(|| panic!("unknown post {post_id}"));
        post.kind = kind.to_owned();
        post.props = props;
        post.is_pinned = pinned;
        post.update_at = at;
        self.publish_post_edited(post_id);
    }

    pub fn delete_post(&mut self, post_id: &str) {
        let at = self.tick();
        let deleter = match self.posts.get(post_id) {
            Some(p) => p.user_id.clone(),
            None => panic!("unknown post {post_id}"),
        };
        self.delete_post_at(post_id, &deleter, at);
    }

    pub fn add_reaction(&mut self, post_id: &str, username: &str, emoji_name: &str) {
        let at = self.tick();
        let user_id = self.user_id(username);
        self.add_reaction_at(post_id, &user_id, emoji_name, at);
    }

    pub fn remove_reaction(&mut self, post_id: &str, username: &str, emoji_name: &str) {
        let at = self.tick();
        let user_id = self.user_id(username);
        let Some(post) = self.posts.get_mut(post_id) else {
            panic!("unknown post {post_id}");
        };
        let removed = post
            .reactions
            .iter()
            .find(|r| r.user_id == user_id && r.emoji_name == emoji_name)
            .cloned();
        post.reactions
            .retain(|r| !(r.user_id == user_id && r.emoji_name == emoji_name));
        post.update_at = at;
        let channel_id = post.channel_id.clone();
        if let Some(reaction) = removed {
            let reaction = Reaction {
                update_at: at,
                ..reaction
            };
            self.publish_reaction(false, &reaction, &channel_id);
        }
    }

    pub fn set_avatar(&mut self, username: &str, png: Vec<u8>) {
        let at = self.tick();
        let user_id = self.user_id(username);
        if let Some(user) = self.users.get_mut(&user_id) {
            user.avatar = Some(png);
            user.last_picture_update = at;
            user.update_at = at;
        }
        self.publish_user_updated(&user_id);
    }

    pub fn add_emoji(&mut self, name: &str, creator: &str, bytes: Vec<u8>, format: &str) -> String {
        let at = self.tick();
        let creator_id = self.user_id(creator);
        self.insert_emoji_at(name, &creator_id, bytes, format, at)
    }

    /// Soft-deletes a custom emoji (it disappears from the list and its image 404s).
    pub fn delete_emoji(&mut self, name: &str) {
        let at = self.tick();
        if let Some(emoji) = self
            .emojis
            .values_mut()
            .find(|e| e.name == name && e.delete_at == 0)
        {
            emoji.delete_at = at;
            emoji.update_at = at;
        }
    }

    /// Creates an open ('O') or private ('P') channel; the first member is its creator.
    pub fn create_channel(
        &mut self,
        team_name: &str,
        name: &str,
        display_name: &str,
        kind: char,
        members: &[&str],
    ) -> String {
        assert!(matches!(kind, 'O' | 'P'), "channel kind must be 'O' or 'P'");
        let at = self.tick();
        let team_id = self.team_id(team_name);
        let member_ids: Vec<String> = members.iter().map(|m| self.user_id(m)).collect();
        let channel = Channel {
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            creator_id: member_ids.first().cloned().unwrap_or_default(),
            ..Channel::blank(kind, &team_id, "", at)
        };
        let id = self.insert_channel(channel);
        for user_id in &member_ids {
            self.join_channel(&id, user_id, at);
        }
        self.publish_channel_created(&id);
        for user_id in member_ids.iter().skip(1) {
            self.publish_user_added(&id, user_id);
        }
        id
    }

    /// Opens a group channel ('G') between users (three or more, the caller included).
    pub fn create_group_channel(&mut self, usernames: &[&str]) -> String {
        let at = self.tick();
        let ids: Vec<String> = usernames.iter().map(|u| self.user_id(u)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let id = self.open_gm(&refs, at);
        self.publish_group_added(&id, &ids);
        id
    }

    /// Opens a direct channel between two users (the same user twice: a self-DM), created by
    /// the first.
    pub fn create_direct_channel(&mut self, creator: &str, other: &str) -> String {
        let at = self.tick();
        let (a, b) = (self.user_id(creator), self.user_id(other));
        let id = self.open_dm(&a, &b, at);
        self.publish_direct_added(&id, &a, &b);
        id
    }

    /// The usernames of a channel's members but `except`, sorted (a group channel's name as
    /// the Python matterbak gives it, joined by `__`).
    pub fn group_channel_usernames(&self, channel_id: &str, except: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .channel_members_of(channel_id)
            .filter_map(|m| self.users.get(&m.user_id))
            .map(|u| u.username.clone())
            .filter(|name| name != except)
            .collect();
        names.sort();
        names
    }

    /// Removes a member row (a user leaving a channel), without the system post.
    pub fn remove_channel_member(&mut self, channel_id: &str, username: &str) {
        let user_id = self.user_id(username);
        let was_member = self.is_channel_member(channel_id, &user_id);
        self.channel_members
            .retain(|m| !(m.channel_id == channel_id && m.user_id == user_id));
        if was_member {
            self.publish_user_removed(channel_id, &user_id, &user_id);
        }
    }

    pub fn archive_channel(&mut self, channel_id: &str) {
        let at = self.tick();
        let Some(channel) = self.channels.get_mut(channel_id) else {
            panic!("unknown channel {channel_id}");
        };
        channel.delete_at = at;
        channel.update_at = at;
        self.publish_channel_archive_state(channel_id);
    }

    /// Unarchives a channel.
    pub fn restore_channel(&mut self, channel_id: &str) {
        let at = self.tick();
        let Some(channel) = self.channels.get_mut(channel_id) else {
            panic!("unknown channel {channel_id}");
        };
        channel.delete_at = 0;
        channel.update_at = at;
        self.publish_channel_archive_state(channel_id);
    }

    /// Changes a channel's display name, header or purpose (`key`), like a channel patch.
    pub fn update_channel(&mut self, channel_id: &str, key: &str, value: &str) {
        let at = self.tick();
        let Some(channel) = self.channels.get_mut(channel_id) else {
            panic!("unknown channel {channel_id}");
        };
        match key {
            "display_name" => channel.display_name = value.to_owned(),
            "header" => channel.header = value.to_owned(),
            "purpose" => channel.purpose = value.to_owned(),
            "name" => channel.name = value.to_owned(),
            other => panic!("unsupported channel field {other:?}"),
        }
        channel.update_at = at;
        self.publish_channel_updated(channel_id);
    }

    /// Makes a public channel private (`UpdateChannelPrivacy`: `channel_updated` to the
    /// members, then `channel_converted` to the team).
    pub fn convert_channel_to_private(&mut self, channel_id: &str) {
        let at = self.tick();
        let Some(channel) = self.channels.get_mut(channel_id) else {
            panic!("unknown channel {channel_id}");
        };
        channel.kind = 'P';
        channel.update_at = at;
        self.publish_channel_updated(channel_id);
        self.publish_channel_converted(channel_id);
    }

    /// Adds a member and, like the server, posts `system_add_to_channel` (by the
    /// channel's creator, or by the user when there is none).
    pub fn add_channel_member(&mut self, channel_id: &str, username: &str) {
        let at = self.tick();
        let user_id = self.user_id(username);
        let Some(channel) = self.channels.get(channel_id) else {
            panic!("unknown channel {channel_id}");
        };
        let adder_id = if channel.creator_id.is_empty() {
            user_id.clone()
        } else {
            channel.creator_id.clone()
        };
        let adder_name = self
            .users
            .get(&adder_id)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        self.join_channel(channel_id, &user_id, at);
        self.publish_user_added(channel_id, &user_id);
        let message = format!("@{username} added to the channel by @{adder_name}.");
        // `posted` goes out once the post is the system post it is.
        let post_id = self.without_events(|ws| {
            ws.insert_post_at(channel_id, &adder_id, &message, None, Vec::new(), at)
        });
        if let Some(post) = self.posts.get_mut(&post_id) {
            post.kind = "system_add_to_channel".to_owned();
            let props = [
                ("userId", adder_id),
                ("username", adder_name),
                ("addedUserId", user_id),
                ("addedUsername", username.to_owned()),
            ];
            for (k, v) in props {
                post.props.insert(k.to_owned(), Value::String(v));
            }
        }
        self.publish_posted(&post_id);
    }

    /// The ids of a post's files, in upload order.
    pub fn post_file_ids(&self, post_id: &str) -> Vec<String> {
        self.posts
            .get(post_id)
            .map(|p| p.file_ids.clone())
            .unwrap_or_default()
    }

    /// Hostile server: serves other bytes for a file than its info's `size` says.
    pub fn replace_file_bytes(&mut self, file_id: &str, bytes: Vec<u8>) {
        if let Some(file) = self.files.get_mut(file_id) {
            file.bytes = bytes;
        }
    }

    /// Hostile server: sends these raw bytes (not necessarily UTF-8) as the file's
    /// `Content-Disposition`.
    pub fn set_file_disposition(&mut self, file_id: &str, raw: Vec<u8>) {
        if let Some(file) = self.files.get_mut(file_id) {
            file.raw_disposition = Some(raw);
        }
    }

    /// Adds a user to a team as `JoinUserToTeam` does (`app/team.go`): the membership, the
    /// user's `update_at` touched (`UpdateUpdateAt`), the team's open default channels
    /// (town-square, off-topic) joined with a join post and a `user_added` each
    /// (`JoinDefaultChannels`, `app/channel.go`), then `added_to_team` to the user alone.
    pub fn add_team_member(&mut self, team_name: &str, username: &str) {
        let at = self.tick();
        let team_id = self.team_id(team_name);
        let user_id = self.user_id(username);
        if self.is_team_member(&team_id, &user_id) {
            return;
        }
        match self
            .team_members
            .iter_mut()
            .find(|m| m.team_id == team_id && m.user_id == user_id)
        {
            Some(member) => {
                member.delete_at = 0;
                member.roles = "team_user".to_owned();
            }
            None => self.join_team(&team_id, &user_id, at),
        }
        if let Some(user) = self.users.get_mut(&user_id) {
            user.update_at = at;
        }
        for (name, message, kind) in [
            ("town-square", "joined the team.", "system_join_team"),
            ("off-topic", "joined the channel.", "system_join_channel"),
        ] {
            let channel_id = self
                .channels
                .values()
                .find(|c| c.team_id == team_id && c.name == name && c.kind == 'O')
                .map(|c| c.id.clone());
            let Some(channel_id) = channel_id else {
                continue;
            };
            if self.is_channel_member(&channel_id, &user_id) {
                continue;
            }
            self.join_channel(&channel_id, &user_id, at);
            let text = format!("@{username} {message}");
            let post_id = self.without_events(|ws| {
                ws.insert_post_at(&channel_id, &user_id, &text, None, Vec::new(), at)
            });
            if let Some(post) = self.posts.get_mut(&post_id) {
                post.kind = kind.to_owned();
                post.props
                    .insert("username".to_owned(), Value::String(username.to_owned()));
            }
            self.publish_posted(&post_id);
            self.publish_user_joined_default_channel(&channel_id, &user_id);
        }
        self.publish_added_to_team(&team_id, &user_id);
    }

    /// Removes a user from a team as `LeaveTeam` does (`app/team.go`): out of the team's
    /// channels without any event, a leave post in town-square, then `leave_team` to the
    /// team's members (the leaving user still among them: it goes out before the membership
    /// ends), the membership marked deleted and the user's `update_at` touched.
    pub fn remove_team_member(&mut self, team_name: &str, username: &str) {
        let at = self.tick();
        let team_id = self.team_id(team_name);
        let user_id = self.user_id(username);
        if !self.is_team_member(&team_id, &user_id) {
            return;
        }
        let team_channels: Vec<String> = self
            .channels
            .values()
            .filter(|c| c.team_id == team_id)
            .map(|c| c.id.clone())
            .collect();
        self.channel_members
            .retain(|m| !(m.user_id == user_id && team_channels.contains(&m.channel_id)));
        let town = self
            .channels
            .values()
            .find(|c| c.team_id == team_id && c.name == "town-square")
            .map(|c| c.id.clone());
        if let Some(town) = town {
            let text = format!("@{username} left the team.");
            let post_id = self.without_events(|ws| {
                ws.insert_post_at(&town, &user_id, &text, None, Vec::new(), at)
            });
            if let Some(post) = self.posts.get_mut(&post_id) {
                post.kind = "system_leave_team".to_owned();
                post.props
                    .insert("username".to_owned(), Value::String(username.to_owned()));
            }
            self.publish_posted(&post_id);
        }
        self.publish_leave_team(&team_id, &user_id);
        for member in self
            .team_members
            .iter_mut()
            .filter(|m| m.team_id == team_id && m.user_id == user_id)
        {
            member.delete_at = at;
            member.roles = String::new();
        }
        if let Some(user) = self.users.get_mut(&user_id) {
            user.update_at = at;
        }
    }

    /// Changes a team's display name, like a team patch: `update_team` to its members.
    pub fn rename_team(&mut self, team_name: &str, display_name: &str) {
        let at = self.tick();
        let team_id = self.team_id(team_name);
        if let Some(team) = self.teams.get_mut(&team_id) {
            team.display_name = display_name.to_owned();
            team.update_at = at;
        }
        self.publish_team_updated(&team_id);
    }

    pub fn set_team_icon(&mut self, team_name: &str, png: Vec<u8>) {
        let at = self.tick();
        let team_id = self.team_id(team_name);
        if let Some(team) = self.teams.get_mut(&team_id) {
            team.icon = Some(png);
            team.last_team_icon_update = at;
            team.update_at = at;
        }
        self.publish_team_updated(&team_id);
    }

    /// Makes the server send `key` of the user as `value`, whatever its usual type (a
    /// hostile or buggy server), and bumps `update_at`.
    pub fn set_user_raw_field(&mut self, username: &str, key: &str, value: Value) {
        let at = self.tick();
        let user_id = self.user_id(username);
        if let Some(user) = self.users.get_mut(&user_id) {
            user.raw_fields.insert(key.to_owned(), value);
            user.update_at = at;
        }
        self.publish_user_updated(&user_id);
    }

    /// Sets a profile field and bumps `update_at`. Keys: `nickname`, `first_name`,
    /// `last_name`, `position`, `email`, `locale`, `roles` (strings), `delete_at`
    /// (number), `props` (object) or `props.<key>` (any value).
    pub fn set_user_field(&mut self, username: &str, key: &str, value: Value) {
        let at = self.tick();
        let user_id = self.user_id(username);
        let Some(user) = self.users.get_mut(&user_id) else {
            return;
        };
        let text = || {
            value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string())
        };
        match key {
            "nickname" => user.nickname = text(),
            "first_name" => user.first_name = text(),
            "last_name" => user.last_name = text(),
            "position" => user.position = text(),
            "email" => user.email = text(),
            "locale" => user.locale = text(),
            "roles" => user.roles = text(),
            "delete_at" => user.delete_at = value.as_i64().unwrap_or(at),
            "props" => user.props = value.as_object().cloned().unwrap_or_default(),
            other => match other.strip_prefix("props.") {
                Some(prop) => {
                    user.props.insert(prop.to_owned(), value);
                }
                None => panic!("unsupported user field {other:?}"),
            },
        }
        user.update_at = at;
        self.publish_user_updated(&user_id);
    }
}

impl Channel {
    /// A channel with every counter zero, created at `at`; callers fill in names.
    pub(crate) fn blank(kind: char, team_id: &str, creator_id: &str, at: i64) -> Channel {
        Channel {
            id: String::new(),
            create_at: at,
            update_at: at,
            delete_at: 0,
            team_id: team_id.to_owned(),
            kind,
            display_name: String::new(),
            name: String::new(),
            header: String::new(),
            purpose: String::new(),
            last_post_at: at,
            total_msg_count: 0,
            total_msg_count_root: 0,
            last_root_post_at: at,
            creator_id: creator_id.to_owned(),
        }
    }
}

/// Whether `message` mentions `@username` as a whole word.
pub(crate) fn mentions(message: &str, username: &str) -> bool {
    let needle = format!("@{username}");
    message.match_indices(&needle).any(|(i, _)| {
        let end = i + needle.len();
        message[end..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-')))
    })
}
