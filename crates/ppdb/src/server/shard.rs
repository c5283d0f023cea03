//! The key-value state machine as the node runtime replicates it: one [`KvShard`] per shard.

use crate::kv::{KvRead, KvStore, KvWrite, Reply, WriteOp};
use crate::node::state_machine::SnapshotJob;
use crate::node::StateMachine;
use ppdb_raft::LogIndex;

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
}

impl StateMachine for KvShard {
    type Query = ShardQuery;
    type Output = Reply;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Reply {
        match KvWrite::decode(command) {
            Ok(write) => self.store.apply(&write),
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
        let frozen = self.store.freeze();
        Box::new(move || frozen.serialize())
    }

    fn restore(data: &[u8]) -> Result<Self, String> {
        if data.is_empty() {
            return Ok(KvShard::default());
        }
        KvStore::restore(data).map(|store| KvShard { store }).map_err(|e| e.to_string())
    }

    fn housekeeping(&self, now_ms: u64) -> Option<Vec<u8>> {
        let keys = self.store.expired_keys(now_ms, EXPIRED_KEYS_PER_ENTRY_MAX);
        if keys.is_empty() {
            return None;
        }
        Some(KvWrite { now_ms, op: WriteOp::RemoveExpired { keys } }.encode())
    }
}
