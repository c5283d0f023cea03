//! Sorted-set commands as parsed and logged: the operations, their keys, and their encoding.
//! They are applied in `write` and answered in `read`.
//!
//! # Encoding (inside a collection operation, after type tag 4)
//!
//! `op_tag:u8 fields...`. Byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there; scores and weights as 8 IEEE-754 bytes (never NaN); flags as one byte.
//!
//! | write | tag | fields |
//! |---|---|---|
//! | ZADD, ZINCRBY | 1 | key, option bits, count, (score, member)... |
//! | ZREM | 2 | key, count, member... |
//! | ZREMRANGEBY* | 3 | key, range |
//! | ZPOPMIN/MAX, ZMPOP | 4 | keys, end, count, reply shape |
//! | ZRANGESTORE, Z*STORE | 5 | destination, source |
//!
//! A range is `kind:u8` (0 rank: two signed varints; 1 score: two bounds; 2 lex: two bounds).

use crate::kv::codec::{put_bytes, put_signed, put_varint, KvDecodeError, Reader};
use crate::kv::command::BATCH_KEYS_MAX;
use crate::kv::entry::{key, keys, value};
use crate::kv::types::{ScanQuery, ScanRefusal};

use super::algebra::Combine;
use super::range::{flag, put_score, score, LexRange, RankRange, ScoreRange};

/// ZADD's options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZaddOptions {
    /// NX: only add new members.
    pub only_new: bool,
    /// XX: only update existing members.
    pub only_existing: bool,
    /// GT: only update a score to a greater one.
    pub only_greater: bool,
    /// LT: only update a score to a lesser one.
    pub only_less: bool,
    /// CH: count changed members too, not only added ones.
    pub changed: bool,
    /// INCR (and ZINCRBY): add to the score and reply with the new score.
    pub increment: bool,
}

/// What a range selects: ranks, scores or member bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeBy {
    /// By rank (index).
    Rank(RankRange),
    /// By score.
    Score(ScoreRange),
    /// By member bytes.
    Lex(LexRange),
}

/// A ZRANGE-family query: what to select, in which direction, and which part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// The range.
    pub by: RangeBy,
    /// REV: from the highest score down.
    pub reverse: bool,
    /// LIMIT offset count (a negative count means all).
    pub limit: Option<(i64, i64)>,
}

/// Which end ZPOPMIN/ZPOPMAX and ZMPOP take from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopEnd {
    /// The lowest scores first.
    Min,
    /// The highest scores first.
    Max,
}

/// How a pop replies (the blocking pops reply as ZMPOP and as `KeyMemberScore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopReply {
    /// ZPOPMIN key: `[member, score]`, or an empty array.
    Single,
    /// ZPOPMIN key count: the pairs (nested in RESP3), or an empty array.
    Pairs,
    /// ZMPOP: `[key, [[member, score], ...]]`, or the null array when every key is empty.
    KeyAndPairs,
    /// BZPOPMIN: `[key, member, score]`, or the null array when every key is empty.
    KeyMemberScore,
}

/// Where a STORE command takes its result from.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreSource {
    /// ZRANGESTORE: a range of one sorted set.
    Range {
        /// The source key.
        key: Vec<u8>,
        /// The range.
        query: RangeQuery,
    },
    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE.
    Combine(Combine),
}

/// A sorted-set command that changes the key space.
#[derive(Debug, Clone, PartialEq)]
pub enum SortedSetWrite {
    /// ZADD and ZINCRBY.
    Add {
        /// The key.
        key: Vec<u8>,
        /// NX XX GT LT CH INCR.
        options: ZaddOptions,
        /// Scores and members, in order (INCR: exactly one).
        members: Vec<(f64, Vec<u8>)>,
    },
    /// ZREM.
    Remove {
        /// The key.
        key: Vec<u8>,
        /// The members.
        members: Vec<Vec<u8>>,
    },
    /// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
    RemoveRange {
        /// The key.
        key: Vec<u8>,
        /// The range removed.
        by: RangeBy,
    },
    /// ZPOPMIN, ZPOPMAX, ZMPOP: pop up to `count` members from the first non-empty key.
    Pop {
        /// The keys, tried in order.
        keys: Vec<Vec<u8>>,
        /// Which end.
        end: PopEnd,
        /// How many members at most.
        count: u64,
        /// The reply's shape.
        reply: PopReply,
    },
    /// ZRANGESTORE, ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: replace `destination` with a result.
    Store {
        /// The key written (deleted when the result is empty).
        destination: Vec<u8>,
        /// The result.
        source: StoreSource,
    },
}

/// A sorted-set command that only reads.
#[derive(Debug, Clone, PartialEq)]
pub enum SortedSetRead {
    /// ZSCORE.
    Score {
        /// The key.
        key: Vec<u8>,
        /// The member.
        member: Vec<u8>,
    },
    /// ZMSCORE.
    MultiScore {
        /// The key.
        key: Vec<u8>,
        /// The members.
        members: Vec<Vec<u8>>,
    },
    /// ZRANK and ZREVRANK.
    Rank {
        /// The key.
        key: Vec<u8>,
        /// The member.
        member: Vec<u8>,
        /// ZREVRANK.
        reverse: bool,
    },
    /// ZCARD.
    Card {
        /// The key.
        key: Vec<u8>,
    },
    /// ZCOUNT.
    Count {
        /// The key.
        key: Vec<u8>,
        /// The scores counted.
        range: ScoreRange,
    },
    /// ZLEXCOUNT.
    LexCount {
        /// The key.
        key: Vec<u8>,
        /// The members counted.
        range: LexRange,
    },
    /// ZRANGE and its older forms.
    Range {
        /// The key.
        key: Vec<u8>,
        /// The range.
        query: RangeQuery,
        /// WITHSCORES.
        with_scores: bool,
    },
    /// ZUNION, ZINTER, ZDIFF.
    Combine {
        /// The operation and its inputs.
        combine: Combine,
        /// WITHSCORES.
        with_scores: bool,
    },
    /// ZINTERCARD.
    InterCard {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// Stop counting here (0: no limit).
        limit: u64,
    },
    /// ZRANDMEMBER.
    RandomMembers {
        /// The key.
        key: Vec<u8>,
        /// The count (none: one member as a bulk string; negative: repeats allowed).
        count: Option<i64>,
        /// WITHSCORES.
        with_scores: bool,
        /// Drawn by the parser; the choices derive from it.
        seed: u64,
    },
    /// ZSCAN.
    Scan(ScanQuery),
    /// ZSCAN with options Redis refuses: a sorted set answers the refusal's error.
    ScanRefused(ScanRefusal),
}

// Operation tags. Never renumber: they are on disk.
const WRITE_ADD: u8 = 1;
const WRITE_REMOVE: u8 = 2;
const WRITE_REMOVE_RANGE: u8 = 3;
const WRITE_POP: u8 = 4;
const WRITE_STORE: u8 = 5;
const READ_SCORE: u8 = 1;
const READ_MULTI_SCORE: u8 = 2;
const READ_RANK: u8 = 3;
const READ_CARD: u8 = 4;
const READ_COUNT: u8 = 5;
const READ_LEX_COUNT: u8 = 6;
const READ_RANGE: u8 = 7;
const READ_COMBINE: u8 = 8;
const READ_INTER_CARD: u8 = 9;
const READ_RANDOM_MEMBERS: u8 = 10;
const READ_SCAN: u8 = 11;
const READ_SCAN_REFUSED: u8 = 12;

const RANGE_RANK: u8 = 0;
const RANGE_SCORE: u8 = 1;
const RANGE_LEX: u8 = 2;
const STORE_RANGE: u8 = 0;
const STORE_COMBINE: u8 = 1;

/// Reads a tag no greater than `max`.
fn tag(reader: &mut Reader<'_>, field: &'static str, max: u8) -> Result<u8, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8(field)? {
        tag if tag <= max => Ok(tag),
        tag => Err(KvDecodeError::InvalidTag { field, tag, offset }),
    }
}

/// Decodes a counted list of members, bounded by [`BATCH_KEYS_MAX`].
fn members(reader: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, KvDecodeError> {
    let count = reader.count("member count", BATCH_KEYS_MAX)?;
    let mut members = Vec::with_capacity((count as usize).min(reader.remaining()));
    for _ in 0..count {
        members.push(value(reader)?);
    }
    Ok(members)
}

fn put_members(out: &mut Vec<u8>, members: &[Vec<u8>]) {
    put_varint(out, members.len() as u64);
    members.iter().for_each(|member| put_bytes(out, member));
}

impl ZaddOptions {
    fn bits(self) -> u8 {
        [self.only_new, self.only_existing, self.only_greater, self.only_less, self.changed, self.increment]
            .iter()
            .enumerate()
            .fold(0, |bits, (i, &set)| bits | (u8::from(set) << i))
    }

    fn from_bits(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let bits = tag(reader, "zadd options", 0b11_1111)?;
        let set = |i: u8| bits & (1 << i) != 0;
        Ok(ZaddOptions {
            only_new: set(0),
            only_existing: set(1),
            only_greater: set(2),
            only_less: set(3),
            changed: set(4),
            increment: set(5),
        })
    }
}

impl RangeBy {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Rank(range) => {
                out.push(RANGE_RANK);
                put_signed(out, range.start);
                put_signed(out, range.stop);
            }
            Self::Score(range) => {
                out.push(RANGE_SCORE);
                range.encode(out);
            }
            Self::Lex(range) => {
                out.push(RANGE_LEX);
                range.encode(out);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        Ok(match tag(reader, "range kind", RANGE_LEX)? {
            RANGE_RANK => {
                Self::Rank(RankRange { start: reader.signed("rank")?, stop: reader.signed("rank")? })
            }
            RANGE_SCORE => Self::Score(ScoreRange::decode(reader)?),
            _ => Self::Lex(LexRange::decode(reader)?),
        })
    }
}

impl RangeQuery {
    fn encode(&self, out: &mut Vec<u8>) {
        self.by.encode(out);
        out.push(u8::from(self.reverse));
        match self.limit {
            None => out.push(0),
            Some((offset, count)) => {
                out.push(1);
                put_signed(out, offset);
                put_signed(out, count);
            }
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let by = RangeBy::decode(reader)?;
        let reverse = flag(reader, "reverse")?;
        let limit = match flag(reader, "limit")? {
            false => None,
            true => Some((reader.signed("limit offset")?, reader.signed("limit count")?)),
        };
        Ok(RangeQuery { by, reverse, limit })
    }
}

impl PopEnd {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        Ok(if flag(reader, "pop end")? { PopEnd::Max } else { PopEnd::Min })
    }
}

impl PopReply {
    fn tag(self) -> u8 {
        match self {
            Self::Single => 0,
            Self::Pairs => 1,
            Self::KeyAndPairs => 2,
            Self::KeyMemberScore => 3,
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        Ok(match tag(reader, "pop reply", 3)? {
            0 => Self::Single,
            1 => Self::Pairs,
            2 => Self::KeyAndPairs,
            _ => Self::KeyMemberScore,
        })
    }
}

impl StoreSource {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Range { key, query } => {
                out.push(STORE_RANGE);
                put_bytes(out, key);
                query.encode(out);
            }
            Self::Combine(combine) => {
                out.push(STORE_COMBINE);
                combine.encode(out);
            }
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        Ok(match tag(reader, "store source", STORE_COMBINE)? {
            STORE_RANGE => Self::Range { key: key(reader)?, query: RangeQuery::decode(reader)? },
            _ => Self::Combine(Combine::decode(reader)?),
        })
    }
}

impl SortedSetWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Add { key, .. } | Self::Remove { key, .. } | Self::RemoveRange { key, .. } => vec![key],
            Self::Pop { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            Self::Store { destination, source } => {
                let mut keys = vec![destination.as_slice()];
                match source {
                    StoreSource::Range { key, .. } => keys.push(key),
                    StoreSource::Combine(combine) => keys.extend(combine.keys.iter().map(Vec::as_slice)),
                }
                keys
            }
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Add { key, options, members } => {
                out.push(WRITE_ADD);
                put_bytes(out, key);
                out.push(options.bits());
                put_varint(out, members.len() as u64);
                for (score, member) in members {
                    put_score(out, *score);
                    put_bytes(out, member);
                }
            }
            Self::Remove { key, members } => {
                out.push(WRITE_REMOVE);
                put_bytes(out, key);
                put_members(out, members);
            }
            Self::RemoveRange { key, by } => {
                out.push(WRITE_REMOVE_RANGE);
                put_bytes(out, key);
                by.encode(out);
            }
            Self::Pop { keys, end, count, reply } => {
                out.push(WRITE_POP);
                put_members(out, keys);
                out.push(u8::from(*end == PopEnd::Max));
                put_varint(out, *count);
                out.push(reply.tag());
            }
            Self::Store { destination, source } => {
                out.push(WRITE_STORE);
                put_bytes(out, destination);
                source.encode(out);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("sorted-set write")? {
            WRITE_ADD => {
                let (key, options) = (key(reader)?, ZaddOptions::from_bits(reader)?);
                let count = reader.count("member count", BATCH_KEYS_MAX)?;
                // Each pair takes at least nine bytes.
                let mut members = Vec::with_capacity((count as usize).min(reader.remaining() / 9));
                for _ in 0..count {
                    members.push((score(reader, "score")?, value(reader)?));
                }
                Self::Add { key, options, members }
            }
            WRITE_REMOVE => Self::Remove { key: key(reader)?, members: members(reader)? },
            WRITE_REMOVE_RANGE => Self::RemoveRange { key: key(reader)?, by: RangeBy::decode(reader)? },
            WRITE_POP => Self::Pop {
                keys: keys(reader)?,
                end: PopEnd::decode(reader)?,
                count: reader.varint("pop count")?,
                reply: PopReply::decode(reader)?,
            },
            WRITE_STORE => Self::Store { destination: key(reader)?, source: StoreSource::decode(reader)? },
            tag => return Err(KvDecodeError::InvalidTag { field: "sorted-set write", tag, offset }),
        })
    }
}

impl SortedSetRead {
    /// The keys the query touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Score { key, .. }
            | Self::MultiScore { key, .. }
            | Self::Rank { key, .. }
            | Self::Card { key }
            | Self::Count { key, .. }
            | Self::LexCount { key, .. }
            | Self::Range { key, .. }
            | Self::RandomMembers { key, .. }
            | Self::Scan(ScanQuery { key, .. })
            | Self::ScanRefused(ScanRefusal { key, .. }) => vec![key],
            Self::Combine { combine, .. } => combine.keys.iter().map(Vec::as_slice).collect(),
            Self::InterCard { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Score { key, member } => {
                out.push(READ_SCORE);
                put_bytes(out, key);
                put_bytes(out, member);
            }
            Self::MultiScore { key, members } => {
                out.push(READ_MULTI_SCORE);
                put_bytes(out, key);
                put_members(out, members);
            }
            Self::Rank { key, member, reverse } => {
                out.push(READ_RANK);
                put_bytes(out, key);
                put_bytes(out, member);
                out.push(u8::from(*reverse));
            }
            Self::Card { key } => {
                out.push(READ_CARD);
                put_bytes(out, key);
            }
            Self::Count { key, range } => {
                out.push(READ_COUNT);
                put_bytes(out, key);
                range.encode(out);
            }
            Self::LexCount { key, range } => {
                out.push(READ_LEX_COUNT);
                put_bytes(out, key);
                range.encode(out);
            }
            Self::Range { key, query, with_scores } => {
                out.push(READ_RANGE);
                put_bytes(out, key);
                query.encode(out);
                out.push(u8::from(*with_scores));
            }
            Self::Combine { combine, with_scores } => {
                out.push(READ_COMBINE);
                combine.encode(out);
                out.push(u8::from(*with_scores));
            }
            Self::InterCard { keys, limit } => {
                out.push(READ_INTER_CARD);
                put_members(out, keys);
                put_varint(out, *limit);
            }
            Self::RandomMembers { key, count, with_scores, seed } => {
                out.push(READ_RANDOM_MEMBERS);
                put_bytes(out, key);
                match count {
                    None => out.push(0),
                    Some(count) => {
                        out.push(1);
                        put_signed(out, *count);
                    }
                }
                out.push(u8::from(*with_scores));
                out.extend_from_slice(&seed.to_le_bytes());
            }
            Self::ScanRefused(refusal) => {
                out.push(READ_SCAN_REFUSED);
                refusal.encode(out);
            }
            Self::Scan(query) => {
                out.push(READ_SCAN);
                query.encode(out);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("sorted-set read")? {
            READ_SCORE => Self::Score { key: key(reader)?, member: value(reader)? },
            READ_MULTI_SCORE => Self::MultiScore { key: key(reader)?, members: members(reader)? },
            READ_RANK => {
                Self::Rank { key: key(reader)?, member: value(reader)?, reverse: flag(reader, "reverse")? }
            }
            READ_CARD => Self::Card { key: key(reader)? },
            READ_COUNT => Self::Count { key: key(reader)?, range: ScoreRange::decode(reader)? },
            READ_LEX_COUNT => Self::LexCount { key: key(reader)?, range: LexRange::decode(reader)? },
            READ_RANGE => Self::Range {
                key: key(reader)?,
                query: RangeQuery::decode(reader)?,
                with_scores: flag(reader, "withscores")?,
            },
            READ_COMBINE => {
                Self::Combine { combine: Combine::decode(reader)?, with_scores: flag(reader, "withscores")? }
            }
            READ_INTER_CARD => Self::InterCard { keys: keys(reader)?, limit: reader.varint("limit")? },
            READ_RANDOM_MEMBERS => {
                let key = key(reader)?;
                let count = match flag(reader, "count")? {
                    false => None,
                    true => Some(reader.signed("count")?),
                };
                let with_scores = flag(reader, "withscores")?;
                let mut seed = [0u8; 8];
                seed.copy_from_slice(reader.take(8, "seed")?);
                Self::RandomMembers { key, count, with_scores, seed: u64::from_le_bytes(seed) }
            }
            READ_SCAN => Self::Scan(ScanQuery::decode(reader)?),
            READ_SCAN_REFUSED => Self::ScanRefused(ScanRefusal::decode(reader)?),
            tag => return Err(KvDecodeError::InvalidTag { field: "sorted-set read", tag, offset }),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::algebra::{Aggregate, SetOperation};
    use super::super::range::{LexBound, ScoreBound};
    use super::*;
    use crate::kv::types::scan_query::strategies::{scan_query, scan_refusal};
    use crate::kv::types::{CollectionRead, CollectionWrite};
    use crate::kv::{KvRead, KvWrite, WriteOp};

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..6)
    }

    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![any::<f64>().prop_filter("never NaN", |s| !s.is_nan()), Just(f64::INFINITY), Just(-0.0)]
    }

    fn score_range() -> impl Strategy<Value = ScoreRange> {
        (score(), any::<bool>(), score(), any::<bool>()).prop_map(|(min, a, max, b)| ScoreRange {
            min: ScoreBound { score: min, exclusive: a },
            max: ScoreBound { score: max, exclusive: b },
        })
    }

    fn lex_bound() -> impl Strategy<Value = LexBound> {
        prop_oneof![
            Just(LexBound::Lowest),
            Just(LexBound::Highest),
            bytes().prop_map(LexBound::Inclusive),
            bytes().prop_map(LexBound::Exclusive),
        ]
    }

    fn range_by() -> impl Strategy<Value = RangeBy> {
        prop_oneof![
            (any::<i64>(), any::<i64>()).prop_map(|(start, stop)| RangeBy::Rank(RankRange { start, stop })),
            score_range().prop_map(RangeBy::Score),
            (lex_bound(), lex_bound()).prop_map(|(min, max)| RangeBy::Lex(LexRange { min, max })),
        ]
    }

    fn query() -> impl Strategy<Value = RangeQuery> {
        (range_by(), any::<bool>(), proptest::option::of((any::<i64>(), any::<i64>())))
            .prop_map(|(by, reverse, limit)| RangeQuery { by, reverse, limit })
    }

    fn combine() -> impl Strategy<Value = Combine> {
        let operation =
            prop_oneof![Just(SetOperation::Union), Just(SetOperation::Inter), Just(SetOperation::Diff)];
        let aggregate = prop_oneof![Just(Aggregate::Sum), Just(Aggregate::Min), Just(Aggregate::Max)];
        (
            operation,
            proptest::collection::vec(bytes(), 1..4),
            proptest::collection::vec(score(), 0..4),
            aggregate,
        )
            .prop_map(|(operation, keys, weights, aggregate)| Combine {
                operation,
                keys,
                weights,
                aggregate,
            })
    }

    fn write() -> impl Strategy<Value = SortedSetWrite> {
        let options = any::<[bool; 6]>().prop_map(|b| ZaddOptions {
            only_new: b[0],
            only_existing: b[1],
            only_greater: b[2],
            only_less: b[3],
            changed: b[4],
            increment: b[5],
        });
        let end = prop_oneof![Just(PopEnd::Min), Just(PopEnd::Max)];
        let reply = prop_oneof![
            Just(PopReply::Single),
            Just(PopReply::Pairs),
            Just(PopReply::KeyAndPairs),
            Just(PopReply::KeyMemberScore)
        ];
        let source = prop_oneof![
            (bytes(), query()).prop_map(|(key, query)| StoreSource::Range { key, query }),
            combine().prop_map(StoreSource::Combine),
        ];
        prop_oneof![
            (bytes(), options, proptest::collection::vec((score(), bytes()), 0..4))
                .prop_map(|(key, options, members)| SortedSetWrite::Add { key, options, members }),
            (bytes(), proptest::collection::vec(bytes(), 0..4))
                .prop_map(|(key, members)| SortedSetWrite::Remove { key, members }),
            (bytes(), range_by()).prop_map(|(key, by)| SortedSetWrite::RemoveRange { key, by }),
            (proptest::collection::vec(bytes(), 1..4), end, any::<u64>(), reply)
                .prop_map(|(keys, end, count, reply)| SortedSetWrite::Pop { keys, end, count, reply }),
            (bytes(), source).prop_map(|(destination, source)| SortedSetWrite::Store { destination, source }),
        ]
    }

    fn read() -> impl Strategy<Value = SortedSetRead> {
        prop_oneof![
            (bytes(), bytes()).prop_map(|(key, member)| SortedSetRead::Score { key, member }),
            (bytes(), proptest::collection::vec(bytes(), 0..4))
                .prop_map(|(key, members)| SortedSetRead::MultiScore { key, members }),
            (bytes(), bytes(), any::<bool>()).prop_map(|(key, member, reverse)| SortedSetRead::Rank {
                key,
                member,
                reverse
            }),
            bytes().prop_map(|key| SortedSetRead::Card { key }),
            (bytes(), score_range()).prop_map(|(key, range)| SortedSetRead::Count { key, range }),
            (bytes(), lex_bound(), lex_bound())
                .prop_map(|(key, min, max)| SortedSetRead::LexCount { key, range: LexRange { min, max } }),
            (bytes(), query(), any::<bool>()).prop_map(|(key, query, with_scores)| SortedSetRead::Range {
                key,
                query,
                with_scores
            }),
            (combine(), any::<bool>())
                .prop_map(|(combine, with_scores)| SortedSetRead::Combine { combine, with_scores }),
            (proptest::collection::vec(bytes(), 1..4), any::<u64>())
                .prop_map(|(keys, limit)| SortedSetRead::InterCard { keys, limit }),
            (bytes(), proptest::option::of(any::<i64>()), any::<bool>(), any::<u64>()).prop_map(
                |(key, count, with_scores, seed)| SortedSetRead::RandomMembers {
                    key,
                    count,
                    with_scores,
                    seed
                }
            ),
            scan_query().prop_map(SortedSetRead::Scan),
            scan_refusal().prop_map(SortedSetRead::ScanRefused),
        ]
    }

    proptest! {
        #[test]
        fn every_write_decodes_to_itself(op in write()) {
            let write = KvWrite { now_ms: 7, op: WriteOp::Collection(CollectionWrite::SortedSet(op)) };
            prop_assert_eq!(KvWrite::decode(&write.encode()), Ok(write));
        }

        #[test]
        fn every_read_decodes_to_itself(query in read()) {
            let read = KvRead::Collection(CollectionRead::SortedSet(query));
            prop_assert_eq!(KvRead::decode(&read.encode()), Ok(read));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut input = vec![4u8];
            input.extend_from_slice(&tail);
            let _ = SortedSetWrite::decode(&mut Reader::new(&tail));
            let _ = SortedSetRead::decode(&mut Reader::new(&tail));
            let _ = KvRead::decode(&input);
        }
    }
}
