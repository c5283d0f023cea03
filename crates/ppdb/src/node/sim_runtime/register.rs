//! The simulation's replicated state machine: it keeps the index of the last command it
//! applied and a running digest of every command so far, and reports each apply and each
//! restore from a snapshot to the run's [`Observer`], so the checkers see what every node's
//! state machine really did.
//!
//! A state machine is built by the runtime (`restore`), which gives it no context; it learns
//! which node it belongs to from the task-local [`NODE`], set around the node's runtime.

use super::observer::Observer;
use crate::node::state_machine::StateMachine;
use ppdb_raft::sim::rng::mix;
use ppdb_raft::{LogIndex, NodeId};
use std::sync::Arc;

tokio::task_local! {
    /// The node whose runtime is running, and where its state machine reports.
    pub(super) static NODE: NodeContext;
}

/// What a state machine needs to report: its node and the run's observer.
#[derive(Clone)]
pub(super) struct NodeContext {
    /// The node.
    pub node: NodeId,
    /// The run's observer.
    pub observer: Arc<Observer>,
}

/// What a command or a read returns: the state after the last command applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Observed {
    /// Index of the last command applied.
    pub index: LogIndex,
    /// Digest of every command applied up to it.
    pub digest: u64,
}

/// The replicated state: a digest of every command applied, in order.
#[derive(Debug, Default)]
pub(super) struct Register {
    state: Observed,
}

/// Bytes of a snapshot: the index and the digest.
const SNAPSHOT_BYTES: usize = 16;

impl StateMachine for Register {
    type Query = ();
    type Output = Observed;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Result<Observed, String> {
        let digest = mix(self.state.digest, mix(index.0, command_digest(command)));
        self.state = Observed { index, digest };
        NODE.with(|ctx| ctx.observer.applied(ctx.node, index, command, digest));
        Ok(self.state)
    }

    fn query(&self, _: &(), _now_ms: u64) -> Observed {
        self.state
    }

    fn snapshot(&self) -> Vec<u8> {
        NODE.with(|ctx| ctx.observer.snapshot_taken());
        let mut data = self.state.index.0.to_le_bytes().to_vec();
        data.extend_from_slice(&self.state.digest.to_le_bytes());
        data
    }

    fn restore(data: &[u8]) -> Result<Register, String> {
        if data.is_empty() {
            // The bootstrap snapshot: nothing applied yet.
            NODE.with(|ctx| ctx.observer.restored(ctx.node, Observed::default()));
            return Ok(Register::default());
        }
        let words: [u8; SNAPSHOT_BYTES] = data
            .try_into()
            .map_err(|_| format!("a snapshot of {} bytes, not {SNAPSHOT_BYTES}", data.len()))?;
        let word = |i: usize| u64::from_le_bytes(words[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let state = Observed { index: LogIndex(word(0)), digest: word(1) };
        NODE.with(|ctx| ctx.observer.restored(ctx.node, state));
        Ok(Register { state })
    }
}

/// A client command: its unique id, then `padding` filler bytes (commands of varied sizes).
pub(super) fn command(id: u64, padding: usize) -> Vec<u8> {
    let mut bytes = id.to_le_bytes().to_vec();
    bytes.resize(8 + padding, id as u8);
    bytes
}

/// The id a command starts with.
pub(super) fn command_id(command: &[u8]) -> Option<u64> {
    command.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes)
}

/// A digest of a command's bytes (FNV-1a).
pub(super) fn command_digest(command: &[u8]) -> u64 {
    command.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}
