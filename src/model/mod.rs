//! Domain types shared by every layer: id newtypes and the small enums that name Mattermost
//! concepts. No I/O here and no dependency on other modules. May import: nothing of the
//! crate.

pub mod emoji;
pub mod naming;
pub mod object;

use std::fmt;

use serde::{Deserialize, Serialize};

/// An id newtype: the server's id text under a type that says whose id it is, so a channel id
/// cannot be passed where a post id is meant. Serialized as the bare string (`transparent`),
/// so JSON in and out is unchanged. It reads as `str` (`Deref`, `Borrow<str>`, comparisons
/// with text) because ids end up in SQL, paths and messages as text; `catalog` gives it the
/// SQL conversions (this module imports nothing).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

id_type!(
    /// A team's 26-character id.
    TeamId
);
id_type!(
    /// A channel's 26-character id (any channel type).
    ChannelId
);
id_type!(
    /// A post's 26-character id; replies and roots alike.
    PostId
);
id_type!(
    /// An uploaded file's id (the attachment, not its bytes).
    FileId
);
id_type!(
    /// A user's id; bots are users too.
    UserId
);
id_type!(
    /// A custom emoji's id.
    EmojiId
);

/// A blob in the content-addressed store: the lowercase hex BLAKE3 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobId(String);

impl BlobId {
    /// Accepts only a well-formed hash, because the id becomes a path under the archive.
    pub fn parse(hex: &str) -> Option<BlobId> {
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| BlobId(hex.to_owned()))
    }

    pub fn from_hash(hash: &blake3::Hash) -> BlobId {
        BlobId(hash.to_hex().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored blob as rows record it: its id and its own size in bytes (the size of the bytes
/// the hash was taken over, whatever form a backend keeps them in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub id: BlobId,
    pub size: u64,
}

/// Appended to a storage error caused by a full disk (before the OS's cause, which the error
/// chain prints next). Here because `catalog` and `blobs` both say it and may not import each
/// other.
pub const DISK_FULL_HINT: &str = " (the disk holding the archive is full: free space, then run `matterbak sync` again; everything committed so far is kept and consistent)";

/// Mattermost's channel types. Unknown types are kept so newer servers' channels still back up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChannelType {
    Public,
    Private,
    Direct,
    Group,
    Other(String),
}

impl ChannelType {
    pub fn from_code(code: &str) -> ChannelType {
        match code {
            "O" => ChannelType::Public,
            "P" => ChannelType::Private,
            "D" => ChannelType::Direct,
            "G" => ChannelType::Group,
            other => ChannelType::Other(other.to_owned()),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ChannelType::Public => "O",
            ChannelType::Private => "P",
            ChannelType::Direct => "D",
            ChannelType::Group => "G",
            ChannelType::Other(code) => code,
        }
    }

    /// Team channels are the ones a team owns; direct and group channels live outside teams.
    pub fn is_team_channel(&self) -> bool {
        matches!(self, ChannelType::Public | ChannelType::Private)
    }

    /// One word for the kind: `public`, `private`, `direct`, `group`, `other`.
    pub fn word(&self) -> &'static str {
        match self {
            ChannelType::Public => "public",
            ChannelType::Private => "private",
            ChannelType::Direct => "direct",
            ChannelType::Group => "group",
            ChannelType::Other(_) => "other",
        }
    }

    /// The kind as a noun: `public channel`, `private channel`, `direct messages`, `group
    /// messages`, `channel`.
    pub fn noun(&self) -> &'static str {
        match self {
            ChannelType::Public => "public channel",
            ChannelType::Private => "private channel",
            ChannelType::Direct => "direct messages",
            ChannelType::Group => "group messages",
            ChannelType::Other(_) => "channel",
        }
    }
}

/// The other party of a direct channel, derived from its name `<id>__<id>` (ids sorted).
/// Returns `me` for the self-DM. None when the name is not a DM name.
pub fn dm_other_user(channel_name: &str, me: &UserId) -> Option<UserId> {
    let (a, b) = channel_name.split_once("__")?;
    if a.is_empty() || b.is_empty() || b.contains("__") {
        return None;
    }
    if a == me.as_str() {
        Some(UserId::from(b))
    } else if b == me.as_str() {
        Some(UserId::from(a))
    } else {
        None
    }
}

/// How a run (a sync, or an import of one backup) ended, as the run's record and report say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything selected is archived. (The default: a run is ok until something says
    /// otherwise.)
    #[default]
    Ok,
    /// Finished, but some items failed (listed); the next run retries them.
    Partial,
    /// Stopped on request before finishing.
    Interrupted,
    /// Ended by an error; only a run's record says so (the caller gets the error).
    Failed,
}

impl Outcome {
    /// The word stored in the catalog and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Interrupted => "interrupted",
            Outcome::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Now, in the unit every stored time uses: milliseconds since the Unix epoch (Mattermost's).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_other_user_handles_self_and_foreign_names() {
        let me = UserId::from("aaa");
        assert_eq!(dm_other_user("aaa__bbb", &me), Some(UserId::from("bbb")));
        assert_eq!(dm_other_user("bbb__aaa", &me), Some(UserId::from("bbb")));
        assert_eq!(dm_other_user("aaa__aaa", &me), Some(UserId::from("aaa")));
        assert_eq!(dm_other_user("bbb__ccc", &me), None);
        assert_eq!(dm_other_user("town-square", &me), None);
    }

    #[test]
    fn blob_id_rejects_paths() {
        assert!(BlobId::parse(&"a".repeat(64)).is_some());
        assert!(BlobId::parse("../../etc/passwd").is_none());
        assert!(BlobId::parse(&"A".repeat(64)).is_none());
    }
}
