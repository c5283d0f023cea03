//! Sets: a key holding distinct members.
//!
//! Members keep the order of an insertion-ordered table (removing one moves the last into its
//! place), the same on every replica, so a random choice by position (SPOP, SRANDMEMBER) picks
//! the same member everywhere.

mod command;

use indexmap::IndexSet;

pub use command::{SetRead, SetWrite};

/// Memory counted per member beyond its bytes: the table's entry and index slot and the
/// allocator's header of the member. An estimate.
pub const MEMBER_OVERHEAD_BYTES: u64 = 48;

/// A set's members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetValue {
    members: IndexSet<Box<[u8]>>,
    bytes: u64,
}

super::collection!(SetValue, Set);

/// The memory one member is counted for.
fn member_bytes(member: &[u8]) -> u64 {
    member.len() as u64 + MEMBER_OVERHEAD_BYTES
}

impl SetValue {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    /// Adds `member`; true when it is new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if self.members.contains(member) {
            return false;
        }
        self.bytes += member_bytes(member);
        self.members.insert(member.into())
    }

    /// Removes `member`; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let removed = self.members.swap_remove(member);
        if removed {
            self.bytes -= member_bytes(member);
        }
        removed
    }

    /// Every member, in the set's order (see the module docs).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|member| &member[..])
    }

    /// The member at `index` in the set's order.
    pub fn get_index(&self, index: usize) -> Option<&[u8]> {
        self.members.get_index(index).map(|member| &member[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::Collection;

    #[test]
    fn members_are_added_once_and_removed_with_memory_counted() {
        let mut set = SetValue::default();
        assert!(set.insert(b"a"));
        assert!(!set.insert(b"a"));
        assert!(set.insert(b"bc"));
        assert!(set.contains(b"bc"));
        assert_eq!(set.bytes(), member_bytes(b"a") + member_bytes(b"bc"));
        assert!(set.remove(b"a"));
        assert!(!set.remove(b"a"));
        assert_eq!(set.get_index(0), Some(&b"bc"[..]));
        assert_eq!(set.bytes(), member_bytes(b"bc"));
        assert!(set.remove(b"bc"));
        assert!(set.is_empty());
        assert_eq!(set.bytes(), 0);
    }
}
