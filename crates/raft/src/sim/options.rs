//! Swarm testing: every seed draws its own cluster shape and fault mix, so that a sweep of
//! seeds explores quiet runs, hostile runs and everything between.

use super::rng::SimRng;
use crate::config::Config;
use crate::types::NodeId;

/// The knobs of one simulated run. Rates are per mille, per simulated tick.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Voters at bootstrap (3 or 5).
    pub initial_voters: u64,
    /// Extra nodes that start outside the group and may be added by membership changes.
    pub spare_nodes: u64,
    /// Probability that the network loses a message.
    pub drop_per_mille: u32,
    /// Probability that the network delivers a message twice.
    pub duplicate_per_mille: u32,
    /// Messages arrive 1 to this many ticks after they are sent (reordering follows).
    pub delay_ticks_max: u64,
    /// Probability per tick of crashing a node (possibly in the middle of handling a Ready).
    pub crash_per_mille: u32,
    /// Probability per tick of restarting a crashed node.
    pub restart_per_mille: u32,
    /// Probability per tick of a new partition (isolation, split or one-way cut).
    pub partition_per_mille: u32,
    /// Probability per tick of healing all partitions.
    pub heal_per_mille: u32,
    /// Probability per tick of a client proposal.
    pub propose_per_mille: u32,
    /// Probability per tick of a client linearizable read.
    pub read_per_mille: u32,
    /// Probability per tick that a node snapshots and compacts its log.
    pub snapshot_per_mille: u32,
    /// Probability per tick of a membership change.
    pub conf_change_per_mille: u32,
    /// Probability per tick of a leader transfer.
    pub transfer_per_mille: u32,
    /// Probability that a node skips a tick (clock drift).
    pub tick_skip_per_mille: u32,
    /// Probability that a node crashes as soon as it is seen leading a new term.
    pub new_leader_crash_per_mille: u32,
    /// Readies a node may have handed out with their writes not yet durable; 0 makes every
    /// write complete before the next Ready (the synchronous contract).
    pub writes_in_flight_max: usize,
    /// Probability per tick that a node's oldest write in flight becomes durable (then the
    /// next one, with the same odds): low values model a disk slower than the network, so
    /// that acknowledgements reach a leader before its own write is durable.
    pub write_finish_per_mille: u32,
    /// Raft settings shared by every node (the id is filled in per node).
    pub raft: Config,
}

impl SimOptions {
    /// Draws the options of one run from its seed. Odd seeds get 5 voters, even seeds 3.
    pub fn swarm(seed: u64, rng: &mut SimRng) -> SimOptions {
        let initial_voters = if seed % 2 == 0 { 3 } else { 5 };
        let mut raft = Config::new(NodeId(1));
        raft.heartbeat_interval_ticks = 1 + rng.below(3) as u32;
        raft.election_timeout_ticks =
            [10, 15, 20][rng.below(3) as usize].max(3 * raft.heartbeat_interval_ticks);
        raft.pre_vote = rng.below(4) != 0;
        raft.check_quorum = rng.below(4) != 0;
        raft.append_entries_max = [1, 8, 64][rng.below(3) as usize];
        raft.inflight_appends_max = [1, 2, 8][rng.below(3) as usize];
        let hostile = rng.below(3);
        SimOptions {
            initial_voters,
            spare_nodes: 2,
            drop_per_mille: [0, 20, 100][hostile as usize],
            duplicate_per_mille: [0, 10, 50][rng.below(3) as usize],
            delay_ticks_max: 1 + rng.below(4),
            crash_per_mille: [0, 3, 10][rng.below(3) as usize],
            restart_per_mille: 30,
            partition_per_mille: [0, 5, 15][rng.below(3) as usize],
            heal_per_mille: 20,
            propose_per_mille: [100, 300, 700][rng.below(3) as usize],
            read_per_mille: [50, 200][rng.below(2) as usize],
            snapshot_per_mille: [0, 5, 30][rng.below(3) as usize],
            conf_change_per_mille: [0, 5, 15][rng.below(3) as usize],
            transfer_per_mille: [0, 3][rng.below(2) as usize],
            tick_skip_per_mille: [0, 50, 200][rng.below(3) as usize],
            writes_in_flight_max: [0, 2, 8][rng.below(3) as usize],
            write_finish_per_mille: [100, 300, 700][rng.below(3) as usize],
            new_leader_crash_per_mille: [0, 0, 100, 300][rng.below(4) as usize],
            raft,
        }
    }
}
