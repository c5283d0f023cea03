//! The log entries of the two-phase commit protocol, as a participant shard replicates them.
//!
//! # Encoding
//!
//! `version:u8 (`[`TXN_ENTRY_VERSION`]`) now_ms:u64-le tag:u8 id:u128-le body`. The version
//! byte keeps these entries apart from key-value entries (versions 1 and 2, see
//! [`crate::kv::command`]), and `now_ms` sits where a key-value entry's does, so the shard's
//! leader stamps both alike. PREPARE's body is `started_ms:u64 vote:u8 count:u32 shard:u64...` (the
//! participants, primary first, at most [`limits::TXN_SHARDS_MAX`]) and the shard's part as
//! one key-value transaction entry (`len:u32 bytes`, [`KvWrite::encode`] of
//! [`WriteOp::Transaction`]); COMMIT, ABORT and FENCE have none. COMMITS (several
//! transactions' COMMITs joined into one entry) has id 0 and the body `count:u32 id:u128-le...`
//! (1 to [`COMMITS_MAX`] ids).

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::kv::{KvWrite, TxnStep, WatchedKey, WriteOp};
use crate::limits;

use super::id::TxnId;

/// First byte of every transaction protocol entry.
pub const TXN_ENTRY_VERSION: u8 = 0x80;
/// Where the entry time sits, and its width: as in a key-value entry.
const STAMP_OFFSET: usize = 1;
const STAMP_BYTES: usize = 8;

const TAG_PREPARE: u8 = 1;
const TAG_COMMIT: u8 = 2;
const TAG_ABORT: u8 = 3;
const TAG_FENCE: u8 = 4;
const TAG_COMMITS: u8 = 5;

/// Most COMMITs one [`TxnEntry::Commits`] entry joins: 64 KiB of ids, well within an entry.
pub const COMMITS_MAX: usize = 4096;

/// A participant's part of a transaction, sent to it in the PREPARE entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepare {
    /// The transaction.
    pub id: TxnId,
    /// Every shard taking part, the primary (which keeps the transaction's record) first.
    pub participants: Vec<u64>,
    /// When the coordinator began, by its clock (ms since the Unix epoch): a PREPARE that
    /// arrives much later is refused ([`super::participant::PREPARE_AGE_MAX_MS`]).
    pub started_ms: u64,
    /// This shard's commands, in client order.
    pub steps: Vec<TxnStep>,
    /// This shard's watched keys and the versions the client saw.
    pub watched: Vec<WatchedKey>,
    /// When the shard votes to commit.
    pub vote: Vote,
}

/// When a participant votes to commit its part (and prepares it) rather than refusing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Whenever it can lock its keys and its watched keys are unchanged.
    Always,
    /// Only if, besides, every command of its part answers 1: MSETNX across shards, which
    /// writes nothing anywhere when one of its keys exists somewhere.
    IfEveryReplyIsOne,
}

/// A transaction protocol entry.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnEntry {
    /// Lock the part's keys, check its watched keys, and answer its replies; nothing is
    /// written until COMMIT.
    Prepare(Prepare),
    /// Apply the prepared part and release its locks.
    Commit(TxnId),
    /// [`TxnEntry::Commit`] of each transaction in turn: the COMMITs of concurrent transactions
    /// joined into one entry by the shard's leader, so that a busy shard replicates and applies
    /// one entry for them instead of one each.
    Commits(Vec<TxnId>),
    /// Drop the prepared part and release its locks; remember the transaction as aborted so
    /// that a PREPARE arriving later is refused.
    Abort(TxnId),
    /// Say where the transaction stands here; if it never prepared here, abort it here (so it
    /// never can), which is how a resolver learns a dead coordinator's outcome.
    Fence(TxnId),
}

impl TxnEntry {
    /// Whether `command` (a log entry's command) is a transaction protocol entry.
    pub fn is_entry(command: &[u8]) -> bool {
        command.first() == Some(&TXN_ENTRY_VERSION)
    }

    /// Encodes the entry, unstamped (time 0): the shard's leader stamps it ([`TxnEntry::stamp`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.u8(TXN_ENTRY_VERSION);
        e.u64(0);
        let (tag, id) = match self {
            TxnEntry::Prepare(prepare) => (TAG_PREPARE, prepare.id),
            TxnEntry::Commit(id) => (TAG_COMMIT, *id),
            TxnEntry::Abort(id) => (TAG_ABORT, *id),
            TxnEntry::Fence(id) => (TAG_FENCE, *id),
            TxnEntry::Commits(_) => (TAG_COMMITS, TxnId(0)),
        };
        e.u8(tag);
        e.u64(id.0 as u64);
        e.u64((id.0 >> 64) as u64);
        if let TxnEntry::Prepare(prepare) = self {
            e.u64(prepare.started_ms);
            e.u8(match prepare.vote {
                Vote::Always => 0,
                Vote::IfEveryReplyIsOne => 1,
            });
            e.u32(u32::try_from(prepare.participants.len()).unwrap_or(u32::MAX));
            for &shard in &prepare.participants {
                e.u64(shard);
            }
            let part =
                WriteOp::Transaction { steps: prepare.steps.clone(), watched: prepare.watched.clone() };
            e.bytes(&KvWrite::unstamped(part).encode());
        }
        if let TxnEntry::Commits(ids) = self {
            e.u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
            for id in ids {
                e.u64(id.0 as u64);
                e.u64((id.0 >> 64) as u64);
            }
        }
        let mut bytes = e.finish();
        // The codec writes integers little-endian; the stamp is at a fixed offset either way.
        debug_assert_eq!(bytes.get(STAMP_OFFSET..STAMP_OFFSET + STAMP_BYTES), Some(&[0u8; 8][..]));
        bytes.shrink_to_fit();
        bytes
    }

    /// Decodes an entry and its stamped time; never panics, bounded allocation.
    pub fn decode(command: &[u8]) -> Result<(u64, TxnEntry), DecodeError> {
        let mut d = Decoder::new(command, "transaction entry");
        if d.u8()? != TXN_ENTRY_VERSION {
            return Err(d.error("not a transaction entry"));
        }
        let now_ms = d.u64()?;
        let tag = d.u8()?;
        let low = d.u64()?;
        let id = TxnId((u128::from(d.u64()?) << 64) | u128::from(low));
        let entry = match tag {
            TAG_PREPARE => {
                let started_ms = d.u64()?;
                let vote = match d.u8()? {
                    0 => Vote::Always,
                    1 => Vote::IfEveryReplyIsOne,
                    _ => return Err(d.error("unknown vote")),
                };
                let count = d.count(limits::TXN_SHARDS_MAX, 8)?;
                let participants = (0..count).map(|_| d.u64()).collect::<Result<Vec<_>, _>>()?;
                let part = d.bytes(limits::COMMAND_BYTES_MAX)?;
                let Ok(KvWrite { op: WriteOp::Transaction { steps, watched }, .. }) = KvWrite::decode(part)
                else {
                    return Err(d.error("a prepare whose part is not a transaction"));
                };
                if participants.is_empty() {
                    return Err(d.error("a prepare without participants"));
                }
                TxnEntry::Prepare(Prepare { id, participants, started_ms, steps, watched, vote })
            }
            TAG_COMMIT => TxnEntry::Commit(id),
            TAG_ABORT => TxnEntry::Abort(id),
            TAG_FENCE => TxnEntry::Fence(id),
            TAG_COMMITS => {
                if id != TxnId(0) {
                    return Err(d.error("a joined commit names a transaction in its header"));
                }
                let count = d.count(COMMITS_MAX, 16)?;
                if count == 0 {
                    return Err(d.error("a joined commit of no transaction"));
                }
                let mut ids = Vec::with_capacity(count);
                for _ in 0..count {
                    let low = d.u64()?;
                    ids.push(TxnId((u128::from(d.u64()?) << 64) | u128::from(low)));
                }
                TxnEntry::Commits(ids)
            }
            _ => return Err(d.error("unknown transaction entry tag")),
        };
        d.finish()?;
        Ok((now_ms, entry))
    }

    /// Writes the entry time into an encoded entry, in place; false if it is not one.
    pub fn stamp(command: &mut [u8], now_ms: u64) -> bool {
        match command.get_mut(..STAMP_OFFSET + STAMP_BYTES) {
            Some([TXN_ENTRY_VERSION, time @ ..]) => {
                time.copy_from_slice(&now_ms.to_le_bytes());
                true
            }
            _ => false,
        }
    }

    /// The time stamped in an encoded entry.
    pub fn stamped_time(command: &[u8]) -> Option<u64> {
        match command.get(..STAMP_OFFSET + STAMP_BYTES)? {
            [TXN_ENTRY_VERSION, time @ ..] => Some(u64::from_le_bytes(time.try_into().ok()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvRead;
    use proptest::prelude::*;

    fn prepare() -> TxnEntry {
        TxnEntry::Prepare(Prepare {
            id: TxnId::new(3, 99),
            participants: vec![2, 5],
            started_ms: 1_700_000_000_000,
            steps: vec![
                TxnStep::Write(WriteOp::Del { keys: vec![b"a".to_vec()] }),
                TxnStep::Read(KvRead::Get { key: b"b".to_vec() }),
            ],
            watched: vec![WatchedKey { key: b"w".to_vec(), version: 7 }],
            vote: Vote::IfEveryReplyIsOne,
        })
    }

    #[test]
    fn entries_round_trip_and_carry_the_leaders_stamp() {
        for entry in [
            prepare(),
            TxnEntry::Commit(TxnId(1)),
            TxnEntry::Abort(TxnId(u128::MAX)),
            TxnEntry::Fence(TxnId(5)),
            TxnEntry::Commits(vec![TxnId(7), TxnId(u128::MAX)]),
        ] {
            let mut bytes = entry.encode();
            assert!(TxnEntry::is_entry(&bytes));
            assert!(TxnEntry::stamp(&mut bytes, 42));
            assert_eq!(TxnEntry::stamped_time(&bytes), Some(42));
            assert_eq!(TxnEntry::decode(&bytes), Ok((42, entry)));
        }
        assert!(!TxnEntry::is_entry(&KvWrite::unstamped(WriteOp::FlushAll).encode()));
        assert!(!TxnEntry::stamp(&mut KvWrite::unstamped(WriteOp::FlushAll).encode(), 1));
    }

    #[test]
    fn a_joined_commit_holds_one_to_commits_max_ids_and_no_header_id() {
        assert!(TxnEntry::decode(&TxnEntry::Commits(Vec::new()).encode()).is_err(), "no id");
        let most = TxnEntry::Commits((0..COMMITS_MAX as u128).map(TxnId).collect());
        assert!(TxnEntry::decode(&most.encode()).is_ok());
        let too_many = TxnEntry::Commits((0..=COMMITS_MAX as u128).map(TxnId).collect());
        assert!(TxnEntry::decode(&too_many.encode()).is_err(), "over COMMITS_MAX");
        let mut named = TxnEntry::Commits(vec![TxnId(1)]).encode();
        if let Some(byte) = named.get_mut(STAMP_OFFSET + STAMP_BYTES + 1) {
            *byte = 9; // the header's id
        }
        assert!(TxnEntry::decode(&named).is_err(), "a header id");
    }

    #[test]
    fn every_strict_prefix_is_an_error() {
        let bytes = prepare().encode();
        for len in 0..bytes.len() {
            assert!(TxnEntry::decode(&bytes[..len]).is_err(), "prefix of {len} bytes");
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(mut input in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Some(first) = input.first_mut() {
                *first = TXN_ENTRY_VERSION;
            }
            let _ = TxnEntry::decode(&input);
        }
    }
}
