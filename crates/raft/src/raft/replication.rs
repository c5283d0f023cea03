//! Log replication: the leader's appends and flow control, the follower's acceptance rules,
//! and the commit rule.

use super::Raft;
use crate::message::{Entry, MessageBody};
use crate::quorum::majority_matched;
use crate::tracker::ProgressState;
use crate::types::{LogIndex, NodeId, Term};
use crate::Canary;

impl Raft {
    /// Follower: the leader's append. Accept it if our log holds its predecessor, truncating
    /// any conflicting suffix; otherwise refuse with a hint for fast back-off.
    pub(super) fn handle_append(
        &mut self,
        leader: NodeId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) {
        if prev_index < self.log.committed() {
            // Old or duplicated: everything up to our commit index is known to match.
            let index = self.log.committed();
            self.send(leader, accept(index));
            return;
        }
        if !self.log.matches(prev_index, prev_term) {
            let probe_from = prev_index.min(self.log.last_index());
            let (hint_index, hint_term) = self.log.find_conflict_by_term(probe_from, prev_term);
            let body = MessageBody::AppendResponse { reject: true, index: prev_index, hint_index, hint_term };
            self.send(leader, body);
            return;
        }
        let last_new = LogIndex(prev_index.0 + entries.len() as u64);
        if let Some(conflict) = self.log.find_conflict(&entries) {
            let start = (conflict.0 - prev_index.0 - 1) as usize;
            let mut new = entries;
            new.drain(..start);
            if self.canary(Canary::NoTruncate) && conflict <= self.log.last_index() {
                let keep = (self.log.last_index().0 - conflict.0 + 1) as usize;
                let tail: Vec<Entry> = new.into_iter().skip(keep).collect();
                self.track_conf_changes(&tail);
                self.log.append(tail);
            } else {
                // A follower's membership does not depend on its log, so the changes can be
                // tracked before the entries move into it (no copy of each entry).
                self.untrack_conf_changes_from(conflict);
                self.track_conf_changes(&new);
                self.log.truncate_and_append(new);
            }
        }
        self.log.commit_to(commit.min(last_new));
        self.send(leader, accept(last_new));
    }

    /// Follower: a heartbeat; adopt its commit index and echo its read round.
    pub(super) fn handle_heartbeat(&mut self, leader: NodeId, commit: LogIndex, read_round: u64) {
        // The leader never sends a commit index past what it knows we hold.
        self.log.commit_to(commit.min(self.log.last_index()));
        self.send(leader, MessageBody::HeartbeatResponse { read_round });
    }

    /// Leader: a follower's answer to an append or snapshot.
    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        reject: bool,
        index: LogIndex,
        hint_index: LogIndex,
        hint_term: Term,
    ) {
        // A follower whose log ends inside our compacted prefix needs the snapshot: aim below
        // the snapshot so the next send is one.
        let hint = if hint_index < self.log.snapshot_index() {
            hint_index
        } else {
            self.log.find_conflict_by_term(hint_index, hint_term).0
        };
        let Some(pr) = self.progress.get_mut(&from) else { return };
        if reject {
            if pr.maybe_decrease_to(index, hint) && pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
            return;
        }
        if !pr.maybe_update(index) {
            if pr.state == ProgressState::Replicate {
                pr.free_inflights_to(index);
            }
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot(snapshot_index) if pr.matched >= snapshot_index => {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Snapshot(_) => {}
            ProgressState::Replicate => pr.free_inflights_to(index),
        }
        self.maybe_commit();
        self.send_timeout_now_if_caught_up(from);
    }

    /// Leader: a heartbeat answer proves the follower is alive; unblock a stalled stream.
    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let stall_limit = self.cfg.election_timeout_ticks / self.cfg.heartbeat_interval_ticks;
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.probe_sent = false;
        // Retransmission (Raft, section 5.3): a follower that stays behind across two heartbeat
        // answers while nothing it acknowledges moves has lost the appends in flight; stream
        // again from its match point. A healthy stream advances `matched` between heartbeats.
        let stalled = pr.matched < last_index && pr.matched == pr.matched_at_heartbeat;
        pr.stalled_heartbeats = if stalled { pr.stalled_heartbeats + 1 } else { 0 };
        pr.matched_at_heartbeat = pr.matched;
        if pr.stalled_heartbeats >= 2 && pr.state == ProgressState::Replicate {
            pr.become_probe();
            pr.stalled_heartbeats = 0;
        }
        match pr.state {
            ProgressState::Replicate if pr.inflights.len() >= self.cfg.inflight_appends_max => {
                // Appends may have been lost: let one more through; a gap makes the follower
                // refuse it, which sends us back to probing.
                pr.inflights.pop_front();
            }
            ProgressState::Snapshot(_) => {
                pr.heartbeats_since_snapshot += 1;
                if pr.heartbeats_since_snapshot > stall_limit {
                    pr.become_probe();
                }
            }
            _ => {}
        }
        if read_round > pr.read_round_acked {
            pr.read_round_acked = read_round;
            self.confirm_reads();
        }
    }

    /// Leader: after appending to its own log, new entries wait for `flush_appends`, so that
    /// all proposals made before the caller asks for a `Ready` travel in one batch.
    pub(super) fn after_leader_append(&mut self) {
        // A single-voter group commits as soon as its own log is durable (see `advance`).
        self.maybe_commit();
    }

    /// Leader: sends every follower what it lacks, within flow-control limits, and announces
    /// a moved commit index to followers that have nothing else to receive.
    pub(crate) fn flush_appends(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        let announce = std::mem::take(&mut self.commit_unannounced);
        for peer in peers {
            let mut sent = false;
            while self.has_entries_for(peer) && self.send_append(peer) {
                sent = true;
                if self.progress.get(&peer).is_some_and(|pr| pr.next > self.log.last_index()) {
                    break; // an empty probe was sent: wait for its answer
                }
            }
            if announce && !sent {
                let idle = self.progress.get(&peer).is_some_and(|pr| pr.state == ProgressState::Replicate);
                if idle {
                    self.send_append(peer);
                }
            }
        }
    }

    /// Leader: whether `flush_appends` or `flush_reads` would send anything.
    pub(crate) fn leader_has_pending_sends(&self) -> bool {
        self.role == super::Role::Leader
            && (self.commit_unannounced
                || self.reads_need_round()
                || self.progress.keys().any(|&peer| self.has_entries_for(peer)))
    }

    /// Whether an append should go to `peer` now: it lacks entries we can send, or it is being
    /// probed and its match point is unknown (an empty append finds where its log ends).
    fn has_entries_for(&self, peer: NodeId) -> bool {
        let last = self.log.last_index();
        self.progress.get(&peer).is_some_and(|pr| {
            !pr.is_paused(self.cfg.inflight_appends_max)
                && (pr.next <= last || (pr.state == ProgressState::Probe && pr.matched < last))
        })
    }

    /// Sends one append (or the snapshot, if the needed entries were compacted) to `to`.
    /// Returns whether anything was sent.
    fn send_append(&mut self, to: NodeId) -> bool {
        let Some(pr) = self.progress.get(&to) else { return false };
        if pr.is_paused(self.cfg.inflight_appends_max) {
            return false;
        }
        let prev_index = pr.next.prev();
        let Some(prev_term) = self.log.term(prev_index) else {
            return self.send_snapshot(to);
        };
        let entries = self.log.slice(
            pr.next,
            self.log.last_index(),
            self.cfg.append_entries_max,
            self.cfg.append_bytes_max,
        );
        let last = LogIndex(prev_index.0 + entries.len() as u64);
        let count = entries.len();
        let commit = self.log.committed();
        self.send(to, MessageBody::Append { prev_index, prev_term, entries, commit });
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.sent_append(last, count);
        }
        true
    }

    /// Sends the latest snapshot to `to`, whose next entries were compacted away.
    fn send_snapshot(&mut self, to: NodeId) -> bool {
        let Some(snapshot) = self.snapshot.clone() else {
            tracing::error!(id = %self.id, to = %to, "log compacted but no snapshot to send");
            return false;
        };
        let index = snapshot.meta.index;
        self.send(to, MessageBody::InstallSnapshot { snapshot });
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.become_snapshot(index);
        }
        true
    }

    /// Leader: a heartbeat to every follower, carrying the latest ReadIndex round.
    pub(super) fn broadcast_heartbeat(&mut self) {
        let round = self.reads.start_round_for_heartbeat();
        let targets: Vec<(NodeId, LogIndex)> =
            self.progress.iter().map(|(&id, pr)| (id, pr.matched.min(self.log.committed()))).collect();
        for (to, commit) in targets {
            self.send(to, MessageBody::Heartbeat { commit, read_round: round });
        }
    }

    /// Leader: the commit rule. An index is committed once a majority of voters holds it
    /// *and* it is of the current term; earlier entries commit with it (Raft, section 5.4.2).
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let own = self.log.persisted();
        let matched = majority_matched(&self.membership, |id| {
            if id == self.id {
                own
            } else {
                self.progress.get(&id).map_or(LogIndex(0), |pr| pr.matched)
            }
        });
        if matched <= self.log.committed() {
            return false;
        }
        let current_term = self.log.term(matched) == Some(self.term);
        if !current_term && !self.canary(Canary::CommitPreviousTerm) {
            return false;
        }
        self.log.commit_to(matched);
        self.commit_unannounced = true;
        self.on_leader_commit();
        true
    }
}

fn accept(index: LogIndex) -> MessageBody {
    MessageBody::AppendResponse { reject: false, index, hint_index: LogIndex(0), hint_term: Term(0) }
}
