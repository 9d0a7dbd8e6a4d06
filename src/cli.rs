//! Command-line surface: clap types, turning flags into validated options, printing results.
//! The only module besides `main.rs` that prints; `anyhow` context lives here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::archive::{Archive, Claim, ReadArchive};
use crate::blobs::BlobLocation;
use crate::catalog::SCHEMA_VERSION;
use crate::config::{self, SecretOverrides};
use crate::export::{self, ChatFormat, ChatOptions, ChatOutput, Flavor, PyLayoutOptions};
use crate::mm::StopSignal;
use crate::mm::{ClientOptions, TlsOptions};
use crate::mock::{self, MockServer, Workspace};
use crate::model::Outcome;
use crate::outdir::{self, OutputKind};
use crate::progress::{Level, Observer};
use crate::sync::{self, Skips, SyncOptions, SyncReport};

/// `export --format bulk-import`: options and printing of the restore zip.
pub mod bulk_import;
/// `man-pages` (hidden): the manual pages, generated from these definitions.
pub mod man;
/// `sql`, `search` and `stats`: the commands that only read the archive.
pub mod query;
/// Progress on stderr: bars on a terminal, plain lines otherwise.
pub mod ui;

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
    /// Read backups of the Python matterbak (data dirs and zips, or our own export) into the
    /// archive, keeping what the server no longer has.
    Import(ImportArgs),
    /// Run sync and export against a built-in sample workspace (no Mattermost needed).
    Demo(DemoArgs),
    /// Run one read-only SQL statement on the archive; rows stream to stdout.
    Sql(query::SqlArgs),
    /// Full-text search over archived posts and attachment names, best match first.
    Search(query::SearchArgs),
    /// Posts, files and bytes per team and channel; blob store use; last sync per channel.
    Stats(query::StatsArgs),
    /// Print a shell completion script, e.g. `matterbak completions bash > ~/.local/share/bash-completion/completions/matterbak`.
    Completions(CompletionsArgs),
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
    /// Write the manual pages (matterbak.1, matterbak-<subcommand>.1) into DIR (packaging).
    #[command(hide = true)]
    ManPages(man::ManPagesArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ExportTarget {
    /// Directory to write the folder layout into: new, empty, or an earlier export. For
    /// markdown: the data dir the paths of attachments start with (as `matterexport -d`);
    /// nothing is written there.
    #[arg(short = 'd', long = "data-dir", default_value = "data")]
    pub data_dir: PathBuf,
    /// Output of the chosen --format: for `json`, the zip file to write (default:
    /// matterbak_<user>.zip); for markdown and hgf, the file of the one channel named by -c
    /// (markdown: stdout without -o), else a directory with one file per channel; for `bulk-import`, the
    /// import zip (required); for `html`, the directory of the website (required).
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
    #[command(flatten)]
    pub chat: ChatArgs,
    #[command(flatten)]
    pub bulk_import: bulk_import::BulkImportArgs,
    /// html: how to show posts deleted on the server.
    #[arg(long, value_enum, default_value_t)]
    pub deleted: DeletedArg,
    /// html: time zone of the times on pages (IANA name, e.g. Europe/Berlin; default: the
    /// machine's zone).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// html: show images linked from messages by loading them from their servers when a
    /// page is viewed (default: shown as links, so reading needs no network).
    #[arg(long)]
    pub remote_images: bool,
}

/// Options of the per-channel formats (`markdown`, `hgf`), as `matterexport` has them.
#[derive(Args, Debug, Clone, Default)]
pub struct ChatArgs {
    /// markdown/hgf: the channel to export, by id, name (a DM's: the other user's username;
    /// a group's: the usernames joined by `__`) or folder path; glob patterns allowed.
    /// Repeatable. Without it, every channel is written into the directory -o.
    #[arg(short = 'c', long = "channel", id = "channel", value_name = "CHANNEL")]
    pub channels: Vec<String>,
    /// markdown: group the posts by thread.
    #[arg(long)]
    pub threads: bool,
    /// markdown/hgf: `full` shows everything the archive knows; `py` writes what the Python
    /// `matterexport` 0.5.2 writes, byte for byte.
    #[arg(long, value_enum, default_value_t)]
    pub flavor: FlavorArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlavorArg {
    /// Complete and correct: edits, deletions, system messages, pins, bot attachments,
    /// missing files, grouped reactions, time zones; names escaped.
    #[default]
    Full,
    /// Byte for byte the Python matterexport 0.5.2, quirks included.
    Py,
}

/// `--deleted` of `export --format html`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletedArg {
    /// Show their archived content, marked deleted.
    #[default]
    Mark,
    /// Leave them out.
    Hide,
}

/// The output formats of `export`; each is a sibling module under `export/`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// The Python matterbak's per-object JSON folder layout (-d) and its zip (-o).
    #[default]
    Json,
    /// One channel as a Markdown document (-c, or every channel into the directory -o).
    Markdown,
    /// One channel as the Helmholtz archiver's zip, `matterexport hgf` (-o OUT.zip).
    Hgf,
    /// A Mattermost bulk-import zip (-o) for `mmctl import process`: restores the archive
    /// into a server. Needs --existing-users.
    BulkImport,
    /// An offline website (-o DIR): channels, threads, users and search, readable by opening
    /// DIR/index.html from disk.
    Html,
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
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
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
    /// Directory for the demo's archive, data dir, zip and config files: new, empty, or an
    /// earlier demo's.
    #[arg(default_value = "matterbak-demo")]
    pub dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Send `file_ids: []` on posts without files, as current servers do (the Python
    /// `matterexport` fails on posts without the key).
    #[arg(long, hide = true)]
    pub file_ids_always: bool,
}

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

/// `--blobs`: where the archive keeps its blobs. Given once (usually to the first sync), it is
/// remembered in the catalog; a different value later is refused.
#[derive(Args, Debug, Clone, Default)]
pub struct BlobsArg {
    /// Where blobs live: `local` (the archive's blobs/ directory, the default) or
    /// s3://bucket/prefix on any S3-compatible store (endpoint, region and credentials from
    /// AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, else from the
    /// profile AWS_PROFILE in ~/.aws/credentials and ~/.aws/config). Remembered in the
    /// catalog: later commands need not repeat it.
    #[arg(long, env = "MATTERBAK_BLOBS", value_name = "URL")]
    pub blobs: Option<BlobLocation>,
}

/// Opens the archive `dir` for reading (`Archive::open_read`: blobs at `blobs` or where the
/// catalog remembers them), with a note on stderr when its catalog was upgraded first.
pub fn open_read(dir: &Path, blobs: Option<&BlobLocation>) -> Result<ReadArchive> {
    let archive = Archive::at(dir).open_read(blobs)?;
    if let Some(found) = archive.upgraded_from() {
        eprintln!(
            "note: upgraded the catalog of {} from schema version {found} to {SCHEMA_VERSION}",
            dir.display()
        );
    }
    Ok(archive)
}

/// Where the archive at `dir` keeps its blobs: `--blobs`, else what its catalog remembers,
/// else local (`Archive::blob_location`; a contradiction is refused).
fn blob_location(dir: &Path, blobs: &BlobsArg) -> Result<BlobLocation> {
    Ok(Archive::at(dir).blob_location(blobs.blobs.as_ref())?)
}

#[derive(Args, Debug, Clone)]
pub struct ArchiveArg {
    /// Archive directory (catalog.sqlite + blobs/): an archive, or a new or empty directory.
    #[arg(
        long,
        env = "MATTERBAK_ARCHIVE",
        hide_env_values = true,
        default_value = "matterbak-archive"
    )]
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
    /// Print only warnings and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write the run's summary as JSON to this file (its folder must exist).
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

/// The command line as clap should see it: clap's `help` subcommand refuses `--help`
/// (`matterbak help --help`, `matterbak help sync -h`), which then means the same as
/// without `help`.
pub fn args_for_clap(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "help")
        && args[2..].iter().any(|a| a == "--help" || a == "-h")
    {
        args.remove(1);
    }
    args
}

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli) -> Result<u8> {
    // Every export format reads the blobs where the catalog says they are; a --blobs that
    // contradicts it is refused here, once for all formats.
    if let Some(Command::Export(args)) = &cli.command {
        blob_location(&args.archive.archive, &args.blobs)?;
    }
    match cli.command {
        Some(Command::Sync(args)) => run_sync(&args).await.map(|(code, _)| code),
        Some(Command::Export(args)) => match args.format {
            ExportFormat::Json => {
                let chat = &args.chat;
                if !chat.channels.is_empty() || chat.threads || chat.flavor != FlavorArg::Full {
                    anyhow::bail!(
                        "-c, --threads and --flavor apply to --format markdown and hgf, not json"
                    );
                }
                run_export(
                    &args.archive.archive,
                    &args.blobs,
                    &args.target,
                    !args.no_zip,
                    &PyLayoutOptions::default(),
                )
            }
            ExportFormat::Markdown => run_chat_export(&args, ChatFormat::Markdown),
            ExportFormat::Hgf => run_chat_export(&args, ChatFormat::Hgf),
            ExportFormat::BulkImport => bulk_import::run(&args),
            ExportFormat::Html => run_export_html(&args),
        },
        Some(Command::Backup(args)) => run_backup(&args).await,
        Some(Command::Verify(args)) => run_verify(&args),
        Some(Command::Import(args)) => run_import(&args),
        Some(Command::Demo(args)) => run_demo(&args).await,
        Some(Command::Sql(args)) => query::run_sql(&args),
        Some(Command::Search(args)) => query::run_search(&args),
        Some(Command::Stats(args)) => query::run_stats(&args),
        Some(Command::Completions(args)) => run_completions(&args),
        Some(Command::Snapshot(args)) => {
            let blobs = blob_location(&args.archive.archive, &args.blobs)?;
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
        Some(Command::ManPages(args)) => man::run(&args),
        None => run_backup(&cli.backup).await,
    }
}

fn run_completions(args: &CompletionsArgs) -> Result<u8> {
    let mut command = <Cli as clap::CommandFactory>::command();
    // Into memory first: clap_complete panics when stdout is closed early (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "matterbak", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::from(e).context("cannot write the completion script"))
        }
        _ => Ok(EXIT_OK),
    }
}

/// Takes a catalog snapshot; prints its name and the pruned ones.
fn snapshot(archive: &Path, blobs: &BlobLocation, keep: &KeepArg) -> Result<()> {
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

fn run_export(
    archive: &Path,
    blobs: &BlobsArg,
    target: &ExportTarget,
    zip: bool,
    options: &PyLayoutOptions,
) -> Result<u8> {
    let archive = open_read(archive, blobs.blobs.as_ref()).context("export failed")?;
    let zip_path = if zip {
        Some(match &target.output {
            Some(path) => path.clone(),
            None => {
                let owner = archive
                    .catalog()
                    .archive_owner()?
                    .unwrap_or_else(|| "archive".into());
                export::default_zip_name(&owner)
            }
        })
    } else {
        None
    };
    let report = export::export_pylayout(&archive, &target.data_dir, zip_path.as_deref(), options)
        .context("export failed")?;
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

/// `export --format markdown|hgf`: one channel to -o (or stdout for Markdown), or every
/// named channel (all without -c) into the directory -o.
fn run_chat_export(args: &ExportArgs, format: ChatFormat) -> Result<u8> {
    let chat = &args.chat;
    let options = ChatOptions {
        format,
        flavor: match chat.flavor {
            FlavorArg::Full => Flavor::Full,
            FlavorArg::Py => Flavor::Py,
        },
        channels: chat.channels.clone(),
        threads: chat.threads,
        data_dir: args.target.data_dir.to_string_lossy().into_owned(),
    };
    let name = match format {
        ChatFormat::Markdown => "markdown",
        ChatFormat::Hgf => "hgf",
    };
    let mut stdout = std::io::stdout().lock();
    let output = match (&args.target.output, chat.channels.len()) {
        (Some(path), 1) => ChatOutput::File(path.clone()),
        (Some(path), _) => ChatOutput::Dir(path.clone()),
        (None, 1) if format == ChatFormat::Markdown => ChatOutput::Stream(&mut stdout),
        (None, _) => anyhow::bail!(
            "--format {name} needs -o: a file for one channel (-c), a directory for several or all"
        ),
    };
    let to_stream = matches!(output, ChatOutput::Stream(_));
    let archive = &args.archive.archive;
    let report = open_read(archive, args.blobs.blobs.as_ref())
        .and_then(|opened| Ok(export::export_chats(&opened, &options, output)?))
        .with_context(|| format!("{name} export of {} failed", archive.display()))?;
    if !to_stream {
        for (_, path) in &report.written {
            println!("{path}");
        }
    }
    for warning in &report.warnings {
        eprintln!("{warning}");
    }
    for skipped in &report.skipped {
        eprintln!(
            "  attachment {} ({}) of post {} left out: {}",
            skipped.file_id, skipped.name, skipped.post_id, skipped.reason
        );
    }
    eprintln!(
        "{name}: {} channel(s), {} posts",
        report.written.len(),
        report.posts
    );
    Ok(EXIT_OK)
}

fn run_export_html(args: &ExportArgs) -> Result<u8> {
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

/// Prints one summary line per backup on stdout and each failed item on stderr; exit 1 when
/// any item failed. Every path is opened and checked first: one that is not a backup stops
/// the command before the archive is touched.
fn run_import(args: &ImportArgs) -> Result<u8> {
    let mut backups = args
        .paths
        .iter()
        .map(|path| crate::import::Backup::open(path))
        .collect::<Result<Vec<_>, _>>()?;
    let archive = &args.archive.archive;
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

async fn run_backup(args: &BackupArgs) -> Result<u8> {
    check_export_outputs(&args.target)?;
    let (code, report) = run_sync(&args.sync).await?;
    if report.outcome == Outcome::Interrupted {
        return Ok(code);
    }
    let options = PyLayoutOptions {
        skip_users: args.sync.skip_users,
        skip_emojis: args.sync.skip_emojis,
    };
    let mut target = args.target.clone();
    if target.output.is_none() {
        target.output = Some(export::default_zip_name(&args.sync.credentials_user()?));
    }
    let export_code = run_export(
        &args.sync.archive.archive,
        &args.sync.blobs,
        &target,
        true,
        &options,
    )?;
    Ok(code.max(export_code))
}

async fn run_demo(args: &DemoArgs) -> Result<u8> {
    let dir = &args.dir;
    outdir::claim_dir(dir, OutputKind::Marked("demo"))?;
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
    std::fs::write(&channels, mock::DEMO_CHANNELS_JSON)
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
    let site = dir.join("site");
    open_read(&archive, None)
        .and_then(|opened| {
            Ok(crate::export::html::build_site(
                &opened,
                &site,
                &Default::default(),
            )?)
        })
        .context("cannot build the demo's website")?;
    // The hints name this very binary: after `cargo run`, `matterbak` is not on the PATH.
    let bin = std::env::current_exe()
        .map(|p| shell_word(&p.to_string_lossy()))
        .unwrap_or_else(|_| "matterbak".into());
    let archive_arg = shell_word(&archive.to_string_lossy());
    let catalog = shell_word(&Archive::at(&archive).catalog_path().to_string_lossy());
    println!();
    println!("archive (SQLite catalog + blobs): {}", archive.display());
    println!(
        "website (open in a browser): {}",
        site.join("index.html").display()
    );
    println!();
    println!("Try some SQL on the catalog:");
    println!(
        "  {bin} sql --archive {archive_arg} \"SELECT channel, count(*) AS posts FROM messages GROUP BY channel ORDER BY posts DESC\""
    );
    println!("or search it:");
    println!("  {bin} search --archive {archive_arg} deploy");
    println!("or open it in sqlite3 (optional) or any SQLite tool:");
    println!(
        "  sqlite3 {catalog} \"SELECT time, author, message FROM messages WHERE edited ORDER BY time\""
    );
    Ok(code)
}

/// `text` as one word for a POSIX shell: as is when it holds only safe characters, else in
/// single quotes.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=,@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
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
    let mut workspace = match &args.generate {
        Some(spec) => Workspace::generated(spec),
        None => Workspace::sample(),
    };
    workspace.file_ids_always = args.file_ids_always;
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

/// The export's outputs are checked before the sync that precedes it, so a typo in `-d` or
/// `-o` costs no sync (export checks them again when it runs).
fn check_export_outputs(target: &ExportTarget) -> Result<()> {
    outdir::check_dir(&target.data_dir, OutputKind::DataDir).context("-d/--data-dir")?;
    if let Some(zip) = &target.output {
        outdir::check_file(zip).context("-o/--output")?;
    }
    Ok(())
}

pub async fn run_sync(args: &SyncArgs) -> Result<(u8, SyncReport)> {
    // First: a signal during the reads below (files, the catalog's blob location) must stop
    // the run cleanly too.
    let stop = stop_on_signals();
    // Before the sync, not after it: a bad path must not turn a finished run into an error.
    if let Some(report) = &args.report {
        outdir::check_file(report).context("--report")?;
    }
    let log = ui::for_stderr(args.quiet);
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
