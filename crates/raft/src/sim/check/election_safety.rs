//! Election safety: at most one leader per term (Raft, figure 3).

use super::{violation, Verdict};
use crate::types::{NodeId, Term};
use std::collections::BTreeMap;

/// Remembers who led each term.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<Term, NodeId>,
}

impl ElectionSafety {
    /// `node` is leader in `term`.
    pub fn observe_leader(&mut self, node: NodeId, term: Term) -> Verdict {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => violation(
                "election safety",
                format!("nodes {other} and {node} were both leader in term {term}"),
            ),
            _ => Ok(()),
        }
    }

    /// Number of distinct terms that had a leader.
    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }
}
