//! Real-process scale-out: shards placed on 3 of 6 nodes. Three nodes join a loaded 3-node
//! cluster under writes through every node, the rebalancer moves replicas until each node
//! holds half of them, and the first three then leave; no acknowledged write is lost and every
//! read answers what was written, whichever node it enters through.

use crate::support::{error_text, wait_for, ClusterOptions, Status, TestCluster};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the cluster may take to settle after joins or leaves, on a loaded 2-core CI box.
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);
/// Data shards: 18 replicas at replication factor 3, 3 per node of 6.
const SHARDS: u64 = 6;

/// Writes `<prefix>-<i>` = `i` through one node until stopped; the acknowledged values.
fn writer(cluster: &TestCluster, through: u64, stop: Arc<AtomicBool>) -> JoinHandle<BTreeMap<String, u64>> {
    let mut con = cluster.client(through);
    std::thread::spawn(move || {
        let mut acked = BTreeMap::new();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let key = format!("w{through}-{i}");
            let set: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg(i).query(&mut con);
            match set {
                Ok(()) => {
                    acked.insert(key, i);
                }
                Err(e) if e.is_io_error() => panic!("{key}: connection lost: {e}"),
                Err(e) => eprintln!("{key}: {}", error_text(&e)),
            }
        }
        acked
    })
}

/// Writes through each of `nodes` while `during` runs; every acknowledged write.
fn under_writes(
    cluster: &mut TestCluster,
    nodes: &[u64],
    during: impl FnOnce(&mut TestCluster),
) -> BTreeMap<String, u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = nodes.iter().map(|&n| writer(cluster, n, Arc::clone(&stop))).collect();
    during(cluster);
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().flat_map(|w| w.join().expect("writer thread")).collect()
}

/// Node `seen_by`'s status once no shard is moving and every running node holds between
/// `min` and `max` shards (as its own status lists them), exactly those placed on it, every
/// one as a voter.
fn settled(cluster: &TestCluster, seen_by: u64, min: usize, max: usize) -> Option<Status> {
    let statuses = cluster.statuses()?;
    let status = statuses.get(&seen_by)?.clone();
    if status.placement.len() != SHARDS as usize || status.placement.iter().any(|p| p.moving) {
        return None;
    }
    for (&id, s) in &statuses {
        let held: Vec<_> = s.shards.iter().filter(|d| d.shard != 0).collect();
        let voter = held.iter().all(|d| d.voters.contains(&id) && d.learners.is_empty());
        let placed: Vec<u64> =
            status.placement.iter().filter(|p| p.replicas.contains(&id)).map(|p| p.shard).collect();
        let as_placed = held.iter().map(|d| d.shard).eq(placed.iter().copied());
        if held.len() < min || held.len() > max || !voter || !as_placed {
            return None;
        }
    }
    Some(status)
}

/// Every acknowledged write reads back through every running node.
fn assert_readable(cluster: &TestCluster, acked: &BTreeMap<String, u64>) {
    for id in cluster.running() {
        let mut con = cluster.client(id);
        for (key, value) in acked {
            let got: Option<u64> = redis::cmd("GET").arg(key).query(&mut con).expect("GET");
            assert_eq!(got, Some(*value), "acknowledged {key} reads {got:?} through node {id}");
        }
    }
}

#[test]
fn three_nodes_join_a_loaded_cluster_take_half_the_replicas_and_the_first_three_leave() {
    let options = ClusterOptions { shards: SHARDS, ..ClusterOptions::default() };
    let mut cluster = TestCluster::start(options);
    let mut con = cluster.client(1);
    let mut acked = BTreeMap::new();
    for i in 0..300u64 {
        let key = format!("seed-{i}");
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut con).expect("SET");
        acked.insert(key, i);
    }

    let joined = under_writes(&mut cluster, &[1, 2, 3], |cluster| {
        let new: Vec<u64> = (0..3).map(|_| cluster.add_node(1)).collect();
        let status = wait_for(SETTLE_DEADLINE, || settled(cluster, 1, 3, 3));
        assert!(status.is_some(), "6 nodes did not settle at 3 shards each: {:?}", cluster.statuses());
        for id in new {
            let mut con = cluster.client(id);
            let _: () = redis::cmd("SET").arg(format!("via-{id}")).arg(id).query(&mut con).expect("SET");
        }
    });
    assert!(joined.len() > 30, "too few writes acknowledged while nodes joined: {}", joined.len());
    acked.extend(joined);
    acked.extend((4..=6).map(|id| (format!("via-{id}"), id)));
    assert_readable(&cluster, &acked);

    let left = under_writes(&mut cluster, &[4, 5, 6], |cluster| {
        for id in 1..=3 {
            let (ok, output) = cluster.cluster_command(id, &["leave"]);
            assert!(ok, "ppdb cluster leave on node {id} failed: {output}");
            let exit = cluster.wait_exit(id, SETTLE_DEADLINE);
            assert!(exit.is_some_and(|s| s.success()), "node {id} did not leave cleanly: {exit:?}");
        }
        let status = wait_for(SETTLE_DEADLINE, || settled(cluster, 4, SHARDS as usize, SHARDS as usize));
        assert!(status.is_some(), "3 nodes did not take every shard back: {:?}", cluster.statuses());
    });
    assert!(left.len() > 30, "too few writes acknowledged while nodes left: {}", left.len());
    acked.extend(left);
    assert_readable(&cluster, &acked);
}
