//! Real-process test of leadership following the clients: writes entering through one node
//! bring every group's leadership to that node, without an error for the client and without
//! losing a write; writes spread evenly over the nodes move nothing.

use crate::support::{error_text, wait_for, ClusterOptions, TestCluster};
use std::time::Duration;

/// Traffic window of the test cluster: short, so the test takes seconds.
const WINDOW_MS: u64 = 500;

/// How long leadership may take to follow the clients on a loaded 2-core CI box.
const MOVE_DEADLINE: Duration = Duration::from_secs(60);

/// How many times the nodes logged moving leadership to follow the clients.
fn follow_client_moves(cluster: &TestCluster) -> usize {
    cluster
        .ids()
        .iter()
        .map(|&id| cluster.log(id).matches("moving leadership to the node the clients use").count())
        .sum()
}

#[test]
fn leadership_moves_to_the_node_the_clients_use_and_stays_with_spread_clients() {
    let options = ClusterOptions { shards: 4, follow_clients_ms: WINDOW_MS, ..ClusterOptions::default() };
    let cluster = TestCluster::start(options);
    let before = cluster.wait_ready();
    let entry = before[&0] % 3 + 1;

    // One client writes through a node that leads nothing until every group's leader is there.
    let mut con = cluster.client(entry);
    let mut written = 0u64;
    let moved = wait_for(MOVE_DEADLINE, || {
        for _ in 0..50 {
            written += 1;
            let set: redis::RedisResult<()> =
                redis::cmd("SET").arg(format!("key-{written}")).arg(written).query(&mut con);
            if let Err(e) = set {
                panic!("write {written} through node {entry} failed: {}", error_text(&e));
            }
        }
        cluster.leaders().filter(|leaders| leaders.values().all(|&l| l == entry))
    });
    assert!(moved.is_some(), "leadership did not move to node {entry}: {:?}", cluster.leaders());
    // The move is logged in the words counted below, so that count can see a move at all.
    let logged = wait_for(Duration::from_secs(10), || (follow_client_moves(&cluster) > 0).then_some(()));
    assert!(logged.is_some(), "no node logged the move to node {entry}");

    // Clients on every node, in lockstep: each node brings a third of the requests, so several
    // windows pass without leadership following them. (Leadership may still change by an
    // election on a loaded machine; only moves made for the clients count here.)
    let mut cons: Vec<_> = cluster.ids().iter().map(|&id| cluster.client(id)).collect();
    let moves_before = follow_client_moves(&cluster);
    let until = std::time::Instant::now() + Duration::from_millis(6 * WINDOW_MS);
    let mut i = 0u64;
    while std::time::Instant::now() < until {
        i += 1;
        for con in cons.iter_mut() {
            let _: () = redis::cmd("SET").arg(format!("spread-{i}")).arg(i).query(con).expect("spread write");
        }
    }
    let moves: Vec<String> = cluster
        .ids()
        .iter()
        .flat_map(|&id| {
            let log = cluster.log(id);
            log.lines()
                .filter(|l| l.contains("moving leadership"))
                .map(|l| format!("node {id}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(follow_client_moves(&cluster), moves_before, "leadership followed spread clients: {moves:#?}");

    // Every acknowledged write is there, read through another node (last: these reads enter
    // through that node, and would rightly move leadership there during the spread phase).
    let mut reader = cluster.client(entry % 3 + 1);
    for i in 1..=written {
        let value: Option<u64> = redis::cmd("GET").arg(format!("key-{i}")).query(&mut reader).expect("read");
        assert_eq!(value, Some(i), "key-{i}");
    }
}
