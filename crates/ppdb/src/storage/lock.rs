//! The data-directory lock: one process per node data directory.
//!
//! Two processes appending to the same WAL would interleave records and corrupt it, so a node
//! takes an exclusive `flock` on `<data dir>/LOCK` before touching anything else, and holds it
//! until it exits (the kernel releases it even on `kill -9`). The holder writes its pid into the
//! file, so the error for a second process can name the first.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::error::StorageError;

/// The lock file's name inside the data directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Holds the exclusive lock on a data directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    // Kept open: the lock lives as long as this descriptor.
    _file: File,
    dir: PathBuf,
}

impl DataDirLock {
    /// Locks `dir` (created if missing) for this process, or fails with
    /// [`StorageError::DataDirLocked`] naming the directory if another process holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
        let lock_file = dir.join(LOCK_FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_file)
            .map_err(|e| StorageError::io("open lock file", &lock_file, e))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let holder_pid =
                    fs::read_to_string(&lock_file).ok().and_then(|text| text.trim().parse().ok());
                return Err(StorageError::DataDirLocked { dir: dir.to_path_buf(), lock_file, holder_pid });
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(StorageError::io("lock", &lock_file, e));
            }
        }
        // The pid is a diagnostic only; the lock itself is what protects the directory.
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(|e| StorageError::io("write lock file", &lock_file, e))?;
        Ok(DataDirLock { _file: file, dir: dir.to_path_buf() })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_with_the_directory_and_pid_until_released() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node1");
        let first = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(first.dir(), dir);
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just as another process would.
        let err = DataDirLock::acquire(&dir).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&dir.display().to_string()), "{text}");
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
        assert!(matches!(err, StorageError::DataDirLocked { .. }));
        drop(first);
        DataDirLock::acquire(&dir).unwrap();
    }
}
