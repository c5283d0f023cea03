//! EXEC of a transaction on one shard: one log entry, one Raft round (docs/architecture.md,
//! "MULTI/EXEC with WATCH").
//!
//! The queued key-space commands become one log entry ([`WriteOp::Transaction`]): writes
//! resolved as every other write is (a relative expiry stays a span from the entry's time,
//! which the shard's leader stamps), reads as queries evaluated when the entry is applied, so
//! they are linearizable and see the transaction's earlier writes. The entry goes to the
//! shard's leader through the executor like any write (forwarded if needed, retried only when
//! it certainly did not take effect), and the state machine applies it in one step.
//! Connection commands queued in the transaction (PING, ECHO, ...) touch no key and are
//! answered by the connection in place.
//!
//! WATCH reads the watched keys' versions (the log index of each key's last write, 0 for an
//! absent key) linearizably; EXEC puts them in the entry, and the state machine runs none of
//! the steps, and answers a null array, if a key's version changed in between.
//!
//! Keys in several shards, watched keys included, are refused with `CROSSSLOT`, as Redis
//! Cluster refuses keys in several slots: cross-shard transactions (2PC) are roadmap work.

use std::collections::BTreeSet;

use super::client::executor::{shard_of, Executor};
use super::client::forward::ShardOp;
use super::resp::command::{Command, Queued, TransactionError};
use super::resp::reply::error_frame;
use super::resp::Frame;
use crate::error::Error;
use crate::kv::{KvRead, KvWrite, Reply, TxnStep, WatchedKey, WriteOp};
use crate::node::clock::wall_clock_ms;

/// One element of EXEC's reply, in queue order.
#[derive(Debug)]
pub enum ExecElement {
    /// Answered: a key-space command's reply, or the error of a command that could not run.
    Answered(Frame),
    /// A connection command, for the connection to answer in place.
    Local(Command),
}

/// WATCH: adds `keys` to `watched` with their versions now; a key already watched keeps the
/// version it was first watched with, as in Redis.
pub async fn watch(
    executor: &Executor,
    keys: Vec<Vec<u8>>,
    watched: &mut Vec<WatchedKey>,
) -> Result<(), Error> {
    let keys: Vec<Vec<u8>> = keys.into_iter().filter(|key| watched.iter().all(|w| &w.key != key)).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let Reply::Array(versions) = executor.read(&KvRead::Versions { keys: keys.clone() }).await? else {
        return Err(Error::State("WATCH: the shard did not answer the keys' versions".into()));
    };
    for (key, version) in keys.into_iter().zip(versions) {
        let Reply::Integer(version) = version else {
            return Err(Error::State("WATCH: a key's version is not an integer".into()));
        };
        // Versions are log indexes: never negative.
        let version = u64::try_from(version).unwrap_or(0);
        if watched.iter().all(|w| w.key != key) {
            watched.push(WatchedKey { key, version });
        }
    }
    Ok(())
}

/// Runs a transaction's queue under `watched` (WATCH's keys and versions). `Err` is the frame
/// EXEC answers instead of an array: a null array when a watched key changed (nothing ran),
/// an error when the keys span several shards (nothing ran) or the entry failed (e.g.
/// `TIMEOUT`: outcome unknown).
pub async fn exec(
    executor: &Executor,
    queued: Vec<Queued>,
    watched: Vec<WatchedKey>,
) -> Result<Vec<ExecElement>, Frame> {
    // This node's clock only checks relative expiries; the shard's leader stamps the entry.
    let clock_ms = wall_clock_ms();
    // `None` marks an element answered by the entry's reply array, in order.
    let mut plan = Vec::with_capacity(queued.len());
    let mut steps = Vec::new();
    for item in queued {
        plan.push(match item {
            Queued::Refused(error) => Some(ExecElement::Answered(Frame::from(&error))),
            Queued::Command(Command::Read(read)) => {
                steps.push(TxnStep::Read(read));
                None
            }
            Queued::Command(Command::Write(write)) => match write.resolve(clock_ms) {
                Ok(write) => {
                    steps.push(TxnStep::Write(write.op));
                    None
                }
                Err(error) => Some(ExecElement::Answered(Frame::from(&error))),
            },
            Queued::Command(other) => Some(ExecElement::Local(other)),
        });
    }
    let mut replies = run_steps(executor, steps, watched).await?.into_iter();
    let missing = || Frame::error("ERR internal: the transaction answered too few replies");
    let elements = plan.into_iter().map(|element| {
        element.unwrap_or_else(|| ExecElement::Answered(replies.next().map_or_else(missing, Frame::from)))
    });
    Ok(elements.collect())
}

/// Proposes the steps as one entry on their shard, under `watched`; the replies, one per step.
async fn run_steps(
    executor: &Executor,
    steps: Vec<TxnStep>,
    watched: Vec<WatchedKey>,
) -> Result<Vec<Reply>, Frame> {
    if steps.is_empty() && watched.is_empty() {
        return Ok(Vec::new());
    }
    let shard = single_shard(executor.shards(), &steps, &watched)?;
    let op = WriteOp::Transaction { steps, watched };
    match executor.on_shard(shard, ShardOp::Write(KvWrite::unstamped(op))).await {
        Ok(Reply::Array(replies)) => Ok(replies),
        Ok(Reply::NilArray) => Err(Frame::NullArray),
        Ok(other) => Err(Frame::error(format!("ERR internal: a transaction answered {other:?}"))),
        Err(error) => Err(error_frame(&error)),
    }
}

/// The one shard all steps' keys and the watched keys live on. A step without keys
/// (FLUSHALL, KEYS, SCAN, DBSIZE, RANDOMKEY) concerns every shard.
fn single_shard(shards: u64, steps: &[TxnStep], watched: &[WatchedKey]) -> Result<u64, Frame> {
    let mut touched: BTreeSet<u64> = watched.iter().map(|watched| shard_of(&watched.key, shards)).collect();
    for step in steps {
        let keys = step.keys();
        if keys.is_empty() {
            touched.extend(1..=shards.max(1));
        }
        touched.extend(keys.into_iter().map(|key| shard_of(key, shards)));
    }
    match touched.first() {
        Some(&shard) if touched.len() == 1 => Ok(shard),
        _ => {
            let error = TransactionError::CrossShard { shards: touched.into_iter().collect() };
            Err(Frame::error(error.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(key: &str) -> TxnStep {
        TxnStep::Read(crate::kv::KvRead::Get { key: key.as_bytes().to_vec() })
    }

    #[test]
    fn a_transaction_runs_on_the_one_shard_of_its_keys_or_is_refused() {
        let shards = 8;
        let a = (0..).map(|i| format!("a{i}")).find(|k| shard_of(k.as_bytes(), shards) == 3).unwrap();
        let b = (0..).map(|i| format!("b{i}")).find(|k| shard_of(k.as_bytes(), shards) == 3).unwrap();
        let c = (0..).map(|i| format!("c{i}")).find(|k| shard_of(k.as_bytes(), shards) == 5).unwrap();
        assert_eq!(single_shard(shards, &[get(&a), get(&b)], &[]), Ok(3));
        let refused = single_shard(shards, &[get(&a), get(&c)], &[]).unwrap_err();
        assert_eq!(refused, Frame::error(TransactionError::CrossShard { shards: vec![3, 5] }.to_string()));
        assert!(single_shard(shards, &[TxnStep::Write(WriteOp::FlushAll)], &[]).is_err());
        assert!(single_shard(shards, &[TxnStep::Write(WriteOp::FlushAll), get(&a)], &[]).is_err());
        let watched = |key: &str| WatchedKey { key: key.as_bytes().to_vec(), version: 1 };
        assert_eq!(single_shard(shards, &[get(&a)], &[watched(&b)]), Ok(3));
        assert!(single_shard(shards, &[get(&a)], &[watched(&c)]).is_err(), "a watched key on another shard");
        assert_eq!(single_shard(shards, &[], &[watched(&c)]), Ok(5));
        assert_eq!(single_shard(1, &[TxnStep::Write(WriteOp::FlushAll), get(&c)], &[]), Ok(1));
    }
}
