//! Commands whose evaluation once crashed the nodes evaluating them, against a 3-node cluster
//! of real processes. Inside MULTI/EXEC a command runs while a committed entry is applied, on
//! every replica and again after every restart, so such a command crashed the whole cluster
//! for good. After each: every node is alive, takes a write, and the cluster restarted on its
//! data directories serves again.

use crate::support::{error_text, wait_for, ClusterOptions, TestCluster, READY_DEADLINE};
use redis::{Connection, Value};
use std::time::Duration;

/// The key of defect 1: 100,000 bytes.
const KEY_BYTES: usize = 100_000;
/// Star groups of the pattern of defect 1 (`*a` repeated): one stack frame each in the
/// recursive matcher, which overflowed its stack.
const STAR_GROUPS: usize = 100_000;
/// SCAN calls after which an iteration is taken as never ending.
const SCAN_CALLS_MAX: usize = 1000;

fn query(con: &mut Connection, cmd: &redis::Cmd, what: &str) -> Value {
    cmd.query(con).unwrap_or_else(|e| panic!("{what}: {}", error_text(&e)))
}

/// Every node's process still runs, and each takes a write through its own client port.
fn every_node_alive_and_writable(cluster: &mut TestCluster, tag: &str) {
    for id in cluster.ids() {
        assert!(
            cluster.wait_exit(id, Duration::ZERO).is_none(),
            "node {id} exited {tag}:\n{}",
            cluster.log(id)
        );
    }
    for id in cluster.ids() {
        let mut con = cluster.client(id);
        let written = wait_for(READY_DEADLINE, || {
            let reply: redis::RedisResult<Value> =
                redis::cmd("SET").arg(format!("{tag}:{id}")).arg(id).query(&mut con);
            reply.ok()
        });
        assert_eq!(written, Some(Value::Okay), "node {id} takes no write {tag}");
    }
}

/// Reproduced at 585e066: `SET <100,000 x "a"> 1`, then `KEYS <"*a" x 100,000>` directly,
/// queued in MULTI/EXEC (committed to the log, so every replica evaluates it) and as SCAN
/// MATCH. The recursive glob matcher overflowed its stack (SIGABRT) on the leader, and inside
/// MULTI on every replica, again at every restart. Now each answers like Redis 7.2: nothing
/// matches a pattern of more than 1000 star groups.
#[test]
fn a_pattern_of_a_hundred_thousand_star_groups_neither_aborts_nor_bricks_the_cluster() {
    // One shard: a transaction with KEYS (which concerns every shard) runs only on one. Two
    // worker threads, as `ppdb local` gives each node on six CPUs or more: their stacks
    // (2 MiB) are what the recursion overflowed; a node's main thread has 8 MiB.
    let options = ClusterOptions { shards: 1, worker_threads: 2, ..ClusterOptions::default() };
    let mut cluster = TestCluster::start(options);
    let key = vec![b'a'; KEY_BYTES];
    let pattern = b"*a".repeat(STAR_GROUPS);
    let via = cluster.leader_of_key(&key);
    let mut con = cluster.client(via);
    assert_eq!(query(&mut con, redis::cmd("SET").arg(&key).arg(1), "SET"), Value::Okay);

    let keys = query(&mut con, redis::cmd("KEYS").arg(&pattern), "KEYS");
    assert_eq!(keys, Value::Array(Vec::new()), "more than 1000 star groups match nothing");

    let mut transaction = redis::pipe();
    transaction.atomic().cmd("KEYS").arg(&pattern).cmd("KEYS").arg("a*");
    let replies: Vec<Vec<Vec<u8>>> =
        transaction.query(&mut con).unwrap_or_else(|e| panic!("MULTI KEYS EXEC: {}", error_text(&e)));
    assert_eq!(replies, vec![Vec::new(), vec![key.clone()]]);

    let mut cursor = "0".to_string();
    for calls in 0.. {
        assert!(calls < SCAN_CALLS_MAX, "SCAN MATCH does not terminate");
        let scan = redis::cmd("SCAN").arg(&cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(100).clone();
        let (next, page): (String, Vec<Vec<u8>>) =
            scan.query(&mut con).unwrap_or_else(|e| panic!("SCAN MATCH: {}", error_text(&e)));
        assert!(page.is_empty(), "SCAN MATCH found {} keys", page.len());
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    every_node_alive_and_writable(&mut cluster, "after the pattern");

    // The transaction is in every node's log: a restart applies it again, and must serve.
    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in cluster.ids() {
        cluster.spawn(id);
    }
    cluster.wait_ready();
    every_node_alive_and_writable(&mut cluster, "after a restart");
    let mut con = cluster.client(via);
    let value = query(&mut con, redis::cmd("GET").arg(&key), "GET after a restart");
    assert_eq!(value, Value::BulkString(b"1".to_vec()));
}
