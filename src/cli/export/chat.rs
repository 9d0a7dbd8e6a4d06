//! `matterbak export --format markdown|hgf`: the per-channel formats' flags, as `matterexport`
//! has them, and their runner.

use anyhow::{Context, Result};
use clap::Args;

use super::ExportArgs;
use crate::cli::{EXIT_OK, open_read};
use crate::export::{self, ChatFormat, ChatOptions, ChatOutput, Flavor};

/// Options of the per-channel formats (`markdown`, `hgf`), as `matterexport` has them.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Markdown and hgf (--format markdown, hgf)")]
pub struct ChatArgs {
    /// markdown, hgf: the channel to export, by id, name (a DM's: the other user's username;
    /// a group's: the usernames joined by `__`) or folder path; glob patterns allowed.
    /// Repeatable. Without it, every channel is written into the directory -o.
    #[arg(short = 'c', long = "channel", id = "channel", value_name = "CHANNEL")]
    pub channels: Vec<String>,
    /// markdown: group the posts by thread.
    #[arg(long)]
    pub threads: bool,
    /// markdown, hgf: `full` shows everything the archive knows; `py` writes what the Python
    /// `matterexport` 0.5.2 writes, byte for byte (default: full).
    #[arg(long, value_enum)]
    pub flavor: Option<FlavorArg>,
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

/// `export --format markdown|hgf`: one channel to -o (or stdout for Markdown), or every
/// named channel (all without -c) into the directory -o.
pub(super) fn run(args: &ExportArgs, format: ChatFormat) -> Result<u8> {
    let chat = &args.chat;
    let options = ChatOptions {
        format,
        flavor: match chat.flavor.unwrap_or_default() {
            FlavorArg::Full => Flavor::Full,
            FlavorArg::Py => Flavor::Py,
        },
        channels: chat.channels.clone(),
        threads: chat.threads,
        data_dir: args.data_dir().to_string_lossy().into_owned(),
        tz: args.zone()?,
    };
    let name = match format {
        ChatFormat::Markdown => "markdown",
        ChatFormat::Hgf => "hgf",
    };
    let mut stdout = std::io::stdout().lock();
    let output = match (&args.output, chat.channels.len()) {
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
