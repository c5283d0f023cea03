//! How the transaction layer reaches shards: the server's executor in a node, node handles in
//! the simulator.

use futures::future::BoxFuture;

use crate::error::Error;
use crate::kv::{KvRead, Reply};

use super::entry::TxnEntry;
use super::id::TxnId;
use super::state::Outcome;

/// Sends transaction entries and reads to shards' leaders.
pub trait ShardClient: Send + Sync {
    /// Replicates `entry` in `shard` and answers its reply; retried only when it certainly
    /// did not take effect, so an error leaves its outcome unknown.
    fn submit(&self, shard: u64, entry: TxnEntry) -> BoxFuture<'_, Result<Reply, Error>>;

    /// Answers a read linearizably on `shard`.
    fn read(&self, shard: u64, read: KvRead) -> BoxFuture<'_, Result<Reply, Error>>;

    /// Waits `ms` milliseconds (a backoff; simulated time in the simulator).
    fn pause(&self, ms: u64) -> BoxFuture<'_, ()>;

    /// Sends the COMMITs (or ABORTs) of a decided transaction without its client waiting for
    /// them, if this client can run work in the background; false if the caller must.
    fn finish_later(&self, _id: TxnId, _participants: Vec<u64>, _outcome: Outcome) -> bool {
        false
    }
}
