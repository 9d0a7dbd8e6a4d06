//! `matterbak snapshot`: uploads a consistent copy of the catalog beside the blobs in object
//! storage and prunes older copies (also run by `sync` when the blobs are in a bucket).

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;

use super::{ArchiveArg, BlobsArg, EXIT_OK, blob_location, open_read};
use crate::blobs::BlobLocation;

#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
    #[command(flatten)]
    pub keep: KeepArg,
}

#[derive(Args, Debug, Clone)]
pub struct KeepArg {
    /// Catalog snapshots to keep in the bucket (older ones are deleted; at least 1).
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub keep_snapshots: usize,
}

pub(super) fn run(args: &SnapshotArgs) -> Result<u8> {
    let blobs = blob_location(&args.archive.archive, &args.blobs)?;
    snapshot(&args.archive.archive, &blobs, &args.keep).map(|()| EXIT_OK)
}

/// Takes a catalog snapshot; prints its name and the pruned ones.
pub(super) fn snapshot(archive: &Path, blobs: &BlobLocation, keep: &KeepArg) -> Result<()> {
    let report = open_read(archive, Some(blobs))
        .and_then(|opened| {
            Ok(crate::snapshot::take_snapshot(
                &opened,
                keep.keep_snapshots,
            )?)
        })
        .with_context(|| format!("cannot snapshot the catalog of {}", archive.display()))?;
    println!("snapshot: {blobs}/catalogs/{}", report.name);
    for old in &report.pruned {
        eprintln!("  removed older snapshot {old}");
    }
    Ok(())
}
