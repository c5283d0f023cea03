//! Sorted-set commands: ZADD, ZSCORE, the pops, ZRANDMEMBER, ZSCAN, and the argument helpers
//! the range and multi-set commands (parsed in `zset_range`) share.

use bytes::Bytes;

use super::args::{arg, float, integer, is, owned, owned_from};
use super::element_scan::element_scan;
use super::error::{CommandError, SortedSetError};
use super::write::WriteCommand;
use super::{BlockingPop, Command};
use crate::kv::types::zset::{PopEnd, PopReply, SortedSetRead, SortedSetWrite, ZaddOptions};
use crate::kv::{CollectionRead, CollectionWrite, KvRead, WriteOp};

pub(super) type Parsed = Result<Command, CommandError>;

/// The most members one ZRANDMEMBER with a negative count draws: its reply is held whole.
pub const RANDOM_MEMBERS_MAX: u64 = 16 * 1024 * 1024;
/// Parses the sorted-set command `name` (lower case) with its arguments; `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let key = || owned(args, 0);
    Some(match name {
        "zadd" => zadd(args),
        "zincrby" => {
            let options = ZaddOptions { increment: true, ..ZaddOptions::default() };
            float(arg(args, 1)).and_then(|score| {
                write(SortedSetWrite::Add { key: key(), options, members: vec![(score, owned(args, 2))] })
            })
        }
        "zrem" => write(SortedSetWrite::Remove { key: key(), members: owned_from(args, 1) }),
        "zscore" => read(SortedSetRead::Score { key: key(), member: owned(args, 1) }),
        "zmscore" => read(SortedSetRead::MultiScore { key: key(), members: owned_from(args, 1) }),
        "zrank" | "zrevrank" => {
            read(SortedSetRead::Rank { key: key(), member: owned(args, 1), reverse: name == "zrevrank" })
        }
        "zcard" => read(SortedSetRead::Card { key: key() }),
        "zpopmin" | "zpopmax" => pop(name, args),
        "zmpop" => multi_pop(args).and_then(write),
        "bzpopmin" | "bzpopmax" => blocking_pop(name, args),
        "bzmpop" => blocking_multi_pop(args),
        "zrandmember" => random_members(args),
        "zscan" => scan(args),
        _ => return None,
    })
}

/// A ready sorted-set write.
pub(super) fn write(op: SortedSetWrite) -> Parsed {
    Ok(Command::Write(WriteCommand::Ready(WriteOp::Collection(CollectionWrite::SortedSet(op)))))
}

/// A sorted-set read.
pub(super) fn read(query: SortedSetRead) -> Parsed {
    Ok(Command::Read(KvRead::Collection(CollectionRead::SortedSet(query))))
}

/// A sorted-set argument error.
pub(super) fn refuse<T>(error: SortedSetError) -> Result<T, CommandError> {
    Err(CommandError::SortedSet(error))
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...], checked in Redis's
/// order: options, pairs, conflicts, then the scores.
fn zadd(args: &[Bytes]) -> Parsed {
    let mut options = ZaddOptions::default();
    let mut first_score = 1;
    while let Some(option) = args.get(first_score) {
        let flag = match () {
            _ if is(option, "nx") => &mut options.only_new,
            _ if is(option, "xx") => &mut options.only_existing,
            _ if is(option, "gt") => &mut options.only_greater,
            _ if is(option, "lt") => &mut options.only_less,
            _ if is(option, "ch") => &mut options.changed,
            _ if is(option, "incr") => &mut options.increment,
            _ => break,
        };
        *flag = true;
        first_score += 1;
    }
    let pairs = args.get(first_score..).unwrap_or_default();
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Err(CommandError::Syntax);
    }
    if options.only_new && options.only_existing {
        return refuse(SortedSetError::NxWithXx);
    }
    let exclusive = [options.only_new, options.only_greater, options.only_less];
    if exclusive.iter().filter(|&&set| set).count() > 1 {
        return refuse(SortedSetError::GtLtNx);
    }
    if options.increment && pairs.len() > 2 {
        return refuse(SortedSetError::IncrementPairs);
    }
    let members = pairs
        .chunks_exact(2)
        .map(|pair| Ok((float(&pair[0])?, pair[1].to_vec())))
        .collect::<Result<_, CommandError>>()?;
    write(SortedSetWrite::Add { key: owned(args, 0), options, members })
}

/// ZPOPMIN/ZPOPMAX key [count]: a count below 0 (or not an integer) is out of range.
fn pop(name: &str, args: &[Bytes]) -> Parsed {
    let end = if name == "zpopmax" { PopEnd::Max } else { PopEnd::Min };
    let (count, reply) = match args.len() {
        1 => (1, PopReply::Single),
        2 => {
            let count = integer(arg(args, 1)).ok().and_then(|count| u64::try_from(count).ok());
            (count.ok_or(CommandError::SortedSet(SortedSetError::CountNegative))?, PopReply::Pairs)
        }
        _ => return Err(CommandError::Syntax),
    };
    write(SortedSetWrite::Pop { keys: vec![owned(args, 0)], end, count, reply })
}

/// A numkeys argument and the keys after it; `fewer` is the error for a numkeys below 1.
pub(super) fn numkeys_and_keys(
    args: &[Bytes],
    at: usize,
    fewer: SortedSetError,
    not_integer: CommandError,
) -> Result<(Vec<Vec<u8>>, usize), CommandError> {
    let numkeys = integer(arg(args, at)).map_err(|_| not_integer)?;
    let numkeys = usize::try_from(numkeys).ok().filter(|&n| n >= 1).ok_or(CommandError::SortedSet(fewer))?;
    let first = at + 1;
    if numkeys > args.len().saturating_sub(first) {
        return Err(CommandError::Syntax);
    }
    Ok((owned_from(&args[first..first + numkeys], 0), first + numkeys))
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count].
fn multi_pop(args: &[Bytes]) -> Result<SortedSetWrite, CommandError> {
    let not_positive = CommandError::SortedSet(SortedSetError::NumkeysNotPositive);
    let (keys, next) = numkeys_and_keys(args, 0, SortedSetError::NumkeysNotPositive, not_positive)?;
    let end = match args.get(next) {
        Some(end) if is(end, "min") => PopEnd::Min,
        Some(end) if is(end, "max") => PopEnd::Max,
        _ => return Err(CommandError::Syntax),
    };
    // As Redis reads them: one COUNT with a value, its value checked before what follows it.
    let (mut count, mut options) = (None, args.get(next + 1..).unwrap_or_default());
    while let [option, rest @ ..] = options {
        match rest {
            [value, rest @ ..] if count.is_none() && is(option, "count") => {
                let value =
                    integer(value).ok().and_then(|count| u64::try_from(count).ok()).filter(|&n| n >= 1);
                count = Some(value.ok_or(CommandError::SortedSet(SortedSetError::CountNotPositive))?);
                options = rest;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(SortedSetWrite::Pop { keys, end, count: count.unwrap_or(1), reply: PopReply::KeyAndPairs })
}

/// A pop that waits while every key is empty (`server::blocking`).
fn blocking(op: SortedSetWrite, keys: Vec<Vec<u8>>, timeout: &[u8]) -> Parsed {
    let timeout = super::pop::timeout(timeout)?;
    let op = WriteOp::Collection(CollectionWrite::SortedSet(op));
    Ok(Command::Block(BlockingPop { op, keys, timeout }))
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout: `[key, member, score]` from the first non-empty key.
fn blocking_pop(name: &str, args: &[Bytes]) -> Parsed {
    let end = if name == "bzpopmax" { PopEnd::Max } else { PopEnd::Min };
    let (timeout, keys) = args.split_last().map_or((&[][..], &[][..]), |(last, keys)| (last.as_ref(), keys));
    let keys = owned_from(keys, 0);
    super::pop::timeout(timeout)?;
    let op = SortedSetWrite::Pop { keys: keys.clone(), end, count: 1, reply: PopReply::KeyMemberScore };
    blocking(op, keys, timeout)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
fn blocking_multi_pop(args: &[Bytes]) -> Parsed {
    // Redis reads the timeout after the other arguments.
    let op = multi_pop(args.get(1..).unwrap_or_default())?;
    let timeout = arg(args, 0);
    super::pop::timeout(timeout)?;
    let SortedSetWrite::Pop { keys, .. } = &op else {
        return Err(CommandError::Syntax);
    };
    let keys = keys.clone();
    blocking(op, keys, timeout)
}

/// ZRANDMEMBER key [count [WITHSCORES]]. A negative count draws with repetition, so its size
/// is bounded ([`RANDOM_MEMBERS_MAX`], and Redis's own bound with WITHSCORES).
fn random_members(args: &[Bytes]) -> Parsed {
    let seed = random_seed();
    let (count, with_scores) = match args.len() {
        1 => (None, false),
        2 | 3 => {
            let count = integer(arg(args, 1))?;
            if count == i64::MIN {
                return refuse(SortedSetError::CountBeyondLong);
            }
            let with_scores = args.len() == 3;
            if with_scores && !is(arg(args, 2), "withscores") {
                return Err(CommandError::Syntax);
            }
            let bound = if with_scores { (i64::MAX / 2) as u64 } else { i64::MAX as u64 };
            if count.unsigned_abs() > bound || (count < 0 && count.unsigned_abs() > RANDOM_MEMBERS_MAX) {
                return refuse(SortedSetError::CountOutOfRange);
            }
            (Some(count), with_scores)
        }
        _ => return Err(CommandError::Syntax),
    };
    read(SortedSetRead::RandomMembers { key: owned(args, 0), count, with_scores, seed })
}

/// A fresh seed for a random choice, from a per-thread generator seeded by the OS once.
fn random_seed() -> u64 {
    use rand::{Rng, SeedableRng};
    thread_local! {
        static SEEDS: std::cell::RefCell<rand::rngs::SmallRng> =
            std::cell::RefCell::new(rand::rngs::SmallRng::from_entropy());
    }
    SEEDS.with(|seeds| seeds.borrow_mut().gen())
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count] (see [`element_scan`]).
fn scan(args: &[Bytes]) -> Parsed {
    read(element_scan(args)?.map_or_else(SortedSetRead::ScanRefused, SortedSetRead::Scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ZMPOP's COUNT value is checked before what follows it, and BZMPOP's timeout last, as
    /// Redis reads them.
    #[test]
    fn zmpop_reads_count_then_bzmpop_its_timeout_last() {
        let error = |line: &str| {
            let mut words = line.split(' ');
            let name = words.next().unwrap_or_default();
            let args: Vec<Bytes> = words.map(|a| Bytes::from(a.to_owned())).collect();
            parse(name, &args).and_then(Result::err).map(|e| e.to_string())
        };
        assert_eq!(error("zmpop 1 z MIN COUNT x 0").as_deref(), Some("ERR count should be greater than 0"));
        assert_eq!(error("zmpop 1 z MIN COUNT 1 COUNT 1").as_deref(), Some("ERR syntax error"));
        assert_eq!(error("bzmpop -1 1 z MIDDLE").as_deref(), Some("ERR syntax error"));
        assert_eq!(error("bzmpop -1 1 z MIN").as_deref(), Some("ERR timeout is negative"));
    }
}
