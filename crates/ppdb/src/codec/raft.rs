//! Encodings of entries, hard state, snapshot metadata and Raft messages.

use super::{DecodeError, Decoder, Encoder, BYTES_MAX, ENTRIES_MAX, MEMBERS_MAX};
use crate::limits::COMMAND_BYTES_MAX;
use ppdb_raft::{
    ConfChange, ConfChangeKind, Entry, EntryPayload, HardState, LogIndex, Membership, Message, MessageBody,
    NodeId, Snapshot, SnapshotMeta, Term,
};
use std::sync::Arc;

const ENTRY_BYTES_MIN: usize = 17;

/// Bytes [`encode_entries`] writes before the entries: their count.
pub const ENTRIES_COUNT_BYTES: usize = 4;

/// Most bytes [`encode_entry`] writes besides a command's data: index, term, payload tag and the
/// data's length.
pub const ENTRY_HEADER_BYTES_MAX: usize = 8 + 8 + 1 + 4;

// An encoded entry is never larger than Raft counts it, so Raft's byte bounds hold on the wire
// and on disk.
const _: () = assert!(ENTRY_HEADER_BYTES_MAX <= ppdb_raft::ENTRY_HEADER_BYTES);

/// Bytes [`encode_message`] writes for an append message besides its entries: sender,
/// recipient, term, tag, previous index and term, commit index, and the entries' count.
pub const APPEND_HEADER_BYTES: usize = 8 + 8 + 8 + 1 + 8 + 8 + 8 + ENTRIES_COUNT_BYTES;

/// Bytes [`encode_entry`] writes for `entry`.
pub fn encoded_entry_bytes(entry: &Entry) -> usize {
    8 + 8
        + 1
        + match &entry.payload {
            EntryPayload::Empty => 0,
            EntryPayload::Command(data) => 4 + data.len(),
            EntryPayload::ConfChange(_) => 1 + 8,
        }
}

/// Appends one entry.
pub fn encode_entry(e: &mut Encoder, entry: &Entry) {
    e.u64(entry.index.0);
    e.u64(entry.term.0);
    match &entry.payload {
        EntryPayload::Empty => e.u8(0),
        EntryPayload::Command(data) => {
            e.u8(1);
            e.bytes(data);
        }
        EntryPayload::ConfChange(change) => {
            e.u8(2);
            e.u8(match change.kind {
                ConfChangeKind::AddVoter => 0,
                ConfChangeKind::AddLearner => 1,
                ConfChangeKind::Remove => 2,
            });
            e.u64(change.node.0);
        }
    }
}

/// Reads one entry.
pub fn decode_entry(d: &mut Decoder<'_>) -> Result<Entry, DecodeError> {
    let index = LogIndex(d.u64()?);
    let term = Term(d.u64()?);
    let payload = match d.u8()? {
        0 => EntryPayload::Empty,
        1 => EntryPayload::Command(d.bytes(COMMAND_BYTES_MAX)?.to_vec()),
        2 => {
            let kind = match d.u8()? {
                0 => ConfChangeKind::AddVoter,
                1 => ConfChangeKind::AddLearner,
                2 => ConfChangeKind::Remove,
                _ => return Err(d.error("unknown membership change kind")),
            };
            EntryPayload::ConfChange(ConfChange { kind, node: NodeId(d.u64()?) })
        }
        _ => return Err(d.error("unknown entry payload tag")),
    };
    Ok(Entry { index, term, payload })
}

/// Appends a count-prefixed batch of entries.
pub fn encode_entries(e: &mut Encoder, entries: &[Entry]) {
    e.u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    for entry in entries {
        encode_entry(e, entry);
    }
}

/// Reads a count-prefixed batch of entries; they must be contiguous.
pub fn decode_entries(d: &mut Decoder<'_>) -> Result<Vec<Entry>, DecodeError> {
    let n = d.count(ENTRIES_MAX, ENTRY_BYTES_MIN)?;
    let mut out: Vec<Entry> = Vec::with_capacity(n);
    for _ in 0..n {
        let entry = decode_entry(d)?;
        if out.last().is_some_and(|prev| !follows(prev.index, entry.index)) {
            return Err(d.error("entries are not contiguous"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Whether `index` comes right after `prev`. Checked, not `prev.next()`: the indexes are
/// untrusted, and `u64::MAX` has no successor.
fn follows(prev: LogIndex, index: LogIndex) -> bool {
    prev.0.checked_add(1) == Some(index.0)
}

/// Appends a hard state.
pub fn encode_hard_state(e: &mut Encoder, hs: &HardState) {
    e.u64(hs.term.0);
    e.u64(hs.vote.map_or(0, |v| v.0));
    e.u64(hs.commit.0);
}

/// Reads a hard state.
pub fn decode_hard_state(d: &mut Decoder<'_>) -> Result<HardState, DecodeError> {
    let term = Term(d.u64()?);
    let vote = match d.u64()? {
        0 => None,
        v => Some(NodeId(v)),
    };
    Ok(HardState { term, vote, commit: LogIndex(d.u64()?) })
}

fn encode_ids(e: &mut Encoder, ids: impl ExactSizeIterator<Item = NodeId>) {
    e.u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
    for id in ids {
        e.u64(id.0);
    }
}

fn decode_ids(d: &mut Decoder<'_>) -> Result<Vec<NodeId>, DecodeError> {
    let n = d.count(MEMBERS_MAX, 8)?;
    (0..n).map(|_| d.u64().map(NodeId)).collect()
}

/// Appends snapshot metadata (position and membership).
pub fn encode_snapshot_meta(e: &mut Encoder, meta: &SnapshotMeta) {
    e.u64(meta.index.0);
    e.u64(meta.term.0);
    encode_ids(e, meta.membership.voters.iter().copied());
    encode_ids(e, meta.membership.learners.iter().copied());
}

/// Reads snapshot metadata.
pub fn decode_snapshot_meta(d: &mut Decoder<'_>) -> Result<SnapshotMeta, DecodeError> {
    let index = LogIndex(d.u64()?);
    let term = Term(d.u64()?);
    let voters = decode_ids(d)?.into_iter().collect();
    let learners = decode_ids(d)?.into_iter().collect();
    Ok(SnapshotMeta { index, term, membership: Membership { voters, learners } })
}

/// Appends a Raft message, including any snapshot data it carries.
pub fn encode_message(e: &mut Encoder, m: &Message) {
    e.u64(m.from.0);
    e.u64(m.to.0);
    e.u64(m.term.0);
    match &m.body {
        MessageBody::Append { prev_index, prev_term, entries, commit } => {
            e.u8(0);
            e.u64(prev_index.0);
            e.u64(prev_term.0);
            e.u64(commit.0);
            encode_entries(e, entries);
        }
        MessageBody::AppendResponse { reject, index, hint_index, hint_term } => {
            e.u8(1);
            e.u8(u8::from(*reject));
            e.u64(index.0);
            e.u64(hint_index.0);
            e.u64(hint_term.0);
        }
        MessageBody::Heartbeat { commit, read_round } => {
            e.u8(2);
            e.u64(commit.0);
            e.u64(*read_round);
        }
        MessageBody::HeartbeatResponse { read_round } => {
            e.u8(3);
            e.u64(*read_round);
        }
        MessageBody::Vote { pre, transfer, last_index, last_term } => {
            e.u8(4);
            e.u8(u8::from(*pre) | u8::from(*transfer) << 1);
            e.u64(last_index.0);
            e.u64(last_term.0);
        }
        MessageBody::VoteResponse { pre, reject } => {
            e.u8(5);
            e.u8(u8::from(*pre) | u8::from(*reject) << 1);
        }
        MessageBody::InstallSnapshot { snapshot } => {
            e.u8(6);
            encode_snapshot_meta(e, &snapshot.meta);
            e.bytes(&snapshot.data);
        }
        MessageBody::TimeoutNow => e.u8(7),
        MessageBody::ReadIndex { ctx } => {
            e.u8(8);
            e.u64(*ctx);
        }
        MessageBody::ReadIndexResponse { ctx, index } => {
            e.u8(9);
            e.u64(*ctx);
            e.u64(index.0);
        }
    }
}

fn flag(bits: u8, bit: u8) -> bool {
    bits & (1 << bit) != 0
}

/// Reads a Raft message.
pub fn decode_message(d: &mut Decoder<'_>) -> Result<Message, DecodeError> {
    let from = NodeId(d.u64()?);
    let to = NodeId(d.u64()?);
    let term = Term(d.u64()?);
    let body = match d.u8()? {
        0 => {
            let prev_index = LogIndex(d.u64()?);
            let prev_term = Term(d.u64()?);
            let commit = LogIndex(d.u64()?);
            let entries = decode_entries(d)?;
            if entries.first().is_some_and(|e| !follows(prev_index, e.index)) {
                return Err(d.error("append entries do not follow prev_index"));
            }
            MessageBody::Append { prev_index, prev_term, entries, commit }
        }
        1 => MessageBody::AppendResponse {
            reject: d.u8()? != 0,
            index: LogIndex(d.u64()?),
            hint_index: LogIndex(d.u64()?),
            hint_term: Term(d.u64()?),
        },
        2 => MessageBody::Heartbeat { commit: LogIndex(d.u64()?), read_round: d.u64()? },
        3 => MessageBody::HeartbeatResponse { read_round: d.u64()? },
        4 => {
            let bits = d.u8()?;
            MessageBody::Vote {
                pre: flag(bits, 0),
                transfer: flag(bits, 1),
                last_index: LogIndex(d.u64()?),
                last_term: Term(d.u64()?),
            }
        }
        5 => {
            let bits = d.u8()?;
            MessageBody::VoteResponse { pre: flag(bits, 0), reject: flag(bits, 1) }
        }
        6 => {
            let meta = decode_snapshot_meta(d)?;
            let data = Arc::new(d.bytes(BYTES_MAX)?.to_vec());
            MessageBody::InstallSnapshot { snapshot: Snapshot { meta, data } }
        }
        7 => MessageBody::TimeoutNow,
        8 => MessageBody::ReadIndex { ctx: d.u64()? },
        9 => MessageBody::ReadIndexResponse { ctx: d.u64()?, index: LogIndex(d.u64()?) },
        _ => return Err(d.error("unknown message tag")),
    };
    Ok(Message { from, to, term, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(m: &Message) -> Message {
        let mut e = Encoder::default();
        encode_message(&mut e, m);
        let bytes = e.finish();
        let mut d = Decoder::new(&bytes, "message");
        let out = decode_message(&mut d).unwrap_or_else(|err| panic!("{err}"));
        d.finish().unwrap_or_else(|err| panic!("{err}"));
        out
    }

    fn msg(body: MessageBody) -> Message {
        Message { from: NodeId(1), to: NodeId(2), term: Term(7), body }
    }

    #[test]
    fn every_message_kind_round_trips() {
        let entries = vec![
            Entry { index: LogIndex(5), term: Term(2), payload: EntryPayload::Empty },
            Entry { index: LogIndex(6), term: Term(7), payload: EntryPayload::Command(b"SET a b".to_vec()) },
            Entry {
                index: LogIndex(7),
                term: Term(7),
                payload: EntryPayload::ConfChange(ConfChange {
                    kind: ConfChangeKind::AddLearner,
                    node: NodeId(9),
                }),
            },
        ];
        let mut membership = Membership::with_voters([NodeId(1), NodeId(2)]);
        membership.learners.insert(NodeId(3));
        let snapshot = Snapshot {
            meta: SnapshotMeta { index: LogIndex(40), term: Term(6), membership },
            data: Arc::new(vec![1, 2, 3]),
        };
        let bodies = vec![
            MessageBody::Append { prev_index: LogIndex(4), prev_term: Term(2), entries, commit: LogIndex(3) },
            MessageBody::AppendResponse {
                reject: true,
                index: LogIndex(4),
                hint_index: LogIndex(2),
                hint_term: Term(1),
            },
            MessageBody::Heartbeat { commit: LogIndex(3), read_round: 11 },
            MessageBody::HeartbeatResponse { read_round: 11 },
            MessageBody::Vote { pre: true, transfer: false, last_index: LogIndex(9), last_term: Term(3) },
            MessageBody::VoteResponse { pre: false, reject: true },
            MessageBody::InstallSnapshot { snapshot },
            MessageBody::TimeoutNow,
            MessageBody::ReadIndex { ctx: 99 },
            MessageBody::ReadIndexResponse { ctx: 99, index: LogIndex(12) },
        ];
        for body in bodies {
            let m = msg(body);
            assert_eq!(roundtrip(&m), m);
        }
    }

    #[test]
    fn encoded_sizes_are_what_the_encoders_write() {
        let change = ConfChange { kind: ConfChangeKind::Remove, node: NodeId(4) };
        let payloads =
            [EntryPayload::Empty, EntryPayload::Command(vec![7; 1000]), EntryPayload::ConfChange(change)];
        let entries: Vec<Entry> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| Entry { index: LogIndex(10 + i as u64), term: Term(3), payload })
            .collect();
        for entry in &entries {
            let mut e = Encoder::default();
            encode_entry(&mut e, entry);
            assert_eq!(e.finish().len(), encoded_entry_bytes(entry), "{entry:?}");
            assert!(encoded_entry_bytes(entry) <= entry.size_bytes(), "Raft counts at least the encoding");
        }
        let append = msg(MessageBody::Append {
            prev_index: LogIndex(9),
            prev_term: Term(3),
            entries: entries.clone(),
            commit: LogIndex(9),
        });
        let mut e = Encoder::default();
        encode_message(&mut e, &append);
        let entry_bytes: usize = entries.iter().map(encoded_entry_bytes).sum();
        assert_eq!(e.finish().len(), APPEND_HEADER_BYTES + entry_bytes);
    }

    #[test]
    fn an_append_whose_entries_skip_an_index_is_refused() {
        let m = msg(MessageBody::Append {
            prev_index: LogIndex(1),
            prev_term: Term(1),
            entries: vec![Entry { index: LogIndex(3), term: Term(1), payload: EntryPayload::Empty }],
            commit: LogIndex(0),
        });
        let mut e = Encoder::default();
        encode_message(&mut e, &m);
        let bytes = e.finish();
        assert!(decode_message(&mut Decoder::new(&bytes, "message")).is_err());
    }

    /// Found by the `peer_frame` fuzz target: an append after index u64::MAX, or a batch with an
    /// entry after index u64::MAX, overflowed computing the next index (a panic in debug builds,
    /// a wrap to index 0 accepted as contiguous in release builds).
    #[test]
    fn indexes_after_the_last_possible_one_are_refused() {
        let entry = |index| Entry { index: LogIndex(index), term: Term(1), payload: EntryPayload::Empty };
        let mut e = Encoder::default();
        encode_message(
            &mut e,
            &msg(MessageBody::Append {
                prev_index: LogIndex(u64::MAX),
                prev_term: Term(1),
                entries: vec![entry(0)],
                commit: LogIndex(0),
            }),
        );
        let bytes = e.finish();
        assert!(decode_message(&mut Decoder::new(&bytes, "message")).is_err());
        let mut e = Encoder::default();
        encode_entries(&mut e, &[entry(u64::MAX), entry(0)]);
        let bytes = e.finish();
        assert!(decode_entries(&mut Decoder::new(&bytes, "entries")).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_message(&mut Decoder::new(&bytes, "message"));
            let _ = decode_entries(&mut Decoder::new(&bytes, "entries"));
            let _ = decode_snapshot_meta(&mut Decoder::new(&bytes, "snapshot"));
        }

        #[test]
        fn huge_declared_counts_are_refused(len in 1u32..u32::MAX) {
            let mut e = Encoder::default();
            e.u32(len);
            let bytes = e.finish();
            prop_assert!(decode_entries(&mut Decoder::new(&bytes, "entries")).is_err());
        }
    }
}
