//! The node runtime: hosts this node's Raft group replicas, drives them with a timer, peer
//! messages and client requests, and keeps their state durable through the shared WAL.
//!
//! It talks to the network only through an [`runtime::Outbox`] (and an inbound channel), and
//! to the disk only through [`raft_storage::RaftStorage`]. It knows nothing of Redis: it
//! replicates any [`state_machine::StateMachine`]. Which shard owns a key is decided here too
//! ([`router`], over the hash [`slots`]), so every layer above routes alike.
//!
//! [`assembly`] starts what every node has whatever client protocols it serves: the data
//! directory's [`cluster_file`] and [`identity`], joining ([`join`]) or founding the cluster,
//! the storage, the transport and the runtime, the node's [`membership`] service, and the
//! upkeep that follows the directory. The layers above start their services on the
//! [`AssembledNode`] it returns; this layer imports nothing from them.

pub mod assembly;
pub mod clock;
pub mod cluster_file;
pub mod directory;
mod directory_sync;
pub mod handle;
pub mod identity;
pub mod join;
pub mod join_credential;
pub mod leaders;
pub mod leadership;
pub mod lifecycle;
pub mod membership;
pub mod placement;
pub mod raft_storage;
pub mod rebalance;
pub mod reconcile;
pub mod replica;
pub mod router;
pub mod runtime;
pub mod slots;
pub mod snapshot_transfer;
pub mod state_machine;

pub use assembly::{AssembledNode, PeerService};
pub use clock::{SystemClock, WallClock};
pub use cluster_file::ClusterFile;
pub use directory::{Directory, DirectoryCommand, MemberStatus};
pub use handle::NodeHandle;
pub use leaders::LeaderTable;
pub use leadership::ClientTraffic;
pub use lifecycle::PeerState;
pub use membership::MembershipService;
pub use reconcile::MembershipPolicy;
pub use router::{KeyRouting, Router, ShardId};
pub use runtime::{GroupReport, Outbox, Request, Runtime, RuntimeConfig, META_GROUP};
pub use state_machine::StateMachine;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sim_wal;

#[cfg(test)]
mod sim_runtime;
