//! The disk the storage layer writes to: a small trait with two implementations.
//!
//! [`FsDisk`] is the real file system. [`SimDisk`] is an in-memory disk for deterministic tests
//! and the simulator: it remembers what was written and what was synced separately, and a
//! simulated crash keeps only what was synced, optionally tearing the last write or flipping a
//! bit, all driven by a seed. The WAL and the snapshot files only see the trait, so the same code
//! runs on both.
//!
//! The trait is deliberately narrow: whole-file reads (segments are bounded), positioned reads
//! (snapshot files, which are streamed, whatever their size), positioned writes, `set_len`, data sync, and the directory operations whose durability needs
//! a directory sync (create, rename, remove). A disk may also offer *direct* files
//! ([`Disk::open_direct`]): whole aligned [`Block`]s written past the page cache and durable
//! when the write returns, which the WAL uses for its appends when it can.

mod fs;
mod sim;

use std::fmt;
use std::io;
use std::path::Path;

pub use fs::FsDisk;
pub use sim::{CrashFaults, CrashReport, SimDisk};

/// A file system, real or simulated. Paths are used as given: callers build them by joining
/// file names onto one directory path, so the same file always has the same spelling.
pub trait Disk: Send + Sync + fmt::Debug {
    /// Creates `dir` and its missing parents. Call [`Disk::sync_dir`] on the parent to make the
    /// new directory durable.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the entries of `dir` (files and directories), in no particular order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// The whole content of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Opens an existing file for positioned reads. The handle keeps reading the file after
    /// its name is removed, as on Unix.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn DiskReader>>;

    /// Creates a new, empty file; fails with [`io::ErrorKind::AlreadyExists`] if it exists.
    /// The directory entry is durable only after [`Disk::sync_dir`] of its directory.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;

    /// Opens an existing file for writing.
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;

    /// Removes a file; durable only after [`Disk::sync_dir`] of its directory.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Atomically renames `from` to `to`, replacing `to`; durable only after
    /// [`Disk::sync_dir`] of the directory.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Opens an existing file for durable direct writes, or `None` when this disk has none
    /// (a file system without direct I/O, such as tmpfs, or a simulated disk): then the caller
    /// writes through [`Disk::open_write`] and syncs.
    fn open_direct(&self, path: &Path) -> io::Result<Option<Box<dyn DirectFile>>> {
        let _ = path;
        Ok(None)
    }
}

/// Bytes in a [`Block`], the unit of direct writes: a multiple of every common logical block
/// size (512 and 4096 bytes).
pub const BLOCK_BYTES: usize = 4096;

/// One block of a direct write, aligned in memory as direct I/O requires, so any slice of them
/// can be handed to the device as is.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(4096))]
pub struct Block(pub [u8; BLOCK_BYTES]);

impl Block {
    /// A block of zeros.
    pub const ZERO: Block = Block([0; BLOCK_BYTES]);
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Block({} non-zero bytes)", self.0.iter().filter(|&&b| b != 0).count())
    }
}

/// A file opened for direct writes ([`Disk::open_direct`]): each write goes to the device,
/// bypassing the page cache, and is durable when it returns (`O_DIRECT | O_DSYNC`), which
/// costs the kernel far less than a buffered write and its `fdatasync`.
pub trait DirectFile: Send + fmt::Debug {
    /// Writes `blocks` at `offset`, a multiple of [`BLOCK_BYTES`], and makes them durable.
    /// An [`io::ErrorKind::InvalidInput`] error means the file system refused the direct write
    /// and wrote nothing.
    fn write_durable_at(&mut self, blocks: &[Block], offset: u64) -> io::Result<()>;
}

/// An open, writable file of a [`Disk`].
pub trait DiskFile: Send + fmt::Debug {
    /// Writes all of `buf` at byte `offset`, extending the file if needed.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Truncates or extends the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;

    /// Makes the file's data and length durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// An open, readable file of a [`Disk`].
pub trait DiskReader: Send + Sync + fmt::Debug {
    /// The file's length in bytes.
    fn file_bytes(&self) -> io::Result<u64>;

    /// Fills `buf` from byte `offset`; an [`io::ErrorKind::UnexpectedEof`] error if the file
    /// ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

/// Creates `dir` (and parents) and makes it durable by syncing its parent directory.
pub(crate) fn create_dir_durable(disk: &dyn Disk, dir: &Path) -> io::Result<()> {
    disk.create_dir_all(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => disk.sync_dir(parent),
        _ => Ok(()),
    }
}
