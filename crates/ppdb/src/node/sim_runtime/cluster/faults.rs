//! The faults the cluster injects while they are on, drawn once per Raft tick: crashes (half
//! of them of a leader), restarts of crashed members, partitions (a node or a leader cut off,
//! a random split, a one-way cut) and heals.

use super::{Cluster, GROUP};
use crate::node::runtime::META_GROUP;
use ppdb_raft::sim::check::Verdict;
use ppdb_raft::NodeId;

impl Cluster {
    /// Draws this tick's crashes, restarts and partitions.
    pub(super) fn inject_faults(&mut self) -> Verdict {
        if self.rng.chance(self.opts.crash_per_mille) {
            let live = self.live();
            let leader = self.leader().filter(|l| live.contains(l));
            let victim = match leader {
                Some(leader) if self.rng.chance(500) => Some(leader),
                _ => self.rng.pick(&live),
            };
            if let Some(id) = victim {
                self.crash(id);
            }
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

    /// A new partition: a node or the leader cut off, a random split, or a one-way cut.
    fn partition(&mut self) {
        let ids = self.ids();
        let shape = self.rng.below(4);
        tracing::info!(shape, "sim: partition");
        self.partitions += 1;
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
