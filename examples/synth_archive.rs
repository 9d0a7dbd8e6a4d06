//! Writes a synthetic archive of a chosen size straight through the catalog and blob store
//! APIs (no server), for export speed and memory measurements.
//!
//! usage: synth_archive DIR POSTS ATTACHMENTS ATTACHMENT_BYTES [CHANNELS]

use matterbak::blobs::BlobStore;
use matterbak::catalog::{Access, Catalog, ChannelCursor};
use matterbak::mm::wire::{self, Raw};
use serde_json::value::RawValue;

fn raw<T: serde::de::DeserializeOwned>(json: String) -> Raw<T> {
    Raw::parse(RawValue::from_string(json).expect("valid JSON")).expect("parses")
}

fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 26 - prefix.len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: synth_archive DIR POSTS ATTACHMENTS ATTACHMENT_BYTES [CHANNELS]");
        std::process::exit(2);
    }
    let dir = std::path::Path::new(&args[1]);
    let posts: usize = args[2].parse().expect("POSTS");
    let attachments: usize = args[3].parse().expect("ATTACHMENTS");
    let attachment_bytes: usize = args[4].parse().expect("ATTACHMENT_BYTES");
    let channels: usize = args.get(5).map_or(10, |c| c.parse().expect("CHANNELS"));
    std::fs::create_dir_all(dir).unwrap();
    let mut catalog = Catalog::open(dir, Access::ReadWrite).unwrap();
    let blobs = BlobStore::open(dir).unwrap();
    let run = catalog.begin_run(0, "synth").unwrap();
    catalog.set_run_user(run, &id("u", 0), "synth").unwrap();
    let team = id("t", 0);
    catalog
        .upsert_team(
            &raw(format!(
                r#"{{"id":"{team}","name":"synth","display_name":"Synth","update_at":1}}"#
            )),
            true,
        )
        .unwrap();
    let per_channel = posts.div_ceil(channels);
    let files_every = posts
        .checked_div(attachments)
        .map_or(usize::MAX, |n| n.max(1));
    let mut file_n = 0;
    for c in 0..channels {
        let channel = id("c", c);
        catalog
            .upsert_channel(
                &raw(format!(r#"{{"id":"{channel}","team_id":"{team}","type":"O","name":"channel-{c}","display_name":"Channel {c}"}}"#)),
                true,
                None,
            )
            .unwrap();
        let mut page = Vec::new();
        let mut pending_blobs = Vec::new();
        for p in c * per_channel..((c + 1) * per_channel).min(posts) {
            let post = id("p", p);
            let at = 1_700_000_000_000i64 + p as i64 * 1000;
            let mut metadata = String::from("{}");
            if p % files_every == 0 && file_n < attachments {
                let file = id("f", file_n);
                file_n += 1;
                // Distinct bytes per file, generated without holding them all.
                let mut writer = blobs.writer().unwrap();
                let mut chunk = vec![0u8; 64 * 1024];
                let mut left = attachment_bytes;
                let mut state = (file_n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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
                pending_blobs.push((file.clone(), writer.commit().unwrap()));
                metadata = format!(
                    r#"{{"files":[{{"id":"{file}","user_id":"{u}","post_id":"{post}","channel_id":"{channel}","create_at":{at},"name":"file-{file_n}.bin","extension":"bin","size":{attachment_bytes},"mime_type":"application/octet-stream"}}]}}"#,
                    u = id("u", p % 50)
                );
            }
            page.push(raw::<wire::Post>(format!(
                r#"{{"id":"{post}","create_at":{at},"update_at":{at},"edit_at":0,"delete_at":0,"is_pinned":false,"user_id":"{u}","channel_id":"{channel}","root_id":"","original_id":"","message":"synthetic message {p} with a little text","type":"","props":{{}},"hashtags":"","pending_post_id":"","reply_count":0,"last_reply_at":0,"participants":null,"metadata":{metadata}}}"#,
                u = id("u", p % 50)
            )));
            if page.len() == 200 {
                catalog
                    .apply_posts_page(&channel, &page, &ChannelCursor::default(), "ok", 0)
                    .unwrap();
                page.clear();
                for (file, blob) in pending_blobs.drain(..) {
                    catalog.set_file_blob(&file, &blob, 0).unwrap();
                }
            }
        }
        catalog
            .apply_posts_page(&channel, &page, &ChannelCursor::default(), "ok", 0)
            .unwrap();
        for (file, blob) in pending_blobs.drain(..) {
            catalog.set_file_blob(&file, &blob, 0).unwrap();
        }
    }
    eprintln!(
        "synthetic archive: {posts} posts in {channels} channels, {file_n} attachments of {attachment_bytes} bytes"
    );
}
