//! Key-space commands: DEL, EXISTS, TOUCH, RENAME, RENAMENX, COPY, the EXPIRE family, TTL,
//! EXPIRETIME, TYPE, KEYS, SCAN, DBSIZE, FLUSHALL.

use bytes::Bytes;

use super::args::{arg, integer, is, owned, owned_from};
use super::error::CommandError;
use super::write::{ExpireBase, ExpireCommand, TimeUnit, WriteCommand};
use super::Command;
use crate::kv::scan::parse_cursor;
use crate::kv::{ExpireCondition, KvRead, WriteOp};

type Parsed = Result<Command, CommandError>;

/// SCAN's default COUNT, as Redis.
const SCAN_COUNT_DEFAULT: u64 = 10;

/// Parses the key-space command `name` (lower case); `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let key = || owned(args, 0);
    let read = |query| Ok(Command::Read(query));
    let ready = |op| Ok(Command::Write(WriteCommand::Ready(op)));
    Some(match name {
        "del" | "unlink" => ready(WriteOp::Del { keys: owned_from(args, 0) }),
        // TOUCH only counts the keys that exist: there is no access time to update.
        "exists" | "touch" => read(KvRead::Exists { keys: owned_from(args, 0) }),
        "expire" => expire(args, "expire", TimeUnit::Seconds, ExpireBase::Now),
        "pexpire" => expire(args, "pexpire", TimeUnit::Milliseconds, ExpireBase::Now),
        "expireat" => expire(args, "expireat", TimeUnit::Seconds, ExpireBase::UnixEpoch),
        "pexpireat" => expire(args, "pexpireat", TimeUnit::Milliseconds, ExpireBase::UnixEpoch),
        "ttl" => read(KvRead::Ttl { key: key() }),
        "pttl" => read(KvRead::PTtl { key: key() }),
        "expiretime" => read(KvRead::ExpireTime { key: key() }),
        "pexpiretime" => read(KvRead::PExpireTime { key: key() }),
        "persist" => ready(WriteOp::Persist { key: key() }),
        "rename" => ready(WriteOp::Rename { from: key(), to: owned(args, 1), if_new: false }),
        "renamenx" => ready(WriteOp::Rename { from: key(), to: owned(args, 1), if_new: true }),
        "copy" => copy(args),
        "type" => read(KvRead::Type { key: key() }),
        "keys" => read(KvRead::Keys { pattern: key() }),
        "scan" => scan(args),
        "dbsize" => read(KvRead::DbSize),
        "randomkey" => read(KvRead::RandomKey),
        "flushall" | "flushdb" => match args {
            [] => ready(WriteOp::FlushAll),
            [mode] if is(mode, "sync") || is(mode, "async") => ready(WriteOp::FlushAll),
            _ => Err(CommandError::Syntax),
        },
        _ => return None,
    })
}

/// COPY source destination [DB 0] [REPLACE]: there is one database, so DB must be 0.
fn copy(args: &[Bytes]) -> Parsed {
    let (from, to) = (owned(args, 0), owned(args, 1));
    let mut replace = false;
    let mut options = args.iter().skip(2);
    while let Some(option) = options.next() {
        if is(option, "replace") {
            replace = true;
        } else if is(option, "db") {
            match options.next().map(|db| integer(db)) {
                Some(Ok(0)) => {}
                Some(Ok(_)) => return Err(CommandError::DbIndexOutOfRange),
                Some(Err(error)) => return Err(error),
                None => return Err(CommandError::Syntax),
            }
        } else {
            return Err(CommandError::Syntax);
        }
    }
    if from == to {
        return Err(CommandError::SameObject);
    }
    Ok(Command::Write(WriteCommand::Ready(WriteOp::Copy { from, to, replace })))
}

/// EXPIRE key time [NX|XX|GT|LT]: options are checked before the time, as in Redis.
fn expire(args: &[Bytes], command: &'static str, unit: TimeUnit, base: ExpireBase) -> Parsed {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in args.iter().skip(2) {
        if is(option, "nx") {
            nx = true;
        } else if is(option, "xx") {
            xx = true;
        } else if is(option, "gt") {
            gt = true;
        } else if is(option, "lt") {
            lt = true;
        } else {
            return Err(CommandError::UnsupportedExpireOption { option: option.to_vec() });
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::ExpireNxConflict);
    }
    if gt && lt {
        return Err(CommandError::ExpireGtLtConflict);
    }
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireCondition::IfNoTtl,
        (_, true, true, _) => ExpireCondition::IfTtlAndLater,
        (_, true, _, true) => ExpireCondition::IfTtlAndEarlier,
        (_, true, ..) => ExpireCondition::IfTtl,
        (_, _, true, _) => ExpireCondition::IfLater,
        (_, _, _, true) => ExpireCondition::IfEarlier,
        _ => ExpireCondition::Always,
    };
    let when = integer(arg(args, 1))?;
    Ok(Command::Write(WriteCommand::Expire(ExpireCommand {
        key: owned(args, 0),
        when,
        unit,
        base,
        condition,
        command,
    })))
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
fn scan(args: &[Bytes]) -> Parsed {
    let cursor = parse_cursor(arg(args, 0)).ok_or(CommandError::InvalidCursor)?;
    let (mut pattern, mut count, mut type_name) = (None, SCAN_COUNT_DEFAULT, None);
    let mut options = args[1..].chunks(2);
    for option in options.by_ref() {
        let [name, value] = option else {
            return Err(CommandError::Syntax);
        };
        if is(name, "match") {
            pattern = Some(value.to_vec());
        } else if is(name, "count") {
            count = u64::try_from(integer(value)?).ok().filter(|&n| n >= 1).ok_or(CommandError::Syntax)?;
        } else if is(name, "type") {
            type_name = Some(value.to_vec());
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Command::Read(KvRead::Scan { cursor, pattern, count, type_name }))
}
