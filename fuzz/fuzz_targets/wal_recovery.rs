//! WAL recovery (`storage/wal/recovery.rs`, `segment.rs`, `record.rs`) over an in-memory disk
//! holding segment files built from the fuzzer's description: valid records, wrong sequence
//! numbers, raw garbage, zero runs, flipped bits, torn ends, torn or foreign headers.
//!
//! Asserts: nothing panics; recovery either refuses the log (twice the same way, leaving the
//! disk as it was) or returns records with consecutive sequence numbers ending just before its
//! `next_seq`; recovering again after a repair finds the same records and nothing to repair;
//! the WAL then opens on that directory, appends a record with sequence number `next_seq`, and
//! a third recovery finds the old records followed by the new one.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ppdb::storage::disk::{Disk, SimDisk};
use ppdb::storage::wal::record::{self, Record};
use ppdb::storage::wal::recovery::{recover, RecoveryReport};
use ppdb::storage::wal::segment::{encode_header, segment_file_name, SEGMENT_HEADER_BYTES};
use ppdb::storage::wal::{GroupId, RecordKind, Wal, WalConfig, WalSeq, WalWriter};
use ppdb::storage::StorageError;

const DIR: &str = "/node/wal";
const SEGMENTS_MAX: usize = 4;

#[derive(Arbitrary, Debug)]
struct Log {
    segments: Vec<Segment>,
    preallocate: bool,
}

#[derive(Arbitrary, Debug)]
struct Segment {
    /// The first sequence number, as a step from where the previous segment's records ended.
    first_seq: SeqChoice,
    header: HeaderChoice,
    parts: Vec<Part>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum SeqChoice {
    Next,
    Step(i8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum HeaderChoice {
    Valid,
    Version1,
    Raw([u8; SEGMENT_HEADER_BYTES]),
    Zeros(u8),
    Torn(u8),
}

#[derive(Arbitrary, Debug)]
enum Part {
    /// A valid record whose sequence number is `seq_step` away from the expected one.
    Record {
        seq_step: i8,
        group: u8,
        kind: u8,
        payload: Vec<u8>,
    },
    Raw(Vec<u8>),
    Zeros(u16),
    FlipBit {
        at: u16,
        bit: u8,
    },
    Truncate {
        keep: u16,
    },
}

fn step(seq: u64, choice: SeqChoice) -> u64 {
    match choice {
        SeqChoice::Next => seq,
        SeqChoice::Step(delta) => seq.wrapping_add_signed(i64::from(delta)),
        SeqChoice::Raw(raw) => raw,
    }
}

fn header_bytes(first_seq: u64, choice: &HeaderChoice) -> Vec<u8> {
    match choice {
        HeaderChoice::Valid => encode_header(WalSeq(first_seq)).to_vec(),
        HeaderChoice::Version1 => {
            let mut header = encode_header(WalSeq(first_seq));
            header[8..12].copy_from_slice(&1u32.to_le_bytes());
            let crc = crc32c::crc32c(&header[..20]);
            header[20..24].copy_from_slice(&crc.to_le_bytes());
            header.to_vec()
        }
        HeaderChoice::Raw(raw) => raw.to_vec(),
        HeaderChoice::Zeros(n) => vec![0; usize::from(*n)],
        HeaderChoice::Torn(keep) => {
            encode_header(WalSeq(first_seq))[..usize::from(*keep) % SEGMENT_HEADER_BYTES].to_vec()
        }
    }
}

/// The segment's bytes; `next_seq` is the sequence number its next valid record gets.
fn segment_bytes(segment: &Segment, first_seq: u64, next_seq: &mut u64) -> Vec<u8> {
    let mut bytes = header_bytes(first_seq, &segment.header);
    for part in &segment.parts {
        match part {
            Part::Record { seq_step, group, kind, payload } => {
                let seq = step(*next_seq, SeqChoice::Step(*seq_step));
                let kind = RecordKind::from_byte(kind % 3 + 1).expect("kinds 1..=3 exist");
                let record = Record { seq: WalSeq(seq), group: GroupId(u64::from(*group)), kind, payload };
                record::encode_into(&mut bytes, &record).expect("a small record encodes");
                *next_seq = seq.wrapping_add(1);
            }
            Part::Raw(raw) => bytes.extend_from_slice(raw),
            Part::Zeros(n) => bytes.resize(bytes.len() + usize::from(*n), 0),
            Part::FlipBit { at, bit } => {
                if !bytes.is_empty() {
                    let at = usize::from(*at) % bytes.len();
                    bytes[at] ^= 1 << (bit % 8);
                }
            }
            Part::Truncate { keep } => bytes.truncate(usize::from(*keep)),
        }
    }
    bytes
}

fn write_file(disk: &SimDisk, path: &Path, bytes: &[u8]) {
    let mut file = disk.create_new(path).expect("create");
    file.write_all_at(bytes, 0).expect("write");
    file.sync_data().expect("sync");
    disk.sync_dir(Path::new(DIR)).expect("sync dir");
}

fn lay_out(log: &Log) -> SimDisk {
    let disk = SimDisk::new(0);
    disk.create_dir_all(Path::new(DIR)).expect("mkdir");
    let mut next_seq = 1;
    for segment in log.segments.iter().take(SEGMENTS_MAX) {
        let first_seq = step(next_seq, segment.first_seq);
        let path = Path::new(DIR).join(segment_file_name(WalSeq(first_seq)));
        if disk.read(&path).is_ok() {
            continue;
        }
        next_seq = first_seq;
        let bytes = segment_bytes(segment, first_seq, &mut next_seq);
        write_file(&disk, &path, &bytes);
    }
    disk
}

type Replayed = (u64, u64, RecordKind, Vec<u8>);

fn recover_all(disk: &SimDisk) -> Result<(RecoveryReport, Vec<Replayed>), StorageError> {
    let mut records = Vec::new();
    let report = recover(disk, Path::new(DIR), &mut |r| {
        records.push((r.record.seq.0, r.record.group.0, r.record.kind, r.record.payload.to_vec()));
        Ok(())
    })?;
    Ok((report, records))
}

fn files(disk: &SimDisk) -> Vec<(String, Vec<u8>)> {
    let mut names = disk.list_dir(Path::new(DIR)).expect("list");
    names.sort();
    names.into_iter().map(|n| (n.clone(), disk.read(&Path::new(DIR).join(n)).expect("read"))).collect()
}

fn check_consecutive(report: &RecoveryReport, records: &[Replayed]) {
    for pair in records.windows(2) {
        assert_eq!(pair[0].0.checked_add(1), Some(pair[1].0), "records out of sequence");
    }
    if let Some(last) = records.last() {
        assert_eq!(last.0.checked_add(1), Some(report.next_seq.0), "next_seq does not follow the records");
    }
}

fn reopen_and_append(disk: &SimDisk, log: &Log, report: &RecoveryReport, records: &[Replayed]) {
    let config = WalConfig {
        segment_bytes_max: 4096,
        preallocate: log.preallocate,
        direct_io: false,
        writer: WalWriter::Caller,
        ..WalConfig::default()
    };
    let disk: Arc<dyn Disk> = Arc::new(disk.clone());
    let mut replayed = 0usize;
    let (wal, reopened) = Wal::open(Arc::clone(&disk), DIR, config, |_| {
        replayed += 1;
        Ok(())
    })
    .expect("the WAL opens where recovery succeeded");
    assert_eq!(replayed, records.len());
    assert_eq!(reopened.next_seq, report.next_seq);
    let seq = wal.append(GroupId(9), RecordKind::Entries, b"after".to_vec()).expect("append").wait();
    assert_eq!(seq.expect("durable"), report.next_seq, "the appended record's sequence number");
    wal.close().expect("close");
}

fuzz_target!(|log: Log| {
    let disk = lay_out(&log);
    let before = files(&disk);
    let (report, records) = match recover_all(&disk) {
        Ok(found) => found,
        Err(first) => {
            let second = recover_all(&disk).expect_err("a refused log is refused again");
            assert_eq!(first.to_string(), second.to_string());
            assert_eq!(files(&disk), before, "a refused recovery changed the disk");
            return;
        }
    };
    check_consecutive(&report, &records);
    let (again, records_again) = recover_all(&disk).expect("a repaired log recovers");
    assert_eq!(records_again, records, "a second recovery finds other records");
    assert_eq!(again.torn_tail, None, "a second recovery finds a torn tail");
    assert_eq!(again.next_seq, report.next_seq);
    reopen_and_append(&disk, &log, &report, &records);
    let (_, after) = recover_all(&disk).expect("the log recovers after an append");
    assert_eq!(after[..records.len()], records[..], "an append changed earlier records");
    assert_eq!(after.len(), records.len() + 1, "the appended record is not recovered");
    assert_eq!(after[records.len()].0, report.next_seq.0);
});
