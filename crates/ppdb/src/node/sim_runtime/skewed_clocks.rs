//! Expiry on nodes whose clocks disagree. Three nodes replicate the key-value shard
//! ([`KvShard`]) with their real runtimes, over the real storage on simulated disks and the
//! simulated network (no faults, short delays), each machine with its own [`SimClock`]. A client
//! enters a command through a chosen node as the server does: that node resolves it
//! ([`WriteCommand::resolve`], with its own clock) and hands it to the shard's leader, which
//! stamps and proposes it; reads are served by the leader. The scenarios skew clocks by 2 s,
//! fail over to a node 10 s behind, and step the leader's clock back 10 s: reads and writes
//! agree about expiry, and an expired key never comes back.
//!
//! Each scenario runs on a few seeds (election timeouts, network delays, fsync latencies);
//! `PPDB_SEED=<n> cargo test -p ppdb --lib skewed_clocks` replays one.

use super::clock::SimClock;
use super::net::{NetFaults, SimNet};
use super::observer::Observer;
use crate::error::Error;
use crate::kv::Reply;
use crate::node::clock::WallClock;
use crate::node::handle::NodeHandle;
use crate::node::leaders::LeaderTable;
use crate::node::raft_storage::RaftStorage;
use crate::node::runtime::{Outbox, Runtime, RuntimeConfig};
use crate::node::MembershipPolicy;
use crate::server::resp::command::Command;
use crate::server::shard::KvShard;
use crate::storage::disk::{Disk, SimDisk};
use crate::storage::wal::{GroupId, WalConfig, WalWriter};
use bytes::Bytes;
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::{Config, NodeId, RecoveredState};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The data group the nodes replicate.
const GROUP: GroupId = GroupId(1);
/// The nodes: 1, 2 and 3.
const NODES: u64 = 3;
/// Length of one Raft tick.
const TICK: Duration = Duration::from_millis(10);
/// How long a request may wait before its handle gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Most simulated milliseconds a request, or an election, may take here.
const WAIT_MS_MAX: u64 = 5_000;
/// An fdatasync takes 1 to this many milliseconds.
const FSYNC_MS_MAX: u64 = 3;
/// Where every node keeps its data on its simulated disk.
const DATA_DIR: &str = "/node";
/// Seeds each scenario runs on by default.
const SEEDS: u64 = 4;

/// One machine: its disk and clock survive crashes, its runtime does not.
struct Machine {
    disk: Arc<SimDisk>,
    clock: Arc<SimClock>,
    running: Option<Running>,
}

/// A machine's running runtime.
struct Running {
    storage: Arc<RaftStorage>,
    task: JoinHandle<Result<(), Error>>,
    handle: NodeHandle<KvShard>,
    leaders: LeaderTable,
    /// Kept open: a runtime stops when its shutdown channel closes.
    _shutdown: watch::Sender<bool>,
    /// When the fdatasync of the batch being written completes (simulated milliseconds).
    sync_at_ms: Option<u64>,
}

/// Three nodes replicating one key-value shard.
struct KvCluster {
    seed: u64,
    rng: SimRng,
    net: Arc<SimNet>,
    machines: BTreeMap<NodeId, Machine>,
    steps: u64,
}

impl KvCluster {
    /// Starts the three nodes, node `i`'s clock `offsets_ms[i - 1]` ahead of true time.
    fn start(seed: u64, offsets_ms: [i64; NODES as usize]) -> KvCluster {
        let calm = NetFaults { drop_per_mille: 0, duplicate_per_mille: 0, delay_ms_max: 3 };
        let net = SimNet::new(mix(seed, 1), calm, Observer::new(seed));
        let machines = (1..=NODES)
            .zip(offsets_ms)
            .map(|(id, offset)| {
                let disk = Arc::new(SimDisk::new(mix(seed, id.rotate_left(40))));
                (NodeId(id), Machine { disk, clock: Arc::new(SimClock::new(offset)), running: None })
            })
            .collect();
        let mut cluster = KvCluster { seed, rng: SimRng::new(mix(seed, 2)), net, machines, steps: 0 };
        for id in 1..=NODES {
            cluster.boot(NodeId(id));
        }
        cluster
    }

    /// Starts `id`'s runtime from what its disk holds (the bootstrapped group on first boot).
    fn boot(&mut self, id: NodeId) {
        let seed = self.seed;
        let Some(machine) = self.machines.get_mut(&id) else { return };
        let disk: Arc<dyn Disk> = machine.disk.clone();
        let wal = WalConfig { writer: WalWriter::Caller, ..WalConfig::default() };
        let (storage, recovered) = RaftStorage::open(disk, Path::new(DATA_DIR), wal)
            .unwrap_or_else(|e| panic!("seed {seed}: node {id} cannot open its storage: {e}"));
        let storage = Arc::new(storage);
        let founders = (1..=NODES).map(NodeId);
        let bootstrap = BTreeMap::from([(GROUP, RecoveredState::bootstrap(founders))]);
        let config = RuntimeConfig {
            node: id,
            tick: TICK,
            raft: Config::new(id),
            entries_between_snapshots: 1_000,
            entries_kept_after_snapshot: 100,
            membership: MembershipPolicy::default(),
            rng_seed: Some(mix(seed, id.0)),
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
        let handle = NodeHandle::new(requests, REQUEST_TIMEOUT);
        machine.running =
            Some(Running { storage, task, handle, leaders, _shutdown: shutdown, sync_at_ms: None });
    }

    /// Power loss at `id`: its runtime stops, its disk keeps what was synced.
    fn crash(&mut self, id: NodeId) {
        let Some(running) = self.machines.get_mut(&id).and_then(|m| m.running.take()) else { return };
        self.net.disconnect(id);
        running.task.abort();
    }

    /// `id`'s clock.
    fn clock(&self, id: NodeId) -> Arc<SimClock> {
        self.machines.get(&id).map(|m| Arc::clone(&m.clock)).unwrap_or_else(|| Arc::new(SimClock::new(0)))
    }

    /// The running node that leads the group by its own account, if any.
    fn leader(&self) -> Option<NodeId> {
        self.machines
            .iter()
            .find_map(|(&id, m)| m.running.as_ref().filter(|r| r.leaders.get(GROUP) == Some(id)).map(|_| id))
    }

    /// The other running nodes than `id`.
    fn others(&self, id: NodeId) -> Vec<NodeId> {
        self.machines
            .iter()
            .filter(|(&other, m)| other != id && m.running.is_some())
            .map(|(&o, _)| o)
            .collect()
    }

    /// One simulated millisecond: disks, then deliveries.
    async fn step(&mut self) {
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

    /// Lets `ms` simulated milliseconds pass.
    async fn idle(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step().await;
        }
    }

    /// Runs `work` while the cluster steps; its result.
    async fn drive<T: Send + 'static>(&mut self, work: impl Future<Output = T> + Send + 'static) -> T {
        let task = tokio::spawn(work);
        for _ in 0..WAIT_MS_MAX {
            if task.is_finished() {
                return task.await.unwrap_or_else(|e| panic!("seed {}: a request panicked: {e}", self.seed));
            }
            self.step().await;
        }
        panic!("seed {}: a request took more than {WAIT_MS_MAX} simulated ms", self.seed)
    }

    /// Waits for a leader other than `not`; it.
    async fn wait_leader(&mut self, not: Option<NodeId>) -> NodeId {
        for _ in 0..WAIT_MS_MAX {
            if let Some(leader) = self.leader().filter(|&l| Some(l) != not) {
                return leader;
            }
            self.step().await;
        }
        panic!("seed {}: no leader elected within {WAIT_MS_MAX} simulated ms", self.seed)
    }

    /// The leader's handle.
    fn leader_handle(&self) -> NodeHandle<KvShard> {
        let leader = self.leader().unwrap_or_else(|| panic!("seed {}: no leader", self.seed));
        let running = self.machines.get(&leader).and_then(|m| m.running.as_ref());
        running.map(|r| r.handle.clone()).unwrap_or_else(|| panic!("seed {}: leader not running", self.seed))
    }

    /// Runs the command `line` as a client connected to node `through` would: a write is
    /// resolved there, at its clock, and proposed by the leader; a read is served by the leader.
    async fn run(&mut self, through: NodeId, line: &str) -> Reply {
        let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::from(a.to_owned())).collect();
        let handle = self.leader_handle();
        let seed = self.seed;
        let answer = match Command::parse(&args) {
            Ok(Command::Write(write)) => {
                let entry = write
                    .resolve(self.clock(through).now_ms())
                    .unwrap_or_else(|e| panic!("seed {seed}: {line}: {e}"));
                self.drive(handle.propose(GROUP, entry.encode())).await
            }
            Ok(Command::Read(read)) => self.drive(handle.read(GROUP, read)).await,
            other => panic!("{line:?} is not a key-space command: {other:?}"),
        };
        answer.unwrap_or_else(|e| panic!("seed {seed}: {line} through node {through}: {e}"))
    }
}

/// Runs `scenario` on the default seeds, or on `PPDB_SEED` alone, each on its own
/// paused-clock, current-thread tokio runtime.
fn on_seeds<F: Future<Output = ()>>(scenario: impl Fn(u64) -> F) {
    let seeds = match std::env::var("PPDB_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => seed..seed + 1,
        None => 0..SEEDS,
    };
    for seed in seeds {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap_or_else(|e| panic!("cannot build the simulation's tokio runtime: {e}"));
        runtime.block_on(scenario(seed));
    }
}

fn bulk(value: &str) -> Reply {
    Reply::Bulk(value.as_bytes().to_vec())
}

/// Clocks 2 s apart: a key set with PX 1000 through the slowest node lives 1000 ms of the
/// leader's time, and once GET (through the fastest node) says it expired, SET NX (through the
/// slowest) finds it absent too.
#[test]
fn with_clocks_two_seconds_apart_get_and_set_nx_through_different_nodes_agree_on_expiry() {
    on_seeds(|seed| async move {
        let mut cluster = KvCluster::start(seed, [0, -2_000, 2_000]);
        let leader = cluster.wait_leader(None).await;
        let mut followers = cluster.others(leader);
        followers.sort_by_key(|&id| cluster.clock(id).now_ms());
        let (slow, fast) = (followers[0], followers[1]);
        assert_eq!(cluster.run(slow, "SET k v PX 1000").await, Reply::Ok);
        let set_at = cluster.clock(leader).now_ms();
        loop {
            let got = cluster.run(fast, "GET k").await;
            let elapsed = cluster.clock(leader).now_ms() - set_at;
            if got == Reply::Nil {
                assert!(elapsed >= 900, "seed {seed}: GET says k expired {elapsed} ms after SET PX 1000");
                let nx = cluster.run(slow, "SET k w NX").await;
                assert_eq!(
                    nx,
                    Reply::Ok,
                    "seed {seed}: GET through node {fast} says k expired, SET NX through node {slow} says it exists"
                );
                break;
            }
            assert_eq!(got, bulk("v"), "seed {seed}");
            assert!(elapsed <= 1_100, "seed {seed}: k still alive {elapsed} ms after SET PX 1000");
            cluster.idle(20).await;
        }
        assert_eq!(cluster.run(fast, "GET k").await, bulk("w"), "seed {seed}");
    });
}

/// Once a client saw a key expired, a new leader whose clock is 10 s behind does not show it
/// again; nor another key that expired before it, unseen.
#[test]
fn an_expired_key_stays_expired_after_failover_to_a_clock_ten_seconds_behind() {
    on_seeds(|seed| async move {
        let mut cluster = KvCluster::start(seed, [0, 0, 0]);
        let leader = cluster.wait_leader(None).await;
        let followers = cluster.others(leader);
        for &id in &followers {
            cluster.clock(id).set_offset(-10_000);
        }
        // `unseen` expires first (its entry is earlier): when a read sees `k` expired, the log's
        // time passes both expiries.
        assert_eq!(cluster.run(followers[0], "SET unseen v PX 500").await, Reply::Ok);
        assert_eq!(cluster.run(followers[0], "SET k v PX 500").await, Reply::Ok);
        while cluster.run(followers[1], "GET k").await != Reply::Nil {
            cluster.idle(5).await;
        }
        cluster.crash(leader);
        let next = cluster.wait_leader(Some(leader)).await;
        assert!(cluster.clock(next).now_ms() + 9_000 < cluster.clock(leader).now_ms(), "seed {seed}");
        for through in cluster.others(next).into_iter().chain([next]) {
            assert_eq!(cluster.run(through, "GET k").await, Reply::Nil, "seed {seed}: k came back");
            assert_eq!(cluster.run(through, "EXISTS k unseen").await, Reply::Integer(0), "seed {seed}");
            assert_eq!(cluster.run(through, "PTTL k").await, Reply::Integer(-2), "seed {seed}");
        }
        assert_eq!(cluster.run(next, "SET k w NX").await, Reply::Ok, "seed {seed}");
        // The new leader stamps entries no earlier than the last one in its log, not at its
        // clock: a new key's expiry counts from there.
        assert_eq!(cluster.run(next, "SET fresh v PX 1000").await, Reply::Ok);
        assert_eq!(cluster.run(next, "GET fresh").await, bulk("v"), "seed {seed}: expired at birth");
        let Reply::Integer(pttl) = cluster.run(next, "PTTL fresh").await else { panic!("seed {seed}") };
        assert!((900..=1_000).contains(&pttl), "seed {seed}: PTTL {pttl}");
    });
}

/// The leader's clock steps back 10 s: keys it reported expired stay expired, and a new key's
/// relative expiry counts from an entry time that did not go back with the clock.
#[test]
fn a_backward_clock_step_on_the_leader_revives_no_key() {
    on_seeds(|seed| async move {
        let mut cluster = KvCluster::start(seed, [0, 0, 0]);
        let leader = cluster.wait_leader(None).await;
        let follower = cluster.others(leader)[0];
        assert_eq!(cluster.run(follower, "SET k v PX 500").await, Reply::Ok);
        while cluster.run(follower, "GET k").await != Reply::Nil {
            cluster.idle(5).await;
        }
        cluster.clock(leader).step(-10_000);
        assert_eq!(cluster.run(follower, "GET k").await, Reply::Nil, "seed {seed}: k came back");
        assert_eq!(cluster.run(leader, "TTL k").await, Reply::Integer(-2), "seed {seed}");
        assert_eq!(cluster.run(follower, "SET fresh v PX 1000").await, Reply::Ok);
        assert_eq!(cluster.run(leader, "GET fresh").await, bulk("v"), "seed {seed}: expired at birth");
        let Reply::Integer(pttl) = cluster.run(leader, "PTTL fresh").await else { panic!("seed {seed}") };
        assert!((900..=1_000).contains(&pttl), "seed {seed}: PTTL {pttl}");
    });
}
