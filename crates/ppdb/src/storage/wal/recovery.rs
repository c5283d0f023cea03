//! Recovery: read every segment in order, hand each intact record to the caller, repair a torn
//! tail, and refuse to go on past corruption.
//!
//! Rules, in the order they are checked:
//! 1. Segments are read oldest first. Each must have a valid header whose first sequence number
//!    matches its file name, and (except the oldest, whose predecessors may have been deleted)
//!    must start exactly where the previous one ended. Records must carry consecutive sequence
//!    numbers.
//! 2. A segment's records end at the end of the file or where only zero bytes are left (the
//!    unused part of a preallocated segment).
//! 3. A record that cannot be decoded (incomplete, bad checksum, impossible length, unknown
//!    kind) is a *torn tail* only if it is in the **last** segment and **no intact record
//!    follows it** anywhere in that segment. Such a tail was never acknowledged (a write is
//!    acknowledged only after its fdatasync, and only the last write can be unsynced), so its
//!    bytes are discarded (overwritten with zeros, or cut off when they reach the end of the
//!    file) and synced, and recovery goes on.
//! 4. A last segment whose header is incomplete or all zeros was being created when the node
//!    stopped; it holds no record and is removed. If it is the only segment, its name is all
//!    that says where numbering resumes, so it is kept: its header is written again, and it
//!    is an empty segment (else a second recovery would start numbering at 1).
//! 5. Anything else is corruption: [`StorageError::Corruption`] names the file and byte offset,
//!    and the node must not start (remove its data directory and rejoin the cluster).
//!
//! Rule 3 errs on the side of safety: if the disk persisted the pages of an unsynced multi-record
//! write out of order, an intact record may follow a damaged one; recovery then reports
//! corruption even though no acknowledged data was lost. The alternative, truncating there, could
//! silently drop acknowledged records after a genuine bit flip.

use std::path::{Path, PathBuf};

use super::record::{self, DecodeError, Record, WalSeq, RECORD_HEADER_BYTES};
use super::segment::{self, SegmentInfo, SEGMENT_HEADER_BYTES};
use crate::storage::disk::{Disk, BLOCK_BYTES};
use crate::storage::error::{CorruptionKind, StorageError};

/// The largest first sequence number of a segment. A WAL appending a billion records a second
/// takes 146 years to get there, and a segment holds far fewer than `u64::MAX - FIRST_SEQ_MAX`
/// records, so sequence numbers read back can always be incremented.
const FIRST_SEQ_MAX: u64 = 1 << 62;

/// A record handed to the recovery visitor, with where it was found.
#[derive(Debug, Clone, Copy)]
pub struct ReplayedRecord<'a> {
    /// The record.
    pub record: Record<'a>,
    /// The segment file it is in.
    pub file: &'a Path,
    /// Its byte offset in that file.
    pub offset: u64,
}

impl ReplayedRecord<'_> {
    /// A corruption error pointing at this record, for a layer above the WAL that cannot decode
    /// the payload.
    pub fn corruption(&self, reason: CorruptionKind) -> StorageError {
        StorageError::corruption(self.file, self.offset, reason)
    }
}

/// A torn tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file that was truncated (or removed, if its header was torn).
    pub file: PathBuf,
    /// Where the torn write started: the end of the last intact record.
    pub offset: u64,
    /// How many non-zero bytes were discarded (zeroed, or cut off the end of the file).
    pub bytes_discarded: u64,
}

/// What recovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments_read: usize,
    /// Records handed to the visitor.
    pub records_replayed: u64,
    /// The sequence number the next appended record will get.
    pub next_seq: WalSeq,
    /// The torn tail cut off, if there was one.
    pub torn_tail: Option<TornTail>,
}

/// Where appending resumes: the last segment and the end of its last intact record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    pub segment: SegmentInfo,
    pub end_offset: u64,
    /// The segment's bytes from the start of the [`BLOCK_BYTES`] block holding `end_offset` up
    /// to it, for appending in whole blocks ([`super::direct`]).
    pub before_end: Vec<u8>,
}

/// Everything the WAL needs to resume after recovery.
#[derive(Debug)]
pub(crate) struct RecoveredLog {
    pub report: RecoveryReport,
    pub segments: Vec<SegmentInfo>,
    pub tail: Option<Tail>,
}

/// The visitor recovery calls for each intact record, oldest first.
pub type Visitor<'v> = dyn FnMut(&ReplayedRecord<'_>) -> Result<(), StorageError> + 'v;

/// Recovers the WAL in `dir` (see the module doc for the rules), calling `visit` for every intact
/// record in order. Repairs a torn tail on disk. An error from `visit` stops recovery.
pub fn recover(disk: &dyn Disk, dir: &Path, visit: &mut Visitor<'_>) -> Result<RecoveryReport, StorageError> {
    recover_log(disk, dir, visit).map(|log| log.report)
}

pub(crate) fn recover_log(
    disk: &dyn Disk,
    dir: &Path,
    visit: &mut Visitor<'_>,
) -> Result<RecoveredLog, StorageError> {
    let listed = segment::list_segments(disk, dir)?;
    let mut report =
        RecoveryReport { segments_read: 0, records_replayed: 0, next_seq: WalSeq::FIRST, torn_tail: None };
    let mut segments = Vec::with_capacity(listed.len());
    let mut tail = None;
    for (i, seg) in listed.iter().enumerate() {
        // Every segment but the oldest must start where the previous one ended.
        if i > 0 && seg.first_seq != report.next_seq {
            let reason =
                CorruptionKind::SequenceMismatch { expected: report.next_seq.0, found: seg.first_seq.0 };
            return Err(StorageError::corruption(&seg.path, 0, reason));
        }
        let is_last = i + 1 == listed.len();
        let only = i == 0 && is_last;
        match recover_segment(disk, dir, seg, (is_last, only), visit, &mut report)? {
            Some(recovered) => {
                segments.push(seg.clone());
                tail = Some(recovered);
            }
            None => break,
        }
    }
    tracing::info!(
        dir = %dir.display(),
        segments = report.segments_read,
        records = report.records_replayed,
        next_seq = report.next_seq.0,
        torn_tail = report.torn_tail.is_some(),
        "WAL recovered"
    );
    Ok(RecoveredLog { report, segments, tail })
}

/// Recovers one segment: visits its intact records and applies the torn-tail rules, updating
/// `report`. Returns where its intact records end, or `None` if it was a torn (interrupted)
/// last segment and was removed.
fn recover_segment(
    disk: &dyn Disk,
    dir: &Path,
    seg: &SegmentInfo,
    (is_last, only): (bool, bool),
    visit: &mut Visitor<'_>,
    report: &mut RecoveryReport,
) -> Result<Option<Tail>, StorageError> {
    // The name decides `next_seq` even when the header turns out torn, so it is checked first.
    if !(WalSeq::FIRST.0..=FIRST_SEQ_MAX).contains(&seg.first_seq.0) {
        let reason = CorruptionKind::SequenceOutOfRange { found: seg.first_seq.0, max: FIRST_SEQ_MAX };
        return Err(StorageError::corruption(&seg.path, 0, reason));
    }
    let mut bytes = disk.read(&seg.path).map_err(|e| StorageError::io("read", &seg.path, e))?;
    report.segments_read += 1;
    let header_seq = match segment::decode_header(&bytes) {
        Ok(header_seq) => header_seq,
        Err(_) if only && header_is_torn(&bytes) => {
            report.torn_tail = Some(rewrite_torn_header(disk, seg, bytes.len())?);
            bytes = segment::encode_header(seg.first_seq).to_vec();
            seg.first_seq
        }
        Err(_) if is_last && header_is_torn(&bytes) => {
            remove_torn_segment(disk, dir, seg)?;
            report.torn_tail =
                Some(TornTail { file: seg.path.clone(), offset: 0, bytes_discarded: bytes.len() as u64 });
            report.next_seq = seg.first_seq;
            return Ok(None);
        }
        Err(error) => return Err(StorageError::corruption(&seg.path, 0, error.into_corruption())),
    };
    if header_seq != seg.first_seq {
        let reason = CorruptionKind::NameMismatch {
            field: "first sequence number",
            in_name: seg.first_seq.0,
            in_header: header_seq.0,
        };
        return Err(StorageError::corruption(&seg.path, 0, reason));
    }
    let scan = scan_records(&bytes, seg, visit)?;
    report.records_replayed += scan.records;
    report.next_seq = scan.next_seq;
    if let Some(error) = scan.damage {
        let offset = scan.end_offset;
        if !is_last || find_intact_record_after(&bytes, offset, scan.next_seq).is_some() {
            return Err(StorageError::corruption(&seg.path, offset as u64, error.into_corruption()));
        }
        report.torn_tail = Some(truncate_torn_tail(disk, seg, offset, &bytes)?);
    }
    let end = scan.end_offset;
    let before_end = bytes.get(end - end % BLOCK_BYTES..end).unwrap_or_default().to_vec();
    Ok(Some(Tail { segment: seg.clone(), end_offset: end as u64, before_end }))
}

/// The outcome of scanning one segment's records.
struct Scan {
    /// End of the last intact record (where damage starts, if any).
    end_offset: usize,
    /// Sequence number the next record must carry.
    next_seq: WalSeq,
    /// Intact records visited.
    records: u64,
    /// Why scanning stopped before the end of the file, if it did.
    damage: Option<DecodeError>,
}

fn scan_records(bytes: &[u8], seg: &SegmentInfo, visit: &mut Visitor<'_>) -> Result<Scan, StorageError> {
    let mut scan =
        Scan { end_offset: SEGMENT_HEADER_BYTES, next_seq: seg.first_seq, records: 0, damage: None };
    while scan.end_offset < bytes.len() {
        let offset = scan.end_offset;
        match record::decode(&bytes[offset..]) {
            Ok((record, len)) => {
                if record.seq != scan.next_seq {
                    let reason =
                        CorruptionKind::SequenceMismatch { expected: scan.next_seq.0, found: record.seq.0 };
                    return Err(StorageError::corruption(&seg.path, offset as u64, reason));
                }
                visit(&ReplayedRecord { record, file: &seg.path, offset: offset as u64 })?;
                scan.end_offset += len;
                scan.next_seq = scan.next_seq.next();
                scan.records += 1;
            }
            Err(_) if bytes[offset..].iter().all(|&b| b == 0) => break,
            Err(error) => {
                scan.damage = Some(error);
                break;
            }
        }
    }
    Ok(scan)
}

/// The offset of the first intact record after the damaged one at `damaged_at`, if any. Only
/// records that could belong there (sequence number at least `expected`, and not more than one
/// per header's worth of bytes beyond it) are considered, so random bytes almost never pass the
/// cheap pre-filter and the search is linear in practice.
pub(crate) fn find_intact_record_after(bytes: &[u8], damaged_at: usize, expected: WalSeq) -> Option<usize> {
    let start = damaged_at.checked_add(1)?;
    (start..bytes.len()).find(|&at| {
        let Some(seq) = record::peek_seq(&bytes[at..]) else { return false };
        let seq_max = expected.0.saturating_add(((at - damaged_at) / RECORD_HEADER_BYTES) as u64 + 1);
        (expected.0..=seq_max).contains(&seq) && record::decode(&bytes[at..]).is_ok()
    })
}

/// A segment header that was being written when the node stopped: incomplete, or all zeros
/// (a file extended but never filled). Anything else that fails to decode is corruption.
fn header_is_torn(bytes: &[u8]) -> bool {
    bytes.len() < SEGMENT_HEADER_BYTES || bytes.iter().all(|&b| b == 0)
}

fn remove_torn_segment(disk: &dyn Disk, dir: &Path, seg: &SegmentInfo) -> Result<(), StorageError> {
    tracing::warn!(file = %seg.path.display(), "removing a WAL segment whose creation was interrupted");
    disk.remove_file(&seg.path).map_err(|e| StorageError::io("remove torn segment", &seg.path, e))?;
    disk.sync_dir(dir).map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// Writes again the header of the only segment, whose creation was interrupted, and cuts
/// the file to it: an empty segment that keeps the number where the log resumes.
fn rewrite_torn_header(disk: &dyn Disk, seg: &SegmentInfo, len: usize) -> Result<TornTail, StorageError> {
    let path = &seg.path;
    tracing::warn!(file = %path.display(), "rewriting the header of a WAL segment whose creation was interrupted");
    let mut file = disk.open_write(path).map_err(|e| StorageError::io("open", path, e))?;
    file.set_len(0).map_err(|e| StorageError::io("truncate", path, e))?;
    file.write_all_at(&segment::encode_header(seg.first_seq), 0)
        .map_err(|e| StorageError::io("write segment header", path, e))?;
    file.sync_data().map_err(|e| StorageError::io("fdatasync", path, e))?;
    Ok(TornTail { file: path.clone(), offset: 0, bytes_discarded: len as u64 })
}

fn truncate_torn_tail(
    disk: &dyn Disk,
    seg: &SegmentInfo,
    offset: usize,
    bytes: &[u8],
) -> Result<TornTail, StorageError> {
    let path = &seg.path;
    // Past the last non-zero byte the file is preallocated space, already as it should be.
    let garbage_end = bytes.iter().rposition(|&b| b != 0).map_or(offset, |last| last + 1).max(offset);
    let discarded = garbage_end - offset;
    tracing::warn!(
        file = %path.display(),
        offset,
        bytes_discarded = discarded,
        "discarding a torn write at the tail of the WAL (it was never acknowledged)"
    );
    let mut file = disk.open_write(path).map_err(|e| StorageError::io("open", path, e))?;
    if garbage_end >= bytes.len() {
        file.set_len(offset as u64).map_err(|e| StorageError::io("truncate", path, e))?;
    } else {
        file.write_all_at(&vec![0; discarded], offset as u64)
            .map_err(|e| StorageError::io("zero torn write", path, e))?;
    }
    file.sync_data().map_err(|e| StorageError::io("fdatasync", path, e))?;
    Ok(TornTail { file: path.clone(), offset: offset as u64, bytes_discarded: discarded as u64 })
}
