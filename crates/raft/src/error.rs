//! Why the core refuses a request. Messages from the network are never refused with an error:
//! stale or unexpected ones are dropped, as Raft expects of an unreliable network.

use crate::membership::ConfChangeError;
use crate::types::{LogIndex, NodeId};
use std::fmt;

/// Why a proposal, read or membership change was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// This node is not the leader; `leader` is the leader it knows of, if any.
    NotLeader {
        /// The current leader, as far as this node knows.
        leader: Option<NodeId>,
    },
    /// The leader is handing leadership to another node; retry there shortly.
    LeaderTransferring,
    /// Too many entries are uncommitted (the followers are slow or unreachable).
    TooManyUncommitted {
        /// The configured limit.
        limit: usize,
    },
    /// A membership change is already in progress.
    ConfChangeInProgress {
        /// Index of the pending change.
        index: LogIndex,
    },
    /// A new leader must commit an entry of its own term before changing membership.
    ConfChangeTooEarly,
    /// The membership change itself is invalid.
    InvalidConfChange(ConfChangeError),
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(id) } => write!(f, "not the leader; node {id} is"),
            ProposeError::NotLeader { leader: None } => f.write_str("not the leader; no leader is known"),
            ProposeError::LeaderTransferring => f.write_str("leadership is being transferred"),
            ProposeError::TooManyUncommitted { limit } => {
                write!(
                    f,
                    "more than {limit} entries are uncommitted; the group is overloaded or lacks quorum"
                )
            }
            ProposeError::ConfChangeInProgress { index } => {
                write!(f, "membership change at index {index} is not committed yet")
            }
            ProposeError::ConfChangeTooEarly => {
                f.write_str("the new leader has not committed an entry of its term yet")
            }
            ProposeError::InvalidConfChange(e) => write!(f, "invalid membership change: {e}"),
        }
    }
}

impl std::error::Error for ProposeError {}

/// Why a snapshot or compaction request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The snapshot index is not applied yet (or not in the log).
    NotApplied {
        /// The requested index.
        index: LogIndex,
        /// The highest applied index.
        applied: LogIndex,
    },
    /// The index is older than the current snapshot.
    OutOfDate {
        /// The requested index.
        index: LogIndex,
        /// The current snapshot's index.
        snapshot: LogIndex,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NotApplied { index, applied } => {
                write!(f, "index {index} is not applied yet (applied {applied})")
            }
            SnapshotError::OutOfDate { index, snapshot } => {
                write!(f, "index {index} is older than the current snapshot at {snapshot}")
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Why a node cannot be built from its recovered state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryError(pub String);

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inconsistent recovered raft state: {}", self.0)
    }
}

impl std::error::Error for RecoveryError {}
