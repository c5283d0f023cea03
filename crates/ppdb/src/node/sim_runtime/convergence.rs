//! Where membership must settle once faults stop: probed on the nodes' status pages, on the
//! meta group's leader (as `reconcile` sees it there), and required by the liveness phase.
//!
//! Settled means: nobody is JOINING or LEAVING in the leader's directory; no group is moving
//! (every placement the directory records is settled); in every group the voters are exactly
//! the ACTIVE members, or for a placed data group its placement, in a committed membership
//! with no learner left (so removed nodes are in no group); no running node outside a group's
//! placement keeps a copy of it (its log and snapshot deleted; that the deletion is durable is
//! checked once the run ends, `Cluster::check_copies_deleted`); every ACTIVE member runs and
//! publishes the same directory; and the meta leader leads the data group too
//! (`colocate_leaders`).

use super::cluster::{lock, Handles, GROUP};
use super::observer::Observer;
use crate::node::directory::MemberStatus;
use crate::node::placement::Placement;
use crate::node::runtime::{GroupReport, META_GROUP};
use crate::storage::wal::GroupId;
use futures::FutureExt;
use ppdb_raft::{LogIndex, NodeId, PeerRole};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Simulated time between two probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// Every running node's groups, as its status page reports them.
pub(super) type Reports = Vec<(NodeId, Vec<GroupReport>)>;

/// The probes of the liveness phase and what the last one found.
pub(super) struct Convergence {
    /// The probe in flight, if any.
    probe: Option<JoinHandle<Reports>>,
    /// What kept the memberships from being settled at the last probe; `None` once settled.
    unsettled: Option<String>,
}

impl Default for Convergence {
    /// Nothing probed yet: not settled.
    fn default() -> Self {
        Convergence { probe: None, unsettled: Some("not probed yet".into()) }
    }
}

impl Convergence {
    /// Collects the probe in flight, if it is done, and starts the next one. Returns whether
    /// the last probe found the memberships settled.
    pub fn step(&mut self, handles: &Handles, observer: &Observer) -> bool {
        if let Some(reports) = self.probe.as_mut().and_then(FutureExt::now_or_never) {
            self.probe = None;
            self.unsettled = match reports {
                Ok(reports) => unsettled(&reports, observer),
                Err(e) => Some(format!("the probe failed: {e}")),
            };
        }
        if self.probe.is_none() && self.unsettled.is_some() {
            self.probe = Some(tokio::spawn(probe(handles.clone())));
        }
        self.unsettled.is_none()
    }

    /// What kept the memberships from being settled at the last probe.
    pub fn unsettled(&self) -> Option<&str> {
        self.unsettled.as_deref()
    }
}

/// Asks every running node for its groups' status, after a pause.
pub(super) async fn probe(handles: Handles) -> Reports {
    tokio::time::sleep(PROBE_INTERVAL).await;
    let nodes: Vec<_> = lock(&handles).iter().map(|(&id, h)| (id, h.clone())).collect();
    let mut reports = Vec::new();
    for (id, handle) in nodes {
        if let Ok(groups) = handle.status().await {
            reports.push((id, groups));
        }
    }
    reports
}

/// The node leading `group` at the highest term among `reports`, and its report of it.
pub(super) fn group_leader(reports: &Reports, group: GroupId) -> Option<(NodeId, &GroupReport)> {
    reports
        .iter()
        .filter_map(|(id, groups)| {
            groups.iter().find(|g| g.group == group && g.raft.role == PeerRole::Leader).map(|g| (*id, g))
        })
        .max_by_key(|(_, g)| g.raft.term)
}

/// A running node that still holds a copy (a log or a snapshot) of a data group placed on
/// other nodes, if any.
fn unplaced_copy(reports: &Reports, placement: &Placement) -> Option<String> {
    reports.iter().find_map(|(node, groups)| {
        let unplaced =
            |g: &&GroupReport| g.group != META_GROUP && placement.hosts(g.group, *node) == Some(false);
        groups.iter().filter(unplaced).find_map(|g| {
            let (last, snapshot) = (g.raft.last_index, g.raft.snapshot_index);
            (last > LogIndex(0) || snapshot > LogIndex(0)).then(|| {
                format!(
                    "node {node} is outside group {}'s placement {:?} but keeps a copy \
                     (log up to {last}, snapshot at {snapshot})",
                    g.group.0,
                    placement.group(g.group).map(|p| &p.replicas)
                )
            })
        })
    })
}

/// What keeps the memberships from being settled, as the meta leader among `reports` sees them.
fn unsettled(reports: &Reports, observer: &Observer) -> Option<String> {
    let leads_meta = |groups: &Vec<GroupReport>| {
        groups.iter().find(|g| g.group == META_GROUP && g.raft.role == PeerRole::Leader).map(|g| g.raft.term)
    };
    let Some((leader, groups)) = reports
        .iter()
        .filter_map(|(id, groups)| leads_meta(groups).map(|term| (term, id, groups)))
        .max_by_key(|(term, _, _)| *term)
        .map(|(_, id, groups)| (*id, groups))
    else {
        return Some("no node leads the meta group".into());
    };
    let Some(directory) = observer.directory_of(leader) else {
        return Some(format!("the meta leader {leader} publishes no directory"));
    };
    let active: BTreeSet<NodeId> = directory.with_status(MemberStatus::Active).collect();
    if let Some((node, member)) = directory
        .members()
        .iter()
        .find(|(_, m)| matches!(m.status, MemberStatus::Joining | MemberStatus::Leaving))
    {
        return Some(format!(
            "node {node} is still {:?} in the directory of the meta leader {leader}",
            member.status
        ));
    }
    let placement = directory.placement();
    if let Some(group) = placement.moving().next() {
        return Some(format!(
            "group {} is still moving in the directory of the meta leader {leader}",
            group.0
        ));
    }
    for group in groups {
        // A placed data group is checked on its own leader, which the meta leader may not be.
        let (seen_on, report, expected) =
            match placement.group(group.group).filter(|_| group.group != META_GROUP) {
                Some(placed) => {
                    let Some((node, report)) = group_leader(reports, group.group) else {
                        return Some(format!("no node leads group {}", group.group.0));
                    };
                    (node, report, placed.replicas.clone())
                }
                None => (leader, group, active.clone()),
            };
        let membership = &report.raft.membership;
        if membership.voters != expected || !membership.learners.is_empty() || !expected.is_subset(&active) {
            return Some(format!(
                "on {seen_on}, group {} has voters {:?} and learners {:?}; expected {expected:?}, ACTIVE: {active:?}",
                group.group.0, membership.voters, membership.learners
            ));
        }
        if report.raft.membership_uncommitted {
            return Some(format!("on {seen_on}, group {}'s membership is not committed yet", group.group.0));
        }
        let colocated = expected.contains(&leader);
        if group.group == GROUP && colocated && group.raft.role != PeerRole::Leader {
            return Some(format!("the meta leader {leader} does not lead the data group"));
        }
    }
    if let Some(copy) = unplaced_copy(reports, placement) {
        return Some(copy);
    }
    let differs = |node: &&NodeId| observer.directory_of(**node).as_ref() != Some(&directory);
    if let Some(node) = active.iter().find(differs) {
        return Some(format!(
            "ACTIVE node {node} does not publish the meta leader's directory {directory:?}"
        ));
    }
    None
}
