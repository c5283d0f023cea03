//! Throughput of the Raft core alone: a 3-node group in memory (no disk, no network: messages
//! are handed over directly), with 1, 64 and 256 concurrent proposers. Each proposer keeps one
//! command in flight and proposes the next as soon as the leader applies it, so the figure is
//! committed-and-applied proposals per second with batching.
//!
//! Run: `cargo bench -p ppdb-raft --bench propose` (prints a table).

use ppdb_raft::sim::rng::SimRng;
use ppdb_raft::{Config, Entry, EntryPayload, Message, NodeId, PeerRole, RawNode, RecoveredState};
use std::time::{Duration, Instant};

const COMMAND_BYTES: usize = 64;
const RUN_TIME: Duration = Duration::from_secs(3);

/// A node and the log it "persisted" in memory.
struct MemNode {
    raft: RawNode,
    stored: Vec<Entry>,
}

fn cluster() -> Vec<MemNode> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    ids.iter()
        .map(|&id| {
            let mut config = Config::new(id);
            config.append_entries_max = 4096;
            config.inflight_appends_max = 64;
            let raft = RawNode::new(config, RecoveredState::bootstrap(ids), Box::new(SimRng::new(id.0)))
                .unwrap_or_else(|e| panic!("bootstrap node {id}: {e}"));
            MemNode { raft, stored: Vec::new() }
        })
        .collect()
}

/// Runs one Ready round on every node; returns messages and the leader's applied commands.
fn drive(nodes: &mut [MemNode], outbox: &mut Vec<Message>) -> usize {
    let mut applied_at_leader = 0;
    for node in nodes.iter_mut() {
        if !node.raft.has_ready() {
            continue;
        }
        let is_leader = node.raft.role() == PeerRole::Leader;
        let ready = node.raft.ready();
        if let Some(first) = ready.entries.first() {
            let keep = node.stored.partition_point(|e| e.index < first.index);
            node.stored.truncate(keep);
            node.stored.extend(ready.entries.iter().cloned());
        }
        outbox.extend(ready.messages);
        if is_leader {
            applied_at_leader += ready
                .committed_entries
                .iter()
                .filter(|e| matches!(e.payload, EntryPayload::Command(_)))
                .count();
        }
        node.raft.advance();
    }
    applied_at_leader
}

fn deliver(nodes: &mut [MemNode], outbox: &mut Vec<Message>) {
    for m in outbox.drain(..) {
        let to = (m.to.0 - 1) as usize;
        if let Some(node) = nodes.get_mut(to) {
            node.raft.step(m);
        }
    }
}

fn elect(nodes: &mut [MemNode]) {
    nodes[0].raft.campaign();
    let mut outbox = Vec::new();
    for _ in 0..20 {
        drive(nodes, &mut outbox);
        deliver(nodes, &mut outbox);
    }
    assert_eq!(nodes[0].raft.role(), PeerRole::Leader, "node 1 must win the election");
}

/// Committed proposals per second with `proposers` commands kept in flight.
fn measure(proposers: usize) -> f64 {
    let mut nodes = cluster();
    elect(&mut nodes);
    let mut outbox = Vec::new();
    let mut idle = proposers;
    let mut committed = 0u64;
    let command = vec![7u8; COMMAND_BYTES];
    #[allow(clippy::disallowed_methods)] // the benchmark, not the core, reads the clock
    let start = Instant::now();
    while start.elapsed() < RUN_TIME {
        if idle > 0 {
            let batch = std::iter::repeat_n(command.clone(), idle);
            nodes[0].raft.propose_batch(batch).unwrap_or_else(|e| panic!("propose: {e}"));
            idle = 0;
        }
        let done = drive(&mut nodes, &mut outbox);
        committed += done as u64;
        idle += done;
        deliver(&mut nodes, &mut outbox);
        // The application snapshots and compacts now and then, so the logs stay bounded
        // (an empty snapshot: the benchmark has no state machine).
        for node in nodes.iter_mut() {
            if node.stored.len() > 100_000 {
                let applied = node.raft.status().applied;
                if node.raft.create_snapshot(applied, Vec::new()).is_ok() {
                    let _ = node.raft.compact(applied);
                    node.stored.retain(|e| e.index > applied);
                }
            }
        }
    }
    committed as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    println!("ppdb-raft core, 3 nodes in memory, {COMMAND_BYTES}-byte commands, {RUN_TIME:?} per row");
    println!("{:>10} {:>18}", "proposers", "proposals/s");
    for proposers in [1, 64, 256] {
        println!("{proposers:>10} {:>18.0}", measure(proposers));
    }
}
