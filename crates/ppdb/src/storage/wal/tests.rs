//! WAL tests on the simulated disk: recovery after crashes with lost and torn writes, corruption
//! reports, group commit, poisoning, compaction. Deterministic: faults come from seeds, and the
//! group-commit test controls the fsync with the disk's sync gate instead of timing.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use proptest::prelude::*;

use super::record::{encode_into, RECORD_HEADER_BYTES};
use super::segment::{encode_header, segment_file_name, SEGMENT_HEADER_BYTES};
use super::*;
use crate::storage::disk::{CrashFaults, SimDisk};
use crate::storage::error::CorruptionKind;

const DIR: &str = "/node/wal";

/// Every record ever appended (seq → group and payload), and which were acknowledged durable.
#[derive(Debug, Default)]
struct Model {
    appended: BTreeMap<WalSeq, (GroupId, Vec<u8>)>,
    durable: Vec<WalSeq>,
}

/// A recovered record: sequence number, group, payload.
type Recovered = (WalSeq, GroupId, Vec<u8>);

/// Small segments that grow as records are appended. The tests that drive the writer thread
/// through the disk's sync gate, or compute offsets from file lengths, use these: the background
/// maker of preallocated segments would take some of the syncs they count. Preallocated segments
/// have their own tests below (and run in the runtime simulation).
fn small_segments() -> WalConfig {
    WalConfig { segment_bytes_max: SEGMENT_BYTES_MIN, preallocate: false, ..WalConfig::default() }
}

/// Small preallocated segments.
fn small_preallocated() -> WalConfig {
    WalConfig { segment_bytes_max: SEGMENT_BYTES_MIN, ..WalConfig::default() }
}

fn payload(seq_hint: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq_hint as usize * 31 + i) as u8).collect()
}

/// Opens the WAL and returns every recovered record.
fn open_collect(
    disk: &SimDisk,
    config: WalConfig,
) -> Result<(Wal, RecoveryReport, Vec<Recovered>), StorageError> {
    let mut records = Vec::new();
    let (wal, report) = Wal::open(Arc::new(disk.clone()), DIR, config, |r| {
        records.push((r.record.seq, r.record.group, r.record.payload.to_vec()));
        Ok(())
    })?;
    Ok((wal, report, records))
}

/// Checks the recovered records against the model: a gap-free run of sequence numbers, each
/// intact, containing every acknowledged record.
fn check_recovered(model: &Model, recovered: &[Recovered]) {
    for pair in recovered.windows(2) {
        assert_eq!(pair[1].0, pair[0].0.next(), "recovered sequence numbers must be gap-free");
    }
    let by_seq: BTreeMap<WalSeq, (GroupId, &Vec<u8>)> =
        recovered.iter().map(|(s, g, p)| (*s, (*g, p))).collect();
    for (seq, (group, payload)) in recovered.iter().map(|(s, g, p)| (s, (g, p))) {
        let expected = model.appended.get(seq).expect("recovered a record never appended");
        assert_eq!((&expected.0, &expected.1), (group, payload), "record {seq} damaged");
    }
    for seq in &model.durable {
        assert!(by_seq.contains_key(seq), "acknowledged record {seq} lost");
    }
}

fn append(wal: &Wal, model: &mut Model, group: u64, len: usize) -> DurableTicket {
    let next = model.appended.keys().next_back().map_or(1, |s| s.0 + 1);
    let data = payload(next, len);
    let ticket = wal.append(GroupId(group), RecordKind::Entries, data.clone()).unwrap();
    model.appended.insert(ticket.seq(), (GroupId(group), data));
    ticket
}

#[test]
fn records_round_trip_across_segments_and_threads() {
    let disk = SimDisk::new(1);
    let (wal, _, recovered) = open_collect(&disk, small_segments()).unwrap();
    assert!(recovered.is_empty());
    let wal = Arc::new(wal);
    let written: Vec<Vec<Recovered>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let wal = Arc::clone(&wal);
                s.spawn(move || {
                    (0..100u64)
                        .map(|i| {
                            let data = payload(t * 1000 + i, (i % 50) as usize);
                            let seq = wal.append_durable(GroupId(t), RecordKind::Entries, data.clone());
                            (seq.unwrap(), GroupId(t), data)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(wal.segment_paths().len() > 3, "small segments must roll");
    assert_eq!(wal.durable_seq(), Some(WalSeq(400)));
    Arc::into_inner(wal).unwrap().close().unwrap();

    let mut expected: Vec<_> = written.into_iter().flatten().collect();
    expected.sort();
    let (_, report, recovered) = open_collect(&disk, small_segments()).unwrap();
    assert_eq!(recovered, expected);
    assert_eq!(report.next_seq, WalSeq(401));
    assert_eq!(report.torn_tail, None);
}

/// Appends a few durable records, then a batch whose fsync fails (so it is written but never
/// synced), then crashes: acknowledged records survive, the rest is lost or cut cleanly. The
/// sync gate makes the doomed records queue up while the previous fsync is held, so they form
/// one multi-record batch.
fn crash_cycle(disk: &SimDisk, model: &mut Model, seed: u64, faults: CrashFaults) {
    let (wal, _, recovered) = open_collect(disk, small_segments()).unwrap();
    check_recovered(model, &recovered);
    let durable = seed % 7;
    let tickets: Vec<_> =
        (0..durable).map(|i| append(&wal, model, i % 3, (seed * 13 + i) as usize % 300)).collect();
    for ticket in tickets {
        model.durable.push(ticket.wait().unwrap());
    }
    disk.block_syncs();
    let pivot = append(&wal, model, 0, 8);
    disk.wait_until_sync_held();
    let doomed: Vec<_> = (0..1 + seed % 5).map(|i| append(&wal, model, i % 3, 40 + i as usize)).collect();
    disk.fail_next_syncs(1);
    disk.unblock_syncs();
    // The pivot is durable unless its batch rolled a segment, whose new header sync then failed.
    if let Ok(seq) = pivot.wait() {
        model.durable.push(seq);
    }
    for ticket in doomed {
        assert!(matches!(ticket.wait(), Err(StorageError::Poisoned { .. })));
    }
    assert!(wal.close().is_err(), "a poisoned WAL reports it on close");
    disk.crash(faults);
}

#[test]
fn acknowledged_records_survive_crashes_with_torn_writes() {
    let mut torn_tails = 0;
    for seed in 0..60 {
        let disk = SimDisk::new(seed);
        let mut model = Model::default();
        for cycle in 0..4 {
            crash_cycle(
                &disk,
                &mut model,
                seed * 10 + cycle,
                CrashFaults { torn_writes: true, flip_bit: false },
            );
        }
        let (_, report, recovered) = open_collect(&disk, small_segments()).unwrap();
        torn_tails += u32::from(report.torn_tail.is_some());
        check_recovered(&model, &recovered);
    }
    assert!(torn_tails > 0, "some seeds must leave a torn tail for recovery to cut");
}

#[test]
fn crash_without_tearing_loses_exactly_the_unacknowledged_records() {
    for seed in 0..20 {
        let disk = SimDisk::new(seed);
        let mut model = Model::default();
        crash_cycle(&disk, &mut model, seed, CrashFaults::default());
        let (_, report, recovered) = open_collect(&disk, small_segments()).unwrap();
        let seqs: Vec<WalSeq> = recovered.iter().map(|r| r.0).collect();
        assert_eq!(seqs, model.durable, "seed {seed}");
        assert_eq!(report.next_seq, model.durable.last().unwrap().next());
    }
}

/// Writes the first 30 bytes of record 2 at `at` in `segment`: a write torn by a crash.
fn write_torn_record(disk: &SimDisk, segment: &Path, at: u64) {
    let mut torn = Vec::new();
    let record = Record { seq: WalSeq(2), group: GroupId(1), kind: RecordKind::Entries, payload: &[7; 64] };
    encode_into(&mut torn, &record).unwrap();
    disk.open_write(segment).unwrap().write_all_at(&torn[..30], at).unwrap();
}

#[test]
fn recovery_continues_the_sequence_after_cutting_a_torn_tail() {
    let disk = SimDisk::new(3);
    let (wal, _, _) = open_collect(&disk, small_segments()).unwrap();
    let mut model = Model::default();
    let seq = append(&wal, &mut model, 1, 10).wait().unwrap();
    model.durable.push(seq);
    drop(wal);
    // A torn record at the tail: the first 30 bytes of a record that was being written.
    let segment = PathBuf::from(DIR).join(segment_file_name(WalSeq(1)));
    let end = disk.read(&segment).unwrap().len() as u64;
    write_torn_record(&disk, &segment, end);

    let (wal, report, recovered) = open_collect(&disk, small_segments()).unwrap();
    assert_eq!(report.torn_tail, Some(TornTail { file: segment.clone(), offset: end, bytes_discarded: 30 }));
    check_recovered(&model, &recovered);
    assert_eq!(disk.read(&segment).unwrap().len() as u64, end, "file truncated to the last good record");
    let seq = append(&wal, &mut model, 1, 10).wait().unwrap();
    model.durable.push(seq);
    assert_eq!(model.durable, vec![WalSeq(1), WalSeq(2)]);
    drop(wal);
    let (_, _, recovered) = open_collect(&disk, small_segments()).unwrap();
    check_recovered(&model, &recovered);
    assert_eq!(recovered.len(), 2);
}

/// Writes `count` durable 100-byte records with small segments and returns the segment paths.
fn durable_log(disk: &SimDisk, count: u64) -> Vec<PathBuf> {
    let (wal, _, _) = open_collect(disk, small_segments()).unwrap();
    for i in 0..count {
        wal.append_durable(GroupId(i % 2), RecordKind::Entries, payload(i, 100)).unwrap();
    }
    let paths = wal.segment_paths();
    wal.close().unwrap();
    paths
}

fn record_offset(index: u64) -> u64 {
    (SEGMENT_HEADER_BYTES + index as usize * (RECORD_HEADER_BYTES + 100)) as u64
}

#[test]
fn flipped_bit_in_the_middle_of_a_segment_is_corruption_with_file_and_offset() {
    let disk = SimDisk::new(4);
    let paths = durable_log(&disk, 100);
    assert!(paths.len() >= 3);
    // Damage the payload of the sixth record of the first segment.
    disk.flip_bit(&paths[0], record_offset(5) + 40, 3).unwrap();
    let err = open_collect(&disk, small_segments()).unwrap_err();
    match &err {
        StorageError::Corruption { file, offset, reason } => {
            assert_eq!(file, &paths[0]);
            assert_eq!(*offset, record_offset(5));
            assert!(matches!(reason, CorruptionKind::ChecksumMismatch { .. }), "{reason}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("{} at byte offset {}", paths[0].display(), record_offset(5))), "{text}");
    assert!(text.contains("remove this node's data directory and rejoin the cluster"), "{text}");
}

#[test]
fn damage_in_the_last_segment_followed_by_intact_records_is_corruption() {
    let disk = SimDisk::new(5);
    let paths = durable_log(&disk, 100);
    let last = paths.last().unwrap();
    // Damage the length field of the first record of the last segment: the records after it
    // are intact, so this cannot be a torn tail.
    disk.flip_bit(last, record_offset(0), 6).unwrap();
    let err = open_collect(&disk, small_segments()).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corruption { file, offset, .. } if file == last && *offset == record_offset(0)),
        "{err}"
    );
}

#[test]
fn damage_to_the_very_last_record_reads_as_a_torn_tail() {
    // Documented limitation: a damaged final record cannot be told apart from a torn write, so
    // it is cut. Everything before it survives.
    let disk = SimDisk::new(6);
    let paths = durable_log(&disk, 10);
    let last = paths.last().unwrap();
    let len = disk.read(last).unwrap().len() as u64;
    disk.flip_bit(last, len - 1, 0).unwrap();
    let (_, report, recovered) = open_collect(&disk, small_segments()).unwrap();
    assert_eq!(recovered.len(), 9);
    assert_eq!(report.torn_tail.unwrap().offset, len - (RECORD_HEADER_BYTES + 100) as u64);
}

#[test]
fn missing_middle_segment_is_corruption() {
    let disk = SimDisk::new(7);
    let paths = durable_log(&disk, 100);
    disk.remove_file(&paths[1]).unwrap();
    let err = open_collect(&disk, small_segments()).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corruption { file, offset: 0, reason: CorruptionKind::SequenceMismatch { .. } } if file == &paths[2]),
        "{err}"
    );
}

#[test]
fn segment_whose_creation_was_interrupted_is_removed() {
    let disk = SimDisk::new(8);
    let paths = durable_log(&disk, 3);
    assert_eq!(paths.len(), 1);
    let torn = PathBuf::from(DIR).join(segment_file_name(WalSeq(4)));
    disk.create_new(&torn).unwrap().write_all_at(&encode_header(WalSeq(4))[..10], 0).unwrap();
    let (wal, report, recovered) = open_collect(&disk, small_segments()).unwrap();
    assert_eq!(recovered.len(), 3);
    assert_eq!(report.next_seq, WalSeq(4));
    assert_eq!(report.torn_tail.unwrap().file, torn);
    assert_eq!(wal.append_durable(GroupId(0), RecordKind::HardState, vec![1]).unwrap(), WalSeq(4));
}

/// Found by the `wal_recovery` fuzz target (input in fuzz/regressions/wal_recovery): the only
/// segment, numbered 10 (its predecessors deleted after a checkpoint), with a torn header was
/// removed, so a crash before the WAL made its next segment left an empty directory, whose
/// recovery started numbering at 1.
#[test]
fn only_segment_whose_creation_was_interrupted_keeps_its_number() {
    let disk = SimDisk::new(8);
    disk.create_dir_all(Path::new(DIR)).unwrap();
    let torn = PathBuf::from(DIR).join(segment_file_name(WalSeq(10)));
    disk.create_new(&torn).unwrap().write_all_at(&encode_header(WalSeq(10))[..3], 0).unwrap();
    let first = recovery::recover(&disk, Path::new(DIR), &mut |_| Ok(())).unwrap();
    assert_eq!((first.next_seq, first.torn_tail.map(|t| t.file)), (WalSeq(10), Some(torn)));
    let second = recovery::recover(&disk, Path::new(DIR), &mut |_| Ok(())).unwrap();
    assert_eq!((second.next_seq, second.torn_tail), (WalSeq(10), None));
    let (wal, _, recovered) = open_collect(&disk, small_segments()).unwrap();
    assert!(recovered.is_empty());
    assert_eq!(wal.append_durable(GroupId(0), RecordKind::HardState, vec![1]).unwrap(), WalSeq(10));
}

#[test]
fn header_that_disagrees_with_the_name_is_corruption() {
    let disk = SimDisk::new(9);
    disk.create_dir_all(Path::new(DIR)).unwrap();
    let path = PathBuf::from(DIR).join(segment_file_name(WalSeq(5)));
    disk.create_new(&path).unwrap().write_all_at(&encode_header(WalSeq(6)), 0).unwrap();
    let err = open_collect(&disk, small_segments()).unwrap_err();
    assert!(
        matches!(err, StorageError::Corruption { reason: CorruptionKind::NameMismatch { .. }, .. }),
        "{err}"
    );
}

#[test]
fn group_commit_makes_everything_queued_during_an_fsync_durable_with_one_more_fsync() {
    let disk = SimDisk::new(10);
    let (wal, _, _) = open_collect(&disk, WalConfig::default()).unwrap();
    let before = wal.stats();
    disk.block_syncs();
    let first = wal.append(GroupId(1), RecordKind::Entries, vec![1; 128]).unwrap();
    disk.wait_until_sync_held(); // the writer is inside the fdatasync of the first batch
    let queued: Vec<DurableTicket> =
        (0..100).map(|g| wal.append(GroupId(g), RecordKind::Entries, vec![2; 128]).unwrap()).collect();
    assert!(queued.iter().all(|t| t.try_result().is_none()), "nothing is durable before its fsync");
    disk.unblock_syncs();
    assert_eq!(first.wait().unwrap(), WalSeq(1));
    let last = queued.into_iter().map(|t| t.wait().unwrap()).last();
    assert_eq!(last, Some(WalSeq(101)));
    let stats = wal.stats();
    assert_eq!(stats.batches - before.batches, 2, "one batch for the first record, one for the 100");
    assert_eq!(stats.syncs - before.syncs, 2);
    assert_eq!(stats.records_durable, 101);
}

#[test]
fn records_appended_under_a_hold_are_written_and_synced_together() {
    let disk = SimDisk::new(11);
    let (wal, _, _) = open_collect(&disk, WalConfig::default()).unwrap();
    let before = wal.stats();
    disk.block_syncs();
    // The writer is busy syncing a first record while ten more arrive under a hold: when it comes
    // back for its next batch it must find them queued and wait for the hold, not write them.
    let first = wal.append(GroupId(1), RecordKind::Entries, vec![1; 64]).unwrap();
    disk.wait_until_sync_held();
    let hold = wal.hold_writes();
    let tickets: Vec<DurableTicket> =
        (0..10).map(|g| wal.append(GroupId(g), RecordKind::Entries, vec![3; 64]).unwrap()).collect();
    disk.unblock_syncs();
    assert_eq!(first.wait().unwrap(), WalSeq(1));
    wait_for(|| wal.stats().writes_held > before.writes_held, "the writer to wait for the hold");
    assert!(tickets.iter().all(|t| t.try_result().is_none()), "the writer waits for the hold");
    assert_eq!(wal.stats().batches - before.batches, 1, "only the first record's batch is written");
    drop(hold);
    let last = tickets.into_iter().map(|t| t.wait().unwrap()).last();
    assert_eq!(last, Some(WalSeq(11)));
    let stats = wal.stats();
    assert_eq!(stats.batches - before.batches, 2, "one batch for the whole hold");
    assert_eq!(stats.syncs - before.syncs, 2);
}

/// Polls `condition` until it holds, failing the test with `what` after 10 seconds.
fn wait_for(condition: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn caller_driven() -> WalConfig {
    WalConfig { writer: WalWriter::Caller, ..WalConfig::default() }
}

#[test]
fn caller_driven_wal_writes_and_syncs_only_when_told() {
    let disk = SimDisk::new(17);
    let (wal, _, _) = open_collect(&disk, caller_driven()).unwrap();
    let first = wal.append(GroupId(1), RecordKind::Entries, vec![1; 64]).unwrap();
    assert_eq!(disk.unsynced_bytes(), 0, "nothing is written before write_queued");
    assert_eq!(wal.write_queued().unwrap(), 1);
    let second = wal.append(GroupId(1), RecordKind::Entries, vec![2; 64]).unwrap();
    assert!(disk.unsynced_bytes() > 0 && first.try_result().is_none(), "written, not durable");
    assert_eq!(wal.sync_written().unwrap(), 1);
    assert!(matches!(first.try_result(), Some(Ok(WalSeq(1)))));
    assert!(second.try_result().is_none(), "appended after the batch was taken: the next batch");
    assert_eq!(wal.durable_seq(), Some(WalSeq(1)));
    // A crash loses the record never synced; the WAL's later close fails on the dead disk.
    disk.crash(CrashFaults::default());
    drop(wal);
    let (_, _, recovered) = open_collect(&disk, caller_driven()).unwrap();
    assert_eq!(recovered, vec![(WalSeq(1), GroupId(1), vec![1; 64])]);
}

#[test]
fn blocking_wait_on_a_caller_driven_wal_makes_the_record_durable_itself() {
    let disk = SimDisk::new(18);
    let (wal, _, _) = open_collect(&disk, caller_driven()).unwrap();
    let first = wal.append(GroupId(1), RecordKind::Entries, vec![1]).unwrap();
    assert_eq!(wal.append_durable(GroupId(1), RecordKind::HardState, vec![2]).unwrap(), WalSeq(2));
    assert!(matches!(first.try_result(), Some(Ok(WalSeq(1)))));
    assert_eq!((wal.stats().batches, wal.stats().records_durable), (1, 2), "one batch for both");
    let queued = wal.append(GroupId(1), RecordKind::Entries, vec![3]).unwrap();
    wal.close().unwrap();
    assert!(matches!(queued.try_result(), Some(Ok(WalSeq(3)))), "close makes the queue durable");

    let (wal, _, _) = open_collect(&disk, caller_driven()).unwrap();
    disk.fail_next_syncs(1);
    let err = wal.append_durable(GroupId(1), RecordKind::Entries, vec![4]).unwrap_err();
    assert!(matches!(err, StorageError::Poisoned { .. }), "{err}");
    assert!(matches!(wal.write_queued(), Err(StorageError::Poisoned { .. })));
}

#[test]
fn failed_fsync_poisons_the_wal_for_good() {
    let disk = SimDisk::new(11);
    let (wal, _, _) = open_collect(&disk, WalConfig::default()).unwrap();
    wal.append_durable(GroupId(1), RecordKind::Entries, vec![1]).unwrap();
    disk.fail_next_syncs(1);
    let err = wal.append_durable(GroupId(1), RecordKind::Entries, vec![2]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("fdatasync") && text.contains("poisoned"), "{text}");
    // The disk works again, but the WAL must not trust it: the kernel may have dropped pages.
    let again = wal.append(GroupId(1), RecordKind::Entries, vec![3]).unwrap_err();
    assert!(matches!(again, StorageError::Poisoned { .. }));
    assert_eq!(wal.poisoned().unwrap().operation, "fdatasync");
    assert!(matches!(wal.close(), Err(StorageError::Poisoned { .. })));
}

#[test]
fn failed_write_poisons_the_wal() {
    let disk = SimDisk::new(12);
    let (wal, _, _) = open_collect(&disk, WalConfig::default()).unwrap();
    disk.fail_next_writes(1);
    assert!(matches!(
        wal.append_durable(GroupId(1), RecordKind::Entries, vec![1]),
        Err(StorageError::Poisoned { .. })
    ));
    assert_eq!(wal.poisoned().unwrap().operation, "write");
}

#[test]
fn oversized_payload_is_refused_without_poisoning() {
    let disk = SimDisk::new(13);
    let (wal, _, _) = open_collect(&disk, WalConfig::default()).unwrap();
    let err = wal.append(GroupId(1), RecordKind::Entries, vec![0; RECORD_PAYLOAD_BYTES_MAX + 1]).unwrap_err();
    assert!(matches!(err, StorageError::RecordTooLarge { .. }));
    assert!(wal.poisoned().is_none());
    wal.append_durable(GroupId(1), RecordKind::Entries, vec![1]).unwrap();
}

#[test]
fn invalid_config_is_refused() {
    let disk = SimDisk::new(14);
    let tiny = WalConfig { segment_bytes_max: 10, ..WalConfig::default() };
    assert!(matches!(
        open_collect(&disk, tiny),
        Err(StorageError::InvalidConfig { field: "segment_bytes_max", .. })
    ));
    let small_queue = WalConfig { queue_bytes_max: 1024, ..WalConfig::default() };
    assert!(matches!(
        open_collect(&disk, small_queue),
        Err(StorageError::InvalidConfig { field: "queue_bytes_max", .. })
    ));
}

#[test]
fn compaction_waits_for_every_group_and_keeps_the_rest_recoverable() {
    let disk = SimDisk::new(15);
    let (wal, _, _) = open_collect(&disk, small_segments()).unwrap();
    let mut seqs = BTreeMap::new();
    for i in 0..120u64 {
        let seq = wal.append_durable(GroupId(i % 2), RecordKind::Entries, payload(i, 100)).unwrap();
        seqs.insert(seq, i);
    }
    let segments_before = wal.segment_paths().len();
    assert!(segments_before >= 4);
    assert_eq!(wal.segments_after_mark(GroupId(0)), segments_before - 1, "group 0 wrote record 1");
    assert_eq!(wal.segments_after_mark(GroupId(7)), 0, "not tracked");
    assert_eq!(wal.segment_bytes_max(), small_segments().segment_bytes_max);
    wal.release(GroupId(0), WalSeq(100));
    assert!(wal.segments_after_mark(GroupId(0)) < wal.segments_after_mark(GroupId(1)));
    assert_eq!(wal.compact().unwrap(), 0, "group 1 still needs everything");
    wal.release(GroupId(1), WalSeq(90));
    let removed = wal.compact().unwrap();
    assert!(removed > 0 && removed < segments_before);
    assert_eq!(wal.compact().unwrap(), 0, "nothing more to remove");
    wal.close().unwrap();

    let (wal, report, recovered) = open_collect(&disk, small_segments()).unwrap();
    assert_eq!(report.segments_read, segments_before - removed);
    assert!(recovered.first().unwrap().0 <= WalSeq(90), "records still needed are kept");
    assert_eq!(recovered.last().unwrap().0, WalSeq(120));
    // Recovery re-tracks both groups from their first surviving record; forgetting them both
    // frees every segment but the active one.
    wal.forget_group(GroupId(0));
    wal.forget_group(GroupId(1));
    assert_eq!(wal.compact().unwrap(), 0, "no group tracked: nothing is known to be unneeded");
    wal.append_durable(GroupId(2), RecordKind::HardState, vec![9]).unwrap();
    assert!(wal.compact().unwrap() > 0);
    assert_eq!(wal.segment_paths().len(), 1);
}

#[test]
fn async_append_resolves_without_a_runtime() {
    let disk = SimDisk::new(16);
    let (wal, _, _) = open_collect(&disk, WalConfig::default()).unwrap();
    let result = block_on(async {
        let a = wal.append(GroupId(1), RecordKind::Entries, vec![1])?.await?;
        let b = wal.append(GroupId(1), RecordKind::HardState, vec![2])?.await?;
        Ok::<_, StorageError>((a, b))
    });
    assert_eq!(result.unwrap(), (WalSeq(1), WalSeq(2)));
}

#[test]
fn random_crash_and_bit_flip_never_panics_and_never_serves_damage() {
    for seed in 0..40 {
        let disk = SimDisk::new(seed);
        let mut model = Model::default();
        crash_cycle(&disk, &mut model, seed, CrashFaults { torn_writes: true, flip_bit: true });
        // A flipped bit may hit a durable record (corruption, or a cut final record) or a
        // header; whatever recovery returns must be intact and gap-free.
        if let Ok((_, _, recovered)) = open_collect(&disk, small_segments()) {
            let model_all = Model { appended: model.appended.clone(), durable: Vec::new() };
            check_recovered(&model_all, &recovered);
        }
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Writes `bytes` as the only segment and recovers it.
fn recover_segment_bytes(bytes: &[u8]) -> Result<(RecoveryReport, Vec<WalSeq>), StorageError> {
    let disk = SimDisk::new(0);
    disk.create_dir_all(Path::new(DIR)).unwrap();
    let path = PathBuf::from(DIR).join(segment_file_name(WalSeq(1)));
    disk.create_new(&path).unwrap().write_all_at(bytes, 0).unwrap();
    let mut seqs = Vec::new();
    let report = recovery::recover(&disk, Path::new(DIR), &mut |r| {
        seqs.push(r.record.seq);
        Ok(())
    })?;
    Ok((report, seqs))
}

fn encoded_log(payload_lens: &[usize]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = encode_header(WalSeq(1)).to_vec();
    let mut ends = Vec::new();
    for (i, len) in payload_lens.iter().enumerate() {
        let data = payload(i as u64, *len);
        let record = Record {
            seq: WalSeq(i as u64 + 1),
            group: GroupId(1),
            kind: RecordKind::Entries,
            payload: &data,
        };
        encode_into(&mut bytes, &record).unwrap();
        ends.push(bytes.len());
    }
    (bytes, ends)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn recovery_never_panics_on_arbitrary_bytes(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        with_header in any::<bool>(),
    ) {
        let mut bytes = if with_header { encode_header(WalSeq(1)).to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&garbage);
        let _ = recover_segment_bytes(&bytes);
    }

    #[test]
    fn a_cut_anywhere_keeps_exactly_the_whole_records_before_it(
        lens in proptest::collection::vec(0usize..80, 1..12),
        cut_fraction in 0.0f64..=1.0,
    ) {
        let (bytes, ends) = encoded_log(&lens);
        let cut = SEGMENT_HEADER_BYTES + ((bytes.len() - SEGMENT_HEADER_BYTES) as f64 * cut_fraction) as usize;
        let (report, seqs) = recover_segment_bytes(&bytes[..cut]).unwrap();
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        prop_assert_eq!(seqs.len(), whole);
        // A cut-off record is a torn tail, unless all that is left of it is zeros (which reads
        // as the unused part of a preallocated segment: nothing is lost either way).
        let last_end = ends.iter().copied().filter(|&end| end <= cut).max().unwrap_or(SEGMENT_HEADER_BYTES);
        let leftover = bytes[last_end..cut].iter().any(|&b| b != 0);
        prop_assert_eq!(report.torn_tail.is_some(), leftover);
    }

    #[test]
    fn garbage_after_the_last_record_is_cut_but_damage_before_intact_records_is_not(
        lens in proptest::collection::vec(0usize..80, 2..8),
        garbage in proptest::collection::vec(any::<u8>(), 1..100),
        damaged in any::<prop::sample::Index>(),
    ) {
        let (bytes, ends) = encoded_log(&lens);
        let mut with_garbage = bytes.clone();
        with_garbage.extend_from_slice(&garbage);
        let (_, seqs) = recover_segment_bytes(&with_garbage).unwrap();
        prop_assert_eq!(seqs.len(), lens.len());

        // Damage the checksum of a record that is not the last one.
        let victim = damaged.index(lens.len() - 1);
        let start = if victim == 0 { SEGMENT_HEADER_BYTES } else { ends[victim - 1] };
        let mut corrupt = bytes;
        corrupt[start + 4] ^= 0xff;
        let err = recover_segment_bytes(&corrupt).unwrap_err();
        let at_victim = matches!(err, StorageError::Corruption { offset, .. } if offset == start as u64);
        prop_assert!(at_victim, "{}", err);
    }
}

#[test]
fn preallocated_segments_keep_their_size_and_recover_every_record() {
    let disk = SimDisk::new(21);
    let (wal, _, _) = open_collect(&disk, small_preallocated()).unwrap();
    let mut model = Model::default();
    for i in 0..120 {
        let seq = append(&wal, &mut model, i % 3, 100).wait().unwrap();
        model.durable.push(seq);
    }
    let paths = wal.segment_paths();
    assert!(paths.len() > 2, "small segments must roll");
    for path in &paths {
        let bytes = disk.read(path).unwrap();
        assert_eq!(
            bytes.len() as u64,
            SEGMENT_BYTES_MIN,
            "{}: appends never change the size",
            path.display()
        );
        assert_eq!(
            segment::decode_header(&bytes),
            Ok(segment::parse_segment_file_name(path.file_name().unwrap().to_str().unwrap()).unwrap())
        );
        assert_eq!(*bytes.last().unwrap(), 0, "the unused end is zeros");
    }
    wal.close().unwrap();
    let (_, report, recovered) = open_collect(&disk, small_preallocated()).unwrap();
    assert_eq!(report.torn_tail, None, "a zero-filled end is not a torn write");
    check_recovered(&model, &recovered);
    assert_eq!(recovered.len(), 120);
}

#[test]
fn a_spare_left_by_a_crash_is_removed_and_made_again() {
    let disk = SimDisk::new(22);
    let (wal, _, _) = open_collect(&disk, small_preallocated()).unwrap();
    wal.append_durable(GroupId(1), RecordKind::Entries, vec![1; 10]).unwrap();
    wal.close().unwrap();
    // A half-made spare, as a crash during the zero-fill leaves it.
    let spare_path = PathBuf::from(DIR).join(spare::SPARE_FILE_NAME);
    disk.create_new(&spare_path).unwrap().write_all_at(&[0; 100], 0).unwrap();
    disk.sync_dir(Path::new(DIR)).unwrap();
    let (wal, _, recovered) = open_collect(&disk, small_preallocated()).unwrap();
    assert_eq!(recovered.len(), 1);
    for i in 0..100 {
        wal.append_durable(GroupId(1), RecordKind::Entries, payload(i, 100)).unwrap();
    }
    assert!(wal.segment_paths().len() > 1, "rolled onto spares made after the stale one went");
    wal.close().unwrap();
    let (_, _, recovered) = open_collect(&disk, small_preallocated()).unwrap();
    assert_eq!(recovered.len(), 101);
}

#[test]
fn a_torn_write_in_a_preallocated_segment_is_zeroed_not_cut() {
    let disk = SimDisk::new(23);
    let (wal, _, _) = open_collect(&disk, small_preallocated()).unwrap();
    let mut model = Model::default();
    let seq = append(&wal, &mut model, 1, 10).wait().unwrap();
    model.durable.push(seq);
    wal.close().unwrap();
    let segment = PathBuf::from(DIR).join(segment_file_name(WalSeq(1)));
    let end = (SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 10) as u64;
    write_torn_record(&disk, &segment, end);

    let (wal, report, recovered) = open_collect(&disk, small_preallocated()).unwrap();
    assert_eq!(report.torn_tail, Some(TornTail { file: segment.clone(), offset: end, bytes_discarded: 30 }));
    check_recovered(&model, &recovered);
    let bytes = disk.read(&segment).unwrap();
    assert_eq!(bytes.len() as u64, SEGMENT_BYTES_MIN, "the preallocated size is kept");
    assert!(bytes[end as usize..].iter().all(|&b| b == 0), "the torn bytes are zeroed");
    let seq = append(&wal, &mut model, 1, 10).wait().unwrap();
    model.durable.push(seq);
    wal.close().unwrap();
    let (_, report, recovered) = open_collect(&disk, small_preallocated()).unwrap();
    assert_eq!(report.torn_tail, None);
    check_recovered(&model, &recovered);
    assert_eq!(recovered.len(), 2);
}

#[test]
fn version_1_segments_are_still_read_and_appended_to() {
    let disk = SimDisk::new(24);
    disk.create_dir_all(Path::new(DIR)).unwrap();
    let (mut bytes, _) = encoded_log(&[5, 6]);
    // A version-1 header: version field 1, checksum over the first 20 bytes.
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    let path = PathBuf::from(DIR).join(segment_file_name(WalSeq(1)));
    disk.create_new(&path).unwrap().write_all_at(&bytes, 0).unwrap();
    let (wal, _, recovered) = open_collect(&disk, small_preallocated()).unwrap();
    assert_eq!(recovered.len(), 2);
    assert_eq!(wal.append_durable(GroupId(1), RecordKind::Entries, vec![9]).unwrap(), WalSeq(3));
    wal.close().unwrap();
    let (_, _, recovered) = open_collect(&disk, small_preallocated()).unwrap();
    assert_eq!(recovered.len(), 3);
}

/// Random appends, writes, syncs and crashes (tearing unsynced writes) of a caller-driven WAL
/// with small preallocated segments: spares are made inline, so a crash can land in any step
/// of making or installing one.
#[test]
fn crashes_of_a_preallocated_wal_keep_every_acknowledged_record() {
    let config = WalConfig { writer: WalWriter::Caller, ..small_preallocated() };
    let mut rolls = 0;
    for seed in 0..80u64 {
        let disk = SimDisk::new(seed);
        let mut model = Model::default();
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for _cycle in 0..4 {
            let (wal, _, recovered) = open_collect(&disk, config).unwrap();
            check_recovered(&model, &recovered);
            let mut tickets = Vec::new();
            for step in 0..next(60) {
                match next(4) {
                    0 => {
                        wal.write_queued().unwrap();
                    }
                    1 => {
                        wal.sync_written().unwrap();
                    }
                    _ => tickets.push(append(&wal, &mut model, step % 3, next(700) as usize)),
                }
            }
            wal.write_queued().unwrap();
            for ticket in tickets {
                if let Some(Ok(seq)) = ticket.try_result() {
                    model.durable.push(seq);
                }
            }
            rolls += wal.segment_paths().len();
            disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
            drop(wal);
        }
        let (_, _, recovered) = open_collect(&disk, config).unwrap();
        check_recovered(&model, &recovered);
    }
    assert!(rolls > 200, "segments must roll often: {rolls}");
}

/// Found by the `wal_recovery` fuzz target: a segment named 0 or u64::MAX (a foreign or damaged
/// file name, with a header to match) was recovered, leaving the next sequence number at 0 (the
/// WAL then underflowed computing its durable mark) or u64::MAX (numbering the next records
/// past the end of the range). Such a name is corruption, reported before anything is appended.
#[test]
fn segment_numbered_outside_the_sequence_range_is_corruption() {
    for first_seq in [0, u64::MAX] {
        let disk = SimDisk::new(first_seq);
        disk.create_dir_all(Path::new(DIR)).unwrap();
        let path = Path::new(DIR).join(segment_file_name(WalSeq(first_seq)));
        let mut file = disk.create_new(&path).unwrap();
        file.write_all_at(&encode_header(WalSeq(first_seq)), 0).unwrap();
        file.sync_data().unwrap();
        let err = open_collect(&disk, small_segments()).map(|(_, report, _)| report).unwrap_err();
        assert!(
            matches!(&err, StorageError::Corruption { file, offset: 0, reason: CorruptionKind::SequenceOutOfRange { .. } } if file == &path),
            "first sequence number {first_seq}: {err}"
        );
    }
}
