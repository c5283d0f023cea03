//! Spare segments: zero-filled, synced files made ahead of time, so that appending to a segment
//! never changes its size.
//!
//! Appending past the end of a file changes its length, so every fdatasync must also write the
//! inode; overwriting blocks that already hold (zero) data is a pure data write. On ext4 this
//! takes one I/O out of every fdatasync (on the reference machine, 195 µs to 140 µs alone, and
//! 265 µs to 205 µs with three nodes syncing at once). So a segment starts life as a *spare*:
//! `spare.wal.tmp`, `segment_bytes_max` zero bytes, synced a chunk at a time (the WAL's syncs
//! share the device and must not wait behind the whole file). It becomes a segment when the
//! appender writes its header and renames it (`segment::install_spare`).
//!
//! With a writer thread, a helper thread makes the next spare while the active segment fills
//! (asked for once it is half full), so a roll does not wait for the zero-fill. Without one
//! ([`WalWriter::Caller`](super::WalWriter::Caller)), spares are made inline, when needed,
//! keeping simulations deterministic. A spare left over by a crash is deleted when the WAL
//! opens.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::storage::disk::{Disk, DiskFile};
use crate::storage::error::StorageError;

/// The file name of the spare segment being made or waiting to be used.
pub const SPARE_FILE_NAME: &str = "spare.wal.tmp";

/// Zero bytes written, and then synced, per step while filling a spare.
const FILL_CHUNK_BYTES: usize = 1024 * 1024;

/// A zero-filled, synced file of the segment size, not yet a segment.
#[derive(Debug)]
pub(crate) struct Spare {
    /// The open file.
    pub file: Box<dyn DiskFile>,
    /// Where it is (`SPARE_FILE_NAME` in the WAL directory).
    pub path: PathBuf,
}

/// Deletes a spare left over from before a crash, if there is one.
pub(crate) fn remove_stale_spare(disk: &dyn Disk, dir: &Path) -> Result<(), StorageError> {
    let names = disk.list_dir(dir).map_err(|e| StorageError::io("list directory", dir, e))?;
    if names.iter().any(|name| name == SPARE_FILE_NAME) {
        let path = dir.join(SPARE_FILE_NAME);
        disk.remove_file(&path).map_err(|e| StorageError::io("remove stale spare segment", &path, e))?;
        disk.sync_dir(dir).map_err(|e| StorageError::io("fsync directory", dir, e))?;
    }
    Ok(())
}

/// Makes a spare of `len` bytes in `dir`: creates the file and fills it with zeros, synced every
/// [`FILL_CHUNK_BYTES`].
pub(crate) fn make_spare(disk: &dyn Disk, dir: &Path, len: u64) -> Result<Spare, StorageError> {
    let path = dir.join(SPARE_FILE_NAME);
    let mut file = disk.create_new(&path).map_err(|e| StorageError::io("create spare segment", &path, e))?;
    let zeros = vec![0u8; FILL_CHUNK_BYTES];
    let mut offset = 0u64;
    while offset < len {
        let chunk = usize::try_from(len - offset).map_or(FILL_CHUNK_BYTES, |left| left.min(FILL_CHUNK_BYTES));
        file.write_all_at(&zeros[..chunk], offset)
            .map_err(|e| StorageError::io("fill spare segment", &path, e))?;
        offset += chunk as u64;
        // Synced chunk by chunk: the WAL's own syncs share the device, and one sync of the
        // whole file would make the next WAL sync wait behind all of it (5-16 ms stalls of
        // the node's writes at 16 MiB segments, measured).
        file.sync_data().map_err(|e| StorageError::io("fdatasync", &path, e))?;
    }
    tracing::debug!(path = %path.display(), len, "made a spare WAL segment");
    Ok(Spare { file, path })
}

/// Makes spares for one WAL, one at a time: asked for ahead of time, taken when a segment rolls.
#[derive(Debug)]
pub(crate) struct SpareMaker {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    len: u64,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// Spares are made on the caller's thread when taken.
    Inline,
    /// A helper thread makes each spare asked for.
    Thread(Helper),
}

/// The helper thread and the spare it is making (or made), if one was asked for.
#[derive(Debug)]
struct Helper {
    /// Asks for the next spare; dropping it stops the thread.
    ask: Option<mpsc::Sender<()>>,
    made: mpsc::Receiver<Result<Spare, StorageError>>,
    asked: bool,
    thread: Option<JoinHandle<()>>,
}

impl SpareMaker {
    /// A maker of `len`-byte spares in `dir`, with a helper thread if `thread` is true.
    pub fn new(
        disk: Arc<dyn Disk>,
        dir: PathBuf,
        len: u64,
        thread: bool,
    ) -> Result<SpareMaker, StorageError> {
        let mode = if thread {
            let (ask, asked) = mpsc::channel::<()>();
            let (done, made) = mpsc::channel();
            let (helper_disk, helper_dir) = (Arc::clone(&disk), dir.clone());
            let thread = std::thread::Builder::new()
                .name("ppdb-wal-spare".to_string())
                .spawn(move || {
                    while asked.recv().is_ok() {
                        if done.send(make_spare(helper_disk.as_ref(), &helper_dir, len)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| StorageError::io("spawn WAL spare-segment thread", &dir, e))?;
            Mode::Thread(Helper { ask: Some(ask), made, asked: false, thread: Some(thread) })
        } else {
            Mode::Inline
        };
        Ok(SpareMaker { disk, dir, len, mode })
    }

    /// Starts making the next spare in the background, if there is a helper and it is idle.
    pub fn ask(&mut self) {
        if let Mode::Thread(helper) = &mut self.mode {
            if !helper.asked {
                helper.asked = helper.ask.as_ref().is_some_and(|ask| ask.send(()).is_ok());
            }
        }
    }

    /// The next spare: the one made in the background (waiting for it if needed), or one made
    /// now.
    pub fn take(&mut self) -> Result<Spare, StorageError> {
        match &mut self.mode {
            Mode::Inline => make_spare(self.disk.as_ref(), &self.dir, self.len),
            Mode::Thread(helper) => {
                if !helper.asked {
                    helper.asked = helper.ask.as_ref().is_some_and(|ask| ask.send(()).is_ok());
                }
                helper.asked = false;
                match helper.made.recv() {
                    Ok(made) => made,
                    // The helper is gone (it cannot panic short of a bug); make it here.
                    Err(_) => make_spare(self.disk.as_ref(), &self.dir, self.len),
                }
            }
        }
    }
}

impl Drop for SpareMaker {
    /// Stops the helper after the spare it is making, if any, so no thread writes into the
    /// directory once the WAL is closed.
    fn drop(&mut self) {
        if let Mode::Thread(helper) = &mut self.mode {
            helper.ask = None;
            if let Some(thread) = helper.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::disk::{Disk, SimDisk};

    #[test]
    fn a_spare_is_zero_filled_and_synced_chunk_by_chunk() {
        let disk = SimDisk::new(1);
        let dir = Path::new("/wal");
        disk.create_dir_all(dir).unwrap();
        let len = 3 * FILL_CHUNK_BYTES as u64 + 123;
        let spare = make_spare(&disk, dir, len).unwrap();
        drop(spare);
        let bytes = disk.read(&dir.join(SPARE_FILE_NAME)).unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert!(bytes.iter().all(|&b| b == 0));
        assert_eq!(disk.unsynced_bytes(), 0, "durable when made");
        assert_eq!(
            disk.peak_unsynced_file_bytes(),
            FILL_CHUNK_BYTES as u64,
            "never more than a chunk unsynced"
        );
    }
}
