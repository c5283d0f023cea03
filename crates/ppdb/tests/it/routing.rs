//! Key routing on real processes: hash slots and tags as Redis Cluster defines them, the
//! CLUSTER commands, transactions kept on one shard by a tag, and clusters founded before hash
//! slots, which keep routing by crc32c.

use crate::reference::Reference;
use crate::support::{error_text, http_get, shard_of, wait_for, ClusterOptions, TestCluster};
use redis::Commands;
use std::time::Duration;

/// Keys whose slots are compared with redis-server's: tags, empty tags, nested and unclosed
/// braces, binary bytes.
const KEYSLOT_KEYS: &[&[u8]] = &[
    b"foo",
    b"bar",
    b"",
    b"{user1000}.following",
    b"{user1000}.followers",
    b"foo{}{bar}",
    b"foo{{bar}}zap",
    b"foo{bar}{zap}",
    b"{}",
    b"a{",
    b"}a{b}",
    b"{\xff\x00}x",
    &[0, 255, 123, 1, 125, 7],
];

/// One entry of CLUSTER SLOTS: first slot, last slot, and the node (ip, port, id, metadata).
type SlotsEntry = (i64, i64, (String, i64, String, redis::Value));

/// Cross-shard transactions every node coordinated, whatever their outcome, from /metrics.
fn cross_shard_transactions(cluster: &TestCluster) -> u64 {
    let mut total = 0;
    for id in cluster.ids() {
        let metrics = http_get(cluster.node(id).admin_addr, "/metrics").expect("/metrics");
        for line in metrics.lines().filter(|l| l.starts_with("ppdb_transactions_total{")) {
            total += line.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).expect("a counter value");
        }
    }
    total
}

#[test]
fn hash_slots_answer_as_redis_cluster_and_a_tag_keeps_a_transaction_on_one_shard() {
    let cluster = TestCluster::start(ClusterOptions { nodes: 3, shards: 8, ..ClusterOptions::default() });
    let recorded = std::fs::read_to_string(cluster.node(1).dir.join("cluster.json")).expect("cluster.json");
    assert!(recorded.contains(r#""routing": "hash-slots""#), "{recorded}");
    let mut con = cluster.client(2);

    // CLUSTER KEYSLOT, against redis-server in cluster mode.
    let reference = Reference::start_cluster_enabled();
    let mut redis = reference.client();
    for key in KEYSLOT_KEYS {
        let ours: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(*key).query(&mut con).expect("KEYSLOT");
        let theirs: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(*key).query(&mut redis).expect("KEYSLOT");
        assert_eq!(ours, theirs, "CLUSTER KEYSLOT {:?}", String::from_utf8_lossy(key));
    }

    // INFO keeps cluster mode off; CLUSTER describes 8 shards served by the node asked.
    let info: String = redis::cmd("INFO").arg("cluster").query(&mut con).expect("INFO");
    assert!(info.contains("cluster_enabled:0"), "{info}");
    let text: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).expect("CLUSTER INFO");
    for line in
        ["cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:3", "cluster_size:8"]
    {
        assert!(text.contains(line), "{line} missing from {text}");
    }
    let myid: String = redis::cmd("CLUSTER").arg("MYID").query(&mut con).expect("MYID");
    assert_eq!(myid, format!("{:040x}", 2));
    let slots: Vec<SlotsEntry> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).expect("SLOTS");
    assert_eq!(slots.len(), 8);
    let port = i64::from(cluster.node(2).client_addr.port());
    for (i, (first, last, (ip, node_port, id, _metadata))) in slots.iter().enumerate() {
        assert_eq!((*first, *last), (2048 * i as i64, 2048 * i as i64 + 2047), "shard {}'s slots", i + 1);
        assert_eq!((ip.as_str(), *node_port, id.as_str()), ("127.0.0.1", port, myid.as_str()));
    }
    let shards: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SHARDS").query(&mut con).expect("SHARDS");
    assert_eq!(shards.len(), 8);
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut con).expect("NODES");
    assert!(nodes.starts_with(&format!("{myid} 127.0.0.1:{port}@")), "{nodes}");
    assert!(nodes.trim_end().ends_with("myself,master - 0 0 0 connected 0-16383"), "{nodes}");
    let refused = redis::cmd("CLUSTER").arg("ADDSLOTS").arg(1).query::<String>(&mut con).unwrap_err();
    assert!(error_text(&refused).contains("not supported"), "{}", error_text(&refused));

    // Tagged keys share a shard: multi-key commands and MULTI/EXEC on them take no
    // cross-shard transaction. Untagged keys on two shards do, which shows the count works.
    let tagged = ["{user1}:a", "{user1}:b", "{user1}:c"];
    assert!(tagged.iter().all(|k| shard_of(k.as_bytes(), 8) == shard_of(tagged[0].as_bytes(), 8)));
    let before = cross_shard_transactions(&cluster);
    let () = con.mset(&[(tagged[0], "1"), (tagged[1], "2"), (tagged[2], "3")]).expect("MSET");
    let values: Vec<String> = con.mget(&tagged).expect("MGET");
    assert_eq!(values, ["1", "2", "3"]);
    let (a, b): (i64, i64) =
        redis::pipe().atomic().incr(tagged[0], 10).incr(tagged[1], 20).query(&mut con).expect("MULTI/EXEC");
    assert_eq!((a, b), (11, 22));
    let _: () = redis::cmd("WATCH").arg(tagged[2]).query(&mut con).expect("WATCH");
    let (c,): (i64,) = redis::pipe().atomic().incr(tagged[2], 1).query(&mut con).expect("EXEC under WATCH");
    assert_eq!(c, 4);
    let () = con.rename(tagged[2], "{user1}:d").expect("RENAME within a tag");
    let deleted: i64 = con.del(&[tagged[0], tagged[1], "{user1}:d"]).expect("DEL");
    assert_eq!(deleted, 3);
    assert_eq!(cross_shard_transactions(&cluster), before, "a tagged key took a cross-shard transaction");

    let (x, y) = (
        "user1:a",
        (0..)
            .map(|i| format!("user1:{i}"))
            .find(|k| shard_of(k.as_bytes(), 8) != shard_of(b"user1:a", 8))
            .unwrap(),
    );
    let (_, _): (i64, i64) =
        redis::pipe().atomic().incr(x, 1).incr(&y, 1).query(&mut con).expect("MULTI/EXEC");
    let after = wait_for(Duration::from_secs(5), || {
        let now = cross_shard_transactions(&cluster);
        (now > before).then_some(now)
    });
    assert!(after.is_some(), "keys on two shards took no cross-shard transaction");
}

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
fn a_cluster_recorded_before_hash_slots_keeps_routing_by_crc32c_across_restarts_and_joins() {
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
    // Slots do not name shards here: the node serves all of them as one range.
    let slots: Vec<(i64, i64, redis::Value)> =
        redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).expect("SLOTS");
    assert_eq!(slots.iter().map(|(first, last, _)| (*first, *last)).collect::<Vec<_>>(), [(0, 16383)]);
    for key in &keys {
        let value: Option<String> = con.get(key).expect("GET");
        assert_eq!(value, Some(format!("value of {key}")), "{key} after the restart");
    }

    // A node joining now is told the cluster's routing, and routes as its founders do.
    let joiner = cluster.add_node(1);
    let first = &keys[0];
    let found = wait_for(Duration::from_secs(30), || {
        let client = redis::Client::open(format!("redis://{}/", cluster.node(joiner).client_addr)).ok()?;
        let mut con = client.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
        con.get::<_, Option<String>>(first).ok().flatten()
    });
    assert_eq!(found, Some(format!("value of {first}")), "{first} through the node that joined");
    let mut con = cluster.client(joiner);
    for key in &keys {
        let value: Option<String> = con.get(key).expect("GET");
        assert_eq!(value, Some(format!("value of {key}")), "{key} through the node that joined");
    }
    let recorded =
        std::fs::read_to_string(cluster.node(joiner).dir.join("cluster.json")).expect("cluster.json");
    assert!(recorded.contains(r#""routing": "crc32c-modulo""#), "{recorded}");
}
