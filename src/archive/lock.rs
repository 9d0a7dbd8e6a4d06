//! The archive's lock. One writer (a sync, an import, verify's repair) writes an archive at a
//! time; the lock is an OS file lock, so a process killed with SIGKILL releases it and leaves
//! nothing stale.
//!
//! The lock is a `flock` on the open file description of `lock`, released **explicitly**
//! (`LOCK_UN`) when the holder is dropped, not by closing the file. A child forked by any
//! thread of this process holds a copy of every descriptor between `fork` and `exec` (they are
//! close-on-exec, so only for that window); while it does, closing our copy does not release a
//! `flock`, and the next acquire in this process found the archive busy with our own pid
//! (issue 28: a test's second in-process sync failed while another test spawned `matterbak`).
//! An explicit unlock acts on the open file description itself, so it releases the lock
//! whatever copies exist. Why not a process-associated `fcntl` lock: it is not inherited, but
//! closing *any* descriptor of the file in the process drops it, and it does not exclude a
//! second acquire from another thread of the same process, so it would need a registry of
//! held archives beside it; the explicit unlock keeps one mechanism with the same guarantees
//! (a second process is refused and told the holder's pid; SIGKILL releases the lock).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::LOCK_FILE;

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
    file: File,
}

impl Drop for ArchiveLock {
    /// Unlocks before the file closes: see the module doc for why closing alone is not enough.
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
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
        Ok(ArchiveLock { file })
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

    /// A child that holds a copy of the lock's open file description, as a child forked by
    /// another thread does between `fork` and `exec`, must not keep the archive locked after
    /// the holder drops it. The child here keeps the copy as its standard input (no unsafe
    /// `fork` needed), so the window is as long as the test wants: deterministic.
    #[test]
    fn a_child_holding_a_copy_of_the_descriptor_does_not_keep_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = ArchiveLock::acquire(dir.path()).unwrap();
        let copy = lock.file.try_clone().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .stdin(std::process::Stdio::from(copy))
            .spawn()
            .expect("run sleep (coreutils)");
        drop(lock);
        let again = ArchiveLock::acquire(dir.path());
        child.kill().unwrap();
        child.wait().unwrap();
        again.expect("the lock is free once its holder dropped it, whatever copies exist");
    }

    /// The shape of the CI failure: one thread syncs again and again while another spawns
    /// children. 500 rounds with a child spawned beside each; every acquire must succeed.
    #[test]
    fn acquire_release_in_a_loop_while_another_thread_spawns_children() {
        let dir = tempfile::tempdir().unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spawner = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut spawned = 0u32;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    std::process::Command::new("true")
                        .status()
                        .expect("run true");
                    spawned += 1;
                }
                spawned
            })
        };
        for round in 0..500 {
            let lock =
                ArchiveLock::acquire(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
            drop(lock);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            spawner.join().unwrap() > 0,
            "children were spawned meanwhile"
        );
    }
}
