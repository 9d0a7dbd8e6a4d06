//! The archive directory as a whole: its lock. One sync writes an archive at a time; the lock
//! is an OS file lock, so a process killed with SIGKILL releases it and leaves nothing stale.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("archive {} is in use by another matterbak sync ({holder}); wait for it to finish", path.display())]
    Busy { path: PathBuf, holder: String },
    #[error("cannot use archive directory {}: it exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot use archive directory {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held for the whole sync; released on drop or process death.
#[derive(Debug)]
pub struct ArchiveLock {
    _file: File,
}

impl ArchiveLock {
    pub fn acquire(archive: &Path) -> Result<ArchiveLock, LockError> {
        let path = archive.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "unknown process".to_owned()
                } else {
                    holder.to_owned()
                };
                return Err(LockError::Busy {
                    path: archive.to_owned(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Tell a second process who holds the lock.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "pid {}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(ArchiveLock { _file: file })
    }
}

impl ArchiveLock {
    /// Releases the lock and removes what acquiring it created in a new archive directory
    /// (the lock file, then the directory if nothing else is in it), for a run that ended
    /// before writing anything.
    pub fn remove(self, archive: &Path) {
        let _ = std::fs::remove_file(archive.join(LOCK_FILE));
        drop(self);
        let _ = std::fs::remove_dir(archive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = ArchiveLock::acquire(dir.path()).unwrap();
        let err = ArchiveLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        ArchiveLock::acquire(dir.path()).unwrap();
    }
}
