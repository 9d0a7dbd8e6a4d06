//! `matterbak export`: the flags of every format, the dispatch to each format's runner, and
//! the Python layout (`--format json`, also the second half of `backup`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::{ArchiveArg, BlobsArg, EXIT_OK, blob_location, open_read};
use crate::export::{self, ChatFormat, PyLayoutOptions};

/// `--format bulk-import`: options and printing of the restore zip.
pub mod bulk_import;
/// `--format markdown|hgf`: the per-channel formats.
pub mod chat;
/// `--format html`: the offline website.
pub mod html;

pub use chat::{ChatArgs, FlavorArg};
pub use html::DeletedArg;

#[derive(Args, Debug, Clone)]
pub struct ExportTarget {
    /// Directory to write the folder layout into: new, empty, or an earlier export. For
    /// markdown: the data dir the paths of attachments start with (as `matterexport -d`);
    /// nothing is written there.
    #[arg(short = 'd', long = "data-dir", default_value = "data")]
    pub data_dir: PathBuf,
    /// Output of the chosen --format: for `json`, the zip file to write (default:
    /// matterbak_<user>.zip); for markdown and hgf, the file of the one channel named by -c
    /// (markdown: stdout without -o), else a directory with one file per channel; for `bulk-import`, the
    /// import zip (required); for `html`, the directory of the website (required).
    #[arg(short = 'o', long = "output-zip", visible_alias = "output")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
    /// What to write.
    #[arg(long, value_enum, default_value_t)]
    pub format: ExportFormat,
    #[command(flatten)]
    pub target: ExportTarget,
    /// Write only the folder layout, no zip.
    #[arg(long)]
    pub no_zip: bool,
    #[command(flatten)]
    pub chat: ChatArgs,
    #[command(flatten)]
    pub bulk_import: bulk_import::BulkImportArgs,
    /// html: how to show posts deleted on the server.
    #[arg(long, value_enum, default_value_t)]
    pub deleted: DeletedArg,
    /// html: time zone of the times on pages (IANA name, e.g. Europe/Berlin; default: the
    /// machine's zone).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// html: show images linked from messages by loading them from their servers when a
    /// page is viewed (default: shown as links, so reading needs no network).
    #[arg(long)]
    pub remote_images: bool,
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

/// Runs `export` in the chosen format; returns the exit code.
pub(super) fn run(args: &ExportArgs) -> Result<u8> {
    // Every export format reads the blobs where the catalog says they are; a --blobs that
    // contradicts it is refused here, once for all formats.
    blob_location(&args.archive.archive, &args.blobs)?;
    match args.format {
        ExportFormat::Json => {
            let chat = &args.chat;
            if !chat.channels.is_empty() || chat.threads || chat.flavor != FlavorArg::Full {
                anyhow::bail!(
                    "-c, --threads and --flavor apply to --format markdown and hgf, not json"
                );
            }
            run_pylayout(
                &args.archive.archive,
                &args.blobs,
                &args.target,
                !args.no_zip,
                &PyLayoutOptions::default(),
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
