//! Snapshots and membership history: compaction, installing a leader's snapshot, and the
//! membership in force at any index of the log.

use super::{Raft, Role};
use crate::error::SnapshotError;
use crate::membership::Membership;
use crate::message::{Entry, EntryPayload, MessageBody, Snapshot, SnapshotMeta};
use crate::tracker::ReplicationProgress;
use crate::types::{LogIndex, NodeId, Term};
use std::sync::Arc;

impl Raft {
    /// Records the application's snapshot of its state at `index` (which must be applied), so
    /// it can be sent to followers. Returns it for the caller to persist.
    pub fn create_snapshot(&mut self, index: LogIndex, data: Vec<u8>) -> Result<Snapshot, SnapshotError> {
        let snapshot = Snapshot { meta: self.snapshot_meta(index)?, data: Arc::new(data) };
        self.adopt_snapshot(snapshot.clone())?;
        Ok(snapshot)
    }

    /// The metadata a snapshot of the state at `index` (which must be applied, and not older
    /// than the current snapshot) carries: its term and the membership in force there.
    pub fn snapshot_meta(&self, index: LogIndex) -> Result<SnapshotMeta, SnapshotError> {
        if index > self.log.applied() {
            return Err(SnapshotError::NotApplied { index, applied: self.log.applied() });
        }
        let current = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index);
        let out_of_date =
            || SnapshotError::OutOfDate { index, snapshot: current.max(self.log.snapshot_index()) };
        if index < current || index < self.log.snapshot_index() {
            return Err(out_of_date());
        }
        let term = self.log.term(index).ok_or_else(out_of_date)?;
        Ok(SnapshotMeta { index, term, membership: self.membership_at(index) })
    }

    /// Records a snapshot the application built from [`Raft::snapshot_meta`] and its state at
    /// that index (perhaps serialized elsewhere meanwhile), so it can be sent to followers.
    /// Fails if the log has moved past it (a newer snapshot was installed or created).
    pub fn adopt_snapshot(&mut self, snapshot: Snapshot) -> Result<(), SnapshotError> {
        let meta = self.snapshot_meta(snapshot.meta.index)?;
        if meta != snapshot.meta {
            // Applied entries never change, so this means the log was replaced under it.
            return Err(SnapshotError::OutOfDate { index: meta.index, snapshot: self.log.snapshot_index() });
        }
        self.snapshot = Some(snapshot);
        Ok(())
    }

    /// Drops log entries up to `index`, which the latest snapshot must cover. Followers that
    /// need them will receive the snapshot instead.
    pub fn compact(&mut self, index: LogIndex) -> Result<(), SnapshotError> {
        let covered = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index);
        if index > covered {
            return Err(SnapshotError::NotApplied { index, applied: covered });
        }
        if index <= self.log.snapshot_index() {
            return Ok(());
        }
        self.base_membership = self.membership_at(index);
        self.conf_history.retain(|(i, _)| *i > index);
        self.log.compact(index);
        Ok(())
    }

    /// Follower: the leader's snapshot. Install it unless our log already covers it.
    pub(super) fn handle_snapshot(&mut self, leader: NodeId, snapshot: Snapshot) {
        let (index, term) = (snapshot.meta.index, snapshot.meta.term);
        let reply = |index| MessageBody::AppendResponse {
            reject: false,
            index,
            hint_index: LogIndex(0),
            hint_term: Term(0),
        };
        if index <= self.log.committed() {
            self.send(leader, reply(self.log.committed()));
            return;
        }
        if self.log.matches(index, term) {
            // We hold the entries: just learn that they are committed.
            self.log.commit_to(index);
            self.send(leader, reply(index));
            return;
        }
        tracing::info!(id = %self.id, index = %index, term = %term, "installing leader's snapshot");
        self.log.restore(index, term);
        self.base_membership = snapshot.meta.membership.clone();
        self.conf_history.clear();
        self.membership = self.base_membership.clone();
        self.snapshot = Some(snapshot.clone());
        self.snapshot_to_install = Some(snapshot);
        self.send(leader, reply(index));
    }

    /// The membership in force at `index` (that of the last configuration entry at or before it).
    pub(crate) fn membership_at(&self, index: LogIndex) -> Membership {
        self.conf_history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.base_membership.clone(), |(_, m)| m.clone())
    }

    /// Applies the membership changes among newly appended `entries`: a change takes effect
    /// as soon as it is in the log.
    pub(super) fn track_conf_changes(&mut self, entries: &[Entry]) {
        let mut changed = false;
        for entry in entries {
            if let EntryPayload::ConfChange(change) = &entry.payload {
                // Every node computes the same result; an invalid change is a no-op everywhere.
                if let Ok(next) = self.membership.apply(*change) {
                    self.membership = next.clone();
                    self.conf_history.push((entry.index, next));
                    changed = true;
                }
            }
        }
        if changed {
            self.on_membership_changed();
        }
    }

    /// Undoes the membership changes of entries from `index` on, which are being truncated.
    pub(super) fn untrack_conf_changes_from(&mut self, index: LogIndex) {
        let before = self.conf_history.len();
        self.conf_history.retain(|(i, _)| *i < index);
        if self.conf_history.len() != before {
            self.membership = self.membership_at(index);
            self.on_membership_changed();
        }
    }

    fn on_membership_changed(&mut self) {
        tracing::info!(id = %self.id, voters = ?self.membership.voters, learners = ?self.membership.learners,
            "membership changed");
        if self.role != Role::Leader {
            return;
        }
        let next = self.log.last_index().next();
        let members: Vec<NodeId> = self.membership.members().filter(|&m| m != self.id).collect();
        self.progress.retain(|id, _| members.contains(id));
        for id in members {
            self.progress.entry(id).or_insert_with(|| {
                let mut pr = ReplicationProgress::new(next);
                pr.recent_active = true;
                pr
            });
        }
        // A smaller quorum may commit at once.
        self.maybe_commit();
    }

    /// Leader: bookkeeping after the commit index moved.
    pub(super) fn on_leader_commit(&mut self) {
        self.release_reads_awaiting_term_commit();
        let change_committed = self.conf_history.last().is_none_or(|(i, _)| *i <= self.log.committed());
        if !self.membership.contains(self.id) && change_committed {
            // Our own removal is committed: tell the others the commit index, ask the most
            // up-to-date voter to take over at once (TimeoutNow), and step down.
            tracing::info!(id = %self.id, "removed from the group: stepping down");
            self.flush_appends();
            let successor = self
                .progress
                .iter()
                .filter(|(id, _)| self.membership.is_voter(**id))
                .max_by_key(|(_, pr)| pr.matched)
                .filter(|(_, pr)| pr.matched == self.log.last_index())
                .map(|(&id, _)| id);
            if let Some(successor) = successor {
                self.send(successor, MessageBody::TimeoutNow);
            }
            self.become_follower(self.term, None);
        }
    }
}
