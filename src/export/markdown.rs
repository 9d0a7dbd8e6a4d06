//! `export --format markdown`: one channel as one Markdown document, in two flavors.
//!
//! - [`Flavor::Py`]: byte for byte what `matterexport md` 0.5.2 prints from the Python data
//!   dir the layout export writes (see `viewer-notes.md` §1.6–1.7): its headings and blank
//!   lines, times in the local zone without one, file-name order, one reaction per line,
//!   attachment paths as the Python backup has them (the server's name as it is, tab and
//!   all, not our JSON layout's safe name), `None` for a missing attachment, nothing
//!   escaped, system posts, edits and deletions invisible.
//! - [`Flavor::Full`]: everything the archive knows (edits with earlier versions, deleted
//!   and pinned posts, system messages, bot attachments, missing attachments named,
//!   attachment names readable (controls and bidi overrides shown, not acting),
//!   reactions grouped with who reacted, the zone of every time) in a document whose
//!   structure no server text can break: names are escaped, each message sits in its own
//!   block quote, which closes any fence or HTML block it opens.
//!
//! Pure: renders a loaded [`Chat`] into a `String`; [`super::chatexport`] does the I/O.

use std::fmt::Write as _;

use chrono::TimeZone;

use super::chat::{Chat, ChatFile, ChatPost, Flavor, People, py_str, py_time, zoned_time};
use super::view::MessageAttachment;
use crate::model::ChannelType;
use crate::pylayout::SEP;

/// What a Markdown rendering needs besides the channel.
pub struct MarkdownContext<'a, Tz: TimeZone> {
    pub people: &'a People,
    pub tz: &'a Tz,
    /// The data dir the paths under `Files:` start with (`matterexport -d`).
    pub data_dir: &'a str,
    /// Group posts by thread (`--threads`).
    pub threads: bool,
    /// Py flavor: put the Python tool's WARNING lines about file infos it cannot find into
    /// the document, as it does when printing to stdout.
    pub inline_warnings: bool,
}

/// Renders `chat`; returns the document and the warnings not put into it.
pub fn render<Tz: TimeZone>(
    chat: &Chat<'_>,
    flavor: Flavor,
    cx: &MarkdownContext<'_, Tz>,
) -> (String, Vec<String>)
where
    Tz::Offset: std::fmt::Display,
{
    match flavor {
        Flavor::Py => render_py(chat, cx),
        Flavor::Full => (render_full(chat, cx), Vec::new()),
    }
}

fn render_py<Tz: TimeZone>(chat: &Chat<'_>, cx: &MarkdownContext<'_, Tz>) -> (String, Vec<String>)
where
    Tz::Offset: std::fmt::Display,
{
    let mut out = String::new();
    let mut warnings = Vec::new();
    let name = |id: &str| cx.people.display_name(id, Flavor::Py);
    let channel = &chat.entry.channel;
    let stored = channel.python_fields();
    let title = match chat.kind() {
        ChannelType::Direct => "Direct channel".to_owned(),
        ChannelType::Group => "Group channel".to_owned(),
        _ if !channel.object.display_name.is_empty() => channel.object.display_name.clone(),
        _ => py_str(stored.name.as_ref()),
    };
    let _ = write!(out, "# {title}\n\n");
    let _ = write!(out, "{}\n\n", py_str(stored.header.as_ref()));
    let _ = write!(
        out,
        "{} messages in {} threads or single messages\n\n",
        py_str(stored.total_msg_count.as_ref()),
        py_str(stored.total_msg_count_root.as_ref())
    );
    out.push_str("## Metadata\n\n");
    let created = channel.object.create_at;
    let _ = write!(out, "Created at {}\n\n", py_time(created, cx.tz));
    if chat.kind().is_team_channel() {
        let (display, team) = chat.entry.team.clone().unwrap_or_default();
        let _ = write!(out, "Belonging to team {display} ({team})\n\n");
    } else {
        out.push_str("### Members\n\n");
        for member in &chat.members {
            let _ = writeln!(out, "* {}", name(member));
        }
        out.push_str("\n\n");
    }
    out.push_str("## Messages\n\n");
    let mut post = |out: &mut String, p: &ChatPost, heading: &str| {
        let _ = write!(
            out,
            "{heading} {} at {}\n{}\n\n",
            name(&p.record.user_id),
            py_time(p.record.create_at, cx.tz),
            p.record.message
        );
        let mut any = false;
        for id in p.file_ids() {
            let Some(file) = chat.files.get(id) else {
                let warning = format!(
                    "WARNING: cannot find file with data about attachment ID {id}. Skipping attachment."
                );
                if cx.inline_warnings {
                    out.push_str(&warning);
                    out.push('\n');
                } else {
                    warnings.push(warning);
                }
                continue;
            };
            if !any {
                out.push_str("Files:\n\n");
                any = true;
            }
            let info_name = &file.record.name;
            match matterexport_file_path(chat, id, file) {
                Some(rel) => {
                    let _ = writeln!(out, "* {info_name}: `{}`", py_path(cx.data_dir, &rel));
                }
                None => {
                    let _ = writeln!(out, "* {info_name}: `None`");
                }
            }
        }
        if any {
            out.push('\n');
        }
        let reactions = p.listed_reactions();
        if !reactions.is_empty() {
            out.push_str("Reactions:\n\n");
            for (user, emoji) in reactions {
                let _ = writeln!(out, "* {}: `{emoji}`", name(&user));
            }
            out.push('\n');
        }
    };
    if cx.threads {
        for thread in chat.py_threads(cx.tz) {
            out.push_str("### Thread\n");
            for i in thread {
                post(&mut out, &chat.posts[i], "####");
            }
        }
    } else {
        for p in &chat.posts {
            post(&mut out, p, "###");
        }
    }
    (out, warnings)
}

/// Where `matterexport` finds an attachment in the Python tool's backup, relative to the
/// data dir: `<channel posts dir>/files/<file id>__<name>` with the name exactly as the
/// server has it (tab, newline, `\`, `..`, any Unicode), which is where the Python backup
/// writes it; `None` where matterexport prints `None`: the content is not archived, or
/// the name is empty (the backup writes `<id>`, matterexport looks for `<id>__`).
///
/// Deliberately not [`ChatFile::layout_path`](super::chat::ChatFile): our JSON layout makes
/// names safe (`tab_here.txt`), a documented difference of that layout that the py
/// flavor, which promises matterexport's text, must not show. Names the Python backup
/// cannot write at all (longer than a path component allows) get the path it would use.
fn matterexport_file_path(chat: &Chat<'_>, id: &str, file: &ChatFile) -> Option<String> {
    let name = &file.record.name;
    (file.stored && !name.is_empty())
        .then(|| format!("{}/{id}{SEP}{name}", chat.entry.paths.files_dir))
}

/// `str(pathlib.Path(data_dir) / rel)`: `.` segments, repeated and trailing `/` dropped.
fn py_path(data_dir: &str, rel: &str) -> String {
    let absolute = data_dir.starts_with('/');
    let parts: Vec<&str> = data_dir
        .split('/')
        .chain(rel.split('/'))
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Escapes one-line server text (names, titles) so it is shown literally wherever it lands
/// in a line: inline markup characters always, block markers (`-`, `+`, `1.`) at its start,
/// where a list item would turn them into structure; line breaks become spaces.
pub fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in text.chars().enumerate() {
        let start_marker = (i == 0 && matches!(c, '-' | '+' | '='))
            || (i == digits && digits > 0 && matches!(c, '.' | ')'));
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '!' | '&' | '~' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if start_marker => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// An attachment's name for a reader, escaped like [`escape_inline`]: characters that
/// would be invisible or change what is shown are made visible instead of acting. C0
/// controls and DEL become their Unicode control pictures (a tab `␉`, a line break `␊`,
/// so the name stays on its line and readably says what it holds); C1 controls and the
/// bidirectional formatting characters (which would show `exe.pdf` for `fdp.exe` behind
/// U+202E) become `<U+XXXX>`. An empty name is shown as `(no name)`.
pub fn readable_file_name(name: &str) -> String {
    if name.is_empty() {
        return "*(no name)*".to_owned();
    }
    let mut shown = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\0'..='\u{1f}' => shown.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\u{7f}' => shown.push('\u{2421}'),
            '\u{80}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => {
                let _ = write!(shown, "<U+{:04X}>", c as u32);
            }
            c => shown.push(c),
        }
    }
    escape_inline(&shown)
}

/// Text in inline code, with a fence longer than any backtick run inside it.
fn code_span(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') || longest > 0 {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// `text` as a block quote (`prefix` is `> ` or deeper), every line prefixed, so the quote
/// holds all of it and ends where we say.
fn quote(out: &mut String, prefix: &str, text: &str) {
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            out.push_str(prefix.trim_end());
        } else {
            out.push_str(prefix);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn render_full<Tz: TimeZone>(chat: &Chat<'_>, cx: &MarkdownContext<'_, Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut out = String::new();
    let people = cx.people;
    let who = |id: &str| full_name(people, id);
    let channel = &chat.entry.channel.object;
    let title = match (chat.kind(), channel.display_name.as_str()) {
        (ChannelType::Direct | ChannelType::Group, _) => {
            let names: Vec<String> = chat.members.iter().map(|m| who(m)).collect();
            if names.is_empty() {
                chat.kind().noun().to_owned()
            } else {
                names.join(", ")
            }
        }
        (_, "") => escape_inline(&channel.name),
        (_, display) => escape_inline(display),
    };
    let _ = write!(out, "# {title}\n\n");
    let _ = writeln!(
        out,
        "- Channel: {} ({}, id {})",
        code_span(&channel.name),
        chat.kind().noun(),
        code_span(&chat.entry.channel.record.id)
    );
    if let Some((display, name)) = &chat.entry.team {
        let _ = writeln!(
            out,
            "- Team: {} ({})",
            escape_inline(display),
            code_span(name)
        );
    }
    let _ = writeln!(out, "- Created: {}", zoned_time(channel.create_at, cx.tz));
    if channel.delete_at > 0 {
        let _ = writeln!(out, "- Archived: {}", zoned_time(channel.delete_at, cx.tz));
    }
    for (label, text) in [("Header", &channel.header), ("Purpose", &channel.purpose)] {
        if !text.trim().is_empty() {
            let _ = writeln!(out, "- {label}: {}", escape_inline(text));
        }
    }
    if !chat.members.is_empty() {
        let names: Vec<String> = chat.members.iter().map(|m| who(m)).collect();
        let _ = writeln!(out, "- Members: {}", names.join(", "));
    }
    let _ = writeln!(out, "- Messages: {} archived", chat.posts.len());
    out.push_str("- Times: the exporting machine's time zone, each with its offset from UTC\n\n");
    out.push_str("## Messages\n\n");
    if chat.posts.is_empty() {
        out.push_str("*No messages archived.*\n");
        return out;
    }
    let by_time = {
        let mut order: Vec<usize> = (0..chat.posts.len()).collect();
        order.sort_by_key(|&i| (chat.posts[i].record.create_at, chat.posts[i].id()));
        order
    };
    if cx.threads {
        for thread in chat.threads_by_root() {
            let first = &chat.posts[thread[0]];
            let replies = thread.len() - 1;
            let _ = write!(
                out,
                "### Thread started by {} at {} ({} repl{})\n\n",
                who(&first.record.user_id),
                zoned_time(first.record.create_at, cx.tz),
                replies,
                if replies == 1 { "y" } else { "ies" }
            );
            for i in thread {
                full_post(&mut out, chat, &chat.posts[i], "####", cx);
            }
        }
    } else {
        for i in by_time {
            full_post(&mut out, chat, &chat.posts[i], "###", cx);
        }
    }
    out
}

/// Name, `@username` and the raw id when unknown; escaped.
fn full_name(people: &People, id: &str) -> String {
    match people.get(id, Flavor::Full) {
        Some(person) => {
            let display = people.display_name(id, Flavor::Full);
            match &person.username {
                Some(user) if *user != display => {
                    format!("{} (@{})", escape_inline(&display), escape_inline(user))
                }
                _ => escape_inline(&display),
            }
        }
        None => format!("unknown user {}", code_span(id)),
    }
}

fn full_post<Tz: TimeZone>(
    out: &mut String,
    chat: &Chat<'_>,
    post: &ChatPost,
    heading: &str,
    cx: &MarkdownContext<'_, Tz>,
) where
    Tz::Offset: std::fmt::Display,
{
    let people = cx.people;
    let record = &post.record;
    let mut author = full_name(people, &record.user_id);
    if let Some(over) = post.override_username() {
        author = format!("{} (posted by {author})", escape_inline(over));
    }
    let _ = write!(
        out,
        "{heading} {author} at {}\n\n",
        zoned_time(record.create_at, cx.tz)
    );
    let mut marks = Vec::new();
    if post.is_system() {
        marks.push(format!("system message {}", code_span(&record.kind)));
    }
    let root = record.root_id.as_str();
    if !root.is_empty() && !cx.threads {
        match chat.posts.iter().find(|p| p.id() == root) {
            Some(r) => marks.push(format!(
                "reply to {} at {}",
                full_name(people, &r.record.user_id),
                zoned_time(r.record.create_at, cx.tz)
            )),
            None => marks.push(format!("reply to post {} (not archived)", code_span(root))),
        }
    } else if !root.is_empty() && !chat.posts.iter().any(|p| p.id() == root) {
        marks.push(format!("reply to post {} (not archived)", code_span(root)));
    }
    if post.is_pinned() {
        marks.push("pinned".to_owned());
    }
    if record.edit_at > 0 {
        marks.push(format!("edited {}", zoned_time(record.edit_at, cx.tz)));
    }
    if record.delete_at > 0 {
        marks.push(format!(
            "deleted {} (last archived text shown)",
            zoned_time(record.delete_at, cx.tz)
        ));
    }
    if !marks.is_empty() {
        let _ = write!(out, "*{}*\n\n", capitalize(&marks.join(" · ")));
    }
    let message = record.message.as_str();
    if message.trim().is_empty() {
        out.push_str("*(no text)*\n\n");
    } else {
        quote(out, "> ", message);
        out.push('\n');
    }
    for attachment in post.attachments().unwrap_or_default() {
        out.push_str("Attachment:\n\n");
        quote(out, "> ", &attachment_text(&attachment));
        out.push('\n');
    }
    if let Some(versions) = chat.view.versions.get(post.id()) {
        out.push_str("Earlier versions:\n\n");
        for v in versions {
            let _ = writeln!(out, "- until {}:", zoned_time(v.replaced_at, cx.tz));
            out.push('\n');
            match &v.message {
                Some(text) if !text.trim().is_empty() => quote(out, "  > ", text),
                Some(_) => out.push_str("  *(no text)*\n"),
                None => out.push_str("  *(text not archived)*\n"),
            }
            out.push('\n');
        }
    }
    let ids = post.file_ids();
    if !ids.is_empty() {
        out.push_str("Files:\n\n");
        for id in ids {
            match chat.files.get(id) {
                Some(file) if file.stored => {
                    let _ = writeln!(
                        out,
                        "- {} ({} bytes): {}",
                        readable_file_name(&file.record.name),
                        file.record.size,
                        code_span(&py_path(cx.data_dir, &file.layout_path))
                    );
                }
                Some(file) => {
                    let _ = writeln!(
                        out,
                        "- {} ({} bytes): **missing**, its content is not in the archive",
                        readable_file_name(&file.record.name),
                        file.record.size
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "- file {}: **missing**, not even its name is in the archive",
                        code_span(id)
                    );
                }
            }
        }
        out.push('\n');
    }
    if let Some(reactions) = chat.view.reactions.get(post.id()) {
        // Grouped by emoji, in the order each emoji was first used.
        let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
        for r in reactions {
            let name = full_name(people, &r.user_id);
            match groups.iter_mut().find(|(e, _)| *e == r.emoji_name) {
                Some((_, users)) => users.push(name),
                None => groups.push((&r.emoji_name, vec![name])),
            }
        }
        out.push_str("Reactions:\n\n");
        for (emoji, users) in groups {
            let _ = writeln!(
                out,
                "- {} ×{}: {}",
                code_span(&format!(":{emoji}:")),
                users.len(),
                users.join(", ")
            );
        }
        out.push('\n');
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A bot's message attachment (Slack style) as plain Markdown lines.
fn attachment_text(a: &MessageAttachment) -> String {
    let mut lines = Vec::new();
    let (pretext, author, title) = (a.pretext.trim(), a.author_name.trim(), a.title.trim());
    if !pretext.is_empty() {
        lines.push(pretext.to_owned());
    }
    if !author.is_empty() {
        lines.push(format!("*{}*", escape_inline(author)));
    }
    if !title.is_empty() {
        lines.push(format!("**{}**", escape_inline(title)));
    }
    if !a.text.trim().is_empty() {
        lines.push(a.text.trim().to_owned());
    }
    for f in a.fields.iter().flatten() {
        lines.push(format!("- **{}**: {}", escape_inline(&f.title), f.value));
    }
    if !a.footer.trim().is_empty() {
        lines.push(format!("*{}*", escape_inline(a.footer.trim())));
    }
    if lines.is_empty() && !a.fallback.trim().is_empty() {
        lines.push(a.fallback.trim().to_owned());
    }
    lines.join("\n\n")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Utc;
    use serde_json::{Value, json};

    use super::*;
    use crate::catalog::{ChannelContent, ChannelRecord, FileRecord, PostRecord};
    use crate::export::chat::{ChannelEntry, ChatFile, Person};
    use crate::export::view::{Channel, ChannelView, Post};
    use crate::model::{FileId, UserId};
    use crate::pylayout::{self, ChannelPlace};

    const ALICE: &str = "uaaaaaaaaaaaaaaaaaaaaaaaa1";
    const BOB: &str = "ubbbbbbbbbbbbbbbbbbbbbbbb2";
    const CAROL: &str = "ucccccccccccccccccccccccc3";
    const GONE: &str = "uzzzzzzzzzzzzzzzzzzzzzzzz9";
    const T0: i64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

    fn person(username: &str, nickname: &str, first: &str, last: &str) -> Person {
        Person {
            username: Some(username.into()),
            nickname: nickname.into(),
            first_name: first.into(),
            last_name: last.into(),
        }
    }

    fn people() -> People {
        let users = [
            (ALICE, person("alice", "", "Alice ", "Anders")),
            (BOB, person("bob", "Bobby", "Bob", "B")),
            (CAROL, person("carol", "", "", "")),
        ];
        People::from_parts(
            users
                .iter()
                .map(|(id, p)| (UserId::from(*id), p.clone()))
                .collect(),
            users.iter().map(|(id, _)| UserId::from(*id)).collect(),
        )
    }

    fn entry() -> ChannelEntry {
        let team = pylayout::team_paths("taaaaaaaaaaaaaaaaaaaaaaaa1", "team1");
        let id = "caaaaaaaaaaaaaaaaaaaaaaaa1";
        let paths = pylayout::channel_paths(ChannelPlace::Team(&team), id, "town-square");
        let json = json!({"id": id, "type": "O", "display_name": "Town Square",
            "name": "town-square", "header": "Welcome **all**", "total_msg_count": 6,
            "total_msg_count_root": 4, "create_at": T0 + 999});
        let channel = Channel::from_record(ChannelRecord {
            id: id.into(),
            team_id: "taaaaaaaaaaaaaaaaaaaaaaaa1".into(),
            kind: ChannelType::Public,
            name: "town-square".into(),
            display_name: "Town Square".into(),
            delete_at: 0,
            export_name: None,
            json: json.to_string(),
        })
        .unwrap();
        ChannelEntry {
            channel,
            folder: format!("{id}__town-square"),
            paths,
            team: Some(("Team One".into(), "team1".into())),
        }
    }

    /// A post stored as `json`, its columns indexed from it as sync does.
    fn stored(json: Value) -> ChatPost {
        let text = |k: &str| json.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let (id, at) = (text("id"), json["create_at"].as_i64().unwrap());
        ChatPost {
            file_name: pylayout::post_file_name(at, &id, &Utc),
            post: Post::from_record(PostRecord {
                root_id: text("root_id").into(),
                user_id: text("user_id").into(),
                create_at: at,
                update_at: at,
                edit_at: 0,
                delete_at: 0,
                seen_live: true,
                kind: text("type"),
                message: text("message"),
                json: json.to_string(),
                id: id.into(),
            }),
        }
    }

    fn post(id: &str, at: i64, user: &str, message: &str, extra: Value) -> ChatPost {
        let mut json = json!({"id": id, "create_at": at, "user_id": user, "message": message});
        json.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        stored(json)
    }

    /// The hand-made fixture of viewer-notes §1.8, whose output was measured with
    /// matterexport 0.5.2 (`TZ=UTC matterexport md -d data -c town-square`).
    fn fixture(entry: &ChannelEntry) -> Chat<'_> {
        let mut posts = vec![
            post(
                "p1",
                T0,
                ALICE,
                "Hello *world*\n\n| a | b |\n|---|---|\n| 1 | 2 |",
                json!({}),
            ),
            post("p2", T0 + 1_500, BOB, "reply one", json!({"root_id": "p1"})),
            post(
                "p3",
                T0 + 60_000,
                BOB,
                "files here :smile:",
                json!({
                "file_ids": ["faaaaaaaaaaaaaaaaaaaaaaaa1", "faaaaaaaaaaaaaaaaaaaaaaaa2"],
                "metadata": {"reactions": [
                    {"user_id": ALICE, "emoji_name": "+1"},
                    {"user_id": GONE, "emoji_name": "custom_party"}]}}),
            ),
            post(
                "p4",
                T0 + 90_000,
                CAROL,
                "reply two (later file, earlier than p4)",
                json!({"root_id": "p1"}),
            ),
            post(
                "p5",
                T0 + 120_000,
                GONE,
                "from a deleted user",
                json!({"edit_at": T0 + 130_000}),
            ),
            post(
                "p6",
                T0 + 180_000,
                CAROL,
                "carol joined the channel.",
                json!({"type": "system_join_channel"}),
            ),
            post(
                "p7",
                T0 + 240_000,
                ALICE,
                "",
                json!({"props": {"attachments": [{"text": "bot"}]}}),
            ),
        ];
        posts.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        let file = |id: &str, name: &str, stored: bool| {
            (
                FileId::from(id),
                ChatFile {
                    record: FileRecord {
                        id: id.into(),
                        post_id: "p3".into(),
                        name: name.into(),
                        size: 3,
                        mime_type: String::new(),
                        create_at: T0,
                        json: json!({"id": id, "name": name}).to_string(),
                        blob: None,
                    },
                    stored,
                    layout_path: entry.paths.file_bytes(id, name),
                },
            )
        };
        Chat {
            entry,
            channel_object: serde_json::from_str(&entry.channel.record.json).unwrap(),
            view: ChannelView::from_content(entry.channel.clone(), ChannelContent::default())
                .unwrap(),
            members: vec![],
            posts,
            threads: HashMap::from([("p1".to_owned(), vec!["p4".to_owned(), "p2".to_owned()])]),
            files: HashMap::from([
                file("faaaaaaaaaaaaaaaaaaaaaaaa1", "pic one.png", true),
                file("faaaaaaaaaaaaaaaaaaaaaaaa2", "gone.txt", false),
            ]),
        }
    }

    fn py(chat: &Chat<'_>, threads: bool) -> String {
        let people = people();
        let cx = MarkdownContext {
            people: &people,
            tz: &Utc,
            data_dir: "data",
            threads,
            inline_warnings: true,
        };
        render(chat, Flavor::Py, &cx).0
    }

    #[test]
    fn py_flavor_reproduces_the_measured_example() {
        let entry = entry();
        let expected = "# Town Square\n\nWelcome **all**\n\n6 messages in 4 threads or single messages\n\n\
            ## Metadata\n\nCreated at 2023-11-14 22:13:20\n\nBelonging to team Team One (team1)\n\n\
            ## Messages\n\n\
            ### Alice Anders at 2023-11-14 22:13:20\nHello *world*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n\
            ### Bobby at 2023-11-14 22:13:21\nreply one\n\n\
            ### Bobby at 2023-11-14 22:14:20\nfiles here :smile:\n\nFiles:\n\n\
            * pic one.png: `data/teams/taaaaaaaaaaaaaaaaaaaaaaaa1__team1/caaaaaaaaaaaaaaaaaaaaaaaa1__town-square/files/faaaaaaaaaaaaaaaaaaaaaaaa1__pic one.png`\n\
            * gone.txt: `None`\n\nReactions:\n\n* Alice Anders: `+1`\n* uzzzzzzzzzzzzzzzzzzzzzzzz9: `custom_party`\n\n\
            ### carol at 2023-11-14 22:14:50\nreply two (later file, earlier than p4)\n\n\
            ### uzzzzzzzzzzzzzzzzzzzzzzzz9 at 2023-11-14 22:15:20\nfrom a deleted user\n\n\
            ### carol at 2023-11-14 22:16:20\ncarol joined the channel.\n\n\
            ### Alice Anders at 2023-11-14 22:17:20\n\n\n";
        assert_eq!(py(&fixture(&entry), false), expected);
        assert_eq!(expected.len(), 859, "the measured size");
    }

    #[test]
    fn py_warning_for_a_file_without_info_goes_where_python_prints_it() {
        let entry = entry();
        let mut chat = fixture(&entry);
        let mut json: Value = serde_json::from_str(&chat.posts[2].record.json).unwrap();
        let ids = json.get_mut("file_ids").unwrap();
        ids.as_array_mut().unwrap().insert(0, json!("fnoinfo"));
        chat.posts[2] = stored(json);
        let warning =
            "WARNING: cannot find file with data about attachment ID fnoinfo. Skipping attachment.";
        // To stdout, Python's print lands in the document, before the `Files:` header.
        assert!(py(&chat, false).contains(&format!("files here :smile:\n\n{warning}\nFiles:\n")));
        // With -o it goes to the terminal: the document is as without the id.
        let people = people();
        let cx = MarkdownContext {
            people: &people,
            tz: &Utc,
            data_dir: "data",
            threads: false,
            inline_warnings: false,
        };
        let (doc, warnings) = render(&chat, Flavor::Py, &cx);
        assert_eq!(warnings, vec![warning.to_owned()]);
        assert!(!doc.contains("WARNING"));
    }

    #[test]
    fn py_threads_group_by_root_file_order_and_repeat_an_early_reply() {
        let entry = entry();
        let mut chat = fixture(&entry);
        let out = py(&chat, true);
        assert!(
            out.contains("## Messages\n\n### Thread\n#### Alice Anders at 2023-11-14 22:13:20\n")
        );
        let order: Vec<&str> = out.lines().filter(|l| l.starts_with("#### ")).collect();
        assert_eq!(order.len(), 7, "each post once: {order:?}");
        assert!(
            order[1].starts_with("#### Bobby at 2023-11-14 22:13:21"),
            "replies by time"
        );
        assert!(order[2].starts_with("#### carol at 2023-11-14 22:14:50"));
        assert_eq!(out.matches("### Thread\n").count(), 5);
        // A reply whose file sorts before its root's (clock skew) is printed twice, alone
        // and in its thread, as matterexport does.
        chat.posts.insert(
            0,
            post(
                "p0",
                T0 - 5_000,
                CAROL,
                "early reply",
                json!({"root_id": "p1"}),
            ),
        );
        chat.threads.get_mut("p1").unwrap().push("p0".into());
        let out = py(&chat, true);
        assert_eq!(out.matches("early reply").count(), 2, "{out}");
    }

    /// The fixture with its stored file `faaa…1` renamed to each of `names` in turn; the
    /// `Files:` line of each rendering.
    fn file_lines(flavor: Flavor, names: &[&str]) -> Vec<String> {
        let entry = entry();
        let people = people();
        let cx = MarkdownContext {
            people: &people,
            tz: &Utc,
            data_dir: "data",
            threads: false,
            inline_warnings: true,
        };
        names
            .iter()
            .map(|name| {
                let mut chat = fixture(&entry);
                let id = "faaaaaaaaaaaaaaaaaaaaaaaa1";
                let file = chat.files.get_mut(id).unwrap();
                file.record.name = (*name).to_owned();
                file.layout_path = entry.paths.file_bytes(id, name);
                let doc = render(&chat, flavor, &cx).0;
                let start = doc.find("Files:\n\n").unwrap() + "Files:\n\n".len();
                let line_end = doc[start..].find(": `").unwrap();
                let end = start + line_end + doc[start + line_end..].find("`\n").unwrap() + 1;
                doc[start..end].to_owned()
            })
            .collect()
    }

    const FILES: &str = "data/teams/taaaaaaaaaaaaaaaaaaaaaaaa1__team1/caaaaaaaaaaaaaaaaaaaaaaaa1__town-square/files";

    #[test]
    fn py_flavor_paths_are_the_python_backups_whatever_the_name() {
        // Issue #26: the Python tool stores `files/<id>__<name>` with the name as it is, so
        // a name our JSON layout renames (tab, line break, `\`) is still found there.
        let names = [
            "tab\there (1).txt",
            "line\nbreak.txt",
            "back\\slash.txt",
            "..",
            ".hidden",
            "Cafe\u{301}.txt",
        ];
        let expected: Vec<String> = names
            .iter()
            .map(|n| format!("* {n}: `{FILES}/faaaaaaaaaaaaaaaaaaaaaaaa1__{n}`"))
            .collect();
        assert_eq!(file_lines(Flavor::Py, &names), expected);
        assert_eq!(
            file_lines(Flavor::Py, &["tab\there.txt"]),
            [format!(
                "* tab\there.txt: `{FILES}/faaaaaaaaaaaaaaaaaaaaaaaa1__tab\there.txt`"
            )]
        );
        // An empty name: the backup wrote `<id>`, matterexport looks for `<id>__`.
        assert_eq!(file_lines(Flavor::Py, &[""]), ["* : `None`"]);
    }

    #[test]
    fn full_flavor_names_every_stored_file_readably_with_its_layout_path() {
        let lines = file_lines(
            Flavor::Full,
            &[
                "tab\there.txt",
                "line\nbreak.txt",
                "invoice\u{202e}fdp.exe",
                "a\\b",
            ],
        );
        assert_eq!(
            lines,
            [
                format!(
                    "- tab\u{2409}here.txt (3 bytes): `{FILES}/faaaaaaaaaaaaaaaaaaaaaaaa1__tab_here.txt`"
                ),
                format!(
                    "- line\u{240a}break.txt (3 bytes): `{FILES}/faaaaaaaaaaaaaaaaaaaaaaaa1__line_break.txt`"
                ),
                // The path is the file's real one (copied from the document, it opens it).
                format!(
                    "- invoice\\<U+202E\\>fdp.exe (3 bytes): `{FILES}/faaaaaaaaaaaaaaaaaaaaaaaa1__invoice\u{202e}fdp.exe`"
                ),
                format!(r"- a\\b (3 bytes): `{FILES}/faaaaaaaaaaaaaaaaaaaaaaaa1__a_b`"),
            ]
        );
        assert_eq!(readable_file_name(""), "*(no name)*");
        assert_eq!(readable_file_name("x\u{7f}\u{85}"), r"x␡\<U+0085\>");
    }

    #[test]
    fn py_path_normalises_like_pathlib() {
        assert_eq!(py_path("data", "teams/a/b"), "data/teams/a/b");
        assert_eq!(py_path("./data/", "teams/a"), "data/teams/a");
        assert_eq!(py_path("/x//y", "teams/a"), "/x/y/teams/a");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape_inline("*bold* [x](y)"), r"\*bold\* \[x\](y)");
        assert_eq!(escape_inline("report (v2).pdf"), "report (v2).pdf");
        assert_eq!(escape_inline("1. - x"), r"1\. - x");
        assert_eq!(escape_inline("- x"), r"\- x");
        assert_eq!(escape_inline("<b>&amp;"), r"\<b\>\&amp;");
        assert_eq!(escape_inline("a\nb"), "a b");
        assert_eq!(escape_inline("Zoë"), "Zoë");
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code_span("x"), "`x`");
        assert_eq!(code_span("a`b"), "`` a`b ``");
        assert_eq!(code_span("``"), "``` `` ```");
    }
}
