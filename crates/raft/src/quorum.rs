//! Majority arithmetic: the commit rule's "replicated on a majority" and election tallies.

use crate::membership::Membership;
use crate::types::{LogIndex, NodeId};
use std::collections::BTreeMap;

/// The highest index that a majority of voters has persisted, given each voter's match index.
///
/// Voters missing from `matched` count as having nothing. This is only the replication half of
/// the commit rule; the leader also requires the entry to be from its current term.
pub fn majority_matched(membership: &Membership, matched: impl Fn(NodeId) -> LogIndex) -> LogIndex {
    let mut indexes: Vec<LogIndex> = membership.voters.iter().map(|&id| matched(id)).collect();
    if indexes.is_empty() {
        return LogIndex(0);
    }
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes[membership.quorum() - 1]
}

/// The outcome of an election so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority refused: the election cannot be won.
    Lost,
    /// Neither yet.
    Pending,
}

/// Tallies `votes` (voter → granted) against the voters of `membership`.
pub fn tally(membership: &Membership, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let (mut granted, mut refused) = (0, 0);
    for id in &membership.voters {
        match votes.get(id) {
            Some(true) => granted += 1,
            Some(false) => refused += 1,
            None => {}
        }
    }
    let quorum = membership.quorum();
    if granted >= quorum {
        VoteResult::Won
    } else if refused > membership.voters.len() - quorum {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_matched_takes_the_quorum_th_highest() {
        let m = Membership::with_voters((1..=5).map(NodeId));
        let matched = |id: NodeId| LogIndex([0, 9, 7, 5, 3, 1][id.0 as usize]);
        assert_eq!(majority_matched(&m, matched), LogIndex(5));
    }

    #[test]
    fn non_voters_do_not_count() {
        let mut m = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
        m.learners.insert(NodeId(4));
        let matched = |id: NodeId| if id.0 == 4 || id.0 == 1 { LogIndex(10) } else { LogIndex(2) };
        assert_eq!(majority_matched(&m, matched), LogIndex(2));
    }

    #[test]
    fn tally_wins_loses_or_waits() {
        let m = Membership::with_voters((1..=3).map(NodeId));
        let mut votes = BTreeMap::new();
        votes.insert(NodeId(1), true);
        assert_eq!(tally(&m, &votes), VoteResult::Pending);
        votes.insert(NodeId(2), false);
        assert_eq!(tally(&m, &votes), VoteResult::Pending);
        votes.insert(NodeId(3), false);
        assert_eq!(tally(&m, &votes), VoteResult::Lost);
        votes.insert(NodeId(3), true);
        assert_eq!(tally(&m, &votes), VoteResult::Won);
        votes.insert(NodeId(9), false); // not a voter: ignored
        assert_eq!(tally(&m, &votes), VoteResult::Won);
    }
}
