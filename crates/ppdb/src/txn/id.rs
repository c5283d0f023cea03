//! Transaction ids: unique in the cluster, named by the node that coordinates.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cross-shard transaction's id: the coordinating node's id in the high 64 bits, a number
/// that node never used before in the low ones. Participants prepare, commit and abort by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(pub u128);

impl TxnId {
    /// The id of the `sequence`th transaction `node` coordinates.
    pub fn new(node: u64, sequence: u64) -> TxnId {
        TxnId((u128::from(node) << 64) | u128::from(sequence))
    }

    /// The node that coordinates the transaction.
    pub fn coordinator(self) -> u64 {
        (self.0 >> 64) as u64
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Hands out a node's transaction ids. The sequence starts from a number the caller picks
/// above any the node used before (the server: its start time in microseconds), so a node
/// that restarts never reuses an id a participant still remembers.
#[derive(Debug)]
pub struct TxnIds {
    node: u64,
    next: AtomicU64,
}

impl TxnIds {
    /// Ids for `node`, the first with sequence number `first`.
    pub fn new(node: u64, first: u64) -> TxnIds {
        TxnIds { node, next: AtomicU64::new(first) }
    }

    /// A fresh id.
    pub fn next(&self) -> TxnId {
        TxnId::new(self.node, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_coordinator_and_never_repeat() {
        let ids = TxnIds::new(7, 1_000);
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(a.coordinator(), 7);
        assert_eq!(a.to_string(), format!("{:016x}{:016x}", 7, 1_000));
    }
}
