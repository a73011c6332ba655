//! The locks that give one process at a time a data directory (and the embedded SQLite
//! file beside it).
//!
//! An advisory `flock` on a lock file (`LOCK` in the directory), held as long as the log
//! is open and released by the kernel when the process dies, so a crash never leaves a
//! stale lock. The holder writes its PID into the file so a refused second process can
//! say who has it. Nothing the lock guards is touched before the lock is held.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes the lock on the data directory `dir`, or explains which process holds it.
pub(crate) fn acquire(dir: &Path) -> Result<FileLock> {
    let what = format!("the embedded data directory {}", dir.display());
    acquire_file(dir.join("LOCK"), &what, "choose another embedded.data_dir")
}

/// Takes the lock file `path` guarding `what`, or explains which process holds it and
/// what else to do (`instead`).
pub(crate) fn acquire_file(path: PathBuf, what: &str, instead: &str) -> Result<FileLock> {
    let io = |what: &str, e: std::io::Error| Error::Other(format!("{what} {}: {e}", path.display()));
    // Not truncated on open: the PID in it belongs to the holder until we hold the lock.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io("opening", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "another process".to_owned(),
                pid => format!("process {pid}"),
            };
            return Err(Error::Unavailable(format!(
                "{what} is in use by {holder} (lock file {}); stop it or {instead}",
                path.display()
            )));
        }
        Err(TryLockError::Error(e)) => return Err(io("locking", e)),
    }
    file.set_len(0).map_err(|e| io("writing", e))?;
    file.rewind().map_err(|e| io("writing", e))?;
    writeln!(file, "{}", std::process::id()).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("writing", e))?;
    Ok(FileLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_naming_the_holder() {
        let dir = std::env::temp_dir().join(format!("nearline-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let held = acquire(&dir).expect("first lock");
        let refused = acquire(&dir).expect_err("second lock");
        let message = refused.to_string();
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains(&format!("process {}", std::process::id())), "{message}");
        drop(held);
        acquire(&dir).expect("free again once released");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
