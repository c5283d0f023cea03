//! A simulated node: the Raft core, the durable state it persisted by the Ready contract, and
//! a tiny state machine (a running digest of applied entries).

use super::rng::mix;
use crate::config::Config;
use crate::membership::ConfChangeKind;
use crate::message::{Entry, EntryPayload, HardState, Snapshot};
use crate::raft::RecoveredState;
use crate::raw_node::{RawNode, Ready};
use crate::types::{LogIndex, NodeId, Term};
use std::collections::VecDeque;

/// Where a simulated node keeps what it persists. The default, [`DurableState`], is an exact
/// model of the Ready contract; the database plugs its real write-ahead log over a simulated
/// disk in here to run the same simulation against its storage code.
pub trait SimStorage: Send {
    /// Step 1 of the Ready contract. With `torn_entries`, the node crashes during the write:
    /// at most that prefix of the entries may survive, and no hard state.
    fn persist(&mut self, ready: &Ready, torn_entries: Option<usize>) -> Result<(), String>;
    /// Durably records the node's own snapshot; `hard_state` and the log `tail` after the
    /// snapshot are already durable and must stay so.
    fn save_snapshot(
        &mut self,
        snapshot: &Snapshot,
        hard_state: HardState,
        tail: &[Entry],
    ) -> Result<(), String>;
    /// The node crashed: everything not durable is gone.
    fn crash(&mut self);
    /// What survived, to restart from.
    fn recover(&mut self) -> Result<RecoveredState, String>;
}

impl SimStorage for DurableState {
    fn persist(&mut self, ready: &Ready, torn_entries: Option<usize>) -> Result<(), String> {
        if let Some(snapshot) = &ready.snapshot {
            self.persist_snapshot(snapshot);
        }
        match torn_entries {
            Some(n) => self.persist_entries(&ready.entries[..n.min(ready.entries.len())]),
            None => {
                self.persist_entries(&ready.entries);
                if let Some(hs) = ready.hard_state {
                    self.hard_state = hs;
                }
            }
        }
        Ok(())
    }

    fn save_snapshot(
        &mut self,
        snapshot: &Snapshot,
        _hard_state: HardState,
        _tail: &[Entry],
    ) -> Result<(), String> {
        self.persist_snapshot(snapshot);
        Ok(())
    }

    fn crash(&mut self) {}

    fn recover(&mut self) -> Result<RecoveredState, String> {
        Ok(self.recovered())
    }
}

/// What survives a crash: exactly what the node persisted.
#[derive(Debug, Clone, Default)]
pub struct DurableState {
    /// The persisted hard state.
    pub hard_state: HardState,
    /// The latest persisted snapshot.
    pub snapshot: Option<Snapshot>,
    /// Persisted entries after the snapshot.
    pub entries: Vec<Entry>,
}

impl DurableState {
    /// Persists a snapshot: the entries it covers are dropped.
    pub fn persist_snapshot(&mut self, snapshot: &Snapshot) {
        let index = snapshot.meta.index;
        self.entries.retain(|e| e.index > index);
        if self.entries.first().is_some_and(|e| e.index != index.next()) {
            self.entries.clear();
        }
        self.snapshot = Some(snapshot.clone());
    }

    /// Persists entries, replacing any persisted ones from the first new index on.
    pub fn persist_entries(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        self.entries.retain(|e| e.index < first.index);
        self.entries.extend_from_slice(entries);
    }

    /// The state to restart from.
    pub fn recovered(&self) -> RecoveredState {
        RecoveredState {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// The simulated state machine: the last applied index and a digest of everything applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// Last applied index.
    pub applied: LogIndex,
    /// Digest of all entries applied so far.
    pub digest: u64,
}

impl StateMachine {
    /// Encodes the state as snapshot data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.applied.0.to_le_bytes().to_vec();
        out.extend_from_slice(&self.digest.to_le_bytes());
        out
    }

    /// Decodes snapshot data (the empty bootstrap snapshot decodes to the initial state).
    pub fn decode(data: &[u8]) -> StateMachine {
        let word = |i: usize| {
            data.get(i * 8..i * 8 + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_le_bytes)
        };
        StateMachine { applied: LogIndex(word(0)), digest: word(1) }
    }

    /// The state a snapshot holds. The bootstrap snapshot has no data: an empty state at its index.
    pub fn from_snapshot(snapshot: &Snapshot) -> StateMachine {
        let decoded = StateMachine::decode(&snapshot.data);
        StateMachine { applied: snapshot.meta.index, digest: decoded.digest }
    }

    /// Applies one entry.
    pub fn apply(&mut self, entry: &Entry) {
        self.applied = entry.index;
        self.digest = mix(self.digest, mix(entry.index.0, payload_digest(&entry.payload)));
    }
}

/// A digest of an entry's payload.
pub fn payload_digest(payload: &EntryPayload) -> u64 {
    match payload {
        EntryPayload::Empty => 1,
        EntryPayload::Command(data) => {
            data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
        }
        EntryPayload::ConfChange(c) => {
            let kind = match c.kind {
                ConfChangeKind::AddVoter => 2,
                ConfChangeKind::AddLearner => 3,
                ConfChangeKind::Remove => 4,
            };
            mix(kind, c.node.0)
        }
    }
}

/// The client command id carried by a simulated command entry.
pub fn command_id(payload: &EntryPayload) -> Option<u64> {
    match payload {
        EntryPayload::Command(data) => {
            data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes)
        }
        _ => None,
    }
}

/// One simulated node.
pub struct SimNode {
    /// The node's id.
    pub id: NodeId,
    /// The running Raft core; `None` while crashed.
    pub raft: Option<RawNode>,
    /// What it persisted.
    pub disk: Box<dyn SimStorage>,
    /// Its state machine (rebuilt from the snapshot on restart).
    pub sm: StateMachine,
    /// Confirmed reads waiting for the state machine to catch up: (ctx, read index).
    pub confirmed_reads: Vec<(u64, LogIndex)>,
    /// The term in which this node was last seen as leader.
    pub led_term: Option<Term>,
    /// Readies handed out whose write is not durable yet, oldest first: their entries, hard
    /// state and the messages that wait for them (applied and early messages are gone).
    pub writes_in_flight: VecDeque<Ready>,
}

impl SimNode {
    /// A node whose storage starts with what `disk` holds (bootstrap member or empty spare).
    pub fn new(id: NodeId, disk: Box<dyn SimStorage>) -> SimNode {
        SimNode {
            id,
            raft: None,
            disk,
            sm: StateMachine::default(),
            confirmed_reads: Vec::new(),
            led_term: None,
            writes_in_flight: VecDeque::new(),
        }
    }

    /// Starts (or restarts) the node from its durable state.
    pub fn boot(&mut self, config: Config, rng_seed: u64) -> Result<(), String> {
        let rng = Box::new(super::rng::SimRng::new(rng_seed));
        let state = self.disk.recover()?;
        self.sm = state.snapshot.as_ref().map_or_else(StateMachine::default, StateMachine::from_snapshot);
        let raft = RawNode::new(config, state, rng).map_err(|e| e.to_string())?;
        self.raft = Some(raft);
        Ok(())
    }

    /// Loses everything not persisted.
    pub fn crash(&mut self) {
        self.disk.crash();
        self.raft = None;
        self.confirmed_reads.clear();
        self.led_term = None;
        self.writes_in_flight.clear();
    }

    /// Step 1 of the Ready contract (see [`SimStorage::persist`]).
    pub fn persist(&mut self, ready: &Ready, torn_entries: Option<usize>) -> Result<(), String> {
        self.disk.persist(ready, torn_entries)
    }

    /// Takes a snapshot of the state machine and compacts the log behind it, keeping
    /// `trailing` entries for followers that are slightly behind.
    pub fn snapshot_and_compact(&mut self, trailing: u64) -> Result<(), String> {
        let Some(raft) = self.raft.as_mut() else { return Ok(()) };
        let index = self.sm.applied;
        if index <= raft.snapshot_index() {
            return Ok(());
        }
        let snapshot = raft.create_snapshot(index, self.sm.encode()).map_err(|e| e.to_string())?;
        let tail: Vec<Entry> =
            (index.0 + 1..=raft.last_index().0).filter_map(|i| raft.entry(LogIndex(i)).cloned()).collect();
        self.disk.save_snapshot(&snapshot, raft.hard_state(), &tail)?;
        let compact_to = LogIndex(index.0.saturating_sub(trailing));
        raft.compact(compact_to).map_err(|e| e.to_string())?;
        Ok(())
    }
}
