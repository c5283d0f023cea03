//! List pops: LPOP, RPOP, LMPOP, LMOVE, RPOPLPUSH, and the blocking BLPOP, BRPOP, BLMPOP,
//! BLMOVE, BRPOPLPUSH.
//!
//! A blocking pop parses to a [`BlockingPop`]: its non-blocking form (the write tried through
//! the log each time, `server::blocking`), the keys it waits on, and its timeout. Inside MULTI
//! it is its non-blocking form, as in Redis. Checks and error texts follow redis-server 7.0.15.

use std::time::Duration;

use bytes::Bytes;

use super::args::{arg, integer, is, owned};
use super::error::CommandError;
use super::write::WriteCommand;
use super::Command;
use crate::kv::types::{End, ListPop, ListWrite};
use crate::kv::{CollectionWrite, WriteOp};

type Parsed = Result<Command, CommandError>;

/// Most characters a timeout may have (Redis reads it as a `long double` from at most 5 KiB;
/// no float needs more than this to be written out).
const TIMEOUT_CHARS_MAX: usize = 512;

/// A pop that waits for something to pop.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockingPop {
    /// The non-blocking form, tried through the log: it answers `Nil` or `NilArray` when
    /// there is nothing to pop.
    pub op: WriteOp,
    /// The keys whose creation may give it something to pop (BLMOVE: the source only).
    pub keys: Vec<Vec<u8>>,
    /// How long to wait; none for ever (a timeout of 0).
    pub timeout: Option<Duration>,
}

impl BlockingPop {
    /// The command as it runs where it cannot block (inside MULTI): its non-blocking form.
    pub fn into_non_blocking(self) -> Command {
        Command::Write(WriteCommand::Ready(self.op))
    }
}

/// Parses the pop `name` (lower case) with its arguments; `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    Some(match name {
        "lpop" => pop(name, args, End::Head),
        "rpop" => pop(name, args, End::Tail),
        "blpop" => first_blocking(args, End::Head),
        "brpop" => first_blocking(args, End::Tail),
        "lmpop" => lmpop(args.get(1..).unwrap_or_default(), arg(args, 0)).and_then(|(_, pop)| write(pop)),
        "blmpop" => blmpop(args),
        "lmove" => ends(arg(args, 2), arg(args, 3)).and_then(|(from, to)| write(lmove(args, from, to))),
        "blmove" => ends(arg(args, 2), arg(args, 3))
            .and_then(|(from, to)| blocking(lmove(args, from, to), vec![owned(args, 0)], arg(args, 4))),
        "rpoplpush" => write(lmove(args, End::Tail, End::Head)),
        "brpoplpush" => blocking(lmove(args, End::Tail, End::Head), vec![owned(args, 0)], arg(args, 2)),
        _ => return None,
    })
}

/// A list pop as a write.
fn list_pop(pop: ListPop) -> WriteOp {
    WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(pop)))
}

/// A pop that runs once.
fn write(pop: ListPop) -> Parsed {
    Ok(Command::Write(WriteCommand::Ready(list_pop(pop))))
}

/// A pop that waits on `keys` for up to `timeout` (as sent).
fn blocking(pop: ListPop, keys: Vec<Vec<u8>>, timeout_arg: &[u8]) -> Parsed {
    let timeout = timeout(timeout_arg)?;
    Ok(Command::Block(BlockingPop { op: list_pop(pop), keys, timeout }))
}

/// LPOP/RPOP key \[count\].
fn pop(name: &str, args: &[Bytes], end: End) -> Parsed {
    let count = match args.len() {
        1 => None,
        2 => Some(positive(arg(args, 1))?),
        _ => return Err(CommandError::WrongArity { command: if name == "lpop" { "lpop" } else { "rpop" } }),
    };
    write(ListPop::Pop { key: owned(args, 0), end, count })
}

/// BLPOP/BRPOP key \[key ...\] timeout.
fn first_blocking(args: &[Bytes], end: End) -> Parsed {
    let (timeout_arg, keys) = args.split_last().map_or((&[][..], &[][..]), |(last, keys)| (&last[..], keys));
    let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
    blocking(ListPop::First { keys: keys.clone(), end, count: None }, keys, timeout_arg)
}

/// LMPOP numkeys key \[key ...\] LEFT|RIGHT \[COUNT count\] (`rest` after numkeys): the keys
/// and the pop (also BLMPOP's, before its timeout is read).
fn lmpop(rest: &[Bytes], numkeys: &[u8]) -> Result<(Vec<Vec<u8>>, ListPop), CommandError> {
    let numkeys = integer(numkeys).ok().filter(|&n| n > 0).ok_or(CommandError::NumKeysNotPositive)?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys >= rest.len() {
        return Err(CommandError::Syntax);
    }
    let (keys, options) = rest.split_at(numkeys);
    let end = end(&options[0]).ok_or(CommandError::Syntax)?;
    // As Redis reads them: one COUNT with a value, its value checked before what follows it.
    let (mut count, mut rest) = (None, &options[1..]);
    while let [option, after @ ..] = rest {
        match after {
            [value, after @ ..] if count.is_none() && is(option, "count") => {
                count =
                    Some(integer(value).ok().filter(|&n| n > 0).ok_or(CommandError::CountBelowOne)? as u64);
                rest = after;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    let count = count.unwrap_or(1);
    let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
    let pop = ListPop::First { keys: keys.clone(), end, count: Some(count) };
    Ok((keys, pop))
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: the timeout is read after
/// the other arguments, as Redis reads it.
fn blmpop(args: &[Bytes]) -> Parsed {
    let (keys, pop) = lmpop(args.get(2..).unwrap_or_default(), arg(args, 1))?;
    let timeout = timeout(arg(args, 0))?;
    Ok(Command::Block(BlockingPop { op: list_pop(pop), keys, timeout }))
}

/// LMOVE source destination (and the blocking forms' first two arguments).
fn lmove(args: &[Bytes], from: End, to: End) -> ListPop {
    ListPop::Move { source: owned(args, 0), destination: owned(args, 1), from, to }
}

/// LEFT or RIGHT.
fn end(arg: &[u8]) -> Option<End> {
    if is(arg, "left") {
        Some(End::Head)
    } else if is(arg, "right") {
        Some(End::Tail)
    } else {
        None
    }
}

/// LMOVE's wherefrom and whereto.
fn ends(from: &[u8], to: &[u8]) -> Result<(End, End), CommandError> {
    end(from).zip(end(to)).ok_or(CommandError::Syntax)
}

/// LPOP's count: an integer from 0 up.
fn positive(arg: &[u8]) -> Result<u64, CommandError> {
    integer(arg).ok().and_then(|n| u64::try_from(n).ok()).ok_or(CommandError::CountNotPositive)
}

/// A blocking command's timeout in seconds, as Redis 7.0 reads it: a float (`inf` included,
/// NaN not), times 1000 rounded up to whole milliseconds, a value past the 64-bit range
/// counting as negative (Redis's conversion makes it so); 0 is none (wait for ever).
pub(super) fn timeout(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let seconds = std::str::from_utf8(arg)
        .ok()
        .filter(|text| text.len() <= TIMEOUT_CHARS_MAX)
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|seconds| !seconds.is_nan())
        .ok_or(CommandError::TimeoutNotFloat)?;
    let ms = (seconds * 1000.0).ceil();
    if !(0.0..9.223_372_036_854_775e18).contains(&ms) {
        return Err(CommandError::TimeoutNegative);
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Parsed {
        let args: Vec<Bytes> = line.split(' ').map(|word| Bytes::from(word.to_owned())).collect();
        Command::parse(&args)
    }

    fn error(line: &str) -> String {
        parse_line(line).expect_err(line).to_string()
    }

    #[test]
    fn timeouts_read_as_redis_reads_them() {
        assert_eq!(timeout(b"0"), Ok(None));
        assert_eq!(timeout(b"-0.0001"), Ok(None), "rounds up to 0: for ever");
        assert_eq!(timeout(b"0.0001"), Ok(Some(Duration::from_millis(1))));
        assert_eq!(timeout(b"1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(timeout(b".01"), Ok(Some(Duration::from_millis(10))));
        for negative in [&b"-1"[..], b"-0.002", b"inf", b"-inf", b"1e400", b"1e16"] {
            assert_eq!(timeout(negative), Err(CommandError::TimeoutNegative), "{negative:?}");
        }
        for bad in [&b"abc"[..], b"nan", b"", b" 1", b"1 ", b"1s"] {
            assert_eq!(timeout(bad), Err(CommandError::TimeoutNotFloat), "{bad:?}");
        }
    }

    #[test]
    fn blocking_pops_wait_on_their_keys_and_run_once_inside_multi() {
        let Ok(Command::Block(blpop)) = parse_line("BLPOP a b 2") else { panic!("not a blocking pop") };
        assert_eq!(blpop.keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(blpop.timeout, Some(Duration::from_secs(2)));
        let non_blocking = list_pop(ListPop::First { keys: blpop.keys.clone(), end: End::Head, count: None });
        assert_eq!(blpop.into_non_blocking(), Command::Write(WriteCommand::Ready(non_blocking)));
        let Ok(Command::Block(blmove)) = parse_line("BLMOVE src dst RIGHT LEFT 0") else { panic!() };
        assert_eq!(blmove.keys, vec![b"src".to_vec()], "BLMOVE waits on its source only");
        assert_eq!(blmove.timeout, None);
        assert_eq!(blmove.op.keys(), vec![&b"src"[..], b"dst"]);
        let Ok(Command::Block(blmpop)) = parse_line("BLMPOP 0.5 2 a b RIGHT COUNT 3") else { panic!() };
        let lmpop =
            ListPop::First { keys: vec![b"a".to_vec(), b"b".to_vec()], end: End::Tail, count: Some(3) };
        assert_eq!(blmpop.op, list_pop(lmpop));
    }

    #[test]
    fn malformed_pops_are_refused_with_redis_errors() {
        assert_eq!(error("LPOP k -1"), "ERR value is out of range, must be positive");
        assert_eq!(error("LPOP k x"), "ERR value is out of range, must be positive");
        assert_eq!(error("RPOP k 1 2"), "ERR wrong number of arguments for 'rpop' command");
        assert_eq!(error("LMPOP 0 a LEFT"), "ERR numkeys should be greater than 0");
        assert_eq!(error("LMPOP x a LEFT"), "ERR numkeys should be greater than 0");
        assert_eq!(error("LMPOP 2 a LEFT"), "ERR syntax error");
        assert_eq!(error("LMPOP 1 a MIDDLE"), "ERR syntax error");
        assert_eq!(error("LMPOP 1 a LEFT COUNT"), "ERR syntax error");
        assert_eq!(error("LMPOP 1 a LEFT COUNT 0"), "ERR count should be greater than 0");
        assert_eq!(error("LMPOP 1 a LEFT COUNT 1 COUNT 2"), "ERR syntax error");
        assert_eq!(error("LMOVE a b UP LEFT"), "ERR syntax error");
        assert_eq!(error("BLPOP a -1"), "ERR timeout is negative");
        assert_eq!(error("BLMPOP x 1 a LEFT"), "ERR timeout is not a float or out of range");
        // Redis reads BLMPOP's timeout last, and COUNT's value before what follows it.
        assert_eq!(error("BLMPOP -1 1 a MIDDLE"), "ERR syntax error");
        assert_eq!(error("LMPOP 1 a LEFT COUNT x 0"), "ERR count should be greater than 0");
        assert_eq!(error("LMPOP 1 a LEFT COUNT 1 COUNT 1"), "ERR syntax error");
        assert_eq!(error("BRPOPLPUSH a b nan"), "ERR timeout is not a float or out of range");
    }
}
