//! The file-name scenario: a channel `eng/file-names` whose posts carry attachments named in
//! every way the real server lets a name be, so that checks can see each export name them as
//! the Python tool does (`POST /__mock/scenario/file-names`, [`Workspace::add_file_name_cases`]).
//!
//! What a file name may hold, from the server's Go source (`mattermost/mattermost`):
//! - `server/channels/app/file.go` (`UploadFileX`, `DoUploadFileExpectModification`): the
//!   uploaded name only goes through Go's `filepath.Base`, so on the (Linux) server it never
//!   holds `/` and is never empty (`Base("")` is `.`); every other character is kept: `\`,
//!   tab, line breaks, leading dots, `.` and `..` themselves, any Unicode;
//! - `server/public/model/file_info.go` (`FileInfo.IsValid`): no rule on the name;
//! - `server/channels/db/migrations/postgres/000047_create_file_info.up.sql`: the column is
//!   `name VARCHAR(256)`, at most 256 characters (and PostgreSQL text holds no NUL).
//!
//! [`FILE_NAME_CASES`] are the names the Python tool `matterbak` can also back up (it writes
//! `files/<file id>__<name>`, one path component, so at most 255 − 28 = 227 bytes), which
//! makes the scenario usable against it (`tests/conformance/markdown.sh`). The server's own
//! longest names, and names a Windows extractor would read as a path (`..\..\x`), are
//! [`FILE_NAME_CASES_BEYOND_PYTHON`], added only by [`Workspace::add_file_name_cases_beyond_python`].
//!
//! May import: the mock's [`super::workspace`] and [`super::model`].

use super::model::NewFile;
use super::workspace::Workspace;

/// Longest name the Python tool can write as `<26-char id>__<name>` in one component.
pub const PYTHON_LONGEST_NAME_BYTES: usize = 255 - 28;

/// Names the server accepts and the Python tool can back up, one attachment each.
pub const FILE_NAME_CASES: &[&str] = &[
    "tab\there.txt",
    "tab\there (1).txt",
    "Copy of tab\there (1).txt",
    "line\nbreak.txt",
    "carriage\r\nreturn.txt",
    "back\\slash.txt",
    "..",
    ".",
    "...",
    ".hidden",
    " spaces around .txt ",
    // Combining marks (decomposed: "Café Noël" as e + U+0301, e + U+0308).
    "Cafe\u{301} Noe\u{308}l.txt",
    // Right-to-left text, and a right-to-left override that shows `exe.pdf`.
    "مرحبا بالعالم.txt",
    "invoice\u{202e}fdp.exe",
    // Emoji, with a skin tone and a ZWJ family sequence.
    "🎉 party 👍🏽 👩\u{200d}👩\u{200d}👧.png",
    "a:b*c?\"<>|.txt",
    "`code` *star* [link](x) # not a heading.md",
];

/// Names the server accepts but the Python tool cannot back up (it stops with
/// `ENAMETOOLONG`) or that an export must not put into a zip as they are.
pub const FILE_NAME_CASES_BEYOND_PYTHON: &[&str] = &["..\\..\\escape.txt", "trailing\\"];

/// The long names: the longest the Python tool can write, in ASCII and in two-byte
/// characters, and (beyond Python) the server's limit of 256 characters of four bytes.
pub fn long_names() -> [String; 3] {
    let ascii = format!("{}.txt", "a".repeat(PYTHON_LONGEST_NAME_BYTES - 4));
    let two_byte = format!("{}.txt", "ü".repeat((PYTHON_LONGEST_NAME_BYTES - 4) / 2));
    let server_max = "😀".repeat(256);
    [ascii, two_byte, server_max]
}

/// The attachment `name` with content that names it (so every file differs).
fn attachment(name: &str, n: usize) -> NewFile {
    NewFile {
        name: name.to_owned(),
        bytes: format!("attachment {n}: {name:?}\n").into_bytes(),
        mime_type: "text/plain".to_owned(),
    }
}

/// Team and name of the scenario's channel.
const TEAM: &str = "eng";
const CHANNEL: &str = "file-names";

impl Workspace {
    /// Whether [`Workspace::add_file_name_cases`] can run: the team `eng` exists (the sample
    /// has it) and its channel `file-names` does not yet.
    pub fn file_name_cases_possible(&self) -> bool {
        self.team_by_name(TEAM).is_some_and(|team| {
            !self
                .channels
                .values()
                .any(|c| c.team_id == team.id && c.name == CHANNEL)
        })
    }

    /// Creates the public channel `eng/file-names` (members alice and bob) with one post per
    /// name of [`FILE_NAME_CASES`] and the two Python-storable [`long_names`], then one post
    /// with two attachments of the same name; returns the channel id.
    pub fn add_file_name_cases(&mut self) -> String {
        let channel = self.create_channel(TEAM, CHANNEL, "File Names", 'O', &["alice", "bob"]);
        let [ascii, two_byte, _] = long_names();
        let names = FILE_NAME_CASES
            .iter()
            .copied()
            .chain([ascii.as_str(), two_byte.as_str()]);
        for (n, name) in names.enumerate() {
            let message = format!("file name case {n}");
            self.create_post_with_files(
                &channel,
                "alice",
                &message,
                None,
                vec![attachment(name, n)],
            );
        }
        let twins = vec![
            attachment("same name.txt", 100),
            attachment("same name.txt", 101),
        ];
        self.create_post_with_files(&channel, "bob", "two files, one name", None, twins);
        channel
    }

    /// Adds to `channel` one post per name the Python tool cannot back up (see
    /// [`FILE_NAME_CASES_BEYOND_PYTHON`] and the 256-character name of [`long_names`]).
    pub fn add_file_name_cases_beyond_python(&mut self, channel: &str) {
        let [_, _, server_max] = long_names();
        let names = FILE_NAME_CASES_BEYOND_PYTHON
            .iter()
            .copied()
            .chain([server_max.as_str()]);
        for (n, name) in names.enumerate() {
            let message = format!("file name beyond python {n}");
            self.create_post_with_files(
                channel,
                "alice",
                &message,
                None,
                vec![attachment(name, 200 + n)],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cases_are_names_the_server_and_python_accept() {
        let [ascii, two_byte, server_max] = long_names();
        assert_eq!(ascii.len(), 227);
        assert_eq!(two_byte.len(), 226);
        assert_eq!(server_max.chars().count(), 256, "the server's VARCHAR(256)");
        for name in FILE_NAME_CASES.iter().copied().chain([&*ascii, &*two_byte]) {
            assert!(
                !name.is_empty() && !name.contains('/') && !name.contains('\0'),
                "{name:?}"
            );
            assert!(name.len() <= PYTHON_LONGEST_NAME_BYTES, "{name:?}");
        }
        assert!(server_max.len() > PYTHON_LONGEST_NAME_BYTES);
    }

    #[test]
    fn the_scenario_adds_one_channel_with_every_name() {
        let mut ws = Workspace::sample();
        assert!(ws.file_name_cases_possible());
        let channel = ws.add_file_name_cases();
        assert!(!ws.file_name_cases_possible(), "only once");
        let posts = ws.post_ids(&channel);
        assert_eq!(posts.len(), FILE_NAME_CASES.len() + 3);
        let mut names: Vec<String> = posts
            .iter()
            .flat_map(|p| ws.post_file_ids(p))
            .map(|f| ws.file_name(&f))
            .collect();
        names.sort();
        assert_eq!(names.iter().filter(|n| *n == "tab\there.txt").count(), 1);
        assert_eq!(names.iter().filter(|n| *n == "same name.txt").count(), 2);
        assert_eq!(names.len(), FILE_NAME_CASES.len() + 4);
    }
}
