//! Forwarding a shard operation to the shard's leader over the peer transport (the seed's
//! COMMAND messages), and its wire format.
//!
//! A node that receives a client command for a shard it does not lead sends the *resolved*
//! operation (an unstamped [`KvWrite`], relative expiries still spans, or a [`KvRead`]) to the
//! leader, which stamps it with its time and runs it
//! through its own Raft group and answers with the typed [`Reply`]. The leader never forwards
//! again: if it lost leadership meanwhile it says so, and the origin retries.
//!
//! Operations travel in batches: the pipelined commands of every client that queued some for
//! the same leader since the last batch ([`super::forward_batch`]), one section per client and
//! shard. The leader submits each shard's operations to its Raft group together, in section
//! order, so each client's order survives forwarding.
//!
//! Request: tag [`SHARD_REQUEST_TAG`] u8, `sections u32`, per section `shard u64` and
//! `count u32`, then every section's operations in order, per operation `tag u8` (1 write,
//! 2 read, 3 transaction entry) and its body as length-prefixed bytes ([`KvWrite::encode`], [`KvRead::encode`] or [`TxnEntry::encode`],
//! the log's own encodings). Response: `count u32`, then per operation `0` + reply, `1` +
//! leader hint (u64, 0 = unknown), or `2` + error code (u8) + message.
//!
//! Sizes: an operation is at most one log entry's command ([`limits::COMMAND_BYTES_MAX`]); the
//! answers to a batch are at most [`limits::REPLY_BYTES_MAX`] and cross the transport in
//! chunks. A reply that would not fit is answered with an error saying so
//! ([`encode_outcomes`]), at once: the origin never waits for an answer that cannot come.

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::error::{Error, ErrorCode};
use crate::kv::types::Score;
use crate::kv::{KvError, KvRead, KvWrite, LockHolder, Reply};
use crate::limits;
use crate::txn::TxnEntry;
use ppdb_raft::NodeId;
use std::collections::BTreeMap;

/// Largest key, pattern or value carried in a forwarded reply.
const ITEM_BYTES_MAX: usize = limits::VALUE_BYTES_MAX;
/// Largest encoded operation in a forwarded batch: a write is one log entry's command.
const OP_BYTES_MAX: usize = limits::COMMAND_BYTES_MAX;
/// Most items in a forwarded array (each takes at least one byte of the reply).
const ITEMS_MAX: usize = limits::REPLY_BYTES_MAX;
/// How deeply replies nest: a transaction's array of ZMPOP replies (key, then member-score
/// pairs) is four levels.
const REPLY_DEPTH_MAX: u32 = 8;

/// An operation on one shard, sent to its leader.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardOp {
    /// A write entry, unstamped: the leader stamps its time, and relative expiries count from it.
    Write(KvWrite),
    /// A linearizable read.
    Read(KvRead),
    /// A transaction protocol entry (`crate::txn`), unstamped like a write.
    Txn(TxnEntry),
}

impl ShardOp {
    /// Whether the operation goes through the shard's log.
    pub fn is_write(&self) -> bool {
        !matches!(self, ShardOp::Read(_))
    }
}

/// A leader's answer to a forwarded operation.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardOutcome {
    /// Done.
    Done(Reply),
    /// The node is not the shard's leader (any more); the hint is the leader it knows.
    NotLeader(Option<NodeId>),
    /// The operation failed there.
    Failed {
        /// The seed's error code.
        code: ErrorCode,
        /// What happened.
        message: String,
    },
}

/// First byte of a forwarded shard batch (membership requests use another tag).
pub const SHARD_REQUEST_TAG: u8 = 1;

/// Most operations in one forwarded batch ([`limits::FORWARDED_OPS_MAX`]).
pub const BATCH_OPS_MAX: usize = limits::FORWARDED_OPS_MAX;

/// Encodes `ops` as they follow a forwarded batch's header, so that the operations of several
/// callers can be sent as one batch ([`join_request`]).
pub fn encode_ops(ops: &[ShardOp]) -> Vec<u8> {
    let mut e = Encoder::default();
    for op in ops {
        match op {
            ShardOp::Write(write) => {
                e.u8(1);
                e.bytes(&write.encode());
            }
            ShardOp::Read(read) => {
                e.u8(2);
                e.bytes(&read.encode());
            }
            ShardOp::Txn(entry) => {
                e.u8(3);
                e.bytes(&entry.encode());
            }
        }
    }
    e.finish()
}

/// One caller's part of a forwarded batch: its shard, how many operations, and the operations
/// as [`encode_ops`] encoded them.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    /// The shard the operations are for.
    pub shard: u64,
    /// How many operations `ops` holds.
    pub count: usize,
    /// The encoded operations.
    pub ops: &'a [u8],
}

/// A forwarded batch made of `sections`, in order.
pub fn join_request<'a>(sections: impl IntoIterator<Item = Section<'a>>) -> Vec<u8> {
    let sections: Vec<Section<'a>> = sections.into_iter().collect();
    let mut e = Encoder::default();
    e.u8(SHARD_REQUEST_TAG);
    e.u32(u32::try_from(sections.len()).unwrap_or(u32::MAX));
    for section in &sections {
        e.u64(section.shard);
        e.u32(u32::try_from(section.count).unwrap_or(u32::MAX));
    }
    let mut request = e.finish();
    for section in &sections {
        request.extend_from_slice(section.ops);
    }
    request
}

/// Decodes a forwarded batch: each section's shard and operations, in order.
pub fn decode_request(bytes: &[u8]) -> Result<Vec<(u64, Vec<ShardOp>)>, DecodeError> {
    let mut d = Decoder::new(bytes, "forwarded request");
    if d.u8()? != SHARD_REQUEST_TAG {
        return Err(d.error("not a shard batch"));
    }
    let sections = d.count(BATCH_OPS_MAX, 12)?;
    let mut headers = Vec::with_capacity(sections);
    let mut total = 0usize;
    for _ in 0..sections {
        let shard = d.u64()?;
        let count = d.u32()? as usize;
        total = total.saturating_add(count);
        if total > BATCH_OPS_MAX {
            return Err(d.error("too many operations"));
        }
        headers.push((shard, count));
    }
    let mut decoded = Vec::with_capacity(sections);
    for (shard, count) in headers {
        if count.saturating_mul(2) > d.remaining() {
            return Err(d.error("operation count exceeds the request"));
        }
        let mut ops = Vec::with_capacity(count);
        for _ in 0..count {
            let op = match d.u8()? {
                1 => {
                    let body = d.bytes(OP_BYTES_MAX)?;
                    ShardOp::Write(KvWrite::decode(body).map_err(|_| d.error("undecodable write"))?)
                }
                2 => {
                    let body = d.bytes(OP_BYTES_MAX)?;
                    ShardOp::Read(KvRead::decode(body).map_err(|_| d.error("undecodable read"))?)
                }
                3 => {
                    let body = d.bytes(OP_BYTES_MAX)?;
                    let (_, entry) =
                        TxnEntry::decode(body).map_err(|_| d.error("undecodable transaction entry"))?;
                    ShardOp::Txn(entry)
                }
                _ => return Err(d.error("unknown operation tag")),
            };
            ops.push(op);
        }
        decoded.push((shard, ops));
    }
    d.finish()?;
    Ok(decoded)
}

/// A decoded batch regrouped by shard: each shard's operations in section order, each with
/// its position in the batch, where its answer goes.
pub fn group_by_shard(sections: Vec<(u64, Vec<ShardOp>)>) -> BTreeMap<u64, (Vec<ShardOp>, Vec<usize>)> {
    let mut by_shard: BTreeMap<u64, (Vec<ShardOp>, Vec<usize>)> = BTreeMap::new();
    let mut position = 0;
    for (shard, ops) in sections {
        let (shard_ops, positions) = by_shard.entry(shard).or_default();
        for op in ops {
            shard_ops.push(op);
            positions.push(position);
            position += 1;
        }
    }
    by_shard
}

fn encode_keys(e: &mut Encoder, keys: &[Vec<u8>]) {
    e.u32(u32::try_from(keys.len()).unwrap_or(u32::MAX));
    for key in keys {
        e.bytes(key);
    }
}

fn decode_keys(d: &mut Decoder<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let n = d.count(ITEMS_MAX, 4)?;
    (0..n).map(|_| d.bytes(ITEM_BYTES_MAX).map(<[u8]>::to_vec)).collect()
}

/// Every status reply, at its wire index. Never reorder: nodes of one release talk.
const STATUSES: [&str; 10] =
    ["string", "none", "OK", "hash", "list", "set", "zset", "PREPARED", "COMMITTED", "ABORTED"];

fn encode_reply(e: &mut Encoder, reply: &Reply) {
    match reply {
        Reply::Ok => e.u8(0),
        Reply::Status(text) => {
            e.u8(1);
            e.u8(STATUSES.iter().position(|s| s == text).unwrap_or(0) as u8);
        }
        Reply::Nil => e.u8(2),
        Reply::Integer(n) => {
            e.u8(3);
            e.u64(*n as u64);
        }
        Reply::Bulk(b) => {
            e.u8(4);
            e.bytes(b);
        }
        Reply::Array(items) => {
            e.u8(5);
            e.u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                encode_reply(e, item);
            }
        }
        Reply::Scan { cursor, keys } => {
            e.u8(6);
            e.u64(*cursor);
            encode_keys(e, keys);
        }
        Reply::Error(err) => {
            e.u8(7);
            e.u8(err.wire_tag());
        }
        Reply::Map(pairs) => {
            e.u8(8);
            e.u32(u32::try_from(pairs.len()).unwrap_or(u32::MAX));
            for (key, value) in pairs {
                encode_reply(e, key);
                encode_reply(e, value);
            }
        }
        Reply::Set(items) => {
            e.u8(9);
            e.u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                encode_reply(e, item);
            }
        }
        Reply::Double(score) => {
            e.u8(10);
            e.u64(score.0.to_bits());
        }
        Reply::NilArray => e.u8(11),
        Reply::Pairs(pairs) => {
            e.u8(12);
            e.u32(u32::try_from(pairs.len()).unwrap_or(u32::MAX));
            for (first, second) in pairs {
                encode_reply(e, first);
                encode_reply(e, second);
            }
        }
        Reply::StatusText(text) => {
            e.u8(13);
            e.bytes(text.as_bytes());
        }
        Reply::ErrorText(text) => {
            e.u8(14);
            e.bytes(text.as_bytes());
        }
        Reply::Locked(holder) => {
            e.u8(15);
            e.u64((holder.txn >> 64) as u64);
            e.u64(holder.txn as u64);
            e.u32(u32::try_from(holder.participants.len()).unwrap_or(u32::MAX));
            for &shard in &holder.participants {
                e.u64(shard);
            }
            e.u64(holder.age_ms);
        }
    }
}

fn decode_reply(d: &mut Decoder<'_>, depth: u32) -> Result<Reply, DecodeError> {
    if depth > REPLY_DEPTH_MAX {
        return Err(d.error("reply nested too deeply"));
    }
    Ok(match d.u8()? {
        0 => Reply::Ok,
        1 => Reply::Status(STATUSES.get(d.u8()? as usize).copied().ok_or_else(|| d.error("unknown status"))?),
        2 => Reply::Nil,
        3 => Reply::Integer(d.u64()? as i64),
        4 => Reply::Bulk(d.bytes(ITEM_BYTES_MAX)?.to_vec()),
        5 => {
            let n = d.count(ITEMS_MAX, 1)?;
            Reply::Array((0..n).map(|_| decode_reply(d, depth + 1)).collect::<Result<_, _>>()?)
        }
        6 => Reply::Scan { cursor: d.u64()?, keys: decode_keys(d)? },
        7 => Reply::Error(KvError::from_wire_tag(d.u8()?).ok_or_else(|| d.error("unknown error"))?),
        8 => {
            let n = d.count(ITEMS_MAX, 2)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((decode_reply(d, depth + 1)?, decode_reply(d, depth + 1)?));
            }
            Reply::Map(pairs)
        }
        9 => {
            let n = d.count(ITEMS_MAX, 1)?;
            Reply::Set((0..n).map(|_| decode_reply(d, depth + 1)).collect::<Result<_, _>>()?)
        }
        10 => {
            let value = f64::from_bits(d.u64()?);
            if value.is_nan() {
                return Err(d.error("NaN score"));
            }
            Reply::Double(Score(value))
        }
        11 => Reply::NilArray,
        12 => {
            let n = d.count(ITEMS_MAX, 2)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((decode_reply(d, depth + 1)?, decode_reply(d, depth + 1)?));
            }
            Reply::Pairs(pairs)
        }
        13 => Reply::StatusText(String::from_utf8_lossy(d.bytes(ITEM_BYTES_MAX)?).into_owned()),
        14 => Reply::ErrorText(String::from_utf8_lossy(d.bytes(ITEM_BYTES_MAX)?).into_owned()),
        15 => {
            let txn = (u128::from(d.u64()?) << 64) | u128::from(d.u64()?);
            let n = d.count(limits::TXN_SHARDS_MAX, 8)?;
            let participants = (0..n).map(|_| d.u64()).collect::<Result<_, _>>()?;
            Reply::Locked(LockHolder { txn, participants, age_ms: d.u64()? })
        }
        _ => return Err(d.error("unknown reply tag")),
    })
}

fn encode_outcome(e: &mut Encoder, outcome: &ForwardOutcome) {
    match outcome {
        ForwardOutcome::Done(reply) => {
            e.u8(0);
            encode_reply(e, reply);
        }
        ForwardOutcome::NotLeader(hint) => {
            e.u8(1);
            e.u64(hint.map_or(0, |h| h.0));
        }
        ForwardOutcome::Failed { code, message } => {
            e.u8(2);
            e.u8(code.to_wire());
            e.bytes(message.as_bytes());
        }
    }
}

fn decode_outcome(d: &mut Decoder<'_>) -> Result<ForwardOutcome, DecodeError> {
    Ok(match d.u8()? {
        0 => ForwardOutcome::Done(decode_reply(d, 0)?),
        1 => ForwardOutcome::NotLeader(match d.u64()? {
            0 => None,
            id => Some(NodeId(id)),
        }),
        2 => {
            let code = ErrorCode::from_wire(d.u8()?).ok_or_else(|| d.error("unknown error code"))?;
            let message = String::from_utf8_lossy(d.bytes(64 * 1024)?).into_owned();
            ForwardOutcome::Failed { code, message }
        }
        _ => return Err(d.error("unknown outcome tag")),
    })
}

/// Most bytes an answer refusing an oversized reply takes ([`reply_too_large`]).
const REFUSAL_BYTES_MAX: usize = 256;

/// Bytes [`encode_reply`] writes for `reply`.
fn reply_bytes(reply: &Reply) -> usize {
    1 + match reply {
        Reply::Ok | Reply::Nil | Reply::NilArray => 0,
        Reply::Status(_) | Reply::Error(_) => 1,
        Reply::Integer(_) | Reply::Double(_) => 8,
        Reply::Bulk(b) => 4 + b.len(),
        Reply::Array(items) | Reply::Set(items) => 4 + items.iter().map(reply_bytes).sum::<usize>(),
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            4 + pairs.iter().map(|(k, v)| reply_bytes(k) + reply_bytes(v)).sum::<usize>()
        }
        Reply::Scan { keys, .. } => 8 + 4 + keys.iter().map(|k| 4 + k.len()).sum::<usize>(),
        Reply::StatusText(text) | Reply::ErrorText(text) => 4 + text.len(),
        Reply::Locked(holder) => 16 + 4 + 8 * holder.participants.len() + 8,
    }
}

/// Bytes [`encode_outcome`] writes for `outcome`.
fn outcome_bytes(outcome: &ForwardOutcome) -> usize {
    1 + match outcome {
        ForwardOutcome::Done(reply) => reply_bytes(reply),
        ForwardOutcome::NotLeader(_) => 8,
        ForwardOutcome::Failed { message, .. } => 1 + 4 + message.len(),
    }
}

/// The answer in place of a reply of `bytes` that a forwarded answer of at most `bytes_max`
/// cannot carry. The command ran (on the leader, which the origin names), so a write took
/// effect; only its reply is missing.
fn reply_too_large(bytes: usize, bytes_max: usize) -> ForwardOutcome {
    let message = format!(
        "reply of {bytes} bytes exceeds the {bytes_max} bytes a reply forwarded from the \
         shard's leader may carry; the command ran there: send it to the leader to read its reply"
    );
    let refusal = ForwardOutcome::Failed { code: ErrorCode::State, message };
    debug_assert!(outcome_bytes(&refusal) <= REFUSAL_BYTES_MAX, "{refusal:?}");
    refusal
}

/// Encodes the leader's answers to a batch, in order, in at most [`limits::REPLY_BYTES_MAX`]
/// bytes: a reply that does not fit is replaced by an error saying so.
pub fn encode_outcomes(outcomes: &[ForwardOutcome]) -> Vec<u8> {
    encode_outcomes_within(outcomes, limits::REPLY_BYTES_MAX)
}

/// [`encode_outcomes`] within `bytes_max`. Each reply must fit with room left for a refusal of
/// every answer after it, so the refusals always fit too.
fn encode_outcomes_within(outcomes: &[ForwardOutcome], bytes_max: usize) -> Vec<u8> {
    let mut e = Encoder::default();
    e.u32(u32::try_from(outcomes.len()).unwrap_or(u32::MAX));
    let mut used = 4;
    for (i, outcome) in outcomes.iter().enumerate() {
        let bytes = outcome_bytes(outcome);
        let reserved = (outcomes.len() - i - 1) * REFUSAL_BYTES_MAX;
        if used + bytes + reserved <= bytes_max {
            encode_outcome(&mut e, outcome);
            used += bytes;
        } else {
            tracing::warn!(bytes, limit = bytes_max, "forwarded reply too large; answered with an error");
            let refusal = reply_too_large(bytes, bytes_max);
            used += outcome_bytes(&refusal);
            encode_outcome(&mut e, &refusal);
        }
    }
    e.finish()
}

/// Decodes the leader's answers to a batch.
pub fn decode_outcomes(bytes: &[u8]) -> Result<Vec<ForwardOutcome>, DecodeError> {
    let mut d = Decoder::new(bytes, "forwarded reply");
    let count = d.count(BATCH_OPS_MAX, 1)?;
    let outcomes = (0..count).map(|_| decode_outcome(&mut d)).collect::<Result<Vec<_>, _>>()?;
    d.finish()?;
    Ok(outcomes)
}

/// The outcome to send back for a local result. Failures that certainly did not take effect
/// and may succeed at the (new) leader, a leadership handover or a proposal dropped by a
/// leader change, travel as "not the leader" so the origin retries them.
pub fn outcome_of(result: Result<Reply, Error>) -> ForwardOutcome {
    match result {
        Ok(reply) => ForwardOutcome::Done(reply),
        Err(Error::Consensus(ppdb_raft::ProposeError::NotLeader { leader })) => {
            ForwardOutcome::NotLeader(leader)
        }
        Err(
            Error::Consensus(ppdb_raft::ProposeError::LeaderTransferring) | Error::ProposalDropped { .. },
        ) => ForwardOutcome::NotLeader(None),
        Err(e) => ForwardOutcome::Failed { code: e.code(), message: e.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::WriteOp;
    use proptest::prelude::*;

    #[test]
    fn failures_that_did_not_take_effect_are_retried_by_the_origin() {
        let transferring = Err(Error::Consensus(ppdb_raft::ProposeError::LeaderTransferring));
        assert_eq!(outcome_of(transferring), ForwardOutcome::NotLeader(None));
        assert_eq!(outcome_of(Err(Error::ProposalDropped { group: 3 })), ForwardOutcome::NotLeader(None));
        let timeout = outcome_of(Err(Error::Timeout { operation: "x".into(), elapsed_ms: 1 }));
        assert!(matches!(timeout, ForwardOutcome::Failed { code: ErrorCode::Timeout, .. }));
    }

    #[test]
    fn every_key_value_error_crosses_the_wire_as_itself() {
        for error in (0..=u8::MAX).filter_map(KvError::from_wire_tag) {
            let mut e = Encoder::default();
            encode_reply(&mut e, &Reply::Error(error));
            let bytes = e.finish();
            let mut d = Decoder::new(&bytes, "reply");
            assert_eq!(decode_reply(&mut d, 0).ok(), Some(Reply::Error(error)));
        }
    }

    #[test]
    fn requests_joined_from_parts_and_outcomes_round_trip() {
        let reads = vec![
            KvRead::Get { key: b"k".to_vec() },
            KvRead::MGet { keys: vec![b"a".to_vec(), b"b".to_vec()] },
            KvRead::GetRange { key: b"k".to_vec(), start: -3, end: -1 },
            KvRead::Scan { cursor: 9, pattern: Some(b"a*".to_vec()), count: 10, type_name: None },
            KvRead::RandomKey,
            KvRead::ExpireTime { key: b"e".to_vec() },
            KvRead::PExpireTime { key: b"p".to_vec() },
        ];
        let mut ops: Vec<ShardOp> = reads.into_iter().map(ShardOp::Read).collect();
        ops.push(ShardOp::Write(KvWrite { now_ms: 5, op: WriteOp::Del { keys: vec![b"x".to_vec()] } }));
        let (first, second) = ops.split_at(2);
        let parts = [encode_ops(first), encode_ops(second), encode_ops(&[])];
        let sections = [(3, first.len()), (5, second.len()), (3, 0)]
            .into_iter()
            .zip(&parts)
            .map(|((shard, count), ops)| Section { shard, count, ops });
        let bytes = join_request(sections);
        let expected = vec![(3, first.to_vec()), (5, second.to_vec()), (3, Vec::new())];
        assert_eq!(decode_request(&bytes).unwrap(), expected);
        // A section claiming more operations than the request holds is refused, not allocated.
        let lying = join_request([Section { shard: 3, count: 1 << 15, ops: &parts[0] }]);
        assert!(decode_request(&lying).is_err());
        let outcomes = vec![
            ForwardOutcome::Done(Reply::Array(vec![
                Reply::Nil,
                Reply::Bulk(b"v".to_vec()),
                Reply::Integer(-4),
            ])),
            ForwardOutcome::Done(Reply::Status("string")),
            ForwardOutcome::Done(Reply::Error(KvError::IncrOverflow)),
            ForwardOutcome::Done(Reply::Scan { cursor: 0, keys: vec![b"k".to_vec()] }),
            ForwardOutcome::Done(Reply::Pairs(vec![(
                Reply::Bulk(b"f".to_vec()),
                Reply::Bulk(b"v".to_vec()),
            )])),
            ForwardOutcome::NotLeader(Some(NodeId(2))),
            ForwardOutcome::Failed { code: ErrorCode::Timeout, message: "slow".into() },
        ];
        assert_eq!(decode_outcomes(&encode_outcomes(&outcomes)).unwrap(), outcomes);
    }

    #[test]
    fn replies_that_would_pass_the_reply_limit_are_answered_with_an_error_saying_so() {
        let big = |n: usize| ForwardOutcome::Done(Reply::Bulk(vec![b'v'; n]));
        let outcomes = vec![
            big(600),
            ForwardOutcome::Done(Reply::Array(vec![Reply::Bulk(vec![1; 300]), Reply::Nil])),
            big(10),
            ForwardOutcome::NotLeader(None),
        ];
        let exact: usize = 4 + outcomes.iter().map(outcome_bytes).sum::<usize>();
        // Room for every reply, and for refusing each one after the first.
        let encoded = encode_outcomes_within(&outcomes, exact + 3 * REFUSAL_BYTES_MAX);
        assert_eq!(encoded.len(), exact, "sizes are computed as encoded");
        assert_eq!(decode_outcomes(&encoded).unwrap(), outcomes, "everything fits");
        // 1 KiB: the 600-byte reply fits only while no room is kept for three refusals.
        let decoded = decode_outcomes(&encode_outcomes_within(&outcomes, 1024)).unwrap();
        assert_eq!(decoded.len(), outcomes.len());
        assert!(
            matches!(&decoded[0], ForwardOutcome::Failed { code: ErrorCode::State, message }
                if message.contains("reply of 606 bytes exceeds the 1024 bytes")),
            "{:?}",
            decoded[0]
        );
        assert_eq!(decoded[1..], outcomes[1..], "the replies after it still fit");
        for limit in [4, 100, 300, 700, 1024] {
            assert!(encode_outcomes_within(&outcomes, limit).len() <= limit.max(4 + 4 * REFUSAL_BYTES_MAX));
        }
    }

    #[test]
    fn a_batch_regrouped_by_shard_keeps_each_shards_order_and_every_answers_place() {
        let get = |k: &str| ShardOp::Read(KvRead::Get { key: k.as_bytes().to_vec() });
        let sections = vec![(3, vec![get("a"), get("b")]), (5, vec![get("c")]), (3, vec![get("d")])];
        let grouped = group_by_shard(sections);
        let expected = BTreeMap::from([
            (3, (vec![get("a"), get("b"), get("d")], vec![0, 1, 3])),
            (5, (vec![get("c")], vec![2])),
        ]);
        assert_eq!(grouped, expected);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_request(&bytes);
            let _ = decode_outcomes(&bytes);
        }
    }
}
