//! The end-of-run check that old copies are gone for good: every running member outside the
//! data group's placement is stopped, and what its disk would give a restart must hold no
//! copy of the group (the `Tombstone` record is durable, the snapshot files of the deleted
//! copy void), so a stale copy can never come back.

use super::{failure, Cluster, Stage, DATA_DIR, GROUP};
use crate::node::raft_storage::RaftStorage;
use crate::storage::disk::{CrashFaults, Disk};
use ppdb_raft::sim::check::Verdict;
use ppdb_raft::NodeId;
use std::path::Path;

impl Cluster {
    /// Stops every running member the latest directory places outside the data group and
    /// reopens its storage: it must recover neither log entries nor a snapshot of the group.
    /// Ends the run's use of those nodes.
    pub fn check_copies_deleted(&mut self) -> Verdict {
        let placement = self.observer.latest_directory().placement().clone();
        let outside: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(&id, n)| {
                n.stage == Stage::Member && n.running.is_some() && placement.hosts(GROUP, id) == Some(false)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in outside {
            let Some(node) = self.nodes.get_mut(&id) else { continue };
            let Some(running) = node.running.take() else { continue };
            running.task.abort();
            // Power off: only what was synced counts, as at a restart after a crash.
            node.disk.crash(CrashFaults { torn_writes: false, flip_bit: false });
            let disk: std::sync::Arc<dyn Disk> = node.disk.clone();
            self.disconnect(id);
            let (_, recovered) = RaftStorage::open(disk, Path::new(DATA_DIR), self.wal_config())
                .map_err(|e| failure("recovery", format!("node {id} cannot reopen its storage: {e}")))?;
            let Some(state) = recovered.get(&GROUP) else { continue };
            if state.snapshot.is_some() || !state.entries.is_empty() {
                return Err(failure(
                    "copies go after their removal",
                    format!(
                        "node {id} is outside group {}'s placement {:?}, but a restart would recover \
                         a copy of it: {} log entries, snapshot {:?}",
                        GROUP.0,
                        placement.group(GROUP).map(|p| &p.replicas),
                        state.entries.len(),
                        state.snapshot.as_ref().map(|s| s.meta.index)
                    ),
                ));
            }
        }
        Ok(())
    }
}
