//! Ranges over a sorted set: by score (`1`, `(1`, `-inf`, `+inf`), by member bytes (`[a`, `(a`,
//! `-`, `+`) and by rank (`0`, `-1`), as ZRANGE, ZCOUNT, ZLEXCOUNT and ZREMRANGEBY* take them.
//!
//! Score ranges are exact ranges of the ordered set. Lex ranges are meant for sets whose members
//! all have one score; there they are exact ranges too. On a set with several scores Redis's
//! answer depends on its encoding; PPDB answers as the compact encoding of small sets
//! (listpack) does: from the first member (in score order) at or above `min`, up to the first
//! member above `max`. That walk is O(n); a single-score set is answered in O(log n + k).
//!
//! Ranks cost O(rank): the ordered set keeps no subtree counts.

use std::ops::Bound;
use std::sync::Arc;

use crate::kv::codec::{put_bytes, KvDecodeError, Reader};
use crate::kv::entry::value;

use super::{Score, SortedSetValue};

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    /// The score (never NaN; may be infinite).
    pub score: f64,
    /// `(score`: the score itself is outside the range.
    pub exclusive: bool,
}

/// Scores from `min` to `max`, both ends as given (`min` is the lower one, whatever the
/// command's argument order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// The lower end.
    pub min: ScoreBound,
    /// The upper end.
    pub max: ScoreBound,
}

/// One end of a lex range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    /// `[member`: the member itself is inside.
    Inclusive(Vec<u8>),
    /// `(member`: the member itself is outside.
    Exclusive(Vec<u8>),
}

/// Members from `min` to `max` in byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    /// The lower end.
    pub min: LexBound,
    /// The upper end.
    pub max: LexBound,
}

/// Ranks from `start` to `stop`, inclusive; negative ranks count from the end (-1 is the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankRange {
    /// First rank.
    pub start: i64,
    /// Last rank.
    pub stop: i64,
}

type Entry = (Score, Arc<[u8]>);

impl ScoreRange {
    /// The bounds of the ordered set's entries in range, or `None` when the range is empty.
    fn bounds(&self) -> Option<(Bound<Entry>, Bound<Entry>)> {
        let (min, max) = (self.min.score, self.max.score);
        if min > max || (min == max && (self.min.exclusive || self.max.exclusive)) {
            return None;
        }
        let empty: Arc<[u8]> = Arc::from(&[][..]);
        // No member sorts after every other, so the ends are "before the smallest member of a
        // score": the next representable score stands in for "after every member of `score`".
        let lower = match (self.min.exclusive, min) {
            (true, f64::INFINITY) => return None,
            (true, _) => Bound::Included((Score(score_after(min)), Arc::clone(&empty))),
            (false, _) => Bound::Included((Score(min), Arc::clone(&empty))),
        };
        let upper = match (self.max.exclusive, max) {
            (true, _) => Bound::Excluded((Score(max), empty)),
            (false, f64::INFINITY) => Bound::Unbounded,
            (false, _) => Bound::Excluded((Score(score_after(max)), empty)),
        };
        Some((lower, upper))
    }
}

/// The smallest float above `score` (finite, not NaN): `f64::next_up`, which needs a newer
/// Rust than the crate's minimum.
fn score_after(score: f64) -> f64 {
    let bits = score.to_bits();
    if score == 0.0 {
        f64::from_bits(1)
    } else if score > 0.0 {
        f64::from_bits(bits + 1)
    } else {
        f64::from_bits(bits - 1)
    }
}

impl LexBound {
    /// Whether `member` lies at or above this bound taken as a lower end.
    fn below(&self, member: &[u8]) -> bool {
        match self {
            Self::Lowest => true,
            Self::Highest => false,
            Self::Inclusive(bound) => member >= &bound[..],
            Self::Exclusive(bound) => member > &bound[..],
        }
    }

    /// Whether `member` lies at or below this bound taken as an upper end.
    fn above(&self, member: &[u8]) -> bool {
        match self {
            Self::Lowest => false,
            Self::Highest => true,
            Self::Inclusive(bound) => member <= &bound[..],
            Self::Exclusive(bound) => member < &bound[..],
        }
    }

    /// The bound as an end of the ordered set's entries of score `score`.
    fn entry_bound(&self, score: Score) -> Bound<Entry> {
        match self {
            Self::Lowest | Self::Highest => Bound::Unbounded,
            Self::Inclusive(member) => Bound::Included((score, Arc::from(&member[..]))),
            Self::Exclusive(member) => Bound::Excluded((score, Arc::from(&member[..]))),
        }
    }
}

impl LexRange {
    /// Whether no member can lie in the range (`min` above `max`, or equal and not both
    /// inclusive), as Redis checks before looking.
    fn is_empty(&self) -> bool {
        use LexBound::{Exclusive, Highest, Inclusive, Lowest};
        match (&self.min, &self.max) {
            (Highest, _) | (_, Lowest) => true,
            (Lowest, _) | (_, Highest) => false,
            (Inclusive(min), Inclusive(max)) => min > max,
            (Inclusive(min) | Exclusive(min), Inclusive(max) | Exclusive(max)) => min >= max,
        }
    }
}

impl RankRange {
    /// The zero-based ranks `first..=last` this range selects in a set of `len` members, as
    /// Redis clamps them; `None` when it selects nothing.
    pub fn resolve(&self, len: usize) -> Option<(usize, usize)> {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        let from_end = |rank: i64| if rank < 0 { rank.saturating_add(len) } else { rank };
        let (start, stop) = (from_end(self.start).max(0), from_end(self.stop));
        if start > stop || start >= len {
            return None;
        }
        let stop = stop.min(len - 1);
        Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
    }
}

/// Members and scores, borrowed from the set, in the order a range walks them.
pub type Members<'a> = Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a>;

impl SortedSetValue {
    /// The members whose score lies in `range`, ascending (or descending when `reverse`).
    pub fn in_scores(&self, range: &ScoreRange, reverse: bool) -> Members<'_> {
        match range.bounds() {
            None => Box::new(std::iter::empty()),
            Some(bounds) if reverse => Box::new(self.range(bounds).rev()),
            Some(bounds) => Box::new(self.range(bounds)),
        }
    }

    /// How many members have a score in `range`: O(log n + k).
    pub fn count_in_scores(&self, range: &ScoreRange) -> usize {
        self.in_scores(range, false).count()
    }

    /// The members in the lex `range` (see the module docs), ascending or descending.
    pub fn in_lex<'a>(&'a self, range: &'a LexRange, reverse: bool) -> Members<'a> {
        let (Some(first), Some(last)) = (self.iter().next(), self.iter().next_back()) else {
            return Box::new(std::iter::empty());
        };
        // Redis first checks that the range overlaps the set's ends at all.
        if range.is_empty() || !range.min.below(last.0) || !range.max.above(first.0) {
            return Box::new(std::iter::empty());
        }
        if Score(first.1) == Score(last.1) {
            let score = Score(first.1);
            let bounds = (range.min.entry_bound(score), range.max.entry_bound(score));
            return if reverse { Box::new(self.range(bounds).rev()) } else { Box::new(self.range(bounds)) };
        }
        if reverse {
            let mut walk = self.iter().rev().skip_while(|(member, _)| !range.max.above(member)).peekable();
            if walk.peek().is_some_and(|(member, _)| !range.min.below(member)) {
                return Box::new(std::iter::empty());
            }
            Box::new(walk.take_while(|(member, _)| range.min.below(member)))
        } else {
            let mut walk = self.iter().skip_while(|(member, _)| !range.min.below(member)).peekable();
            if walk.peek().is_some_and(|(member, _)| !range.max.above(member)) {
                return Box::new(std::iter::empty());
            }
            Box::new(walk.take_while(|(member, _)| range.max.above(member)))
        }
    }

    /// The members at ranks `range`, ascending; or, when `reverse`, ranks counted from the
    /// highest score, descending. O(first rank + k).
    pub fn in_ranks(&self, range: &RankRange, reverse: bool) -> Members<'_> {
        let Some((first, last)) = range.resolve(self.len()) else {
            return Box::new(std::iter::empty());
        };
        let take = last - first + 1;
        if reverse {
            Box::new(self.iter().rev().skip(first).take(take))
        } else {
            Box::new(self.iter().skip(first).take(take))
        }
    }
}

// Bound tags. Never renumber: they are on disk.
const LEX_LOWEST: u8 = 0;
const LEX_HIGHEST: u8 = 1;
const LEX_INCLUSIVE: u8 = 2;
const LEX_EXCLUSIVE: u8 = 3;

/// Appends a score as its 8 IEEE-754 bytes, little-endian.
pub(crate) fn put_score(out: &mut Vec<u8>, score: f64) {
    out.extend_from_slice(&score.to_bits().to_le_bytes());
}

/// Reads a score written by [`put_score`]; NaN is refused (no command produces it).
pub(crate) fn score(reader: &mut Reader<'_>, field: &'static str) -> Result<f64, KvDecodeError> {
    let offset = reader.offset();
    let mut bits = [0u8; 8];
    bits.copy_from_slice(reader.take(8, field)?);
    let score = f64::from_bits(u64::from_le_bytes(bits));
    if score.is_nan() {
        return Err(KvDecodeError::Invalid { field, offset });
    }
    Ok(score)
}

/// Reads a 0/1 flag byte.
pub(crate) fn flag(reader: &mut Reader<'_>, field: &'static str) -> Result<bool, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(KvDecodeError::InvalidTag { field, tag, offset }),
    }
}

impl ScoreRange {
    /// Appends `min` then `max`: the exclusive flag, then the score.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for bound in [self.min, self.max] {
            out.push(u8::from(bound.exclusive));
            put_score(out, bound.score);
        }
    }

    /// Reads back what [`ScoreRange::encode`] wrote.
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let mut bound = || -> Result<ScoreBound, KvDecodeError> {
            let exclusive = flag(reader, "score bound")?;
            Ok(ScoreBound { exclusive, score: score(reader, "score bound")? })
        };
        Ok(ScoreRange { min: bound()?, max: bound()? })
    }
}

impl LexBound {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Lowest => out.push(LEX_LOWEST),
            Self::Highest => out.push(LEX_HIGHEST),
            Self::Inclusive(member) => {
                out.push(LEX_INCLUSIVE);
                put_bytes(out, member);
            }
            Self::Exclusive(member) => {
                out.push(LEX_EXCLUSIVE);
                put_bytes(out, member);
            }
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("lex bound")? {
            LEX_LOWEST => Self::Lowest,
            LEX_HIGHEST => Self::Highest,
            LEX_INCLUSIVE => Self::Inclusive(value(reader)?),
            LEX_EXCLUSIVE => Self::Exclusive(value(reader)?),
            tag => return Err(KvDecodeError::InvalidTag { field: "lex bound", tag, offset }),
        })
    }
}

impl LexRange {
    /// Appends `min` then `max`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.min.encode(out);
        self.max.encode(out);
    }

    /// Reads back what [`LexRange::encode`] wrote.
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        Ok(LexRange { min: LexBound::decode(reader)?, max: LexBound::decode(reader)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zset(members: &[(&str, f64)]) -> SortedSetValue {
        let mut zset = SortedSetValue::default();
        members.iter().for_each(|(member, score)| {
            zset.insert(member.as_bytes(), *score);
        });
        zset
    }

    fn names(members: Members<'_>) -> Vec<String> {
        members.map(|(member, _)| String::from_utf8_lossy(member).into_owned()).collect()
    }

    fn scores(min: f64, min_exclusive: bool, max: f64, max_exclusive: bool) -> ScoreRange {
        ScoreRange {
            min: ScoreBound { score: min, exclusive: min_exclusive },
            max: ScoreBound { score: max, exclusive: max_exclusive },
        }
    }

    #[test]
    fn score_ranges_honour_exclusive_ends_and_infinities() {
        let z = zset(&[("a", 1.0), ("b", 2.0), ("bb", 2.0), ("c", 3.0), ("i", f64::INFINITY)]);
        assert_eq!(names(z.in_scores(&scores(1.0, true, 3.0, false), false)), ["b", "bb", "c"]);
        assert_eq!(names(z.in_scores(&scores(1.0, false, 3.0, true), true)), ["bb", "b", "a"]);
        assert_eq!(names(z.in_scores(&scores(2.0, true, 2.0, false), false)), Vec::<String>::new());
        assert_eq!(names(z.in_scores(&scores(3.0, false, 1.0, false), false)), Vec::<String>::new());
        let all = scores(f64::NEG_INFINITY, false, f64::INFINITY, false);
        assert_eq!(z.count_in_scores(&all), 5);
        assert_eq!(z.count_in_scores(&scores(f64::INFINITY, true, f64::INFINITY, false)), 0);
        assert_eq!(z.count_in_scores(&scores(3.0, true, f64::INFINITY, false)), 1);
        assert_eq!(z.count_in_scores(&scores(2.0, false, 2.0, false)), 2);
    }

    #[test]
    fn lex_ranges_are_exact_on_one_score_and_walk_like_a_listpack_otherwise() {
        let z = zset(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)]);
        let range = |min: LexBound, max: LexBound| LexRange { min, max };
        let incl = |m: &str| LexBound::Inclusive(m.as_bytes().to_vec());
        let excl = |m: &str| LexBound::Exclusive(m.as_bytes().to_vec());
        assert_eq!(names(z.in_lex(&range(incl("b"), excl("d")), false)), ["b", "c"]);
        assert_eq!(names(z.in_lex(&range(LexBound::Lowest, LexBound::Highest), true)), ["d", "c", "b", "a"]);
        assert_eq!(names(z.in_lex(&range(excl("b"), excl("b")), false)), Vec::<String>::new());
        assert_eq!(
            names(z.in_lex(&range(LexBound::Highest, LexBound::Highest), false)),
            Vec::<String>::new()
        );
        // Several scores: from the first member >= min up to the first member > max.
        let mixed = zset(&[("c", 1.0), ("a", 2.0), ("d", 3.0), ("b", 4.0)]);
        assert_eq!(names(mixed.in_lex(&range(incl("b"), incl("c")), false)), ["c", "a"]);
        assert_eq!(names(mixed.in_lex(&range(incl("d"), incl("d")), false)), Vec::<String>::new());
        assert_eq!(names(mixed.in_lex(&range(incl("c"), incl("c")), false)), Vec::<String>::new());
        assert_eq!(names(mixed.in_lex(&range(LexBound::Lowest, incl("c")), false)), ["c", "a"]);
        assert_eq!(names(mixed.in_lex(&range(incl("b"), LexBound::Highest), true)), ["b", "d"]);
    }

    #[test]
    fn the_score_after_is_the_next_float() {
        for score in [-1.5, -5e-324, -0.0, 0.0, 5e-324, 1.0, f64::MAX / 2.0, f64::NEG_INFINITY] {
            assert!(score_after(score) > score, "{score}");
        }
        assert_eq!(score_after(0.0), 5e-324);
        assert_eq!(score_after(-5e-324), -0.0);
        assert_eq!(score_after(f64::NEG_INFINITY), -f64::MAX);
        assert_eq!(score_after(1.0), 1.0 + f64::EPSILON);
        assert_eq!(score_after(f64::MAX), f64::INFINITY);
    }

    #[test]
    fn rank_ranges_clamp_as_redis_does() {
        let rank = |start, stop| RankRange { start, stop };
        assert_eq!(rank(0, -1).resolve(5), Some((0, 4)));
        assert_eq!(rank(-100, 100).resolve(5), Some((0, 4)));
        assert_eq!(rank(3, 1).resolve(5), None);
        assert_eq!(rank(5, 10).resolve(5), None);
        assert_eq!(rank(-1, -1).resolve(5), Some((4, 4)));
        assert_eq!(rank(0, -1).resolve(0), None);
        assert_eq!(rank(i64::MIN, i64::MAX).resolve(3), Some((0, 2)));
        let z = zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
        assert_eq!(names(z.in_ranks(&rank(0, 1), true)), ["c", "b"]);
        assert_eq!(names(z.in_ranks(&rank(-2, -1), false)), ["b", "c"]);
    }
}
