//! The segment appender: encodes records into the active segment and rolls to a new segment at
//! the size limit. Owned by the writer thread alone (or, without one, by the caller-driven
//! writer); it knows nothing about group commit.
//!
//! Records are encoded into a buffer and written with one positioned write per [`sync`]. Before
//! a record that would push the active segment past `segment_bytes_max`, the buffer is written
//! and synced, and a new segment (named after that record's sequence number) is created and
//! synced with its directory. So a segment is complete and durable before the next one exists,
//! and a single record larger than the limit gets a segment of its own. With preallocation, new
//! segments are spares (see [`super::spare`]) and the next spare is asked for once the active
//! segment is half full.
//!
//! Where the disk offers direct files, each batch is one direct, durable write of whole blocks
//! ([`super::direct`]) instead of a buffered write and an fdatasync. If the file system refuses
//! a direct write, the appender says so once and goes on with buffered writes.
//!
//! [`sync`]: SegmentAppender::sync

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::direct::DirectTail;
use super::record::{self, Record, WalSeq};
use super::recovery::Tail;
use super::segment::{self, SegmentInfo, SegmentList, SEGMENT_HEADER_BYTES};
use super::spare::SpareMaker;
use super::WalCounters;
use crate::storage::disk::{Disk, DiskFile};
use crate::storage::error::{PoisonCause, StorageError};

/// Above this capacity the encode buffer is shrunk after a batch, so one burst of large records
/// does not pin memory forever.
const BUFFER_BYTES_RETAINED_MAX: usize = 8 * 1024 * 1024;

/// Writes records into segment files. Every error it returns is fatal for the WAL.
#[derive(Debug)]
pub(crate) struct SegmentAppender {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    segment_bytes_max: u64,
    active: Box<dyn DiskFile>,
    active_info: SegmentInfo,
    /// Bytes of the active segment already handed to the disk.
    active_written: u64,
    /// Encoded records not yet handed to the disk.
    buf: Vec<u8>,
    next_seq: WalSeq,
    segments: SegmentList,
    counters: Arc<WalCounters>,
    /// Makes the zero-filled files new segments start from; `None` without preallocation.
    spares: Option<SpareMaker>,
    /// Whether to append through direct files; turned off for good when the file system
    /// refuses a direct write.
    direct_io: bool,
    /// The active segment's direct writer, when it has one: then every write is durable.
    direct: Option<DirectTail>,
}

impl SegmentAppender {
    /// Resumes appending at `tail` (from recovery), or creates the first segment at `next_seq`.
    /// New segments are preallocated when `spares` is given; appends are direct writes when
    /// `direct_io` is set and the disk offers them.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: PathBuf,
        segment_bytes_max: u64,
        tail: Option<Tail>,
        next_seq: WalSeq,
        segments: SegmentList,
        counters: Arc<WalCounters>,
        mut spares: Option<SpareMaker>,
        direct_io: bool,
    ) -> Result<Self, StorageError> {
        let (active, active_info, active_written, before_end) = match tail {
            Some(tail) => {
                let path = &tail.segment.path;
                let file = disk.open_write(path).map_err(|e| StorageError::io("open", path, e))?;
                (file, tail.segment, tail.end_offset, tail.before_end)
            }
            None => {
                let (file, info) = new_segment(disk.as_ref(), &dir, next_seq, spares.as_mut())?;
                segments.push(info.clone());
                (file, info, SEGMENT_HEADER_BYTES as u64, segment::encode_header(next_seq).to_vec())
            }
        };
        let mut appender = SegmentAppender {
            disk,
            dir,
            segment_bytes_max,
            active,
            active_info,
            active_written,
            buf: Vec::new(),
            next_seq,
            segments,
            counters,
            spares,
            direct_io,
            direct: None,
        };
        appender.open_direct(&before_end)?;
        Ok(appender)
    }

    /// Opens the active segment for direct appends, when enabled and offered. `before_end`
    /// holds its bytes from the start of the block the records end in up to their end.
    fn open_direct(&mut self, before_end: &[u8]) -> Result<(), StorageError> {
        self.direct = None;
        if !self.direct_io {
            return Ok(());
        }
        let path = &self.active_info.path;
        let file =
            self.disk.open_direct(path).map_err(|e| StorageError::io("open for direct writes", path, e))?;
        match file {
            Some(file) => self.direct = DirectTail::new(file, self.active_written, before_end),
            None => {
                tracing::info!(dir = %self.dir.display(), "the file system has no direct I/O: WAL appends are buffered writes and fdatasync");
                self.direct_io = false;
            }
        }
        Ok(())
    }

    /// Encodes `record` (whose sequence number must be the next one) for the next [`sync`],
    /// rolling to a new segment first if it would not fit in the active one.
    ///
    /// [`sync`]: SegmentAppender::sync
    pub fn append(&mut self, record: &Record<'_>) -> Result<(), PoisonCause> {
        debug_assert_eq!(record.seq, self.next_seq, "records must arrive in sequence order");
        let len = record::encoded_len(record.payload.len()) as u64;
        let active_len = self.active_written + self.buf.len() as u64;
        let active_has_records = active_len > SEGMENT_HEADER_BYTES as u64;
        if active_has_records && active_len + len > self.segment_bytes_max {
            self.roll(record.seq)?;
        }
        record::encode_into(&mut self.buf, record).map_err(|e| self.cause("encode record", &e))?;
        self.next_seq = record.seq.next();
        Ok(())
    }

    /// Writes every encoded record and fdatasyncs the active segment (a direct write is durable
    /// already). When it returns `Ok`, every record appended so far is durable.
    pub fn sync(&mut self) -> Result<(), PoisonCause> {
        let durable = self.write()?;
        if !durable {
            let path = &self.active_info.path;
            self.active.sync_data().map_err(|e| PoisonCause::new("fdatasync", path.clone(), &e))?;
        }
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        if self.buf.capacity() > BUFFER_BYTES_RETAINED_MAX {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Hands every encoded record to the disk without syncing: they may be lost, or torn, by a
    /// crash until the next [`sync`](SegmentAppender::sync). Returns whether everything
    /// written so far is durable already (every write is, on a direct file).
    pub fn write(&mut self) -> Result<bool, PoisonCause> {
        if self.buf.is_empty() {
            return Ok(self.direct.is_some());
        }
        let path = &self.active_info.path;
        let durable = match self.direct.as_mut().map(|direct| direct.append(&self.buf)) {
            Some(Ok(())) => true,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
                tracing::warn!(path = %path.display(), error = %e, "the file system refused a direct write: WAL appends are buffered writes and fdatasync from now on");
                self.direct = None;
                self.direct_io = false;
                false
            }
            Some(Err(e)) => return Err(PoisonCause::new("direct write", path.clone(), &e)),
            None => false,
        };
        if !durable {
            self.active
                .write_all_at(&self.buf, self.active_written)
                .map_err(|e| PoisonCause::new("write", path.clone(), &e))?;
        }
        self.active_written += self.buf.len() as u64;
        self.counters.bytes_written.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.buf.clear();
        if self.active_written > self.segment_bytes_max / 2 {
            if let Some(spares) = self.spares.as_mut() {
                spares.ask();
            }
        }
        Ok(durable)
    }

    /// Completes the active segment (written and synced) and starts a new one at `first_seq`.
    fn roll(&mut self, first_seq: WalSeq) -> Result<(), PoisonCause> {
        self.sync()?;
        let (file, info) = new_segment(self.disk.as_ref(), &self.dir, first_seq, self.spares.as_mut())
            .map_err(|e| self.cause("create segment", &e))?;
        tracing::debug!(
            previous = %self.active_info.path.display(),
            next = %info.path.display(),
            "rolled WAL segment"
        );
        self.segments.push(info.clone());
        self.active = file;
        self.active_info = info;
        self.active_written = SEGMENT_HEADER_BYTES as u64;
        self.open_direct(&segment::encode_header(first_seq)).map_err(|e| self.cause("open segment", &e))
    }

    fn cause(&self, operation: &'static str, error: &StorageError) -> PoisonCause {
        match error {
            StorageError::Io { operation, path, source } => PoisonCause::new(operation, path.clone(), source),
            other => PoisonCause {
                operation,
                path: self.dir.clone(),
                kind: std::io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }
}

/// Creates the segment whose first record is `first_seq`: from a spare when preallocating,
/// otherwise as an empty file.
fn new_segment(
    disk: &dyn Disk,
    dir: &Path,
    first_seq: WalSeq,
    spares: Option<&mut SpareMaker>,
) -> Result<(Box<dyn DiskFile>, SegmentInfo), StorageError> {
    match spares {
        Some(spares) => segment::install_spare(disk, dir, first_seq, spares.take()?),
        None => segment::create_segment(disk, dir, first_seq),
    }
}
