//! `ppdb start`: one node.

use crate::config::{ClientConfig, NodeConfig};
use crate::server::settings::{parse_memory, OutputBufferLimit};
use clap::Args;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

mod tls;

/// Flags of `ppdb start`. Each may also come from the environment (`PPDB_*`) or a TOML file
/// (`--config`); flags win over the environment, which wins over the file.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// This node's id (the seed's node_id), unique in the cluster, at least 1.
    #[arg(long, env = "PPDB_ID")]
    pub id: Option<u64>,
    /// Data directory (write-ahead log, snapshots, cluster file). A restart with the same
    /// directory resumes from its data, whatever the bootstrap flags say.
    #[arg(long, env = "PPDB_DIR")]
    pub dir: Option<PathBuf>,
    /// Address peers reach this node at (the seed's host and port), e.g. 127.0.0.1:7101.
    #[arg(long, env = "PPDB_PEER_ADDR")]
    pub peer_addr: Option<String>,
    /// Address of the Redis-protocol listener, e.g. 127.0.0.1:7001.
    #[arg(long, env = "PPDB_CLIENT_ADDR")]
    pub client_addr: Option<SocketAddr>,
    /// Address of the HTTP admin listener (/metrics, /health, /status), e.g. 127.0.0.1:7201.
    #[arg(long, env = "PPDB_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Address of the memcached-protocol listener, e.g. 127.0.0.1:11211 (default: none, no
    /// memcached listener).
    #[arg(long, env = "PPDB_MEMCACHED_ADDR")]
    pub memcached_addr: Option<SocketAddr>,
    /// The largest value a memcached storage command may carry, in bytes or with a unit such
    /// as 1mb (memcached's -I; default 1mb).
    #[arg(long, env = "PPDB_MEMCACHED_ITEM_SIZE_MAX", value_parser = crate::config::parse_memory_bytes)]
    pub memcached_item_size_max: Option<u64>,
    /// Cluster name; peers of another cluster are refused at the handshake.
    #[arg(long, env = "PPDB_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Form a new cluster from this member list of peer addresses: 1=HOST:PORT,2=HOST:PORT,...
    #[arg(long, env = "PPDB_BOOTSTRAP", conflicts_with = "join")]
    pub bootstrap: Option<String>,
    /// Join a running cluster through any member's peer address (HOST:PORT): this node is
    /// added as a learner, catches up, and becomes a voter. Give --cluster-id if the cluster
    /// is not named "ppdb".
    #[arg(long, env = "PPDB_JOIN")]
    pub join: Option<String>,
    /// Milliseconds a member may be unreachable before the cluster removes it, when that keeps
    /// a safe quorum (default 300000, 5 minutes; 0 never removes automatically).
    #[arg(long, env = "PPDB_FAILED_NODE_TIMEOUT_MS")]
    pub failed_node_timeout_ms: Option<u64>,
    /// Milliseconds over which the cluster watches which node client requests enter through;
    /// when one node brings two thirds of them, leadership moves to it, so its clients' requests
    /// need no forwarding (default 2000; 0 leaves leadership where elections put it).
    #[arg(long, env = "PPDB_FOLLOW_CLIENTS_MS")]
    pub follow_clients_ms: Option<u64>,
    /// Most bytes of keys and values this node's shards may hold before writes that need
    /// memory are refused with -OOM, as Redis's maxmemory: bytes, or e.g. 100mb, 1gb (default
    /// 0: no limit). CONFIG SET maxmemory changes it while the node runs.
    #[arg(long, env = "PPDB_MAXMEMORY", value_parser = crate::config::parse_memory_bytes)]
    pub maxmemory: Option<u64>,
    /// What happens over maxmemory: only `noeviction` (refuse the writes, evict nothing).
    #[arg(long, env = "PPDB_MAXMEMORY_POLICY")]
    pub maxmemory_policy: Option<crate::config::MaxMemoryPolicy>,
    /// The `default` user's password, as Redis's requirepass.
    #[arg(long, env = "PPDB_REQUIREPASS", hide_env_values = true)]
    pub requirepass: Option<String>,
    /// An ACL file in Redis's syntax, loaded at start and proposed to the cluster.
    #[arg(long, env = "PPDB_ACLFILE")]
    pub aclfile: Option<PathBuf>,
    /// Serve clients on a non-loopback address without a password or ACL file (and memcached,
    /// which has no authentication, on one).
    #[arg(long, env = "PPDB_INSECURE")]
    pub insecure: bool,
    /// The token the admin endpoints that change the cluster require.
    #[arg(long, env = "PPDB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, env = "PPDB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Number of data shards when bootstrapping (default 1; transactions spanning shards
    /// commit by two-phase commit).
    #[arg(long, env = "PPDB_SHARDS")]
    pub shards: Option<u32>,
    /// Replicas of each data shard when bootstrapping (default 3): a cluster of more nodes
    /// spreads the shards over them, so each node holds a part of the data.
    #[arg(long, env = "PPDB_REPLICAS")]
    pub replicas: Option<u32>,
    /// Leader heartbeat interval in milliseconds (default 100).
    #[arg(long, env = "PPDB_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Election timeout in milliseconds (default 1000); at least 3 heartbeat intervals.
    #[arg(long, env = "PPDB_ELECTION_TIMEOUT_MS")]
    pub election_timeout_ms: Option<u64>,
    /// Threads that run the node's network and Raft work (default: this node's share of the
    /// CPUs, shared with the members of --bootstrap on the same machine; all of them for a node
    /// alone on its machine). With 1, the thread that starts the node runs all of it.
    #[arg(long, env = "PPDB_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    /// Run the node's threads under Linux's SCHED_BATCH policy (default true): a thread that
    /// wakes waits for the running one's time slice instead of preempting it, which saves
    /// context switches in the middle of the node's rounds (no privilege needed, nice level
    /// unchanged). `false` keeps the system's default policy.
    #[arg(long, env = "PPDB_BATCH_SCHEDULING")]
    pub batch_scheduling: Option<bool>,
    /// Limits on client connections.
    #[command(flatten)]
    pub clients: ClientFlags,
    /// TLS and join flags.
    #[command(flatten)]
    pub security: tls::SecurityFlags,
}

/// Flags of `ppdb start` for the limits on client connections (the `[clients]` section).
#[derive(Debug, Args)]
pub struct ClientFlags {
    /// Most clients connected at once (Redis's maxclients; default 10000).
    #[arg(long, env = "PPDB_MAXCLIENTS")]
    pub maxclients: Option<u64>,
    /// Seconds a client may stay idle before it is closed (Redis's timeout; default 0: never).
    #[arg(long, env = "PPDB_CLIENT_IDLE_TIMEOUT_S")]
    pub client_idle_timeout_s: Option<u64>,
    /// Seconds a client may leave its replies unread before it is closed (default 60; 0 never).
    #[arg(long, env = "PPDB_CLIENT_WRITE_TIMEOUT_S")]
    pub client_write_timeout_s: Option<u64>,
    /// Most bytes of one request not yet run (Redis's client-query-buffer-limit; 1gb, 64mb, ...).
    #[arg(long, env = "PPDB_CLIENT_QUERY_BUFFER_LIMIT", value_parser = parse_memory_flag)]
    pub client_query_buffer_limit: Option<u64>,
    /// Unsent reply bytes per client: "HARD SOFT SOFT_SECONDS" (Redis's
    /// client-output-buffer-limit normal class), e.g. "256mb 64mb 60"; 0 disables a limit.
    #[arg(long, env = "PPDB_CLIENT_OUTPUT_BUFFER_LIMIT", value_parser = parse_output_limit_flag)]
    pub client_output_buffer_limit: Option<OutputBufferLimit>,
}

fn parse_memory_flag(text: &str) -> Result<u64, String> {
    parse_memory(text)
        .ok_or_else(|| format!("`{text}` is not a memory value (bytes, or 64kb, 1mb, 1gb, ...)"))
}

fn parse_output_limit_flag(text: &str) -> Result<OutputBufferLimit, String> {
    OutputBufferLimit::parse(text).map_err(|e| e.to_string())
}

impl ClientFlags {
    /// Puts the flags given over `config`.
    fn apply(self, config: &mut ClientConfig) {
        if let Some(n) = self.maxclients {
            config.maxclients = n;
        }
        if let Some(s) = self.client_idle_timeout_s {
            config.idle_timeout_s = s;
        }
        if let Some(s) = self.client_write_timeout_s {
            config.write_timeout_s = s;
        }
        if let Some(bytes) = self.client_query_buffer_limit {
            config.query_buffer_bytes_max = bytes;
        }
        if let Some(limit) = self.client_output_buffer_limit {
            config.output_buffer_hard_bytes = limit.hard_bytes;
            config.output_buffer_soft_bytes = limit.soft_bytes;
            config.output_buffer_soft_s = limit.soft_s;
        }
    }
}

/// Parses `1=host:port,2=host:port` into a member map.
pub fn parse_members(list: &str) -> Result<BTreeMap<u64, SocketAddr>, String> {
    let mut members = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) =
            item.split_once('=').ok_or_else(|| format!("--bootstrap: `{item}` is not ID=HOST:PORT"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("--bootstrap: `{id}` is not a node id"))?;
        let addr = resolve(addr.trim()).map_err(|e| format!("--bootstrap: {e}"))?;
        if members.insert(id, addr).is_some() {
            return Err(format!("--bootstrap: node {id} is listed twice"));
        }
    }
    if members.is_empty() {
        return Err("--bootstrap: the member list is empty".into());
    }
    Ok(members)
}

/// Resolves `HOST:PORT` to one socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{addr}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{addr}` resolves to no address"))
}

impl StartArgs {
    /// The node configuration: file, then environment and flags on top, validated.
    pub fn into_config(self) -> Result<NodeConfig, String> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
                NodeConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => NodeConfig::default(),
        };
        if let Some(id) = self.id {
            config.peer.node_id = id;
            if self.dir.is_none() && self.config.is_none() {
                config.data_dir = PathBuf::from(format!("ppdb-data/node-{id}"));
            }
        }
        if let Some(dir) = self.dir {
            config.data_dir = dir;
        }
        if let Some(peer) = self.peer_addr {
            let (host, port) =
                peer.rsplit_once(':').ok_or_else(|| format!("--peer-addr `{peer}` is not HOST:PORT"))?;
            config.peer.host = host.to_string();
            config.peer.port = port.parse().map_err(|_| format!("--peer-addr: `{port}` is not a port"))?;
        }
        if let Some(addr) = self.client_addr {
            config.client_addr = addr;
        }
        if let Some(addr) = self.admin_addr {
            config.admin_addr = addr;
        }
        if let Some(addr) = self.memcached_addr {
            config.memcached_addr = Some(addr);
        }
        if let Some(bytes) = self.memcached_item_size_max {
            config.memcached_item_bytes_max = bytes;
        }
        if let Some(cluster) = self.cluster_id {
            config.peer.cluster_id = cluster;
        }
        if let Some(list) = self.bootstrap {
            config.bootstrap = parse_members(&list)?;
        }
        if let Some(join) = self.join {
            config.join = Some(resolve(&join).map_err(|e| format!("--join: {e}"))?);
        }
        if let Some(ms) = self.failed_node_timeout_ms {
            config.failed_node_timeout_ms = ms;
        }
        if let Some(ms) = self.follow_clients_ms {
            config.follow_clients_ms = ms;
        }
        if let Some(bytes) = self.maxmemory {
            config.maxmemory = bytes;
        }
        if let Some(policy) = self.maxmemory_policy {
            config.maxmemory_policy = policy;
        }
        if let Some(shards) = self.shards {
            config.shards = shards;
        }
        if let Some(replicas) = self.replicas {
            config.replicas = replicas;
        }
        if let Some(ms) = self.heartbeat_interval_ms {
            config.peer.heartbeat_interval_ms = ms;
        }
        if let Some(ms) = self.election_timeout_ms {
            config.peer.election_timeout_ms = ms;
        }
        if let Some(password) = self.requirepass {
            config.requirepass = Some(password);
        }
        if let Some(path) = self.aclfile {
            config.aclfile = Some(path);
        }
        config.insecure |= self.insecure;
        if let Some(token) = self.admin_token {
            config.admin_token = Some(token);
        }
        self.clients.apply(&mut config.clients);
        self.security.apply(&mut config);
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// Runs one node until Ctrl-C or SIGTERM.
pub fn run(args: StartArgs) -> Result<(), String> {
    let threads_flag = args.worker_threads.map(usize::from);
    let batch_scheduling = args.batch_scheduling.unwrap_or(true);
    let config = args.into_config()?;
    let worker_threads = threads_flag.unwrap_or_else(|| worker_threads_default(&config));
    if batch_scheduling {
        // Before the runtime starts: its threads (and the WAL's) inherit the policy.
        match super::scheduling::use_batch_policy() {
            Ok(()) => tracing::debug!("node threads run under SCHED_BATCH"),
            Err(e) => tracing::warn!(error = %e, "cannot use the SCHED_BATCH policy; keeping the default"),
        }
    }
    keep_freed_memory_mapped();
    let runtime =
        async_runtime(worker_threads).map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(crate::server::run_node(config)).map_err(|e| e.to_string())
}

/// The environment variable that sets mimalloc's purge delay (read when a process starts).
const ALLOCATOR_PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// How long, in milliseconds, the node's allocator keeps freed memory mapped before returning
/// it to the OS, unless the user set [`ALLOCATOR_PURGE_DELAY_VAR`]. mimalloc's default (1 s) is
/// shorter than the time between two snapshots of a busy shard, so every snapshot buffer and
/// every stretch of the in-memory log came back as fresh pages the kernel must zero first; kept
/// 10 s, they are reused, and memory still goes back 10 s after the load stops (64 clients
/// spread: +2.5% writes/s, 3.5% less server CPU per write).
const ALLOCATOR_PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t` of mimalloc.h, the same in
/// versions 2 and 3), which the bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's purge delay to [`ALLOCATOR_PURGE_DELAY_MS`] unless the environment
/// chose one. mimalloc reads the option each time it considers purging, so setting it before
/// the runtime starts covers the node's whole life.
fn keep_freed_memory_mapped() {
    if std::env::var_os(ALLOCATOR_PURGE_DELAY_VAR).is_some() {
        return;
    }
    // SAFETY: mi_option_set stores a value in mimalloc's option table; the index is in range
    // (checked by mimalloc too) and no memory of ours is passed.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS) };
}

/// Worker threads when `--worker-threads` is not given: this node's share of the machine's
/// CPUs, at least one. The nodes of the bootstrap list that run on this machine (on loopback
/// like this node, or at its IP address) share them, and threads beyond a node's share only
/// add hand-offs between them (measured on 2 CPUs, 3 nodes: one worker each gave 27.7k
/// writes/s at 64 clients against 25.4k with two). A node alone on its machine gets them all.
fn worker_threads_default(config: &NodeConfig) -> usize {
    (cpu_count() / members_on_this_machine(config)).max(1)
}

/// How many founding members, this node included, run on this machine, as far as the
/// bootstrap list tells (1 without a list: a restart or a join).
fn members_on_this_machine(config: &NodeConfig) -> usize {
    let Ok(own) = config.peer_addr() else { return 1 };
    let here =
        |addr: &SocketAddr| addr.ip() == own.ip() || (addr.ip().is_loopback() && own.ip().is_loopback());
    config.bootstrap.values().filter(|addr| here(addr)).count().max(1)
}

/// The node's async runtime. One worker thread means a current-thread runtime: the thread that
/// starts the node runs every task itself, without the work-stealing scheduler's queues and
/// cross-thread wake-ups, which on the reference machine (2 CPUs, `ppdb local`: one thread per
/// node) wrote 44.2-45.2k ops/s at 64 clients against 41.2-42.0k with a one-worker
/// multi-thread runtime.
fn async_runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(worker_threads).enable_all().build()
    }
}

/// The CPUs this process may use (1 if the system cannot say).
fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_thread_runs_the_node_on_a_current_thread_runtime() {
        use tokio::runtime::RuntimeFlavor;
        assert_eq!(async_runtime(1).unwrap().handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        assert_eq!(async_runtime(2).unwrap().handle().runtime_flavor(), RuntimeFlavor::MultiThread);
    }

    #[test]
    fn nodes_sharing_a_machine_share_its_cpus_and_a_lone_node_takes_them_all() {
        let config = |own: &str, members: &str| NodeConfig {
            peer: crate::config::PeerConfig {
                host: own.into(),
                port: 7101,
                ..crate::config::PeerConfig::default()
            },
            bootstrap: parse_members(members).unwrap(),
            ..NodeConfig::default()
        };
        let local = config("127.0.0.1", "1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103");
        assert_eq!(members_on_this_machine(&local), 3);
        assert_eq!(worker_threads_default(&local), (cpu_count() / 3).max(1));
        let spread = config("10.0.0.1", "1=10.0.0.1:7101,2=10.0.0.2:7101,3=10.0.0.3:7101");
        assert_eq!(members_on_this_machine(&spread), 1);
        assert_eq!(worker_threads_default(&spread), cpu_count());
        assert_eq!(members_on_this_machine(&NodeConfig::default()), 1, "a restart or a join");
    }

    #[test]
    fn the_allocator_keeps_freed_memory_ten_seconds_unless_the_user_chose() {
        keep_freed_memory_mapped();
        // SAFETY: reads one option of mimalloc's option table.
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        match std::env::var(ALLOCATOR_PURGE_DELAY_VAR) {
            Err(_) => assert_eq!(delay, ALLOCATOR_PURGE_DELAY_MS),
            Ok(chosen) => assert_eq!(delay.to_string(), chosen),
        }
    }

    #[test]
    fn member_lists_parse_and_errors_say_why() {
        let m = parse_members("1=127.0.0.1:7101, 2=127.0.0.1:7102").unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_members("1=127.0.0.1:7101,1=127.0.0.1:7102").unwrap_err().contains("twice"));
        assert!(parse_members("x=127.0.0.1:1").unwrap_err().contains("not a node id"));
        assert!(parse_members("127.0.0.1:1").unwrap_err().contains("ID=HOST:PORT"));
    }
}
