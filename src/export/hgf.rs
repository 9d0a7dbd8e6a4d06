//! `export --format hgf`: one channel as the zip the Helmholtz Mattermost archiver plugin
//! reads (`matterexport hgf` 0.5.2, `viewer-notes.md` §1.9): `channel.json`, `posts.json`
//! (newest first), `threads.json`, `skipped_attachments.json` and `files/<id>-<name>`,
//! JSON as Python's `json.dump(indent=2, ensure_ascii=False)` writes it.
//!
//! Where the Python tool fails we write the right content: it writes an empty zip on
//! Python < 3.13 (we write what 3.13 writes), and it crashes on an attachment whose content
//! is missing (we leave the file out and list it in `skipped_attachments.json`).
//! Attachment names go into `files/<id>-<name>` as they are, as the Python tool copies them
//! (tab, newline, `\`, any Unicode), unlike our JSON layout, which makes names safe. The one
//! exception is a name that a Windows extractor, reading `\` as a separator, would turn
//! into a path out of `files/` (`..\..\x`) or a directory (`x\`): left out and listed, as
//! "file name not usable in a zip".
//! With [`Flavor::Full`], missing post keys default (`[]`, `""`, `{}`) instead of failing,
//! every archived user is named, threads are grouped by `root_id` with no post twice, and a
//! post deleted on the server carries its `delete_at` (with the last text archived).
//!
//! Writes through a [`ZipSink`] (temp file renamed at the end; no directory entries, as
//! Python's zip has none).

use std::io::{self, Write};

use chrono::TimeZone;
use serde_json::{Map, Value};

use super::chat::{Chat, ChatPost, Flavor, People};
use super::sink::{Sink, SinkError, ZipSink};
use crate::blobs::BlobStore;
use crate::model::{FileId, PostId};

/// The post keys the plugin format keeps, in its order.
const POST_KEYS: [&str; 14] = [
    "id",
    "channel_id",
    "user_id",
    "user_username",
    "user_display_name",
    "create_at",
    "update_at",
    "delete_at",
    "message",
    "type",
    "root_id",
    "file_ids",
    "props",
    "hashtags",
];

/// An attachment left out of the zip.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedAttachment {
    pub file_id: FileId,
    pub name: String,
    pub post_id: PostId,
    pub size: i64,
    pub reason: &'static str,
}

/// Writes the HGF zip of `chat` to `zip`; returns the attachments left out.
pub fn write_hgf<Tz: TimeZone>(
    chat: &Chat<'_>,
    people: &People,
    blobs: &BlobStore,
    flavor: Flavor,
    tz: &Tz,
    generated_at: chrono::NaiveDateTime,
    zip: &std::path::Path,
) -> Result<Vec<SkippedAttachment>, SinkError> {
    let mut sink: Box<dyn Sink> = Box::new(
        ZipSink::create(zip)?
            .without_directories()
            .with_backslash_names(),
    );
    json_entry(
        sink.as_mut(),
        "channel.json",
        &Value::Object(chat.channel_object.clone()),
    )?;
    // posts.json and threads.json stream post by post: no second copy of the channel.
    let subset = |i: usize, level: usize| -> String {
        let mut text = String::new();
        py_indent_json(
            &post_subset(&chat.posts[i], people, flavor),
            level,
            &mut text,
        );
        text
    };
    sink.file("posts.json", None, &mut |out: &mut dyn Write| {
        let newest_first = (0..chat.posts.len()).rev().map(|i| subset(i, 1));
        write_py_array(out, 0, newest_first)
    })?;
    let threads = match flavor {
        Flavor::Py => chat.py_threads(tz),
        Flavor::Full => chat.threads_by_root(),
    };
    sink.file("threads.json", None, &mut |out: &mut dyn Write| {
        let objects = threads.iter().map(|t| {
            // {"root_id": …, "root": {…}, "replies": [...]} at level 1, "replies" only
            // when there are any, as the Python tool writes it.
            let mut text = String::from("{\n    \"root_id\": ");
            py_string(chat.posts[t[0]].id(), &mut text);
            text.push_str(",\n    \"root\": ");
            text.push_str(&subset(t[0], 2));
            if t.len() > 1 {
                text.push_str(",\n    \"replies\": ");
                let mut replies = Vec::new();
                write_py_array(&mut replies, 2, t[1..].iter().map(|&i| subset(i, 3)))
                    .expect("writing to a Vec");
                text.push_str(&String::from_utf8(replies).expect("UTF-8 in, UTF-8 out"));
            }
            text.push_str("\n  }");
            text
        });
        write_py_array(out, 0, objects)
    })?;

    let mut skipped = Vec::new();
    let mut written = std::collections::HashSet::new();
    for post in &chat.posts {
        for id in post.file_ids() {
            let Some(file) = chat.files.get(id) else {
                // No file info either: the Python tool skips these too (with a warning).
                continue;
            };
            // The name as it is (tab, newline, `\`, any Unicode): the Python tool copies
            // every attachment it has to `files/<id>-<name>`, and the plugin finds it there.
            let rel = format!("files/{id}-{}", file.record.name);
            let opened = if file.stored && super::sink::check_zip_member(&rel).is_ok() {
                match file.record.blob.as_ref().map(|b| blobs.open_blob(b)) {
                    Some(Ok(reader)) => Some(reader),
                    Some(Err(e)) if !e.is_missing() => {
                        return Err(SinkError::Io {
                            op: "read the attachment for",
                            path: rel.into(),
                            source: std::io::Error::other(e),
                        });
                    }
                    _ => None,
                }
            } else {
                None
            };
            let Some(mut content) = opened else {
                skipped.push(SkippedAttachment {
                    file_id: id.clone(),
                    name: file.record.name.clone(),
                    post_id: post.record.id.clone(),
                    size: file.record.size,
                    reason: if file.stored {
                        "file name not usable in a zip"
                    } else {
                        "content not in the archive"
                    },
                });
                continue;
            };
            if !written.insert(rel.clone()) {
                continue;
            }
            let len = Some(content.len());
            sink.file(&rel, len, &mut |out: &mut dyn Write| {
                io::copy(&mut content, out).map(drop)
            })?;
        }
    }
    let total: i64 = skipped.iter().map(|s| s.size).sum();
    let mut report = Map::new();
    report.insert(
        "generated_at".into(),
        Value::String(generated_at.format("%Y-%m-%dT%H:%M:%S").to_string()),
    );
    report.insert("omitted_count".into(), Value::from(skipped.len()));
    report.insert("omitted_total".into(), Value::String(format!("{total} B")));
    report.insert("max_per_file".into(), Value::String("0 B".into()));
    report.insert(
        "attachments".into(),
        serde_json::to_value(&skipped).expect("plain data serializes"),
    );
    json_entry(
        sink.as_mut(),
        "skipped_attachments.json",
        &Value::Object(report),
    )?;
    sink.finish()?;
    Ok(skipped)
}

fn post_subset(post: &ChatPost, people: &People, flavor: Flavor) -> Value {
    let person = people.get(&post.record.user_id, flavor);
    let username = person
        .and_then(|p| p.username.clone())
        .unwrap_or_else(|| "Unknown".into());
    let display = match person {
        None => "Unknown".to_owned(),
        Some(p) => {
            let given = p.given_name();
            if !given.is_empty() {
                given
            } else {
                p.username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "Unknown".into())
            }
        }
    };
    let stored = post.stored_fields(&POST_KEYS);
    let mut out = Map::new();
    for key in POST_KEYS {
        let value = match key {
            "user_username" => Value::String(username.clone()),
            "user_display_name" => Value::String(display.clone()),
            // The stored JSON is the post's last content seen alive (`delete_at` 0, §15.8);
            // the column says whether the server deleted it since. The Python tool read only
            // the JSON.
            "delete_at" if flavor == Flavor::Full && post.record.delete_at > 0 => {
                Value::from(post.record.delete_at)
            }
            _ => match stored.get(key) {
                Some(v) => v.clone(),
                None => match key {
                    "file_ids" => Value::Array(Vec::new()),
                    "props" => Value::Object(Map::new()),
                    "hashtags" | "message" | "type" | "root_id" => Value::String(String::new()),
                    _ => Value::Null,
                },
            },
        };
        out.insert(key.to_owned(), value);
    }
    Value::Object(out)
}

fn json_entry(sink: &mut dyn Sink, rel: &str, value: &Value) -> Result<(), SinkError> {
    let mut text = String::new();
    py_indent_json(value, 0, &mut text);
    sink.file(rel, None, &mut |out: &mut dyn Write| {
        out.write_all(text.as_bytes())
    })
}

/// A JSON array at `level` as `json.dumps(indent=2)` writes it, from items already
/// rendered at `level + 1`.
fn write_py_array(
    out: &mut dyn Write,
    level: usize,
    items: impl Iterator<Item = String>,
) -> io::Result<()> {
    let pad = "  ".repeat(level + 1);
    let mut any = false;
    for item in items {
        out.write_all(if any { b",\n" } else { b"[\n" })?;
        out.write_all(pad.as_bytes())?;
        out.write_all(item.as_bytes())?;
        any = true;
    }
    if any {
        out.write_all(b"\n")?;
        out.write_all("  ".repeat(level).as_bytes())?;
        out.write_all(b"]")
    } else {
        out.write_all(b"[]")
    }
}

/// Python's `json.dumps(value, indent=2, ensure_ascii=False)`: no trailing newline, raw
/// UTF-8, only `"`, `\`, and control characters escaped.
pub fn py_indent_json(value: &Value, level: usize, out: &mut String) {
    let pad = |out: &mut String, level: usize| {
        out.push('\n');
        for _ in 0..level {
            out.push_str("  ");
        }
    };
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => py_string(s, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, level + 1);
                py_indent_json(item, level + 1, out);
            }
            pad(out, level);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, level + 1);
                py_string(key, out);
                out.push_str(": ");
                py_indent_json(item, level + 1, out);
            }
            pad(out, level);
            out.push('}');
        }
    }
}

fn py_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn streamed_arrays_equal_whole_documents() {
        let items = [json!({"a": 1, "b": [1, {"c": []}]}), json!("x"), json!([])];
        for level in [0, 2] {
            let mut whole = String::new();
            py_indent_json(&Value::Array(items.to_vec()), level, &mut whole);
            let mut streamed = Vec::new();
            let rendered = items.iter().map(|v| {
                let mut text = String::new();
                py_indent_json(v, level + 1, &mut text);
                text
            });
            write_py_array(&mut streamed, level, rendered).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), whole);
        }
        let mut empty = Vec::new();
        write_py_array(&mut empty, 1, std::iter::empty()).unwrap();
        assert_eq!(empty, b"[]");
    }

    #[test]
    fn indent_json_matches_python() {
        // Python: json.dumps(v, indent=2, ensure_ascii=False)
        let v: Value = serde_json::from_str(
            r#"{"a": [1, {"b": "Zoë \"x\"\n\u001b"}, [], {}], "c": null, "d": true}"#,
        )
        .unwrap();
        let mut out = String::new();
        py_indent_json(&v, 0, &mut out);
        assert_eq!(
            out,
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"Zoë \\\"x\\\"\\n\\u001b\"\n    },\n    [],\n    {}\n  ],\n  \"c\": null,\n  \"d\": true\n}"
        );
    }
}
