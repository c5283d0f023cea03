//! Sorted-set writes as applied: ZADD, ZINCRBY, ZREM, ZREMRANGEBY*, the pops and the STORE forms.

use std::sync::Arc;

use crate::kv::reply::{KvError, Reply};
use crate::kv::state_machine::KvStore;
use crate::kv::types::Data;

use super::command::{PopEnd, PopReply, RangeBy, SortedSetWrite, StoreSource, ZaddOptions};
use super::read::select;
use super::{Score, SortedSetValue};

impl SortedSetWrite {
    pub(crate) fn apply(&self, store: &mut KvStore, now: u64) -> Reply {
        let result = match self {
            Self::Add { key, options, members } => add(store, key, *options, members),
            Self::Remove { key, members } => store
                .change_collection(key, false, |zset: &mut SortedSetValue| {
                    members.iter().filter(|member| zset.remove(member).is_some()).count()
                })
                .map(|removed| Reply::Integer(removed.unwrap_or(0) as i64)),
            Self::RemoveRange { key, by } => store
                .change_collection(key, false, |zset: &mut SortedSetValue| remove_range(zset, by))
                .map(|removed| Reply::Integer(removed.unwrap_or(0) as i64)),
            Self::Pop { keys, end, count, reply } => pop(store, keys, *end, *count, *reply),
            Self::Store { destination, source } => store_result(store, now, destination, source),
        };
        result.unwrap_or_else(Reply::Error)
    }
}

/// What ZADD did to one member.
enum Added {
    /// A new member.
    New(f64),
    /// An existing member's score changed.
    Changed(f64),
    /// An existing member kept its score.
    Same(f64),
    /// The options said no.
    Skipped,
}

/// ZADD (and ZINCRBY) of every pair in order.
fn add(
    store: &mut KvStore,
    key: &[u8],
    options: ZaddOptions,
    members: &[(f64, Vec<u8>)],
) -> Result<Reply, KvError> {
    let create = !options.only_existing;
    let outcomes = store.change_collection(key, create, |zset: &mut SortedSetValue| {
        let mut outcomes = Vec::with_capacity(members.len());
        for (score, member) in members {
            outcomes.push(add_one(zset, options, *score, member)?);
        }
        Ok(outcomes)
    })?;
    let outcomes = outcomes.unwrap_or_else(|| Ok(Vec::new()))?;
    if options.increment {
        return Ok(match outcomes.first() {
            Some(Added::New(score) | Added::Changed(score) | Added::Same(score)) => {
                Reply::Double(Score(*score))
            }
            Some(Added::Skipped) | None => Reply::Nil,
        });
    }
    let counted = |outcome: &&Added| match outcome {
        Added::New(_) => true,
        Added::Changed(_) => options.changed,
        Added::Same(_) | Added::Skipped => false,
    };
    Ok(Reply::Integer(outcomes.iter().filter(counted).count() as i64))
}

/// ZADD of one member, as Redis's `zsetAdd` decides.
fn add_one(
    zset: &mut SortedSetValue,
    options: ZaddOptions,
    score: f64,
    member: &[u8],
) -> Result<Added, KvError> {
    let Some(current) = zset.score(member) else {
        if options.only_existing {
            return Ok(Added::Skipped);
        }
        zset.insert(member, score);
        return Ok(Added::New(zset.score(member).unwrap_or(score)));
    };
    if options.only_new {
        return Ok(Added::Skipped);
    }
    let score = if options.increment { current + score } else { score };
    if score.is_nan() {
        return Err(KvError::ScoreNotANumber);
    }
    if (options.only_greater && score <= current) || (options.only_less && score >= current) {
        return Ok(Added::Skipped);
    }
    if score == current {
        return Ok(Added::Same(current));
    }
    zset.insert(member, score);
    Ok(Added::Changed(score))
}

/// ZREMRANGEBY*: removes the members in range; returns how many.
fn remove_range(zset: &mut SortedSetValue, by: &RangeBy) -> usize {
    let doomed: Vec<Arc<[u8]>> = match by {
        RangeBy::Rank(range) => zset.in_ranks(range, false).map(|(member, _)| member.into()).collect(),
        RangeBy::Score(range) => zset.in_scores(range, false).map(|(member, _)| member.into()).collect(),
        RangeBy::Lex(range) => zset.in_lex(range, false).map(|(member, _)| member.into()).collect(),
    };
    doomed.iter().filter(|member| zset.remove(member).is_some()).count()
}

/// The pops: up to `count` members from the first key holding any, replied in `shape`.
fn pop(
    store: &mut KvStore,
    keys: &[Vec<u8>],
    end: PopEnd,
    count: u64,
    shape: PopReply,
) -> Result<Reply, KvError> {
    let limit = usize::try_from(count).unwrap_or(usize::MAX);
    for key in keys {
        let popped = store.change_collection(key, false, |zset: &mut SortedSetValue| {
            let take = limit.min(zset.len());
            (0..take).filter_map(|_| zset.pop(end == PopEnd::Max)).collect::<Vec<_>>()
        })?;
        match popped {
            Some(popped) if !popped.is_empty() => return Ok(pop_reply(shape, key, popped)),
            _ => continue,
        }
    }
    Ok(match shape {
        PopReply::Single | PopReply::Pairs => Reply::Array(Vec::new()),
        PopReply::KeyAndPairs | PopReply::KeyMemberScore => Reply::NilArray,
    })
}

/// The reply to a pop that took `popped` (at least one member) from `key`.
fn pop_reply(shape: PopReply, key: &[u8], popped: Vec<(Arc<[u8]>, f64)>) -> Reply {
    let mut pairs =
        popped.into_iter().map(|(member, score)| (Reply::Bulk(member.to_vec()), Reply::Double(Score(score))));
    let key = Reply::Bulk(key.to_vec());
    match shape {
        PopReply::Single => pairs.next().map_or(Reply::Array(Vec::new()), |(m, s)| Reply::Array(vec![m, s])),
        PopReply::Pairs => Reply::Pairs(pairs.collect()),
        PopReply::KeyAndPairs => {
            Reply::Array(vec![key, Reply::Array(pairs.map(|(m, s)| Reply::Array(vec![m, s])).collect())])
        }
        PopReply::KeyMemberScore => match pairs.next() {
            Some((member, score)) => Reply::Array(vec![key, member, score]),
            None => Reply::NilArray,
        },
    }
}

/// The STORE forms: `destination` becomes the result (or is deleted when it is empty), whatever
/// it held; the reply is the result's size.
fn store_result(
    store: &mut KvStore,
    now: u64,
    destination: &[u8],
    source: &StoreSource,
) -> Result<Reply, KvError> {
    let result = match source {
        StoreSource::Combine(combine) => combine.evaluate_set(store, now)?,
        StoreSource::Range { key, query } => {
            let mut result = SortedSetValue::default();
            if let Some(zset) = store.collection::<SortedSetValue>(key, now)? {
                select(zset, query).for_each(|(member, score)| {
                    result.insert(member, score);
                });
            }
            result
        }
    };
    let size = result.len() as i64;
    store.remove(destination);
    if !result.is_empty() {
        store.insert_value(destination, Data::SortedSet(Arc::new(result)), None);
    }
    Ok(Reply::Integer(size))
}
