//! Drives the chat exports (`export --format markdown|hgf`): opens a read-only snapshot of
//! the catalog, picks the channels (`-c`, or all), loads one [`Chat`] at a time and writes
//! it to a stream, a file, or one file per channel below a directory we claimed
//! (`<dir>/<layout path of the channel's post folder>.md|.zip`, unique by construction).
//!
//! Never touches the network; prints nothing (warnings come back in the report).

use std::io::Write;
use std::path::PathBuf;

use super::chat::{self, Chat, ChatError, Flavor, People};
use super::hgf::{self, SkippedAttachment};
use super::markdown::{self, MarkdownContext};
use super::sink::{DirSink, Sink, SinkError};
use super::zone::Zone;
use crate::archive::ReadArchive;
use crate::blobs::BlobStore;
use crate::catalog::{Catalog, CatalogError};
use crate::outdir::{self, OutputDirError, OutputKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatFormat {
    Markdown,
    Hgf,
}

impl ChatFormat {
    fn extension(self) -> &'static str {
        match self {
            ChatFormat::Markdown => "md",
            ChatFormat::Hgf => "zip",
        }
    }

    fn output_kind(self) -> OutputKind {
        match self {
            ChatFormat::Markdown => OutputKind::Marked("markdown"),
            ChatFormat::Hgf => OutputKind::Marked("hgf"),
        }
    }
}

/// Where the documents go.
pub enum ChatOutput<'a> {
    /// One channel's Markdown to a stream (stdout).
    Stream(&'a mut dyn Write),
    /// One channel to this file.
    File(PathBuf),
    /// One file per channel below this directory.
    Dir(PathBuf),
}

pub struct ChatOptions {
    pub format: ChatFormat,
    pub flavor: Flavor,
    /// `-c` identifiers; empty = every channel.
    pub channels: Vec<String>,
    /// Group posts by thread (Markdown).
    pub threads: bool,
    /// The data dir that paths to attachments start with (`matterexport -d`).
    pub data_dir: String,
    /// The zone of the times written (`--tz`; default the machine's, as `matterexport`).
    pub tz: Zone,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatExportError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    BlobStore(#[from] crate::blobs::BlobError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    OutputDir(#[from] OutputDirError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{0} exports one channel at a time to a stream or file: name one with -c, or give a directory with -o"
    )]
    OneChannel(&'static str),
}

#[derive(Debug, Default)]
pub struct ChatReport {
    /// `(layout path of the channel, where it was written)`.
    pub written: Vec<(String, String)>,
    pub posts: u64,
    /// Lines the Python tool would print about attachments without a file info.
    pub warnings: Vec<String>,
    pub skipped: Vec<SkippedAttachment>,
}

pub fn export_chats(
    archive: &ReadArchive,
    options: &ChatOptions,
    output: ChatOutput<'_>,
) -> Result<ChatReport, ChatExportError> {
    let catalog = archive.catalog();
    let blobs = archive.blobs()?;
    catalog.begin_snapshot()?;
    let result = export_in_snapshot(catalog, blobs, options, output);
    catalog.end_snapshot()?;
    result
}

fn export_in_snapshot(
    catalog: &Catalog,
    blobs: &BlobStore,
    options: &ChatOptions,
    output: ChatOutput<'_>,
) -> Result<ChatReport, ChatExportError> {
    let entries = chat::list_channels(catalog)?;
    // Every identifier is resolved before anything is written.
    let chosen: Vec<&chat::ChannelEntry> = if options.channels.is_empty() {
        entries.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for ident in &options.channels {
            let found = chat::find_channel(&entries, ident)?;
            if !chosen
                .iter()
                .any(|c: &&chat::ChannelEntry| c.channel.record.id == found.channel.record.id)
            {
                chosen.push(found);
            }
        }
        chosen
    };
    let people = People::load(catalog)?;
    let tz = options.tz.clone();
    let now = chrono::Utc::now().naive_utc();
    let mut report = ChatReport::default();
    let format_name = match options.format {
        ChatFormat::Markdown => "markdown",
        ChatFormat::Hgf => "hgf",
    };
    let mut output = output;
    if !matches!(output, ChatOutput::Dir(_)) && chosen.len() != 1 {
        return Err(ChatExportError::OneChannel(format_name));
    }
    let mut dir_sink = match &output {
        ChatOutput::Dir(dir) => {
            outdir::claim_dir(dir, options.format.output_kind())?;
            Some(DirSink::new(dir)?)
        }
        ChatOutput::File(path) => {
            outdir::create_parent(path)?;
            None
        }
        ChatOutput::Stream(_) => None,
    };
    for entry in chosen {
        let chat = Chat::load(catalog, blobs, entry, &tz)?;
        report.posts += chat.posts.len() as u64;
        let rel = format!("{}.{}", entry.paths.posts_dir, options.format.extension());
        match options.format {
            ChatFormat::Markdown => {
                let inline_warnings = matches!(output, ChatOutput::Stream(_));
                let cx = MarkdownContext {
                    people: &people,
                    tz: &tz,
                    data_dir: &options.data_dir,
                    threads: options.threads,
                    inline_warnings,
                };
                let (text, warnings) = markdown::render(&chat, options.flavor, &cx);
                report.warnings.extend(warnings);
                let written = match &mut output {
                    ChatOutput::Stream(out) => {
                        out.write_all(text.as_bytes())
                            .and_then(|()| out.flush())
                            .map_err(|source| ChatExportError::Write {
                                path: PathBuf::from("-"),
                                source,
                            })?;
                        "-".to_owned()
                    }
                    ChatOutput::File(path) => {
                        std::fs::write(&*path, text.as_bytes()).map_err(|source| {
                            ChatExportError::Write {
                                path: path.clone(),
                                source,
                            }
                        })?;
                        path.display().to_string()
                    }
                    ChatOutput::Dir(dir) => {
                        let sink = dir_sink.as_mut().expect("made for a directory");
                        sink.file(&rel, None, &mut |out: &mut dyn Write| {
                            out.write_all(text.as_bytes())
                        })?;
                        dir.join(&rel).display().to_string()
                    }
                };
                report
                    .written
                    .push((entry.paths.posts_dir.clone(), written));
            }
            ChatFormat::Hgf => {
                let path = match &output {
                    ChatOutput::File(path) => path.clone(),
                    ChatOutput::Dir(dir) => {
                        let path = dir.join(&rel);
                        if let Some(parent) = path.parent() {
                            std::fs::create_dir_all(parent).map_err(|source| {
                                ChatExportError::Write {
                                    path: parent.to_owned(),
                                    source,
                                }
                            })?;
                        }
                        path
                    }
                    ChatOutput::Stream(_) => return Err(ChatExportError::OneChannel("hgf")),
                };
                let skipped =
                    hgf::write_hgf(&chat, &people, blobs, options.flavor, &tz, now, &path)?;
                report.skipped.extend(skipped);
                report
                    .written
                    .push((entry.paths.posts_dir.clone(), path.display().to_string()));
            }
        }
    }
    if let Some(sink) = dir_sink {
        Box::new(sink).finish()?;
    }
    Ok(report)
}
