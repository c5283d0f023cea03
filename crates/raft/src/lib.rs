//! The Raft consensus core of PPDB, sans-IO.
//!
//! This crate is a pure, deterministic state machine: it owns no sockets, threads, clocks or
//! ambient randomness. Time advances when the caller calls [`RawNode::tick`]; messages arrive
//! through [`RawNode::step`]; randomness (for election timeouts) comes from an RNG the caller
//! hands in. Everything the node wants done comes back as a [`Ready`].
//!
//! # The Ready contract
//!
//! The caller loops: feed inputs, collect a [`Ready`], do what it says *in this order*, then
//! call [`RawNode::advance`]:
//!
//! 1. **Persist** the snapshot (if any), the entries and the hard state, durably. A vote or an
//!    append acknowledgement must not leave the node before the state it depends on is on disk.
//! 2. **Send** the messages. A leader's appends and heartbeats
//!    ([`Message::can_send_before_persist`]) may go out before step 1 finishes, so followers
//!    write in parallel with the leader; responses and votes must wait for it.
//! 3. **Apply** the snapshot (if any) and then the committed entries to the state machine, in
//!    order, each exactly once.
//! 4. **Serve** confirmed reads ([`ReadState`]) once their index is applied.
//! 5. **Advance**.
//!
//! When the Ready carries no snapshot, steps 3 and 4 may also run before or during step 1:
//! committed entries are durable on a majority already, whatever this Ready writes, and the
//! state machine is rebuilt from the durable state after a crash anyway. The simulator drives
//! its nodes that way, crashes included.
//!
//! # Writes in flight
//!
//! A caller whose writes complete asynchronously need not wait for one before taking the next
//! Ready: a leader can then count its followers' acknowledgements, commit and answer clients
//! while its own fsync is still running, and a follower can take the next append. The rules:
//!
//! - persist the Readies in the order they were handed out (a write-ahead log does);
//! - send a Ready's remaining messages only once its write *and every earlier one* are
//!   durable (an acknowledgement may vouch for entries an earlier write carries);
//! - call [`RawNode::advance`] once per Ready, in order, when its write is durable;
//! - handle a Ready that carries a snapshot completely (persist, install, advance) before
//!   taking the next one.
//!
//! The core counts its own log towards a commit only up to what was reported durable, and a
//! write that reports back after the entries it carried were replaced vouches for nothing.
//! The simulator drives its nodes with up to several writes in flight.
//!
//! A three-node group, driven by hand with an in-memory "network":
//!
//! ```
//! use ppdb_raft::{Config, EntryPayload, NodeId, PeerRole, RawNode, RecoveredState};
//! use rand::{rngs::SmallRng, SeedableRng};
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut nodes: Vec<RawNode> = ids
//!     .iter()
//!     .map(|&id| {
//!         let rng = Box::new(SmallRng::seed_from_u64(id.0));
//!         RawNode::new(Config::new(id), RecoveredState::bootstrap(ids), rng).unwrap()
//!     })
//!     .collect();
//!
//! // One round of the contract for every node; returns the messages to deliver.
//! fn drive(nodes: &mut [RawNode], applied: &mut Vec<Vec<u8>>) -> Vec<ppdb_raft::Message> {
//!     let mut out = Vec::new();
//!     for node in nodes.iter_mut() {
//!         let ready = node.ready();
//!         // 1. persist ready.entries / ready.hard_state (here: nothing, it is a doc test)
//!         out.extend(ready.messages); // 2. send
//!         for entry in ready.committed_entries {
//!             if let EntryPayload::Command(data) = entry.payload {
//!                 applied.push(data); // 3. apply
//!             }
//!         }
//!         node.advance(); // 5.
//!     }
//!     out
//! }
//!
//! nodes[0].campaign();
//! let mut applied = Vec::new();
//! for _ in 0..10 {
//!     for m in drive(&mut nodes, &mut applied) {
//!         let to = (m.to.0 - 1) as usize;
//!         nodes[to].step(m);
//!     }
//! }
//! assert_eq!(nodes[0].role(), PeerRole::Leader);
//! nodes[0].propose(b"SET k v".to_vec()).unwrap();
//! for _ in 0..10 {
//!     for m in drive(&mut nodes, &mut applied) {
//!         let to = (m.to.0 - 1) as usize;
//!         nodes[to].step(m);
//!     }
//! }
//! assert_eq!(applied.len(), 3, "every node applied the command once");
//! ```
//!
//! # What is inside
//!
//! Roles Follower, Candidate and Leader ([`PeerRole`]), with PreVote and CheckQuorum; log
//! replication with batching, pipelining and per-follower flow control
//! ([`tracker::ProgressState`]); the commit rule in [`quorum`]; linearizable reads by
//! ReadIndex; snapshots and log compaction; single-server membership changes
//! ([`membership`]) and leader transfer. The [`sim`] module is the deterministic simulator
//! that checks the safety properties over many seeded runs.

#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod log;
pub mod membership;
pub mod message;
pub mod quorum;
mod raft;
mod raw_node;
pub mod tracker;
pub mod types;

pub use config::{Config, ConfigError};
pub use error::{ProposeError, RecoveryError, SnapshotError};
pub use membership::{ConfChange, ConfChangeKind, Membership};
pub use message::{
    Entry, EntryPayload, HardState, Message, MessageBody, MessageType, Snapshot, SnapshotMeta,
    ENTRY_HEADER_BYTES,
};
pub use raft::{Canary, ReadState, RecoveredState};
pub use raw_node::{FollowerStatus, RawNode, Ready, Status};
pub use types::{LogIndex, NodeId, PeerRole, Term};
pub mod sim;
