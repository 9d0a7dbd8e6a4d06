//! The checklist of `../shared/mattermost-import.md` §7 as code: a bulk-import JSONL, line by
//! line, then the zip's `data/` entries. The writer runs it over every line before the line
//! goes into the zip (a failure is a bug of the writer and stops the export); tests run it
//! over finished zips. It reads plain `serde_json` values, never the writer's types, so it
//! checks what was written rather than what was meant.
//!
//! State is one entry per team, channel, user and emoji name plus one 16-byte key per post
//! (for the `(channel, create_at, message)` duplicate check), so memory stays small for
//! hundreds of thousands of posts.
//!
//! Not checked (the server's data we do not have): whether an emoji image decodes, Unicode NFC equality of paths (the writer never writes non-NFC names
//! twice; it writes each name once and references it verbatim).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::rules::{self, rune_len};
use crate::model::emoji::is_system_emoji_name;

const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
const MAX_PROPS_RUNES: usize = 800_000;
const MAX_EMOJI_BYTES: u64 = 512 * 1024;
const LINE_TYPES: &[&str] = &[
    "version",
    "role",
    "scheme",
    "team",
    "channel",
    "user",
    "bot",
    "post",
    "direct_channel",
    "direct_post",
    "emoji",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The server would refuse the line or lose data.
    Error,
    /// Worth knowing (unused files, a team over the default member limit).
    Warning,
}

/// One failed check: the JSONL line (1-based; 0 for the zip as a whole) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub level: Level,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{level}: {}", self.message)
        } else {
            write!(f, "{level}: line {}: {}", self.line, self.message)
        }
    }
}

pub struct Validator {
    max_post_runes: usize,
    line: usize,
    /// Segment number of the current line (a segment is a run of lines of one type).
    segment: usize,
    current_type: Option<String>,
    teams: HashMap<String, usize>,
    channels: HashMap<(String, String), usize>,
    /// Users and bots, with the segment that defines them; pre-existing accounts have 0.
    users: HashMap<String, usize>,
    emojis: HashSet<String>,
    emails: HashSet<String>,
    post_keys: HashSet<[u8; 16]>,
    /// `data/...` entry → first line that references it, and whether it is an emoji image.
    references: HashMap<String, (usize, bool)>,
    members_per_team: HashMap<String, usize>,
    findings: Vec<Finding>,
}

/// Shorthands for reading a JSON object with type checks that report into the validator.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    what: &'a str,
}

impl Validator {
    /// `existing`: usernames already on the target (they may be referenced without a line).
    pub fn new(max_post_runes: usize, existing: impl IntoIterator<Item = String>) -> Validator {
        Validator {
            max_post_runes,
            line: 0,
            segment: 0,
            current_type: None,
            teams: HashMap::new(),
            channels: HashMap::new(),
            users: existing.into_iter().map(|u| (u, 0)).collect(),
            emojis: HashSet::new(),
            emails: HashSet::new(),
            post_keys: HashSet::new(),
            references: HashMap::new(),
            members_per_team: HashMap::new(),
            findings: Vec::new(),
        }
    }

    fn error(&mut self, message: impl Into<String>) {
        self.findings.push(Finding {
            line: self.line,
            level: Level::Error,
            message: message.into(),
        });
    }

    fn warn(&mut self, message: impl Into<String>) {
        self.findings.push(Finding {
            line: self.line,
            level: Level::Warning,
            message: message.into(),
        });
    }

    /// Errors found so far (the writer stops at the first).
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.level == Level::Error)
    }

    /// Checks one line of text (without its newline).
    pub fn check_line(&mut self, text: &str) {
        self.line += 1;
        if text.trim().is_empty() {
            return self.error("empty line");
        }
        if text.len() > MAX_LINE_BYTES {
            return self.error(format!("line of {} bytes (limit 16 MiB)", text.len()));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(value) => self.check_value(&value),
            Err(e) => self.error(format!("not valid JSON: {e}")),
        }
    }

    /// Checks one line already parsed (the writer's self-check: no second parse).
    pub fn check(&mut self, value: &Value) {
        self.line += 1;
        self.check_value(value);
    }

    fn check_value(&mut self, value: &Value) {
        let Some(line) = value.as_object() else {
            return self.error("not a JSON object");
        };
        let Some(kind) = line.get("type").and_then(Value::as_str) else {
            return self.error("no string \"type\"");
        };
        if !LINE_TYPES.contains(&kind) {
            return self.error(format!("unknown line type {kind:?}"));
        }
        if self.line == 1 && kind != "version" {
            self.error("line 1 is not the version line");
        }
        if self.current_type.as_deref() != Some(kind) {
            self.segment += 1;
            self.current_type = Some(kind.to_owned());
        }
        if kind == "version" {
            return self.check_version(line);
        }
        let Some(object) = line.get(kind).and_then(Value::as_object) else {
            return self.error(format!("no object \"{kind}\""));
        };
        let obj = Obj {
            map: object,
            what: kind,
        };
        match kind {
            "team" => self.check_team(&obj),
            "channel" => self.check_channel(&obj),
            "user" => self.check_user(&obj),
            "bot" => self.check_bot(&obj),
            "post" => self.check_post(&obj),
            "direct_channel" => self.check_direct_channel(&obj),
            "direct_post" => self.check_direct_post(&obj),
            "emoji" => self.check_emoji(&obj),
            _ => {} // role, scheme: the writer does not emit them.
        }
    }

    fn check_version(&mut self, line: &Map<String, Value>) {
        if self.line != 1 {
            self.error("a second version line");
        }
        if line.get("version").and_then(Value::as_i64) != Some(1) {
            self.error("version must be the integer 1");
        }
        if let Some(additional) = line.pointer_in("info", "additional")
            && (additional.get("team_name").is_some() || additional.get("channel_name").is_some())
        {
            self.error("info.additional has a scope key (team_name/channel_name)");
        }
    }

    /// A field `pick` accepts (`kind` names its type in the error); `None` when absent or
    /// null. Wrong types are errors.
    fn field<'a, T>(
        &mut self,
        obj: &Obj<'a>,
        key: &str,
        required: bool,
        kind: &str,
        pick: impl Fn(&'a Value) -> Option<T>,
    ) -> Option<T> {
        match obj.map.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.error(format!("{}.{key} is missing", obj.what));
                }
                None
            }
            Some(value) => {
                let picked = pick(value);
                if picked.is_none() {
                    self.error(format!("{}.{key} must be {kind}, found {value}", obj.what));
                }
                picked
            }
        }
    }

    fn str_field<'a>(&mut self, obj: &Obj<'a>, key: &str, required: bool) -> Option<&'a str> {
        self.field(obj, key, required, "a string", Value::as_str)
    }

    fn int_field(&mut self, obj: &Obj<'_>, key: &str, required: bool) -> Option<i64> {
        self.field(obj, key, required, "an integer", Value::as_i64)
    }

    fn bool_field(&mut self, obj: &Obj<'_>, key: &str) {
        self.field(obj, key, false, "a boolean", Value::as_bool);
    }

    /// A list field whose items `pick` accepts (`kind` names them in the error).
    fn list<'a, T>(
        &mut self,
        obj: &Obj<'a>,
        key: &str,
        kind: &str,
        pick: impl Fn(&'a Value) -> Option<T>,
    ) -> Vec<T> {
        match obj.map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| {
                    let picked = pick(item);
                    if picked.is_none() {
                        self.error(format!("{}.{key} holds a non-{kind} {item}", obj.what));
                    }
                    picked
                })
                .collect(),
            Some(other) => {
                self.error(format!("{}.{key} must be a list, found {other}", obj.what));
                Vec::new()
            }
        }
    }

    fn str_list<'a>(&mut self, obj: &Obj<'a>, key: &str) -> Vec<&'a str> {
        self.list(obj, key, "string", Value::as_str)
    }

    fn objects<'a>(&mut self, obj: &Obj<'a>, key: &str) -> Vec<&'a Map<String, Value>> {
        self.list(obj, key, "object", Value::as_object)
    }

    fn max_runes(&mut self, obj: &Obj<'_>, key: &str, max: usize) {
        if let Some(s) = self.str_field(obj, key, false)
            && rune_len(s) > max
        {
            self.error(format!(
                "{}.{key} is longer than {max} characters",
                obj.what
            ));
        }
    }

    fn user_ref(&mut self, name: &str, what: &str) {
        match self.users.get(name) {
            Some(&seg) if seg < self.segment => {}
            Some(_) => self.error(format!("{what} {name:?} is defined in the same segment")),
            None => self.error(format!("{what} {name:?} is not defined earlier")),
        }
    }

    fn team_ref(&mut self, name: &str, what: &str) {
        if !matches!(self.teams.get(name), Some(&seg) if seg < self.segment) {
            self.error(format!("{what} {name:?} is not a team defined earlier"));
        }
    }

    fn channel_ref(&mut self, team: &str, name: &str, what: &str) {
        let key = (team.to_owned(), name.to_owned());
        if !matches!(self.channels.get(&key), Some(&seg) if seg < self.segment) {
            self.error(format!(
                "{what} {team}/{name} is not a channel defined earlier"
            ));
        }
    }

    fn check_team(&mut self, obj: &Obj<'_>) {
        if let Some(name) = self.str_field(obj, "name", true) {
            if !rules::is_valid_team_name(name) {
                self.error(format!("team name {name:?} breaks the name rule"));
            }
            if rules::has_reserved_team_prefix(name) {
                self.error(format!("team name {name:?} starts with a reserved word"));
            }
            if self.teams.insert(name.to_owned(), self.segment).is_some() {
                self.error(format!("duplicate team {name:?}"));
            }
        }
        match self.str_field(obj, "display_name", true) {
            Some(d) if d.is_empty() || rune_len(d) > rules::MAX_DISPLAY_NAME_RUNES => {
                self.error("team.display_name must be 1-64 characters")
            }
            _ => {}
        }
        match self.str_field(obj, "type", true) {
            Some("O" | "I") | None => {}
            Some(t) => self.error(format!("team.type {t:?} is not O or I")),
        }
        if let Some(d) = self.str_field(obj, "description", false)
            && d.len() > rules::MAX_TEAM_DESCRIPTION_BYTES
        {
            self.error("team.description is longer than 255 bytes");
        }
        self.bool_field(obj, "allow_open_invite");
    }

    fn check_channel(&mut self, obj: &Obj<'_>) {
        let team = self.str_field(obj, "team", true);
        if let Some(team) = team {
            self.team_ref(team, "channel.team");
        }
        if let Some(name) = self.str_field(obj, "name", true) {
            if !rules::is_valid_channel_name(name) {
                self.error(format!("channel name {name:?} breaks the name rule"));
            }
            let key = (team.unwrap_or_default().to_owned(), name.to_owned());
            if self.channels.insert(key, self.segment).is_some() {
                self.error(format!("duplicate channel {name:?} in its team"));
            }
        }
        self.max_runes(obj, "display_name", rules::MAX_DISPLAY_NAME_RUNES);
        match self.str_field(obj, "type", true) {
            Some("O" | "P") | None => {}
            Some(t) => self.error(format!("channel.type {t:?} is not O or P")),
        }
        self.max_runes(obj, "header", rules::MAX_HEADER_RUNES);
        self.max_runes(obj, "purpose", rules::MAX_PURPOSE_RUNES);
        if self
            .int_field(obj, "deleted_at", false)
            .is_some_and(|d| d < 0)
        {
            self.error("channel.deleted_at is negative");
        }
    }

    fn check_user(&mut self, obj: &Obj<'_>) {
        let username = self.check_account_name(obj);
        match self.str_field(obj, "email", true) {
            Some(email) if !rules::is_valid_email(email) => self.error(format!(
                "user.email {email:?} is not a valid lower-case address"
            )),
            Some(email) if !self.emails.insert(email.to_owned()) => {
                self.error(format!("duplicate e-mail {email:?}"))
            }
            _ => {}
        }
        let service = self.str_field(obj, "auth_service", false).unwrap_or("");
        let data = self.str_field(obj, "auth_data", false).unwrap_or("");
        let password = self.str_field(obj, "password", false);
        if ![
            "",
            "email",
            "gitlab",
            "saml",
            "ldap",
            "google",
            "office365",
            "openid",
        ]
        .contains(&service)
        {
            self.error(format!("user.auth_service {service:?} is unknown"));
        }
        if service.is_empty() != data.is_empty() || data.len() > 128 {
            self.error("user.auth_data and auth_service must come together (≤ 128 bytes)");
        }
        if let Some(p) = password {
            if !data.is_empty() {
                self.error("user.password together with auth_data");
            }
            if p.is_empty() || p.len() > 72 {
                self.error("user.password must be 1-72 bytes");
            }
        }
        for key in ["nickname", "first_name", "last_name"] {
            self.max_runes(obj, key, rules::MAX_USER_NAME_RUNES);
        }
        self.max_runes(obj, "position", rules::MAX_POSITION_RUNES);
        let roles = self.str_field(obj, "roles", false).unwrap_or("system_user");
        if roles.trim() == "system_admin" || !valid_roles(roles) {
            self.error(format!("user.roles {roles:?} is not valid"));
        }
        let guest = roles.split(' ').any(|r| r == "system_guest");
        if let Some(locale) = self.str_field(obj, "locale", false)
            && locale.len() > 5
        {
            self.error(format!(
                "user.locale {locale:?} is longer than 5 characters"
            ));
        }
        self.int_field(obj, "delete_at", false);
        if let Some(image) = self.str_field(obj, "profile_image", false) {
            self.reference(image, false, "user.profile_image");
        }
        for team in self.objects(obj, "teams") {
            let team_obj = Obj {
                map: team,
                what: "user.teams[]",
            };
            let Some(name) = self.str_field(&team_obj, "name", true) else {
                continue;
            };
            self.team_ref(name, "user.teams[].name");
            *self.members_per_team.entry(name.to_owned()).or_default() += 1;
            let team_roles = self.str_field(&team_obj, "roles", false).unwrap_or("");
            if !valid_roles(team_roles) {
                self.error(format!("user.teams[].roles {team_roles:?} is not valid"));
            }
            if guest != team_roles.split(' ').any(|r| r == "team_guest") {
                self.error("a system guest must be team_guest in every team, and only a guest");
            }
            if let Some(theme) = self.str_field(&team_obj, "theme", false)
                && serde_json::from_str::<HashMap<String, String>>(theme).is_err()
            {
                self.error("user.teams[].theme is not a JSON object of strings");
            }
            for channel in self.objects(&team_obj, "channels") {
                let ch = Obj {
                    map: channel,
                    what: "user.teams[].channels[]",
                };
                if let Some(cname) = self.str_field(&ch, "name", true) {
                    self.channel_ref(name, cname, "user.teams[].channels[]");
                }
                let ch_roles = self.str_field(&ch, "roles", false).unwrap_or("");
                if !valid_roles(ch_roles) {
                    self.error(format!("channel roles {ch_roles:?} are not valid"));
                }
                if guest != ch_roles.split(' ').any(|r| r == "channel_guest") {
                    self.error(
                        "a system guest must be channel_guest in every channel, and only a guest",
                    );
                }
                self.bool_field(&ch, "favorite");
            }
        }
        if let Some(username) = username {
            self.define_user(&username);
        }
    }

    fn check_account_name(&mut self, obj: &Obj<'_>) -> Option<String> {
        let username = self.str_field(obj, "username", true)?;
        if !rules::is_valid_username(username) {
            self.error(format!("username {username:?} breaks the username rule"));
        }
        Some(username.to_owned())
    }

    fn define_user(&mut self, username: &str) {
        if self
            .users
            .insert(username.to_owned(), self.segment)
            .is_some()
        {
            self.error(format!(
                "duplicate account {username:?} (or a line for a pre-existing account)"
            ));
        }
    }

    fn check_bot(&mut self, obj: &Obj<'_>) {
        let username = self.check_account_name(obj);
        match self.str_field(obj, "owner", true) {
            Some(owner) if !rules::is_valid_username(owner) => {
                self.error(format!("bot.owner {owner:?} is not a valid username"))
            }
            _ => {}
        }
        self.max_runes(obj, "display_name", rules::MAX_USER_NAME_RUNES);
        if let Some(image) = self.str_field(obj, "profile_image", false) {
            self.reference(image, false, "bot.profile_image");
        }
        if let Some(username) = username {
            self.define_user(&username);
        }
    }

    /// Fields common to posts, direct posts and replies; returns `create_at`.
    fn check_message(&mut self, obj: &Obj<'_>, members: Option<&[&str]>) -> Option<i64> {
        if let Some(user) = self.str_field(obj, "user", true) {
            self.user_ref(user, &format!("{}.user", obj.what));
            if let Some(members) = members
                && !members.contains(&user)
            {
                self.warn(format!(
                    "{}.user {user:?} is not a channel member",
                    obj.what
                ));
            }
        }
        if let Some(message) = self.str_field(obj, "message", true)
            && rune_len(message) > self.max_post_runes
        {
            self.error(format!(
                "{}.message is longer than {} characters",
                obj.what, self.max_post_runes
            ));
        }
        let create_at = self.int_field(obj, "create_at", true);
        if create_at.is_some_and(|t| t <= 0) {
            self.error(format!("{}.create_at must be > 0", obj.what));
        }
        self.int_field(obj, "edit_at", false);
        self.bool_field(obj, "is_pinned");
        let kind = self.str_field(obj, "type", false).unwrap_or("");
        if !rules::is_allowed_post_type(kind) {
            self.error(format!("{}.type {kind:?} is not allowed", obj.what));
        }
        match obj.map.get("props") {
            None | Some(Value::Null) => {}
            Some(props @ Value::Object(_)) => {
                if rune_len(&props.to_string()) > MAX_PROPS_RUNES {
                    self.error(format!("{}.props larger than 800,000 characters", obj.what));
                }
            }
            Some(other) => self.error(format!(
                "{}.props must be an object, found {other}",
                obj.what
            )),
        }
        for name in self.str_list(obj, "flagged_by") {
            self.user_ref(name, "flagged_by");
            if let Some(members) = members
                && !members.contains(&name)
            {
                self.error(format!("flagged_by {name:?} is not a channel member"));
            }
        }
        let attachments = self.objects(obj, "attachments");
        if attachments.len() > rules::MAX_FILES_PER_POST {
            self.error(format!(
                "{}: {} attachments (at most 10)",
                obj.what,
                attachments.len()
            ));
        }
        for attachment in attachments {
            match attachment.get("path").and_then(Value::as_str) {
                Some(path) => self.reference(path, false, "attachment"),
                None => self.error("attachment without a string path"),
            }
        }
        if let Some(at) = create_at {
            for reaction in self.objects(obj, "reactions") {
                let r = Obj {
                    map: reaction,
                    what: "reaction",
                };
                if let Some(user) = self.str_field(&r, "user", true) {
                    self.user_ref(user, "reaction.user");
                }
                if let Some(name) = self.str_field(&r, "emoji_name", true)
                    && !rules::is_valid_emoji_name(name)
                {
                    self.error(format!("reaction emoji_name {name:?} is not a shortcode"));
                }
                match self.int_field(&r, "create_at", true) {
                    Some(t) if t <= 0 => self.error("reaction.create_at must be > 0"),
                    Some(t) if t < at => self.error("reaction older than its post"),
                    _ => {}
                }
            }
        }
        create_at
    }

    fn check_thread(&mut self, obj: &Obj<'_>, channel_key: &str, members: Option<&[&str]>) {
        let Some(create_at) = self.check_message(obj, members) else {
            return;
        };
        let message = obj.map.get("message").and_then(Value::as_str).unwrap_or("");
        if !self
            .post_keys
            .insert(post_key(channel_key, create_at, message, ""))
        {
            self.error(format!(
                "another post in this channel has create_at {create_at} and the same message"
            ));
        }
        let mut reply_times = HashSet::new();
        for reply in self.objects(obj, "replies") {
            let r = Obj {
                map: reply,
                what: "reply",
            };
            if reply.contains_key("replies") {
                self.error("a reply has replies (one level only)");
            }
            if let Some(at) = self.check_message(&r, members) {
                if at < create_at {
                    self.warn("reply older than its root (the server clamps it)");
                }
                if !reply_times.insert(at) {
                    self.error(format!("two replies of one thread at create_at {at}"));
                }
            }
        }
        for follower in self.objects(obj, "thread_followers") {
            match follower.get("user").and_then(Value::as_str) {
                Some(user) if !user.is_empty() => self.user_ref(user, "thread follower"),
                _ => self.error("thread follower without user"),
            }
        }
    }

    fn check_post(&mut self, obj: &Obj<'_>) {
        let team = self.str_field(obj, "team", true).unwrap_or("");
        let channel = self.str_field(obj, "channel", true).unwrap_or("");
        self.team_ref(team, "post.team");
        self.channel_ref(team, channel, "post.channel");
        self.check_thread(obj, &format!("{team}\0{channel}"), None);
    }

    fn check_direct_channel(&mut self, obj: &Obj<'_>) {
        let mut members = self.str_list(obj, "members");
        if let Some(participants) = obj.map.get("participants").and_then(Value::as_array) {
            members = participants
                .iter()
                .filter_map(|p| p.get("username").and_then(Value::as_str))
                .collect();
        }
        if members.is_empty() {
            return self.error("direct_channel without members");
        }
        self.member_count(&members, "direct_channel");
        for m in &members {
            self.user_ref(m, "direct_channel member");
        }
        self.max_runes(obj, "header", rules::MAX_HEADER_RUNES);
        for key in ["favorited_by", "shown_by"] {
            for name in self.str_list(obj, key) {
                if !members.contains(&name) {
                    self.error(format!("direct_channel.{key} {name:?} is not a member"));
                }
            }
        }
    }

    fn member_count(&mut self, members: &[&str], what: &str) {
        let distinct: HashSet<&&str> = members.iter().collect();
        let n = members.len();
        let ok = (n == 2 && distinct.len() <= 2)
            || (rules::GROUP_MEMBERS.contains(&n) && distinct.len() == n);
        if !ok {
            self.error(format!("{what}: {n} members (must be 2, or 3-8 distinct)"));
        }
    }

    fn check_direct_post(&mut self, obj: &Obj<'_>) {
        let members = self.str_list(obj, "channel_members");
        if members.is_empty() {
            return self.error("direct_post without channel_members");
        }
        self.member_count(&members, "direct_post.channel_members");
        for m in &members {
            self.user_ref(m, "direct_post channel member");
        }
        let mut sorted = members.clone();
        sorted.sort_unstable();
        sorted.dedup();
        self.check_thread(obj, &sorted.join("\0"), Some(&members));
    }

    fn check_emoji(&mut self, obj: &Obj<'_>) {
        if let Some(name) = self.str_field(obj, "name", true) {
            if !rules::is_valid_emoji_name(name) {
                self.error(format!("emoji name {name:?} is not valid"));
            }
            if is_system_emoji_name(name) {
                self.error(format!(
                    "emoji name {name:?} is a system emoji's (the server skips the line)"
                ));
            }
            if !self.emojis.insert(name.to_owned()) {
                self.error(format!("duplicate emoji {name:?}"));
            }
        }
        if let Some(image) = self.str_field(obj, "image", true) {
            self.reference(image, true, "emoji.image");
        }
    }

    /// A path relative to `data/`: safe, not starting with `data/`, remembered for `finish`.
    fn reference(&mut self, path: &str, emoji: bool, what: &str) {
        let bad = path.is_empty()
            || path.starts_with('/')
            || path.starts_with("data/")
            || path.contains('\\')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..");
        if bad {
            return self.error(format!(
                "{what} path {path:?} is not a plain path below data/"
            ));
        }
        self.references
            .entry(format!("data/{path}"))
            .or_insert((self.line, emoji));
    }

    /// The zip-level checks: `entries` maps every zip entry name to its size. Returns every
    /// finding of the whole run.
    pub fn finish(mut self, entries: &HashMap<String, u64>) -> Vec<Finding> {
        self.line = 0;
        let jsonl: Vec<&String> = entries.keys().filter(|n| n.ends_with(".jsonl")).collect();
        match jsonl.as_slice() {
            [one] if !one.contains('/') && !one.contains("..") => {}
            _ => self.error(format!(
                "the zip must hold exactly one .jsonl, at its root; found {jsonl:?}"
            )),
        }
        let mut missing: Vec<(usize, String)> = Vec::new();
        for (path, &(line, emoji)) in &self.references {
            match entries.get(path) {
                None => missing.push((line, path.clone())),
                Some(&size) if emoji && size > MAX_EMOJI_BYTES => missing.push((
                    line,
                    format!("{path} is larger than 512 KiB (emoji images)"),
                )),
                Some(_) => {}
            }
        }
        missing.sort();
        for (line, path) in missing {
            self.findings.push(Finding {
                line,
                level: Level::Error,
                message: format!("file not usable in the zip: {path}"),
            });
        }
        let mut unused: Vec<&String> = entries
            .keys()
            .filter(|n| n.starts_with("data/") && !n.ends_with('/'))
            .filter(|n| !self.references.contains_key(*n))
            .collect();
        unused.sort();
        let unused: Vec<String> = unused.into_iter().cloned().collect();
        for path in unused {
            self.warn(format!("{path} is not referenced by any line"));
        }
        let mut crowded: Vec<(String, usize)> = self
            .members_per_team
            .iter()
            .filter(|(_, n)| **n > rules::DEFAULT_MAX_USERS_PER_TEAM)
            .map(|(t, n)| (t.clone(), *n))
            .collect();
        crowded.sort();
        for (team, n) in crowded {
            self.warn(format!(
                "team {team:?} gets {n} members from user lines; raise TeamSettings.MaxUsersPerTeam (default 50) first"
            ));
        }
        self.findings
    }
}

trait Pointer {
    fn pointer_in(&self, a: &str, b: &str) -> Option<&Value>;
}

impl Pointer for Map<String, Value> {
    fn pointer_in(&self, a: &str, b: &str) -> Option<&Value> {
        self.get(a)?.get(b)
    }
}

/// Space-separated role names `[a-z0-9_]{1,64}`.
fn valid_roles(roles: &str) -> bool {
    roles.split(' ').filter(|r| !r.is_empty()).all(|r| {
        r.len() <= 64
            && r.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    })
}

/// 16 bytes of BLAKE3 over the identity of a post, so the duplicate check stores no text.
fn post_key(channel: &str, create_at: i64, message: &str, root: &str) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    for part in [
        channel.as_bytes(),
        &create_at.to_le_bytes(),
        message.as_bytes(),
        root.as_bytes(),
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[&str], entries: &[(&str, u64)]) -> Vec<String> {
        let mut v = Validator::new(rules::MAX_POST_RUNES, ["admin".to_string()]);
        for line in lines {
            v.check_line(line);
        }
        let entries = entries.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        v.finish(&entries).iter().map(ToString::to_string).collect()
    }

    const VERSION: &str = r#"{"type":"version","version":1}"#;
    const TEAM: &str = r#"{"type":"team","team":{"name":"eng","display_name":"Eng","type":"O"}}"#;
    const CHANNEL: &str = r#"{"type":"channel","channel":{"team":"eng","name":"dev","display_name":"Dev","type":"O"}}"#;
    const USER: &str = r#"{"type":"user","user":{"username":"ann","email":"ann@x.org","teams":[{"name":"eng","roles":"team_user","channels":[{"name":"dev","roles":"channel_user"}]}]}}"#;

    #[test]
    fn a_good_file_passes() {
        let post = r#"{"type":"post","post":{"team":"eng","channel":"dev","user":"ann","message":"hi","create_at":5,"attachments":[{"path":"f/1/a.txt"}],"reactions":[{"user":"admin","emoji_name":"+1","create_at":6}],"replies":[{"user":"admin","message":"yo","create_at":7}]}}"#;
        let dm = r#"{"type":"direct_channel","direct_channel":{"members":["ann","ann"]}}"#;
        let found = run(
            &[VERSION, TEAM, CHANNEL, USER, post, dm],
            &[("import.jsonl", 1), ("data/f/1/a.txt", 3)],
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn each_rule_is_reported() {
        let bad_team = r#"{"type":"team","team":{"name":"Help","display_name":"","type":"X"}}"#;
        let bad_post = r#"{"type":"post","post":{"team":"eng","channel":"nope","user":"zed","message":"hi","create_at":0,"attachments":[{"path":"../x"}],"replies":[{"user":"ann","message":"a","create_at":3},{"user":"ann","message":"b","create_at":3}]}}"#;
        let gm = r#"{"type":"direct_channel","direct_channel":{"members":["a","b","c","d","e","f","g","h","i"]}}"#;
        let found = run(
            &[TEAM, bad_team, CHANNEL, USER, USER, bad_post, gm, ""],
            &[("import.jsonl", 1), ("nested/x.jsonl", 1)],
        )
        .join("\n");
        for expected in [
            "line 1 is not the version line",
            "\"Help\" breaks the name rule",
            "display_name must be 1-64",
            "team.type \"X\"",
            "duplicate account \"ann\"",
            "duplicate e-mail",
            "post.channel eng/nope",
            "post.user \"zed\"",
            "create_at must be > 0",
            "\"../x\" is not a plain path",
            "two replies of one thread at create_at 3",
            "9 members",
            "empty line",
            "exactly one .jsonl",
        ] {
            assert!(found.contains(expected), "missing {expected:?} in\n{found}");
        }
    }

    #[test]
    fn references_must_come_from_an_earlier_segment() {
        // The user line and its team are in one segment order the wrong way round.
        let found = run(&[VERSION, USER, TEAM, CHANNEL], &[("import.jsonl", 1)]).join("\n");
        assert!(
            found.contains("user.teams[].name \"eng\" is not a team defined earlier"),
            "{found}"
        );
    }

    #[test]
    fn missing_and_unused_files_are_reported() {
        let emoji = r#"{"type":"emoji","emoji":{"name":"party","image":"emoji/party/party.png"}}"#;
        let found = run(
            &[VERSION, emoji],
            &[
                ("import.jsonl", 1),
                ("data/emoji/party/party.png", 600_000),
                ("data/stray", 1),
            ],
        )
        .join("\n");
        assert!(found.contains("larger than 512 KiB"), "{found}");
        assert!(
            found.contains("warning: data/stray is not referenced"),
            "{found}"
        );
        let found = run(&[VERSION, emoji], &[("import.jsonl", 1)]).join("\n");
        assert!(
            found.contains("file not usable in the zip: data/emoji/party/party.png"),
            "{found}"
        );
    }

    #[test]
    fn guests_must_be_guests_everywhere_and_scope_keys_are_refused() {
        let guest = r#"{"type":"user","user":{"username":"g","email":"g@x.org","roles":"system_guest","teams":[{"name":"eng","roles":"team_user"}]}}"#;
        let version = r#"{"type":"version","version":1,"info":{"additional":{"team_name":"eng"}}}"#;
        let found = run(&[version, TEAM, CHANNEL, guest], &[("import.jsonl", 1)]).join("\n");
        assert!(found.contains("system guest must be team_guest"), "{found}");
        assert!(found.contains("scope key"), "{found}");
    }
}
