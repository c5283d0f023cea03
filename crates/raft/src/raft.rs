//! The Raft state machine of one node: roles, terms, and the dispatch of every input.
//!
//! The rules live in submodules, one concern each: [`election`] (campaigns, votes, check-quorum,
//! leader transfer), [`replication`] (appends, flow control, the commit rule), [`read_index`]
//! (linearizable reads) and [`snapshot`] (compaction, installing snapshots, membership history).
//! Output accumulates in `msgs` and `read_states` until the caller collects a `Ready`.

mod election;
mod read_index;
mod replication;
mod snapshot;

use crate::config::Config;
use crate::error::{ProposeError, RecoveryError};
use crate::log::RaftLog;
use crate::membership::{ConfChange, Membership};
use crate::message::{Entry, EntryPayload, HardState, Message, MessageBody, Snapshot};
use crate::tracker::ReplicationProgress;
use crate::types::{LogIndex, NodeId, PeerRole, Term};
pub(crate) use election::Campaign;
use rand_core::RngCore;
use read_index::ReadQueue;
use std::collections::BTreeMap;

/// Deliberate protocol bugs, planted only to prove that the simulator catches them. They take
/// effect only in builds with the `canaries` feature, through `Config::canary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canary {
    /// (a) Grant a vote to every candidate of a term, not just the first.
    DoubleVote,
    /// (b) Commit an entry of a previous term by counting replicas (Raft paper, figure 8).
    CommitPreviousTerm,
    /// (c) On append, keep a conflicting suffix instead of truncating it.
    NoTruncate,
    /// (d) Answer ReadIndex without confirming leadership with a quorum.
    ReadWithoutConfirm,
}

/// A client read made linearizable: serve it once the state machine has applied `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// The application's request id given to `read_index`.
    pub ctx: u64,
    /// The commit index at the time the read was confirmed.
    pub index: LogIndex,
}

/// Everything a node needs from its durable state to restart (or to start for the first time).
#[derive(Debug, Clone, Default)]
pub struct RecoveredState {
    /// The persisted hard state.
    pub hard_state: HardState,
    /// The latest persisted snapshot; for a brand-new cluster, one at index 0 holding the
    /// initial membership (see [`RecoveredState::bootstrap`]).
    pub snapshot: Option<Snapshot>,
    /// The persisted entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl RecoveredState {
    /// The state of a member of a brand-new group with the given voters.
    ///
    /// Every founding member starts from the same snapshot at index 1, term 1, holding the
    /// initial membership and an empty state machine. Because the membership is in a
    /// snapshot rather than only in local configuration, a node that joins later receives it
    /// like any other state: the leader cannot send entry 1 and sends this snapshot instead.
    pub fn bootstrap(voters: impl IntoIterator<Item = NodeId>) -> RecoveredState {
        let mut snapshot = Snapshot::default();
        snapshot.meta.index = LogIndex(1);
        snapshot.meta.term = Term(1);
        snapshot.meta.membership = Membership::with_voters(voters);
        RecoveredState { snapshot: Some(snapshot), ..RecoveredState::default() }
    }
}

/// Internal role, distinguishing the pre-vote phase from a real candidacy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// The Raft protocol state of one node. Driven by [`crate::RawNode`].
pub struct Raft {
    pub(crate) id: NodeId,
    pub(crate) cfg: Config,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    /// Membership at the snapshot index.
    base_membership: Membership,
    /// Membership after each configuration entry in the log, in log order.
    conf_history: Vec<(LogIndex, Membership)>,
    /// The membership in force: that of the last configuration entry in the log.
    pub(crate) membership: Membership,
    /// Leader only: each other member's replication progress.
    pub(crate) progress: BTreeMap<NodeId, ReplicationProgress>,
    /// Candidate only: votes received in this campaign.
    votes: BTreeMap<NodeId, bool>,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_election_timeout: u32,
    /// Leader only: the node leadership is being handed to.
    pub(crate) transferee: Option<NodeId>,
    /// Leader only: the commit index moved since followers were last told.
    commit_unannounced: bool,
    reads: ReadQueue,
    /// The latest snapshot, kept to send to followers whose entries were compacted.
    pub(crate) snapshot: Option<Snapshot>,
    /// A snapshot received from the leader, to be handed to the application.
    pub(crate) snapshot_to_install: Option<Snapshot>,
    pub(crate) msgs: Vec<Message>,
    pub(crate) read_states: Vec<ReadState>,
    rng: Box<dyn RngCore + Send>,
}

impl Raft {
    /// A node restarted from `state`, as a follower.
    pub fn new(
        cfg: Config,
        state: RecoveredState,
        rng: Box<dyn RngCore + Send>,
    ) -> Result<Raft, RecoveryError> {
        cfg.validate().map_err(|e| RecoveryError(e.to_string()))?;
        let snapshot = state.snapshot.unwrap_or_default();
        let (snap_index, snap_term) = (snapshot.meta.index, snapshot.meta.term);
        for (i, entry) in state.entries.iter().enumerate() {
            if entry.index.0 != snap_index.0 + 1 + i as u64 {
                return Err(RecoveryError(format!(
                    "entry {} follows snapshot {} at position {i}: the log has a gap",
                    entry.index, snap_index
                )));
            }
        }
        let log = RaftLog::recovered(snap_index, snap_term, state.entries, state.hard_state.commit);
        let mut raft = Raft {
            id: cfg.id,
            term: state.hard_state.term,
            vote: state.hard_state.vote,
            log,
            role: Role::Follower,
            leader: None,
            base_membership: snapshot.meta.membership.clone(),
            conf_history: Vec::new(),
            membership: snapshot.meta.membership.clone(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: cfg.election_timeout_ticks,
            transferee: None,
            commit_unannounced: false,
            reads: ReadQueue::default(),
            snapshot: (snap_index > LogIndex(0)).then_some(snapshot),
            snapshot_to_install: None,
            msgs: Vec::new(),
            read_states: Vec::new(),
            rng,
            cfg,
        };
        let entries = raft.log.slice(raft.log.first_index(), raft.log.last_index(), usize::MAX, usize::MAX);
        raft.track_conf_changes(&entries);
        raft.reset_election_timer();
        Ok(raft)
    }

    /// The role as the seed names it.
    pub fn peer_role(&self) -> PeerRole {
        match self.role {
            Role::Follower => PeerRole::Follower,
            Role::PreCandidate | Role::Candidate => PeerRole::Candidate,
            Role::Leader => PeerRole::Leader,
        }
    }

    /// The durable part of the state.
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.log.committed() }
    }

    /// Whether this node may campaign: it is a voter of the membership in its log.
    fn promotable(&self) -> bool {
        self.membership.is_voter(self.id)
    }

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.msgs.push(Message { from: self.id, to, term, body });
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
    }

    /// Processes one message from a peer.
    pub fn step(&mut self, m: Message) {
        if m.to != self.id || m.from == self.id {
            return;
        }
        if m.term > self.term {
            if !self.adopt_higher_term(&m) {
                return;
            }
        } else if m.term < self.term {
            self.answer_stale_term(&m);
            return;
        }
        if let MessageBody::Vote { pre, last_index, last_term, .. } = m.body {
            self.handle_vote_request(m.from, m.term, pre, last_index, last_term);
            return;
        }
        match self.role {
            Role::Leader => self.step_leader(m),
            Role::PreCandidate | Role::Candidate => self.step_candidate(m),
            Role::Follower => self.step_follower(m),
        }
    }

    /// Reacts to a message of a higher term; returns false if the message must be dropped.
    fn adopt_higher_term(&mut self, m: &Message) -> bool {
        match m.body {
            MessageBody::Vote { pre, transfer, .. } => {
                let in_lease = self.cfg.check_quorum
                    && self.leader.is_some()
                    && self.election_elapsed < self.cfg.election_timeout_ticks;
                if in_lease && !transfer {
                    // We hear from a live leader: this candidate is likely partitioned away.
                    return false;
                }
                if !pre {
                    // Adopt the term, but keep the election clock running: only a granted
                    // vote or a leader's message resets it (Raft, figure 2). Otherwise a node
                    // with a stale log that keeps campaigning, such as a removed node that
                    // never learned of its removal, would stop everyone else from ever
                    // timing out and electing a leader.
                    let elapsed = self.election_elapsed;
                    self.become_follower(m.term, None);
                    self.election_elapsed = elapsed;
                }
            }
            // A granted pre-vote carries the term the candidate will campaign in.
            MessageBody::VoteResponse { pre: true, reject: false } => {}
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => self.become_follower(m.term, Some(m.from)),
            _ => self.become_follower(m.term, None),
        }
        true
    }

    /// Answers a message from an older term so its sender can catch up, where that helps.
    fn answer_stale_term(&mut self, m: &Message) {
        match m.body {
            // A deposed leader: our term makes it step down (Raft, figure 2: every reply
            // carries the current term). Otherwise a leader that a majority still follows in
            // its old term would never learn of the newer term of a member it needs, and that
            // member would never receive the log again.
            MessageBody::Append { .. } | MessageBody::Heartbeat { .. } => {
                self.send(
                    m.from,
                    MessageBody::AppendResponse {
                        reject: true,
                        index: LogIndex(0),
                        hint_index: LogIndex(0),
                        hint_term: Term(0),
                    },
                );
            }
            // A candidate behind on terms learns ours from the refusal (Raft, figure 2: every
            // reply carries the current term); otherwise it could campaign in stale terms
            // forever while the voter it needs never answers.
            MessageBody::Vote { pre, .. } => {
                self.send(m.from, MessageBody::VoteResponse { pre, reject: true });
            }
            _ => {}
        }
    }

    fn step_follower(&mut self, m: Message) {
        match m.body {
            MessageBody::Append { prev_index, prev_term, entries, commit } => {
                self.hear_from_leader(m.from);
                self.handle_append(m.from, prev_index, prev_term, entries, commit);
            }
            MessageBody::Heartbeat { commit, read_round } => {
                self.hear_from_leader(m.from);
                self.handle_heartbeat(m.from, commit, read_round);
            }
            MessageBody::InstallSnapshot { snapshot } => {
                self.hear_from_leader(m.from);
                self.handle_snapshot(m.from, snapshot);
            }
            MessageBody::TimeoutNow => self.campaign(Campaign::Transfer),
            MessageBody::ReadIndexResponse { ctx, index } => {
                self.read_states.push(ReadState { ctx, index });
            }
            _ => {}
        }
    }

    fn step_candidate(&mut self, m: Message) {
        match m.body {
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                // A leader won this term: follow it.
                self.become_follower(m.term, Some(m.from));
                self.step_follower(m);
            }
            MessageBody::VoteResponse { pre, reject } => self.handle_vote_response(m.from, pre, reject),
            _ => {}
        }
    }

    fn step_leader(&mut self, m: Message) {
        if let Some(pr) = self.progress.get_mut(&m.from) {
            pr.recent_active = true;
            pr.silent_ticks = 0;
        }
        match m.body {
            MessageBody::AppendResponse { reject, index, hint_index, hint_term } => {
                self.handle_append_response(m.from, reject, index, hint_index, hint_term);
            }
            MessageBody::HeartbeatResponse { read_round } => {
                self.handle_heartbeat_response(m.from, read_round);
            }
            MessageBody::ReadIndex { ctx } => self.handle_read_request(m.from, ctx),
            _ => {}
        }
    }

    fn hear_from_leader(&mut self, leader: NodeId) {
        self.election_elapsed = 0;
        self.leader = Some(leader);
    }

    /// Appends client commands as new entries of the current term. Returns the index of the last.
    pub fn propose(&mut self, commands: impl IntoIterator<Item = Vec<u8>>) -> Result<LogIndex, ProposeError> {
        self.check_can_propose()?;
        let before = self.log.last_index();
        let term = self.term;
        let mut index = before;
        self.log.append(commands.into_iter().map(|data| {
            index = index.next();
            Entry { index, term, payload: EntryPayload::Command(data) }
        }));
        self.after_leader_append();
        Ok(self.log.last_index())
    }

    /// Appends a membership change, if one may be made now. Returns its index.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<LogIndex, ProposeError> {
        self.check_can_propose()?;
        if self.log.term(self.log.committed()) != Some(self.term) {
            return Err(ProposeError::ConfChangeTooEarly);
        }
        if let Some(&(index, _)) = self.conf_history.last() {
            if index > self.log.committed() {
                return Err(ProposeError::ConfChangeInProgress { index });
            }
        }
        self.membership.apply(change).map_err(ProposeError::InvalidConfChange)?;
        let entry = Entry {
            index: self.log.last_index().next(),
            term: self.term,
            payload: EntryPayload::ConfChange(change),
        };
        self.log.append([entry.clone()]);
        self.track_conf_changes(&[entry]);
        self.after_leader_append();
        Ok(self.log.last_index())
    }

    /// Whether the membership in force comes from a change not yet committed.
    pub(crate) fn membership_uncommitted(&self) -> bool {
        self.conf_history.last().is_some_and(|&(index, _)| index > self.log.committed())
    }

    fn check_can_propose(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { leader: self.leader });
        }
        if self.transferee.is_some() {
            return Err(ProposeError::LeaderTransferring);
        }
        let uncommitted = (self.log.last_index().0 - self.log.committed().0) as usize;
        if uncommitted >= self.cfg.uncommitted_entries_max {
            return Err(ProposeError::TooManyUncommitted { limit: self.cfg.uncommitted_entries_max });
        }
        Ok(())
    }

    /// Draws a new randomized election timeout and restarts the election clock.
    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let base = self.cfg.election_timeout_ticks;
        self.randomized_election_timeout = base + (self.rng.next_u64() % u64::from(base)) as u32;
    }

    /// Leaves any leader or candidate role; adopts `term` if it is newer.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        if self.role != Role::Follower {
            tracing::debug!(id = %self.id, term = %self.term, "became follower");
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.leave_leadership();
        self.reset_election_timer();
    }

    /// Drops the state only a leader keeps.
    fn leave_leadership(&mut self) {
        self.progress.clear();
        self.votes.clear();
        self.transferee = None;
        self.commit_unannounced = false;
        self.reads = ReadQueue::default();
    }

    /// Whether a canary is planted (always false without the `canaries` feature).
    #[cfg(feature = "canaries")]
    pub(crate) fn canary(&self, canary: Canary) -> bool {
        self.cfg.canary == Some(canary)
    }

    #[cfg(not(feature = "canaries"))]
    #[inline(always)]
    pub(crate) fn canary(&self, _canary: Canary) -> bool {
        false
    }
}
