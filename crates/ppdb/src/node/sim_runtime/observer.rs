//! What the simulation sees of a run, checked as it is seen:
//!
//! - **Per group** (`group_logs`): election safety, log matching and snapshot agreement, in
//!   the meta group as in the data group.
//! - **The directory** (`directories`): every published directory lies on one history, moves
//!   only forward on a node, keeps an ACTIVE member, and group leaders change memberships only
//!   as their directory says.
//! - **State machine safety** of the data group (the core's [`CommittedHistory`]): every node
//!   applies the same command at the same index and reaches the same digest there, no command
//!   commits at two indexes, a node's applies move strictly forward between two restarts, and
//!   a restored snapshot holds a digest the nodes really had at its index. The state machine
//!   never sees terms, so entries are compared by the digest of their command alone. A
//!   snapshot installed on a running node never takes its state back.
//! - **Linearizable reads**: a read answers with a state at or after every write acknowledged
//!   before it began, and with a digest the nodes really had there.
//! - **A copy goes only after its removal is committed**: a running node deletes its copy of
//!   the data group only once its directory records the group settled on other nodes (its
//!   leader saw a committed membership without the node; `directories`).
//! - **No acknowledged write lost**: at the end, every acknowledged command is still the one
//!   committed at the index its client was told.
//!
//! Every delivered message, apply, acknowledgement and read is also mixed into a trace
//! digest: two runs of one seed must end with the same one.

use super::directories::DirectoryHistory;
use super::group_logs::GroupLogs;
use super::register::{command_digest, command_id, Observed};
use crate::codec::{self, Encoder};
use crate::node::directory::Directory;
use crate::storage::wal::GroupId;
use ppdb_raft::sim::check::state_machine::CommittedHistory;
use ppdb_raft::sim::check::{Verdict, Violation};
use ppdb_raft::sim::rng::mix;
use ppdb_raft::{LogIndex, Message, NodeId, Term};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// Counters of what a run exercised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Messages delivered.
    pub delivered: u64,
    /// Client writes acknowledged.
    pub acknowledged: u64,
    /// Linearizable reads answered (and checked).
    pub reads: u64,
    /// Snapshots taken by state machines (checkpoints).
    pub snapshots_taken: u64,
    /// State machines restored from a non-empty snapshot (restarts and installs).
    pub snapshots_restored: u64,
    /// Distinct directories published.
    pub directories: u64,
    /// Distinct replica sets the data group was placed on (each move gives it a new one).
    pub placements: u64,
}

/// The run's observations and checkers, shared by the network, the state machines and the
/// clients.
#[derive(Default)]
pub(super) struct Observer {
    seen: Mutex<Seen>,
}

#[derive(Default)]
/// Everything observed so far.
struct Seen {
    /// The trace digest.
    trace: u64,
    /// The data group's committed history, from every apply.
    history: CommittedHistory,
    /// Every group's leaders and logs.
    groups: GroupLogs,
    /// Every directory published.
    directories: DirectoryHistory,
    /// Each node's last applied command index, since its state machine was last built.
    applied: BTreeMap<NodeId, LogIndex>,
    /// The first violation seen.
    violation: Option<Violation>,
    /// What the run exercised.
    counts: Counts,
}

impl Seen {
    /// Keeps the first violation.
    fn record(&mut self, verdict: Verdict) {
        if let Err(violation) = verdict {
            self.violation.get_or_insert(violation);
        }
    }
}

impl Observer {
    /// An observer whose trace starts from `seed`.
    pub fn new(seed: u64) -> Arc<Observer> {
        Arc::new(Observer { seen: Mutex::new(Seen { trace: seed, ..Seen::default() }) })
    }

    /// Locks the observations.
    fn seen(&self) -> MutexGuard<'_, Seen> {
        // Every update is a single step between panicking calls, so a poisoned lock is usable.
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `message` of `group` was handed to the network: a leader's message claims its term
    /// and shows its log.
    pub fn sent(&self, group: GroupId, message: &Message) {
        let mut seen = self.seen();
        let verdict = match seen.groups.observe(group, message) {
            Ok(changes) => {
                changes.into_iter().try_for_each(|c| seen.directories.check_change(group, message.from, c))
            }
            Err(violation) => Err(violation),
        };
        seen.record(verdict);
    }

    /// `message` of `group` reached its recipient's inbox.
    pub fn delivered(&self, group: GroupId, message: &Message) {
        let mut e = Encoder::default();
        codec::encode_message(&mut e, message);
        let digest = command_digest(&e.finish());
        let mut seen = self.seen();
        seen.counts.delivered += 1;
        seen.trace = mix(seen.trace, mix(group.0, digest));
    }

    /// `node`'s state machine applied `command` at `index`, reaching `digest`.
    pub fn applied(&self, node: NodeId, index: LogIndex, command: &[u8], digest: u64) {
        let mut seen = self.seen();
        let previous = seen.applied.insert(node, index).unwrap_or_default();
        if index <= previous {
            seen.record(Err(Violation {
                invariant: "state machine safety",
                detail: format!(
                    "node {node} applied index {index} after {previous} (a repeat or a step back)"
                ),
            }));
        }
        let verdict = seen.history.observe_apply(
            node,
            index,
            Term(0),
            command_digest(command),
            digest,
            command_id(command),
        );
        seen.record(verdict);
        seen.trace = mix(seen.trace, mix(node.0, mix(index.0, digest)));
    }

    /// `node` starts: its next state machine is built from what its disk holds.
    pub fn started(&self, node: NodeId) {
        self.seen().applied.remove(&node);
    }

    /// `node`'s state machine was rebuilt from a snapshot (at a start or an install), or
    /// created empty (at a start, or when the node deleted its copy of a group placed on
    /// other nodes: it applies nothing until placed there again, from a snapshot).
    pub fn restored(&self, node: NodeId, state: Observed) {
        let mut seen = self.seen();
        if state.index == LogIndex(0) {
            if seen.applied.remove(&node).is_some() {
                // Not a start (which forgets the node's applies first): it deleted its copy.
                let verdict = seen.directories.check_copy_deleted(node);
                seen.record(verdict);
            }
            return;
        }
        if let Some(previous) = seen.applied.insert(node, state.index).filter(|&p| p > state.index) {
            seen.record(Err(Violation {
                invariant: "state machine safety",
                detail: format!("a snapshot took node {node} back from index {previous} to {}", state.index),
            }));
        }
        if state.index > LogIndex(0) {
            seen.counts.snapshots_restored += 1;
            let verdict = seen.history.check_digest(node, state.index, state.digest);
            seen.record(verdict);
        }
    }

    /// A state machine was snapshotted for a checkpoint.
    pub fn snapshot_taken(&self) {
        self.seen().counts.snapshots_taken += 1;
    }

    /// A client was told its `command` took effect at `index`.
    pub fn acknowledged(&self, command: u64, index: LogIndex) {
        let mut seen = self.seen();
        seen.counts.acknowledged += 1;
        seen.history.acknowledge(command, index);
        seen.trace = mix(seen.trace, mix(command, index.0));
    }

    /// What a read starting now must observe at least: the last acknowledged write.
    pub fn read_floor(&self) -> LogIndex {
        self.seen().history.highest_acknowledged()
    }

    /// A read started when the floor was `floor` was answered by `node` with `state`.
    pub fn read_served(&self, node: NodeId, floor: LogIndex, state: Observed) {
        let mut seen = self.seen();
        seen.counts.reads += 1;
        seen.trace = mix(seen.trace, mix(node.0, mix(state.index.0, state.digest)));
        if state.index < floor {
            seen.record(Err(Violation {
                invariant: "linearizable read",
                detail: format!(
                    "node {node} answered a read with the state after index {}, but a write at {floor} \
                     was acknowledged before the read began",
                    state.index
                ),
            }));
        }
        let verdict = seen.history.check_digest(node, state.index, state.digest);
        seen.record(verdict);
    }

    /// The node last seen leading `group`'s highest term seen led.
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.seen().groups.leader(group)
    }

    /// `node` started and publishes its directory on `directory`.
    pub fn watch_directory(&self, node: NodeId, directory: watch::Receiver<Directory>) {
        let mut seen = self.seen();
        let verdict = seen.directories.watch(node, directory);
        seen.record(verdict);
    }

    /// `node` stopped (crashed or removed).
    pub fn unwatch_directory(&self, node: NodeId) {
        self.seen().directories.unwatch(node);
    }

    /// Looks at the directories published since the last call.
    pub fn poll_directories(&self) {
        let mut seen = self.seen();
        let verdict = seen.directories.poll();
        seen.record(verdict);
    }

    /// The most advanced directory seen.
    pub fn latest_directory(&self) -> Directory {
        self.seen().directories.latest().clone()
    }

    /// `node`'s directory as last seen, if it runs.
    pub fn directory_of(&self, node: NodeId) -> Option<Directory> {
        self.seen().directories.of(node).cloned()
    }

    /// The index of the last command `node`'s state machine applied.
    pub fn applied_index(&self, node: NodeId) -> LogIndex {
        self.seen().applied.get(&node).copied().unwrap_or_default()
    }

    /// The highest index of an acknowledged write.
    pub fn highest_acknowledged(&self) -> LogIndex {
        self.seen().history.highest_acknowledged()
    }

    /// The first violation seen so far, if any.
    pub fn verdict(&self) -> Verdict {
        self.seen().violation.clone().map_or(Ok(()), Err)
    }

    /// The end-of-run check: every acknowledged write is still committed where it was.
    pub fn check_acknowledged_kept(&self) -> Verdict {
        self.seen().history.check_acknowledged_kept()
    }

    /// The trace digest and counters so far.
    pub fn summary(&self) -> (u64, Counts) {
        let seen = self.seen();
        let counts = Counts {
            directories: seen.directories.distinct(),
            placements: seen.directories.distinct_placements(),
            ..seen.counts
        };
        (seen.trace, counts)
    }
}
