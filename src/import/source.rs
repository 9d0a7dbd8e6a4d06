//! A backup to read: a data directory or a zip of one, seen as a sorted list of relative
//! `/`-separated entry paths. Opening one checks that it is a matterbak backup at all (its top
//! level holds only the layout's folders) and reads nothing else, so a path that is not a
//! backup is refused before anything is written.
//!
//! May import: `pylayout` (the top-level names) and `zip` (the reader).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::pylayout::TOP_DIRS;
use crate::zip::ZipIndex;

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
        source: io::Error,
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
    Zip(ZipIndex),
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
            let zip_err = |source| SourceError::Zip {
                path: path.to_owned(),
                source,
            };
            let (index, listed) = ZipIndex::open(file).map_err(zip_err)?;
            let mut entries = Vec::with_capacity(listed.len());
            for (n, entry) in listed.into_iter().enumerate() {
                if entry.name.ends_with('/') {
                    continue; // a directory
                }
                if entry.method != 0 {
                    return Err(SourceError::Compressed {
                        path: path.to_owned(),
                        entry: entry.name,
                        method: method_name(entry.method),
                    });
                }
                entries.push((entry.name, n));
            }
            (Kind::Zip(index), entries)
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
    pub fn read(&self, entry: usize) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.copy_to(entry, &mut bytes)?;
        Ok(bytes)
    }

    /// Streams a file's bytes into `out`; returns how many.
    pub fn copy_to(&self, entry: usize, out: &mut dyn Write) -> io::Result<u64> {
        let (rel, index) = &self.entries[entry];
        match &self.kind {
            Kind::Dir(root) => io::copy(&mut File::open(root.join(rel))?, out),
            Kind::Zip(zip) => zip.copy_to(*index, out),
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

/// The name APPNOTE gives a compression method, for the refusal message.
fn method_name(method: u16) -> String {
    match method {
        8 => "deflated".into(),
        9 => "deflate64".into(),
        12 => "bzip2".into(),
        14 => "LZMA".into(),
        93 => "zstd".into(),
        95 => "xz".into(),
        99 => "AES-encrypted".into(),
        other => format!("method {other}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zip_with_a_compressed_entry_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("users/u1.json", stored).unwrap();
        zip.write_all(b"{}").unwrap();
        zip.finish().unwrap();
        assert_eq!(Backup::open(&path).unwrap().len(), 1);
        // Marked deflated in its central record (offset 10 of the record).
        let mut bytes = std::fs::read(&path).unwrap();
        let central = bytes
            .windows(4)
            .position(|w| w == 0x0201_4b50u32.to_le_bytes())
            .unwrap();
        bytes[central + 10] = 8;
        std::fs::write(&path, &bytes).unwrap();
        let err = Backup::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("stores users/u1.json compressed (deflated)"),
            "{err}"
        );
    }
}
