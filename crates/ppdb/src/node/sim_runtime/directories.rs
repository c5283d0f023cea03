//! What the run saw of the cluster directory (the meta group's state machine), checked as it
//! is seen. Every running node's published directory (`Runtime::directory`) is watched.
//!
//! - **One history** (state machine safety of the meta group, at the level of its state):
//!   every directory any node ever publishes lies on one history. Members are only ever
//!   added and a status only moves forward (JOINING → ACTIVE → LEAVING → REMOVED, or JOINING
//!   → LEAVING), so any two states of one history are ordered member by member; replicas that
//!   applied different commands publish directories that are not.
//! - **Forward only**: a running node's directory never moves back.
//! - **Someone stays**: every directory has an ACTIVE member (the last one may not leave).
//! - **Groups follow the directory**: a leader creates a membership change only as its own
//!   directory says: it adds a node (as learner or voter) only once the directory admitted it,
//!   and removes one only once it is LEAVING or REMOVED or placed outside the group. (Checked
//!   when an append first carries the change, as the leader made it then: a placement may
//!   later take the node back, so a resend is not checked again.)
//! - **Copies go after their removal**: a node deletes its copy of the data group only once
//!   its own directory, as published when it does, places the group elsewhere and records it
//!   settled there (its leader saw the node's removal committed).

use super::cluster::GROUP;
use crate::node::directory::{Directory, MemberStatus};
use crate::node::runtime::META_GROUP;
use crate::storage::wal::GroupId;
use ppdb_raft::sim::check::{Verdict, Violation};
use ppdb_raft::{ConfChange, ConfChangeKind, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::watch;

/// The directories seen so far, and the running nodes' directories being watched.
#[derive(Default)]
pub(super) struct DirectoryHistory {
    /// The published directory of each running node.
    watches: BTreeMap<NodeId, watch::Receiver<Directory>>,
    /// Each running node's directory as last seen.
    current: BTreeMap<NodeId, Directory>,
    /// Every distinct directory seen, in the order first seen.
    seen: Vec<Directory>,
    /// The most advanced directory seen.
    latest: Directory,
}

impl DirectoryHistory {
    /// `node` started and publishes its directory on `directory`.
    pub fn watch(&mut self, node: NodeId, directory: watch::Receiver<Directory>) -> Verdict {
        let first = directory.borrow().clone();
        self.current.remove(&node);
        self.watches.insert(node, directory);
        self.published(node, first)
    }

    /// `node` stopped.
    pub fn unwatch(&mut self, node: NodeId) {
        self.watches.remove(&node);
        self.current.remove(&node);
    }

    /// Looks at every directory published since the last call.
    pub fn poll(&mut self) -> Verdict {
        let changed: Vec<(NodeId, Directory)> = self
            .watches
            .iter_mut()
            .filter(|(_, rx)| rx.has_changed().unwrap_or(false))
            .map(|(&node, rx)| (node, rx.borrow_and_update().clone()))
            .collect();
        for (node, directory) in changed {
            self.published(node, directory)?;
        }
        Ok(())
    }

    /// The most advanced directory seen.
    pub fn latest(&self) -> &Directory {
        &self.latest
    }

    /// `node`'s directory as last seen, if it runs.
    pub fn of(&self, node: NodeId) -> Option<&Directory> {
        self.current.get(&node)
    }

    /// Distinct directories seen.
    pub fn distinct(&self) -> u64 {
        self.seen.len() as u64
    }

    /// Distinct replica sets among the data group's placements seen.
    pub fn distinct_placements(&self) -> u64 {
        let sets: BTreeSet<&BTreeSet<NodeId>> =
            self.seen.iter().filter_map(|d| d.placement().group(GROUP)).map(|p| &p.replicas).collect();
        sets.len() as u64
    }

    /// `node` published `directory`.
    fn published(&mut self, node: NodeId, directory: Directory) -> Verdict {
        if directory.members().is_empty() {
            // A joining node's, before the meta group's snapshot reached it.
            self.current.insert(node, directory);
            return Ok(());
        }
        if let Some(before) = self.current.get(&node).filter(|before| !precedes(before, &directory)) {
            return Err(failure(format!(
                "node {node}'s directory moved back from {before:?} to {directory:?}"
            )));
        }
        if directory.with_status(MemberStatus::Active).next().is_none() {
            return Err(failure(format!(
                "node {node} published a directory without an active member: {directory:?}"
            )));
        }
        if !self.seen.contains(&directory) {
            if let Some(other) = self.seen.iter().find(|other| !ordered(other, &directory)) {
                return Err(failure(format!(
                    "node {node} published {directory:?}, which is not on one history with {other:?}"
                )));
            }
            self.seen.push(directory.clone());
        }
        if precedes(&self.latest, &directory) {
            self.latest = directory.clone();
        }
        self.current.insert(node, directory);
        Ok(())
    }

    /// `leader` created `change` in `group`: its directory must call for it.
    pub fn check_change(&self, group: GroupId, leader: NodeId, change: ConfChange) -> Verdict {
        let Some(directory) = self.watches.get(&leader) else { return Ok(()) };
        let directory = directory.borrow();
        let status = directory.get(change.node).map(|m| m.status);
        // A data group placed on some nodes drops the others, whatever their lifecycle.
        let unplaced = group != META_GROUP && directory.placement().hosts(group, change.node) == Some(false);
        let called_for = match change.kind {
            ConfChangeKind::AddLearner | ConfChangeKind::AddVoter => status.is_some(),
            ConfChangeKind::Remove => {
                unplaced || matches!(status, Some(MemberStatus::Leaving | MemberStatus::Removed))
            }
        };
        if called_for {
            return Ok(());
        }
        Err(Violation {
            invariant: "groups follow the directory",
            detail: format!(
                "node {leader} made change {change:?} in group {} while its directory has node {} as {status:?}",
                group.0, change.node
            ),
        })
    }
}

impl DirectoryHistory {
    /// `node` deleted its copy of the data group: its directory must place the group
    /// elsewhere and record it settled there. Read from the node's own watch, not its last
    /// polled directory, because the node decided on what it published last.
    pub fn check_copy_deleted(&self, node: NodeId) -> Verdict {
        let Some(directory) = self.watches.get(&node) else { return Ok(()) };
        let directory = directory.borrow();
        let placement = directory.placement();
        let settled = placement.group(GROUP).is_some_and(|p| p.settled);
        if settled && placement.hosts(GROUP, node) == Some(false) {
            return Ok(());
        }
        Err(Violation {
            invariant: "copies go after their removal",
            detail: format!(
                "node {node} deleted its copy of group {} while its directory places it on {:?}",
                GROUP.0,
                placement.group(GROUP)
            ),
        })
    }
}

/// A violation of the directory's history.
fn failure(detail: String) -> Violation {
    Violation { invariant: "directory history", detail }
}

/// A status's place in the lifecycle.
fn rank(status: MemberStatus) -> u8 {
    match status {
        MemberStatus::Joining => 0,
        MemberStatus::Active => 1,
        MemberStatus::Leaving => 2,
        MemberStatus::Removed => 3,
    }
}

/// Whether `b` can follow `a` in one history: every member of `a` is in `b`, at the same
/// address, as far along or further.
fn precedes(a: &Directory, b: &Directory) -> bool {
    a.members().iter().all(|(&node, m)| {
        b.get(node).is_some_and(|n| n.peer_addr == m.peer_addr && rank(m.status) <= rank(n.status))
    })
}

/// Whether `a` and `b` can both be states of one history.
fn ordered(a: &Directory, b: &Directory) -> bool {
    precedes(a, b) || precedes(b, a)
}
