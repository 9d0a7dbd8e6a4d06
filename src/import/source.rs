//! A backup to read: a data directory or a zip of one, seen as a sorted list of relative
//! `/`-separated entry paths. Opening one checks that it is a matterbak backup at all (its top
//! level holds only the layout's folders) and reads nothing else, so a path that is not a
//! backup is refused before anything is written.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

/// The layout's top-level folders (README "Export layout").
pub const TOP_DIRS: &[&str] = &["teams", "direct", "groups", "users", "emojis"];

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "{} is not a matterbak backup: {reason} (a backup's top level holds only teams/, direct/, groups/, users/ and emojis/)",
        path.display()
    )]
    NotABackup { path: PathBuf, reason: String },
    #[error("cannot read backup {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read zip {}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error(
        "zip {} stores {entry} compressed ({method}); matterbak reads zips as the Python matterbak writes them (stored): unzip it and import the directory",
        path.display()
    )]
    Compressed {
        path: PathBuf,
        entry: String,
        method: String,
    },
}

enum Kind {
    Dir(PathBuf),
    Zip(Box<zip::ZipArchive<BufReader<File>>>),
}

/// An opened backup. Entries are files only (directories are implied by their paths).
pub struct Backup {
    path: PathBuf,
    kind: Kind,
    /// Relative path and, for a zip, the entry's index; sorted by path.
    entries: Vec<(String, usize)>,
}

impl Backup {
    /// Opens a data directory or zip and lists its files; refuses anything else.
    pub fn open(path: &Path) -> Result<Backup, SourceError> {
        let io_err = |source| SourceError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let (kind, mut entries) = if meta.is_dir() {
            let mut entries = Vec::new();
            list_dir(path, "", &mut entries).map_err(io_err)?;
            (Kind::Dir(path.to_owned()), entries)
        } else {
            let file = File::open(path).map_err(io_err)?;
            let archive =
                zip::ZipArchive::new(BufReader::new(file)).map_err(|source| SourceError::Zip {
                    path: path.to_owned(),
                    source,
                })?;
            let mut entries = Vec::with_capacity(archive.len());
            let mut archive = Box::new(archive);
            for index in 0..archive.len() {
                let entry = archive
                    .by_index_raw(index)
                    .map_err(|source| SourceError::Zip {
                        path: path.to_owned(),
                        source,
                    })?;
                if entry.is_dir() {
                    continue;
                }
                if entry.compression() != zip::CompressionMethod::Stored {
                    return Err(SourceError::Compressed {
                        path: path.to_owned(),
                        entry: entry.name().to_owned(),
                        method: entry.compression().to_string(),
                    });
                }
                entries.push((entry.name().to_owned(), index));
            }
            (Kind::Zip(archive), entries)
        };
        entries.sort_unstable();
        check_layout(path, &entries)?;
        Ok(Backup {
            path: path.to_owned(),
            kind,
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a whole (JSON) file.
    pub fn read(&mut self, entry: usize) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.copy_to(entry, &mut bytes)?;
        Ok(bytes)
    }

    /// Streams a file's bytes into `out`; returns how many.
    pub fn copy_to(&mut self, entry: usize, out: &mut dyn Write) -> io::Result<u64> {
        let (rel, index) = &self.entries[entry];
        match &mut self.kind {
            Kind::Dir(root) => io::copy(&mut File::open(root.join(rel))?, out),
            Kind::Zip(archive) => {
                // Read to the end, where the zip reader checks the entry's CRC.
                let mut file = archive.by_index(*index).map_err(io::Error::other)?;
                io::copy(&mut file, out)
            }
        }
    }

    /// How many files the backup holds; entries are numbered `0..len()` in path order.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The relative path of an entry.
    pub fn entry_path(&self, entry: usize) -> &str {
        &self.entries[entry].0
    }
}

/// Lists regular files below `dir` as `/`-joined paths. Symbolic links are not followed
/// (a backup never holds one, and following could read outside it).
fn list_dir(dir: &Path, prefix: &str, out: &mut Vec<(String, usize)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_dir(&entry.path(), &rel, out)?;
        } else if kind.is_file() {
            out.push((rel, 0));
        }
    }
    Ok(())
}

fn check_layout(path: &Path, entries: &[(String, usize)]) -> Result<(), SourceError> {
    let not_a_backup = |reason: String| SourceError::NotABackup {
        path: path.to_owned(),
        reason,
    };
    let mut foreign: Vec<&str> = entries
        .iter()
        .map(|(p, _)| p.split('/').next().unwrap_or(p))
        .filter(|top| !TOP_DIRS.contains(top) || entries.is_empty())
        .collect();
    foreign.dedup();
    if let Some(first) = foreign.first() {
        let more = match foreign.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        return Err(not_a_backup(format!("it holds {first:?}{more}")));
    }
    if entries.is_empty() {
        return Err(not_a_backup("it holds no files".into()));
    }
    Ok(())
}
