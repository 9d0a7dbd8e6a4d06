//! The read direction of the layout: what an entry of a backup holds and whose it is, from
//! its relative path alone (`/`-separated, as [`super::paths`] writes them and as a zip or a
//! directory listing gives them). Nothing here reads a file.
//!
//! A path the layout does not know gives `None` (the reader reports it), never a guess.
//!
//! May import: the layout's names in [`super`].

use super::{
    DIRECT_DIR, EMOJIS_DIR, FILES_DIR, GROUPS_DIR, ICON_LABEL, IMAGE_LABEL, JSON, MEMBERS_SUFFIX,
    SEP, TEAMS_DIR, THREADS_SUFFIX, USERS_DIR,
};

/// What an entry holds. Declared in dependency order (users, teams, their members and icons,
/// channels, their members and threads, posts, files, emojis), so sorting entries by role
/// puts every object after the ones it refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    User,
    UserImage,
    Team,
    TeamMembers,
    TeamIcon,
    Channel,
    ChannelMembers,
    Threads,
    Post,
    FileInfo,
    FileBytes,
    Emoji,
    EmojiImage,
}

/// Whether `name` holds `label` directly followed by the image's `.` (`__image.`, `__icon.`).
fn has_label(name: &str, label: &str) -> bool {
    name.match_indices(label)
        .any(|(at, _)| name[at + label.len()..].starts_with('.'))
}

/// Classifies an entry by its path. Channel-level entries are `<cid>__…` files in a team
/// folder, `direct/` or `groups/`; posts and files sit in the channel's folder.
pub fn role(path: &str) -> Option<Role> {
    let parts: Vec<&str> = path.split('/').collect();
    let json = path.ends_with(JSON);
    let channel_file = |name: &str| {
        if name.ends_with(MEMBERS_SUFFIX) {
            Role::ChannelMembers
        } else if name.ends_with(THREADS_SUFFIX) {
            Role::Threads
        } else {
            Role::Channel
        }
    };
    let channel_dir = |rest: &[&str]| match rest {
        [_, _post] if json => Some(Role::Post),
        [_, FILES_DIR, name] if json && !name.contains(SEP) => Some(Role::FileInfo),
        [_, FILES_DIR, name] if name.contains(SEP) => Some(Role::FileBytes),
        _ => None,
    };
    match parts.as_slice() {
        [USERS_DIR, _] if json => Some(Role::User),
        [USERS_DIR, name] if has_label(name, IMAGE_LABEL) => Some(Role::UserImage),
        [EMOJIS_DIR, _] if json => Some(Role::Emoji),
        [EMOJIS_DIR, name] if name.contains(SEP) => Some(Role::EmojiImage),
        [TEAMS_DIR, name] if name.ends_with(MEMBERS_SUFFIX) => Some(Role::TeamMembers),
        [TEAMS_DIR, _] if json => Some(Role::Team),
        [TEAMS_DIR, name] if has_label(name, ICON_LABEL) => Some(Role::TeamIcon),
        [TEAMS_DIR, _team, name] if json => Some(channel_file(name)),
        [TEAMS_DIR, _team, rest @ ..] => channel_dir(rest),
        [DIRECT_DIR | GROUPS_DIR, name] if json => Some(channel_file(name)),
        [DIRECT_DIR | GROUPS_DIR, rest @ ..] => channel_dir(rest),
        _ => None,
    }
}

/// The id a layout name starts with (`<id>__…`), or the whole stem for `<id>.json`.
pub fn id_prefix(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let name = name.strip_suffix(JSON).unwrap_or(name);
    name.split(SEP).next().unwrap_or(name)
}

/// The channel folder of a post or file entry (`…/<cid>__<name>`), and its channel id.
pub fn channel_of(path: &str) -> (&str, &str) {
    let dir = match path.rsplit_once(&format!("/{FILES_DIR}/")) {
        Some((dir, _)) => dir,
        None => path.rsplit_once('/').map_or(path, |(dir, _)| dir),
    };
    (dir, id_prefix(dir))
}

/// The name a direct or group channel's JSON entry gives the channel
/// (`direct/<cid>__<other user>.json`, `groups/<cid>__<a>__<b>.json`), which export writes
/// again; `None` for a team's channel (its name is in its JSON).
pub fn channel_export_name(path: &str) -> Option<&str> {
    match path.split_once('/') {
        Some((DIRECT_DIR | GROUPS_DIR, name)) => name
            .strip_suffix(JSON)
            .and_then(|n| n.split_once(SEP))
            .map(|(_, name)| name),
        _ => None,
    }
}

/// The content type of an image entry: `image/` and its extension, which the writer took
/// from the content type the server gave (see [`super::image_extension`]).
pub fn image_content_type(path: &str) -> String {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    format!("image/{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pylayout::{self, ChannelPlace};

    #[test]
    fn entries_are_classified_by_their_place_in_the_layout() {
        let t = "teams/t1__eng";
        let c = "teams/t1__eng/c1__town-square";
        let cases: &[(&str, Option<Role>)] = &[
            ("users/u1__bob.json", Some(Role::User)),
            ("users/u1__bob__image.png", Some(Role::UserImage)),
            ("teams/t1__eng.json", Some(Role::Team)),
            ("teams/t1__eng__members.json", Some(Role::TeamMembers)),
            ("teams/t1__icon.png", Some(Role::TeamIcon)),
            (&format!("{t}/c1__town-square.json"), Some(Role::Channel)),
            (
                &format!("{t}/c1__town-square__members.json"),
                Some(Role::ChannelMembers),
            ),
            (
                &format!("{t}/c1__town-square__threads.json"),
                Some(Role::Threads),
            ),
            (
                &format!("{c}/20240101-120000000000__p1.json"),
                Some(Role::Post),
            ),
            (&format!("{c}/files/f1.json"), Some(Role::FileInfo)),
            (&format!("{c}/files/f1__report.pdf"), Some(Role::FileBytes)),
            ("direct/c2__bob.json", Some(Role::Channel)),
            (
                "groups/c3__bob__carol__members.json",
                Some(Role::ChannelMembers),
            ),
            (
                "direct/c2__bob/20240101-120000000000__p2.json",
                Some(Role::Post),
            ),
            ("emojis/e1__parrot.json", Some(Role::Emoji)),
            ("emojis/e1__parrot.gif", Some(Role::EmojiImage)),
            ("users/notes.txt", None),
            ("users/u1__imagery.png", None),
            ("teams/t1__icons", None),
            (&format!("{c}/readme.txt"), None),
            ("teams/t1__eng/c1__town-square/files/nested/x.json", None),
        ];
        for (path, want) in cases {
            assert_eq!(role(path), *want, "{path}");
        }
        assert_eq!(channel_of(&format!("{c}/files/f1__a__b.pdf")), (c, "c1"));
        assert_eq!(id_prefix("teams/t1__icon.png"), "t1");
        assert_eq!(id_prefix("x/files/f1.json"), "f1");
        assert_eq!(
            channel_export_name("groups/c3__bob__carol.json"),
            Some("bob__carol")
        );
        assert_eq!(channel_export_name("direct/c2__bob.json"), Some("bob"));
        assert_eq!(
            channel_export_name(&format!("{t}/c1__town-square.json")),
            None
        );
        assert_eq!(
            image_content_type("emojis/e1__parrot.svg+xml"),
            "image/svg+xml"
        );
    }

    /// What the writer names, the reader classifies back, with the owner's id.
    #[test]
    fn paths_written_are_read_back_as_what_they_hold() {
        let png = pylayout::image_extension("image/png").unwrap();
        let team = pylayout::team_paths("t1", "eng");
        let mut cases = vec![
            (team.json.clone(), Role::Team, "t1"),
            (team.members.clone(), Role::TeamMembers, "t1"),
            (team.icon(&png), Role::TeamIcon, "t1"),
        ];
        for (place, id, name) in [
            (ChannelPlace::Team(&team), "c1", "town-square"),
            (ChannelPlace::Direct, "c2", "bob"),
            (ChannelPlace::Group, "c3", "bob__carol"),
        ] {
            let c = pylayout::channel_paths(place, id, name);
            assert_eq!(
                channel_of(&c.post(1, "p1", &chrono::Utc)),
                (c.posts_dir.as_str(), id)
            );
            assert_eq!(channel_of(&c.file_bytes("f1", "a.pdf")).1, id);
            let export_name = channel_export_name(&c.json);
            assert_eq!(
                export_name,
                (!matches!(place, ChannelPlace::Team(_))).then_some(name)
            );
            cases.extend([
                (c.json.clone(), Role::Channel, id),
                (c.members.clone(), Role::ChannelMembers, id),
                (c.threads.clone(), Role::Threads, id),
                (
                    c.post(1_700_000_000_123, "p1", &chrono::Utc),
                    Role::Post,
                    "p1",
                ),
                (c.file_info("f1"), Role::FileInfo, "f1"),
                (c.file_bytes("f1", "a.pdf"), Role::FileBytes, "f1"),
            ]);
        }
        let user = pylayout::user_paths("u1", "bob");
        let emoji = pylayout::emoji_paths("e1", "parrot");
        cases.extend([
            (user.json.clone(), Role::User, "u1"),
            (user.image(&png), Role::UserImage, "u1"),
            (emoji.json.clone(), Role::Emoji, "e1"),
            (emoji.image(&png), Role::EmojiImage, "e1"),
        ]);
        for (path, want, id) in cases {
            assert_eq!(role(&path), Some(want), "{path}");
            if want != Role::Post {
                assert_eq!(id_prefix(&path), id, "{path}");
            }
        }
        assert_eq!(image_content_type(&user.image(&png)), "image/png");
    }
}
