//! [`FsDisk`]: the real file system, through `std::fs`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Block, DirectFile, Disk, DiskFile, DiskReader, BLOCK_BYTES};

/// The real file system. Stateless: every call goes straight to the operating system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsDisk;

impl FsDisk {
    /// The real file system.
    pub fn new() -> Self {
        FsDisk
    }
}

impl Disk for FsDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            // Names that are not UTF-8 cannot be ours; skipping them is safe.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn DiskReader>> {
        Ok(Box::new(FsReader(File::open(path)?)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        Ok(Box::new(FsFile { file, path: path.to_path_buf() }))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(FsFile { file, path: path.to_path_buf() }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[cfg(target_os = "linux")]
    fn open_direct(&self, path: &Path) -> io::Result<Option<Box<dyn DirectFile>>> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = OpenOptions::new().write(true).custom_flags(libc::O_DIRECT | libc::O_DSYNC).open(path);
        match opened {
            Ok(file) => Ok(Some(Box::new(FsDirectFile { file, path: path.to_path_buf() }))),
            // The file system has no direct I/O (tmpfs, for one).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An open file of [`FsDisk`].
#[derive(Debug)]
struct FsFile {
    file: File,
    path: PathBuf,
}

impl DiskFile for FsFile {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.file, buf, offset)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        tracing::trace!(path = %self.path.display(), "fdatasync");
        self.file.sync_data()
    }
}

/// A file of [`FsDisk`] opened for reading.
#[derive(Debug)]
struct FsReader(File);

impl DiskReader for FsReader {
    fn file_bytes(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, offset)
    }
}

/// A file of [`FsDisk`] opened with `O_DIRECT | O_DSYNC`.
#[derive(Debug)]
struct FsDirectFile {
    file: File,
    path: PathBuf,
}

impl DirectFile for FsDirectFile {
    fn write_durable_at(&mut self, blocks: &[Block], offset: u64) -> io::Result<()> {
        if offset % BLOCK_BYTES as u64 != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "direct write at an unaligned offset"));
        }
        tracing::trace!(path = %self.path.display(), offset, blocks = blocks.len(), "direct write");
        match FileExt::write_all_at(&self.file, bytemuck::cast_slice(blocks), offset) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, format!("direct write refused: {e}")))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_renames_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = FsDisk::new();
        let a = tmp.path().join("a");
        let mut file = disk.create_new(&a).unwrap();
        file.write_all_at(b"hello", 0).unwrap();
        file.write_all_at(b"J", 0).unwrap();
        file.sync_data().unwrap();
        assert_eq!(disk.read(&a).unwrap(), b"Jello");
        assert_eq!(disk.create_new(&a).unwrap_err().kind(), io::ErrorKind::AlreadyExists);

        let b = tmp.path().join("b");
        disk.rename(&a, &b).unwrap();
        disk.sync_dir(tmp.path()).unwrap();
        assert_eq!(disk.list_dir(tmp.path()).unwrap(), vec!["b".to_string()]);
        let mut file = disk.open_write(&b).unwrap();
        file.set_len(2).unwrap();
        assert_eq!(disk.read(&b).unwrap(), b"Je");
        disk.remove_file(&b).unwrap();
        assert!(disk.list_dir(tmp.path()).unwrap().is_empty());
    }
}
