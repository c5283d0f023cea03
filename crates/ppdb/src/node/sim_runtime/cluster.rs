//! The simulated cluster: one [`Runtime`] per node, persisting through the real
//! [`RaftStorage`] on the node's own [`SimDisk`], all connected by the [`SimNet`]. It starts,
//! crashes and restarts nodes, plays every node's disk, and injects the faults of the run.
//!
//! The disk is played as the WAL's writer thread would run it, but on the simulated clock:
//! when the WAL has queued records, they are written as one batch, and the batch's fdatasync
//! completes (and its tickets with it) 1 to `fsync_ms_max` milliseconds later. A crash loses
//! whatever is not synced then; half of the crashes strike just after the writer took a batch
//! (its records written, not synced), and the simulated disk may keep a torn prefix of them.

use super::net::SimNet;
use super::observer::Observer;
use super::options::SimOptions;
use super::register::{NodeContext, Register, NODE};
use crate::error::Error;
use crate::node::handle::NodeHandle;
use crate::node::raft_storage::RaftStorage;
use crate::node::reconcile::MembershipPolicy;
use crate::node::runtime::{Outbox, Runtime, RuntimeConfig};
use crate::storage::disk::{CrashFaults, Disk, SimDisk};
use crate::storage::wal::{GroupId, WalConfig, WalWriter};
use futures::FutureExt;
use ppdb_raft::sim::check::{Verdict, Violation};
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::{NodeId, RecoveredState};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The one Raft group every node hosts.
pub(super) const GROUP: GroupId = GroupId(1);

/// Length of one Raft tick.
const TICK: Duration = Duration::from_millis(10);

/// Simulated milliseconds per Raft tick: faults are drawn once per tick.
pub(super) const TICK_MS: u64 = 10;

/// How long a client request may wait before its handle gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Capacity of a runtime's inbound message queue.
const INBOX_CAPACITY: usize = 4096;

/// Where every node keeps its data on its simulated disk.
const DATA_DIR: &str = "/node";

/// The handles of the running nodes, by node, for the clients.
pub(super) type Handles = Arc<Mutex<BTreeMap<NodeId, NodeHandle<Register>>>>;

/// Locks the handles (a poisoned lock still holds a usable map).
pub(super) fn lock(handles: &Handles) -> MutexGuard<'_, BTreeMap<NodeId, NodeHandle<Register>>> {
    handles.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One simulated machine: its disk survives crashes, its runtime does not.
struct SimNode {
    disk: Arc<SimDisk>,
    running: Option<Running>,
}

/// A node's running runtime.
struct Running {
    storage: Arc<RaftStorage>,
    task: JoinHandle<Result<(), Error>>,
    /// Kept open: a runtime stops when its shutdown channel closes.
    _shutdown: watch::Sender<bool>,
    /// When the fdatasync of the batch being written completes (simulated milliseconds).
    sync_at_ms: Option<u64>,
}

/// Every node of one run.
pub(super) struct Cluster {
    seed: u64,
    opts: SimOptions,
    rng: SimRng,
    net: Arc<SimNet>,
    observer: Arc<Observer>,
    handles: Handles,
    nodes: BTreeMap<NodeId, SimNode>,
    /// Runtimes started so far (each start gets its own election-timeout seed).
    boots: u64,
    /// Simulated milliseconds stepped so far.
    steps: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions made.
    pub partitions: u64,
}

impl Cluster {
    /// Builds the nodes of the run and starts them all.
    pub fn start(
        seed: u64,
        opts: SimOptions,
        rng: SimRng,
        net: Arc<SimNet>,
        observer: Arc<Observer>,
    ) -> Result<Cluster, Violation> {
        let nodes = (1..=opts.nodes)
            .map(|id| {
                let disk = Arc::new(SimDisk::new(mix(seed, id.rotate_left(40))));
                (NodeId(id), SimNode { disk, running: None })
            })
            .collect();
        let handles = Handles::default();
        let mut cluster = Cluster {
            seed,
            opts,
            rng,
            net,
            observer,
            handles,
            nodes,
            boots: 0,
            steps: 0,
            crashes: 0,
            partitions: 0,
        };
        for id in cluster.ids() {
            cluster.boot(id)?;
        }
        Ok(cluster)
    }

    /// The handles of the running nodes.
    pub fn handles(&self) -> Handles {
        Arc::clone(&self.handles)
    }

    /// Every node.
    fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The running nodes.
    fn live(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|(_, n)| n.running.is_some()).map(|(&id, _)| id).collect()
    }

    /// The crashed nodes.
    fn down(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|(_, n)| n.running.is_none()).map(|(&id, _)| id).collect()
    }

    /// The one place a node's runtime settings are made.
    fn runtime_config(&self, node: NodeId) -> RuntimeConfig {
        RuntimeConfig {
            node,
            tick: TICK,
            raft: self.opts.raft.clone(),
            entries_between_snapshots: self.opts.entries_between_snapshots,
            entries_kept_after_snapshot: self.opts.entries_kept_after_snapshot,
            membership: MembershipPolicy::default(),
            rng_seed: Some(mix(self.seed, self.boots)),
        }
    }

    /// Starts `id`'s runtime from what its disk holds.
    fn boot(&mut self, id: NodeId) -> Verdict {
        let Some(node) = self.nodes.get(&id) else { return Ok(()) };
        tracing::info!(node = %id, "sim: start");
        let disk: Arc<dyn Disk> = node.disk.clone();
        let wal = WalConfig {
            writer: WalWriter::Caller,
            segment_bytes_max: self.opts.wal_segment_bytes_max,
            ..WalConfig::default()
        };
        let (storage, recovered) = RaftStorage::open(disk, Path::new(DATA_DIR), wal)
            .map_err(|e| failure("recovery", format!("node {id} cannot open its storage: {e}")))?;
        let storage = Arc::new(storage);
        self.boots += 1;
        self.observer.started(id);
        let config = self.runtime_config(id);
        let bootstrap = BTreeMap::from([(GROUP, RecoveredState::bootstrap(self.ids()))]);
        let outbox: Arc<dyn Outbox> = self.net.clone();
        let context = NodeContext { node: id, observer: Arc::clone(&self.observer) };
        let runtime: Runtime<Register> = NODE
            .sync_scope(context.clone(), || {
                Runtime::new(config, Arc::clone(&storage), recovered, bootstrap, outbox)
            })
            .map_err(|e| failure("recovery", format!("node {id} cannot start its runtime: {e}")))?;
        let (inbox, inbound) = mpsc::channel(INBOX_CAPACITY);
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(NODE.scope(context, runtime.run(inbound, requests_rx, shutdown_rx)));
        self.net.connect(id, inbox);
        lock(&self.handles).insert(id, NodeHandle::new(requests, REQUEST_TIMEOUT));
        if let Some(node) = self.nodes.get_mut(&id) {
            node.running = Some(Running { storage, task, _shutdown: shutdown, sync_at_ms: None });
        }
        Ok(())
    }

    /// Power loss at `id`: the runtime stops where it is, the disk keeps only what was synced
    /// (and perhaps a torn prefix of the batch being written).
    fn crash(&mut self, id: NodeId) {
        let Some(node) = self.nodes.get_mut(&id) else { return };
        let Some(running) = node.running.take() else { return };
        tracing::info!(node = %id, "sim: crash");
        self.net.disconnect(id);
        lock(&self.handles).remove(&id);
        if running.sync_at_ms.is_none() && self.rng.chance(500) {
            // The writer took the queued batch just before the power went: written, not synced.
            // An error here only means the WAL was already unusable.
            let _ = running.storage.wal().write_queued();
        }
        node.disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
        // Dropped by the scheduler later; the old WAL's handles are stale after the crash, so
        // closing it cannot touch the disk any more.
        running.task.abort();
        self.crashes += 1;
    }

    /// One simulated millisecond: faults (once per tick, if `faults`), disks, deliveries,
    /// then the checks.
    pub fn step(&mut self, faults: bool) -> Verdict {
        self.steps += 1;
        if faults && self.steps % TICK_MS == 0 {
            self.inject_faults()?;
        }
        self.step_disks()?;
        self.net.deliver_due();
        self.check_runtimes()?;
        self.observer.verdict()
    }

    /// Completes fdatasyncs that are due and starts the next batch on idle disks.
    fn step_disks(&mut self) -> Verdict {
        let now = self.steps;
        for (&id, node) in &mut self.nodes {
            let Some(running) = node.running.as_mut() else { continue };
            let wal = running.storage.wal();
            let storage_failure = |e| failure("storage", format!("node {id}: {e}"));
            if running.sync_at_ms.is_some_and(|at| at <= now) {
                wal.sync_written().map_err(storage_failure)?;
                running.sync_at_ms = None;
            }
            if running.sync_at_ms.is_none() && wal.write_queued().map_err(storage_failure)? > 0 {
                running.sync_at_ms = Some(now + 1 + self.rng.below(self.opts.fsync_ms_max));
            }
        }
        Ok(())
    }

    /// A runtime must only stop when the simulation stops it.
    fn check_runtimes(&mut self) -> Verdict {
        for (&id, node) in &mut self.nodes {
            let Some(running) = node.running.as_mut() else { continue };
            if !running.task.is_finished() {
                continue;
            }
            let outcome = match (&mut running.task).now_or_never() {
                Some(Ok(Ok(()))) => "stopped".to_string(),
                Some(Ok(Err(e))) => format!("failed: {e}"),
                Some(Err(e)) => format!("panicked: {}", panic_message(e)),
                None => continue,
            };
            return Err(failure("runtime", format!("node {id}'s runtime {outcome}")));
        }
        Ok(())
    }

    /// Draws this tick's crashes, restarts and partitions.
    fn inject_faults(&mut self) -> Verdict {
        if self.rng.chance(self.opts.crash_per_mille) {
            let live = self.live();
            let leader = self.observer.leader().filter(|l| live.contains(l));
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
                if let Some(leader) = self.observer.leader() {
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

    /// Faults stop: the network heals and calms down, every crashed node restarts.
    pub fn calm(&mut self) -> Verdict {
        tracing::info!("sim: faults stop");
        self.net.heal();
        self.net.set_faults(super::net::NetFaults::CALM);
        for id in self.down() {
            self.boot(id)?;
        }
        Ok(())
    }

    /// Whether every node runs and has applied every command up to `index`.
    pub fn all_applied(&self, index: ppdb_raft::LogIndex) -> bool {
        self.nodes.iter().all(|(&id, n)| n.running.is_some() && self.observer.applied_index(id) >= index)
    }

    /// One line per node, for failure reports.
    pub fn describe(&self) -> String {
        let mut out = format!("messages in flight: {}", self.net.in_flight());
        for (&id, node) in &self.nodes {
            let state = if node.running.is_some() { "running" } else { "down" };
            out.push_str(&format!("; node {id} {state}, applied up to {}", self.observer.applied_index(id)));
        }
        out
    }
}

/// A violation of `invariant`.
fn failure(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// The message of a task's panic.
fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".into()),
        Err(error) => error.to_string(),
    }
}
