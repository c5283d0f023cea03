//! Write commands as parsed, and how their times become part of a log entry.
//!
//! Most writes need no clock and are ready [`WriteOp`]s. SET (with EX/PX/EXAT/PXAT, and SETEX,
//! PSETEX), GETEX and the EXPIRE family carry times relative to "now" or in seconds;
//! [`WriteCommand::resolve`] turns them into milliseconds, absolute or counted from the entry's
//! time, in the [`KvWrite`] for the log. The node the client reached does not choose that time:
//! the shard's leader stamps it as it proposes the entry, so every replica applies the same
//! thing whichever node took the command. Overflow checks follow Redis 7
//! (`getExpireMillisecondsOrReply`, `expireGenericCommand`) and produce the same
//! `ERR invalid expire time in '<command>' command`.

use super::error::CommandError;
use crate::kv::{ExpireCondition, ExpireTime, GetExTtl, KvWrite, SetCondition, SetTtl, WriteOp};

/// The unit of a time argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// EX, EXAT, EXPIRE, EXPIREAT, SETEX.
    Seconds,
    /// PX, PXAT, PEXPIRE, PEXPIREAT, PSETEX.
    Milliseconds,
}

/// What a time argument counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireBase {
    /// Relative to the entry's time, which the shard's leader stamps (EX, PX, EXPIRE, PEXPIRE).
    Now,
    /// Since the Unix epoch (EXAT, PXAT, EXPIREAT, PEXPIREAT).
    UnixEpoch,
}

/// A SET/GETEX expiry as given: a positive amount of `unit` from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The number as sent (validated positive when resolved).
    pub amount: i64,
    /// Seconds or milliseconds.
    pub unit: TimeUnit,
    /// Relative or absolute.
    pub base: ExpireBase,
}

/// SET and the commands Redis implements with it (SETEX, PSETEX, GETSET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCommand {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// NX / XX.
    pub condition: SetCondition,
    /// EX / PX / EXAT / PXAT.
    pub expiry: Option<Expiry>,
    /// KEEPTTL.
    pub keep_ttl: bool,
    /// GET: reply with the old value.
    pub get: bool,
    /// The command name for error messages (`set`, `setex`, `psetex`, `getset`).
    pub command: &'static str,
}

/// GETEX's option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetExOption {
    /// No option.
    None,
    /// PERSIST.
    Persist,
    /// EX / PX / EXAT / PXAT.
    Expire(Expiry),
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireCommand {
    /// The key.
    pub key: Vec<u8>,
    /// The time as sent (may be negative: the key is then deleted).
    pub when: i64,
    /// Seconds or milliseconds.
    pub unit: TimeUnit,
    /// Relative or absolute.
    pub base: ExpireBase,
    /// NX / XX / GT / LT.
    pub condition: ExpireCondition,
    /// The command name for error messages.
    pub command: &'static str,
}

/// A write command before its times are in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteCommand {
    /// A write that does not depend on the clock.
    Ready(WriteOp),
    /// SET, SETEX, PSETEX, GETSET.
    Set(SetCommand),
    /// GETEX.
    GetEx {
        /// The key.
        key: Vec<u8>,
        /// Its option.
        option: GetExOption,
    },
    /// The EXPIRE family.
    Expire(ExpireCommand),
}

impl WriteCommand {
    /// The keys this write touches, for routing.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            WriteCommand::Ready(op) => op.keys(),
            WriteCommand::Set(set) => vec![set.key.as_slice()],
            WriteCommand::GetEx { key, .. } => vec![key.as_slice()],
            WriteCommand::Expire(expire) => vec![expire.key.as_slice()],
        }
    }

    /// Checks the write's times as [`WriteCommand::resolve`] does, without building its entry:
    /// a relative expiry that overflows once added to `clock_ms` is Redis's `invalid expire
    /// time` error, answered before the command is routed.
    pub fn check_times(&self, clock_ms: u64) -> Result<(), CommandError> {
        match self {
            WriteCommand::Ready(_)
            | WriteCommand::GetEx { option: GetExOption::None | GetExOption::Persist, .. } => Ok(()),
            WriteCommand::Set(set) => {
                set.expiry.map_or(Ok(()), |e| expiry_ms(e, clock_ms, set.command).map(drop))
            }
            WriteCommand::GetEx { option: GetExOption::Expire(expiry), .. } => {
                expiry_ms(*expiry, clock_ms, "getex").map(drop)
            }
            WriteCommand::Expire(expire) => expire_time(expire, clock_ms).map(drop),
        }
    }

    /// The log entry for this write, its time left for the shard's leader to stamp (0 until
    /// then; relative expiries count from that time). `clock_ms`, this node's clock in ms
    /// since the Unix epoch, only checks relative expiries as Redis does: one that would
    /// overflow once added to the clock is an invalid expire time.
    pub fn resolve(&self, clock_ms: u64) -> Result<KvWrite, CommandError> {
        self.clone().into_resolved(clock_ms)
    }

    /// [`WriteCommand::resolve`], taking the command: its keys and values move into the entry
    /// rather than being copied (a script's `redis.call` resolves every write it runs).
    pub fn into_resolved(self, clock_ms: u64) -> Result<KvWrite, CommandError> {
        let op = match self {
            WriteCommand::Ready(op) => op,
            WriteCommand::Set(set) => {
                let ttl = match (set.expiry, set.keep_ttl) {
                    (Some(expiry), _) => match expiry_ms(expiry, clock_ms, set.command)? {
                        (ExpireBase::Now, ms) => SetTtl::After(ms),
                        (ExpireBase::UnixEpoch, ms) => SetTtl::At(ms),
                    },
                    (None, true) => SetTtl::Keep,
                    (None, false) => SetTtl::Clear,
                };
                WriteOp::Set { key: set.key, value: set.value, condition: set.condition, ttl, get: set.get }
            }
            WriteCommand::GetEx { key, option } => {
                let ttl = match option {
                    GetExOption::None => GetExTtl::Unchanged,
                    GetExOption::Persist => GetExTtl::Persist,
                    GetExOption::Expire(expiry) => match expiry_ms(expiry, clock_ms, "getex")? {
                        (ExpireBase::Now, ms) => GetExTtl::After(ms),
                        (ExpireBase::UnixEpoch, ms) => GetExTtl::At(ms),
                    },
                };
                WriteOp::GetEx { key, ttl }
            }
            WriteCommand::Expire(expire) => WriteOp::Expire {
                when: expire_time(&expire, clock_ms)?,
                key: expire.key,
                condition: expire.condition,
            },
        };
        Ok(KvWrite::unstamped(op))
    }
}

/// A SET/GETEX expiry in milliseconds (positive) and what it counts from, checked as Redis's
/// `getExpireMillisecondsOrReply`.
fn expiry_ms(
    expiry: Expiry,
    clock_ms: u64,
    command: &'static str,
) -> Result<(ExpireBase, u64), CommandError> {
    let invalid = CommandError::InvalidExpireTime { command };
    if expiry.amount <= 0 {
        return Err(invalid);
    }
    let ms = match expiry.unit {
        TimeUnit::Seconds => expiry.amount.checked_mul(1000).ok_or(invalid.clone())?,
        TimeUnit::Milliseconds => expiry.amount,
    };
    if expiry.base == ExpireBase::Now && ms.checked_add(clock(clock_ms)).is_none() {
        return Err(invalid);
    }
    u64::try_from(ms).map(|ms| (expiry.base, ms)).map_err(|_| invalid)
}

/// EXPIRE family time in milliseconds, as Redis's `expireGenericCommand` (negative allowed).
fn expire_time(expire: &ExpireCommand, clock_ms: u64) -> Result<ExpireTime, CommandError> {
    let invalid = CommandError::InvalidExpireTime { command: expire.command };
    let when = match expire.unit {
        TimeUnit::Seconds => expire.when.checked_mul(1000).ok_or(invalid.clone())?,
        TimeUnit::Milliseconds => expire.when,
    };
    match expire.base {
        ExpireBase::Now => when.checked_add(clock(clock_ms)).map(|_| ExpireTime::After(when)).ok_or(invalid),
        ExpireBase::UnixEpoch => Ok(ExpireTime::At(when)),
    }
}

/// The clock as a signed number, as Redis keeps it.
fn clock(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}
