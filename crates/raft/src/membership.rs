//! Who is in the group: voters decide elections and commits, learners only receive the log.
//!
//! Changes are single-server changes (add a learner, add or promote a voter, remove a node),
//! one at a time. Any two majorities of configurations that differ by one voter overlap, which
//! is what keeps at most one leader per term across a change. A change takes effect on a node as
//! soon as its entry is in that node's log (Raft dissertation, section 4.1), and is undone if
//! that entry is truncated. Two extra rules close the known gaps of this scheme: a leader
//! proposes a change only once every earlier change is committed, and only once it has
//! committed an entry of its own term.

use crate::types::NodeId;
use std::collections::BTreeSet;
use std::fmt;

/// The members of a Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// Members that vote and count towards commit quorums.
    pub voters: BTreeSet<NodeId>,
    /// Members that receive the log but do not vote (new nodes catching up).
    pub learners: BTreeSet<NodeId>,
}

/// What a [`ConfChange`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfChangeKind {
    /// Add a node as a voter, or promote a learner to voter.
    AddVoter,
    /// Add a node as a learner (it catches up without voting).
    AddLearner,
    /// Remove a voter or learner.
    Remove,
}

/// A single-server membership change, proposed through the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfChange {
    /// The change.
    pub kind: ConfChangeKind,
    /// The node it applies to.
    pub node: NodeId,
}

/// Why a membership change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfChangeError {
    /// The change would leave the group without voters.
    NoVotersLeft,
    /// The change does nothing (e.g. removing a non-member, adding an existing voter).
    NoOp,
    /// Node id 0 is reserved.
    InvalidNode,
}

impl fmt::Display for ConfChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfChangeError::NoVotersLeft => "the change would leave no voters",
            ConfChangeError::NoOp => "the change does not alter the membership",
            ConfChangeError::InvalidNode => "node id 0 is reserved",
        })
    }
}

impl Membership {
    /// A membership of the given voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership { voters: voters.into_iter().collect(), learners: BTreeSet::new() }
    }

    /// Whether `node` is a voter or a learner.
    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.learners.contains(&node)
    }

    /// Whether `node` votes.
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains(&node)
    }

    /// Every member, voters first, each once, in id order within each class.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// The number of votes that make a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The membership after `change`, or why it is refused.
    pub fn apply(&self, change: ConfChange) -> Result<Membership, ConfChangeError> {
        if change.node == NodeId(0) {
            return Err(ConfChangeError::InvalidNode);
        }
        let mut next = self.clone();
        let changed = match change.kind {
            ConfChangeKind::AddVoter => {
                next.learners.remove(&change.node);
                next.voters.insert(change.node)
            }
            ConfChangeKind::AddLearner => {
                !next.voters.contains(&change.node) && next.learners.insert(change.node)
            }
            ConfChangeKind::Remove => next.voters.remove(&change.node) | next.learners.remove(&change.node),
        };
        if !changed {
            return Err(ConfChangeError::NoOp);
        }
        if next.voters.is_empty() {
            return Err(ConfChangeError::NoVotersLeft);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> BTreeSet<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn learner_is_promoted_by_add_voter() {
        let m = Membership::with_voters([NodeId(1)]);
        let m = m.apply(ConfChange { kind: ConfChangeKind::AddLearner, node: NodeId(2) }).unwrap();
        assert_eq!(m.learners, ids(&[2]));
        let m = m.apply(ConfChange { kind: ConfChangeKind::AddVoter, node: NodeId(2) }).unwrap();
        assert_eq!(m.voters, ids(&[1, 2]));
        assert!(m.learners.is_empty());
    }

    #[test]
    fn demoting_a_voter_to_learner_is_refused_as_noop() {
        let m = Membership::with_voters([NodeId(1), NodeId(2)]);
        let change = ConfChange { kind: ConfChangeKind::AddLearner, node: NodeId(2) };
        assert_eq!(m.apply(change), Err(ConfChangeError::NoOp));
    }

    #[test]
    fn last_voter_cannot_be_removed() {
        let m = Membership::with_voters([NodeId(1)]);
        let change = ConfChange { kind: ConfChangeKind::Remove, node: NodeId(1) };
        assert_eq!(m.apply(change), Err(ConfChangeError::NoVotersLeft));
    }

    #[test]
    fn quorum_is_a_strict_majority_of_voters() {
        assert_eq!(Membership::with_voters([NodeId(1)]).quorum(), 1);
        assert_eq!(Membership::with_voters((1..=4).map(NodeId)).quorum(), 3);
        assert_eq!(Membership::with_voters((1..=5).map(NodeId)).quorum(), 3);
    }
}
