//! One node's replica of one Raft group: the Raft core, the state machine it feeds, and the
//! client requests waiting on it.
//!
//! Time comes from the leader. As leader, a replica stamps every command it proposes with the
//! entry's time: the later of its clock and the previous entry's time in its log, so entry
//! times never decrease along the log, across terms and failovers, whatever each leader's clock
//! says. It answers reads at the later of its clock and the log's time; a read that would see a
//! time-dependent change (a key expiring) the log has not reached yet first commits a command
//! stamped with that time ([`StateMachine::time_entry`]), so no later leader answers as of an
//! earlier time. See docs/raft.md, "Time".

use super::clock::WallClock;
use super::raft_storage::{image_bytes, RaftStorage};
use super::state_machine::{SnapshotJob, StateMachine};
use crate::error::Error;
use crate::limits::COMMAND_BYTES_MAX;
use crate::storage::wal::GroupId;
use ppdb_raft::{
    Entry, EntryPayload, LogIndex, PeerRole, ProposeError, RawNode, ReadState, Snapshot, SnapshotMeta, Term,
};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
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
    /// Answered at the log's time, once the time entry committed for it is applied.
    at_log_time: bool,
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
    /// The clock this replica stamps entries and answers reads with, as leader.
    clock: Arc<dyn WallClock>,
    /// The time of the last entry stamped here, and the term it was stamped in.
    last_stamp: Option<(Term, u64)>,
    /// Campaigns this replica started (the seed's election frequency).
    pub elections_started: u64,
    /// Campaigns this replica won.
    pub elections_won: u64,
    /// Set once an entry could not be applied: the replica then applies nothing more.
    stopped: Option<ApplyStopped>,
}

impl<S: StateMachine> Replica<S> {
    /// A replica whose state machine was restored from the snapshot `raft` starts from
    /// (`snapshot_bytes` long; 0 without one), reading time from `clock` as leader.
    pub fn new(
        group: GroupId,
        raft: RawNode,
        sm: S,
        applied: LogIndex,
        snapshot_bytes: u64,
        clock: Arc<dyn WallClock>,
    ) -> Replica<S> {
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
            clock,
            last_stamp: None,
            elections_started: 0,
            elections_won: 0,
            stopped: None,
        }
    }

    /// Proposes commands as consecutive entries; each reply receives its command's output
    /// once applied. A batch is routed as a whole: on a follower every command is refused, so
    /// a batch is never split between leaders, and if a new leader drops part of it, it drops
    /// a suffix (the log commits prefixes), which the caller can retry in order. A command
    /// larger than one entry may carry is refused here, before Raft sees it, so every entry
    /// fits a frame and a WAL record (`crate::limits`).
    pub fn propose(&mut self, commands: Vec<Vec<u8>>, replies: Vec<Reply<S::Output>>) {
        if let Some(stopped) = &self.stopped {
            for reply in replies {
                let _ = reply.send(Err(stopped_error(self.group, stopped)));
            }
            return;
        }
        let (mut commands, replies): (Vec<Vec<u8>>, Vec<_>) =
            commands.into_iter().zip(replies).filter_map(refuse_oversized::<S>).unzip();
        if commands.is_empty() {
            return;
        }
        let count = commands.len() as u64;
        if self.raft.role() == PeerRole::Leader {
            let clock_ms = self.clock.now_ms();
            for command in &mut commands {
                let time_ms = self.next_entry_time(clock_ms);
                S::stamp(command, time_ms);
            }
        }
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
                let reads = queries.into_iter().zip(replies).map(|(query, reply)| PendingRead {
                    query,
                    reply,
                    at_log_time: false,
                });
                self.reads_awaiting_index.insert(ctx, reads.collect());
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(Error::Consensus(e.clone())));
                }
            }
        }
    }

    /// Answers the reads whose index is applied, at this replica's clock (or the log's time if
    /// later). A read whose answer at the clock needs a time the log has not reached waits for
    /// a time entry (one for all such reads of this call), then is answered at the log's time.
    fn serve_reads(&mut self) {
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_awaiting_apply)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_awaiting_apply = waiting;
        let now_ms = self.clock.now_ms();
        let mut time_entry: Option<LogIndex> = None;
        let mut held = Vec::new();
        for mut read in ready.into_iter().flat_map(|(_, reads)| reads) {
            if read.at_log_time {
                let _ = read.reply.send(Ok(self.sm.query(&read.query, self.sm.time_ms())));
                continue;
            }
            let Some(command) = self.sm.time_entry(&read.query, now_ms) else {
                let _ = read.reply.send(Ok(self.sm.query(&read.query, now_ms)));
                continue;
            };
            let index = match time_entry {
                Some(index) => Ok(index),
                None => self.propose_stamped(command, now_ms),
            };
            match index {
                Ok(index) => {
                    time_entry = Some(index);
                    read.at_log_time = true;
                    held.push(read);
                }
                Err(e) => {
                    let _ = read.reply.send(Err(Error::Consensus(e)));
                }
            }
        }
        if let Some(index) = time_entry {
            self.reads_awaiting_apply.push((index, held));
        }
    }

    /// Proposes one command stamped with the next entry time at `clock_ms`.
    fn propose_stamped(&mut self, mut command: Vec<u8>, clock_ms: u64) -> Result<LogIndex, ProposeError> {
        if self.raft.role() != PeerRole::Leader {
            return Err(ProposeError::NotLeader { leader: self.raft.leader() });
        }
        let time_ms = self.next_entry_time(clock_ms);
        S::stamp(&mut command, time_ms);
        self.raft.propose(command)
    }

    /// The time of the next entry this leader proposes: its clock `clock_ms`, or the previous
    /// entry's time if later. The first time in a term, the previous entry is the last one in
    /// its log, whoever stamped it.
    fn next_entry_time(&mut self, clock_ms: u64) -> u64 {
        let term = self.raft.term();
        let previous = match self.last_stamp {
            Some((stamped_in, time_ms)) if stamped_in == term => time_ms,
            _ => self.log_time(),
        };
        let time_ms = clock_ms.max(previous);
        self.last_stamp = Some((term, time_ms));
        time_ms
    }

    /// The latest entry time in this replica's log: the state machine's for the applied
    /// entries, the entries' own for the others (kept in memory until applied).
    fn log_time(&self) -> u64 {
        let unapplied = (self.applied.0 + 1..=self.raft.last_index().0)
            .filter_map(|index| self.raft.entry(LogIndex(index)))
            .filter_map(|entry| match &entry.payload {
                EntryPayload::Command(data) => S::stamped_time(data),
                EntryPayload::Empty | EntryPayload::ConfChange(_) => None,
            });
        unapplied.fold(self.sm.time_ms(), u64::max)
    }

    /// Answers the proposals a snapshot from the leader moved the applied index past: their
    /// entries will never be applied here, so their outputs will never be known. The
    /// snapshot's last entry is from an older term than a proposal: the proposal's entry was
    /// not committed (every committed entry up to the snapshot is from that term or older), a
    /// definite drop, safe to retry. Otherwise it may have been committed: the outcome is
    /// unknown.
    fn release_proposals_covered_by(&mut self, meta: &SnapshotMeta) {
        let beyond = self.proposals.split_off(&LogIndex(meta.index.0.saturating_add(1)));
        let covered = std::mem::replace(&mut self.proposals, beyond);
        for (index, pending) in covered {
            let error = if meta.term < pending.term {
                Error::ProposalDropped { group: self.group.0 }
            } else {
                Error::OutcomeUnknown { group: self.group.0, index: index.0 }
            };
            let _ = pending.reply.send(Err(error));
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

    /// Loads a snapshot received from the leader into the state machine, streaming its image
    /// from the file in `storage`.
    fn install_snapshot(&mut self, snapshot: &Snapshot, storage: &RaftStorage) -> Result<(), Error>;

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

    /// On the leader: proposes the state machine's housekeeping command at this replica's
    /// clock, if it has one and no earlier one is still in flight.
    fn housekeeping(&mut self);

    /// Campaigns started and won here (the seed's election frequency).
    fn elections(&self) -> (u64, u64);
}

impl<S: StateMachine> GroupReplica for Replica<S> {
    fn raft(&mut self) -> &mut RawNode {
        &mut self.raft
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot, storage: &RaftStorage) -> Result<(), Error> {
        self.sm = storage.restore(self.group, snapshot, S::restore_from).map_err(|reason| {
            Error::State(format!(
                "snapshot of group {} at {} is unreadable: {reason}",
                self.group.0, snapshot.meta.index
            ))
        })?;
        self.applied = snapshot.meta.index;
        self.release_proposals_covered_by(&snapshot.meta);
        self.applied_since_snapshot = 0;
        self.applied_bytes_since_snapshot = 0;
        self.last_snapshot_bytes = image_bytes(snapshot);
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
        let bytes = image_bytes(&snapshot);
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

    fn housekeeping(&mut self) {
        if self.raft.role() != PeerRole::Leader || self.housekeeping_in_flight() {
            return;
        }
        let now_ms = self.clock.now_ms();
        if let Some(command) = self.sm.housekeeping(now_ms) {
            if let Ok(index) = self.propose_stamped(command, now_ms) {
                self.housekeeping_index = Some(index);
            }
        }
    }

    fn elections(&self) -> (u64, u64) {
        (self.elections_started, self.elections_won)
    }
}

/// The command and its reply, unless the command is larger than a log entry may carry: then
/// the reply is answered with [`Error::CommandTooLarge`].
fn refuse_oversized<S: StateMachine>(
    (command, reply): (Vec<u8>, Reply<S::Output>),
) -> Option<(Vec<u8>, Reply<S::Output>)> {
    if command.len() <= COMMAND_BYTES_MAX {
        return Some((command, reply));
    }
    tracing::debug!(bytes = command.len(), limit = COMMAND_BYTES_MAX, "command too large; refused");
    let _ = reply.send(Err(Error::CommandTooLarge { bytes: command.len(), limit: COMMAND_BYTES_MAX }));
    None
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
    use crate::node::directory::{Directory, DirectoryOutput};
    use ppdb_raft::{Config, Membership, NodeId, RecoveredState};
    use rand::SeedableRng;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::sync::oneshot::error::TryRecvError;

    /// A state machine whose commands are their 8-byte entry time and nothing else.
    #[derive(Debug, Default)]
    struct Times {
        last_ms: u64,
    }

    impl StateMachine for Times {
        type Query = ();
        type Output = u64;

        fn apply(&mut self, _: LogIndex, command: &[u8]) -> Result<u64, String> {
            self.last_ms = self.last_ms.max(Self::stamped_time(command).unwrap_or(0));
            Ok(self.last_ms)
        }

        fn query(&self, _: &(), _now_ms: u64) -> u64 {
            self.last_ms
        }

        fn snapshot(&self) -> Vec<u8> {
            self.last_ms.to_le_bytes().to_vec()
        }

        fn restore(data: &[u8]) -> Result<Times, String> {
            Ok(Times { last_ms: Self::stamped_time(data).unwrap_or(0) })
        }

        fn stamp(command: &mut [u8], time_ms: u64) {
            if let Some(time) = command.get_mut(..8) {
                time.copy_from_slice(&time_ms.to_le_bytes());
            }
        }

        fn stamped_time(command: &[u8]) -> Option<u64> {
            command.get(..8)?.try_into().ok().map(u64::from_le_bytes)
        }

        fn time_ms(&self) -> u64 {
            self.last_ms
        }
    }

    /// A clock the test sets.
    #[derive(Debug, Default)]
    struct TestClock(AtomicU64);

    impl TestClock {
        fn set(&self, now_ms: u64) {
            self.0.store(now_ms, Ordering::Relaxed);
        }
    }

    impl WallClock for TestClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// The single voter of a group whose log holds entries of the given times (term 2, after
    /// the bootstrap snapshot at index 1, none applied), made leader in term 3.
    fn leader(entry_times_ms: &[u64], clock: Arc<TestClock>) -> Replica<Times> {
        let mut state = RecoveredState::bootstrap([NodeId(1)]);
        state.hard_state.term = Term(2);
        state.entries = (2..)
            .zip(entry_times_ms)
            .map(|(index, time_ms)| Entry {
                index: LogIndex(index),
                term: Term(2),
                payload: EntryPayload::Command(time_ms.to_le_bytes().to_vec()),
            })
            .collect();
        let rng = Box::new(rand::rngs::SmallRng::seed_from_u64(1));
        let raft = RawNode::new(Config::new(NodeId(1)), state, rng).expect("valid state");
        let mut replica = Replica::new(GroupId(1), raft, Times::default(), LogIndex(1), 0, clock);
        replica.raft.campaign();
        for _ in 0..10 {
            if replica.raft.role() == PeerRole::Leader {
                break;
            }
            let _ = replica.raft.ready();
            replica.raft.advance();
        }
        assert_eq!(replica.raft.role(), PeerRole::Leader);
        assert_eq!(replica.raft.term(), Term(3));
        replica
    }

    /// Proposes one command; the entry time stamped on it.
    fn propose(replica: &mut Replica<Times>) -> u64 {
        let (reply, _) = oneshot::channel();
        replica.propose(vec![vec![0; 8]], vec![reply]);
        let last = replica.raft.last_index();
        let entry = replica.raft.entry(last).expect("the entry just proposed");
        match &entry.payload {
            EntryPayload::Command(data) => Times::stamped_time(data).expect("stamped"),
            other => panic!("entry {last} is {other:?}"),
        }
    }

    #[test]
    fn entry_times_follow_the_leaders_clock_but_never_go_back_with_it() {
        let clock = Arc::new(TestClock::default());
        clock.set(1_000);
        let mut replica = leader(&[], Arc::clone(&clock));
        assert_eq!(propose(&mut replica), 1_000);
        clock.set(1_500);
        assert_eq!(propose(&mut replica), 1_500);
        clock.set(400);
        assert_eq!(propose(&mut replica), 1_500, "the clock stepped back; the entry time did not");
        clock.set(2_000);
        assert_eq!(propose(&mut replica), 2_000);
    }

    #[test]
    fn a_new_leader_stamps_no_earlier_than_the_last_entry_in_its_log_applied_or_not() {
        // The previous leader's clock ran 8 s ahead of this one's.
        let clock = Arc::new(TestClock::default());
        clock.set(1_000);
        let mut replica = leader(&[5_000, 9_000], Arc::clone(&clock));
        assert_eq!(propose(&mut replica), 9_000);
        clock.set(9_500);
        assert_eq!(propose(&mut replica), 9_500);
    }

    /// The one voter of a group, leading it, with a proposal pending at index 3 (after its
    /// leadership's empty entry).
    fn leader_with_a_pending_proposal(
    ) -> (Replica<Directory>, oneshot::Receiver<Result<DirectoryOutput, Error>>) {
        let rng = Box::new(rand::rngs::SmallRng::seed_from_u64(7));
        let state = RecoveredState::bootstrap([NodeId(1)]);
        let raft = RawNode::new(Config::new(NodeId(1)), state, rng).unwrap_or_else(|e| panic!("{e}"));
        let mut replica = Replica::new(
            GroupId(0),
            raft,
            Directory::default(),
            LogIndex(1),
            0,
            Arc::new(TestClock::default()),
        );
        replica.raft.campaign();
        assert_eq!(replica.raft.role(), PeerRole::Leader);
        let (tx, rx) = oneshot::channel();
        replica.propose(vec![vec![2, 0, 0, 0, 0, 0, 0, 0, 1]], vec![tx]);
        (replica, rx)
    }

    fn snapshot(index: u64, term: Term) -> Snapshot {
        let membership = Membership::with_voters([NodeId(1)]);
        let meta = SnapshotMeta { index: LogIndex(index), term, membership };
        Snapshot { meta, data: Arc::new(Directory::default().snapshot()) }
    }

    /// Storage to install from: the test snapshots carry their image inline, not a file.
    fn storage() -> RaftStorage {
        let disk: Arc<dyn crate::storage::disk::Disk> = Arc::new(crate::storage::disk::SimDisk::new(1));
        let dir = std::path::Path::new("/node");
        let (storage, _) = RaftStorage::open(disk, dir, crate::storage::wal::WalConfig::default())
            .unwrap_or_else(|e| panic!("{e}"));
        storage
    }

    #[test]
    fn a_proposal_pending_across_a_snapshot_install_is_answered() {
        let storage = storage();
        let (mut replica, mut rx) = leader_with_a_pending_proposal();
        let term = replica.raft.term();
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        replica.install_snapshot(&snapshot(2, term), &storage).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)), "index 3 is past the snapshot");
        replica.install_snapshot(&snapshot(10, Term(term.0 + 1)), &storage).unwrap_or_else(|e| panic!("{e}"));
        let answer = rx.try_recv();
        assert!(
            matches!(answer, Ok(Err(Error::OutcomeUnknown { group: 0, index: 3 }))),
            "a later leader's snapshot may or may not hold it: {answer:?}"
        );

        let (mut replica, mut rx) = leader_with_a_pending_proposal();
        replica.install_snapshot(&snapshot(10, Term(0)), &storage).unwrap_or_else(|e| panic!("{e}"));
        let answer = rx.try_recv();
        assert!(
            matches!(answer, Ok(Err(Error::ProposalDropped { group: 0 }))),
            "a snapshot ending in an older term cannot hold it: {answer:?}"
        );
    }

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
