//! The rebalancer: the meta group's leader decides where shard replicas should move, one
//! replica of one group at a time, so that every shard keeps its replication factor on active
//! nodes and every active node holds as many replicas as any other, within one.
//!
//! It is a pure function of the directory, called on each housekeeping round of the meta
//! leader. Its decisions, in order of urgency:
//! 1. a replica on a node that is leaving or gone moves to the least loaded active node that
//!    lacks the group (or is dropped, when no such node exists and others remain);
//! 2. a group with fewer replicas than the factor (and active nodes to spare) gains one;
//!    a group with more loses its replica on the most loaded node;
//! 3. while two active nodes' replica counts differ by more than one, a replica moves from
//!    the most loaded to the least loaded.
//!
//! Each change replaces at most one replica, so a group of 3 or more keeps a majority of its
//! replicas through it. A group whose last change is still being carried out (not settled) is
//! left alone, except by rule 1: a node placed to receive a replica that then starts leaving
//! (or fails) would never be promoted, and the move would never settle. At most
//! [`RebalancePolicy::moves_at_once`] groups move at a time, which bounds the snapshots in
//! flight.

use super::directory::{Directory, MemberStatus};
use super::placement::{GroupPlacement, PlacementChange};
use crate::storage::wal::GroupId;
use ppdb_raft::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// How fast replicas move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalancePolicy {
    /// Most groups whose placement may be changing at once.
    pub moves_at_once: usize,
}

impl Default for RebalancePolicy {
    /// Two groups at a time: a move costs a snapshot transfer, and foreground traffic shares
    /// the disks and the network with it.
    fn default() -> Self {
        RebalancePolicy { moves_at_once: 2 }
    }
}

/// The next placement change the cluster needs, if any.
pub fn next_change(directory: &Directory, policy: &RebalancePolicy) -> Option<PlacementChange> {
    let placement = directory.placement();
    if !placement.is_placed() {
        return None;
    }
    let active: BTreeSet<NodeId> = directory.with_status(MemberStatus::Active).collect();
    if active.is_empty() {
        return None;
    }
    let mut load: BTreeMap<NodeId, usize> = active.iter().map(|&n| (n, 0)).collect();
    for (node, count) in placement.replica_counts() {
        if let Some(l) = load.get_mut(&node) {
            *l = count;
        }
    }
    let all: Vec<(GroupId, &GroupPlacement)> = placement.groups().iter().map(|(&g, p)| (g, p)).collect();
    let least_loaded_without = |replicas: &BTreeSet<NodeId>| {
        load.iter().filter(|(n, _)| !replicas.contains(n)).min_by_key(|(&n, &l)| (l, n)).map(|(&n, _)| n)
    };
    let place = |group, replicas| Some(PlacementChange::Place { group, replicas });
    let factor = usize::try_from(placement.factor()).unwrap_or(usize::MAX).min(active.len());

    // 1. Replicas on nodes that are no longer active, moving groups included.
    for &(group, p) in &all {
        let Some(&gone) = p.replicas.iter().find(|n| !active.contains(n)) else { continue };
        let mut replicas = p.replicas.clone();
        replicas.remove(&gone);
        match least_loaded_without(&p.replicas) {
            Some(target) => {
                replicas.insert(target);
            }
            None if replicas.is_empty() => continue,
            None => {}
        }
        return place(group, replicas);
    }
    if placement.moving().count() >= policy.moves_at_once {
        return None;
    }
    let settled: Vec<(GroupId, &GroupPlacement)> = all.into_iter().filter(|(_, p)| p.settled).collect();
    // 2. Groups with too few or too many replicas.
    for &(group, p) in &settled {
        if p.replicas.len() < factor {
            let target = least_loaded_without(&p.replicas)?;
            let mut replicas = p.replicas.clone();
            replicas.insert(target);
            return place(group, replicas);
        }
        if p.replicas.len() > factor {
            let busiest = *p.replicas.iter().max_by_key(|&&n| (load.get(&n).copied().unwrap_or(0), n))?;
            let mut replicas = p.replicas.clone();
            replicas.remove(&busiest);
            return place(group, replicas);
        }
    }
    // 3. Balance.
    let (&emptiest, &low) = load.iter().min_by_key(|(&n, &l)| (l, n))?;
    let (&fullest, &high) = load.iter().max_by_key(|(&n, &l)| (l, std::cmp::Reverse(n)))?;
    if high <= low + 1 {
        return None;
    }
    let (group, p) =
        settled.iter().find(|(_, p)| p.replicas.contains(&fullest) && !p.replicas.contains(&emptiest))?;
    let mut replicas = p.replicas.clone();
    replicas.remove(&fullest);
    replicas.insert(emptiest);
    place(*group, replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::directory::DirectoryCommand;
    use crate::node::placement::Placement;
    use proptest::prelude::*;
    use std::net::SocketAddr;

    fn addr(node: u64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], u16::try_from(node).unwrap_or(0)))
    }

    fn cluster(nodes: u64, groups: u64, factor: u32) -> Directory {
        let members = (1..=nodes).map(|n| (n, addr(n))).collect();
        let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
        Directory::bootstrap(&members, Placement::initial(groups, &ids, factor))
    }

    fn run(directory: &mut Directory, command: DirectoryCommand) {
        assert_eq!(directory.execute(&command), Ok(()), "{command:?}");
    }

    /// Applies the rebalancer's changes, each settled at once, until it has none; checks on
    /// the way that every change adds at most one replica and removes at most one, so a
    /// group of 3 or more always keeps a majority of its replicas through a move.
    fn settle(directory: &mut Directory) -> usize {
        let policy = RebalancePolicy { moves_at_once: 1 };
        for moves in 0..10_000 {
            let Some(change) = next_change(directory, &policy) else { return moves };
            let PlacementChange::Place { group, replicas } = &change else { unreachable!("only moves") };
            let old = directory.placement().group(*group).map(|p| p.replicas.clone()).unwrap_or_default();
            let (added, removed) = (replicas.difference(&old).count(), old.difference(replicas).count());
            assert!(added <= 1 && removed <= 1, "{old:?} -> {replicas:?} is more than one step");
            run(directory, DirectoryCommand::Placement(change.clone()));
            let settled = PlacementChange::Settled { group: *group, replicas: replicas.clone() };
            run(directory, DirectoryCommand::Placement(settled));
        }
        panic!("the rebalancer does not converge");
    }

    /// Every group on min(factor, active) active nodes, and active nodes within one replica.
    fn assert_balanced(directory: &Directory) {
        let active: BTreeSet<NodeId> = directory.with_status(MemberStatus::Active).collect();
        let placement = directory.placement();
        let factor = (placement.factor() as usize).min(active.len());
        for (group, p) in placement.groups() {
            assert_eq!(p.replicas.len(), factor, "group {group:?}: {:?}", p.replicas);
            assert!(p.replicas.is_subset(&active), "group {group:?} on inactive nodes: {:?}", p.replicas);
        }
        let counts = placement.replica_counts();
        let loads: Vec<usize> = active.iter().map(|n| counts.get(n).copied().unwrap_or(0)).collect();
        let (low, high) =
            (loads.iter().min().copied().unwrap_or(0), loads.iter().max().copied().unwrap_or(0));
        assert!(high <= low + 1, "loads {loads:?}");
    }

    /// Leaves (or fails) `node`: LEAVING, its replicas moved away, then REMOVED.
    fn leave(directory: &mut Directory, node: NodeId) {
        run(directory, DirectoryCommand::Leave { node });
        settle(directory);
        assert!(!directory.placement().replica_counts().contains_key(&node), "{node} keeps replicas");
        run(directory, DirectoryCommand::Retire { node });
    }

    #[test]
    fn three_new_nodes_take_half_the_replicas() {
        let mut d = cluster(3, 8, 3);
        assert_eq!(settle(&mut d), 0, "a new cluster is balanced");
        for node in 4..=6 {
            run(
                &mut d,
                DirectoryCommand::Join { node: NodeId(node), peer_addr: addr(node), incarnation: None },
            );
            run(&mut d, DirectoryCommand::Activate { node: NodeId(node) });
        }
        assert_eq!(settle(&mut d), 12, "each new node takes 4 of the 24 replicas");
        assert_balanced(&d);
        for node in 1..=3 {
            leave(&mut d, NodeId(node));
        }
        assert_balanced(&d);
        assert_eq!(d.placement().replica_counts().values().sum::<usize>(), 24);
    }

    #[test]
    fn a_lone_leaving_node_keeps_the_groups_it_cannot_hand_over() {
        let mut d = cluster(2, 2, 3);
        run(&mut d, DirectoryCommand::Leave { node: NodeId(2) });
        settle(&mut d);
        assert!(d.placement().groups().values().all(|p| p.replicas == BTreeSet::from([NodeId(1)])));
    }

    #[test]
    fn moves_wait_for_the_ones_in_progress() {
        let mut d = cluster(3, 4, 3);
        run(&mut d, DirectoryCommand::Join { node: NodeId(4), peer_addr: addr(4), incarnation: None });
        run(&mut d, DirectoryCommand::Activate { node: NodeId(4) });
        let policy = RebalancePolicy { moves_at_once: 2 };
        for _ in 0..2 {
            let change = next_change(&d, &policy).expect("a move");
            run(&mut d, DirectoryCommand::Placement(change));
        }
        assert_eq!(next_change(&d, &policy), None, "two groups are moving");
    }

    #[test]
    fn a_move_to_a_node_that_starts_leaving_is_redirected() {
        let mut d = cluster(3, 1, 3);
        for node in 4..=5 {
            run(
                &mut d,
                DirectoryCommand::Join { node: NodeId(node), peer_addr: addr(node), incarnation: None },
            );
            run(&mut d, DirectoryCommand::Activate { node: NodeId(node) });
        }
        run(&mut d, DirectoryCommand::Leave { node: NodeId(3) });
        let policy = RebalancePolicy::default();
        let first = next_change(&d, &policy).expect("node 3's replica moves");
        run(&mut d, DirectoryCommand::Placement(first));
        let target =
            *d.placement().group(GroupId(1)).expect("placed").replicas.iter().max().expect("replicas");
        run(&mut d, DirectoryCommand::Leave { node: target });
        let second = next_change(&d, &policy).expect("the unsettled move is redirected");
        let PlacementChange::Place { replicas, .. } = second else { unreachable!("only moves") };
        assert!(!replicas.contains(&target) && !replicas.contains(&NodeId(3)), "{replicas:?}");
    }

    #[derive(Debug, Clone)]
    enum Event {
        Join,
        Leave(usize),
        Fail(usize),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            3 => Just(Event::Join),
            1 => any::<usize>().prop_map(Event::Leave),
            1 => any::<usize>().prop_map(Event::Fail),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any joins, leaves and failures on up to 100 nodes end balanced, and no change ever
        /// loses a majority of a group's replicas.
        #[test]
        fn placement_converges_after_any_membership_changes(
            founders in 1u64..8,
            groups in 1u64..40,
            factor in 1u32..6,
            events in proptest::collection::vec(event(), 0..100),
        ) {
            let mut d = cluster(founders, groups, factor);
            let mut next_id = founders + 1;
            for event in events {
                let active: Vec<NodeId> = d.with_status(MemberStatus::Active).collect();
                match event {
                    Event::Join => {
                        let node = NodeId(next_id);
                        next_id += 1;
                        run(&mut d, DirectoryCommand::Join { node, peer_addr: addr(node.0), incarnation: None });
                        run(&mut d, DirectoryCommand::Activate { node });
                        settle(&mut d);
                    }
                    Event::Leave(i) | Event::Fail(i) if active.len() > 1 => leave(&mut d, active[i % active.len()]),
                    Event::Leave(_) | Event::Fail(_) => {}
                }
            }
            settle(&mut d);
            assert_balanced(&d);
        }
    }
}
