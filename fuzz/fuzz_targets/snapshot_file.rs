//! The snapshot file reader (`storage/snapshot_file.rs`) and the key-space snapshot decoder
//! inside it (`kv/snapshot.rs`, `KvStore::restore`).
//!
//! Input: a mode byte, then a snapshot file's bytes. Mode bit 0 makes the harness write correct
//! checksums into the file header, bit 1 a correct data length, bit 2 names the file after the
//! group and index in its header (otherwise group 1, index 5). The data is then decoded as a
//! key-space snapshot, with its checksum made correct when mode bit 3 is set.
//!
//! Asserts: nothing panics; the store loads the fuzzed file exactly when it is byte for byte
//! what `SnapshotStore::save` writes for its data, and otherwise falls back to an older valid
//! snapshot; a restored key space snapshots to bytes that restore to the same bytes again.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ppdb::kv::KvStore;
use ppdb::storage::disk::{Disk, SimDisk};
use ppdb::storage::snapshot_file::{SnapshotStore, SNAPSHOT_HEADER_BYTES};
use ppdb::storage::wal::GroupId;

const DIR: &str = "/node/snapshots";
const FALLBACK: &[u8] = b"older snapshot";

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

fn fix_header(bytes: &mut [u8], mode: u8) {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return;
    }
    if mode & 2 != 0 {
        let len = (bytes.len() - SNAPSHOT_HEADER_BYTES) as u64;
        bytes[28..36].copy_from_slice(&len.to_le_bytes());
    }
    if mode & 1 != 0 {
        let data_crc = crc32c::crc32c(&bytes[SNAPSHOT_HEADER_BYTES..]);
        bytes[36..40].copy_from_slice(&data_crc.to_le_bytes());
        let header_crc = crc32c::crc32c(&bytes[..40]);
        bytes[40..44].copy_from_slice(&header_crc.to_le_bytes());
    }
}

/// What `save` writes for `data`.
fn saved_bytes(group: GroupId, last_index: u64, data: &[u8]) -> Vec<u8> {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(0));
    let store = SnapshotStore::open(Arc::clone(&disk), DIR).expect("open");
    let path = store.save(group, last_index, data).expect("save");
    disk.read(&path).expect("read")
}

/// Loads the newest snapshot of a store holding the fuzzed file and an older valid one.
fn load_file(bytes: &[u8], mode: u8) -> Option<Vec<u8>> {
    let (group, last_index) = match (mode & 4 != 0, u64_at(bytes, 12), u64_at(bytes, 20)) {
        (true, Some(group), Some(index)) if index > 0 => (GroupId(group), index),
        _ => (GroupId(1), 5),
    };
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(0));
    let store = SnapshotStore::open(Arc::clone(&disk), DIR).expect("open");
    store.save(group, 0, FALLBACK).expect("save the fallback");
    let path = store.save(group, last_index, b"").expect("save");
    let mut file = disk.open_write(&path).expect("open");
    file.set_len(0).expect("truncate");
    file.write_all_at(bytes, 0).expect("write");
    file.sync_data().expect("sync");
    let loaded = store.load_latest(group).expect("load").expect("the fallback at least");
    let data = bytes.get(SNAPSHOT_HEADER_BYTES..).unwrap_or_default();
    let valid = bytes == saved_bytes(group, last_index, data);
    if valid {
        assert_eq!((loaded.last_index, &loaded.data[..]), (last_index, data), "a valid file was not loaded");
        Some(loaded.data)
    } else {
        assert_eq!((loaded.last_index, &loaded.data[..]), (0, FALLBACK), "an invalid file was loaded");
        assert_eq!(loaded.path, Path::new(DIR).join(format!("{:020}-{:020}.snap", group.0, 0)));
        None
    }
}

fn restore(data: &[u8], mode: u8) {
    let mut snapshot = data.to_vec();
    if mode & 8 != 0 {
        let crc = crc32c::crc32c(&snapshot);
        snapshot.extend_from_slice(&crc.to_le_bytes());
    }
    let Ok(store) = KvStore::restore(&snapshot) else { return };
    let encoded = store.snapshot();
    let again = KvStore::restore(&encoded).expect("a snapshot of a restored store restores");
    assert_eq!(again.snapshot(), encoded, "a snapshot does not round-trip");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    fix_header(&mut bytes, mode);
    match load_file(&bytes, mode) {
        Some(loaded) => restore(&loaded, mode),
        None => restore(rest, mode),
    }
});
