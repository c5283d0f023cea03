//! Single-shard transactions (MULTI/EXEC) as one log entry: [`WriteOp::Transaction`].
//!
//! A transaction is the ordered list of its key-space commands, writes with their expiries
//! (absolute, or relative to the entry's time), reads as queries. The state machine applies the whole entry in one step
//! ([`super::KvStore::apply`]): each step sees the effect of the steps before it, reads are
//! evaluated at apply time against the entry's `now_ms` (so they are linearizable), and the
//! reply is an array with one element per step. A step that fails (WRONGTYPE-like errors such
//! as `ERR value is not an integer`) is just that element's error; the others still apply, as
//! in Redis.
//!
//! Applying a transaction allocates its replies on every replica, so they are bounded: a step
//! whose reply would take the transaction's replies past [`TXN_REPLY_BYTES_MAX`] answers
//! `ERR transaction reply exceeds maximum allowed size` instead (a write step still takes
//! effect; a read builds nothing large). Redis has no such limit, only the client output
//! buffer's, which it enforces by disconnecting the client.
//!
//! # Encoding (inside an entry, operation tag 16)
//!
//! With watched keys (WATCH), operation tag 23 and first `count:varint` (at most
//! [`super::command::BATCH_KEYS_MAX`]) and per key `key:bytes version:varint`; then, as for
//! tag 16: `count:varint` (at most [`TXN_STEPS_MAX`]), then per step `kind:u8` — `1` and a nested
//! operation (`op_tag:u8 fields...`, never itself a transaction), or `2` and a read
//! (`read_tag:u8 fields...`, byte strings and counts bounded as in the rest of the entry).

use super::codec::{put_bytes, put_signed, put_varint, KvDecodeError, Reader};
use super::command::{decode_op, encode_op, key, keys, KvRead, WriteOp, BATCH_KEYS_MAX, VALUE_BYTES_MAX};
use super::introspect::ObjectField;
use super::types::CollectionRead;

/// The most commands one transaction entry may hold.
pub const TXN_STEPS_MAX: u64 = 16 * 1024;

/// Room in a transaction's replies beyond one value of the largest size.
const TXN_REPLY_HEADROOM_BYTES: u64 = 64 * 1024 * 1024;

/// The most memory the replies of one transaction may hold, as [`super::Reply::bytes`]
/// counts it: one value of the largest size and some more (see the module docs).
pub const TXN_REPLY_BYTES_MAX: u64 = VALUE_BYTES_MAX + TXN_REPLY_HEADROOM_BYTES;

/// A key the client watched (WATCH) and the version it saw then
/// ([`super::KvStore::live_version`]): the transaction runs only if the key still has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedKey {
    /// The key.
    pub key: Vec<u8>,
    /// Its version when watched; 0 for a key that was absent.
    pub version: u64,
}

/// One command of a single-shard transaction, in client order.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnStep {
    /// A write, at the entry's time. Never a nested transaction.
    Write(WriteOp),
    /// A read, answered from the state as the earlier steps left it.
    Read(KvRead),
}

impl TxnStep {
    /// The keys this step touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Write(op) => op.keys(),
            Self::Read(read) => read.keys(),
        }
    }
}

const STEP_WRITE: u8 = 1;
const STEP_READ: u8 = 2;

// Read tags inside a transaction step. Never renumber: they are on disk.
const READ_GET: u8 = 1;
const READ_MGET: u8 = 2;
const READ_EXISTS: u8 = 3;
const READ_STRLEN: u8 = 4;
const READ_GETRANGE: u8 = 5;
const READ_TTL: u8 = 6;
const READ_PTTL: u8 = 7;
const READ_TYPE: u8 = 8;
const READ_KEYS: u8 = 9;
const READ_SCAN: u8 = 10;
const READ_DBSIZE: u8 = 11;
const READ_RANDOMKEY: u8 = 12;
const READ_EXPIRETIME: u8 = 13;
const READ_PEXPIRETIME: u8 = 14;
/// A collection query: a type tag, then the type's own query (see [`super::types`]).
const READ_COLLECTION: u8 = 15;
const READ_OBJECT: u8 = 16;
const READ_MEMORY_USAGE: u8 = 17;
const READ_MC_GET: u8 = 18;
const READ_VERSIONS: u8 = 19;
const READ_EXPIRES: u8 = 20;
const READ_TXN_LOCKS: u8 = 21;

/// Appends the body of a transaction operation (after its tag).
pub(super) fn encode_steps(steps: &[TxnStep], out: &mut Vec<u8>) {
    put_varint(out, steps.len() as u64);
    for step in steps {
        match step {
            TxnStep::Write(op) => {
                debug_assert!(!matches!(op, WriteOp::Transaction { .. }), "transactions do not nest");
                out.push(STEP_WRITE);
                encode_op(op, out);
            }
            TxnStep::Read(read) => {
                out.push(STEP_READ);
                encode_read(read, out);
            }
        }
    }
}

/// Appends the watched keys of a transaction (operation tag 23, before its steps).
pub(super) fn encode_watched(watched: &[WatchedKey], out: &mut Vec<u8>) {
    put_varint(out, watched.len() as u64);
    for WatchedKey { key, version } in watched {
        put_bytes(out, key);
        put_varint(out, *version);
    }
}

/// Decodes what [`encode_watched`] wrote.
pub(super) fn decode_watched(reader: &mut Reader<'_>) -> Result<Vec<WatchedKey>, KvDecodeError> {
    let count = reader.count("watched key count", BATCH_KEYS_MAX)?;
    // Each watched key takes at least two bytes.
    let mut watched = Vec::with_capacity((count as usize).min(reader.remaining() / 2));
    for _ in 0..count {
        watched.push(WatchedKey { key: key(reader)?, version: reader.varint("watched version")? });
    }
    Ok(watched)
}

/// Decodes the body of a transaction operation; a nested transaction is an error.
pub(super) fn decode_steps(reader: &mut Reader<'_>) -> Result<Vec<TxnStep>, KvDecodeError> {
    let count = reader.count("transaction step count", TXN_STEPS_MAX)?;
    // Each step takes at least two bytes, so never reserve more than the input can hold.
    let mut steps = Vec::with_capacity((count as usize).min(reader.remaining() / 2));
    for _ in 0..count {
        let offset = reader.offset();
        let step = match reader.u8("transaction step kind")? {
            STEP_WRITE => TxnStep::Write(decode_op(reader, false)?),
            STEP_READ => TxnStep::Read(decode_read(reader)?),
            tag => return Err(KvDecodeError::InvalidTag { field: "transaction step kind", tag, offset }),
        };
        steps.push(step);
    }
    Ok(steps)
}

fn put_keys(out: &mut Vec<u8>, keys: &[Vec<u8>]) {
    put_varint(out, keys.len() as u64);
    for key in keys {
        put_bytes(out, key);
    }
}

fn put_option(out: &mut Vec<u8>, value: &Option<Vec<u8>>) {
    match value {
        Some(bytes) => {
            out.push(1);
            put_bytes(out, bytes);
        }
        None => out.push(0),
    }
}

/// Appends a read: its tag and fields (also [`KvRead::encode`]).
pub(super) fn encode_read(read: &KvRead, out: &mut Vec<u8>) {
    let mut key_only = |tag: u8, key: &[u8]| {
        out.push(tag);
        put_bytes(out, key);
    };
    match read {
        KvRead::Get { key } => key_only(READ_GET, key),
        KvRead::StrLen { key } => key_only(READ_STRLEN, key),
        KvRead::Ttl { key } => key_only(READ_TTL, key),
        KvRead::PTtl { key } => key_only(READ_PTTL, key),
        KvRead::ExpireTime { key } => key_only(READ_EXPIRETIME, key),
        KvRead::PExpireTime { key } => key_only(READ_PEXPIRETIME, key),
        KvRead::Type { key } => key_only(READ_TYPE, key),
        KvRead::Keys { pattern } => key_only(READ_KEYS, pattern),
        KvRead::GetRange { key, start, end } => {
            key_only(READ_GETRANGE, key);
            put_signed(out, *start);
            put_signed(out, *end);
        }
        KvRead::MGet { keys } | KvRead::Exists { keys } => {
            out.push(if matches!(read, KvRead::MGet { .. }) { READ_MGET } else { READ_EXISTS });
            put_keys(out, keys);
        }
        KvRead::Scan { cursor, pattern, count, type_name } => {
            out.push(READ_SCAN);
            put_varint(out, *cursor);
            put_option(out, pattern);
            put_varint(out, *count);
            put_option(out, type_name);
        }
        KvRead::DbSize => out.push(READ_DBSIZE),
        KvRead::Expires => out.push(READ_EXPIRES),
        KvRead::TxnLocks { min_age_ms } => {
            out.push(READ_TXN_LOCKS);
            put_varint(out, *min_age_ms);
        }
        KvRead::RandomKey => out.push(READ_RANDOMKEY),
        KvRead::Collection(query) => {
            out.push(READ_COLLECTION);
            query.encode(out);
        }
        KvRead::Object { key, field } => {
            key_only(READ_OBJECT, key);
            out.push(match field {
                ObjectField::Encoding => 0,
                ObjectField::RefCount => 1,
                ObjectField::IdleTime => 2,
                ObjectField::Freq => 3,
            });
        }
        KvRead::MemoryUsage { key } => key_only(READ_MEMORY_USAGE, key),
        KvRead::McGet { key } => key_only(READ_MC_GET, key),
        KvRead::Versions { keys } => {
            out.push(READ_VERSIONS);
            put_keys(out, keys);
        }
    }
}

fn option(reader: &mut Reader<'_>) -> Result<Option<Vec<u8>>, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8("option flag")? {
        0 => Ok(None),
        1 => Ok(Some(key(reader)?)),
        tag => Err(KvDecodeError::InvalidTag { field: "option flag", tag, offset }),
    }
}

fn object_field(reader: &mut Reader<'_>) -> Result<ObjectField, KvDecodeError> {
    let offset = reader.offset();
    Ok(match reader.u8("object field")? {
        0 => ObjectField::Encoding,
        1 => ObjectField::RefCount,
        2 => ObjectField::IdleTime,
        3 => ObjectField::Freq,
        tag => return Err(KvDecodeError::InvalidTag { field: "object field", tag, offset }),
    })
}

/// Reads back what [`encode_read`] wrote.
pub(super) fn decode_read(reader: &mut Reader<'_>) -> Result<KvRead, KvDecodeError> {
    let offset = reader.offset();
    Ok(match reader.u8("read")? {
        READ_GET => KvRead::Get { key: key(reader)? },
        READ_MGET => KvRead::MGet { keys: keys(reader)? },
        READ_EXISTS => KvRead::Exists { keys: keys(reader)? },
        READ_STRLEN => KvRead::StrLen { key: key(reader)? },
        READ_GETRANGE => KvRead::GetRange {
            key: key(reader)?,
            start: reader.signed("range start")?,
            end: reader.signed("range end")?,
        },
        READ_TTL => KvRead::Ttl { key: key(reader)? },
        READ_PTTL => KvRead::PTtl { key: key(reader)? },
        READ_EXPIRETIME => KvRead::ExpireTime { key: key(reader)? },
        READ_PEXPIRETIME => KvRead::PExpireTime { key: key(reader)? },
        READ_TYPE => KvRead::Type { key: key(reader)? },
        READ_KEYS => KvRead::Keys { pattern: key(reader)? },
        READ_SCAN => KvRead::Scan {
            cursor: reader.varint("scan cursor")?,
            pattern: option(reader)?,
            count: reader.varint("scan count")?,
            type_name: option(reader)?,
        },
        READ_DBSIZE => KvRead::DbSize,
        READ_EXPIRES => KvRead::Expires,
        READ_TXN_LOCKS => KvRead::TxnLocks { min_age_ms: reader.varint("lock age")? },
        READ_RANDOMKEY => KvRead::RandomKey,
        READ_COLLECTION => KvRead::Collection(CollectionRead::decode(reader)?),
        READ_OBJECT => KvRead::Object { key: key(reader)?, field: object_field(reader)? },
        READ_MEMORY_USAGE => KvRead::MemoryUsage { key: key(reader)? },
        READ_MC_GET => KvRead::McGet { key: key(reader)? },
        READ_VERSIONS => KvRead::Versions { keys: keys(reader)? },
        tag => return Err(KvDecodeError::InvalidTag { field: "read", tag, offset }),
    })
}
