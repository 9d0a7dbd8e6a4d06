//! `matterbak export --format html`: the website's flags and runner.

use anyhow::{Context, Result};
use clap::Args;

use super::ExportArgs;
use crate::cli::{EXIT_OK, open_read};

/// Options of `--format html`.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Website (--format html)")]
pub struct HtmlArgs {
    /// html: how to show posts deleted on the server (default: mark).
    #[arg(long, value_enum)]
    pub deleted: Option<DeletedArg>,
    /// html: show images linked from messages by loading them from their servers when a
    /// page is viewed (default: shown as links, so reading needs no network).
    #[arg(long)]
    pub remote_images: bool,
}

/// `--deleted` of `export --format html`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletedArg {
    /// Show their archived content, marked deleted.
    #[default]
    Mark,
    /// Leave them out.
    Hide,
}

pub(super) fn run(args: &ExportArgs) -> Result<u8> {
    use crate::export::html::{self, DeletedPosts, SiteOptions};
    let site = args
        .output
        .clone()
        .context("export --format html needs -o DIR, the directory to write the site into")?;
    let options = SiteOptions {
        deleted: match args.html.deleted.unwrap_or_default() {
            DeletedArg::Mark => DeletedPosts::Mark,
            DeletedArg::Hide => DeletedPosts::Hide,
        },
        tz: args.tz.clone(),
        remote_images: args.html.remote_images,
    };
    let archive = &args.archive.archive;
    let report = open_read(archive, args.blobs.blobs.as_ref())
        .and_then(|opened| Ok(html::build_site(&opened, &site, &options)?))
        .with_context(|| format!("website export of {} failed", archive.display()))?;
    println!("{}", site.join("index.html").display());
    eprintln!(
        "site: {} posts; pages: {} written, {} kept, {} removed; files: {} linked, {} copied, {} kept; search files: {} written, {} kept",
        report.posts,
        report.pages_written,
        report.pages_kept,
        report.pages_removed,
        report.files_linked,
        report.files_copied,
        report.files_kept,
        report.search_written,
        report.search_kept
    );
    for missing in &report.missing_blobs {
        eprintln!("  not in the archive: {missing}");
    }
    Ok(EXIT_OK)
}
