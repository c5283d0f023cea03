//! The runtime end to end in one process: three nodes wired by channels instead of TCP, with
//! real files, a toy state machine, crash and restart.

use super::raft_storage::RaftStorage;
use super::runtime::{Outbox, Request, Runtime, RuntimeConfig};
use super::snapshot_transfer::{copy_snapshot, NodeSnapshotFiles};
use super::state_machine::{SnapshotJob, StateMachine};
use super::{MembershipPolicy, NodeHandle, SystemClock};
use crate::error::{Error, ErrorCode};
use crate::storage::disk::{Disk, DiskFile, FsDisk, SimDisk};
use crate::storage::wal::{GroupId, WalConfig};
use ppdb_raft::{Config, LogIndex, Message, NodeId, PeerRole, RecoveredState};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Appends every command to a list; a query returns the list joined by commas.
#[derive(Default)]
struct Journal(Vec<Vec<u8>>);

impl StateMachine for Journal {
    type Query = ();
    type Output = Vec<u8>;

    fn apply(&mut self, _index: LogIndex, command: &[u8]) -> Result<Vec<u8>, String> {
        self.0.push(command.to_vec());
        Ok(self.0.len().to_string().into_bytes())
    }

    fn query(&self, _: &(), _now_ms: u64) -> Vec<u8> {
        self.0.join(&b","[..])
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.join(&b","[..])
    }

    fn restore(data: &[u8]) -> Result<Self, String> {
        if data.is_empty() {
            return Ok(Journal::default());
        }
        Ok(Journal(data.split(|&b| b == b',').map(<[u8]>::to_vec).collect()))
    }
}

/// How long a [`SlowJournal`] takes to serialize a snapshot.
const SLOW_SNAPSHOT: Duration = Duration::from_secs(2);

/// A [`Journal`] whose snapshots take [`SLOW_SNAPSHOT`] to serialize, as a large state does.
#[derive(Default)]
struct SlowJournal(Journal);

impl StateMachine for SlowJournal {
    type Query = ();
    type Output = Vec<u8>;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Result<Vec<u8>, String> {
        self.0.apply(index, command)
    }

    fn query(&self, query: &(), now_ms: u64) -> Vec<u8> {
        self.0.query(query, now_ms)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    fn snapshot_job(&self) -> SnapshotJob {
        let data = self.0.snapshot();
        Box::new(move |out| {
            std::thread::sleep(SLOW_SNAPSHOT);
            out.write_all(&data)
        })
    }

    fn restore(data: &[u8]) -> Result<Self, String> {
        Journal::restore(data).map(SlowJournal)
    }
}

/// A node's inbound Raft message queue.
type Inbox = mpsc::Sender<(GroupId, Message)>;

/// Routes messages to the inbound channel of their recipient, unless it is down; a snapshot
/// is copied from the sender's snapshot files to the recipient's first, in chunks, as the
/// transport streams it.
#[derive(Clone, Default)]
struct ChannelNet {
    inboxes: Arc<Mutex<BTreeMap<NodeId, NetNode>>>,
}

/// A running node as a [`ChannelNet`] reaches it: its inbox and its snapshot files.
type NetNode = (Inbox, Arc<NodeSnapshotFiles>);

/// Chunk size of snapshots copied between nodes of a [`ChannelNet`].
const NET_SNAPSHOT_CHUNK_BYTES: usize = 4096;

impl Outbox for ChannelNet {
    fn send(&self, group: GroupId, message: Message) {
        let Ok(inboxes) = self.inboxes.lock().map(|m| m.clone()) else { return };
        let (Some((inbox, to)), Some((_, from))) = (inboxes.get(&message.to), inboxes.get(&message.from))
        else {
            return;
        };
        match copy_snapshot(from.as_ref(), to.as_ref(), group, message, NET_SNAPSHOT_CHUNK_BYTES) {
            Ok(message) => {
                let _ = inbox.try_send((group, message));
            }
            Err(e) => tracing::warn!(error = %e, "snapshot not copied"),
        }
    }
}

struct TestNode<S: StateMachine = Journal> {
    handle: NodeHandle<S>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

const GROUP: GroupId = GroupId(1);

fn start(net: &ChannelNet, root: &Path, id: u64, members: &[NodeId]) -> TestNode {
    start_on(net, root, id, members, Arc::new(FsDisk::new()), Config::new(NodeId(id)), &[GROUP])
}

/// [`start`] on `disk`, with `raft` settings, replicating an `S` in each of `groups`.
fn start_on<S: StateMachine>(
    net: &ChannelNet,
    root: &Path,
    id: u64,
    members: &[NodeId],
    disk: Arc<dyn Disk>,
    raft: Config,
    groups: &[GroupId],
) -> TestNode<S> {
    let dir = root.join(format!("node-{id}"));
    let (storage, recovered) = RaftStorage::open(disk, &dir, WalConfig::default()).expect("open storage");
    let files = storage.snapshot_files();
    let config = RuntimeConfig {
        node: NodeId(id),
        tick: Duration::from_millis(10),
        raft,
        entries_between_snapshots: 20,
        entries_kept_after_snapshot: 5,
        membership: MembershipPolicy::default(),
        rng_seed: None,
        snapshots_on_loop: false,
        clock: Arc::new(SystemClock),
    };
    let bootstrap =
        groups.iter().map(|&group| (group, RecoveredState::bootstrap(members.iter().copied()))).collect();
    let runtime: Runtime<S> =
        Runtime::new(config, Arc::new(storage), recovered, bootstrap, Arc::new(net.clone()))
            .expect("runtime");
    let (inbox_tx, inbox_rx) = mpsc::channel(4096);
    let (req_tx, req_rx) = mpsc::unbounded_channel::<Request<S>>();
    let (stop, stop_rx) = watch::channel(false);
    if let Ok(mut inboxes) = net.inboxes.lock() {
        inboxes.insert(NodeId(id), (inbox_tx, files));
    }
    let task = tokio::spawn(runtime.run(inbox_rx, req_rx, stop_rx));
    TestNode { handle: NodeHandle::new(req_tx, Duration::from_secs(3)), stop, task }
}

async fn leader<S: StateMachine>(nodes: &BTreeMap<u64, TestNode<S>>) -> u64 {
    for _ in 0..300 {
        for (&id, node) in nodes {
            if let Ok(status) = node.handle.status().await {
                if status.iter().any(|g| g.raft.role == PeerRole::Leader) {
                    return id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader elected within 6 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_survive_a_restart_and_read_linearizably() {
    let root = tempfile::tempdir().expect("tempdir");
    let net = ChannelNet::default();
    let members = [NodeId(1), NodeId(2), NodeId(3)];
    let mut nodes: BTreeMap<u64, TestNode> =
        (1..=3).map(|id| (id, start(&net, root.path(), id, &members))).collect();
    let lead = leader(&nodes).await;
    let follower = if lead == 1 { 2 } else { 1 };

    // Writes commit through the leader; a follower refuses with a hint to the leader.
    for i in 0..50 {
        let out = nodes[&lead].handle.propose(GROUP, format!("c{i}").into_bytes()).await.expect("commit");
        assert_eq!(out, (i + 1).to_string().into_bytes());
    }
    let refused = nodes[&follower].handle.propose(GROUP, b"x".to_vec()).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Consensus, "{refused}");
    // A command larger than one log entry may carry is refused before it is proposed.
    let oversized = vec![0; crate::limits::COMMAND_BYTES_MAX + 1];
    let refused = nodes[&lead].handle.propose(GROUP, oversized).await.unwrap_err();
    assert!(matches!(refused, Error::CommandTooLarge { .. }), "{refused}");

    // Restart a follower from its files (snapshots were taken every 20 entries).
    let node = nodes.remove(&follower).expect("follower");
    let _ = node.stop.send(true);
    node.task.await.expect("join").expect("clean stop");
    nodes.insert(follower, start(&net, root.path(), follower, &members));
    nodes[&lead].handle.propose(GROUP, b"after-restart".to_vec()).await.expect("commit");

    // The leader reads linearizably: everything acknowledged is there, in order.
    let lead = leader(&nodes).await;
    let all = nodes[&lead].handle.read(GROUP, ()).await.expect("read");
    let all = String::from_utf8(all).expect("utf8");
    assert!(all.starts_with("c0,c1,c2,"), "{all}");
    assert!(all.ends_with(",c49,after-restart"), "{all}");
    for node in nodes.values() {
        let _ = node.stop.send(true);
    }
}

/// Holds every fsync of one node's disk while closed.
#[derive(Debug, Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// Syncs waiting at the gate.
    waiting: std::sync::atomic::AtomicUsize,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock().expect("gate") = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().expect("gate");
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        while *closed {
            closed = self.opened.wait(closed).expect("gate");
        }
        self.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The real file system, without direct writes, whose fsyncs pass through a [`Gate`].
#[derive(Debug)]
struct GatedDisk {
    inner: FsDisk,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Box<dyn DiskFile>,
    gate: Arc<Gate>,
}

impl DiskFile for GatedFile {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }

    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
}

impl Disk for GatedDisk {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn open_read(&self, path: &Path) -> std::io::Result<Box<dyn crate::storage::disk::DiskReader>> {
        self.inner.open_read(path)
    }

    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(GatedFile { inner: self.inner.create_new(path)?, gate: Arc::clone(&self.gate) }))
    }

    fn open_write(&self, path: &Path) -> std::io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(GatedFile { inner: self.inner.open_write(path)?, gate: Arc::clone(&self.gate) }))
    }

    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_answers_a_write_its_followers_made_durable_while_its_own_fsync_hangs() {
    let root = tempfile::tempdir().expect("tempdir");
    let net = ChannelNet::default();
    let members = [NodeId(1), NodeId(2), NodeId(3)];
    let gates: BTreeMap<u64, Arc<Gate>> = (1..=3).map(|id| (id, Arc::new(Gate::default()))).collect();
    let nodes: BTreeMap<u64, TestNode> = (1..=3)
        .map(|id| {
            let disk = Arc::new(GatedDisk { inner: FsDisk::new(), gate: Arc::clone(&gates[&id]) });
            // Elections stay away while the leader's loop waits at its gate.
            let mut raft = Config::new(NodeId(id));
            raft.election_timeout_ticks = 60;
            (id, start_on(&net, root.path(), id, &members, disk, raft, &[GROUP]))
        })
        .collect();
    let lead = leader(&nodes).await;
    nodes[&lead].handle.propose(GROUP, b"settled".to_vec()).await.expect("commit");

    // The leader's disk stops syncing: its round holding the write cannot finish, but both
    // followers store the write, which makes it committed (a majority has it durably).
    gates[&lead].set_closed(true);
    let write = tokio::spawn(nodes[&lead].handle.propose(GROUP, b"while-stalled".to_vec()));
    let answer = tokio::time::timeout(Duration::from_secs(5), write).await;
    let still_held = gates[&lead].waiting() > 0;
    gates[&lead].set_closed(false);
    let answer = answer.expect("answered while the leader's fsync hung").expect("join").expect("commit");
    assert_eq!(answer, b"2".to_vec(), "second command of the journal");
    assert!(still_held, "the leader's own fsync was still held when the write was answered");
    for node in nodes.values() {
        let _ = node.stop.send(true);
    }
}

/// A node started with one worker thread runs on a current-thread runtime: everything on the
/// thread of its loop. Its snapshots must still be serialized elsewhere, or every write waits
/// for them (seconds on a large state).
#[tokio::test(flavor = "current_thread")]
async fn writes_go_on_while_snapshots_are_serialized_on_a_current_thread_runtime() {
    let root = tempfile::tempdir().expect("tempdir");
    let net = ChannelNet::default();
    let members = [NodeId(1), NodeId(2), NodeId(3)];
    let nodes: BTreeMap<u64, TestNode<SlowJournal>> = (1..=3)
        .map(|id| {
            let disk = Arc::new(FsDisk::new());
            (id, start_on(&net, root.path(), id, &members, disk, Config::new(NodeId(id)), &[GROUP]))
        })
        .collect();
    let lead = leader(&nodes).await;
    // Snapshots are due every 20 entries: 60 writes start several, each serialized for 2 s.
    let mut slowest = Duration::ZERO;
    for i in 0..60 {
        let started = std::time::Instant::now();
        nodes[&lead].handle.propose(GROUP, format!("c{i}").into_bytes()).await.expect("commit");
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < SLOW_SNAPSHOT / 2, "a write waited {slowest:?} while snapshots were serialized");
    for node in nodes.values() {
        let _ = node.stop.send(true);
    }
}

/// Waits up to 10 s for `cond`, polling.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 10 s: {what}");
}

/// The applied index of `node`'s data group.
async fn applied(node: &TestNode) -> LogIndex {
    let status = node.handle.status().await.expect("status");
    status.iter().find(|g| g.group == GROUP).map_or(LogIndex(0), |g| g.raft.applied)
}

/// Whether `disk` holds a snapshot file of the data group under `root`'s node `id`.
fn snapshot_files(disk: &SimDisk, root: &Path, id: u64) -> Vec<String> {
    let dir = root.join(format!("node-{id}")).join("snapshots");
    let names = disk.list_dir(&dir).unwrap_or_default();
    names.into_iter().filter(|n| n.starts_with("00000000000000000001-") && n.ends_with(".snap")).collect()
}

/// A snapshot that cannot be saved (the snapshot directory's writes fail, as on a full disk)
/// is logged and tried again later; the node keeps serving meanwhile instead of stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_cannot_be_saved_is_retried_and_the_node_keeps_serving() {
    let root = Path::new("/sim");
    let net = ChannelNet::default();
    let members = [NodeId(1), NodeId(2), NodeId(3)];
    let disks: BTreeMap<u64, SimDisk> = (1..=3).map(|id| (id, SimDisk::new(id))).collect();
    let nodes: BTreeMap<u64, TestNode> = (1..=3)
        .map(|id| {
            let disk: Arc<dyn Disk> = Arc::new(disks[&id].clone());
            (id, start_on(&net, root, id, &members, disk, Config::new(NodeId(id)), &[GROUP]))
        })
        .collect();
    let lead = leader(&nodes).await;
    let before: BTreeMap<u64, Vec<String>> =
        disks.iter().map(|(&id, disk)| (id, snapshot_files(disk, root, id))).collect();
    for (&id, disk) in &disks {
        disk.fail_next_writes_under(root.join(format!("node-{id}")).join("snapshots"), 2);
    }
    // Snapshots are due every 20 entries: the first attempts fail on every node.
    for i in 0..60 {
        nodes[&lead]
            .handle
            .propose(GROUP, format!("c{i}").into_bytes())
            .await
            .expect("commit while saves fail");
    }
    for (&id, disk) in &disks {
        eventually("every node saved a snapshot after its failed attempts", async || {
            snapshot_files(disk, root, id).iter().any(|name| !before[&id].contains(name))
        })
        .await;
    }
    nodes[&lead].handle.propose(GROUP, b"after".to_vec()).await.expect("commit after the retries");
    for node in nodes.values() {
        assert!(!node.task.is_finished(), "a node stopped");
        let _ = node.stop.send(true);
    }
}

/// A follower that was down while the log moved far past it (and was compacted behind
/// snapshots) catches up from the leader's snapshot, streamed from file to file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_far_behind_catches_up_from_a_streamed_snapshot() {
    let root = Path::new("/sim");
    let net = ChannelNet::default();
    let members = [NodeId(1), NodeId(2), NodeId(3)];
    let disks: BTreeMap<u64, SimDisk> = (1..=3).map(|id| (id, SimDisk::new(id + 10))).collect();
    let start_node = |id: u64| {
        let disk: Arc<dyn Disk> = Arc::new(disks[&id].clone());
        start_on(&net, root, id, &members, disk, Config::new(NodeId(id)), &[GROUP])
    };
    let mut nodes: BTreeMap<u64, TestNode> = (1..=3).map(|id| (id, start_node(id))).collect();
    let lead = leader(&nodes).await;
    let behind = (1..=3).find(|&id| id != lead).expect("a follower");
    let node = nodes.remove(&behind).expect("follower");
    let _ = node.stop.send(true);
    node.task.await.expect("join").expect("clean stop");
    net.inboxes.lock().expect("net").remove(&NodeId(behind));
    // Far more entries than are kept behind a snapshot (5): only a snapshot can catch it up.
    for i in 0..200 {
        nodes[&lead].handle.propose(GROUP, format!("{i:0100}").into_bytes()).await.expect("commit");
    }
    nodes.insert(behind, start_node(behind));
    let target = applied(&nodes[&lead]).await;
    eventually("the follower applied everything", async || applied(&nodes[&behind]).await >= target).await;
    let received = snapshot_files(&disks[&behind], root, behind);
    assert!(!received.is_empty(), "the follower holds the snapshot it received as a file");
    for node in nodes.values() {
        let _ = node.stop.send(true);
    }
}

/// A [`Journal`] that cannot apply two commands: `panic` makes it panic, `undecodable` makes
/// it fail as a state machine does on an entry it cannot decode.
#[derive(Default)]
struct FragileJournal(Journal);

impl StateMachine for FragileJournal {
    type Query = ();
    type Output = Vec<u8>;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Result<Vec<u8>, String> {
        match command {
            b"panic" => panic!("the journal cannot take this"),
            b"undecodable" => Err("undecodable journal command".into()),
            _ => self.0.apply(index, command),
        }
    }

    fn query(&self, query: &(), now_ms: u64) -> Vec<u8> {
        self.0.query(query, now_ms)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    fn restore(data: &[u8]) -> Result<Self, String> {
        Journal::restore(data).map(FragileJournal)
    }
}

/// The group beside [`GROUP`] in [`a_committed_entry_that_cannot_be_applied_stops_its_group_only`].
const OTHER_GROUP: GroupId = GroupId(2);

/// Polls (every 20 ms) before a wait below gives up: 15 s, for a loaded machine.
const WAIT_ROUNDS: usize = 750;

/// Waits until some node leads `group`; returns it.
async fn leader_of<S: StateMachine>(nodes: &BTreeMap<u64, TestNode<S>>, group: GroupId) -> u64 {
    for _ in 0..WAIT_ROUNDS {
        for (&id, node) in nodes {
            let reports = node.handle.status().await.unwrap_or_default();
            if reports.iter().any(|g| g.group == group && g.raft.role == PeerRole::Leader) {
                return id;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader of group {} within 15 s", group.0);
}

/// Where each node stopped applying `group`, once `node` did (any node if `None`). Only the
/// nodes that learn the entry is committed stop: a follower may never learn it once the
/// others stopped, nor may a node restarted before its commit index was written (the runtime
/// writes a commit index alone with the group's next record).
async fn stopped_at<S: StateMachine>(
    nodes: &BTreeMap<u64, TestNode<S>>,
    group: GroupId,
    node: Option<u64>,
) -> BTreeMap<u64, (LogIndex, String)> {
    for _ in 0..WAIT_ROUNDS {
        let mut stopped = BTreeMap::new();
        for (&id, running) in nodes {
            let reports = running.handle.status().await.expect("a node with a stopped group still answers");
            let report = reports.into_iter().find(|g| g.group == group).expect("the group is still reported");
            stopped.extend(report.apply_stopped.map(|s| (id, (s.index, s.reason))));
        }
        if node.map_or(!stopped.is_empty(), |node| stopped.contains_key(&node)) {
            return stopped;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("node {node:?} did not stop applying group {} within 15 s", group.0);
}

fn start_fragile(
    net: &ChannelNet,
    root: &Path,
    members: &[NodeId],
) -> BTreeMap<u64, TestNode<FragileJournal>> {
    (1..=3)
        .map(|id| {
            let (disk, raft) = (Arc::new(FsDisk::new()), Config::new(NodeId(id)));
            (id, start_on(net, root, id, members, disk, raft, &[GROUP, OTHER_GROUP]))
        })
        .collect()
}

/// An entry no replica can apply (a panic in the state machine, or an error such as an
/// undecodable command) stops its group on every node, which says where and why; the nodes
/// and their other groups go on, and a restart on the same files stops the group again at
/// the same entry instead of crashing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_entry_that_cannot_be_applied_stops_its_group_only() {
    for (poison, reason) in
        [("panic", "panicked: the journal cannot take this"), ("undecodable", "undecodable journal command")]
    {
        let root = tempfile::tempdir().expect("tempdir");
        let net = ChannelNet::default();
        let members = [NodeId(1), NodeId(2), NodeId(3)];
        let nodes = start_fragile(&net, root.path(), &members);
        let lead = leader_of(&nodes, GROUP).await;
        nodes[&lead].handle.propose(GROUP, b"before".to_vec()).await.expect("commit");
        let refused = nodes[&lead].handle.propose(GROUP, poison.as_bytes().to_vec()).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::State, "{refused}");
        assert!(refused.to_string().contains(reason), "{refused}");
        let stopped = stopped_at(&nodes, GROUP, Some(lead)).await;
        let index = stopped[&lead].0;
        assert!(stopped.values().all(|s| *s == (index, reason.to_string())), "{stopped:?}");
        let other = leader_of(&nodes, OTHER_GROUP).await;
        nodes[&other].handle.propose(OTHER_GROUP, b"still".to_vec()).await.expect("the other group goes on");

        // Restarted on the same files, the nodes stop the group at the same entry again.
        for node in nodes.into_values() {
            let _ = node.stop.send(true);
            node.task.await.expect("join").expect("clean stop");
        }
        let nodes = start_fragile(&net, root.path(), &members);
        let again = stopped_at(&nodes, GROUP, None).await;
        assert!(again.values().all(|s| s.0 == index), "{again:?} after a restart, {index} before");
        let other = leader_of(&nodes, OTHER_GROUP).await;
        let all = nodes[&other].handle.read(OTHER_GROUP, ()).await.expect("read");
        assert_eq!(all, b"still".to_vec());
        assert!(nodes.values().all(|node| !node.task.is_finished()), "every node still runs");
        for node in nodes.values() {
            let _ = node.stop.send(true);
        }
    }
}
