//! `matterbak pull`: makes a directory a working archive from the newest catalog snapshot in
//! object storage.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::EXIT_OK;
use crate::blobs::BlobLocation;

#[derive(Args, Debug, Clone)]
pub struct PullArgs {
    /// Where the archive's blobs and catalog snapshots are: s3://bucket/prefix.
    #[arg(value_name = "URL")]
    pub url: BlobLocation,
    /// New or empty directory to make the archive in.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub(super) fn run(args: &PullArgs) -> Result<u8> {
    crate::outdir::check_ancestors(&args.dir).context("DIR")?;
    let name = crate::snapshot::pull(&args.url, &args.dir)
        .with_context(|| format!("cannot pull {} into {}", args.url, args.dir.display()))?;
    println!(
        "archive {} from snapshot {name}; its blobs stay in {}",
        args.dir.display(),
        args.url
    );
    Ok(EXIT_OK)
}
