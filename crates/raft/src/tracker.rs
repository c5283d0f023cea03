//! The leader's view of each follower: how much of the log it holds, and how fast to send.
//!
//! Flow control has three states. **Probe**: the leader does not know where the follower's log
//! ends; it sends one append at a time and waits for the answer. **Replicate**: the follower is
//! in sync; the leader streams appends optimistically, up to `inflight_appends_max` unanswered
//! messages. **Snapshot**: the entries the follower needs were compacted; the leader sent a
//! snapshot and waits until the follower reports it installed.

use crate::types::LogIndex;
use std::collections::VecDeque;

/// Flow-control state of one follower (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// One append at a time until the match point is found.
    Probe,
    /// Pipelined appends.
    Replicate,
    /// Waiting for a snapshot at this index to be installed.
    Snapshot(LogIndex),
}

/// Replication progress of one follower, kept by the leader.
#[derive(Debug, Clone)]
pub struct ReplicationProgress {
    /// Highest index known to be in the follower's log.
    pub matched: LogIndex,
    /// Next index to send.
    pub next: LogIndex,
    /// Flow-control state.
    pub state: ProgressState,
    /// Probe state: an append is outstanding, wait for its answer or a heartbeat response.
    pub probe_sent: bool,
    /// Replicate state: last index of each unanswered append, oldest first.
    pub inflights: VecDeque<LogIndex>,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// Leader ticks since the follower last answered (failure detection for operators; the
    /// protocol itself does not use it).
    pub silent_ticks: u64,
    /// Highest ReadIndex round this follower acknowledged in the current term.
    pub read_round_acked: u64,
    /// Snapshot state: heartbeats answered since the snapshot was sent. The snapshot is
    /// presumed lost (and the follower probed again) after an election timeout's worth.
    pub heartbeats_since_snapshot: u32,
    /// Heartbeat answers in a row during which `matched` stayed behind the leader's log and
    /// did not move: the appends in flight were lost, so the leader starts over from `matched`.
    pub stalled_heartbeats: u32,
    /// `matched` at the previous heartbeat answer.
    pub matched_at_heartbeat: LogIndex,
}

impl ReplicationProgress {
    /// Progress of a follower the leader knows nothing about yet: probe from `next`.
    pub fn new(next: LogIndex) -> ReplicationProgress {
        ReplicationProgress {
            matched: LogIndex(0),
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: VecDeque::new(),
            recent_active: false,
            silent_ticks: 0,
            read_round_acked: 0,
            heartbeats_since_snapshot: 0,
            stalled_heartbeats: 0,
            matched_at_heartbeat: LogIndex(0),
        }
    }

    /// Enter the probe state (after a rejection, a snapshot, or an unreachable follower).
    pub fn become_probe(&mut self) {
        self.next = match self.state {
            ProgressState::Snapshot(index) => self.matched.max(index).next(),
            _ => self.matched.next(),
        };
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflights.clear();
    }

    /// Enter the replicate state (the follower's match point is known).
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched.next();
        self.probe_sent = false;
        self.inflights.clear();
    }

    /// Enter the snapshot state: a snapshot at `index` was sent.
    pub fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot(index);
        self.heartbeats_since_snapshot = 0;
        self.probe_sent = false;
        self.inflights.clear();
    }

    /// The follower holds the log up to `index`. Returns whether that is news.
    pub fn maybe_update(&mut self, index: LogIndex) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index.next());
        updated
    }

    /// The follower refused an append at `rejected`; `hint` is the leader's estimate of where
    /// the logs may match. Returns false for a stale rejection that must be ignored.
    pub fn maybe_decrease_to(&mut self, rejected: LogIndex, hint: LogIndex) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.next = self.matched.next();
            }
            _ => {
                if self.next.prev() != rejected {
                    return false;
                }
                self.next = rejected.min(hint.next()).max(self.matched.next()).max(LogIndex(1));
                self.probe_sent = false;
            }
        }
        true
    }

    /// Whether the leader must hold back appends to this follower.
    pub fn is_paused(&self, inflight_max: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.len() >= inflight_max,
            ProgressState::Snapshot(_) => true,
        }
    }

    /// Records that an append ending at `last` was sent.
    pub fn sent_append(&mut self, last: LogIndex, entry_count: usize) {
        match self.state {
            ProgressState::Replicate => {
                if entry_count > 0 {
                    self.next = last.next();
                    self.inflights.push_back(last);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot(_) => {}
        }
    }

    /// Forgets inflight appends answered by an acknowledgement up to `index`.
    pub fn free_inflights_to(&mut self, index: LogIndex) {
        while self.inflights.front().is_some_and(|&last| last <= index) {
            self.inflights.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut pr = ReplicationProgress::new(LogIndex(5));
        assert!(!pr.is_paused(4));
        pr.sent_append(LogIndex(7), 3);
        assert!(pr.is_paused(4));
        assert!(pr.maybe_update(LogIndex(7)));
        assert!(!pr.is_paused(4));
    }

    #[test]
    fn replicate_pipelines_up_to_the_window() {
        let mut pr = ReplicationProgress::new(LogIndex(1));
        pr.become_replicate();
        for last in 1..=4 {
            pr.sent_append(LogIndex(last), 1);
        }
        assert!(pr.is_paused(4));
        pr.maybe_update(LogIndex(2));
        pr.free_inflights_to(LogIndex(2));
        assert!(!pr.is_paused(4));
        assert_eq!(pr.next, LogIndex(5));
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut pr = ReplicationProgress::new(LogIndex(10));
        pr.sent_append(LogIndex(12), 3);
        assert!(!pr.maybe_decrease_to(LogIndex(5), LogIndex(3)), "rejection of an older probe");
        assert!(pr.maybe_decrease_to(LogIndex(9), LogIndex(3)));
        assert_eq!(pr.next, LogIndex(4));
    }

    #[test]
    fn leaving_snapshot_state_resumes_after_the_snapshot() {
        let mut pr = ReplicationProgress::new(LogIndex(1));
        pr.become_snapshot(LogIndex(50));
        assert!(pr.is_paused(4));
        pr.become_probe();
        assert_eq!(pr.next, LogIndex(51));
    }
}
