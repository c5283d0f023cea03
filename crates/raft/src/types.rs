//! Newtypes for the protocol's numbers, so a term is never mistaken for an index or a node id.

use std::fmt;

macro_rules! protocol_number {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The value as a plain integer, for encoding and arithmetic.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                $name(v)
            }
        }
    };
}

protocol_number!(
    /// A Raft term: a logical clock that increases with every election.
    Term
);
protocol_number!(
    /// A position in the replicated log; index 0 is the empty log before the first entry.
    LogIndex
);
protocol_number!(
    /// The identity of a node inside a cluster (the seed's `node_id`); 0 is never a valid node.
    NodeId
);

impl LogIndex {
    /// The next index.
    pub const fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The previous index, saturating at 0.
    pub const fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

/// The role a node plays in its Raft group (the seed's `PPDB_PEER_ROLE_*`).
///
/// Pre-candidates (the PreVote phase) are reported as [`PeerRole::Candidate`]: they are
/// campaigning, they just have not bumped the term yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// Accepts entries from the leader and votes in elections.
    Follower,
    /// Campaigning for leadership (including the PreVote phase).
    Candidate,
    /// Accepts proposals and replicates the log.
    Leader,
}

impl fmt::Display for PeerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerRole::Follower => "follower",
            PeerRole::Candidate => "candidate",
            PeerRole::Leader => "leader",
        })
    }
}
