//! A real cluster of `ppdb` processes on 127.0.0.1 for the integration tests.
//!
//! [`TestCluster`] starts N nodes with short Raft timers, each with its own data directory
//! (under one tempdir) and its stderr in a log file next to it; it waits until every shard has
//! a leader, kills nodes with SIGKILL or stops them with SIGTERM, restarts them on the same
//! directory and addresses, and reads each node's `/status`. Dropping it kills every child
//! still running; when the test is panicking it first prints the tail of every node's log.

use ppdb::node::{KeyRouting, Router};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Longest time a cluster may take to elect every shard's leader (generous: CI machines share
/// two cores between builds and tests).
pub const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Longest time a node may take to exit after SIGTERM.
pub const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Read timeout of client connections: above the server's 5 s request timeout, so a request
/// the server gives up on is seen as the server's error, not as a client-side timeout.
pub const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// The join token every node of a test cluster is started with.
pub const TEST_JOIN_TOKEN: &str = "test-cluster-join-token";
/// Log lines of each node printed when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of nodes (ids 1..=nodes).
    pub nodes: u64,
    /// Number of data shards.
    pub shards: u64,
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Election timeout.
    pub election_timeout_ms: u64,
    /// `--cluster-id`.
    pub cluster_id: String,
    /// `--failed-node-timeout-ms` (0: never remove a node automatically).
    pub failed_node_timeout_ms: u64,
    /// `--follow-clients-ms` (0, the tests' default: leadership stays where elections put it,
    /// so a test that picks "the leader" or "a follower" keeps its choice).
    pub follow_clients_ms: u64,
    /// `--worker-threads` (1, the default here: `ppdb local` gives each node one thread on
    /// machines with fewer than six CPUs, so the node runs on a current-thread runtime).
    pub worker_threads: u16,
    /// More `ppdb start` flags, for every node.
    pub extra_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            shards: 8,
            heartbeat_interval_ms: 50,
            election_timeout_ms: 500,
            cluster_id: "it".to_string(),
            failed_node_timeout_ms: 0,
            follow_clients_ms: 0,
            worker_threads: 1,
            extra_args: Vec::new(),
        }
    }
}

/// `/status` as the admin listener serves it (the fields the tests read).
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub node: NodeDoc,
    pub members: Vec<MemberDoc>,
    pub shards: Vec<ShardDoc>,
    pub peers: Vec<PeerDoc>,
    /// Where every data shard lives (empty from nodes before placements).
    #[serde(default)]
    pub placement: Vec<PlacementDoc>,
}

/// One data shard's placement in [`Status`].
#[derive(Debug, Clone, Deserialize)]
pub struct PlacementDoc {
    pub shard: u64,
    pub replicas: Vec<u64>,
    pub moving: bool,
}

/// The node part of [`Status`].
#[derive(Debug, Clone, Deserialize)]
pub struct NodeDoc {
    pub id: u64,
    pub state: String,
}

/// One member of [`Status`]: the cluster directory as the node sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct MemberDoc {
    pub id: u64,
    pub state: String,
    #[serde(default)]
    pub incarnation: Option<String>,
}

/// One shard of [`Status`].
#[derive(Debug, Clone, Deserialize)]
pub struct ShardDoc {
    pub shard: u64,
    pub role: String,
    pub term: u64,
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Filled on the shard's leader only.
    #[serde(default)]
    pub followers: Vec<FollowerDoc>,
}

/// One follower of a [`ShardDoc`], as its leader sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct FollowerDoc {
    pub id: u64,
    pub silent_ticks: u64,
}

/// One peer link of [`Status`].
#[derive(Debug, Clone, Deserialize)]
pub struct PeerDoc {
    pub id: u64,
    pub connected: bool,
}

/// One node: its addresses, directory, log and process (when running).
#[derive(Debug)]
pub struct TestNode {
    pub id: u64,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Address of its memcached listener.
    pub memcached_addr: SocketAddr,
    /// The `--cluster-id` this node runs with (a test may start an impostor).
    pub cluster_id: String,
    /// The member it joins through (`--join`), for a node added after the bootstrap.
    pub join: Option<SocketAddr>,
    child: Option<Child>,
}

/// A cluster of real `ppdb` processes.
pub struct TestCluster {
    pub options: ClusterOptions,
    pub nodes: Vec<TestNode>,
    root: tempfile::TempDir,
}

/// First port of the block tests take ports from: below Linux's ephemeral range (32768 and
/// up), so an outgoing connection of a running node never takes a port a node is about to bind.
const PORT_BLOCK_FIRST: u32 = 10_000;
/// Ports in the block.
const PORT_BLOCK_SIZE: u32 = 22_000;

/// `count` distinct ports on 127.0.0.1 that are free now. Each test process walks its own
/// stretch of the port block (derived from its pid), so concurrent test runs rarely meet.
pub fn free_addrs(count: usize) -> Vec<SocketAddr> {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let mut addrs = Vec::with_capacity(count);
    while addrs.len() < count {
        let port = PORT_BLOCK_FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % PORT_BLOCK_SIZE;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if TcpListener::bind(addr).is_ok() {
            addrs.push(addr);
        }
    }
    addrs
}

/// The shard of `key` in a test cluster of `shards` shards (founded by this version: routed
/// by hash slots), as the database routes it.
pub fn shard_of(key: &[u8], shards: u64) -> u64 {
    Router::new(KeyRouting::HashSlots, shards).shard_of(key).0
}

/// An HTTP GET of `path` on `addr`; `None` when the node does not answer 200.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
    agent.get(&format!("http://{addr}{path}")).call().ok()?.into_string().ok()
}

/// A server error reply as Redis sends it (`CODE detail`), or the client-side error.
pub fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("client error: {e}"),
    }
}

/// `len` deterministic pseudo-random bytes (xorshift64) that differ for each `seed`: test values
/// that a read under the wrong key, or a torn copy, would not match.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Polls `probe` every 50 ms until it returns `Some` or `deadline` passes.
pub fn wait_for<T>(deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl TestCluster {
    /// Starts the cluster and waits until every shard has a leader and every node is ACTIVE.
    pub fn start(options: ClusterOptions) -> TestCluster {
        TestCluster::start_prepared(options, |_| {})
    }

    /// As [`TestCluster::start`], after `prepare` has seen the nodes' directories and addresses
    /// (to lay down files a node of an earlier version would have left there).
    pub fn start_prepared(options: ClusterOptions, prepare: impl FnOnce(&TestCluster)) -> TestCluster {
        let root = tempfile::tempdir().expect("tempdir");
        let addrs = free_addrs(4 * options.nodes as usize);
        let nodes = (1..=options.nodes)
            .map(|id| {
                let i = 4 * (id as usize - 1);
                TestNode {
                    id,
                    dir: root.path().join(format!("node-{id}")),
                    log: root.path().join(format!("node-{id}.log")),
                    peer_addr: addrs[i],
                    client_addr: addrs[i + 1],
                    admin_addr: addrs[i + 2],
                    memcached_addr: addrs[i + 3],
                    cluster_id: options.cluster_id.clone(),
                    join: None,
                    child: None,
                }
            })
            .collect();
        let mut cluster = TestCluster { options, nodes, root };
        prepare(&cluster);
        for id in cluster.ids() {
            cluster.spawn(id);
        }
        cluster.wait_ready();
        cluster
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Ids of the nodes whose process runs.
    pub fn running(&self) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.id).collect()
    }

    /// The node `id`.
    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[id as usize - 1]
    }

    fn node_mut(&mut self, id: u64) -> &mut TestNode {
        &mut self.nodes[id as usize - 1]
    }

    /// The `--bootstrap` member list (the founding nodes).
    pub fn bootstrap_list(&self) -> String {
        let founders = self.nodes.iter().filter(|n| n.join.is_none());
        founders.map(|n| format!("{}={}", n.id, n.peer_addr)).collect::<Vec<_>>().join(",")
    }

    /// Adds a node with the next id and fresh addresses, started with `--join` through node
    /// `via`; its id.
    pub fn add_node(&mut self, via: u64) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let addrs = free_addrs(4);
        let join = Some(self.node(via).peer_addr);
        self.nodes.push(TestNode {
            id,
            dir: self.root.path().join(format!("node-{id}")),
            log: self.root.path().join(format!("node-{id}.log")),
            peer_addr: addrs[0],
            client_addr: addrs[1],
            admin_addr: addrs[2],
            memcached_addr: addrs[3],
            cluster_id: self.options.cluster_id.clone(),
            join,
            child: None,
        });
        self.spawn(id);
        id
    }

    /// Waits up to `deadline` for node `id`'s process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, id: u64, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            let node = self.node_mut(id);
            let child = node.child.as_mut()?;
            if let Some(status) = child.try_wait().expect("try_wait") {
                node.child = None;
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `ppdb cluster --admin <node id's admin address> ARGS...`; its exit status and
    /// output (stdout then stderr).
    pub fn cluster_command(&self, id: u64, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_ppdb"))
            .arg("cluster")
            .args(["--admin", &self.node(id).admin_addr.to_string()])
            .args(args)
            .output()
            .expect("run ppdb cluster");
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    /// The election timeout the nodes run with.
    pub fn election_timeout(&self) -> Duration {
        Duration::from_millis(self.options.election_timeout_ms)
    }

    /// Starts node `id`'s process on its directory and addresses (its log is appended to).
    pub fn spawn(&mut self, id: u64) {
        let bootstrap = self.bootstrap_list();
        let options = self.options.clone();
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} already runs");
        let log = OpenOptions::new().create(true).append(true).open(&node.log).expect("open node log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ppdb"));
        command
            .arg("start")
            .args(["--id", &id.to_string()])
            .arg("--dir")
            .arg(&node.dir)
            .args(["--peer-addr", &node.peer_addr.to_string()])
            .args(["--client-addr", &node.client_addr.to_string()])
            .args(["--admin-addr", &node.admin_addr.to_string()])
            .args(["--memcached-addr", &node.memcached_addr.to_string()])
            .args(["--cluster-id", &node.cluster_id]);
        match node.join {
            Some(via) => command.args(["--join", &via.to_string()]),
            None => command.args(["--bootstrap", &bootstrap]),
        };
        let child = command
            .args(["--shards", &options.shards.to_string()])
            .args(["--failed-node-timeout-ms", &options.failed_node_timeout_ms.to_string()])
            .args(["--follow-clients-ms", &options.follow_clients_ms.to_string()])
            .args(["--heartbeat-interval-ms", &options.heartbeat_interval_ms.to_string()])
            .args(["--election-timeout-ms", &options.election_timeout_ms.to_string()])
            .args(["--worker-threads", &options.worker_threads.to_string()])
            .args(&options.extra_args)
            .env("RUST_LOG", "info")
            // Every node of a test cluster holds the same join token, so any may join through any.
            .env("PPDB_JOIN_TOKEN", TEST_JOIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn ppdb");
        node.child = Some(child);
    }

    /// SIGKILL node `id` and reap it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM node `id` and wait for it to exit; its exit status.
    pub fn terminate(&mut self, id: u64) -> ExitStatus {
        let mut child = self.node_mut(id).child.take().expect("node runs");
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let end = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {id} did not exit within {STOP_DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to node `id`'s process (SIGSTOP pauses it as a long GC or VM pause
    /// would, SIGCONT resumes it).
    pub fn signal(&self, id: u64, signal: libc::c_int) {
        let child = self.node(id).child.as_ref().expect("node runs");
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }

    /// Whether node `id`'s process is still running (false once it exited, and it is reaped).
    pub fn alive(&mut self, id: u64) -> bool {
        let node = self.node_mut(id);
        match node.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    /// Node `id`'s resident memory in bytes (VmRSS of its process), while it runs.
    pub fn rss_bytes(&self, id: u64) -> Option<u64> {
        let pid = self.node(id).child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Kills node `id` and starts it again on the same directory.
    pub fn restart(&mut self, id: u64) {
        self.kill(id);
        self.spawn(id);
    }

    /// Node `id`'s `/status`, if it answers.
    pub fn status(&self, id: u64) -> Option<Status> {
        let body = http_get(self.node(id).admin_addr, "/status")?;
        serde_json::from_str(&body).ok()
    }

    /// The whole log node `id` wrote so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(&self.node(id).log).unwrap_or_default()
    }

    /// The running nodes' statuses, if all of them answer.
    pub fn statuses(&self) -> Option<BTreeMap<u64, Status>> {
        self.running().into_iter().map(|id| self.status(id).map(|s| (id, s))).collect()
    }

    /// Group → leader (group 0 is the meta group, 1..=N the shards), when every running node
    /// answers and, for every group, one running node reports itself leader and every running
    /// node holding a replica of it names that leader at that term. (A shard placed on other
    /// nodes is not in a node's status.)
    pub fn leaders(&self) -> Option<BTreeMap<u64, u64>> {
        let statuses = self.statuses()?;
        let mut leaders = BTreeMap::new();
        for shard in 0..=self.options.shards {
            let docs: Vec<&ShardDoc> =
                statuses.values().filter_map(|s| s.shards.iter().find(|d| d.shard == shard)).collect();
            let leader = docs.iter().find(|d| d.role == "leader")?;
            let agree = docs.iter().all(|d| d.leader == leader.leader && d.term == leader.term);
            if !agree {
                return None;
            }
            leaders.insert(shard, leader.leader);
        }
        Some(leaders)
    }

    /// Waits until every shard has a leader all running nodes agree on and every running node
    /// is ACTIVE; the shard → leader map.
    pub fn wait_ready(&self) -> BTreeMap<u64, u64> {
        let ready = wait_for(READY_DEADLINE, || {
            let statuses = self.statuses()?;
            statuses.values().all(|s| s.node.state == "ACTIVE").then_some(())?;
            self.leaders()
        });
        ready.unwrap_or_else(|| {
            panic!("cluster not ready within {READY_DEADLINE:?}; statuses: {:?}", self.statuses())
        })
    }

    /// The leader of `key`'s shard, once known.
    pub fn leader_of_key(&self, key: &[u8]) -> u64 {
        let shard = shard_of(key, self.options.shards);
        self.wait_ready()[&shard]
    }

    /// A client connection to node `id`.
    pub fn client(&self, id: u64) -> redis::Connection {
        let client =
            redis::Client::open(format!("redis://{}/", self.node(id).client_addr)).expect("client url");
        let con = client.get_connection_with_timeout(Duration::from_secs(5)).expect("connect to node");
        con.set_read_timeout(Some(CLIENT_READ_TIMEOUT)).expect("set read timeout");
        con.set_write_timeout(Some(CLIENT_READ_TIMEOUT)).expect("set write timeout");
        con
    }

    /// The data root (every node's directory and log are inside).
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                eprintln!("---- node {} log (last {} lines) ----\n{}", node.id, tail.len(), tail.join("\n"));
            }
        }
    }
}
