//! `matterbak sql`, `search` and `stats`: flags, opening the archive for reading
//! (`super::open_read`: an older catalog is upgraded in place first), and printing through
//! `crate::results`.

use std::io::{self, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};

use super::{ArchiveArg, EXIT_OK};
use crate::archive::ReadArchive;
use crate::blobs::BlobLocation;
use crate::catalog::{Catalog, DeletedPosts, QueryError, RowSink, SearchQuery};
use crate::results::{self, CsvWriter, JsonWriter, TableWriter};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlFormat {
    /// Aligned columns; widths from the first 100 rows, then streamed.
    Table,
    /// RFC 4180 CSV with a header line.
    Csv,
    /// A JSON array of objects keyed by column name, one row per line.
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct SqlArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    /// One SQL statement that only reads, e.g. "SELECT * FROM messages LIMIT 5".
    #[arg(allow_hyphen_values = true)]
    pub statement: String,
    /// How to print the rows.
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    pub format: SqlFormat,
}

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    /// Words that must all occur (in the message or an attachment name); quote several
    /// words to search for them as a phrase; end a word with * to match by prefix.
    #[arg(required = true, value_name = "WORDS")]
    pub words: Vec<String>,
    /// Only this channel: its name or display name (direct: the other username), or
    /// TEAM/CHANNEL.
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
    /// Only posts by this username.
    #[arg(long, value_name = "USER")]
    pub from: Option<String>,
    /// Only posts after this day (YYYY-MM-DD, UTC; the day itself excluded, as in Mattermost).
    #[arg(long, value_name = "DATE")]
    pub after: Option<String>,
    /// Only posts before this day (YYYY-MM-DD, UTC; the day itself excluded).
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,
    /// Show at most N results.
    #[arg(long, value_name = "N", default_value_t = 20, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Also show posts deleted on the server (the archive keeps their last text).
    #[arg(long)]
    pub include_deleted: bool,
    /// Print the hits as a JSON array (snippets marked with [ ]) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: super::BlobsArg,
    /// Print the statistics as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A closed pipe (`| head`) is the reader saying it has enough: not an error.
fn output_result(result: Result<(), QueryError>) -> Result<u8> {
    match result {
        Ok(()) => Ok(EXIT_OK),
        Err(QueryError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => Err(e.into()),
    }
}

fn finished<W>(result: io::Result<W>) -> Result<(), QueryError> {
    result.map(drop).map_err(QueryError::Output)
}

pub fn run_sql(args: &SqlArgs) -> Result<u8> {
    let archive = super::open_read(&args.archive.archive, None)?;
    let catalog = archive.catalog();
    let out = io::BufWriter::new(io::stdout().lock());
    let result = match args.format {
        SqlFormat::Table => {
            let mut sink = TableWriter::new(out);
            run_into(catalog, &args.statement, &mut sink).and_then(|()| finished(sink.finish()))
        }
        SqlFormat::Csv => {
            let mut sink = CsvWriter::new(out);
            run_into(catalog, &args.statement, &mut sink).and_then(|()| finished(sink.finish()))
        }
        SqlFormat::Json => {
            let mut sink = JsonWriter::new(out);
            run_into(catalog, &args.statement, &mut sink).and_then(|()| finished(sink.finish()))
        }
    };
    output_result(result)
}

fn run_into(catalog: &Catalog, sql: &str, sink: &mut dyn RowSink) -> Result<(), QueryError> {
    catalog.run_sql(sql, sink)
}

/// Start of a UTC day given as YYYY-MM-DD, in ms since the epoch.
fn day_start_ms(text: &str, flag: &str) -> Result<i64> {
    let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .with_context(|| format!("{flag} must be a date like 2024-03-01, got {text:?}"))?;
    Ok(day
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis())
}

const DAY_MS: i64 = 86_400_000;

/// `--channel` as (team, channel): `eng/dev` names both; `direct/bob` and `group/…` (the
/// labels search prints) and a bare name only the channel.
fn split_channel(channel: Option<&str>) -> (Option<String>, Option<String>) {
    match channel {
        None => (None, None),
        Some(c) => match c.split_once('/') {
            Some(("direct" | "group", name)) => (None, Some(name.to_owned())),
            Some((team, name)) => (Some(team.to_owned()), Some(name.to_owned())),
            None => (None, Some(c.to_owned())),
        },
    }
}

pub fn search_query(args: &SearchArgs, highlight: (String, String)) -> Result<SearchQuery> {
    let created_from = args
        .after
        .as_deref()
        .map(|d| day_start_ms(d, "--after").map(|ms| ms + DAY_MS))
        .transpose()?;
    let created_before = args
        .before
        .as_deref()
        .map(|d| day_start_ms(d, "--before"))
        .transpose()?;
    if let (Some(from), Some(before)) = (created_from, created_before)
        && from >= before
    {
        bail!("--after must be at least two days before --before: no day lies between them");
    }
    let (team, channel) = split_channel(args.channel.as_deref());
    Ok(SearchQuery {
        words: args.words.clone(),
        channel,
        team,
        from: args.from.clone(),
        created_from,
        created_before,
        deleted: if args.include_deleted {
            DeletedPosts::Include
        } else {
            DeletedPosts::Exclude
        },
        limit: args.limit,
        highlight,
    })
}

pub fn run_search(args: &SearchArgs) -> Result<u8> {
    // Bold on a terminal (unless NO_COLOR), brackets when piped, so grep and diff stay clean.
    let stdout = io::stdout();
    let highlight = if !args.json && stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none()
    {
        ("\x1b[1m".to_owned(), "\x1b[0m".to_owned())
    } else {
        ("[".to_owned(), "]".to_owned())
    };
    let query = search_query(args, highlight)?;
    let archive = super::open_read(&args.archive.archive, None)?;
    let catalog = archive.catalog();
    let hits = catalog.search_posts(&query)?;
    // With --json, `[]` says it: scripts get nothing on stderr.
    if hits.is_empty() && !args.json {
        eprintln!("no posts found");
        return Ok(EXIT_OK);
    }
    let code = print_json_or(args.json, &hits, |out| {
        results::write_search_hits(out, &hits)
    })?;
    if !args.json && hits.len() as u64 == u64::from(args.limit) {
        let all = catalog.count_search_matches(&query)?;
        if all > hits.len() as u64 {
            eprintln!(
                "{} of {all} matching posts shown, best first; --limit N shows more",
                hits.len()
            );
        }
    }
    Ok(code)
}

pub fn run_stats(args: &StatsArgs) -> Result<u8> {
    let archive = super::open_read(&args.archive.archive, args.blobs.blobs.as_ref())?;
    let stats = archive.catalog().archive_stats()?;
    let bucket = match archive.blob_location() {
        BlobLocation::Local => None,
        BlobLocation::S3 { .. } => Some(bucket_use(&archive)?),
    };
    let shown = StatsOut {
        stats: &stats,
        bucket,
    };
    print_json_or(args.json, &shown, |out| {
        results::write_stats(out, &stats)?;
        match &shown.bucket {
            Some(b) => writeln!(
                out,
                "bucket {}: {} objects, {} ({} bytes), as listed now",
                b.location,
                b.objects,
                results::human_bytes(b.bytes as i64),
                b.bytes
            ),
            None => Ok(()),
        }
    })
}

/// `stats` with the bucket's own figures, when blobs live in one.
#[derive(serde::Serialize)]
struct StatsOut<'a> {
    #[serde(flatten)]
    stats: &'a crate::catalog::ArchiveStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket: Option<BucketUse>,
}

/// What the bucket holds under the archive's prefix (blobs and strays; not the catalog
/// snapshots nor quarantined objects), as one listing finds it.
#[derive(serde::Serialize)]
struct BucketUse {
    location: String,
    objects: u64,
    bytes: u64,
}

fn bucket_use(archive: &ReadArchive) -> Result<BucketUse> {
    let location = archive.blob_location();
    let inventory = archive
        .blobs()?
        .inventory()
        .with_context(|| format!("cannot list {location}"))?;
    Ok(BucketUse {
        location: location.to_string(),
        objects: inventory.objects.len() as u64,
        bytes: inventory.objects.iter().map(|o| o.size).sum(),
    })
}

/// Prints `value` as pretty JSON when asked, otherwise as `text` writes it, to stdout.
fn print_json_or(
    json: bool,
    value: &impl serde::Serialize,
    text: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<u8> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = if json {
        serde_json::to_writer_pretty(&mut out, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        text(&mut out)
    }
    .and_then(|()| out.flush());
    output_result(written.map_err(QueryError::Output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_flag_splits_team_and_channel() {
        assert_eq!(
            split_channel(Some("eng/dev")),
            (Some("eng".into()), Some("dev".into()))
        );
        assert_eq!(
            split_channel(Some("direct/bob")),
            (None, Some("bob".into()))
        );
        assert_eq!(
            split_channel(Some("Town Square")),
            (None, Some("Town Square".into()))
        );
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(
            day_start_ms("2023-11-14", "--after").unwrap(),
            1_699_920_000_000
        );
        let err = day_start_ms("14.11.2023", "--after")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--after must be a date like 2024-03-01"),
            "{err}"
        );
    }
}
