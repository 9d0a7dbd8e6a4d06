//! Writes what the read commands find: SQL result rows as an aligned text table, CSV or
//! JSON, search hits and archive statistics as text. Every writer streams to any
//! `io::Write` (the CLI hands it stdout); nothing here knows about terminals or SQL.
//!
//! May import: `catalog`, `model` (docs/design.md "Allowed directions").

use std::io::{self, Write};

use crate::catalog::{ArchiveStats, Cell, FollowStats, RowSink, SearchHit};
use crate::model::ChannelType;
use crate::model::naming::ChannelNames;

/// A table's column widths are taken from this many first rows; later rows reuse them (a
/// longer cell just pushes its line wider), so the table streams in constant memory.
pub const TABLE_SAMPLE_ROWS: usize = 100;

/// Cells wider than this do not widen their column further.
const MAX_COLUMN_WIDTH: usize = 60;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text of a cell for the table: control characters escaped so each row stays one line.
fn table_text(cell: &Cell<'_>) -> String {
    match cell {
        Cell::Null => "NULL".to_owned(),
        Cell::Integer(v) => v.to_string(),
        Cell::Real(v) => v.to_string(),
        Cell::Text(t) => t
            .chars()
            .map(|c| match c {
                '\n' => "\\n".to_owned(),
                '\r' => "\\r".to_owned(),
                '\t' => "\\t".to_owned(),
                c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
                c => c.to_string(),
            })
            .collect(),
        Cell::Blob(b) => format!("x'{}'", hex(b)),
    }
}

/// An aligned text table: a header, a rule, one line per row. Numbers align right.
pub struct TableWriter<W: Write> {
    out: W,
    header: Vec<String>,
    /// Rows held back until the widths are known; None once they are printed.
    sample: Option<Vec<Vec<(String, bool)>>>,
    widths: Vec<usize>,
}

impl<W: Write> TableWriter<W> {
    pub fn new(out: W) -> Self {
        TableWriter {
            out,
            header: Vec::new(),
            sample: Some(Vec::new()),
            widths: Vec::new(),
        }
    }

    fn line(&mut self, cells: &[(String, bool)]) -> io::Result<()> {
        let last = cells.len().saturating_sub(1);
        for (i, (text, numeric)) in cells.iter().enumerate() {
            let width = self.widths[i];
            if i > 0 {
                self.out.write_all(b"  ")?;
            }
            if *numeric {
                write!(self.out, "{text:>width$}")?;
            } else if i == last {
                self.out.write_all(text.as_bytes())?;
            } else {
                write!(self.out, "{text:<width$}")?;
            }
        }
        self.out.write_all(b"\n")
    }

    fn flush_sample(&mut self) -> io::Result<()> {
        let Some(sample) = self.sample.take() else {
            return Ok(());
        };
        self.widths = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &sample {
            for (w, (text, _)) in self.widths.iter_mut().zip(row) {
                *w = (*w).max(text.chars().count().min(MAX_COLUMN_WIDTH));
            }
        }
        let header: Vec<(String, bool)> = self.header.iter().map(|h| (h.clone(), false)).collect();
        self.line(&header)?;
        let rule: Vec<(String, bool)> = self
            .widths
            .iter()
            .map(|w| ("-".repeat(*w), false))
            .collect();
        self.line(&rule)?;
        for row in &sample {
            self.line(row)?;
        }
        Ok(())
    }

    /// Prints rows still held back; call once after the last row.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_sample()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> RowSink for TableWriter<W> {
    fn columns(&mut self, names: &[&str]) -> io::Result<()> {
        self.header = names.iter().map(|n| n.to_string()).collect();
        Ok(())
    }

    fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        let row: Vec<(String, bool)> = cells
            .iter()
            .map(|c| (table_text(c), matches!(c, Cell::Integer(_) | Cell::Real(_))))
            .collect();
        match &mut self.sample {
            Some(sample) if sample.len() < TABLE_SAMPLE_ROWS => {
                sample.push(row);
                Ok(())
            }
            Some(_) => {
                self.flush_sample()?;
                self.line(&row)
            }
            None => self.line(&row),
        }
    }
}

/// CSV (RFC 4180): a header line, fields quoted when they hold `,` `"` or a line break,
/// quotes doubled; lines end in `\n`. NULL is an empty field, a blob its hex digits.
pub struct CsvWriter<W: Write> {
    out: W,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        CsvWriter { out }
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn field(&mut self, text: &str) -> io::Result<()> {
        if text.contains([',', '"', '\n', '\r']) {
            write!(self.out, "\"{}\"", text.replace('"', "\"\""))
        } else {
            self.out.write_all(text.as_bytes())
        }
    }

    fn record<'a>(
        &mut self,
        fields: impl Iterator<Item = std::borrow::Cow<'a, str>>,
    ) -> io::Result<()> {
        for (i, f) in fields.enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            self.field(&f)?;
        }
        self.out.write_all(b"\n")
    }
}

impl<W: Write> RowSink for CsvWriter<W> {
    fn columns(&mut self, names: &[&str]) -> io::Result<()> {
        self.record(names.iter().map(|n| (*n).into()))
    }

    fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        self.record(cells.iter().map(|c| match c {
            Cell::Null => "".into(),
            Cell::Integer(v) => v.to_string().into(),
            Cell::Real(v) => v.to_string().into(),
            Cell::Text(t) => (*t).into(),
            Cell::Blob(b) => hex(b).into(),
        }))
    }
}

/// A JSON array of objects, one per row, keyed by column name, written one line per row as
/// rows arrive. NULL is `null`, a blob a string of hex digits, a non-finite real `null`.
pub struct JsonWriter<W: Write> {
    out: W,
    names: Vec<String>,
    rows: u64,
}

impl<W: Write> JsonWriter<W> {
    pub fn new(out: W) -> Self {
        JsonWriter {
            out,
            names: Vec::new(),
            rows: 0,
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out
            .write_all(if self.rows == 0 { b"[]\n" } else { b"\n]\n" })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> RowSink for JsonWriter<W> {
    fn columns(&mut self, names: &[&str]) -> io::Result<()> {
        self.names = names
            .iter()
            .map(|n| serde_json::to_string(n).expect("strings serialize"))
            .collect();
        Ok(())
    }

    fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        self.out
            .write_all(if self.rows == 0 { b"[\n{" } else { b",\n{" })?;
        self.rows += 1;
        for (i, (name, c)) in self.names.iter().zip(cells).enumerate() {
            if i > 0 {
                self.out.write_all(b", ")?;
            }
            self.out.write_all(name.as_bytes())?;
            self.out.write_all(b": ")?;
            match c {
                Cell::Null => self.out.write_all(b"null")?,
                Cell::Integer(v) => write!(self.out, "{v}")?,
                Cell::Real(v) => match serde_json::Number::from_f64(*v) {
                    Some(n) => write!(self.out, "{n}")?,
                    None => self.out.write_all(b"null")?,
                },
                Cell::Text(t) => serde_json::to_writer(&mut self.out, t)?,
                Cell::Blob(b) => write!(self.out, "\"{}\"", hex(b))?,
            }
        }
        self.out.write_all(b"}")
    }
}

/// ms since epoch as `2024-03-01 14:05 UTC`.
pub fn utc_minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Where a post was written: `eng/dev`, `direct/bob`, `group/bob__carol` ([`ChannelNames::path`];
/// `channel` is the name the query views give it: a direct or group channel's people).
pub fn channel_label(team: Option<&str>, channel: &str, channel_type: &str) -> String {
    let kind = ChannelType::from_code(channel_type);
    let names = ChannelNames {
        kind: &kind,
        id: "",
        name: channel,
        display_name: "",
        export_name: None,
    };
    names.path(team)
}

/// Search hits, best first: a line naming time, channel, author and post id, then the
/// snippet indented.
pub fn write_search_hits(out: &mut dyn Write, hits: &[SearchHit]) -> io::Result<()> {
    for hit in hits {
        let author = hit
            .author
            .as_deref()
            .map_or_else(|| "unknown user".to_owned(), |a| format!("@{a}"));
        let mut notes = String::new();
        if hit.root_id.is_some() {
            notes.push_str(" (reply)");
        }
        if hit.deleted {
            notes.push_str(" (deleted)");
        }
        writeln!(
            out,
            "{}  {}  {}  post {}{notes}",
            utc_minute(hit.create_at),
            channel_label(hit.team.as_deref(), &hit.channel, &hit.channel_type),
            author,
            hit.post_id
        )?;
        for line in hit.snippet.lines() {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

/// Bytes as `1.5 MiB` (exact count for small values).
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes.abs() < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value.abs() < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// The statistics as text: per team, per channel, then the blob store and the last run.
pub fn write_stats(out: &mut dyn Write, stats: &ArchiveStats) -> io::Result<()> {
    let mut teams = TableWriter::new(&mut *out);
    teams.columns(&[
        "team",
        "channels",
        "posts",
        "deleted",
        "files",
        "file bytes",
    ])?;
    for t in &stats.teams {
        teams.row(&[
            Cell::Text(t.team.as_deref().unwrap_or("(direct and group)")),
            Cell::Integer(t.channels),
            Cell::Integer(t.posts),
            Cell::Integer(t.deleted_posts),
            Cell::Integer(t.files),
            Cell::Integer(t.file_bytes),
        ])?;
    }
    teams.finish()?;
    writeln!(out)?;
    let mut channels = TableWriter::new(&mut *out);
    channels.columns(&[
        "channel",
        "posts",
        "deleted",
        "files",
        "file bytes",
        "last sync (UTC)",
        "outcome",
    ])?;
    for c in &stats.channels {
        let label = channel_label(c.team.as_deref(), &c.channel, &c.channel_type);
        channels.row(&[
            Cell::Text(&label),
            Cell::Integer(c.posts),
            Cell::Integer(c.deleted_posts),
            Cell::Integer(c.files),
            Cell::Integer(c.file_bytes),
            Cell::Text(c.last_sync.as_deref().unwrap_or("never")),
            Cell::Text(c.last_outcome.as_deref().unwrap_or("-")),
        ])?;
    }
    channels.finish()?;
    writeln!(out)?;
    writeln!(
        out,
        "blob store: {} blobs, {} ({} bytes; attachments, pictures, icons, emojis)",
        stats.blobs,
        human_bytes(stats.blob_bytes),
        stats.blob_bytes
    )?;
    writeln!(
        out,
        "attachments: {} archived, {} ({} bytes) as uploaded, stored in {} ({} bytes): dedup saved {} ({} bytes)",
        stats.attachments_stored,
        human_bytes(stats.attachment_bytes),
        stats.attachment_bytes,
        human_bytes(stats.attachment_blob_bytes),
        stats.attachment_blob_bytes,
        human_bytes(stats.dedup_saved()),
        stats.dedup_saved()
    )?;
    if stats.attachments_missing > 0 {
        writeln!(
            out,
            "attachments without bytes: {} (not fetched yet, or failed: see the attachments view's fetch_error)",
            stats.attachments_missing
        )?;
    }
    if stats.imported_posts > 0 {
        writeln!(
            out,
            "posts only from imported backups: {} (see posts.imported_from)",
            stats.imported_posts
        )?;
    }
    match &stats.last_run {
        Some(run) if run.source.is_some() => writeln!(
            out,
            "last run: import of {}, started {}, outcome {}, {} posts written, {} failed item(s)",
            run.source.as_deref().unwrap_or_default(),
            run.started,
            run.outcome.as_deref().unwrap_or("unknown"),
            run.posts_written,
            run.failures
        ),
        Some(run) => writeln!(
            out,
            "last sync: started {}, finished {}, outcome {}, as {}, {} posts written, {} failed item(s)",
            run.started,
            run.finished
                .as_deref()
                .unwrap_or("never (running, or the process died)"),
            run.outcome.as_deref().unwrap_or("unknown"),
            run.username.as_deref().unwrap_or("unknown user"),
            run.posts_written,
            run.failures
        ),
        None => writeln!(out, "last sync: none recorded"),
    }?;
    match &stats.last_follow {
        Some(follow) => write_follow(out, follow),
        None => Ok(()),
    }
}

/// The last `sync --follow` session: when, the server time of its last event, and each
/// WebSocket connection it held (how it began and ended).
fn write_follow(out: &mut dyn Write, follow: &FollowStats) -> io::Result<()> {
    writeln!(
        out,
        "last follow: started {}, ended {}, {} event(s), last event {}",
        follow.started,
        follow
            .finished
            .as_deref()
            .unwrap_or("never (following, or the process died)"),
        follow.events,
        follow
            .last_event
            .as_deref()
            .map_or_else(|| "none".to_owned(), |at| format!("{at} (server time)")),
    )?;
    let mut connections = TableWriter::new(&mut *out);
    connections.columns(&[
        "connection",
        "kind",
        "opened (UTC)",
        "closed (UTC)",
        "ended",
        "events",
    ])?;
    for c in &follow.connections {
        connections.row(&[
            Cell::Text(&c.connection_id),
            Cell::Text(&c.kind),
            Cell::Text(&c.opened),
            Cell::Text(c.closed.as_deref().unwrap_or("-")),
            Cell::Text(c.ended.as_deref().unwrap_or("open, or the process died")),
            Cell::Integer(c.events),
        ])?;
    }
    connections.finish().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sink: &mut dyn RowSink) {
        sink.columns(&["id", "text", "n"]).unwrap();
        sink.row(&[Cell::Integer(1), Cell::Text("plain"), Cell::Real(1.5)])
            .unwrap();
        sink.row(&[
            Cell::Integer(2),
            Cell::Text("a, \"quoted\"\nline"),
            Cell::Null,
        ])
        .unwrap();
        sink.row(&[
            Cell::Integer(3),
            Cell::Blob(&[0xab, 0x01]),
            Cell::Integer(-7),
        ])
        .unwrap();
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut w = CsvWriter::new(Vec::new());
        run(&mut w);
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            out,
            "id,text,n\n1,plain,1.5\n2,\"a, \"\"quoted\"\"\nline\",\n3,ab01,-7\n"
        );
    }

    #[test]
    fn json_is_an_array_of_objects_and_parses() {
        let mut w = JsonWriter::new(Vec::new());
        run(&mut w);
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"id": 1, "text": "plain", "n": 1.5},
                {"id": 2, "text": "a, \"quoted\"\nline", "n": null},
                {"id": 3, "text": "ab01", "n": -7}
            ])
        );
        let mut empty = JsonWriter::new(Vec::new());
        empty.columns(&["x"]).unwrap();
        assert_eq!(empty.finish().unwrap(), b"[]\n");
    }

    #[test]
    fn table_aligns_and_escapes_line_breaks() {
        let mut w = TableWriter::new(Vec::new());
        run(&mut w);
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            out,
            "id  text               n\n\
             --  -----------------  ----\n\
             \x201  plain               1.5\n\
             \x202  a, \"quoted\"\\nline  NULL\n\
             \x203  x'ab01'              -7\n"
        );
    }

    #[test]
    fn table_streams_rows_after_the_sample_with_the_same_widths() {
        let mut w = TableWriter::new(Vec::new());
        w.columns(&["n", "word"]).unwrap();
        for i in 0..(TABLE_SAMPLE_ROWS as i64 + 5) {
            w.row(&[Cell::Integer(i), Cell::Text("w")]).unwrap();
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), TABLE_SAMPLE_ROWS + 5 + 2);
        assert_eq!(lines[2], " 0  w");
        assert_eq!(lines.last().unwrap(), &"104  w");
    }

    #[test]
    fn labels_and_sizes() {
        assert_eq!(channel_label(Some("eng"), "dev", "O"), "eng/dev");
        assert_eq!(channel_label(None, "bob", "D"), "direct/bob");
        assert_eq!(channel_label(None, "bob__carol", "G"), "group/bob__carol");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(utc_minute(1_700_000_000_000), "2023-11-14 22:13 UTC");
    }
}
