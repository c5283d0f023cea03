//! `ppdb local`: a whole cluster on this machine, one child process per node, on loopback.
//!
//! The command is the nodes' supervisor, as a process manager would be for a real cluster: a
//! node that dies (a crash, or `kill -9` by a user trying out a failover) is reported, with its
//! exit status and the last lines of its log, and started again after a short pause, while the
//! other nodes go on serving. Only Ctrl-C or SIGTERM stops them all. What would keep the
//! cluster from starting at all (a port in use, the data directory held by another process) is
//! checked before any node starts, and reported with the flag that fixes it.

mod secure;

use crate::storage::lock::DataDirLock;
use crate::storage::StorageError;
use clap::Args;
use secure::LocalSecurity;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the supervisor looks at its nodes and at the stop signal.
const SUPERVISION_INTERVAL: Duration = Duration::from_millis(100);
/// Pause before a node that died is started again: long enough to watch the others elect a
/// new leader, short enough to watch it catch up soon after.
const RESTART_DELAY_MIN: Duration = Duration::from_secs(1);
/// Longest pause between restarts of a node that keeps dying (the pause doubles each time).
const RESTART_DELAY_MAX: Duration = Duration::from_secs(30);
/// A node that ran at least this long before dying is restarted after the shortest pause again.
const STABLE_RUN: Duration = Duration::from_secs(10);
/// Lines of a dead node's log shown with the report of its death.
const LOG_TAIL_LINES: usize = 5;
/// Bytes read from the end of a dead node's log to find those lines.
const LOG_TAIL_BYTES_MAX: u64 = 8 * 1024;
/// How long stopping waits for the nodes to exit after SIGTERM before killing them.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Flags of `ppdb local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Node i listens for clients on BASE+i, for peers on BASE+100+i, for admin HTTP on
    /// BASE+200+i, and for memcached clients on BASE+4210+i (11211 for node 1 by default,
    /// memcached's own port).
    #[arg(long, default_value_t = 7000)]
    pub base_port: u16,
    /// Number of nodes (an odd number tolerates (n-1)/2 failures).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Parent directory of the nodes' data directories (node-1, node-2, ...) and logs.
    #[arg(long, default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Number of data shards (default 1). Multi-key commands and transactions are atomic
    /// either way; with more shards, those spanning shards commit by two-phase commit
    /// (docs/transactions.md).
    #[arg(long, default_value_t = crate::config::SHARDS_DEFAULT)]
    pub shards: u32,
    /// Replicas of each shard (default 3). With more nodes than replicas, each node holds
    /// only some shards.
    #[arg(long, default_value_t = crate::config::REPLICAS_DEFAULT)]
    pub replicas: u32,
    /// TLS on every port (client, memcached, peer, and HTTPS on the admin port), from a
    /// throwaway CA and certificates generated into DIR/tls at each start (peers authenticate
    /// each other with them).
    #[arg(long)]
    pub tls: bool,
}

struct NodePorts {
    id: u64,
    client: u16,
    peer: u16,
    admin: u16,
    memcached: u16,
}

/// Where node i's memcached port is past the base port: node 1 on memcached's 11211 with the
/// default base port 7000.
const MEMCACHED_PORT_OFFSET: u64 = 4210;

impl NodePorts {
    /// The node's listeners: what each port is for, and the port.
    fn listeners(&self) -> [(&'static str, u16); 4] {
        [("client", self.client), ("peer", self.peer), ("admin", self.admin), ("memcached", self.memcached)]
    }
}

fn ports(args: &LocalArgs) -> Result<Vec<NodePorts>, String> {
    (1..=args.nodes)
        .map(|id| {
            let offset = |extra: u64| {
                u16::try_from(u64::from(args.base_port) + extra + id).map_err(|_| {
                    format!("--base-port {} leaves no room for node {id}'s ports", args.base_port)
                })
            };
            Ok(NodePorts {
                id,
                client: offset(0)?,
                peer: offset(100)?,
                admin: offset(200)?,
                memcached: offset(MEMCACHED_PORT_OFFSET)?,
            })
        })
        .collect()
}

/// Node `id`'s data directory.
fn node_dir(args: &LocalArgs, id: u64) -> PathBuf {
    args.dir.join(format!("node-{id}"))
}

/// Node `id`'s log file (its stderr).
fn node_log(args: &LocalArgs, id: u64) -> PathBuf {
    args.dir.join(format!("node-{id}.log"))
}

/// Locks the cluster's directory for this `ppdb local` (held until it exits, so a second one
/// on the same directory is refused even while a node of the first is down), and checks that
/// no other process holds a node's directory (a `ppdb start` run by hand on it).
fn lock_directories(args: &LocalArgs, nodes: &[NodePorts]) -> Result<DataDirLock, String> {
    let held_by_another = |error: StorageError| match error {
        StorageError::DataDirLocked { dir, holder_pid, .. } => format!(
            "the data directory {} is in use by another ppdb process{} (another `ppdb local`, or a \
             node started on it); stop that process, or give this cluster another directory with \
             --dir",
            dir.display(),
            holder_pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
        ),
        other => other.to_string(),
    };
    let cluster = DataDirLock::acquire(&args.dir).map_err(held_by_another)?;
    for node in nodes {
        // Taken and let go at once: the node takes it itself when it starts.
        drop(DataDirLock::acquire(&node_dir(args, node.id)).map_err(held_by_another)?);
    }
    Ok(cluster)
}

/// Checks that every port the nodes will listen on is free, naming the first that is not.
fn check_ports_free(args: &LocalArgs, nodes: &[NodePorts]) -> Result<(), String> {
    for node in nodes {
        for (purpose, port) in node.listeners() {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if let Err(e) = TcpListener::bind(addr) {
                let why = match e.kind() {
                    std::io::ErrorKind::AddrInUse => "is in use by another program".to_string(),
                    _ => format!("cannot be listened on ({e})"),
                };
                return Err(format!(
                    "port {port} (node {}'s {purpose} port, {addr}) {why}; choose other ports with \
                     --base-port (node i uses BASE+i, BASE+100+i and BASE+200+i; now BASE is {})",
                    node.id, args.base_port
                ));
            }
        }
    }
    Ok(())
}

fn spawn_node(
    exe: &Path,
    args: &LocalArgs,
    node: &NodePorts,
    members: &str,
    security: &LocalSecurity,
) -> Result<Child, String> {
    let dir = node_dir(args, node.id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log_path = node_log(args, node.id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    // In a process group of its own: Ctrl-C in the terminal reaches only the supervisor, which
    // then stops every node, instead of racing the nodes' own exits (reported as deaths).
    let mut command = node_command(exe, args, node, members, &dir);
    security.configure(&mut command, node.id);
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start node {}: {e}", node.id))
}

/// The `ppdb start` command of one node of the local cluster. Worker threads and the
/// allocator's settings are `ppdb start`'s own defaults, which already share the machine
/// between the nodes of a cluster running on it.
fn node_command(exe: &Path, args: &LocalArgs, node: &NodePorts, members: &str, dir: &Path) -> Command {
    let mut command = Command::new(exe);
    command
        .arg("start")
        .args(["--id", &node.id.to_string()])
        .arg("--dir")
        .arg(dir)
        .args(["--peer-addr", &format!("127.0.0.1:{}", node.peer)])
        .args(["--client-addr", &format!("127.0.0.1:{}", node.client)])
        .args(["--admin-addr", &format!("127.0.0.1:{}", node.admin)])
        .args(["--memcached-addr", &format!("127.0.0.1:{}", node.memcached)])
        .args(["--cluster-id", "local"])
        .args(["--shards", &args.shards.to_string()])
        .args(["--replicas", &args.replicas.to_string()])
        .args(["--bootstrap", members]);
    // In the environment, not the arguments, so `ps` does not show it.
    if let Ok(token) = std::fs::read_to_string(args.dir.join(ADMIN_TOKEN_FILE)) {
        command.env("PPDB_ADMIN_TOKEN", token.trim());
    }
    command
}

/// The folder `ppdb local` keeps its cluster in unless told otherwise, where `ppdb cluster`
/// looks for the admin token and the CA certificate when given none.
pub const DEFAULT_DIR: &str = "ppdb-data";
/// The folder of the cluster's certificates (`ppdb local --tls`), inside its directory.
pub const TLS_DIR: &str = "tls";

/// The file in the data folder holding the cluster's admin token, which `ppdb local` makes
/// and `ppdb cluster` reads when given none.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The admin token in `dir`, made (256 random bits, hex, readable by the owner only) if there
/// is none yet.
fn ensure_admin_token(dir: &Path) -> Result<(), String> {
    use rand::RngCore;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(ADMIN_TOKEN_FILE);
    if path.exists() {
        return Ok(());
    }
    let mut random = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut random);
    let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(token.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Starts the nodes, prints how to reach them, and keeps them running until Ctrl-C.
pub fn run(args: LocalArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ppdb executable: {e}"))?;
    let nodes = ports(&args)?;
    let members: Vec<String> = nodes.iter().map(|n| format!("{}=127.0.0.1:{}", n.id, n.peer)).collect();
    let members = members.join(",");
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let _cluster_lock = lock_directories(&args, &nodes)?;
    ensure_admin_token(&args.dir)?;
    check_ports_free(&args, &nodes)?;
    let ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    let security = LocalSecurity::prepare(&args.dir, &ids, args.tls)?;
    let stop = stop_requested()?;
    let mut supervised = Vec::new();
    for node in nodes {
        match spawn_node(&exe, &args, &node, &members, &security) {
            Ok(child) => supervised.push(SupervisedNode::running(node, child)),
            Err(e) => {
                stop_all(&mut supervised);
                return Err(e);
            }
        }
    }
    println!("PPDB local cluster: {} nodes, data and logs in {}", supervised.len(), args.dir.display());
    for node in supervised.iter().map(|s| &s.ports) {
        println!(
            "  node {}: redis on 127.0.0.1:{}  memcached on 127.0.0.1:{}  peers on 127.0.0.1:{}  admin \
             {}",
            node.id,
            node.client,
            node.memcached,
            node.peer,
            security.admin_url(node.admin, "/status")
        );
    }
    println!(
        "Try: {}    (a node that dies is restarted; Ctrl-C stops the cluster)",
        security.redis_cli(supervised[0].ports.client)
    );
    println!("     {}", security.curl(supervised[0].ports.admin, "/status"));
    if !args.tls {
        println!(
            "Join another node with: ppdb start --join 127.0.0.1:{} --join-token $(cat {})",
            supervised[0].ports.peer,
            args.dir.join(crate::node::join_credential::JOIN_TOKEN_FILE).display()
        );
    }
    while !stop.load(Ordering::SeqCst) {
        for node in &mut supervised {
            node.supervise(&exe, &args, &members, &security);
        }
        std::thread::sleep(SUPERVISION_INTERVAL);
    }
    println!("stopping the cluster...");
    stop_all(&mut supervised);
    Ok(())
}

/// A flag raised by Ctrl-C or SIGTERM, watched from a thread of its own.
fn stop_requested() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal handler: {e}"))?;
    std::thread::spawn(move || {
        runtime.block_on(crate::shutdown::signal());
        flag.store(true, Ordering::SeqCst);
    });
    Ok(stop)
}

/// One node under supervision: its process while it runs, or when it is due to start again.
struct SupervisedNode {
    ports: NodePorts,
    child: Option<Child>,
    started: Instant,
    /// When a dead node is started again.
    restart_at: Option<Instant>,
    /// The pause before the last restart; doubles while the node keeps dying quickly.
    restart_delay: Duration,
}

impl SupervisedNode {
    fn running(ports: NodePorts, child: Child) -> SupervisedNode {
        SupervisedNode {
            ports,
            child: Some(child),
            started: Instant::now(),
            restart_at: None,
            restart_delay: Duration::ZERO,
        }
    }

    /// Reports the node's death and schedules its restart, or restarts it when it is due.
    fn supervise(&mut self, exe: &Path, args: &LocalArgs, members: &str, security: &LocalSecurity) {
        let id = self.ports.id;
        if let Some(child) = self.child.as_mut() {
            let Ok(Some(status)) = child.try_wait() else { return };
            self.child = None;
            self.schedule_restart();
            eprintln!("{}", death_report(id, status, &node_log(args, id), self.restart_delay));
            return;
        }
        if self.restart_at.is_some_and(|at| Instant::now() >= at) {
            match spawn_node(exe, args, &self.ports, members, security) {
                Ok(child) => {
                    eprintln!("node {id} restarted (pid {})", child.id());
                    self.child = Some(child);
                    self.started = Instant::now();
                    self.restart_at = None;
                }
                Err(e) => {
                    self.schedule_restart();
                    eprintln!("{e}; trying again in {:?}", self.restart_delay);
                }
            }
        }
    }

    /// The next restart: after the shortest pause if the node had been running for a while,
    /// after twice the last pause (up to a limit) if it died soon after starting.
    fn schedule_restart(&mut self) {
        self.restart_delay = next_restart_delay(self.restart_delay, self.started.elapsed());
        self.restart_at = Some(Instant::now() + self.restart_delay);
    }
}

/// The pause before restarting a node that ran for `ran` after the previous pause `previous`.
fn next_restart_delay(previous: Duration, ran: Duration) -> Duration {
    if ran >= STABLE_RUN || previous.is_zero() {
        RESTART_DELAY_MIN
    } else {
        (previous * 2).min(RESTART_DELAY_MAX)
    }
}

/// What the user reads when a node dies: which node, why, the end of its log, and when it
/// comes back.
fn death_report(id: u64, status: ExitStatus, log: &Path, restart_in: Duration) -> String {
    let mut report = format!("node {id} died: {}", exit_cause(status));
    let tail = log_tail(log, LOG_TAIL_LINES);
    if tail.is_empty() {
        report.push_str(&format!("; its log is {}", log.display()));
    } else {
        report.push_str(&format!("; last lines of {}:", log.display()));
        for line in tail {
            report.push_str("\n    ");
            report.push_str(&line);
        }
    }
    report.push_str(&format!("\nrestarting node {id} in {restart_in:?}; the other nodes go on serving"));
    report
}

/// Why a process ended: its exit code, or the signal that killed it, by name.
fn exit_cause(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    let Some(signal) = status.signal() else {
        return status.to_string();
    };
    let name = match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        _ => "",
    };
    let core = if status.core_dumped() { ", core dumped" } else { "" };
    if name.is_empty() {
        format!("killed by signal {signal}{core}")
    } else {
        format!("killed by signal {signal} ({name}){core}")
    }
}

/// The last `count` non-empty lines of the file at `path` (none if it cannot be read).
fn log_tail(path: &Path, count: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::new();
    let read = file
        .seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES_MAX)))
        .and_then(|_| file.take(LOG_TAIL_BYTES_MAX).read_to_end(&mut bytes));
    if read.is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].iter().map(|line| line.to_string()).collect()
}

/// Asks every running node to stop (SIGTERM), then waits; nodes still running after
/// [`STOP_GRACE`] are killed.
fn stop_all(nodes: &mut [SupervisedNode]) {
    for child in nodes.iter().filter_map(|n| n.child.as_ref()) {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    for node in nodes.iter_mut() {
        let Some(child) = node.child.as_mut() else { continue };
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!("node {} did not stop in time; killing it", node.ports.id);
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::process::ExitStatusExt;

    fn args(dir: &Path, base_port: u16) -> LocalArgs {
        LocalArgs { base_port, nodes: 3, dir: dir.to_path_buf(), shards: 1, replicas: 3, tls: false }
    }

    #[test]
    fn nodes_run_with_start_defaults_and_the_chosen_shards() {
        let args = args(Path::new("data"), 7000);
        let node = NodePorts { id: 2, client: 7002, peer: 7102, admin: 7202, memcached: 11212 };
        let command = node_command(Path::new("ppdb"), &args, &node, "1=a,2=b,3=c", Path::new("data/node-2"));
        assert_eq!(command.get_envs().count(), 0, "settings are ppdb start's defaults, not the supervisor's");
        let argv: Vec<_> = command.get_args().collect();
        assert!(argv.windows(2).any(|w| w == [OsStr::new("--shards"), OsStr::new("1")]), "{argv:?}");
        assert!(!argv.contains(&OsStr::new("--worker-threads")), "{argv:?}");
        let memcached = [OsStr::new("--memcached-addr"), OsStr::new("127.0.0.1:11212")];
        assert!(argv.windows(2).any(|w| w == memcached), "{argv:?}");
    }

    #[test]
    fn memcached_is_on_its_own_port_for_node_one_and_moves_with_the_base_port() {
        let ports = |base| {
            ports(&args(Path::new("d"), base)).unwrap().iter().map(|n| n.memcached).collect::<Vec<_>>()
        };
        assert_eq!(ports(7000), [11211, 11212, 11213]);
        assert_eq!(ports(8000), [12211, 12212, 12213]);
    }

    #[test]
    fn a_node_that_keeps_dying_waits_longer_each_time_up_to_a_limit() {
        let quick = Duration::from_millis(300);
        assert_eq!(next_restart_delay(Duration::ZERO, quick), RESTART_DELAY_MIN);
        assert_eq!(next_restart_delay(RESTART_DELAY_MIN, quick), RESTART_DELAY_MIN * 2);
        assert_eq!(next_restart_delay(RESTART_DELAY_MAX, quick), RESTART_DELAY_MAX);
        assert_eq!(next_restart_delay(RESTART_DELAY_MAX, STABLE_RUN), RESTART_DELAY_MIN);
    }

    #[test]
    fn a_death_report_names_the_signal_and_ends_with_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("node-3.log");
        let lines: Vec<String> = (1..=8).map(|i| format!("line {i}")).collect();
        std::fs::write(&log, lines.join("\n") + "\n\n").unwrap();
        let report = death_report(3, ExitStatus::from_raw(libc::SIGKILL), &log, RESTART_DELAY_MIN);
        assert!(report.starts_with("node 3 died: killed by signal 9 (SIGKILL); last lines of"), "{report}");
        assert!(report.contains("line 4\n    line 5") && !report.contains("line 3"), "{report}");
        assert!(report.contains("restarting node 3 in 1s"), "{report}");
        let missing =
            death_report(1, ExitStatus::from_raw(2 << 8), &tmp.path().join("none"), RESTART_DELAY_MIN);
        assert!(missing.starts_with("node 1 died: exited with status 2; its log is"), "{missing}");
    }

    #[test]
    fn a_port_in_use_is_named_before_anything_starts() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // Node 1's admin port is the taken one.
        let Some(base) = port.checked_sub(201) else { return };
        let tmp = tempfile::tempdir().unwrap();
        let args = args(tmp.path(), base);
        let nodes = ports(&args).unwrap();
        let error = check_ports_free(&args, &nodes).unwrap_err();
        assert!(error.starts_with(&format!("port {port} (node 1's admin port")), "{error}");
        assert!(error.contains("--base-port"), "{error}");
    }

    #[test]
    fn a_directory_held_by_another_process_is_named_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let args = args(tmp.path(), 7000);
        let nodes = ports(&args).unwrap();
        let held = DataDirLock::acquire(&node_dir(&args, 2)).unwrap();
        let error = lock_directories(&args, &nodes).unwrap_err();
        assert!(error.contains(&node_dir(&args, 2).display().to_string()), "{error}");
        assert!(error.contains("--dir"), "{error}");
        drop(held);
        let _cluster = lock_directories(&args, &nodes).unwrap();
        let error = lock_directories(&args, &nodes).unwrap_err();
        assert!(error.contains(&format!("{} is in use", tmp.path().display())), "{error}");
    }
}
