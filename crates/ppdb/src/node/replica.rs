//! One node's replica of one Raft group: the Raft core, the state machine it feeds, and the
//! client requests waiting on it.

use super::state_machine::{SnapshotJob, StateMachine};
use crate::error::Error;
use crate::storage::wal::GroupId;
use ppdb_raft::{
    Entry, EntryPayload, LogIndex, PeerRole, ProposeError, RawNode, ReadState, Snapshot, SnapshotMeta, Term,
};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tokio::sync::oneshot;

/// Where the answer to a client request goes.
pub type Reply<T> = oneshot::Sender<Result<T, Error>>;

struct PendingProposal<T> {
    term: Term,
    reply: Reply<T>,
}

struct PendingRead<S: StateMachine> {
    query: S::Query,
    reply: Reply<S::Output>,
}

/// How many times `entries_between_snapshots` a group may go without a snapshot while its log
/// since the last one is still smaller than that snapshot.
const SNAPSHOT_DEFERRAL_MAX: u64 = 20;

/// Whether a group is due a snapshot, having applied `entries` entries of `bytes` bytes since
/// its last snapshot of `last_snapshot_bytes` bytes. A snapshot rewrites the whole state and,
/// while it is serialized, holds up the node's loop; so once the state is large next to
/// what changes between snapshots, the snapshot waits until the log since the last one is as
/// large as that snapshot (at most [`SNAPSHOT_DEFERRAL_MAX`] times `entries_between_snapshots`).
/// The bytes written for snapshots then stay about those written to the log, as Redis bounds
/// its AOF rewrites, instead of growing with the state: a shard of 1.5 million keys no longer
/// rewrites its 170 MB every 50,000 writes. The log kept in memory and replayed at a restart
/// stays within about one snapshot's size.
fn snapshot_due(entries: u64, bytes: u64, last_snapshot_bytes: u64, entries_between_snapshots: u64) -> bool {
    entries >= entries_between_snapshots
        && (bytes >= last_snapshot_bytes
            || entries >= entries_between_snapshots.saturating_mul(SNAPSHOT_DEFERRAL_MAX))
}

/// Why a replica stopped applying its group's log: the committed entry it could not apply.
/// The node keeps running its other groups; this one takes no further part here (it applies,
/// votes and answers nothing) until the node restarts, when the entry is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStopped {
    /// The entry's index.
    pub index: LogIndex,
    /// Why it could not be applied: the state machine's error, or the message of a panic.
    pub reason: String,
}

/// A replica of one group on this node.
pub struct Replica<S: StateMachine> {
    /// The group.
    pub group: GroupId,
    /// The Raft core.
    pub raft: RawNode,
    sm: S,
    applied: LogIndex,
    proposals: BTreeMap<LogIndex, PendingProposal<S::Output>>,
    reads_awaiting_index: BTreeMap<u64, Vec<PendingRead<S>>>,
    reads_awaiting_apply: Vec<(LogIndex, Vec<PendingRead<S>>)>,
    next_read_ctx: u64,
    applied_since_snapshot: u64,
    /// Bytes of the entries applied since the last snapshot.
    applied_bytes_since_snapshot: u64,
    /// Size of the last snapshot taken, installed or recovered from (0 without one).
    last_snapshot_bytes: u64,
    role: PeerRole,
    /// Index of the last housekeeping command proposed here.
    housekeeping_index: Option<LogIndex>,
    /// Campaigns this replica started (the seed's election frequency).
    pub elections_started: u64,
    /// Campaigns this replica won.
    pub elections_won: u64,
    /// Set once an entry could not be applied: the replica then applies nothing more.
    stopped: Option<ApplyStopped>,
}

impl<S: StateMachine> Replica<S> {
    /// A replica whose state machine was restored from the snapshot `raft` starts from
    /// (`snapshot_bytes` long; 0 without one).
    pub fn new(group: GroupId, raft: RawNode, sm: S, applied: LogIndex, snapshot_bytes: u64) -> Replica<S> {
        let role = raft.role();
        Replica {
            group,
            raft,
            sm,
            applied,
            proposals: BTreeMap::new(),
            reads_awaiting_index: BTreeMap::new(),
            reads_awaiting_apply: Vec::new(),
            next_read_ctx: 1,
            applied_since_snapshot: 0,
            applied_bytes_since_snapshot: 0,
            last_snapshot_bytes: snapshot_bytes,
            role,
            housekeeping_index: None,
            elections_started: 0,
            elections_won: 0,
            stopped: None,
        }
    }

    /// Proposes commands as consecutive entries; each reply receives its command's output
    /// once applied. A batch is routed as a whole: on a follower every command is refused, so
    /// a batch is never split between leaders, and if a new leader drops part of it, it drops
    /// a suffix (the log commits prefixes), which the caller can retry in order.
    pub fn propose(&mut self, commands: Vec<Vec<u8>>, replies: Vec<Reply<S::Output>>) {
        if let Some(stopped) = &self.stopped {
            for reply in replies {
                let _ = reply.send(Err(stopped_error(self.group, stopped)));
            }
            return;
        }
        let count = commands.len() as u64;
        match self.raft.propose_batch(commands) {
            Ok(last) => {
                let term = self.raft.term();
                for (i, reply) in replies.into_iter().enumerate() {
                    let index = LogIndex(last.0 + 1 - count + i as u64);
                    self.proposals.insert(index, PendingProposal { term, reply });
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(Error::Consensus(e.clone())));
                }
            }
        }
    }

    /// Starts linearizable reads (one ReadIndex round for the whole batch); each reply
    /// receives its answer once the state machine has caught up with the confirmed index.
    pub fn read(&mut self, queries: Vec<S::Query>, replies: Vec<Reply<S::Output>>) {
        if let Some(stopped) = &self.stopped {
            for reply in replies {
                let _ = reply.send(Err(stopped_error(self.group, stopped)));
            }
            return;
        }
        if self.raft.role() != PeerRole::Leader {
            let leader = self.raft.leader();
            for reply in replies {
                let _ = reply.send(Err(Error::Consensus(ProposeError::NotLeader { leader })));
            }
            return;
        }
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match self.raft.read_index(ctx) {
            Ok(()) => {
                let reads =
                    queries.into_iter().zip(replies).map(|(query, reply)| PendingRead { query, reply });
                self.reads_awaiting_index.insert(ctx, reads.collect());
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(Error::Consensus(e.clone())));
                }
            }
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_awaiting_apply)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_awaiting_apply = waiting;
        for read in ready.into_iter().flat_map(|(_, reads)| reads) {
            let _ = read.reply.send(Ok(self.sm.query(&read.query)));
        }
    }

    /// Applies one committed command; a panic inside the state machine is caught and, like an
    /// error, reported as the reason the command cannot be applied.
    fn apply_command(&mut self, index: LogIndex, command: &[u8]) -> Result<S::Output, String> {
        let sm = &mut self.sm;
        catch_unwind(AssertUnwindSafe(|| sm.apply(index, command)))
            .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(panic.as_ref()))))
    }

    /// Stops applying this group at `index` (the state machine may be half way through that
    /// entry, so nothing may read or change it any more) and fails every request waiting on it.
    fn stop_applying(&mut self, index: LogIndex, reason: String) {
        tracing::error!(
            group = self.group.0,
            index = index.0,
            %reason,
            "cannot apply a committed entry: this group stops on this node, the others go on"
        );
        let stopped = ApplyStopped { index, reason };
        let error = || Err(stopped_error(self.group, &stopped));
        for pending in std::mem::take(&mut self.proposals).into_values() {
            let _ = pending.reply.send(error());
        }
        let awaiting_index = std::mem::take(&mut self.reads_awaiting_index).into_values().flatten();
        let awaiting_apply = std::mem::take(&mut self.reads_awaiting_apply).into_iter().flat_map(|(_, r)| r);
        for read in awaiting_index.chain(awaiting_apply) {
            let _ = read.reply.send(error());
        }
        self.stopped = Some(stopped);
    }

    fn housekeeping_in_flight(&self) -> bool {
        self.housekeeping_index.is_some_and(|index| index > self.applied)
    }

    /// The last applied index.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// The state machine, as of the last applied entry.
    pub fn state(&self) -> &S {
        &self.sm
    }
}

/// What the runtime does with every replica it hosts, whatever its state machine: the Ready
/// steps after persisting, and the upkeep around them.
pub trait GroupReplica: Send {
    /// The Raft core.
    fn raft(&mut self) -> &mut RawNode;

    /// Loads a snapshot received from the leader into the state machine.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), Error>;

    /// Applies committed entries in order and answers the proposals they settle. An entry
    /// that cannot be applied stops the replica ([`ApplyStopped`]).
    fn apply(&mut self, entries: Vec<Entry>);

    /// Set once the replica stopped applying its log: the runtime then leaves it alone.
    fn apply_stopped(&self) -> Option<&ApplyStopped>;

    /// Records confirmed read indexes and serves the reads whose index is applied.
    fn confirm_reads(&mut self, states: Vec<ReadState>);

    /// After a role change: a replica that stopped leading fails its pending reads (they can
    /// be retried at the new leader); proposals stay, since they may still commit.
    fn observe_role(&mut self);

    /// Whether enough was applied since the last snapshot to take a new one.
    fn wants_snapshot(&self, entries_between_snapshots: u64) -> bool;

    /// Size of the last snapshot taken, installed or recovered from (0 without one).
    fn last_snapshot_bytes(&self) -> u64;

    /// Starts a snapshot of the state machine at the applied index, for a checkpoint: its
    /// metadata, and the job that serializes it (run anywhere; see
    /// [`StateMachine::snapshot_job`]). Entries applied from now on count towards the next one.
    fn begin_snapshot(&mut self) -> Result<(SnapshotMeta, SnapshotJob), Error>;

    /// Records a snapshot made from [`GroupReplica::begin_snapshot`], once saved, so it can be
    /// sent to followers. False if the log moved past it meanwhile (a newer snapshot was
    /// installed).
    fn adopt_snapshot(&mut self, snapshot: Snapshot) -> bool;

    /// On the leader: proposes the state machine's housekeeping command, if it has one and no
    /// earlier one is still in flight.
    fn housekeeping(&mut self, now_ms: u64);

    /// Campaigns started and won here (the seed's election frequency).
    fn elections(&self) -> (u64, u64);
}

impl<S: StateMachine> GroupReplica for Replica<S> {
    fn raft(&mut self) -> &mut RawNode {
        &mut self.raft
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        self.sm = S::restore(&snapshot.data).map_err(|reason| {
            Error::State(format!(
                "snapshot of group {} at {} is unreadable: {reason}",
                self.group.0, snapshot.meta.index
            ))
        })?;
        self.applied = snapshot.meta.index;
        self.applied_since_snapshot = 0;
        self.applied_bytes_since_snapshot = 0;
        self.last_snapshot_bytes = snapshot.data.len() as u64;
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if entry.index <= self.applied {
                continue;
            }
            if self.stopped.is_some() {
                return;
            }
            let output = match &entry.payload {
                EntryPayload::Command(data) => match self.apply_command(entry.index, data) {
                    Ok(output) => Some(output),
                    Err(reason) => return self.stop_applying(entry.index, reason),
                },
                EntryPayload::Empty | EntryPayload::ConfChange(_) => None,
            };
            self.applied = entry.index;
            self.applied_since_snapshot += 1;
            self.applied_bytes_since_snapshot += entry.size_bytes() as u64;
            if let Some(pending) = self.proposals.remove(&entry.index) {
                let result = match output {
                    Some(out) if pending.term == entry.term => Ok(out),
                    _ => Err(Error::ProposalDropped { group: self.group.0 }),
                };
                let _ = pending.reply.send(result);
            }
        }
        self.serve_reads();
    }

    fn apply_stopped(&self) -> Option<&ApplyStopped> {
        self.stopped.as_ref()
    }

    fn confirm_reads(&mut self, states: Vec<ReadState>) {
        for state in states {
            if let Some(reads) = self.reads_awaiting_index.remove(&state.ctx) {
                self.reads_awaiting_apply.push((state.index, reads));
            }
        }
        self.serve_reads();
    }

    fn observe_role(&mut self) {
        let role = self.raft.role();
        if role == self.role {
            return;
        }
        match role {
            PeerRole::Candidate => self.elections_started += 1,
            PeerRole::Leader => self.elections_won += 1,
            PeerRole::Follower => {}
        }
        if self.role == PeerRole::Leader {
            let leader = self.raft.leader();
            for read in std::mem::take(&mut self.reads_awaiting_index).into_values().flatten() {
                let _ = read.reply.send(Err(Error::Consensus(ProposeError::NotLeader { leader })));
            }
        }
        self.role = role;
    }

    fn wants_snapshot(&self, entries_between_snapshots: u64) -> bool {
        snapshot_due(
            self.applied_since_snapshot,
            self.applied_bytes_since_snapshot,
            self.last_snapshot_bytes,
            entries_between_snapshots,
        )
    }

    fn last_snapshot_bytes(&self) -> u64 {
        self.last_snapshot_bytes
    }

    fn begin_snapshot(&mut self) -> Result<(SnapshotMeta, SnapshotJob), Error> {
        let meta = self
            .raft
            .snapshot_meta(self.applied)
            .map_err(|e| Error::State(format!("snapshot of group {}: {e}", self.group.0)))?;
        self.applied_since_snapshot = 0;
        self.applied_bytes_since_snapshot = 0;
        Ok((meta, self.sm.snapshot_job()))
    }

    fn adopt_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let bytes = snapshot.data.len() as u64;
        match self.raft.adopt_snapshot(snapshot) {
            Ok(()) => {
                self.last_snapshot_bytes = bytes;
                true
            }
            Err(e) => {
                tracing::debug!(group = self.group.0, error = %e, "snapshot not adopted");
                false
            }
        }
    }

    fn housekeeping(&mut self, now_ms: u64) {
        if self.raft.role() != PeerRole::Leader || self.housekeeping_in_flight() {
            return;
        }
        if let Some(command) = self.sm.housekeeping(now_ms) {
            if let Ok(index) = self.raft.propose(command) {
                self.housekeeping_index = Some(index);
            }
        }
    }

    fn elections(&self) -> (u64, u64) {
        (self.elections_started, self.elections_won)
    }
}

/// The error a request to a stopped group gets.
fn stopped_error(group: GroupId, stopped: &ApplyStopped) -> Error {
    Error::State(format!(
        "group {} stopped applying its log on this node at index {}: {}",
        group.0, stopped.index, stopped.reason
    ))
}

/// The message a panic was raised with, when it is text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_waits_for_a_log_as_large_as_the_last_one_within_a_bound() {
        // Small state: every `entries_between_snapshots` entries, as before.
        assert!(!snapshot_due(99, 10_000, 1_000, 100));
        assert!(snapshot_due(100, 10_000, 1_000, 100));
        assert!(snapshot_due(100, 0, 0, 100), "no snapshot yet");
        // Large state: until the log since the last snapshot is as large as it...
        assert!(!snapshot_due(100, 10_000, 1_000_000, 100));
        assert!(!snapshot_due(1_999, 999_999, 1_000_000, 100));
        assert!(snapshot_due(1_000, 1_000_000, 1_000_000, 100));
        // ...but never more than SNAPSHOT_DEFERRAL_MAX times the entry count.
        assert!(snapshot_due(100 * SNAPSHOT_DEFERRAL_MAX, 10, u64::MAX, 100));
        assert!(!snapshot_due(u64::MAX - 1, 0, u64::MAX, u64::MAX));
    }
}
