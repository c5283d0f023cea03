//! PPDB: a distributed, strongly consistent, transactional key-value database.
//!
//! A cluster is a set of nodes; the key space is split into shards; every shard is a Raft group
//! (see the `ppdb-raft` crate) replicated on several nodes. Clients speak the Redis protocol.
//! The layers, top to bottom, are described in `DESIGN.md`; this crate grows them one issue at a
//! time. Today it holds the error model every layer maps onto and the durable storage layer
//! ([`storage`]: write-ahead log, snapshot files, data-directory lock).

pub mod cli;
pub mod codec;
pub mod config;
pub mod error;
pub mod kv;
pub mod node;
pub mod server;
pub mod storage;
pub mod transport;

pub use error::{Error, ErrorCode};
