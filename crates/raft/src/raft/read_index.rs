//! Linearizable reads by ReadIndex (Raft dissertation, section 6.4).
//!
//! The leader notes its commit index when a read arrives, then confirms it is still leader by a
//! heartbeat round acknowledged by a quorum; the read may then be served by any node that has
//! applied up to the noted index. Reads are grouped into rounds: every read that arrives
//! between two flushes shares one heartbeat round, so a busy leader sends one heartbeat per
//! batch of reads, not one per read.

use super::{Raft, ReadState, Role};
use crate::error::ProposeError;
use crate::message::MessageBody;
use crate::types::{LogIndex, NodeId};
use crate::Canary;
use std::collections::VecDeque;

/// Leader-side bookkeeping of reads waiting for leadership confirmation.
#[derive(Debug, Default)]
pub(super) struct ReadQueue {
    /// The latest round opened by a read.
    round: u64,
    /// The latest round sent out with heartbeats.
    round_sent: u64,
    /// Reads waiting for their round to be confirmed, in arrival order.
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before this leader committed an entry of its term: until then its
    /// commit index may be behind the true one.
    awaiting_term_commit: Vec<(NodeId, u64)>,
}

#[derive(Debug)]
struct PendingRead {
    from: NodeId,
    ctx: u64,
    index: LogIndex,
    round: u64,
}

impl ReadQueue {
    /// Marks the latest round as sent and returns it, for a heartbeat broadcast.
    pub(super) fn start_round_for_heartbeat(&mut self) -> u64 {
        self.round_sent = self.round;
        self.round
    }

    fn has_unsent_round(&self) -> bool {
        self.round > self.round_sent
    }
}

impl Raft {
    /// Requests a linearizable read with the application's id `ctx`. The answer arrives as a
    /// [`ReadState`] in a later `Ready`; a follower forwards the request to its leader.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ProposeError> {
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                self.handle_read_request(self.id, ctx);
                Ok(())
            }
            (_, Some(leader)) => {
                self.send(leader, MessageBody::ReadIndex { ctx });
                Ok(())
            }
            (_, None) => Err(ProposeError::NotLeader { leader: None }),
        }
    }

    /// Leader: a read from this node or forwarded by `from`.
    pub(super) fn handle_read_request(&mut self, from: NodeId, ctx: u64) {
        if self.log.term(self.log.committed()) != Some(self.term) {
            self.reads.awaiting_term_commit.push((from, ctx));
            return;
        }
        let index = self.log.committed();
        let alone = self.membership.voters.len() == 1 && self.membership.is_voter(self.id);
        if alone || self.canary(Canary::ReadWithoutConfirm) {
            self.answer_read(from, ctx, index);
            return;
        }
        let reads = &mut self.reads;
        if reads.round == reads.round_sent {
            reads.round += 1;
        }
        let round = reads.round;
        reads.pending.push_back(PendingRead { from, ctx, index, round });
    }

    /// Leader: whether reads wait for a heartbeat round not sent yet.
    pub(super) fn reads_need_round(&self) -> bool {
        self.reads.has_unsent_round()
    }

    /// Leader: sends the heartbeat round for reads that arrived since the last flush.
    pub(crate) fn flush_reads(&mut self) {
        if self.reads.has_unsent_round() {
            self.broadcast_heartbeat();
        }
    }

    /// Leader: serves every read whose round a quorum of voters has acknowledged.
    pub(super) fn confirm_reads(&mut self) {
        let mut acked: Vec<u64> = self
            .membership
            .voters
            .iter()
            .map(|id| {
                if *id == self.id {
                    u64::MAX
                } else {
                    self.progress.get(id).map_or(0, |pr| pr.read_round_acked)
                }
            })
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&confirmed) = acked.get(self.membership.quorum() - 1) else { return };
        while self.reads.pending.front().is_some_and(|r| r.round <= confirmed) {
            if let Some(read) = self.reads.pending.pop_front() {
                self.answer_read(read.from, read.ctx, read.index);
            }
        }
    }

    /// Leader: the first entry of this term committed; reads held back may proceed.
    pub(super) fn release_reads_awaiting_term_commit(&mut self) {
        if self.log.term(self.log.committed()) != Some(self.term) {
            return;
        }
        for (from, ctx) in std::mem::take(&mut self.reads.awaiting_term_commit) {
            self.handle_read_request(from, ctx);
        }
    }

    fn answer_read(&mut self, from: NodeId, ctx: u64, index: LogIndex) {
        if from == self.id {
            self.read_states.push(ReadState { ctx, index });
        } else {
            self.send(from, MessageBody::ReadIndexResponse { ctx, index });
        }
    }
}
