//! `ppdb local`, the README's first command, as a user runs it: three nodes on loopback from
//! one process, one data shard by default (so multi-key commands and transactions over any keys
//! are atomic), a node killed is restarted while the others serve, Ctrl-C stops every node, and
//! what keeps it from starting (a port in use, a directory in use) is said before its banner.

use crate::support::{error_text, http_get, wait_for, READY_DEADLINE, STOP_DEADLINE};
use redis::Value;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first line of `ppdb local`'s banner, printed once its nodes are started.
const BANNER: &str = "PPDB local cluster:";

/// A base port whose twelve ports (`ppdb local` node i: base+i, base+100+i, base+200+i, and
/// memcached base+4210+i) are free,
/// below the block `support::free_addrs` hands out: a port of that block is free while the test owning
/// it has the node down (killed, restarting), and taking it would keep that node from coming back.
/// Tests of this module run at once: each starts its search elsewhere, so two do not pick the
/// same base before either has bound it.
pub(crate) fn free_base_port() -> u16 {
    const FIRST: u32 = 3_000;
    const LAST: u32 = 9_700;
    static SEARCHES: AtomicU32 = AtomicU32::new(0);
    let start =
        std::process::id().wrapping_mul(7_919).wrapping_add(SEARCHES.fetch_add(1, Ordering::Relaxed) * 1_000);
    (0..LAST - FIRST)
        .map(|step| (FIRST + start.wrapping_add(step) % (LAST - FIRST)) as u16)
        .find(|&base| {
            (1..=3u16).all(|i| {
                [base + i, base + 100 + i, base + 200 + i, base + 4210 + i]
                    .iter()
                    .all(|&port| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok())
            })
        })
        .expect("nine free ports below 10000")
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A connection to the node on `port` once it accepts writes (the shard has a leader).
fn connect_when_writable(port: u16) -> redis::Connection {
    wait_for(READY_DEADLINE, || {
        let client = redis::Client::open(format!("redis://{}/", addr(port))).ok()?;
        let mut c = client.get_connection().ok()?;
        c.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
        let reply: redis::RedisResult<String> = redis::cmd("SET").arg("local:ready").arg("1").query(&mut c);
        reply.ok().map(|_| c)
    })
    .unwrap_or_else(|| panic!("node on port {port} never accepted a write"))
}

#[test]
fn ppdb_local_runs_three_nodes_with_one_atomic_shard_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = free_base_port();
    let mut local = Command::new(env!("CARGO_BIN_EXE_ppdb"))
        .arg("local")
        .args(["--base-port", &base.to_string()])
        .arg("--dir")
        .arg(dir.path().join("ppdb-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ppdb local");
    let mut nodes: Vec<redis::Connection> = (1..=3).map(|i| connect_when_writable(base + i)).collect();

    // Every node serves every key; one data shard besides the meta group.
    let status = http_get(addr(base + 201), "/status").expect("node 1 serves /status");
    let status: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    let shards = status["shards"].as_array().expect("status lists shards");
    assert_eq!(shards.len(), 2, "the meta group and one data shard: {shards:?}");

    // Keys that 8 shards would have spread: MSETNX and a transaction over all of them apply
    // atomically, wherever they are sent.
    let keys: Vec<String> = (0..16).map(|i| format!("local:key:{i}")).collect();
    let mut msetnx = redis::cmd("MSETNX");
    for key in &keys {
        msetnx.arg(key).arg("first");
    }
    let set: i64 = msetnx.query(&mut nodes[1]).unwrap_or_else(|e| panic!("MSETNX: {}", error_text(&e)));
    assert_eq!(set, 1);
    let mut multi = redis::pipe();
    multi.atomic();
    for key in &keys {
        multi.cmd("APPEND").arg(key).arg("+second");
    }
    multi.cmd("DBSIZE");
    let replies: Vec<Value> =
        multi.query(&mut nodes[2]).unwrap_or_else(|e| panic!("EXEC: {}", error_text(&e)));
    assert_eq!(replies.len(), keys.len() + 1);
    assert_eq!(replies.last(), Some(&Value::Int(keys.len() as i64 + 1)), "DBSIZE inside MULTI: {replies:?}");
    let mut mget = redis::cmd("MGET");
    for key in &keys {
        mget.arg(key);
    }
    let values: Vec<String> = mget.query(&mut nodes[0]).expect("MGET");
    assert!(values.iter().all(|v| v == "first+second"), "{values:?}");

    // Ctrl-C stops the cluster: `ppdb local` exits cleanly and no node keeps serving.
    let pid = libc::pid_t::try_from(local.id()).expect("pid fits");
    // SAFETY: sending a signal to our own child process, whose pid we hold.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let exited = wait_for(STOP_DEADLINE, || local.try_wait().ok().flatten());
    let status = exited.unwrap_or_else(|| {
        let _ = local.kill();
        panic!("ppdb local did not stop within {STOP_DEADLINE:?} of Ctrl-C")
    });
    assert!(status.success(), "ppdb local exited with {status}");
    for i in 1..=3 {
        let stopped = wait_for(Duration::from_secs(5), || TcpStream::connect(addr(base + i)).err());
        assert!(stopped.is_some(), "node {i} still accepts clients after Ctrl-C");
    }
}

/// A running `ppdb local` whose stderr is collected; dropping it stops the cluster (SIGTERM),
/// so a failing test leaves no node behind.
pub(crate) struct LocalCluster {
    process: Child,
    stderr: Arc<Mutex<String>>,
}

impl LocalCluster {
    fn start(base: u16, dir: &Path) -> LocalCluster {
        LocalCluster::start_with(base, dir, &[])
    }

    /// `ppdb local` with flags `extra` besides the base port and directory.
    pub(crate) fn start_with(base: u16, dir: &Path, extra: &[&str]) -> LocalCluster {
        let mut process = local_command(base, dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ppdb local");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = process.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock().expect("stderr sink").push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        LocalCluster { process, stderr }
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr sink").clone()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.process.id()).expect("pid fits");
        // SAFETY: sending a signal to our own child process, whose pid we hold.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            self.signal(libc::SIGTERM);
            if wait_for(STOP_DEADLINE, || self.process.try_wait().ok().flatten()).is_none() {
                let _ = self.process.kill();
            }
        }
    }
}

fn local_command(base: u16, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ppdb"));
    command.arg("local").args(["--base-port", &base.to_string()]).arg("--dir").arg(dir).stdin(Stdio::null());
    command
}

/// Runs `ppdb local` that is expected to give up: its output once it exited (it must within
/// the ready deadline).
fn run_to_exit(mut command: Command) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start ppdb local");
    if wait_for(READY_DEADLINE, || child.try_wait().ok().flatten()).is_none() {
        let _ = child.kill();
    }
    child.wait_with_output().expect("ppdb local output")
}

/// The process id of the node serving clients on `port` (INFO's `process_id`).
fn node_pid(connection: &mut redis::Connection) -> Option<u32> {
    let info: String = redis::cmd("INFO").arg("server").query(connection).ok()?;
    info.lines().find_map(|line| line.strip_prefix("process_id:")).and_then(|pid| pid.trim().parse().ok())
}

/// Sets `key` through the node on `port`, retrying through a failover; whether it succeeded.
fn set_eventually(port: u16, key: &str, value: &str) -> bool {
    wait_for(READY_DEADLINE, || {
        let client = redis::Client::open(format!("redis://{}/", addr(port))).ok()?;
        let mut c = client.get_connection().ok()?;
        c.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
        redis::cmd("SET").arg(key).arg(value).query::<String>(&mut c).ok()
    })
    .is_some()
}

#[test]
fn ppdb_local_restarts_a_killed_node_while_the_others_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = free_base_port();
    let mut local = LocalCluster::start(base, &dir.path().join("ppdb-data"));
    let mut node3 = connect_when_writable(base + 3);
    for i in 1..=2 {
        connect_when_writable(base + i);
    }
    let killed = node_pid(&mut node3).expect("node 3 reports its pid");
    let killed_pid = libc::pid_t::try_from(killed).expect("pid fits");
    // SAFETY: a signal to a node process of the cluster this test started.
    assert_eq!(unsafe { libc::kill(killed_pid, libc::SIGKILL) }, 0);

    // The other two nodes go on taking writes (after a new election if node 3 led).
    assert!(set_eventually(base + 1, "local:after-kill:1", "one"), "node 1 stopped serving writes");
    assert!(set_eventually(base + 2, "local:after-kill:2", "two"), "node 2 stopped serving writes");
    let reported = wait_for(READY_DEADLINE, || {
        let text = local.stderr();
        text.contains("node 3 died: killed by signal 9 (SIGKILL)").then_some(text)
    });
    assert!(reported.is_some(), "no report of node 3's death: {}", local.stderr());

    // The supervisor starts node 3 again; it serves, with the writes made while it was down.
    let mut back = wait_for(READY_DEADLINE, || {
        let mut c = connect_when_writable(base + 3);
        node_pid(&mut c).filter(|&pid| pid != killed).map(|_| c)
    })
    .unwrap_or_else(|| panic!("node 3 was not restarted: {}", local.stderr()));
    let value: Option<String> = redis::cmd("GET").arg("local:after-kill:1").query(&mut back).expect("GET");
    assert_eq!(value.as_deref(), Some("one"));
    assert!(local.stderr().contains("node 3 restarted"), "{}", local.stderr());
    assert!(local.process.try_wait().expect("try_wait").is_none(), "ppdb local exited: {}", local.stderr());

    local.signal(libc::SIGTERM);
    let status = wait_for(STOP_DEADLINE, || local.process.try_wait().ok().flatten());
    assert!(status.is_some_and(|s| s.success()), "ppdb local did not stop cleanly on SIGTERM: {status:?}");
}

#[test]
fn ppdb_local_names_a_port_in_use_and_the_flag_that_fixes_it_before_its_banner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = free_base_port();
    let taken = base + 102;
    let _listener = TcpListener::bind(addr(taken)).expect("take node 2's peer port");
    let output = run_to_exit(local_command(base, &dir.path().join("ppdb-data")));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "ppdb local started with a port in use: {stdout}{stderr}");
    assert!(!stdout.contains(BANNER), "the banner came before the error: {stdout}");
    assert!(stderr.contains(&format!("port {taken} (node 2's peer port")), "{stderr}");
    assert!(stderr.contains("--base-port"), "{stderr}");
}

#[test]
fn a_second_ppdb_local_on_the_same_directory_is_refused_before_its_banner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ppdb-data");
    let first_base = free_base_port();
    let _first = LocalCluster::start(first_base, &data);
    let mut node1 = connect_when_writable(first_base + 1);

    let output = run_to_exit(local_command(free_base_port(), &data));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "a second ppdb local started on {}: {stdout}{stderr}", data.display());
    assert!(!stdout.contains(BANNER), "the banner came before the error: {stdout}");
    assert!(stderr.contains(&format!("{} is in use", data.display())), "{stderr}");
    assert!(stderr.contains("--dir"), "{stderr}");
    // The first cluster is untouched.
    let reply: String = redis::cmd("SET").arg("local:first").arg("1").query(&mut node1).expect("SET");
    assert_eq!(reply, "OK");
}
