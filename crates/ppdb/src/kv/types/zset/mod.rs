//! Sorted sets: a key holding distinct members, each with a score, ordered by score and then
//! by member bytes (as Redis orders them).
//!
//! A member is found by its bytes in a hash map and ranged over in an ordered set of
//! `(score, member)`; both hold the same shared member bytes. The hash map is only looked up,
//! never iterated, so no reply depends on its order.
//!
//! Files: the value here, its ranges by score, bytes and rank (`range`), the commands as logged
//! (`command`), applied (`write`) and answered (`read`), and the union, intersection and
//! difference of several sets (`algebra`).
//!
//! Ranks (ZRANK, ZRANGE by index, ZREMRANGEBYRANK) cost O(rank): the ordered set is a B-tree
//! without subtree counts, where Redis's skiplist answers in O(log n).

mod algebra;
mod command;
mod range;
mod read;
mod write;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use algebra::{Aggregate, Combine, SetOperation};
pub use command::{
    PopEnd, PopReply, RangeBy, RangeQuery, SortedSetRead, SortedSetWrite, StoreSource, ZaddOptions,
};
pub use range::{LexBound, LexRange, RankRange, ScoreBound, ScoreRange};

/// Memory counted per member beyond its bytes: the map's entry, the ordered set's entry and
/// the shared member's header. An estimate: a 1M-member set of 14-byte members is counted as
/// 110 MB, and grew a debug node's RSS by 205 MB, the Raft log of its ZADDs included (Redis
/// 7.0.15: MEMORY USAGE 101.7 MB, RSS +114 MB).
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

    /// Sets `member`'s score (never NaN); returns its previous score. `-0` is stored as `0`, as
    /// the compact encoding Redis uses for small sets stores it.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan(), "scores are never NaN");
        let score = score + 0.0;
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

    /// The zero-based rank of `member` in ascending order: O(rank).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let (shared, score) = self.scores.get_key_value(member)?;
        Some(self.order.range(..(*score, Arc::clone(shared))).count())
    }

    /// Removes and returns the member with the lowest score (`highest`: the highest).
    pub fn pop(&mut self, highest: bool) -> Option<(Arc<[u8]>, f64)> {
        let (score, member) = if highest { self.order.pop_last()? } else { self.order.pop_first()? };
        self.scores.remove(&member);
        self.bytes -= member_bytes(&member);
        Some((member, score.0))
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
        zset.insert(b"z", -0.0);
        assert!(zset.score(b"z").is_some_and(|score| score.is_sign_positive()));
        assert_eq!(zset.rank(b"z"), Some(0));
        assert_eq!(zset.rank(b"c"), Some(2));
        assert_eq!(
            zset.pop(true).map(|(member, score)| (member.to_vec(), score)),
            Some((b"c".to_vec(), 2.0))
        );
        assert_eq!(zset.pop(false).map(|(member, _)| member.to_vec()), Some(b"z".to_vec()));
        zset.insert(b"c", 2.0);
        zset.remove(b"b");
        zset.remove(b"c");
        assert!(zset.is_empty());
        assert_eq!(zset.bytes(), 0);
    }
}
