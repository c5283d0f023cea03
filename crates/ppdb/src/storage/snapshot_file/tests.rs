use super::*;
use crate::storage::disk::{CrashFaults, SimDisk};
use proptest::prelude::*;

const G: GroupId = GroupId(3);
const META: &[u8] = b"meta";

fn store(seed: u64) -> (SimDisk, SnapshotStore) {
    let disk = SimDisk::new(seed);
    let store = SnapshotStore::open(Arc::new(disk.clone()), "/node/snapshots").unwrap();
    (disk, store)
}

/// The image of the newest valid snapshot of `group`, read back through the stream.
fn latest_image(store: &SnapshotStore, group: GroupId) -> Option<(u64, Vec<u8>)> {
    let Some(StoredSnapshot::Current(file)) = store.load_latest(group).unwrap() else { return None };
    let mut image = store.open_image(group, file.last_index).unwrap();
    let mut out = Vec::new();
    image.read_to_end(&mut out).unwrap();
    image.finish().unwrap();
    assert_eq!(image.file().meta, META);
    Some((file.last_index, out))
}

#[test]
fn a_large_snapshot_is_written_in_synced_slices_and_streamed_back() {
    let (disk, store) = store(7);
    let data: Vec<u8> = (0..5 * SYNC_EVERY_BYTES / 2).map(|i| i as u8).collect();
    let mut writer = store.create(G, 10, META).unwrap();
    for piece in data.chunks(1000) {
        writer.write_all(piece).unwrap();
    }
    writer.finish().unwrap();
    assert_eq!(latest_image(&store, G), Some((10, data)));
    let peak = disk.peak_unsynced_file_bytes();
    assert!(peak <= (SNAPSHOT_HEADER_BYTES + SYNC_EVERY_BYTES) as u64, "{peak} bytes unsynced at once");
}

#[test]
fn latest_valid_snapshot_wins() {
    let (_disk, store) = store(1);
    assert_eq!(store.load_latest(G).unwrap(), None);
    store.save(G, 10, META, b"ten").unwrap();
    store.save(G, 20, META, b"twenty").unwrap();
    store.save(GroupId(4), 99, META, b"other group").unwrap();
    assert_eq!(latest_image(&store, G), Some((20, b"twenty".to_vec())));
    assert_eq!(store.remove_older_than(G, 20).unwrap(), 1);
    assert_eq!(latest_image(&store, G).map(|(i, _)| i), Some(20));
    assert_eq!(latest_image(&store, GroupId(4)), Some((99, b"other group".to_vec())));
}

#[test]
fn damaged_or_truncated_newest_snapshot_falls_back_to_the_previous_one() {
    let (disk, store) = store(2);
    store.save(G, 10, META, b"ten").unwrap();
    let newest = store.save(G, 20, META, b"twenty").unwrap();
    let image_at = (SNAPSHOT_HEADER_BYTES + META.len()) as u64;
    disk.flip_bit(&newest.path, image_at + 2, 0).unwrap();
    assert_eq!(latest_image(&store, G).map(|(i, _)| i), Some(10));
    // The damaged image is refused when streamed, at its end.
    let mut image = store.open_image(G, 20).unwrap();
    let err = image.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(image.error(err).is_corruption());
    // A file cut short is skipped too.
    let cut = store.save(G, 30, META, b"thirty").unwrap();
    disk.open_write(&cut.path).unwrap().set_len(image_at + 3).unwrap();
    assert_eq!(latest_image(&store, G).map(|(i, _)| i), Some(10));
}

#[test]
fn a_received_image_of_the_wrong_size_or_checksum_is_refused_and_leaves_no_file() {
    let (disk, store) = store(4);
    let mut writer = store.create(G, 5, META).unwrap();
    writer.append(b"abc").unwrap();
    let err = writer.finish_expecting(4, crc32c::crc32c(b"abc")).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    let mut writer = store.create(G, 5, META).unwrap();
    writer.append(b"abc").unwrap();
    let err = writer.finish_expecting(3, crc32c::crc32c(b"abd")).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(disk.list_dir(store.dir()).unwrap().is_empty());
    let file = store.create(G, 5, META).unwrap();
    drop(file);
    assert!(disk.list_dir(store.dir()).unwrap().is_empty(), "an abandoned transfer leaves nothing");
}

#[test]
fn crash_before_rename_leaves_the_old_snapshot_and_no_temp() {
    let (disk, store) = store(3);
    store.save(G, 10, META, b"ten").unwrap();
    // A save interrupted after writing the temporary file but before the rename.
    let temp = store.dir().join(format!("{}.7{TEMP_SUFFIX}", file_name(G, 20)));
    let mut f = disk.create_new(&temp).unwrap();
    f.write_all_at(b"half a snap", 0).unwrap();
    disk.sync_dir(store.dir()).unwrap();
    disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
    let store = SnapshotStore::open(Arc::new(disk.clone()), "/node/snapshots").unwrap();
    assert_eq!(latest_image(&store, G).map(|(i, _)| i), Some(10));
    assert!(disk.read(&temp).is_err(), "temporary file removed on open");
}

#[test]
fn saved_snapshot_survives_a_crash() {
    for seed in 0..20 {
        let (disk, store) = store(seed);
        store.save(G, 7, META, b"state").unwrap();
        disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
        let store = SnapshotStore::open(Arc::new(disk), "/node/snapshots").unwrap();
        assert_eq!(latest_image(&store, G), Some((7, b"state".to_vec())), "seed {seed}");
    }
}

/// A version 1 file as earlier releases wrote it.
fn version_1_file(group: GroupId, last_index: u64, data: &[u8]) -> Vec<u8> {
    let mut header = vec![0u8; SNAPSHOT_HEADER_BYTES_V1];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&1u32.to_le_bytes());
    header[12..20].copy_from_slice(&group.0.to_le_bytes());
    header[20..28].copy_from_slice(&last_index.to_le_bytes());
    header[28..36].copy_from_slice(&(data.len() as u64).to_le_bytes());
    header[36..40].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
    let crc = crc32c::crc32c(&header[0..40]);
    header[40..44].copy_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(data);
    header
}

fn put(disk: &SimDisk, store: &SnapshotStore, name: String, bytes: &[u8]) {
    let mut f = disk.create_new(&store.dir().join(name)).unwrap();
    f.write_all_at(bytes, 0).unwrap();
}

#[test]
fn version_1_files_are_still_read_and_unknown_versions_refused() {
    let (disk, store) = store(5);
    put(&disk, &store, file_name(G, 8), &version_1_file(G, 8, b"old data"));
    let stored = store.load_latest(G).unwrap();
    assert!(
        matches!(stored, Some(StoredSnapshot::Version1 { last_index: 8, ref data, .. }) if data == b"old data")
    );
    let mut future = vec![0u8; SNAPSHOT_HEADER_BYTES];
    future[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    future[8..12].copy_from_slice(&3u32.to_le_bytes());
    put(&disk, &store, file_name(G, 9), &future);
    let err = store.load_latest(G).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("format version 3") && text.contains("versions 1 and 2"), "{text}");
}

#[test]
fn names_round_trip_and_foreign_names_are_ignored() {
    assert_eq!(parse_file_name(&file_name(GroupId(5), 42)), Some((GroupId(5), 42)));
    assert_eq!(parse_file_name("5-42.snap"), None);
    assert_eq!(parse_file_name(&format!("{}.1{TEMP_SUFFIX}", file_name(G, 1))), None);
}

proptest! {
    #[test]
    fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (disk, store) = store(9);
        put(&disk, &store, file_name(G, 1), &bytes);
        if let Ok(Some(StoredSnapshot::Current(_))) = store.load_latest(G) {
            let mut image = store.open_image(G, 1).unwrap();
            let _ = image.read_to_end(&mut Vec::new());
        }
        let _ = decode_v1(&bytes, G, 1);
    }

    #[test]
    fn save_and_stream_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (_disk, store) = store(10);
        store.save(G, 9, META, &data).unwrap();
        prop_assert_eq!(latest_image(&store, G), Some((9, data)));
    }
}
