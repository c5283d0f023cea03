//! A shard's side of cross-shard transactions: pure apply code of the shard's state machine.
//!
//! PREPARE locks the part's keys (its commands' keys and its watched keys) and runs its
//! commands on a scratch copy of those keys ([`KvStore::scratch`]) to learn their replies,
//! writing nothing; COMMIT runs them again, the same way at the same log time and index, and
//! installs what they left; ABORT drops them. Locks are taken without waiting: a PREPARE that
//! meets another transaction's lock is refused, so no deadlock can form. While a key is
//! locked every other operation on it (and every whole-keyspace operation on the shard) is
//! refused with [`Reply::Locked`] and retried by the server, so nothing reads or writes a
//! key between its transaction's decision and the moment its part is applied here. A part
//! holding a whole-keyspace command (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHALL) locks the whole
//! shard: it prepares only when no other part is prepared here, every other operation waits
//! for it, and it runs on a copy of the whole key space (one entry per key, the values
//! shared); a shard with nothing prepared pays one emptiness check per operation, as before.
//!
//! Because the locked keys cannot change between PREPARE and COMMIT (housekeeping skips
//! them, see [`Participant::unlocked`]), running the part again at COMMIT gives what it gave
//! at PREPARE; the record therefore keeps the commands, not their results, and a snapshot
//! holds the prepared parts as they came.
//!
//! The participant remembers each transaction's outcome for [`OUTCOME_RETENTION_MS`] of log
//! time, so that a late PREPARE after an ABORT or FENCE is refused, and a resolver asking after
//! a COMMIT learns it; a PREPARE older than [`PREPARE_AGE_MAX_MS`] by its coordinator's clock
//! is refused, so no PREPARE can outlive that memory (clocks must agree within the difference,
//! a minute and a half).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::kv::transfer::{MISGUESSED, MISGUESS_CODE};
use crate::kv::{KvRead, KvStore, KvWrite, LockHolder, Reply, TxnStep, Value, WriteOp};

use super::entry::{Prepare, TxnEntry, Vote};
use super::id::TxnId;
use super::state::Outcome;

/// A PREPARE this much older than its coordinator's start is refused.
pub const PREPARE_AGE_MAX_MS: u64 = 30_000;
/// How long a participant remembers an outcome, in log time.
pub const OUTCOME_RETENTION_MS: u64 = 120_000;
/// Most prepared transactions or remembered outcomes a snapshot may hold.
const RECORDS_MAX: usize = 16 * 1024 * 1024;

/// A part prepared here and not yet decided.
#[derive(Debug, Clone)]
struct Prepared {
    /// The PREPARE as it came.
    prepare: Prepare,
    /// Its log index and time: COMMIT runs the part again there.
    index: u64,
    now_ms: u64,
    /// The keys it locks.
    keys: BTreeSet<Vec<u8>>,
    /// What the part's writes left (each written key's value, `None` if removed), as running
    /// it at PREPARE found: COMMIT installs this instead of running the part again, since the
    /// locked keys cannot have changed meanwhile. `None` where COMMIT runs the part again: a
    /// shard-wide part, or a part restored from a snapshot (which keeps commands, not results).
    written: Option<Vec<(Vec<u8>, Option<Value>)>>,
}

impl PartialEq for Prepared {
    /// The same part prepared at the same place; whether its result is kept does not matter,
    /// since COMMIT installs the same values either way.
    fn eq(&self, other: &Self) -> bool {
        self.prepare == other.prepare
            && self.index == other.index
            && self.now_ms == other.now_ms
            && self.keys == other.keys
    }
}

/// The transaction state of one shard: prepared parts, their locks, remembered outcomes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Participant {
    prepared: BTreeMap<TxnId, Prepared>,
    locks: HashMap<Vec<u8>, TxnId>,
    /// The transaction whose part locks the whole shard (a whole-keyspace command: KEYS,
    /// SCAN, DBSIZE, RANDOMKEY, FLUSHALL), if any: it is then the only one prepared here.
    whole: Option<TxnId>,
    outcomes: BTreeMap<TxnId, (Outcome, u64)>,
    /// `(decided_ms, id)` of every remembered outcome, oldest first, to forget them in order.
    outcome_times: BTreeSet<(u64, TxnId)>,
}

impl Participant {
    /// Whether nothing is prepared or remembered (a snapshot then needs no section for it).
    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty() && self.outcomes.is_empty()
    }

    /// The keys a COMMIT (or joined COMMITs) entry will write (none for other entries).
    pub fn keys_written_by(&self, entry: &TxnEntry) -> Vec<Vec<u8>> {
        let ids = match entry {
            TxnEntry::Commit(id) => std::slice::from_ref(id),
            TxnEntry::Commits(ids) => ids.as_slice(),
            _ => return Vec::new(),
        };
        ids.iter()
            .filter_map(|id| self.prepared.get(id))
            .flat_map(|prepared| written_keys(&prepared.prepare))
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// How many keys are locked.
    pub fn locked_keys(&self) -> usize {
        self.locks.len()
    }

    /// Applies a transaction entry of log entry `index`, stamped `now_ms`, to `store`.
    pub fn apply(&mut self, store: &mut KvStore, index: u64, now_ms: u64, entry: &TxnEntry) -> Reply {
        let now = store.begin_entry(index, now_ms);
        self.forget_before(now.saturating_sub(OUTCOME_RETENTION_MS));
        match entry {
            TxnEntry::Prepare(prepare) => self.prepare(store, index, now, prepare),
            TxnEntry::Commit(id) => self.commit(store, *id, now),
            TxnEntry::Commits(ids) => {
                Reply::Array(ids.iter().map(|&id| self.commit(store, id, now)).collect())
            }
            TxnEntry::Abort(id) => match self.prepared.remove(id) {
                Some(prepared) => {
                    self.release(&prepared);
                    self.remember(*id, Outcome::Aborted, now)
                }
                None if self.outcomes.contains_key(id) => self.outcome_reply(*id, "ABORT"),
                None => self.remember(*id, Outcome::Aborted, now),
            },
            TxnEntry::Fence(id) if self.prepared.contains_key(id) => Reply::Status("PREPARED"),
            TxnEntry::Fence(id) if self.outcomes.contains_key(id) => self.outcome_reply(*id, "FENCE"),
            TxnEntry::Fence(id) => self.remember(*id, Outcome::Aborted, now),
        }
    }

    fn prepare(&mut self, store: &mut KvStore, index: u64, now: u64, prepare: &Prepare) -> Reply {
        let id = prepare.id;
        if self.outcomes.contains_key(&id) || self.prepared.contains_key(&id) {
            return Reply::ErrorText(format!(
                "TXNABORTED transaction {id} was already decided or prepared here"
            ));
        }
        if now.saturating_sub(prepare.started_ms) > PREPARE_AGE_MAX_MS {
            self.remember(id, Outcome::Aborted, now);
            return Reply::ErrorText(format!(
                "TXNABORTED transaction {id} began more than {PREPARE_AGE_MAX_MS} ms ago"
            ));
        }
        let keys = part_keys(prepare);
        let whole = is_shard_wide(prepare);
        let holder = match whole || self.whole.is_some() {
            // A shard-wide part waits for every other (the oldest first), and every part for
            // a shard-wide one.
            true => self.blocked(Vec::new(), now),
            false => self.holder_of(keys.iter().map(Vec::as_slice), now),
        };
        if let Some(holder) = holder {
            self.remember(id, Outcome::Aborted, now);
            return Reply::Locked(holder);
        }
        if prepare.watched.iter().any(|watched| store.live_version(&watched.key, now) != watched.version) {
            self.remember(id, Outcome::Aborted, now);
            return Reply::NilArray;
        }
        let mut prepared = Prepared { prepare: prepare.clone(), index, now_ms: now, keys, written: None };
        let (replies, mut scratch) = run_part(store, &prepared);
        let misguessed = misguessed_steps(&replies);
        if !misguessed.is_empty() {
            self.remember(id, Outcome::Aborted, now);
            return Reply::ErrorText(format!("{MISGUESS_CODE} {misguessed}"));
        }
        if prepare.vote == Vote::IfEveryReplyIsOne && !every_reply_is_one(&replies) {
            self.remember(id, Outcome::Aborted, now);
            return Reply::Status("ABORTED");
        }
        #[cfg(test)]
        if crate::canary::planted(crate::canary::Canary::PrepareWithoutLocks) {
            self.prepared.insert(id, prepared);
            return replies;
        }
        for key in &prepared.keys {
            self.locks.insert(key.clone(), id);
        }
        if whole {
            self.whole = Some(id);
        } else {
            let written = written_keys(&prepared.prepare)
                .into_iter()
                .map(|key| (key.to_vec(), scratch.remove(key)))
                .collect();
            prepared.written = Some(written);
        }
        self.prepared.insert(id, prepared);
        replies
    }

    /// The lock holder an operation on the shard would wait for, if any: `op` does nothing
    /// while it is [`Some`]. Housekeeping never waits (see [`Participant::unlocked`]).
    pub fn write_blocked(&self, op: &WriteOp, now: u64) -> Option<LockHolder> {
        match op {
            _ if self.prepared.is_empty() => None,
            WriteOp::RemoveExpired { .. } => None,
            op => self.blocked(op.keys(), now),
        }
    }

    /// The lock holder a read must wait for, if any.
    pub fn read_blocked(&self, read: &KvRead, now: u64) -> Option<LockHolder> {
        match read {
            _ if self.prepared.is_empty() => None,
            KvRead::TxnLocks { .. } => None,
            read => self.blocked(read.keys(), now),
        }
    }

    /// The keys among `keys` no transaction locks: what housekeeping may remove, so that a
    /// locked key stays as its transaction found it.
    pub fn unlocked(&self, keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        if self.whole.is_some() {
            return Vec::new();
        }
        if self.locks.is_empty() {
            return keys;
        }
        keys.into_iter().filter(|key| !self.locks.contains_key(key)).collect()
    }

    /// Every prepared transaction whose locks are at least `min_age_ms` old, as
    /// [`Reply::Locked`] elements: what the resolver sweeps.
    pub fn stale(&self, min_age_ms: u64, now: u64) -> Reply {
        let stale = self
            .prepared
            .iter()
            .filter(|(_, prepared)| now.saturating_sub(prepared.now_ms) >= min_age_ms)
            .map(|(&id, prepared)| Reply::Locked(holder(id, prepared, now)));
        Reply::Array(stale.collect())
    }

    fn blocked(&self, keys: Vec<&[u8]>, now: u64) -> Option<LockHolder> {
        if let Some(prepared) = self.whole.as_ref().and_then(|id| self.prepared.get(id)) {
            return Some(holder(prepared.prepare.id, prepared, now));
        }
        if keys.is_empty() {
            // A whole-keyspace operation waits for every lock: the oldest first.
            let (&id, prepared) = self.prepared.iter().min_by_key(|(_, p)| p.index)?;
            return Some(holder(id, prepared, now));
        }
        self.holder_of(keys.into_iter(), now)
    }

    fn holder_of<'a>(&self, mut keys: impl Iterator<Item = &'a [u8]>, now: u64) -> Option<LockHolder> {
        if self.locks.is_empty() {
            return None;
        }
        let id = keys.find_map(|key| self.locks.get(key))?;
        self.prepared.get(id).map(|prepared| holder(*id, prepared, now))
    }

    /// COMMIT of `id`: its prepared part installed and its locks released; its outcome.
    fn commit(&mut self, store: &mut KvStore, id: TxnId, now: u64) -> Reply {
        match self.prepared.remove(&id) {
            Some(prepared) => {
                self.release(&prepared);
                install(store, prepared);
                self.remember(id, Outcome::Committed, now)
            }
            None => self.outcome_reply(id, "COMMIT"),
        }
    }

    fn release(&mut self, prepared: &Prepared) {
        for key in &prepared.keys {
            self.locks.remove(key);
        }
        if self.whole == Some(prepared.prepare.id) {
            self.whole = None;
        }
    }

    fn remember(&mut self, id: TxnId, outcome: Outcome, now: u64) -> Reply {
        self.outcomes.insert(id, (outcome, now));
        self.outcome_times.insert((now, id));
        Reply::Status(outcome.status())
    }

    fn outcome_reply(&self, id: TxnId, verb: &str) -> Reply {
        match self.outcomes.get(&id) {
            Some((outcome, _)) => Reply::Status(outcome.status()),
            None => Reply::ErrorText(format!(
                "TXNUNKNOWN {verb} of transaction {id}, which this shard does not know"
            )),
        }
    }

    fn forget_before(&mut self, cutoff: u64) {
        while let Some(&(at, id)) = self.outcome_times.first() {
            if at >= cutoff {
                break;
            }
            self.outcome_times.pop_first();
            self.outcomes.remove(&id);
        }
    }

    /// The participant's state for a snapshot: `count:u32` prepared parts (`index:u64
    /// now_ms:u64 prepare:bytes`, the PREPARE entry), `count:u32` outcomes (`id:u128
    /// outcome:u8 decided_ms:u64`).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.u32(u32::try_from(self.prepared.len()).unwrap_or(u32::MAX));
        for prepared in self.prepared.values() {
            e.u64(prepared.index);
            e.u64(prepared.now_ms);
            e.bytes(&TxnEntry::Prepare(prepared.prepare.clone()).encode());
        }
        e.u32(u32::try_from(self.outcomes.len()).unwrap_or(u32::MAX));
        for (id, (outcome, at)) in &self.outcomes {
            e.u64(id.0 as u64);
            e.u64((id.0 >> 64) as u64);
            e.u8(matches!(outcome, Outcome::Committed) as u8);
            e.u64(*at);
        }
        e.finish()
    }

    /// Reads back what [`Participant::encode`] wrote; never panics, bounded allocation.
    pub fn decode(bytes: &[u8]) -> Result<Participant, DecodeError> {
        let mut d = Decoder::new(bytes, "transaction participant");
        let mut participant = Participant::default();
        for _ in 0..d.count(RECORDS_MAX, 20)? {
            let (index, now_ms) = (d.u64()?, d.u64()?);
            let entry = d.bytes(crate::limits::COMMAND_BYTES_MAX)?;
            let Ok((_, TxnEntry::Prepare(prepare))) = TxnEntry::decode(entry) else {
                return Err(d.error("a prepared part that is not a PREPARE entry"));
            };
            let keys = part_keys(&prepare);
            for key in &keys {
                participant.locks.insert(key.clone(), prepare.id);
            }
            if is_shard_wide(&prepare) {
                participant.whole = Some(prepare.id);
            }
            participant.prepared.insert(prepare.id, Prepared { prepare, index, now_ms, keys, written: None });
        }
        for _ in 0..d.count(RECORDS_MAX, 25)? {
            let low = d.u64()?;
            let id = TxnId((u128::from(d.u64()?) << 64) | u128::from(low));
            let outcome = match d.u8()? {
                0 => Outcome::Aborted,
                1 => Outcome::Committed,
                _ => return Err(d.error("unknown outcome")),
            };
            let at = d.u64()?;
            participant.outcomes.insert(id, (outcome, at));
            participant.outcome_times.insert((at, id));
        }
        d.finish()?;
        Ok(participant)
    }
}

/// The indexes, space-separated, of the steps that answered [`MISGUESSED`].
fn misguessed_steps(replies: &Reply) -> String {
    let Reply::Array(items) = replies else { return String::new() };
    let misguessed =
        items.iter().enumerate().filter(|(_, item)| matches!(item, Reply::ErrorText(t) if t == MISGUESSED));
    misguessed.map(|(i, _)| i.to_string()).collect::<Vec<_>>().join(" ")
}

fn every_reply_is_one(replies: &Reply) -> bool {
    matches!(replies, Reply::Array(items) if items.iter().all(|item| *item == Reply::Integer(1)))
}

fn holder(id: TxnId, prepared: &Prepared, now: u64) -> LockHolder {
    LockHolder {
        txn: id.0,
        participants: prepared.prepare.participants.clone(),
        age_ms: now.saturating_sub(prepared.now_ms),
    }
}

/// The keys a part locks: its commands' and its watched keys.
fn part_keys(prepare: &Prepare) -> BTreeSet<Vec<u8>> {
    let steps = prepare.steps.iter().flat_map(TxnStep::keys).map(<[u8]>::to_vec);
    steps.chain(prepare.watched.iter().map(|watched| watched.key.clone())).collect()
}

/// Whether a part holds a whole-keyspace command, and so locks and reads the whole shard.
fn is_shard_wide(prepare: &Prepare) -> bool {
    prepare.steps.iter().any(|step| step.keys().is_empty())
}

/// Runs a prepared part on a scratch copy of its keys (of the whole key space for a
/// shard-wide part: a copy of every key's entry, the values shared), at its PREPARE's index
/// and time: its replies, and the scratch key space it left.
fn run_part(store: &KvStore, prepared: &Prepared) -> (Reply, KvStore) {
    let mut scratch = match is_shard_wide(&prepared.prepare) {
        true => store.rewound(),
        false => store.scratch(prepared.keys.iter().map(Vec::as_slice)),
    };
    let op = WriteOp::Transaction { steps: prepared.prepare.steps.clone(), watched: Vec::new() };
    let reply = scratch.apply_at(prepared.index, &KvWrite { now_ms: prepared.now_ms, op });
    (reply, scratch)
}

/// The keys a part's write commands touch.
fn written_keys(prepare: &Prepare) -> BTreeSet<&[u8]> {
    prepare.steps.iter().filter(|step| matches!(step, TxnStep::Write(_))).flat_map(TxnStep::keys).collect()
}

/// COMMIT: the part's writes installed in `store`: as PREPARE left them when it kept them,
/// else as running the part again leaves them (for a shard-wide part, the whole key space it
/// left: nothing else changed while it held the shard).
fn install(store: &mut KvStore, prepared: Prepared) {
    if let Some(written) = prepared.written {
        for (key, value) in written {
            store.place(&key, value);
        }
        return;
    }
    let (_, scratch) = run_part(store, &prepared);
    if is_shard_wide(&prepared.prepare) {
        store.replace_keys(scratch);
        return;
    }
    for key in written_keys(&prepared.prepare) {
        store.place(key, scratch.value(key).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{SetCondition, SetTtl, WatchedKey};

    fn set(key: &str, value: &str) -> TxnStep {
        TxnStep::Write(WriteOp::Set {
            key: key.into(),
            value: value.into(),
            condition: SetCondition::Always,
            ttl: SetTtl::Clear,
            get: false,
        })
    }

    fn get(key: &str) -> KvRead {
        KvRead::Get { key: key.into() }
    }

    fn prepare(id: u128, steps: Vec<TxnStep>) -> TxnEntry {
        TxnEntry::Prepare(Prepare {
            id: TxnId(id),
            participants: vec![1, 2],
            started_ms: 1_000,
            steps,
            watched: Vec::new(),
            vote: Vote::Always,
        })
    }

    #[test]
    fn a_prepared_part_locks_its_keys_and_writes_only_at_commit() {
        let (mut store, mut participant) = (KvStore::new(), Participant::default());
        let reply = participant.apply(
            &mut store,
            1,
            1_000,
            &prepare(7, vec![set("a", "1"), TxnStep::Read(get("a"))]),
        );
        assert_eq!(reply, Reply::Array(vec![Reply::Ok, Reply::Bulk(b"1".to_vec())]));
        assert_eq!(store.read(&get("a"), 1_000), Reply::Nil, "nothing written at prepare");
        let holder = participant.read_blocked(&get("a"), 1_500).expect("locked");
        assert_eq!((holder.txn, holder.age_ms, holder.participants), (7, 500, vec![1, 2]));
        assert!(participant.write_blocked(&WriteOp::FlushAll, 1_500).is_some(), "whole-keyspace writes wait");
        assert!(participant.read_blocked(&get("b"), 1_500).is_none());
        // Another transaction on the same key is refused, and remembered as aborted.
        let refused = participant.apply(&mut store, 2, 1_000, &prepare(8, vec![set("a", "2")]));
        assert!(matches!(refused, Reply::Locked(LockHolder { txn: 7, .. })), "{refused:?}");
        let late = participant.apply(&mut store, 3, 1_000, &prepare(8, vec![set("b", "2")]));
        assert!(matches!(late, Reply::ErrorText(ref t) if t.starts_with("TXNABORTED")), "{late:?}");
        // A snapshot keeps the prepared part.
        let restored = Participant::decode(&participant.encode()).expect("decodes");
        assert_eq!(restored, participant);
        assert_eq!(
            participant.apply(&mut store, 4, 2_000, &TxnEntry::Commit(TxnId(7))),
            Reply::Status("COMMITTED")
        );
        assert_eq!(store.read(&get("a"), 2_000), Reply::Bulk(b"1".to_vec()));
        assert_eq!(store.live_version(b"a", 2_000), 1, "the key's version is its prepare's index");
        assert!(participant.read_blocked(&get("a"), 2_000).is_none(), "released");
        assert_eq!(
            participant.apply(&mut store, 5, 2_000, &TxnEntry::Abort(TxnId(7))),
            Reply::Status("COMMITTED")
        );
        store.check_indexes();
    }

    #[test]
    fn a_commit_installs_what_running_the_part_again_would() {
        let incr = |key: &str| TxnStep::Write(WriteOp::IncrBy { key: key.into(), delta: 5 });
        let expire = TxnStep::Write(WriteOp::Expire {
            key: b"n".to_vec(),
            when: crate::kv::ExpireTime::At(90_000),
            condition: crate::kv::ExpireCondition::Always,
        });
        let del = TxnStep::Write(WriteOp::Del { keys: vec![b"gone".to_vec()] });
        let mut store = KvStore::new();
        store.apply_at(
            1,
            &KvWrite {
                now_ms: 1_000,
                op: WriteOp::Set {
                    key: b"gone".to_vec(),
                    value: b"x".to_vec(),
                    condition: crate::kv::SetCondition::Always,
                    ttl: crate::kv::SetTtl::Clear,
                    get: false,
                },
            },
        );
        store.apply_at(2, &KvWrite { now_ms: 1_000, op: WriteOp::IncrBy { key: b"n".to_vec(), delta: 1 } });
        let mut participant = Participant::default();
        let part = prepare(7, vec![incr("n"), expire, incr("new"), del]);
        assert_eq!(
            participant.apply(&mut store, 3, 1_000, &part),
            Reply::Array(vec![Reply::Integer(6), Reply::Integer(1), Reply::Integer(5), Reply::Integer(1)])
        );
        // A replica restored from a snapshot keeps the commands only, and runs them again.
        let mut restored = Participant::decode(&participant.encode()).expect("decodes");
        let mut restored_store = store.clone();
        for (participant, store) in [(&mut participant, &mut store), (&mut restored, &mut restored_store)] {
            assert_eq!(
                participant.apply(store, 4, 2_000, &TxnEntry::Commit(TxnId(7))),
                Reply::Status("COMMITTED")
            );
            store.check_indexes();
        }
        assert!(store == restored_store, "kept result and run again differ");
        assert_eq!(store.read(&get("n"), 2_000), Reply::Bulk(b"6".to_vec()));
        assert_eq!(store.read(&get("new"), 2_000), Reply::Bulk(b"5".to_vec()));
        assert_eq!(store.read(&get("gone"), 2_000), Reply::Nil);
        assert_eq!(store.live_version(b"n", 2_000), 3, "the key's version is its prepare's index");
    }

    #[test]
    fn joined_commits_commit_each_transaction_in_turn() {
        let (mut store, mut participant) = (KvStore::new(), Participant::default());
        for (index, (id, key)) in [(1u128, "a"), (2, "b"), (3, "c")].into_iter().enumerate() {
            let reply =
                participant.apply(&mut store, index as u64 + 1, 1_000, &prepare(id, vec![set(key, key)]));
            assert_eq!(reply, Reply::Array(vec![Reply::Ok]));
        }
        participant.apply(&mut store, 4, 1_000, &TxnEntry::Abort(TxnId(2)));
        let joined = TxnEntry::Commits(vec![TxnId(3), TxnId(2), TxnId(9), TxnId(1)]);
        assert_eq!(participant.keys_written_by(&joined), vec![b"c".to_vec(), b"a".to_vec()]);
        let Reply::Array(replies) = participant.apply(&mut store, 5, 2_000, &joined) else {
            panic!("joined commits answer an array")
        };
        assert_eq!(replies.get(..2), Some(&[Reply::Status("COMMITTED"), Reply::Status("ABORTED")][..]));
        assert!(
            matches!(replies.get(2), Some(Reply::ErrorText(t)) if t.starts_with("TXNUNKNOWN")),
            "{replies:?}"
        );
        assert_eq!(replies.get(3), Some(&Reply::Status("COMMITTED")));
        assert_eq!(store.read(&get("a"), 2_000), Reply::Bulk(b"a".to_vec()));
        assert_eq!(store.read(&get("b"), 2_000), Reply::Nil, "aborted");
        assert_eq!(store.read(&get("c"), 2_000), Reply::Bulk(b"c".to_vec()));
        assert_eq!(participant.locked_keys(), 0);
    }

    #[test]
    fn a_fence_before_the_prepare_aborts_it_for_good_and_a_fence_after_it_does_not() {
        let (mut store, mut participant) = (KvStore::new(), Participant::default());
        assert_eq!(
            participant.apply(&mut store, 1, 1_000, &TxnEntry::Fence(TxnId(1))),
            Reply::Status("ABORTED")
        );
        let late = participant.apply(&mut store, 2, 1_000, &prepare(1, vec![set("a", "1")]));
        assert!(matches!(late, Reply::ErrorText(_)), "{late:?}");
        assert!(matches!(
            participant.apply(&mut store, 3, 1_000, &prepare(2, vec![set("a", "1")])),
            Reply::Array(_)
        ));
        assert_eq!(
            participant.apply(&mut store, 4, 1_000, &TxnEntry::Fence(TxnId(2))),
            Reply::Status("PREPARED")
        );
        assert_eq!(
            participant.apply(&mut store, 5, 1_000, &TxnEntry::Abort(TxnId(2))),
            Reply::Status("ABORTED")
        );
        assert_eq!(store.read(&get("a"), 1_000), Reply::Nil);
        assert_eq!(participant.locked_keys(), 0);
        assert!(matches!(
            participant.apply(&mut store, 6, 1_000, &TxnEntry::Commit(TxnId(3))),
            Reply::ErrorText(_)
        ));
    }

    #[test]
    fn watched_keys_votes_and_old_prepares_refuse_and_outcomes_are_forgotten_in_time() {
        let (mut store, mut participant) = (KvStore::new(), Participant::default());
        let mut watching = prepare(1, vec![set("a", "1")]);
        if let TxnEntry::Prepare(p) = &mut watching {
            p.watched = vec![WatchedKey { key: b"w".to_vec(), version: 9 }];
        }
        assert_eq!(participant.apply(&mut store, 1, 1_000, &watching), Reply::NilArray);
        let mut voting =
            prepare(2, vec![TxnStep::Write(WriteOp::MSetNx { pairs: vec![(b"k".to_vec(), b"v".to_vec())] })]);
        store.apply_at(2, &crate::kv::KvWrite { now_ms: 1_000, op: WriteOp::Del { keys: vec![] } });
        participant.apply(&mut store, 3, 1_000, &prepare(9, vec![set("k", "x")]));
        participant.apply(&mut store, 4, 1_000, &TxnEntry::Commit(TxnId(9)));
        if let TxnEntry::Prepare(p) = &mut voting {
            p.vote = Vote::IfEveryReplyIsOne;
        }
        assert_eq!(participant.apply(&mut store, 5, 1_000, &voting), Reply::Status("ABORTED"), "k exists");
        let old = prepare(3, vec![set("b", "1")]);
        let refused = participant.apply(&mut store, 6, 1_000 + PREPARE_AGE_MAX_MS + 1, &old);
        assert!(matches!(refused, Reply::ErrorText(_)), "{refused:?}");
        assert!(!participant.is_empty());
        participant.apply(&mut store, 7, 10 * OUTCOME_RETENTION_MS, &TxnEntry::Fence(TxnId(100)));
        assert_eq!(participant.outcomes.len(), 1, "only the newest outcome is remembered");
    }

    #[test]
    fn a_shard_wide_part_locks_every_key_and_waits_for_every_other_part() {
        let (mut store, mut participant) = (KvStore::new(), Participant::default());
        store.apply_at(
            1,
            &KvWrite { now_ms: 1_000, op: WriteOp::MSet { pairs: vec![(b"a".to_vec(), b"1".to_vec())] } },
        );
        assert!(matches!(
            participant.apply(&mut store, 2, 1_000, &prepare(1, vec![set("b", "2")])),
            Reply::Array(_)
        ));
        let flush = prepare(2, vec![TxnStep::Read(KvRead::DbSize), TxnStep::Write(WriteOp::FlushAll)]);
        let refused = participant.apply(&mut store, 3, 1_000, &flush);
        assert!(matches!(refused, Reply::Locked(LockHolder { txn: 1, .. })), "{refused:?}");
        participant.apply(&mut store, 4, 1_000, &TxnEntry::Commit(TxnId(1)));
        let flush = prepare(3, vec![TxnStep::Read(KvRead::DbSize), TxnStep::Write(WriteOp::FlushAll)]);
        let replies = participant.apply(&mut store, 5, 1_000, &flush);
        assert_eq!(replies, Reply::Array(vec![Reply::Integer(2), Reply::Ok]));
        assert_eq!(store.read(&KvRead::DbSize, 1_000), Reply::Integer(2), "nothing flushed before COMMIT");
        assert!(participant.read_blocked(&get("z"), 1_000).is_some(), "every key waits");
        assert!(participant.unlocked(vec![b"a".to_vec()]).is_empty(), "housekeeping too");
        let keyed = participant.apply(&mut store, 6, 1_000, &prepare(4, vec![set("z", "1")]));
        assert!(matches!(keyed, Reply::Locked(LockHolder { txn: 3, .. })), "{keyed:?}");
        assert_eq!(Participant::decode(&participant.encode()).expect("decodes"), participant);
        participant.apply(&mut store, 7, 2_000, &TxnEntry::Commit(TxnId(3)));
        assert_eq!(store.read(&KvRead::DbSize, 2_000), Reply::Integer(0));
        assert_eq!(store.time_ms(), 2_000, "the store keeps its own time");
        assert!(participant.read_blocked(&get("z"), 2_000).is_none());
        store.check_indexes();
    }
}
