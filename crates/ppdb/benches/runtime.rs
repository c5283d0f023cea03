//! Node runtime benchmark (a measurement, not a test): committed proposals per second and
//! commit latency through the real stack of a 3-node cluster in one process. Each node has its
//! own [`RaftStorage`] (write-ahead log with group commit, over the real file system, in a
//! temporary directory), its own [`Transport`] (TCP on an ephemeral 127.0.0.1 port) and its own
//! [`Runtime`], all three hosting one data group bootstrapped over the three voters, with the
//! timing and snapshot settings of `ppdb start`'s defaults. The state machine only counts the
//! commands it applies, so the figures are those of Raft, the WAL, the transport and the event
//! loop, without the key-value layer or RESP.
//!
//! Once a leader is elected, N proposers (1, then 64) run a closed loop on the leader's
//! [`NodeHandle`]: propose a 100-byte command, wait until it is committed and applied, repeat.
//! Latency is from the call to `propose` to the applied answer. fsyncs/s is the sum of the three
//! nodes' WAL syncs. A linearizable read at the end checks that the leader applied exactly the
//! acknowledged commands.
//!
//! Run: `cargo bench -p ppdb --bench runtime`. Environment: `PPDB_BENCH_SECS` (seconds per row,
//! default 5), `PPDB_BENCH_DIR` (a directory on the disk to measure; default: a temporary
//! directory under Cargo's target dir). All three nodes share the machine's cores and disk, so
//! the figures are a lower bound for a cluster of three machines.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ppdb::config::NodeConfig;
use ppdb::node::raft_storage::RaftStorage;
use ppdb::node::{NodeHandle, Outbox, Request, Runtime, RuntimeConfig, StateMachine, SystemClock};
use ppdb::storage::disk::{Disk, FsDisk};
use ppdb::storage::wal::{GroupId, WalConfig};
use ppdb::transport::{InboundEvent, Transport, TransportConfig};
use ppdb::Error;
use ppdb_raft::{LogIndex, Message, NodeId, PeerRole, RecoveredState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

const NODE_IDS: [u64; 3] = [1, 2, 3];
const GROUP: GroupId = GroupId(1);
const CLUSTER_ID: &str = "ppdb-bench";
const COMMAND_BYTES: usize = 100;
const PROPOSER_COUNTS: [usize; 2] = [1, 64];
/// Proposals committed one by one before the first row, so the first row does not pay for
/// connection set-up and the leader's first entries.
const WARMUP_PROPOSALS: u64 = 200;
/// Raft messages queued from the transport to a runtime (as in `node::assembly`).
const RAFT_INBOX_MESSAGES_MAX: usize = 65_536;
/// How long to wait for the transports to connect and a leader to be elected.
const LEADER_WAIT_MAX: Duration = Duration::from_secs(20);
/// Largest latency the histograms hold, in microseconds (above it values are clamped).
const LATENCY_US_MAX: u64 = 60_000_000;
const DEFAULT_SECS: f64 = 5.0;

/// A trivial deterministic state machine: counts the commands it applies. Each command's
/// answer, and every query's, is the count so far.
#[derive(Default)]
struct AppliedCounter {
    applied: u64,
}

impl StateMachine for AppliedCounter {
    type Query = ();
    type Output = u64;

    fn apply(&mut self, _index: LogIndex, _command: &[u8]) -> Result<u64, String> {
        self.applied += 1;
        Ok(self.applied)
    }

    fn query(&self, _: &(), _now_ms: u64) -> u64 {
        self.applied
    }

    fn snapshot(&self) -> Vec<u8> {
        self.applied.to_le_bytes().to_vec()
    }

    fn restore(data: &[u8]) -> Result<Self, String> {
        if data.is_empty() {
            return Ok(AppliedCounter::default());
        }
        let bytes: [u8; 8] =
            data.try_into().map_err(|_| format!("counter snapshot is {} bytes, not 8", data.len()))?;
        Ok(AppliedCounter { applied: u64::from_le_bytes(bytes) })
    }
}

/// The runtime settings of every node: `ppdb start`'s defaults. The one place a
/// `RuntimeConfig` is built, so new fields are added here only.
fn runtime_config(node: NodeId) -> RuntimeConfig {
    let mut defaults = NodeConfig::default();
    defaults.peer.node_id = node.0;
    RuntimeConfig {
        node,
        tick: Duration::from_millis(defaults.tick_ms),
        raft: defaults.raft_config().expect("default Raft settings are valid"),
        entries_between_snapshots: defaults.snapshot_entries,
        entries_kept_after_snapshot: defaults.snapshot_entries / 10,
        membership: defaults.membership_policy(),
        rng_seed: None,
        snapshots_on_loop: false,
        clock: Arc::new(SystemClock),
    }
}

/// Sends the runtime's Raft messages through the transport (as `node::assembly` does).
struct TransportOutbox(Transport);

impl Outbox for TransportOutbox {
    fn send(&self, group: GroupId, message: Message) {
        // A full queue or a peer not yet connected drops the message; Raft retransmits.
        let _ = self.0.send(message.to, group.0, message);
    }
}

/// One running node and what it takes to stop it.
struct BenchNode {
    id: NodeId,
    handle: NodeHandle<AppliedCounter>,
    storage: Arc<RaftStorage>,
    transport: Transport,
    stop: watch::Sender<bool>,
    runtime_task: JoinHandle<Result<(), Error>>,
    pump_task: JoinHandle<()>,
}

/// Starts every node's transport on a free loopback port, then tells each about the others.
async fn start_transports() -> Vec<(Transport, ppdb::transport::Inbound)> {
    let mut transports = Vec::new();
    for id in NODE_IDS {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = TransportConfig::new(NodeId(id), CLUSTER_ID, listen, BTreeMap::new());
        transports.push(Transport::start(config).await.expect("start transport"));
    }
    let addrs: Vec<(NodeId, SocketAddr)> =
        transports.iter().map(|(t, _)| (t.node_id(), t.local_addr())).collect();
    for (transport, _) in &transports {
        for &(peer, addr) in addrs.iter().filter(|(peer, _)| *peer != transport.node_id()) {
            transport.add_peer(peer, addr).expect("add peer");
        }
    }
    transports
}

/// Opens a node's storage under `root` and starts its runtime and its inbound pump.
fn start_node(root: &Path, transport: Transport, mut inbound: ppdb::transport::Inbound) -> BenchNode {
    let id = transport.node_id();
    let disk: Arc<dyn Disk> = Arc::new(FsDisk::new());
    let dir = root.join(format!("node-{}", id.0));
    let (storage, recovered) = RaftStorage::open(disk, &dir, WalConfig::default()).expect("open storage");
    let storage = Arc::new(storage);
    let voters = NODE_IDS.map(NodeId);
    let bootstrap = BTreeMap::from([(GROUP, RecoveredState::bootstrap(voters))]);
    let outbox = Arc::new(TransportOutbox(transport.clone()));
    let runtime: Runtime<AppliedCounter> =
        Runtime::new(runtime_config(id), Arc::clone(&storage), recovered, bootstrap, outbox)
            .expect("build runtime");
    let (raft_tx, raft_rx) = mpsc::channel(RAFT_INBOX_MESSAGES_MAX);
    let (request_tx, request_rx) = mpsc::unbounded_channel::<Request<AppliedCounter>>();
    let (stop, stop_rx) = watch::channel(false);
    let runtime_task = tokio::spawn(runtime.run(raft_rx, request_rx, stop_rx));
    let pump_task = tokio::spawn(async move {
        while let Some(event) = inbound.recv().await {
            // Only Raft messages travel between these nodes; a full inbox drops (Raft retransmits).
            if let InboundEvent::Raft { group, msg, .. } = event {
                let _ = raft_tx.try_send((GroupId(group), msg));
            }
        }
    });
    let timeout = Duration::from_millis(NodeConfig::default().request_timeout_ms);
    let handle = NodeHandle::new(request_tx, timeout);
    BenchNode { id, handle, storage, transport, stop, runtime_task, pump_task }
}

/// The index (in `nodes`) of the node leading `GROUP`, once there is one.
async fn wait_for_leader(nodes: &[BenchNode]) -> usize {
    let started = Instant::now();
    while started.elapsed() < LEADER_WAIT_MAX {
        for (i, node) in nodes.iter().enumerate() {
            let Ok(reports) = node.handle.status().await else { continue };
            if reports.iter().any(|r| r.group == GROUP && r.raft.role == PeerRole::Leader) {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader of group {} within {LEADER_WAIT_MAX:?}", GROUP.0);
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("histogram bounds")
}

/// What one proposer did until the deadline.
struct ProposerRun {
    latencies_us: Histogram<u64>,
    failure: Option<Error>,
}

/// Proposes one command at a time until `deadline`; stops at the first failure (a leader
/// change would make the remaining figures meaningless).
async fn proposer(handle: NodeHandle<AppliedCounter>, proposer: usize, deadline: Instant) -> ProposerRun {
    let mut latencies_us = new_histogram();
    let command = vec![proposer as u8; COMMAND_BYTES];
    while Instant::now() < deadline {
        let sent = Instant::now();
        if let Err(e) = handle.propose(GROUP, command.clone()).await {
            return ProposerRun { latencies_us, failure: Some(e) };
        }
        latencies_us.saturating_record(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    ProposerRun { latencies_us, failure: None }
}

fn wal_syncs(nodes: &[BenchNode]) -> u64 {
    nodes.iter().map(|n| n.storage.wal().stats().syncs).sum()
}

/// One row: `proposers` closed loops on the leader for `duration`. Returns the number of
/// proposals acknowledged.
async fn measure(nodes: &[BenchNode], leader: usize, proposers: usize, duration: Duration) -> u64 {
    let syncs_before = wal_syncs(nodes);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> =
        (0..proposers).map(|p| tokio::spawn(proposer(nodes[leader].handle.clone(), p, deadline))).collect();
    let mut latencies_us = new_histogram();
    let mut failures = Vec::new();
    for task in tasks {
        let run = task.await.expect("proposer task");
        latencies_us.add(&run.latencies_us).expect("same histogram bounds");
        failures.extend(run.failure);
    }
    let elapsed_secs = started.elapsed().as_secs_f64();
    let syncs = wal_syncs(nodes) - syncs_before;
    let committed = latencies_us.len();
    let ms = |q: f64| latencies_us.value_at_quantile(q) as f64 / 1000.0;
    let noun = if proposers == 1 { "proposer" } else { "proposers" };
    println!(
        "runtime {} nodes loopback, {proposers} {noun}: {:.0} proposals/s, p50 {:.2} ms, p99 {:.2} ms, \
         {:.0} fsyncs/s ({:.2} per proposal, all nodes)",
        nodes.len(),
        committed as f64 / elapsed_secs,
        ms(0.50),
        ms(0.99),
        syncs as f64 / elapsed_secs,
        syncs as f64 / (committed.max(1)) as f64,
    );
    if let Some(first) = failures.first() {
        println!("  {} proposers stopped early; first error: {first}", failures.len());
    }
    committed
}

/// Stops every runtime, then every transport, then closes the storages.
async fn shut_down(nodes: Vec<BenchNode>) {
    for node in &nodes {
        let _ = node.stop.send(true);
    }
    for node in nodes {
        node.runtime_task.await.expect("runtime task").expect("runtime stopped cleanly");
        node.transport.shutdown().await;
        // The runtime's outbox held the last other transport handle: the inbound queue closes.
        drop(node.transport);
        if tokio::time::timeout(Duration::from_secs(5), node.pump_task).await.is_err() {
            println!("node {}: inbound pump did not stop within 5 s", node.id);
        }
        let storage =
            Arc::try_unwrap(node.storage).unwrap_or_else(|_| panic!("storage of {} still shared", node.id));
        storage.close().expect("close storage");
    }
}

async fn run(root: &Path, duration: Duration) {
    let transports = start_transports().await;
    let nodes: Vec<BenchNode> =
        transports.into_iter().map(|(t, inbound)| start_node(root, t, inbound)).collect();
    let leader = wait_for_leader(&nodes).await;
    let handle = nodes[leader].handle.clone();
    for _ in 0..WARMUP_PROPOSALS {
        handle.propose(GROUP, vec![0; COMMAND_BYTES]).await.expect("warm-up proposal");
    }
    println!("leader: node {} (elected, {WARMUP_PROPOSALS} warm-up proposals committed)", nodes[leader].id);
    let mut acknowledged = WARMUP_PROPOSALS;
    for proposers in PROPOSER_COUNTS {
        acknowledged += measure(&nodes, leader, proposers, duration).await;
    }
    // Every acknowledged command was applied exactly once on the leader; a failed proposal
    // (reported above) may or may not have been, so the check is exact only without failures.
    let applied = handle.read(GROUP, ()).await.expect("linearizable read of the counter");
    assert!(applied >= acknowledged, "leader applied {applied} commands, {acknowledged} were acknowledged");
    if applied != acknowledged {
        println!("note: {applied} commands applied, {acknowledged} acknowledged (failed proposals applied)");
    }
    shut_down(nodes).await;
}

fn main() {
    let secs: f64 =
        std::env::var("PPDB_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SECS);
    let duration = Duration::from_secs_f64(secs);
    let parent: PathBuf =
        std::env::var_os("PPDB_BENCH_DIR").map_or_else(|| env!("CARGO_TARGET_TMPDIR").into(), Into::into);
    std::fs::create_dir_all(&parent).expect("benchmark directory");
    let root = tempfile::tempdir_in(&parent).expect("temporary directory");
    println!(
        "runtime benchmark: {} nodes on 127.0.0.1, one group, {COMMAND_BYTES}-byte commands, {secs} s per row, \
         directory {}",
        NODE_IDS.len(),
        root.path().display()
    );
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    tokio.block_on(run(root.path(), duration));
}
