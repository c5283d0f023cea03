//! Making every group's membership follow the directory, one safe step at a time.
//!
//! The directory (replicated by the meta group) says who should be in the cluster; each
//! group's leader compares its group's membership with it and proposes the next single-server
//! change: remove who should be out (removed nodes first; a leaving leader hands leadership
//! away first), add newcomers as learners, promote learners that caught up. The meta group's
//! leader also moves nodes along the directory's lifecycle: JOINING → ACTIVE once a voter
//! everywhere, LEAVING → REMOVED once out of every data group (as its own voter replicas see
//! them) and, when the meta group could not elect a leader without it, out of the meta group
//! too (which drops a leaving node only once it is out of every data group), and ACTIVE → LEAVING for a node silent past the grace period when removing it keeps a
//! safe quorum.
//!
//! These are pure functions of the directory and the groups' Raft status: the runtime calls
//! them on each housekeeping round, and retries naturally (a lost proposal is proposed again
//! on a later round, because the difference is still there).

use super::directory::{Directory, DirectoryCommand, MemberStatus};
use super::placement::PlacementChange;
use crate::storage::wal::GroupId;
use ppdb_raft::{ConfChange, ConfChangeKind, Membership, NodeId, Status};
use std::collections::BTreeSet;

/// How memberships follow the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipPolicy {
    /// A learner is promoted once it is at most this many entries behind the leader's log.
    pub catch_up_entries: u64,
    /// Leader ticks without an answer after which the meta leader removes an ACTIVE node
    /// (the seed's clean-up of failed nodes); `None` never removes automatically.
    pub failed_after_ticks: Option<u64>,
    /// Automatic removal never leaves fewer ACTIVE nodes than this.
    pub min_voters: usize,
    /// Whether data groups hand their leadership to the meta group's leader, so one node
    /// leads every group (see [`colocation_target`]).
    pub colocate_leaders: bool,
    /// Ticks in each window over which the meta group's leader counts where client requests
    /// enter, to hand leadership to a node that brings most of them
    /// ([`super::leadership::follow_clients_target`]); `None` leaves leadership where it is.
    pub follow_clients_ticks: Option<u64>,
}

impl Default for MembershipPolicy {
    /// Promote learners within 64 entries of the leader; never remove automatically; keep at
    /// least 3 voters; colocate leaders; leave leadership where elections put it.
    fn default() -> Self {
        MembershipPolicy {
            catch_up_entries: 64,
            failed_after_ticks: None,
            min_voters: 3,
            colocate_leaders: true,
            follow_clients_ticks: None,
        }
    }
}

/// What a group's leader should do next about its membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    /// Propose this membership change.
    Change(ConfChange),
    /// Hand leadership to this voter first (the leader itself is to be removed).
    TransferLeadership(NodeId),
}

/// Whether `node` belongs in data group `group`, or the meta group when `meta` is given,
/// according to the directory: `None` for a node the directory does not know (left alone).
/// Where the cluster places shards, a data group's members are its placed replicas (never a
/// removed node). For the meta group, `meta` holds its membership and
/// the nodes still in some data group. A leaving member of the meta group stays in it while it
/// is in any data group, so it learns it is leaving and hands over the data groups it leads
/// (a node dropped from the meta group first never applies its own LEAVING state, and would
/// lead on with a frozen directory); after that it stays until removed if the meta group can
/// keep it that long ([`meta_keeps`]).
fn belongs(
    directory: &Directory,
    group: GroupId,
    node: NodeId,
    meta: Option<(&Membership, &BTreeSet<NodeId>)>,
) -> Option<bool> {
    let placed = meta.is_none().then(|| directory.placement().hosts(group, node)).flatten();
    directory.get(node).map(|m| match m.status {
        _ if placed.is_some() => placed == Some(true) && m.status != MemberStatus::Removed,
        MemberStatus::Joining | MemberStatus::Active => true,
        MemberStatus::Leaving => meta.is_some_and(|(meta, in_data_groups)| {
            meta.contains(node) && (in_data_groups.contains(&node) || meta_keeps(directory, meta, node))
        }),
        MemberStatus::Removed => false,
    })
}

/// Whether the meta group (`meta`) can keep leaving `node` until it is REMOVED. A removed node
/// stops at once, so the voters not on their way out (JOINING or ACTIVE) must make a majority
/// without it and any other leaving or removed voter; otherwise (two voters, or several
/// leaving at once) a leader change before the meta group drops it would leave the group
/// without a quorum for good. When it cannot, the node leaves the meta group first and is
/// retired after; it then learns of its removal from its peers refusing it.
fn meta_keeps(directory: &Directory, meta: &Membership, node: NodeId) -> bool {
    let staying = |v: &&NodeId| {
        **v != node
            && directory
                .get(**v)
                .is_none_or(|m| matches!(m.status, MemberStatus::Joining | MemberStatus::Active))
    };
    meta.voters.iter().filter(staying).count() >= meta.quorum()
}

/// The next step for `group`, whose leader reports `status`, if its membership differs from
/// the directory. For the meta group, `in_data_groups` is given: the nodes that are still
/// members of some data group as far as this node knows (see [`nodes_in_data_groups`]).
///
/// Where the cluster places shards, a replica that is no longer placed in the group is
/// removed only once every placed replica is a voter, so a move never leaves the group with
/// fewer voters than its replication factor (nodes already removed from the cluster go first:
/// they are gone).
pub fn next_group_action(
    directory: &Directory,
    group: GroupId,
    status: &Status,
    in_data_groups: Option<&BTreeSet<NodeId>>,
    policy: &MembershipPolicy,
) -> Option<GroupAction> {
    let membership = &status.membership;
    let meta = in_data_groups.map(|nodes| (membership, nodes));
    let change = |kind, node| Some(GroupAction::Change(ConfChange { kind, node }));
    // A leader on its way out (of the cluster or of the group) hands over first, also in the
    // meta group, whose leader must see the data groups from a replica that stays in them.
    let may_lead = |node| {
        let alive = directory
            .get(node)
            .is_none_or(|m| matches!(m.status, MemberStatus::Joining | MemberStatus::Active));
        alive && (meta.is_some() || directory.placement().hosts(group, node) != Some(false))
    };
    if !may_lead(status.id) {
        let successor = status
            .followers
            .iter()
            .filter(|f| membership.is_voter(f.id) && may_lead(f.id))
            .max_by_key(|f| f.matched)
            .map(|f| f.id);
        if let Some(to) = successor {
            return Some(GroupAction::TransferLeadership(to));
        }
    }
    // Removed members go first: they have stopped, and while they still count as voters,
    // removing a live member could leave too few live voters for a quorum.
    let going: Vec<NodeId> =
        membership.members().filter(|&n| belongs(directory, group, n, meta) == Some(false)).collect();
    let removed = |n: &&NodeId| directory.get(**n).is_some_and(|m| m.status == MemberStatus::Removed);
    if let Some(&node) = going.iter().find(removed) {
        return change(ConfChangeKind::Remove, node);
    }
    let placed_are_voters = match directory.placement().group(group).filter(|_| meta.is_none()) {
        Some(placement) => placement.replicas.iter().all(|&n| membership.is_voter(n)),
        None => true,
    };
    if let Some(&node) = going.first().filter(|_| placed_are_voters) {
        return change(ConfChangeKind::Remove, node);
    }
    for &node in directory.members().keys() {
        if belongs(directory, group, node, meta) == Some(true) && !membership.contains(node) {
            return change(ConfChangeKind::AddLearner, node);
        }
    }
    for &node in &membership.learners {
        let caught_up = status.followers.iter().any(|f| {
            f.id == node && f.matched.0.saturating_add(policy.catch_up_entries) >= status.last_index.0
        });
        if caught_up && may_lead(node) && belongs(directory, group, node, meta) == Some(true) {
            return change(ConfChangeKind::AddVoter, node);
        }
    }
    None
}

/// For data group `group`, whose leader reports `status`: the report that its committed
/// membership is now exactly its placement, when the directory does not record that yet.
/// Until then its old replicas keep their copies, and the rebalancer moves it no further.
pub fn settled_report(directory: &Directory, group: GroupId, status: &Status) -> Option<PlacementChange> {
    let placement = directory.placement().group(group)?;
    let settled = !status.membership_uncommitted
        && status.membership.learners.is_empty()
        && status.membership.voters == placement.replicas;
    (!placement.settled && settled)
        .then(|| PlacementChange::Settled { group, replicas: placement.replicas.clone() })
}

/// For a data group this node leads: the node to hand leadership to so that the meta group's
/// leader (`meta_leader`) leads it too, if that node is a voter, fully caught up, and answered
/// within `recent_ticks`.
///
/// Why: every write is fsynced on a majority whoever leads, but with one leader for all
/// groups each node's fsync covers every group's entries of a round (the leader's own, and a
/// follower's for the appends that arrive together in one frame), instead of rounds of
/// groups led from different nodes interleaving and each waiting on the others. On a 3-node
/// cluster this multiplies write throughput (docs/benchmarks.md). The cost is CPU: the
/// leading node serves every group's clients.
pub fn colocation_target(meta_leader: Option<NodeId>, status: &Status, recent_ticks: u64) -> Option<NodeId> {
    let target = meta_leader.filter(|&m| m != status.id && status.membership.is_voter(m))?;
    let follower = status.followers.iter().find(|f| f.id == target)?;
    (follower.matched == status.last_index && follower.silent_ticks <= recent_ticks).then_some(target)
}

/// The nodes that are members of some data group, as this node's replicas (`data`) show them.
/// Only a voter's replica is sure to be current, so where this node (`me`) is not a voter of
/// every data group, every node of the directory is counted in. Where the cluster places
/// shards, the placement says it: the placed replicas, and every node while a group moves.
pub fn nodes_in_data_groups(directory: &Directory, me: NodeId, data: &[Status]) -> BTreeSet<NodeId> {
    let placement = directory.placement();
    if placement.is_placed() {
        if placement.moving().next().is_some() {
            return directory.members().keys().copied().collect();
        }
        return placement.replica_counts().into_keys().collect();
    }
    if data.iter().all(|s| s.membership.is_voter(me)) {
        data.iter().flat_map(|s| s.membership.members()).collect()
    } else {
        directory.members().keys().copied().collect()
    }
}

/// On the meta group's leader: the next lifecycle step to record in the directory, given the
/// meta group's status (`meta`, a leader's, with follower silence) and this node's view of
/// every data group's membership.
pub fn next_directory_command(
    directory: &Directory,
    meta: &Status,
    data: &[Status],
    policy: &MembershipPolicy,
) -> Option<DirectoryCommand> {
    let placement = directory.placement();
    for node in directory.with_status(MemberStatus::Joining) {
        // Where shards are placed, a newcomer holds none until it is active.
        let in_data = placement.is_placed() || data.iter().all(|s| s.membership.is_voter(node));
        if meta.membership.is_voter(node) && in_data {
            return Some(DirectoryCommand::Activate { node });
        }
    }
    // Only a voter's replica of a data group shows who is out of it: a newcomer leading the
    // meta group may not even have received the data groups' state (empty memberships).
    // Where shards are placed, the placement says it instead: the node is out of every data
    // group once no group is placed on it and every group reported its membership settled.
    let out_of_data = |node| match placement.is_placed() {
        true => placement.moving().next().is_none() && !placement.replica_counts().contains_key(&node),
        false => {
            data.iter().all(|s| s.membership.is_voter(meta.id))
                && data.iter().all(|s| !s.membership.contains(node))
        }
    };
    for node in directory.with_status(MemberStatus::Leaving) {
        let meta_done = !meta.membership.contains(node) || meta_keeps(directory, &meta.membership, node);
        if meta_done && out_of_data(node) {
            return Some(DirectoryCommand::Retire { node });
        }
    }
    failed_node(directory, meta, policy).map(|node| DirectoryCommand::Leave { node })
}

/// An ACTIVE node silent for the grace period whose removal keeps a safe quorum: at least
/// `min_voters` ACTIVE nodes remain, a majority of them answering. One removal at a time.
fn failed_node(directory: &Directory, meta: &Status, policy: &MembershipPolicy) -> Option<NodeId> {
    let limit = policy.failed_after_ticks?;
    if directory.with_status(MemberStatus::Leaving).next().is_some() {
        return None;
    }
    let active: Vec<NodeId> = directory.with_status(MemberStatus::Active).collect();
    let silent = |node: NodeId| meta.followers.iter().any(|f| f.id == node && f.silent_ticks >= limit);
    let failed = active.iter().copied().find(|&n| n != meta.id && silent(n))?;
    let remaining = active.len() - 1;
    let answering = active.iter().filter(|&&n| n != failed && !silent(n)).count();
    (remaining >= policy.min_voters && answering > remaining / 2).then_some(failed)
}

/// Whether `node` can be removed without leaving a group unable to commit: in every group
/// (`groups`: each group's id and membership as this node sees it), the voters left once
/// `node` is out must be a majority reachable (`reachable`). Only voters count: a JOINING
/// node is a learner, and its acknowledgements commit nothing. The refusal says which group
/// and why.
pub fn check_removal(
    node: NodeId,
    groups: &[(u64, &Membership)],
    reachable: impl Fn(NodeId) -> bool,
) -> Result<(), String> {
    for &(group, membership) in groups {
        if membership.voters.is_empty() {
            return Err(format!(
                "this node does not know the voters of group {group} yet; ask another member"
            ));
        }
        let remaining: Vec<NodeId> = membership.voters.iter().copied().filter(|&v| v != node).collect();
        let answering = remaining.iter().filter(|&&v| reachable(v)).count();
        if answering <= remaining.len() / 2 {
            return Err(format!(
                "removing node {node} would leave group {group} with {} voters of which only \
                 {answering} are reachable: the group would lose its quorum",
                remaining.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppdb_raft::tracker::ProgressState;
    use ppdb_raft::{FollowerStatus, LogIndex, Membership, PeerRole, Term};
    use std::net::SocketAddr;

    const POLICY: MembershipPolicy = MembershipPolicy {
        catch_up_entries: 10,
        failed_after_ticks: Some(100),
        min_voters: 3,
        colocate_leaders: true,
        follow_clients_ticks: None,
    };

    fn directory(members: &[(u64, MemberStatus)]) -> Directory {
        let mut d = Directory::default();
        // Everyone joins and (unless still joining) becomes active before anyone leaves, as
        // the directory refuses the last active member's leave.
        for &(id, status) in members {
            let peer_addr = SocketAddr::from(([127, 0, 0, 1], 7100 + id as u16));
            let _ = d.execute(&DirectoryCommand::Join { node: NodeId(id), peer_addr, incarnation: None });
            if status != MemberStatus::Joining {
                let _ = d.execute(&DirectoryCommand::Activate { node: NodeId(id) });
            }
        }
        for &(id, status) in members {
            if matches!(status, MemberStatus::Leaving | MemberStatus::Removed) {
                let _ = d.execute(&DirectoryCommand::Leave { node: NodeId(id) });
            }
            if status == MemberStatus::Removed {
                let _ = d.execute(&DirectoryCommand::Retire { node: NodeId(id) });
            }
        }
        d
    }

    /// Node 1 leading a group of `voters` and `learners`; followers at `matched` with
    /// `silent` ticks of silence.
    fn leader(voters: &[u64], learners: &[u64], followers: &[(u64, u64, u64)]) -> Status {
        let mut membership = Membership::with_voters(voters.iter().map(|&v| NodeId(v)));
        membership.learners = learners.iter().map(|&l| NodeId(l)).collect();
        Status {
            id: NodeId(1),
            role: PeerRole::Leader,
            term: Term(2),
            leader: Some(NodeId(1)),
            commit: LogIndex(100),
            applied: LogIndex(100),
            last_index: LogIndex(100),
            snapshot_index: LogIndex(0),
            membership,
            membership_uncommitted: false,
            followers: followers
                .iter()
                .map(|&(id, matched, silent_ticks)| FollowerStatus {
                    id: NodeId(id),
                    matched: LogIndex(matched),
                    state: ProgressState::Replicate,
                    silent_ticks,
                })
                .collect(),
        }
    }

    fn nodes(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    #[test]
    fn the_meta_leader_counts_data_group_members_only_from_voter_replicas() {
        use MemberStatus::*;
        let d = directory(&[(1, Active), (2, Active), (3, Leaving)]);
        let voter = leader(&[1, 2], &[], &[]);
        assert_eq!(nodes_in_data_groups(&d, NodeId(1), std::slice::from_ref(&voter)), nodes(&[1, 2]));
        let stale = Status { membership: Membership::default(), ..voter.clone() };
        assert_eq!(nodes_in_data_groups(&d, NodeId(1), &[voter, stale]), nodes(&[1, 2, 3]), "unsure: all");
    }

    fn change(kind: ConfChangeKind, node: u64) -> Option<GroupAction> {
        Some(GroupAction::Change(ConfChange { kind, node: NodeId(node) }))
    }

    #[test]
    fn a_newcomer_is_added_as_learner_then_promoted_once_caught_up() {
        use MemberStatus::*;
        let d = directory(&[(1, Active), (2, Active), (3, Active), (4, Joining)]);
        let group = leader(&[1, 2, 3], &[], &[(2, 100, 0), (3, 100, 0)]);
        assert_eq!(
            next_group_action(&d, GroupId(1), &group, None, &POLICY),
            change(ConfChangeKind::AddLearner, 4)
        );
        let behind = leader(&[1, 2, 3], &[4], &[(2, 100, 0), (3, 100, 0), (4, 50, 0)]);
        assert_eq!(next_group_action(&d, GroupId(1), &behind, None, &POLICY), None);
        let caught_up = leader(&[1, 2, 3], &[4], &[(2, 100, 0), (3, 100, 0), (4, 95, 0)]);
        assert_eq!(
            next_group_action(&d, GroupId(1), &caught_up, None, &POLICY),
            change(ConfChangeKind::AddVoter, 4)
        );
        let everywhere = leader(&[1, 2, 3, 4], &[], &[]);
        assert_eq!(
            next_directory_command(&d, &everywhere, std::slice::from_ref(&everywhere), &POLICY),
            Some(DirectoryCommand::Activate { node: NodeId(4) })
        );
    }

    #[test]
    fn a_leaving_node_is_removed_from_data_groups_first_and_the_meta_group_last() {
        use MemberStatus::*;
        let d = directory(&[(1, Active), (2, Active), (3, Leaving)]);
        let group = leader(&[1, 2, 3], &[], &[(2, 100, 0), (3, 100, 0)]);
        assert_eq!(
            next_group_action(&d, GroupId(1), &group, None, &POLICY),
            change(ConfChangeKind::Remove, 3)
        );
        assert_eq!(
            next_group_action(&d, GroupId(1), &group, Some(&nodes(&[])), &POLICY),
            None,
            "stays in meta until removed"
        );
        let without = leader(&[1, 2], &[], &[(2, 100, 0)]);
        assert_eq!(
            next_directory_command(&d, &group, std::slice::from_ref(&without), &POLICY),
            Some(DirectoryCommand::Retire { node: NodeId(3) })
        );
        let not_in_data = Status { membership: Membership::default(), ..without };
        assert_eq!(next_directory_command(&d, &group, &[not_in_data], &POLICY), None, "a stateless view");
        let removed = directory(&[(1, Active), (2, Active), (3, Removed)]);
        assert_eq!(
            next_group_action(&removed, GroupId(1), &group, Some(&nodes(&[1, 2, 3])), &POLICY),
            change(ConfChangeKind::Remove, 3)
        );
    }

    #[test]
    fn the_meta_group_drops_a_leaving_node_first_when_it_could_not_elect_without_it() {
        use MemberStatus::*;
        let d = directory(&[(1, Active), (2, Leaving)]);
        let meta = leader(&[1, 2], &[], &[(2, 100, 0)]);
        let data = leader(&[1], &[], &[]);
        assert_eq!(
            next_group_action(&d, GroupId(1), &meta, Some(&nodes(&[1, 2])), &POLICY),
            None,
            "kept while still in a data group, so it learns it is leaving and hands over"
        );
        assert_eq!(
            next_group_action(&d, GroupId(1), &meta, Some(&nodes(&[1])), &POLICY),
            change(ConfChangeKind::Remove, 2)
        );
        assert_eq!(next_directory_command(&d, &meta, std::slice::from_ref(&data), &POLICY), None);
        let meta_without = leader(&[1], &[], &[]);
        assert_eq!(
            next_group_action(&d, GroupId(1), &meta_without, Some(&nodes(&[1])), &POLICY),
            None,
            "not added back"
        );
        assert_eq!(
            next_directory_command(&d, &meta_without, &[data], &POLICY),
            Some(DirectoryCommand::Retire { node: NodeId(2) })
        );
        let two_leaving = directory(&[(1, Active), (2, Leaving), (3, Leaving)]);
        let meta3 = leader(&[1, 2, 3], &[], &[(2, 100, 0), (3, 100, 0)]);
        assert_eq!(
            next_group_action(&two_leaving, GroupId(1), &meta3, Some(&nodes(&[1])), &POLICY),
            change(ConfChangeKind::Remove, 2)
        );
        assert_eq!(
            next_group_action(&two_leaving, GroupId(1), &meta3, Some(&nodes(&[1, 2])), &POLICY),
            change(ConfChangeKind::Remove, 3),
            "the one out of the data groups goes first"
        );
        let one_gone = directory(&[(1, Active), (2, Leaving), (3, Removed)]);
        assert_eq!(
            next_group_action(&one_gone, GroupId(1), &meta3, Some(&nodes(&[1, 2])), &POLICY),
            change(ConfChangeKind::Remove, 3),
            "the stopped node first"
        );
    }

    #[test]
    fn a_leader_that_must_go_hands_over_to_the_most_caught_up_voter() {
        use MemberStatus::*;
        let d = directory(&[(1, Leaving), (2, Active), (3, Active)]);
        let group = leader(&[1, 2, 3], &[], &[(2, 90, 0), (3, 99, 0)]);
        let in_data = nodes(&[1, 2, 3]);
        for meta_view in [None, Some(&in_data)] {
            assert_eq!(
                next_group_action(&d, GroupId(1), &group, meta_view, &POLICY),
                Some(GroupAction::TransferLeadership(NodeId(3)))
            );
        }
        let alone = leader(&[1], &[], &[]);
        assert_eq!(
            next_group_action(&d, GroupId(1), &alone, None, &POLICY),
            change(ConfChangeKind::Remove, 1)
        );
    }

    #[test]
    fn data_group_leadership_moves_to_a_caught_up_and_answering_meta_leader() {
        let group = leader(&[1, 2, 3], &[], &[(2, 100, 0), (3, 99, 0)]);
        assert_eq!(colocation_target(Some(NodeId(2)), &group, 20), Some(NodeId(2)));
        assert_eq!(colocation_target(Some(NodeId(3)), &group, 20), None, "not caught up");
        assert_eq!(colocation_target(Some(NodeId(1)), &group, 20), None, "already here");
        assert_eq!(colocation_target(None, &group, 20), None);
        let quiet = leader(&[1, 2, 3], &[], &[(2, 100, 50), (3, 100, 0)]);
        assert_eq!(colocation_target(Some(NodeId(2)), &quiet, 20), None, "not answering");
        let learner = leader(&[1, 3], &[2], &[(2, 100, 0), (3, 100, 0)]);
        assert_eq!(colocation_target(Some(NodeId(2)), &learner, 20), None, "not a voter");
    }

    #[test]
    fn a_removal_counts_the_groups_voters_not_their_learners() {
        let group = |voters: &[u64], learners: &[u64]| {
            let mut m = Membership::with_voters(voters.iter().map(|&v| NodeId(v)));
            m.learners = learners.iter().map(|&l| NodeId(l)).collect();
            m
        };
        let all = |_: NodeId| true;
        let three = group(&[1, 2, 3], &[]);
        assert_eq!(check_removal(NodeId(3), &[(0, &three)], all), Ok(()));
        // Voters 1, 2, 3 and two learners joining: with 2 down, removing 3 leaves voters
        // {1, 2} with one answering. Counting the learners would see 3 of 4 members answer.
        let joining = group(&[1, 2, 3], &[4, 5]);
        assert_eq!(check_removal(NodeId(3), &[(1, &joining)], all), Ok(()));
        let refused = check_removal(NodeId(3), &[(1, &joining)], |n| n != NodeId(2));
        assert!(refused.as_ref().is_err_and(|e| e.contains("group 1")), "{refused:?}");
        let only = group(&[3], &[1, 2]);
        assert!(check_removal(NodeId(3), &[(2, &only)], all).is_err(), "its only voter");
        let unknown = Membership::default();
        assert!(check_removal(NodeId(3), &[(2, &unknown)], all).is_err(), "voters unknown here");
    }

    #[test]
    fn a_silent_node_is_removed_only_when_a_safe_quorum_remains() {
        use MemberStatus::*;
        let five = directory(&[(1, Active), (2, Active), (3, Active), (4, Active), (5, Active)]);
        let meta = leader(&[1, 2, 3, 4, 5], &[], &[(2, 100, 0), (3, 100, 0), (4, 100, 0), (5, 100, 500)]);
        assert_eq!(
            next_directory_command(&five, &meta, &[], &POLICY),
            Some(DirectoryCommand::Leave { node: NodeId(5) })
        );
        let quiet = leader(&[1, 2, 3, 4, 5], &[], &[(2, 100, 0), (3, 100, 0), (4, 100, 0), (5, 100, 50)]);
        assert_eq!(next_directory_command(&five, &quiet, &[], &POLICY), None, "not silent long enough");
        let three = directory(&[(1, Active), (2, Active), (3, Active)]);
        let meta3 = leader(&[1, 2, 3], &[], &[(2, 100, 0), (3, 100, 500)]);
        assert_eq!(next_directory_command(&three, &meta3, &[], &POLICY), None, "would go below 3 voters");
        let two_dead =
            leader(&[1, 2, 3, 4, 5], &[], &[(2, 100, 0), (3, 100, 500), (4, 100, 500), (5, 100, 500)]);
        assert_eq!(
            next_directory_command(&five, &two_dead, &[], &POLICY),
            None,
            "no answering majority left"
        );
        let never = MembershipPolicy { failed_after_ticks: None, ..POLICY };
        assert_eq!(next_directory_command(&five, &meta, &[], &never), None);
    }
}
