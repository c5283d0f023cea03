//! State machine safety: every node applies the same entry at the same index, each index once
//! and in order, and every acknowledged command stays committed. The simulated state machine
//! is a running digest of the applied entries, so snapshots are checked too: a snapshot at
//! index i must carry the digest every other node had after applying i.

use super::{violation, Verdict};
use crate::types::{LogIndex, NodeId, Term};
use std::collections::BTreeMap;

/// The one true history of committed entries, as learned from every node's applies.
#[derive(Debug, Default)]
pub struct CommittedHistory {
    /// index → (term, payload digest).
    entries: BTreeMap<LogIndex, (Term, u64)>,
    /// index → state machine digest after applying it.
    digests: BTreeMap<LogIndex, u64>,
    /// client command id → the index it committed at.
    commands: BTreeMap<u64, LogIndex>,
    /// command id → index, for commands whose client got a success answer.
    acknowledged: BTreeMap<u64, LogIndex>,
}

impl CommittedHistory {
    /// `node` applied the entry (index, term) with payload `digest`, reaching `sm_digest`.
    pub fn observe_apply(
        &mut self,
        node: NodeId,
        index: LogIndex,
        term: Term,
        digest: u64,
        sm_digest: u64,
        command: Option<u64>,
    ) -> Verdict {
        match self.entries.get(&index) {
            None => {
                self.entries.insert(index, (term, digest));
            }
            Some(&(t, d)) if t == term && d == digest => {}
            Some(&(t, d)) => {
                return violation(
                    "state machine safety",
                    format!("node {node} applied {index}/{term} (digest {digest:x}); another node applied {index}/{t} (digest {d:x})"),
                )
            }
        }
        self.check_digest(node, index, sm_digest)?;
        if let Some(cmd) = command {
            if let Some(&other) = self.commands.get(&cmd) {
                if other != index {
                    return violation(
                        "state machine safety",
                        format!(
                            "command {cmd} committed twice, at {other} and at {index} (seen by node {node})"
                        ),
                    );
                }
            }
            self.commands.insert(cmd, index);
        }
        Ok(())
    }

    /// `node`'s state machine has digest `sm_digest` after index `index` (an apply or a
    /// snapshot install).
    pub fn check_digest(&mut self, node: NodeId, index: LogIndex, sm_digest: u64) -> Verdict {
        match self.digests.get(&index) {
            None => {
                self.digests.insert(index, sm_digest);
                Ok(())
            }
            Some(&d) if d == sm_digest => Ok(()),
            Some(&d) => violation(
                "state machine safety",
                format!("node {node} state after {index} has digest {sm_digest:x}, others had {d:x}"),
            ),
        }
    }

    /// A client was told its command `cmd` succeeded at `index`.
    pub fn acknowledge(&mut self, cmd: u64, index: LogIndex) {
        self.acknowledged.insert(cmd, index);
    }

    /// The highest index of an acknowledged command (what every read must reflect).
    pub fn highest_acknowledged(&self) -> LogIndex {
        self.acknowledged.values().copied().max().unwrap_or_default()
    }

    /// Number of acknowledged commands.
    pub fn acknowledged_count(&self) -> usize {
        self.acknowledged.len()
    }

    /// Every acknowledged command is still the committed entry at its index.
    pub fn check_acknowledged_kept(&self) -> Verdict {
        for (&cmd, &index) in &self.acknowledged {
            if self.commands.get(&cmd) != Some(&index) {
                return violation(
                    "acknowledged write lost",
                    format!("command {cmd} was acknowledged at {index} but is not committed there"),
                );
            }
        }
        Ok(())
    }

    /// Committed entries after `index`, as (index, term).
    pub fn entries_after(&self, index: LogIndex) -> impl Iterator<Item = (LogIndex, Term)> + '_ {
        self.entries.range(index.next()..).map(|(&i, &(t, _))| (i, t))
    }
}
