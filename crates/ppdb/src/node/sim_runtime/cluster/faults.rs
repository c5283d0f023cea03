//! The faults the cluster injects while they are on, drawn once per Raft tick: crashes (half
//! of them of a leader), restarts of crashed members, partitions (a node or a leader cut off,
//! a random split, a one-way cut) and heals. While the data group moves, a share of the
//! crashes (`SimOptions::move_fault_per_mille`) strikes a node with a part in the move (its
//! target, its source, the data group's or the meta group's leader: `moves`), and as large a
//! share of the partitions cuts the target or the source off; a draw of its own per tick
//! crashes one of them too.

use super::super::moves::MoveRole;
use super::{Cluster, GROUP};
use crate::node::runtime::META_GROUP;
use ppdb_raft::sim::check::Verdict;
use ppdb_raft::NodeId;

/// While the data group moves, each tick crashes a node with a part in the move with
/// probability `move_fault_per_mille` divided by this (up to 5%).
const MOVE_CRASH_DIVISOR: u32 = 20;

impl Cluster {
    /// Draws this tick's crashes, restarts and partitions.
    pub(super) fn inject_faults(&mut self) -> Verdict {
        self.moves.step(&self.handles, &self.observer.latest_directory());
        if self.rng.chance(self.opts.crash_per_mille) {
            let live = self.live();
            let victim = match self.move_victim(&live, &[], self.opts.move_fault_per_mille) {
                Some((role, id)) => {
                    tracing::info!(node = %id, ?role, "sim: crash in the middle of a move");
                    self.move_faults.crashed(role);
                    Some(id)
                }
                None => {
                    let leader = self.leader().filter(|l| live.contains(l));
                    match leader {
                        Some(leader) if self.rng.chance(500) => Some(leader),
                        _ => self.rng.pick(&live),
                    }
                }
            };
            if let Some(id) = victim {
                self.crash(id);
            }
        }
        // Moves last a few ticks: beside its share of the crash draws, a move is struck by a
        // draw of its own, so that crashes in the middle of moves are common.
        let live = self.live();
        if let Some((role, id)) =
            self.move_victim(&live, &[], self.opts.move_fault_per_mille / MOVE_CRASH_DIVISOR)
        {
            tracing::info!(node = %id, ?role, "sim: crash in the middle of a move");
            self.move_faults.crashed(role);
            self.crash(id);
        }
        if self.rng.chance(self.opts.restart_per_mille) {
            if let Some(id) = self.rng.pick(&self.down()) {
                self.boot(id)?;
            }
        }
        if self.rng.chance(self.opts.partition_per_mille) {
            self.partition();
        }
        if self.rng.chance(self.opts.heal_per_mille) {
            tracing::info!("sim: heal");
            self.net.heal();
        }
        Ok(())
    }

    /// A node of `eligible` with a part in the data group's move in progress (one of `roles`,
    /// or any part when `roles` is empty), with probability `per_mille`.
    fn move_victim(
        &mut self,
        eligible: &[NodeId],
        roles: &[MoveRole],
        per_mille: u32,
    ) -> Option<(MoveRole, NodeId)> {
        let directory = self.observer.latest_directory();
        let candidates: Vec<(MoveRole, NodeId)> = self
            .moves
            .roles(&directory)
            .into_iter()
            .filter(|(role, id)| eligible.contains(id) && (roles.is_empty() || roles.contains(role)))
            .collect();
        if candidates.is_empty() || !self.rng.chance(per_mille) {
            return None;
        }
        let index = self.rng.below(candidates.len() as u64) as usize;
        candidates.get(index).copied()
    }

    /// A new partition: the target or the source of a move cut off (in the share of the draws
    /// aimed at moves), or else a node or the leader cut off, a random split, or a one-way cut.
    fn partition(&mut self) {
        let ids = self.ids();
        self.partitions += 1;
        let roles = [MoveRole::Target, MoveRole::Source];
        if let Some((role, id)) = self.move_victim(&ids, &roles, self.opts.move_fault_per_mille) {
            tracing::info!(node = %id, ?role, "sim: partition in the middle of a move");
            self.move_faults.partitions += 1;
            self.net.isolate(id, &ids);
            return;
        }
        let shape = self.rng.below(4);
        tracing::info!(shape, "sim: partition");
        match shape {
            0 => {
                if let Some(id) = self.rng.pick(&ids) {
                    self.net.isolate(id, &ids);
                }
            }
            1 => {
                if let Some(leader) = self.leader() {
                    self.net.isolate(leader, &ids);
                }
            }
            2 => {
                let side: Vec<NodeId> = ids.iter().copied().filter(|_| self.rng.chance(500)).collect();
                self.net.split(&side, &ids);
            }
            _ => {
                if let (Some(from), Some(to)) = (self.rng.pick(&ids), self.rng.pick(&ids)) {
                    self.net.cut_one_way(from, to);
                }
            }
        }
    }

    /// The last leader seen of the meta group or of the data group (drawn at random; they
    /// are mostly the same node, since data groups follow the meta leader).
    fn leader(&mut self) -> Option<NodeId> {
        let group = if self.rng.chance(500) { META_GROUP } else { GROUP };
        self.observer.leader(group)
    }
}
