//! Command-line surface: clap types, turning flags into validated options, printing results.
//! The only module besides `main.rs` that prints; `anyhow` context lives here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, SecretOverrides};
use crate::mm::ClientOptions;
use crate::sync::{self, Observer, Outcome, Skips, StopSignal, SyncOptions, SyncReport};

/// Exit codes: 0 everything done, 1 finished but incomplete (failed items or interrupted),
/// 2 fatal (bad input, authentication, archive unusable).
pub const EXIT_OK: u8 = 0;
pub const EXIT_INCOMPLETE: u8 = 1;
pub const EXIT_FATAL: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "matterbak",
    version,
    about = "Back up a Mattermost workspace: every post, thread, file, member, user and emoji you can read."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy what your account can read into the archive (incremental; safe to interrupt).
    Sync(SyncArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ArchiveArg {
    /// Archive directory (catalog.sqlite + blobs/).
    #[arg(long, env = "MATTERBAK_ARCHIVE", default_value = "matterbak-archive")]
    pub archive: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
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
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub rate_limit: f64,
    /// Random delay of up to S seconds before starting.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub initial_jitter: f64,
    /// Random delay of up to S seconds between channels.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub step_jitter: f64,
    /// Print only warnings and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write the run's summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if !value.is_finite() || value < 0.0 {
        anyhow::bail!("{flag} must be a number of seconds ≥ 0, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

impl SyncArgs {
    /// Validates flags and reads both input files.
    pub fn options(&self, log: &dyn Observer) -> Result<(config::Credentials, SyncOptions)> {
        if !self.rate_limit.is_finite() || self.rate_limit < 0.0 {
            anyhow::bail!(
                "--rate-limit must be ≥ 0 requests per second (0 = unlimited), got {}",
                self.rate_limit
            );
        }
        warn_if_readable_by_others(&self.credentials, log);
        let credentials =
            config::load_credentials(&self.credentials, &SecretOverrides::from_env())?;
        let channels = config::load_channels(&self.channels)?;
        for warning in credentials.warnings.iter().chain(&channels.warnings) {
            log.note(&format!("warning: {warning}"));
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
        options.mfa_token = self.mfa_token.clone();
        options.initial_jitter = seconds(self.initial_jitter, "--initial-jitter")?;
        options.step_jitter = seconds(self.step_jitter, "--step-jitter")?;
        options.client = ClientOptions {
            rate_limit: (self.rate_limit > 0.0).then_some(self.rate_limit),
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
        log.note(&format!(
            "warning: {} can be read by other users of this machine; consider `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _log: &dyn Observer) {}

/// Progress and notes as plain lines on stderr (what cron mails you).
pub struct StderrLog {
    pub quiet: bool,
}

impl Observer for StderrLog {
    fn note(&self, line: &str) {
        let important =
            line.starts_with("warning") || line.starts_with("failed") || line.starts_with("note");
        if !self.quiet || important {
            eprintln!("{line}");
        }
    }
}

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Sync(args) => run_sync(&args).await.map(|(code, _)| code),
    }
}

/// Installs SIGINT/SIGTERM handlers that ask the sync to stop after the current transaction;
/// a second signal ends the process at once (the archive stays consistent either way).
fn stop_on_signals() -> StopSignal {
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
    let log = StderrLog { quiet: args.quiet };
    let (credentials, options) = args.options(&log)?;
    let stop = stop_on_signals();
    let report = sync::run_sync(&credentials, &options, &log, &stop)
        .await
        .with_context(|| format!("sync into {} failed", options.archive.display()))?;
    print_summary(&report);
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report).expect("reports serialize");
        std::fs::write(path, json)
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    let code = match report.outcome {
        Outcome::Ok => EXIT_OK,
        Outcome::Partial | Outcome::Interrupted => EXIT_INCOMPLETE,
    };
    Ok((code, report))
}

fn print_summary(report: &SyncReport) {
    let s = &report.summary;
    eprintln!(
        "sync {}: {} posts written, {} files ({} bytes) fetched, {} requests, {} failed item(s)",
        s.outcome, s.posts_written, s.files_fetched, s.bytes_fetched, s.requests, s.failures
    );
    for failure in &report.failures {
        eprintln!("  failed: {}: {}", failure.item, failure.error);
    }
    if report.outcome == Outcome::Interrupted {
        eprintln!("interrupted: run `matterbak sync` again to resume where it stopped");
    }
}
