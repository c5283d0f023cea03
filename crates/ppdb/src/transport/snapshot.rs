//! Large snapshots in chunks. An `InstallSnapshot` whose data exceeds `snapshot_chunk_bytes`
//! never travels as one frame: the sender cuts it into [`SnapshotChunk`] frames (interleaved
//! with the peer's other traffic, so heartbeats keep flowing), and the receiver reassembles them,
//! bounded by `snapshot_bytes_max`, into the original message. A broken connection discards
//! the partial snapshot; Raft sends it again.

use super::frame::{frame_encoder, seal, FrameKind};
use crate::codec::{decode_snapshot_meta, encode_snapshot_meta, DecodeError, Decoder, Encoder, BYTES_MAX};
use ppdb_raft::{Message, MessageBody, NodeId, Snapshot, SnapshotMeta, Term};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One piece of a snapshot transfer. Every chunk repeats the message header and metadata, so a
/// chunk is self-describing and checkable on its own.
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
    /// Where `data` starts in the snapshot.
    pub offset: u64,
    /// The snapshot's full size.
    pub total: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

struct ChunkHeader<'a> {
    group: u64,
    transfer_id: u64,
    msg: &'a Message,
    meta: &'a SnapshotMeta,
}

fn encode_chunk(e: &mut Encoder, h: &ChunkHeader<'_>, offset: u64, total: u64, data: &[u8]) {
    e.u64(h.group);
    e.u64(h.transfer_id);
    e.u64(h.msg.from.0);
    e.u64(h.msg.to.0);
    e.u64(h.msg.term.0);
    encode_snapshot_meta(e, h.meta);
    e.u64(offset);
    e.u64(total);
    e.bytes(data);
}

impl SnapshotChunk {
    pub(super) fn encode(&self, e: &mut Encoder) {
        let msg = Message { from: self.from, to: self.to, term: self.term, body: MessageBody::TimeoutNow };
        let h = ChunkHeader { group: self.group, transfer_id: self.transfer_id, msg: &msg, meta: &self.meta };
        encode_chunk(e, &h, self.offset, self.total, &self.data);
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
            data: d.bytes(BYTES_MAX)?.to_vec(),
        })
    }
}

/// A snapshot being sent: yields its chunk frames one at a time.
#[derive(Debug)]
pub struct OutgoingSnapshot {
    group: u64,
    transfer_id: u64,
    msg: Message,
    offset: usize,
}

impl OutgoingSnapshot {
    /// Starts a transfer of `msg`, which must be an `InstallSnapshot`.
    pub fn new(group: u64, transfer_id: u64, msg: Message) -> OutgoingSnapshot {
        debug_assert!(matches!(msg.body, MessageBody::InstallSnapshot { .. }));
        OutgoingSnapshot { group, transfer_id, msg, offset: 0 }
    }

    /// Whether every chunk was produced.
    pub fn is_done(&self) -> bool {
        match &self.msg.body {
            MessageBody::InstallSnapshot { snapshot } => self.offset >= snapshot.data.len().max(1),
            _ => true,
        }
    }

    /// The next chunk frame (at most `chunk_bytes` of data), or `None` when all were produced.
    pub fn next_frame(&mut self, chunk_bytes: usize) -> Option<Vec<u8>> {
        let MessageBody::InstallSnapshot { snapshot } = &self.msg.body else { return None };
        let total = snapshot.data.len();
        if self.is_done() {
            return None;
        }
        let end = total.min(self.offset.saturating_add(chunk_bytes.max(1)));
        let h = ChunkHeader {
            group: self.group,
            transfer_id: self.transfer_id,
            msg: &self.msg,
            meta: &snapshot.meta,
        };
        let mut e = frame_encoder();
        encode_chunk(&mut e, &h, self.offset as u64, total as u64, &snapshot.data[self.offset..end]);
        // An empty snapshot is one empty chunk; mark it produced.
        self.offset = if total == 0 { 1 } else { end };
        Some(seal(FrameKind::SnapshotChunk, e.finish()))
    }
}

/// Why a chunk cannot be accepted; the connection it came on is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// The snapshot exceeds `snapshot_bytes_max`.
    #[error("snapshot of {total} bytes for group {group} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The group.
        group: u64,
        /// Declared size.
        total: u64,
        /// The limit.
        limit: usize,
    },
    /// The chunk does not continue its transfer where the last one ended.
    #[error("chunk of transfer {transfer_id} out of order or inconsistent: {reason}")]
    Inconsistent {
        /// The transfer.
        transfer_id: u64,
        /// What did not match.
        reason: &'static str,
    },
}

#[derive(Debug)]
struct Partial {
    first: SnapshotChunk,
    data: Vec<u8>,
}

/// Reassembles the snapshot transfers of one connection.
#[derive(Debug)]
pub struct SnapshotAssembler {
    snapshot_bytes_max: usize,
    transfers_max: usize,
    partials: BTreeMap<u64, Partial>,
}

impl SnapshotAssembler {
    /// An assembler holding at most `transfers_max` partial snapshots of at most
    /// `snapshot_bytes_max` each.
    pub fn new(snapshot_bytes_max: usize, transfers_max: usize) -> SnapshotAssembler {
        SnapshotAssembler {
            snapshot_bytes_max,
            transfers_max: transfers_max.max(1),
            partials: BTreeMap::new(),
        }
    }

    /// Takes one chunk; returns the `(group, InstallSnapshot message)` once the last one arrived.
    pub fn accept(&mut self, chunk: SnapshotChunk) -> Result<Option<(u64, Message)>, AssemblyError> {
        let id = chunk.transfer_id;
        let bad = |reason| Err(AssemblyError::Inconsistent { transfer_id: id, reason });
        if chunk.total > self.snapshot_bytes_max as u64 {
            return Err(AssemblyError::TooLarge {
                group: chunk.group,
                total: chunk.total,
                limit: self.snapshot_bytes_max,
            });
        }
        let end = chunk.offset.checked_add(chunk.data.len() as u64);
        if end.is_none_or(|end| end > chunk.total) || (chunk.data.is_empty() && chunk.total > 0) {
            return bad("chunk extends past the declared total or is empty");
        }
        if chunk.offset == 0 {
            if self.partials.len() >= self.transfers_max && !self.partials.contains_key(&id) {
                // Keep memory bounded: the oldest transfer gives way; Raft resends it.
                self.partials.pop_first();
            }
            let data = Vec::new();
            let first = SnapshotChunk { data: Vec::new(), ..chunk.clone() };
            self.partials.insert(id, Partial { first, data });
        }
        let Some(partial) = self.partials.get_mut(&id) else {
            // Its start was evicted; ignore the rest of it.
            tracing::debug!(transfer_id = id, "chunk of an evicted snapshot transfer ignored");
            return Ok(None);
        };
        let f = &partial.first;
        if (f.group, f.from, f.to, f.term, f.total)
            != (chunk.group, chunk.from, chunk.to, chunk.term, chunk.total)
            || f.meta != chunk.meta
        {
            return bad("header differs from the transfer's first chunk");
        }
        if chunk.offset != partial.data.len() as u64 {
            return bad("offset does not continue the transfer");
        }
        partial.data.extend_from_slice(&chunk.data);
        if (partial.data.len() as u64) < chunk.total {
            return Ok(None);
        }
        let Some(Partial { first, data }) = self.partials.remove(&id) else { return Ok(None) };
        let snapshot = Snapshot { meta: first.meta, data: Arc::new(data) };
        let msg = Message {
            from: first.from,
            to: first.to,
            term: first.term,
            body: MessageBody::InstallSnapshot { snapshot },
        };
        Ok(Some((first.group, msg)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frame::{decode_frame, Frame};
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
        let mut out = OutgoingSnapshot::new(4, 1, msg.clone());
        let mut chunks = Vec::new();
        while let Some(frame) = out.next_frame(chunk_bytes) {
            match decode_frame(&frame, 1 << 24) {
                Ok(Some((Frame::SnapshotChunk(c), _))) => chunks.push(c),
                other => panic!("not a chunk frame: {other:?}"),
            }
        }
        chunks
    }

    #[test]
    fn chunks_reassemble_into_the_original_message() {
        for len in [0, 1, 999, 1000, 1001, 10_000] {
            let msg = snapshot_msg(len);
            let chunks = chunks(&msg, 1000);
            assert_eq!(chunks.len(), len.div_ceil(1000).max(1));
            let mut asm = SnapshotAssembler::new(1 << 20, 2);
            let mut done = None;
            for c in chunks {
                assert!(done.is_none());
                done = asm.accept(c).unwrap_or_else(|e| panic!("{e}"));
            }
            assert_eq!(done, Some((4, msg)));
        }
    }

    #[test]
    fn a_snapshot_over_the_limit_or_out_of_order_is_refused() {
        let msg = snapshot_msg(5000);
        let mut asm = SnapshotAssembler::new(4000, 2);
        assert!(matches!(asm.accept(chunks(&msg, 1000)[0].clone()), Err(AssemblyError::TooLarge { .. })));
        let mut asm = SnapshotAssembler::new(1 << 20, 2);
        let c = chunks(&msg, 1000);
        assert_eq!(asm.accept(c[0].clone()), Ok(None));
        assert!(matches!(asm.accept(c[2].clone()), Err(AssemblyError::Inconsistent { .. })));
    }
}
