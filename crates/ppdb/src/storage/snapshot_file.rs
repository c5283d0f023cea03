//! Snapshot files: one file per (group, last log index), written atomically.
//!
//! A snapshot is written to `<name>.tmp`, synced, renamed to `<name>`, and the directory is
//! synced; so after a crash a snapshot file either is complete or does not exist under its final
//! name. Its header carries a checksum of the data anyway, because media can still rot. On load
//! the newest *valid* snapshot of the group wins; temporary and invalid files are skipped (with a
//! warning) and temporary files are removed when the store is opened.
//!
//! File name: `<group, 20 digits>-<last index, 20 digits>.snap`. Layout, integers little-endian:
//!
//! | offset | size | field                                    |
//! |-------:|-----:|------------------------------------------|
//! | 0      | 8    | magic `PPDBSNAP`                         |
//! | 8      | 4    | format version (u32), currently 1        |
//! | 12     | 8    | group id (u64), = the name               |
//! | 20     | 8    | last log index covered (u64), = the name |
//! | 28     | 8    | data length (u64)                        |
//! | 36     | 4    | crc32c of the data (u32)                 |
//! | 40     | 4    | crc32c of bytes 0..40 (u32)              |
//! | 44     | n    | data                                     |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::storage::disk::{self, Disk};
use crate::storage::error::{CorruptionKind, StorageError};
use crate::storage::wal::GroupId;

/// Size of a snapshot file's header.
pub const SNAPSHOT_HEADER_BYTES: usize = 44;
/// The largest snapshot data accepted (snapshots are loaded into memory whole): 4 GiB.
pub const SNAPSHOT_DATA_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// The magic bytes every snapshot file starts with.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"PPDBSNAP";
/// The snapshot format version this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// Bytes of a snapshot file written between two fdatasyncs (see [`SnapshotFiles::save`]).
const SYNC_EVERY_BYTES: usize = 1024 * 1024;

/// A snapshot read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSnapshot {
    /// The group it belongs to.
    pub group: GroupId,
    /// The last log index it covers.
    pub last_index: u64,
    /// The snapshot's data, opaque to this module.
    pub data: Vec<u8>,
    /// The file it was read from.
    pub path: PathBuf,
}

/// The snapshot files of one node, in one directory.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens the store in `dir` (created if missing) and removes temporary files left by a
    /// crash during a save.
    pub fn open(disk: Arc<dyn Disk>, dir: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let dir = dir.into();
        disk::create_dir_durable(disk.as_ref(), &dir)
            .map_err(|e| StorageError::io("create directory", &dir, e))?;
        let store = SnapshotStore { disk, dir };
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

    /// Durably saves `data` as the snapshot of `group` covering the log up to `last_index`, and
    /// returns its path. When this returns, the snapshot survives a crash.
    pub fn save(&self, group: GroupId, last_index: u64, data: &[u8]) -> Result<PathBuf, StorageError> {
        let data_len = data.len() as u64;
        if data_len > SNAPSHOT_DATA_BYTES_MAX {
            return Err(StorageError::RecordTooLarge { len: data_len, max: SNAPSHOT_DATA_BYTES_MAX });
        }
        let path = self.dir.join(file_name(group, last_index));
        let temp = self.dir.join(format!("{}{TEMP_SUFFIX}", file_name(group, last_index)));
        match self.disk.remove_file(&temp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StorageError::io("remove temporary snapshot", &temp, e));
            }
            _ => {}
        }
        let mut file = self.disk.create_new(&temp).map_err(|e| StorageError::io("create", &temp, e))?;
        let header = encode_header(group, last_index, data);
        file.write_all_at(&header, 0).map_err(|e| StorageError::io("write", &temp, e))?;
        // In slices, each synced before the next: the WAL shares the disk, and its next sync
        // would otherwise wait behind the whole file's writeback (a second or more for a few
        // hundred megabytes), stalling every write of the node. Small slices keep each such
        // wait short: about a millisecond for 1 MiB on the reference machine's disk.
        let mut offset = SNAPSHOT_HEADER_BYTES as u64;
        for slice in data.chunks(SYNC_EVERY_BYTES) {
            file.write_all_at(slice, offset).map_err(|e| StorageError::io("write", &temp, e))?;
            file.sync_data().map_err(|e| StorageError::io("fdatasync", &temp, e))?;
            offset += slice.len() as u64;
        }
        if data.is_empty() {
            file.sync_data().map_err(|e| StorageError::io("fdatasync", &temp, e))?;
        }
        drop(file);
        self.disk.rename(&temp, &path).map_err(|e| StorageError::io("rename", &temp, e))?;
        self.sync_dir()?;
        tracing::debug!(path = %path.display(), bytes = data.len(), "saved snapshot");
        Ok(path)
    }

    /// The newest valid snapshot of `group`, or `None`. Invalid files are skipped with a
    /// warning; an I/O error is returned.
    pub fn load_latest(&self, group: GroupId) -> Result<Option<LoadedSnapshot>, StorageError> {
        let mut candidates = self.snapshots_of(group)?;
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for last_index in candidates {
            let path = self.dir.join(file_name(group, last_index));
            let bytes = self.disk.read(&path).map_err(|e| StorageError::io("read", &path, e))?;
            match decode(&bytes, group, last_index) {
                Ok(data) => return Ok(Some(LoadedSnapshot { group, last_index, data: data.to_vec(), path })),
                Err(reason) => tracing::warn!(
                    path = %path.display(),
                    %reason,
                    "skipping an invalid snapshot file"
                ),
            }
        }
        Ok(None)
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

fn encode_header(group: GroupId, last_index: u64, data: &[u8]) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&group.0.to_le_bytes());
    header[20..28].copy_from_slice(&last_index.to_le_bytes());
    header[28..36].copy_from_slice(&(data.len() as u64).to_le_bytes());
    header[36..40].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
    let header_crc = crc32c::crc32c(&header[0..40]);
    header[40..44].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// Validates a snapshot file's bytes against the group and index its name promises, returning
/// the data.
fn decode(bytes: &[u8], group: GroupId, last_index: u64) -> Result<&[u8], CorruptionKind> {
    let Some(header) = bytes.get(..SNAPSHOT_HEADER_BYTES) else {
        return Err(CorruptionKind::UnexpectedEnd {
            missing_bytes: (SNAPSHOT_HEADER_BYTES - bytes.len()) as u64,
        });
    };
    let u32_at = |at: usize| u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let u64_at = |at: usize| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(raw)
    };
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err(CorruptionKind::BadMagic);
    }
    let (stored, computed) = (u32_at(40), crc32c::crc32c(&header[0..40]));
    if stored != computed {
        return Err(CorruptionKind::ChecksumMismatch { stored, computed });
    }
    if u32_at(8) != SNAPSHOT_FORMAT_VERSION {
        return Err(CorruptionKind::UnsupportedVersion(u32_at(8)));
    }
    if u64_at(12) != group.0 {
        return Err(CorruptionKind::NameMismatch { field: "group", in_name: group.0, in_header: u64_at(12) });
    }
    if u64_at(20) != last_index {
        return Err(CorruptionKind::NameMismatch {
            field: "last index",
            in_name: last_index,
            in_header: u64_at(20),
        });
    }
    let data = &bytes[SNAPSHOT_HEADER_BYTES..];
    let len = u64_at(28);
    if len != data.len() as u64 {
        return Err(CorruptionKind::LengthOutOfRange { len, max: data.len() as u64 });
    }
    let (stored, computed) = (u32_at(36), crc32c::crc32c(data));
    if stored != computed {
        return Err(CorruptionKind::ChecksumMismatch { stored, computed });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::disk::{CrashFaults, SimDisk};
    use proptest::prelude::*;

    const G: GroupId = GroupId(3);

    fn store(seed: u64) -> (SimDisk, SnapshotStore) {
        let disk = SimDisk::new(seed);
        let store = SnapshotStore::open(Arc::new(disk.clone()), "/node/snapshots").unwrap();
        (disk, store)
    }

    #[test]
    fn a_large_snapshot_is_written_in_synced_slices() {
        let (disk, store) = store(7);
        let data: Vec<u8> = (0..5 * SYNC_EVERY_BYTES / 2).map(|i| i as u8).collect();
        store.save(G, 10, &data).unwrap();
        assert_eq!(store.load_latest(G).unwrap().unwrap().data, data);
        let peak = disk.peak_unsynced_file_bytes();
        assert!(peak <= (SNAPSHOT_HEADER_BYTES + SYNC_EVERY_BYTES) as u64, "{peak} bytes unsynced at once");
    }

    #[test]
    fn latest_valid_snapshot_wins() {
        let (_disk, store) = store(1);
        assert_eq!(store.load_latest(G).unwrap(), None);
        store.save(G, 10, b"ten").unwrap();
        store.save(G, 20, b"twenty").unwrap();
        store.save(GroupId(4), 99, b"other group").unwrap();
        let latest = store.load_latest(G).unwrap().unwrap();
        assert_eq!((latest.last_index, latest.data.as_slice()), (20, &b"twenty"[..]));
        assert_eq!(store.remove_older_than(G, 20).unwrap(), 1);
        assert_eq!(store.load_latest(G).unwrap().unwrap().last_index, 20);
        assert_eq!(store.load_latest(GroupId(4)).unwrap().unwrap().data, b"other group");
    }

    #[test]
    fn damaged_newest_snapshot_falls_back_to_the_previous_one() {
        let (disk, store) = store(2);
        store.save(G, 10, b"ten").unwrap();
        let newest = store.save(G, 20, b"twenty").unwrap();
        disk.flip_bit(&newest, SNAPSHOT_HEADER_BYTES as u64 + 2, 0).unwrap();
        assert_eq!(store.load_latest(G).unwrap().unwrap().last_index, 10);
    }

    #[test]
    fn crash_before_rename_leaves_the_old_snapshot_and_no_temp() {
        let (disk, store) = store(3);
        store.save(G, 10, b"ten").unwrap();
        // A save interrupted after writing the temporary file but before the rename.
        let temp = store.dir().join(format!("{}{TEMP_SUFFIX}", file_name(G, 20)));
        let mut f = disk.create_new(&temp).unwrap();
        f.write_all_at(b"half a snap", 0).unwrap();
        disk.sync_dir(store.dir()).unwrap();
        disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
        let store = SnapshotStore::open(Arc::new(disk.clone()), "/node/snapshots").unwrap();
        assert_eq!(store.load_latest(G).unwrap().unwrap().last_index, 10);
        assert!(disk.read(&temp).is_err(), "temporary file removed on open");
    }

    #[test]
    fn saved_snapshot_survives_a_crash() {
        for seed in 0..20 {
            let (disk, store) = store(seed);
            store.save(G, 7, b"state").unwrap();
            disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
            let store = SnapshotStore::open(Arc::new(disk), "/node/snapshots").unwrap();
            assert_eq!(store.load_latest(G).unwrap().unwrap().data, b"state", "seed {seed}");
        }
    }

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        assert_eq!(parse_file_name(&file_name(GroupId(5), 42)), Some((GroupId(5), 42)));
        assert_eq!(parse_file_name("5-42.snap"), None);
        assert_eq!(parse_file_name(&format!("{}{TEMP_SUFFIX}", file_name(G, 1))), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes, G, 1);
        }

        #[test]
        fn encode_decode_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = encode_header(G, 9, &data).to_vec();
            bytes.extend_from_slice(&data);
            prop_assert_eq!(decode(&bytes, G, 9), Ok(&data[..]));
            prop_assert!(decode(&bytes, G, 8).is_err());
        }
    }
}
