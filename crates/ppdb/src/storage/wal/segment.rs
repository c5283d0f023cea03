//! Segment files: names, headers, listing, creation, and the shared list of live segments.
//!
//! The WAL is a sequence of segment files in one directory. A segment is named after the
//! sequence number of its first record, zero-padded to 20 digits so names sort like numbers:
//! `00000000000000000001.wal`. It starts with a 24-byte header, all integers little-endian:
//!
//! | offset | size | field                                   |
//! |-------:|-----:|-----------------------------------------|
//! | 0      | 8    | magic `PPDBWAL\0`                       |
//! | 8      | 4    | format version (u32), currently 2       |
//! | 12     | 8    | first sequence number (u64), = the name |
//! | 20     | 4    | crc32c (u32) of bytes 0..20             |
//!
//! Records (see [`super::record`]) follow back to back. In version 2 they may be followed by zero
//! bytes up to the end of the file: segments are preallocated (see [`super::spare`]), and the
//! first all-zero record header marks the end of the records. Version 1 segments end at the end
//! of the file; both are read. A segment is complete (header written and synced, file renamed or
//! created, directory synced) before any record goes into it; the previous segment is synced
//! before that, so only the last segment can ever end in a torn write.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::record::{DecodeError, WalSeq};
use super::spare::Spare;
use crate::storage::disk::{Disk, DiskFile};
use crate::storage::error::{CorruptionKind, StorageError};

/// Size of a segment file's header.
pub const SEGMENT_HEADER_BYTES: usize = 24;

/// The magic bytes every segment file starts with.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PPDBWAL\0";

/// The segment format version this code writes.
pub const SEGMENT_FORMAT_VERSION: u32 = 2;

/// The oldest segment format version this code reads (version 1: no zero-filled tail).
pub const SEGMENT_FORMAT_VERSION_MIN: u32 = 1;

const SEGMENT_SUFFIX: &str = ".wal";
const SEGMENT_NAME_DIGITS: usize = 20;

/// One segment file: where it is and the sequence number of its first record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Sequence number of the segment's first record (also its file name).
    pub first_seq: WalSeq,
    /// The segment file.
    pub path: PathBuf,
}

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_file_name(first_seq: WalSeq) -> String {
    format!("{:0width$}{SEGMENT_SUFFIX}", first_seq.0, width = SEGMENT_NAME_DIGITS)
}

/// The first sequence number named by a segment file name, or `None` if `name` is not one.
pub fn parse_segment_file_name(name: &str) -> Option<WalSeq> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(WalSeq)
}

/// The header of a segment whose first record is `first_seq`.
pub fn encode_header(first_seq: WalSeq) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&first_seq.0.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Decodes a segment header from the start of `bytes`, returning the first sequence number.
pub fn decode_header(bytes: &[u8]) -> Result<WalSeq, DecodeError> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Err(DecodeError::Truncated { available: bytes.len(), needed: SEGMENT_HEADER_BYTES });
    };
    let field = |range: std::ops::Range<usize>| &header[range];
    let stored = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let computed = crc32c::crc32c(field(0..20));
    if field(0..8) != SEGMENT_MAGIC {
        return Err(DecodeError::Corrupt(CorruptionKind::BadMagic));
    }
    if stored != computed {
        return Err(DecodeError::Corrupt(CorruptionKind::ChecksumMismatch { stored, computed }));
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if !(SEGMENT_FORMAT_VERSION_MIN..=SEGMENT_FORMAT_VERSION).contains(&version) {
        return Err(DecodeError::Corrupt(CorruptionKind::UnsupportedVersion(version)));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(field(12..20));
    Ok(WalSeq(u64::from_le_bytes(seq)))
}

/// The segments in `dir`, oldest first. Files that are not segments are ignored.
pub fn list_segments(disk: &dyn Disk, dir: &Path) -> Result<Vec<SegmentInfo>, StorageError> {
    let names = disk.list_dir(dir).map_err(|e| StorageError::io("list directory", dir, e))?;
    let mut segments: Vec<SegmentInfo> = names
        .iter()
        .filter_map(|name| {
            let first_seq = parse_segment_file_name(name);
            if first_seq.is_none() && name.ends_with(SEGMENT_SUFFIX) {
                tracing::warn!(dir = %dir.display(), name, "ignoring a .wal file with a foreign name");
            }
            first_seq.map(|first_seq| SegmentInfo { first_seq, path: dir.join(name) })
        })
        .collect();
    segments.sort_by_key(|s| s.first_seq);
    Ok(segments)
}

/// Creates the segment whose first record will be `first_seq`: a new file with its header,
/// synced, with its directory entry synced. Returns the open file and the segment's info.
pub fn create_segment(
    disk: &dyn Disk,
    dir: &Path,
    first_seq: WalSeq,
) -> Result<(Box<dyn DiskFile>, SegmentInfo), StorageError> {
    let path = dir.join(segment_file_name(first_seq));
    let mut file = disk.create_new(&path).map_err(|e| StorageError::io("create segment", &path, e))?;
    file.write_all_at(&encode_header(first_seq), 0)
        .map_err(|e| StorageError::io("write segment header", &path, e))?;
    file.sync_data().map_err(|e| StorageError::io("fdatasync", &path, e))?;
    disk.sync_dir(dir).map_err(|e| StorageError::io("fsync directory", dir, e))?;
    tracing::debug!(path = %path.display(), "created WAL segment");
    Ok((file, SegmentInfo { first_seq, path }))
}

/// Turns a spare (zero-filled, synced) into the segment whose first record will be `first_seq`:
/// writes and syncs its header, renames it, and syncs the directory. Returns the open file and
/// the segment's info.
pub(crate) fn install_spare(
    disk: &dyn Disk,
    dir: &Path,
    first_seq: WalSeq,
    spare: Spare,
) -> Result<(Box<dyn DiskFile>, SegmentInfo), StorageError> {
    let name = segment_file_name(first_seq);
    let path = dir.join(&name);
    let existing = disk.list_dir(dir).map_err(|e| StorageError::io("list directory", dir, e))?;
    if existing.contains(&name) {
        let error = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "segment file exists");
        return Err(StorageError::io("install spare segment", &path, error));
    }
    let Spare { mut file, path: spare_path } = spare;
    file.write_all_at(&encode_header(first_seq), 0)
        .map_err(|e| StorageError::io("write segment header", &spare_path, e))?;
    file.sync_data().map_err(|e| StorageError::io("fdatasync", &spare_path, e))?;
    disk.rename(&spare_path, &path).map_err(|e| StorageError::io("rename spare segment", &path, e))?;
    disk.sync_dir(dir).map_err(|e| StorageError::io("fsync directory", dir, e))?;
    tracing::debug!(path = %path.display(), "installed a preallocated WAL segment");
    Ok((file, SegmentInfo { first_seq, path }))
}

/// The live segments, oldest first, shared by the writer thread (which adds segments) and
/// compaction (which removes old ones). The last segment is the one being appended to and is
/// never removed.
#[derive(Debug, Clone, Default)]
pub struct SegmentList {
    segments: Arc<Mutex<Vec<SegmentInfo>>>,
}

impl SegmentList {
    /// A list holding `segments`, which must be sorted by first sequence number.
    pub fn new(segments: Vec<SegmentInfo>) -> Self {
        debug_assert!(segments.windows(2).all(|w| w[0].first_seq < w[1].first_seq));
        SegmentList { segments: Arc::new(Mutex::new(segments)) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SegmentInfo>> {
        // Every mutation is a single push or drain, so the list is consistent even if a
        // holder panicked.
        self.segments.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a newly created segment at the end.
    pub fn push(&self, segment: SegmentInfo) {
        let mut segments = self.lock();
        debug_assert!(segments.last().is_none_or(|last| last.first_seq < segment.first_seq));
        segments.push(segment);
    }

    /// Removes from the list, and returns, every segment all of whose records have sequence
    /// numbers below `seq`. The last segment is never among them.
    pub fn take_before(&self, seq: WalSeq) -> Vec<SegmentInfo> {
        let mut segments = self.lock();
        // Segment i holds records [first_seq(i), first_seq(i + 1)).
        let removable = segments.windows(2).take_while(|w| w[1].first_seq <= seq).count();
        segments.drain(..removable).collect()
    }

    /// A copy of the current list, oldest first.
    pub fn snapshot(&self) -> Vec<SegmentInfo> {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::disk::SimDisk;

    #[test]
    fn names_sort_like_numbers_and_round_trip() {
        assert_eq!(segment_file_name(WalSeq(1)), "00000000000000000001.wal");
        assert_eq!(parse_segment_file_name("00000000000000000042.wal"), Some(WalSeq(42)));
        assert_eq!(parse_segment_file_name(&segment_file_name(WalSeq(u64::MAX))), Some(WalSeq(u64::MAX)));
        assert!(segment_file_name(WalSeq(9)) < segment_file_name(WalSeq(10)));
        for bad in ["1.wal", "0000000000000000000a.wal", "00000000000000000001.snap", "LOCK"] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
        // 20 digits that overflow u64 are not a segment name either.
        assert_eq!(parse_segment_file_name("99999999999999999999.wal"), None);
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let header = encode_header(WalSeq(77));
        assert_eq!(decode_header(&header), Ok(WalSeq(77)));
        assert!(matches!(decode_header(&header[..10]), Err(DecodeError::Truncated { .. })));
        for byte in 0..SEGMENT_HEADER_BYTES {
            let mut damaged = header;
            damaged[byte] ^= 0x10;
            assert!(
                matches!(decode_header(&damaged), Err(DecodeError::Corrupt(_))),
                "flip in byte {byte} undetected"
            );
        }
    }

    #[test]
    fn create_then_list_in_order_ignoring_foreign_files() {
        let disk = SimDisk::new(0);
        let dir = PathBuf::from("/wal");
        disk.create_dir_all(&dir).unwrap();
        for seq in [10, 2, 100] {
            create_segment(&disk, &dir, WalSeq(seq)).unwrap();
        }
        disk.create_new(&dir.join("notes.txt")).unwrap();
        let listed: Vec<u64> = list_segments(&disk, &dir).unwrap().iter().map(|s| s.first_seq.0).collect();
        assert_eq!(listed, vec![2, 10, 100]);
        let bytes = disk.read(&dir.join(segment_file_name(WalSeq(10)))).unwrap();
        assert_eq!(decode_header(&bytes), Ok(WalSeq(10)));
        assert!(create_segment(&disk, &dir, WalSeq(10)).is_err(), "never clobbers a segment");
    }

    #[test]
    fn take_before_never_takes_the_last_segment() {
        let info = |seq| SegmentInfo { first_seq: WalSeq(seq), path: PathBuf::from(format!("/{seq}")) };
        let list = SegmentList::new(vec![info(1), info(10), info(20)]);
        assert!(list.take_before(WalSeq(9)).is_empty(), "segment 1 still holds record 9");
        assert_eq!(list.take_before(WalSeq(10)), vec![info(1)]);
        assert_eq!(list.take_before(WalSeq(u64::MAX)), vec![info(10)]);
        assert_eq!(list.snapshot(), vec![info(20)]);
    }
}
