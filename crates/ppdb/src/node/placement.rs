//! Where each data shard's replicas live: the replication factor and, per data group, the
//! nodes that should hold it. Part of the directory, so every node agrees on it and changes
//! to it are linearizable.
//!
//! The placement says what each group's membership *should* be; the group's leader makes it so
//! one safe step at a time ([`super::reconcile`]): it adds the new replicas as learners,
//! promotes them once caught up, and only then removes the replicas that are no longer placed
//! there. Once its committed membership is exactly the placement, the leader reports the group
//! *settled* ([`PlacementChange::Settled`]); a node that no longer holds a replica of a settled
//! group deletes its copy, because its removal is then committed. The meta group's leader
//! changes placements ([`super::rebalance`]) when nodes join, leave or fail, a few groups at a
//! time.
//!
//! A cluster founded before placements existed has factor 0: every member holds every shard,
//! as it always did.

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::storage::wal::GroupId;
use ppdb_raft::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Most replicas one shard may have.
pub const REPLICAS_MAX: u32 = 9;
/// Most data groups a placement may list.
const GROUPS_MAX: usize = 1 << 16;

/// One data group's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlacement {
    /// The nodes that should hold a replica (voters, once caught up).
    pub replicas: BTreeSet<NodeId>,
    /// Whether the group's leader reported its committed membership to be exactly `replicas`.
    pub settled: bool,
}

/// The replication factor and every data group's replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    factor: u32,
    groups: BTreeMap<GroupId, GroupPlacement>,
}

/// A change to the placement, proposed through the meta group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementChange {
    /// `group` should be held by `replicas` from now on (the rebalancer's move).
    Place {
        /// The data group.
        group: GroupId,
        /// Its new replicas.
        replicas: BTreeSet<NodeId>,
    },
    /// `group`'s leader saw its committed membership be exactly `replicas`, as voters.
    Settled {
        /// The data group.
        group: GroupId,
        /// The voters it saw.
        replicas: BTreeSet<NodeId>,
    },
}

/// Why a placement change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The cluster keeps every shard on every node (founded before placements).
    #[error("this cluster keeps every shard on every node; it has no placement to change")]
    EveryNode,
    /// No such data group.
    #[error("shard {0} does not exist")]
    UnknownGroup(u64),
    /// An empty or oversized replica set.
    #[error("a shard must have between 1 and {REPLICAS_MAX} replicas, not {0}")]
    ReplicaCount(usize),
    /// A replica on a node that is not a joining or active member.
    #[error("node {0} cannot hold replicas: it is not an active member")]
    NotActive(NodeId),
}

impl Placement {
    /// Every member holds every shard: the placement of clusters founded before placements.
    pub fn everywhere() -> Placement {
        Placement::default()
    }

    /// The placement of a new cluster: `groups` data groups (1..=groups), each on `factor` of
    /// `nodes`, dealt out in turn (group 1 on the first `factor` nodes, group 2 on the next
    /// ones, wrapping around), so that every node holds as many replicas as any other, within
    /// one. A factor of 0, or at least the number of nodes, puts every group on every
    /// node, with the same factor recorded for the groups added later.
    pub fn initial(groups: u64, nodes: &[NodeId], factor: u32) -> Placement {
        if factor == 0 || nodes.is_empty() {
            return Placement::everywhere();
        }
        let width = nodes.len().min(factor as usize);
        let groups = (1..=groups)
            .map(|g| {
                let start = usize::try_from(g - 1).unwrap_or(0).wrapping_mul(width) % nodes.len();
                let replicas = (0..width).map(|i| nodes[(start + i) % nodes.len()]).collect();
                (GroupId(g), GroupPlacement { replicas, settled: true })
            })
            .collect();
        Placement { factor, groups }
    }

    /// The replication factor; 0 when every member holds every shard.
    pub fn factor(&self) -> u32 {
        self.factor
    }

    /// Whether this cluster places shards on some nodes only (factor above 0).
    pub fn is_placed(&self) -> bool {
        self.factor > 0
    }

    /// Each placed group and its placement.
    pub fn groups(&self) -> &BTreeMap<GroupId, GroupPlacement> {
        &self.groups
    }

    /// `group`'s placement, if this cluster places groups and knows it.
    pub fn group(&self, group: GroupId) -> Option<&GroupPlacement> {
        self.groups.get(&group)
    }

    /// Whether `node` should hold a replica of data group `group`; `None` when every member
    /// holds every group (the directory's lifecycle alone decides).
    pub fn hosts(&self, group: GroupId, node: NodeId) -> Option<bool> {
        self.is_placed().then(|| self.groups.get(&group).is_some_and(|p| p.replicas.contains(&node)))
    }

    /// How many replicas each node should hold (nodes holding none are absent).
    pub fn replica_counts(&self) -> BTreeMap<NodeId, usize> {
        let mut counts = BTreeMap::new();
        for placement in self.groups.values() {
            for &node in &placement.replicas {
                *counts.entry(node).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Groups whose leader has not yet reported the current placement in force.
    pub fn moving(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.iter().filter(|(_, p)| !p.settled).map(|(&g, _)| g)
    }

    /// Applies `change`; `may_hold` says whether a node may be given replicas.
    pub fn apply(
        &mut self,
        change: &PlacementChange,
        may_hold: impl Fn(NodeId) -> bool,
    ) -> Result<(), PlacementError> {
        if !self.is_placed() {
            return Err(PlacementError::EveryNode);
        }
        match change {
            PlacementChange::Place { group, replicas } => {
                let count = replicas.len();
                if count == 0 || count > REPLICAS_MAX as usize {
                    return Err(PlacementError::ReplicaCount(count));
                }
                let Some(current) = self.groups.get_mut(group) else {
                    return Err(PlacementError::UnknownGroup(group.0));
                };
                // Nodes already holding the group may stay while they leave; new ones must be
                // active.
                if let Some(&node) =
                    replicas.iter().find(|&&n| !current.replicas.contains(&n) && !may_hold(n))
                {
                    return Err(PlacementError::NotActive(node));
                }
                if current.replicas != *replicas {
                    current.replicas = replicas.clone();
                    current.settled = false;
                }
                Ok(())
            }
            PlacementChange::Settled { group, replicas } => {
                let Some(current) = self.groups.get_mut(group) else {
                    return Err(PlacementError::UnknownGroup(group.0));
                };
                // A report about a placement that has since changed again is stale.
                if current.replicas == *replicas {
                    current.settled = true;
                }
                Ok(())
            }
        }
    }

    /// Appends the placement to a directory snapshot.
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.factor);
        e.u32(u32::try_from(self.groups.len()).unwrap_or(u32::MAX));
        for (group, placement) in &self.groups {
            e.u64(group.0);
            e.u8(u8::from(placement.settled));
            encode_nodes(e, &placement.replicas);
        }
    }

    /// Reads a placement written by [`Placement::encode`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<Placement, DecodeError> {
        let factor = d.u32()?;
        if factor > REPLICAS_MAX {
            return Err(d.error("replication factor out of range"));
        }
        let count = d.count(GROUPS_MAX, 13)?;
        let mut groups = BTreeMap::new();
        for _ in 0..count {
            let group = GroupId(d.u64()?);
            let settled = match d.u8()? {
                0 => false,
                1 => true,
                _ => return Err(d.error("bad settled flag")),
            };
            let replicas = decode_nodes(d)?;
            groups.insert(group, GroupPlacement { replicas, settled });
        }
        Ok(Placement { factor, groups })
    }
}

impl PlacementChange {
    /// The group the change is about.
    pub fn group(&self) -> GroupId {
        match self {
            PlacementChange::Place { group, .. } | PlacementChange::Settled { group, .. } => *group,
        }
    }

    /// Appends the change to a directory command.
    pub fn encode(&self, e: &mut Encoder) {
        let (tag, group, replicas) = match self {
            PlacementChange::Place { group, replicas } => (1, group, replicas),
            PlacementChange::Settled { group, replicas } => (2, group, replicas),
        };
        e.u8(tag);
        e.u64(group.0);
        encode_nodes(e, replicas);
    }

    /// Reads a change written by [`PlacementChange::encode`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<PlacementChange, DecodeError> {
        let tag = d.u8()?;
        let group = GroupId(d.u64()?);
        let replicas = decode_nodes(d)?;
        match tag {
            1 => Ok(PlacementChange::Place { group, replicas }),
            2 => Ok(PlacementChange::Settled { group, replicas }),
            _ => Err(d.error("unknown placement change")),
        }
    }
}

fn encode_nodes(e: &mut Encoder, nodes: &BTreeSet<NodeId>) {
    e.u32(u32::try_from(nodes.len()).unwrap_or(u32::MAX));
    for node in nodes {
        e.u64(node.0);
    }
}

fn decode_nodes(d: &mut Decoder<'_>) -> Result<BTreeSet<NodeId>, DecodeError> {
    let count = d.count(REPLICAS_MAX as usize, 8)?;
    (0..count).map(|_| d.u64().map(NodeId)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn a_new_cluster_spreads_groups_round_robin() {
        let all: Vec<NodeId> = (1..=6).map(NodeId).collect();
        let p = Placement::initial(8, &all, 3);
        assert_eq!(p.group(GroupId(1)).map(|g| &g.replicas), Some(&nodes(&[1, 2, 3])));
        assert_eq!(p.group(GroupId(2)).map(|g| &g.replicas), Some(&nodes(&[4, 5, 6])));
        let four = Placement::initial(3, &all[..4], 3);
        assert_eq!(four.group(GroupId(2)).map(|g| &g.replicas), Some(&nodes(&[4, 1, 2])));
        let counts = p.replica_counts();
        assert_eq!(counts.values().sum::<usize>(), 24);
        assert!(counts.values().all(|&c| c == 4), "{counts:?}");
        assert_eq!(p.hosts(GroupId(1), NodeId(4)), Some(false));
        assert_eq!(Placement::everywhere().hosts(GroupId(1), NodeId(4)), None);
        let small = Placement::initial(2, &all[..2], 3);
        assert_eq!(small.group(GroupId(2)).map(|g| g.replicas.len()), Some(2), "no more replicas than nodes");
    }

    #[test]
    fn moves_unsettle_and_reports_settle_only_the_current_placement() {
        let mut p = Placement::initial(2, &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)], 3);
        let anyone = |_| true;
        let place = PlacementChange::Place { group: GroupId(1), replicas: nodes(&[1, 2, 4]) };
        assert_eq!(p.apply(&place, anyone), Ok(()));
        assert_eq!(p.moving().collect::<Vec<_>>(), vec![GroupId(1)]);
        let stale = PlacementChange::Settled { group: GroupId(1), replicas: nodes(&[1, 2, 3]) };
        assert_eq!(p.apply(&stale, anyone), Ok(()));
        assert_eq!(p.moving().count(), 1, "a report of the old placement settles nothing");
        let current = PlacementChange::Settled { group: GroupId(1), replicas: nodes(&[1, 2, 4]) };
        assert_eq!(p.apply(&current, anyone), Ok(()));
        assert_eq!(p.moving().count(), 0);
        let to_inactive = PlacementChange::Place { group: GroupId(2), replicas: nodes(&[2, 3, 9]) };
        assert_eq!(p.apply(&to_inactive, |n| n != NodeId(9)), Err(PlacementError::NotActive(NodeId(9))));
        let empty = PlacementChange::Place { group: GroupId(2), replicas: nodes(&[]) };
        assert_eq!(p.apply(&empty, anyone), Err(PlacementError::ReplicaCount(0)));
        let unknown = PlacementChange::Place { group: GroupId(7), replicas: nodes(&[1]) };
        assert_eq!(p.apply(&unknown, anyone), Err(PlacementError::UnknownGroup(7)));
        assert_eq!(Placement::everywhere().apply(&place, anyone), Err(PlacementError::EveryNode));
    }

    #[test]
    fn placements_and_changes_round_trip() {
        let mut p = Placement::initial(3, &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)], 3);
        let change = PlacementChange::Place { group: GroupId(2), replicas: nodes(&[1, 3, 4]) };
        assert_eq!(p.apply(&change, |_| true), Ok(()));
        let mut e = Encoder::default();
        p.encode(&mut e);
        change.encode(&mut e);
        let bytes = e.finish();
        let mut d = Decoder::new(&bytes, "test");
        assert_eq!(Placement::decode(&mut d).as_ref(), Ok(&p));
        assert_eq!(PlacementChange::decode(&mut d).as_ref(), Ok(&change));
        assert_eq!(d.finish(), Ok(()));
        let mut d = Decoder::new(&[99, 0, 0, 0, 0, 0, 0, 0], "test");
        assert!(Placement::decode(&mut d).is_err(), "a factor out of range");
    }
}
