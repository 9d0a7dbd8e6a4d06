//! Where the exported bytes go: a directory tree ([`DirSink`]), a zip file ([`ZipSink`]), or
//! both in one pass ([`Tee`]). The export walks the catalog once and streams every entry
//! (JSON through [`super::pyjson`], file contents straight from a blob), so a sink takes a
//! writer callback instead of a buffer and never holds a whole entry in memory.
//!
//! Invariants:
//! - every relative path is checked again here (defence in depth behind
//!   [`crate::pylayout`]): it must be non-empty, relative, `/`-separated, without empty, `.`
//!   or `..` components and without `\` or NUL (a zip made
//!   [`ZipSink::with_backslash_names`] takes `\` in a name, but only where reading it as a
//!   separator still gives such a path); anything else is [`SinkError::UnsafePath`] and
//!   nothing is written;
//! - parent directories are created as needed (the zip gets an entry `a/`, `a/b/` for each
//!   new directory, as Python's `zipf.write` of its directory tree does);
//! - a file only ever appears under its real name complete: [`DirSink`] writes
//!   `<name>.tmp-matterbak` and renames it, [`ZipSink`] writes `<zip>.tmp` and renames it
//!   in [`Sink::finish`]; a failed entry leaves no file behind (a failed zip entry makes
//!   the whole zip fail, as it cannot be cut out of the stream);
//! - the zip is deterministic: stored (as Python writes it), entries in call order, a fixed
//!   timestamp of 1980-01-01 00:00:00 and fixed modes (0o644 files, 0o755 dirs), so the same
//!   calls give the same bytes.
//!
//! Not done: `fsync` of every file of a [`DirSink`] (an export of many small posts would
//! crawl; the export can simply be run again after a power loss). The zip is synced once
//! before its rename.
//!
//! May import: `zip` (the streaming writer); nothing else of the crate (its tests also use
//! the sibling `pyjson`).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::zip::ZipStream;

/// Suffix of a [`DirSink`] file while it is being written.
pub const TMP_SUFFIX: &str = ".tmp-matterbak";
const MAX_FILE_NAME_BYTES: usize = 255;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The relative path could leave the export root or is malformed; nothing was written.
    #[error("refusing export path {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// A file system operation failed (for a failed entry, `path` is the entry's final path).
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An earlier error broke the zip; it will not be finished.
    #[error("the zip export failed earlier and cannot continue")]
    ZipFailed,
}

/// Callback that streams one entry's content; called at most once per [`Sink::file`].
pub type WriteFn<'a> = dyn FnMut(&mut dyn Write) -> io::Result<()> + 'a;

/// A destination for the export. Object safe, so the caller can pick sinks at run time.
pub trait Sink {
    /// Make the directory `rel` (and its parents) exist, even if no file goes into it,
    /// as Python creates e.g. the `files/` dir of every channel.
    fn dir(&mut self, rel: &str) -> Result<(), SinkError>;

    /// Write the entry `rel`, its content produced by `write`. `len_hint` is the content
    /// length when known (file contents): a zip entry of 4 GiB or more needs ZIP64 fields,
    /// which must be chosen before the data, so content without a hint (JSON) must stay
    /// below 4 GiB or the zip fails.
    fn file(
        &mut self,
        rel: &str,
        len_hint: Option<u64>,
        write: &mut WriteFn<'_>,
    ) -> Result<(), SinkError>;

    /// Complete the export (the zip's central directory and rename); a sink dropped without
    /// `finish` leaves no result under its final name.
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn dir(&mut self, rel: &str) -> Result<(), SinkError> {
        (**self).dir(rel)
    }

    fn file(
        &mut self,
        rel: &str,
        len_hint: Option<u64>,
        write: &mut WriteFn<'_>,
    ) -> Result<(), SinkError> {
        (**self).file(rel, len_hint, write)
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        (*self).finish()
    }
}

/// The path checks every sink applies before touching anything.
pub fn check_rel(rel: &str) -> Result<(), SinkError> {
    let reason = if rel.is_empty() {
        Some("empty path")
    } else if rel.starts_with('/') {
        Some("absolute path")
    } else if rel.contains('\\') {
        Some("backslash in path")
    } else if rel.contains('\0') {
        Some("NUL in path")
    } else {
        rel.split('/').find_map(|c| match c {
            "" => Some("empty path component"),
            "." => Some("`.` path component"),
            ".." => Some("`..` path component"),
            _ => None,
        })
    };
    // What `Path` sees must agree (it would also catch e.g. a Windows drive prefix).
    let reason = reason.or_else(|| {
        Path::new(rel)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
            .then_some("not a plain relative path")
    });
    match reason {
        Some(reason) => Err(SinkError::UnsafePath {
            path: rel.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// [`check_rel`] for a zip entry name in which `\` is a character of a file name (Linux
/// servers allow it): the name must pass [`check_rel`] both with `\` as a character and
/// with `\` read as a separator, as a Windows extractor reads it, so `a\b.txt` passes
/// while `..\..\x` (which would leave the folder it is extracted into there), a trailing
/// `\` (a directory there) or `a\\b` do not.
pub fn check_zip_member(rel: &str) -> Result<(), SinkError> {
    check_rel(&rel.replace('\\', "/")).map_err(|e| match e {
        SinkError::UnsafePath { reason, .. } => SinkError::UnsafePath {
            path: rel.to_owned(),
            reason,
        },
        other => other,
    })
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SinkError + 'p {
    move |source| SinkError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Writes the export as a directory tree below `root`, replacing existing files.
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
    /// The directory most recently made, to skip `create_dir_all` for the posts of a
    /// channel, which arrive in a row.
    last_dir: Option<String>,
}

impl DirSink {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err("create directory", &root))?;
        Ok(DirSink {
            root,
            last_dir: None,
        })
    }

    fn make_dir(&mut self, rel_dir: &str) -> Result<(), SinkError> {
        if self.last_dir.as_deref() == Some(rel_dir) {
            return Ok(());
        }
        let dir = self.root.join(rel_dir);
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        self.last_dir = Some(rel_dir.to_owned());
        Ok(())
    }
}

/// `<name>.tmp-matterbak` beside the target; a name already at the length limit gets a
/// hashed stand-in instead, as the suffix would make it too long to create.
fn tmp_path(target: &Path, file_name: &str) -> PathBuf {
    if file_name.len() + TMP_SUFFIX.len() <= MAX_FILE_NAME_BYTES {
        target.with_file_name(format!("{file_name}{TMP_SUFFIX}"))
    } else {
        let hash = blake3::hash(file_name.as_bytes());
        target.with_file_name(format!("{}{TMP_SUFFIX}", &hash.to_hex()[..16]))
    }
}

impl Sink for DirSink {
    fn dir(&mut self, rel: &str) -> Result<(), SinkError> {
        check_rel(rel)?;
        self.make_dir(rel)
    }

    fn file(
        &mut self,
        rel: &str,
        _len_hint: Option<u64>,
        write: &mut WriteFn<'_>,
    ) -> Result<(), SinkError> {
        check_rel(rel)?;
        let (parent, file_name) = match rel.rsplit_once('/') {
            Some((parent, name)) => (Some(parent), name),
            None => (None, rel),
        };
        if let Some(parent) = parent {
            self.make_dir(parent)?;
        }
        let target = self.root.join(rel);
        let tmp = tmp_path(&target, file_name);
        let written = File::create(&tmp)
            .map_err(io_err("create", &tmp))
            .and_then(|f| {
                let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, f);
                write(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(io_err("write", &target))
            })
            .and_then(|()| fs::rename(&tmp, &target).map_err(io_err("rename into", &target)));
        if written.is_err() {
            // Best effort: the error that matters is the one returned.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A deterministic zip of the export: stored entries, fixed time and modes, every directory
/// listed. Written to `<zip>.tmp`, renamed at `finish`; memory stays flat however many
/// entries (see [`crate::zip::write`]).
pub struct ZipSink {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once finished or after an error.
    zip: Option<ZipStream>,
    /// Directories already in the zip, without the trailing `/`. Bounded by the number of
    /// directories (channels), not of files.
    dirs: HashSet<String>,
    /// Write no directory entries (formats whose reference zip has none).
    no_dirs: bool,
    /// Accept `\` in entry names (see [`check_zip_member`]).
    backslash_names: bool,
}

impl std::fmt::Debug for ZipSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipSink")
            .field("path", &self.path)
            .field("failed", &self.zip.is_none())
            .finish_non_exhaustive()
    }
}

/// Adapts the open zip entry to `Write` for the content callbacks.
struct EntryWriter<'a>(&'a mut ZipStream);

impl Write for EntryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_data(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ZipSink {
    /// Start the zip at `<path>.tmp`; it appears under `path` only after [`Sink::finish`].
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        let with_suffix = |suffix: &str| {
            let mut name = path.file_name().unwrap_or_default().to_owned();
            name.push(suffix);
            path.with_file_name(name)
        };
        let tmp = with_suffix(".tmp");
        let spool = with_suffix(".tmp-directory");
        // The folders the user named for the zip (outdir's rule; checked before the export).
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        }
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let zip = ZipStream::new(file, &spool).map_err(io_err("create", &spool))?;
        Ok(ZipSink {
            path,
            tmp,
            zip: Some(zip),
            dirs: HashSet::new(),
            no_dirs: false,
            backslash_names: false,
        })
    }

    /// The zip gets file entries only; [`Sink::dir`] does nothing.
    pub fn without_directories(mut self) -> Self {
        self.no_dirs = true;
        self
    }

    /// Entry names may hold `\` as a plain character, as the Python tool's zips do for
    /// server file names (`a\b.txt`), while staying safe for an extractor that reads `\`
    /// as a separator: [`check_zip_member`] instead of [`check_rel`].
    pub fn with_backslash_names(mut self) -> Self {
        self.backslash_names = true;
        self
    }

    fn check(&self, rel: &str) -> Result<(), SinkError> {
        if self.backslash_names {
            check_zip_member(rel)
        } else {
            check_rel(rel)
        }
    }

    fn failed(&mut self, entry: &str, source: io::Error) -> SinkError {
        self.zip = None;
        SinkError::Io {
            op: "write zip entry",
            path: PathBuf::from(entry),
            source,
        }
    }

    /// Add entries for `rel_dir` and each of its ancestors not yet in the zip.
    fn make_dirs(&mut self, rel_dir: &str) -> Result<(), SinkError> {
        if self.no_dirs {
            return Ok(());
        }
        let ends = rel_dir
            .match_indices('/')
            .map(|(i, _)| i)
            .chain([rel_dir.len()]);
        for end in ends {
            let dir = &rel_dir[..end];
            if self.dirs.contains(dir) {
                continue;
            }
            let zip = self.zip.as_mut().ok_or(SinkError::ZipFailed)?;
            if let Err(source) = zip.add_directory(&format!("{dir}/"), 0o755) {
                return Err(self.failed(&format!("{dir}/"), source));
            }
            self.dirs.insert(dir.to_owned());
        }
        Ok(())
    }
}

impl Sink for ZipSink {
    fn dir(&mut self, rel: &str) -> Result<(), SinkError> {
        check_rel(rel)?;
        self.make_dirs(rel)
    }

    fn file(
        &mut self,
        rel: &str,
        len_hint: Option<u64>,
        write: &mut WriteFn<'_>,
    ) -> Result<(), SinkError> {
        self.check(rel)?;
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.make_dirs(parent)?;
        }
        let zip = self.zip.as_mut().ok_or(SinkError::ZipFailed)?;
        let large = len_hint.is_some_and(|len| len >= u64::from(u32::MAX));
        let result = zip
            .start_file(rel, 0o644, large)
            .and_then(|()| write(&mut EntryWriter(zip)))
            .and_then(|()| zip.finish_entry());
        result.map_err(|source| self.failed(rel, source))
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        let zip = self.zip.take().ok_or(SinkError::ZipFailed)?;
        let tmp = self.tmp.clone();
        let file = zip.finish().map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(io_err("rename into", &self.path))?;
        Ok(())
    }
}

impl Drop for ZipSink {
    fn drop(&mut self) {
        // Unfinished or failed: the partial zip must not stay around. `finish` renamed it
        // already on success, so the removal then finds nothing.
        self.zip = None;
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Feeds two sinks at once (the export writes the directory and the zip in one pass).
/// Each entry's content is produced once and written to both.
#[derive(Debug)]
pub struct Tee<A, B> {
    a: A,
    b: B,
}

impl<A: Sink, B: Sink> Tee<A, B> {
    pub fn new(a: A, b: B) -> Self {
        Tee { a, b }
    }
}

/// Copies every write to both writers.
struct BothWriter<'a> {
    a: &'a mut dyn Write,
    b: &'a mut dyn Write,
}

impl Write for BothWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}

impl<A: Sink, B: Sink> Sink for Tee<A, B> {
    fn dir(&mut self, rel: &str) -> Result<(), SinkError> {
        self.a.dir(rel)?;
        self.b.dir(rel)
    }

    fn file(
        &mut self,
        rel: &str,
        len_hint: Option<u64>,
        write: &mut WriteFn<'_>,
    ) -> Result<(), SinkError> {
        // `b`'s entry is written inside `a`'s callback, so both are open at once. An error
        // of `b` is kept aside (the callback can only return an `io::Error`) and wins.
        let b = &mut self.b;
        let mut b_error = None;
        let a_result = self.a.file(rel, len_hint, &mut |a_out| {
            b.file(rel, len_hint, &mut |b_out| {
                write(&mut BothWriter {
                    a: &mut *a_out,
                    b: b_out,
                })
            })
            .map_err(|e| {
                b_error = Some(e);
                io::Error::other("the other sink failed")
            })
        });
        match b_error {
            Some(e) => Err(e),
            None => a_result,
        }
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let a = Box::new(self.a).finish();
        let b = Box::new(self.b).finish();
        a.and(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn put(sink: &mut dyn Sink, rel: &str, content: &[u8]) -> Result<(), SinkError> {
        sink.file(rel, Some(content.len() as u64), &mut |w| {
            w.write_all(content)
        })
    }

    /// All files below `root` as sorted relative paths (dirs end in `/`).
    fn tree(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                if path.is_dir() {
                    out.push(format!("{rel}/"));
                    walk(root, &path, out);
                } else {
                    out.push(rel);
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    const HOSTILE: &[&str] = &[
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/..",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "/",
        "a\\b",
        "..\\x",
        "a\0b",
    ];

    #[test]
    fn dir_sink_writes_files_and_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let mut sink = DirSink::new(&root).unwrap();
        sink.dir("emojis").unwrap();
        sink.dir("direct/d1__bob/files").unwrap();
        put(&mut sink, "teams/t1__eng.json", b"{}").unwrap();
        put(
            &mut sink,
            "teams/t1__eng/c1__x/20240101-000000000000__p1.json",
            b"[1]",
        )
        .unwrap();
        put(&mut sink, "users/u1__a.json", b"old").unwrap();
        put(&mut sink, "users/u1__a.json", b"new").unwrap();
        put(&mut sink, "top.json", b"").unwrap();
        // A name at the length limit still has room for its temporary name.
        let long = format!("users/{}", "n".repeat(MAX_FILE_NAME_BYTES));
        put(&mut sink, &long, b"long").unwrap();
        Box::new(sink).finish().unwrap();
        assert_eq!(
            tree(&root),
            [
                "direct/",
                "direct/d1__bob/",
                "direct/d1__bob/files/",
                "emojis/",
                "teams/",
                "teams/t1__eng.json",
                "teams/t1__eng/",
                "teams/t1__eng/c1__x/",
                "teams/t1__eng/c1__x/20240101-000000000000__p1.json",
                "top.json",
                "users/",
                long.as_str(),
                "users/u1__a.json",
            ]
        );
        assert_eq!(fs::read(root.join("users/u1__a.json")).unwrap(), b"new");
        assert_eq!(fs::read(root.join(&long)).unwrap(), b"long");
    }

    #[test]
    fn zip_member_names_take_a_backslash_unless_it_makes_a_path() {
        for ok in [
            "files/id-back\\slash.txt",
            "files/id-..",
            "files/id-tab\there",
            "a\\b\\c",
        ] {
            assert!(check_zip_member(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "files/id-..\\..\\x",
            "files/id-x\\",
            "files/id-a\\\\b",
            "files/id-a\\.\\b",
            "files/../x",
            "\\x",
            "a\0b",
        ] {
            match check_zip_member(bad) {
                Err(SinkError::UnsafePath { path, .. }) => assert_eq!(path, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        // Only a zip made to take them does; others refuse `\` as before.
        let tmp = tempfile::tempdir().unwrap();
        let mut plain = ZipSink::create(tmp.path().join("plain.zip")).unwrap();
        assert!(put(&mut plain, "files/id-a\\b", b"x").is_err());
        let path = tmp.path().join("names.zip");
        let mut named = ZipSink::create(&path).unwrap().with_backslash_names();
        put(&mut named, "files/id-a\\b", b"x").unwrap();
        assert!(put(&mut named, "files/id-..\\..\\x", b"x").is_err());
        Box::new(named).finish().unwrap();
        let zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        let names: Vec<&str> = zip.file_names().collect();
        assert_eq!(names, ["files/", "files/id-a\\b"]);
    }

    #[test]
    fn dir_sink_refuses_hostile_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let mut sink = DirSink::new(&root).unwrap();
        for rel in HOSTILE {
            match put(&mut sink, rel, b"x") {
                Err(SinkError::UnsafePath { path, .. }) => assert_eq!(path, *rel),
                other => panic!("{rel:?}: {other:?}"),
            }
            let err = sink.dir(rel).unwrap_err();
            assert!(err.to_string().contains(&format!("{rel:?}")), "{err}");
        }
        // Nothing was created, inside the root or beside it.
        assert!(tree(&root).is_empty());
        assert_eq!(tree(tmp.path()), ["data/"]);
    }

    #[test]
    fn dir_sink_failed_write_leaves_old_file_and_no_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(tmp.path()).unwrap();
        put(&mut sink, "a/b.json", b"complete").unwrap();
        let err = sink
            .file("a/b.json", None, &mut |w| {
                w.write_all(b"half")?;
                Err(io::Error::other("source blob vanished"))
            })
            .unwrap_err();
        assert!(matches!(err, SinkError::Io { op: "write", .. }), "{err}");
        assert!(err.to_string().contains("b.json"), "{err}");
        assert_eq!(fs::read(tmp.path().join("a/b.json")).unwrap(), b"complete");
        assert_eq!(tree(tmp.path()), ["a/", "a/b.json"]);
    }

    /// Reads a zip back: `(name, content, unix mode, modified)` per entry, in order.
    fn read_zip(path: &Path) -> Vec<(String, Vec<u8>, u32, String)> {
        let mut archive = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut f = archive.by_index(i).unwrap();
                assert_eq!(f.compression(), zip::CompressionMethod::Stored);
                let mut content = Vec::new();
                f.read_to_end(&mut content).unwrap();
                let modified = f.last_modified().unwrap().to_string();
                (
                    f.name().to_owned(),
                    content,
                    f.unix_mode().unwrap(),
                    modified,
                )
            })
            .collect()
    }

    fn write_sample(sink: &mut dyn Sink) {
        sink.dir("emojis").unwrap();
        put(sink, "teams/t1__eng.json", br#"{"id": "t1"}"#).unwrap();
        put(sink, "teams/t1__eng/c1__x/p1.json", b"[]").unwrap();
        sink.dir("teams/t1__eng/c1__x/files").unwrap();
        put(sink, "users/u1__\u{e9}.json", "é".as_bytes()).unwrap();
        // JSON without a length hint.
        sink.file("users/u2.json", None, &mut |w| {
            crate::export::pyjson::write_python_json(r#"{"a":[1,2.50]}"#, w)
                .map_err(io::Error::other)
        })
        .unwrap();
    }

    #[test]
    fn zip_has_exactly_the_expected_members() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.zip");
        let mut sink = ZipSink::create(&path).unwrap();
        write_sample(&mut sink);
        assert!(!path.exists(), "the zip appears only when finished");
        Box::new(sink).finish().unwrap();
        let entries = read_zip(&path);
        let dir = |name: &str| {
            (
                name.to_owned(),
                Vec::new(),
                0o40755,
                "1980-01-01 00:00:00".to_owned(),
            )
        };
        let file = |name: &str, content: &[u8]| {
            (
                name.to_owned(),
                content.to_vec(),
                0o100644,
                "1980-01-01 00:00:00".to_owned(),
            )
        };
        assert_eq!(
            entries,
            [
                dir("emojis/"),
                dir("teams/"),
                file("teams/t1__eng.json", br#"{"id": "t1"}"#),
                dir("teams/t1__eng/"),
                dir("teams/t1__eng/c1__x/"),
                file("teams/t1__eng/c1__x/p1.json", b"[]"),
                dir("teams/t1__eng/c1__x/files/"),
                dir("users/"),
                file("users/u1__\u{e9}.json", "é".as_bytes()),
                file("users/u2.json", br#"{"a": [1, 2.5]}"#),
            ]
        );
        assert_eq!(tree(tmp.path()), ["out.zip"]);
    }

    #[test]
    fn same_input_gives_byte_identical_zips() {
        let tmp = tempfile::tempdir().unwrap();
        let mut zips = Vec::new();
        for name in ["one.zip", "two.zip"] {
            if name == "two.zip" {
                // A second later: a zip with real timestamps would differ now.
                std::thread::sleep(std::time::Duration::from_millis(1100));
            }
            let path = tmp.path().join(name);
            let mut sink = ZipSink::create(&path).unwrap();
            write_sample(&mut sink);
            Box::new(sink).finish().unwrap();
            zips.push(fs::read(&path).unwrap());
        }
        assert_eq!(zips[0], zips[1]);
    }

    #[test]
    fn zip_refuses_hostile_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.zip");
        let mut sink = ZipSink::create(&path).unwrap();
        for rel in HOSTILE {
            assert!(matches!(
                put(&mut sink, rel, b"x"),
                Err(SinkError::UnsafePath { .. })
            ));
            assert!(matches!(sink.dir(rel), Err(SinkError::UnsafePath { .. })));
        }
        // Refusals do not break the zip.
        put(&mut sink, "ok.json", b"{}").unwrap();
        Box::new(sink).finish().unwrap();
        assert_eq!(read_zip(&path).len(), 1);
    }

    #[test]
    fn failed_zip_is_never_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.zip");
        let mut sink = ZipSink::create(&path).unwrap();
        put(&mut sink, "a.json", b"{}").unwrap();
        let err = sink
            .file("b.bin", Some(10), &mut |_| Err(io::Error::other("boom")))
            .unwrap_err();
        assert!(
            matches!(err, SinkError::Io { ref path, .. } if path == Path::new("b.bin")),
            "{err}"
        );
        assert!(matches!(
            put(&mut sink, "c.json", b"{}"),
            Err(SinkError::ZipFailed)
        ));
        assert!(matches!(Box::new(sink).finish(), Err(SinkError::ZipFailed)));
        assert!(tree(tmp.path()).is_empty(), "no zip and no temp file left");

        // Dropped unfinished: nothing left either.
        let sink = ZipSink::create(&path).unwrap();
        drop(sink);
        assert!(tree(tmp.path()).is_empty());
    }

    #[test]
    fn zip64_when_the_length_hint_needs_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.zip");
        let mut sink = ZipSink::create(&path).unwrap();
        sink.file("big.bin", Some(5 << 30), &mut |w| w.write_all(b"abc"))
            .unwrap();
        Box::new(sink).finish().unwrap();
        assert_eq!(read_zip(&path)[0].1, b"abc");
        // The ZIP64 extra field (header id 0x0001, 16 bytes of sizes) is in the entry.
        assert!(
            fs::read(&path)
                .unwrap()
                .windows(4)
                .any(|w| w == [1, 0, 16, 0])
        );
    }

    /// A reader producing `len` bytes of a fixed pattern, so nothing is held in memory.
    struct Pattern {
        left: u64,
        next: u8,
    }

    impl Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.left as usize);
            for b in &mut buf[..n] {
                *b = self.next;
                self.next = self.next.wrapping_mul(31).wrapping_add(7);
            }
            self.left -= n as u64;
            Ok(n)
        }
    }

    #[test]
    fn large_entries_are_streamed_not_buffered() {
        const LEN: u64 = 50 * 1024 * 1024;
        const CHUNK: usize = 64 * 1024;
        let tmp = tempfile::tempdir().unwrap();
        let zip_path = tmp.path().join("out.zip");
        let zip_tmp = tmp.path().join("out.zip.tmp");
        let dir_root = tmp.path().join("data");
        let mut sink = Tee::new(
            DirSink::new(&dir_root).unwrap(),
            ZipSink::create(&zip_path).unwrap(),
        );
        let dir_tmp = dir_root.join(format!("files/f1__big.bin{TMP_SUFFIX}"));
        let mut max_lag = 0;
        sink.file("files/f1__big.bin", Some(LEN), &mut |w| {
            let mut source = Pattern { left: LEN, next: 1 };
            let mut chunk = vec![0u8; CHUNK];
            let mut sent = 0u64;
            loop {
                let n = source.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                w.write_all(&chunk[..n])?;
                sent += n as u64;
                // Both files on disk keep up with what was sent: no sink holds the entry.
                let on_disk = fs::metadata(&zip_tmp)?
                    .len()
                    .min(fs::metadata(&dir_tmp)?.len());
                max_lag = max_lag.max(sent.saturating_sub(on_disk));
            }
        })
        .unwrap();
        Box::new(sink).finish().unwrap();
        assert!(max_lag <= 2 * WRITE_BUFFER_BYTES as u64, "lag {max_lag}");

        let mut expected = Vec::new();
        Pattern { left: LEN, next: 1 }
            .read_to_end(&mut expected)
            .unwrap();
        assert_eq!(
            fs::read(dir_root.join("files/f1__big.bin")).unwrap(),
            expected
        );
        let entries = read_zip(&zip_path);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0, "files/f1__big.bin");
        assert!(entries[1].1 == expected, "zip content differs");
    }

    #[test]
    fn tee_writes_both_or_reports_the_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let zip_path = tmp.path().join("out.zip");
        let mut sink: Box<dyn Sink> = Box::new(Tee::new(
            DirSink::new(&root).unwrap(),
            ZipSink::create(&zip_path).unwrap(),
        ));
        sink.dir("emojis").unwrap();
        put(&mut sink, "users/u1.json", b"{}").unwrap();
        let mut calls = 0;
        sink.file("users/u2.json", None, &mut |w| {
            calls += 1;
            w.write_all(b"[1]")
        })
        .unwrap();
        assert_eq!(calls, 1, "content is produced once for both sinks");
        assert!(matches!(
            put(&mut sink, "../x", b""),
            Err(SinkError::UnsafePath { .. })
        ));
        sink.finish().unwrap();
        assert_eq!(
            tree(&root),
            ["emojis/", "users/", "users/u1.json", "users/u2.json"]
        );
        let names: Vec<_> = read_zip(&zip_path).into_iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            ["emojis/", "users/", "users/u1.json", "users/u2.json"]
        );

        // The second sink failing: its error is returned and the first keeps no file.
        let root = tmp.path().join("data2");
        let zip_path = tmp.path().join("bad.zip");
        let mut zip = ZipSink::create(&zip_path).unwrap();
        let _ = zip.file("x", None, &mut |_| Err(io::Error::other("boom")));
        let mut sink = Tee::new(DirSink::new(&root).unwrap(), zip);
        assert!(matches!(
            put(&mut sink, "a/b.json", b"{}"),
            Err(SinkError::ZipFailed)
        ));
        assert_eq!(tree(&root), ["a/"]);
    }
}
