//! The key-value state machine as the node runtime replicates it: one [`KvShard`] per shard.

use crate::kv::{KvRead, KvStore, KvWrite, Reply, WriteOp};
use crate::node::state_machine::SnapshotJob;
use crate::node::StateMachine;
use ppdb_raft::LogIndex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A snapshot's buffer starts 1/8 larger than the previous snapshot, for the writes since.
const SNAPSHOT_GROWTH_ALLOWANCE_DIVISOR: usize = 8;

/// Most expired keys removed by one housekeeping entry.
const EXPIRED_KEYS_PER_ENTRY_MAX: usize = 256;

/// A linearizable read of a shard, judged against the serving node's clock for expiry.
#[derive(Debug, Clone)]
pub struct ShardQuery {
    /// The read.
    pub read: KvRead,
    /// Milliseconds since the Unix epoch on the serving node.
    pub now_ms: u64,
}

/// One shard's key space, driven by its Raft group.
#[derive(Debug, Default)]
pub struct KvShard {
    store: KvStore,
    /// Size of the last snapshot serialized, set by the snapshot job on its thread: the next
    /// one's buffer starts at about that size (see [`crate::kv::FrozenKv::serialize`]).
    last_snapshot_bytes: Arc<AtomicUsize>,
}

impl StateMachine for KvShard {
    type Query = ShardQuery;
    type Output = Reply;

    fn apply(&mut self, _index: LogIndex, command: &[u8]) -> Result<Reply, String> {
        let write = KvWrite::decode(command).map_err(|e| format!("undecodable key-value command: {e}"))?;
        Ok(self.store.apply(&write))
    }

    fn query(&self, query: &ShardQuery) -> Reply {
        self.store.read(&query.read, query.now_ms)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.store.snapshot()
    }

    fn snapshot_job(&self) -> SnapshotJob {
        let frozen = self.store.freeze();
        let last_bytes = Arc::clone(&self.last_snapshot_bytes);
        Box::new(move || {
            let previous = last_bytes.load(Ordering::Relaxed);
            let data = frozen.serialize(previous + previous / SNAPSHOT_GROWTH_ALLOWANCE_DIVISOR);
            last_bytes.store(data.len(), Ordering::Relaxed);
            data
        })
    }

    fn restore(data: &[u8]) -> Result<Self, String> {
        if data.is_empty() {
            return Ok(KvShard::default());
        }
        KvStore::restore(data)
            .map(|store| KvShard { store, last_snapshot_bytes: Arc::new(AtomicUsize::new(data.len())) })
            .map_err(|e| e.to_string())
    }

    fn housekeeping(&self, now_ms: u64) -> Option<Vec<u8>> {
        let keys = self.store.expired_keys(now_ms, EXPIRED_KEYS_PER_ENTRY_MAX);
        if keys.is_empty() {
            return None;
        }
        Some(KvWrite { now_ms, op: WriteOp::RemoveExpired { keys } }.encode())
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

    #[test]
    fn a_snapshot_buffer_starts_at_the_previous_snapshots_size() {
        let mut shard = KvShard::default();
        for i in 0..1000 {
            set(&mut shard, i + 1, &format!("key:{i}"));
        }
        let first = (shard.snapshot_job())();
        set(&mut shard, 1001, "one more");
        let second = (shard.snapshot_job())();
        assert!(second.len() > first.len());
        // Sized once, up front (not grown from empty by doubling, each step a copy into fresh
        // pages), and large enough for the writes since the first snapshot.
        let expected = first.len() + first.len() / SNAPSHOT_GROWTH_ALLOWANCE_DIVISOR;
        assert_eq!(second.capacity(), expected, "{} bytes", second.len());
        assert_eq!(KvShard::restore(&second).map(|s| s.snapshot()), Ok(second.clone()));
    }
}
