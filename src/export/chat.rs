//! One channel as the chat exports ([`super::markdown`], [`super::hgf`]) see it, read from
//! the catalog: the channel, its members, its posts in the order the Python `matterexport`
//! reads them (by the file names of the folder layout), threads, attachments, reactions,
//! earlier versions; plus the people who wrote them and the `-c` channel lookup.
//!
//! Depends on `catalog` (named reads only, no SQL here), `blobs` (is an attachment's content
//! archived?) and [`crate::pylayout`] (folder names and post file names, so lookups, order and
//! the paths printed under `Files:` are the layout export's own).
//!
//! Invariants: one channel is held in memory at a time (its posts must be sorted and
//! grouped); everything from the server is data, never markup: renderers escape it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, TimeZone};
use serde_json::{Map, Value};

use crate::blobs::BlobStore;
use crate::catalog::{Catalog, CatalogError, ChannelRow, PostVersionRow, ReactionRow};
use crate::model::BlobId;
use crate::pylayout::{self, ChannelPaths, ChannelPlace};

/// How faithful to the Python tool an export is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    /// Byte for byte what `matterexport` 0.5.2 writes from the same data, quirks included.
    Py,
    /// Everything the archive knows, shown correctly (the default).
    #[default]
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(
        "no channel matches {ident:?} (tried it as a channel id, a channel name and a folder path)"
    )]
    NotFound { ident: String },
    #[error(
        "{ident:?} matches {} channels: {}; give the channel id instead",
        candidates.len(),
        candidates.join(", ")
    )]
    Ambiguous {
        ident: String,
        candidates: Vec<String>,
    },
    #[error("stored JSON of {what} is not a JSON object")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    BlobStore(#[from] crate::blobs::BlobError),
}

/// A channel that can be exported, with its place in the folder layout.
#[derive(Debug, Clone)]
pub struct ChannelEntry {
    pub row: ChannelRow,
    pub paths: ChannelPaths,
    /// Last component of `paths.posts_dir`: `<channel_id>__<name>`, what `-c` matches.
    pub folder: String,
    /// `(display_name, name)` of the team, for team channels.
    pub team: Option<(String, String)>,
}

/// A user's names, as both exports need them.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub username: Option<String>,
    pub nickname: String,
    pub first_name: String,
    pub last_name: String,
}

impl Person {
    /// `first last`, each part and the whole stripped (the Python tool's "given name").
    pub fn given_name(&self) -> String {
        format!("{} {}", self.first_name.trim(), self.last_name.trim())
            .trim()
            .to_owned()
    }
}

/// Everyone the archive knows, and which of them the Python tool would know.
#[derive(Debug, Default)]
pub struct People {
    users: HashMap<String, Person>,
    /// Users the Python tool writes to `users/` (members and the archiving account); its
    /// exporter prints the raw id for anybody else.
    listed: HashSet<String>,
}

impl People {
    pub fn load(catalog: &Catalog) -> Result<People, ChatError> {
        let mut users = HashMap::new();
        for user in catalog.export_users()? {
            let json = parse_object(&user.json, "user")?;
            let text = |key: &str| {
                json.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            users.insert(
                user.id,
                Person {
                    username: json
                        .get("username")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    nickname: text("nickname"),
                    first_name: text("first_name"),
                    last_name: text("last_name"),
                },
            );
        }
        let listed = catalog.listed_user_ids()?.into_iter().collect();
        Ok(People { users, listed })
    }

    /// People from parts (tests and callers with their own user source).
    pub fn from_parts(users: HashMap<String, Person>, listed: HashSet<String>) -> People {
        People { users, listed }
    }

    /// The user as the given flavor may know them.
    pub fn get(&self, id: &str, flavor: Flavor) -> Option<&Person> {
        if flavor == Flavor::Py && !self.listed.contains(id) {
            return None;
        }
        self.users.get(id)
    }

    /// `matterexport`'s Markdown name: nickname, else given name, else username, else the id.
    pub fn display_name(&self, id: &str, flavor: Flavor) -> String {
        let Some(person) = self.get(id, flavor) else {
            return id.to_owned();
        };
        if !person.nickname.is_empty() {
            return person.nickname.clone();
        }
        let given = person.given_name();
        if !given.is_empty() {
            return given;
        }
        person.username.clone().unwrap_or_else(|| id.to_owned())
    }
}

/// Every exportable channel, in the layout export's order (teams by name, their channels,
/// then direct, then group channels).
pub fn list_channels(catalog: &Catalog) -> Result<Vec<ChannelEntry>, ChatError> {
    let channels = catalog.export_channels()?;
    let mut entries = Vec::new();
    for team in catalog.export_teams()? {
        let json = parse_object(&team.json, "team")?;
        let text = |key: &str| {
            json.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let names = (text("display_name"), text("name"));
        let paths = pylayout::team_paths(&team.id, &team.name);
        for channel in channels
            .iter()
            .filter(|c| c.team_id == team.id && !c.team_id.is_empty())
        {
            let place = ChannelPlace::Team(&paths);
            entries.push(entry(place, channel, &channel.name, Some(names.clone())));
        }
    }
    for (kind, place) in [("D", ChannelPlace::Direct), ("G", ChannelPlace::Group)] {
        for channel in channels.iter().filter(|c| c.kind == kind) {
            let name = channel.export_name.as_deref().unwrap_or(&channel.name);
            entries.push(entry(place, channel, name, None));
        }
    }
    Ok(entries)
}

fn entry(
    place: ChannelPlace<'_>,
    row: &ChannelRow,
    name: &str,
    team: Option<(String, String)>,
) -> ChannelEntry {
    let paths = pylayout::channel_paths(place, &row.id, name);
    let folder = paths
        .posts_dir
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    ChannelEntry {
        row: row.clone(),
        paths,
        folder,
        team,
    }
}

/// Finds the channel `ident` names, as `matterexport -c` does: as a channel id (folder
/// `<ident>__*`), then as a name (folder `*__<ident>`), then as a path to the folder (its
/// last component). `ident` is a glob pattern there (`*`, `?`, `[…]`), so it is here too.
/// Unlike the Python tool, more than one match is an error listing the candidates.
pub fn find_channel<'e>(
    entries: &'e [ChannelEntry],
    ident: &str,
) -> Result<&'e ChannelEntry, ChatError> {
    let patterns = [format!("{ident}__*"), format!("*__{ident}")];
    for pattern in &patterns {
        let found: Vec<&ChannelEntry> = entries
            .iter()
            .filter(|e| glob_match(pattern, &e.folder))
            .collect();
        match found.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(ChatError::Ambiguous {
                    ident: ident.to_owned(),
                    candidates: many.iter().map(|e| e.paths.posts_dir.clone()).collect(),
                });
            }
        }
    }
    let last = ident.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if let Some(found) = entries.iter().find(|e| e.folder == last) {
        return Ok(found);
    }
    Err(ChatError::NotFound {
        ident: ident.to_owned(),
    })
}

/// Python's `fnmatch` on one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`; an
/// unclosed `[` is a literal.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Classic backtracking over the last `*`; linear in practice for these short names.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class(&p[pi..], n[ni]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (n[ni] == '[').then_some(1),
            },
            Some(&c) => (c == n[ni]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                pi += len;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class opening `p`; `(matched, pattern length)`, `None` when the
/// class is not closed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    while i < p.len() {
        if p[i] == ']' && i > start {
            return Some((matched != negate, i + 1));
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            matched |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    None
}

/// A post with its place in the layout.
#[derive(Debug, Clone)]
pub struct ChatPost {
    pub id: String,
    pub create_at: i64,
    pub edit_at: i64,
    pub delete_at: i64,
    /// The layout export's file name of the post: the Python tool's order.
    pub file_name: String,
    pub json: Map<String, Value>,
}

impl ChatPost {
    pub fn text(&self, key: &str) -> &str {
        self.json.get(key).and_then(Value::as_str).unwrap_or("")
    }

    pub fn file_ids(&self) -> Vec<&str> {
        self.json
            .get("file_ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// `metadata.reactions` as the post JSON lists them: `(user_id, emoji_name)`.
    pub fn json_reactions(&self) -> Vec<(&str, &str)> {
        let list = self
            .json
            .get("metadata")
            .and_then(|m| m.get("reactions"))
            .and_then(Value::as_array);
        list.map(|list| {
            list.iter()
                .map(|r| {
                    let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
                    (field("user_id"), field("emoji_name"))
                })
                .collect()
        })
        .unwrap_or_default()
    }
}

/// An attachment's info and whether its content is archived.
#[derive(Debug, Clone)]
pub struct ChatFile {
    pub name: String,
    pub size: i64,
    pub json: Map<String, Value>,
    pub blob: Option<BlobId>,
    /// The content is in the blob store.
    pub stored: bool,
    /// Path of the content in the folder layout, relative to the data dir.
    pub layout_path: String,
}

/// One channel, loaded.
#[derive(Debug)]
pub struct Chat<'e> {
    pub entry: &'e ChannelEntry,
    pub channel: Map<String, Value>,
    /// User ids of the member list, in its order.
    pub members: Vec<String>,
    /// In file-name order.
    pub posts: Vec<ChatPost>,
    /// The layout's threads file: root id → reply ids.
    pub threads: HashMap<String, Vec<String>>,
    pub files: HashMap<String, ChatFile>,
    pub versions: HashMap<String, Vec<PostVersionRow>>,
    pub reactions: HashMap<String, Vec<ReactionRow>>,
}

impl<'e> Chat<'e> {
    pub fn load<Tz: TimeZone>(
        catalog: &Catalog,
        blobs: &BlobStore,
        entry: &'e ChannelEntry,
        tz: &Tz,
    ) -> Result<Chat<'e>, ChatError>
    where
        Tz::Offset: std::fmt::Display,
    {
        let id = &entry.row.id;
        let channel = parse_object(&entry.row.json, "channel")?;
        let mut members = Vec::new();
        catalog
            .for_each_channel_member(id, |json| {
                let member: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                let user = member.get("user_id").and_then(Value::as_str).unwrap_or("");
                members.push(user.to_owned());
                Ok(())
            })?
            .expect("collecting members cannot fail");
        let mut threads: HashMap<String, Vec<String>> = HashMap::new();
        catalog
            .for_each_thread_reply(id, |root, reply| {
                threads
                    .entry(root.to_owned())
                    .or_default()
                    .push(reply.to_owned());
                Ok(())
            })?
            .expect("collecting threads cannot fail");
        let mut posts = Vec::new();
        for row in catalog.load_post_states(id)? {
            let json = parse_object(&row.json, "post")?;
            posts.push(ChatPost {
                file_name: pylayout::post_file_name(row.create_at, &row.id, tz),
                id: row.id,
                create_at: row.create_at,
                edit_at: row.edit_at,
                delete_at: row.delete_at,
                json,
            });
        }
        // Code point order of the names, as Python's `sorted` on paths of one folder.
        posts.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        let mut files = HashMap::new();
        let mut bad = None;
        catalog
            .for_each_file(id, |file| {
                match parse_object(&file.json, "file info") {
                    Ok(json) => {
                        let size = json.get("size").and_then(Value::as_i64).unwrap_or(0);
                        let stored = match file.blob.as_ref().map(|b| blobs.contains(b)) {
                            Some(Ok(stored)) => stored,
                            None => false,
                            Some(Err(e)) => {
                                bad = Some(e.into());
                                false
                            }
                        };
                        let layout_path = entry.paths.file_bytes(&file.id, &file.name);
                        files.insert(
                            file.id,
                            ChatFile {
                                name: file.name,
                                size,
                                json,
                                blob: file.blob,
                                stored,
                                layout_path,
                            },
                        );
                    }
                    Err(e) => bad = Some(e),
                }
                Ok(())
            })?
            .expect("collecting files cannot fail");
        if let Some(e) = bad {
            return Err(e);
        }
        let mut versions: HashMap<String, Vec<PostVersionRow>> = HashMap::new();
        for v in catalog.load_post_versions(id)? {
            versions.entry(v.post_id.clone()).or_default().push(v);
        }
        let mut reactions: HashMap<String, Vec<ReactionRow>> = HashMap::new();
        for r in catalog.load_reactions(id)? {
            reactions.entry(r.post_id.clone()).or_default().push(r);
        }
        Ok(Chat {
            entry,
            channel,
            members,
            posts,
            threads,
            files,
            versions,
            reactions,
        })
    }

    pub fn kind(&self) -> &str {
        &self.entry.row.kind
    }

    /// Threads as `matterexport --threads` groups them (indices into `posts`): in file
    /// order, each root followed by its replies from the threads file sorted by naive local
    /// time (stable); a post already shown is skipped, but a reply that sorts before its
    /// root is shown twice, alone and in its thread, as the Python tool does.
    pub fn py_threads<Tz: TimeZone>(&self, tz: &Tz) -> Vec<Vec<usize>> {
        let index: HashMap<&str, usize> = self
            .posts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        let naive = |i: usize| -> Option<NaiveDateTime> {
            pylayout::python_from_timestamp(self.posts[i].create_at, tz).map(|t| t.naive_local())
        };
        let mut handled: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for (i, post) in self.posts.iter().enumerate() {
            if !handled.insert(post.id.as_str()) {
                continue;
            }
            match self.threads.get(&post.id) {
                Some(replies) => {
                    handled.extend(replies.iter().map(String::as_str));
                    let mut found: Vec<usize> = replies
                        .iter()
                        .filter_map(|r| index.get(r.as_str()).copied())
                        .collect();
                    found.sort_by_key(|&r| naive(r));
                    out.push(std::iter::once(i).chain(found).collect());
                }
                None => out.push(vec![i]),
            }
        }
        out
    }

    /// Threads by the posts' own `root_id` (indices into `posts`): every post exactly once,
    /// threads ordered by their first post's time, replies by time. A reply whose root is
    /// not archived heads its own thread.
    pub fn threads_by_root(&self) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.posts.len()).collect();
        order.sort_by_key(|&i| (self.posts[i].create_at, &self.posts[i].id));
        let present: HashSet<&str> = self.posts.iter().map(|p| p.id.as_str()).collect();
        let mut by_root: HashMap<&str, usize> = HashMap::new();
        let mut out: Vec<Vec<usize>> = Vec::new();
        // Roots first, so a reply created before its root (clock skew) still joins it.
        for &i in &order {
            let root = self.posts[i].text("root_id");
            if root.is_empty() || !present.contains(root) {
                by_root.insert(self.posts[i].id.as_str(), out.len());
                out.push(vec![i]);
            }
        }
        for &i in &order {
            let root = self.posts[i].text("root_id");
            if !root.is_empty()
                && present.contains(root)
                && let Some(&t) = by_root.get(root)
            {
                out[t].push(i);
            }
        }
        out.sort_by_key(|t| t.iter().map(|&i| self.posts[i].create_at).min());
        out
    }
}

/// `str(datetime.fromtimestamp(ms / 1000).replace(microsecond=0))`.
pub fn py_time<Tz: TimeZone>(ms: i64, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match pylayout::python_from_timestamp(ms, tz) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => format!("{ms} ms"),
    }
}

/// A time with its UTC offset, for the full flavor.
pub fn zoned_time<Tz: TimeZone>(ms: i64, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(tz)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        None => format!("{ms} ms"),
    }
}

/// Python's `str()` of a JSON value as `json.load` gives it.
pub fn py_str(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "None".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "True".to_owned(),
        Some(Value::Bool(false)) => "False".to_owned(),
        Some(other) => other.to_string(),
    }
}

pub fn parse_object(raw: &str, what: &str) -> Result<Map<String, Value>, ChatError> {
    serde_json::from_str(raw).map_err(|source| ChatError::Json {
        what: what.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob_match("town*", "town-square"));
        assert!(glob_match("*__town-square", "c1__town-square"));
        assert!(!glob_match("*__town", "c1__town-square"));
        assert!(glob_match("c?__x", "c1__x"));
        assert!(glob_match("[abc]1__*", "b1__x"));
        assert!(!glob_match("[!abc]1__*", "b1__x"));
        assert!(glob_match("[a-c]1__*", "c1__x"));
        assert!(
            glob_match("[x__*", "[x__y"),
            "an unclosed class is a literal"
        );
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("*", ""));
    }
}
