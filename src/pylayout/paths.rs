//! The write direction of the layout: the relative path (always `/`-separated) of every
//! exported object below the export root, named exactly as the Python tool `matterbak` 0.4.0
//! names them (`dump.make_filename`: the parts `[timestamp] id [name]` joined by `__`, an
//! empty name left out), so that the export of ordinary data is byte-identical to Python's.
//! The layout itself is drawn in the [module docs](super).
//!
//! May import: the layout's names in [`super`]; `chrono` and `blake3`.
//!
//! # Safe names (a bug of the Python tool that we fix)
//!
//! Every name and id comes from the server, and Python joins them into paths unchecked, so a
//! file named `../../x` escapes the data dir. Here every part is made safe first, by rules
//! that change nothing for ordinary names (then the part is borrowed, not copied):
//!
//! 1. **Characters** ([`sanitize_name`]): each `/`, `\`, NUL, C0 control (U+0001–U+001F),
//!    DEL (U+007F) and C1 control (U+0080–U+009F) becomes `_`. Everything else, including
//!    all other Unicode and the characters Windows reserves (`:*?"<>|`, common in file
//!    names such as `Screenshot 10:00.png`), is kept as Python keeps it.
//! 2. **Dot names**: a part that is exactly `.` becomes `_`, exactly `..` becomes `__`.
//!    A name always follows `<id>__`, so this matters for ids, which can stand alone as a
//!    component (a posts dir of a channel without name is just `<channel_id>`).
//! 3. **Ids** get rules 1 and 2 too; an empty id becomes `_` and an id longer than
//!    [`MAX_ID_BYTES`] is shortened like a long name (rule 4). Mattermost ids are 26 chars
//!    of `[a-z0-9]`, so real ids never change.
//! 4. **Length**: a path component must stay within [`MAX_COMPONENT_BYTES`] (255, the
//!    `NAME_MAX` of common file systems). If a name would push any component of its family
//!    over that, it is cut at a char boundary and `~` plus the first 8 hex digits of the
//!    BLAKE3 hash of the *original* (unsanitised) name is appended, so two long names that
//!    share a prefix stay distinct. A family is every entry that carries the same name: a
//!    channel's json, members, threads and posts dir; a team's json, members and channels
//!    dir; a user's json and image; an emoji's json and image. All entries of a family use
//!    the same cut, budgeted for the longest fixed suffix (`__members.json`; for images the
//!    longest extension, [`MAX_EXT_BYTES`]), so they still sort and match together. Python
//!    could not write such names at all (`ENAMETOOLONG`).
//! 5. **Image extensions** (server content types) get rule 1, are capped at
//!    [`MAX_EXT_BYTES`] like rule 4, and `json` becomes `json_` so an image can never
//!    overwrite the JSON file beside it (`emojis/<id>__<name>.json`).
//!
//! Invariants (tested for hostile names and ids): every path is relative, has no empty,
//! `.` or `..` component, no `\` or NUL, every component is at most 255 bytes, and each
//! entry lands directly in the directory the layout gives it. Distinct objects get distinct
//! paths because each component starts with the object's id, and Mattermost ids contain
//! neither `__` nor `.`; sanitising may map two names of the *same* object slot to one
//! spelling (`a/b` and `a\b` both give `a_b`), which is harmless because the id differs.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, TimeZone};

use super::{
    DIRECT_DIR, EMOJIS_DIR, FILES_DIR, GROUPS_DIR, ICON_LABEL, IMAGE_LABEL, JSON, MEMBERS_LABEL,
    MEMBERS_SUFFIX, SEP, TEAMS_DIR, THREADS_LABEL, THREADS_SUFFIX, USERS_DIR,
};

/// Longest path component written, in bytes (`NAME_MAX` on Linux, macOS and Windows).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Ids longer than this are shortened (never the case for Mattermost's 26-char ids); it
/// bounds the fixed part of every component so names always keep a usable budget.
pub const MAX_ID_BYTES: usize = 64;
/// Image extensions longer than this are shortened (`svg+xml` has 7, the longest image
/// subtype registered with IANA about 30).
pub const MAX_EXT_BYTES: usize = 32;

// A channel's name budget reserves `MEMBERS_SUFFIX`, which must cover the threads file too.
const _: () = assert!(MEMBERS_SUFFIX.len() == THREADS_SUFFIX.len());
/// `~` and 8 hex digits appended to a shortened name.
const HASH_SUFFIX_BYTES: usize = 9;

fn is_replaced(c: char) -> bool {
    matches!(c, '/' | '\\' | '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Rules 1 and 2 of the module docs: path separators and control characters become `_`, a
/// whole `.` / `..` becomes `_` / `__`. No length limit here, that depends on the
/// component the name ends up in.
pub fn sanitize_name(name: &str) -> Cow<'_, str> {
    match name {
        "." => Cow::Borrowed("_"),
        ".." => Cow::Borrowed("__"),
        _ => replace_unsafe_chars(name),
    }
}

/// Rule 1 alone.
fn replace_unsafe_chars(name: &str) -> Cow<'_, str> {
    if !name.chars().any(is_replaced) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .map(|c| if is_replaced(c) { '_' } else { c })
            .collect(),
    )
}

/// Rule 4: keep `name` within `max_bytes`, marking a cut with a hash of `original`.
fn fit<'a>(name: Cow<'a, str>, original: &str, max_bytes: usize) -> Cow<'a, str> {
    if name.len() <= max_bytes {
        return name;
    }
    let mut cut = max_bytes.saturating_sub(HASH_SUFFIX_BYTES);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = blake3::hash(original.as_bytes());
    let mut short = String::with_capacity(cut + HASH_SUFFIX_BYTES);
    short.push_str(&name[..cut]);
    short.push('~');
    short.push_str(&hash.to_hex()[..8]);
    Cow::Owned(short)
}

/// Rule 3: an id made safe to stand alone as a path component.
fn safe_id(id: &str) -> Cow<'_, str> {
    if id.is_empty() {
        return Cow::Borrowed("_");
    }
    fit(sanitize_name(id), id, MAX_ID_BYTES)
}

/// A name made safe and short enough that `reserved` more bytes still fit in a component.
pub fn safe_name<'a>(name: &'a str, reserved: usize) -> Cow<'a, str> {
    fit(
        sanitize_name(name),
        name,
        MAX_COMPONENT_BYTES.saturating_sub(reserved),
    )
}

/// `<id>` or `<id>__<name>` as `make_filename` joins them (an empty name is left out),
/// followed by `suffix`.
fn join(id: &str, name: &str, suffix: &str) -> String {
    let mut s = String::with_capacity(id.len() + SEP.len() + name.len() + suffix.len());
    s.push_str(id);
    if !name.is_empty() {
        s.push_str(SEP);
        s.push_str(name);
    }
    s.push_str(suffix);
    s
}

/// An image file extension from a server content type; only [`image_extension`] makes one,
/// so every extension in a path went through rule 5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageExt(String);

impl ImageExt {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Python stores an image as `.` + the content type after `image/` and skips (with a
/// message) anything else, so `None` means "write no image file". Unlike Python, parameters
/// (`; charset=…`) and surrounding blanks are dropped and the type is lowercased, so
/// `Image/PNG; q=1` gives `png` instead of a skipped image; then rule 5 applies.
pub fn image_extension(content_type: &str) -> Option<ImageExt> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let lower = essence.to_ascii_lowercase();
    let subtype = lower.strip_prefix("image/")?;
    // No dot rule: an extension always follows `<stem>.`, never stands alone.
    let ext = if subtype == "json" {
        Cow::Borrowed("json_")
    } else {
        replace_unsafe_chars(subtype)
    };
    Some(ImageExt(fit(ext, subtype, MAX_EXT_BYTES).into_owned()))
}

/// Paths of one team (from its internal `name`, as Python uses it, not `display_name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamPaths {
    /// `teams/<team_id>__<team>.json`
    pub json: String,
    /// `teams/<team_id>__<team>__members.json`
    pub members: String,
    /// `teams/<team_id>__<team>`: holds the team's channels. Python builds this one with an
    /// f-string, so unlike the others it keeps the `__` even for an empty team name.
    pub channels_dir: String,
    icon_stem: String,
}

impl TeamPaths {
    /// `teams/<team_id>__icon.<ext>`
    pub fn icon(&self, ext: &ImageExt) -> String {
        format!("{}.{}", self.icon_stem, ext.as_str())
    }
}

pub fn team_paths(team_id: &str, team_name: &str) -> TeamPaths {
    let id = safe_id(team_id);
    let name = safe_name(team_name, id.len() + SEP.len() + MEMBERS_SUFFIX.len());
    let members_name = format!("{name}{MEMBERS_LABEL}");
    TeamPaths {
        json: format!("{TEAMS_DIR}/{}", join(&id, &name, JSON)),
        members: format!("{TEAMS_DIR}/{}", join(&id, &members_name, JSON)),
        channels_dir: format!("{TEAMS_DIR}/{id}{SEP}{name}"),
        icon_stem: format!("{TEAMS_DIR}/{id}{ICON_LABEL}"),
    }
}

/// Which directory holds a channel's entries, and so what its name part is.
#[derive(Clone, Copy, Debug)]
pub enum ChannelPlace<'a> {
    /// An open or private channel: in the team's `channels_dir`, named by the channel's
    /// internal `name`.
    Team(&'a TeamPaths),
    /// A direct message channel: in `direct/`, named by the other user's username (the own
    /// username for a DM with oneself).
    Direct,
    /// A group message channel: in `groups/`, named by the other members' usernames, sorted
    /// by code point and joined by `__`, duplicates once (Python collects them in a set);
    /// `sync` works that name out when it selects the channel and the catalog keeps it as
    /// the channel's export name.
    Group,
}

/// The four entries of a channel plus its files dir.
///
/// Python creates `posts_dir` and `files_dir` even for a channel without posts or files,
/// so the caller makes them as directories to get the same tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelPaths {
    /// `<channels>/<channel_id>__<name>.json`
    pub json: String,
    /// `<channels>/<channel_id>__<name>__members.json`
    pub members: String,
    /// `<channels>/<channel_id>__<name>__threads.json`
    pub threads: String,
    /// `<channels>/<channel_id>__<name>`: the post files.
    pub posts_dir: String,
    /// `<posts_dir>/files`: file infos and contents.
    pub files_dir: String,
}

pub fn channel_paths(place: ChannelPlace<'_>, channel_id: &str, name: &str) -> ChannelPaths {
    let parent = match place {
        ChannelPlace::Team(team) => team.channels_dir.as_str(),
        ChannelPlace::Direct => DIRECT_DIR,
        ChannelPlace::Group => GROUPS_DIR,
    };
    let id = safe_id(channel_id);
    let name = safe_name(name, id.len() + SEP.len() + MEMBERS_SUFFIX.len());
    // Python's members/threads names are f"{name}__members", never empty, so an empty
    // channel name gives `<id>____members.json`.
    let members_name = format!("{name}{MEMBERS_LABEL}");
    let threads_name = format!("{name}{THREADS_LABEL}");
    let posts_dir = format!("{parent}/{}", join(&id, &name, ""));
    ChannelPaths {
        json: format!("{parent}/{}", join(&id, &name, JSON)),
        members: format!("{parent}/{}", join(&id, &members_name, JSON)),
        threads: format!("{parent}/{}", join(&id, &threads_name, JSON)),
        files_dir: format!("{posts_dir}/{FILES_DIR}"),
        posts_dir,
    }
}

impl ChannelPaths {
    /// `<posts_dir>/<YYYYmmdd-HHMMSSffffff>__<post_id>.json`, see [`post_file_name`].
    pub fn post<Tz: TimeZone>(&self, create_at_ms: i64, post_id: &str, tz: &Tz) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        format!(
            "{}/{}",
            self.posts_dir,
            post_file_name(create_at_ms, post_id, tz)
        )
    }

    /// `<files_dir>/<file_id>.json`: the file info.
    pub fn file_info(&self, file_id: &str) -> String {
        format!("{}/{}{JSON}", self.files_dir, safe_id(file_id))
    }

    /// `<files_dir>/<file_id>__<file name>`: the content (its extension is in the name).
    pub fn file_bytes(&self, file_id: &str, file_name: &str) -> String {
        let id = safe_id(file_id);
        let name = safe_name(file_name, id.len() + SEP.len());
        format!("{}/{}", self.files_dir, join(&id, &name, ""))
    }
}

/// File name of a post: `<YYYYmmdd-HHMMSSffffff>__<post_id>.json` with the creation time in
/// `tz` (`chrono::Local` in production: Python uses the machine's zone, `TZ` honoured).
///
/// The time is computed as Python's `datetime.fromtimestamp(create_at / 1000)` does,
/// through a float, so the microseconds are not always `(ms % 1000) * 1000`: for large
/// timestamps the float's error shows (`123456789012345` gives `…345001`). Like Python's
/// `if mm_timestamp:`, a `create_at` of 0 gives no timestamp part (`<post_id>.json`). A
/// local year outside 1..=9999, where Python raises and aborts the whole backup, also
/// gives no timestamp part. Years below 1000 are written with 4 digits (Python 3.11 on
/// glibc writes them unpadded); Mattermost has no such posts.
pub fn post_file_name<Tz: TimeZone>(create_at_ms: i64, post_id: &str, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let id = safe_id(post_id);
    match python_local_time(create_at_ms, tz) {
        Some(time) => {
            let mut s = String::with_capacity(21 + SEP.len() + id.len() + JSON.len());
            write!(s, "{}", time.format("%Y%m%d-%H%M%S%6f")).expect("writing to a String");
            s.push_str(SEP);
            s.push_str(&id);
            s.push_str(JSON);
            s
        }
        None => join(&id, "", JSON),
    }
}

/// `datetime.fromtimestamp(ms / 1000)`: the float quotient is split like CPython's
/// `_PyTime_DoubleToDenominator` (modf, scale to µs, round half to even, carry).
fn python_local_time<Tz: TimeZone>(create_at_ms: i64, tz: &Tz) -> Option<DateTime<Tz>> {
    if create_at_ms == 0 {
        return None;
    }
    python_from_timestamp(create_at_ms, tz)
}

/// `datetime.fromtimestamp(ms / 1000)` in `tz`; `None` where Python raises (year outside
/// 1..=9999). Also the times `matterexport` prints.
pub fn python_from_timestamp<Tz: TimeZone>(create_at_ms: i64, tz: &Tz) -> Option<DateTime<Tz>> {
    let seconds = create_at_ms as f64 / 1000.0;
    let mut whole = seconds.trunc();
    let mut micros = ((seconds - whole) * 1e6).round_ties_even();
    if micros >= 1e6 {
        micros -= 1e6;
        whole += 1.0;
    } else if micros < 0.0 {
        micros += 1e6;
        whole -= 1.0;
    }
    let utc = DateTime::from_timestamp(whole as i64, micros as u32 * 1000)?;
    let local = utc.with_timezone(tz);
    // CPython also converts the time one day earlier (its DST fold probe), which must be
    // in range too: the first local day of year 1 fails there.
    let probe = utc.checked_sub_signed(chrono::TimeDelta::days(1))?;
    let in_range = (1..=9999).contains(&local.year()) && probe.with_timezone(tz).year() >= 1;
    in_range.then_some(local)
}

/// Paths of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPaths {
    /// `users/<user_id>__<username>.json`
    pub json: String,
    image_stem: String,
}

impl UserPaths {
    /// `users/<user_id>__<username>__image.<ext>` (Python's label is
    /// f"{username}__image", so an empty username gives `<user_id>____image.<ext>`).
    pub fn image(&self, ext: &ImageExt) -> String {
        format!("{}.{}", self.image_stem, ext.as_str())
    }
}

pub fn user_paths(user_id: &str, username: &str) -> UserPaths {
    let id = safe_id(user_id);
    let reserved = id.len() + SEP.len() + IMAGE_LABEL.len() + 1 + MAX_EXT_BYTES;
    let name = safe_name(username, reserved);
    UserPaths {
        json: format!("{USERS_DIR}/{}", join(&id, &name, JSON)),
        image_stem: format!("{USERS_DIR}/{id}{SEP}{name}{IMAGE_LABEL}"),
    }
}

/// Paths of one custom emoji.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmojiPaths {
    /// `emojis/<emoji_id>__<emoji name>.json`
    pub json: String,
    image_stem: String,
}

impl EmojiPaths {
    /// `emojis/<emoji_id>__<emoji name>.<ext>`
    pub fn image(&self, ext: &ImageExt) -> String {
        format!("{}.{}", self.image_stem, ext.as_str())
    }
}

pub fn emoji_paths(emoji_id: &str, emoji_name: &str) -> EmojiPaths {
    let id = safe_id(emoji_id);
    let name = safe_name(emoji_name, id.len() + SEP.len() + 1 + MAX_EXT_BYTES);
    EmojiPaths {
        json: format!("{EMOJIS_DIR}/{}", join(&id, &name, JSON)),
        image_stem: format!("{EMOJIS_DIR}/{}", join(&id, &name, "")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Local, Utc};

    fn ext(content_type: &str) -> ImageExt {
        image_extension(content_type).unwrap()
    }

    // Expected paths below were computed with the Python tool's own `dump.make_filename`,
    // composed as matterbak.py / channeldata.py / users.py do (tools/gen_layout_cases.py).

    #[test]
    fn team_paths_match_python() {
        let cases = [
            (
                ("t1", "engineering"),
                [
                    "teams/t1__engineering.json",
                    "teams/t1__engineering__members.json",
                    "teams/t1__engineering",
                    "teams/t1__icon.png",
                ],
            ),
            (
                ("t2", ""),
                [
                    "teams/t2.json",
                    "teams/t2____members.json",
                    "teams/t2__",
                    "teams/t2__icon.png",
                ],
            ),
        ];
        for ((id, name), expected) in cases {
            let t = team_paths(id, name);
            let got = [
                t.json.clone(),
                t.members.clone(),
                t.channels_dir.clone(),
                t.icon(&ext("image/png")),
            ];
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn channel_paths_match_python() {
        let team = team_paths("t1", "engineering");
        // As `sync` names the group of zoe, bob, Émile, alice and bob (code point order).
        let group = "alice__bob__zoe__Émile";
        let cases = [
            (
                ChannelPlace::Team(&team),
                "c1",
                "town-square",
                [
                    "teams/t1__engineering/c1__town-square.json",
                    "teams/t1__engineering/c1__town-square__members.json",
                    "teams/t1__engineering/c1__town-square__threads.json",
                    "teams/t1__engineering/c1__town-square",
                    "teams/t1__engineering/c1__town-square/files",
                    "teams/t1__engineering/c1__town-square/files/f1.json",
                    "teams/t1__engineering/c1__town-square/files/f1__report v2.pdf",
                    "teams/t1__engineering/c1__town-square/files/f2",
                ],
            ),
            (
                ChannelPlace::Team(&team),
                "c2",
                "",
                [
                    "teams/t1__engineering/c2.json",
                    "teams/t1__engineering/c2____members.json",
                    "teams/t1__engineering/c2____threads.json",
                    "teams/t1__engineering/c2",
                    "teams/t1__engineering/c2/files",
                    "teams/t1__engineering/c2/files/f1.json",
                    "teams/t1__engineering/c2/files/f1__report v2.pdf",
                    "teams/t1__engineering/c2/files/f2",
                ],
            ),
            (
                ChannelPlace::Direct,
                "d1",
                "alice",
                [
                    "direct/d1__alice.json",
                    "direct/d1__alice__members.json",
                    "direct/d1__alice__threads.json",
                    "direct/d1__alice",
                    "direct/d1__alice/files",
                    "direct/d1__alice/files/f1.json",
                    "direct/d1__alice/files/f1__report v2.pdf",
                    "direct/d1__alice/files/f2",
                ],
            ),
            (
                ChannelPlace::Group,
                "g1",
                group,
                [
                    "groups/g1__alice__bob__zoe__Émile.json",
                    "groups/g1__alice__bob__zoe__Émile__members.json",
                    "groups/g1__alice__bob__zoe__Émile__threads.json",
                    "groups/g1__alice__bob__zoe__Émile",
                    "groups/g1__alice__bob__zoe__Émile/files",
                    "groups/g1__alice__bob__zoe__Émile/files/f1.json",
                    "groups/g1__alice__bob__zoe__Émile/files/f1__report v2.pdf",
                    "groups/g1__alice__bob__zoe__Émile/files/f2",
                ],
            ),
        ];
        for (place, id, name, expected) in cases {
            let c = channel_paths(place, id, name);
            let got = [
                c.json.clone(),
                c.members.clone(),
                c.threads.clone(),
                c.posts_dir.clone(),
                c.files_dir.clone(),
                c.file_info("f1"),
                c.file_bytes("f1", "report v2.pdf"),
                c.file_bytes("f2", ""),
            ];
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn user_and_emoji_paths_match_python() {
        let u = user_paths("u1", "alice");
        assert_eq!(
            [u.json.clone(), u.image(&ext("image/jpeg"))],
            ["users/u1__alice.json", "users/u1__alice__image.jpeg"]
        );
        let u = user_paths("u2", "");
        assert_eq!(
            [u.json.clone(), u.image(&ext("image/jpeg"))],
            ["users/u2.json", "users/u2____image.jpeg"]
        );
        let e = emoji_paths("e1", "party_parrot");
        assert_eq!(
            [e.json.clone(), e.image(&ext("image/svg+xml"))],
            [
                "emojis/e1__party_parrot.json",
                "emojis/e1__party_parrot.svg+xml"
            ]
        );
        let e = emoji_paths("e2", "");
        assert_eq!(
            [e.json.clone(), e.image(&ext("image/svg+xml"))],
            ["emojis/e2.json", "emojis/e2.svg+xml"]
        );
    }

    /// `TZ=UTC python3`: `dump.make_filename("p1", extension=".json", mm_timestamp=ms)`.
    /// Note the float artefacts (`…345001`, `…998993`) Python has and we copy.
    const POSTS_UTC: &[(i64, &str)] = &[
        (1, "19700101-000000001000__p1.json"),
        (-1, "19691231-235959999000__p1.json"),
        (1700000000123, "20231114-221320123000__p1.json"),
        (1234567890999, "20090213-233130999000__p1.json"),
        (123456789012345, "58820311-003012345001__p1.json"),
        (98765432109876, "50991002-101509876007__p1.json"),
        (4000000000007, "20961002-070640007000__p1.json"),
        (253402300799999, "99991231-235959998993__p1.json"),
        // Python: `if mm_timestamp:` is false for 0.
        (0, "p1.json"),
        // Python raises "year 10000 / year 0 is out of range"; we leave the time out.
        (253402300800000, "p1.json"),
        (-62135596800000, "p1.json"),
        (-62135510400001, "p1.json"),
        // Python 3.11 writes this year unpadded (`10102-…`), see `post_file_name`.
        (-62135510400000, "00010102-000000000000__p1.json"),
        (i64::MAX, "p1.json"),
        (i64::MIN, "p1.json"),
    ];

    #[test]
    fn post_file_names_match_python_in_utc() {
        for &(ms, expected) in POSTS_UTC {
            assert_eq!(post_file_name(ms, "p1", &Utc), expected, "create_at {ms}");
        }
        let c = channel_paths(ChannelPlace::Direct, "d1", "bob");
        assert_eq!(
            c.post(1700000000123, "p9", &Utc),
            "direct/d1__bob/20231114-221320123000__p9.json"
        );
    }

    /// `TZ=Europe/Berlin python3`, around both 2024 DST switches, before 1970 and in the
    /// LMT era (offset +00:53:28).
    const POSTS_BERLIN: &[(i64, &str)] = &[
        (1, "19700101-010000001000__p1.json"),
        (-1, "19700101-005959999000__p1.json"),
        (999, "19700101-010000999000__p1.json"),
        (-999, "19700101-005959001000__p1.json"),
        (-1000, "19700101-005959000000__p1.json"),
        (-1001, "19700101-005958999000__p1.json"),
        (1001, "19700101-010001001000__p1.json"),
        (1700000000123, "20231114-231320123000__p1.json"),
        (1711846799999, "20240331-015959999000__p1.json"),
        (1711846800000, "20240331-030000000000__p1.json"),
        (1729987199999, "20241027-015959999000__p1.json"),
        (1729987200000, "20241027-020000000000__p1.json"),
        (1729990799999, "20241027-025959999000__p1.json"),
        (1729990800000, "20241027-020000000000__p1.json"),
        (123456789012345, "58820311-013012345001__p1.json"),
        (4102444800001, "21000101-010000001000__p1.json"),
        (253402297199999, "99991231-235959998993__p1.json"),
        (4000000000007, "20961002-090640007000__p1.json"),
        (-30610224000000, "10000101-005328000000__p1.json"),
        (0, "p1.json"),
    ];

    #[test]
    fn post_file_names_with_fixed_offsets() {
        let winter = FixedOffset::east_opt(3600).unwrap();
        let summer = FixedOffset::east_opt(7200).unwrap();
        // The second before and at the spring-forward and fall-back switches.
        assert_eq!(
            post_file_name(1711846799999, "p1", &winter),
            POSTS_BERLIN[8].1
        );
        assert_eq!(
            post_file_name(1711846800000, "p1", &summer),
            POSTS_BERLIN[9].1
        );
        assert_eq!(
            post_file_name(1729990799999, "p1", &summer),
            POSTS_BERLIN[12].1
        );
        assert_eq!(
            post_file_name(1729990800000, "p1", &winter),
            POSTS_BERLIN[13].1
        );
    }

    const TZ_CHILD_ENV: &str = "MATTERBAK_TEST_TZ_CHILD";

    /// Production uses `chrono::Local`, so check it against Python under a real zone with
    /// DST. `TZ` is read once per process, so the test runs itself again with
    /// `TZ=Europe/Berlin` instead of changing the environment of this one.
    #[test]
    fn post_file_names_in_local_time_match_python_in_europe_berlin() {
        // Without tzdata chrono falls back to UTC, and this check would compare nothing.
        assert!(
            std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists(),
            "no /usr/share/zoneinfo/Europe/Berlin: install tzdata (apt-get install tzdata)"
        );
        if std::env::var_os(TZ_CHILD_ENV).is_some() {
            for &(ms, expected) in POSTS_BERLIN {
                assert_eq!(post_file_name(ms, "p1", &Local), expected, "create_at {ms}");
            }
            return;
        }
        // This test's name as the harness knows it (its module path without the crate).
        let module = module_path!().split_once("::").unwrap().1;
        let name = format!("{module}::post_file_names_in_local_time_match_python_in_europe_berlin");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--test-threads=1"])
            .env("TZ", "Europe/Berlin")
            .env(TZ_CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn image_extensions() {
        let cases = [
            ("image/png", Some("png")),
            ("image/svg+xml", Some("svg+xml")),
            ("image/jpeg; charset=binary", Some("jpeg")),
            (" Image/GIF ", Some("gif")),
            ("image/", Some("")),
            ("image/json", Some("json_")),
            ("image/../../x", Some(".._.._x")),
            ("image/a\\b\u{0}", Some("a_b_")),
            ("text/html", None),
            ("", None),
            ("application/octet-stream", None),
            ("imagepng", None),
        ];
        for (content_type, expected) in cases {
            assert_eq!(
                image_extension(content_type).as_ref().map(ImageExt::as_str),
                expected,
                "{content_type:?}"
            );
        }
        let long = format!("image/{}", "x".repeat(100));
        let e = ext(&long);
        assert_eq!(e.as_str().len(), MAX_EXT_BYTES);
        let hash = blake3::hash("x".repeat(100).as_bytes()).to_hex();
        assert_eq!(e.as_str(), format!("{}~{}", "x".repeat(23), &hash[..8]));
    }

    #[test]
    fn sanitize_name_rules() {
        let cases = [
            ("../../etc/passwd", ".._.._etc_passwd"),
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            ("\0", "_"),
            ("\n", "_"),
            ("tab\there\r\n", "tab_here__"),
            ("\u{1}\u{1f}\u{7f}\u{80}\u{85}\u{9f}\u{a0}", "______\u{a0}"),
            ("..", "__"),
            (".", "_"),
            ("/", "_"),
        ];
        for (name, expected) in cases {
            assert_eq!(sanitize_name(name), expected, "{name:?}");
        }
        // Unchanged names are borrowed: no allocation in the common case.
        for name in [
            "",
            "...",
            ".hidden",
            "town-square",
            "Grüße 😀 中文",
            "a:b*c?\"<>|",
            "\u{202e}rtl",
            "__",
        ] {
            assert!(
                matches!(sanitize_name(name), Cow::Borrowed(b) if b == name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_stay_distinct() {
        let id = "abcdefghijklmnopqrstuvwxyz";
        let a = format!("{}a", "n".repeat(10_000));
        let b = format!("{}b", "n".repeat(10_000));
        let ca = channel_paths(ChannelPlace::Direct, id, &a);
        let cb = channel_paths(ChannelPlace::Direct, id, &b);
        assert_ne!(ca.json, cb.json);
        let hash = blake3::hash(a.as_bytes()).to_hex();
        // 255 bytes minus `<id>__`, `__members.json` and `~` + 8 hex digits.
        let kept = 255 - 26 - 2 - 14 - 9;
        let cut = format!("{id}__{}~{}", "n".repeat(kept), &hash[..8]);
        assert_eq!(ca.json, format!("direct/{cut}.json"));
        assert_eq!(ca.members, format!("direct/{cut}__members.json"));
        assert_eq!(ca.threads, format!("direct/{cut}__threads.json"));
        assert_eq!(ca.posts_dir, format!("direct/{cut}"));
        assert_eq!(ca.members.len() - "direct/".len(), MAX_COMPONENT_BYTES);

        // Cuts land on char boundaries (4-byte chars) and still fit.
        let emoji = "😀".repeat(3000);
        let f = channel_paths(ChannelPlace::Direct, id, "x").file_bytes("f1", &emoji);
        let component = f.rsplit('/').next().unwrap();
        assert!(component.len() <= MAX_COMPONENT_BYTES);
        assert!(component.len() > MAX_COMPONENT_BYTES - 4);
        let kept = component
            .strip_prefix("f1__")
            .unwrap()
            .split('~')
            .next()
            .unwrap();
        assert!(kept.chars().all(|c| c == '😀'));

        // Just fitting names are left alone, one byte more is cut.
        let fits = "y".repeat(255 - 2 - 2);
        assert_eq!(
            channel_paths(ChannelPlace::Direct, "d", "x").file_bytes("f1", &fits),
            format!("direct/d__x/files/f1__{fits}")
        );
        let over = format!("{fits}y");
        assert!(
            channel_paths(ChannelPlace::Direct, "d", "x")
                .file_bytes("f1", &over)
                .contains('~')
        );
    }

    /// Checks one path against the invariants of the module docs: it is `parent` plus
    /// exactly one safe component.
    fn assert_entry_of(path: &str, parent: &str) {
        let rest = if parent.is_empty() {
            path
        } else {
            path.strip_prefix(parent)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or_else(|| panic!("{path:?} is not in {parent:?}"))
        };
        assert!(
            !rest.contains('/'),
            "{path:?} is not directly in {parent:?}"
        );
        assert!(!path.starts_with('/'), "{path:?} is absolute");
        for c in path.split('/') {
            assert!(
                !c.is_empty() && c != "." && c != "..",
                "{path:?}: component {c:?}"
            );
            assert!(
                c.len() <= MAX_COMPONENT_BYTES,
                "{path:?}: component too long"
            );
            assert!(
                !c.chars().any(is_replaced),
                "{path:?}: unsafe char in component"
            );
        }
        assert!(
            std::path::Path::new(path)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        );
    }

    #[test]
    fn hostile_names_and_ids_stay_inside_their_directory() {
        let long_dots = "../".repeat(2000);
        let long_a = "a".repeat(10_000);
        let long_e = "é".repeat(5000);
        let long_slashes = "/".repeat(700);
        let names = [
            "../../etc/passwd",
            "..",
            ".",
            "/",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "\0",
            "\n",
            "\r\n..",
            "C:\\x",
            "x/../../..",
            "",
            " ",
            "~",
            "__",
            "\u{85}",
            &long_dots,
            &long_a,
            &long_e,
            &long_slashes,
        ];
        let long_id = "i".repeat(300);
        let ids = [
            "abcdefghijklmnopqrstuvwxyz",
            "",
            ".",
            "..",
            "../x",
            "/",
            "a/b",
            long_id.as_str(),
            long_dots.as_str(),
        ];
        let exts = [
            ext("image/png"),
            ext("image/../.."),
            ext(&format!("image/{long_dots}")),
        ];
        for id in ids {
            for name in names {
                let team = team_paths(id, name);
                assert_entry_of(&team.json, TEAMS_DIR);
                assert_entry_of(&team.members, TEAMS_DIR);
                assert_entry_of(&team.channels_dir, TEAMS_DIR);
                for e in &exts {
                    assert_entry_of(&team.icon(e), TEAMS_DIR);
                }
                for place in [
                    ChannelPlace::Team(&team),
                    ChannelPlace::Direct,
                    ChannelPlace::Group,
                ] {
                    let parent = match place {
                        ChannelPlace::Team(t) => t.channels_dir.as_str(),
                        ChannelPlace::Direct => DIRECT_DIR,
                        ChannelPlace::Group => GROUPS_DIR,
                    };
                    let c = channel_paths(place, id, name);
                    assert_entry_of(&c.json, parent);
                    assert_entry_of(&c.members, parent);
                    assert_entry_of(&c.threads, parent);
                    assert_entry_of(&c.posts_dir, parent);
                    assert_entry_of(&c.files_dir, &c.posts_dir);
                    assert_entry_of(&c.post(1700000000123, id, &Utc), &c.posts_dir);
                    assert_entry_of(&c.post(0, id, &Utc), &c.posts_dir);
                    assert_entry_of(&c.file_info(id), &c.files_dir);
                    assert_entry_of(&c.file_bytes(id, name), &c.files_dir);
                    // Entries never collide with their siblings.
                    let mut all = [&c.json, &c.members, &c.threads, &c.posts_dir];
                    all.sort();
                    assert!(all.windows(2).all(|w| w[0] != w[1]), "{all:?}");
                    assert_ne!(c.file_info(id), c.file_bytes(id, name));
                }
                let u = user_paths(id, name);
                assert_entry_of(&u.json, USERS_DIR);
                let em = emoji_paths(id, name);
                assert_entry_of(&em.json, EMOJIS_DIR);
                for e in &exts {
                    assert_entry_of(&u.image(e), USERS_DIR);
                    assert_ne!(u.image(e), u.json);
                    assert_entry_of(&em.image(e), EMOJIS_DIR);
                    assert_ne!(em.image(e), em.json);
                }
                assert_ne!(em.image(&ext("image/json")), em.json);
            }
        }
    }
}
