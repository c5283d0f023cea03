//! Real-process membership tests: a node joins while writes continue (INIT → JOINING →
//! ACTIVE), a node leaves gracefully (LEAVING → INACTIVE) without unavailability beyond an
//! election, and a node dead past the grace period is removed only when a safe quorum remains.

use crate::support::{error_text, wait_for, ClusterOptions, Status, TestCluster};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a membership step (join, promotion, removal) may take on a loaded 2-core CI box.
const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// A node's Raft tick (`tick_ms`, which the test cluster leaves at its default).
const NODE_TICK_MS: u64 = 10;

/// The state `of` has in node `seen_by`'s directory, if it answers.
fn member_state(cluster: &TestCluster, seen_by: u64, of: u64) -> Option<String> {
    let status = cluster.status(seen_by)?;
    status.members.iter().find(|m| m.id == of).map(|m| m.state.clone())
}

/// Whether `node` votes in every group of `status`.
fn voter_everywhere(status: &Status, node: u64) -> bool {
    status.shards.iter().all(|s| s.voters.contains(&node))
}

/// Whether `node` is in no group of `status`.
fn in_no_group(status: &Status, node: u64) -> bool {
    status.shards.iter().all(|s| !s.voters.contains(&node) && !s.learners.contains(&node))
}

/// A client writing `key-<i>` = `i` in a loop through one node, recording what was
/// acknowledged and when.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(BTreeMap<u64, u64>, Vec<Instant>)>,
}

impl Writer {
    fn start(cluster: &TestCluster, through: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let mut con = cluster.client(through);
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut acked = BTreeMap::new();
            let mut ack_times = Vec::new();
            let mut i = 0u64;
            while !flag.load(Ordering::Relaxed) {
                i += 1;
                let set: redis::RedisResult<()> =
                    redis::cmd("SET").arg(format!("key-{i}")).arg(i).query(&mut con);
                match set {
                    Ok(()) => {
                        acked.insert(i, i);
                        ack_times.push(Instant::now());
                    }
                    Err(e) if e.is_io_error() => panic!("write {i}: connection lost: {e}"),
                    Err(e) => eprintln!("write {i}: {}", error_text(&e)),
                }
            }
            (acked, ack_times)
        });
        Writer { stop, thread }
    }

    /// Stops the loop; the acknowledged writes and the longest time without an ack while the
    /// loop ran.
    fn finish(self) -> (BTreeMap<u64, u64>, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let (acked, times) = self.thread.join().expect("writer thread");
        let longest_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
        (acked, longest_gap)
    }
}

#[test]
fn a_node_joins_under_writes_and_another_leaves_gracefully() {
    let options = ClusterOptions { shards: 4, ..ClusterOptions::default() };
    let mut cluster = TestCluster::start(options);
    let writer = Writer::start(&cluster, 1);

    // Join node 4 through node 2 and watch its state in node 1's directory.
    let joiner = cluster.add_node(2);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let active = wait_for(STEP_DEADLINE, || {
        let state = member_state(&cluster, 1, joiner)?;
        let mut seen = seen.lock().expect("lock");
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        (state == "ACTIVE").then_some(())
    });
    let seen = seen.lock().expect("lock").clone();
    assert!(active.is_some(), "node {joiner} never became ACTIVE; states seen: {seen:?}");
    assert!(seen.iter().all(|s| s == "JOINING" || s == "ACTIVE"), "unexpected states {seen:?}");
    let status = wait_for(STEP_DEADLINE, || cluster.status(joiner).filter(|s| voter_everywhere(s, joiner)));
    assert!(status.is_some(), "node {joiner} is not a voter in every group: {:?}", cluster.status(joiner));
    assert_eq!(cluster.status(joiner).map(|s| s.node.state), Some("ACTIVE".to_string()));

    // Node 3 leaves gracefully through the command line.
    let (ok, output) = cluster.cluster_command(3, &["leave"]);
    assert!(ok, "ppdb cluster leave failed: {output}");
    let removed = wait_for(STEP_DEADLINE, || {
        let status = cluster.status(1)?;
        let state = status.members.iter().find(|m| m.id == 3)?.state.clone();
        (state == "INACTIVE" && in_no_group(&status, 3)).then_some(())
    });
    assert!(removed.is_some(), "node 3 was not removed: {:?}", cluster.status(1));
    let exit = cluster.wait_exit(3, STEP_DEADLINE);
    assert!(exit.is_some_and(|s| s.success()), "node 3 did not stop cleanly after leaving: {exit:?}");

    // Writes kept flowing, and every acknowledged one is readable through the newcomer.
    std::thread::sleep(Duration::from_millis(500));
    let (acked, longest_gap) = writer.finish();
    assert!(acked.len() > 50, "too few writes acknowledged: {}", acked.len());
    let bound = 4 * cluster.election_timeout() + Duration::from_secs(2);
    assert!(longest_gap < bound, "writes stalled for {longest_gap:?} (bound {bound:?})");
    let mut con = cluster.client(joiner);
    for (i, value) in &acked {
        let got: Option<u64> = redis::cmd("GET").arg(format!("key-{i}")).query(&mut con).expect("GET");
        assert_eq!(got, Some(*value), "acknowledged write key-{i} lost");
    }
    eprintln!("{} writes acknowledged; longest gap between acks {longest_gap:?}", acked.len());

    // A removed id cannot come back.
    let (ok, output) = cluster.cluster_command(1, &["remove", "3"]);
    assert!(ok, "removing an already removed node should be a no-op: {output}");
}

#[test]
fn a_dead_node_is_removed_only_while_a_safe_quorum_remains() {
    // Two worker threads: the multi-thread runtime a node gets on a larger machine.
    let options = ClusterOptions {
        nodes: 4,
        shards: 2,
        failed_node_timeout_ms: 2_000,
        worker_threads: 2,
        ..ClusterOptions::default()
    };
    let mut cluster = TestCluster::start(options);

    // Four members, one dies: three remain, so it is removed after the grace period.
    cluster.kill(4);
    let removed = wait_for(STEP_DEADLINE, || {
        let status = cluster.status(1)?;
        let gone = status.shards.iter().all(|s| !s.voters.contains(&4));
        (gone && member_state(&cluster, 1, 4)? == "INACTIVE").then_some(())
    });
    assert!(removed.is_some(), "dead node 4 was not removed: {:?}", cluster.status(1));
    // Restarted, it is told it was removed and stops with an error saying what to do.
    cluster.spawn(4);
    let exit = cluster.wait_exit(4, STEP_DEADLINE);
    assert!(exit.is_some_and(|s| !s.success()), "removed node 4 kept running or exited 0: {exit:?}");
    assert!(cluster.log(4).contains("was removed from the cluster"), "{}", cluster.log(4));

    // Three members, one dies: removing it would leave two, so it stays a voter.
    cluster.kill(3);
    // Wait until the meta leader has seen node 3 silent for twice the grace period: the failure
    // detector had what it needs to remove it, and must not have.
    let grace_ticks = cluster.options.failed_node_timeout_ms / NODE_TICK_MS;
    let detected = wait_for(STEP_DEADLINE, || {
        let silent = cluster.statuses()?.values().find_map(|status| {
            let meta = status.shards.iter().find(|s| s.shard == 0 && s.role == "leader")?;
            meta.followers.iter().find(|f| f.id == 3).map(|f| f.silent_ticks)
        })?;
        (silent >= 2 * grace_ticks).then_some(())
    });
    assert!(detected.is_some(), "the meta leader never saw node 3 silent: {:?}", cluster.statuses());
    let status = cluster.status(1).expect("node 1 answers");
    assert!(voter_everywhere(&status, 3), "node 3 removed below a safe quorum: {status:?}");
    let mut con = cluster.client(1);
    let _: () = redis::cmd("SET").arg("still").arg("writable").query(&mut con).expect("SET with 2 of 3");

    // Node 3 comes back and is ACTIVE again.
    cluster.spawn(3);
    let back = wait_for(STEP_DEADLINE, || (member_state(&cluster, 1, 3)? == "ACTIVE").then_some(()));
    assert!(back.is_some(), "node 3 did not return to ACTIVE: {:?}", cluster.status(1));
    let value: Option<String> = redis::cmd("GET").arg("still").query(&mut cluster.client(3)).expect("GET");
    assert_eq!(value.as_deref(), Some("writable"));
}
