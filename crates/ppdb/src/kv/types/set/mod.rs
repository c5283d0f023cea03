//! Sets: a key holding distinct members.
//!
//! Members keep the order of an insertion-ordered table (removing one moves the last into its
//! place), the same on every replica, so a random choice by position (SPOP, SRANDMEMBER) picks
//! the same member everywhere, and SSCAN can walk positions (`scan`).
//!
//! A set also remembers how Redis 7.0 would encode it ([`SetEncoding`]): an `intset` while
//! every member ever added was an integer and there were never more than
//! [`INTSET_ENTRIES_MAX`], a `hashtable` for good after that. Redis answers SSCAN of an intset
//! whole, in one call; PPDB does the same so that replies compare.
//!
//! The commands live beside the value: `command` (as logged; applied or answered), `algebra`
//! (SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD), `random` (SPOP, SRANDMEMBER from
//! a seed in the operation), `scan` (SSCAN).

mod algebra;
mod codec;
mod command;
#[cfg(test)]
mod command_tests;
mod random;
mod scan;

use indexmap::IndexSet;

use crate::kv::numeric::parse_i64;

pub use command::{SetAlgebra, SetRead, SetWrite};

/// Memory counted per member beyond its bytes: the table's entry (24 bytes, up to twice that
/// while the table has room to grow), its index slot (9 to 18 bytes) and the allocator's chunk
/// around the member (32 bytes for up to 24). An estimate: one set of a million 13-byte
/// members measured 75.5 bytes a member of resident memory.
pub const MEMBER_OVERHEAD_BYTES: u64 = 64;

/// Most members of a set Redis 7.0 keeps as an intset (`set-max-intset-entries`).
pub const INTSET_ENTRIES_MAX: usize = 512;

/// How Redis 7.0 would hold a set, as OBJECT ENCODING names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetEncoding {
    /// Only integers, at most [`INTSET_ENTRIES_MAX`] of them, since the set was created.
    Intset,
    /// Any other set.
    Hashtable,
}

impl SetEncoding {
    /// The name OBJECT ENCODING answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Intset => "intset",
            Self::Hashtable => "hashtable",
        }
    }
}

/// A set's members.
#[derive(Debug, Clone, Default, Eq)]
pub struct SetValue {
    members: IndexSet<Box<[u8]>>,
    bytes: u64,
    /// Set once a member that is not an integer, or one member too many for an intset, was
    /// added; never cleared (Redis does not convert back).
    hashtable: bool,
}

super::collection!(SetValue, Set);

/// Sets are equal when they hold the same members. The encoding is left out: a set read back
/// from a snapshot has the encoding its members give it, as one Redis loads from its RDB file.
impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes && self.members == other.members
    }
}

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
        self.members.insert(member.into());
        if !self.hashtable {
            self.hashtable = self.members.len() > INTSET_ENTRIES_MAX || parse_i64(member).is_none();
        }
        true
    }

    /// Removes `member`; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let removed = self.members.swap_remove(member);
        if removed {
            self.bytes -= member_bytes(member);
        }
        removed
    }

    /// Removes and returns the member at `index` in the set's order; the last member takes its
    /// place.
    pub fn remove_index(&mut self, index: usize) -> Option<Box<[u8]>> {
        let member = self.members.swap_remove_index(index)?;
        self.bytes -= member_bytes(&member);
        Some(member)
    }

    /// Removes and returns every member, in the set's order.
    pub fn take_all(&mut self) -> Vec<Box<[u8]>> {
        self.bytes = 0;
        std::mem::take(&mut self.members).into_iter().collect()
    }

    /// Every member, in the set's order (see the module docs).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|member| &member[..])
    }

    /// The member at `index` in the set's order.
    pub fn get_index(&self, index: usize) -> Option<&[u8]> {
        self.members.get_index(index).map(|member| &member[..])
    }

    /// How Redis 7.0 would hold this set.
    pub fn encoding(&self) -> SetEncoding {
        if self.hashtable {
            SetEncoding::Hashtable
        } else {
            SetEncoding::Intset
        }
    }
}

impl<'a> FromIterator<&'a [u8]> for SetValue {
    /// A set of the given members, added in order, as Redis builds a STORE command's result.
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(members: I) -> SetValue {
        let mut set = SetValue::default();
        for member in members {
            set.insert(member);
        }
        set
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

    #[test]
    fn removing_by_index_and_taking_all_keep_memory_counted() {
        let mut set: SetValue = [&b"x"[..], b"yy", b"zzz"].into_iter().collect();
        assert_eq!(set.remove_index(0).as_deref(), Some(&b"x"[..]));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![&b"zzz"[..], b"yy"], "the last takes its place");
        assert_eq!(set.bytes(), member_bytes(b"yy") + member_bytes(b"zzz"));
        assert_eq!(set.remove_index(5), None);
        assert_eq!(set.take_all().len(), 2);
        assert!(set.is_empty());
        assert_eq!(set.bytes(), 0);
    }

    #[test]
    fn the_encoding_follows_redis_and_never_goes_back() {
        let mut set: SetValue = [&b"1"[..], b"-20", b"300"].into_iter().collect();
        assert_eq!(set.encoding(), SetEncoding::Intset);
        set.insert(b"01");
        assert_eq!(set.encoding(), SetEncoding::Hashtable, "01 is not an integer as Redis reads it");
        set.remove(b"01");
        assert_eq!(set.encoding(), SetEncoding::Hashtable);
        let mut large: SetValue = (0..INTSET_ENTRIES_MAX)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .iter()
            .map(|n| n.as_bytes())
            .collect();
        assert_eq!(large.encoding(), SetEncoding::Intset);
        large.insert(b"100000");
        assert_eq!(large.encoding().name(), "hashtable");
        let equal: SetValue = large.iter().collect();
        assert_eq!(equal, large, "equality is about members only");
    }
}
