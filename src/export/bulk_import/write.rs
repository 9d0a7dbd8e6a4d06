//! Streams the restore: from one read-only snapshot of the catalog, [`super::plan`] decides
//! names, accounts and memberships (small), then the posts go channel by channel into
//! `import.jsonl`, the zip's first entry, and after it every referenced file. Each line
//! passes the validator before it is written; the first failure stops the export and no zip
//! appears. The report and the `mmctl` script ([`super::report`]) are written beside it.
//!
//! Memory: the plan (teams, channels, users) plus one channel at a time, read as a
//! [`ChannelView`], and one 16-byte key per root post of that channel.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::plan::{Plan, PlannedDirect, PlannedUser, image_ext, is_guest, plan};
use super::report::{changed, fit_runes, mmctl_script, omitted, render_report};
use super::rules::{self, rune_len};
use super::validate::{Level, Validator};
use super::{BulkError, BulkOptions, BulkReport, JSONL_NAME};
use crate::archive::ReadArchive;
use crate::blobs::BlobStore;
use crate::catalog::{Catalog, FileRecord, PostRecord, ReactionRecord};
use crate::export::sink::{Sink, ZipSink};
use crate::export::view::{Channel, ChannelView, Post};
use crate::model::emoji::is_system_emoji_name;
use crate::model::{BlobId, PostId};

/// Writes the bulk-import zip of `archive` to `zip`, the report to `<zip stem>.report.txt`
/// and the membership script to `<zip stem>.mmctl.sh` beside it.
pub fn export_bulk_import(
    archive: &ReadArchive,
    zip: &Path,
    options: &BulkOptions,
) -> Result<BulkReport, BulkError> {
    // The zip and the two files written beside it, all checked before anything is written.
    for path in [zip, &sibling(zip, "mmctl.sh"), &sibling(zip, "report.txt")] {
        crate::outdir::check_file(path)?;
    }
    let catalog = archive.catalog();
    let blobs = archive.blobs()?;
    catalog.begin_snapshot()?;
    let result = run(catalog, blobs, zip, options);
    catalog.end_snapshot()?;
    let (mut report, script) = result?;
    report.script = sibling(zip, "mmctl.sh");
    report.report = sibling(zip, "report.txt");
    write_file(&report.script, &script)?;
    write_file(&report.report, &render_report(&report))?;
    Ok(report)
}

/// `<dir>/<zip stem>.<suffix>`.
fn sibling(zip: &Path, suffix: &str) -> PathBuf {
    let stem = zip.file_stem().unwrap_or_default().to_string_lossy();
    zip.with_file_name(format!("{stem}.{suffix}"))
}

fn write_file(path: &Path, text: &str) -> Result<(), BulkError> {
    std::fs::write(path, text).map_err(|source| BulkError::Write {
        path: path.to_owned(),
        source,
    })
}

fn run(
    catalog: &Catalog,
    blobs: &BlobStore,
    zip: &Path,
    options: &BulkOptions,
) -> Result<(BulkReport, String), BulkError> {
    let mut report = BulkReport::default();
    let plan = plan(catalog, blobs, options, &mut report)?;
    let existing: Vec<String> = plan
        .users
        .values()
        .filter(|u| u.existing)
        .map(|u| u.username.clone())
        .collect();
    let mut writer = Writer {
        catalog,
        blobs,
        options,
        plan: &plan,
        validator: Validator::new(options.max_post_runes, existing),
        report,
        data: Vec::new(),
        jsonl_bytes: 0,
        failed: None,
        buf: Vec::with_capacity(4096),
        root_keys: HashSet::new(),
    };
    let mut sink = ZipSink::create(zip)?;
    let written = sink.file(JSONL_NAME, None, &mut |out: &mut dyn Write| {
        writer.lines(out)
    });
    if let Some(failed) = writer.failed.take() {
        return Err(failed);
    }
    written?;
    let mut entries: HashMap<String, u64> = HashMap::new();
    entries.insert(JSONL_NAME.to_owned(), writer.jsonl_bytes);
    for (rel, _, size) in &writer.data {
        entries.insert(rel.clone(), *size);
    }
    let findings = std::mem::replace(&mut writer.validator, Validator::new(0, [])).finish(&entries);
    let errors: Vec<_> = findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(BulkError::SelfCheck(errors));
    }
    for (rel, blob, size) in &writer.data {
        let mut file = blobs.open_blob(blob).map_err(|e| BulkError::Write {
            path: blobs.name(blob),
            source: io::Error::other(e),
        })?;
        sink.file(rel, Some(*size), &mut |out: &mut dyn Write| {
            io::copy(&mut file, out).map(drop)
        })?;
    }
    Box::new(sink).finish()?;
    let mut report = writer.report;
    report.warnings.extend(
        findings
            .iter()
            .filter(|f| f.level == Level::Warning)
            .map(ToString::to_string),
    );
    let script = mmctl_script(&plan, &mut report);
    Ok((report, script))
}

/// Where posts of a channel go.
enum Target<'a> {
    Team { team: &'a str, channel: &'a str },
    Direct { members: Vec<String> },
}

/// One post line or reply as written (a long post may become several).
struct Piece {
    /// Id of the archived post this piece starts, for reports; `None` for continuations.
    origin: Option<PostId>,
    user: String,
    create_at: i64,
    edit_at: i64,
    message: String,
    kind: String,
    props: Option<Map<String, Value>>,
    is_pinned: bool,
    reactions: Vec<(String, String, i64)>,
    files: Vec<String>,
}

struct Writer<'a> {
    catalog: &'a Catalog,
    blobs: &'a BlobStore,
    options: &'a BulkOptions,
    plan: &'a Plan,
    validator: Validator,
    report: BulkReport,
    /// `data/...` entries to write after the JSONL: path, blob, size.
    data: Vec<(String, BlobId, u64)>,
    jsonl_bytes: u64,
    /// Why the JSONL stopped, when it was not the sink.
    failed: Option<BulkError>,
    buf: Vec<u8>,
    /// `(create_at, message)` keys of the current channel's roots.
    root_keys: HashSet<[u8; 16]>,
}

fn stop(failed: &mut Option<BulkError>, e: BulkError) -> io::Error {
    *failed = Some(e);
    io::Error::other("bulk import stopped")
}

impl Writer<'_> {
    /// Validates one line and writes it.
    fn emit(&mut self, out: &mut dyn Write, line: Value) -> io::Result<()> {
        let before = self.validator.errors().count();
        self.validator.check(&line);
        if self.validator.errors().count() > before {
            let errors = self.validator.errors().skip(before).cloned().collect();
            return Err(stop(&mut self.failed, BulkError::SelfCheck(errors)));
        }
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &line).map_err(io::Error::other)?;
        self.buf.push(b'\n');
        out.write_all(&self.buf)?;
        self.jsonl_bytes += self.buf.len() as u64;
        Ok(())
    }

    fn lines(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let plan = self.plan;
        self.emit(
            out,
            json!({"type": "version", "version": 1, "info": {"generator": "matterbak", "version": env!("CARGO_PKG_VERSION")}}),
        )?;
        let emojis = self
            .catalog
            .load_live_emojis()
            .map_err(|e| stop(&mut self.failed, e.into()))?;
        for emoji in emojis {
            self.emoji(out, &emoji.name, emoji.image.as_ref())?;
        }
        for team in &plan.teams {
            let object = &team.team.object;
            let type_ = if object.kind == "I" { "I" } else { "O" };
            let display = object.display_name.as_str();
            let subject = format!("team {}", team.team.record.name);
            let display = fit_runes(
                &mut self.report,
                &subject,
                "display name",
                if display.is_empty() {
                    &team.name
                } else {
                    display
                },
                rules::MAX_DISPLAY_NAME_RUNES,
            );
            let description = object.description.as_str();
            if description.len() > rules::MAX_TEAM_DESCRIPTION_BYTES {
                changed(
                    &mut self.report,
                    &subject,
                    "description cut to 255 bytes (the server's limit)",
                );
            }
            let open = object.allow_open_invite;
            self.emit(out, json!({"type": "team", "team": {
                "name": team.name, "display_name": display, "type": type_,
                "description": rules::truncate_bytes(description, rules::MAX_TEAM_DESCRIPTION_BYTES),
                "allow_open_invite": open && type_ == "O",
            }}))?;
            self.report.teams += 1;
        }
        for c in &plan.channels {
            let mut channel = json!({
                "team": plan.teams[c.team].name, "name": c.name, "display_name": c.display_name,
                "type": c.kind.code(), "header": c.header, "purpose": c.purpose,
            });
            if c.deleted_at > 0 {
                channel["deleted_at"] = json!(c.deleted_at);
            }
            self.emit(out, json!({"type": "channel", "channel": channel}))?;
            self.report.channels += 1;
        }
        self.accounts(out)?;
        for c in &plan.channels {
            let target = Target::Team {
                team: &plan.teams[c.team].name,
                channel: &c.name,
            };
            self.channel_posts(
                out,
                &c.channel,
                &format!("{}/{}", plan.teams[c.team].name, c.name),
                &target,
            )?;
        }
        for d in &plan.directs {
            let members = self.direct_members(d);
            self.emit(out, json!({"type": "direct_channel", "direct_channel": {"members": members, "header": d.header}}))?;
            self.report.direct_channels += 1;
        }
        for d in &plan.directs {
            let members = self.direct_members(d);
            let label = format!("direct channel of {}", members.join(", "));
            self.channel_posts(out, &d.channel, &label, &Target::Direct { members })?;
        }
        Ok(())
    }

    /// Usernames of a direct channel (the same one twice for a self-DM).
    fn direct_members(&self, d: &PlannedDirect) -> Vec<String> {
        d.members
            .iter()
            .map(|id| self.plan.users[id].username.clone())
            .collect()
    }

    fn emoji(
        &mut self,
        out: &mut dyn Write,
        name: &str,
        image: Option<&(BlobId, String)>,
    ) -> io::Result<()> {
        let subject = format!("emoji {name}");
        if !rules::is_valid_emoji_name(name) {
            omitted(
                &mut self.report,
                subject,
                "the server accepts only names of a-z A-Z 0-9 + _ - (at most 64)",
            );
            return Ok(());
        }
        if is_system_emoji_name(name) {
            omitted(
                &mut self.report,
                subject,
                "the target server has a system emoji of that name (its importer would skip this one silently)",
            );
            return Ok(());
        }
        let Some((blob, content_type)) = image else {
            omitted(
                &mut self.report,
                subject,
                "its image is not in the archive (an emoji needs one)",
            );
            return Ok(());
        };
        let size = match self.blobs.stored_size(blob).map_err(io::Error::other)? {
            Some(len) => len,
            None => {
                omitted(
                    &mut self.report,
                    subject,
                    "its image bytes are not in the blob store",
                );
                return Ok(());
            }
        };
        if size > 512 * 1024 {
            omitted(
                &mut self.report,
                subject,
                format!("image of {size} bytes: the server takes at most 512 KiB"),
            );
            return Ok(());
        }
        let path = format!("emoji/{name}/image.{}", image_ext(content_type));
        self.emit(
            out,
            json!({"type": "emoji", "emoji": {"name": name, "image": path}}),
        )?;
        self.data.push((format!("data/{path}"), blob.clone(), size));
        self.report.emojis += 1;
        Ok(())
    }

    fn accounts(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let plan = self.plan;
        let mut users: Vec<&PlannedUser> = plan.users.values().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        let mut bots = Vec::new();
        for user in users {
            if user.existing {
                self.report.existing_users += 1;
                continue;
            }
            if user.bot {
                bots.push(user);
                continue;
            }
            let subject = format!("user {}", user.username);
            let guest = is_guest(user);
            let mut line = Map::new();
            line.insert("username".into(), json!(user.username));
            line.insert("email".into(), json!(user.email));
            let u = &user.user;
            for (key, text, max) in [
                ("nickname", &u.nickname, rules::MAX_USER_NAME_RUNES),
                ("first_name", &u.first_name, rules::MAX_USER_NAME_RUNES),
                ("last_name", &u.last_name, rules::MAX_USER_NAME_RUNES),
                ("position", &u.position, rules::MAX_POSITION_RUNES),
            ] {
                if !text.is_empty() {
                    line.insert(
                        key.into(),
                        json!(fit_runes(&mut self.report, &subject, key, text, max)),
                    );
                }
            }
            line.insert(
                "roles".into(),
                json!(if guest { "system_guest" } else { "system_user" }),
            );
            let locale = &u.locale;
            if !locale.is_empty() && locale.len() <= 5 {
                line.insert("locale".into(), json!(locale));
            }
            let delete_at = u.delete_at;
            if delete_at > 0 {
                line.insert("delete_at".into(), json!(delete_at));
            }
            if let Some(path) = self.profile_image(user) {
                line.insert("profile_image".into(), json!(path));
            }
            let teams: Vec<Value> = user
                .teams
                .iter()
                .map(|(&team, (roles, channels))| {
                    let channels: Vec<Value> = channels
                        .iter()
                        .map(|(&c, roles)| json!({"name": plan.channels[c].name, "roles": roles}))
                        .collect();
                    json!({"name": plan.teams[team].name, "roles": roles, "channels": channels})
                })
                .collect();
            if !teams.is_empty() {
                line.insert("teams".into(), Value::Array(teams));
            }
            self.emit(out, json!({"type": "user", "user": line}))?;
            self.report.users += 1;
        }
        for bot in bots {
            let mut line = Map::new();
            line.insert("username".into(), json!(bot.username));
            line.insert("owner".into(), json!(plan.owner_username));
            let display = bot.user.first_name.as_str();
            if !display.is_empty() {
                line.insert(
                    "display_name".into(),
                    json!(rules::truncate_runes(display, rules::MAX_USER_NAME_RUNES)),
                );
            }
            if let Some(path) = self.profile_image(bot) {
                line.insert("profile_image".into(), json!(path));
            }
            changed(
                &mut self.report,
                format!("bot {}", bot.username),
                format!(
                    "written as a bot owned by {} (the archive does not know its owner); its memberships are in the mmctl script",
                    plan.owner_username
                ),
            );
            self.emit(out, json!({"type": "bot", "bot": line}))?;
            self.report.bots += 1;
        }
        Ok(())
    }

    fn profile_image(&mut self, user: &PlannedUser) -> Option<String> {
        let (blob, ext, size) = user.image.as_ref()?;
        let path = format!("users/{}/profile.{ext}", user.username);
        self.data
            .push((format!("data/{path}"), blob.clone(), *size));
        self.report.profile_images += 1;
        Some(path)
    }

    fn channel_posts(
        &mut self,
        out: &mut dyn Write,
        channel: &Channel,
        label: &str,
        target: &Target<'_>,
    ) -> io::Result<()> {
        let mut content = ChannelView::load(self.catalog, channel.clone())
            .map_err(|e| stop(&mut self.failed, e.into()))?;
        let mut files = std::mem::take(&mut content.files);
        let posts: HashMap<&str, &Post> = content.posts.iter().map(|p| (p.id(), p)).collect();
        // Every post (those first seen deleted too, so they are reported) grouped by
        // thread: each root, then its replies oldest first; threads in root id order. A
        // reply whose root is not in the archive forms a group without its root.
        let mut order: Vec<&PostRecord> = content
            .posts
            .iter()
            .map(|p| &p.record)
            .chain(&content.unseen)
            .collect();
        let thread_of = |r: &PostRecord| -> PostId {
            if r.root_id.is_empty() {
                r.id.clone()
            } else {
                r.root_id.clone()
            }
        };
        order.sort_by_cached_key(|r| {
            (
                thread_of(r),
                !r.root_id.is_empty(),
                r.create_at,
                r.id.clone(),
            )
        });
        self.root_keys.clear();
        let mut start = 0;
        while start < order.len() {
            let key = thread_of(order[start]);
            let end = order[start..]
                .iter()
                .position(|r| thread_of(r) != key)
                .map_or(order.len(), |n| start + n);
            let thread: Vec<ThreadPost<'_>> = order[start..end]
                .iter()
                .map(|r| ThreadPost {
                    record: r,
                    post: posts.get(r.id.as_str()).copied(),
                })
                .collect();
            self.thread(out, &thread, label, target, &content.reactions, &mut files)?;
            start = end;
        }
        Ok(())
    }

    fn thread(
        &mut self,
        out: &mut dyn Write,
        rows: &[ThreadPost<'_>],
        label: &str,
        target: &Target<'_>,
        reactions: &HashMap<PostId, Vec<ReactionRecord>>,
        files: &mut HashMap<PostId, Vec<FileRecord>>,
    ) -> io::Result<()> {
        for r in rows.iter().filter(|r| live(r).is_none()) {
            omitted(
                &mut self.report,
                format!("post {} in {label}", r.record.id),
                "deleted on the server; the import format cannot carry deleted posts",
            );
        }
        let (root, replies) = match rows.first() {
            Some(first) if first.record.root_id.is_empty() => (Some(first), &rows[1..]),
            _ => (None, rows),
        };
        match root.and_then(live) {
            Some(root) => {
                let mut pieces = self.pieces(root, label, reactions, files)?;
                for reply in replies.iter().filter_map(live) {
                    pieces.extend(self.pieces(reply, label, reactions, files)?);
                }
                self.write_thread(out, pieces, label, target)
            }
            None => {
                for reply in replies.iter().filter_map(live) {
                    changed(
                        &mut self.report,
                        format!("reply {} in {label}", reply.record.id),
                        "its root post is deleted or not archived: written as a post of its own",
                    );
                    let pieces = self.pieces(reply, label, reactions, files)?;
                    self.write_thread(out, pieces, label, target)?;
                }
                Ok(())
            }
        }
    }

    /// The post as one piece, or several when its text or attachments exceed the limits.
    fn pieces(
        &mut self,
        post: &Post,
        label: &str,
        reactions: &HashMap<PostId, Vec<ReactionRecord>>,
        files: &mut HashMap<PostId, Vec<FileRecord>>,
    ) -> io::Result<Vec<Piece>> {
        let row = &post.record;
        let subject = format!("post {} in {label}", row.id);
        let user = self
            .plan
            .users
            .get(&row.user_id)
            .map_or_else(|| "".to_owned(), |u| u.username.clone());
        let mut props = post.props().cloned();
        if let Some(p) = props.as_mut() {
            let removed = rules::scrub_props(p);
            if !removed.is_empty() {
                changed(
                    &mut self.report,
                    &subject,
                    format!(
                        "props {} removed: they hold ids of the source server",
                        removed.join(", ")
                    ),
                );
            }
            if p.is_empty() {
                props = None;
            }
        }
        let kind = if rules::is_allowed_post_type(&row.kind) {
            row.kind.clone()
        } else {
            changed(
                &mut self.report,
                &subject,
                format!(
                    "type {:?} is not importable: written as a normal post",
                    row.kind
                ),
            );
            String::new()
        };
        let mut post_reactions = Vec::new();
        for r in reactions.get(&row.id).into_iter().flatten() {
            let Some(u) = self.plan.users.get(&r.user_id) else {
                continue;
            };
            if rules::is_valid_emoji_name(&r.emoji_name) {
                post_reactions.push((u.username.clone(), r.emoji_name.clone(), r.create_at));
            } else {
                omitted(
                    &mut self.report,
                    format!("reaction {:?} of {} on {subject}", r.emoji_name, u.username),
                    "the server accepts only emoji names of a-z A-Z 0-9 + _ -",
                );
            }
        }
        let mut paths = Vec::new();
        for f in files.remove(&row.id).unwrap_or_default() {
            let what = format!("attachment {:?} of {subject}", f.name);
            let stored = match f.blob {
                Some(blob) => self
                    .blobs
                    .stored_size(&blob)
                    .map_err(io::Error::other)?
                    .map(|size| (blob, size)),
                None => None,
            };
            let Some((blob, size)) = stored else {
                omitted(&mut self.report, what, "its bytes are not in the archive");
                continue;
            };
            let name = rules::plan_file_name(&f.name);
            if name != f.name {
                changed(
                    &mut self.report,
                    &what,
                    format!("file name written as {name:?} (one path component)"),
                );
            }
            let dir = if !f.id.is_empty() && f.id.bytes().all(|c| c.is_ascii_alphanumeric()) {
                f.id.to_string()
            } else {
                format!("n{}", self.data.len())
            };
            let path = format!("files/{dir}/{name}");
            self.data.push((format!("data/{path}"), blob, size));
            paths.push(path);
        }
        let parts = rules::split_message(&row.message, self.options.max_post_runes);
        let file_parts = paths.len().div_ceil(rules::MAX_FILES_PER_POST);
        let n = parts.len().max(file_parts).max(1);
        if parts.len() > 1 {
            changed(
                &mut self.report,
                &subject,
                format!(
                    "message of {} characters split into {} posts of the thread (the target's limit is {})",
                    rune_len(&row.message),
                    parts.len(),
                    self.options.max_post_runes
                ),
            );
        }
        if file_parts > 1 {
            changed(
                &mut self.report,
                &subject,
                format!(
                    "{} attachments spread over {file_parts} posts of the thread (at most 10 each)",
                    paths.len()
                ),
            );
        }
        let mut chunks = paths.chunks(rules::MAX_FILES_PER_POST);
        let is_pinned = post.is_pinned();
        let mut pieces = Vec::with_capacity(n);
        for i in 0..n {
            let first = i == 0;
            pieces.push(Piece {
                origin: first.then(|| row.id.clone()),
                user: user.clone(),
                create_at: row.create_at + i as i64,
                edit_at: if first { row.edit_at } else { 0 },
                message: parts.get(i).copied().unwrap_or("").to_owned(),
                kind: if first { kind.clone() } else { String::new() },
                props: if first { props.take() } else { None },
                is_pinned: first && is_pinned,
                reactions: if first {
                    std::mem::take(&mut post_reactions)
                } else {
                    Vec::new()
                },
                files: chunks.next().map(<[String]>::to_vec).unwrap_or_default(),
            });
        }
        Ok(pieces)
    }

    fn write_thread(
        &mut self,
        out: &mut dyn Write,
        mut pieces: Vec<Piece>,
        label: &str,
        target: &Target<'_>,
    ) -> io::Result<()> {
        let mut root = pieces.remove(0);
        // Two roots of a channel with one time and text would collapse into one.
        loop {
            let key = root_key(root.create_at, &root.message);
            if self.root_keys.insert(key) {
                break;
            }
            root.create_at += 1;
            changed(
                &mut self.report,
                format!("post {} in {label}", root.origin.as_deref().unwrap_or("")),
                format!(
                    "create_at moved to {} (another post of the channel has the same time and text)",
                    root.create_at
                ),
            );
        }
        let times: Vec<i64> = pieces.iter().map(|p| p.create_at).collect();
        let planned = rules::plan_reply_times(root.create_at, &times);
        for (piece, at) in pieces.iter_mut().zip(planned) {
            if at != piece.create_at
                && let Some(origin) = &piece.origin
            {
                changed(
                    &mut self.report,
                    format!("reply {origin} in {label}"),
                    format!(
                        "create_at moved from {} to {at} (reply times must be unique in a thread and not before the root)",
                        piece.create_at
                    ),
                );
            }
            piece.create_at = at;
        }
        let replies: Vec<Value> = pieces.into_iter().map(|p| self.piece_value(p)).collect();
        let n_replies = replies.len() as u64;
        let mut post = self.piece_value(root);
        let map = post.as_object_mut().expect("an object");
        if !replies.is_empty() {
            map.insert("replies".into(), Value::Array(replies));
        }
        let line = match target {
            Target::Team { team, channel } => {
                map.insert("team".into(), json!(team));
                map.insert("channel".into(), json!(channel));
                self.report.posts += 1;
                json!({"type": "post", "post": post})
            }
            Target::Direct { members } => {
                map.insert("channel_members".into(), json!(members));
                self.report.direct_posts += 1;
                json!({"type": "direct_post", "direct_post": post})
            }
        };
        self.report.replies += n_replies;
        self.emit(out, line)
    }

    fn piece_value(&mut self, p: Piece) -> Value {
        let mut map = Map::new();
        map.insert("user".into(), json!(p.user));
        map.insert("type".into(), json!(p.kind));
        map.insert("message".into(), json!(p.message));
        map.insert("create_at".into(), json!(p.create_at));
        if p.edit_at > 0 {
            map.insert("edit_at".into(), json!(p.edit_at));
        }
        if p.is_pinned {
            map.insert("is_pinned".into(), json!(true));
        }
        if let Some(props) = p.props {
            map.insert("props".into(), Value::Object(props));
        }
        if !p.reactions.is_empty() {
            self.report.reactions += p.reactions.len() as u64;
            let reactions: Vec<Value> = p
                .reactions
                .into_iter()
                .map(|(user, emoji, at)| json!({"user": user, "emoji_name": emoji, "create_at": rules::plan_reaction_time(at, p.create_at)}))
                .collect();
            map.insert("reactions".into(), Value::Array(reactions));
        }
        if !p.files.is_empty() {
            self.report.attachments += p.files.len() as u64;
            let files: Vec<Value> = p
                .files
                .into_iter()
                .map(|path| json!({"path": path}))
                .collect();
            map.insert("attachments".into(), Value::Array(files));
        }
        Value::Object(map)
    }
}

/// A post of a thread as the restore meets it: its record, and its content when we saw
/// it alive.
struct ThreadPost<'a> {
    record: &'a PostRecord,
    post: Option<&'a Post>,
}

/// The post when it is still there and we saw its content: the import format has no
/// deleted posts.
fn live<'a>(r: &ThreadPost<'a>) -> Option<&'a Post> {
    r.post.filter(|_| r.record.delete_at == 0)
}

fn root_key(create_at: i64, message: &str) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(&create_at.to_le_bytes());
    h.update(message.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    key
}
