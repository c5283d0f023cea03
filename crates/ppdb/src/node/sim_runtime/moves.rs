//! The data group's moves, as the fault injector aims at them: while the directory records the
//! group as moving (its placement not yet settled), the nodes' status pages are probed, and
//! each node's part in the move is read off them: a *target* is placed but not yet a voter of
//! the group's membership (as its leader reports it), a *source* is a voter no longer placed,
//! and the group's and the meta group's leaders carry the move out. A crash or a partition can
//! then strike one of them in the middle of the move (`cluster::faults`), not only by chance.

use super::cluster::{Handles, GROUP};
use super::convergence::{group_leader, probe, Reports};
use crate::node::directory::Directory;
use crate::node::runtime::META_GROUP;
use futures::FutureExt;
use ppdb_raft::NodeId;
use tokio::task::JoinHandle;

/// A node's part in a move in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MoveRole {
    /// Placed, not yet a voter: receiving its copy.
    Target,
    /// A voter no longer placed: to be removed, then to delete its copy.
    Source,
    /// The data group's leader, which makes the membership changes.
    DataLeader,
    /// The meta group's leader, which records the move and its end.
    MetaLeader,
}

/// Faults injected in the middle of a move, by whom they struck.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct MoveFaults {
    /// Crashes of a target.
    pub target_crashes: u64,
    /// Crashes of a source.
    pub source_crashes: u64,
    /// Crashes of the data group's leader.
    pub data_leader_crashes: u64,
    /// Crashes of the meta group's leader.
    pub meta_leader_crashes: u64,
    /// Partitions cutting a target or a source off.
    pub partitions: u64,
}

impl MoveFaults {
    /// Counts a crash of a node playing `role`.
    pub fn crashed(&mut self, role: MoveRole) {
        let count = match role {
            MoveRole::Target => &mut self.target_crashes,
            MoveRole::Source => &mut self.source_crashes,
            MoveRole::DataLeader => &mut self.data_leader_crashes,
            MoveRole::MetaLeader => &mut self.meta_leader_crashes,
        };
        *count += 1;
    }

    /// Every mid-move crash.
    pub fn crashes(&self) -> u64 {
        self.target_crashes + self.source_crashes + self.data_leader_crashes + self.meta_leader_crashes
    }

    /// Adds `other`'s counts (a sweep's totals).
    pub fn add(&mut self, other: &MoveFaults) {
        self.target_crashes += other.target_crashes;
        self.source_crashes += other.source_crashes;
        self.data_leader_crashes += other.data_leader_crashes;
        self.meta_leader_crashes += other.meta_leader_crashes;
        self.partitions += other.partitions;
    }
}

/// The status probes taken while the data group moves, and the last one's reports.
#[derive(Default)]
pub(super) struct MoveWatch {
    /// The probe in flight, if any.
    probe: Option<JoinHandle<Reports>>,
    /// What the last probe found, while the group still moves.
    last: Reports,
}

impl MoveWatch {
    /// Collects the probe in flight, if done, and starts the next one while `directory`
    /// records the data group as moving; forgets the reports once it no longer does.
    pub fn step(&mut self, handles: &Handles, directory: &Directory) {
        if let Some(done) = self.probe.as_mut().and_then(FutureExt::now_or_never) {
            self.probe = None;
            // A probe only fails if its task was cancelled: the next one will tell.
            self.last = done.unwrap_or_default();
        }
        if !moving(directory) {
            self.last.clear();
            return;
        }
        if self.probe.is_none() {
            self.probe = Some(tokio::spawn(probe(handles.clone())));
        }
    }

    /// Every node with a part in the data group's move as `directory` records it and the last
    /// probe saw it (none when the group is settled or nothing was probed yet).
    pub fn roles(&self, directory: &Directory) -> Vec<(MoveRole, NodeId)> {
        let Some(placed) = directory.placement().group(GROUP).filter(|p| !p.settled) else {
            return Vec::new();
        };
        let Some((data_leader, report)) = group_leader(&self.last, GROUP) else { return Vec::new() };
        let voters = &report.raft.membership.voters;
        let mut roles: Vec<(MoveRole, NodeId)> = Vec::new();
        roles.extend(placed.replicas.difference(voters).map(|&n| (MoveRole::Target, n)));
        roles.extend(voters.difference(&placed.replicas).map(|&n| (MoveRole::Source, n)));
        roles.push((MoveRole::DataLeader, data_leader));
        if let Some((meta_leader, _)) = group_leader(&self.last, META_GROUP) {
            roles.push((MoveRole::MetaLeader, meta_leader));
        }
        roles
    }
}

/// Whether `directory` records the data group as moving.
fn moving(directory: &Directory) -> bool {
    directory.placement().group(GROUP).is_some_and(|p| !p.settled)
}
