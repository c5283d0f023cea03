//! Real-process tests of large values: values up to `proto-max-bulk-len` are written, read and
//! forwarded between nodes in both directions; larger ones are refused as Redis refuses them,
//! before anything is proposed; and a backlog of multi-MiB writes larger than a WAL record
//! survives a follower's catch-up and kill -9 of every node.

use crate::support::{pseudo_random_bytes, wait_for, ClusterOptions, TestCluster};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MIB: usize = 1024 * 1024;
/// PPDB's `proto-max-bulk-len` (`ppdb::limits::VALUE_BYTES_MAX`).
const VALUE_BYTES_MAX: usize = 32 * MIB;
/// Larger than a peer frame used to be (16 MiB): such a value once stalled its shard.
const LARGE_VALUE_BYTES: usize = 20 * MIB;
/// The values of the concurrent writes.
const BACKLOG_VALUE_BYTES: usize = 3 * MIB;
/// How long a node may take to replay, or a follower to catch up with, a few hundred MiB.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(60);

/// `len` bytes that differ for each `seed`, so a value read back under the wrong key shows.
fn value(seed: u64, len: usize) -> Vec<u8> {
    pseudo_random_bytes(seed, len)
}

/// A three-node cluster with one shard: every key has the same leader.
fn one_shard_cluster() -> TestCluster {
    TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() })
}

/// The shard's leader and another node.
fn leader_and_follower(cluster: &TestCluster) -> (u64, u64) {
    let leader = cluster.leader_of_key(b"any");
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a second node");
    (leader, follower)
}

#[test]
fn values_of_20_mib_cross_between_leader_and_follower_in_both_directions() {
    let cluster = one_shard_cluster();
    let (leader, follower) = leader_and_follower(&cluster);
    let mut at_leader = cluster.client(leader);
    let mut at_follower = cluster.client(follower);
    let (a, b) = (value(1, LARGE_VALUE_BYTES), value(2, LARGE_VALUE_BYTES));

    let set: redis::RedisResult<String> = redis::cmd("SET").arg("big-a").arg(&a).query(&mut at_leader);
    assert_eq!(set.as_deref(), Ok("OK"), "a 20 MiB SET through the leader");
    let set: redis::RedisResult<String> = redis::cmd("SET").arg("big-b").arg(&b).query(&mut at_follower);
    assert_eq!(set.as_deref(), Ok("OK"), "a 20 MiB SET forwarded by a follower");

    let got: Vec<u8> =
        redis::cmd("GET").arg("big-a").query(&mut at_follower).expect("GET through a follower");
    assert!(got == a, "GET through a follower returned {} bytes, not the value written", got.len());
    let got: Vec<u8> = redis::cmd("GET").arg("big-b").query(&mut at_leader).expect("GET through the leader");
    assert!(got == b, "GET through the leader returned {} bytes, not the value written", got.len());
    let both: Vec<Vec<u8>> =
        redis::cmd("MGET").arg("big-a").arg("big-b").query(&mut at_follower).expect("a 40 MiB MGET reply");
    assert!(both == [a.clone(), b.clone()], "MGET through a follower returned other values");

    let taken: Vec<u8> =
        redis::cmd("GETDEL").arg("big-b").query(&mut at_follower).expect("GETDEL through a follower");
    assert!(taken == b, "GETDEL through a follower returned {} bytes", taken.len());
    let exists: i64 = redis::cmd("EXISTS").arg("big-b").query(&mut at_leader).expect("EXISTS");
    assert_eq!(exists, 0, "GETDEL removed the key");

    // The shard still takes writes through every node.
    for id in cluster.ids() {
        let set: redis::RedisResult<String> =
            redis::cmd("SET").arg(format!("small-{id}")).arg("v").query(&mut cluster.client(id));
        assert_eq!(set.as_deref(), Ok("OK"), "a small write through node {id} after the large ones");
    }
}

#[test]
fn values_over_proto_max_bulk_len_are_refused_as_redis_refuses_them() {
    let cluster = one_shard_cluster();
    let (_, follower) = leader_and_follower(&cluster);

    // A bulk longer than proto-max-bulk-len is refused as soon as its length arrives, and the
    // connection closes, as Redis does: the client need not send the payload.
    let mut raw = TcpStream::connect(cluster.node(follower).client_addr).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    let header = format!("*3\r\n$3\r\nSET\r\n$8\r\ntoo-long\r\n${}\r\n", VALUE_BYTES_MAX + 1);
    raw.write_all(header.as_bytes()).expect("send the header");
    let mut answer = Vec::new();
    let read = raw.read_to_end(&mut answer);
    assert!(read.is_ok(), "the connection was not closed after the refusal: {read:?}");
    assert_eq!(String::from_utf8_lossy(&answer), "-ERR Protocol error: invalid bulk length\r\n");

    let mut con = cluster.client(follower);
    let limit: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("proto-max-bulk-len").query(&mut con).expect("CONFIG GET");
    assert_eq!(limit, ["proto-max-bulk-len".to_string(), VALUE_BYTES_MAX.to_string()]);
    let refused: Option<Vec<u8>> = redis::cmd("GET").arg("too-long").query(&mut con).expect("GET");
    assert_eq!(refused, None, "nothing of the refused SET was written");

    // A value of exactly the limit is accepted; growing it past the limit is refused.
    let edge = value(3, VALUE_BYTES_MAX);
    let set: redis::RedisResult<String> = redis::cmd("SET").arg("edge").arg(&edge).query(&mut con);
    assert_eq!(set.as_deref(), Ok("OK"), "a value of exactly proto-max-bulk-len");
    let too_long = "string exceeds maximum allowed size (proto-max-bulk-len)";
    let append: redis::RedisResult<i64> = redis::cmd("APPEND").arg("edge").arg("x").query(&mut con);
    let error = append.expect_err("APPEND past the limit");
    assert!(error.to_string().contains(too_long), "APPEND past the limit: {error}");
    let setrange: redis::RedisResult<i64> =
        redis::cmd("SETRANGE").arg("far").arg(VALUE_BYTES_MAX).arg("x").query(&mut con);
    let error = setrange.expect_err("SETRANGE past the limit");
    assert!(error.to_string().contains(too_long), "SETRANGE past the limit: {error}");
    let len: i64 = redis::cmd("STRLEN").arg("edge").query(&mut con).expect("STRLEN");
    assert_eq!(len, VALUE_BYTES_MAX as i64, "the refused APPEND changed nothing");
}

/// What [`concurrent_writes`] saw: the keys and values acknowledged, and the errors.
type Outcomes = (Vec<(String, Vec<u8>)>, Vec<String>);

/// Writes `per_client` values of `bytes` from each of `clients` connections to node `via` at
/// once.
fn concurrent_writes(
    cluster: &TestCluster,
    via: u64,
    clients: u64,
    per_client: u64,
    bytes: usize,
) -> Outcomes {
    let start = std::sync::Arc::new(std::sync::Barrier::new(clients as usize));
    let writers: Vec<_> = (0..clients)
        .map(|c| {
            let mut con = cluster.client(via);
            let start = start.clone();
            std::thread::spawn(move || {
                let (mut acked, mut failed) = (Vec::new(), Vec::new());
                let values: Vec<(String, Vec<u8>)> =
                    (0..per_client).map(|i| (format!("w-{c}-{i}"), value(1000 * c + i, bytes))).collect();
                start.wait();
                for (key, data) in values {
                    match redis::cmd("SET").arg(&key).arg(&data).query::<String>(&mut con) {
                        Ok(_) => acked.push((key, data)),
                        Err(e) => failed.push(format!("{key}: {e}")),
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for writer in writers {
        let (a, f) = writer.join().expect("writer thread");
        acked.extend(a);
        failed.extend(f);
    }
    (acked, failed)
}

/// Node `id`'s applied index of shard 1, if it answers.
fn applied(cluster: &TestCluster, id: u64) -> Option<u64> {
    cluster.status(id)?.shards.iter().find(|s| s.shard == 1).map(|s| s.applied)
}

#[test]
fn a_backlog_larger_than_a_wal_record_survives_catch_up_and_kill_9_of_every_node() {
    let mut cluster = one_shard_cluster();
    let (leader, follower) = leader_and_follower(&cluster);
    // 24 clients write 3 MiB values at once, so a leader's round holds up to 72 MiB of entries
    // (more than a WAL record held before), while a paused follower falls behind by as much and
    // then catches up. On a loaded machine rounds this large can outlast the request timeout or
    // an election timeout: a write not acknowledged has an unknown outcome, and is checked only
    // for atomicity.
    cluster.signal(follower, libc::SIGSTOP);
    let (acked, unknown) = concurrent_writes(&cluster, leader, 24, 1, BACKLOG_VALUE_BYTES);
    cluster.signal(follower, libc::SIGCONT);
    assert!(!acked.is_empty(), "no write was acknowledged: {unknown:?}");
    for id in cluster.ids() {
        assert_eq!(cluster.wait_exit(id, Duration::ZERO), None, "node {id} stopped during the writes");
    }

    let target = cluster.ids().into_iter().filter_map(|id| applied(&cluster, id)).max().expect("a status");
    let caught_up = wait_for(CATCH_UP_DEADLINE, || applied(&cluster, follower).filter(|&a| a >= target));
    assert!(
        caught_up.is_some(),
        "node {follower} did not catch up to index {target} (exited: {:?})",
        cluster.wait_exit(follower, Duration::ZERO)
    );

    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in cluster.ids() {
        cluster.spawn(id);
    }
    cluster.wait_ready();
    for id in cluster.ids() {
        let replayed = wait_for(CATCH_UP_DEADLINE, || applied(&cluster, id).filter(|&a| a >= target));
        assert!(replayed.is_some(), "node {id} did not come back to index {target}");
    }
    let mut con = cluster.client(follower);
    for (key, data) in &acked {
        let got: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(&mut con).expect("GET after restart");
        assert!(got.as_ref() == Some(data), "acknowledged write {key} lost or changed after kill -9");
    }
}
