//! PPDB: a distributed, strongly consistent, transactional key-value database.
//!
//! A cluster is a set of nodes; the key space is split into shards; every shard is a Raft group
//! (see the `ppdb-raft` crate) replicated on several nodes. Clients speak the Redis protocol.
//! The layers, top to bottom: [`cli`] (the `ppdb` binary), [`server`] (RESP and HTTP admin),
//! [`kv`] (a shard's state machine), [`node`] (the runtime driving the Raft groups),
//! [`transport`] (peer TCP), [`storage`] (write-ahead log, snapshot files, disk), with [`codec`]
//! for the binary formats, [`limits`] for the size limits that must agree, and [`error`] for the
//! seed's error codes every layer maps onto. `docs/architecture.md` in the repository says what
//! each layer owns and follows a read, a write and a transaction through them.

pub mod acl;
#[cfg(test)]
pub(crate) mod canary;
pub mod cli;
pub mod codec;
pub mod config;
pub mod error;
pub mod functions;
pub mod kv;
pub mod limits;
pub mod node;
pub mod server;
pub mod shutdown;
pub mod storage;
pub mod transport;
pub mod txn;

pub use error::{Error, ErrorCode};
