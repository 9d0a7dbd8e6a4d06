//! Stored server objects (the mock's "database rows").
//!
//! These are storage shapes, not wire shapes: secrets and blobs live here too, and
//! derived values (reply counts, metadata) are computed by `render` at response time.
//! Types whose wire form equals their storage form derive `Serialize` directly, with
//! fields in the Go struct order so responses look like the real server's.

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub username: String,
    pub email: String,
    pub nickname: String,
    pub first_name: String,
    pub last_name: String,
    pub position: String,
    pub roles: String,
    pub props: Map<String, Value>,
    pub last_picture_update: i64,
    pub locale: String,
    pub is_bot: bool,
    pub bot_description: String,
    /// `None` for accounts that cannot log in with a password (bots).
    pub password: Option<String>,
    /// The only TOTP code accepted when MFA is on.
    pub mfa_code: Option<String>,
    /// Uploaded picture; `None` means the server generates a default.
    pub avatar: Option<Vec<u8>>,
    /// Fields rendered as given instead of their typed value (a server sending a field of
    /// an unexpected type).
    pub raw_fields: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub struct Team {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub display_name: String,
    pub name: String,
    pub description: String,
    /// 'O' open, 'I' invite only.
    pub kind: char,
    pub company_name: String,
    pub allowed_domains: String,
    pub allow_open_invite: bool,
    pub last_team_icon_update: i64,
    pub icon: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TeamMember {
    pub team_id: String,
    pub user_id: String,
    pub roles: String,
    pub delete_at: i64,
    pub scheme_guest: bool,
    pub scheme_user: bool,
    pub scheme_admin: bool,
    pub explicit_roles: String,
    pub create_at: i64,
}

#[derive(Clone, Debug)]
pub struct Channel {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    /// Empty for direct and group channels.
    pub team_id: String,
    /// 'O', 'P', 'D' or 'G'.
    pub kind: char,
    pub display_name: String,
    pub name: String,
    pub header: String,
    pub purpose: String,
    pub last_post_at: i64,
    pub total_msg_count: i64,
    pub total_msg_count_root: i64,
    pub last_root_post_at: i64,
    pub creator_id: String,
}

impl Channel {
    pub fn is_direct_or_group(&self) -> bool {
        matches!(self.kind, 'D' | 'G')
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct NotifyProps {
    pub desktop: &'static str,
    pub email: &'static str,
    pub ignore_channel_mentions: &'static str,
    pub mark_unread: &'static str,
    pub push: &'static str,
}

impl Default for NotifyProps {
    fn default() -> Self {
        NotifyProps {
            desktop: "default",
            email: "default",
            ignore_channel_mentions: "default",
            mark_unread: "all",
            push: "default",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ChannelMember {
    pub channel_id: String,
    pub user_id: String,
    pub roles: String,
    pub last_viewed_at: i64,
    pub msg_count: i64,
    pub mention_count: i64,
    pub mention_count_root: i64,
    pub urgent_mention_count: i64,
    pub msg_count_root: i64,
    pub notify_props: NotifyProps,
    pub last_update_at: i64,
    pub scheme_guest: bool,
    pub scheme_user: bool,
    pub scheme_admin: bool,
    pub explicit_roles: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Reaction {
    pub user_id: String,
    pub post_id: String,
    pub emoji_name: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub remote_id: String,
    pub channel_id: String,
}

#[derive(Clone, Debug)]
pub struct Post {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub edit_at: i64,
    pub delete_at: i64,
    pub is_pinned: bool,
    pub user_id: String,
    pub channel_id: String,
    pub root_id: String,
    /// Set only on edit-history rows: the id of the post this was an old version of.
    pub original_id: String,
    pub message: String,
    pub kind: String,
    pub props: Map<String, Value>,
    pub file_ids: Vec<String>,
    /// Live reactions in creation order (removal deletes them).
    pub reactions: Vec<Reaction>,
}

impl Post {
    pub fn is_live(&self) -> bool {
        self.delete_at == 0
    }

    pub fn thread_root_id(&self) -> &str {
        if self.root_id.is_empty() {
            &self.id
        } else {
            &self.root_id
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FileInfo {
    pub id: String,
    pub user_id: String,
    pub post_id: String,
    pub channel_id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub name: String,
    pub extension: String,
    pub size: i64,
    pub mime_type: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub width: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub height: i64,
    pub has_preview_image: bool,
    pub mini_preview: Option<String>,
    pub remote_id: String,
    pub archived: bool,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// The stored bytes are gone (storage lost them): the info is served, the bytes 404.
    #[serde(skip)]
    pub bytes_lost: bool,
    /// Raw `Content-Disposition` bytes to send instead of the server's (hostile-server tests).
    #[serde(skip)]
    pub raw_disposition: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Emoji {
    pub id: String,
    pub creator_id: String,
    pub name: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    /// "png", "gif", ... — used as the image subtype when serving it.
    #[serde(skip)]
    pub format: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// A file to attach to a new post.
#[derive(Clone, Debug)]
pub struct NewFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub mime_type: String,
}

/// How a token was obtained; logout revokes only sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    PersonalAccess,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub user_id: String,
    pub kind: TokenKind,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}
