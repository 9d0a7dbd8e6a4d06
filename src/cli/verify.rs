//! `matterbak verify`: checks the archive, prints its findings and marks damaged blobs for
//! the next sync.

use anyhow::{Context, Result};
use clap::Args;

use super::{ArchiveArg, BlobsArg, EXIT_INCOMPLETE, EXIT_OK, blob_location};
use crate::archive::Archive;

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
    /// Also read every blob and compare its hash with its name.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read and re-hash a random PCT percent of the blobs (e.g. 10).
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    pub read_data_subset: Option<f64>,
}

/// Prints findings one per line on stdout, then a summary; exit 1 when damage was found.
pub(super) fn run(args: &VerifyArgs) -> Result<u8> {
    use crate::verify::{self, DataCheck, Repair};
    let archive = &args.archive.archive;
    let data = match args.read_data_subset {
        Some(pct) if !(pct > 0.0 && pct <= 100.0) => {
            anyhow::bail!("--read-data-subset must be a percentage in (0, 100], got {pct}")
        }
        Some(pct) => DataCheck::Subset(pct),
        None if args.read_data => DataCheck::All,
        None => DataCheck::Sizes,
    };
    let blobs = blob_location(archive, &args.blobs)?;
    let archive = &Archive::at(archive);
    let report = verify::verify_archive(archive, &blobs, data).context("verify failed")?;
    for finding in &report.findings {
        println!("{finding}");
    }
    if let Some(aborted @ 1..) = verify::abort_interrupted_uploads(archive, &blobs)
        .context("cannot abort the multipart uploads an interrupted run left")?
    {
        println!("aborted {aborted} incomplete multipart upload(s) left by an interrupted run");
    }
    println!(
        "verify {}: {} blob(s) checked, {} re-hashed ({} bytes), {} reference(s); {} damaged, {} notice(s)",
        archive.dir().display(),
        report.blobs_checked,
        report.blobs_read,
        report.bytes_read,
        report.references,
        report.damage(),
        report.notices()
    );
    if report.damage() == 0 {
        println!("no damage found");
        return Ok(EXIT_OK);
    }
    match verify::mark_for_refetch(archive, &blobs, &report)
        .context("cannot mark damaged blobs for the next sync")?
    {
        Repair::Marked { rows, quarantined } => println!(
            "marked {rows} item(s) to be fetched again by the next `matterbak sync`; {quarantined} damaged blob(s) moved to {}",
            archive.damaged_dir().display()
        ),
        Repair::Busy { holder } => println!(
            "not marked: a sync ({holder}) holds the archive; run verify again when it has finished"
        ),
        Repair::CatalogDamaged => println!(
            "the catalog itself is damaged: restore catalog.sqlite from a copy, or move it away and sync again (data the server no longer has would be lost)"
        ),
        Repair::NotNeeded => {}
    }
    Ok(EXIT_INCOMPLETE)
}
