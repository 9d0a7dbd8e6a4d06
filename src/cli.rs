//! Command-line surface: clap types, turning flags into validated options, printing results.
//! The only module besides `main.rs` that prints; `anyhow` context lives here. One file per
//! command below `cli/`; this file holds the command table, the dispatch, and the arguments
//! every command shares (`--archive`, `--blobs`).
//!
//! May use every library module (it is the product's driver); nothing below it is used by
//! the library.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::archive::{Archive, ReadArchive};
use crate::blobs::BlobLocation;
use crate::catalog::SCHEMA_VERSION;

/// `backup` (and no subcommand): sync, then export the Python layout.
pub mod backup;
/// `completions`: shell completion scripts.
pub mod completions;
/// `demo`: sync and export a built-in sample workspace.
pub mod demo;
/// `export`: every output format's flags and runner.
pub mod export;
/// `sync --follow`: live capture until stopped.
pub mod follow;
/// `import`: backups of the Python matterbak into the archive.
pub mod import;
/// `key list|add|remove|passwd`: the keys of an encrypted archive in object storage.
pub mod key;
/// `man-pages` (hidden): the manual pages, generated from these definitions.
pub mod man;
/// `mock-server` (hidden): the sample workspace as a mock Mattermost server.
pub mod mock_server;
/// Passwords of encrypted archives: file, command, environment or terminal.
pub mod password;
/// `pull`: a working archive from a catalog snapshot in object storage.
pub mod pull;
/// `sql`, `search` and `stats`: the commands that only read the archive.
pub mod query;
/// `snapshot`: the catalog copied beside the blobs in object storage.
pub mod snapshot;
/// `sync`: the Mattermost server into the archive.
pub mod sync;
/// Progress on stderr: bars on a terminal, plain lines otherwise.
pub mod ui;
/// `verify`: the archive checked, damage marked for the next sync.
pub mod verify;

pub use backup::BackupArgs;
pub use completions::CompletionsArgs;
pub use demo::DemoArgs;
pub use export::{ExportArgs, ExportFormat, ExportTarget};
pub use follow::{FollowArgs, SyncCommand};
pub use import::ImportArgs;
pub use mock_server::MockServerArgs;
pub use pull::PullArgs;
pub use snapshot::{KeepArg, SnapshotArgs};
pub use sync::{SyncArgs, run_sync};
pub use verify::VerifyArgs;

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
    #[command(flatten)]
    pub password: password::PasswordArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy what your account can read into the archive (incremental; safe to interrupt).
    Sync(follow::SyncCommand),
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
    /// Posts, files and bytes per team and channel; blob store use; last sync per channel;
    /// the last `sync --follow` session and its WebSocket connections.
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
    /// Manage the passwords (keys) of an encrypted archive in object storage: list, add,
    /// remove, passwd.
    Key(key::KeyArgs),
    /// Serve the sample workspace as a mock Mattermost server (for tests and comparisons).
    #[command(hide = true)]
    MockServer(MockServerArgs),
    /// Write the manual pages (matterbak.1, matterbak-<subcommand>.1) into DIR (packaging).
    #[command(hide = true)]
    ManPages(man::ManPagesArgs),
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
pub(crate) fn blob_location(dir: &Path, blobs: &BlobsArg) -> Result<BlobLocation> {
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
    password::register(cli.password.clone());
    match cli.command {
        Some(Command::Sync(args)) if args.live.follow => follow::run(&args.sync, &args.live).await,
        Some(Command::Sync(args)) => run_sync(&args.sync).await.map(|(code, _)| code),
        Some(Command::Export(args)) => export::run(&args),
        Some(Command::Backup(args)) => backup::run(&args).await,
        Some(Command::Verify(args)) => verify::run(&args),
        Some(Command::Import(args)) => import::run(&args),
        Some(Command::Demo(args)) => demo::run(&args).await,
        Some(Command::Sql(args)) => query::run_sql(&args),
        Some(Command::Search(args)) => query::run_search(&args),
        Some(Command::Stats(args)) => query::run_stats(&args),
        Some(Command::Completions(args)) => completions::run(&args),
        Some(Command::Snapshot(args)) => snapshot::run(&args),
        Some(Command::Pull(args)) => pull::run(&args),
        Some(Command::Key(args)) => key::run(&args),
        Some(Command::MockServer(args)) => mock_server::run(&args).await,
        Some(Command::ManPages(args)) => man::run(&args),
        None => backup::run(&cli.backup).await,
    }
}
