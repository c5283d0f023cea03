//! String commands: GET, SET and friends, counters, ranges.

use bytes::Bytes;

use super::args::{arg, float, integer, is, owned, owned_from};
use super::error::CommandError;
use super::write::{ExpireBase, Expiry, GetExOption, SetCommand, TimeUnit, WriteCommand};
use super::Command;
use crate::kv::{KvRead, SetCondition, WriteOp};

type Parsed = Result<Command, CommandError>;

/// Parses the string command `name` (lower case) with its arguments; `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let key = || owned(args, 0);
    let ready = |op| Ok(Command::Write(WriteCommand::Ready(op)));
    Some(match name {
        "get" => Ok(Command::Read(KvRead::Get { key: key() })),
        "mget" => Ok(Command::Read(KvRead::MGet { keys: owned_from(args, 0) })),
        "strlen" => Ok(Command::Read(KvRead::StrLen { key: key() })),
        "getrange" | "substr" => get_range(args),
        "set" => set(args),
        "setnx" => ready(WriteOp::SetNx { key: key(), value: owned(args, 1) }),
        "setex" | "psetex" => set_ex(name, args),
        "getset" => Ok(Command::Write(WriteCommand::Set(SetCommand {
            key: key(),
            value: owned(args, 1),
            condition: SetCondition::Always,
            expiry: None,
            keep_ttl: false,
            get: true,
            command: "getset",
        }))),
        "getdel" => ready(WriteOp::GetDel { key: key() }),
        "getex" => get_ex(args),
        "mset" | "msetnx" => mset(name, args),
        "incr" => ready(WriteOp::IncrBy { key: key(), delta: 1 }),
        "decr" => ready(WriteOp::IncrBy { key: key(), delta: -1 }),
        "incrby" => integer(arg(args, 1)).and_then(|delta| ready(WriteOp::IncrBy { key: key(), delta })),
        "decrby" => match integer(arg(args, 1)) {
            // Negating the smallest integer overflows; Redis refuses it up front.
            Ok(i64::MIN) => Err(CommandError::DecrementOverflow),
            Ok(n) => ready(WriteOp::IncrBy { key: key(), delta: -n }),
            Err(error) => Err(error),
        },
        "incrbyfloat" => {
            float(arg(args, 1)).and_then(|delta| ready(WriteOp::IncrByFloat { key: key(), delta }))
        }
        "append" => ready(WriteOp::Append { key: key(), value: owned(args, 1) }),
        "setrange" => set_range(args),
        _ => return None,
    })
}

fn get_range(args: &[Bytes]) -> Parsed {
    let start = integer(arg(args, 1))?;
    let end = integer(arg(args, 2))?;
    Ok(Command::Read(KvRead::GetRange { key: owned(args, 0), start, end }))
}

/// SETRANGE. A patch that would take the string past [`crate::kv::VALUE_BYTES_MAX`] is refused when
/// applied, after the key's type is checked, as Redis checks them (WRONGTYPE first).
fn set_range(args: &[Bytes]) -> Parsed {
    let offset = integer(arg(args, 1))?;
    let offset = u64::try_from(offset).map_err(|_| CommandError::OffsetOutOfRange)?;
    Ok(Command::Write(WriteCommand::Ready(WriteOp::SetRange {
        key: owned(args, 0),
        offset,
        value: owned(args, 2),
    })))
}

fn set_ex(name: &str, args: &[Bytes]) -> Parsed {
    let (unit, command) =
        if name == "setex" { (TimeUnit::Seconds, "setex") } else { (TimeUnit::Milliseconds, "psetex") };
    let amount = integer(arg(args, 1))?;
    if amount <= 0 {
        return Err(CommandError::InvalidExpireTime { command });
    }
    Ok(Command::Write(WriteCommand::Set(SetCommand {
        key: owned(args, 0),
        value: owned(args, 2),
        condition: SetCondition::Always,
        expiry: Some(Expiry { amount, unit, base: ExpireBase::Now }),
        keep_ttl: false,
        get: false,
        command,
    })))
}

/// The expiry options shared by SET and GETEX, as flags in Redis's
/// `parseExtendedStringArgumentsOrReply`.
#[derive(Default)]
struct ExtendedOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expiry: Option<(TimeUnit, ExpireBase, usize)>,
}

/// Which command the options belong to: SET accepts NX XX GET KEEPTTL, GETEX accepts PERSIST.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionsFor {
    Set,
    GetEx,
}

/// Parses options from `args[start..]`; an expiry's amount stays an index into `args`.
fn extended_options(
    args: &[Bytes],
    start: usize,
    command: OptionsFor,
) -> Result<ExtendedOptions, CommandError> {
    let mut o = ExtendedOptions::default();
    let mut j = start;
    while j < args.len() {
        let opt = &args[j][..];
        let has_next = j + 1 < args.len();
        let set = command == OptionsFor::Set;
        let expiry_kind = |o: &ExtendedOptions| o.expiry.map(|(unit, base, _)| (unit, base));
        let time_option = [
            ("ex", TimeUnit::Seconds, ExpireBase::Now),
            ("px", TimeUnit::Milliseconds, ExpireBase::Now),
            ("exat", TimeUnit::Seconds, ExpireBase::UnixEpoch),
            ("pxat", TimeUnit::Milliseconds, ExpireBase::UnixEpoch),
        ]
        .into_iter()
        .find(|(name, _, _)| is(opt, name));
        if set && is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if set && is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if set && is(opt, "get") {
            o.get = true;
        } else if set && is(opt, "keepttl") && !o.persist && o.expiry.is_none() {
            o.keep_ttl = true;
        } else if !set && is(opt, "persist") && !o.keep_ttl && o.expiry.is_none() {
            o.persist = true;
        } else if let Some((_, unit, base)) = time_option.filter(|&(_, unit, base)| {
            // Repeating the same option is allowed (the last wins); mixing them is not.
            !o.keep_ttl && !o.persist && has_next && expiry_kind(&o).is_none_or(|k| k == (unit, base))
        }) {
            o.expiry = Some((unit, base, j + 1));
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// The expiry amount, parsed once all options are known valid (Redis's order).
fn expiry_of(args: &[Bytes], options: &ExtendedOptions) -> Result<Option<Expiry>, CommandError> {
    options
        .expiry
        .map(|(unit, base, index)| integer(arg(args, index)).map(|amount| Expiry { amount, unit, base }))
        .transpose()
}

fn set(args: &[Bytes]) -> Parsed {
    let options = extended_options(args, 2, OptionsFor::Set)?;
    let expiry = expiry_of(args, &options)?;
    if expiry.is_some_and(|e| e.amount <= 0 || (e.unit == TimeUnit::Seconds && e.amount > i64::MAX / 1000)) {
        return Err(CommandError::InvalidExpireTime { command: "set" });
    }
    let condition = match (options.nx, options.xx) {
        (true, _) => SetCondition::IfAbsent,
        (_, true) => SetCondition::IfPresent,
        _ => SetCondition::Always,
    };
    Ok(Command::Write(WriteCommand::Set(SetCommand {
        key: owned(args, 0),
        value: owned(args, 1),
        condition,
        expiry,
        keep_ttl: options.keep_ttl,
        get: options.get,
        command: "set",
    })))
}

fn get_ex(args: &[Bytes]) -> Parsed {
    let options = extended_options(args, 1, OptionsFor::GetEx)?;
    let expiry = expiry_of(args, &options)?;
    if expiry.is_some_and(|e| e.amount <= 0 || (e.unit == TimeUnit::Seconds && e.amount > i64::MAX / 1000)) {
        return Err(CommandError::InvalidExpireTime { command: "getex" });
    }
    let option = match (expiry, options.persist) {
        (Some(expiry), _) => GetExOption::Expire(expiry),
        (None, true) => GetExOption::Persist,
        (None, false) => GetExOption::None,
    };
    Ok(Command::Write(WriteCommand::GetEx { key: owned(args, 0), option }))
}

fn mset(name: &str, args: &[Bytes]) -> Parsed {
    if args.len() % 2 != 0 {
        return Err(CommandError::WrongArity { command: if name == "mset" { "mset" } else { "msetnx" } });
    }
    let pairs = args.chunks_exact(2).map(|pair| (pair[0].to_vec(), pair[1].to_vec())).collect();
    let op = if name == "mset" { WriteOp::MSet { pairs } } else { WriteOp::MSetNx { pairs } };
    Ok(Command::Write(WriteCommand::Ready(op)))
}
