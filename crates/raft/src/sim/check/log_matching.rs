//! Log matching: two logs with an entry of the same index and term hold the same entry, and
//! identical entries before it (Raft, figure 3). Checked inductively: every persisted entry
//! (index, term) must always carry the same payload and follow the same previous term.

use super::{violation, Verdict};
use crate::message::Entry;
use crate::types::{LogIndex, NodeId, Term};
use std::collections::BTreeMap;

/// Every (index, term) ever persisted, with its payload digest and predecessor's term.
#[derive(Debug, Default)]
pub struct LogMatching {
    seen: BTreeMap<(LogIndex, Term), (u64, Term)>,
}

impl LogMatching {
    /// `node` persisted `entry`, whose predecessor in its log has term `prev_term`.
    pub fn observe_persisted(
        &mut self,
        node: NodeId,
        entry: &Entry,
        prev_term: Term,
        digest: u64,
    ) -> Verdict {
        let key = (entry.index, entry.term);
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, (digest, prev_term));
                Ok(())
            }
            Some(&(d, p)) if d == digest && p == prev_term => Ok(()),
            Some(&(d, p)) => violation(
                "log matching",
                format!(
                    "node {node} persisted entry {}/{} (digest {digest:x}, prev term {prev_term}) \
                     but another log holds {}/{} with digest {d:x}, prev term {p}",
                    entry.index, entry.term, entry.index, entry.term
                ),
            ),
        }
    }
}
