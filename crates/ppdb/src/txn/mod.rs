//! Cross-shard transactions: two-phase commit over the shards' Raft groups, with the seed's
//! seven states (INIT, PREPARING, PREPARED, COMMITTING, COMMITTED, ABORTING, ABORTED), by
//! transaction id.
//!
//! A transaction whose keys all live in one shard never comes here: it is one entry of that
//! shard's log ([`crate::kv::WriteOp::Transaction`]). One that spans shards is split into one
//! part per shard; the node that received it coordinates ([`coordinator`]):
//!
//! 1. PREPARE, to every participant at once ([`entry::TxnEntry::Prepare`]): each replicates
//!    its part, locks its keys (refusing, never waiting, if another transaction holds one),
//!    checks its watched keys and answers its commands' replies ([`participant`]).
//! 2. When every participant prepared, the transaction is committed: the client gets its
//!    replies, and COMMIT goes to every participant, which applies its part and releases its
//!    locks. If one refused, ABORT goes to all instead and nothing was written.
//!
//! A coordinator may die at any step; locks older than [`resolver::LOCK_RESOLVE_AFTER_MS`]
//! are resolved by whoever meets them, and by every node's periodic sweep of the shards it
//! leads ([`resolver`]). Isolation is strict serializability: a transaction's keys are locked
//! from its PREPARE to its COMMIT, so every other operation on them is ordered before or
//! after all of it.
//!
//! This layer sits between [`crate::kv`] (the key space it runs parts on) and
//! [`crate::server`] (which splits client commands into parts and implements
//! [`client::ShardClient`]); the shard's state machine calls [`participant`].

pub mod client;
pub mod coordinator;
pub mod entry;
pub mod id;
pub mod participant;
pub mod resolver;
pub mod state;
pub mod stats;

pub use client::ShardClient;
pub use coordinator::{Coordinator, Link, Part, TxnError};
pub use entry::{Prepare, TxnEntry, Vote};
pub use id::{TxnId, TxnIds};
pub use participant::Participant;
pub use state::{Outcome, TxnState};
pub use stats::{locks_held, InFlight, LockGauge, TxnCounts, TxnStats};
