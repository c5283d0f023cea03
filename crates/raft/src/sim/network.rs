//! The simulated network: loses, duplicates, delays and reorders messages, and cuts links.

use super::rng::SimRng;
use crate::message::Message;
use crate::types::NodeId;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// A message in flight, ordered by delivery time then by send order.
#[derive(Debug)]
struct InFlight {
    deliver_at: u64,
    seq: u64,
    message: Message,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.deliver_at, self.seq) == (other.deliver_at, other.seq)
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
        (self.deliver_at, self.seq).cmp(&(other.deliver_at, other.seq))
    }
}

/// Faults the network applies to each message.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Loss probability, per mille.
    pub drop_per_mille: u32,
    /// Duplication probability, per mille.
    pub duplicate_per_mille: u32,
    /// Largest delivery delay in ticks (the smallest is 1).
    pub delay_ticks_max: u64,
}

/// The network between simulated nodes.
#[derive(Debug)]
pub struct Network {
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Directed links that currently lose everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Current fault settings.
    pub faults: Faults,
}

impl Network {
    /// A network with the given faults and no partitions.
    pub fn new(faults: Faults) -> Network {
        Network { queue: BinaryHeap::new(), seq: 0, cut: BTreeSet::new(), faults }
    }

    /// Sends `message` at time `now`, subject to the faults.
    pub fn send(&mut self, now: u64, message: Message, rng: &mut SimRng) {
        if rng.chance(self.faults.drop_per_mille) {
            return;
        }
        let copies = if rng.chance(self.faults.duplicate_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            let deliver_at = now + 1 + rng.below(self.faults.delay_ticks_max);
            self.seq += 1;
            self.queue.push(Reverse(InFlight { deliver_at, seq: self.seq, message: message.clone() }));
        }
    }

    /// Removes and returns every message due at `now` whose link is not cut.
    pub fn due(&mut self, now: u64) -> Vec<Message> {
        let mut out = Vec::new();
        while self.queue.peek().is_some_and(|m| m.0.deliver_at <= now) {
            if let Some(Reverse(inflight)) = self.queue.pop() {
                let m = inflight.message;
                if !self.cut.contains(&(m.from, m.to)) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Splits `nodes` into `side` and the rest: no message crosses between them.
    pub fn split(&mut self, side: &[NodeId], nodes: &[NodeId]) {
        for &a in side {
            for &b in nodes.iter().filter(|n| !side.contains(n)) {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Number of messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
