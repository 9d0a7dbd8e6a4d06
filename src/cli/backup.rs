//! `matterbak backup` (and no subcommand): sync, then the Python layout export, as the
//! Python matterbak's command line does. The export's outputs are checked before the sync.

use anyhow::{Context, Result};
use clap::Args;

use super::export::{ExportTarget, run_pylayout};
use super::sync::{SyncArgs, run_sync};
use crate::export::{self, PyLayoutOptions};
use crate::model::Outcome;
use crate::outdir::{self, OutputKind};

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    #[command(flatten)]
    pub sync: SyncArgs,
    #[command(flatten)]
    pub target: ExportTarget,
}

pub(super) async fn run(args: &BackupArgs) -> Result<u8> {
    check_export_outputs(&args.target)?;
    let (code, report) = run_sync(&args.sync).await?;
    if report.outcome == Outcome::Interrupted {
        return Ok(code);
    }
    let options = PyLayoutOptions {
        skip_users: args.sync.skip_users,
        skip_emojis: args.sync.skip_emojis,
        ..PyLayoutOptions::default()
    };
    let mut target = args.target.clone();
    if target.output.is_none() {
        target.output = Some(export::default_zip_name(&args.sync.credentials_user()?));
    }
    let export_code = run_pylayout(
        &args.sync.archive.archive,
        &args.sync.blobs,
        &target,
        true,
        &options,
    )?;
    Ok(code.max(export_code))
}

/// The export's outputs are checked before the sync that precedes it, so a typo in `-d` or
/// `-o` costs no sync (export checks them again when it runs).
fn check_export_outputs(target: &ExportTarget) -> Result<()> {
    outdir::check_dir(&target.data_dir, OutputKind::DataDir).context("-d/--data-dir")?;
    if let Some(zip) = &target.output {
        outdir::check_file(zip).context("-o/--output")?;
    }
    Ok(())
}
