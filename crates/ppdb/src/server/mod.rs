//! The client-facing layer: the Redis-protocol (RESP) service and the HTTP admin endpoints.
//!
//! It sees the node through a `NodeHandle` and the transport (to forward operations to shard
//! leaders), and speaks RESP to clients; it never touches Raft state directly.

pub mod admin;
pub mod blocking;
pub mod client;
pub mod connection;
pub mod context;
pub mod listener;
pub mod memory;
pub mod node;
pub mod report;
pub mod resp;
pub mod settings;
pub mod shard;
pub mod transaction;

pub mod clients;
pub mod info;
pub mod session;
pub mod wait;

pub use node::run_node;
