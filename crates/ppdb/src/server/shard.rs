//! The key-value state machine as the node runtime replicates it: one [`KvShard`] per shard.

use super::memory::ShardMemory;
use crate::kv::{KvRead, KvStore, KvWrite, Reply, WriteOp};
use crate::node::state_machine::SnapshotJob;
use crate::node::StateMachine;
use ppdb_raft::LogIndex;
use std::io::Read;

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
    /// The shard's part of the node's used memory, kept equal to its data bytes.
    memory: ShardMemory,
}

impl StateMachine for KvShard {
    type Query = ShardQuery;
    type Output = Reply;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Reply {
        match KvWrite::decode(command) {
            Ok(write) => {
                let reply = self.store.apply(&write);
                self.memory.publish(self.store.data_bytes());
                reply
            }
            Err(e) => {
                // Every replica decodes the same bytes the same way, so skipping is
                // deterministic; but it means a bug or a version mismatch: say so loudly.
                tracing::error!(index = index.0, error = %e, "undecodable key-value command in the log; skipped");
                Reply::Nil
            }
        }
    }

    fn query(&self, query: &ShardQuery) -> Reply {
        self.store.read(&query.read, query.now_ms)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.store.snapshot()
    }

    fn snapshot_job(&self) -> SnapshotJob {
        // Streamed into the snapshot file: no image of the whole key space is built in memory.
        let frozen = self.store.freeze();
        Box::new(move |out| frozen.serialize_into(out).map(drop))
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
        let mut image = (&first[..]).chain(image);
        let store = KvStore::restore_from(&mut image).map_err(|e| e.to_string())?;
        let mut memory = ShardMemory::default();
        memory.publish(store.data_bytes());
        Ok(KvShard { store, memory })
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
        shard.apply(LogIndex(index), &KvWrite { now_ms: 1, op }.encode());
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
}
