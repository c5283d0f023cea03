//! The caller's handle on a Raft node: inputs in, [`Ready`] out, [`RawNode::advance`] back.

use crate::config::Config;
use crate::error::{ProposeError, RecoveryError, SnapshotError};
use crate::log::PersistMark;
use crate::membership::{ConfChange, Membership};
use crate::message::{Entry, HardState, Message, Snapshot, SnapshotMeta};
use crate::raft::{Campaign, Raft, ReadState, RecoveredState, Role};
use crate::tracker::ProgressState;
use crate::types::{LogIndex, NodeId, PeerRole, Term};
use rand_core::RngCore;
use std::collections::VecDeque;

/// What the caller must do, in order, before calling [`RawNode::advance`]:
///
/// 1. persist `snapshot` (if any), then `entries` (replacing any persisted entries at or after
///    the first one's index), then `hard_state` (if any) — durably (fsync);
/// 2. send `messages` (those whose [`Message::can_send_before_persist`] is true may be sent
///    before or during step 1, which lets a leader replicate while it writes its own log);
/// 3. install `snapshot` into the state machine (if any), then apply `committed_entries` in
///    order, exactly once (without a snapshot, this may happen before or during step 1);
/// 4. serve each of `read_states` once the state machine has applied its index.
///
/// The caller may also *pipeline*: take the next Ready before the previous one's write is
/// durable (see the crate documentation, "Writes in flight").
#[derive(Debug, Default)]
#[must_use = "a Ready must be persisted, sent, applied, then advanced"]
pub struct Ready {
    /// The hard state to persist, when it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it and load it into the state machine.
    pub snapshot: Option<Snapshot>,
    /// Entries to persist, contiguous.
    pub entries: Vec<Entry>,
    /// Messages to send once the above is durable.
    pub messages: Vec<Message>,
    /// Committed entries to apply, in order.
    pub committed_entries: Vec<Entry>,
    /// Confirmed linearizable reads.
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
    }
}

/// A follower's replication state as the leader sees it, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerStatus {
    /// The follower.
    pub id: NodeId,
    /// Highest index known replicated on it.
    pub matched: LogIndex,
    /// Flow-control state.
    pub state: ProgressState,
    /// Ticks since the follower last answered this leader (0 right after an election).
    pub silent_ticks: u64,
}

/// A snapshot of the node's Raft state, for status pages and metrics.
#[derive(Debug, Clone)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: PeerRole,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: LogIndex,
    /// Highest index handed to the state machine.
    pub applied: LogIndex,
    /// Last log index.
    pub last_index: LogIndex,
    /// Index covered by the latest compaction.
    pub snapshot_index: LogIndex,
    /// The membership in force.
    pub membership: Membership,
    /// Whether `membership` comes from a change not yet committed (it may still be lost with
    /// a leader change).
    pub membership_uncommitted: bool,
    /// Leader only: each follower's progress.
    pub followers: Vec<FollowerStatus>,
}

/// A Raft node driven by the caller: the whole protocol, with no I/O of its own.
pub struct RawNode {
    raft: Raft,
    prev_hard_state: HardState,
    /// One element per Ready handed out and not yet acknowledged by `advance`, oldest first:
    /// the entries its write covers, if any.
    unacknowledged: VecDeque<Option<PersistMark>>,
}

impl RawNode {
    /// A node starting from `state` (see [`RecoveredState::bootstrap`] for a new group), with
    /// randomness for election timeouts drawn from `rng`.
    pub fn new(
        config: Config,
        state: RecoveredState,
        rng: Box<dyn RngCore + Send>,
    ) -> Result<RawNode, RecoveryError> {
        let raft = Raft::new(config, state, rng)?;
        let prev_hard_state = raft.hard_state();
        Ok(RawNode { raft, prev_hard_state, unacknowledged: VecDeque::new() })
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Feeds a message received from a peer. Stale or unexpected messages are dropped.
    pub fn step(&mut self, message: Message) {
        self.raft.step(message);
    }

    /// Proposes one client command; returns the index it will have if it commits.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<LogIndex, ProposeError> {
        self.raft.propose([command])
    }

    /// Proposes several client commands as consecutive entries; returns the last one's index.
    pub fn propose_batch(
        &mut self,
        commands: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<LogIndex, ProposeError> {
        self.raft.propose(commands)
    }

    /// Proposes a single-server membership change; returns its index.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<LogIndex, ProposeError> {
        self.raft.propose_conf_change(change)
    }

    /// Requests a linearizable read; its [`ReadState`] arrives in a later `Ready`.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ProposeError> {
        self.raft.read_index(ctx)
    }

    /// Hands leadership to `to` (leader only).
    pub fn transfer_leader(&mut self, to: NodeId) {
        self.raft.transfer_leader(to);
    }

    /// Starts an election now, as if the election timeout had passed.
    pub fn campaign(&mut self) {
        let kind = if self.raft.cfg.pre_vote { Campaign::PreVote } else { Campaign::Election };
        self.raft.campaign(kind);
    }

    /// Records the application's snapshot at `index` (already applied); returns it to persist.
    pub fn create_snapshot(&mut self, index: LogIndex, data: Vec<u8>) -> Result<Snapshot, SnapshotError> {
        self.raft.create_snapshot(index, data)
    }

    /// The metadata of a snapshot at `index` (already applied): the first half of
    /// [`RawNode::create_snapshot`], for an application that serializes its state elsewhere
    /// (off its event loop) and hands the result to [`RawNode::adopt_snapshot`].
    pub fn snapshot_meta(&self, index: LogIndex) -> Result<SnapshotMeta, SnapshotError> {
        self.raft.snapshot_meta(index)
    }

    /// Records a snapshot built from [`RawNode::snapshot_meta`]; fails if the log moved past it
    /// meanwhile (a newer snapshot was installed).
    pub fn adopt_snapshot(&mut self, snapshot: Snapshot) -> Result<(), SnapshotError> {
        self.raft.adopt_snapshot(snapshot)
    }

    /// Drops log entries up to `index`, which the latest snapshot must cover.
    pub fn compact(&mut self, index: LogIndex) -> Result<(), SnapshotError> {
        self.raft.compact(index)
    }

    /// Whether [`RawNode::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        r.leader_has_pending_sends()
            || r.hard_state() != self.prev_hard_state
            || r.snapshot_to_install.is_some()
            || r.log.handed_out() < r.log.last_index()
            || !r.msgs.is_empty()
            || r.log.applied() < r.log.committed()
            || !r.read_states.is_empty()
    }

    /// Collects what the caller must do now (see [`Ready`] for the order).
    pub fn ready(&mut self) -> Ready {
        let r = &mut self.raft;
        if r.role == Role::Leader {
            r.flush_appends();
            r.flush_reads();
        }
        let hard_state = r.hard_state();
        let (entries, mark) = r.log.hand_out();
        self.unacknowledged.push_back(mark);
        let committed_entries = r.log.unapplied();
        if let Some(last) = committed_entries.last() {
            r.log.applied_to(last.index);
        }
        let ready = Ready {
            hard_state: (hard_state != self.prev_hard_state).then_some(hard_state),
            snapshot: r.snapshot_to_install.take(),
            entries,
            messages: std::mem::take(&mut r.msgs),
            committed_entries,
            read_states: std::mem::take(&mut r.read_states),
        };
        self.prev_hard_state = hard_state;
        ready
    }

    /// Acknowledges the oldest [`Ready`] not acknowledged yet: its writes (and so those of
    /// every Ready before it) are durable. Call it once per Ready, in order.
    pub fn advance(&mut self) {
        if let Some(Some(mark)) = self.unacknowledged.pop_front() {
            self.raft.log.persisted_to(mark);
            if self.raft.role == Role::Leader {
                self.raft.maybe_commit();
            }
        }
    }

    /// The node's current hard state (term, vote, commit).
    pub fn hard_state(&self) -> HardState {
        self.raft.hard_state()
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.raft.id
    }

    /// The node's role.
    pub fn role(&self) -> PeerRole {
        self.raft.peer_role()
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.raft.term
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.leader
    }

    /// The membership in force (that of the latest configuration entry in the log).
    pub fn membership(&self) -> &Membership {
        &self.raft.membership
    }

    /// The commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.raft.log.committed()
    }

    /// The last index of the log.
    pub fn last_index(&self) -> LogIndex {
        self.raft.log.last_index()
    }

    /// The term of the entry at `index`, if the log holds it (or it is the snapshot's).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.raft.log.term(index)
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.raft.log.entry(index)
    }

    /// Index covered by the latest compaction.
    pub fn snapshot_index(&self) -> LogIndex {
        self.raft.log.snapshot_index()
    }

    /// A summary of the node's state.
    pub fn status(&self) -> Status {
        let r = &self.raft;
        Status {
            id: r.id,
            role: r.peer_role(),
            term: r.term,
            leader: r.leader,
            commit: r.log.committed(),
            applied: r.log.applied(),
            last_index: r.log.last_index(),
            snapshot_index: r.log.snapshot_index(),
            membership: r.membership.clone(),
            membership_uncommitted: r.membership_uncommitted(),
            followers: r
                .progress
                .iter()
                .map(|(&id, pr)| FollowerStatus {
                    id,
                    matched: pr.matched,
                    state: pr.state,
                    silent_ticks: pr.silent_ticks,
                })
                .collect(),
        }
    }
}
