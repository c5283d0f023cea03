//! Leader completeness: a leader's log holds every entry committed before its term
//! (Raft, figure 3). Checked whenever a node becomes leader.

use super::state_machine::CommittedHistory;
use super::{violation, Verdict};
use crate::raw_node::RawNode;

/// Checks a new leader's log against every entry known committed.
pub fn check_new_leader(leader: &RawNode, committed: &CommittedHistory) -> Verdict {
    for (index, term) in committed.entries_after(leader.snapshot_index()) {
        if leader.term_at(index) != Some(term) {
            return violation(
                "leader completeness",
                format!(
                    "node {} became leader of term {} without committed entry {index}/{term} \
                     (its log has term {:?} there, last index {})",
                    leader.id(),
                    leader.term(),
                    leader.term_at(index),
                    leader.last_index()
                ),
            );
        }
    }
    Ok(())
}
