//! Output directories: every command that creates a directory (an export, the website, the
//! demo; the archive itself is checked the same way by `archive`, which knows its names)
//! writes only into one that is new, empty, or recognisably matterbak's own earlier output of
//! the same kind. A mistyped `-d .` must never scatter our files among a user's own, so the
//! check runs before anything is written.
//!
//! Recognition is by content, not by a marker file where the Python tool's layout forbids
//! extra files (the export data dir is compared file for file with the Python tool's);
//! outputs of our own design carry a marker file, [`MARKER_FILE`], naming their kind.
//! Output files (a zip, a report) are checked here too ([`check_file`]), so that a command
//! can refuse a bad output path before the work that would produce it.
//!
//! One rule for every output path a user names (issue 24 §6): folders of the path that do
//! not exist yet are created, when the output is written ([`claim_dir`], [`create_parent`]);
//! a path that runs through an existing file, or names a directory where a file is to be
//! written, is refused by the checks, which write nothing and run before any output is made.
//!
//! May import: `pylayout` (a data dir's top-level names).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::pylayout::TOP_DIRS;

/// The file that marks a directory as matterbak's output of one kind (its content is the
/// kind's name and a newline).
pub const MARKER_FILE: &str = ".matterbak-output";

/// What a directory is meant to hold, and how an earlier one of the same kind is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// The Python matterbak's folder layout: recognised by holding only its top-level names.
    DataDir,
    /// An output of our own design (the website, Markdown files, the demo directory…):
    /// recognised by [`MARKER_FILE`] naming this kind, which [`claim_dir`] writes.
    Marked(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum OutputDirError {
    #[error(
        "refusing to write into {}: it is not empty and not {what} matterbak wrote ({} entr{} such as {first:?}); choose a new or empty directory",
        path.display(),
        count,
        if *count == 1 { "y" } else { "ies" }
    )]
    Foreign {
        path: PathBuf,
        what: &'static str,
        count: usize,
        first: String,
    },
    #[error("{} exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot write {}: {} is a file, not a folder", path.display(), ancestor.display())]
    UnderAFile { path: PathBuf, ancestor: PathBuf },
    #[error("cannot write {}: it is a directory; give a file name", path.display())]
    FileIsADirectory { path: PathBuf },
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl OutputKind {
    fn describe(self) -> &'static str {
        match self {
            OutputKind::DataDir => "an export data dir",
            OutputKind::Marked(_) => "an output",
        }
    }
}

/// Checks `dir` without writing anything: Ok when it does not exist, is empty, or holds an
/// earlier output of `kind`.
pub fn check_dir(dir: &Path, kind: OutputKind) -> Result<(), OutputDirError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return check_ancestors(dir),
        Err(_) if dir.is_file() => {
            return Err(OutputDirError::NotADirectory { path: dir.into() });
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return check_ancestors(dir),
        Err(source) => {
            return Err(OutputDirError::Io {
                op: "read directory",
                path: dir.into(),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| OutputDirError::Io {
            op: "read directory",
            path: dir.into(),
            source,
        })?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() || is_own(dir, &names, kind) {
        return Ok(());
    }
    names.sort();
    let foreign: Vec<&String> = match kind {
        OutputKind::DataDir => names
            .iter()
            .filter(|n| !TOP_DIRS.contains(&n.as_str()))
            .collect(),
        _ => names.iter().collect(),
    };
    Err(OutputDirError::Foreign {
        path: dir.into(),
        what: kind.describe(),
        count: foreign.len(),
        first: foreign.first().map(|n| n.to_string()).unwrap_or_default(),
    })
}

fn is_own(dir: &Path, names: &[String], kind: OutputKind) -> bool {
    match kind {
        OutputKind::DataDir => names
            .iter()
            .all(|n| TOP_DIRS.contains(&n.as_str()) && dir.join(n).is_dir()),
        OutputKind::Marked(name) => fs::read_to_string(dir.join(MARKER_FILE))
            .is_ok_and(|content| content.trim_end() == name),
    }
}

/// Checks that the file `path` (a zip, a report) can be written: it is not a directory, and
/// no existing part of its folder is a file (folders that do not exist yet are made by
/// [`create_parent`] when the file is written). Writes nothing, so a command can check all
/// its outputs before the work that produces them.
pub fn check_file(path: &Path) -> Result<(), OutputDirError> {
    if path.is_dir() {
        return Err(OutputDirError::FileIsADirectory { path: path.into() });
    }
    check_ancestors(path)
}

/// The nearest existing folder above `path` must be a directory (none existing, as for a
/// relative path in a new tree, is fine: the current directory is one). Writes nothing; for
/// outputs checked elsewhere (the archive directory), so that they are refused as the others.
pub fn check_ancestors(path: &Path) -> Result<(), OutputDirError> {
    for ancestor in path.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        match fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(OutputDirError::UnderAFile {
                    path: path.into(),
                    ancestor: ancestor.into(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
            Err(source) => {
                return Err(OutputDirError::Io {
                    op: "read",
                    path: ancestor.into(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Makes the directory `dir` (and its folders) for outputs that may go into any directory,
/// such as manual pages: refused only when `dir` or a folder of it is a file.
pub fn make_dir(dir: &Path) -> Result<(), OutputDirError> {
    if dir.is_file() {
        return Err(OutputDirError::NotADirectory { path: dir.into() });
    }
    check_ancestors(dir)?;
    fs::create_dir_all(dir).map_err(|source| OutputDirError::Io {
        op: "create directory",
        path: dir.into(),
        source,
    })
}

/// [`check_file`], then creates the folders of `path` that do not exist yet: called right
/// before the file is written, after every other check of the command passed.
pub fn create_parent(path: &Path) -> Result<(), OutputDirError> {
    check_file(path)?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            fs::create_dir_all(parent).map_err(|source| OutputDirError::Io {
                op: "create directory",
                path: parent.into(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// [`check_dir`], then creates `dir` (and its parents) and, for a marked kind, writes the
/// marker, so the next run recognises the directory as its own.
pub fn claim_dir(dir: &Path, kind: OutputKind) -> Result<(), OutputDirError> {
    check_dir(dir, kind)?;
    fs::create_dir_all(dir).map_err(|source| OutputDirError::Io {
        op: "create directory",
        path: dir.into(),
        source,
    })?;
    if let OutputKind::Marked(name) = kind {
        let marker = dir.join(MARKER_FILE);
        fs::write(&marker, format!("{name}\n")).map_err(|source| OutputDirError::Io {
            op: "write",
            path: marker,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: OutputKind = OutputKind::Marked("site");

    #[test]
    fn new_and_empty_directories_are_claimed() {
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("a/b");
        claim_dir(&new, SITE).unwrap();
        assert_eq!(fs::read_to_string(new.join(MARKER_FILE)).unwrap(), "site\n");
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        claim_dir(&empty, OutputKind::DataDir).unwrap();
        assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_with_other_files_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        for kind in [OutputKind::DataDir, SITE] {
            let err = claim_dir(tmp.path(), kind).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("refusing to write into"), "{text}");
            assert!(text.contains("\"notes.txt\""), "{text}");
        }
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing was written");
    }

    #[test]
    fn earlier_output_of_the_same_kind_is_recognised() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("teams")).unwrap();
        fs::create_dir_all(data.join("users")).unwrap();
        check_dir(&data, OutputKind::DataDir).unwrap();
        fs::write(data.join("emojis"), "a file, not the layout's directory").unwrap();
        assert!(check_dir(&data, OutputKind::DataDir).is_err());

        let site = tmp.path().join("site");
        claim_dir(&site, SITE).unwrap();
        fs::write(site.join("index.html"), "").unwrap();
        claim_dir(&site, SITE).unwrap();
        assert!(check_dir(&site, OutputKind::Marked("markdown")).is_err());
    }

    #[test]
    fn an_output_file_gets_its_folders_and_must_not_be_a_directory_or_under_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        check_file(&tmp.path().join("out.zip")).unwrap();
        check_file(Path::new("relative.zip")).unwrap();
        check_file(Path::new("new/relative.zip")).unwrap();
        let deep = tmp.path().join("a/b/out.zip");
        check_file(&deep).unwrap();
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "a check writes nothing"
        );
        create_parent(&deep).unwrap();
        assert!(tmp.path().join("a/b").is_dir());
        fs::remove_dir_all(tmp.path().join("a")).unwrap();
        let err = check_file(tmp.path()).unwrap_err();
        assert!(
            matches!(err, OutputDirError::FileIsADirectory { .. }),
            "{err}"
        );
        fs::write(tmp.path().join("file"), "").unwrap();
        for under in ["file/out.zip", "file/deeper/out.zip"] {
            let err = create_parent(&tmp.path().join(under)).unwrap_err();
            assert!(matches!(err, OutputDirError::UnderAFile { .. }), "{err}");
            assert!(
                err.to_string().ends_with("file is a file, not a folder"),
                "{err}"
            );
            let err = check_dir(&tmp.path().join(under), SITE).unwrap_err();
            assert!(matches!(err, OutputDirError::UnderAFile { .. }), "{err}");
        }
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "nothing written"
        );
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("passwd");
        fs::write(&file, "root:x:0:0").unwrap();
        let err = check_dir(&file, OutputKind::DataDir).unwrap_err();
        assert!(matches!(err, OutputDirError::NotADirectory { .. }), "{err}");
    }
}
