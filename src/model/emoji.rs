//! Mattermost's system emojis: the names the server keeps for them and the text each stands
//! for, from the server's own list (`system_emojis.txt`, whose header names the source). The
//! restore needs the names (the server's importer skips a custom emoji that takes one) and the
//! website the text (it shows `:name:` as Mattermost does); a crate's list of shortcodes differs
//! from the server's in both directions (`mattermost`, `thank you`, skin-tone spellings).
//!
//! May import: nothing of the crate.

use std::collections::HashMap;
use std::sync::OnceLock;

/// `model.SystemEmojis` of the server, one `name<TAB>value` a line after a `#` header: the
/// value is the emoji's code points in hex joined by `-`, or a word for an emoji the webapp
/// draws as an image (`mattermost`).
const SYSTEM_EMOJIS: &str = include_str!("system_emojis.txt");

fn entries() -> impl Iterator<Item = (&'static str, &'static str)> {
    SYSTEM_EMOJIS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('\t'))
}

fn table() -> &'static HashMap<&'static str, &'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| entries().collect())
}

/// Every name of the server's `model.SystemEmojis` (skin tones and Mattermost's own
/// `mattermost` included), in the source's order.
pub fn system_emoji_names() -> impl Iterator<Item = &'static str> {
    entries().map(|(name, _)| name)
}

/// A name the server keeps for a system emoji (`model.IsSystemEmojiName`).
pub fn is_system_emoji_name(name: &str) -> bool {
    table().contains_key(name)
}

/// The Unicode text of the system emoji `name`; `None` for a name the server does not know
/// and for one it draws as an image rather than as text (`mattermost`).
pub fn system_emoji_text(name: &str) -> Option<String> {
    table()
        .get(name)?
        .split('-')
        .map(|hex| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expectations typed from the server's emoji_data.go entries, not read from the file.
    #[test]
    fn text_of_plain_skin_toned_joined_and_image_emojis() {
        assert_eq!(system_emoji_text("smiley").as_deref(), Some("\u{1f603}"));
        assert_eq!(system_emoji_text("+1").as_deref(), Some("\u{1f44d}"));
        assert_eq!(
            system_emoji_text("+1_dark_skin_tone").as_deref(),
            Some("\u{1f44d}\u{1f3ff}")
        );
        assert_eq!(system_emoji_text("mattermost"), None);
        assert!(is_system_emoji_name("mattermost"));
        assert_eq!(system_emoji_text("parrot2"), None);
        assert_eq!(system_emoji_text(""), None);
    }
}
