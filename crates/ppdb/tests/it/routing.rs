//! Key routing on real processes: clusters founded before hash slots keep routing by crc32c.

use crate::support::{wait_for, ClusterOptions, TestCluster};
use redis::Commands;
use std::time::Duration;

/// Shards of the clusters here.
const SHARDS: u64 = 4;

/// Writes per check: enough to tell a shard that received them from one that did not.
const KEYS: usize = 40;

/// Each node's `cluster.json` as versions before hash slots wrote it: no routing recorded.
fn record_cluster_before_hash_slots(cluster: &TestCluster) {
    let members: Vec<String> =
        cluster.nodes.iter().map(|n| format!("\"{}\":\"{}\"", n.id, n.peer_addr)).collect();
    for node in &cluster.nodes {
        std::fs::create_dir_all(&node.dir).expect("create the data directory");
        let file = format!(
            "{{\"cluster_id\":\"{}\",\"node_id\":{},\"shards\":{SHARDS},\"members\":{{{}}}}}",
            node.cluster_id,
            node.id,
            members.join(",")
        );
        std::fs::write(node.dir.join("cluster.json"), file).expect("write cluster.json");
    }
}

/// Each shard's commit index as node 1 sees it.
fn commits(cluster: &TestCluster) -> Vec<u64> {
    let status = cluster.status(1).expect("node 1 answers /status");
    (1..=SHARDS)
        .map(|shard| status.shards.iter().find(|s| s.shard == shard).map_or(0, |s| s.commit))
        .collect()
}

#[test]
fn a_cluster_recorded_before_hash_slots_keeps_routing_by_crc32c_across_restarts() {
    let options = ClusterOptions { shards: SHARDS, ..ClusterOptions::default() };
    let mut cluster = TestCluster::start_prepared(options, record_cluster_before_hash_slots);
    // Keys crc32c puts on shard 2; hash slots would spread them over the four shards.
    let keys: Vec<String> = (0..)
        .map(|i| format!("legacy:{i}"))
        .filter(|k| u64::from(crc32c::crc32c(k.as_bytes())) % SHARDS + 1 == 2)
        .take(KEYS)
        .collect();
    let before = commits(&cluster);
    let mut con = cluster.client(1);
    for key in &keys {
        let () = con.set(key, format!("value of {key}")).expect("SET");
    }
    let grown = wait_for(Duration::from_secs(10), || {
        let now = commits(&cluster);
        (now[1] >= before[1] + KEYS as u64).then_some(now)
    })
    .expect("shard 2 committed every write");
    for shard in [0, 2, 3] {
        assert!(
            grown[shard] < before[shard] + KEYS as u64 / 4,
            "shard {} took writes: commit {} -> {}",
            shard + 1,
            before[shard],
            grown[shard]
        );
    }
    for id in cluster.ids() {
        cluster.restart(id);
    }
    cluster.wait_ready();
    let mut con = cluster.client(2);
    for key in &keys {
        let value: Option<String> = con.get(key).expect("GET");
        assert_eq!(value, Some(format!("value of {key}")), "{key} after the restart");
    }
}
