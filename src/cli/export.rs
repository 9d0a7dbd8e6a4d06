//! `matterbak export`: the flags of every format, the dispatch to each format's runner, and
//! the Python layout (`--format json`, also the second half of `backup`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::{ArchiveArg, BlobsArg, EXIT_OK, blob_location, open_read};
use crate::blobs::BlobLocation;
use crate::export::{self, ChatFormat, PyLayoutOptions};

/// `--format bulk-import`: options and printing of the restore zip.
pub mod bulk_import;
/// `--format markdown|hgf`: the per-channel formats.
pub mod chat;
/// `--format html`: the offline website.
pub mod html;

pub use chat::{ChatArgs, FlavorArg};
pub use html::{DeletedArg, HtmlArgs};

/// `-d` and `-o` of `backup`: its export is always the Python layout and its zip.
#[derive(Args, Debug, Clone)]
pub struct ExportTarget {
    /// Directory to write the folder layout into: new, empty, or an earlier export.
    #[arg(short = 'd', long = "data-dir", default_value = "data")]
    pub data_dir: PathBuf,
    /// The zip file to write (default: matterbak_<user>.zip).
    #[arg(short = 'o', long = "output-zip", visible_alias = "output")]
    pub output: Option<PathBuf>,
}

/// `export`: the options every format takes, then one group per format. A flag of a group
/// is refused with any other `--format` ([`misused_flags`]), so `--help` and the check say
/// the same thing.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
    /// What to write.
    #[arg(long, value_enum, default_value_t)]
    pub format: ExportFormat,
    /// Where to write: json: the zip (default: matterbak_<user>.zip); markdown and hgf: the
    /// file of the one channel named by -c (markdown: stdout without -o), else a directory
    /// with one file per channel; bulk-import: the import zip (required); html: the directory
    /// of the website (required).
    #[arg(
        short = 'o',
        long = "output",
        alias = "output-zip",
        value_name = "PATH"
    )]
    pub output: Option<PathBuf>,
    /// json, markdown, hgf, html: the time zone of the times written (IANA name, e.g.
    /// Europe/Berlin; default: the machine's zone, `TZ`); json: of the post file names.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    #[command(flatten)]
    pub json: JsonArgs,
    #[command(flatten)]
    pub chat: ChatArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
    #[command(flatten)]
    pub bulk_import: bulk_import::BulkImportArgs,
}

/// Options of `--format json` (and `-d` of markdown).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Json (--format json; -d also markdown)")]
pub struct JsonArgs {
    /// json: directory to write the folder layout into: new, empty, or an earlier export
    /// (default: data). markdown: the data dir the paths of attachments start with (as
    /// `matterexport -d`; default: data); nothing is written there.
    #[arg(short = 'd', long = "data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// json: write only the folder layout, no zip.
    #[arg(long)]
    pub no_zip: bool,
}

impl ExportArgs {
    /// `-d`, or the default `data`.
    pub fn data_dir(&self) -> PathBuf {
        self.json
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data"))
    }

    /// `--tz` as a zone; an unknown name is refused.
    pub fn zone(&self) -> Result<export::Zone> {
        match &self.tz {
            None => Ok(export::Zone::Machine),
            Some(name) => export::Zone::named(name).with_context(|| {
                format!(
                    "--tz: unknown time zone {name:?} (expected an IANA name such as Europe/Berlin)"
                )
            }),
        }
    }
}

/// Which formats take which flag, with whether this command line gives it: the one table
/// `export` checks its flags against (the `--help` groups follow it).
fn format_flags(args: &ExportArgs) -> [(&'static str, bool, &'static [ExportFormat]); 13] {
    use ExportFormat::{BulkImport, Hgf, Html, Json, Markdown};
    let bulk = &args.bulk_import;
    [
        ("--tz", args.tz.is_some(), &[Json, Markdown, Hgf, Html]),
        (
            "-d/--data-dir",
            args.json.data_dir.is_some(),
            &[Json, Markdown],
        ),
        ("--no-zip", args.json.no_zip, &[Json]),
        (
            "-c/--channel",
            !args.chat.channels.is_empty(),
            &[Markdown, Hgf],
        ),
        ("--threads", args.chat.threads, &[Markdown]),
        ("--flavor", args.chat.flavor.is_some(), &[Markdown, Hgf]),
        ("--deleted", args.html.deleted.is_some(), &[Html]),
        ("--remote-images", args.html.remote_images, &[Html]),
        (
            "--existing-users",
            bulk.existing_users.is_some(),
            &[BulkImport],
        ),
        ("--channels", bulk.channels.is_some(), &[BulkImport]),
        ("--email-domain", bulk.email_domain.is_some(), &[BulkImport]),
        ("--no-profile-images", bulk.no_profile_images, &[BulkImport]),
        (
            "--max-post-chars",
            bulk.max_post_chars.is_some(),
            &[BulkImport],
        ),
    ]
}

/// One sentence per flag given that `--format` does not take, naming the formats that do.
pub fn misused_flags(args: &ExportArgs) -> Vec<String> {
    format_flags(args)
        .iter()
        .filter(|(_, given, formats)| *given && !formats.contains(&args.format))
        .map(|(flag, _, formats)| {
            let names: Vec<&str> = formats.iter().map(|f| f.name()).collect();
            let list = match names.split_last() {
                Some((last, [])) => (*last).to_owned(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            };
            let hint = match (*flag, args.format) {
                ("--channels", ExportFormat::Markdown | ExportFormat::Hgf) => {
                    " (markdown and hgf pick channels with -c/--channel)"
                }
                _ => "",
            };
            format!(
                "{flag} applies to --format {list}, not {}{hint}",
                args.format.name()
            )
        })
        .collect()
}

/// The output formats of `export`; each is a sibling module under `export/`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// The Python matterbak's per-object JSON folder layout (-d) and its zip (-o).
    #[default]
    Json,
    /// One channel as a Markdown document (-c, or every channel into the directory -o).
    Markdown,
    /// One channel as the Helmholtz archiver's zip, `matterexport hgf` (-o OUT.zip).
    Hgf,
    /// A Mattermost bulk-import zip (-o) for `mmctl import process`: restores the archive
    /// into a server. Needs --existing-users.
    BulkImport,
    /// An offline website (-o DIR): channels, threads, users and search, readable by opening
    /// DIR/index.html from disk.
    Html,
}

impl ExportFormat {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Markdown => "markdown",
            ExportFormat::Hgf => "hgf",
            ExportFormat::BulkImport => "bulk-import",
            ExportFormat::Html => "html",
        }
    }
}

/// Runs `export` in the chosen format; returns the exit code.
pub(super) fn run(args: &ExportArgs) -> Result<u8> {
    let misused = misused_flags(args);
    if !misused.is_empty() {
        anyhow::bail!("{}", misused.join("; "));
    }
    args.zone()?;
    // Every export format reads the blobs where the catalog says they are; a --blobs that
    // contradicts it is refused here, once for all formats.
    let location = blob_location(&args.archive.archive, &args.blobs)?;
    // An encrypted bucket is opened (its password checked) before anything is written.
    if location != BlobLocation::Local {
        open_read(&args.archive.archive, Some(&location))?.blobs()?;
    }
    match args.format {
        ExportFormat::Json => {
            let target = ExportTarget {
                data_dir: args.data_dir(),
                output: args.output.clone(),
            };
            let options = PyLayoutOptions {
                tz: args.zone()?,
                ..PyLayoutOptions::default()
            };
            run_pylayout(
                &args.archive.archive,
                &args.blobs,
                &target,
                !args.json.no_zip,
                &options,
            )
        }
        ExportFormat::Markdown => chat::run(args, ChatFormat::Markdown),
        ExportFormat::Hgf => chat::run(args, ChatFormat::Hgf),
        ExportFormat::BulkImport => bulk_import::run(args),
        ExportFormat::Html => html::run(args),
    }
}

pub(super) fn run_pylayout(
    archive: &Path,
    blobs: &BlobsArg,
    target: &ExportTarget,
    zip: bool,
    options: &PyLayoutOptions,
) -> Result<u8> {
    let archive = open_read(archive, blobs.blobs.as_ref()).context("export failed")?;
    let zip_path = if zip {
        Some(match &target.output {
            Some(path) => path.clone(),
            None => {
                let owner = archive
                    .catalog()
                    .archive_owner()?
                    .unwrap_or_else(|| "archive".into());
                export::default_zip_name(&owner)
            }
        })
    } else {
        None
    };
    let report = export::export_pylayout(&archive, &target.data_dir, zip_path.as_deref(), options)
        .context("export failed")?;
    println!("data dir: {}", target.data_dir.display());
    if let Some(zip) = &zip_path {
        println!("zip: {}", zip.display());
    }
    eprintln!(
        "export: {} files ({} posts, {} attachments, {} bytes of binaries)",
        report.files, report.posts, report.attachments, report.bytes
    );
    for missing in &report.missing_blobs {
        eprintln!("  not in the archive: {missing}");
    }
    Ok(EXIT_OK)
}
