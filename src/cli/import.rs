//! `matterbak import`: reads backups of the Python matterbak (or our own export) into the
//! archive and prints one summary line per backup.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{ArchiveArg, BlobsArg, EXIT_INCOMPLETE, EXIT_OK, blob_location};
use crate::archive::{Archive, Claim};

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
    /// Backups to import: data directories or zips written by the Python matterbak 0.4/0.5
    /// or by `matterbak export`. All are checked before anything is written.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Prints one summary line per backup on stdout and each failed item on stderr; exit 1 when
/// any item failed. Every path is opened and checked first: one that is not a backup stops
/// the command before the archive is touched.
pub(super) fn run(args: &ImportArgs) -> Result<u8> {
    let mut backups = args
        .paths
        .iter()
        .map(|path| crate::import::Backup::open(path))
        .collect::<Result<Vec<_>, _>>()?;
    let archive = &args.archive.archive;
    crate::outdir::check_ancestors(archive).context("--archive")?;
    let location = blob_location(archive, &args.blobs)?;
    let reports = Archive::at(archive)
        .open_write(&location, Claim::AnyDirectory)
        .map_err(crate::import::ImportError::from)
        .and_then(|mut opened| crate::import::import_backups(&mut opened, &mut backups))
        .with_context(|| format!("import into {} failed", archive.display()))?;
    let mut failed = 0;
    for (backup, report) in backups.iter().zip(&reports) {
        let name = backup.path().display();
        for note in &report.notes {
            eprintln!("note: {name}: {note}");
        }
        for item in &report.failed {
            eprintln!("failed: {name}: {}: {}", item.path, item.reason);
        }
        failed += report.failed.len();
        println!(
            "{name}: {} posts read, {} new, {} updated, {} earlier versions kept; {} binaries stored ({} bytes); {} users, {} teams, {} channels, {} members, {} emojis changed; {} failed",
            report.posts_read,
            report.posts_added,
            report.posts_updated,
            report.versions_added,
            report.binaries_stored,
            report.bytes_stored,
            report.users,
            report.teams,
            report.channels,
            report.members,
            report.emojis,
            report.failed.len()
        );
    }
    Ok(if failed == 0 {
        EXIT_OK
    } else {
        EXIT_INCOMPLETE
    })
}
