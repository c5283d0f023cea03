//! The snapshot file reader (`storage/snapshot_file.rs`: the version 2 header, the metadata,
//! the streamed image, and the version 1 files of earlier releases) and the key-space snapshot
//! decoder the image is streamed into (`kv/snapshot.rs`, `KvStore::restore_from`).
//!
//! Input: a mode byte, then a snapshot file's bytes, which the harness may repair for the
//! layout the header's version field names (1, or else 2) so that the checks behind the
//! checksums are reached. Mode bit 3 appends a correct key-space checksum to the image; bit 1
//! writes correct lengths (version 2: the metadata length cut to what the file holds, the
//! image length the rest; version 1: the data length); bit 0 writes correct checksums (version
//! 2: of the metadata, the image and the header; version 1: of the data and the header); bit 2
//! names the file after the group and index in its header (otherwise group 1, index 5). The
//! loaded image (version 2), the loaded data (version 1), or else the input itself (with a
//! key-space checksum appended under bit 3) is then restored as a key-space snapshot.
//!
//! Asserts: nothing panics; the store loads the fuzzed file exactly when it is byte for byte
//! what `SnapshotStore::save` writes for its metadata and image (version 2) or what earlier
//! releases wrote for its data (version 1), refuses it as a newer format exactly when a whole
//! header names another version, and otherwise falls back to an older valid snapshot; a loaded
//! image streams back as saved; restoring a key space from the streamed image and from its
//! bytes agree; a restored key space snapshots to bytes that restore to the same bytes again.
#![no_main]

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ppdb::kv::KvStore;
use ppdb::node::raft_storage::decode_meta;
use ppdb::storage::disk::{Disk, SimDisk};
use ppdb::storage::error::StorageError;
use ppdb::storage::snapshot_file::{
    SnapshotFile, SnapshotStore, StoredSnapshot, SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC,
    SNAPSHOT_META_BYTES_MAX,
};
use ppdb::storage::wal::GroupId;

const DIR: &str = "/node/snapshots";
const FALLBACK_META: &[u8] = b"older meta";
const FALLBACK_IMAGE: &[u8] = b"older snapshot";
/// Header of the version 1 files of earlier releases.
const HEADER_BYTES_V1: usize = 44;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

fn is_version_1(bytes: &[u8]) -> bool {
    u32_at(bytes, 8) == Some(1)
}

/// The metadata length a version 2 header gives, cut to the bytes after the header.
fn meta_len(bytes: &[u8]) -> usize {
    let available = bytes.len().saturating_sub(SNAPSHOT_HEADER_BYTES);
    u32_at(bytes, 28).map_or(0, |len| (len as usize).min(available))
}

/// A version 2 file's metadata and image, as its header splits them.
fn split_v2(bytes: &[u8]) -> (&[u8], &[u8]) {
    let rest = bytes.get(SNAPSHOT_HEADER_BYTES..).unwrap_or_default();
    rest.split_at(meta_len(bytes))
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Writes at `at` the crc32c of `covered`.
fn put_crc(bytes: &mut [u8], at: usize, covered: std::ops::Range<usize>) {
    let crc = crc32c::crc32c(&bytes[covered]);
    put_u32(bytes, at, crc);
}

/// Repairs the file as the mode asks (see the module docs).
fn repair(bytes: &mut Vec<u8>, mode: u8) {
    let v1 = is_version_1(bytes);
    if bytes.len() < if v1 { HEADER_BYTES_V1 } else { SNAPSHOT_HEADER_BYTES } {
        return;
    }
    if mode & 8 != 0 {
        bytes.extend_from_slice(&[0; 4]);
    }
    if mode & 2 != 0 {
        if v1 {
            let len = (bytes.len() - HEADER_BYTES_V1) as u64;
            put_u64(bytes, 28, len);
        } else {
            let available = bytes.len() - SNAPSHOT_HEADER_BYTES;
            let stored = u32_at(bytes, 28).unwrap_or(0) as usize;
            let fits = available.min(SNAPSHOT_META_BYTES_MAX as usize);
            let meta = if stored <= fits { stored } else { stored % (fits + 1) };
            put_u32(bytes, 28, meta as u32);
            put_u64(bytes, 36, (available - meta) as u64);
        }
    }
    let image_start = if v1 { HEADER_BYTES_V1 } else { SNAPSHOT_HEADER_BYTES + meta_len(bytes) };
    if mode & 8 != 0 {
        let end = bytes.len() - 4;
        put_crc(bytes, end, image_start.min(end)..end);
    }
    if mode & 1 != 0 {
        let end = bytes.len();
        if v1 {
            put_crc(bytes, 36, HEADER_BYTES_V1..end);
            put_crc(bytes, 40, 0..40);
        } else {
            put_crc(bytes, 32, SNAPSHOT_HEADER_BYTES..image_start);
            put_crc(bytes, 44, image_start..end);
            put_crc(bytes, 48, 0..48);
        }
    }
}

/// What `save` writes for `meta` and `image`, if it takes them.
fn saved_bytes(group: GroupId, last_index: u64, meta: &[u8], image: &[u8]) -> Option<Vec<u8>> {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(0));
    let store = SnapshotStore::open(Arc::clone(&disk), DIR).expect("open");
    let file = store.save(group, last_index, meta, image).ok()?;
    Some(disk.read(&file.path).expect("read"))
}

/// What earlier releases wrote for `data` (version 1).
fn version_1_bytes(group: GroupId, last_index: u64, data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_BYTES_V1];
    bytes[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    put_u32(&mut bytes, 8, 1);
    put_u64(&mut bytes, 12, group.0);
    put_u64(&mut bytes, 20, last_index);
    put_u64(&mut bytes, 28, data.len() as u64);
    put_u32(&mut bytes, 36, crc32c::crc32c(data));
    let header_crc = crc32c::crc32c(&bytes[..40]);
    put_u32(&mut bytes, 40, header_crc);
    bytes.extend_from_slice(data);
    bytes
}

/// What the store must make of the fuzzed file.
#[derive(Debug)]
enum Expected<'a> {
    Current { meta: &'a [u8], image: &'a [u8] },
    Version1 { data: &'a [u8] },
    NewerFormat { version: u32 },
    Fallback,
}

fn expected(bytes: &[u8], group: GroupId, last_index: u64) -> Expected<'_> {
    let (meta, image) = split_v2(bytes);
    if saved_bytes(group, last_index, meta, image).is_some_and(|saved| saved == bytes) {
        return Expected::Current { meta, image };
    }
    if let Some(data) = bytes.get(HEADER_BYTES_V1..) {
        if version_1_bytes(group, last_index, data) == bytes {
            return Expected::Version1 { data };
        }
    }
    let whole_header = bytes.len() >= SNAPSHOT_HEADER_BYTES && bytes[..8] == SNAPSHOT_MAGIC;
    match u32_at(bytes, 8) {
        Some(version) if whole_header && version != 1 && version != 2 => Expected::NewerFormat { version },
        _ => Expected::Fallback,
    }
}

/// The image of the snapshot `file`, streamed back from the store.
fn streamed_image(store: &SnapshotStore, file: &SnapshotFile) -> Vec<u8> {
    let mut image = store.open_image(file.group, file.last_index).expect("a loaded file opens");
    let mut out = Vec::new();
    image.read_to_end(&mut out).expect("a loaded image reads back");
    image.finish().expect("a loaded image checks");
    out
}

/// What the harness restores next: a loaded image, to stream from the store too, or bytes.
enum ToRestore {
    Streamed(SnapshotStore, SnapshotFile, Vec<u8>),
    Bytes(Vec<u8>),
    Input,
}

/// Loads the newest snapshot of a store holding the fuzzed file and an older valid one, and
/// checks the store's verdict against [`expected`].
fn load_file(bytes: &[u8], mode: u8) -> ToRestore {
    let (group, last_index) = match (mode & 4 != 0, u64_at(bytes, 12), u64_at(bytes, 20)) {
        (true, Some(group), Some(index)) if index > 0 => (GroupId(group), index),
        _ => (GroupId(1), 5),
    };
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(0));
    let store = SnapshotStore::open(Arc::clone(&disk), DIR).expect("open");
    store.save(group, 0, FALLBACK_META, FALLBACK_IMAGE).expect("save the fallback");
    let path = store.save(group, last_index, b"", b"").expect("save").path;
    let mut file = disk.open_write(&path).expect("open");
    file.set_len(0).expect("truncate");
    file.write_all_at(bytes, 0).expect("write");
    file.sync_data().expect("sync");
    let loaded = store.load_latest(group);
    match (expected(bytes, group, last_index), loaded) {
        (Expected::Current { meta, image }, Ok(Some(StoredSnapshot::Current(file)))) => {
            assert_eq!((file.group, file.last_index, &file.meta[..]), (group, last_index, meta));
            assert_eq!(file.path, path);
            assert_eq!(streamed_image(&store, &file), image, "the image does not stream back");
            let _ = decode_meta(&file);
            ToRestore::Streamed(store, file, image.to_vec())
        }
        (
            Expected::Version1 { data },
            Ok(Some(StoredSnapshot::Version1 { last_index: at, data: read, .. })),
        ) => {
            assert_eq!((at, &read[..]), (last_index, data), "a valid version 1 file was misread");
            ToRestore::Bytes(read)
        }
        (
            Expected::NewerFormat { version },
            Err(StorageError::UnsupportedFormat { version: refused, .. }),
        ) => {
            assert_eq!(refused, version);
            ToRestore::Input
        }
        (Expected::Fallback, Ok(Some(StoredSnapshot::Current(file)))) => {
            assert_eq!((file.last_index, &file.meta[..]), (0, FALLBACK_META), "an invalid file was loaded");
            assert_eq!(file.path, Path::new(DIR).join(format!("{:020}-{:020}.snap", group.0, 0)));
            assert_eq!(streamed_image(&store, &file), FALLBACK_IMAGE);
            ToRestore::Input
        }
        (expected, loaded) => panic!("expected {expected:?}, the store loaded {loaded:?}"),
    }
}

/// Restores a key space from `image`; checks that its snapshot restores to the same bytes.
fn restore(image: &[u8]) -> Option<Vec<u8>> {
    let store = KvStore::restore(image).ok()?;
    let encoded = store.snapshot();
    let again = KvStore::restore(&encoded).expect("a snapshot of a restored store restores");
    assert_eq!(again.snapshot(), encoded, "a snapshot does not round-trip");
    Some(encoded)
}

/// Restores a key space streamed from the snapshot file, as a node does, and from its bytes.
fn restore_streamed(store: &SnapshotStore, file: &SnapshotFile, image: &[u8]) {
    let mut reader = store.open_image(file.group, file.last_index).expect("a loaded file opens");
    let streamed = KvStore::restore_from(&mut reader).map(|kv| kv.snapshot());
    assert!(reader.damage().is_none(), "a loaded image is damaged");
    match (streamed, restore(image)) {
        (Ok(streamed), Some(sliced)) => assert_eq!(streamed, sliced, "streamed and sliced restores differ"),
        (Err(_), None) => {}
        (streamed, sliced) => panic!("streamed restore {streamed:?}, sliced {:?}", sliced.is_some()),
    }
}

fn with_kv_checksum(input: &[u8], mode: u8) -> Vec<u8> {
    let mut bytes = input.to_vec();
    if mode & 8 != 0 {
        bytes.extend_from_slice(&crc32c::crc32c(input).to_le_bytes());
    }
    bytes
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    repair(&mut bytes, mode);
    match load_file(&bytes, mode) {
        ToRestore::Streamed(store, file, image) => restore_streamed(&store, &file, &image),
        ToRestore::Bytes(data) => drop(restore(&data)),
        ToRestore::Input => drop(restore(&with_kv_checksum(rest, mode))),
    }
});
