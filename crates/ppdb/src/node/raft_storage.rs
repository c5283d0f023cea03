//! The durable state of every Raft group on a node, kept in the node's shared write-ahead log
//! and its snapshot files.
//!
//! What each WAL record holds (payloads encoded by [`crate::codec`]):
//! - `Entries`: a contiguous run of log entries. On replay, a run starting at index `i`
//!   replaces whatever the group had from `i` on, exactly as the Ready contract says. A
//!   Ready's entries larger than one record are written as several consecutive runs, each of
//!   whole entries (`record_runs`): one entry always fits a record (`crate::limits`).
//! - `HardState`: term, vote and commit index; the last one wins.
//! - `SnapshotMarker`: the metadata of a snapshot whose file was saved before the marker. A
//!   crash can keep a received snapshot's file and lose its marker; the node then restarts
//!   from the file and logs on after it, so a run of entries that resumes after a gap is
//!   accepted when the latest snapshot file covers the gap (and is corruption otherwise).
//! - `Tombstone`: the group's copy on this node was deleted (its replica moved to other nodes,
//!   [`RaftStorage::drop_group`]): the group's records before it are void, and so is every
//!   snapshot file up to the index it names unless a later marker names that file again. It
//!   holds the hard state the group restarts from (term and vote kept, so a vote is never
//!   cast twice in a term, commit 0) and the last index the deleted copy had.
//!
//! A snapshot file holds the encoded snapshot metadata and the state machine's image
//! (`storage/snapshot_file.rs`). The image never sits in memory whole: the Raft core's
//! snapshot data is a [`SnapshotRef`] naming the file, the state machine is serialized into the
//! file ([`RaftStorage::save_snapshot_file`]) and restored from it by streaming
//! ([`RaftStorage::restore`]), and the transport streams it to followers and writes a received
//! one straight into a file of the follower's store (`node/snapshot_transfer.rs`). A received
//! snapshot's file is complete and durable before the Raft core sees it, so persisting it is
//! only its marker. Version 1 files, which held both parts in one blob, are rewritten in the
//! current format when found at start-up.
//!
//! A *checkpoint* (after a snapshot) appends the marker and the current hard state, then tells
//! the WAL the group needs nothing older than the record holding the first entry after the
//! snapshot (or than the marker, when no entry follows it), so segments behind every group's
//! checkpoint can be deleted. The entries after the snapshot stay where they were written: on
//! replay they come before the marker, which drops what the snapshot covers and keeps them.
//! (Entries that were never written to the WAL, a new group's first entries, are appended
//! after the marker instead.)

use crate::codec::{self, Decoder, Encoder};
use crate::limits::WAL_RECORD_ENVELOPE_BYTES_MAX;
use crate::storage::disk::Disk;
use crate::storage::error::{CorruptionKind, StorageError};
use crate::storage::snapshot_file::{SnapshotFile, SnapshotStore, StoredSnapshot};
use crate::storage::wal::{
    DurableTicket, GroupId, RecordKind, ReplayedRecord, Wal, WalConfig, WalSeq, WriteHold,
    RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX,
};
use ppdb_raft::{Entry, HardState, LogIndex, Ready, RecoveredState, Snapshot, SnapshotMeta};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

// Around one entry, a record holds its header, the entries' count and the entry's header: within
// the room the limits keep, so one largest entry always fits a record.
const _: () = assert!(
    RECORD_HEADER_BYTES + codec::ENTRIES_COUNT_BYTES + codec::ENTRY_HEADER_BYTES_MAX
        <= WAL_RECORD_ENVELOPE_BYTES_MAX
);

/// Cuts `entries` into consecutive runs whose encoding fits a record payload of
/// `payload_bytes_max` each; a run holds at least one entry, so an entry larger than that is a
/// run of its own (and refused by the WAL).
fn record_runs(entries: &[Entry], payload_bytes_max: usize) -> Vec<&[Entry]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = codec::ENTRIES_COUNT_BYTES;
    for (i, entry) in entries.iter().enumerate() {
        let size = codec::encoded_entry_bytes(entry);
        if i > start && bytes + size > payload_bytes_max {
            runs.push(&entries[start..i]);
            start = i;
            bytes = codec::ENTRIES_COUNT_BYTES;
        }
        bytes += size;
    }
    if start < entries.len() {
        runs.push(&entries[start..]);
    }
    runs
}

/// What the Raft core holds as a snapshot's data: the name of the snapshot file in the node's
/// store and its image's size and checksum (which identify the state), never the image. Empty data (a bootstrap snapshot not yet
/// saved) is the empty initial state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRef {
    /// The group.
    pub group: GroupId,
    /// The last log index the snapshot covers.
    pub last_index: u64,
    /// Length of the state machine's image.
    pub image_bytes: u64,
    /// crc32c of the image.
    pub image_crc32c: u32,
}

const SNAPSHOT_REF_MAGIC: [u8; 4] = *b"PSRF";
const SNAPSHOT_REF_BYTES: usize = 32;

impl SnapshotRef {
    /// The reference to a saved file.
    pub fn of(file: &SnapshotFile) -> SnapshotRef {
        SnapshotRef {
            group: file.group,
            last_index: file.last_index,
            image_bytes: file.image_bytes,
            image_crc32c: file.image_crc32c,
        }
    }

    /// The bytes the Raft core holds.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SNAPSHOT_REF_BYTES);
        out.extend_from_slice(&SNAPSHOT_REF_MAGIC);
        for n in [self.group.0, self.last_index, self.image_bytes] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.image_crc32c.to_le_bytes());
        out
    }

    /// Reads the bytes the Raft core holds; `None` if they are not a reference.
    pub fn decode(data: &[u8]) -> Option<SnapshotRef> {
        if data.len() != SNAPSHOT_REF_BYTES || data[..4] != SNAPSHOT_REF_MAGIC {
            return None;
        }
        let n = |at: usize| data.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let crc = data.get(28..32).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)?;
        Some(SnapshotRef {
            group: GroupId(n(4)?),
            last_index: n(12)?,
            image_bytes: n(20)?,
            image_crc32c: crc,
        })
    }

    /// The snapshot the Raft core holds for a saved file.
    pub fn snapshot(file: &SnapshotFile, meta: SnapshotMeta) -> Snapshot {
        Snapshot { meta, data: Arc::new(SnapshotRef::of(file).encode()) }
    }
}

/// Size of the state machine image behind a snapshot the Raft core holds.
pub fn image_bytes(snapshot: &Snapshot) -> u64 {
    SnapshotRef::decode(&snapshot.data).map_or(snapshot.data.len() as u64, |r| r.image_bytes)
}

/// The metadata bytes stored in a snapshot file.
pub fn encode_meta(meta: &SnapshotMeta) -> Vec<u8> {
    let mut e = Encoder::default();
    codec::encode_snapshot_meta(&mut e, meta);
    e.finish()
}

/// Reads the metadata stored in a snapshot file.
pub fn decode_meta(file: &SnapshotFile) -> Result<SnapshotMeta, StorageError> {
    let mut d = Decoder::new(&file.meta, "snapshot metadata");
    let meta = codec::decode_snapshot_meta(&mut d).and_then(|meta| d.finish().map(|()| meta));
    meta.map_err(|e| StorageError::Corruption {
        file: file.path.clone(),
        offset: 0,
        reason: CorruptionKind::BadPayload { reason: e.to_string() },
    })
}

/// Durable Raft state of all groups on one node.
pub struct RaftStorage {
    wal: Wal,
    snapshots: SnapshotStore,
    /// Each group's latest hard state, and whether it still waits to be appended.
    hard_states: Mutex<BTreeMap<GroupId, (HardState, bool)>>,
    /// Where each group's entries are in the WAL ([`EntryRecords`]).
    entry_records: Mutex<BTreeMap<GroupId, EntryRecords>>,
}

/// The WAL records holding a group's log entries: the first index of each `Entries` record
/// still needed → the record's sequence number. A record starting at index `i` replaces
/// everything from `i` on, so it replaces the later records here too, and the record holding
/// index `j` is the one with the greatest first index at or below `j`.
#[derive(Debug, Default)]
struct EntryRecords(BTreeMap<u64, WalSeq>);

impl EntryRecords {
    /// Notes a record of entries from `first` on, written at `seq`.
    fn wrote(&mut self, first: u64, seq: WalSeq) {
        self.0.split_off(&first);
        self.0.insert(first, seq);
    }

    /// The record holding entry `index` (its first index and sequence number), if noted.
    fn holding(&self, index: u64) -> Option<(u64, WalSeq)> {
        self.0.range(..=index).next_back().map(|(&first, &seq)| (first, seq))
    }

    /// Forgets the records that start before `first`: the WAL no longer keeps them.
    fn drop_before(&mut self, first: u64) {
        self.0 = self.0.split_off(&first);
    }
}

/// What replaying the WAL yields for one group, before its snapshot file is read.
#[derive(Debug, Default)]
struct GroupReplay {
    hard_state: HardState,
    entries: Vec<Entry>,
    /// Entries resumed after a gap: the index a snapshot file must cover to fill it, and the
    /// error to report if none does. A snapshot received from the leader is saved before its
    /// marker is appended, so a crash can keep the file and lose the marker; the node then
    /// restarts from the file and logs the entries after it.
    gap: Option<(u64, StorageError)>,
    /// The records the entries came from.
    records: EntryRecords,
    /// The last index of a deleted copy (a `Tombstone`): snapshot files up to it are void.
    void_through: Option<u64>,
    /// The newest snapshot marker after the last tombstone: its file is valid again.
    marked_after_void: Option<u64>,
}

impl GroupReplay {
    fn apply(&mut self, record: &ReplayedRecord<'_>) -> Result<(), StorageError> {
        let bad =
            |e: codec::DecodeError| record.corruption(CorruptionKind::BadPayload { reason: e.to_string() });
        let mut d = Decoder::new(record.record.payload, "raft record");
        match record.record.kind {
            RecordKind::Entries => {
                let entries = codec::decode_entries(&mut d).map_err(bad)?;
                let Some(first) = entries.first() else { return Ok(()) };
                self.records.wrote(first.index.0, record.record.seq);
                let keep = self.entries.partition_point(|e| e.index < first.index);
                self.entries.truncate(keep);
                if self.entries.last().is_some_and(|last| last.index.next() != first.index) {
                    let error = record.corruption(CorruptionKind::BadPayload {
                        reason: format!("entries from {} leave a gap in the log", first.index),
                    });
                    self.entries.clear();
                    self.gap = Some((first.index.0 - 1, error));
                }
                self.entries.extend(entries);
            }
            RecordKind::HardState => self.hard_state = codec::decode_hard_state(&mut d).map_err(bad)?,
            RecordKind::SnapshotMarker => {
                let meta = codec::decode_snapshot_meta(&mut d).map_err(bad)?;
                self.drop_through(meta.index.0);
                if self.void_through.is_some() {
                    self.marked_after_void = Some(meta.index.0);
                }
            }
            RecordKind::Tombstone => {
                let hard_state = codec::decode_hard_state(&mut d).map_err(bad)?;
                let last_index = d.u64().map_err(bad)?;
                d.finish().map_err(bad)?;
                *self = GroupReplay {
                    hard_state,
                    void_through: Some(last_index.max(self.void_through.unwrap_or(0))),
                    ..GroupReplay::default()
                };
            }
        }
        Ok(())
    }

    /// Whether a snapshot file at `index` belongs to a copy a tombstone deleted.
    fn voids(&self, index: u64) -> bool {
        self.void_through.is_some_and(|through| index <= through) && self.marked_after_void != Some(index)
    }

    /// Forgets entries a snapshot covers; if the rest does not follow it, forgets them too
    /// (they belonged to a log the snapshot replaced).
    fn drop_through(&mut self, index: u64) {
        if self.gap.as_ref().is_some_and(|(through, _)| *through <= index) {
            self.gap = None;
        }
        self.entries.retain(|e| e.index.0 > index);
        if self.entries.first().is_some_and(|e| e.index.0 != index + 1) {
            self.entries.clear();
        }
    }
}

/// Splits a version 1 snapshot file's data (metadata, then the image as length-prefixed
/// bytes).
fn decode_version_1(bytes: &[u8]) -> Result<(SnapshotMeta, &[u8]), codec::DecodeError> {
    let mut d = Decoder::new(bytes, "snapshot file");
    let meta = codec::decode_snapshot_meta(&mut d)?;
    let image = d.bytes(usize::MAX)?;
    d.finish()?;
    Ok((meta, image))
}

impl RaftStorage {
    /// Opens (or creates) the storage under `dir` and recovers every group found in it.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        config: WalConfig,
    ) -> Result<(RaftStorage, BTreeMap<GroupId, RecoveredState>), StorageError> {
        let snapshots = SnapshotStore::open(Arc::clone(&disk), dir.join("snapshots"))?;
        let mut replays: BTreeMap<GroupId, GroupReplay> = BTreeMap::new();
        let (wal, report) = Wal::open(disk, dir.join("wal"), config, |record| {
            replays.entry(record.record.group).or_default().apply(record)
        })?;
        tracing::info!(groups = replays.len(), next_seq = report.next_seq.0, "recovered write-ahead log");
        let mut recovered = BTreeMap::new();
        let mut entry_records = BTreeMap::new();
        for (group, mut replay) in replays {
            entry_records.insert(group, std::mem::take(&mut replay.records));
            let snapshot = match snapshots.load_latest(group)? {
                Some(stored) if replay.voids(stored.last_index()) => {
                    // The copy was deleted after the tombstone was written, or was about to be.
                    snapshots.remove_older_than(group, stored.last_index().saturating_add(1))?;
                    None
                }
                Some(stored) => {
                    let snapshot = current_snapshot(&snapshots, group, stored)?;
                    replay.drop_through(snapshot.meta.index.0);
                    Some(snapshot)
                }
                None => None,
            };
            if let Some((_, gap)) = replay.gap {
                return Err(gap);
            }
            let state = RecoveredState { hard_state: replay.hard_state, snapshot, entries: replay.entries };
            recovered.insert(group, state);
        }
        let hard_states =
            Mutex::new(recovered.iter().map(|(&g, state)| (g, (state.hard_state, false))).collect());
        let entry_records = Mutex::new(entry_records);
        Ok((RaftStorage { wal, snapshots, hard_states, entry_records }, recovered))
    }

    /// Step 1 of the Ready contract for `group`: queues its snapshot, entries and hard state.
    /// A received snapshot's file is saved (durably) before this returns. The returned ticket
    /// completes when everything that must be durable before the Ready's responses is; with
    /// group commit, awaiting the last ticket of a round covers every group's records.
    ///
    /// Call it for every group of a round under one [`RaftStorage::hold_writes`], so the round
    /// is synced at once.
    ///
    /// A hard state that differs from the last one only in its commit index is not written on
    /// its own (as etcd does not fsync for it): it rides along with the group's next record.
    /// The commit index can always be relearned from the leader, and recovering a lower one is
    /// safe. Term and vote changes are written and waited for.
    pub fn persist(&self, group: GroupId, ready: &Ready) -> Result<Option<DurableTicket>, StorageError> {
        let _hold = self.wal.hold_writes();
        let mut ticket = None;
        if let Some(snapshot) = &ready.snapshot {
            // The snapshot replaces the log: no earlier record holds an entry after it.
            self.entry_records(group, |records| *records = EntryRecords::default());
            ticket = Some(self.save_snapshot(group, snapshot)?);
        }
        if let Some(written) = self.append_entries(group, &ready.entries)? {
            ticket = Some(written);
        }
        let mut states = self.hard_states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let latest = states.entry(group).or_insert((HardState::default(), false));
        if let Some(hs) = ready.hard_state {
            let commit_only =
                latest.0.term == hs.term && latest.0.vote == hs.vote && latest.0 != HardState::default();
            *latest = (hs, true);
            if !commit_only {
                ticket = Some(self.append_hard_state(group, &hs)?);
                latest.1 = false;
            }
        }
        if ticket.is_some() && latest.1 {
            // Something is written for this group anyway: the deferred commit index joins it.
            // Nobody waits for it: it becomes durable with this round's fsync.
            drop(self.append_hard_state(group, &latest.0)?);
            latest.1 = false;
        }
        Ok(ticket)
    }

    /// Keeps the WAL writer from starting a batch until the hold is dropped (see
    /// [`Wal::hold_writes`]).
    pub fn hold_writes(&self) -> WriteHold<'_> {
        self.wal.hold_writes()
    }

    /// Runs `f` on `group`'s entry records.
    fn entry_records<T>(&self, group: GroupId, f: impl FnOnce(&mut EntryRecords) -> T) -> T {
        let mut all = self.entry_records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(all.entry(group).or_default())
    }

    /// Appends `entries` as one record, or as several consecutive ones when they would not fit
    /// one, and notes where each run is. Returns the last record's ticket (records become
    /// durable in order, so it covers them all); `None` when there are no entries.
    fn append_entries(
        &self,
        group: GroupId,
        entries: &[Entry],
    ) -> Result<Option<DurableTicket>, StorageError> {
        let mut last = None;
        for run in record_runs(entries, RECORD_PAYLOAD_BYTES_MAX) {
            let mut e = Encoder::default();
            codec::encode_entries(&mut e, run);
            let written = self.wal.append(group, RecordKind::Entries, e.finish())?;
            if let Some(first) = run.first() {
                self.entry_records(group, |records| records.wrote(first.index.0, written.seq()));
            }
            last = Some(written);
        }
        Ok(last)
    }

    /// Records `hs` as `group`'s latest hard state, written now.
    fn remember_hard_state(&self, group: GroupId, hs: HardState) {
        let mut states = self.hard_states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        states.insert(group, (hs, false));
    }

    fn append_hard_state(&self, group: GroupId, hs: &HardState) -> Result<DurableTicket, StorageError> {
        let mut e = Encoder::default();
        codec::encode_hard_state(&mut e, hs);
        self.wal.append(group, RecordKind::HardState, e.finish())
    }

    /// Records a snapshot the Raft core takes as the group's new base: a received one, whose
    /// file the transport saved before handing it over; or, with data that is no reference
    /// (a bootstrap state), one saved here.
    fn save_snapshot(&self, group: GroupId, snapshot: &Snapshot) -> Result<DurableTicket, StorageError> {
        if SnapshotRef::decode(&snapshot.data).is_none() {
            self.save_image(group, &snapshot.meta, &snapshot.data)?;
        }
        let mut e = Encoder::default();
        codec::encode_snapshot_meta(&mut e, &snapshot.meta);
        self.wal.append(group, RecordKind::SnapshotMarker, e.finish())
    }

    /// Makes `snapshot` (its data the state machine's image) and `tail`, the entries after it,
    /// `group`'s durable state (a new group's first state): saves the file, then
    /// [`RaftStorage::finish_checkpoint`], appending `tail` whatever the WAL held for the group
    /// before. Returns the snapshot as the Raft core must hold it (naming the file). Blocks on
    /// the file's fsyncs and the WAL's.
    pub fn checkpoint(
        &self,
        group: GroupId,
        snapshot: &Snapshot,
        hard_state: &HardState,
        tail: &[Entry],
    ) -> Result<Snapshot, StorageError> {
        let saved = self.save_image(group, &snapshot.meta, &snapshot.data)?;
        self.entry_records(group, |records| *records = EntryRecords::default());
        let last_index = tail.last().map_or(snapshot.meta.index, |entry| entry.index);
        self.finish_checkpoint(group, &snapshot.meta, hard_state, last_index, || tail.to_vec())?;
        Ok(saved)
    }

    /// Saves an image held in memory as the snapshot described by `meta`.
    fn save_image(
        &self,
        group: GroupId,
        meta: &SnapshotMeta,
        image: &[u8],
    ) -> Result<Snapshot, StorageError> {
        self.save_snapshot_file(group, meta.clone(), |out| out.write_all(image))
    }

    /// The first half of a checkpoint: streams the image `write_image` produces into the
    /// snapshot file described by `meta`, durably, and nothing else, so it can run off the
    /// node's loop while the group goes on logging. Returns the snapshot as the Raft core holds
    /// it. Until the second half, the WAL keeps everything; a crash in between restarts from
    /// the file and the entries after it, as after a crash between a received snapshot's file
    /// and its marker.
    pub fn save_snapshot_file(
        &self,
        group: GroupId,
        meta: SnapshotMeta,
        write_image: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<Snapshot, StorageError> {
        let mut writer = self.snapshots.create(group, meta.index.0, &encode_meta(&meta))?;
        if let Err(e) = write_image(&mut writer) {
            // The store's own errors come back wrapped in the writer's io::Error.
            return Err(match e.into_inner().map(|inner| inner.downcast::<StorageError>()) {
                Some(Ok(storage)) => *storage,
                Some(Err(other)) => {
                    StorageError::io("serialize", self.snapshots.dir(), std::io::Error::other(other))
                }
                None => StorageError::io("serialize", self.snapshots.dir(), std::io::Error::other("unknown")),
            });
        }
        let file = writer.finish()?;
        Ok(SnapshotRef::snapshot(&file, meta))
    }

    /// Restores a state machine from the snapshot the Raft core holds, streaming its image
    /// from the file (empty data is the empty initial state).
    pub fn restore<T>(
        &self,
        group: GroupId,
        snapshot: &Snapshot,
        restore: impl FnOnce(&mut dyn Read) -> Result<T, String>,
    ) -> Result<T, String> {
        let Some(reference) = SnapshotRef::decode(&snapshot.data) else {
            return restore(&mut snapshot.data.as_slice());
        };
        let mut image = self.snapshots.open_image(group, reference.last_index).map_err(|e| e.to_string())?;
        let state = restore(&mut image);
        // A damaged image is reported as such, whatever the state machine made of it.
        if let Some(damage) = image.damage() {
            return Err(damage.to_string());
        }
        let state = state?;
        image.finish().map_err(|e| e.to_string())?;
        Ok(state)
    }

    /// The node's snapshot files, for the transport.
    pub fn snapshot_files(&self) -> Arc<crate::node::snapshot_transfer::NodeSnapshotFiles> {
        Arc::new(crate::node::snapshot_transfer::NodeSnapshotFiles(self.snapshots.clone()))
    }

    /// The second half of a checkpoint, once the snapshot described by `meta` is saved and the
    /// group's log runs to `last_index`: appends the snapshot's marker and the current hard
    /// state, waits until durable, then lets the WAL drop every record older than the one
    /// holding the first entry after the snapshot (see the module docs) and the snapshot
    /// directory every older snapshot. Entries after the snapshot that no WAL record holds (a
    /// new group's first entries) are taken from `tail` and appended after the marker. Blocks
    /// on the WAL's fsync.
    pub fn finish_checkpoint(
        &self,
        group: GroupId,
        meta: &SnapshotMeta,
        hard_state: &HardState,
        last_index: LogIndex,
        tail: impl FnOnce() -> Vec<Entry>,
    ) -> Result<(), StorageError> {
        let after = meta.index.0 + 1;
        let kept = match last_index.0 >= after {
            true => self.entry_records(group, |records| records.holding(after)),
            false => None,
        };
        let mut e = Encoder::default();
        codec::encode_snapshot_meta(&mut e, meta);
        let marker = self.wal.append(group, RecordKind::SnapshotMarker, e.finish())?;
        let marker_seq: WalSeq = marker.seq();
        self.remember_hard_state(group, *hard_state);
        let mut last = self.append_hard_state(group, hard_state)?;
        // The first index and the WAL record the group needs from on.
        let (records_from, release_from) = match kept {
            Some(record) => record,
            None => {
                let tail: Vec<Entry> = match last_index.0 >= after {
                    true => tail().into_iter().filter(|entry| entry.index.0 >= after).collect(),
                    false => Vec::new(),
                };
                if let Some(written) = self.append_entries(group, &tail)? {
                    last = written;
                }
                (after, marker_seq)
            }
        };
        // Records become durable in order: the last one durable means all are.
        last.wait()?;
        self.wal.release(group, release_from);
        self.entry_records(group, |records| records.drop_before(records_from));
        self.snapshots.remove_older_than(group, meta.index.0)?;
        let removed = self.wal.compact()?;
        tracing::debug!(
            group = group.0,
            index = meta.index.0,
            removed,
            kept_from = release_from.0,
            "checkpoint"
        );
        Ok(())
    }

    /// Deletes this node's copy of `group` (its replica moved to other nodes and its removal
    /// is committed): appends a tombstone holding `hard_state` (its term and vote; the
    /// commit index restarts at 0) and `last_index`, the copy's last log index, waits until it
    /// is durable, then lets the WAL drop the group's older records and deletes its snapshot
    /// files. A crash at any point leaves either the whole copy or none of it. Blocks on the
    /// WAL's fsync.
    pub fn drop_group(
        &self,
        group: GroupId,
        hard_state: HardState,
        last_index: u64,
    ) -> Result<(), StorageError> {
        let kept = HardState { commit: LogIndex(0), ..hard_state };
        let mut e = Encoder::default();
        codec::encode_hard_state(&mut e, &kept);
        e.u64(last_index);
        let ticket = self.wal.append(group, RecordKind::Tombstone, e.finish())?;
        let seq = ticket.seq();
        ticket.wait()?;
        self.remember_hard_state(group, kept);
        self.entry_records(group, |records| *records = EntryRecords::default());
        self.wal.release(group, seq);
        self.snapshots.remove_older_than(group, u64::MAX)?;
        let removed = self.wal.compact()?;
        tracing::debug!(group = group.0, last_index, removed, "copy deleted");
        Ok(())
    }

    /// Makes everything queued durable and stops the WAL writer (a clean shutdown).
    pub fn close(self) -> Result<(), StorageError> {
        self.wal.close()
    }

    /// The shared write-ahead log (for statistics).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }
}

/// The snapshot a group recovers from, as the Raft core holds it; a version 1 file is
/// rewritten in the current format first.
fn current_snapshot(
    snapshots: &SnapshotStore,
    group: GroupId,
    stored: StoredSnapshot,
) -> Result<Snapshot, StorageError> {
    match stored {
        StoredSnapshot::Current(file) => Ok(SnapshotRef::snapshot(&file, decode_meta(&file)?)),
        StoredSnapshot::Version1 { last_index, data, path } => {
            let (meta, image) = decode_version_1(&data).map_err(|e| StorageError::Corruption {
                file: path.clone(),
                offset: 0,
                reason: CorruptionKind::BadPayload { reason: e.to_string() },
            })?;
            tracing::info!(path = %path.display(), "rewriting a version 1 snapshot file in the current format");
            let file = snapshots.save(group, last_index, &encode_meta(&meta), image)?;
            Ok(SnapshotRef::snapshot(&file, meta))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::disk::SimDisk;
    use ppdb_raft::{EntryPayload, LogIndex, NodeId, Term};

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload: EntryPayload::Command(data.to_vec()) }
    }

    fn ready(entries: Vec<Entry>, hs: Option<HardState>) -> Ready {
        Ready { entries, hard_state: hs, ..Ready::default() }
    }

    /// The image behind a snapshot the Raft core holds, read back from its file.
    fn image_of(storage: &RaftStorage, group: GroupId, snapshot: &Snapshot) -> Vec<u8> {
        storage
            .restore(group, snapshot, |image| {
                let mut data = Vec::new();
                image.read_to_end(&mut data).map_err(|e| e.to_string())?;
                Ok(data)
            })
            .unwrap()
    }

    #[test]
    fn entries_hard_state_and_truncation_survive_reopen() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(1));
        let dir = Path::new("/node");
        {
            let (storage, recovered) =
                RaftStorage::open(Arc::clone(&disk), dir, WalConfig::default()).unwrap();
            assert!(recovered.is_empty());
            let hs = HardState { term: Term(2), vote: Some(NodeId(1)), commit: LogIndex(1) };
            let t = storage.persist(GroupId(3), &ready(vec![entry(2, 1, b"a"), entry(3, 1, b"b")], Some(hs)));
            t.unwrap().unwrap().wait().unwrap();
            // A new leader overwrote index 3.
            let t = storage.persist(GroupId(3), &ready(vec![entry(3, 2, b"c")], None)).unwrap();
            t.unwrap().wait().unwrap();
        }
        let (_storage, recovered) = RaftStorage::open(disk, dir, WalConfig::default()).unwrap();
        let state = &recovered[&GroupId(3)];
        assert_eq!(state.hard_state.term, Term(2));
        assert_eq!(state.entries, vec![entry(2, 1, b"a"), entry(3, 2, b"c")]);
    }

    /// The durable-storage model under crashes: Readies persisted through the WAL on the
    /// simulated disk, a crash that loses unsynced writes and tears the last one, recovery.
    /// Every Ready whose ticket completed must be recovered exactly (entries and hard state);
    /// nothing beyond a torn tail may appear.
    #[test]
    fn acknowledged_readies_survive_torn_crashes() {
        use crate::storage::disk::CrashFaults;
        for seed in 0..40u64 {
            let sim = Arc::new(SimDisk::new(seed));
            let disk: Arc<dyn Disk> = sim.clone();
            let dir = Path::new("/node");
            let group = GroupId(1);
            let mut acked: Vec<Entry> = Vec::new();
            let mut acked_hs = HardState::default();
            let mut next = 2u64;
            for round in 0..4u64 {
                let (storage, recovered) =
                    RaftStorage::open(Arc::clone(&disk), dir, WalConfig::default()).unwrap();
                let state = recovered.get(&group).cloned().unwrap_or_default();
                // Everything acknowledged before the crash is there, in order; at most the
                // unacknowledged tail of the last round may also be there.
                assert!(state.entries.len() >= acked.len(), "seed {seed}: lost entries");
                assert_eq!(&state.entries[..acked.len()], &acked[..], "seed {seed} round {round}");
                assert!(state.hard_state.term >= acked_hs.term, "seed {seed}: lost hard state");
                acked = state.entries.clone();
                acked_hs = state.hard_state;
                next = acked.last().map_or(next, |e| e.index.0 + 1);
                let mut pending = Vec::new();
                for i in 0..(5 + seed % 7) {
                    let entries: Vec<Entry> =
                        (0..3).map(|k| entry(next + k, round + 1, &[i as u8; 40])).collect();
                    next += 3;
                    let hs = HardState {
                        term: Term(round + 1),
                        vote: Some(NodeId(1)),
                        commit: LogIndex(next - 4),
                    };
                    let ticket = storage.persist(group, &ready(entries.clone(), Some(hs))).unwrap().unwrap();
                    pending.push((ticket, entries, hs));
                }
                // Half the batches are waited for (acknowledged), the rest left in flight.
                let keep = pending.len() / 2;
                for (ticket, entries, hs) in pending.into_iter().take(keep) {
                    ticket.wait().unwrap();
                    acked.extend(entries);
                    acked_hs = hs;
                }
                drop(storage);
                sim.crash(CrashFaults { torn_writes: true, flip_bit: false });
            }
        }
    }

    /// A leader's snapshot is saved before its WAL marker: a crash between the two keeps the
    /// file, the node restarts from it and logs on, and the next restart must accept the log
    /// resuming after the snapshot rather than report a gap.
    #[test]
    fn a_snapshot_whose_marker_was_lost_still_covers_the_entries_after_it() {
        use crate::storage::disk::CrashFaults;
        use crate::storage::wal::WalWriter;
        let sim = Arc::new(SimDisk::new(3));
        let disk: Arc<dyn Disk> = sim.clone();
        let dir = Path::new("/node");
        let config = || WalConfig { writer: WalWriter::Caller, ..WalConfig::default() };
        let group = GroupId(1);
        let mut snapshot = RecoveredState::bootstrap([NodeId(1), NodeId(2)]).snapshot.unwrap();
        snapshot.meta.index = LogIndex(9);
        let (storage, _) = RaftStorage::open(Arc::clone(&disk), dir, config()).unwrap();
        let entries: Vec<Entry> = (2..=4).map(|i| entry(i, 1, b"x")).collect();
        storage.persist(group, &ready(entries, None)).unwrap().unwrap().wait().unwrap();
        let install = Ready { snapshot: Some(snapshot.clone()), ..Ready::default() };
        drop(storage.persist(group, &install).unwrap());
        sim.crash(CrashFaults { torn_writes: false, flip_bit: false });
        drop(storage);
        let (storage, recovered) = RaftStorage::open(Arc::clone(&disk), dir, config()).unwrap();
        let recovered_snapshot = recovered[&group].snapshot.clone().unwrap();
        assert_eq!(recovered_snapshot.meta, snapshot.meta);
        assert_eq!(image_of(&storage, group, &recovered_snapshot), *snapshot.data);
        assert!(recovered[&group].entries.is_empty());
        let after: Vec<Entry> = (10..=11).map(|i| entry(i, 2, b"y")).collect();
        storage.persist(group, &ready(after.clone(), None)).unwrap().unwrap().wait().unwrap();
        sim.crash(CrashFaults { torn_writes: false, flip_bit: false });
        drop(storage);
        let (_storage, recovered) = RaftStorage::open(disk, dir, config()).unwrap();
        assert_eq!(recovered[&group].snapshot.as_ref(), Some(&recovered_snapshot));
        assert_eq!(recovered[&group].entries, after);
    }

    /// A checkpoint leaves the entries after the snapshot in the records that hold them (it
    /// appends no copy), releases the WAL from the record holding the first of them, and a
    /// restart, also after a crash, recovers the snapshot and exactly those entries.
    #[test]
    fn checkpoint_keeps_the_entries_after_the_snapshot_where_they_are() {
        use crate::storage::disk::CrashFaults;
        let sim = Arc::new(SimDisk::new(5));
        let disk: Arc<dyn Disk> = sim.clone();
        let dir = Path::new("/node");
        let config = || WalConfig { segment_bytes_max: 4096, preallocate: false, ..WalConfig::default() };
        let group = GroupId(1);
        let mut snapshot = RecoveredState::bootstrap([NodeId(1), NodeId(2), NodeId(3)]).snapshot.unwrap();
        let (storage, _) = RaftStorage::open(Arc::clone(&disk), dir, config()).unwrap();
        let mut log = Vec::new();
        // Records of one or two large entries: a few per segment, so the WAL really deletes
        // the segments before the one a checkpoint keeps from.
        let mut first = 2;
        while first < 200 {
            let count = 1 + first % 2;
            let entries: Vec<Entry> = (first..first + count).map(|i| entry(i, 1, &[i as u8; 1200])).collect();
            storage.persist(group, &ready(entries.clone(), None)).unwrap().unwrap().wait().unwrap();
            log.extend(entries);
            first += count;
        }
        let segments_before = storage.wal().segment_paths().len();
        // Index 150 ends the record holding 149..=150; so does 151 for 151..=152 and so on.
        snapshot.meta.index = LogIndex(150);
        storage
            .save_snapshot_file(group, snapshot.meta.clone(), |out| out.write_all(&snapshot.data))
            .unwrap();
        let hs = HardState { term: Term(1), vote: Some(NodeId(1)), commit: LogIndex(190) };
        let last = log.last().unwrap().index;
        storage
            .finish_checkpoint(group, &snapshot.meta, &hs, last, || panic!("the tail is in the WAL"))
            .unwrap();
        let segments_after = storage.wal().segment_paths().len();
        assert!(
            segments_after < segments_before,
            "{segments_before} segments before, {segments_after} after"
        );
        let more: Vec<Entry> = (first..first + 3).map(|i| entry(i, 1, b"z")).collect();
        storage.persist(group, &ready(more.clone(), None)).unwrap().unwrap().wait().unwrap();
        log.extend(more);
        drop(storage);
        sim.crash(CrashFaults { torn_writes: true, flip_bit: false });
        let (_storage, recovered) = RaftStorage::open(disk, dir, config()).unwrap();
        let state = &recovered[&group];
        assert_eq!(state.snapshot.as_ref().map(|s| s.meta.index), Some(LogIndex(150)));
        let expected: Vec<Entry> = log.into_iter().filter(|e| e.index.0 > 150).collect();
        assert_eq!(state.entries, expected);
        assert_eq!(state.hard_state.commit, LogIndex(190));
    }

    #[test]
    fn checkpoint_replaces_the_log_prefix_with_a_snapshot() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(2));
        let dir = Path::new("/node");
        let group = GroupId(1);
        let mut snapshot = RecoveredState::bootstrap([NodeId(1), NodeId(2), NodeId(3)]).snapshot.unwrap();
        {
            let (storage, _) = RaftStorage::open(Arc::clone(&disk), dir, WalConfig::default()).unwrap();
            let entries: Vec<Entry> = (2..=10).map(|i| entry(i, 1, b"x")).collect();
            storage.persist(group, &ready(entries.clone(), None)).unwrap().unwrap().wait().unwrap();
            snapshot.meta.index = LogIndex(8);
            snapshot.data = Arc::new(b"state at 8".to_vec());
            let hs = HardState { term: Term(1), vote: None, commit: LogIndex(9) };
            storage.checkpoint(group, &snapshot, &hs, &entries[7..]).unwrap();
        }
        let (storage, recovered) = RaftStorage::open(disk, dir, WalConfig::default()).unwrap();
        let state = &recovered[&group];
        assert_eq!(state.snapshot.as_ref().map(|s| s.meta.index), Some(LogIndex(8)));
        let image = state.snapshot.as_ref().map(|s| image_of(&storage, group, s));
        assert_eq!(image, Some(b"state at 8".to_vec()));
        assert_eq!(state.entries.iter().map(|e| e.index.0).collect::<Vec<_>>(), vec![9, 10]);
        assert_eq!(state.hard_state.commit, LogIndex(9));
    }

    /// A deleted copy never comes back: not from the WAL, not from a snapshot file that
    /// outlived its deletion; its term and vote do. A copy received after it is kept.
    #[test]
    fn a_dropped_group_restarts_empty_with_its_term_and_vote() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(4));
        let dir = Path::new("/node");
        let group = GroupId(2);
        let other = GroupId(1);
        let hs = HardState { term: Term(5), vote: Some(NodeId(3)), commit: LogIndex(9) };
        let mut snapshot = RecoveredState::bootstrap([NodeId(1), NodeId(2), NodeId(3)]).snapshot.unwrap();
        snapshot.meta.index = LogIndex(8);
        snapshot.data = Arc::new(b"state at 8".to_vec());
        {
            let (storage, _) = RaftStorage::open(Arc::clone(&disk), dir, WalConfig::default()).unwrap();
            let entries: Vec<Entry> = (2..=10).map(|i| entry(i, 1, b"x")).collect();
            storage.persist(group, &ready(entries.clone(), Some(hs))).unwrap().unwrap().wait().unwrap();
            storage.persist(other, &ready(entries.clone(), None)).unwrap().unwrap().wait().unwrap();
            storage.checkpoint(group, &snapshot, &hs, &entries[7..]).unwrap();
            storage.drop_group(group, hs, 10).unwrap();
        }
        let (storage, recovered) = RaftStorage::open(Arc::clone(&disk), dir, WalConfig::default()).unwrap();
        let state = &recovered[&group];
        assert!(state.snapshot.is_none() && state.entries.is_empty(), "{state:?}");
        assert_eq!(state.hard_state, HardState { commit: LogIndex(0), ..hs });
        assert_eq!(recovered[&other].entries.len(), 9, "other groups keep everything");
        // The snapshot file outlives the tombstone (a crash before its deletion): still void.
        storage.save_image(group, &snapshot.meta, &snapshot.data).unwrap();
        drop(storage);
        let (storage, recovered) = RaftStorage::open(Arc::clone(&disk), dir, WalConfig::default()).unwrap();
        assert!(recovered[&group].snapshot.is_none(), "the deleted copy's file is ignored");
        // Placed here again: a snapshot received and marked after the tombstone counts.
        let install = Ready {
            snapshot: Some(storage.save_image(group, &snapshot.meta, &snapshot.data).unwrap()),
            ..Ready::default()
        };
        storage.persist(group, &install).unwrap().unwrap().wait().unwrap();
        drop(storage);
        let (storage, recovered) = RaftStorage::open(disk, dir, WalConfig::default()).unwrap();
        let back = recovered[&group].snapshot.as_ref().map(|s| image_of(&storage, group, s));
        assert_eq!(back, Some(b"state at 8".to_vec()));
    }

    #[test]
    fn record_runs_cut_at_whole_entries_within_the_payload_limit() {
        // Encoded: 4 bytes of count, then 21 bytes of header and the data per entry.
        let entries: Vec<Entry> = [10, 30, 5, 60, 1].iter().map(|&n| entry(1, 1, &vec![0; n])).collect();
        let lens = |runs: Vec<&[Entry]>| runs.iter().map(|run| run.len()).collect::<Vec<_>>();
        assert_eq!(lens(record_runs(&entries, 4 + 31 + 51)), vec![2, 1, 1, 1]);
        assert_eq!(lens(record_runs(&entries, 4 + 31 + 51 + 26)), vec![3, 2]);
        assert_eq!(lens(record_runs(&entries, usize::MAX)), vec![5]);
        // An entry larger than the limit is a run of its own, never split or dropped.
        assert_eq!(lens(record_runs(&entries, 1)), vec![1, 1, 1, 1, 1]);
        assert!(record_runs(&[], 100).is_empty());
    }

    #[test]
    fn a_round_larger_than_a_wal_record_is_written_as_several_and_recovered_whole() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(3));
        let dir = Path::new("/node");
        let group = GroupId(1);
        // Three entries of 30 MiB: together more than one record may hold.
        let third = crate::limits::WAL_RECORD_BYTES_MAX / 8 * 3;
        let entries: Vec<Entry> = (1..=3).map(|i| entry(i, 1, &vec![i as u8; third])).collect();
        {
            let (storage, _) = RaftStorage::open(Arc::clone(&disk), dir, WalConfig::default()).unwrap();
            let hs = HardState { term: Term(1), vote: Some(NodeId(1)), commit: LogIndex(0) };
            let ticket = storage.persist(group, &ready(entries.clone(), Some(hs)));
            ticket.unwrap_or_else(|e| panic!("{e}")).unwrap().wait().unwrap();
            assert_eq!(storage.wal().stats().records_durable, 3, "two records of entries and the hard state");
        }
        let (_storage, recovered) = RaftStorage::open(disk, dir, WalConfig::default()).unwrap();
        assert!(recovered[&group].entries == entries, "the round's entries came back whole and in order");
    }
}
