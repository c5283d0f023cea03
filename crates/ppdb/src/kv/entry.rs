//! How key-value operations are written into the Raft log, and read back: the entry's
//! version, its time stamp, the operation tags and every operation's fields.
//!
//! # Encoding (version 2)
//!
//! `version:u8 now_ms:u64-little-endian op_tag:u8 fields...`, where byte strings are
//! `len:varint bytes`, counts are varints, signed integers are zigzag varints and floats are 8
//! little-endian bytes of their IEEE-754 bits. Version 1 entries (written by earlier releases,
//! still read) hold `now_ms` as a varint, stamped by the node the client reached, and only
//! absolute expiries. Decoding is bounded: every length is checked against
//! [`crate::limits::STORED_VALUE_BYTES_MAX`] (keys and values, the bound of every release) or
//! [`BATCH_KEYS_MAX`] (key counts) and against the input
//! that remains, so a corrupt entry is an error, never a panic or a huge allocation. A
//! transaction ([`WriteOp::Transaction`], tag 16) nests the operations of its steps, one level
//! deep only; its body is described below.
//!
//! # Transactions (operation tags 16 and 23)
//!
//! # Encoding (inside an entry, operation tag 16)
//!
//! With watched keys (WATCH), operation tag 23 and first `count:varint` (at most
//! [`super::command::BATCH_KEYS_MAX`]) and per key `key:bytes version:varint`; then, as for
//! tag 16: `count:varint` (at most [`TXN_STEPS_MAX`]), then per step `kind:u8` — `1` and a nested
//! operation (`op_tag:u8 fields...`, never itself a transaction), or `2` and a read
//! (`read_tag:u8 fields...`, byte strings and counts bounded as in the rest of the entry).

use super::codec::{put_bytes, put_signed, put_varint, KvDecodeError, Reader};
use super::command::{
    ExpireCondition, ExpireTime, GetExTtl, KeyValuePairs, KvRead, KvWrite, SetCondition, SetTtl, TxnStep,
    WatchedKey, WriteOp, BATCH_KEYS_MAX,
};
use super::introspect::ObjectField;
use super::memcached::McWrite;
use super::multi::TXN_STEPS_MAX;
use super::script::ScriptCall;
use super::transfer::Expect;
use super::types::{CollectionRead, CollectionWrite};

/// Version byte of the entry encoding written by this build.
const ENCODING_VERSION: u8 = 2;
/// Version byte of the encoding with a varint time and absolute expiries only, still read.
const ENCODING_VERSION_VARINT_TIME: u8 = 1;
/// Where the entry time sits in a version 2 entry, and its width.
const STAMP_OFFSET: usize = 1;
const STAMP_BYTES: usize = 8;

// Operation tags of encoding version 1. Never renumber: they are on disk.
const TAG_SET: u8 = 1;
const TAG_SETNX: u8 = 2;
const TAG_GETDEL: u8 = 3;
const TAG_GETEX: u8 = 4;
const TAG_MSET: u8 = 5;
const TAG_MSETNX: u8 = 6;
const TAG_DEL: u8 = 7;
const TAG_INCRBY: u8 = 8;
const TAG_INCRBYFLOAT: u8 = 9;
const TAG_APPEND: u8 = 10;
const TAG_SETRANGE: u8 = 11;
const TAG_EXPIRE: u8 = 12;
const TAG_PERSIST: u8 = 13;
const TAG_FLUSHALL: u8 = 14;
const TAG_REMOVE_EXPIRED: u8 = 15;
const TAG_TRANSACTION: u8 = 16;
const TAG_RENAME: u8 = 17;
const TAG_COPY: u8 = 18;
/// EXPIRE relative to the entry's time (version 2); `TAG_EXPIRE` is absolute.
const TAG_EXPIRE_AFTER: u8 = 19;
/// A collection command: a type tag, then the type's own operation (see [`super::types`]).
const TAG_COLLECTION: u8 = 20;
/// A blocked client's try: an id, then a flag and the operation it wraps (none for a fence).
const TAG_ATTEMPT: u8 = 21;
/// A memcached item command: its own tag, then its fields (see [`super::memcached`]).
const TAG_MEMCACHED: u8 = 22;
/// A transaction with watched keys: their versions, then the steps (see [`super::multi`]).
const TAG_WATCHED_TRANSACTION: u8 = 23;
/// A script call: its body, keys and arguments (see [`super::script`]); top level only.
const TAG_SCRIPT: u8 = 24;
/// A cross-shard command's source: the key, then a flag and the effect (see [`super::transfer`]).
const TAG_EXPORT: u8 = 25;
/// A cross-shard command at its destination: `count:varint` imported keys (at most
/// [`BATCH_KEYS_MAX`]), each `key:bytes has_value:u8 [value:bytes]`, then `expect:u8` and the
/// command (see [`super::transfer`]).
const TAG_IMPORTED: u8 = 26;
// SET and GETEX time-to-live tags: 0 clear/unchanged, 1 keep/persist, 2 absolute, 3 relative.
const TTL_TAG_AT: u8 = 2;
const TTL_TAG_AFTER: u8 = 3;

impl KvWrite {
    /// Encodes the write for the Raft log (format described in the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.payload_len_hint());
        out.push(ENCODING_VERSION);
        out.extend_from_slice(&self.now_ms.to_le_bytes());
        encode_op(&self.op, &mut out);
        out
    }

    /// Decodes a write produced by [`KvWrite::encode`] (or by an earlier release's, version
    /// 1); never panics, bounded allocation.
    pub fn decode(input: &[u8]) -> Result<Self, KvDecodeError> {
        let mut reader = Reader::new(input);
        let now_ms = match reader.u8("version")? {
            ENCODING_VERSION => stamp_value(reader.take(STAMP_BYTES, "now_ms")?),
            ENCODING_VERSION_VARINT_TIME => reader.varint("now_ms")?,
            version => return Err(KvDecodeError::UnsupportedVersion { version }),
        };
        let op = decode_op(&mut reader, true)?;
        reader.finish()?;
        Ok(Self { now_ms, op })
    }

    /// Writes the entry time `now_ms` into an encoded write, in place; false (and nothing
    /// written) when the bytes are not a version 2 entry.
    pub fn stamp(encoded: &mut [u8], now_ms: u64) -> bool {
        match encoded.get_mut(..STAMP_OFFSET + STAMP_BYTES) {
            Some([ENCODING_VERSION, time @ ..]) => {
                time.copy_from_slice(&now_ms.to_le_bytes());
                true
            }
            _ => false,
        }
    }

    /// The entry time of an encoded write, read without decoding the rest.
    pub fn stamped_time(encoded: &[u8]) -> Option<u64> {
        let mut reader = Reader::new(encoded);
        match reader.u8("version").ok()? {
            ENCODING_VERSION => reader.take(STAMP_BYTES, "now_ms").ok().map(stamp_value),
            ENCODING_VERSION_VARINT_TIME => reader.varint("now_ms").ok(),
            _ => None,
        }
    }

    fn payload_len_hint(&self) -> usize {
        match &self.op {
            WriteOp::Set { key, value, .. }
            | WriteOp::SetNx { key, value }
            | WriteOp::Append { key, value }
            | WriteOp::SetRange { key, value, .. }
            | WriteOp::Memcached(McWrite::Store { key, value, .. }) => key.len() + value.len(),
            WriteOp::MSet { pairs } | WriteOp::MSetNx { pairs } => {
                pairs.iter().map(|(k, v)| k.len() + v.len() + 4).sum()
            }
            WriteOp::Del { keys } | WriteOp::RemoveExpired { keys } => keys.iter().map(|k| k.len() + 2).sum(),
            WriteOp::Transaction { steps, watched } => (steps.len() + watched.len()) * 32,
            WriteOp::Script(call) => call.encoded_len_hint(),
            _ => 32,
        }
    }
}
impl KvRead {
    /// Encodes the read as a transaction step holds it (see [`super::multi`]), for a node that
    /// forwards it to the shard's leader.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_read(self, &mut out);
        out
    }

    /// Decodes a read produced by [`KvRead::encode`]; never panics, bounded allocation.
    pub fn decode(input: &[u8]) -> Result<Self, KvDecodeError> {
        let mut reader = Reader::new(input);
        let read = decode_read(&mut reader)?;
        reader.finish()?;
        Ok(read)
    }
}

/// The entry time held in the 8 bytes `time` (little-endian).
fn stamp_value(time: &[u8]) -> u64 {
    let mut raw = [0u8; STAMP_BYTES];
    raw.copy_from_slice(time);
    u64::from_le_bytes(raw)
}

/// Appends a SET or GETEX time-to-live change that sets an expiry.
fn put_ttl(out: &mut Vec<u8>, tag: u8, ms: u64) {
    out.push(tag);
    put_varint(out, ms);
}

/// Appends an operation: its tag, then its fields.
pub(super) fn encode_op(op: &WriteOp, out: &mut Vec<u8>) {
    match op {
        WriteOp::Set { key, value, condition, ttl, get } => {
            out.push(TAG_SET);
            put_bytes(out, key);
            put_bytes(out, value);
            out.push(match condition {
                SetCondition::Always => 0,
                SetCondition::IfAbsent => 1,
                SetCondition::IfPresent => 2,
            });
            match ttl {
                SetTtl::Clear => out.push(0),
                SetTtl::Keep => out.push(1),
                SetTtl::At(at) => put_ttl(out, TTL_TAG_AT, *at),
                SetTtl::After(span) => put_ttl(out, TTL_TAG_AFTER, *span),
            }
            out.push(u8::from(*get));
        }
        WriteOp::SetNx { key, value } => {
            out.push(TAG_SETNX);
            put_bytes(out, key);
            put_bytes(out, value);
        }
        WriteOp::GetDel { key } => {
            out.push(TAG_GETDEL);
            put_bytes(out, key);
        }
        WriteOp::GetEx { key, ttl } => {
            out.push(TAG_GETEX);
            put_bytes(out, key);
            match ttl {
                GetExTtl::Unchanged => out.push(0),
                GetExTtl::Persist => out.push(1),
                GetExTtl::At(at) => put_ttl(out, TTL_TAG_AT, *at),
                GetExTtl::After(span) => put_ttl(out, TTL_TAG_AFTER, *span),
            }
        }
        WriteOp::MSet { pairs } | WriteOp::MSetNx { pairs } => {
            out.push(if matches!(op, WriteOp::MSet { .. }) { TAG_MSET } else { TAG_MSETNX });
            put_varint(out, pairs.len() as u64);
            for (key, value) in pairs {
                put_bytes(out, key);
                put_bytes(out, value);
            }
        }
        WriteOp::Rename { from, to, if_new: flag } | WriteOp::Copy { from, to, replace: flag } => {
            out.push(if matches!(op, WriteOp::Rename { .. }) { TAG_RENAME } else { TAG_COPY });
            put_bytes(out, from);
            put_bytes(out, to);
            out.push(u8::from(*flag));
        }
        WriteOp::Del { keys } | WriteOp::RemoveExpired { keys } => {
            out.push(if matches!(op, WriteOp::Del { .. }) { TAG_DEL } else { TAG_REMOVE_EXPIRED });
            put_varint(out, keys.len() as u64);
            for key in keys {
                put_bytes(out, key);
            }
        }
        WriteOp::IncrBy { key, delta } => {
            out.push(TAG_INCRBY);
            put_bytes(out, key);
            put_signed(out, *delta);
        }
        WriteOp::IncrByFloat { key, delta } => {
            out.push(TAG_INCRBYFLOAT);
            put_bytes(out, key);
            out.extend_from_slice(&delta.to_bits().to_le_bytes());
        }
        WriteOp::Append { key, value } => {
            out.push(TAG_APPEND);
            put_bytes(out, key);
            put_bytes(out, value);
        }
        WriteOp::SetRange { key, offset, value } => {
            out.push(TAG_SETRANGE);
            put_bytes(out, key);
            put_varint(out, *offset);
            put_bytes(out, value);
        }
        WriteOp::Expire { key, when, condition } => {
            let (tag, ms) = match when {
                ExpireTime::At(at) => (TAG_EXPIRE, at),
                ExpireTime::After(span) => (TAG_EXPIRE_AFTER, span),
            };
            out.push(tag);
            put_bytes(out, key);
            put_signed(out, *ms);
            out.push(expire_condition_tag(*condition));
        }
        WriteOp::Persist { key } => {
            out.push(TAG_PERSIST);
            put_bytes(out, key);
        }
        WriteOp::FlushAll => out.push(TAG_FLUSHALL),
        WriteOp::Transaction { steps, watched } if watched.is_empty() => {
            out.push(TAG_TRANSACTION);
            encode_steps(steps, out);
        }
        WriteOp::Transaction { steps, watched } => {
            out.push(TAG_WATCHED_TRANSACTION);
            encode_watched(watched, out);
            encode_steps(steps, out);
        }
        WriteOp::Collection(op) => {
            out.push(TAG_COLLECTION);
            op.encode(out);
        }
        WriteOp::Memcached(op) => {
            out.push(TAG_MEMCACHED);
            op.encode(out);
        }
        WriteOp::Attempt { id, op } => {
            out.push(TAG_ATTEMPT);
            put_varint(out, *id);
            match op {
                None => out.push(0),
                Some(op) => {
                    out.push(1);
                    encode_op(op, out);
                }
            }
        }
        WriteOp::Script(call) => {
            out.push(TAG_SCRIPT);
            call.encode(out);
        }
        WriteOp::Export { key, then } => {
            out.push(TAG_EXPORT);
            put_bytes(out, key);
            match then {
                None => out.push(0),
                Some(op) => {
                    out.push(1);
                    encode_op(op, out);
                }
            }
        }
        WriteOp::Imported { imports, op, expect } => {
            out.push(TAG_IMPORTED);
            put_varint(out, imports.len() as u64);
            for (key, value) in imports {
                put_bytes(out, key);
                match value {
                    None => out.push(0),
                    Some(value) => {
                        out.push(1);
                        put_bytes(out, value);
                    }
                }
            }
            out.push(expect.tag());
            encode_op(op, out);
        }
    }
}

/// Decodes the operation an export or an import wraps: a plain one, never a transaction, an
/// attempt, a script, an export or an import, so nesting stays one level deep.
fn decode_wrapped_op(reader: &mut Reader<'_>) -> Result<WriteOp, KvDecodeError> {
    let offset = reader.offset();
    match decode_op(reader, false)? {
        WriteOp::Export { .. } | WriteOp::Imported { .. } => {
            Err(KvDecodeError::Invalid { field: "wrapped operation", offset })
        }
        op => Ok(op),
    }
}

fn expire_condition_tag(condition: ExpireCondition) -> u8 {
    match condition {
        ExpireCondition::Always => 0,
        ExpireCondition::IfNoTtl => 1,
        ExpireCondition::IfTtl => 2,
        ExpireCondition::IfLater => 3,
        ExpireCondition::IfEarlier => 4,
        ExpireCondition::IfTtlAndLater => 5,
        ExpireCondition::IfTtlAndEarlier => 6,
    }
}

/// Decodes one key. Keys and values in entries are read up to the bound of every release
/// ([`crate::limits::STORED_VALUE_BYTES_MAX`]): an entry an earlier release logged is applied,
/// never refused; new commands are bounded by [`KEY_BYTES_MAX`] and [`VALUE_BYTES_MAX`] before
/// they are proposed.
pub(super) fn key(reader: &mut Reader<'_>) -> Result<Vec<u8>, KvDecodeError> {
    reader.bytes("key", crate::limits::STORED_VALUE_BYTES_MAX as u64)
}

pub(super) fn value(reader: &mut Reader<'_>) -> Result<Vec<u8>, KvDecodeError> {
    reader.bytes("value", crate::limits::STORED_VALUE_BYTES_MAX as u64)
}

fn tag(reader: &mut Reader<'_>, field: &'static str, max: u8) -> Result<u8, KvDecodeError> {
    let offset = reader.offset();
    let tag = reader.u8(field)?;
    if tag > max {
        return Err(KvDecodeError::InvalidTag { field, tag, offset });
    }
    Ok(tag)
}

pub(super) fn pairs(reader: &mut Reader<'_>) -> Result<KeyValuePairs, KvDecodeError> {
    let count = reader.count("pair count", BATCH_KEYS_MAX)?;
    // Each pair takes at least two bytes, so never reserve more than the input can hold.
    let mut pairs = Vec::with_capacity((count as usize).min(reader.remaining() / 2));
    for _ in 0..count {
        pairs.push((key(reader)?, value(reader)?));
    }
    Ok(pairs)
}

/// Decodes a counted list of keys, bounded by [`BATCH_KEYS_MAX`].
pub(super) fn keys(reader: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, KvDecodeError> {
    let count = reader.count("key count", BATCH_KEYS_MAX)?;
    let mut keys = Vec::with_capacity((count as usize).min(reader.remaining()));
    for _ in 0..count {
        keys.push(key(reader)?);
    }
    Ok(keys)
}

/// Reads an operation; a transaction only where `transaction_allowed` (the top level), so a
/// crafted entry cannot nest them and recurse without bound.
pub(super) fn decode_op(
    reader: &mut Reader<'_>,
    transaction_allowed: bool,
) -> Result<WriteOp, KvDecodeError> {
    let offset = reader.offset();
    let op_tag = reader.u8("operation")?;
    Ok(match op_tag {
        TAG_TRANSACTION if transaction_allowed => {
            WriteOp::Transaction { steps: decode_steps(reader)?, watched: Vec::new() }
        }
        TAG_WATCHED_TRANSACTION if transaction_allowed => {
            let watched = decode_watched(reader)?;
            WriteOp::Transaction { steps: decode_steps(reader)?, watched }
        }
        // At the top level only, wrapping no transaction and no other attempt.
        TAG_ATTEMPT if transaction_allowed => {
            let id = reader.varint("attempt id")?;
            let op = match tag(reader, "attempt flag", 1)? {
                0 => None,
                _ => Some(Box::new(decode_op(reader, false)?)),
            };
            WriteOp::Attempt { id, op }
        }
        TAG_SCRIPT if transaction_allowed => WriteOp::Script(ScriptCall::decode(reader)?),
        TAG_SET => {
            let key = key(reader)?;
            let value = value(reader)?;
            let condition = match tag(reader, "set condition", 2)? {
                0 => SetCondition::Always,
                1 => SetCondition::IfAbsent,
                _ => SetCondition::IfPresent,
            };
            let ttl = match tag(reader, "set ttl", TTL_TAG_AFTER)? {
                0 => SetTtl::Clear,
                1 => SetTtl::Keep,
                TTL_TAG_AT => SetTtl::At(reader.varint("expire time")?),
                _ => SetTtl::After(reader.varint("expire span")?),
            };
            let get = tag(reader, "set get flag", 1)? == 1;
            WriteOp::Set { key, value, condition, ttl, get }
        }
        TAG_SETNX => WriteOp::SetNx { key: key(reader)?, value: value(reader)? },
        TAG_GETDEL => WriteOp::GetDel { key: key(reader)? },
        TAG_GETEX => {
            let key = key(reader)?;
            let ttl = match tag(reader, "getex ttl", TTL_TAG_AFTER)? {
                0 => GetExTtl::Unchanged,
                1 => GetExTtl::Persist,
                TTL_TAG_AT => GetExTtl::At(reader.varint("expire time")?),
                _ => GetExTtl::After(reader.varint("expire span")?),
            };
            WriteOp::GetEx { key, ttl }
        }
        TAG_MSET => WriteOp::MSet { pairs: pairs(reader)? },
        TAG_MSETNX => WriteOp::MSetNx { pairs: pairs(reader)? },
        TAG_RENAME => WriteOp::Rename {
            from: key(reader)?,
            to: key(reader)?,
            if_new: tag(reader, "renamenx flag", 1)? == 1,
        },
        TAG_COPY => WriteOp::Copy {
            from: key(reader)?,
            to: key(reader)?,
            replace: tag(reader, "copy replace flag", 1)? == 1,
        },
        TAG_DEL => WriteOp::Del { keys: keys(reader)? },
        TAG_REMOVE_EXPIRED => WriteOp::RemoveExpired { keys: keys(reader)? },
        TAG_INCRBY => WriteOp::IncrBy { key: key(reader)?, delta: reader.signed("delta")? },
        TAG_INCRBYFLOAT => {
            let key = key(reader)?;
            let bits = reader.take(8, "float delta")?;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(bits);
            WriteOp::IncrByFloat { key, delta: f64::from_bits(u64::from_le_bytes(raw)) }
        }
        TAG_APPEND => WriteOp::Append { key: key(reader)?, value: value(reader)? },
        TAG_SETRANGE => {
            WriteOp::SetRange { key: key(reader)?, offset: reader.varint("offset")?, value: value(reader)? }
        }
        TAG_EXPIRE | TAG_EXPIRE_AFTER => {
            let key = key(reader)?;
            let ms = reader.signed("expire time")?;
            let when = if op_tag == TAG_EXPIRE { ExpireTime::At(ms) } else { ExpireTime::After(ms) };
            let condition = match tag(reader, "expire condition", 6)? {
                0 => ExpireCondition::Always,
                1 => ExpireCondition::IfNoTtl,
                2 => ExpireCondition::IfTtl,
                3 => ExpireCondition::IfLater,
                4 => ExpireCondition::IfEarlier,
                5 => ExpireCondition::IfTtlAndLater,
                _ => ExpireCondition::IfTtlAndEarlier,
            };
            WriteOp::Expire { key, when, condition }
        }
        TAG_PERSIST => WriteOp::Persist { key: key(reader)? },
        TAG_FLUSHALL => WriteOp::FlushAll,
        TAG_COLLECTION => WriteOp::Collection(CollectionWrite::decode(reader)?),
        TAG_MEMCACHED => WriteOp::Memcached(McWrite::decode(reader)?),
        TAG_EXPORT => {
            let key = key(reader)?;
            let then = match tag(reader, "export flag", 1)? {
                0 => None,
                _ => Some(Box::new(decode_wrapped_op(reader)?)),
            };
            WriteOp::Export { key, then }
        }
        TAG_IMPORTED => {
            let count = reader.count("import count", BATCH_KEYS_MAX)?;
            // Each import takes at least two bytes.
            let mut imports = Vec::with_capacity((count as usize).min(reader.remaining() / 2));
            for _ in 0..count {
                let key = key(reader)?;
                let value = match tag(reader, "import flag", 1)? {
                    0 => None,
                    _ => Some(reader.bytes("imported value", crate::limits::COMMAND_BYTES_MAX as u64)?),
                };
                imports.push((key, value));
            }
            let expect_offset = reader.offset();
            let expect_tag = reader.u8("import expectation")?;
            let expect = Expect::from_tag(expect_tag).ok_or(KvDecodeError::InvalidTag {
                field: "import expectation",
                tag: expect_tag,
                offset: expect_offset,
            })?;
            WriteOp::Imported { imports, op: Box::new(decode_wrapped_op(reader)?), expect }
        }
        other => return Err(KvDecodeError::InvalidTag { field: "operation", tag: other, offset }),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> + Clone {
        proptest::collection::vec(any::<u8>(), 0..12)
    }

    fn op() -> impl Strategy<Value = WriteOp> {
        let condition = prop_oneof![
            Just(SetCondition::Always),
            Just(SetCondition::IfAbsent),
            Just(SetCondition::IfPresent)
        ];
        let ttl = prop_oneof![
            Just(SetTtl::Clear),
            Just(SetTtl::Keep),
            any::<u64>().prop_map(SetTtl::At),
            any::<u64>().prop_map(SetTtl::After)
        ];
        let getex = prop_oneof![
            Just(GetExTtl::Unchanged),
            Just(GetExTtl::Persist),
            any::<u64>().prop_map(GetExTtl::At),
            any::<u64>().prop_map(GetExTtl::After)
        ];
        let when =
            prop_oneof![any::<i64>().prop_map(ExpireTime::At), any::<i64>().prop_map(ExpireTime::After)];
        let expire_condition = (0u8..7).prop_map(|t| match t {
            0 => ExpireCondition::Always,
            1 => ExpireCondition::IfNoTtl,
            2 => ExpireCondition::IfTtl,
            3 => ExpireCondition::IfLater,
            4 => ExpireCondition::IfEarlier,
            5 => ExpireCondition::IfTtlAndLater,
            _ => ExpireCondition::IfTtlAndEarlier,
        });
        let pairs = proptest::collection::vec((bytes(), bytes()), 0..4);
        let keys = proptest::collection::vec(bytes(), 0..4);
        prop_oneof![
            (bytes(), bytes(), condition, ttl, any::<bool>()).prop_map(
                |(key, value, condition, ttl, get)| { WriteOp::Set { key, value, condition, ttl, get } }
            ),
            (bytes(), bytes()).prop_map(|(key, value)| WriteOp::SetNx { key, value }),
            bytes().prop_map(|key| WriteOp::GetDel { key }),
            (bytes(), getex).prop_map(|(key, ttl)| WriteOp::GetEx { key, ttl }),
            pairs.clone().prop_map(|pairs| WriteOp::MSet { pairs }),
            pairs.prop_map(|pairs| WriteOp::MSetNx { pairs }),
            keys.clone().prop_map(|keys| WriteOp::Del { keys }),
            keys.prop_map(|keys| WriteOp::RemoveExpired { keys }),
            (bytes(), any::<i64>()).prop_map(|(key, delta)| WriteOp::IncrBy { key, delta }),
            (bytes(), -1e300f64..1e300).prop_map(|(key, delta)| WriteOp::IncrByFloat { key, delta }),
            (bytes(), bytes()).prop_map(|(key, value)| WriteOp::Append { key, value }),
            (bytes(), any::<u64>(), bytes()).prop_map(|(key, offset, value)| WriteOp::SetRange {
                key,
                offset,
                value
            }),
            (bytes(), when, expire_condition).prop_map(|(key, when, condition)| WriteOp::Expire {
                key,
                when,
                condition
            }),
            bytes().prop_map(|key| WriteOp::Persist { key }),
            (bytes(), bytes(), any::<bool>()).prop_map(|(from, to, if_new)| WriteOp::Rename {
                from,
                to,
                if_new
            }),
            (bytes(), bytes(), any::<bool>()).prop_map(|(from, to, replace)| WriteOp::Copy {
                from,
                to,
                replace
            }),
            Just(WriteOp::FlushAll),
        ]
    }

    fn read() -> impl Strategy<Value = KvRead> {
        let keys = proptest::collection::vec(bytes(), 0..4);
        prop_oneof![
            bytes().prop_map(|key| KvRead::Get { key }),
            keys.clone().prop_map(|keys| KvRead::MGet { keys }),
            keys.prop_map(|keys| KvRead::Exists { keys }),
            bytes().prop_map(|key| KvRead::StrLen { key }),
            (bytes(), any::<i64>(), any::<i64>()).prop_map(|(key, start, end)| KvRead::GetRange {
                key,
                start,
                end
            }),
            bytes().prop_map(|key| KvRead::Ttl { key }),
            bytes().prop_map(|key| KvRead::PTtl { key }),
            bytes().prop_map(|key| KvRead::ExpireTime { key }),
            bytes().prop_map(|key| KvRead::PExpireTime { key }),
            bytes().prop_map(|key| KvRead::Type { key }),
            bytes().prop_map(|pattern| KvRead::Keys { pattern }),
            (any::<u64>(), proptest::option::of(bytes()), any::<u64>(), proptest::option::of(bytes()))
                .prop_map(|(cursor, pattern, count, type_name)| KvRead::Scan {
                    cursor,
                    pattern,
                    count,
                    type_name
                }),
            Just(KvRead::DbSize),
            Just(KvRead::Expires),
            Just(KvRead::RandomKey),
            proptest::collection::vec(bytes(), 0..4).prop_map(|keys| KvRead::Versions { keys }),
            any::<u64>().prop_map(|min_age_ms| KvRead::TxnLocks { min_age_ms }),
        ]
    }

    /// Any top-level operation: a plain one, or a transaction of plain ones and reads.
    fn entry_op() -> impl Strategy<Value = WriteOp> {
        let step = prop_oneof![op().prop_map(TxnStep::Write), read().prop_map(TxnStep::Read)];
        let transaction =
            (proptest::collection::vec(step, 0..5), proptest::collection::vec((bytes(), any::<u64>()), 0..3))
                .prop_map(|(steps, watched)| WriteOp::Transaction {
                    steps,
                    watched: watched.into_iter().map(|(key, version)| WatchedKey { key, version }).collect(),
                });
        let attempt = (any::<u64>(), proptest::option::of(op()))
            .prop_map(|(id, op)| WriteOp::Attempt { id, op: op.map(Box::new) });
        prop_oneof![op(), transaction, attempt]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(now_ms in any::<u64>(), op in entry_op()) {
            let write = KvWrite { now_ms, op };
            prop_assert_eq!(KvWrite::decode(&write.encode()), Ok(write));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = KvWrite::decode(&input);
        }

        #[test]
        fn every_strict_prefix_is_an_error(now_ms in any::<u64>(), op in entry_op()) {
            let encoded = KvWrite { now_ms, op }.encode();
            for len in 0..encoded.len() {
                prop_assert!(KvWrite::decode(&encoded[..len]).is_err());
            }
        }
    }

    #[test]
    fn unknown_version_and_tag_are_reported() {
        assert_eq!(KvWrite::decode(&[9, 0, 1]), Err(KvDecodeError::UnsupportedVersion { version: 9 }));
        assert_eq!(
            KvWrite::decode(&[1, 0, 200]),
            Err(KvDecodeError::InvalidTag { field: "operation", tag: 200, offset: 2 })
        );
        let mut trailing = KvWrite { now_ms: 5, op: WriteOp::FlushAll }.encode();
        trailing.push(0);
        assert_eq!(KvWrite::decode(&trailing), Err(KvDecodeError::TrailingBytes { count: 1 }));
        assert!(matches!(KvWrite::decode(&[ENCODING_VERSION, 0, 0]), Err(KvDecodeError::Truncated { .. })));
    }

    #[test]
    fn the_leader_stamps_the_entry_time_in_place() {
        let op = WriteOp::Set {
            key: b"k".to_vec(),
            value: vec![b'v'; 300],
            condition: SetCondition::IfAbsent,
            ttl: SetTtl::After(5_000),
            get: false,
        };
        let mut encoded = KvWrite { now_ms: 0, op: op.clone() }.encode();
        let len = encoded.len();
        assert!(KvWrite::stamp(&mut encoded, 1_700_000_000_123));
        assert_eq!(encoded.len(), len, "stamping writes in place");
        assert_eq!(KvWrite::stamped_time(&encoded), Some(1_700_000_000_123));
        assert_eq!(KvWrite::decode(&encoded), Ok(KvWrite { now_ms: 1_700_000_000_123, op }));
        assert!(!KvWrite::stamp(&mut [ENCODING_VERSION, 0, 0], 7), "too short to hold a time");
        assert_eq!(KvWrite::stamped_time(&[ENCODING_VERSION, 0]), None);
    }

    #[test]
    fn entries_of_the_varint_time_encoding_are_still_read() {
        // Version 1: SET k v EX-resolved to absolute 9000, stamped 1234 by the node reached.
        let mut v1 = vec![ENCODING_VERSION_VARINT_TIME];
        put_varint(&mut v1, 1234);
        v1.extend_from_slice(&[TAG_SET, 1, b'k', 1, b'v', 0, TTL_TAG_AT]);
        put_varint(&mut v1, 9000);
        v1.push(0);
        let expected = WriteOp::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            condition: SetCondition::Always,
            ttl: SetTtl::At(9000),
            get: false,
        };
        assert_eq!(KvWrite::decode(&v1), Ok(KvWrite { now_ms: 1234, op: expected }));
        assert_eq!(KvWrite::stamped_time(&v1), Some(1234));
        assert!(!KvWrite::stamp(&mut v1, 5), "a version 1 entry has no room for a stamp");
        let mut expire = vec![ENCODING_VERSION_VARINT_TIME, 0, TAG_EXPIRE, 1, b'k'];
        put_signed(&mut expire, -5);
        expire.push(0);
        let when = ExpireTime::At(-5);
        let op = WriteOp::Expire { key: b"k".to_vec(), when, condition: ExpireCondition::Always };
        assert_eq!(KvWrite::decode(&expire).map(|w| w.op), Ok(op));
    }

    #[test]
    fn relative_expiry_is_resolved_against_the_entry_time_and_saturates() {
        assert_eq!(ExpireTime::After(-1_000).at_ms(5_000), 4_000);
        assert_eq!(ExpireTime::At(42).at_ms(5_000), 42);
        assert_eq!(ExpireTime::After(i64::MAX).at_ms(u64::MAX), i64::MAX);
    }

    #[test]
    fn transactions_do_not_nest_and_their_step_count_is_bounded() {
        let inner = WriteOp::Transaction { steps: vec![TxnStep::Read(KvRead::DbSize)], watched: Vec::new() };
        let mut nested = vec![ENCODING_VERSION_VARINT_TIME, 0, TAG_TRANSACTION, 1, 1];
        encode_op(&inner, &mut nested);
        assert_eq!(
            KvWrite::decode(&nested),
            Err(KvDecodeError::InvalidTag { field: "operation", tag: TAG_TRANSACTION, offset: 5 })
        );
        let mut huge = vec![ENCODING_VERSION_VARINT_TIME, 0, TAG_TRANSACTION];
        put_varint(&mut huge, crate::kv::TXN_STEPS_MAX + 1);
        assert!(matches!(KvWrite::decode(&huge), Err(KvDecodeError::TooLarge { .. })));
        let bad_kind = [ENCODING_VERSION_VARINT_TIME, 0, TAG_TRANSACTION, 1, 9];
        assert!(matches!(KvWrite::decode(&bad_kind), Err(KvDecodeError::InvalidTag { tag: 9, .. })));
    }

    #[test]
    fn attempts_wrap_one_plain_operation_at_the_top_level_only() {
        let attempt = |op: WriteOp| WriteOp::Attempt { id: 7, op: Some(Box::new(op)) };
        let persist = attempt(WriteOp::Persist { key: b"p".to_vec() });
        assert_eq!(persist.keys(), vec![&b"p"[..]]);
        assert!(WriteOp::Attempt { id: 8, op: None }.keys().is_empty());
        for nested in [
            attempt(persist.clone()),
            attempt(WriteOp::Transaction { steps: Vec::new(), watched: Vec::new() }),
        ] {
            let encoded = KvWrite::unstamped(nested).encode();
            assert!(matches!(
                KvWrite::decode(&encoded),
                Err(KvDecodeError::InvalidTag { field: "operation", .. })
            ));
        }
        let in_transaction =
            WriteOp::Transaction { steps: vec![TxnStep::Write(persist)], watched: Vec::new() };
        assert!(KvWrite::decode(&KvWrite::unstamped(in_transaction).encode()).is_err());
    }

    #[test]
    fn keys_cover_every_key_of_the_operation() {
        let op =
            WriteOp::MSet { pairs: vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())] };
        assert_eq!(op.keys(), vec![&b"a"[..], &b"b"[..]]);
        assert!(WriteOp::FlushAll.keys().is_empty());
        let txn = WriteOp::Transaction {
            steps: vec![
                TxnStep::Write(WriteOp::Persist { key: b"p".to_vec() }),
                TxnStep::Read(KvRead::MGet { keys: vec![b"x".to_vec(), b"y".to_vec()] }),
            ],
            watched: vec![WatchedKey { key: b"w".to_vec(), version: 3 }],
        };
        assert_eq!(txn.keys(), vec![&b"p"[..], &b"x"[..], &b"y"[..], &b"w"[..]]);
        assert_eq!(KvRead::Exists { keys: vec![b"k".to_vec(), b"k".to_vec()] }.keys().len(), 2);
    }
}
