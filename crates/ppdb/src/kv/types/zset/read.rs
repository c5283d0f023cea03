//! Sorted-set queries as answered: scores, ranks, counts, ranges, combinations, random members
//! and ZSCAN.

use crate::kv::glob::glob_match;
use crate::kv::numeric::format_double;
use crate::kv::reply::{KvError, Reply};
use crate::kv::state_machine::KvStore;
use crate::kv::types::draws::Draws;
use crate::kv::types::{ScanQuery, ScanRefusal};

use super::algebra::intersection_size;
use super::command::{RangeBy, RangeQuery, SortedSetRead};
use super::range::Members;
use super::{Score, SortedSetValue};

/// Sorted sets ZSCAN returns whole in one call, cursor 0, as Redis does with the compact
/// encoding it keeps for small sets (`zset-max-listpack-entries`, `zset-max-listpack-value`).
const SCAN_WHOLE_MEMBERS_MAX: usize = 128;
/// See [`SCAN_WHOLE_MEMBERS_MAX`]: the longest member of a set ZSCAN returns whole.
const SCAN_WHOLE_MEMBER_BYTES_MAX: usize = 64;

impl SortedSetRead {
    pub(crate) fn read(&self, store: &KvStore, now: u64) -> Reply {
        self.answer(store, now).unwrap_or_else(Reply::Error)
    }

    fn answer(&self, store: &KvStore, now: u64) -> Result<Reply, KvError> {
        let zset = |key: &[u8]| store.collection::<SortedSetValue>(key, now);
        Ok(match self {
            Self::Score { key, member } => double_or_nil(zset(key)?.and_then(|z| z.score(member))),
            Self::MultiScore { key, members } => {
                let zset = zset(key)?;
                Reply::Array(members.iter().map(|m| double_or_nil(zset.and_then(|z| z.score(m)))).collect())
            }
            Self::Rank { key, member, reverse } => {
                match zset(key)?.and_then(|z| Some((z.len(), z.rank(member)?))) {
                    None => Reply::Nil,
                    Some((len, rank)) if *reverse => Reply::Integer((len - 1 - rank) as i64),
                    Some((_, rank)) => Reply::Integer(rank as i64),
                }
            }
            Self::Card { key } => Reply::Integer(zset(key)?.map_or(0, |z| z.len() as i64)),
            Self::Count { key, range } => {
                Reply::Integer(zset(key)?.map_or(0, |z| z.count_in_scores(range) as i64))
            }
            Self::LexCount { key, range } => {
                Reply::Integer(zset(key)?.map_or(0, |z| z.in_lex(range, false).count() as i64))
            }
            Self::Range { key, query, with_scores } => match zset(key)? {
                None => Reply::Array(Vec::new()),
                Some(zset) => members_reply(select(zset, query), *with_scores),
            },
            Self::Combine { combine, with_scores } => {
                let result = combine.evaluate(store, now)?;
                members_reply(
                    Box::new(result.iter().map(|(member, score)| (&member[..], *score))),
                    *with_scores,
                )
            }
            Self::InterCard { keys, limit } => {
                Reply::Integer(intersection_size(store, now, keys, *limit)? as i64)
            }
            Self::RandomMembers { key, count, with_scores, seed } => {
                random_members(zset(key)?, *count, *with_scores, *seed)
            }
            Self::Scan(ScanQuery { key, cursor, pattern, count }) => match zset(key)? {
                None => Reply::Scan { cursor: 0, keys: Vec::new() },
                Some(zset) => scan(zset, *cursor, pattern.as_deref(), *count),
            },
            Self::ScanRefused(ScanRefusal { key, error }) => match zset(key)? {
                None => Reply::Scan { cursor: 0, keys: Vec::new() },
                Some(_) => return Err(*error),
            },
        })
    }
}

/// A score, or nil.
fn double_or_nil(score: Option<f64>) -> Reply {
    score.map_or(Reply::Nil, |score| Reply::Double(Score(score)))
}

/// Members as an array, or member and score pairs when `with_scores`.
fn members_reply(members: Members<'_>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(members.map(|(m, s)| (Reply::Bulk(m.to_vec()), Reply::Double(Score(s)))).collect())
    } else {
        Reply::Array(members.map(|(m, _)| Reply::Bulk(m.to_vec())).collect())
    }
}

/// The members a ZRANGE-family query selects, in reply order, LIMIT applied (a negative offset
/// selects nothing, a negative count everything after the offset).
pub(super) fn select<'a>(zset: &'a SortedSetValue, query: &'a RangeQuery) -> Members<'a> {
    let members = match &query.by {
        RangeBy::Rank(range) => zset.in_ranks(range, query.reverse),
        RangeBy::Score(range) => zset.in_scores(range, query.reverse),
        RangeBy::Lex(range) => zset.in_lex(range, query.reverse),
    };
    match query.limit {
        None => members,
        Some((offset, _)) if offset < 0 => Box::new(std::iter::empty()),
        Some((offset, count)) => {
            let members = members.skip(usize::try_from(offset).unwrap_or(usize::MAX));
            match usize::try_from(count) {
                Ok(count) => Box::new(members.take(count)),
                Err(_) => Box::new(members),
            }
        }
    }
}

/// ZRANDMEMBER: one member (no count), distinct members (positive count), or draws with
/// repetition (negative count). O(n) to index the members, then O(1) a draw.
fn random_members(zset: Option<&SortedSetValue>, count: Option<i64>, with_scores: bool, seed: u64) -> Reply {
    let mut draws = Draws::new(seed);
    let members: Vec<(&[u8], f64)> = zset.map(|z| z.iter().collect()).unwrap_or_default();
    let len = members.len();
    let Some(count) = count else {
        return match len {
            0 => Reply::Nil,
            _ => Reply::Bulk(members[draws.below(len)].0.to_vec()),
        };
    };
    let picked: Vec<(&[u8], f64)> = if len == 0 {
        Vec::new()
    } else if count < 0 {
        (0..count.unsigned_abs()).map(|_| members[draws.below(len)]).collect()
    } else if count.unsigned_abs() >= len as u64 {
        members
    } else {
        // count < len, so it is a usize.
        draws.distinct(count as usize, len).into_iter().map(|index| members[index]).collect()
    };
    members_reply(Box::new(picked.into_iter()), with_scores)
}

/// A score as a cursor: unsigned integers in the order of the scores, never 0.
fn score_cursor(score: f64) -> u64 {
    let bits = score.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The score a cursor stands for; `None` past `+inf`.
fn cursor_score(cursor: u64) -> Option<f64> {
    let score = if cursor >> 63 == 1 { f64::from_bits(cursor & !(1 << 63)) } else { f64::from_bits(!cursor) };
    match score.is_nan() {
        false => Some(score),
        true if cursor >> 63 == 1 => None,
        true => Some(f64::NEG_INFINITY),
    }
}

/// ZSCAN. A small set comes whole, cursor 0. A larger one comes by pages of about `count`
/// members in score order; the cursor is the score to continue from, so a member present for
/// the whole scan is returned at least once whatever changes between calls (members sharing
/// the boundary score may come twice, as SCAN allows). A page never ends inside the score it
/// started with, so the scan always advances.
fn scan(zset: &SortedSetValue, cursor: u64, pattern: Option<&[u8]>, count: u64) -> Reply {
    let small = zset.len() <= SCAN_WHOLE_MEMBERS_MAX
        && zset.iter().all(|(member, _)| member.len() <= SCAN_WHOLE_MEMBER_BYTES_MAX);
    let page: Vec<(&[u8], f64)>;
    let next_cursor;
    if small {
        page = zset.iter().collect();
        next_cursor = 0;
    } else {
        let Some(from) = (if cursor == 0 { Some(f64::NEG_INFINITY) } else { cursor_score(cursor) }) else {
            return Reply::Scan { cursor: 0, keys: Vec::new() };
        };
        let from = Score(from);
        let mut walk = zset.range((from, std::sync::Arc::from(&[][..]))..).peekable();
        let mut taken: Vec<(&[u8], f64)> = Vec::new();
        while let Some(&(member, score)) = walk.peek() {
            let first = taken.first().map(|&(_, first)| Score(first));
            if taken.len() as u64 >= count.max(1) && first != Some(Score(score)) {
                break;
            }
            taken.push((member, score));
            walk.next();
        }
        next_cursor = walk.peek().map_or(0, |&(_, score)| score_cursor(score));
        page = taken;
    }
    let keys = page
        .into_iter()
        // Redis does not match a pattern of `*` (which its matcher finds the empty member not
        // to match): every member is kept.
        .filter(|(member, _)| pattern.is_none_or(|pattern| pattern == b"*" || glob_match(pattern, member)))
        .flat_map(|(member, score)| [member.to_vec(), format_double(score).into_bytes()])
        .collect();
    Reply::Scan { cursor: next_cursor, keys }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::{Collection, SetValue};

    /// ZSCAN's bad options are refused only for a sorted set, as Redis looks the key up first:
    /// a missing key is an empty page, another type WRONGTYPE.
    #[test]
    fn refused_scan_options_answer_after_the_key_is_looked_up() {
        let mut store = KvStore::new();
        let mut zset = SortedSetValue::default();
        zset.insert(b"a", 1.0);
        store.insert_value(b"z", zset.into_data(), None);
        store.insert_value(b"s", SetValue::default().into_data(), None);
        let refused = |key: &[u8]| {
            SortedSetRead::ScanRefused(ScanRefusal { key: key.to_vec(), error: KvError::Syntax })
        };
        assert_eq!(refused(b"missing").read(&store, 1), Reply::Scan { cursor: 0, keys: Vec::new() });
        assert_eq!(refused(b"z").read(&store, 1), Reply::Error(KvError::Syntax));
        assert_eq!(refused(b"s").read(&store, 1), Reply::Error(KvError::WrongType));
    }

    #[test]
    fn a_star_pattern_keeps_the_empty_member() {
        let mut zset = SortedSetValue::default();
        zset.insert(b"", 1.0);
        let page = |pattern: &[u8]| scan(&zset, 0, Some(pattern), 10);
        assert_eq!(page(b"*"), Reply::Scan { cursor: 0, keys: vec![Vec::new(), b"1".to_vec()] });
        assert_eq!(page(b"?"), Reply::Scan { cursor: 0, keys: Vec::new() });
    }

    #[test]
    fn score_cursors_keep_the_order_of_scores_and_are_never_zero() {
        let scores = [f64::NEG_INFINITY, -1e300, -1.0, -0.0, 0.0, 5e-324, 1.0, 1e300, f64::INFINITY];
        let cursors: Vec<u64> = scores.iter().map(|&s| score_cursor(s)).collect();
        assert!(cursors.windows(2).all(|w| w[0] <= w[1]));
        assert!(cursors.iter().all(|&c| c != 0));
        for score in scores {
            assert_eq!(cursor_score(score_cursor(score)).map(Score), Some(Score(score)));
        }
        assert_eq!(cursor_score(u64::MAX), None);
        assert_eq!(cursor_score(1), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn a_large_set_scans_in_pages_that_always_advance() {
        let mut zset = SortedSetValue::default();
        for i in 0..300u32 {
            // Runs of 50 members share a score: a page of 10 must not stall inside one.
            zset.insert(format!("m{i:03}").as_bytes(), f64::from(i / 50));
        }
        let (mut cursor, mut seen, mut calls) = (0, std::collections::BTreeSet::new(), 0);
        loop {
            let Reply::Scan { cursor: next, keys } = scan(&zset, cursor, None, 10) else {
                panic!("a scan page")
            };
            seen.extend(keys.chunks(2).map(|pair| pair[0].clone()));
            calls += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 300);
        assert_eq!(calls, 6);
    }

    #[test]
    fn random_members_are_distinct_for_a_positive_count_and_follow_the_seed() {
        let mut zset = SortedSetValue::default();
        for i in 0..20u8 {
            zset.insert(&[i], f64::from(i));
        }
        let draw = |count, seed| random_members(Some(&zset), Some(count), false, seed);
        let Reply::Array(picked) = draw(10, 1) else { panic!("an array") };
        let distinct: std::collections::BTreeSet<_> = picked.iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(distinct.len(), 10);
        assert_eq!(draw(10, 1), draw(10, 1));
        assert_ne!(draw(10, 1), draw(10, 2));
        let Reply::Array(repeated) = draw(-50, 3) else { panic!("an array") };
        assert_eq!(repeated.len(), 50);
        assert_eq!(random_members(None, None, false, 1), Reply::Nil);
        assert_eq!(random_members(None, Some(-3), true, 1), Reply::Pairs(Vec::new()));
    }
}
