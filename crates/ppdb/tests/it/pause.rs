//! Real-process test: a leader paused (SIGSTOP, as a long GC or VM pause would) while clients
//! read and write one key through every node, then resumed, serves no stale read and loses no
//! acknowledged write. The history is checked for the two anomalies a stale leader could cause:
//! a read that returns a value already overwritten by an acknowledged write before the read
//! began, and a read of a value no write had started to set.

use crate::support::{ClusterOptions, TestCluster};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the clients run in all.
const RUN: Duration = Duration::from_secs(9);
/// When the leader is paused, after the clients start.
const PAUSE_AT: Duration = Duration::from_secs(2);
/// How long it stays paused: several election timeouts, so the others elect a new leader.
const PAUSE_FOR: Duration = Duration::from_secs(3);
const KEY: &str = "register";

/// One client operation, timed on the test's clock.
#[derive(Debug, Clone)]
struct Op {
    client: u64,
    invoked: Instant,
    completed: Instant,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A write of a value never written before; `acked` when the server answered OK.
    Write { value: String, acked: bool },
    /// A read that was answered.
    Read { value: Option<String> },
}

/// A client on node `node` until `end`: a writer sets fresh values, a reader reads.
fn client(
    cluster: &TestCluster,
    node: u64,
    writer: bool,
    end: Instant,
    history: Arc<Mutex<Vec<Op>>>,
) -> std::thread::JoinHandle<()> {
    let mut con = cluster.client(node);
    std::thread::spawn(move || {
        let mut i = 0u64;
        while Instant::now() < end {
            i += 1;
            let invoked = Instant::now();
            let kind = if writer {
                let value = format!("{node}-{i}");
                let set: redis::RedisResult<()> = redis::cmd("SET").arg(KEY).arg(&value).query(&mut con);
                Kind::Write { value, acked: set.is_ok() }
            } else {
                match redis::cmd("GET").arg(KEY).query::<Option<String>>(&mut con) {
                    Ok(value) => Kind::Read { value },
                    Err(_) => continue,
                }
            };
            let op = Op { client: node, invoked, completed: Instant::now(), kind };
            history.lock().unwrap_or_else(|p| p.into_inner()).push(op);
        }
    })
}

/// The anomalies in `history` (empty when none).
fn anomalies(history: &[Op]) -> Vec<String> {
    let writes: Vec<(&Op, &str, bool)> = history
        .iter()
        .filter_map(|op| match &op.kind {
            Kind::Write { value, acked } => Some((op, value.as_str(), *acked)),
            Kind::Read { .. } => None,
        })
        .collect();
    let mut found = Vec::new();
    for read in history {
        let Kind::Read { value } = &read.kind else { continue };
        let source = match value {
            None => None,
            Some(v) => match writes.iter().find(|(_, w, _)| w == v) {
                Some(write) => Some(write),
                None => {
                    found.push(format!("read of {v:?} that no client wrote: {read:?}"));
                    continue;
                }
            },
        };
        if let Some((write, _, _)) = source {
            if write.invoked > read.completed {
                found.push(format!("read returned a value written after it: {read:?} <- {write:?}"));
            }
        }
        // Stale: an acknowledged write started after the source was acknowledged (or, for
        // nil, after nothing) and finished before the read began.
        let stale = writes.iter().find(|(w, _, acked)| {
            *acked && w.completed < read.invoked && source.is_none_or(|(s, _, _)| s.completed < w.invoked)
        });
        if let Some((newer, _, _)) = stale {
            found.push(format!("stale read {read:?}: {newer:?} had overwritten it"));
        }
    }
    found
}

#[test]
fn a_paused_leader_serves_no_stale_read_after_it_resumes() {
    let options = ClusterOptions { shards: 1, ..ClusterOptions::default() };
    let cluster = TestCluster::start(options);
    let leader = cluster.wait_ready()[&1];
    let history = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let clients: Vec<_> = cluster
        .ids()
        .into_iter()
        .flat_map(|id| [true, false].map(|writer| (id, writer)))
        .map(|(id, writer)| client(&cluster, id, writer, start + RUN, Arc::clone(&history)))
        .collect();
    std::thread::sleep(PAUSE_AT);
    cluster.signal(leader, libc::SIGSTOP);
    std::thread::sleep(PAUSE_FOR);
    cluster.signal(leader, libc::SIGCONT);
    for client in clients {
        client.join().expect("client thread");
    }
    let history = history.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let anomalies = anomalies(&history);
    assert!(anomalies.is_empty(), "{} anomalies, first: {}", anomalies.len(), anomalies[0]);

    // Reads through the other nodes went on while the leader was paused (after an election),
    // instead of waiting for the paused leader until the request deadline.
    let elected = start + PAUSE_AT + Duration::from_millis(1500);
    let resumed = start + PAUSE_AT + PAUSE_FOR;
    let reads_while_paused = history
        .iter()
        .filter(|op| op.client != leader && op.completed > elected && op.completed < resumed)
        .filter(|op| matches!(op.kind, Kind::Read { .. }))
        .count();
    assert!(reads_while_paused > 0, "no read was answered while the leader was paused");
    let writes = history.iter().filter(|op| matches!(op.kind, Kind::Write { acked: true, .. })).count();
    assert!(writes > 20, "only {writes} writes acknowledged");

    // Every acknowledged write before the last one a node saw is gone from the register only
    // by being overwritten: the final value is the last acknowledged write or a later one.
    let mut con = cluster.client(leader);
    let last: Option<String> = redis::cmd("GET").arg(KEY).query(&mut con).expect("final read");
    let last_acked = history
        .iter()
        .filter(|op| matches!(op.kind, Kind::Write { acked: true, .. }))
        .max_by_key(|op| op.completed)
        .expect("some write was acknowledged");
    let source = history
        .iter()
        .find(|op| matches!(&op.kind, Kind::Write { value, .. } if Some(value) == last.as_ref()));
    let source = source.unwrap_or_else(|| panic!("final value {last:?} was never written"));
    assert!(source.completed >= last_acked.invoked, "final value {last:?} is older than {last_acked:?}");
}

#[test]
fn the_history_check_finds_stale_and_invented_reads() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let write = |value: &str, from: u64, to: u64| Op {
        client: 1,
        invoked: at(from),
        completed: at(to),
        kind: Kind::Write { value: value.into(), acked: true },
    };
    let read = |value: Option<&str>, from: u64, to: u64| Op {
        client: 2,
        invoked: at(from),
        completed: at(to),
        kind: Kind::Read { value: value.map(String::from) },
    };
    let ok = [write("a", 0, 10), write("b", 20, 30), read(Some("b"), 40, 50), read(Some("a"), 25, 45)];
    assert!(anomalies(&ok).is_empty(), "{:?}", anomalies(&ok));
    assert_eq!(anomalies(&[write("a", 0, 10), write("b", 20, 30), read(Some("a"), 40, 50)]).len(), 1);
    assert_eq!(anomalies(&[write("a", 0, 10), read(None, 20, 30)]).len(), 1);
    assert_eq!(anomalies(&[read(Some("z"), 0, 10)]).len(), 1);
    assert_eq!(anomalies(&[read(Some("a"), 0, 10), write("a", 20, 30)]).len(), 1);
}
