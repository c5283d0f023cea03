//! The client-facing layer: the services a node offers on top of the node layer's
//! [`crate::node::AssembledNode`] (storage, transport and Raft runtime, started by
//! [`node::run_node`]). It reaches the groups through a `NodeHandle` and the transport (to
//! forward operations to shard leaders), never Raft state directly.
//!
//! What each part owns, bottom up:
//! - [`resp`]: the Redis protocol itself (frames, request parsing, commands, reply wording),
//!   without I/O.
//! - [`client`]: what any client connection needs whatever protocol it speaks: running
//!   key-space operations on the key's shard ([`client::executor`], with forwarding to the
//!   leader), the neutral form of PPDB's errors ([`client::failure`]), the client counters.
//!   It imports nothing from `resp`; a second protocol (memcached) builds on it beside RESP.
//! - [`shard`]: [`shard::KvShard`], the key space as the node runtime replicates it (the
//!   state machine of every data group), with [`blocking`]'s wake-ups and [`memory`]'s
//!   accounting, and [`script`]'s Lua state, which runs the entries of EVAL and its kin.
//! - The RESP service: [`listener`] accepts connections within `maxclients`; [`connection`]
//!   runs one (socket loop, pipelining, MULTI, writing its pub/sub messages); [`channels`]
//!   answers its pub/sub commands; [`transaction`] runs EXEC; [`session`] holds a
//!   connection's state and answers the commands about the connection or the server, with
//!   [`info`], [`wait`], [`clients`] (CLIENT LIST/KILL), [`cluster`] (CLUSTER) and [`settings`]
//!   (CONFIG).
//! - [`pubsub`]: channels, patterns and shard channels, delivered to this node's subscribers
//!   and sent to every other member (not through the log); the connection writes them.
//! - The node's shared state and its reports: [`context`] (what all connections share),
//!   [`report`] (the node's status as one document), [`admin`] (the HTTP endpoints).
//! - [`acl`]: who a connection is logged in as and the check of every request against the
//!   user's rules (the users themselves are the meta group's, `crate::acl`).
//! - [`memcached`]: memcached's text protocol beside RESP, on [`client`]'s executor.
//! - [`node`]: starts all of it on an assembled node.

pub mod acl;
pub mod admin;
pub mod blocking;
pub mod channels;
pub mod client;
pub mod clients;
pub mod cluster;
pub mod connection;
pub mod context;
pub mod info;
pub mod listener;
pub mod memcached;
pub mod memory;
pub mod moves;
pub mod node;
pub mod pubsub;
pub mod report;
pub mod resp;
pub mod script;
pub mod session;
pub mod settings;
pub mod shard;
pub mod transaction;
pub mod wait;

pub use node::run_node;
