//! Server objects as the archive keeps them: the few fields of each object that the catalog
//! indexes, parsed from the raw JSON that is stored verbatim next to them. Every field the
//! server may omit has a default, because servers of different versions omit different
//! fields. Shared by every way in (`sync`, `import`) and by `catalog`, so none of them needs
//! the HTTP client; HTTP-only shapes (paged responses) stay in `mm::wire`. No I/O here.

use serde::Deserialize;

use super::{ChannelId, EmojiId, FileId, PostId, TeamId, UserId};
use serde_json::value::RawValue;

/// A server object: its exact bytes as sent plus the parsed fields we index.
#[derive(Debug)]
pub struct Raw<T> {
    pub raw: Box<RawValue>,
    pub value: T,
}

impl<T: serde::de::DeserializeOwned> Raw<T> {
    /// The typed view of an object, keeping its bytes. A top-level field of an unexpected
    /// type (null where a number belongs, a number sent as text) must not cost the object:
    /// the bytes are archived as they came, and the typed view is built without the
    /// offending fields, whose defaults then apply. Only an object that still does not
    /// parse (not an object, or a required field such as `id` unusable) is an error.
    pub fn parse(raw: Box<RawValue>) -> Result<Raw<T>, serde_json::Error> {
        let value = parse_lenient(raw.get())?;
        Ok(Raw { raw, value })
    }

    pub fn json(&self) -> &str {
        self.raw.get()
    }
}

/// The typed view of one object's JSON text, with the leniency of [`Raw::parse`]: a
/// top-level field of an unexpected type is left out (its default applies); only text that is
/// not an object, or lacks a usable required field, is an error. The exports read stored
/// objects through this, so they see each field exactly as sync and import indexed it.
pub fn parse_lenient<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    let strict = match serde_json::from_str(json) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(json) else {
        return Err(strict);
    };
    while !fields.is_empty() {
        let attempt = serde_json::Value::Object(fields.clone());
        match serde_path_to_error::deserialize::<_, T>(attempt) {
            Ok(value) => return Ok(value),
            Err(e) => {
                let culprit = match e.path().iter().next() {
                    Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
                    _ => return Err(strict),
                };
                if fields.remove(&culprit).is_none() {
                    return Err(strict); // a required field is missing: nothing to drop
                }
            }
        }
    }
    Err(strict)
}

/// Parses a JSON array of objects keeping each element's bytes.
pub fn parse_list<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<Vec<Raw<T>>, serde_json::Error> {
    let items: Vec<Box<RawValue>> = serde_json::from_slice(body)?;
    items.into_iter().map(Raw::parse).collect()
}

#[derive(Debug, Default, Deserialize, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    #[serde(default)]
    pub update_at: i64,
    #[serde(default)]
    pub delete_at: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub last_picture_update: i64,
    #[serde(default)]
    pub nickname: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub position: String,
    #[serde(default)]
    pub email: String,
    /// Space-separated system roles (`system_user system_admin`, `system_guest`).
    #[serde(default)]
    pub roles: String,
    #[serde(default)]
    pub locale: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub update_at: i64,
    #[serde(default)]
    pub delete_at: i64,
    #[serde(default)]
    pub last_team_icon_update: i64,
    #[serde(default)]
    pub description: String,
    /// `O` (open) or `I` (invite only).
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub allow_open_invite: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    #[serde(default)]
    pub team_id: TeamId,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub create_at: i64,
    #[serde(default)]
    pub update_at: i64,
    #[serde(default)]
    pub delete_at: i64,
    #[serde(default)]
    pub header: String,
    #[serde(default)]
    pub purpose: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TeamMember {
    pub user_id: UserId,
    /// Space-separated roles (`team_user team_admin`).
    #[serde(default)]
    pub roles: String,
    #[serde(default)]
    pub scheme_admin: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChannelMember {
    pub user_id: UserId,
    /// Space-separated roles (`channel_user channel_admin`).
    #[serde(default)]
    pub roles: String,
    #[serde(default)]
    pub scheme_admin: bool,
}

#[derive(Debug, Deserialize)]
pub struct Post {
    pub id: PostId,
    pub create_at: i64,
    #[serde(default)]
    pub update_at: i64,
    #[serde(default)]
    pub edit_at: i64,
    #[serde(default)]
    pub delete_at: i64,
    #[serde(default)]
    pub user_id: UserId,
    #[serde(default)]
    pub channel_id: ChannelId,
    #[serde(default)]
    pub root_id: PostId,
    #[serde(default)]
    pub original_id: PostId,
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub file_ids: Vec<FileId>,
    #[serde(default)]
    pub metadata: PostMetadata,
}

#[derive(Debug, Default, Deserialize)]
pub struct PostMetadata {
    #[serde(default)]
    pub files: Vec<Box<RawValue>>,
    #[serde(default)]
    pub reactions: Vec<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
pub struct FileInfo {
    pub id: FileId,
    #[serde(default)]
    pub user_id: UserId,
    #[serde(default)]
    pub post_id: PostId,
    #[serde(default)]
    pub channel_id: ChannelId,
    #[serde(default)]
    pub create_at: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub extension: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub mime_type: String,
}

#[derive(Debug, Deserialize)]
pub struct Reaction {
    pub user_id: UserId,
    pub emoji_name: String,
    #[serde(default)]
    pub create_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Emoji {
    pub id: EmojiId,
    pub name: String,
    #[serde(default)]
    pub creator_id: UserId,
    #[serde(default)]
    pub create_at: i64,
    #[serde(default)]
    pub update_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn fields_of_unexpected_types_fall_back_to_defaults_and_keep_the_bytes() {
        let json = r#"{"id":"u1","username":"bob","update_at":null,"last_picture_update":"soon","is_bot":1}"#;
        let user: Raw<User> = Raw::parse(raw(json)).unwrap();
        assert_eq!(user.json(), json);
        assert_eq!((user.value.id.as_str(), user.value.update_at), ("u1", 0));
        assert_eq!(
            (user.value.last_picture_update, user.value.is_bot),
            (0, false)
        );
    }

    #[test]
    fn an_unusable_required_field_is_still_an_error() {
        // `create_at` has no default: dropping it cannot help.
        assert!(Raw::<Post>::parse(raw(r#"{"id":"p1","create_at":"x"}"#)).is_err());
        assert!(Raw::<User>::parse(raw(r#"{"id":7,"username":"bob"}"#)).is_err());
        assert!(Raw::<User>::parse(raw(r#"["not an object"]"#)).is_err());
    }
}
