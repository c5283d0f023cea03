//! Hash commands: HSET, HGET and friends.

use bytes::Bytes;

use super::args::owned;
use super::error::CommandError;
use super::write::WriteCommand;
use super::Command;
use crate::kv::types::{HashRead, HashWrite};
use crate::kv::{CollectionRead, CollectionWrite, KvRead, WriteOp};

type Parsed = Result<Command, CommandError>;

/// Parses the hash command `name` (lower case) with its arguments; `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let key = || owned(args, 0);
    Some(match name {
        "hset" | "hmset" => set(name, args),
        "hget" => read(HashRead::Get { key: key(), field: owned(args, 1) }),
        "hlen" => read(HashRead::Len { key: key() }),
        _ => return None,
    })
}

/// A ready hash write.
fn write(op: HashWrite) -> Parsed {
    Ok(Command::Write(WriteCommand::Ready(WriteOp::Collection(CollectionWrite::Hash(op)))))
}

/// A hash read.
fn read(query: HashRead) -> Parsed {
    Ok(Command::Read(KvRead::Collection(CollectionRead::Hash(query))))
}

/// HSET key field value [field value ...] and HMSET: fields and values come in pairs.
fn set(name: &str, args: &[Bytes]) -> Parsed {
    let fields = args.get(1..).unwrap_or_default();
    if fields.len() % 2 != 0 {
        return Err(CommandError::WrongArity { command: if name == "hset" { "hset" } else { "hmset" } });
    }
    let pairs = fields.chunks_exact(2).map(|pair| (pair[0].to_vec(), pair[1].to_vec())).collect();
    write(HashWrite::Set { key: owned(args, 0), pairs, reply_ok: name == "hmset" })
}
