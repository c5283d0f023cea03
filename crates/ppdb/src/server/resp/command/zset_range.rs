//! Sorted-set range and multi-set commands: ZRANGE in all its forms, ZRANGESTORE, ZCOUNT,
//! ZLEXCOUNT, ZREMRANGEBY*, ZUNION/ZINTER/ZDIFF and their STORE forms, ZINTERCARD.

use bytes::Bytes;

use super::args::{arg, integer, is, owned};
use super::error::{CommandError, SortedSetError};
use super::zset::{numkeys_and_keys, read, refuse, write, Parsed};
use crate::kv::types::zset::{
    Aggregate, Combine, LexBound, LexRange, RangeBy, RangeQuery, RankRange, ScoreBound, ScoreRange,
    SetOperation, SortedSetRead, SortedSetWrite, StoreSource,
};

/// What a ZRANGE-family command's range is measured in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    Rank,
    Score,
    Lex,
}

/// The fixed parts of one ZRANGE-family command: where its key is, and what its name decides
/// (`None`: the arguments decide, as with ZRANGE).
struct RangeForm {
    key_at: usize,
    measure: Option<Measure>,
    reverse: Option<bool>,
    store: bool,
}

/// Parses the command `name` if it is one of this file's; `None` otherwise.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let form = |measure, reverse| RangeForm { key_at: 0, measure, reverse, store: false };
    Some(match name {
        "zrange" => range(args, form(None, None)),
        "zrangestore" => range(args, RangeForm { key_at: 1, measure: None, reverse: None, store: true }),
        "zrevrange" => range(args, form(Some(Measure::Rank), Some(true))),
        "zrangebyscore" => range(args, form(Some(Measure::Score), Some(false))),
        "zrevrangebyscore" => range(args, form(Some(Measure::Score), Some(true))),
        "zrangebylex" => range(args, form(Some(Measure::Lex), Some(false))),
        "zrevrangebylex" => range(args, form(Some(Measure::Lex), Some(true))),
        "zcount" => score_range(arg(args, 1), arg(args, 2))
            .and_then(|range| read(SortedSetRead::Count { key: owned(args, 0), range })),
        "zlexcount" => lex_range(arg(args, 1), arg(args, 2))
            .and_then(|range| read(SortedSetRead::LexCount { key: owned(args, 0), range })),
        "zremrangebyrank" => remove_range(args, Measure::Rank),
        "zremrangebyscore" => remove_range(args, Measure::Score),
        "zremrangebylex" => remove_range(args, Measure::Lex),
        "zunion" => combine(args, SetOperation::Union, None),
        "zinter" => combine(args, SetOperation::Inter, None),
        "zdiff" => combine(args, SetOperation::Diff, None),
        "zunionstore" => combine(args, SetOperation::Union, Some("zunionstore")),
        "zinterstore" => combine(args, SetOperation::Inter, Some("zinterstore")),
        "zdiffstore" => combine(args, SetOperation::Diff, Some("zdiffstore")),
        "zintercard" => intersection_size(args),
        _ => return None,
    })
}

/// A score range end as Redis's `zslParseRange` reads it: `(` for exclusive, then what C's
/// `strtod` takes whole (leading spaces, `inf`, overflow to infinity; an empty text is 0).
fn score_bound(text: &[u8]) -> Result<ScoreBound, CommandError> {
    let (exclusive, number) = match text.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, text),
    };
    let number =
        std::str::from_utf8(number).map_err(|_| CommandError::SortedSet(SortedSetError::MinMaxNotFloat))?;
    let number = number.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let score = if number.is_empty() { Ok(0.0) } else { number.parse::<f64>() };
    match score {
        Ok(score) if !score.is_nan() => Ok(ScoreBound { score, exclusive }),
        _ => refuse(SortedSetError::MinMaxNotFloat),
    }
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CommandError> {
    Ok(ScoreRange { min: score_bound(min)?, max: score_bound(max)? })
}

/// A lex range end: `-`, `+`, `[member` or `(member`.
fn lex_bound(text: &[u8]) -> Result<LexBound, CommandError> {
    match text.split_first() {
        Some((b'-', [])) => Ok(LexBound::Lowest),
        Some((b'+', [])) => Ok(LexBound::Highest),
        Some((b'[', member)) => Ok(LexBound::Inclusive(member.to_vec())),
        Some((b'(', member)) => Ok(LexBound::Exclusive(member.to_vec())),
        _ => refuse(SortedSetError::InvalidLexItem),
    }
}

fn lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CommandError> {
    Ok(LexRange { min: lex_bound(min)?, max: lex_bound(max)? })
}

/// The range between `min` and `max` in `measure`.
fn range_by(measure: Measure, min: &[u8], max: &[u8]) -> Result<RangeBy, CommandError> {
    Ok(match measure {
        Measure::Rank => RangeBy::Rank(RankRange { start: integer(min)?, stop: integer(max)? }),
        Measure::Score => RangeBy::Score(score_range(min, max)?),
        Measure::Lex => RangeBy::Lex(lex_range(min, max)?),
    })
}

/// ZRANGE and its forms, checked in Redis's order: the options, their conflicts, then the
/// range (whose ends a reversed score or lex range gives highest first).
fn range(args: &[Bytes], form: RangeForm) -> Parsed {
    let (mut measure, mut reverse) = (form.measure, form.reverse);
    let (mut with_scores, mut limit) = (false, None);
    let mut at = form.key_at + 3;
    while let Some(option) = args.get(at) {
        let left = args.len() - at - 1;
        if !form.store && is(option, "withscores") {
            with_scores = true;
        } else if is(option, "limit") && left >= 2 {
            limit = Some((integer(arg(args, at + 1))?, integer(arg(args, at + 2))?));
            at += 2;
        } else if reverse.is_none() && is(option, "rev") {
            reverse = Some(true);
        } else if measure.is_none() && is(option, "bylex") {
            measure = Some(Measure::Lex);
        } else if measure.is_none() && is(option, "byscore") {
            measure = Some(Measure::Score);
        } else {
            return Err(CommandError::Syntax);
        }
        at += 1;
    }
    let (measure, reverse) = (measure.unwrap_or(Measure::Rank), reverse.unwrap_or(false));
    // Redis refuses LIMIT by rank only when its count is not the default -1 (then it is ignored).
    if measure == Measure::Rank {
        if limit.is_some_and(|(_, count)| count != -1) {
            return refuse(SortedSetError::LimitWithoutBy);
        }
        limit = None;
    }
    if with_scores && measure == Measure::Lex {
        return refuse(SortedSetError::WithScoresByLex);
    }
    let (mut min, mut max) = (arg(args, form.key_at + 1), arg(args, form.key_at + 2));
    if reverse && measure != Measure::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let query = RangeQuery { by: range_by(measure, min, max)?, reverse, limit };
    let key = owned(args, form.key_at);
    if form.store {
        let source = StoreSource::Range { key, query };
        write(SortedSetWrite::Store { destination: owned(args, 0), source })
    } else {
        read(SortedSetRead::Range { key, query, with_scores })
    }
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX key min max.
fn remove_range(args: &[Bytes], measure: Measure) -> Parsed {
    let by = range_by(measure, arg(args, 1), arg(args, 2))?;
    write(SortedSetWrite::RemoveRange { key: owned(args, 0), by })
}

/// ZUNION/ZINTER/ZDIFF numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
/// [WITHSCORES], and the STORE forms (`store`: the command's name) with a destination first.
fn combine(args: &[Bytes], operation: SetOperation, store: Option<&'static str>) -> Parsed {
    let command = store.unwrap_or(match operation {
        SetOperation::Union => "zunion",
        SetOperation::Inter => "zinter",
        SetOperation::Diff => "zdiff",
    });
    let numkeys_at = usize::from(store.is_some());
    let fewer = SortedSetError::NoInputKey { command };
    let (keys, mut at) = numkeys_and_keys(args, numkeys_at, fewer, CommandError::NotInteger)?;
    let (mut weights, mut aggregate, mut with_scores) = (Vec::new(), Aggregate::Sum, false);
    while let Some(option) = args.get(at) {
        let left = args.len() - at - 1;
        if operation != SetOperation::Diff && is(option, "weights") && left >= keys.len() {
            weights = args[at + 1..at + 1 + keys.len()]
                .iter()
                .map(|weight| crate::kv::numeric::parse_f64(weight))
                .collect::<Option<_>>()
                .ok_or(CommandError::SortedSet(SortedSetError::WeightNotFloat))?;
            at += keys.len();
        } else if operation != SetOperation::Diff && is(option, "aggregate") && left >= 1 {
            let name = arg(args, at + 1);
            aggregate = match () {
                _ if is(name, "sum") => Aggregate::Sum,
                _ if is(name, "min") => Aggregate::Min,
                _ if is(name, "max") => Aggregate::Max,
                _ => return Err(CommandError::Syntax),
            };
            at += 1;
        } else if store.is_none() && is(option, "withscores") {
            with_scores = true;
        } else {
            return Err(CommandError::Syntax);
        }
        at += 1;
    }
    let combine = Combine { operation, keys, weights, aggregate };
    match store {
        None => read(SortedSetRead::Combine { combine, with_scores }),
        Some(_) => write(SortedSetWrite::Store {
            destination: owned(args, 0),
            source: StoreSource::Combine(combine),
        }),
    }
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit].
fn intersection_size(args: &[Bytes]) -> Parsed {
    let fewer = SortedSetError::NoInputKey { command: "zintercard" };
    let (keys, at) = numkeys_and_keys(args, 0, fewer, CommandError::NotInteger)?;
    let limit = match args.get(at..).unwrap_or_default() {
        [] => 0,
        [option, limit] if is(option, "limit") => integer(limit)
            .ok()
            .and_then(|limit| u64::try_from(limit).ok())
            .ok_or(CommandError::SortedSet(SortedSetError::LimitNegative))?,
        _ => return Err(CommandError::Syntax),
    };
    read(SortedSetRead::InterCard { keys, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Score bounds as C's `strtod` reads them in Redis's `zslParseRange`: an empty text (after
    /// the `(`, or at all) is 0; a trailing space or a second `(` is refused.
    #[test]
    fn score_bounds_read_as_strtod_reads_them() {
        let bound = |text: &str| score_bound(text.as_bytes()).map(|b| (b.score, b.exclusive));
        assert_eq!(bound(""), Ok((0.0, false)));
        assert_eq!(bound("("), Ok((0.0, true)));
        assert_eq!(bound(" 1"), Ok((1.0, false)));
        assert_eq!(bound("(-inf"), Ok((f64::NEG_INFINITY, true)));
        for refused in ["1 ", "((1", "[1", "x", "nan"] {
            assert_eq!(
                bound(refused),
                Err(CommandError::SortedSet(SortedSetError::MinMaxNotFloat)),
                "{refused}"
            );
        }
    }
}
