//! The runtime end to end in one process: three nodes wired by channels instead of TCP, with
//! real files, a toy state machine, crash and restart.

use super::raft_storage::RaftStorage;
use super::runtime::{Outbox, Request, Runtime, RuntimeConfig};
use super::state_machine::StateMachine;
use super::{MembershipPolicy, NodeHandle};
use crate::error::{Error, ErrorCode};
use crate::storage::disk::{Disk, FsDisk};
use crate::storage::wal::{GroupId, WalConfig};
use ppdb_raft::{Config, LogIndex, Message, NodeId, PeerRole, RecoveredState};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Appends every command to a list; a query returns the list joined by commas.
#[derive(Default)]
struct Journal(Vec<Vec<u8>>);

impl StateMachine for Journal {
    type Query = ();
    type Output = Vec<u8>;

    fn apply(&mut self, _index: LogIndex, command: &[u8]) -> Vec<u8> {
        self.0.push(command.to_vec());
        self.0.len().to_string().into_bytes()
    }

    fn query(&self, _: &()) -> Vec<u8> {
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

/// A node's inbound Raft message queue.
type Inbox = mpsc::Sender<(GroupId, Message)>;

/// Routes messages to the inbound channel of their recipient, unless it is down.
#[derive(Clone, Default)]
struct ChannelNet {
    inboxes: Arc<Mutex<BTreeMap<NodeId, Inbox>>>,
}

impl Outbox for ChannelNet {
    fn send(&self, group: GroupId, message: Message) {
        let inbox = self.inboxes.lock().ok().and_then(|m| m.get(&message.to).cloned());
        if let Some(inbox) = inbox {
            let _ = inbox.try_send((group, message));
        }
    }
}

struct TestNode {
    handle: NodeHandle<Journal>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

const GROUP: GroupId = GroupId(1);

fn start(net: &ChannelNet, root: &Path, id: u64, members: &[NodeId]) -> TestNode {
    let dir = root.join(format!("node-{id}"));
    let disk: Arc<dyn Disk> = Arc::new(FsDisk::new());
    let (storage, recovered) = RaftStorage::open(disk, &dir, WalConfig::default()).expect("open storage");
    let config = RuntimeConfig {
        node: NodeId(id),
        tick: Duration::from_millis(10),
        raft: Config::new(NodeId(id)),
        entries_between_snapshots: 20,
        entries_kept_after_snapshot: 5,
        membership: MembershipPolicy::default(),
        rng_seed: None,
    };
    let bootstrap = BTreeMap::from([(GROUP, RecoveredState::bootstrap(members.iter().copied()))]);
    let runtime: Runtime<Journal> =
        Runtime::new(config, Arc::new(storage), recovered, bootstrap, Arc::new(net.clone()))
            .expect("runtime");
    let (inbox_tx, inbox_rx) = mpsc::channel(4096);
    let (req_tx, req_rx) = mpsc::unbounded_channel::<Request<Journal>>();
    let (stop, stop_rx) = watch::channel(false);
    if let Ok(mut inboxes) = net.inboxes.lock() {
        inboxes.insert(NodeId(id), inbox_tx);
    }
    let task = tokio::spawn(runtime.run(inbox_rx, req_rx, stop_rx));
    TestNode { handle: NodeHandle::new(req_tx, Duration::from_secs(3)), stop, task }
}

async fn leader(nodes: &BTreeMap<u64, TestNode>) -> u64 {
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
