//! Finishing transactions whose coordinator went quiet, and waiting out locks.
//!
//! A transaction is committed exactly when every participant has prepared it, and aborted
//! exactly when one participant has refused it (or been fenced before its PREPARE arrived):
//! each participant's log settles its own side once and for all, so whoever looks, the
//! coordinator or any number of resolvers, finds the same answer. A resolver fences every
//! participant, primary first ([`TxnEntry::Fence`]); a participant that never saw the PREPARE
//! then refuses it for good, so the outcome no longer depends on messages in flight. Then it
//! sends COMMIT or ABORT to all of them, as the coordinator would have.

use futures::future::join_all;

use crate::error::Error;
use crate::kv::{KvRead, LockHolder, Reply};

use super::client::ShardClient;
use super::entry::TxnEntry;
use super::id::TxnId;
use super::state::Outcome;
use super::stats::TxnStats;

/// A lock this old is no longer waited for: its transaction is resolved.
pub const LOCK_RESOLVE_AFTER_MS: u64 = 1_000;

/// The longest pause between two tries of an operation that met a lock.
const BACKOFF_MS_MAX: u64 = 32;

/// Decides and finishes the transaction holding `holder`'s lock; its outcome.
pub async fn resolve<C: ShardClient + ?Sized>(client: &C, holder: &LockHolder) -> Result<Outcome, Error> {
    let id = TxnId(holder.txn);
    let mut outcome = Outcome::Committed;
    for &shard in &holder.participants {
        match client.submit(shard, TxnEntry::Fence(id)).await? {
            Reply::Status("PREPARED") => {}
            Reply::Status("COMMITTED") => break,
            Reply::Status("ABORTED") => {
                outcome = Outcome::Aborted;
                break;
            }
            other => {
                return Err(Error::State(format!(
                    "fencing transaction {id} on shard {shard} answered {other:?}"
                )))
            }
        }
    }
    finish(client, id, &holder.participants, outcome).await?;
    Ok(outcome)
}

/// Sends COMMIT or ABORT of `id` to every participant; the first failure, if any.
pub async fn finish<C: ShardClient + ?Sized>(
    client: &C,
    id: TxnId,
    participants: &[u64],
    outcome: Outcome,
) -> Result<(), Error> {
    let entry = match outcome {
        Outcome::Committed => TxnEntry::Commit(id),
        Outcome::Aborted => TxnEntry::Abort(id),
    };
    let sends = participants.iter().map(|&shard| client.submit(shard, entry.clone()));
    for (shard, result) in participants.iter().zip(join_all(sends).await) {
        match result? {
            Reply::Status(status) if status == outcome.status() => {}
            other => {
                return Err(Error::State(format!(
                    "{} of transaction {id} on shard {shard} answered {other:?}",
                    outcome.status()
                )))
            }
        }
    }
    Ok(())
}

/// Before the `attempt`th try (from 0) of an operation refused by `holder`'s lock: resolves
/// the transaction if the lock is old, else pauses a little longer each time.
pub async fn wait_out<C: ShardClient + ?Sized>(
    client: &C,
    holder: &LockHolder,
    attempt: u32,
    stats: &TxnStats,
) {
    if holder.age_ms >= LOCK_RESOLVE_AFTER_MS {
        match resolve(client, holder).await {
            Ok(outcome) => stats.resolved(outcome == Outcome::Committed),
            Err(e) => {
                tracing::debug!(txn = %TxnId(holder.txn), error = %e, "resolving a transaction failed");
                client.pause(BACKOFF_MS_MAX).await;
            }
        }
        return;
    }
    client.pause((1u64 << attempt.min(5)).min(BACKOFF_MS_MAX)).await;
}

/// Resolves every transaction whose locks on `shard` are older than [`LOCK_RESOLVE_AFTER_MS`]:
/// what each node runs now and then for the shards it leads, so that no lock outlives a lost
/// coordinator even if nobody touches its keys. Returns how many it resolved.
pub async fn sweep<C: ShardClient + ?Sized>(
    client: &C,
    shard: u64,
    stats: &TxnStats,
) -> Result<usize, Error> {
    let Reply::Array(stale) =
        client.read(shard, KvRead::TxnLocks { min_age_ms: LOCK_RESOLVE_AFTER_MS }).await?
    else {
        return Err(Error::State(format!("shard {shard} did not list its locks")));
    };
    let mut resolved = 0;
    for item in stale {
        if let Reply::Locked(holder) = item {
            let outcome = resolve(client, &holder).await?;
            stats.resolved(outcome == Outcome::Committed);
            resolved += 1;
        }
    }
    Ok(resolved)
}
