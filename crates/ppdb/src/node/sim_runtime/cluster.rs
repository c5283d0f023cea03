//! The simulated cluster: one [`Runtime`] per node, persisting through the real
//! [`RaftStorage`] on the node's own [`SimDisk`], all connected by the [`SimNet`]. It starts,
//! crashes and restarts nodes, plays every node's disk, and injects the faults of the run
//! (`faults`).
//!
//! Every node hosts the meta group (group 0, whose state machine is the directory) and the
//! data group [`GROUP`]. The founders bootstrap both, as `server::node` does for a new
//! cluster: each group from the founders' membership, the meta group's snapshot holding the
//! directory with every founder ACTIVE. A spare starts only when it joins, with every group
//! empty, as a joining node does (and again empty if it crashes before state reached it).
//!
//! Every machine has its own wall clock ([`SimClock`]), up to [`CLOCK_SKEW_MS_MAX`] ahead of or
//! behind the run's true time, as real machines' clocks disagree; the leaders stamp entries
//! with it.
//!
//! A removed node is stopped for good as soon as any node's published directory says it is
//! REMOVED: its own (a real node then stops itself) or a peer's (whose transport then refuses
//! its connections and tells it so, which also makes it stop). It is never restarted.
//!
//! The disk is played as the WAL's writer thread would run it, but on the simulated clock:
//! when the WAL has queued records, they are written as one batch, and the batch's fdatasync
//! completes (and its tickets with it) 1 to `fsync_ms_max` milliseconds later. A crash loses
//! whatever is not synced then; half of the crashes strike just after the writer took a batch
//! (its records written, not synced), and the simulated disk may keep a torn prefix of them.

mod copies;
mod faults;

use super::clock::SimClock;
use super::membership::{forward_reports, peer_addr};
use super::moves::{MoveFaults, MoveWatch};
use super::net::SimNet;
use super::observer::Observer;
use super::options::SimOptions;
use super::register::{NodeContext, Register, NODE};
use crate::error::Error;
use crate::node::clock::WallClock;
use crate::node::directory::{Directory, MemberStatus};
use crate::node::handle::NodeHandle;
use crate::node::leadership::ClientTraffic;
use crate::node::placement::Placement;
use crate::node::raft_storage::RaftStorage;
use crate::node::runtime::{Outbox, Runtime, RuntimeConfig, META_GROUP};
use crate::node::state_machine::StateMachine;
use crate::storage::disk::{CrashFaults, Disk, SimDisk};
use crate::storage::wal::{GroupId, WalConfig, WalWriter};
use futures::FutureExt;
use ppdb_raft::sim::check::{Verdict, Violation};
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::{LogIndex, NodeId, RecoveredState};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The data group every node hosts, beside the meta group.
pub(super) const GROUP: GroupId = GroupId(1);

/// Length of one Raft tick.
const TICK: Duration = Duration::from_millis(10);

/// Simulated milliseconds per Raft tick: faults are drawn once per tick.
pub(super) const TICK_MS: u64 = 10;

/// How long a client request may wait before its handle gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Capacity of a runtime's inbound message queue.
const INBOX_CAPACITY: usize = 4096;

/// Most a machine's clock is ahead of or behind the run's true time, in milliseconds.
const CLOCK_SKEW_MS_MAX: u64 = 2_000;

/// Where every node keeps its data on its simulated disk.
const DATA_DIR: &str = "/node";

/// The handles of the running nodes, by node, for the clients.
pub(super) type Handles = Arc<Mutex<BTreeMap<NodeId, NodeHandle<Register>>>>;

/// Where each running node records the client requests it serves, by the node they entered
/// through (see [`crate::node::leadership`]).
pub(super) type Traffic = Arc<Mutex<BTreeMap<NodeId, ClientTraffic>>>;

/// Locks the handles (a poisoned lock still holds a usable map).
pub(super) fn lock(handles: &Handles) -> MutexGuard<'_, BTreeMap<NodeId, NodeHandle<Register>>> {
    handles.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a simulated machine is in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// A spare that has not joined yet: never started.
    Spare,
    /// Started at least once: running, or crashed.
    Member,
    /// Removed from the cluster: stopped for good.
    Removed,
}

/// One simulated machine: its disk survives crashes, its runtime does not.
struct SimNode {
    disk: Arc<SimDisk>,
    /// Its wall clock, skewed; it survives crashes.
    clock: Arc<SimClock>,
    /// A founder bootstraps its groups; a spare starts them empty.
    founder: bool,
    /// Where it is in the run.
    stage: Stage,
    /// Its runtime, while it runs.
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
    traffic: Traffic,
    nodes: BTreeMap<NodeId, SimNode>,
    /// Runtimes started so far (each start gets its own election-timeout seed).
    boots: u64,
    /// Simulated milliseconds stepped so far.
    steps: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions made.
    pub partitions: u64,
    /// Nodes stopped for good because they were removed.
    pub removals: u64,
    /// Who plays which part in the data group's move in progress, for the faults aimed at it.
    moves: MoveWatch,
    /// Faults injected in the middle of a move.
    pub move_faults: MoveFaults,
}

impl Cluster {
    /// Builds the nodes of the run and starts the founders.
    pub fn start(
        seed: u64,
        opts: SimOptions,
        rng: SimRng,
        net: Arc<SimNet>,
        observer: Arc<Observer>,
    ) -> Result<Cluster, Violation> {
        let nodes = (1..=opts.founders + opts.spares)
            .map(|id| {
                let disk = Arc::new(SimDisk::new(mix(seed, id.rotate_left(40))));
                let founder = id <= opts.founders;
                let stage = if founder { Stage::Member } else { Stage::Spare };
                // Drawn apart from the run's generator, so the faults of a seed stay as they were.
                let skew = mix(seed, id ^ 0xC10C) % (2 * CLOCK_SKEW_MS_MAX + 1);
                let clock = Arc::new(SimClock::new(skew as i64 - CLOCK_SKEW_MS_MAX as i64));
                (NodeId(id), SimNode { disk, clock, founder, stage, running: None })
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
            traffic: Traffic::default(),
            nodes,
            boots: 0,
            steps: 0,
            crashes: 0,
            partitions: 0,
            removals: 0,
            moves: MoveWatch::default(),
            move_faults: MoveFaults::default(),
        };
        for id in cluster.founders() {
            cluster.boot(id)?;
        }
        Ok(cluster)
    }

    /// The handles of the running nodes.
    pub fn handles(&self) -> Handles {
        Arc::clone(&self.handles)
    }

    /// The client traffic counters of the running nodes.
    pub fn traffic(&self) -> Traffic {
        Arc::clone(&self.traffic)
    }

    /// Every node.
    fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The founding nodes.
    pub fn founders(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|(_, n)| n.founder).map(|(&id, _)| id).collect()
    }

    /// The spare nodes, joined or not.
    pub fn spares(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|(_, n)| !n.founder).map(|(&id, _)| id).collect()
    }

    /// The running nodes.
    fn live(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|(_, n)| n.running.is_some()).map(|(&id, _)| id).collect()
    }

    /// The crashed members (not the spares yet to join, nor the removed nodes).
    fn down(&self) -> Vec<NodeId> {
        let down = |n: &SimNode| n.stage == Stage::Member && n.running.is_none();
        self.nodes.iter().filter(|(_, n)| down(n)).map(|(&id, _)| id).collect()
    }

    /// Starts spare `id`, which is joining, with empty groups.
    pub fn start_spare(&mut self, id: NodeId) -> Verdict {
        let Some(node) = self.nodes.get_mut(&id).filter(|n| n.stage == Stage::Spare) else { return Ok(()) };
        node.stage = Stage::Member;
        self.boot(id)
    }

    /// The groups `id` starts with when its disk has no state for them: a founder's bootstrap
    /// state (the meta group's snapshot holding the founding directory), or empty groups.
    fn initial_groups(&self, id: NodeId) -> BTreeMap<GroupId, RecoveredState> {
        if !self.nodes.get(&id).is_some_and(|n| n.founder) {
            return BTreeMap::from([
                (META_GROUP, RecoveredState::default()),
                (GROUP, RecoveredState::default()),
            ]);
        }
        let founders = self.founders();
        let addrs = founders.iter().map(|f| (f.0, peer_addr(*f))).collect();
        let placement = Placement::initial(GROUP.0, &founders, self.opts.replicas);
        let data = match placement.group(GROUP) {
            Some(placed) if !placed.replicas.contains(&id) => RecoveredState::default(),
            Some(placed) => RecoveredState::bootstrap(placed.replicas.iter().copied()),
            None => RecoveredState::bootstrap(founders.iter().copied()),
        };
        let mut meta = RecoveredState::bootstrap(founders.iter().copied());
        if let Some(snapshot) = meta.snapshot.as_mut() {
            snapshot.data = Arc::new(Directory::bootstrap(&addrs, placement).snapshot());
        }
        BTreeMap::from([(META_GROUP, meta), (GROUP, data)])
    }

    /// The one place a node's runtime settings are made.
    fn runtime_config(&self, node: NodeId) -> RuntimeConfig {
        let clock: Arc<dyn WallClock> = match self.nodes.get(&node) {
            Some(n) => n.clock.clone(),
            None => Arc::new(SimClock::new(0)),
        };
        RuntimeConfig {
            node,
            tick: TICK,
            raft: self.opts.raft.clone(),
            entries_between_snapshots: self.opts.entries_between_snapshots,
            entries_kept_after_snapshot: self.opts.entries_kept_after_snapshot,
            membership: self.opts.membership,
            rng_seed: Some(mix(self.seed, self.boots)),
            snapshots_on_loop: true,
            clock,
        }
    }

    /// Every node's WAL settings: written by the simulation, with the run's segment size.
    fn wal_config(&self) -> WalConfig {
        WalConfig {
            writer: WalWriter::Caller,
            segment_bytes_max: self.opts.wal_segment_bytes_max,
            ..WalConfig::default()
        }
    }

    /// Starts `id`'s runtime from what its disk holds.
    fn boot(&mut self, id: NodeId) -> Verdict {
        let Some(node) = self.nodes.get(&id) else { return Ok(()) };
        tracing::info!(node = %id, "sim: start");
        let disk: Arc<dyn Disk> = node.disk.clone();
        let (storage, recovered) = RaftStorage::open(disk, Path::new(DATA_DIR), self.wal_config())
            .map_err(|e| failure("recovery", format!("node {id} cannot open its storage: {e}")))?;
        let storage = Arc::new(storage);
        self.boots += 1;
        self.observer.started(id);
        let config = self.runtime_config(id);
        let bootstrap = self.initial_groups(id);
        let outbox: Arc<dyn Outbox> = self.net.clone();
        let context = NodeContext { node: id, observer: Arc::clone(&self.observer) };
        let mut runtime: Runtime<Register> = NODE
            .sync_scope(context.clone(), || {
                Runtime::new(config, Arc::clone(&storage), recovered, bootstrap, outbox)
            })
            .map_err(|e| failure("recovery", format!("node {id} cannot start its runtime: {e}")))?;
        self.observer.watch_directory(id, runtime.directory());
        if let Some(reports) = runtime.directory_reports() {
            let seed = mix(self.seed, 5_000 + self.boots);
            tokio::spawn(forward_reports(reports, seed, Arc::clone(&self.handles)));
        }
        let traffic = runtime.client_traffic();
        let (inbox, inbound) = mpsc::channel(INBOX_CAPACITY);
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(NODE.scope(context, runtime.run(inbound, requests_rx, shutdown_rx)));
        self.net.connect(id, inbox, storage.snapshot_files());
        lock(&self.handles).insert(id, NodeHandle::new(requests, REQUEST_TIMEOUT));
        self.traffic.lock().unwrap_or_else(|p| p.into_inner()).insert(id, traffic);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.running = Some(Running { storage, task, _shutdown: shutdown, sync_at_ms: None });
        }
        Ok(())
    }

    /// Power loss at `id`: the runtime stops where it is, the disk keeps only what was synced
    /// (and perhaps a torn prefix of the batch being written).
    fn crash(&mut self, id: NodeId) {
        let Some(running) = self.nodes.get_mut(&id).and_then(|n| n.running.take()) else { return };
        tracing::info!(node = %id, "sim: crash");
        self.disconnect(id);
        if running.sync_at_ms.is_none() && self.rng.chance(500) {
            // The writer took the queued batch just before the power went: written, not synced.
            // An error here only means the WAL was already unusable.
            let _ = running.storage.wal().write_queued();
        }
        if let Some(node) = self.nodes.get(&id) {
            node.disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
        }
        // Dropped by the scheduler later; the old WAL's handles are stale after the crash, so
        // closing it cannot touch the disk any more.
        running.task.abort();
        self.crashes += 1;
    }

    /// `id` is no longer reachable: the network, the clients and the checks forget it.
    fn disconnect(&mut self, id: NodeId) {
        self.net.disconnect(id);
        lock(&self.handles).remove(&id);
        self.traffic.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        self.observer.unwatch_directory(id);
    }

    /// Stops, for good, every node a published directory says is removed.
    fn stop_removed(&mut self) {
        let directory = self.observer.latest_directory();
        for id in directory.with_status(MemberStatus::Removed) {
            let Some(node) = self.nodes.get_mut(&id).filter(|n| n.stage != Stage::Removed) else { continue };
            tracing::info!(node = %id, "sim: removed, stops");
            node.stage = Stage::Removed;
            self.removals += 1;
            if let Some(running) = node.running.take() {
                running.task.abort();
                self.disconnect(id);
            }
        }
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
        self.observer.poll_directories();
        self.stop_removed();
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

    /// Whether every member (every node started and not removed) that holds the data group,
    /// as the latest directory places it, runs and has applied every command up to `index`.
    pub fn all_applied(&self, index: LogIndex) -> bool {
        let placement = self.observer.latest_directory().placement().clone();
        let applied =
            |id: NodeId, n: &SimNode| n.running.is_some() && self.observer.applied_index(id) >= index;
        self.nodes
            .iter()
            .filter(|(&id, n)| n.stage == Stage::Member && placement.hosts(GROUP, id) != Some(false))
            .all(|(&id, n)| applied(id, n))
    }

    /// One line per node, for failure reports.
    pub fn describe(&self) -> String {
        let mut out = format!("messages in flight: {}", self.net.in_flight());
        for (&id, node) in &self.nodes {
            let state = match (node.stage, node.running.is_some()) {
                (Stage::Spare, _) => "not joined",
                (Stage::Removed, _) => "removed",
                (Stage::Member, true) => "running",
                (Stage::Member, false) => "down",
            };
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
