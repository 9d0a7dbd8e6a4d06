//! `matterbak export --format bulk-import`: turns the flags into [`BulkOptions`], runs the
//! export and prints its summary. Refuses to run without `--existing-users`, because a user
//! line for an account that exists on the target resets its password.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::ExportArgs;
use crate::cli::{EXIT_OK, open_read};
use crate::config;
use crate::export::bulk_import::{self, BulkOptions, ProfileImages, rules};

/// Changes listed on stderr; all of them are in the report file.
const CHANGES_SHOWN: usize = 40;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Bulk import (--format bulk-import)")]
pub struct BulkImportArgs {
    /// Usernames of the accounts that already exist on the target: a file with one per
    /// line, or the JSON of `mmctl user list --all --json`; `none` for a server without
    /// accounts. Required: those accounts get no user line (a user line would reset their
    /// password and e-mail); their memberships go into an mmctl script beside the zip.
    #[arg(long, value_name = "FILE|none")]
    pub existing_users: Option<String>,
    /// Restore only what this file selects (the channels.json format of sync).
    #[arg(long = "channels", value_name = "FILE")]
    pub channels: Option<PathBuf>,
    /// Domain of the placeholder e-mail addresses for users the archive has none for
    /// (default: restored.invalid).
    #[arg(long, value_name = "DOMAIN")]
    pub email_domain: Option<String>,
    /// Leave profile pictures out of the zip.
    #[arg(long)]
    pub no_profile_images: bool,
    /// The target's maximum post length in characters (default: 16383, Mattermost's);
    /// longer messages are split into several posts of their thread.
    #[arg(long, value_name = "N")]
    pub max_post_chars: Option<usize>,
}

pub fn run(args: &ExportArgs) -> Result<u8> {
    let bulk = &args.bulk_import;
    let email_domain = bulk
        .email_domain
        .as_deref()
        .unwrap_or(bulk_import::DEFAULT_EMAIL_DOMAIN);
    let max_post_chars = bulk.max_post_chars.unwrap_or(rules::MAX_POST_RUNES);
    let Some(zip) = &args.output else {
        bail!("--format bulk-import needs -o/--output FILE.zip");
    };
    let Some(existing) = &bulk.existing_users else {
        bail!(
            "--format bulk-import needs --existing-users FILE (the target's usernames, one per line, or the JSON of `mmctl user list --all --json`), or `--existing-users none` for a server without accounts: a user line for an existing account would reset its password"
        );
    };
    let existing_accounts = if existing == "none" {
        Default::default()
    } else {
        let text = std::fs::read_to_string(existing)
            .with_context(|| format!("cannot read --existing-users file {existing}"))?;
        rules::parse_existing_users(&text)
            .map_err(|problem| anyhow::anyhow!("--existing-users file {existing}: {problem}"))?
    };
    if !rules::is_valid_email_domain(email_domain) {
        bail!(
            "--email-domain {:?} is not a usable e-mail domain (e.g. example.org)",
            email_domain
        );
    }
    if max_post_chars < 100 {
        bail!("--max-post-chars {max_post_chars} is below 100");
    }
    let channels = match &bulk.channels {
        Some(path) => {
            let parsed = config::load_channels(path)?;
            for warning in &parsed.warnings {
                eprintln!("warning: {warning}");
            }
            Some(parsed.value)
        }
        None => None,
    };
    let options = BulkOptions {
        channels,
        existing: existing_accounts,
        email_domain: email_domain.to_lowercase(),
        profile_images: if bulk.no_profile_images {
            ProfileImages::Leave
        } else {
            ProfileImages::Include
        },
        max_post_runes: max_post_chars,
    };
    let archive = &args.archive.archive;
    let report = open_read(archive, args.blobs.blobs.as_ref())
        .and_then(|opened| Ok(bulk_import::export_bulk_import(&opened, zip, &options)?))
        .with_context(|| format!("bulk-import export of {} failed", archive.display()))?;
    println!("zip: {}", zip.display());
    println!("report: {}", report.report.display());
    println!("mmctl script: {}", report.script.display());
    let text = bulk_import::render_report(&report);
    let mut lines = text.lines();
    if let Some(summary) = lines.next() {
        eprintln!("{summary}");
    }
    for line in lines.by_ref().take(CHANGES_SHOWN + 1) {
        eprintln!("{line}");
    }
    let rest = lines.count();
    if rest > 0 {
        eprintln!("  … {rest} more in {}", report.report.display());
    }
    eprintln!(
        "{} mmctl command(s) for existing accounts' memberships; run them after `mmctl import process`",
        report.mmctl_commands
    );
    Ok(EXIT_OK)
}
