//! The exports' one read model: teams, users and one channel at a time as typed objects,
//! built from the catalog's records. Markdown, HGF, the website and bulk import render from
//! these; none of them writes SQL or picks stored JSON apart by key. Stored JSON is read
//! here, once per object, through [`object::parse_lenient`]: every field is exactly what
//! sync and import indexed (a field of an unexpected type reads as its default), and the
//! record's columns and raw JSON stay beside the typed object for the formats that hash or
//! re-emit them.
//!
//! A [`ChannelView`] holds one channel in memory (its posts must be sorted and grouped);
//! a [`PostsView`] holds a few posts of one (the website's page, planned from the posts'
//! outlines); the teams and users are small. Imports `catalog` (records, and one read per
//! channel or per set of posts) and `model`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::{
    Catalog, CatalogError, ChannelContent, ChannelRecord, FileRecord, ImageOwnerRecord,
    PostOutline, PostRecord, PostsContent, ReactionRecord, TeamRecord, VersionRecord,
};
use crate::model::naming::ChannelNames;
use crate::model::{ChannelId, FileId, PostId, TeamId, UserId, object};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("stored JSON of {what} is not a usable JSON object")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

fn parse<T: serde::de::DeserializeOwned>(
    json: &str,
    what: impl Fn() -> String,
) -> Result<T, ViewError> {
    object::parse_lenient(json).map_err(|source| ViewError::Json {
        what: what(),
        source,
    })
}

/// A team with its stored object.
#[derive(Debug, Clone)]
pub struct Team {
    pub record: TeamRecord,
    pub object: object::Team,
}

/// A user the archive knows, with the stored object.
#[derive(Debug, Clone)]
pub struct User {
    pub record: ImageOwnerRecord<UserId>,
    pub object: object::User,
}

/// A channel with its stored object.
#[derive(Debug, Clone)]
pub struct Channel {
    pub record: ChannelRecord,
    pub object: object::Channel,
}

/// The channel fields the Python `matterexport` prints with `str()`, as their JSON values:
/// absent is `None`, JSON `null` is `Some(Value::Null)`.
#[derive(Debug, Default, Deserialize)]
pub struct PythonChannelFields {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub header: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub total_msg_count: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub total_msg_count_root: Option<Value>,
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Channel {
    pub fn from_record(record: ChannelRecord) -> Result<Channel, ViewError> {
        let object = parse(&record.json, || format!("channel {}", record.id))?;
        Ok(Channel { record, object })
    }

    /// What the channel is called (one rule for every output: [`ChannelNames`]).
    pub fn names(&self) -> ChannelNames<'_> {
        ChannelNames {
            kind: &self.record.kind,
            id: &self.record.id,
            name: &self.record.name,
            display_name: &self.record.display_name,
            export_name: self.record.export_name.as_deref(),
        }
    }

    /// The stored object as it came, for formats that re-emit it whole (HGF's
    /// `channel.json`).
    pub fn stored_object(&self) -> Result<Map<String, Value>, ViewError> {
        serde_json::from_str(&self.record.json).map_err(|source| ViewError::Json {
            what: format!("channel {}", self.record.id),
            source,
        })
    }

    /// The fields the Python tool prints as they are stored.
    pub fn python_fields(&self) -> PythonChannelFields {
        serde_json::from_str(&self.record.json).unwrap_or_default()
    }
}

/// What the exports read from a post's stored JSON besides the catalog's columns.
#[derive(Debug, Clone, Default, Deserialize)]
struct PostExtras {
    #[serde(default, deserialize_with = "lenient_bool")]
    is_pinned: bool,
    #[serde(default, deserialize_with = "strings")]
    file_ids: Vec<FileId>,
    #[serde(default, deserialize_with = "object_or_none")]
    props: Option<Map<String, Value>>,
    /// Kept as text: only the Python flavor of Markdown reads it (`metadata.reactions`).
    #[serde(default)]
    metadata: Option<Box<serde_json::value::RawValue>>,
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Value::deserialize(d)?.as_bool().unwrap_or(false))
}

/// The string elements of an array (anything else reads as empty).
fn strings<'de, D: serde::Deserializer<'de>, T: From<String>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(T::from(s)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

fn object_or_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(map) => Some(map),
        _ => None,
    })
}

/// Text of a JSON value the way message attachments show it: a string as itself, nothing
/// for `null` or absent, anything else as JSON.
fn shown_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A bot's or webhook's message attachment (Slack's format, `props.attachments`); a field
/// of another type than text reads as empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageAttachment {
    pub fallback: String,
    pub color: String,
    pub pretext: String,
    pub author_name: String,
    pub title: String,
    pub title_link: String,
    pub text: String,
    /// `None` when the attachment has no list of fields.
    pub fields: Option<Vec<AttachmentField>>,
    pub image_url: String,
    pub footer: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttachmentField {
    pub title: String,
    /// Shown as text: a string as itself, `null` as nothing, other JSON as JSON.
    pub value: String,
    pub short: bool,
}

impl MessageAttachment {
    fn from_value(a: &Value) -> MessageAttachment {
        let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        MessageAttachment {
            fallback: text("fallback"),
            color: text("color"),
            pretext: text("pretext"),
            author_name: text("author_name"),
            title: text("title"),
            title_link: text("title_link"),
            text: text("text"),
            fields: a.get("fields").and_then(Value::as_array).map(|fields| {
                fields
                    .iter()
                    .map(|f| AttachmentField {
                        title: f
                            .get("title")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        value: shown_text(f.get("value")),
                        short: f.get("short").and_then(Value::as_bool).unwrap_or(false),
                    })
                    .collect()
            }),
            image_url: text("image_url"),
            footer: text("footer"),
        }
    }
}

/// A post: the catalog's record (columns and stored JSON) and what the exports read from
/// the JSON besides.
#[derive(Debug, Clone)]
pub struct Post {
    pub record: PostRecord,
    /// Read from the JSON on first use: a page plan needs only the columns.
    extras: OnceLock<PostExtras>,
}

impl Post {
    pub fn from_record(record: PostRecord) -> Post {
        Post {
            record,
            extras: OnceLock::new(),
        }
    }

    fn extras(&self) -> &PostExtras {
        // A post's extras are optional by nature: JSON that is not an object has none.
        self.extras
            .get_or_init(|| serde_json::from_str(&self.record.json).unwrap_or_default())
    }

    /// The id as text (the typed id is `record.id`).
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn is_pinned(&self) -> bool {
        self.extras().is_pinned
    }

    pub fn is_system(&self) -> bool {
        self.record.kind.starts_with("system_")
    }

    /// The ids of its attachments, in the post's order.
    pub fn file_ids(&self) -> &[FileId] {
        &self.extras().file_ids
    }

    /// `props` when it is an object (what the post's author or integration attached).
    pub fn props(&self) -> Option<&Map<String, Value>> {
        self.extras().props.as_ref()
    }

    /// `metadata.reactions` as the post JSON lists them: `(user_id, emoji_name)`, a missing
    /// or non-text part empty.
    pub fn listed_reactions(&self) -> Vec<(String, String)> {
        let Some(metadata) = &self.extras().metadata else {
            return Vec::new();
        };
        let Ok(Value::Object(metadata)) = serde_json::from_str(metadata.get()) else {
            return Vec::new();
        };
        let Some(list) = metadata.get("reactions").and_then(Value::as_array) else {
            return Vec::new();
        };
        list.iter()
            .map(|r| {
                let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                (field("user_id"), field("emoji_name"))
            })
            .collect()
    }

    /// The name an integration posted under (`props.override_username`), when not empty.
    pub fn override_username(&self) -> Option<&str> {
        self.props()?
            .get("override_username")?
            .as_str()
            .filter(|s| !s.is_empty())
    }

    /// Posted by a bot or an incoming webhook (`props.from_bot`, `props.from_webhook`:
    /// `true` or `"true"`).
    pub fn from_integration(&self) -> bool {
        self.props().is_some_and(|p| {
            ["from_bot", "from_webhook"]
                .iter()
                .any(|k| p.get(*k).is_some_and(|v| v == "true" || v == true))
        })
    }

    /// `props.attachments`, when it is a list.
    pub fn attachments(&self) -> Option<Vec<MessageAttachment>> {
        let list = self.props()?.get("attachments")?.as_array()?;
        Some(list.iter().map(MessageAttachment::from_value).collect())
    }

    /// The post's stored fields among `keys`, in that order, with their stored values
    /// (`null` included; absent keys left out).
    pub fn stored_fields(&self, keys: &[&str]) -> Map<String, Value> {
        let Ok(Value::Object(all)) = serde_json::from_str::<Value>(&self.record.json) else {
            return Map::new();
        };
        keys.iter()
            .filter_map(|k| all.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect()
    }
}

/// Indices into a channel's posts: which are roots, and each root's replies (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threads {
    pub is_root: Vec<bool>,
    pub replies: Vec<Vec<usize>>,
}

impl Threads {
    /// Threads of `posts` (oldest first) by their `root_id`. A reply whose root is not
    /// among them, or whose root is itself a reply, stands as a root.
    pub fn of(posts: &[Post]) -> Threads {
        Threads::by_root(posts, |p| (p.id(), p.record.root_id.as_str()))
    }

    /// The same from posts' outlines (the website plans its pages from them).
    pub fn of_outlines(posts: &[PostOutline]) -> Threads {
        Threads::by_root(posts, |p| (p.id.as_str(), p.root_id.as_str()))
    }

    fn by_root<T>(posts: &[T], key: impl Fn(&T) -> (&str, &str)) -> Threads {
        let at: HashMap<&str, usize> = posts
            .iter()
            .enumerate()
            .map(|(i, p)| (key(p).0, i))
            .collect();
        let mut is_root = vec![true; posts.len()];
        let mut replies = vec![Vec::new(); posts.len()];
        for (i, p) in posts.iter().enumerate() {
            let root = key(p).1;
            if root.is_empty() {
                continue;
            }
            if let Some(&r) = at.get(root)
                && r != i
                && key(&posts[r]).1.is_empty()
            {
                is_root[i] = false;
                replies[r].push(i);
            }
        }
        Threads { is_root, replies }
    }
}

/// One channel, loaded.
#[derive(Debug, Clone)]
pub struct ChannelView {
    pub channel: Channel,
    /// Current members, in the server's order.
    pub members: Vec<object::ChannelMember>,
    /// Posts seen alive (deleted ones included), oldest first, then by id.
    pub posts: Vec<Post>,
    /// Posts first seen already deleted: the server had blanked them, so only their columns
    /// are known.
    pub unseen: Vec<PostRecord>,
    /// Attachments of the posts seen alive, by post id, each post's by time then id.
    pub files: HashMap<PostId, Vec<FileRecord>>,
    /// Current reactions by post id, oldest first.
    pub reactions: HashMap<PostId, Vec<ReactionRecord>>,
    /// Earlier versions by post id, oldest first.
    pub versions: HashMap<PostId, Vec<VersionRecord>>,
}

impl ChannelView {
    /// Reads the channel's content from the catalog.
    pub fn load(catalog: &Catalog, channel: Channel) -> Result<ChannelView, ViewError> {
        let content = catalog.channel_content(&channel.record.id)?;
        ChannelView::from_content(channel, content)
    }

    pub fn from_content(
        channel: Channel,
        content: ChannelContent,
    ) -> Result<ChannelView, ViewError> {
        let ChannelContent {
            posts: records,
            files: file_records,
            reactions: reaction_records,
            versions: version_records,
            members: member_records,
        } = content;
        let mut members = Vec::with_capacity(member_records.len());
        for m in member_records {
            members.push(parse(&m.json, || {
                format!("member {} of channel {}", m.user_id, channel.record.id)
            })?);
        }
        let (live, unseen): (Vec<PostRecord>, Vec<PostRecord>) =
            records.into_iter().partition(|p| p.seen_live);
        let posts = live.into_iter().map(Post::from_record).collect();
        let mut files = group_by_post(file_records, |f| &f.post_id);
        for list in files.values_mut() {
            list.sort_by(|a, b| (a.create_at, &a.id).cmp(&(b.create_at, &b.id)));
        }
        Ok(ChannelView {
            channel,
            members,
            posts,
            unseen,
            files,
            reactions: group_by_post(reaction_records, |r| &r.post_id),
            versions: group_by_post(version_records, |v| &v.post_id),
        })
    }

    /// Replies of each root among the posts seen alive (root id → reply ids, oldest first).
    pub fn replies_by_root(&self) -> HashMap<&str, Vec<&str>> {
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        for p in &self.posts {
            if !p.record.root_id.is_empty() {
                out.entry(p.record.root_id.as_str())
                    .or_default()
                    .push(p.id());
            }
        }
        out
    }
}

/// Some posts of a channel with their rows, as [`ChannelView`] holds them (files by time
/// then id, reactions oldest first, versions oldest first), for a build that reads a page's
/// posts at a time.
#[derive(Debug, Clone, Default)]
pub struct PostsView {
    /// Oldest first, then by id.
    pub posts: Vec<Post>,
    pub files: HashMap<PostId, Vec<FileRecord>>,
    pub reactions: HashMap<PostId, Vec<ReactionRecord>>,
    pub versions: HashMap<PostId, Vec<VersionRecord>>,
}

impl PostsView {
    /// Reads the posts of `ids` (seen alive or not: the caller chose them) and their rows.
    pub fn load(catalog: &Catalog, ids: &[&PostId]) -> Result<PostsView, ViewError> {
        let PostsContent {
            posts,
            files,
            reactions,
            versions,
        } = catalog.load_posts_content(ids)?;
        let mut files = group_by_post(files, |f| &f.post_id);
        for list in files.values_mut() {
            list.sort_by(|a, b| (a.create_at, &a.id).cmp(&(b.create_at, &b.id)));
        }
        Ok(PostsView {
            posts: posts.into_iter().map(Post::from_record).collect(),
            files,
            reactions: group_by_post(reactions, |r| &r.post_id),
            versions: group_by_post(versions, |v| &v.post_id),
        })
    }
}

fn group_by_post<T>(rows: Vec<T>, post: impl Fn(&T) -> &PostId) -> HashMap<PostId, Vec<T>> {
    let mut map: HashMap<PostId, Vec<T>> = HashMap::new();
    for row in rows {
        map.entry(post(&row).clone()).or_default().push(row);
    }
    map
}

/// Teams that were ever selected, by name.
pub fn load_teams(catalog: &Catalog) -> Result<Vec<Team>, ViewError> {
    catalog
        .load_teams()?
        .into_iter()
        .map(|record| {
            let object = parse(&record.json, || format!("team {}", record.name))?;
            Ok(Team { record, object })
        })
        .collect()
}

/// Channels that were ever archived, by team, then type, then name.
pub fn load_channels(catalog: &Catalog) -> Result<Vec<Channel>, ViewError> {
    catalog
        .load_channels()?
        .into_iter()
        .map(Channel::from_record)
        .collect()
}

/// The posts of a channel seen alive, oldest first (no files, reactions or versions: what
/// a page plan needs).
pub fn load_posts(catalog: &Catalog, channel_id: &ChannelId) -> Result<Vec<Post>, ViewError> {
    let mut posts = Vec::new();
    catalog.load_posts(channel_id, |p| {
        if p.seen_live {
            posts.push(Post::from_record(p));
        }
        Ok::<_, ViewError>(())
    })?;
    Ok(posts)
}

/// Every user the archive knows, by id.
pub fn load_users(catalog: &Catalog) -> Result<Vec<User>, ViewError> {
    catalog
        .load_users()?
        .into_iter()
        .map(|record| {
            let object = parse(&record.json, || format!("user {}", record.id))?;
            Ok(User { record, object })
        })
        .collect()
}

/// Current members of a channel, in the server's order (without its posts).
pub fn load_channel_members(
    catalog: &Catalog,
    channel_id: &ChannelId,
) -> Result<Vec<object::ChannelMember>, ViewError> {
    let mut members = Vec::new();
    catalog.load_channel_members(channel_id, |m| {
        members.push(parse(&m.json, || {
            format!("member {} of channel {channel_id}", m.user_id)
        })?);
        Ok::<_, ViewError>(())
    })?;
    Ok(members)
}

/// Current members of a team, in the server's order.
pub fn load_team_members(
    catalog: &Catalog,
    team_id: &TeamId,
) -> Result<Vec<object::TeamMember>, ViewError> {
    let mut members = Vec::new();
    catalog.load_team_members(team_id, |m| {
        members.push(parse(&m.json, || {
            format!("member {} of team {team_id}", m.user_id)
        })?);
        Ok::<_, ViewError>(())
    })?;
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, root: &str, json: &str) -> PostRecord {
        PostRecord {
            id: id.into(),
            root_id: root.into(),
            user_id: "u".into(),
            create_at: 0,
            update_at: 0,
            edit_at: 0,
            delete_at: 0,
            seen_live: true,
            kind: String::new(),
            message: String::new(),
            json: json.into(),
        }
    }

    #[test]
    fn post_extras_read_as_the_stored_json_has_them() {
        let p = Post::from_record(record(
            "p1",
            "",
            r#"{"id":"p1","is_pinned":true,"file_ids":["f1",7,"f2"],
               "props":{"override_username":"ci","from_webhook":"true",
                        "attachments":[{"title":"T","fields":[{"title":"a","value":3,"short":true}]},"x"]},
               "metadata":{"reactions":[{"user_id":"u2","emoji_name":"+1"},{"user_id":5}]}}"#,
        ));
        assert!(p.is_pinned());
        assert_eq!(p.file_ids(), ["f1", "f2"]);
        assert_eq!(p.override_username(), Some("ci"));
        assert!(p.from_integration());
        let cards = p.attachments().unwrap();
        assert_eq!(cards.len(), 2, "a card that is not an object still shows");
        assert_eq!(cards[0].title, "T");
        assert_eq!(
            cards[0].fields,
            Some(vec![AttachmentField {
                title: "a".into(),
                value: "3".into(),
                short: true
            }])
        );
        assert_eq!(cards[1], MessageAttachment::default());
        assert_eq!(
            p.listed_reactions(),
            [("u2".into(), "+1".into()), (String::new(), String::new())]
        );
        let fields = p.stored_fields(&["props", "missing", "id"]);
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["props", "id"]);
    }

    #[test]
    fn odd_extras_read_as_defaults() {
        let p = Post::from_record(record(
            "p1",
            "",
            r#"{"is_pinned":"yes","file_ids":"f1","props":[1],"metadata":3}"#,
        ));
        assert!(!p.is_pinned() && p.file_ids().is_empty() && p.props().is_none());
        assert!(p.listed_reactions().is_empty() && p.attachments().is_none());
        assert!(!Post::from_record(record("p2", "", "not json")).is_pinned());
    }

    #[test]
    fn threads_hang_replies_under_roots_that_are_present_and_are_roots() {
        let posts: Vec<Post> = [
            record("a", "", "{}"),
            record("b", "a", "{}"),
            record("c", "gone", "{}"),
            record("d", "b", "{}"),
            record("e", "a", "{}"),
        ]
        .into_iter()
        .map(Post::from_record)
        .collect();
        let t = Threads::of(&posts);
        assert_eq!(t.is_root, [true, false, true, true, false]);
        assert_eq!(t.replies[0], [1, 4]);
        assert!(t.replies[1].is_empty() && t.replies[3].is_empty());
    }
}
