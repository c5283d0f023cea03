//! Linearizable reads: a read must observe every write acknowledged before it started. With
//! ReadIndex, that means the read index it is given must be at least the index of the last
//! write acknowledged before the read was issued.

use super::{violation, Verdict};
use crate::types::{LogIndex, NodeId};
use std::collections::BTreeMap;

/// Reads in progress, keyed by request id.
#[derive(Debug, Default)]
pub struct LinearizableReads {
    issued: BTreeMap<u64, (NodeId, LogIndex)>,
    served: u64,
}

impl LinearizableReads {
    /// A read `ctx` was issued at `node` after writes up to `acknowledged` were acknowledged.
    pub fn issue(&mut self, ctx: u64, node: NodeId, acknowledged: LogIndex) {
        self.issued.insert(ctx, (node, acknowledged));
    }

    /// `node` was given read index `index` for read `ctx`.
    pub fn observe_read_index(&mut self, ctx: u64, node: NodeId, index: LogIndex) -> Verdict {
        let Some((issuer, floor)) = self.issued.remove(&ctx) else {
            return Ok(()); // a duplicate answer, or the node crashed and forgot the read
        };
        if issuer != node {
            return violation(
                "linearizable read",
                format!("read {ctx} of node {issuer} answered at node {node}"),
            );
        }
        if index < floor {
            return violation(
                "linearizable read",
                format!("read {ctx} at node {node} got read index {index}, but a write at {floor} was acknowledged before it began"),
            );
        }
        self.served += 1;
        Ok(())
    }

    /// Forgets reads of a crashed node.
    pub fn forget_node(&mut self, node: NodeId) {
        self.issued.retain(|_, (n, _)| *n != node);
    }

    /// Reads answered and checked so far.
    pub fn served(&self) -> u64 {
        self.served
    }
}
