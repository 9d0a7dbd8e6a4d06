//! One channel as the chat exports ([`super::markdown`], [`super::hgf`]) see it, read from
//! the catalog: the channel, its members, its posts in the order the Python `matterexport`
//! reads them (by the file names of the folder layout), threads, attachments, reactions,
//! earlier versions; plus the people who wrote them and the `-c` channel lookup.
//!
//! Depends on [`super::view`] (the channel, its posts and rows as typed objects; no SQL or
//! stored JSON here), `blobs` (is an attachment's content archived?) and [`crate::pylayout`]
//! (folder names and post file names, so lookups, order and the paths printed under
//! `Files:` are the layout export's own).
//!
//! Invariants: one channel is held in memory at a time (its posts must be sorted and
//! grouped); everything from the server is data, never markup: renderers escape it.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;

use chrono::{DateTime, NaiveDateTime, TimeZone};
use serde_json::{Map, Value};

use super::view::{self, Channel, ChannelView, Post, ViewError};
use crate::blobs::BlobStore;
use crate::catalog::{Catalog, CatalogError, FileRecord};
use crate::model::{ChannelType, FileId, UserId};
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
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    BlobStore(#[from] crate::blobs::BlobError),
}

/// A channel that can be exported, with its place in the folder layout.
#[derive(Debug, Clone)]
pub struct ChannelEntry {
    pub channel: Channel,
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
    users: HashMap<UserId, Person>,
    /// Users the Python tool writes to `users/` (members and the archiving account); its
    /// exporter prints the raw id for anybody else.
    listed: HashSet<UserId>,
}

impl People {
    pub fn load(catalog: &Catalog) -> Result<People, ChatError> {
        let mut users = HashMap::new();
        for user in view::load_users(catalog)? {
            let u = user.object;
            users.insert(
                user.record.id,
                Person {
                    username: Some(u.username),
                    nickname: u.nickname,
                    first_name: u.first_name,
                    last_name: u.last_name,
                },
            );
        }
        let listed = catalog.load_listed_user_ids()?.into_iter().collect();
        Ok(People { users, listed })
    }

    /// People from parts (tests and callers with their own user source).
    pub fn from_parts(users: HashMap<UserId, Person>, listed: HashSet<UserId>) -> People {
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
    let channels = view::load_channels(catalog)?;
    let mut entries = Vec::new();
    for team in view::load_teams(catalog)? {
        let names = (team.object.display_name.clone(), team.object.name.clone());
        let id = &team.record.id;
        let paths = pylayout::team_paths(id, &team.record.name);
        for channel in channels
            .iter()
            .filter(|c| c.record.team_id == *id && !id.is_empty())
        {
            let place = ChannelPlace::Team(&paths);
            entries.push(entry(place, channel, Some(names.clone())));
        }
    }
    for (kind, place) in [
        (ChannelType::Direct, ChannelPlace::Direct),
        (ChannelType::Group, ChannelPlace::Group),
    ] {
        for channel in channels.iter().filter(|c| c.record.kind == kind) {
            entries.push(entry(place, channel, None));
        }
    }
    Ok(entries)
}

fn entry(
    place: ChannelPlace<'_>,
    channel: &Channel,
    team: Option<(String, String)>,
) -> ChannelEntry {
    let paths = pylayout::channel_paths(place, &channel.record.id, channel.names().handle());
    let folder = paths
        .posts_dir
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    ChannelEntry {
        channel: channel.clone(),
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
    pub post: Post,
    /// The layout export's file name of the post: the Python tool's order.
    pub file_name: String,
}

impl Deref for ChatPost {
    type Target = Post;

    fn deref(&self) -> &Post {
        &self.post
    }
}

/// An attachment's record and whether its content is archived.
#[derive(Debug, Clone)]
pub struct ChatFile {
    pub record: FileRecord,
    /// The content is in the blob store.
    pub stored: bool,
    /// Path of the content in the folder layout, relative to the data dir.
    pub layout_path: String,
}

/// One channel, loaded.
#[derive(Debug)]
pub struct Chat<'e> {
    pub entry: &'e ChannelEntry,
    /// The channel's stored object, for formats that re-emit it whole.
    pub channel_object: Map<String, Value>,
    /// The channel's rows; its posts are in [`Chat::posts`], in file-name order.
    pub view: ChannelView,
    /// User ids of the member list, in its order.
    pub members: Vec<UserId>,
    /// In file-name order.
    pub posts: Vec<ChatPost>,
    /// The layout's threads file: root id → reply ids.
    pub threads: HashMap<String, Vec<String>>,
    pub files: HashMap<FileId, ChatFile>,
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
        let channel_object = entry.channel.stored_object()?;
        let mut view = ChannelView::load(catalog, entry.channel.clone())?;
        let members = view.members.iter().map(|m| m.user_id.clone()).collect();
        let threads = view
            .replies_by_root()
            .into_iter()
            .map(|(root, replies)| {
                let replies = replies.into_iter().map(str::to_owned).collect();
                (root.to_owned(), replies)
            })
            .collect();
        let mut posts: Vec<ChatPost> = std::mem::take(&mut view.posts)
            .into_iter()
            .map(|post| ChatPost {
                file_name: pylayout::post_file_name(post.record.create_at, &post.record.id, tz),
                post,
            })
            .collect();
        // Code point order of the names, as Python's `sorted` on paths of one folder.
        posts.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        let mut files = HashMap::new();
        for record in view.files.values().flatten() {
            let stored = match &record.blob {
                Some(blob) => blobs.contains(blob)?,
                None => false,
            };
            let layout_path = entry.paths.file_bytes(&record.id, &record.name);
            files.insert(
                record.id.clone(),
                ChatFile {
                    record: record.clone(),
                    stored,
                    layout_path,
                },
            );
        }
        Ok(Chat {
            entry,
            channel_object,
            view,
            members,
            posts,
            threads,
            files,
        })
    }

    pub fn kind(&self) -> &ChannelType {
        &self.entry.channel.record.kind
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
            .map(|(i, p)| (p.id(), i))
            .collect();
        let naive = |i: usize| -> Option<NaiveDateTime> {
            pylayout::python_from_timestamp(self.posts[i].record.create_at, tz)
                .map(|t| t.naive_local())
        };
        let mut handled: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for (i, post) in self.posts.iter().enumerate() {
            if !handled.insert(post.id()) {
                continue;
            }
            match self.threads.get(post.id()) {
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
        order.sort_by_key(|&i| (self.posts[i].record.create_at, self.posts[i].id()));
        let present: HashSet<&str> = self.posts.iter().map(|p| p.id()).collect();
        let mut by_root: HashMap<&str, usize> = HashMap::new();
        let mut out: Vec<Vec<usize>> = Vec::new();
        // Roots first, so a reply created before its root (clock skew) still joins it.
        for &i in &order {
            let root = self.posts[i].record.root_id.as_str();
            if root.is_empty() || !present.contains(root) {
                by_root.insert(self.posts[i].id(), out.len());
                out.push(vec![i]);
            }
        }
        for &i in &order {
            let root = self.posts[i].record.root_id.as_str();
            if !root.is_empty()
                && present.contains(root)
                && let Some(&t) = by_root.get(root)
            {
                out[t].push(i);
            }
        }
        out.sort_by_key(|t| t.iter().map(|&i| self.posts[i].record.create_at).min());
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
