//! Retention: which WAL records each group still needs, and so which segments can go.
//!
//! The WAL is shared by every Raft group on the node, so a segment may be deleted only when no
//! group needs any record in it. Each group has a low-water mark, the lowest sequence number it
//! still needs: at first, the first record it ever wrote (or the first seen by recovery); later,
//! whatever it says after a snapshot made its older records unnecessary. The WAL may drop every
//! record below the lowest mark of all groups.

use std::collections::BTreeMap;

use super::record::{GroupId, WalSeq};

/// Per-group low-water marks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    needed_from: BTreeMap<GroupId, WalSeq>,
}

impl Retention {
    /// No group tracked.
    pub fn new() -> Self {
        Retention::default()
    }

    /// Notes that `group` wrote record `seq`: the first record of a group not tracked yet
    /// becomes its mark. Marks of tracked groups are unchanged.
    pub fn observe(&mut self, group: GroupId, seq: WalSeq) {
        self.needed_from.entry(group).or_insert(seq);
    }

    /// `group` needs no record below `needed_from` any more. Marks only move forward: a lower
    /// value than the current mark is ignored.
    pub fn release(&mut self, group: GroupId, needed_from: WalSeq) {
        let mark = self.needed_from.entry(group).or_insert(needed_from);
        *mark = (*mark).max(needed_from);
    }

    /// `group` left this node and needs nothing.
    pub fn forget(&mut self, group: GroupId) {
        self.needed_from.remove(&group);
    }

    /// The lowest sequence number some group still needs; records below it may be deleted.
    /// `None` when no group is tracked, meaning nothing is known to be unneeded.
    pub fn needed_from(&self) -> Option<WalSeq> {
        self.needed_from.values().min().copied()
    }

    /// The mark of one group, if tracked.
    pub fn group_needed_from(&self, group: GroupId) -> Option<WalSeq> {
        self.needed_from.get(&group).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_group_holds_the_log() {
        let mut r = Retention::new();
        assert_eq!(r.needed_from(), None);
        r.observe(GroupId(1), WalSeq(1));
        r.observe(GroupId(2), WalSeq(3));
        r.observe(GroupId(1), WalSeq(9)); // not its first record: no change
        assert_eq!(r.needed_from(), Some(WalSeq(1)));
        r.release(GroupId(1), WalSeq(50));
        assert_eq!(r.needed_from(), Some(WalSeq(3)));
        r.release(GroupId(1), WalSeq(20)); // backwards: ignored
        assert_eq!(r.group_needed_from(GroupId(1)), Some(WalSeq(50)));
        r.forget(GroupId(2));
        assert_eq!(r.needed_from(), Some(WalSeq(50)));
    }
}
