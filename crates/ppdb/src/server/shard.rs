//! The key-value state machine as the node runtime replicates it: one [`KvShard`] per shard.
//!
//! Time: the shard's leader stamps each entry with its time ([`KvWrite::stamp`]) and answers
//! reads at the later of its clock and the log's time ([`KvStore::time_ms`]). A read that would
//! see a key expire before the log's time reaches its expiry first has the leader commit the
//! key's removal ([`StateMachine::time_entry`]): once a client saw a key expired, no leader
//! shows it again, whatever its clock.
//!
//! Scripts: an entry carrying a script call ([`WriteOp::Script`]) is run here, by the shard's
//! Lua state ([`ScriptEngine`]), which applies the script's commands to the key space one by
//! one inside the entry; the key space itself knows no Lua.
//!
//! Cross-shard transactions: the shard's [`Participant`] applies the transaction protocol's
//! entries ([`TxnEntry`]) and holds their locks; every other write and read first asks it
//! whether a key it touches is locked, and is refused with [`Reply::Locked`] (changing
//! nothing) if so, for the server to wait and retry.
//!
//! Blocked clients: after each write the shard tells `server::blocking::waiters` which keys
//! that clients wait on it created, and the reply of a blocked client's attempt, so the client
//! is woken by its own node's replica and learns what its pop did even if the leader's answer
//! was lost.

use super::blocking::waiters;
use super::memory::ShardMemory;
use super::script::ScriptEngine;
use crate::kv::{KvRead, KvStore, KvWrite, Reply, WriteOp};
use crate::node::state_machine::SnapshotJob;
use crate::node::StateMachine;
use crate::txn::{LockGauge, Participant, TxnEntry};
use ppdb_raft::LogIndex;
use std::io::Read;

/// Most expired keys removed by one housekeeping entry.
const EXPIRED_KEYS_PER_ENTRY_MAX: usize = 256;

/// One shard's key space, driven by its Raft group.
#[derive(Debug, Default)]
pub struct KvShard {
    store: KvStore,
    /// The shard's part of the node's used memory, kept equal to its data bytes.
    memory: ShardMemory,
    /// Runs the scripts of script entries.
    scripts: ScriptEngine,
    /// Cross-shard transactions prepared here, their locks, and remembered outcomes.
    participant: Participant,
    /// The shard's part of the node's locked keys.
    locks: LockGauge,
}

/// Reads into `buf` until it is full or the image ends; how many bytes it read.
fn read_up_to(image: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match image.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// First bytes of a snapshot whose shard had cross-shard transactions in flight or
/// remembered: `magic len:u64-le` and that many bytes of [`Participant::encode`], then the
/// key space's image (which starts with its own magic, `PPKV`).
const PARTICIPANT_MAGIC: &[u8; 4] = b"PPTX";

impl KvShard {
    /// Whether `key` holds a live value at the log's time.
    fn exists(&self, key: &[u8]) -> bool {
        self.store.get_live(key, self.store.time_ms()).is_some()
    }

    /// Applies a transaction protocol entry.
    fn apply_txn(&mut self, index: LogIndex, command: &[u8]) -> Result<Reply, String> {
        let (now_ms, entry) =
            TxnEntry::decode(command).map_err(|e| format!("undecodable transaction entry: {e}"))?;
        // Blocked clients wait for keys a commit may create.
        let written = WriteOp::Del { keys: self.participant.keys_written_by(&entry) };
        let absent = waiters::absent_watched_keys(&written, |key| self.exists(key));
        let reply = self.participant.apply(&mut self.store, index.0, now_ms, &entry);
        self.memory.publish(self.store.data_bytes());
        self.locks.publish(self.participant.locked_keys() as u64);
        waiters::applied(&written, &reply, &absent, |key| self.exists(key));
        Ok(reply)
    }

    /// The snapshot's transaction section: empty when there is nothing to keep.
    fn participant_section(&self) -> Vec<u8> {
        if self.participant.is_empty() {
            return Vec::new();
        }
        let body = self.participant.encode();
        let mut section = Vec::with_capacity(PARTICIPANT_MAGIC.len() + 8 + body.len());
        section.extend_from_slice(PARTICIPANT_MAGIC);
        section.extend_from_slice(&(body.len() as u64).to_le_bytes());
        section.extend_from_slice(&body);
        section
    }
}

impl StateMachine for KvShard {
    type Query = KvRead;
    type Output = Reply;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Result<Reply, String> {
        if TxnEntry::is_entry(command) {
            return self.apply_txn(index, command);
        }
        let mut write =
            KvWrite::decode(command).map_err(|e| format!("undecodable key-value command: {e}"))?;
        if let WriteOp::RemoveExpired { keys } = &mut write.op {
            // A locked key stays as its transaction found it until the transaction ends.
            *keys = self.participant.unlocked(std::mem::take(keys));
        }
        let now = write.now_ms.max(self.store.time_ms());
        if let Some(holder) = self.participant.write_blocked(&write.op, now) {
            self.store.begin_entry(index.0, write.now_ms);
            return Ok(Reply::Locked(holder));
        }
        let absent = waiters::absent_watched_keys(&write.op, |key| self.exists(key));
        let reply = match &write.op {
            WriteOp::Script(call) => {
                let now_ms = self.store.begin_entry(index.0, write.now_ms);
                self.scripts.run(&mut self.store, call, index.0, now_ms)
            }
            _ => self.store.apply_at(index.0, &write),
        };
        self.memory.publish(self.store.data_bytes());
        waiters::applied(&write.op, &reply, &absent, |key| self.exists(key));
        Ok(reply)
    }

    fn query(&self, query: &KvRead, now_ms: u64) -> Reply {
        let now = now_ms.max(self.store.time_ms());
        if let KvRead::TxnLocks { min_age_ms } = query {
            return self.participant.stale(*min_age_ms, now);
        }
        if let Some(holder) = self.participant.read_blocked(query, now) {
            return Reply::Locked(holder);
        }
        self.store.read(query, now)
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut image = self.participant_section();
        image.extend_from_slice(&self.store.snapshot());
        image
    }

    fn snapshot_job(&self) -> SnapshotJob {
        // Streamed into the snapshot file: no image of the whole key space is built in memory.
        let frozen = self.store.freeze();
        let section = self.participant_section();
        Box::new(move |out| {
            out.write_all(&section)?;
            frozen.serialize_into(out).map(drop)
        })
    }

    fn restore(data: &[u8]) -> Result<Self, String> {
        KvShard::restore_from(&mut &data[..])
    }

    fn restore_from(image: &mut dyn Read) -> Result<Self, String> {
        // Empty data is the empty initial state.
        let mut first = [0u8; 1];
        let read = loop {
            match image.read(&mut first) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.map_err(|e| format!("reading the snapshot: {e}"))?,
            }
        };
        if read == 0 {
            return Ok(KvShard::default());
        }
        let mut participant = Participant::default();
        let mut head = first.to_vec();
        if first[0] == PARTICIPANT_MAGIC[0] {
            // The key space's own image starts with a `P` too, and may be shorter than this.
            let mut rest = [0u8; PARTICIPANT_MAGIC.len() - 1 + 8];
            let read = read_up_to(image, &mut rest).map_err(|e| format!("reading the snapshot: {e}"))?;
            head.extend_from_slice(&rest[..read]);
        }
        let mut image: Box<dyn Read + '_> = if head.starts_with(PARTICIPANT_MAGIC) {
            let len_bytes: [u8; 8] =
                head[PARTICIPANT_MAGIC.len()..].try_into().map_err(|_| "short snapshot")?;
            let len = u64::from_le_bytes(len_bytes);
            if len > crate::limits::SNAPSHOT_TXN_SECTION_BYTES_MAX {
                return Err(format!("the snapshot's transaction section claims {len} bytes"));
            }
            let mut section = vec![0u8; len as usize];
            image.read_exact(&mut section).map_err(|e| format!("reading the snapshot: {e}"))?;
            participant = Participant::decode(&section).map_err(|e| e.to_string())?;
            Box::new(image)
        } else {
            Box::new((&head[..]).chain(image))
        };
        let store = KvStore::restore_from(&mut image).map_err(|e| e.to_string())?;
        let mut memory = ShardMemory::default();
        memory.publish(store.data_bytes());
        waiters::restored();
        let mut locks = LockGauge::default();
        locks.publish(participant.locked_keys() as u64);
        Ok(KvShard { store, memory, scripts: ScriptEngine::default(), participant, locks })
    }

    fn housekeeping(&self, now_ms: u64) -> Option<Vec<u8>> {
        let now_ms = now_ms.max(self.store.time_ms());
        let keys = self.store.expired_keys(now_ms, EXPIRED_KEYS_PER_ENTRY_MAX);
        // A delayed flush_all that has come is done by the next entry applied: this one.
        if keys.is_empty() && !self.store.flush_due(now_ms) {
            return None;
        }
        Some(KvWrite::unstamped(WriteOp::RemoveExpired { keys }).encode())
    }

    fn stamp(command: &mut [u8], time_ms: u64) {
        if !TxnEntry::stamp(command, time_ms) {
            KvWrite::stamp(command, time_ms);
        }
    }

    fn stamped_time(command: &[u8]) -> Option<u64> {
        TxnEntry::stamped_time(command).or_else(|| KvWrite::stamped_time(command))
    }

    fn time_ms(&self) -> u64 {
        self.store.time_ms()
    }

    fn time_entry(&self, query: &KvRead, now_ms: u64) -> Option<Vec<u8>> {
        let keys = self.store.newly_expired(query, now_ms, EXPIRED_KEYS_PER_ENTRY_MAX);
        let flush_comes = self.store.flush_due(now_ms) && !self.store.flush_due(self.store.time_ms());
        if keys.is_empty() && !flush_comes {
            return None;
        }
        // Its time is at least `now_ms`: every key expired by then is expired in the log, and
        // these are removed.
        Some(KvWrite::unstamped(WriteOp::RemoveExpired { keys }).encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{SetCondition, SetTtl};

    fn set(shard: &mut KvShard, index: u64, key: &str) {
        let op = WriteOp::Set {
            key: key.as_bytes().to_vec(),
            value: vec![b'v'; 100],
            condition: SetCondition::Always,
            ttl: SetTtl::Clear,
            get: false,
        };
        let reply = shard.apply(LogIndex(index), &KvWrite { now_ms: 1, op }.encode());
        assert_eq!(reply, Ok(Reply::Ok));
    }

    /// Applies `op` as an entry the leader stamped at `time_ms`.
    fn apply_at(shard: &mut KvShard, index: u64, time_ms: u64, op: WriteOp) -> Reply {
        let mut command = KvWrite::unstamped(op).encode();
        <KvShard as StateMachine>::stamp(&mut command, time_ms);
        assert_eq!(<KvShard as StateMachine>::stamped_time(&command), Some(time_ms));
        shard.apply(LogIndex(index), &command).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn reads_are_judged_no_earlier_than_the_logs_time_and_record_expiries_it_has_not_reached() {
        let mut shard = KvShard::default();
        let op = WriteOp::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            condition: SetCondition::Always,
            ttl: SetTtl::After(1_000),
            get: false,
        };
        assert_eq!(apply_at(&mut shard, 1, 50_000, op), Reply::Ok);
        assert_eq!(shard.time_ms(), 50_000);
        let get = KvRead::Get { key: b"k".to_vec() };
        // A leader whose clock is 10 s behind answers at the log's time.
        assert_eq!(shard.query(&KvRead::PTtl { key: b"k".to_vec() }, 40_000), Reply::Integer(1_000));
        assert_eq!(shard.time_entry(&get, 40_000), None);
        assert_eq!(shard.time_entry(&get, 51_000), None, "alive at its expiry");
        // Past the expiry by the clock only: the removal goes through the log first.
        let entry = shard.time_entry(&get, 51_001).map(|bytes| KvWrite::decode(&bytes));
        let removal = WriteOp::RemoveExpired { keys: vec![b"k".to_vec()] };
        assert_eq!(entry, Some(Ok(KvWrite::unstamped(removal.clone()))));
        assert_eq!(apply_at(&mut shard, 2, 51_001, removal), Reply::Integer(1));
        assert_eq!(shard.query(&get, 0), Reply::Nil, "expired at the log's time, whatever the clock");
        assert_eq!(shard.time_entry(&get, 60_000), None);
    }

    #[test]
    fn housekeeping_finds_keys_expired_at_the_logs_time_on_a_leader_whose_clock_is_behind() {
        let mut shard = KvShard::default();
        let op = |key: &str, ttl| WriteOp::Set {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            condition: SetCondition::Always,
            ttl,
            get: false,
        };
        apply_at(&mut shard, 1, 10_000, op("k", SetTtl::After(10)));
        apply_at(&mut shard, 2, 20_000, op("other", SetTtl::Clear));
        let command = shard.housekeeping(5_000).map(|bytes| KvWrite::decode(&bytes).map(|w| w.op));
        assert_eq!(command, Some(Ok(WriteOp::RemoveExpired { keys: vec![b"k".to_vec()] })));
    }

    #[test]
    fn a_snapshot_job_streams_what_restore_reads_back() {
        let mut shard = KvShard::default();
        for i in 0..1000 {
            set(&mut shard, i + 1, &format!("key:{i}"));
        }
        let job = shard.snapshot_job();
        set(&mut shard, 1001, "after the freeze");
        let mut image = Vec::new();
        job(&mut image).unwrap();
        let restored = KvShard::restore_from(&mut &image[..]).unwrap();
        assert_eq!(restored.store.len_including_expired(), 1000);
        assert_eq!(KvShard::restore(&[]).map(|s| s.store.len_including_expired()), Ok(0));
    }

    #[test]
    fn snapshots_keep_prepared_transactions_and_an_empty_key_space_restores() {
        use crate::txn::{Prepare, TxnId, Vote};
        let empty = KvShard::default();
        let image = empty.snapshot();
        assert_eq!(KvShard::restore(&image).map(|s| s.store.len_including_expired()), Ok(0));
        // Shorter than the transaction section's header, and starting with its first byte.
        assert!(KvShard::restore(b"PP").is_err());
        let mut shard = KvShard::default();
        let prepare = TxnEntry::Prepare(Prepare {
            id: TxnId(9),
            participants: vec![1, 2],
            started_ms: 1,
            steps: vec![crate::kv::TxnStep::Write(WriteOp::Del { keys: vec![b"k".to_vec()] })],
            watched: Vec::new(),
            vote: Vote::Always,
        });
        let mut command = prepare.encode();
        <KvShard as StateMachine>::stamp(&mut command, 10);
        assert!(matches!(shard.apply(LogIndex(1), &command), Ok(Reply::Array(_))));
        let get = KvRead::Get { key: b"k".to_vec() };
        assert!(matches!(shard.query(&get, 10), Reply::Locked(_)));
        let mut streamed = Vec::new();
        shard.snapshot_job()(&mut streamed).unwrap();
        for image in [shard.snapshot(), streamed] {
            let restored = KvShard::restore(&image).unwrap();
            assert!(matches!(restored.query(&get, 10), Reply::Locked(_)), "the lock survives the snapshot");
        }
    }
}
