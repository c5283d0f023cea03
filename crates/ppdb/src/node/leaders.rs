//! Who leads each group, as this node last saw it: published by the runtime after every round,
//! read by the request path without a trip through the event loop.
//!
//! A node that does not lead a shard can then forward a client's command straight to the
//! leader instead of first asking its own replica (which answers only between two fsyncs of
//! the loop). The table is a hint: a stale entry costs one "not the leader" answer, which
//! names the new leader. A request waiting on a leader can also learn that leadership moved
//! ([`LeaderTable::changed`]) and go to the new one instead of waiting for the old one.

use crate::storage::wal::GroupId;
use ppdb_raft::NodeId;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// Group → leader hints, shared between the runtime and the request path.
#[derive(Debug, Clone)]
pub struct LeaderTable {
    leaders: Arc<[AtomicU64]>,
    /// Signalled whenever an entry changes.
    changes: Arc<Notify>,
}

impl LeaderTable {
    /// A table for groups `0..=last_group`, all unknown.
    pub fn new(last_group: GroupId) -> LeaderTable {
        let len = usize::try_from(last_group.0).unwrap_or(0).saturating_add(1);
        LeaderTable {
            leaders: (0..len).map(|_| AtomicU64::new(0)).collect(),
            changes: Arc::new(Notify::new()),
        }
    }

    /// Records `group`'s leader (`None`: unknown). Groups beyond the table are ignored.
    pub fn set(&self, group: GroupId, leader: Option<NodeId>) {
        if let Some(slot) = usize::try_from(group.0).ok().and_then(|i| self.leaders.get(i)) {
            let new = leader.map_or(0, |l| l.0);
            if slot.swap(new, Relaxed) != new {
                self.changes.notify_waiters();
            }
        }
    }

    /// Waits until `group`'s recorded leader is no longer `seen`; the new entry.
    pub async fn changed(&self, group: GroupId, seen: Option<NodeId>) -> Option<NodeId> {
        loop {
            let notified = self.changes.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change between the check and the wait wakes it.
            notified.as_mut().enable();
            let now = self.get(group);
            if now != seen {
                return now;
            }
            notified.await;
        }
    }

    /// The leader last recorded for `group`, if known.
    pub fn get(&self, group: GroupId) -> Option<NodeId> {
        let slot = usize::try_from(group.0).ok().and_then(|i| self.leaders.get(i))?;
        match slot.load(Relaxed) {
            0 => None,
            id => Some(NodeId(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_forgets_leaders_and_ignores_unknown_groups() {
        let table = LeaderTable::new(GroupId(3));
        assert_eq!(table.get(GroupId(2)), None);
        table.set(GroupId(2), Some(NodeId(7)));
        assert_eq!(table.clone().get(GroupId(2)), Some(NodeId(7)));
        table.set(GroupId(2), None);
        assert_eq!(table.get(GroupId(2)), None);
        table.set(GroupId(9), Some(NodeId(1)));
        assert_eq!(table.get(GroupId(9)), None);
    }

    #[tokio::test]
    async fn a_waiter_learns_of_a_change_and_only_of_a_change() {
        let table = LeaderTable::new(GroupId(2));
        table.set(GroupId(1), Some(NodeId(1)));
        assert_eq!(table.changed(GroupId(1), None).await, Some(NodeId(1)), "already different");
        let waiter = tokio::spawn({
            let table = table.clone();
            async move { table.changed(GroupId(1), Some(NodeId(1))).await }
        });
        tokio::task::yield_now().await;
        table.set(GroupId(1), Some(NodeId(1)));
        table.set(GroupId(2), Some(NodeId(3)));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "no change to group 1 yet");
        table.set(GroupId(1), None);
        assert_eq!(waiter.await.ok(), Some(None));
    }
}
