//! Elections: timeouts, pre-vote and vote rounds, check-quorum and leader transfer.

use super::{Raft, Role};
use crate::message::{Entry, EntryPayload, MessageBody};
use crate::quorum::{tally, VoteResult};
use crate::tracker::ReplicationProgress;
use crate::types::{LogIndex, NodeId, Term};
use crate::Canary;

/// Why a node campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Campaign {
    /// Ask first whether a vote would be granted, without bumping the term.
    PreVote,
    /// A real election: bump the term and vote for ourselves.
    Election,
    /// A real election ordered by the leader (TimeoutNow): voters skip their lease check.
    Transfer,
}

impl Raft {
    /// Follower and candidate clock: campaign when no leader was heard for a randomized timeout.
    pub(super) fn tick_election(&mut self) {
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        // A node that may not campaign (a learner, or not a member) keeps counting, so that
        // its leader lease expires and it answers other candidates' vote requests.
        if self.election_elapsed >= self.randomized_election_timeout && self.promotable() {
            self.election_elapsed = 0;
            let kind = if self.cfg.pre_vote { Campaign::PreVote } else { Campaign::Election };
            self.campaign(kind);
        }
    }

    /// Leader clock: heartbeats, check-quorum, and the leader-transfer deadline.
    pub(super) fn tick_leader(&mut self) {
        for pr in self.progress.values_mut() {
            pr.silent_ticks = pr.silent_ticks.saturating_add(1);
        }
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_timeout_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                tracing::info!(id = %self.id, term = %self.term, "no quorum heard from: stepping down");
                self.become_follower(self.term, None);
                return;
            }
            // A transfer that did not finish within an election timeout is abandoned.
            self.transferee = None;
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_interval_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Whether a quorum of voters was heard from since the last check; resets the marks.
    fn quorum_recently_active(&mut self) -> bool {
        let mut active = usize::from(self.membership.is_voter(self.id));
        for (id, pr) in self.progress.iter_mut() {
            if self.membership.is_voter(*id) && pr.recent_active {
                active += 1;
            }
            pr.recent_active = false;
        }
        active >= self.membership.quorum()
    }

    /// Starts a campaign of the given kind, if this node is a voter.
    pub(crate) fn campaign(&mut self, kind: Campaign) {
        if !self.promotable() || self.role == Role::Leader {
            return;
        }
        let pre = kind == Campaign::PreVote;
        let transfer = kind == Campaign::Transfer;
        let campaign_term = if pre {
            self.role = Role::PreCandidate;
            self.leader = None;
            self.reset_election_timer();
            Term(self.term.0 + 1)
        } else {
            self.role = Role::Candidate;
            self.term = Term(self.term.0 + 1);
            self.vote = Some(self.id);
            self.leader = None;
            self.reset_election_timer();
            self.term
        };
        tracing::debug!(id = %self.id, term = %campaign_term, pre, "campaigning");
        self.votes.clear();
        self.votes.insert(self.id, true);
        if self.count_votes() {
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let voters: Vec<NodeId> = self.membership.voters.iter().copied().filter(|&v| v != self.id).collect();
        for voter in voters {
            let body = MessageBody::Vote { pre, transfer, last_index, last_term };
            self.send_with_term(voter, campaign_term, body);
        }
    }

    /// Answers a (pre-)vote request.
    pub(super) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        last_index: LogIndex,
        last_term: Term,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && term > self.term)
            || (!pre && self.canary(Canary::DoubleVote));
        if can_vote && self.log.is_up_to_date(last_index, last_term) {
            // A granted vote carries the candidate's term, so a pre-candidate can count it.
            self.send_with_term(from, term, MessageBody::VoteResponse { pre, reject: false });
            if !pre {
                self.election_elapsed = 0;
                self.vote = Some(from);
            }
        } else {
            self.send(from, MessageBody::VoteResponse { pre, reject: true });
        }
    }

    /// Counts a vote for the current campaign.
    pub(super) fn handle_vote_response(&mut self, from: NodeId, pre: bool, reject: bool) {
        let expected = if pre { Role::PreCandidate } else { Role::Candidate };
        if self.role != expected {
            return;
        }
        self.votes.insert(from, !reject);
        self.count_votes();
    }

    /// Acts on the campaign's tally; returns whether it was decided.
    fn count_votes(&mut self) -> bool {
        match tally(&self.membership, &self.votes) {
            VoteResult::Won if self.role == Role::PreCandidate => {
                self.campaign(Campaign::Election);
                true
            }
            VoteResult::Won => {
                self.become_leader();
                true
            }
            VoteResult::Lost => {
                self.become_follower(self.term, None);
                true
            }
            VoteResult::Pending => false,
        }
    }

    /// Takes leadership: resets followers' progress and appends an empty entry of the new term,
    /// whose commit also commits every earlier entry.
    fn become_leader(&mut self) {
        tracing::info!(id = %self.id, term = %self.term, "became leader");
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.leave_leadership();
        self.reset_election_timer();
        let next = self.log.last_index().next();
        let peers: Vec<NodeId> = self.membership.members().filter(|&m| m != self.id).collect();
        for peer in peers {
            let mut pr = ReplicationProgress::new(next);
            pr.recent_active = true;
            self.progress.insert(peer, pr);
        }
        let entry = Entry { index: next, term: self.term, payload: EntryPayload::Empty };
        self.log.append([entry]);
        self.after_leader_append();
    }

    /// Starts handing leadership to `to` (which must be a voter): brings its log up to date,
    /// then tells it to campaign at once. Proposals are refused meanwhile.
    pub fn transfer_leader(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.id || !self.membership.is_voter(to) {
            return;
        }
        if self.transferee == Some(to) {
            return;
        }
        tracing::info!(id = %self.id, to = %to, "transferring leadership");
        self.transferee = Some(to);
        self.election_elapsed = 0;
        self.send_timeout_now_if_caught_up(to);
    }

    /// Sends TimeoutNow to the transferee once its log matches ours.
    pub(super) fn send_timeout_now_if_caught_up(&mut self, to: NodeId) {
        if self.transferee != Some(to) {
            return;
        }
        let caught_up = self.progress.get(&to).is_some_and(|pr| pr.matched == self.log.last_index());
        if caught_up {
            self.send(to, MessageBody::TimeoutNow);
        }
    }
}
