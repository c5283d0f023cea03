//! Simulated machines running the real node runtime over key-value shards ([`KvShard`]): each
//! with a simulated disk and clock, all on the simulated network; booted from what their disks
//! hold, crashed (power loss), and stepped through simulated time with fdatasyncs of random
//! latency. Shared by the key-value workloads of the simulator (the bank, skewed clocks).

use super::clock::SimClock;
use super::net::{NetFaults, SimNet};
use super::observer::Observer;
use crate::error::Error;
use crate::node::handle::NodeHandle;
use crate::node::leaders::LeaderTable;
use crate::node::raft_storage::RaftStorage;
use crate::node::runtime::{Outbox, Runtime, RuntimeConfig};
use crate::node::MembershipPolicy;
use crate::server::shard::KvShard;
use crate::storage::disk::{CrashFaults, Disk, SimDisk};
use crate::storage::wal::{GroupId, WalConfig, WalWriter};
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::{Config, NodeId, RecoveredState};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Length of one Raft tick.
const TICK: Duration = Duration::from_millis(10);
/// An fdatasync takes 1 to this many milliseconds.
const FSYNC_MS_MAX: u64 = 3;
/// Where every node keeps its data on its simulated disk.
const DATA_DIR: &str = "/node";

/// How the machines' runtimes are set up.
pub(super) struct Setup {
    /// The data groups every node hosts (all bootstrapped with every node on first boot).
    pub groups: Vec<GroupId>,
    /// How long a node handle waits for a request.
    pub request_timeout: Duration,
    /// Snapshot cadence of each group.
    pub entries_between_snapshots: u64,
    /// Entries a snapshot keeps behind it.
    pub entries_kept_after_snapshot: u64,
}

/// One machine: its disk and clock survive crashes, its runtime does not.
pub(super) struct Machine {
    pub disk: Arc<SimDisk>,
    pub clock: Arc<SimClock>,
    pub running: Option<Running>,
}

/// A machine's running runtime.
pub(super) struct Running {
    storage: Arc<RaftStorage>,
    task: JoinHandle<Result<(), Error>>,
    /// Requests to the runtime.
    pub handle: NodeHandle<KvShard>,
    /// The leaders it knows.
    pub leaders: LeaderTable,
    /// Kept open: a runtime stops when its shutdown channel closes.
    _shutdown: watch::Sender<bool>,
    /// When the fdatasync of the batch being written completes (simulated milliseconds).
    sync_at_ms: Option<u64>,
}

/// The machines of one simulated cluster.
pub(super) struct KvMachines {
    pub seed: u64,
    pub rng: SimRng,
    pub net: Arc<SimNet>,
    pub machines: BTreeMap<NodeId, Machine>,
    /// Simulated milliseconds stepped so far.
    pub steps: u64,
    setup: Setup,
}

impl KvMachines {
    /// Machines `1..` with clocks `offsets_ms` ahead of true time, none running yet.
    pub fn new(seed: u64, faults: NetFaults, offsets_ms: &[i64], setup: Setup) -> KvMachines {
        let net = SimNet::new(mix(seed, 1), faults, Observer::new(seed));
        let machines = (1..)
            .zip(offsets_ms)
            .map(|(id, &offset)| {
                let disk = Arc::new(SimDisk::new(mix(seed, u64::rotate_left(id, 40))));
                (NodeId(id), Machine { disk, clock: Arc::new(SimClock::new(offset)), running: None })
            })
            .collect();
        KvMachines { seed, rng: SimRng::new(mix(seed, 2)), net, machines, steps: 0, setup }
    }

    /// Starts `id`'s runtime from what its disk holds (every group bootstrapped on first boot),
    /// its randomness from `rng_seed`; its running state, or `None` if it already runs.
    pub fn boot(&mut self, id: NodeId, rng_seed: u64) -> Option<&Running> {
        let seed = self.seed;
        let nodes = self.machines.len() as u64;
        let machine = self.machines.get_mut(&id).filter(|m| m.running.is_none())?;
        let disk: Arc<dyn Disk> = machine.disk.clone();
        let wal = WalConfig { writer: WalWriter::Caller, ..WalConfig::default() };
        let (storage, recovered) = RaftStorage::open(disk, Path::new(DATA_DIR), wal)
            .unwrap_or_else(|e| panic!("seed {seed}: node {id} cannot open its storage: {e}"));
        let storage = Arc::new(storage);
        let founders = || RecoveredState::bootstrap((1..=nodes).map(NodeId));
        let bootstrap = self.setup.groups.iter().map(|&group| (group, founders())).collect();
        let config = RuntimeConfig {
            node: id,
            tick: TICK,
            raft: Config::new(id),
            entries_between_snapshots: self.setup.entries_between_snapshots,
            entries_kept_after_snapshot: self.setup.entries_kept_after_snapshot,
            membership: MembershipPolicy::default(),
            rng_seed: Some(rng_seed),
            snapshots_on_loop: true,
            clock: machine.clock.clone(),
        };
        let outbox: Arc<dyn Outbox> = self.net.clone();
        let runtime: Runtime<KvShard> =
            Runtime::new(config, Arc::clone(&storage), recovered, bootstrap, outbox)
                .unwrap_or_else(|e| panic!("seed {seed}: node {id} cannot start: {e}"));
        let leaders = runtime.leaders();
        let (inbox, inbound) = mpsc::channel(4096);
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(runtime.run(inbound, requests_rx, shutdown_rx));
        self.net.connect(id, inbox, storage.snapshot_files());
        let handle = NodeHandle::new(requests, self.setup.request_timeout);
        let running = Running { storage, task, handle, leaders, _shutdown: shutdown, sync_at_ms: None };
        Some(self.machines.get_mut(&id)?.running.insert(running))
    }

    /// Power loss at `id`: its runtime stops; its disk keeps what was synced, and with
    /// `faults` loses or tears what was not. Whether it was running.
    pub fn crash(&mut self, id: NodeId, faults: Option<CrashFaults>) -> bool {
        let Some(machine) = self.machines.get_mut(&id) else { return false };
        let Some(running) = machine.running.take() else { return false };
        self.net.disconnect(id);
        running.task.abort();
        if let Some(faults) = faults {
            machine.disk.crash(faults);
        }
        true
    }

    /// The machines not running.
    pub fn down(&self) -> Vec<NodeId> {
        self.machines.iter().filter(|(_, m)| m.running.is_none()).map(|(&id, _)| id).collect()
    }

    /// One simulated millisecond: disks, then deliveries.
    pub async fn step(&mut self) {
        self.steps += 1;
        let now = self.steps;
        for (id, machine) in &mut self.machines {
            let Some(running) = machine.running.as_mut() else { continue };
            let wal = running.storage.wal();
            if running.sync_at_ms.is_some_and(|at| at <= now) {
                wal.sync_written().unwrap_or_else(|e| panic!("node {id}: {e}"));
                running.sync_at_ms = None;
            }
            if running.sync_at_ms.is_none()
                && wal.write_queued().unwrap_or_else(|e| panic!("node {id}: {e}")) > 0
            {
                running.sync_at_ms = Some(now + 1 + self.rng.below(FSYNC_MS_MAX));
            }
        }
        self.net.deliver_due();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
