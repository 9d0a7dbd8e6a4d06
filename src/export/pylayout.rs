//! `matterbak export --format json`: the Python tool's folder layout (and its zip), byte for
//! byte. Walks one consistent snapshot of the catalog and writes every exported entry to a
//! sink, in a fixed order (teams, their channels, direct, groups, users, emojis; rows by id
//! or time), so two exports of the same archive are byte-identical. Rows stream one at a
//! time. The names and paths are [`crate::pylayout`]'s; the JSON text is [`super::pyjson`]'s.
//!
//! May import: `pylayout`, `archive`, `catalog`, `blobs`, `outdir`, `model`, and its siblings
//! `pyjson` and `sink`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::pyjson::{self, PyJsonError};
use super::sink::{DirSink, Sink, SinkError, Tee, ZipSink};
use super::zone::Zone;
use crate::archive::ReadArchive;
use crate::blobs::BlobStore;
use crate::catalog::{Catalog, CatalogError, ChannelRecord, MemberRecord};
use crate::model::{BlobId, ChannelId, ChannelType, PostId};
use crate::outdir::{self, OutputDirError, OutputKind};
use crate::pylayout::{self, ChannelPaths, ChannelPlace};

#[derive(Debug, thiserror::Error)]
pub enum PyLayoutError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Blobs(#[from] crate::blobs::BlobError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    OutputDir(#[from] OutputDirError),
    #[error("export: stored JSON of {what} is not valid")]
    Json {
        what: String,
        #[source]
        source: PyJsonError,
    },
}

#[derive(Clone, Debug, Default)]
pub struct PyLayoutOptions {
    /// Write no `users/` directory (as the Python tool with `--skip-users`).
    pub skip_users: bool,
    /// Write no `emojis/` directory (as the Python tool with `--skip-emojis`).
    pub skip_emojis: bool,
    /// The zone of the local times in post file names (`--tz`; default the machine's, as
    /// the Python tool).
    pub tz: Zone,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PyLayoutReport {
    pub files: u64,
    pub posts: u64,
    pub attachments: u64,
    pub bytes: u64,
    /// Attachments and images whose bytes the archive does not hold (never fetched, or a
    /// damaged blob store); their JSON is still written.
    pub missing_blobs: Vec<String>,
}

/// Exports the archive into `data_dir` and, unless `zip` is None, the zip of it.
pub fn export_pylayout(
    archive: &ReadArchive,
    data_dir: &Path,
    zip: Option<&Path>,
    options: &PyLayoutOptions,
) -> Result<PyLayoutReport, PyLayoutError> {
    let catalog = archive.catalog();
    if let Some(zip) = zip {
        outdir::check_file(zip)?;
    }
    outdir::claim_dir(data_dir, OutputKind::DataDir)?;
    let blobs = archive.blobs()?;
    let dir = DirSink::new(data_dir)?;
    let mut sink: Box<dyn Sink> = match zip {
        Some(zip) => Box::new(Tee::new(dir, ZipSink::create(zip)?)),
        None => Box::new(dir),
    };
    let mut walker = Walker {
        catalog,
        blobs,
        sink: sink.as_mut(),
        report: PyLayoutReport::default(),
        tz: options.tz.clone(),
    };
    catalog.begin_snapshot()?;
    let walked = walker.walk(options);
    let report = std::mem::take(&mut walker.report);
    catalog.end_snapshot()?;
    walked?;
    sink.finish()?;
    Ok(report)
}

/// The default zip name of the Python tool: `matterbak_<user>.zip`.
pub fn default_zip_name(user: &str) -> PathBuf {
    PathBuf::from(format!("matterbak_{}.zip", pylayout::sanitize_name(user)))
}

struct Walker<'a> {
    catalog: &'a Catalog,
    blobs: &'a BlobStore,
    sink: &'a mut dyn Sink,
    report: PyLayoutReport,
    tz: Zone,
}

/// Adapts a JSON transcoding error to the I/O error a sink callback returns.
fn json_io(e: PyJsonError) -> io::Error {
    match e {
        PyJsonError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl Walker<'_> {
    fn walk(&mut self, options: &PyLayoutOptions) -> Result<(), PyLayoutError> {
        let channels = self.catalog.load_channels()?;
        for team in self.catalog.load_teams()? {
            let paths = pylayout::team_paths(&team.id, &team.name);
            self.json(&paths.json, &team.json, "team")?;
            let team_id = team.id.clone();
            self.json_list(&paths.members, |catalog, each| {
                catalog.load_team_members(&team_id, each)
            })?;
            if let Some((blob, content_type)) = &team.icon
                && let Some(ext) = pylayout::image_extension(content_type)
            {
                self.blob(
                    &paths.icon(&ext),
                    blob,
                    &format!("icon of team {}", team.name),
                )?;
            }
            for channel in channels
                .iter()
                .filter(|c| c.team_id == team.id && !c.team_id.is_empty())
            {
                self.channel(ChannelPlace::Team(&paths), channel, &channel.name)?;
            }
        }
        for (kind, place) in [
            (ChannelType::Direct, ChannelPlace::Direct),
            (ChannelType::Group, ChannelPlace::Group),
        ] {
            for channel in channels.iter().filter(|c| c.kind == kind) {
                let name = channel.export_name.as_deref().unwrap_or(&channel.name);
                self.channel(place, channel, name)?;
            }
        }
        if !options.skip_users {
            self.sink.dir(pylayout::USERS_DIR)?;
            for user in self.catalog.load_users()? {
                let paths = pylayout::user_paths(&user.id, &user.name);
                self.json(&paths.json, &user.json, "user")?;
                if let Some((blob, content_type)) = &user.image
                    && let Some(ext) = pylayout::image_extension(content_type)
                {
                    self.blob(
                        &paths.image(&ext),
                        blob,
                        &format!("picture of user {}", user.name),
                    )?;
                }
            }
        }
        if !options.skip_emojis {
            self.sink.dir(pylayout::EMOJIS_DIR)?;
            for emoji in self.catalog.load_emojis()? {
                let paths = pylayout::emoji_paths(&emoji.id, &emoji.name);
                self.json(&paths.json, &emoji.json, "emoji")?;
                if let Some((blob, content_type)) = &emoji.image
                    && let Some(ext) = pylayout::image_extension(content_type)
                {
                    self.blob(
                        &paths.image(&ext),
                        blob,
                        &format!("image of emoji {}", emoji.name),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn channel(
        &mut self,
        place: ChannelPlace<'_>,
        channel: &ChannelRecord,
        name: &str,
    ) -> Result<(), PyLayoutError> {
        let paths: ChannelPaths = pylayout::channel_paths(place, &channel.id, name);
        self.json(&paths.json, &channel.json, "channel")?;
        let id = channel.id.clone();
        self.json_list(&paths.members, |catalog, each| {
            catalog.load_channel_members(&id, each)
        })?;
        self.threads(&paths.threads, &channel.id)?;
        self.sink.dir(&paths.posts_dir)?;
        self.sink.dir(&paths.files_dir)?;

        let (catalog, tz) = (self.catalog, self.tz.clone());
        // Posts stream from SQLite straight into the sink; a sink error stops the walk and is
        // returned as itself.
        let sink = &mut *self.sink;
        let mut count = 0u64;
        catalog.load_posts(&channel.id, |post| {
            if !post.seen_live {
                return Ok(()); // no content: the server had blanked it
            }
            let rel = paths.post(post.create_at, &post.id, &tz);
            sink.file(&rel, None, &mut |out: &mut dyn Write| {
                pyjson::write_python_json(&post.json, out).map_err(json_io)
            })?;
            count += 1;
            Ok::<_, PyLayoutError>(())
        })?;
        self.report.posts += count;
        self.report.files += count;

        // File infos and bytes stream the same way.
        let blobs = self.blobs;
        let report = &mut self.report;
        catalog.load_files(&channel.id, |file| {
            let info = paths.file_info(&file.id);
            write_json(sink, &info, &file.json, "file info")?;
            report.files += 1;
            match &file.blob {
                Some(blob) => {
                    let what = format!("file {} ({})", file.id, file.name);
                    let written = write_blob(
                        sink,
                        blobs,
                        &paths.file_bytes(&file.id, &file.name),
                        blob,
                        &what,
                        report,
                    )?;
                    report.attachments += u64::from(written);
                }
                None => report
                    .missing_blobs
                    .push(format!("file {} ({}): never fetched", file.id, file.name)),
            }
            Ok(())
        })
    }

    /// `{"root": ["reply", ...], ...}` streamed from the catalog.
    fn threads(&mut self, rel: &str, channel_id: &ChannelId) -> Result<(), PyLayoutError> {
        let catalog = self.catalog;
        self.sink.file(rel, None, &mut |out: &mut dyn Write| {
            out.write_all(b"{")?;
            let mut current: Option<PostId> = None;
            catalog.load_thread_replies(channel_id, |root, reply| {
                match &current {
                    Some(r) if r == root => out.write_all(b", ")?,
                    Some(_) => {
                        out.write_all(b"], ")?;
                        write_key(out, root)?;
                    }
                    None => write_key(out, root)?,
                }
                if current.as_ref() != Some(root) {
                    current = Some(root.clone());
                }
                write_string(out, reply)
            })?;
            if current.is_some() {
                out.write_all(b"]")?;
            }
            out.write_all(b"}")
        })?;
        self.report.files += 1;
        Ok(())
    }

    fn json(&mut self, rel: &str, raw: &str, what: &str) -> Result<(), PyLayoutError> {
        write_json(self.sink, rel, raw, what)?;
        self.report.files += 1;
        Ok(())
    }

    /// A JSON list of stored objects, as the Python tool writes member lists.
    fn json_list(
        &mut self,
        rel: &str,
        rows: impl Fn(&Catalog, &mut dyn FnMut(MemberRecord) -> io::Result<()>) -> io::Result<()>,
    ) -> Result<(), PyLayoutError> {
        let catalog = self.catalog;
        self.sink.file(rel, None, &mut |out: &mut dyn Write| {
            out.write_all(b"[")?;
            let mut first = true;
            rows(catalog, &mut |member| {
                if !first {
                    out.write_all(b", ")?;
                }
                first = false;
                pyjson::write_python_json(&member.json, out).map_err(json_io)
            })?;
            out.write_all(b"]")
        })?;
        self.report.files += 1;
        Ok(())
    }

    fn blob(&mut self, rel: &str, blob: &BlobId, what: &str) -> Result<(), PyLayoutError> {
        write_blob(self.sink, self.blobs, rel, blob, what, &mut self.report).map(drop)
    }
}

/// Writes stored JSON the Python way. Validated first, so a broken row is reported by name
/// rather than as an I/O failure half-way through a file.
fn write_json(sink: &mut dyn Sink, rel: &str, raw: &str, what: &str) -> Result<(), PyLayoutError> {
    if let Err(source) = pyjson::write_python_json(raw, &mut io::sink()) {
        return Err(PyLayoutError::Json {
            what: format!("{what} {rel}"),
            source,
        });
    }
    sink.file(rel, None, &mut |out: &mut dyn Write| {
        pyjson::write_python_json(raw, out).map_err(json_io)
    })?;
    Ok(())
}

/// Copies a blob into the sink; a blob missing from the store is reported, not fatal.
/// Returns whether it was written.
fn write_blob(
    sink: &mut dyn Sink,
    blobs: &BlobStore,
    rel: &str,
    blob: &BlobId,
    what: &str,
    report: &mut PyLayoutReport,
) -> Result<bool, PyLayoutError> {
    let mut file = match blobs.open_blob(blob) {
        Ok(file) => file,
        Err(e) if e.is_missing() => {
            report
                .missing_blobs
                .push(format!("{what}: blob {blob} missing from the store"));
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let len = file.len();
    sink.file(rel, Some(len), &mut |out: &mut dyn Write| {
        io::copy(&mut file, out).map(drop)
    })?;
    report.files += 1;
    report.bytes += len;
    Ok(true)
}

fn write_key(out: &mut dyn Write, root: &str) -> io::Result<()> {
    write_string(out, root)?;
    out.write_all(b": [")
}

/// A JSON string in the Python tool's escaping (ids come from the server: escape them).
fn write_string(out: &mut dyn Write, text: &str) -> io::Result<()> {
    let quoted = serde_json::to_string(text).expect("strings serialize");
    pyjson::write_python_json(&quoted, out).map_err(json_io)
}
