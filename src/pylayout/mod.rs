//! The Python tool `matterbak`'s folder layout (0.4 and 0.5, which our `export` writes byte
//! for byte): its names and paths in both directions, shared by everything that writes,
//! reads or recognises it.
//!
//! ```text
//! teams/<team_id>__<team>.json            teams/<team_id>__<team>__members.json
//! teams/<team_id>__icon.<ext>             teams/<team_id>__<team>/   (its channels)
//! <channels>/<channel_id>__<name>.json    <channel_id>__<name>__members.json
//! <channels>/<channel_id>__<name>__threads.json
//! <channels>/<channel_id>__<name>/<YYYYmmdd-HHMMSSffffff>__<post_id>.json
//! <channels>/<channel_id>__<name>/files/<file_id>.json  and  files/<file_id>__<file name>
//! direct/...  groups/...  (same four entries per channel, see [`ChannelPlace`])
//! users/<user_id>__<username>.json        users/<user_id>__<username>__image.<ext>
//! emojis/<emoji_id>__<emoji>.json         emojis/<emoji_id>__<emoji>.<ext>
//! ```
//!
//! - [`paths`]: object → path, with server-controlled names made safe (`export` writes them);
//! - [`entry`]: path → what it holds and whose it is (`import` reads backups with it);
//! - the top-level names ([`TOP_DIRS`]) also tell `outdir` an earlier export data dir.
//!
//! May import: nothing of the crate (a leaf, like `zip` and `config`); `chrono` for the post
//! file names' local time, `blake3` for shortened names. Invariant: both directions use the
//! constants below, so a name changed here changes writer and reader together.

pub mod entry;
pub mod paths;

pub use entry::{Role, channel_export_name, channel_of, id_prefix, image_content_type, role};
pub use paths::{
    ChannelPaths, ChannelPlace, EmojiPaths, ImageExt, MAX_COMPONENT_BYTES, MAX_EXT_BYTES,
    MAX_ID_BYTES, TeamPaths, UserPaths, channel_paths, emoji_paths, image_extension,
    post_file_name, python_from_timestamp, safe_name, sanitize_name, team_paths, user_paths,
};

/// Top-level directories of the layout (Python's `dump.*_subdir`).
pub const TEAMS_DIR: &str = "teams";
pub const DIRECT_DIR: &str = "direct";
pub const GROUPS_DIR: &str = "groups";
pub const USERS_DIR: &str = "users";
pub const EMOJIS_DIR: &str = "emojis";
/// Every top-level name a data dir holds (README "Export layout"); nothing else is there.
pub const TOP_DIRS: [&str; 5] = [TEAMS_DIR, DIRECT_DIR, GROUPS_DIR, USERS_DIR, EMOJIS_DIR];
/// The subdirectory of a posts dir holding file infos and file contents.
pub const FILES_DIR: &str = "files";

/// Joins the parts of a name (`make_filename`): `<id>__<name>`.
pub const SEP: &str = "__";
/// The extension of every stored object (the rest are images and attachments).
pub const JSON: &str = ".json";
/// Labels appended to a team's or channel's name for its member list and threads file, to
/// a username for the user's picture, and to a team id for the team's icon.
pub const MEMBERS_LABEL: &str = "__members";
pub const THREADS_LABEL: &str = "__threads";
pub const IMAGE_LABEL: &str = "__image";
pub const ICON_LABEL: &str = "__icon";
/// [`MEMBERS_LABEL`] and [`THREADS_LABEL`] with [`JSON`]: how a reader tells those files.
pub const MEMBERS_SUFFIX: &str = "__members.json";
pub const THREADS_SUFFIX: &str = "__threads.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_their_labels_with_the_json_extension() {
        assert_eq!(MEMBERS_SUFFIX, format!("{MEMBERS_LABEL}{JSON}"));
        assert_eq!(THREADS_SUFFIX, format!("{THREADS_LABEL}{JSON}"));
        assert!(
            [MEMBERS_LABEL, THREADS_LABEL, IMAGE_LABEL, ICON_LABEL]
                .iter()
                .all(|label| label.starts_with(SEP))
        );
    }
}
