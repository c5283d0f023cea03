//! The write-ahead log: one per node, shared by all its Raft groups, in segment files.
//!
//! This layer owns durability of opaque records: it appends them with group commit, recovers
//! them in order after a crash (repairing a torn tail, refusing corruption), and deletes segments
//! no group needs. It must not interpret payloads: Raft entries, hard states and snapshot
//! markers are encoded by the layer above and are bytes here.
//!
//! - [`record`]: the on-disk record format and its decoder.
//! - [`segment`]: segment file names, headers and the list of live segments.
//! - `appender`: writing records into the active segment, rolling at the size limit.
//! - `direct`: appending in whole blocks through a direct file, past the page cache.
//! - [`spare`]: preallocated (zero-filled) files that new segments start from.
//! - `writer`: group commit, the writer thread (or the caller-driven writer of simulations),
//!   poisoning on I/O failure.
//! - `ticket`: durability tickets, blocking or async.
//! - [`recovery`]: reading the log back, the torn-tail and corruption rules.
//! - [`retention`]: which records each group still needs.
//!
//! ```
//! use std::sync::Arc;
//! use ppdb::storage::disk::SimDisk;
//! use ppdb::storage::wal::{GroupId, RecordKind, Wal, WalConfig};
//!
//! let disk = Arc::new(SimDisk::new(7));
//! let (wal, _report) = Wal::open(disk.clone(), "/node/wal", WalConfig::default(), |_| Ok(()))?;
//! let seq = wal.append(GroupId(1), RecordKind::Entries, b"entry".to_vec())?.wait()?;
//! wal.close()?;
//!
//! let mut seen = Vec::new();
//! let (_wal, report) = Wal::open(disk, "/node/wal", WalConfig::default(), |r| {
//!     seen.push((r.record.seq, r.record.payload.to_vec()));
//!     Ok(())
//! })?;
//! assert_eq!(seen, vec![(seq, b"entry".to_vec())]);
//! assert_eq!(report.next_seq, seq.next());
//! # Ok::<(), ppdb::storage::StorageError>(())
//! ```

mod appender;
mod direct;
pub mod record;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod spare;
mod ticket;
mod writer;

#[cfg(test)]
mod fs_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use record::{
    GroupId, Record, RecordKind, WalSeq, RECORD_BYTES_MAX, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX,
};
pub use recovery::{RecoveryReport, ReplayedRecord, TornTail};
pub use ticket::DurableTicket;

use crate::storage::disk::{self, Disk};
use crate::storage::error::{PoisonCause, StorageError};
use appender::SegmentAppender;
use retention::Retention;
use segment::SegmentList;
use spare::SpareMaker;
use writer::GroupCommitter;
pub use writer::WriteHold;

/// The smallest allowed `segment_bytes_max`.
pub const SEGMENT_BYTES_MIN: u64 = 4 * 1024;
/// The largest allowed `segment_bytes_max` (recovery reads a segment into memory at once).
pub const SEGMENT_BYTES_LIMIT: u64 = 1024 * 1024 * 1024;
/// The largest allowed `queue_bytes_max`.
pub const QUEUE_BYTES_LIMIT: u64 = 4 * 1024 * 1024 * 1024;
/// The default `queue_bytes_max`: room for two of the largest records, so a round of up to one
/// largest record's worth is held together for one fdatasync ([`Wal::hold_writes`]).
pub const QUEUE_BYTES_DEFAULT: u64 = 2 * RECORD_BYTES_MAX as u64;

/// Who writes queued records to disk and syncs them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WalWriter {
    /// A writer thread with group commit (production).
    #[default]
    Thread,
    /// No thread: records stay queued until the owner calls [`Wal::write_queued`] and then
    /// [`Wal::sync_written`], or blocks in [`DurableTicket::wait`] (which does both at once).
    /// Appends never block on a full queue. For deterministic simulation on a [`SimDisk`]: under
    /// a paused tokio clock, a writer thread would make what is durable, and when, depend on the
    /// operating system instead of the seed.
    ///
    /// [`SimDisk`]: crate::storage::disk::SimDisk
    Caller,
}

/// Tuning of the WAL. [`WalConfig::default`] suits production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is closed and a new one started before a record would make it larger than this
    /// (a single larger record gets a segment of its own). Default 16 MiB.
    pub segment_bytes_max: u64,
    /// Whether new segments are preallocated: created `segment_bytes_max` long, zero-filled and
    /// synced before use, so appends never change a segment's size and each fdatasync is one
    /// data write (see [`spare`]). Costs up to two segments of disk space ahead of use.
    /// Default true.
    pub preallocate: bool,
    /// Whether appends are direct writes (`O_DIRECT | O_DSYNC`, whole blocks, durable when
    /// written) where the file system supports them, instead of buffered writes and an
    /// fdatasync: the same bytes on disk for about half the kernel's CPU per batch. Falls back
    /// to buffered writes by itself where direct I/O is refused. Default true.
    pub direct_io: bool,
    /// Appends block while this many encoded bytes wait for the writer. At least
    /// [`RECORD_BYTES_MAX`]. Default [`QUEUE_BYTES_DEFAULT`] (160 MiB).
    pub queue_bytes_max: u64,
    /// Who writes and syncs. Default [`WalWriter::Thread`].
    pub writer: WalWriter,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes_max: 16 * 1024 * 1024,
            preallocate: true,
            direct_io: true,
            queue_bytes_max: QUEUE_BYTES_DEFAULT,
            writer: WalWriter::Thread,
        }
    }
}

impl WalConfig {
    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<(), StorageError> {
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_LIMIT).contains(&self.segment_bytes_max) {
            return Err(StorageError::InvalidConfig {
                field: "segment_bytes_max",
                value: self.segment_bytes_max,
                reason: "must be between 4 KiB and 1 GiB",
            });
        }
        if !(RECORD_BYTES_MAX as u64..=QUEUE_BYTES_LIMIT).contains(&self.queue_bytes_max) {
            return Err(StorageError::InvalidConfig {
                field: "queue_bytes_max",
                value: self.queue_bytes_max,
                reason: "must be between RECORD_BYTES_MAX (80 MiB) and 4 GiB",
            });
        }
        Ok(())
    }
}

/// Counters shared by the WAL's parts.
#[derive(Debug, Default)]
pub(crate) struct WalCounters {
    records_durable: AtomicU64,
    syncs: AtomicU64,
    batches: AtomicU64,
    bytes_written: AtomicU64,
    writes_held: AtomicU64,
    /// Highest durable sequence number, 0 if none.
    durable_seq: AtomicU64,
}

/// A snapshot of the WAL's counters since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalStats {
    /// Records made durable.
    pub records_durable: u64,
    /// fdatasync calls on segments (one per batch, plus one per segment roll).
    pub syncs: u64,
    /// Batches written (group commits).
    pub batches: u64,
    /// Record bytes written.
    pub bytes_written: u64,
    /// Times the writer found records queued but waited for a [`WriteHold`] to end instead of
    /// writing them at once.
    pub writes_held: u64,
}

/// The node's write-ahead log. Share it between threads with an `Arc`; every method takes
/// `&self`.
#[derive(Debug)]
pub struct Wal {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    committer: GroupCommitter,
    segments: SegmentList,
    counters: Arc<WalCounters>,
    /// The size a segment grows to before the next one starts.
    segment_bytes_max: u64,
}

impl Wal {
    /// Opens the WAL in `dir` (created if missing): recovers it, calling `visit` for every intact
    /// record in order (see [`recovery`] for the rules), then starts the writer thread at the
    /// recovered tail (unless `config.writer` is [`WalWriter::Caller`]). Fails with
    /// [`StorageError::Corruption`] if the log is damaged.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: impl Into<PathBuf>,
        config: WalConfig,
        mut visit: impl FnMut(&ReplayedRecord<'_>) -> Result<(), StorageError>,
    ) -> Result<(Wal, RecoveryReport), StorageError> {
        config.validate()?;
        let dir = dir.into();
        disk::create_dir_durable(disk.as_ref(), &dir)
            .map_err(|e| StorageError::io("create directory", &dir, e))?;
        let mut retention = Retention::new();
        let recovered = recovery::recover_log(disk.as_ref(), &dir, &mut |replayed| {
            retention.observe(replayed.record.group, replayed.record.seq);
            visit(replayed)
        })?;
        let next_seq = recovered.report.next_seq;
        let counters = Arc::new(WalCounters::default());
        counters.durable_seq.store(next_seq.0 - 1, Ordering::Relaxed);
        let segments = SegmentList::new(recovered.segments);
        spare::remove_stale_spare(disk.as_ref(), &dir)?;
        let spares = match config.preallocate {
            true => Some(SpareMaker::new(
                Arc::clone(&disk),
                dir.clone(),
                config.segment_bytes_max,
                config.writer == WalWriter::Thread,
            )?),
            false => None,
        };
        let appender = SegmentAppender::open(
            Arc::clone(&disk),
            dir.clone(),
            config.segment_bytes_max,
            recovered.tail,
            next_seq,
            segments.clone(),
            Arc::clone(&counters),
            spares,
            config.direct_io,
        )?;
        let committer = GroupCommitter::start(
            appender,
            next_seq,
            usize::try_from(config.queue_bytes_max).unwrap_or(usize::MAX),
            config.writer,
            retention,
            Arc::clone(&counters),
            dir.clone(),
        )?;
        let segment_bytes_max = config.segment_bytes_max;
        let wal = Wal { disk, dir, committer, segments, counters, segment_bytes_max };
        Ok((wal, recovered.report))
    }

    /// Queues a record for `group` and returns at once with its ticket; the record is durable
    /// when the ticket says so ([`DurableTicket::wait`] or `.await`). Blocks only while the queue
    /// is full. Fails if the WAL is poisoned or closed or the payload is larger than
    /// [`RECORD_PAYLOAD_BYTES_MAX`].
    pub fn append(
        &self,
        group: GroupId,
        kind: RecordKind,
        payload: Vec<u8>,
    ) -> Result<DurableTicket, StorageError> {
        self.committer.append(group, kind, payload)
    }

    /// Keeps the writer from starting a batch until the returned hold is dropped, so records
    /// appended meanwhile share one write and one fdatasync (the runtime holds it while it
    /// queues one round of every group's records). Never blocks appends.
    pub fn hold_writes(&self) -> WriteHold<'_> {
        self.committer.hold()
    }

    /// Appends a record and blocks until it is durable.
    pub fn append_durable(
        &self,
        group: GroupId,
        kind: RecordKind,
        payload: Vec<u8>,
    ) -> Result<WalSeq, StorageError> {
        self.append(group, kind, payload)?.wait()
    }

    /// With [`WalWriter::Caller`]: hands every queued record to the disk, written but not synced,
    /// as the writer thread does when it takes a batch. Returns how many records it wrote; 0
    /// with a writer thread. Fails (and poisons the WAL) if the write fails.
    pub fn write_queued(&self) -> Result<usize, StorageError> {
        self.committer.write_queued()
    }

    /// With [`WalWriter::Caller`]: fdatasyncs what [`Wal::write_queued`] wrote and completes those
    /// records' tickets. Returns how many became durable; 0 with a writer thread. Fails (and
    /// poisons the WAL) if the fdatasync fails.
    pub fn sync_written(&self) -> Result<usize, StorageError> {
        self.committer.sync_written()
    }

    /// The highest durable sequence number (every record up to it is durable), or `None` if
    /// nothing was ever written.
    pub fn durable_seq(&self) -> Option<WalSeq> {
        match self.counters.durable_seq.load(Ordering::Acquire) {
            0 => None,
            seq => Some(WalSeq(seq)),
        }
    }

    /// Says that `group` no longer needs any record below `needed_from`, typically because a
    /// snapshot now covers them. Anything the group still needs from older records (its latest
    /// hard state, say) must have been appended again at or after `needed_from` first. Marks only
    /// move forward. Call [`Wal::compact`] to delete what became unneeded.
    pub fn release(&self, group: GroupId, needed_from: WalSeq) {
        self.committer.with_retention(|r| r.release(group, needed_from));
    }

    /// How many live segments start after `group`'s low-water mark: the segments kept only
    /// because of this group when its mark is the lowest. 0 when the group is not tracked.
    pub fn segments_after_mark(&self, group: GroupId) -> usize {
        let Some(mark) = self.committer.with_retention(|r| r.group_needed_from(group)) else {
            return 0;
        };
        self.segments.snapshot().iter().filter(|segment| segment.first_seq > mark).count()
    }

    /// The size a segment grows to before the next one starts (`WalConfig::segment_bytes_max`).
    pub fn segment_bytes_max(&self) -> u64 {
        self.segment_bytes_max
    }

    /// Says that `group` left this node and needs none of its records.
    pub fn forget_group(&self, group: GroupId) {
        self.committer.with_retention(|r| r.forget(group));
    }

    /// Deletes every segment whose records no group needs any more (never the active segment),
    /// and syncs the directory. Returns how many segments were deleted. Runs on the caller's
    /// thread; appends continue meanwhile.
    pub fn compact(&self) -> Result<usize, StorageError> {
        let Some(needed_from) = self.committer.with_retention(|r| r.needed_from()) else {
            return Ok(0);
        };
        let removable = self.segments.take_before(needed_from);
        for segment in &removable {
            self.disk
                .remove_file(&segment.path)
                .map_err(|e| StorageError::io("remove segment", &segment.path, e))?;
            tracing::debug!(path = %segment.path.display(), "deleted WAL segment");
        }
        if !removable.is_empty() {
            self.disk.sync_dir(&self.dir).map_err(|e| StorageError::io("fsync directory", &self.dir, e))?;
        }
        Ok(removable.len())
    }

    /// The counters since the WAL was opened.
    pub fn stats(&self) -> WalStats {
        let c = &self.counters;
        WalStats {
            records_durable: c.records_durable.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            writes_held: c.writes_held.load(Ordering::Relaxed),
        }
    }

    /// Why the WAL is poisoned, if it is. A poisoned WAL accepts no appends; restart the node.
    pub fn poisoned(&self) -> Option<PoisonCause> {
        self.committer.poisoned()
    }

    /// The segment files currently live, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.snapshot().into_iter().map(|s| s.path).collect()
    }

    /// The WAL's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops accepting appends, makes every queued record durable, and stops the writer thread.
    /// Dropping the WAL does the same but can only log an error.
    pub fn close(self) -> Result<(), StorageError> {
        self.committer.close()
    }
}
