//! Sorted sets: a key holding distinct members, each with a score, ordered by score and then
//! by member bytes (as Redis orders them).
//!
//! A member is found by its bytes in a hash map and ranged over in an ordered set of
//! `(score, member)`; both hold the same shared member bytes.

mod command;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use command::{SortedSetRead, SortedSetWrite};

/// Memory counted per member beyond its bytes: the map's entry, the ordered set's entry and
/// the shared member's header. An estimate.
pub const MEMBER_OVERHEAD_BYTES: u64 = 96;

/// A score: a float that is never NaN (commands refuse NaN before it is stored), so scores are
/// totally ordered. `-0` and `0` compare equal, as in Redis.
#[derive(Debug, Clone, Copy)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// A sorted set's members and scores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortedSetValue {
    scores: HashMap<Arc<[u8]>, Score>,
    order: BTreeSet<(Score, Arc<[u8]>)>,
    bytes: u64,
}

super::collection!(SortedSetValue, SortedSet);

/// The memory one member is counted for.
fn member_bytes(member: &[u8]) -> u64 {
    member.len() as u64 + MEMBER_OVERHEAD_BYTES
}

impl SortedSetValue {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).map(|score| score.0)
    }

    /// Sets `member`'s score (never NaN); returns its previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan(), "scores are never NaN");
        match self.scores.get_key_value(member) {
            Some((shared, &old)) => {
                let shared = Arc::clone(shared);
                self.order.remove(&(old, Arc::clone(&shared)));
                self.order.insert((Score(score), Arc::clone(&shared)));
                self.scores.insert(shared, Score(score));
                Some(old.0)
            }
            None => {
                let shared: Arc<[u8]> = member.into();
                self.bytes += member_bytes(member);
                self.order.insert((Score(score), Arc::clone(&shared)));
                self.scores.insert(shared, Score(score));
                None
            }
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (shared, score) = self.scores.remove_entry(member)?;
        self.order.remove(&(score, shared));
        self.bytes -= member_bytes(member);
        Some(score.0)
    }

    /// Every member and score in ascending order (score, then member bytes); reversible.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order.iter().map(|(score, member)| (&member[..], score.0))
    }

    /// The members whose `(score, member)` lies in `range`, ascending; reversible.
    pub fn range<R: std::ops::RangeBounds<(Score, Arc<[u8]>)>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order.range(range).map(|(score, member)| (&member[..], score.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::Collection;

    #[test]
    fn members_are_ordered_by_score_then_bytes_and_rescored_in_place() {
        let mut zset = SortedSetValue::default();
        assert_eq!(zset.insert(b"b", 1.0), None);
        assert_eq!(zset.insert(b"a", 1.0), None);
        assert_eq!(zset.insert(b"c", -0.5), None);
        assert_eq!(zset.insert(b"c", 2.0), Some(-0.5));
        let order: Vec<_> = zset.iter().collect();
        assert_eq!(order, vec![(&b"a"[..], 1.0), (&b"b"[..], 1.0), (&b"c"[..], 2.0)]);
        assert_eq!(zset.iter().next_back(), Some((&b"c"[..], 2.0)));
        assert_eq!(zset.bytes(), 3 * member_bytes(b"a"));
        assert_eq!(zset.remove(b"a"), Some(1.0));
        assert_eq!(zset.score(b"a"), None);
        assert_eq!(zset.len(), 2);
        assert_eq!(Score(-0.0), Score(0.0));
        zset.remove(b"b");
        zset.remove(b"c");
        assert!(zset.is_empty());
        assert_eq!(zset.bytes(), 0);
    }
}
