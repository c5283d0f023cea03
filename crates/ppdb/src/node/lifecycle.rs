//! The seed's node states (`PPDB_PEER_STATE_*`) and how a node's state follows from its place
//! in the membership of the groups it hosts.

use ppdb_raft::{Membership, NodeId};
use serde::Serialize;
use std::fmt;

/// A node's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerState {
    /// Started, not yet a member of any group.
    Init,
    /// Added as a learner, catching up.
    Joining,
    /// A voter: serving.
    Active,
    /// Handing off leadership, being removed.
    Leaving,
    /// Removed, or failed and detected by missed heartbeats.
    Inactive,
}

impl PeerState {
    /// The state of `node` given the memberships of the groups it hosts: a voter everywhere is
    /// ACTIVE, a learner anywhere JOINING, a member of none INIT (or INACTIVE once it was one).
    pub fn from_memberships<'a>(
        node: NodeId,
        memberships: impl IntoIterator<Item = &'a Membership>,
        was_member: bool,
    ) -> PeerState {
        let mut any = false;
        let mut learner = false;
        let mut voter_everywhere = true;
        for m in memberships {
            any = true;
            learner |= m.learners.contains(&node);
            voter_everywhere &= m.is_voter(node);
        }
        match (any, learner, voter_everywhere) {
            (false, _, _) => PeerState::Init,
            (true, true, _) => PeerState::Joining,
            (true, false, true) => PeerState::Active,
            (true, false, false) if was_member => PeerState::Inactive,
            (true, false, false) => PeerState::Init,
        }
    }

    /// The seed's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Init => "INIT",
            PeerState::Joining => "JOINING",
            PeerState::Active => "ACTIVE",
            PeerState::Leaving => "LEAVING",
            PeerState::Inactive => "INACTIVE",
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_membership() {
        let voters = Membership::with_voters([NodeId(1), NodeId(2)]);
        let mut with_learner = voters.clone();
        with_learner.learners.insert(NodeId(3));
        assert_eq!(PeerState::from_memberships(NodeId(1), [&voters, &with_learner], true), PeerState::Active);
        assert_eq!(PeerState::from_memberships(NodeId(3), [&with_learner], false), PeerState::Joining);
        assert_eq!(PeerState::from_memberships(NodeId(3), [&voters], true), PeerState::Inactive);
        assert_eq!(PeerState::from_memberships(NodeId(3), [], false), PeerState::Init);
    }
}
