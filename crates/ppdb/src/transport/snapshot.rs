//! Snapshots, streamed in chunks from file to file. An `InstallSnapshot` never travels as one
//! frame, and its image is never in memory whole on either side: the Raft core's snapshot data
//! only names the sender's snapshot file, and the sender reads the image from it
//! ([`SnapshotFiles::open`]) one [`SnapshotChunk`] frame at a time (`snapshot_chunk_bytes`,
//! interleaved with the peer's other traffic, so heartbeats keep flowing). The receiver writes
//! each chunk straight into a new file of its own store ([`SnapshotFiles::receive`]); when the
//! last one arrives, the file is checked against the size and checksum the sender announced,
//! made durable, and the message is handed on with data naming that file. So a receiver holds
//! one chunk (plus the file writer's bounded buffer) per transfer, whatever the snapshot's
//! size, and the only limit on a snapshot's size is the disk's.
//!
//! Chunks of a transfer must arrive in order and agree with its first one; a chunk that does
//! not is a protocol violation and closes the connection. A snapshot whose file cannot be
//! written, or whose bytes do not match the announced checksum, is refused (the transfer is
//! dropped with a warning and the connection kept); as with a broken connection, which
//! discards the partial snapshot, Raft sends it again.

use super::frame::{frame_encoder, seal, FrameKind};
use crate::codec::{decode_snapshot_meta, encode_snapshot_meta, DecodeError, Decoder, Encoder, BYTES_MAX};
use ppdb_raft::{Message, MessageBody, NodeId, Snapshot, SnapshotMeta, Term};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Where the snapshots a node sends come from and those it receives go: its snapshot files.
pub trait SnapshotFiles: Send + Sync + fmt::Debug + 'static {
    /// Opens the image of `snapshot` of `group` (its data names it) for sending.
    fn open(&self, group: u64, snapshot: &Snapshot) -> io::Result<Box<dyn SnapshotSource>>;

    /// Starts a file for a snapshot of `group` described by `meta`, being received.
    fn receive(&self, group: u64, meta: &SnapshotMeta) -> io::Result<Box<dyn SnapshotSink>>;
}

/// The image of a snapshot being sent, read in order.
pub trait SnapshotSource: Send + fmt::Debug {
    /// The image's size.
    fn total_bytes(&self) -> u64;

    /// crc32c of the whole image.
    fn checksum(&self) -> u32;

    /// Fills `buf` with the next bytes of the image.
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()>;
}

/// The file of a snapshot being received.
pub trait SnapshotSink: Send + fmt::Debug {
    /// Appends the next bytes of the image.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Checks the image is `total_bytes` long with crc32c `checksum`, makes the file durable,
    /// and returns the snapshot data naming it, for the Raft core.
    fn finish(self: Box<Self>, total_bytes: u64, checksum: u32) -> io::Result<Vec<u8>>;
}

/// One piece of a snapshot transfer. Every chunk repeats the message header, the metadata and
/// the image's size and checksum, so a chunk is self-describing and checkable on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The Raft group.
    pub group: u64,
    /// Identifies the transfer among those in flight on the connection.
    pub transfer_id: u64,
    /// The message's sender.
    pub from: NodeId,
    /// The message's recipient.
    pub to: NodeId,
    /// The message's term.
    pub term: Term,
    /// The snapshot's position and membership.
    pub meta: SnapshotMeta,
    /// Where `data` starts in the image.
    pub offset: u64,
    /// The image's full size.
    pub total: u64,
    /// crc32c of the whole image.
    pub checksum: u32,
    /// The bytes.
    pub data: Vec<u8>,
}

struct ChunkHeader<'a> {
    group: u64,
    transfer_id: u64,
    msg: &'a Message,
    meta: &'a SnapshotMeta,
    total: u64,
    checksum: u32,
}

fn encode_chunk(e: &mut Encoder, h: &ChunkHeader<'_>, offset: u64, data: &[u8]) {
    e.u64(h.group);
    e.u64(h.transfer_id);
    e.u64(h.msg.from.0);
    e.u64(h.msg.to.0);
    e.u64(h.msg.term.0);
    encode_snapshot_meta(e, h.meta);
    e.u64(offset);
    e.u64(h.total);
    e.u32(h.checksum);
    e.bytes(data);
}

impl SnapshotChunk {
    pub(super) fn encode(&self, e: &mut Encoder) {
        let msg = Message { from: self.from, to: self.to, term: self.term, body: MessageBody::TimeoutNow };
        let h = ChunkHeader {
            group: self.group,
            transfer_id: self.transfer_id,
            msg: &msg,
            meta: &self.meta,
            total: self.total,
            checksum: self.checksum,
        };
        encode_chunk(e, &h, self.offset, &self.data);
    }

    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<SnapshotChunk, DecodeError> {
        Ok(SnapshotChunk {
            group: d.u64()?,
            transfer_id: d.u64()?,
            from: NodeId(d.u64()?),
            to: NodeId(d.u64()?),
            term: Term(d.u64()?),
            meta: decode_snapshot_meta(d)?,
            offset: d.u64()?,
            total: d.u64()?,
            checksum: d.u32()?,
            data: d.bytes(BYTES_MAX)?.to_vec(),
        })
    }

    /// Whether `other` belongs to the same transfer as this chunk (all but position and bytes).
    fn same_transfer(&self, other: &SnapshotChunk) -> bool {
        (self.group, self.from, self.to, self.term, self.total, self.checksum)
            == (other.group, other.from, other.to, other.term, other.total, other.checksum)
            && self.meta == other.meta
    }
}

/// A snapshot being sent: yields its chunk frames one at a time, read from its file.
#[derive(Debug)]
pub struct OutgoingSnapshot {
    group: u64,
    transfer_id: u64,
    msg: Message,
    source: Box<dyn SnapshotSource>,
    offset: u64,
    /// Set once the last chunk was produced (an empty image is one empty chunk).
    done: bool,
}

impl OutgoingSnapshot {
    /// Starts a transfer of `msg`, which must be an `InstallSnapshot`, reading its image from
    /// `source`.
    pub fn new(
        group: u64,
        transfer_id: u64,
        msg: Message,
        source: Box<dyn SnapshotSource>,
    ) -> OutgoingSnapshot {
        debug_assert!(matches!(msg.body, MessageBody::InstallSnapshot { .. }));
        OutgoingSnapshot { group, transfer_id, msg, source, offset: 0, done: false }
    }

    /// Whether every chunk was produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next chunk frame (at most `chunk_bytes` of data), or `None` when all were
    /// produced; an error if the image cannot be read (the transfer is then abandoned).
    pub fn next_frame(&mut self, chunk_bytes: usize) -> io::Result<Option<Vec<u8>>> {
        let MessageBody::InstallSnapshot { snapshot } = &self.msg.body else { return Ok(None) };
        if self.done {
            return Ok(None);
        }
        let total = self.source.total_bytes();
        let len = (total - self.offset).min(chunk_bytes.max(1) as u64) as usize;
        let mut data = vec![0u8; len];
        self.source.read_exact(&mut data)?;
        let h = ChunkHeader {
            group: self.group,
            transfer_id: self.transfer_id,
            msg: &self.msg,
            meta: &snapshot.meta,
            total,
            checksum: self.source.checksum(),
        };
        let mut e = frame_encoder();
        encode_chunk(&mut e, &h, self.offset, &data);
        self.offset += len as u64;
        self.done = self.offset >= total;
        Ok(Some(seal(FrameKind::SnapshotChunk, e.finish())))
    }
}

/// Why a chunk cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// The chunk does not continue its transfer where the last one ended: a protocol
    /// violation, which closes the connection.
    #[error("chunk of transfer {transfer_id} out of order or inconsistent: {reason}")]
    Inconsistent {
        /// The transfer.
        transfer_id: u64,
        /// What did not match.
        reason: &'static str,
    },
    /// The snapshot could not be stored, or does not match its announced size or checksum:
    /// the transfer is dropped, the connection kept, and Raft sends the snapshot again.
    #[error("snapshot of group {group} at index {index} refused: {reason}")]
    Refused {
        /// The group.
        group: u64,
        /// The last index the snapshot covers.
        index: u64,
        /// Why.
        reason: String,
    },
}

impl AssemblyError {
    /// Whether the connection the chunk came on must be closed.
    pub fn closes_connection(&self) -> bool {
        matches!(self, AssemblyError::Inconsistent { .. })
    }
}

#[derive(Debug)]
struct Partial {
    first: SnapshotChunk,
    sink: Box<dyn SnapshotSink>,
    received: u64,
}

/// Receives the snapshot transfers of one connection into snapshot files.
#[derive(Debug)]
pub struct SnapshotAssembler {
    files: Option<Arc<dyn SnapshotFiles>>,
    transfers_max: usize,
    partials: BTreeMap<u64, Partial>,
    /// The most image bytes held in memory at once, for the bound the module promises.
    buffered_bytes_peak: usize,
}

impl SnapshotAssembler {
    /// An assembler writing into `files` (none: every snapshot is refused), receiving at most
    /// `transfers_max` snapshots at once.
    pub fn new(files: Option<Arc<dyn SnapshotFiles>>, transfers_max: usize) -> SnapshotAssembler {
        SnapshotAssembler {
            files,
            transfers_max: transfers_max.max(1),
            partials: BTreeMap::new(),
            buffered_bytes_peak: 0,
        }
    }

    /// The most image bytes this assembler held at once: one chunk, whatever the snapshot's
    /// size (the file writer behind it holds at most one sync slice more).
    pub fn buffered_bytes_peak(&self) -> usize {
        self.buffered_bytes_peak
    }

    /// Takes one chunk; returns the `(group, InstallSnapshot message)` once the last one arrived
    /// and its file is durable.
    pub fn accept(&mut self, chunk: SnapshotChunk) -> Result<Option<(u64, Message)>, AssemblyError> {
        let id = chunk.transfer_id;
        let bad = |reason| Err(AssemblyError::Inconsistent { transfer_id: id, reason });
        let end = chunk.offset.checked_add(chunk.data.len() as u64);
        if end.is_none_or(|end| end > chunk.total) || (chunk.data.is_empty() && chunk.total > 0) {
            return bad("chunk extends past the declared total or is empty");
        }
        self.buffered_bytes_peak = self.buffered_bytes_peak.max(chunk.data.len());
        if chunk.offset == 0 {
            self.start(&chunk)?;
        }
        let Some(partial) = self.partials.get_mut(&id) else {
            // Its start was evicted or refused; ignore the rest of it.
            tracing::debug!(transfer_id = id, "chunk of a dropped snapshot transfer ignored");
            return Ok(None);
        };
        if !partial.first.same_transfer(&chunk) {
            return bad("header differs from the transfer's first chunk");
        }
        if chunk.offset != partial.received {
            return bad("offset does not continue the transfer");
        }
        if let Err(e) = partial.sink.write(&chunk.data) {
            self.partials.remove(&id);
            return Err(refused(&chunk, format!("cannot write the snapshot file: {e}")));
        }
        partial.received += chunk.data.len() as u64;
        if partial.received < chunk.total {
            return Ok(None);
        }
        let Some(Partial { first, sink, .. }) = self.partials.remove(&id) else { return Ok(None) };
        let data = sink.finish(first.total, first.checksum).map_err(|e| refused(&first, e.to_string()))?;
        let snapshot = Snapshot { meta: first.meta, data: Arc::new(data) };
        let msg = Message {
            from: first.from,
            to: first.to,
            term: first.term,
            body: MessageBody::InstallSnapshot { snapshot },
        };
        Ok(Some((first.group, msg)))
    }

    /// Opens the file of a transfer whose first chunk this is.
    fn start(&mut self, chunk: &SnapshotChunk) -> Result<(), AssemblyError> {
        let Some(files) = &self.files else {
            return Err(refused(chunk, "this node keeps no snapshot files".to_string()));
        };
        if self.partials.len() >= self.transfers_max && !self.partials.contains_key(&chunk.transfer_id) {
            // Keep the open files bounded: the oldest transfer gives way; Raft resends it.
            self.partials.pop_first();
        }
        let sink = files
            .receive(chunk.group, &chunk.meta)
            .map_err(|e| refused(chunk, format!("cannot create the snapshot file: {e}")))?;
        let first = SnapshotChunk { data: Vec::new(), ..chunk.clone() };
        self.partials.insert(chunk.transfer_id, Partial { first, sink, received: 0 });
        Ok(())
    }
}

fn refused(chunk: &SnapshotChunk, reason: String) -> AssemblyError {
    AssemblyError::Refused { group: chunk.group, index: chunk.meta.index.0, reason }
}

/// Snapshot files kept in memory, whose snapshot data *is* the image: for tests of the
/// transport alone.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemorySnapshotFiles;

#[cfg(test)]
#[derive(Debug)]
struct MemoryImage {
    data: Arc<Vec<u8>>,
    at: usize,
}

#[cfg(test)]
impl SnapshotSource for MemoryImage {
    fn total_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    fn checksum(&self) -> u32 {
        crc32c::crc32c(&self.data)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.data.get(self.at..self.at + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        self.at += buf.len();
        Ok(())
    }
}

#[cfg(test)]
#[derive(Debug, Default)]
struct MemorySink(Vec<u8>);

#[cfg(test)]
impl SnapshotSink for MemorySink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(self: Box<Self>, total_bytes: u64, checksum: u32) -> io::Result<Vec<u8>> {
        if self.0.len() as u64 != total_bytes || crc32c::crc32c(&self.0) != checksum {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "size or checksum mismatch"));
        }
        Ok(self.0)
    }
}

#[cfg(test)]
impl SnapshotFiles for MemorySnapshotFiles {
    fn open(&self, _group: u64, snapshot: &Snapshot) -> io::Result<Box<dyn SnapshotSource>> {
        Ok(Box::new(MemoryImage { data: Arc::clone(&snapshot.data), at: 0 }))
    }

    fn receive(&self, _group: u64, _meta: &SnapshotMeta) -> io::Result<Box<dyn SnapshotSink>> {
        Ok(Box::new(MemorySink::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frame::{decode_frame, Frame};
    use crate::transport::SNAPSHOT_BYTES_MAX_DEFAULT;
    use ppdb_raft::{LogIndex, Membership};

    fn snapshot_msg(len: usize) -> Message {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let meta = SnapshotMeta {
            index: LogIndex(9),
            term: Term(2),
            membership: Membership::with_voters([NodeId(1)]),
        };
        let snapshot = Snapshot { meta, data: Arc::new(data) };
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: MessageBody::InstallSnapshot { snapshot },
        }
    }

    fn chunks(msg: &Message, chunk_bytes: usize) -> Vec<SnapshotChunk> {
        let MessageBody::InstallSnapshot { snapshot } = &msg.body else { panic!("not a snapshot") };
        let source = MemorySnapshotFiles.open(4, snapshot).unwrap();
        let mut out = OutgoingSnapshot::new(4, 1, msg.clone(), source);
        let mut chunks = Vec::new();
        while let Some(frame) = out.next_frame(chunk_bytes).unwrap() {
            match decode_frame(&frame, 1 << 24) {
                Ok(Some((Frame::SnapshotChunk(c), _))) => chunks.push(c),
                other => panic!("not a chunk frame: {other:?}"),
            }
        }
        assert!(out.is_done());
        chunks
    }

    fn assembler() -> SnapshotAssembler {
        SnapshotAssembler::new(Some(Arc::new(MemorySnapshotFiles)), 2)
    }

    #[test]
    fn chunks_reassemble_into_the_original_message() {
        for len in [0, 1, 999, 1000, 1001, 10_000] {
            let msg = snapshot_msg(len);
            let chunks = chunks(&msg, 1000);
            assert_eq!(chunks.len(), len.div_ceil(1000).max(1));
            let mut asm = assembler();
            let mut done = None;
            for c in chunks {
                assert!(done.is_none());
                done = asm.accept(c).unwrap_or_else(|e| panic!("{e}"));
            }
            assert_eq!(done, Some((4, msg)));
            assert!(asm.buffered_bytes_peak() <= 1000);
        }
    }

    #[test]
    fn a_snapshot_larger_than_the_old_receive_cap_is_taken_a_chunk_at_a_time() {
        let msg = snapshot_msg(1000);
        let mut first = chunks(&msg, 1000).remove(0);
        // A transfer announcing more than the 512 MiB receivers used to refuse outright.
        first.total = SNAPSHOT_BYTES_MAX_DEFAULT as u64 * 2;
        let mut asm = assembler();
        assert_eq!(asm.accept(first.clone()), Ok(None));
        let next = SnapshotChunk { offset: 1000, ..first };
        assert_eq!(asm.accept(next), Ok(None));
        assert_eq!(asm.buffered_bytes_peak(), 1000, "the receiver holds one chunk, not the snapshot");
    }

    #[test]
    fn out_of_order_chunks_close_the_connection_and_a_bad_checksum_is_refused() {
        let msg = snapshot_msg(5000);
        let mut asm = assembler();
        let c = chunks(&msg, 1000);
        assert_eq!(asm.accept(c[0].clone()), Ok(None));
        let err = asm.accept(c[2].clone()).unwrap_err();
        assert!(err.closes_connection(), "{err}");
        let mut asm = assembler();
        let last = c.len() - 1;
        for (i, mut chunk) in c.into_iter().enumerate() {
            chunk.checksum ^= 1;
            let accepted = asm.accept(chunk);
            if i < last {
                assert_eq!(accepted, Ok(None));
            } else {
                let err = accepted.unwrap_err();
                assert!(!err.closes_connection() && err.to_string().contains("checksum"), "{err}");
            }
        }
        let without_files = SnapshotAssembler::new(None, 1).accept(chunks(&msg, 1000).remove(0));
        assert!(matches!(without_files, Err(AssemblyError::Refused { .. })));
    }
}
