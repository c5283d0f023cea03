//! What the leaders of every group send, checked as it is sent, group by group:
//!
//! - **Election safety** (the core's [`ElectionSafety`]): a node that sends an append, a
//!   heartbeat, a snapshot or a `TimeoutNow` leads the term it sends in; at most one node may
//!   lead a term of a group.
//! - **Log matching** (the core's [`LogMatching`]): every entry a leader sends, of any group
//!   (the meta group's directory commands and membership changes included), is the only entry
//!   ever sent at its index and term, and follows the same previous term.
//! - **Snapshot agreement**: every snapshot sent at one index of a group holds the same state,
//!   term and membership (the meta group's hold the directory).

use super::register::command_digest;
use crate::storage::wal::GroupId;
use ppdb_raft::message::MessageBody;
use ppdb_raft::sim::check::election_safety::ElectionSafety;
use ppdb_raft::sim::check::log_matching::LogMatching;
use ppdb_raft::sim::check::{Verdict, Violation};
use ppdb_raft::sim::rng::mix;
use ppdb_raft::{
    ConfChange, ConfChangeKind, Entry, EntryPayload, LogIndex, Membership, Message, NodeId, Snapshot, Term,
};
use std::collections::{BTreeMap, BTreeSet};

/// The checkers of one group.
#[derive(Default)]
struct GroupLog {
    /// Who led each term.
    elections: ElectionSafety,
    /// The node last seen leading, in the highest term seen led.
    leader: Option<(Term, NodeId)>,
    /// Every entry sent, by index and term.
    entries: LogMatching,
    /// Index → digest of every snapshot sent at it.
    snapshots: BTreeMap<LogIndex, u64>,
    /// The membership changes already reported, by index and term: a change is checked
    /// against its leader's directory when first sent, as it was made then; a placement may
    /// later take a node back, so a resend may no longer match it.
    changes_seen: BTreeSet<(LogIndex, Term)>,
}

/// The checkers of every group, fed with every message a node hands to the network.
#[derive(Default)]
pub(super) struct GroupLogs {
    /// The checkers of each group seen.
    groups: BTreeMap<GroupId, GroupLog>,
}

impl GroupLogs {
    /// `message` of `group` was sent. Returns the membership changes it carries that its
    /// sender created (entries of the term it leads) and that were not sent before, for the
    /// directory checks.
    pub fn observe(&mut self, group: GroupId, message: &Message) -> Result<Vec<ConfChange>, Violation> {
        let log = self.groups.entry(group).or_default();
        let in_group = |violation: Violation| Violation {
            invariant: violation.invariant,
            detail: format!("group {}: {}", group.0, violation.detail),
        };
        match &message.body {
            MessageBody::Append { prev_term, entries, .. } => {
                log.led(message).map_err(in_group)?;
                log.appended(message.from, *prev_term, entries).map_err(in_group)?;
                let created = created_conf_changes(entries, message.term);
                Ok(created
                    .into_iter()
                    .filter(|&(index, term, _)| log.changes_seen.insert((index, term)))
                    .map(|(_, _, change)| change)
                    .collect())
            }
            MessageBody::InstallSnapshot { snapshot } => {
                log.led(message).map_err(in_group)?;
                log.snapshot_sent(message.from, snapshot).map_err(in_group)?;
                Ok(Vec::new())
            }
            MessageBody::Heartbeat { .. } | MessageBody::TimeoutNow => {
                log.led(message).map_err(in_group)?;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The node last seen leading `group`'s highest term seen led.
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.groups.get(&group).and_then(|log| log.leader).map(|(_, node)| node)
    }
}

impl GroupLog {
    /// The sender of a leader's message leads its term.
    fn led(&mut self, message: &Message) -> Verdict {
        if self.leader.is_none_or(|(term, _)| term <= message.term) {
            self.leader = Some((message.term, message.from));
        }
        self.elections.observe_leader(message.from, message.term)
    }

    /// `leader` sent `entries`, following an entry of `prev_term`.
    fn appended(&mut self, leader: NodeId, prev_term: Term, entries: &[Entry]) -> Verdict {
        let mut prev_term = prev_term;
        for entry in entries {
            self.entries.observe_persisted(leader, entry, prev_term, payload_digest(&entry.payload))?;
            prev_term = entry.term;
        }
        Ok(())
    }

    /// `leader` sent `snapshot`: the same index must always hold the same snapshot.
    fn snapshot_sent(&mut self, leader: NodeId, snapshot: &Snapshot) -> Verdict {
        let meta = &snapshot.meta;
        let digest =
            mix(command_digest(&snapshot.data), mix(meta.term.0, membership_digest(&meta.membership)));
        match self.snapshots.insert(meta.index, digest) {
            Some(other) if other != digest => Err(Violation {
                invariant: "snapshot agreement",
                detail: format!(
                    "node {leader} sent a snapshot at {} (digest {digest:x}) unlike an earlier one ({other:x})",
                    meta.index
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// The membership changes among `entries` created in `term` (by the leader of that term), with
/// their indexes and terms.
fn created_conf_changes(entries: &[Entry], term: Term) -> Vec<(LogIndex, Term, ConfChange)> {
    entries
        .iter()
        .filter(|entry| entry.term == term)
        .filter_map(|entry| match entry.payload {
            EntryPayload::ConfChange(change) => Some((entry.index, entry.term, change)),
            _ => None,
        })
        .collect()
}

/// A digest of an entry's payload.
fn payload_digest(payload: &EntryPayload) -> u64 {
    match payload {
        EntryPayload::Empty => 0,
        EntryPayload::Command(data) => command_digest(data),
        EntryPayload::ConfChange(change) => {
            let kind = match change.kind {
                ConfChangeKind::AddVoter => 1,
                ConfChangeKind::AddLearner => 2,
                ConfChangeKind::Remove => 3,
            };
            mix(kind, change.node.0)
        }
    }
}

/// A digest of a membership: its voters, then its learners.
fn membership_digest(membership: &Membership) -> u64 {
    let voters = membership.voters.iter().fold(1, |d, v| mix(d, v.0));
    membership.learners.iter().fold(mix(voters, 2), |d, l| mix(d, l.0))
}
