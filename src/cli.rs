//! Command-line surface: clap types, turning flags into validated options, printing results.
//! The only module besides `main.rs` that prints; `anyhow` context lives here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::blobs::BlobLocation;
use crate::catalog::{Access, Catalog};
use crate::config::{self, SecretOverrides};
use crate::export::{self, ExportOptions};
use crate::mm::{ClientOptions, TlsOptions};
use crate::mock::{self, MockServer, Workspace};
use crate::progress;
use crate::sync::{self, Observer, Outcome, Skips, StopSignal, SyncOptions, SyncReport};

/// `sql`, `search` and `stats`: the commands that only read the archive.
pub mod query;

/// Exit codes: 0 everything done, 1 finished but incomplete (failed items or interrupted),
/// 2 fatal (bad input, authentication, archive unusable).
pub const EXIT_OK: u8 = 0;
pub const EXIT_INCOMPLETE: u8 = 1;
pub const EXIT_FATAL: u8 = 2;

/// Without a subcommand, matterbak behaves like `matterbak backup`, so a command line of the
/// Python matterbak keeps working with this program.
#[derive(Parser, Debug)]
#[command(
    name = "matterbak",
    version,
    about = "Back up a Mattermost workspace: every post, thread, file, member, user and emoji you can read.",
    args_conflicts_with_subcommands = true,
    after_help = "Without a subcommand, runs `backup` (the Python matterbak's command line).\nExit codes: 0 done, 1 finished with failed items or interrupted (run again to resume), 2 fatal error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub backup: BackupArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy what your account can read into the archive (incremental; safe to interrupt).
    Sync(SyncArgs),
    /// Write the Python matterbak's folder layout and zip from the archive (no network).
    Export(ExportArgs),
    /// Sync, then export: a drop-in replacement for the Python matterbak command line.
    Backup(BackupArgs),
    /// Check the archive: catalog integrity, every blob present with its size (and hash with
    /// --read-data). Marks damaged blobs so the next sync fetches them again.
    Verify(VerifyArgs),
    /// Run sync and export against a built-in sample workspace (no Mattermost needed).
    Demo(DemoArgs),
    /// Run one read-only SQL statement on the archive; rows stream to stdout.
    Sql(query::SqlArgs),
    /// Full-text search over archived posts and attachment names, best match first.
    Search(query::SearchArgs),
    /// Posts, files and bytes per team and channel; blob store use; last sync per channel.
    Stats(query::StatsArgs),
    /// Upload a consistent copy of the catalog beside the blobs in object storage
    /// (<prefix>/catalogs/<UTC time>.sqlite), keeping the newest N. A sync with blobs in a
    /// bucket does this after each run.
    Snapshot(SnapshotArgs),
    /// Make DIR a working archive from the newest catalog snapshot at s3://bucket/prefix; its
    /// blobs stay in the bucket, and `sync --archive DIR` goes on incrementally.
    Pull(PullArgs),
    /// Serve the sample workspace as a mock Mattermost server (for tests and comparisons).
    #[command(hide = true)]
    MockServer(MockServerArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ExportTarget {
    /// Directory to write the folder layout into.
    #[arg(short = 'd', long = "data-dir", default_value = "data")]
    pub data_dir: PathBuf,
    /// Output of the chosen --format: for `json`, the zip file to write (default:
    /// matterbak_<user>.zip).
    #[arg(short = 'o', long = "output-zip", visible_alias = "output")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
    /// What to write.
    #[arg(long, value_enum, default_value_t)]
    pub format: ExportFormat,
    #[command(flatten)]
    pub target: ExportTarget,
    /// Write only the folder layout, no zip.
    #[arg(long)]
    pub no_zip: bool,
}

/// The output formats of `export`; each is a sibling module under `export/`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// The Python matterbak's per-object JSON folder layout (-d) and its zip (-o).
    #[default]
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    #[command(flatten)]
    pub sync: SyncArgs,
    #[command(flatten)]
    pub target: ExportTarget,
}

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
    #[arg(long, value_name = "PCT")]
    pub read_data_subset: Option<f64>,
}

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

#[derive(Args, Debug, Clone)]
pub struct PullArgs {
    /// Where the archive's blobs and catalog snapshots are: s3://bucket/prefix.
    #[arg(value_name = "URL")]
    pub url: BlobLocation,
    /// New or empty directory to make the archive in.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Directory for the demo's archive, data dir, zip and config files.
    #[arg(default_value = "matterbak-demo")]
    pub dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct MockServerArgs {
    /// Address to listen on (loopback only is sensible).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
    /// Serve a generated workspace instead of the sample (benches), e.g.
    /// `posts=20000,attachments=1000,channels=20,teams=2,users=50,attachment_bytes=2048,seed=1`.
    #[arg(long, hide = true, value_name = "SIZES")]
    pub generate: Option<mock::GenSpec>,
    /// Sleep this long before answering each request (benches).
    #[arg(long, hide = true, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
}

/// `--blobs`: where the archive keeps its blobs. Given once (usually to the first sync), it is
/// remembered in the catalog; a different value later is refused.
#[derive(Args, Debug, Clone, Default)]
pub struct BlobsArg {
    /// Where blobs live: `local` (the archive's blobs/ directory, the default) or
    /// s3://bucket/prefix on any S3-compatible store (endpoint, region and credentials from
    /// AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Remembered in
    /// the catalog: later commands need not repeat it.
    #[arg(long, env = "MATTERBAK_BLOBS", value_name = "URL")]
    pub blobs: Option<BlobLocation>,
}

impl BlobsArg {
    /// The archive's blob location: the flag, or what the catalog remembers, or local. A flag
    /// that contradicts the catalog is refused: the blobs would seem missing (or, for a sync,
    /// be split across two stores).
    pub fn resolve(&self, archive: &Path) -> Result<BlobLocation> {
        // An unreadable catalog is the command's own finding to report (verify does so as
        // damage); here it just remembers nothing.
        let remembered = Catalog::open(archive, Access::ReadOnly)
            .and_then(|catalog| catalog.blob_location())
            .ok()
            .flatten();
        let remembered = remembered
            .map(|text| {
                text.parse::<BlobLocation>().with_context(|| {
                    format!("the catalog of {} names its blob store", archive.display())
                })
            })
            .transpose()?;
        match (&self.blobs, remembered) {
            (Some(given), Some(kept)) if *given != kept => anyhow::bail!(
                "archive {} keeps its blobs in {kept}, but --blobs (or MATTERBAK_BLOBS) says {given}; drop the flag, or use a separate archive directory for another store",
                archive.display()
            ),
            (Some(given), _) => Ok(given.clone()),
            (None, Some(kept)) => Ok(kept),
            (None, None) => Ok(BlobLocation::Local),
        }
    }
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
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub rate_limit: f64,
    /// Channels and downloads in flight at once (requests in flight are capped at this).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Trust this PEM certificate (a private CA) in addition to the system's.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any TLS certificate. Dangerous: anyone in the path can read your token.
    #[arg(long)]
    pub insecure: bool,
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
    fn credentials_user(&self) -> Result<String> {
        let parsed = config::load_credentials(&self.credentials, &SecretOverrides::from_env())?;
        Ok(parsed.value.user)
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
        options.simulate_disk_full = self.simulate_disk_full;
        options.blobs = self.blobs.resolve(&self.archive.archive)?;
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
                "warning: --insecure: TLS certificates are NOT checked; anyone between you and the server can read your token and your data",
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
        log.note(&format!(
            "warning: {} can be read by other users of this machine; consider `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _log: &dyn Observer) {}

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Some(Command::Sync(args)) => run_sync(&args).await.map(|(code, _)| code),
        Some(Command::Export(args)) => match args.format {
            ExportFormat::Json => run_export(
                &args.archive.archive,
                &args.target,
                !args.no_zip,
                &ExportOptions {
                    blobs: args.blobs.resolve(&args.archive.archive)?,
                    ..ExportOptions::default()
                },
            ),
        },
        Some(Command::Backup(args)) => run_backup(&args).await,
        Some(Command::Verify(args)) => run_verify(&args),
        Some(Command::Demo(args)) => run_demo(&args).await,
        Some(Command::Sql(args)) => query::run_sql(&args),
        Some(Command::Search(args)) => query::run_search(&args),
        Some(Command::Stats(args)) => query::run_stats(&args),
        Some(Command::Snapshot(args)) => {
            let blobs = args.blobs.resolve(&args.archive.archive)?;
            snapshot(&args.archive.archive, &blobs, &args.keep).map(|()| EXIT_OK)
        }
        Some(Command::Pull(args)) => {
            let name = crate::snapshot::pull(&args.url, &args.dir)
                .with_context(|| format!("cannot pull {} into {}", args.url, args.dir.display()))?;
            println!(
                "archive {} from snapshot {name}; its blobs stay in {}",
                args.dir.display(),
                args.url
            );
            Ok(EXIT_OK)
        }
        Some(Command::MockServer(args)) => run_mock_server(&args).await,
        None => run_backup(&cli.backup).await,
    }
}

/// Takes a catalog snapshot; prints its name and the pruned ones.
fn snapshot(archive: &Path, blobs: &BlobLocation, keep: &KeepArg) -> Result<()> {
    let report = crate::snapshot::take_snapshot(archive, blobs, keep.keep_snapshots)
        .with_context(|| format!("cannot snapshot the catalog of {}", archive.display()))?;
    println!("snapshot: {blobs}/catalogs/{}", report.name);
    for old in &report.pruned {
        eprintln!("  removed older snapshot {old}");
    }
    Ok(())
}

fn run_export(
    archive: &Path,
    target: &ExportTarget,
    zip: bool,
    options: &ExportOptions,
) -> Result<u8> {
    let zip_path = if zip {
        Some(match &target.output {
            Some(path) => path.clone(),
            None => {
                let catalog = Catalog::open(archive, Access::ReadOnly)?;
                let owner = catalog.archive_owner()?.unwrap_or_else(|| "archive".into());
                export::default_zip_name(&owner)
            }
        })
    } else {
        None
    };
    let report = export::export_archive(archive, &target.data_dir, zip_path.as_deref(), options)
        .with_context(|| format!("export of {} failed", archive.display()))?;
    println!("data dir: {}", target.data_dir.display());
    if let Some(zip) = &zip_path {
        println!("zip: {}", zip.display());
    }
    eprintln!(
        "export: {} files ({} posts, {} attachments, {} bytes of binaries)",
        report.files, report.posts, report.attachments, report.bytes
    );
    for missing in &report.missing_blobs {
        eprintln!("  not in the archive: {missing}");
    }
    Ok(EXIT_OK)
}

/// Prints findings one per line on stdout, then a summary; exit 1 when damage was found.
fn run_verify(args: &VerifyArgs) -> Result<u8> {
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
    let blobs = args.blobs.resolve(archive)?;
    let report = verify::verify_archive(archive, &blobs, data)
        .with_context(|| format!("cannot verify {}", archive.display()))?;
    for finding in &report.findings {
        println!("{finding}");
    }
    println!(
        "verify {}: {} blob(s) checked, {} re-hashed ({} bytes), {} reference(s); {} damaged, {} notice(s)",
        archive.display(),
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
        .with_context(|| format!("cannot mark damaged blobs in {}", archive.display()))?
    {
        Repair::Marked { rows, quarantined } => println!(
            "marked {rows} item(s) to be fetched again by the next `matterbak sync`; {quarantined} damaged blob(s) moved to {}",
            archive.join(verify::DAMAGED_DIR).display()
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

async fn run_backup(args: &BackupArgs) -> Result<u8> {
    let (code, report) = run_sync(&args.sync).await?;
    if report.outcome == Outcome::Interrupted {
        return Ok(code);
    }
    let options = ExportOptions {
        skip_users: args.sync.skip_users,
        skip_emojis: args.sync.skip_emojis,
        blobs: args.sync.blobs.resolve(&args.sync.archive.archive)?,
    };
    let mut target = args.target.clone();
    if target.output.is_none() {
        target.output = Some(export::default_zip_name(&args.sync.credentials_user()?));
    }
    let export_code = run_export(&args.sync.archive.archive, &target, true, &options)?;
    Ok(code.max(export_code))
}

async fn run_demo(args: &DemoArgs) -> Result<u8> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let server = MockServer::start(Workspace::sample())
        .await
        .context("cannot start the sample server on loopback")?;
    let credentials = dir.join("credentials.json");
    let channels = dir.join("channels.json");
    let creds = serde_json::json!({"user": mock::SAMPLE_USER, "password": mock::SAMPLE_PASSWORD, "url": format!("{}/api", server.url())});
    write_private(
        &credentials,
        serde_json::to_string_pretty(&creds)?.as_bytes(),
    )?;
    std::fs::write(&channels, mock::SAMPLE_CHANNELS_JSON)
        .with_context(|| format!("cannot write {}", channels.display()))?;
    eprintln!("sample Mattermost server listening on {}", server.url());
    let archive = dir.join("archive");
    let data = dir.join("data");
    let zip = dir.join(format!("matterbak_{}.zip", mock::SAMPLE_USER));
    let argv: Vec<std::ffi::OsString> = vec![
        "matterbak".into(),
        "backup".into(),
        "--archive".into(),
        archive.clone().into(),
        "--credentials".into(),
        credentials.into(),
        "--channels".into(),
        channels.into(),
        "--rate-limit".into(),
        "0".into(),
        "-d".into(),
        data.clone().into(),
        "-o".into(),
        zip.clone().into(),
    ];
    let Some(Command::Backup(args)) = Cli::try_parse_from(argv)?.command else {
        unreachable!("the demo's own arguments parse as `backup`");
    };
    let code = run_backup(&args).await?;
    server.shutdown().await;
    let catalog = archive.join(crate::catalog::CATALOG_FILE);
    println!();
    println!("archive (SQLite catalog + blobs): {}", archive.display());
    println!("folder layout of the Python matterbak: {}", data.display());
    println!("zip: {}", zip.display());
    println!();
    println!("Try some SQL on the catalog (here, or in sqlite3 or any SQLite tool):");
    println!(
        "  matterbak sql --archive {} \"SELECT channel, count(*) AS posts FROM messages GROUP BY channel ORDER BY posts DESC\"",
        archive.display()
    );
    println!(
        "  sqlite3 {} \"SELECT time, author, message FROM messages WHERE edited ORDER BY time\"",
        catalog.display()
    );
    println!(
        "Or search it: matterbak search --archive {} deploy",
        archive.display()
    );
    Ok(code)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

async fn run_mock_server(args: &MockServerArgs) -> Result<u8> {
    let workspace = match &args.generate {
        Some(spec) => Workspace::generated(spec),
        None => Workspace::sample(),
    };
    let server = MockServer::start_on(args.addr, workspace)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    server.set_faults(mock::Faults {
        latency: Duration::from_millis(args.latency_ms),
        ..mock::Faults::default()
    });
    println!("{}", server.url());
    use std::io::Write;
    std::io::stdout().flush()?;
    // Serve until stdin closes or a signal arrives, so scripts can stop it either way.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    });
    tokio::select! {
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.shutdown().await;
    Ok(EXIT_OK)
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
    // First: a signal during the reads below (files, the catalog's blob location) must stop
    // the run cleanly too.
    let stop = stop_on_signals();
    let log = progress::for_stderr(args.quiet);
    let (credentials, options) = args.options(log.as_ref())?;
    let result = sync::run_sync(&credentials, &options, log.as_ref(), &stop).await;
    drop(log); // clears progress bars before the summary
    let report =
        result.with_context(|| format!("sync into {} failed", options.archive.display()))?;
    print_summary(&report);
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report).expect("reports serialize");
        std::fs::write(path, json)
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    let mut code = match report.outcome {
        Outcome::Ok => EXIT_OK,
        Outcome::Partial | Outcome::Interrupted => EXIT_INCOMPLETE,
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
