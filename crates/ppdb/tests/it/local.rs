//! `ppdb local`, the README's first command, as a user runs it: three nodes on loopback from
//! one process, one data shard by default (so multi-key commands and transactions over any keys
//! are atomic), and Ctrl-C stops every node.

use crate::support::{error_text, http_get, wait_for, READY_DEADLINE, STOP_DEADLINE};
use redis::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A base port whose nine ports (`ppdb local` node i: base+i, base+100+i, base+200+i) are free,
/// below the block `support::free_addrs` hands out: a port of that block is free while the test owning
/// it has the node down (killed, restarting), and taking it would keep that node from coming back.
fn free_base_port() -> u16 {
    const FIRST: u32 = 3_000;
    const LAST: u32 = 9_700;
    let start = std::process::id().wrapping_mul(7_919);
    (0..LAST - FIRST)
        .map(|step| (FIRST + start.wrapping_add(step) % (LAST - FIRST)) as u16)
        .find(|&base| {
            (1..=3u16).all(|i| {
                [base + i, base + 100 + i, base + 200 + i]
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
