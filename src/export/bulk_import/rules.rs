//! The server's import rules (`../shared/mattermost-import.md` §2, §6) as plain functions:
//! each takes what the archive holds and returns what the bulk-import format can carry,
//! saying why when it had to change something. No I/O, no catalog: unit-tested on literals.
//!
//! Invariant: every value these functions return passes the matching check in
//! [`super::validate`]; the writer's self-check relies on it.

use std::collections::HashSet;

/// Default `maxPostSize` of current servers, in runes (65535 bytes / 4).
pub const MAX_POST_RUNES: usize = 16_383;
/// `file_ids` of a post must fit 300 runes: at most 10 ids.
pub const MAX_FILES_PER_POST: usize = 10;
pub const MAX_NAME_BYTES: usize = 64;
pub const MAX_DISPLAY_NAME_RUNES: usize = 64;
pub const MAX_TEAM_DESCRIPTION_BYTES: usize = 255;
pub const MAX_HEADER_RUNES: usize = 1024;
pub const MAX_PURPOSE_RUNES: usize = 250;
pub const MAX_EMAIL_BYTES: usize = 128;
pub const MAX_USER_NAME_RUNES: usize = 64;
pub const MAX_POSITION_RUNES: usize = 128;
/// Group channels hold 3 to 8 members (`ChannelGroupMinUsers`/`MaxUsers`).
pub const GROUP_MEMBERS: std::ops::RangeInclusive<usize> = 3..=8;
/// Default `TeamSettings.MaxUsersPerTeam`; more members stop the import unless raised.
pub const DEFAULT_MAX_USERS_PER_TEAM: usize = 50;
/// A file name is one path component on every file system the server may use.
const MAX_FILE_NAME_BYTES: usize = 200;

/// Team names may not start with these (prefix test, `IsReservedTeamName`).
pub const RESERVED_TEAM_PREFIXES: &[&str] = &[
    "admin",
    "api",
    "channel",
    "claim",
    "error",
    "files",
    "help",
    "landing",
    "login",
    "mfa",
    "oauth",
    "plug",
    "plugins",
    "post",
    "signup",
    "boards",
    "playbooks",
];
/// Usernames the server refuses (`IsValidUsername`).
pub const RESERVED_USERNAMES: &[&str] = &["all", "channel", "matterbot", "system"];
/// Post types `Post.IsValid` accepts (besides `custom_*`).
pub const ALLOWED_POST_TYPES: &[&str] = &[
    "",
    "slack_attachment",
    "system_generic",
    "system_join_leave",
    "system_join_channel",
    "system_guest_join_channel",
    "system_leave_channel",
    "system_join_team",
    "system_leave_team",
    "system_auto_responder",
    "system_add_remove",
    "system_add_to_channel",
    "system_add_guest_to_chan",
    "system_remove_from_channel",
    "system_move_channel",
    "system_add_to_team",
    "system_remove_from_team",
    "system_header_change",
    "system_purpose_change",
    "system_displayname_change",
    "system_convert_channel",
    "system_channel_deleted",
    "system_channel_restored",
    "system_change_chan_privacy",
    "add_bot_teams_channels",
    "reminder",
    "me",
    "system_wrangler",
    "system_gm_to_channel",
];
/// `props` keys that hold ids of the source server's users, posts or channels: they would
/// dangle (or point at someone else) on the target.
pub const SOURCE_ID_PROPS: &[&str] = &[
    "addedUserId",
    "userId",
    "removedUserId",
    "previewed_post",
    "channel_mentions",
    "remote_id",
    "post_id",
    "root_id",
    "user_activity_posts",
];

pub fn rune_len(s: &str) -> usize {
    s.chars().count()
}

/// The first `max` runes of `s`.
pub fn truncate_runes(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$`, at least 2 bytes.
pub fn is_valid_team_name(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.len() < 2 || b.len() > MAX_NAME_BYTES || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let inner = &name[1..name.len() - 1];
    inner.bytes().all(|c| alnum(&c) || c == b'-') || inner.trim_matches(alnum_char) == "__"
}

fn alnum_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub fn has_reserved_team_prefix(name: &str) -> bool {
    RESERVED_TEAM_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$`, ≤ 64 bytes, and not shaped like a DM name
/// (`<26>__<26>`) or a GM name (40 hex digits), which `Channel.IsValid` refuses.
pub fn is_valid_channel_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_BYTES || !alnum_char(b[0] as char) {
        return false;
    }
    if !name
        .bytes()
        .all(|c| alnum_char(c as char) || c == b'-' || c == b'_')
    {
        return false;
    }
    let dm_like = b.len() == 54 && &name[26..28] == "__";
    let gm_like = b.len() == 40 && name.bytes().all(|c| c.is_ascii_hexdigit());
    !dm_like && !gm_like
}

/// 1–64 bytes of `[a-z0-9.\-_]`, not a reserved word.
pub fn is_valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|c| alnum_char(c as char) || matches!(c, b'.' | b'-' | b'_'))
        && !RESERVED_USERNAMES.contains(&name)
}

/// `^[a-zA-Z0-9+_-]{1,64}$`: emoji and reaction names.
pub fn is_valid_emoji_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'_' | b'-'))
}

/// Lower-cases and replaces every byte outside `keep` by `-`, squeezing runs.
fn slug(name: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.to_lowercase().chars() {
        if keep(c) {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out
}

/// Makes `candidate` unique among `taken` by a numeric suffix, within 64 bytes.
fn unique(candidate: String, taken: &HashSet<String>, valid: impl Fn(&str) -> bool) -> String {
    if !taken.contains(&candidate) && valid(&candidate) {
        return candidate;
    }
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            format!(
                "{}{suffix}",
                truncate_bytes(&candidate, MAX_NAME_BYTES - suffix.len())
            )
        })
        .find(|c| !taken.contains(c) && valid(c))
        .expect("some suffix is free")
}

/// The team name to write: lower case, only the allowed characters, no reserved prefix
/// (`team-` is put in front), unique among `taken`.
pub fn plan_team_name(name: &str, taken: &HashSet<String>) -> String {
    let mut s = slug(name, alnum_char);
    s = s.trim_matches('-').to_owned();
    if has_reserved_team_prefix(&s) {
        s = format!("team-{s}");
    }
    if s.len() < 2 {
        s = format!("team-{s}").trim_matches('-').to_owned();
        if s.len() < 2 {
            s = "team".into();
        }
    }
    let s = truncate_bytes(&s, MAX_NAME_BYTES)
        .trim_end_matches('-')
        .to_owned();
    unique(s, taken, |c| {
        is_valid_team_name(c) && !has_reserved_team_prefix(c)
    })
}

/// The channel name to write: lower case, allowed characters, not DM/GM-shaped, unique
/// within its team (`taken`).
pub fn plan_channel_name(name: &str, taken: &HashSet<String>) -> String {
    let mut s = slug(name, |c| alnum_char(c) || c == '_')
        .trim_matches(|c| c == '-' || c == '_')
        .to_owned();
    if s.is_empty() {
        s = "channel".into();
    }
    let mut s = truncate_bytes(&s, MAX_NAME_BYTES).to_owned();
    if !is_valid_channel_name(&s) {
        // DM/GM-shaped: a prefix makes it neither.
        s = truncate_bytes(&format!("c-{s}"), MAX_NAME_BYTES).to_owned();
    }
    unique(s, taken, is_valid_channel_name)
}

/// The username to write: lower case, allowed characters, not reserved, unique.
pub fn plan_username(name: &str, taken: &HashSet<String>) -> String {
    let keep = |c: char| alnum_char(c) || matches!(c, '.' | '_');
    let mut s = slug(name, keep).trim_matches('-').to_owned();
    if s.is_empty() {
        s = "user".into();
    }
    if RESERVED_USERNAMES.contains(&s.as_str()) {
        s = format!("{s}-user");
    }
    let s = truncate_bytes(&s, MAX_NAME_BYTES).to_owned();
    unique(s, taken, is_valid_username)
}

/// Syntax the server's `IsValidEmail` accepts for what we write: one `@`, a non-empty local
/// part and domain, no spaces, angle brackets or quotes, lower case, ≤ 128 bytes.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= MAX_EMAIL_BYTES
        && email == email.to_lowercase()
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','))
}

/// Is `domain` usable for placeholder addresses (`--email-domain`)?
pub fn is_valid_email_domain(domain: &str) -> bool {
    is_valid_email(&format!("x@{domain}")) && domain.contains('.')
}

/// The e-mail to write: the archived one lower-cased when valid and not yet taken, else a
/// placeholder `<username>@<domain>`. Returns the address and whether it is a placeholder.
pub fn plan_email(
    archived: &str,
    username: &str,
    domain: &str,
    taken: &HashSet<String>,
) -> (String, bool) {
    let lower = archived.trim().to_lowercase();
    if is_valid_email(&lower) && !taken.contains(&lower) {
        return (lower, false);
    }
    let mut n = 1;
    loop {
        let local = if n == 1 {
            username.to_owned()
        } else {
            format!("{username}+{n}")
        };
        let candidate = format!("{local}@{domain}");
        if !taken.contains(&candidate) {
            return (candidate, true);
        }
        n += 1;
    }
}

/// Splits a message into parts of at most `max` runes, cutting at the last newline or space
/// of a part where there is one, so words survive. Never returns an empty list.
pub fn split_message(message: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = message;
    while rune_len(rest) > max {
        let hard = truncate_runes(rest, max);
        let cut = hard
            .rfind('\n')
            .or_else(|| hard.rfind(' '))
            .filter(|&at| at > hard.len() / 2)
            .map_or(hard.len(), |at| at + 1);
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    parts.push(rest);
    parts
}

/// Removes the `props` keys that carry source-server ids; returns the keys removed.
pub fn scrub_props(props: &mut serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let mut removed = Vec::new();
    for key in SOURCE_ID_PROPS {
        if props.remove(*key).is_some() {
            removed.push((*key).to_owned());
        }
    }
    removed
}

pub fn is_allowed_post_type(kind: &str) -> bool {
    ALLOWED_POST_TYPES.contains(&kind) || kind.starts_with("custom_")
}

/// Reply times made unique and not older than the root: each becomes
/// `max(own, root, previous + 1)`. Input in thread order; returns the new times.
pub fn plan_reply_times(root_create_at: i64, replies: &[i64]) -> Vec<i64> {
    let mut previous: Option<i64> = None;
    replies
        .iter()
        .map(|&at| {
            let mut t = at.max(root_create_at);
            if let Some(p) = previous {
                t = t.max(p + 1);
            }
            previous = Some(t);
            t
        })
        .collect()
}

/// A reaction's time: not before its post (the server refuses older ones) and never 0.
pub fn plan_reaction_time(reaction_at: i64, post_at: i64) -> i64 {
    reaction_at.max(post_at)
}

/// The name a file gets in the zip (its visible name on the target): the archived name
/// made one safe path component. `../../x` becomes `.._.._x`, `a/b` becomes `a_b`.
pub fn plan_file_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    if s.trim_matches('.').is_empty() {
        s = format!("file{}", s.replace('.', "_"));
    }
    if s.len() > MAX_FILE_NAME_BYTES {
        // Keep the extension, which decides how the target shows the file.
        let ext = s
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| e.len() <= 16)
            .unwrap_or("");
        let stem = truncate_bytes(&s, MAX_FILE_NAME_BYTES - ext.len() - 1);
        s = if ext.is_empty() {
            stem.to_owned()
        } else {
            format!("{stem}.{ext}")
        };
    }
    s
}

/// The target's accounts from `--existing-users`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExistingAccounts {
    /// Lower case.
    pub usernames: HashSet<String>,
    /// Lower case; only the JSON of mmctl has them. New users must not reuse one.
    pub emails: HashSet<String>,
}

/// Parses `--existing-users`: usernames one per line (blank lines and `#` comments
/// ignored), or the JSON array `mmctl user list --all --json` prints.
pub fn parse_existing_users(text: &str) -> Result<ExistingAccounts, String> {
    let trimmed = text.trim_start();
    let mut accounts = ExistingAccounts::default();
    if trimmed.starts_with('[') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| format!("not valid JSON: {e}"))?;
        let items = value.as_array().expect("starts with [");
        for (i, item) in items.iter().enumerate() {
            match item.get("username") {
                Some(serde_json::Value::String(name)) if !name.is_empty() => {
                    accounts.usernames.insert(name.to_lowercase());
                }
                _ => return Err(format!("item {i} has no string \"username\"")),
            }
            if let Some(email) = item.get("email").and_then(serde_json::Value::as_str)
                && !email.is_empty()
            {
                accounts.emails.insert(email.to_lowercase());
            }
        }
        return Ok(accounts);
    }
    accounts.usernames = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_lowercase)
        .collect();
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> HashSet<String> {
        HashSet::new()
    }

    #[test]
    fn team_names_are_lower_case_and_avoid_reserved_prefixes() {
        assert_eq!(plan_team_name("Operations", &none()), "operations");
        assert_eq!(plan_team_name("helpdesk", &none()), "team-helpdesk");
        assert_eq!(plan_team_name("Files Team!", &none()), "team-files-team");
        assert_eq!(plan_team_name("a", &none()), "team-a");
        let taken: HashSet<String> = ["eng".to_string()].into();
        assert_eq!(plan_team_name("ENG", &taken), "eng-2");
        assert!(!is_valid_team_name("Eng"));
        assert!(is_valid_team_name("my__team"));
        assert!(!is_valid_team_name("-x"));
        let long = "x".repeat(80);
        assert_eq!(plan_team_name(&long, &none()).len(), 64);
    }

    #[test]
    fn channel_names_are_lower_case_and_not_dm_or_gm_shaped() {
        assert_eq!(plan_channel_name("Off-Topic", &none()), "off-topic");
        assert_eq!(plan_channel_name("town-square", &none()), "town-square");
        let dm = format!("{}__{}", "a".repeat(26), "b".repeat(26));
        assert!(!is_valid_channel_name(&dm));
        let planned = plan_channel_name(&dm, &none());
        assert!(is_valid_channel_name(&planned), "{planned}");
        let gm = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(plan_channel_name(gm, &none()), format!("c-{gm}"));
        assert_eq!(plan_channel_name("Ünïcode ✓", &none()), "n-code");
    }

    #[test]
    fn usernames_are_lower_case_valid_and_unique() {
        assert_eq!(plan_username("Alice", &none()), "alice");
        assert_eq!(plan_username("all", &none()), "all-user");
        let taken: HashSet<String> = ["bob".to_string()].into();
        assert_eq!(plan_username("BOB", &taken), "bob-2");
        assert_eq!(plan_username("a b", &none()), "a-b");
    }

    #[test]
    fn emails_are_kept_when_valid_else_placeholders() {
        let (e, placeholder) = plan_email("Alice@Example.COM", "alice", "restore.invalid", &none());
        assert_eq!((e.as_str(), placeholder), ("alice@example.com", false));
        let (e, placeholder) = plan_email("", "bob", "restore.invalid", &none());
        assert_eq!((e.as_str(), placeholder), ("bob@restore.invalid", true));
        let taken: HashSet<String> = ["x@y.org".to_string(), "carol@d.org".to_string()].into();
        assert_eq!(
            plan_email("X@y.org", "carol", "d.org", &taken).0,
            "carol+2@d.org"
        );
        assert!(!is_valid_email("a b@c.d"));
        assert!(!is_valid_email_domain("no spaces.org x"));
        assert!(is_valid_email_domain("example.org"));
    }

    #[test]
    fn long_messages_split_at_word_boundaries_within_the_limit() {
        let text = "word ".repeat(10);
        let parts = split_message(&text, 12);
        assert!(parts.iter().all(|p| rune_len(p) <= 12), "{parts:?}");
        assert_eq!(parts.concat(), text);
        assert_eq!(parts[0], "word word ");
        // Runes, not bytes.
        let parts = split_message("ééééé", 2);
        assert_eq!(parts, ["éé", "éé", "é"]);
        assert_eq!(split_message("", 5), [""]);
    }

    #[test]
    fn reply_times_become_unique_and_not_older_than_the_root() {
        assert_eq!(
            plan_reply_times(100, &[150, 150, 151, 90]),
            [150, 151, 152, 153]
        );
        assert_eq!(plan_reply_times(100, &[90]), [100]);
        assert_eq!(plan_reaction_time(0, 100), 100);
        assert_eq!(plan_reaction_time(120, 100), 120);
    }

    #[test]
    fn props_lose_source_ids_and_keep_attachments() {
        let mut props =
            serde_json::json!({"addedUserId": "x", "attachments": [1], "previewed_post": "p"})
                .as_object()
                .unwrap()
                .clone();
        let removed = scrub_props(&mut props);
        assert_eq!(removed, ["addedUserId", "previewed_post"]);
        assert!(props.contains_key("attachments"));
        assert_eq!(props.len(), 1);
    }

    #[test]
    fn hostile_file_names_become_one_safe_component() {
        assert_eq!(plan_file_name("../../x"), ".._.._x");
        assert_eq!(plan_file_name("a/b"), "a_b");
        assert_eq!(plan_file_name(".."), "file__");
        assert_eq!(plan_file_name(""), "file");
        assert_eq!(plan_file_name("ok name.png"), "ok name.png");
        let long = format!("{}.pdf", "n".repeat(300));
        let planned = plan_file_name(&long);
        assert!(planned.len() <= 200 && planned.ends_with(".pdf"));
    }

    #[test]
    fn emoji_names_are_ascii_shortcodes() {
        assert!(is_valid_emoji_name("+1"));
        assert!(is_valid_emoji_name("thumbs_up-2"));
        assert!(!is_valid_emoji_name("👍"));
        assert!(!is_valid_emoji_name(":smile:"));
        assert!(!is_valid_emoji_name(&"a".repeat(65)));
    }

    #[test]
    fn existing_users_parse_from_lines_or_mmctl_json() {
        let lines = parse_existing_users("# target\nAlice\n\n bob \n").unwrap();
        assert_eq!(
            lines.usernames,
            ["alice".to_string(), "bob".to_string()].into()
        );
        let json =
            parse_existing_users(r#"[{"id":"x","username":"Carol","email":"C@x.org"}]"#).unwrap();
        assert_eq!(json.usernames, ["carol".to_string()].into());
        assert_eq!(json.emails, ["c@x.org".to_string()].into());
        assert!(
            parse_existing_users(r#"[{"id":"x"}]"#)
                .unwrap_err()
                .contains("item 0")
        );
    }

    #[test]
    fn post_types_follow_the_allow_list() {
        assert!(is_allowed_post_type(""));
        assert!(is_allowed_post_type("system_join_channel"));
        assert!(is_allowed_post_type("custom_poll"));
        assert!(!is_allowed_post_type("system_ephemeral"));
    }
}
