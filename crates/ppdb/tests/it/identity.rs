//! A node's identity lives with its data: a node restarted under its old id on an empty data
//! directory (a lost disk, a container that lost its volume) is refused, since it remembers
//! none of the entries it acknowledged; it comes back as a new member that catches up as a
//! learner first, and no acknowledged write is lost.

use crate::support::{wait_for, ClusterOptions, TestCluster};
use std::time::Duration;

/// How long a membership step (a refusal, a removal, a join) may take on a loaded 2-core box.
const STEP_DEADLINE: Duration = Duration::from_secs(60);
/// Writes acknowledged before node 3 loses its data.
const WRITES: u64 = 100;

/// The incarnation node `seen_by` records for node `of`, once recorded.
fn recorded_incarnation(cluster: &TestCluster, seen_by: u64, of: u64) -> Option<String> {
    let status = cluster.status(seen_by)?;
    status.members.iter().find(|m| m.id == of)?.incarnation.clone()
}

/// Whether node `seen_by` sees `node` as a voter of every group.
fn voter_everywhere(cluster: &TestCluster, seen_by: u64, node: u64) -> bool {
    cluster.status(seen_by).is_some_and(|s| s.shards.iter().all(|g| g.voters.contains(&node)))
}

/// Whether node `seen_by` sees `node` in no group.
fn in_no_group(cluster: &TestCluster, seen_by: u64, node: u64) -> bool {
    cluster
        .status(seen_by)
        .is_some_and(|s| s.shards.iter().all(|g| !g.voters.contains(&node) && !g.learners.contains(&node)))
}

#[test]
fn a_node_whose_data_was_lost_is_refused_and_rejoins_as_a_new_member_without_losing_writes() {
    let mut cluster = TestCluster::start(ClusterOptions { shards: 4, ..ClusterOptions::default() });
    let mut con = cluster.client(1);
    for i in 0..WRITES {
        let set: redis::RedisResult<()> = redis::cmd("SET").arg(format!("key-{i}")).arg(i).query(&mut con);
        set.unwrap_or_else(|e| panic!("write {i}: {e}"));
    }
    let recorded = wait_for(STEP_DEADLINE, || {
        let on_1 = recorded_incarnation(&cluster, 1, 3)?;
        (recorded_incarnation(&cluster, 2, 3)? == on_1).then_some(on_1)
    })
    .expect("node 3's incarnation recorded in the directory");

    // Node 3 loses its disk and is started again exactly as before.
    cluster.kill(3);
    std::fs::remove_dir_all(&cluster.node(3).dir).expect("remove node 3's data directory");
    let log_before = cluster.log(3).len();
    cluster.spawn(3);
    let exit = cluster.wait_exit(3, STEP_DEADLINE);
    let said = cluster.log(3)[log_before..].to_string();
    let exit = exit.unwrap_or_else(|| {
        panic!(
            "node 3 started with an empty directory under its old id and was not refused; it said:\n{said}"
        )
    });
    assert!(!exit.success(), "a refusal is an error exit");
    assert!(
        said.contains("ppdb cluster remove 3") && said.contains(&recorded) && said.contains("--join"),
        "the refusal names the incarnation and what to do: {said}"
    );

    // What it says to do: remove node 3, and start the machine as a new member.
    let (ok, out) = cluster.cluster_command(1, &["remove", "3"]);
    assert!(ok, "ppdb cluster remove 3: {out}");
    wait_for(STEP_DEADLINE, || in_no_group(&cluster, 1, 3).then_some(())).expect("node 3 out of every group");
    let newcomer = cluster.add_node(1);
    wait_for(STEP_DEADLINE, || {
        let active = cluster.status(newcomer)?.node.state == "ACTIVE";
        (active && voter_everywhere(&cluster, 1, newcomer)).then_some(())
    })
    .expect("the new member caught up and votes everywhere");

    // Another node dies: the two left hold every acknowledged write.
    cluster.kill(1);
    let mut con = cluster.client(2);
    for i in 0..WRITES {
        let value = wait_for(STEP_DEADLINE, || {
            let got: redis::RedisResult<Option<u64>> =
                redis::cmd("GET").arg(format!("key-{i}")).query(&mut con);
            got.ok()
        });
        assert_eq!(value, Some(Some(i)), "acknowledged write key-{i} after node 1 died");
    }
}
