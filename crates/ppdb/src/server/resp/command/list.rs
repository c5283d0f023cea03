//! List commands: LPUSH, LRANGE, LPOS and friends (the pops have their own file).

use bytes::Bytes;

use super::args::{arg, integer, is, owned, owned_from};
use super::error::CommandError;
use super::write::WriteCommand;
use super::Command;
use crate::kv::numeric::parse_i64;
use crate::kv::types::list::Side;
use crate::kv::types::{ListRead, ListWrite};
use crate::kv::{CollectionRead, CollectionWrite, KvRead, WriteOp};

type Parsed = Result<Command, CommandError>;

/// Parses the list command `name` (lower case) with its arguments; `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let key = || owned(args, 0);
    let push = |side, existing_only| {
        write(ListWrite::Push { key: key(), elements: owned_from(args, 1), side, existing_only })
    };
    Some(match name {
        "lpush" => push(Side::Left, false),
        "rpush" => push(Side::Right, false),
        "lpushx" => push(Side::Left, true),
        "rpushx" => push(Side::Right, true),
        "lset" => {
            write(ListWrite::Set { key: key(), index: parse_i64(arg(args, 1)), element: owned(args, 2) })
        }
        "linsert" => insert(args),
        "lrem" => integer(arg(args, 1))
            .and_then(|count| write(ListWrite::Remove { key: key(), count, element: owned(args, 2) })),
        "ltrim" => range(args).and_then(|(start, stop)| write(ListWrite::Trim { key: key(), start, stop })),
        "lrange" => range(args).and_then(|(start, stop)| read(ListRead::Range { key: key(), start, stop })),
        "lindex" => read(ListRead::Index { key: key(), index: parse_i64(arg(args, 1)) }),
        "llen" => read(ListRead::Len { key: key() }),
        "lpos" => position(args),
        _ => return None,
    })
}

/// A ready list write.
fn write(op: ListWrite) -> Parsed {
    Ok(Command::Write(WriteCommand::Ready(WriteOp::Collection(CollectionWrite::List(op)))))
}

/// A list read.
fn read(query: ListRead) -> Parsed {
    Ok(Command::Read(KvRead::Collection(CollectionRead::List(query))))
}

/// The start and stop of LRANGE and LTRIM.
fn range(args: &[Bytes]) -> Result<(i64, i64), CommandError> {
    Ok((integer(arg(args, 1))?, integer(arg(args, 2))?))
}

/// LINSERT key BEFORE|AFTER pivot element.
fn insert(args: &[Bytes]) -> Parsed {
    let place = arg(args, 1);
    let after = match () {
        _ if is(place, "after") => true,
        _ if is(place, "before") => false,
        _ => return Err(CommandError::Syntax),
    };
    write(ListWrite::Insert { key: owned(args, 0), after, pivot: owned(args, 2), element: owned(args, 3) })
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]: options in any order, a
/// repeated one taking its last value, the first bad one answered.
fn position(args: &[Bytes]) -> Parsed {
    let (mut rank, mut count, mut max_len) = (1, None, 0);
    let mut options = args.iter().skip(2);
    while let Some(option) = options.next() {
        let Some(value) = options.next() else {
            return Err(CommandError::Syntax);
        };
        if is(option, "rank") {
            rank = integer(value)?;
            if rank == 0 {
                return Err(CommandError::RankZero);
            }
        } else if is(option, "count") {
            count = Some(not_negative(value, "COUNT")?);
        } else if is(option, "maxlen") {
            max_len = not_negative(value, "MAXLEN")?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    read(ListRead::Position { key: owned(args, 0), element: owned(args, 1), rank, count, max_len })
}

/// LPOS's COUNT and MAXLEN: a non-negative integer, or `ERR <option> can't be negative` (also
/// for what is not an integer at all, as Redis answers).
fn not_negative(value: &[u8], option: &'static str) -> Result<u64, CommandError> {
    parse_i64(value).and_then(|value| u64::try_from(value).ok()).ok_or(CommandError::Negative { option })
}
