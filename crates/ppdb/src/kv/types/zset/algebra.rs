//! Union, intersection and difference of several sorted sets (ZUNION, ZINTER, ZDIFF, their STORE
//! forms and ZINTERCARD). Plain sets take part too, every member with score 1.
//!
//! As Redis does, the inputs are taken from the smallest to the largest (a stable order, so sums
//! of three or more scores round alike on every replica), a weighted score that is NaN
//! (`0 * inf`) counts as 0, and so does a sum that is NaN (`inf + -inf`).

use std::collections::BTreeMap;

use crate::kv::codec::{put_varint, KvDecodeError, Reader};
use crate::kv::command::BATCH_KEYS_MAX;
use crate::kv::entry::keys;
use crate::kv::reply::KvError;
use crate::kv::state_machine::KvStore;
use crate::kv::types::{Data, SetValue};

use super::range::{put_score, score};
use super::{Score, SortedSetValue};

/// Which combination of the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperation {
    /// Members of any input.
    Union,
    /// Members of every input.
    Inter,
    /// Members of the first input and of no other.
    Diff,
}

/// How the scores of a member found in several inputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Their sum (the default).
    Sum,
    /// The lowest.
    Min,
    /// The highest.
    Max,
}

/// A combination of sorted sets (or sets) as ZUNION, ZINTER and ZDIFF take it.
#[derive(Debug, Clone, PartialEq)]
pub struct Combine {
    /// Which combination.
    pub operation: SetOperation,
    /// The input keys (at least one).
    pub keys: Vec<Vec<u8>>,
    /// WEIGHTS, one per key; empty means every weight is 1.
    pub weights: Vec<f64>,
    /// AGGREGATE.
    pub aggregate: Aggregate,
}

/// One input: a sorted set, a set (scores 1) or a missing key (empty).
#[derive(Clone, Copy)]
enum Input<'a> {
    Sorted(&'a SortedSetValue),
    Plain(&'a SetValue),
    Missing,
}

impl<'a> Input<'a> {
    /// The input at `key`: `WRONGTYPE` unless it holds a sorted set or a set.
    fn of(store: &'a KvStore, key: &[u8], now: u64) -> Result<Self, KvError> {
        match store.get_live(key, now).map(|value| &value.data) {
            None => Ok(Input::Missing),
            Some(Data::SortedSet(zset)) => Ok(Input::Sorted(zset)),
            Some(Data::Set(set)) => Ok(Input::Plain(set)),
            Some(_) => Err(KvError::WrongType),
        }
    }

    fn len(self) -> usize {
        match self {
            Input::Sorted(zset) => zset.len(),
            Input::Plain(set) => set.len(),
            Input::Missing => 0,
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Input::Sorted(zset) => zset.score(member),
            Input::Plain(set) => set.contains(member).then_some(1.0),
            Input::Missing => None,
        }
    }

    fn members(self) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
        match self {
            Input::Sorted(zset) => Box::new(zset.iter()),
            Input::Plain(set) => Box::new(set.iter().map(|member| (member, 1.0))),
            Input::Missing => Box::new(std::iter::empty()),
        }
    }
}

/// `score * weight`, NaN counted as 0.
fn weighted(score: f64, weight: f64) -> f64 {
    let value = score * weight;
    if value.is_nan() {
        0.0
    } else {
        value
    }
}

impl Aggregate {
    fn combine(self, acc: f64, value: f64) -> f64 {
        match self {
            Aggregate::Sum if (acc + value).is_nan() => 0.0,
            Aggregate::Sum => acc + value,
            Aggregate::Min => acc.min(value),
            Aggregate::Max => acc.max(value),
        }
    }
}

impl Combine {
    /// The inputs with their weights, smallest first; `WRONGTYPE` if any key holds another type.
    fn inputs<'a>(&self, store: &'a KvStore, now: u64) -> Result<Vec<(Input<'a>, f64)>, KvError> {
        let mut inputs = Vec::with_capacity(self.keys.len());
        for (index, key) in self.keys.iter().enumerate() {
            inputs.push((Input::of(store, key, now)?, self.weights.get(index).copied().unwrap_or(1.0)));
        }
        Ok(inputs)
    }

    /// The result's members and scores, ordered by score then member (the reply's order).
    pub fn evaluate(&self, store: &KvStore, now: u64) -> Result<Vec<(Vec<u8>, f64)>, KvError> {
        let mut inputs = self.inputs(store, now)?;
        let mut result: Vec<(Vec<u8>, f64)> = match self.operation {
            SetOperation::Diff => {
                let Some(((first, _), others)) = inputs.split_first() else { return Ok(Vec::new()) };
                first
                    .members()
                    .filter(|(member, _)| others.iter().all(|(other, _)| other.score(member).is_none()))
                    .map(|(member, score)| (member.to_vec(), score))
                    .collect()
            }
            SetOperation::Union => {
                inputs.sort_by_key(|(input, _)| input.len());
                let mut scores: BTreeMap<&[u8], f64> = BTreeMap::new();
                for (input, weight) in &inputs {
                    for (member, score) in input.members() {
                        let value = weighted(score, *weight);
                        scores
                            .entry(member)
                            .and_modify(|acc| *acc = self.aggregate.combine(*acc, value))
                            .or_insert(value);
                    }
                }
                scores.into_iter().map(|(member, score)| (member.to_vec(), score)).collect()
            }
            SetOperation::Inter => {
                inputs.sort_by_key(|(input, _)| input.len());
                let Some(((smallest, weight), others)) = inputs.split_first() else { return Ok(Vec::new()) };
                smallest
                    .members()
                    .filter_map(|(member, score)| {
                        let mut acc = weighted(score, *weight);
                        for (other, weight) in others {
                            acc = self.aggregate.combine(acc, weighted(other.score(member)?, *weight));
                        }
                        Some((member.to_vec(), acc))
                    })
                    .collect()
            }
        };
        result.sort_by(|(a, x), (b, y)| (Score(*x), a).cmp(&(Score(*y), b)));
        Ok(result)
    }

    /// The result as a sorted set (for the STORE forms).
    pub fn evaluate_set(&self, store: &KvStore, now: u64) -> Result<SortedSetValue, KvError> {
        let mut zset = SortedSetValue::default();
        for (member, score) in self.evaluate(store, now)? {
            zset.insert(&member, score);
        }
        Ok(zset)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.operation {
            SetOperation::Union => 0,
            SetOperation::Inter => 1,
            SetOperation::Diff => 2,
        });
        put_varint(out, self.keys.len() as u64);
        self.keys.iter().for_each(|key| crate::kv::codec::put_bytes(out, key));
        put_varint(out, self.weights.len() as u64);
        self.weights.iter().for_each(|weight| put_score(out, *weight));
        out.push(match self.aggregate {
            Aggregate::Sum => 0,
            Aggregate::Min => 1,
            Aggregate::Max => 2,
        });
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        let operation = match reader.u8("set operation")? {
            0 => SetOperation::Union,
            1 => SetOperation::Inter,
            2 => SetOperation::Diff,
            tag => return Err(KvDecodeError::InvalidTag { field: "set operation", tag, offset }),
        };
        let keys = keys(reader)?;
        let count = reader.count("weight count", BATCH_KEYS_MAX)?;
        let mut weights = Vec::with_capacity((count as usize).min(reader.remaining() / 8));
        for _ in 0..count {
            weights.push(score(reader, "weight")?);
        }
        let offset = reader.offset();
        let aggregate = match reader.u8("aggregate")? {
            0 => Aggregate::Sum,
            1 => Aggregate::Min,
            2 => Aggregate::Max,
            tag => return Err(KvDecodeError::InvalidTag { field: "aggregate", tag, offset }),
        };
        Ok(Combine { operation, keys, weights, aggregate })
    }
}

/// ZINTERCARD: how many members every input holds, counting up to `limit` (0: no limit).
pub(super) fn intersection_size(
    store: &KvStore,
    now: u64,
    keys: &[Vec<u8>],
    limit: u64,
) -> Result<u64, KvError> {
    let mut inputs = Vec::with_capacity(keys.len());
    for key in keys {
        inputs.push(Input::of(store, key, now)?);
    }
    inputs.sort_by_key(|input| input.len());
    let Some((smallest, others)) = inputs.split_first() else { return Ok(0) };
    let limit = if limit == 0 { u64::MAX } else { limit };
    let common =
        smallest.members().filter(|(member, _)| others.iter().all(|other| other.score(member).is_some()));
    Ok(common.take(usize::try_from(limit).unwrap_or(usize::MAX)).count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::Collection;

    fn combine(operation: SetOperation, weights: Vec<f64>, aggregate: Aggregate) -> Combine {
        Combine { operation, keys: vec![b"z".to_vec(), b"s".to_vec()], weights, aggregate }
    }

    #[test]
    fn plain_sets_take_part_with_score_one_and_nan_counts_as_zero() {
        let mut store = KvStore::new();
        let mut zset = SortedSetValue::default();
        zset.insert(b"a", 1.0);
        zset.insert(b"b", f64::INFINITY);
        let mut set = SetValue::default();
        set.insert(b"a");
        set.insert(b"b");
        set.insert(b"x");
        store.insert_value(b"z", zset.into_data(), None);
        store.insert_value(b"s", set.into_data(), None);
        let union = combine(SetOperation::Union, Vec::new(), Aggregate::Sum).evaluate(&store, 1);
        let expected = vec![(b"x".to_vec(), 1.0), (b"a".to_vec(), 2.0), (b"b".to_vec(), f64::INFINITY)];
        assert_eq!(union, Ok(expected));
        // inf * 0 is NaN, counted as 0; inf + -inf likewise.
        let inter = combine(SetOperation::Inter, vec![0.0, 1.0], Aggregate::Max).evaluate(&store, 1);
        assert_eq!(inter, Ok(vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), 1.0)]));
        let sum =
            combine(SetOperation::Inter, vec![1.0, f64::NEG_INFINITY], Aggregate::Sum).evaluate(&store, 1);
        assert_eq!(sum, Ok(vec![(b"a".to_vec(), f64::NEG_INFINITY), (b"b".to_vec(), 0.0)]));
        let diff = Combine {
            keys: vec![b"s".to_vec(), b"z".to_vec()],
            ..combine(SetOperation::Diff, Vec::new(), Aggregate::Sum)
        };
        assert_eq!(diff.evaluate(&store, 1), Ok(vec![(b"x".to_vec(), 1.0)]));
        assert_eq!(intersection_size(&store, 1, &[b"z".to_vec(), b"s".to_vec()], 1), Ok(1));
        store.insert(b"str", &b"v"[..], None);
        let wrong = Combine {
            keys: vec![b"z".to_vec(), b"str".to_vec()],
            ..combine(SetOperation::Union, Vec::new(), Aggregate::Sum)
        };
        assert_eq!(wrong.evaluate(&store, 1), Err(KvError::WrongType));
    }
}
