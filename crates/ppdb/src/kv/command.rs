//! The operations of a shard's state machine: writes as they travel through the Raft log, and
//! reads as they are answered from the applied state.
//!
//! A [`KvWrite`] carries its entry's time (`now_ms`), which the shard's leader stamps into the
//! encoded entry as it proposes it ([`KvWrite::stamp`]): never the clock of the node the client
//! reached. An expiry is either absolute (EXAT, PXAT, EXPIREAT, ...) or a span after the entry's
//! time (EX, PX, EXPIRE, ...), which apply adds to that time. Either way the absolute expiry is
//! fixed by the entry the leader wrote, so applying the same entry on every replica gives the
//! same state and the same reply, whatever each replica's own clock says. Relative spans stay
//! relative in the entry, rather than being rewritten by the leader, so that stamping is a write
//! of 8 bytes at a fixed offset: the leader's loop never decodes or copies a value to stamp it.
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
//! deep only; its body is described in [`super::txn`].

use super::codec::{put_bytes, put_signed, put_varint, KvDecodeError, Reader};
use super::introspect::ObjectField;
use super::memcached::McWrite;
use super::script::ScriptCall;
use super::txn::{decode_steps, decode_watched, encode_steps, encode_watched, TxnStep, WatchedKey};
use super::types::{CollectionRead, CollectionWrite};

/// The largest string value: PPDB's `proto-max-bulk-len` ([`crate::limits::VALUE_BYTES_MAX`]).
pub const VALUE_BYTES_MAX: u64 = crate::limits::VALUE_BYTES_MAX as u64;
/// The largest key accepted in an encoded entry (keys are bulk strings too).
pub const KEY_BYTES_MAX: u64 = VALUE_BYTES_MAX;
/// The most keys (or key-value pairs) a single encoded operation may carry
/// ([`crate::limits::REQUEST_KEYS_MAX`]).
pub const BATCH_KEYS_MAX: u64 = crate::limits::REQUEST_KEYS_MAX as u64;

/// Key-value pairs of MSET and MSETNX.
pub type KeyValuePairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Version byte of the entry encoding written by this build.
const ENCODING_VERSION: u8 = 2;
/// Version byte of the encoding with a varint time and absolute expiries only, still read.
const ENCODING_VERSION_VARINT_TIME: u8 = 1;
/// Where the entry time sits in a version 2 entry, and its width.
const STAMP_OFFSET: usize = 1;
const STAMP_BYTES: usize = 8;

/// A write as it is stored in the Raft log: the operation and the entry's time.
#[derive(Debug, Clone, PartialEq)]
pub struct KvWrite {
    /// The entry's time in milliseconds since the Unix epoch, stamped by the leader that
    /// proposes it (0 until then): replicas judge expiry by it. Never decreases along the log.
    pub now_ms: u64,
    /// The operation.
    pub op: WriteOp,
}

/// Which precondition a SET checks before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Always write.
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if the key exists.
    IfPresent,
}

/// What a SET does to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTtl {
    /// Remove any expiry (plain SET).
    Clear,
    /// KEEPTTL: keep the existing expiry.
    Keep,
    /// Expire at this absolute time (ms since the Unix epoch).
    At(u64),
    /// Expire this many milliseconds after the entry's time (EX, PX, SETEX).
    After(u64),
}

/// What GETEX does to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetExTtl {
    /// No option: leave it.
    Unchanged,
    /// PERSIST: remove the expiry.
    Persist,
    /// Expire at this absolute time (ms since the Unix epoch); a past time deletes the key.
    At(u64),
    /// Expire this many milliseconds after the entry's time (EX, PX).
    After(u64),
}

/// When an EXPIRE-family command makes a key expire; at or before the entry's time deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireTime {
    /// At this absolute time, ms since the Unix epoch (EXPIREAT, PEXPIREAT; may be negative).
    At(i64),
    /// This many milliseconds after the entry's time (EXPIRE, PEXPIRE; may be negative).
    After(i64),
}

impl ExpireTime {
    /// The absolute time, for an entry of time `now_ms`. Saturates rather than overflows: the
    /// command was checked for Redis's "invalid expire time" before it was proposed.
    pub fn at_ms(self, now_ms: u64) -> i64 {
        match self {
            Self::At(at) => at,
            Self::After(span) => i64::try_from(now_ms).unwrap_or(i64::MAX).saturating_add(span),
        }
    }
}

/// The NX/XX/GT/LT option of the EXPIRE family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireCondition {
    /// No option.
    Always,
    /// NX: only if the key has no expiry.
    IfNoTtl,
    /// XX: only if the key has an expiry.
    IfTtl,
    /// GT: only if the new expiry is later (no expiry counts as infinite).
    IfLater,
    /// LT: only if the new expiry is earlier (no expiry counts as infinite).
    IfEarlier,
    /// XX and GT together.
    IfTtlAndLater,
    /// XX and LT together.
    IfTtlAndEarlier,
}

/// A write operation on one shard's key space.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// SET, SETEX, PSETEX and GETSET. `get` makes the reply the old value.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
        /// NX / XX.
        condition: SetCondition,
        /// Expiry handling.
        ttl: SetTtl,
        /// Reply with the old value instead of OK.
        get: bool,
    },
    /// SETNX: set if absent, reply 1 or 0.
    SetNx {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// GETDEL.
    GetDel {
        /// The key.
        key: Vec<u8>,
    },
    /// GETEX.
    GetEx {
        /// The key.
        key: Vec<u8>,
        /// Expiry change.
        ttl: GetExTtl,
    },
    /// MSET: set every pair, clearing their expiries.
    MSet {
        /// Key-value pairs, applied in order.
        pairs: KeyValuePairs,
    },
    /// MSETNX: set every pair only if none of the keys exists.
    MSetNx {
        /// Key-value pairs.
        pairs: KeyValuePairs,
    },
    /// RENAME and RENAMENX: move a key's value and expiry to another name (both in one shard).
    Rename {
        /// The key to move; an error if it does not exist.
        from: Vec<u8>,
        /// The new name; an existing key there is replaced (RENAME) or kept (RENAMENX).
        to: Vec<u8>,
        /// RENAMENX: only if `to` does not exist.
        if_new: bool,
    },
    /// COPY: a copy of a key's value and expiry under another name (both in one shard).
    Copy {
        /// The key to copy.
        from: Vec<u8>,
        /// The copy's name.
        to: Vec<u8>,
        /// REPLACE: overwrite `to` if it exists (otherwise nothing is copied).
        replace: bool,
    },
    /// DEL and UNLINK.
    Del {
        /// Keys to delete; duplicates count once.
        keys: Vec<Vec<u8>>,
    },
    /// INCR, INCRBY, DECR, DECRBY (DECRBY n is sent as INCRBY -n).
    IncrBy {
        /// The key.
        key: Vec<u8>,
        /// The signed increment.
        delta: i64,
    },
    /// INCRBYFLOAT.
    IncrByFloat {
        /// The key.
        key: Vec<u8>,
        /// The increment (finite).
        delta: f64,
    },
    /// APPEND.
    Append {
        /// The key.
        key: Vec<u8>,
        /// Bytes to append.
        value: Vec<u8>,
    },
    /// SETRANGE.
    SetRange {
        /// The key.
        key: Vec<u8>,
        /// Byte offset where `value` is written.
        offset: u64,
        /// Bytes to write.
        value: Vec<u8>,
    },
    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT.
    Expire {
        /// The key.
        key: Vec<u8>,
        /// When it expires; at or before the entry's time deletes the key.
        when: ExpireTime,
        /// NX / XX / GT / LT.
        condition: ExpireCondition,
    },
    /// PERSIST.
    Persist {
        /// The key.
        key: Vec<u8>,
    },
    /// FLUSHALL and FLUSHDB.
    FlushAll,
    /// MULTI/EXEC on one shard: every step applied in order, in one step of the state
    /// machine; the reply is an array with one element per step (see [`super::txn`]).
    Transaction {
        /// The commands, in client order; none is itself a transaction.
        steps: Vec<TxnStep>,
        /// WATCH: the keys the client watched and the versions it saw. If any key's version
        /// differs when the entry applies, no step runs and EXEC answers a null array.
        watched: Vec<WatchedKey>,
    },
    /// A hash, list, set or sorted-set command (see [`super::types`]).
    Collection(CollectionWrite),
    /// A memcached item command (see [`super::memcached`]).
    Memcached(McWrite),
    /// Removal of keys the leader found expired ([`super::KvStore::expired_keys`]). Keys that
    /// are no longer expired at the entry's `now_ms` (rewritten since) are kept.
    RemoveExpired {
        /// Candidate keys.
        keys: Vec<Vec<u8>>,
    },
    /// One try of a blocked client's pop (BLPOP, BLMOVE, ...): `op` applied as itself, or
    /// nothing at all (`None`: a fence). `id` lets the node hosting the client recognise the
    /// entry when its own replica applies it, whichever leader committed it, so the pop's
    /// outcome is learnt even when the leader's answer is lost (see `server::blocking`).
    Attempt {
        /// Chosen at random by the node hosting the client.
        id: u64,
        /// The non-blocking pop, or none for a fence.
        op: Option<Box<WriteOp>>,
    },
    /// EVAL and its kin: a Lua script run atomically as this one entry (see [`super::script`];
    /// the shard runs it, the key space only carries it).
    Script(ScriptCall),
}

/// A read query, answered from applied state at a given time.
#[derive(Debug, Clone, PartialEq)]
pub enum KvRead {
    /// GET.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// MGET.
    MGet {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// EXISTS (duplicates count each time).
    Exists {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// STRLEN.
    StrLen {
        /// The key.
        key: Vec<u8>,
    },
    /// GETRANGE (SUBSTR).
    GetRange {
        /// The key.
        key: Vec<u8>,
        /// First byte, negative counts from the end.
        start: i64,
        /// Last byte (inclusive), negative counts from the end.
        end: i64,
    },
    /// TTL (seconds, rounded).
    Ttl {
        /// The key.
        key: Vec<u8>,
    },
    /// PTTL (milliseconds).
    PTtl {
        /// The key.
        key: Vec<u8>,
    },
    /// EXPIRETIME: the absolute expiry, in seconds since the Unix epoch.
    ExpireTime {
        /// The key.
        key: Vec<u8>,
    },
    /// PEXPIRETIME: the absolute expiry, in milliseconds since the Unix epoch.
    PExpireTime {
        /// The key.
        key: Vec<u8>,
    },
    /// TYPE.
    Type {
        /// The key.
        key: Vec<u8>,
    },
    /// KEYS pattern.
    Keys {
        /// Redis glob pattern.
        pattern: Vec<u8>,
    },
    /// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
    Scan {
        /// Cursor from the previous call, 0 to start. See [`super::scan`].
        cursor: u64,
        /// MATCH pattern.
        pattern: Option<Vec<u8>>,
        /// COUNT hint: how many keys to visit (at least 1).
        count: u64,
        /// TYPE filter.
        type_name: Option<Vec<u8>>,
    },
    /// DBSIZE.
    DbSize,
    /// INFO keyspace's `expires`: how many live keys have an expiry.
    Expires,
    /// RANDOMKEY.
    RandomKey,
    /// A hash, list, set or sorted-set query (see [`super::types`]).
    Collection(CollectionRead),
    /// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key.
    Object {
        /// The key.
        key: Vec<u8>,
        /// What is asked.
        field: ObjectField,
    },
    /// MEMORY USAGE key.
    MemoryUsage {
        /// The key.
        key: Vec<u8>,
    },
    /// memcached's get: the item's data, flags, cas unique and time to live
    /// ([`super::memcached::McItem`]), or nil.
    McGet {
        /// The key.
        key: Vec<u8>,
    },
    /// WATCH: each key's version as [`super::KvStore::live_version`] gives it (0 when absent).
    Versions {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// The cross-shard transactions whose locks on the shard are at least `min_age_ms` old,
    /// for their resolution: answered by the shard's transaction participant (`crate::txn`)
    /// as an array of [`super::Reply::Locked`]; the key space alone holds no locks.
    TxnLocks {
        /// Youngest lock age reported, in the shard's milliseconds.
        min_age_ms: u64,
    },
}

impl WriteOp {
    /// The keys this write touches, for routing to shards.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Set { key, .. }
            | Self::SetNx { key, .. }
            | Self::GetDel { key }
            | Self::GetEx { key, .. }
            | Self::IncrBy { key, .. }
            | Self::IncrByFloat { key, .. }
            | Self::Append { key, .. }
            | Self::SetRange { key, .. }
            | Self::Expire { key, .. }
            | Self::Persist { key } => vec![key.as_slice()],
            Self::MSet { pairs } | Self::MSetNx { pairs } => {
                pairs.iter().map(|(k, _)| k.as_slice()).collect()
            }
            Self::Rename { from, to, .. } | Self::Copy { from, to, .. } => {
                vec![from.as_slice(), to.as_slice()]
            }
            Self::Del { keys } | Self::RemoveExpired { keys } => keys.iter().map(Vec::as_slice).collect(),
            Self::Transaction { steps, watched } => {
                let watched = watched.iter().map(|watched| watched.key.as_slice());
                steps.iter().flat_map(TxnStep::keys).chain(watched).collect()
            }
            Self::Collection(op) => op.keys(),
            Self::Memcached(op) => op.key().into_iter().collect(),
            Self::FlushAll => Vec::new(),
            Self::Attempt { op, .. } => op.as_deref().map_or_else(Vec::new, WriteOp::keys),
            Self::Script(call) => call.keys.iter().map(Vec::as_slice).collect(),
        }
    }
}

impl KvRead {
    /// Encodes the read as a transaction step holds it (see [`super::txn`]), for a node that
    /// forwards it to the shard's leader.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        super::txn::encode_read(self, &mut out);
        out
    }

    /// Decodes a read produced by [`KvRead::encode`]; never panics, bounded allocation.
    pub fn decode(input: &[u8]) -> Result<Self, KvDecodeError> {
        let mut reader = Reader::new(input);
        let read = super::txn::decode_read(&mut reader)?;
        reader.finish()?;
        Ok(read)
    }

    /// The keys this read touches, for routing to shards (empty for whole-keyspace reads).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Get { key }
            | Self::StrLen { key }
            | Self::GetRange { key, .. }
            | Self::Ttl { key }
            | Self::PTtl { key }
            | Self::ExpireTime { key }
            | Self::PExpireTime { key }
            | Self::Type { key }
            | Self::Object { key, .. }
            | Self::MemoryUsage { key }
            | Self::McGet { key } => vec![key.as_slice()],
            Self::MGet { keys } | Self::Exists { keys } | Self::Versions { keys } => {
                keys.iter().map(Vec::as_slice).collect()
            }
            Self::Keys { .. }
            | Self::Scan { .. }
            | Self::DbSize
            | Self::Expires
            | Self::RandomKey
            | Self::TxnLocks { .. } => Vec::new(),
            Self::Collection(query) => query.keys(),
        }
    }
}

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
/// A transaction with watched keys: their versions, then the steps (see [`super::txn`]).
const TAG_WATCHED_TRANSACTION: u8 = 23;
/// A script call: its body, keys and arguments (see [`super::script`]); top level only.
const TAG_SCRIPT: u8 = 24;
// SET and GETEX time-to-live tags: 0 clear/unchanged, 1 keep/persist, 2 absolute, 3 relative.
const TTL_TAG_AT: u8 = 2;
const TTL_TAG_AFTER: u8 = 3;

impl KvWrite {
    /// A write whose time the shard's leader stamps as it proposes it ([`KvWrite::stamp`]).
    pub fn unstamped(op: WriteOp) -> KvWrite {
        KvWrite { now_ms: 0, op }
    }

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
        other => return Err(KvDecodeError::InvalidTag { field: "operation", tag: other, offset }),
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
