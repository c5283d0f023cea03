//! The simulated network: the runtimes' [`Outbox`]. It loses, duplicates and delays messages
//! (delays reorder them), and cuts links (partitions, symmetric or one way), all drawn from the
//! run's seed. Messages wait in one queue ordered by delivery time, then by send order; the run
//! delivers those that are due, every simulated millisecond, to the inbox of their recipient if
//! it is running and the link is not cut at that moment. A snapshot is delivered as the
//! transport delivers it: its image is streamed from the sender's snapshot files into a new
//! file of the recipient's, which must both be running then.

use super::observer::Observer;
use crate::node::runtime::Outbox;
use crate::node::snapshot_transfer::{copy_snapshot, NodeSnapshotFiles};
use crate::storage::wal::GroupId;
use ppdb_raft::sim::rng::SimRng;
use ppdb_raft::{Message, NodeId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A runtime's inbound message queue.
pub(super) type Inbox = mpsc::Sender<(GroupId, Message)>;

/// Chunk size of snapshots streamed between simulated nodes.
const SNAPSHOT_CHUNK_BYTES: usize = 4096;

/// What the network does to each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NetFaults {
    /// Probability that a message is lost.
    pub drop_per_mille: u32,
    /// Probability that a message is delivered twice.
    pub duplicate_per_mille: u32,
    /// Messages arrive 0 to this many milliseconds after they are sent.
    pub delay_ms_max: u64,
}

impl NetFaults {
    /// No loss, no duplication, short delays: the network once faults stop.
    pub const CALM: NetFaults = NetFaults { drop_per_mille: 0, duplicate_per_mille: 0, delay_ms_max: 2 };
}

/// A message in flight.
struct InFlight {
    deliver_at_ms: u64,
    seq: u64,
    group: GroupId,
    message: Message,
}

impl InFlight {
    /// The queue order: delivery time, then send order.
    fn key(&self) -> (u64, u64) {
        (self.deliver_at_ms, self.seq)
    }
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// The network's mutable state.
struct NetState {
    rng: SimRng,
    faults: NetFaults,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Directed links that currently lose everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// The inboxes and snapshot files of running nodes.
    inboxes: BTreeMap<NodeId, (Inbox, Arc<NodeSnapshotFiles>)>,
}

/// The network between the simulated nodes.
pub(super) struct SimNet {
    state: Mutex<NetState>,
    observer: Arc<Observer>,
    epoch: Instant,
}

impl SimNet {
    /// A network drawing its faults from `seed`, reporting to `observer`.
    pub fn new(seed: u64, faults: NetFaults, observer: Arc<Observer>) -> Arc<SimNet> {
        let state = NetState {
            rng: SimRng::new(seed),
            faults,
            queue: BinaryHeap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            inboxes: BTreeMap::new(),
        };
        Arc::new(SimNet { state: Mutex::new(state), observer, epoch: Instant::now() })
    }

    /// Locks the state.
    fn state(&self) -> MutexGuard<'_, NetState> {
        // Every update is a single step between panicking calls, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulated milliseconds since the network was made.
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// `node` is running, receives on `inbox` and keeps its snapshots in `files`.
    pub fn connect(&self, node: NodeId, inbox: Inbox, files: Arc<NodeSnapshotFiles>) {
        self.state().inboxes.insert(node, (inbox, files));
    }

    /// `node` is down: what is sent to it is lost.
    pub fn disconnect(&self, node: NodeId) {
        self.state().inboxes.remove(&node);
    }

    /// Delivers every message due by now, unless its link is cut or its recipient is down.
    pub fn deliver_due(&self) {
        let now = self.now_ms();
        let mut state = self.state();
        while state.queue.peek().is_some_and(|m| m.0.deliver_at_ms <= now) {
            let Some(Reverse(inflight)) = state.queue.pop() else { break };
            let message = inflight.message;
            if state.cut.contains(&(message.from, message.to)) {
                continue;
            }
            let Some((inbox, to)) = state.inboxes.get(&message.to) else { continue };
            let Some((_, from)) = state.inboxes.get(&message.from) else { continue };
            let group = inflight.group;
            let message =
                match copy_snapshot(from.as_ref(), to.as_ref(), group, message, SNAPSHOT_CHUNK_BYTES) {
                    Ok(message) => message,
                    Err(e) => {
                        tracing::debug!(group = group.0, error = %e, "sim: snapshot not streamed");
                        continue;
                    }
                };
            self.observer.delivered(inflight.group, &message);
            // A full inbox loses the message, as a congested peer link would.
            let _ = inbox.try_send((inflight.group, message));
        }
    }

    /// Sets the faults applied to messages sent from now on.
    pub fn set_faults(&self, faults: NetFaults) {
        self.state().faults = faults;
    }

    /// Cuts `node` off from every other node, both ways.
    pub fn isolate(&self, node: NodeId, nodes: &[NodeId]) {
        self.split(&[node], nodes);
    }

    /// Splits `nodes` into `side` and the rest: no message crosses between them.
    pub fn split(&self, side: &[NodeId], nodes: &[NodeId]) {
        let mut state = self.state();
        for &a in side {
            for &b in nodes.iter().filter(|n| !side.contains(n)) {
                state.cut.insert((a, b));
                state.cut.insert((b, a));
            }
        }
    }

    /// Cuts the link from `from` to `to` only.
    pub fn cut_one_way(&self, from: NodeId, to: NodeId) {
        self.state().cut.insert((from, to));
    }

    /// Heals every partition.
    pub fn heal(&self) {
        self.state().cut.clear();
    }

    /// Messages in flight (for failure reports).
    pub fn in_flight(&self) -> usize {
        self.state().queue.len()
    }
}

impl Outbox for SimNet {
    fn send(&self, group: GroupId, message: Message) {
        self.observer.sent(group, &message);
        let now = self.now_ms();
        let mut state = self.state();
        let faults = state.faults;
        if state.rng.chance(faults.drop_per_mille) {
            return;
        }
        let copies = if state.rng.chance(faults.duplicate_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            let deliver_at_ms = now + state.rng.below(faults.delay_ms_max + 1);
            state.seq += 1;
            let seq = state.seq;
            state.queue.push(Reverse(InFlight { deliver_at_ms, seq, group, message: message.clone() }));
        }
    }
}
