//! Writes a synthetic archive of a chosen size straight through the catalog and blob store
//! APIs (no server), for the archive-only benches (export, import, website, bulk-import).
//! The posts are the mock generator's ([`matterbak::mock::GenPosts`]): shaped like a busy
//! real workspace (threads with a long tail and one very long thread, Markdown, code blocks,
//! mentions, hashtags, reactions, messages up to 16,383 characters, a Zipf vocabulary), in
//! one team, by 50 users, written as a sync writes them (pages of 200 posts per channel).
//!
//! usage: synth_archive DIR POSTS ATTACHMENTS ATTACHMENT_BYTES [CHANNELS [--edit INDEX]]
//!        (CHANNELS: 10)
//!
//! Prints one line to stderr: posts, replies, threads, longest thread, reactions,
//! attachments, longest message (the benches check the posts against the catalog).
//! With `--edit INDEX` it writes nothing else than an edit of post INDEX of the archive the
//! same arguments made (its message gets a suffix, `edit_at` is set), entered as a sync
//! enters a changed post: for the benches of what a rebuild does after one change.

use std::collections::HashMap;

use matterbak::archive::{Archive, Claim};
use matterbak::blobs::{BlobLocation, BlobStore};
use matterbak::catalog::{Catalog, ChannelCursor, LastOutcome};
use matterbak::mock::{GenPost, GenPosts, GenSpec, generated_username};
use matterbak::model::object::{self, Raw};
use serde_json::value::RawValue;

const USERS: usize = 50;
const START_MS: i64 = 1_700_000_000_000;

fn raw<T: serde::de::DeserializeOwned>(json: String) -> Raw<T> {
    Raw::parse(RawValue::from_string(json).expect("valid JSON")).expect("parses")
}

fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 26 - prefix.len())
}

fn json(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// Distinct bytes per file, generated in chunks (never all held at once).
fn write_blob(blobs: &BlobStore, number: usize, size: usize) -> matterbak::model::BlobRef {
    let mut writer = blobs.writer().unwrap();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut left = size;
    let mut state = (number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    while left > 0 {
        for b in chunk.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        let n = left.min(chunk.len());
        std::io::Write::write_all(&mut writer, &chunk[..n]).unwrap();
        left -= n;
    }
    writer.commit().unwrap()
}

/// The post as the server sends it (`metadata` with its reactions and file infos); an
/// edited post with `edit_at` (and `update_at`) at `edited`.
fn post_json(post: &GenPost, attachment_bytes: usize, edited: Option<i64>) -> String {
    let at = START_MS + post.offset_ms;
    let pid = id("p", post.index);
    let channel = id("c", post.channel);
    let user = id("u", post.author);
    let reactions: Vec<String> = post
        .reactions
        .iter()
        .enumerate()
        .map(|(n, (u, emoji))| {
            let at = at + 1 + n as i64;
            format!(
                r#"{{"user_id":"{}","post_id":"{pid}","emoji_name":{},"create_at":{at},"update_at":{at},"delete_at":0,"remote_id":"","channel_id":"{channel}"}}"#,
                id("u", *u),
                json(emoji)
            )
        })
        .collect();
    let (file_ids, files) = match &post.attachment {
        Some(file) => {
            let fid = id("f", file.number);
            let ext = file.name.rsplit('.').next().unwrap_or("");
            (
                format!(r#"["{fid}"]"#),
                format!(
                    r#"[{{"id":"{fid}","user_id":"{user}","post_id":"{pid}","channel_id":"{channel}","create_at":{at},"update_at":{at},"delete_at":0,"name":{},"extension":"{ext}","size":{attachment_bytes},"mime_type":"{}"}}]"#,
                    json(&file.name),
                    file.mime_type
                ),
            )
        }
        None => ("[]".to_owned(), "[]".to_owned()),
    };
    let update_at = edited.unwrap_or(at + post.reactions.len() as i64);
    let edit_at = edited.unwrap_or(0);
    format!(
        r#"{{"id":"{pid}","create_at":{at},"update_at":{update_at},"edit_at":{edit_at},"delete_at":0,"is_pinned":false,"user_id":"{user}","channel_id":"{channel}","root_id":"{root}","original_id":"","message":{message},"type":"","props":{{}},"hashtags":"","pending_post_id":"","reply_count":0,"last_reply_at":0,"participants":null,"file_ids":{file_ids},"metadata":{{"reactions":[{reactions}],"files":{files}}}}}"#,
        root = post.root.map(|r| id("p", r)).unwrap_or_default(),
        message = json(&post.message),
        reactions = reactions.join(","),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!(
            "usage: synth_archive DIR POSTS ATTACHMENTS ATTACHMENT_BYTES [CHANNELS [--edit INDEX]]"
        );
        std::process::exit(2);
    };
    if args.len() < 5 {
        usage();
    }
    let dir = std::path::Path::new(&args[1]);
    let spec = GenSpec {
        teams: 1,
        channels: args.get(5).map_or(10, |c| c.parse().expect("CHANNELS")),
        posts: args[2].parse().expect("POSTS"),
        attachments: args[3].parse().expect("ATTACHMENTS"),
        attachment_bytes: args[4].parse().expect("ATTACHMENT_BYTES"),
        users: USERS,
        seed: 1,
    };
    if args.len() > 6 {
        match (
            args[6].as_str(),
            args.get(7).and_then(|i| i.parse::<usize>().ok()),
        ) {
            ("--edit", Some(index)) if index < spec.posts => return edit(dir, &spec, index),
            _ => usage(),
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let mut archive = Archive::at(dir)
        .open_write(&BlobLocation::Local, Claim::AnyDirectory)
        .unwrap();
    archive.prepare_blobs().unwrap();
    let (catalog, blobs) = archive.catalog_and_blobs();
    let run = catalog.begin_run(0, "synth").unwrap();
    catalog
        .set_run_user(run, &id("u", 0).into(), &generated_username(0))
        .unwrap();
    let users: Vec<Raw<object::User>> = (0..USERS)
        .map(|u| {
            raw(format!(
                r#"{{"id":"{}","create_at":1,"update_at":1,"delete_at":0,"username":"{}","first_name":"First{u}","last_name":"Last{u}","nickname":"","email":"{}@example.com","position":"","roles":"system_user","locale":"en","is_bot":false,"last_picture_update":0}}"#,
                id("u", u),
                generated_username(u),
                generated_username(u)
            ))
        })
        .collect();
    catalog.upsert_users(&users).unwrap();
    let team = id("t", 0);
    catalog
        .upsert_team(
            &raw(format!(
                r#"{{"id":"{team}","name":"synth","display_name":"Synth","update_at":1}}"#
            )),
            true,
        )
        .unwrap();
    for c in 0..spec.channels {
        catalog
            .upsert_channel(
                &raw(format!(r#"{{"id":"{}","team_id":"{team}","type":"O","name":"channel-{c}","display_name":"Channel {c}","update_at":1}}"#, id("c", c))),
                true,
                None,
            )
            .unwrap();
    }
    // Pages per channel, as a sync commits them: posts, then the blobs of their files.
    let mut pages: Vec<Vec<Raw<object::Post>>> = (0..spec.channels).map(|_| Vec::new()).collect();
    let mut pending: Vec<Vec<(String, matterbak::model::BlobRef)>> =
        (0..spec.channels).map(|_| Vec::new()).collect();
    let flush = |catalog: &mut Catalog,
                 c: usize,
                 pages: &mut Vec<Vec<Raw<object::Post>>>,
                 pending: &mut Vec<Vec<(String, matterbak::model::BlobRef)>>| {
        catalog
            .apply_posts_page(
                &id("c", c).into(),
                &pages[c],
                &ChannelCursor::default(),
                LastOutcome::Ok,
                0,
            )
            .unwrap();
        pages[c].clear();
        for (file, blob) in pending[c].drain(..) {
            catalog
                .set_file_blob(&file.as_str().into(), &blob, 0)
                .unwrap();
        }
    };
    let (mut replies, mut reactions, mut files, mut longest_message) = (0, 0, 0, 0);
    let mut thread_lengths: HashMap<usize, usize> = HashMap::new();
    for post in GenPosts::new(&spec) {
        let c = post.channel;
        if let Some(root) = post.root {
            replies += 1;
            *thread_lengths.entry(root).or_default() += 1;
        }
        reactions += post.reactions.len();
        longest_message = longest_message.max(post.message.chars().count());
        if let Some(file) = &post.attachment {
            let blob = write_blob(blobs, file.number, spec.attachment_bytes);
            pending[c].push((id("f", file.number), blob));
            files += 1;
        }
        pages[c].push(raw(post_json(&post, spec.attachment_bytes, None)));
        if pages[c].len() == 200 {
            flush(catalog, c, &mut pages, &mut pending);
        }
    }
    for c in 0..spec.channels {
        flush(catalog, c, &mut pages, &mut pending);
    }
    eprintln!(
        "synthetic archive: {} posts in {} channels ({replies} replies in {} threads, longest \
         thread {} replies), {reactions} reactions, {files} attachments of {} bytes, longest \
         message {longest_message} characters",
        spec.posts,
        spec.channels,
        thread_lengths.len(),
        thread_lengths.values().max().copied().unwrap_or(0),
        spec.attachment_bytes
    );
}

/// Enters an edit of post `index` as a sync's `since` answer would bring it.
fn edit(dir: &std::path::Path, spec: &GenSpec, index: usize) {
    let mut post = GenPosts::new(spec).nth(index).expect("index < posts");
    post.message.push_str(" (edited)");
    let edited = START_MS + post.offset_ms + 86_400_000;
    let mut archive = Archive::at(dir)
        .open_write(&BlobLocation::Local, Claim::AnyDirectory)
        .unwrap();
    archive
        .catalog()
        .apply_posts_page(
            &id("c", post.channel).into(),
            &[raw(post_json(&post, spec.attachment_bytes, Some(edited)))],
            &ChannelCursor::default(),
            LastOutcome::Ok,
            0,
        )
        .unwrap();
    eprintln!(
        "synthetic archive: post {} of channel {} edited",
        id("p", index),
        id("c", post.channel)
    );
}
