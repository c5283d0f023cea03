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
//! How each is encoded in the log is [`super::entry`]'s business; a single-shard MULTI/EXEC
//! ([`WriteOp::Transaction`]) is described in [`super::multi`].

use super::introspect::ObjectField;
use super::memcached::McWrite;
use super::script::ScriptCall;
use super::transfer::Expect;
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
    /// machine; the reply is an array with one element per step (see [`super::multi`]).
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
    /// A cross-shard command's source ([`super::transfer`]): answers `key`'s whole value,
    /// typed, with its expiry and flags (nil when absent), then applies `then` to `key`
    /// (RENAME's delete, SMOVE's removal, LMOVE's pop), its reply dropped.
    Export {
        /// The source key.
        key: Vec<u8>,
        /// What the command does to the source, if anything.
        then: Option<Box<WriteOp>>,
    },
    /// A cross-shard command run on its destination's shard ([`super::transfer`]), with the
    /// values of the keys other shards hold imported as their shards exported them.
    Imported {
        /// The imported keys and their exported values (none for an absent key).
        imports: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        /// The command.
        op: Box<WriteOp>,
        /// What the sources' effects assumed of its outcome.
        expect: Expect,
    },
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
            Self::Export { key, .. } => vec![key.as_slice()],
            Self::Imported { imports, op, .. } => op
                .keys()
                .into_iter()
                .filter(|key| imports.iter().all(|(imported, _)| imported != key))
                .collect(),
        }
    }
}

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

impl KvRead {
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
impl KvWrite {
    /// A write whose time the shard's leader stamps as it proposes it ([`KvWrite::stamp`]).
    pub fn unstamped(op: WriteOp) -> KvWrite {
        KvWrite { now_ms: 0, op }
    }
}
