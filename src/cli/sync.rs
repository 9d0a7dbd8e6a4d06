//! `matterbak sync`: turns the flags into validated [`SyncOptions`] (reading the credentials
//! and channels files), runs the sync with signals asking it to stop, prints its summary and
//! writes the `--report` file; with blobs in a bucket, snapshots the catalog afterwards.
//!
//! May use every library module (it is part of the driver); prints only to stderr, except
//! what `backup` prints after it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::snapshot::{KeepArg, snapshot};
use super::{ArchiveArg, BlobsArg, EXIT_FATAL, EXIT_INCOMPLETE, EXIT_OK, blob_location, ui};
use crate::blobs::BlobLocation;
use crate::config::{self, SecretOverrides};
use crate::mm::StopSignal;
use crate::mm::{ClientOptions, TlsOptions};
use crate::model::Outcome;
use crate::outdir;
use crate::progress::{Level, Observer};
use crate::sync::{self, Skips, SyncOptions, SyncReport};

#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
    #[command(flatten)]
    pub keep: KeepArg,
    /// JSON file with user, password or token, and server url.
    #[arg(long, default_value = "credentials.json")]
    pub credentials: PathBuf,
    /// JSON file selecting teams, channels, direct and group channels.
    #[arg(long, default_value = "channels.json")]
    pub channels: PathBuf,
    /// One-time code for accounts with multi-factor authentication.
    #[arg(long, value_name = "CODE")]
    pub mfa_token: Option<String>,
    /// Re-read every selected channel in full (edits and deletions are caught anyway).
    #[arg(long)]
    pub update_old_posts: bool,
    /// Skip direct channels.
    #[arg(long)]
    pub skip_direct: bool,
    /// Skip group channels.
    #[arg(long)]
    pub skip_groups: bool,
    /// Skip team channels.
    #[arg(long)]
    pub skip_teams: bool,
    /// Store no personal user data (includes --skip-user-images).
    #[arg(long)]
    pub skip_users: bool,
    /// Skip user profile pictures.
    #[arg(long)]
    pub skip_user_images: bool,
    /// Skip custom emojis.
    #[arg(long)]
    pub skip_emojis: bool,
    /// Max requests per second, retries included; 0 = unlimited.
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub rate_limit: f64,
    /// Channels and downloads in flight at once (requests in flight are capped at this).
    #[arg(long, default_value_t = 4, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Trust this PEM certificate (a private CA) in addition to the system's.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any TLS certificate. Dangerous: anyone in the path can read your token.
    #[arg(long)]
    pub insecure: bool,
    /// Random delay of up to S seconds before starting.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "S",
        allow_negative_numbers = true
    )]
    pub initial_jitter: f64,
    /// Random delay of up to S seconds between channels.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "S",
        allow_negative_numbers = true
    )]
    pub step_jitter: f64,
    /// Encrypt everything in the bucket (blobs and catalog snapshots) with a password: the
    /// first sync into an empty --blobs prefix creates an encrypted repository there; later
    /// runs need the password, not this flag. See README "Encrypted archives".
    #[arg(long)]
    pub encrypt: bool,
    /// Print only warnings and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write the run's summary as JSON to this file (missing folders are made).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Testing only: make the disk look full part-way through the run, after BYTES bytes of
    /// blobs (`blobs:BYTES`) or once the catalog grew by PAGES pages (`catalog:PAGES`).
    #[arg(long, hide = true, value_name = "WHERE:AMOUNT", value_parser = parse_disk_full)]
    pub simulate_disk_full: Option<sync::DiskFull>,
}

fn parse_disk_full(value: &str) -> Result<sync::DiskFull, String> {
    let bad = || format!("expected blobs:BYTES or catalog:PAGES, got {value:?}");
    match value.split_once(':') {
        Some(("blobs", n)) => Ok(sync::DiskFull::Blobs {
            after_bytes: n.parse().map_err(|_| bad())?,
        }),
        Some(("catalog", n)) => Ok(sync::DiskFull::Catalog {
            after_pages: n.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if !value.is_finite() || value < 0.0 {
        anyhow::bail!("{flag} must be a number of seconds ≥ 0, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

impl SyncArgs {
    /// The `user` of the credentials file, for the default zip name.
    pub(super) fn credentials_user(&self) -> Result<String> {
        Ok(self.load_credentials()?.value.user)
    }

    /// A missing file is the newcomer's first error: say which flag names it and what it holds.
    fn load_credentials(&self) -> Result<config::Parsed<config::Credentials>> {
        let path = &self.credentials;
        config::load_credentials(path, &SecretOverrides::from_env()).map_err(|e| {
            let missing = matches!(&e, config::ConfigError::Read { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound);
            if missing {
                anyhow::anyhow!(
                    "the credentials file {} does not exist: give its path with --credentials FILE; it holds {{\"user\": \"NAME\", \"password\" or \"token\": \"…\", \"url\": \"https://chat.example.com\"}} (see README \"credentials.json\")",
                    path.display()
                )
            } else {
                e.into()
            }
        })
    }

    /// Validates flags and reads both input files.
    pub fn options(&self, log: &dyn Observer) -> Result<(config::Credentials, SyncOptions)> {
        if !self.rate_limit.is_finite() || self.rate_limit < 0.0 {
            anyhow::bail!(
                "--rate-limit must be ≥ 0 requests per second (0 = unlimited), got {}",
                self.rate_limit
            );
        }
        warn_if_readable_by_others(&self.credentials, log);
        let credentials = self.load_credentials()?;
        let channels = config::load_channels(&self.channels)?;
        for warning in credentials.warnings.iter().chain(&channels.warnings) {
            log.note(Level::Warning, warning);
        }
        let mut options = SyncOptions::new(self.archive.archive.clone(), channels.value);
        options.skips = Skips {
            direct: self.skip_direct,
            groups: self.skip_groups,
            teams: self.skip_teams,
            users: self.skip_users,
            user_images: self.skip_user_images || self.skip_users,
            emojis: self.skip_emojis,
        };
        options.update_old_posts = self.update_old_posts;
        options.simulate_disk_full = self.simulate_disk_full;
        options.blobs = blob_location(&self.archive.archive, &self.blobs)?;
        options.mfa_token = self.mfa_token.clone();
        options.initial_jitter = seconds(self.initial_jitter, "--initial-jitter")?;
        options.step_jitter = seconds(self.step_jitter, "--step-jitter")?;
        let mut tls = TlsOptions::default();
        if let Some(path) = &self.ca_cert {
            tls.extra_roots_pem = Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read --ca-cert {}", path.display()))?,
            );
        }
        if self.insecure {
            log.note(
                Level::Warning,
                "--insecure: TLS certificates are NOT checked; anyone between you and the server can read your token and your data",
            );
            tls.accept_invalid_certs = true;
        }
        options.client = ClientOptions {
            rate_limit: (self.rate_limit > 0.0).then_some(self.rate_limit),
            concurrency: usize::from(self.concurrency),
            tls,
            ..ClientOptions::default()
        };
        Ok((credentials.value, options))
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, log: &dyn Observer) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        log.note(
            Level::Warning,
            &format!(
                "{} can be read by other users of this machine; consider `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _log: &dyn Observer) {}

/// Installs SIGINT/SIGTERM handlers that ask the sync to stop after the current transaction;
/// a second signal ends the process at once (the archive stays consistent either way).
pub(super) fn stop_on_signals() -> StopSignal {
    let stop = StopSignal::default();
    let handle = stop.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            for _ in 0..2 {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if handle.requested() {
                    eprintln!("second signal: stopping now");
                    std::process::exit(130);
                }
                eprintln!("stopping after the current step (signal again to stop at once)…");
                handle.request();
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            handle.request();
        }
    });
    stop
}

pub async fn run_sync(args: &SyncArgs) -> Result<(u8, SyncReport)> {
    // First: a signal during the reads below (files, the catalog's blob location) must stop
    // the run cleanly too.
    let stop = stop_on_signals();
    // Before the sync, not after it: a bad path must not turn a finished run into an error.
    if let Some(report) = &args.report {
        outdir::check_file(report).context("--report")?;
    }
    outdir::check_ancestors(&args.archive.archive).context("--archive")?;
    let log = ui::for_stderr(args.quiet);
    let (credentials, options) = args.options(log.as_ref())?;
    let creating = if args.encrypt {
        create_encrypted(&options.archive, &options.blobs)?
    } else {
        None
    };
    let result = sync::run_sync(&credentials, &options, log.as_ref(), &stop).await;
    // The new repository's key object, keyring and marker are in the bucket before anything
    // else of it (its writes wait for them); a run that wrote nothing still waits here, so
    // the process never ends halfway through them.
    if let Some(creating) = creating {
        let location = options.blobs.to_string();
        let created = tokio::task::spawn_blocking(move || creating.wait())
            .await
            .context("the key-creation task")?
            .with_context(|| format!("cannot create an encrypted repository in {location}"))?;
        eprintln!(
            "created encrypted repository {} with key {} (Argon2id m={} MiB, t={}, p={}; {:.2} s per password check here); add a second key with `matterbak key add`: a lost password is a lost archive",
            created.repository,
            created.key_id,
            created.params.m_cost / 1024,
            created.params.t_cost,
            created.params.p_cost,
            created.check_time.as_secs_f64()
        );
        // The catalog remembers the repository only now that it is in the bucket (see
        // WriteArchive::remember_blob_location); a run killed before this leaves nothing
        // remembered, and the next open remembers what the bucket holds.
        if result.is_ok() {
            crate::archive::Archive::at(&options.archive)
                .open_write(&options.blobs, crate::archive::Claim::AnyDirectory)
                .and_then(|mut archive| archive.remember_blob_location())
                .with_context(|| {
                    format!(
                        "cannot record the new encrypted repository in {}",
                        options.archive.display()
                    )
                })?;
        }
    }
    drop(log); // clears progress bars before the summary
    let report =
        result.with_context(|| format!("sync into {} failed", options.archive.display()))?;
    print_summary(&report);
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report).expect("reports serialize");
        outdir::create_parent(path).context("--report")?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    let mut code = match report.outcome {
        Outcome::Ok => EXIT_OK,
        Outcome::Partial | Outcome::Interrupted => EXIT_INCOMPLETE,
        // A failed run is an error, never a report; kept total for the type's sake.
        Outcome::Failed => EXIT_FATAL,
    };
    // Blobs in a bucket: the catalog joins them there, so the bucket alone restores.
    if options.blobs != BlobLocation::Local
        && let Err(e) = snapshot(&options.archive, &options.blobs, &args.keep)
    {
        eprintln!("warning: {e:#}; the sync itself is complete, run `matterbak snapshot` to retry");
        code = code.max(EXIT_INCOMPLETE);
    }
    Ok((code, report))
}

/// `sync --encrypt`: makes the empty bucket prefix an encrypted repository, unless it is one
/// already (then the flag changes nothing: None). A prefix holding plain objects is refused.
/// The Argon2id derivation and the repository's own objects are done on a thread of their
/// own while the sync runs ([`crate::blobs::keys::create`]); the caller waits for it.
fn create_encrypted(
    archive: &Path,
    blobs: &BlobLocation,
) -> Result<Option<crate::blobs::keys::Creating>> {
    use crate::blobs::{BlobError, KeyError};
    let archive = crate::archive::Archive::at(archive);
    if *blobs == BlobLocation::Local {
        return Err(BlobError::EncryptionNeedsBucket.into());
    }
    // Opening finds an existing repository (asking its password) or plain storage.
    match archive.blobs(blobs) {
        Ok(store) if store.encryption().is_some() => return Ok(None),
        Ok(_) | Err(BlobError::Key(KeyError::PlainWithPassword { .. })) => {}
        Err(e) => return Err(e.into()),
    }
    let location = blobs.to_string();
    let password = super::password::registered()
        .password_for_new(&location)?
        .context("--encrypt needs a password: give MATTERBAK_ARCHIVE_PASSWORD, --password-file FILE or --password-command CMD, or run on a terminal")?;
    eprintln!(
        "creating an encrypted repository in {location} (Argon2id calibrated while the sync starts)…"
    );
    let creating = archive
        .create_encrypted(blobs, password, &super::key::host(), super::key::now_ms())
        .with_context(|| format!("cannot create an encrypted repository in {location}"))?;
    Ok(Some(creating))
}

fn print_summary(report: &SyncReport) {
    let s = &report.summary;
    eprintln!(
        "sync {}: {} posts written, {} attachment(s) fetched, {} bytes downloaded (attachments, pictures, emojis), {} requests, {} failed item(s)",
        s.outcome, s.posts_written, s.files_fetched, s.bytes_fetched, s.requests, s.failures
    );
    for failure in &report.failures {
        eprintln!("  failed: {}: {}", failure.item, failure.error);
    }
    if report.outcome == Outcome::Interrupted {
        eprintln!("interrupted: run `matterbak sync` again to resume where it stopped");
    }
}
