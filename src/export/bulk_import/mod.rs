//! `matterbak export --format bulk-import`: the archive as a Mattermost bulk-import zip
//! (`mmctl import process`), so a lost or moved workspace can be restored *into* a server.
//! Format and server rules: `../shared/mattermost-import.md`.
//!
//! - [`rules`]: each server rule as a pure function (names, e-mails, message length,
//!   reply times, props, file names);
//! - [`validate`]: the §7 checklist over JSONL lines and zip entries; run over every line
//!   before it is written (a failure is a bug and stops the export, leaving no zip);
//! - `plan`: names, accounts and memberships decided from the catalog before anything is
//!   written;
//! - `write`: one read-only snapshot of the catalog → `import.jsonl` as the zip's first
//!   entry, streamed line by line, then every referenced file under
//!   `data/<unique dir>/<original name>`;
//! - `report`: every change and omission, and an `mmctl` script for the memberships of
//!   accounts that already exist on the target.
//!
//! Invariants: reads only the archive (no network, no SQL here); never writes a `user` or
//! `bot` line for an account of `--existing-users` (a user line resets its password and
//! e-mail); same archive and options give the same bytes, and the same posts (current text,
//! same `create_at`), so importing twice creates nothing twice.

mod plan;
mod report;
pub mod rules;
pub mod validate;
mod write;

use std::path::PathBuf;

use crate::catalog::CatalogError;
use crate::selection::ChannelsConfig;

pub use report::render_report;
pub use validate::{Finding, Level, Validator};
pub use write::export_bulk_import;

/// Domain of the placeholder addresses of users whose e-mail the archive lacks.
pub const DEFAULT_EMAIL_DOMAIN: &str = "restored.invalid";
/// Name of the JSONL entry (what the server's own export uses).
pub const JSONL_NAME: &str = "import.jsonl";

/// Whether user lines carry the archived profile pictures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProfileImages {
    #[default]
    Include,
    Leave,
}

#[derive(Clone, Debug)]
pub struct BulkOptions {
    /// Narrows the export as `channels.json` narrows a sync; `None` writes everything.
    pub channels: Option<ChannelsConfig>,
    /// The target's accounts: they get no user line, and new users none of their e-mails.
    pub existing: rules::ExistingAccounts,
    pub email_domain: String,
    pub profile_images: ProfileImages,
    /// The target's `maxPostSize` in runes.
    pub max_post_runes: usize,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            channels: None,
            existing: rules::ExistingAccounts::default(),
            email_domain: DEFAULT_EMAIL_DOMAIN.into(),
            profile_images: ProfileImages::Include,
            max_post_runes: rules::MAX_POST_RUNES,
        }
    }
}

/// What kind of departure from the archive a [`Change`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Written, but in another form than archived.
    Changed,
    /// Not written at all.
    Omitted,
}

/// One thing the zip carries differently from the archive, or not at all, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// What it concerns, e.g. `team Operations` or `post <id> in eng/town-square`.
    pub subject: String,
    pub reason: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ChangeKind::Changed => "changed",
            ChangeKind::Omitted => "omitted",
        };
        write!(f, "{kind}: {}: {}", self.subject, self.reason)
    }
}

/// Counts of what the JSONL holds, the changes, and the files written beside the zip.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BulkReport {
    pub teams: u64,
    pub channels: u64,
    pub users: u64,
    pub bots: u64,
    /// Accounts of `--existing-users` the content refers to (no line written).
    pub existing_users: u64,
    pub posts: u64,
    pub replies: u64,
    pub reactions: u64,
    pub attachments: u64,
    pub direct_channels: u64,
    pub direct_posts: u64,
    pub emojis: u64,
    pub profile_images: u64,
    pub changes: Vec<Change>,
    /// Validator warnings (nothing the server refuses).
    pub warnings: Vec<String>,
    /// `mmctl` commands for existing accounts' memberships, in the written script.
    pub mmctl_commands: u64,
    pub script: PathBuf,
    pub report: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    View(#[from] crate::export::view::ViewError),
    #[error(transparent)]
    BlobStore(#[from] crate::blobs::BlobError),
    #[error("bulk import: {0}")]
    Sink(#[from] crate::export::sink::SinkError),
    #[error(transparent)]
    Output(#[from] crate::outdir::OutputDirError),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The output broke a server rule: a bug of this writer. No zip was left behind.
    #[error(
        "bulk import self-check failed ({} problem(s); this is a bug of matterbak, please report it); first: {}",
        .0.len(),
        .0.first().map(ToString::to_string).unwrap_or_default()
    )]
    SelfCheck(Vec<Finding>),
    #[error("--channels selects nothing that the archive holds")]
    NothingSelected,
    #[error(
        "--channels needs the archive's own account (from its sync runs), and this archive names none"
    )]
    NoOwner,
}
