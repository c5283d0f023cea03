//! Snapshot files: one file per (group, last log index), written atomically and streamed both
//! ways, so a snapshot of any size costs a bounded buffer, never its whole size in memory.
//!
//! A snapshot is written to a temporary file (`<name>.<n>.tmp`) through a [`SnapshotWriter`]
//! in slices of [`SYNC_EVERY_BYTES`], each synced before the next, then its header is written,
//! the file synced, renamed to `<name>`, and the directory synced; so after a crash a snapshot
//! file either is complete or does not exist under its final name. The same writer takes a
//! snapshot received from a peer chunk by chunk ([`SnapshotWriter::finish_expecting`] checks
//! the size and checksum the sender announced). The header carries checksums of the metadata
//! and of the image anyway, because media can still rot: on load the newest *valid* snapshot
//! of the group wins (its image is checksummed by streaming it once), invalid files are
//! skipped (with a warning) and temporary files are removed when the store is opened. A file
//! of a format version this build does not know is refused, not skipped: a newer release
//! wrote it, and the older snapshots behind it may no longer match the log.
//!
//! File name: `<group, 20 digits>-<last index, 20 digits>.snap`. Layout of version 2,
//! integers little-endian:
//!
//! | offset | size | field                                          |
//! |-------:|-----:|------------------------------------------------|
//! | 0      | 8    | magic `PPDBSNAP`                               |
//! | 8      | 4    | format version (u32), 2                        |
//! | 12     | 8    | group id (u64), = the name                     |
//! | 20     | 8    | last log index covered (u64), = the name       |
//! | 28     | 4    | metadata length m (u32), at most 64 KiB        |
//! | 32     | 4    | crc32c of the metadata (u32)                   |
//! | 36     | 8    | image length n (u64): no limit but the disk's  |
//! | 44     | 4    | crc32c of the image (u32)                      |
//! | 48     | 4    | crc32c of bytes 0..48 (u32)                    |
//! | 52     | m    | metadata (opaque here: the Raft snapshot meta) |
//! | 52 + m | n    | image (opaque here: the state machine's)       |
//!
//! Version 1, written by earlier releases, has a 44-byte header (magic, version, group, index,
//! data length u64, crc32c of the data, crc32c of bytes 0..40) and one data blob holding both
//! parts; it was loaded whole and is still read that way ([`StoredSnapshot::Version1`]), to be
//! rewritten as version 2 by the layer that can split it.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::storage::disk::{self, Disk, DiskFile, DiskReader};
use crate::storage::error::{CorruptionKind, StorageError};
use crate::storage::wal::GroupId;

/// Size of a version 2 snapshot file's header.
pub const SNAPSHOT_HEADER_BYTES: usize = 52;
/// Size of a version 1 snapshot file's header.
const SNAPSHOT_HEADER_BYTES_V1: usize = 44;
/// The largest metadata accepted (a Raft snapshot's position and membership: a few hundred
/// bytes in practice).
pub const SNAPSHOT_META_BYTES_MAX: u32 = 64 * 1024;
/// The largest version 1 file read (those are loaded into memory whole, as they always were).
const SNAPSHOT_V1_DATA_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// The magic bytes every snapshot file starts with.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"PPDBSNAP";
/// The snapshot format version this code writes.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;
/// The earlier format version this code still reads.
const SNAPSHOT_FORMAT_VERSION_V1: u32 = 1;
/// How the versions read are named in a refusal.
const SNAPSHOT_VERSIONS_READ: &str = "1 and 2";

const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// Bytes of a snapshot file written between two fdatasyncs, and so the most a writer buffers.
pub const SYNC_EVERY_BYTES: usize = 1024 * 1024;

/// A complete snapshot file: what its name and header say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// The group it belongs to.
    pub group: GroupId,
    /// The last log index it covers.
    pub last_index: u64,
    /// The metadata stored with it, opaque to this module.
    pub meta: Vec<u8>,
    /// Length of the image.
    pub image_bytes: u64,
    /// crc32c of the image.
    pub image_crc32c: u32,
    /// Where it is.
    pub path: PathBuf,
}

/// The newest valid snapshot file of a group ([`SnapshotStore::load_latest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSnapshot {
    /// A file of the current format; its image is read with [`SnapshotStore::open_image`].
    Current(SnapshotFile),
    /// A version 1 file, read whole: its data holds metadata and image in one blob, for the
    /// caller to split and save again with [`SnapshotStore::save`].
    Version1 {
        /// The last log index it covers.
        last_index: u64,
        /// The file's data.
        data: Vec<u8>,
        /// Where it is.
        path: PathBuf,
    },
}

impl StoredSnapshot {
    /// The last log index it covers.
    pub fn last_index(&self) -> u64 {
        match self {
            StoredSnapshot::Current(file) => file.last_index,
            StoredSnapshot::Version1 { last_index, .. } => *last_index,
        }
    }
}

/// The snapshot files of one node, in one directory.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    /// Numbers the temporary files, so saves of the same snapshot (a checkpoint and a
    /// transfer from the leader) never share one.
    next_temp: Arc<AtomicU64>,
}

impl SnapshotStore {
    /// Opens the store in `dir` (created if missing) and removes temporary files left by a
    /// crash during a save.
    pub fn open(disk: Arc<dyn Disk>, dir: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let dir = dir.into();
        disk::create_dir_durable(disk.as_ref(), &dir)
            .map_err(|e| StorageError::io("create directory", &dir, e))?;
        let store = SnapshotStore { disk, dir, next_temp: Arc::new(AtomicU64::new(0)) };
        let mut removed = false;
        for name in store.list()? {
            if name.ends_with(TEMP_SUFFIX) {
                let path = store.dir.join(&name);
                tracing::info!(path = %path.display(), "removing an unfinished snapshot");
                store
                    .disk
                    .remove_file(&path)
                    .map_err(|e| StorageError::io("remove temporary snapshot", &path, e))?;
                removed = true;
            }
        }
        if removed {
            store.sync_dir()?;
        }
        Ok(store)
    }

    /// Starts writing the snapshot of `group` covering the log up to `last_index`, with its
    /// `meta`; the image is written through the returned writer, and is durable once
    /// [`SnapshotWriter::finish`] returns.
    pub fn create(
        &self,
        group: GroupId,
        last_index: u64,
        meta: &[u8],
    ) -> Result<SnapshotWriter, StorageError> {
        let meta_len = u32::try_from(meta.len()).ok().filter(|&len| len <= SNAPSHOT_META_BYTES_MAX);
        let Some(meta_len) = meta_len else {
            return Err(StorageError::RecordTooLarge {
                len: meta.len() as u64,
                max: u64::from(SNAPSHOT_META_BYTES_MAX),
            });
        };
        let name = file_name(group, last_index);
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!("{name}.{n}{TEMP_SUFFIX}"));
        let mut file = self.disk.create_new(&temp).map_err(|e| StorageError::io("create", &temp, e))?;
        let at = SNAPSHOT_HEADER_BYTES as u64;
        if let Err(e) = file.write_all_at(meta, at) {
            let _ = self.disk.remove_file(&temp);
            return Err(StorageError::io("write", &temp, e));
        }
        Ok(SnapshotWriter {
            store: self.clone(),
            group,
            last_index,
            meta: meta.to_vec(),
            meta_len,
            temp: Some(temp),
            file,
            buf: Vec::new(),
            offset: at + u64::from(meta_len),
            image_bytes: 0,
            image_crc32c: 0,
        })
    }

    /// Durably saves `image` as the snapshot of `group` covering the log up to `last_index`.
    pub fn save(
        &self,
        group: GroupId,
        last_index: u64,
        meta: &[u8],
        image: &[u8],
    ) -> Result<SnapshotFile, StorageError> {
        let mut writer = self.create(group, last_index, meta)?;
        writer.append(image)?;
        writer.finish()
    }

    /// Opens the image of a snapshot file for streaming, checking its header and metadata.
    pub fn open_image(&self, group: GroupId, last_index: u64) -> Result<SnapshotImage, StorageError> {
        let path = self.dir.join(file_name(group, last_index));
        let reader = self.disk.open_read(&path).map_err(|e| StorageError::io("open", &path, e))?;
        let file = read_header(reader.as_ref(), &path, group, last_index)?;
        Ok(SnapshotImage::new(reader, file))
    }

    /// The newest valid snapshot of `group`, or `None`. Invalid files are skipped with a
    /// warning; an I/O error, or a file of an unknown format version, is returned.
    pub fn load_latest(&self, group: GroupId) -> Result<Option<StoredSnapshot>, StorageError> {
        let mut candidates = self.snapshots_of(group)?;
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for last_index in candidates {
            match self.load(group, last_index) {
                Ok(stored) => return Ok(Some(stored)),
                Err(StorageError::Corruption { file, offset, reason }) => tracing::warn!(
                    path = %file.display(),
                    offset,
                    %reason,
                    "skipping an invalid snapshot file"
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Reads and checks one snapshot file (its image by streaming it through the checksum).
    fn load(&self, group: GroupId, last_index: u64) -> Result<StoredSnapshot, StorageError> {
        let path = self.dir.join(file_name(group, last_index));
        let reader = self.disk.open_read(&path).map_err(|e| StorageError::io("open", &path, e))?;
        let mut start = [0u8; 12];
        read_exact_at(reader.as_ref(), &mut start, 0, &path)?;
        if start[..8] != SNAPSHOT_MAGIC {
            return Err(StorageError::corruption(&path, 0, CorruptionKind::BadMagic));
        }
        if u32_at(&start, 8) == SNAPSHOT_FORMAT_VERSION_V1 {
            let len = reader.file_bytes().map_err(|e| StorageError::io("stat", &path, e))?;
            if len > SNAPSHOT_V1_DATA_BYTES_MAX + SNAPSHOT_HEADER_BYTES_V1 as u64 {
                let reason = CorruptionKind::LengthOutOfRange { len, max: SNAPSHOT_V1_DATA_BYTES_MAX };
                return Err(StorageError::corruption(&path, 0, reason));
            }
            let bytes = self.disk.read(&path).map_err(|e| StorageError::io("read", &path, e))?;
            let data =
                decode_v1(&bytes, group, last_index).map_err(|r| StorageError::corruption(&path, 0, r))?;
            return Ok(StoredSnapshot::Version1 { last_index, data: data.to_vec(), path });
        }
        let file = read_header(reader.as_ref(), &path, group, last_index)?;
        let mut image = SnapshotImage::new(reader, file.clone());
        io::copy(&mut image, &mut io::sink()).map_err(|e| image.error(e))?;
        Ok(StoredSnapshot::Current(file))
    }

    /// Deletes the snapshots of `group` older than `last_index`; returns how many.
    pub fn remove_older_than(&self, group: GroupId, last_index: u64) -> Result<usize, StorageError> {
        let old: Vec<u64> = self.snapshots_of(group)?.into_iter().filter(|&i| i < last_index).collect();
        for index in &old {
            let path = self.dir.join(file_name(group, *index));
            self.disk.remove_file(&path).map_err(|e| StorageError::io("remove", &path, e))?;
        }
        if !old.is_empty() {
            self.sync_dir()?;
        }
        Ok(old.len())
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn snapshots_of(&self, group: GroupId) -> Result<Vec<u64>, StorageError> {
        Ok(self
            .list()?
            .iter()
            .filter_map(|name| parse_file_name(name))
            .filter(|(g, _)| *g == group)
            .map(|(_, index)| index)
            .collect())
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        self.disk.list_dir(&self.dir).map_err(|e| StorageError::io("list directory", &self.dir, e))
    }

    fn sync_dir(&self) -> Result<(), StorageError> {
        self.disk.sync_dir(&self.dir).map_err(|e| StorageError::io("fsync directory", &self.dir, e))
    }
}

/// A snapshot file being written ([`SnapshotStore::create`]): the image is appended in pieces
/// of any size and goes to disk in synced slices of [`SYNC_EVERY_BYTES`], so the writer holds
/// at most one slice. Dropped unfinished, it removes its temporary file.
#[derive(Debug)]
pub struct SnapshotWriter {
    store: SnapshotStore,
    group: GroupId,
    last_index: u64,
    meta: Vec<u8>,
    meta_len: u32,
    /// The temporary file, until it is renamed.
    temp: Option<PathBuf>,
    file: Box<dyn DiskFile>,
    buf: Vec<u8>,
    /// Where the next slice goes in the file.
    offset: u64,
    image_bytes: u64,
    image_crc32c: u32,
}

impl SnapshotWriter {
    /// Appends `bytes` to the image.
    pub fn append(&mut self, mut bytes: &[u8]) -> Result<(), StorageError> {
        self.image_crc32c = crc32c::crc32c_append(self.image_crc32c, bytes);
        self.image_bytes += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = SYNC_EVERY_BYTES - self.buf.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.buf.extend_from_slice(now);
            bytes = rest;
            if self.buf.len() == SYNC_EVERY_BYTES {
                self.write_slice()?;
            }
        }
        Ok(())
    }

    /// Bytes of the image appended so far.
    pub fn image_bytes(&self) -> u64 {
        self.image_bytes
    }

    /// Writes the buffered slice and syncs it before the next: the WAL shares the disk, and
    /// its next sync would otherwise wait behind the whole file's writeback (a second or more
    /// for a few hundred megabytes), stalling every write of the node. Small slices keep each
    /// such wait short: about a millisecond for 1 MiB on the reference machine's disk.
    fn write_slice(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let temp = self.temp.clone().unwrap_or_default();
        self.file.write_all_at(&self.buf, self.offset).map_err(|e| StorageError::io("write", &temp, e))?;
        self.file.sync_data().map_err(|e| StorageError::io("fdatasync", &temp, e))?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Checks that the image is `image_bytes` long with checksum `image_crc32c` (what a sender
    /// announced), then [`SnapshotWriter::finish`]es; a mismatch is a corruption error and
    /// leaves no file.
    pub fn finish_expecting(self, image_bytes: u64, image_crc32c: u32) -> Result<SnapshotFile, StorageError> {
        let at = self.temp.clone().unwrap_or_default();
        if self.image_bytes != image_bytes {
            let reason = CorruptionKind::LengthOutOfRange { len: self.image_bytes, max: image_bytes };
            return Err(StorageError::corruption(at, self.offset, reason));
        }
        if self.image_crc32c != image_crc32c {
            let reason =
                CorruptionKind::ChecksumMismatch { stored: image_crc32c, computed: self.image_crc32c };
            return Err(StorageError::corruption(at, SNAPSHOT_HEADER_BYTES as u64, reason));
        }
        self.finish()
    }

    /// Writes the rest and the header, syncs, and renames the file to its final name: when
    /// this returns, the snapshot survives a crash.
    pub fn finish(mut self) -> Result<SnapshotFile, StorageError> {
        self.write_slice()?;
        let temp = self.temp.clone().unwrap_or_default();
        let header = self.header();
        self.file.write_all_at(&header, 0).map_err(|e| StorageError::io("write", &temp, e))?;
        self.file.sync_data().map_err(|e| StorageError::io("fdatasync", &temp, e))?;
        let path = self.store.dir.join(file_name(self.group, self.last_index));
        self.store.disk.rename(&temp, &path).map_err(|e| StorageError::io("rename", &temp, e))?;
        self.temp = None;
        self.store.sync_dir()?;
        tracing::debug!(path = %path.display(), bytes = self.image_bytes, "saved snapshot");
        Ok(SnapshotFile {
            group: self.group,
            last_index: self.last_index,
            meta: std::mem::take(&mut self.meta),
            image_bytes: self.image_bytes,
            image_crc32c: self.image_crc32c,
            path,
        })
    }

    fn header(&self) -> [u8; SNAPSHOT_HEADER_BYTES] {
        let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
        header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        header[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        header[12..20].copy_from_slice(&self.group.0.to_le_bytes());
        header[20..28].copy_from_slice(&self.last_index.to_le_bytes());
        header[28..32].copy_from_slice(&self.meta_len.to_le_bytes());
        header[32..36].copy_from_slice(&crc32c::crc32c(&self.meta).to_le_bytes());
        header[36..44].copy_from_slice(&self.image_bytes.to_le_bytes());
        header[44..48].copy_from_slice(&self.image_crc32c.to_le_bytes());
        let header_crc = crc32c::crc32c(&header[0..48]);
        header[48..52].copy_from_slice(&header_crc.to_le_bytes());
        header
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.append(bytes).map_err(io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Best effort: a leftover is removed when the store is next opened.
            let _ = self.store.disk.remove_file(&temp);
        }
    }
}

/// The image of a snapshot file, read in order ([`SnapshotStore::open_image`]). Its checksum
/// is computed as it is read: the read that reaches the end fails if it does not match, so a
/// reader never sees the end of a damaged image as valid.
#[derive(Debug)]
pub struct SnapshotImage {
    reader: Box<dyn DiskReader>,
    file: SnapshotFile,
    /// Image bytes read so far.
    position: u64,
    crc32c: u32,
    /// The checksum mismatch found at the end of the image, if it was.
    damaged: Option<CorruptionKind>,
}

impl SnapshotImage {
    fn new(reader: Box<dyn DiskReader>, file: SnapshotFile) -> SnapshotImage {
        SnapshotImage { reader, file, position: 0, crc32c: 0, damaged: None }
    }

    /// The file's name and header.
    pub fn file(&self) -> &SnapshotFile {
        &self.file
    }

    /// The corruption error for an image whose end did not match its checksum, if it did not.
    pub fn damage(&self) -> Option<StorageError> {
        let reason = self.damaged.clone()?;
        Some(StorageError::corruption(&self.file.path, self.offset(), reason))
    }

    /// Fails unless the whole image was read and matched its checksum.
    pub fn finish(&self) -> Result<(), StorageError> {
        if let Some(damage) = self.damage() {
            return Err(damage);
        }
        if self.position != self.file.image_bytes {
            let reason = CorruptionKind::BadPayload {
                reason: format!(
                    "the state machine read {} of the image's {} bytes",
                    self.position, self.file.image_bytes
                ),
            };
            return Err(StorageError::corruption(&self.file.path, self.offset(), reason));
        }
        Ok(())
    }

    /// Where the next image byte is in the file.
    fn offset(&self) -> u64 {
        SNAPSHOT_HEADER_BYTES as u64 + self.file.meta.len() as u64 + self.position
    }

    /// A storage error for a failed read of this image.
    pub fn error(&self, e: io::Error) -> StorageError {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<CorruptionKind>()) {
            Some(reason) => StorageError::corruption(&self.file.path, self.offset(), reason.clone()),
            None => StorageError::io("read", &self.file.path, e),
        }
    }
}

impl Read for SnapshotImage {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.file.image_bytes - self.position;
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.reader.read_exact_at(&mut buf[..n], self.offset())?;
        let crc = crc32c::crc32c_append(self.crc32c, &buf[..n]);
        if n as u64 == left && crc != self.file.image_crc32c {
            let reason = CorruptionKind::ChecksumMismatch { stored: self.file.image_crc32c, computed: crc };
            self.damaged = Some(reason.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
        }
        self.crc32c = crc;
        self.position += n as u64;
        Ok(n)
    }
}

fn file_name(group: GroupId, last_index: u64) -> String {
    format!("{:020}-{last_index:020}{SNAPSHOT_SUFFIX}", group.0)
}

fn parse_file_name(name: &str) -> Option<(GroupId, u64)> {
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    let (group, index) = stem.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(group) || !digits(index) {
        return None;
    }
    Some((GroupId(group.parse().ok()?), index.parse().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

fn read_exact_at(
    reader: &dyn DiskReader,
    buf: &mut [u8],
    offset: u64,
    path: &Path,
) -> Result<(), StorageError> {
    reader.read_exact_at(buf, offset).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            let reason = CorruptionKind::UnexpectedEnd { missing_bytes: buf.len() as u64 };
            StorageError::corruption(path, offset, reason)
        }
        _ => StorageError::io("read", path, e),
    })
}

/// Reads and checks a version 2 header and the metadata after it, against the group and
/// index the file's name promises; the image is checked as it is read.
fn read_header(
    reader: &dyn DiskReader,
    path: &Path,
    group: GroupId,
    last_index: u64,
) -> Result<SnapshotFile, StorageError> {
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    read_exact_at(reader, &mut header, 0, path)?;
    let corrupt = |reason| Err(StorageError::corruption(path, 0, reason));
    if header[0..8] != SNAPSHOT_MAGIC {
        return corrupt(CorruptionKind::BadMagic);
    }
    let version = u32_at(&header, 8);
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(StorageError::UnsupportedFormat {
            file: path.to_path_buf(),
            version,
            supported: SNAPSHOT_VERSIONS_READ,
        });
    }
    let (stored, computed) = (u32_at(&header, 48), crc32c::crc32c(&header[0..48]));
    if stored != computed {
        return corrupt(CorruptionKind::ChecksumMismatch { stored, computed });
    }
    if let Err(reason) = check_name(&header, group, last_index) {
        return corrupt(reason);
    }
    let meta_len = u32_at(&header, 28);
    if meta_len > SNAPSHOT_META_BYTES_MAX {
        let max = u64::from(SNAPSHOT_META_BYTES_MAX);
        return corrupt(CorruptionKind::LengthOutOfRange { len: u64::from(meta_len), max });
    }
    let mut meta = vec![0u8; meta_len as usize];
    read_exact_at(reader, &mut meta, SNAPSHOT_HEADER_BYTES as u64, path)?;
    let (stored, computed) = (u32_at(&header, 32), crc32c::crc32c(&meta));
    if stored != computed {
        let reason = CorruptionKind::ChecksumMismatch { stored, computed };
        return Err(StorageError::corruption(path, SNAPSHOT_HEADER_BYTES as u64, reason));
    }
    let image_bytes = u64_at(&header, 36);
    let file_len = reader.file_bytes().map_err(|e| StorageError::io("stat", path, e))?;
    let expected = (SNAPSHOT_HEADER_BYTES as u64 + u64::from(meta_len)).checked_add(image_bytes);
    if expected != Some(file_len) {
        let reason = CorruptionKind::LengthOutOfRange { len: image_bytes, max: file_len };
        return corrupt(reason);
    }
    let image_crc32c = u32_at(&header, 44);
    Ok(SnapshotFile { group, last_index, meta, image_bytes, image_crc32c, path: path.to_path_buf() })
}

/// Checks the group and index in a header against the file's name.
fn check_name(header: &[u8], group: GroupId, last_index: u64) -> Result<(), CorruptionKind> {
    if u64_at(header, 12) != group.0 {
        return Err(CorruptionKind::NameMismatch {
            field: "group",
            in_name: group.0,
            in_header: u64_at(header, 12),
        });
    }
    if u64_at(header, 20) != last_index {
        return Err(CorruptionKind::NameMismatch {
            field: "last index",
            in_name: last_index,
            in_header: u64_at(header, 20),
        });
    }
    Ok(())
}

/// Validates a version 1 snapshot file's bytes against the group and index its name
/// promises, returning the data.
fn decode_v1(bytes: &[u8], group: GroupId, last_index: u64) -> Result<&[u8], CorruptionKind> {
    let Some(header) = bytes.get(..SNAPSHOT_HEADER_BYTES_V1) else {
        return Err(CorruptionKind::UnexpectedEnd {
            missing_bytes: (SNAPSHOT_HEADER_BYTES_V1 - bytes.len()) as u64,
        });
    };
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err(CorruptionKind::BadMagic);
    }
    let (stored, computed) = (u32_at(header, 40), crc32c::crc32c(&header[0..40]));
    if stored != computed {
        return Err(CorruptionKind::ChecksumMismatch { stored, computed });
    }
    if u32_at(header, 8) != SNAPSHOT_FORMAT_VERSION_V1 {
        return Err(CorruptionKind::UnsupportedVersion(u32_at(header, 8)));
    }
    check_name(header, group, last_index)?;
    let data = &bytes[SNAPSHOT_HEADER_BYTES_V1..];
    let len = u64_at(header, 28);
    if len != data.len() as u64 {
        return Err(CorruptionKind::LengthOutOfRange { len, max: data.len() as u64 });
    }
    let (stored, computed) = (u32_at(header, 36), crc32c::crc32c(data));
    if stored != computed {
        return Err(CorruptionKind::ChecksumMismatch { stored, computed });
    }
    Ok(data)
}

#[cfg(test)]
mod tests;
