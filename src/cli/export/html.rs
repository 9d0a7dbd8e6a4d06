//! `matterbak export --format html`: the website's flags and runner.

use anyhow::{Context, Result};

use super::ExportArgs;
use crate::cli::{EXIT_OK, open_read};

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
        .target
        .output
        .clone()
        .context("export --format html needs -o DIR, the directory to write the site into")?;
    let options = SiteOptions {
        deleted: match args.deleted {
            DeletedArg::Mark => DeletedPosts::Mark,
            DeletedArg::Hide => DeletedPosts::Hide,
        },
        tz: args.tz.clone(),
        remote_images: args.remote_images,
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
