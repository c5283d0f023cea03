//! The replicated state machine of one shard: Redis strings, hashes, lists, sets and sorted sets,
//! with expiry.
//!
//! This layer owns the key space of a shard and the meaning of every operation on it: how a
//! write is encoded into the Raft log ([`KvWrite`]), how applying it changes the state and what
//! Redis would answer ([`KvStore::apply`], [`Reply`]), how reads are answered ([`KvStore::read`])
//! and how the whole state is snapshotted ([`KvStore::snapshot`], [`KvStore::restore`]).
//!
//! It must stay pure and deterministic: no clock, no randomness, no I/O, and no reply or state
//! that depends on a hash table's iteration order. Time comes from the log entry (`now_ms`,
//! stamped by the shard's leader as it proposes the entry; relative expiries count from it), so
//! every replica computes the same state and the same replies.
//! Expired keys are invisible to reads at once and removed through the log
//! ([`KvStore::expired_keys`], [`WriteOp::RemoveExpired`]). A single-shard MULTI/EXEC is one
//! entry too ([`WriteOp::Transaction`]), applied in one step; so is a Lua script's call
//! ([`WriteOp::Script`]), which this layer carries but the shard runs, step by step through
//! [`KvStore::apply_step`], so that the key space stays free of Lua. It knows nothing of RESP, Raft types
//! or networking.

mod codec;
pub mod command;
pub mod entry;
pub mod glob;
#[cfg(test)]
mod hostile_tests;
pub mod introspect;
pub mod memcached;
pub mod multi;
pub mod numeric;
mod read;
pub mod reply;
pub mod scan;
pub mod script;
mod snapshot;
pub mod state_machine;
mod table;
#[cfg(test)]
mod tests;
pub mod transfer;
pub mod types;

pub use codec::KvDecodeError;
pub use command::{
    ExpireCondition, ExpireTime, GetExTtl, KvRead, KvWrite, SetCondition, SetTtl, WriteOp, BATCH_KEYS_MAX,
    KEY_BYTES_MAX, VALUE_BYTES_MAX,
};
pub use command::{TxnStep, WatchedKey};
pub use multi::{TXN_REPLY_BYTES_MAX, TXN_STEPS_MAX};
pub use reply::{KvError, LockHolder, Reply};
pub use script::{ScriptAccess, ScriptCall, SCRIPT_ARGS_MAX, SCRIPT_BODY_BYTES_MAX};
pub use snapshot::FrozenKv;
pub use state_machine::{KvStore, Value};
pub use transfer::{Expect, MISGUESSED};
pub use types::{CollectionRead, CollectionWrite, Data};
