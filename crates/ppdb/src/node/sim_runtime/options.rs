//! Swarm testing, as in the core simulator: every seed draws its own cluster size, Raft
//! settings, snapshot cadence, network and disk behaviour, fault rates, client load and
//! membership changes, so a sweep covers quiet runs, hostile runs and everything between.

use super::net::NetFaults;
use crate::node::reconcile::MembershipPolicy;
use crate::storage::wal::SEGMENT_BYTES_MIN;
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::{Config, NodeId};

/// The knobs of one run. Fault rates are per mille per Raft tick.
#[derive(Debug, Clone)]
pub(super) struct SimOptions {
    /// Founding nodes, voters of every group from the start (3 for even seeds, 5 for odd
    /// ones): ids `1..=founders`.
    pub founders: u64,
    /// Spare nodes, the ids after the founders: each starts with empty groups and joins the
    /// cluster at a random time of the fault phase.
    pub spares: u64,
    /// Raft settings of every node (the runtime fills in the id).
    pub raft: Config,
    /// Entries applied between two checkpoints of a node.
    pub entries_between_snapshots: u64,
    /// Entries kept in memory behind a checkpoint.
    pub entries_kept_after_snapshot: u64,
    /// What the network does to messages while faults are on.
    pub net: NetFaults,
    /// WAL segment size (small ones make the WAL roll segments and delete them after
    /// checkpoints).
    pub wal_segment_bytes_max: u64,
    /// An fdatasync takes 1 to this many milliseconds.
    pub fsync_ms_max: u64,
    /// Probability of crashing a node (half the time, the leader).
    pub crash_per_mille: u32,
    /// Probability of restarting a crashed node.
    pub restart_per_mille: u32,
    /// Probability of a new partition (isolate a node or the leader, split, or cut one way).
    pub partition_per_mille: u32,
    /// Probability of healing every partition.
    pub heal_per_mille: u32,
    /// Client tasks.
    pub clients: u64,
    /// A client waits up to this many milliseconds between two requests.
    pub think_ms_max: u64,
    /// Probability that a client request is a write (otherwise a read).
    pub write_per_mille: u32,
    /// Most filler bytes after a command's id.
    pub command_padding_max: u64,
    /// How group memberships follow the directory: leaders colocated, at least 3 voters kept,
    /// and, in some seeds, silent nodes removed automatically.
    pub membership: MembershipPolicy,
    /// Most nodes asked to leave during the fault phase.
    pub leaves_max: u64,
    /// Probability of asking a node to leave.
    pub leave_per_mille: u32,
    /// Replicas of the data group: 0 keeps it on every member; 3 places it on 3 nodes, so
    /// leaves, failures and joins move its replicas (on 5 founders, 2 hold none at first).
    pub replicas: u32,
    /// Share of the crash and partition draws that, while the data group moves, strike a
    /// node with a part in the move (`moves`): 0, half or all of them.
    pub move_fault_per_mille: u32,
    /// Most moves of the data group the simulation asks for itself (one replica swapped for
    /// an ACTIVE node without one, as the rebalancer does), beside those the rebalancer makes
    /// for leaving and failed nodes; 0 when the group is on every member.
    pub moves_max: u64,
    /// Probability of asking for such a move, per tick.
    pub move_per_mille: u32,
}

impl SimOptions {
    /// Draws the options of `seed`'s run.
    pub fn swarm(seed: u64, rng: &mut SimRng) -> SimOptions {
        let mut raft = Config::new(NodeId(1));
        raft.heartbeat_interval_ticks = 1 + rng.below(3) as u32;
        raft.election_timeout_ticks = [10, 15, 20][rng.below(3) as usize];
        raft.pre_vote = rng.below(4) != 0;
        raft.check_quorum = rng.below(4) != 0;
        raft.append_entries_max = [4, 64][rng.below(2) as usize];
        raft.inflight_appends_max = [1, 8][rng.below(2) as usize];
        let mut opts = SimOptions {
            founders: if seed % 2 == 0 { 3 } else { 5 },
            spares: 1 + rng.below(2),
            raft,
            entries_between_snapshots: [8, 32, 200][rng.below(3) as usize],
            entries_kept_after_snapshot: [0, 4, 32][rng.below(3) as usize],
            net: NetFaults {
                drop_per_mille: [0, 20, 100][rng.below(3) as usize],
                duplicate_per_mille: [0, 10, 50][rng.below(3) as usize],
                delay_ms_max: [2, 10, 40][rng.below(3) as usize],
            },
            wal_segment_bytes_max: [SEGMENT_BYTES_MIN, 1 << 20][rng.below(2) as usize],
            fsync_ms_max: [1, 4, 15][rng.below(3) as usize],
            crash_per_mille: [0, 5, 15][rng.below(3) as usize],
            restart_per_mille: [30, 10][rng.below(2) as usize],
            partition_per_mille: [0, 5, 15][rng.below(3) as usize],
            heal_per_mille: 20,
            clients: 1 + rng.below(4),
            think_ms_max: [2, 10, 40][rng.below(3) as usize],
            write_per_mille: [500, 800][rng.below(2) as usize],
            command_padding_max: [0, 100][rng.below(2) as usize],
            membership: MembershipPolicy {
                failed_after_ticks: [None, Some(100), Some(300)][rng.below(3) as usize],
                min_voters: 3,
                colocate_leaders: true,
                follow_clients_ticks: [None, Some(20), Some(100)][rng.below(3) as usize],
                ..MembershipPolicy::default()
            },
            leaves_max: rng.below(3),
            leave_per_mille: 5,
            replicas: [0, 3][rng.below(2) as usize],
            // Drawn apart from the run's generator, so the rest of a seed's draws stay as they were.
            move_fault_per_mille: [0, 500, 1000][(mix(seed, 0xFA17) % 3) as usize],
            moves_max: mix(seed, 0x303E) % 4,
            move_per_mille: 10,
        };
        if opts.replicas == 0 {
            opts.moves_max = 0;
        }
        opts
    }
}
