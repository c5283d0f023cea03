//! `ppdb local`: a whole cluster on this machine, one child process per node, on loopback.

use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Flags of `ppdb local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Node i listens for clients on BASE+i, for peers on BASE+100+i, for admin HTTP on BASE+200+i.
    #[arg(long, default_value_t = 7000)]
    pub base_port: u16,
    /// Number of nodes (an odd number tolerates (n-1)/2 failures).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Parent directory of the nodes' data directories (node-1, node-2, ...) and logs.
    #[arg(long, default_value = "ppdb-data")]
    pub dir: PathBuf,
    /// Number of data shards (default 1: every multi-key command and transaction is atomic;
    /// with more, those spanning shards are refused or applied per shard, see README).
    #[arg(long, default_value_t = crate::config::SHARDS_DEFAULT)]
    pub shards: u32,
}

struct NodePorts {
    id: u64,
    client: u16,
    peer: u16,
    admin: u16,
}

fn ports(args: &LocalArgs) -> Result<Vec<NodePorts>, String> {
    (1..=args.nodes)
        .map(|id| {
            let offset = |extra: u64| {
                u16::try_from(u64::from(args.base_port) + extra + id).map_err(|_| {
                    format!("--base-port {} leaves no room for node {id}'s ports", args.base_port)
                })
            };
            Ok(NodePorts { id, client: offset(0)?, peer: offset(100)?, admin: offset(200)? })
        })
        .collect()
}

fn spawn_node(exe: &Path, args: &LocalArgs, node: &NodePorts, members: &str) -> Result<Child, String> {
    let dir = args.dir.join(format!("node-{}", node.id));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log_path = args.dir.join(format!("node-{}.log", node.id));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    node_command(exe, args, node, members, &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start node {}: {e}", node.id))
}

/// The environment variable that sets mimalloc's purge delay (read when a process starts).
const ALLOCATOR_PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// How long, in milliseconds, the nodes' allocator keeps freed memory mapped before returning it
/// to the OS, unless the user set [`ALLOCATOR_PURGE_DELAY_VAR`]. mimalloc's default (1 s) is
/// shorter than the time between two snapshots of a busy shard, so every snapshot buffer and
/// every stretch of the in-memory log came back as fresh pages the kernel must zero first; kept
/// 10 s, they are reused, and memory still goes back 10 s after the load stops (64 clients
/// spread: +2.5% writes/s, 3.5% less server CPU per write).
const ALLOCATOR_PURGE_DELAY_MS: &str = "10000";

/// The `ppdb start` command of one node of the local cluster.
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
        .args(["--cluster-id", "local"])
        .args(["--shards", &args.shards.to_string()])
        .args(["--bootstrap", members])
        .args(["--worker-threads", &worker_threads_per_node(args.nodes).to_string()]);
    if std::env::var_os(ALLOCATOR_PURGE_DELAY_VAR).is_none() {
        command.env(ALLOCATOR_PURGE_DELAY_VAR, ALLOCATOR_PURGE_DELAY_MS);
    }
    command
}

/// Each node's share of the machine's CPUs, at least one thread: the nodes share the machine,
/// and threads beyond a node's share only add hand-offs between them (measured on 2 CPUs, 3
/// nodes: one worker each gave 27.7k writes/s at 64 clients against 25.4k with two).
fn worker_threads_per_node(nodes: u64) -> usize {
    (super::start::cpu_count() / usize::try_from(nodes).unwrap_or(1).max(1)).max(1)
}

/// Starts the nodes, prints how to reach them, and waits for Ctrl-C (or a node's exit).
pub fn run(args: LocalArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ppdb executable: {e}"))?;
    let nodes = ports(&args)?;
    let members: Vec<String> = nodes.iter().map(|n| format!("{}=127.0.0.1:{}", n.id, n.peer)).collect();
    let members = members.join(",");
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let mut children = Vec::new();
    for node in &nodes {
        match spawn_node(&exe, &args, node, &members) {
            Ok(child) => children.push((node.id, child)),
            Err(e) => {
                stop_all(&mut children);
                return Err(e);
            }
        }
    }
    println!("PPDB local cluster: {} nodes, data and logs in {}", nodes.len(), args.dir.display());
    for node in &nodes {
        println!(
            "  node {}: redis on 127.0.0.1:{}  peers on 127.0.0.1:{}  admin http://127.0.0.1:{}/status",
            node.id, node.client, node.peer, node.admin
        );
    }
    println!("Try: redis-cli -p {}    (Ctrl-C stops the cluster)", nodes[0].client);
    let result = wait_for_stop(&mut children);
    stop_all(&mut children);
    result
}

/// Waits for Ctrl-C/SIGTERM, or for a node to exit on its own (an error).
fn wait_for_stop(children: &mut [(u64, Child)]) -> Result<(), String> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal handler: {e}"))?;
    let _signals = std::thread::spawn(move || {
        runtime.block_on(crate::shutdown::signal());
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            println!("stopping the cluster...");
            return Ok(());
        }
        for (id, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("node {id} exited ({status}); see its log for why"));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asks every node to stop (SIGTERM), then waits; nodes still running after 10 s are killed.
fn stop_all(children: &mut [(u64, Child)]) {
    for (_, child) in children.iter() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for (id, child) in children.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if std::time::Instant::now() >= deadline => {
                    eprintln!("node {id} did not stop in time; killing it");
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

    #[test]
    fn nodes_keep_freed_memory_mapped_across_snapshots_unless_the_user_chose() {
        let args = LocalArgs { base_port: 7000, nodes: 3, dir: PathBuf::from("data"), shards: 1 };
        let node = NodePorts { id: 2, client: 7002, peer: 7102, admin: 7202 };
        let command = node_command(Path::new("ppdb"), &args, &node, "1=a,2=b,3=c", Path::new("data/node-2"));
        let set: Vec<_> = command.get_envs().filter(|(name, _)| *name == ALLOCATOR_PURGE_DELAY_VAR).collect();
        match std::env::var_os(ALLOCATOR_PURGE_DELAY_VAR) {
            None => assert_eq!(set, [(OsStr::new(ALLOCATOR_PURGE_DELAY_VAR), Some(OsStr::new("10000")))]),
            Some(_) => assert!(set.is_empty(), "the user's setting is inherited, not replaced"),
        }
        let argv: Vec<_> = command.get_args().collect();
        assert!(argv.windows(2).any(|w| w == [OsStr::new("--shards"), OsStr::new("1")]), "{argv:?}");
    }
}
