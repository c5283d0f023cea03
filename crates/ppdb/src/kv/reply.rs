//! The typed answer of the state machine to a write or a read.
//!
//! A [`Reply`] says what Redis would answer, without choosing a wire encoding: the server turns it
//! into a RESP2 or RESP3 frame (`server::resp::reply`). Errors are those applying a command can
//! produce (argument errors are found before, by the parser); their texts are Redis 7's, word
//! for word.

use std::fmt;

use super::types::Score;

/// What one reply element costs beyond its bytes, as [`Reply::bytes`] counts it: about the
/// memory of a [`Reply`] itself, so that a million empty elements count as well as a million
/// bytes do. A fixed number, not `size_of`, so every replica counts alike.
pub const REPLY_ELEMENT_BYTES: u64 = 32;

/// The answer to one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string such as `string` or `none` (TYPE).
    Status(&'static str),
    /// The null reply (`$-1` in RESP2, `_` in RESP3): a missing key or an unmet condition.
    Nil,
    /// An integer.
    Integer(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// An array of replies (MGET, KEYS).
    Array(Vec<Reply>),
    /// Pairs: a map in RESP3, a flat array in RESP2 (HGETALL).
    Map(Vec<(Reply, Reply)>),
    /// Distinct members: a set in RESP3, an array in RESP2 (SMEMBERS).
    Set(Vec<Reply>),
    /// A float: a double in RESP3, a bulk string in RESP2 (ZSCORE); never NaN.
    Double(Score),
    /// The null array (`*-1` in RESP2, `_` in RESP3): BLPOP's timeout, LMPOP with nothing.
    NilArray,
    /// A SCAN page: the next cursor (0 when done) and the keys found.
    Scan {
        /// Cursor to pass to the next SCAN; 0 means the iteration is complete.
        cursor: u64,
        /// Keys of this page.
        keys: Vec<Vec<u8>>,
    },
    /// An error; the state is unchanged.
    Error(KvError),
    /// Pairs that may repeat: an array of two-element arrays in RESP3, a flat array in RESP2
    /// (ZRANGE ... WITHSCORES, HRANDFIELD WITHVALUES).
    Pairs(Vec<(Reply, Reply)>),
    /// A simple string of any text: a script's status reply (`{ok=...}`).
    StatusText(String),
    /// An error of any text, its code first: a script's error reply; like every error, it
    /// answers a command that changed nothing, or a script's failure after its earlier writes.
    ErrorText(String),
    /// The operation did nothing because a key it touches is locked by a cross-shard
    /// transaction that has prepared on this shard (see `crate::txn`): the caller waits for
    /// the lock to go, or resolves its transaction, and tries again. Never sent to a client.
    Locked(LockHolder),
}

/// The transaction holding a lock, as a refused operation learns it (see [`Reply::Locked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The transaction's id (`crate::txn::TxnId`).
    pub txn: u128,
    /// The transaction's shards, its primary (the shard holding its record) first.
    pub participants: Vec<u64>,
    /// How long the lock has been held, by the shard's time, in milliseconds.
    pub age_ms: u64,
}

/// An error produced by applying an operation; the text is Redis 7's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvError {
    /// The stored value (or argument) is not a 64-bit integer.
    NotInteger,
    /// INCR/DECR family result out of the 64-bit range.
    IncrOverflow,
    /// The stored value is not a valid float (INCRBYFLOAT).
    NotFloat,
    /// INCRBYFLOAT produced NaN or an infinity.
    NanOrInfinity,
    /// APPEND or SETRANGE would make the value larger than `proto-max-bulk-len`
    /// ([`crate::limits::VALUE_BYTES_MAX`]).
    StringTooLong,
    /// RENAME or RENAMENX of a key that does not exist.
    NoSuchKey,
    /// A command for one type on a key holding another.
    WrongType,
    /// OBJECT FREQ without an LFU eviction policy (PPDB has none).
    LfuNotSelected,
    /// A MULTI/EXEC step whose reply would take the transaction's replies past
    /// [`super::multi::TXN_REPLY_BYTES_MAX`] (a write step still took effect).
    TxnReplyTooLarge,
    /// LSET of an index the list does not have.
    IndexOutOfRange,
    /// HINCRBY on a field whose value is not a 64-bit integer.
    HashValueNotInteger,
    /// HINCRBYFLOAT on a field whose value is not a float.
    HashValueNotFloat,
    /// An option is unknown or misplaced, found only once the key was looked up (SSCAN).
    Syntax,
    /// A reply PPDB will not build, larger than [`crate::limits::REPLY_BYTES_MAX`] (SRANDMEMBER
    /// with a large negative count).
    ReplyTooLarge,
    /// ZADD INCR or ZINCRBY made a score NaN (`inf` plus `-inf`).
    ScoreNotANumber,
}

impl KvError {
    /// The error as Redis sends it, without the leading `-`.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotInteger => "ERR value is not an integer or out of range",
            Self::IncrOverflow => "ERR increment or decrement would overflow",
            Self::NotFloat => "ERR value is not a valid float",
            Self::NanOrInfinity => "ERR increment would produce NaN or Infinity",
            Self::StringTooLong => "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            Self::NoSuchKey => "ERR no such key",
            Self::WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value",
            Self::LfuNotSelected => {
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note \
                 that when switching between policies at runtime LRU and LFU data will take some time to adjust."
            }
            Self::TxnReplyTooLarge => "ERR transaction reply exceeds maximum allowed size",
            Self::IndexOutOfRange => "ERR index out of range",
            Self::HashValueNotInteger => "ERR hash value is not an integer",
            Self::HashValueNotFloat => "ERR hash value is not a float",
            Self::Syntax => "ERR syntax error",
            Self::ReplyTooLarge => "ERR reply exceeds maximum allowed size",
            Self::ScoreNotANumber => "ERR resulting score is not a number (NaN)",
        }
    }
}

impl KvError {
    /// Every error, at the index [`KvError::wire_tag`] gives it: how errors travel between
    /// nodes. Never reorder; add new errors at the end.
    const ALL: [KvError; 15] = [
        KvError::NotInteger,
        KvError::IncrOverflow,
        KvError::NotFloat,
        KvError::NanOrInfinity,
        KvError::StringTooLong,
        KvError::NoSuchKey,
        KvError::TxnReplyTooLarge,
        KvError::WrongType,
        KvError::LfuNotSelected,
        KvError::IndexOutOfRange,
        KvError::Syntax,
        KvError::ReplyTooLarge,
        KvError::HashValueNotInteger,
        KvError::HashValueNotFloat,
        KvError::ScoreNotANumber,
    ];

    /// The error's tag on the wire between nodes: exhaustive, so a new error cannot travel as
    /// another.
    pub fn wire_tag(self) -> u8 {
        match self {
            Self::NotInteger => 0,
            Self::IncrOverflow => 1,
            Self::NotFloat => 2,
            Self::NanOrInfinity => 3,
            Self::StringTooLong => 4,
            Self::NoSuchKey => 5,
            Self::TxnReplyTooLarge => 6,
            Self::WrongType => 7,
            Self::LfuNotSelected => 8,
            Self::IndexOutOfRange => 9,
            Self::Syntax => 10,
            Self::ReplyTooLarge => 11,
            Self::HashValueNotInteger => 12,
            Self::HashValueNotFloat => 13,
            Self::ScoreNotANumber => 14,
        }
    }

    /// The error with wire tag `tag`, if there is one.
    pub fn from_wire_tag(tag: u8) -> Option<KvError> {
        Self::ALL.get(usize::from(tag)).copied()
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for KvError {}

impl LockHolder {
    /// The error a client would see if a lock were never waited out: Redis Cluster's
    /// `TRYAGAIN`, for a multi-key operation that cannot run at the moment.
    pub fn message(&self) -> String {
        format!(
            "TRYAGAIN a key is locked by cross-shard transaction {:032x} (held {} ms)",
            self.txn, self.age_ms
        )
    }
}

impl Reply {
    /// A bulk reply holding `value`, or [`Reply::Nil`] when absent.
    pub fn bulk_or_nil(value: Option<&[u8]>) -> Self {
        value.map_or(Reply::Nil, |v| Reply::Bulk(v.to_vec()))
    }

    /// The memory the reply holds, as the transaction reply limit counts it: its bulk bytes
    /// plus [`REPLY_ELEMENT_BYTES`] per element, itself included.
    pub fn bytes(&self) -> u64 {
        let content = match self {
            Reply::Bulk(bytes) => bytes.len() as u64,
            Reply::Array(items) | Reply::Set(items) => items.iter().map(Reply::bytes).sum(),
            Reply::Map(pairs) | Reply::Pairs(pairs) => {
                pairs.iter().map(|(key, value)| key.bytes() + value.bytes()).sum()
            }
            Reply::Scan { keys, .. } => keys.iter().map(|key| REPLY_ELEMENT_BYTES + key.len() as u64).sum(),
            Reply::StatusText(text) | Reply::ErrorText(text) => text.len() as u64,
            Reply::Locked(holder) => 8 * holder.participants.len() as u64,
            Reply::Ok
            | Reply::Status(_)
            | Reply::Nil
            | Reply::NilArray
            | Reply::Integer(_)
            | Reply::Double(_)
            | Reply::Error(_) => 0,
        };
        REPLY_ELEMENT_BYTES + content
    }

    /// Whether this reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::ErrorText(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_travels_as_itself() {
        for error in KvError::ALL {
            assert_eq!(KvError::from_wire_tag(error.wire_tag()), Some(error), "{error}");
        }
        assert_eq!(KvError::from_wire_tag(KvError::ALL.len() as u8), None);
    }
}
