//! What a client connection needs whatever protocol it speaks: RESP's and memcached's
//! connections share it, and it imports nothing of either protocol.
//!
//! - [`executor`]: runs key-space operations on the cluster. A write is a
//!   [`crate::kv::KvWrite`] (unstamped: the shard's leader stamps it), a read a
//!   [`crate::kv::KvRead`]; the executor routes each key to its shard ([`crate::node::router`]),
//!   sends the operation to the shard's leader (here, or forwarded over the transport:
//!   [`forward`] is the wire format, [`forward_batch`] joins concurrent clients' operations
//!   per leader), retries only what certainly did not take effect, and answers a
//!   [`crate::kv::Reply`] or a typed [`crate::error::Error`]; [`commit_join`] joins the
//!   COMMITs of concurrent cross-shard transactions in a shard led here into one entry.
//! - [`failure`]: that error in the neutral form each protocol words its own way.
//! - [`stats`]: the counters of the client service.
//!
//! A protocol's connection parses its requests into these operations and words the answers;
//! the per-connection state a protocol defines (RESP's MULTI queue, CLIENT REPLY, the
//! protocol version) stays with that protocol.

pub mod commit_join;
pub mod executor;
pub mod failure;
pub mod forward;
pub mod forward_batch;
pub mod stats;
